"""``hwsim study codenet-variants``: regular 3x3 conv vs full / depthwise deformable conv and CoDeNet's variants.

The claim checked (Dong, Wang, Huang et al., "CoDeNet: Algorithm-hardware Co-design for Deformable
Convolution", arXiv:2006.08357, and its FPGA'21 version): bounding the offsets (line-buffer friendly) and
fixing the sampling shape to a square speed up the full deformable conv by 1.36x and the depthwise
deformable conv by 9.76x on their FPGA accelerator. The reason the depthwise gain is larger: a depthwise
layer does ``C_out`` times fewer MACs per sampled value, so the irregular input fetches that the bounded
and square variants remove are a much larger share of its time.

Layer set (the closest we define from the published descriptions; not CoDeNet's exact network): the
CenterNet-style upsampling head CoDeNet puts on a ShuffleNetV2 backbone at 512x512 input, three 3x3
deformable layers at 16x16x256, 32x32x128 and 64x64x64 (stride 32, 16, 8 of the input; the 2x upsamplings
between them and the backbone are the same for every variant and not counted). Depthwise variants are a 1x1
pointwise conv (on the MAC array) + the depthwise 3x3 deformable conv (CoDeNet's depthwise deformable conv).
The learned offsets are drawn ``N(0, offset_std)`` pixels per coordinate (square: dilation ``1 + |N(0,
offset_std)|``), seeded; ``offset_std = 2`` by default, and the speedups are also reported for 1 and 4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hwsim.cost import CostModel
from hwsim.deform_unit import DeformLayer, DeformUnitConfig, inventory, predict_layer
from hwsim.mac_array import inventory as mac_inventory
from hwsim.mac_array import predict_gemm

__all__ = ["LAYERS", "PUBLISHED", "StudyResult", "VARIANT_ROWS", "run"]

#: (name, channels, height = width) of the CoDeNet-like deformable layers at 512x512 input.
LAYERS = (("head16", 256, 16), ("head32", 128, 32), ("head64", 64, 64))
#: CoDeNet's reported speedups of the co-designed (bounded + square) variant over the original.
PUBLISHED = {"full": 1.36, "depthwise": 9.76}
#: Study rows: (row name, kind, depthwise, offset_mode, bound).
VARIANT_ROWS = (
    ("regular_3x3", "regular", False, None, None),
    ("full", "dcn", False, "free", None),
    ("full_bounded", "dcn", False, "free", 8.0),
    ("full_square", "dcn", False, "square", 8.0),
    ("depthwise", "dcn", True, "free", None),
    ("bounded", "dcn", True, "free", 8.0),
    ("square_depthwise", "dcn", True, "square", 8.0),
)


@dataclass
class StudyResult:
    """Rows of the variant table, the speedups against the published ones and where the plot went."""

    rows: list[dict] = field(default_factory=list)
    speedups: dict = field(default_factory=dict)
    sensitivity: list[dict] = field(default_factory=list)
    offset_std: float = 2.0
    plot: str | None = None

    def format(self) -> str:
        head = (f"{'variant':17} {'cycles':>11} {'unit':>11} {'MAC array':>10} {'stalls':>11} {'misses':>9} "
                f"{'conflicts':>9} {'DRAM MB':>8} {'uJ':>8} {'mm^2':>6} {'LB rows':>7} {'vs regular':>10}")
        out = [f"CoDeNet-like deformable layers at 512x512 input ({', '.join(f'{c}x{h}x{h}' for _, c, h in LAYERS)}), "
               f"offsets N(0, {self.offset_std:g}) px, 16x16 lanes, 4 banks, 200 MHz, 45 nm", head, "-" * len(head)]
        for r in self.rows:
            out.append(f"{r['variant']:17} {r['cycles']:11,d} {r['unit_cycles']:11,d} {r['mac_array_cycles']:10,d} "
                       f"{r['stall_cycles']:11,d} {r['misses']:9,d} {r['conflict_cycles']:9,d} "
                       f"{r['dram_bytes'] / 1e6:8.2f} {r['energy_uj']:8.1f} {r['area_mm2']:6.2f} "
                       f"{r['line_buffer_rows'] or '-':>7} {r['vs_regular']:10.2f}")
        out.append("")
        for kind, s in self.speedups.items():
            out.append(f"{kind} deformable conv: co-designed ({s['to']}) vs original ({s['from']}) speedup "
                       f"x{s['speedup']:.2f} (CoDeNet: x{s['published']:.2f})")
        if self.sensitivity:
            out.append("speedup vs offset spread: " + "; ".join(
                f"std {s['offset_std']:g} px: full x{s['full']:.2f}, depthwise x{s['depthwise']:.2f}"
                for s in self.sensitivity))
        d = self.speedups
        agrees = d["depthwise"]["speedup"] > d["full"]["speedup"] > 1.0
        out.append(f"direction {'agrees' if agrees else 'does NOT agree'} with CoDeNet: the depthwise speedup is "
                   f"{'larger' if agrees else 'not larger'} than the full one")
        if self.plot:
            out.append(f"plot: {self.plot}")
        return "\n".join(out)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "speedups": self.speedups, "sensitivity": self.sensitivity,
                "offset_std": self.offset_std, "published": PUBLISHED, "plot": self.plot,
                "layers": [{"name": n, "c": c, "h": h, "w": h} for n, c, h in LAYERS]}


def _unit(mode, bound) -> DeformUnitConfig:
    return DeformUnitConfig(offset_mode=mode, offset_bound=bound, max_width=64, max_channels=256)


def _row(name, kind, dw, mode, bound, std, model) -> dict:
    base = _unit("free", None)
    mac = base.mac_array()
    cycles = unit_cycles = mac_cycles = stalls = misses = conflicts = dram = 0
    energy = 0.0
    rows = None
    if kind == "regular":
        inv = mac_inventory(mac)
        for lname, c, h in LAYERS:
            s = predict_gemm(mac, h * h, 9 * c, c, name=lname)
            cycles += s.cycles
            mac_cycles += s.cycles
            stalls += s.stall_cycles
            dram += s.actions.dram_read_bytes + s.actions.dram_write_bytes
            energy += model.energy(inv, s.actions, s.cycles).total_pj
        area = model.area(inv).total_mm2
    else:
        cfg = _unit(mode, bound)
        inv = inventory(cfg)
        for i, (lname, c, h) in enumerate(LAYERS):
            layer = DeformLayer(lname, c, h, h, c, depthwise=dw, offset_std=std, seed=i)
            s = predict_layer(cfg, layer)
            cycles += s.cycles
            unit_cycles += s.unit_cycles
            mac_cycles += s.offset_cycles
            stalls += s.stall_cycles
            misses += s.misses
            conflicts += s.conflict_cycles
            dram += s.dram_read_bytes + s.dram_write_bytes
            energy += model.energy(inv, s.actions, s.cycles).total_pj
            rows = s.line_buffer_rows
            if dw:  # the 1x1 pointwise conv of the depthwise-separable deformable block, on the MAC array
                p = predict_gemm(cfg.mac_array(), h * h, c, c, name=f"{lname}.pointwise")
                cycles += p.cycles
                mac_cycles += p.cycles
                stalls += p.stall_cycles
                dram += p.actions.dram_read_bytes + p.actions.dram_write_bytes
                energy += model.energy(inv, _oc(p.actions), p.cycles).total_pj
        area = model.area(inv).total_mm2
    return {"variant": name, "kind": kind, "depthwise": dw, "offset_mode": mode, "bound": bound, "cycles": cycles,
            "unit_cycles": unit_cycles, "mac_array_cycles": mac_cycles, "stall_cycles": stalls, "misses": misses,
            "conflict_cycles": conflicts, "dram_bytes": dram, "energy_uj": energy * 1e-6, "area_mm2": area,
            "line_buffer_rows": rows, "latency_ms": cycles * base.ns_per_cycle * 1e-6}


def _oc(actions):
    from hwsim.deform_unit import rename_mac_actions

    return rename_mac_actions(actions)


def _speedups(rows) -> dict:
    by = {r["variant"]: r for r in rows}
    return {
        "full": {"from": "full", "to": "full_square", "speedup": by["full"]["cycles"] / by["full_square"]["cycles"],
                 "published": PUBLISHED["full"]},
        "depthwise": {"from": "depthwise", "to": "square_depthwise",
                      "speedup": by["depthwise"]["cycles"] / by["square_depthwise"]["cycles"],
                      "published": PUBLISHED["depthwise"]},
    }


def run(out_dir=None, quick: bool = False, offset_std: float = 2.0) -> StudyResult:
    """The variant table (and, unless ``quick``, the speedups at offset spreads 1 and 4 px); with ``out_dir``
    the bar plot ``codenet_variants.png``."""
    model = CostModel()
    res = StudyResult(offset_std=offset_std)
    res.rows = [_row(*v, offset_std, model) for v in VARIANT_ROWS]
    reg = res.rows[0]["cycles"]
    for r in res.rows:
        r["vs_regular"] = reg / r["cycles"]
    res.speedups = _speedups(res.rows)
    if not quick:
        for std in (1.0, 4.0):
            rows = [_row(*v, std, model) for v in VARIANT_ROWS if v[1] == "dcn" and (v[4] is None or v[3] == "square")]
            sp = _speedups(rows)
            res.sensitivity.append({"offset_std": std, "full": sp["full"]["speedup"],
                                    "depthwise": sp["depthwise"]["speedup"]})
    if out_dir is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        labels = [r["variant"] for r in res.rows]
        for ax, key, title in zip(axes, ("cycles", "energy_uj", "area_mm2"), ("cycles", "energy (uJ)", "area (mm^2)"),
                                  strict=True):
            ax.bar(range(len(labels)), [r[key] for r in res.rows],
                   color=["gray" if r["kind"] == "regular" else "tab:orange" if r["depthwise"] else "tab:blue"
                          for r in res.rows])
            ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=7)
            ax.set_title(title)
        fig.tight_layout()
        res.plot = str(out / "codenet_variants.png")
        fig.savefig(res.plot, dpi=100)
        plt.close(fig)
    return res
