"""The MAC array's requantizer comparison (``hwsim synth mac-array --requant``), beside the MAC code.

:func:`compare_requantizers` synthesizes one lane of the power-of-two requantizer
(:class:`hwsim.rtl.requantizer.Requantizer`) and one lane of the conventional multiplier-based requantizer
(:class:`hwsim.rtl.mult_requantizer.MultRequantizer`) with the flow and tables of :mod:`hwsim.synth`
(:func:`hwsim.synth.synth_logic_blocks`) and sets their ratio beside the published one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hwsim.config import MacArrayConfig
from hwsim.cost import REF_NODE_NM, CostModel
from hwsim.errors import HwsimError
from hwsim.synth import synth_logic_blocks

__all__ = [
    "GENG_2019",
    "PUBLISHED_AREA_RATIO",
    "PUBLISHED_ENERGY_RATIO",
    "RequantComparison",
    "RequantUnit",
    "compare_requantizers",
    "format_requant_comparison",
    "requant_option",
]

GENG_2019 = (
    'X. Geng, J. Fu, B. Zhao, J. Lin, M. M. Sabry Aly, C. Pal and V. Chandrasekhar, "Dataflow-Based Joint '
    'Quantization for Deep Neural Networks", Data Compression Conference (DCC 2019), '
    "doi:10.1109/DCC.2019.00086, arXiv:1901.02064: per quantization operation the shift-based unit "
    '"reduces area cost by about 15 times and energy consumption by about 9 times, compared to a strong '
    'baseline" (their RTL and baseline widths, not ours)'
)
#: Published multiplier-based / shift-based ratios (Geng et al. 2019, abstract).
PUBLISHED_AREA_RATIO = 15.0
PUBLISHED_ENERGY_RATIO = 9.0


@dataclass(frozen=True)
class RequantUnit:
    """One synthesized requantizer lane; ``energy_pj`` / ``analytic_area_um2`` come from the cost model."""

    name: str
    module: str
    description: str
    cells: int
    nand2_eq: float
    transistors: int
    area_um2: float
    cell_types: dict[str, int]
    analytic_area_um2: float
    energy_pj: float
    energy_formula: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RequantComparison:
    """Shift-based vs multiplier-based requantizer: one lane each, synthesized; ratios are multiplier / shift."""

    config: MacArrayConfig
    node_nm: int
    scale_bits: int
    shift: RequantUnit
    mult: RequantUnit
    area_ratio: float
    transistor_ratio: float
    analytic_area_ratio: float
    energy_ratio: float
    published_area_ratio: float
    published_energy_ratio: float
    published_source: str
    yosys_version: str
    synth_seconds: float
    notes: tuple[str, ...] = ()
    f32: RequantUnit | None = None
    """The float-exact (ONNX Runtime) requantizer lane with its zero-point correction adder (issue 22)."""

    def as_dict(self) -> dict:
        return {
            "config": self.config.to_dict(), "node_nm": self.node_nm, "scale_bits": self.scale_bits,
            "shift": self.shift.as_dict(), "mult": self.mult.as_dict(),
            "f32": None if self.f32 is None else self.f32.as_dict(),
            "measured": {"area_ratio": self.area_ratio, "transistor_ratio": self.transistor_ratio,
                         "analytic_area_ratio": self.analytic_area_ratio, "energy_ratio": self.energy_ratio},
            "published": {"area_ratio": self.published_area_ratio, "energy_ratio": self.published_energy_ratio,
                          "source": self.published_source},
            "yosys_version": self.yosys_version, "synth_seconds": self.synth_seconds, "notes": list(self.notes),
        }


def compare_requantizers(cfg: MacArrayConfig, scale_bits: int = 16, node_nm: int = REF_NODE_NM) -> RequantComparison:
    """Synthesize one lane of :class:`Requantizer` and of :class:`MultRequantizer` for ``cfg`` and compare them."""
    if not isinstance(cfg, MacArrayConfig):
        raise HwsimError(f"cfg={cfg!r} is not allowed: expected a MacArrayConfig")
    from hwsim.rtl.f32_requantizer import F32Requantizer
    from hwsim.rtl.mult_requantizer import MultRequantizer
    from hwsim.rtl.requantizer import Requantizer

    model = CostModel(node_nm)
    acc, out, n = cfg.acc_bits, cfg.out_bits, cfg.acc_bits + scale_bits
    designs = {"shift": ("requant_shift", Requantizer(cfg, 1)),
               "mult": ("requant_mult", MultRequantizer(cfg, 1, scale_bits)),
               "f32": ("requant_f32", F32Requantizer(cfg, 1))}
    blocks, yosys_version, seconds = synth_logic_blocks(designs, node_nm)

    units = {}
    for key, b in blocks.items():
        if key == "f32":
            from hwsim.cost import f32_requant_parts

            desc = (f"zero-point correction add, {acc}-bit int -> float32, 24x24 significand multiply, half-to-even "
                    f"to integer, zero point, clamp to {out} bits (ONNX Runtime's arithmetic)")
            parts = f32_requant_parts(acc, out)
            energy = (sum(p.count * p.unit_energy_pj for p in parts) * model.energy_scale
                      + model.add_energy_pj(acc))
            analytic_area = (sum(p.count * p.unit_area_um2 for p in parts) * model.area_scale
                             + model.add_area_um2(acc))
            formula = "requantizer.convert_f32 + requantizer.zp_add (hwsim cost)"
        elif key == "shift":
            desc = f"relu, rounding right shift by 0..{acc - 1}, clamp to {out} bits ({cfg.rounding})"
            energy = model.requant_energy_pj(acc, out)
            analytic_area = model.requant_area_um2(acc, out)
            formula = f"CostModel.requant_energy_pj({acc}, {out})"
        else:
            desc = (f"{acc}x{scale_bits}-bit signed multiply, relu, rounding right shift by 0..{n - 1}, clamp to "
                    f"{out} bits ({cfg.rounding})")
            energy = model.mult_energy_pj(acc, scale_bits) + model.requant_energy_pj(n, out)
            analytic_area = model.mult_area_um2(acc, scale_bits) + model.requant_area_um2(n, out)
            formula = f"CostModel.mult_energy_pj({acc}, {scale_bits}) + CostModel.requant_energy_pj({n}, {out})"
        units[key] = RequantUnit(key, b.top, desc, b.cells, b.nand2_eq, b.transistors, b.area_um2,
                                 b.cell_types, analytic_area, energy, formula)
    s, m = units["shift"], units["mult"]
    notes = (
        "synthesized: one lane each, same Yosys flow and NAND2-eq table as hwsim synth",
        "energy is not measured by synthesis: both energies are cost-model prices (Horowitz 2014 adder and "
        f"multiplier lines, MUX2 gates); the multiplier unit's shift/round/clamp is priced at its {n}-bit "
        "product width",
        "published ratios are Geng et al.'s, for their own RTL and baseline; they are quoted, not reproduced",
    )
    return RequantComparison(
        config=cfg, node_nm=node_nm, scale_bits=scale_bits, shift=s, mult=m,
        area_ratio=m.nand2_eq / s.nand2_eq, transistor_ratio=m.transistors / s.transistors,
        analytic_area_ratio=m.analytic_area_um2 / s.analytic_area_um2, energy_ratio=m.energy_pj / s.energy_pj,
        published_area_ratio=PUBLISHED_AREA_RATIO, published_energy_ratio=PUBLISHED_ENERGY_RATIO,
        published_source=GENG_2019, yosys_version=yosys_version,
        synth_seconds=seconds, notes=notes, f32=units["f32"])


def format_requant_comparison(cmp: RequantComparison) -> str:
    """A human-readable table of ``cmp`` with the measured and the published ratios, labelled."""
    cfg = cmp.config
    lines = [
        f"Requantizer comparison, one lane: acc {cfg.acc_bits} b -> out {cfg.out_bits} b, scale {cmp.scale_bits} b, "
        f"{cfg.rounding}, {cmp.node_nm} nm ({cmp.yosys_version}, synthesis {cmp.synth_seconds:.1f} s)",
        "",
        f"  {'unit':<11} {'cells':>6} {'NAND2-eq':>9} {'transistors':>12} {'synth um^2':>11} {'analytic um^2':>14} "
        f"{'energy pJ/op':>13}",
    ]
    for u in (cmp.shift, cmp.mult) + ((cmp.f32,) if cmp.f32 is not None else ()):
        lines.append(f"  {u.name:<11} {u.cells:>6} {u.nand2_eq:>9.1f} {u.transistors:>12} {u.area_um2:>11.1f} "
                     f"{u.analytic_area_um2:>14.1f} {u.energy_pj:>13.4g}")
    lines += [
        "",
        "  multiplier-based / shift-based:",
        f"    measured here (Yosys synthesis)  area {cmp.area_ratio:.2f}x (transistors {cmp.transistor_ratio:.2f}x)",
        f"    hwsim cost model (analytic)      area {cmp.analytic_area_ratio:.2f}x, energy {cmp.energy_ratio:.2f}x",
        f"    published (Geng et al. 2019)     area ~{cmp.published_area_ratio:g}x, "
        f"energy ~{cmp.published_energy_ratio:g}x",
        "",
        f"  shift: {cmp.shift.description}",
        f"  mult:  {cmp.mult.description}",
        *([f"  f32:   {cmp.f32.description}; area {cmp.f32.nand2_eq / cmp.shift.nand2_eq:.1f}x the shift lane"]
          if cmp.f32 is not None else []),
        f"  energy: shift = {cmp.shift.energy_formula}; mult = {cmp.mult.energy_formula}",
        f"  published: {cmp.published_source}",
        "",
        "Notes",
    ]
    lines += [f"  - {n}" for n in cmp.notes]
    return "\n".join(lines) + "\n"


def requant_option(cfg: MacArrayConfig, args=None) -> tuple[str, dict]:
    """``hwsim synth mac-array --requant``: the shift- vs multiplier-based requantizer comparison."""
    cmp = compare_requantizers(cfg, node_nm=getattr(args, "node", REF_NODE_NM) if args else REF_NODE_NM)
    return format_requant_comparison(cmp), cmp.as_dict()
