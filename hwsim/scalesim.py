"""SCALE-Sim import and SCALE-Sim's cycle conventions, beside hwsim's own.

SCALE-Sim (v2 and 3.0.0) and hwsim both model a systolic array, but they count differently. This module
reads SCALE-Sim's ``.cfg`` and topology ``.csv`` files as they are (the topology reader is
:func:`hwsim.workloads.read_scalesim_topology`, beside the layers it yields) and reports, per layer:

* SCALE-Sim's view: its conv-to-GEMM lowering (no padding, output size rounded *up*), its spatio-temporal
  mapping per dataflow, its fold count and its per-fold compute cycles, and the "Total Cycles" number its
  ``COMPUTE_REPORT.csv`` prints for a run without stalls;
* hwsim's view: the real layer (padding as in the network by default) run through hwsim's cycle-level MAC
  array model (:func:`hwsim.mac_array.predict_gemm`, the count its RTL matches), with DRAM stalls;
* hwsim's model on SCALE-Sim's lowering, so the two sources of difference (lowering and timing) separate.

SCALE-Sim's compute cycles (no stalls), from ``scalesim/compute/systolic_compute_{os,ws,is}.py``: with an
``R x C`` array and a layer lowered to ``M`` output pixels, ``N`` filters and window ``K``,

====  ======  ======  =====  ==========================
df    S_r     S_c     T      cycles per fold
====  ======  ======  =====  ==========================
os    M       N       K      ``T + R + C - 2``
ws    K       N       M      ``2R + C + T - 2``
is    K       M       N      ``2R + C + T - 2``
====  ======  ======  =====  ==========================

and ``ceil(S_r / R) * ceil(S_c / C)`` folds, run back to back (each fold drains before the next starts).
The report's "Total Cycles" is the index of the last cycle, ``folds * per_fold - 1``, plus stall cycles.
See ``docs/frontends.md`` for every difference between the two conventions.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field

from hwsim.errors import HwsimError
from hwsim.workloads import ScaleSimLayer, read_scalesim_topology, read_text_file

__all__ = [
    "ScaleSimConfig",
    "ScaleSimLayer",
    "ScaleSimComparison",
    "LayerComparison",
    "scalesim_compute",
    "read_scalesim_config",
    "read_scalesim_topology",
    "compare_with_scalesim",
    "format_comparison",
]

_DATAFLOWS = ("os", "ws", "is")


# ------------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class ScaleSimConfig:
    """The fields of a SCALE-Sim ``.cfg`` that decide cycles.

    Parameters
    ----------
    path : str
        The file read.
    run_name : str
        ``[general] run_name``.
    rows, cols : int
        ``ArrayHeight`` and ``ArrayWidth`` (PEs).
    ifmap_sram_kb, filter_sram_kb, ofmap_sram_kb : int
        SRAM sizes in KiB of SCALE-Sim words (one byte each).
    dataflow : {"os", "ws", "is"}
        ``Dataflow``.
    bandwidth : float
        ``Bandwidth``, SCALE-Sim words (bytes) per cycle.
    """

    path: str
    run_name: str
    rows: int
    cols: int
    ifmap_sram_kb: int
    filter_sram_kb: int
    ofmap_sram_kb: int
    dataflow: str
    bandwidth: float

    def mac_array_config(self, **overrides):
        """The :class:`~hwsim.config.MacArrayConfig` of the same array: int8 words, SRAM bytes = KiB * 1024,
        DRAM bytes per cycle = ``Bandwidth``; ``overrides`` replace any field."""
        from hwsim.config import MacArrayConfig

        fields = {"rows": self.rows, "cols": self.cols, "input_sram_bytes": self.ifmap_sram_kb * 1024,
                  "weight_sram_bytes": self.filter_sram_kb * 1024, "output_sram_bytes": self.ofmap_sram_kb * 1024,
                  "dataflow": self.dataflow, "dram_bytes_per_cycle": float(self.bandwidth)}
        fields.update(overrides)
        try:
            return MacArrayConfig(**fields)
        except HwsimError as e:
            raise HwsimError(f"{self.path}: {e}") from None


_CFG_KEYS = {"ArrayHeight": ("rows", int), "ArrayWidth": ("cols", int), "IfmapSramSzkB": ("ifmap_sram_kb", int),
             "FilterSramSzkB": ("filter_sram_kb", int), "OfmapSramSzkB": ("ofmap_sram_kb", int),
             "Dataflow": ("dataflow", str), "Bandwidth": ("bandwidth", float)}


def read_scalesim_config(path) -> ScaleSimConfig:
    """Read a SCALE-Sim ``.cfg`` (INI with ``key : value`` lines, e.g. ``google.cfg``).

    Only ``[general] run_name`` and the ``[architecture_presets]`` keys ``ArrayHeight``, ``ArrayWidth``,
    ``IfmapSramSzkB``, ``FilterSramSzkB``, ``OfmapSramSzkB``, ``Dataflow`` and ``Bandwidth`` are used; the
    other sections (layout, sparsity, run presets) are read past.

    Raises
    ------
    HwsimError
        ``<path>:<line>: ...`` for a malformed line or value, ``<path>: ...`` for a missing section or key.
    """
    p, text = read_text_file(path, "--scalesim-config")
    section = None
    found: dict[str, tuple[object, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    run_name = p.stem
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip() if not raw.lstrip().startswith(("#", ";")) else ""
        if not line:
            continue
        m = re.fullmatch(r"\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
            continue
        m = re.fullmatch(r"([^:=]+?)\s*[:=]\s*(.*)", line)
        if m is None:
            raise HwsimError(f"{p}:{lineno}: {line!r} is not allowed: expected '[section]' or 'key : value'")
        key, value = m.group(1).strip(), m.group(2).strip()
        if section is None:
            raise HwsimError(f"{p}:{lineno}: {key!r} is not allowed before a [section] header")
        if (section, key) in seen:
            raise HwsimError(f"{p}:{lineno}: [{section}] {key}={value!r} is not allowed: the key is already set on "
                             f"line {seen[section, key]}; expected each key once")
        seen[section, key] = lineno
        if section == "general" and key == "run_name":
            run_name = value
        elif section == "architecture_presets" and key in _CFG_KEYS:
            name, typ = _CFG_KEYS[key]
            try:
                v = typ(value)
            except ValueError:
                what = {int: "an integer", float: "a number"}[typ]
                raise HwsimError(f"{p}:{lineno}: {key}={value!r} is not allowed: expected {what}") from None
            if typ is str:
                v = v.lower()
                if v not in _DATAFLOWS:
                    raise HwsimError(f"{p}:{lineno}: {key}={value!r} is not allowed: expected one of os, ws, is")
            elif not (v > 0 and math.isfinite(v)):
                raise HwsimError(f"{p}:{lineno}: {key}={value!r} is not allowed: expected a finite number > 0")
            found[name] = v
    missing = [k for k, (name, _) in _CFG_KEYS.items() if name not in found]
    if missing:
        raise HwsimError(f"{p}: [architecture_presets] without {', '.join(missing)} is not allowed: "
                         "expected every one of " + ", ".join(_CFG_KEYS))
    return ScaleSimConfig(path=str(p), run_name=run_name, **found)


# ------------------------------------------------------------------------------------------ conventions
@dataclass(frozen=True)
class ScaleSimCompute:
    """SCALE-Sim's stall-free compute timing of one ``M x N x K`` layer on an ``R x C`` array.

    ``sr, sc, t`` are its spatial rows, spatial columns and temporal dimension; ``folds`` is
    ``ceil(sr/R) * ceil(sc/C)``; ``cycles`` = ``folds * per_fold`` (cycles, a count);
    ``report_cycles`` = ``cycles - 1``, the "Total Cycles" SCALE-Sim prints when there are no stalls.
    """

    sr: int
    sc: int
    t: int
    folds: int
    per_fold: int
    cycles: int

    @property
    def report_cycles(self) -> int:
        return self.cycles - 1


def scalesim_compute(dataflow: str, rows: int, cols: int, m: int, n: int, k: int) -> ScaleSimCompute:
    """SCALE-Sim's compute cycles of one layer (``M`` ofmap pixels, ``N`` filters, window ``K``).

    Closed form of the demand matrices of SCALE-Sim's ``systolic_compute_{os,ws,is}``: see the module
    docstring. Units: cycles.
    """
    if dataflow not in _DATAFLOWS:
        raise HwsimError(f"dataflow={dataflow!r} is not allowed: expected one of {', '.join(_DATAFLOWS)}")
    sr, sc, t = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    per = t + rows + cols - 2 if dataflow == "os" else 2 * rows + cols + t - 2
    folds = math.ceil(sr / rows) * math.ceil(sc / cols)
    return ScaleSimCompute(sr, sc, t, folds, per, folds * per)


@dataclass
class LayerComparison:
    """One topology row under both conventions (cycles; MACs counted as each side lowers the layer).

    ``scalesim_*`` follow SCALE-Sim (summed over the ``repeats`` per-channel layers of a ``DP`` row);
    ``scalesim_report_cycles`` is what its COMPUTE_REPORT prints as "Total Cycles" with no stalls.
    ``hwsim_*`` are hwsim's cycle model on the real layer (``hwsim_gemm`` per group), stalls included;
    ``hwsim_on_scalesim_gemm_cycles`` is hwsim's model on SCALE-Sim's unpadded GEMM.
    """

    name: str
    scalesim_mnk: tuple[int, int, int]
    repeats: int
    scalesim_folds: int
    scalesim_per_fold: int
    scalesim_cycles: int
    scalesim_report_cycles: int
    scalesim_macs: int
    hwsim_gemm: tuple[int, int, int]
    hwsim_groups: int
    hwsim_folds: int
    hwsim_cycles: int
    hwsim_stall_cycles: int
    hwsim_macs: int
    hwsim_on_scalesim_gemm_cycles: int


@dataclass
class ScaleSimComparison:
    """A whole topology under both conventions; see :func:`compare_with_scalesim`."""

    config: ScaleSimConfig
    topology: str
    dataflow: str
    padding: str
    hwsim_config: dict
    layers: list[LayerComparison] = field(default_factory=list)
    wall_seconds: float = 0.0
    memory: object = None  # hwsim.memory.MemoryPlan of the real layers (raw tensors, global buffer, DRAM timing)

    @property
    def scalesim_cycles(self) -> int:
        return sum(r.scalesim_cycles for r in self.layers)

    @property
    def hwsim_cycles(self) -> int:
        return sum(r.hwsim_cycles for r in self.layers)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["scalesim_cycles"], d["hwsim_cycles"] = self.scalesim_cycles, self.hwsim_cycles
        if self.memory is not None:
            d["memory"]["dram_bytes"] = self.memory.dram_bytes
            d["memory"]["compulsory_bytes"] = self.memory.compulsory_bytes
            d["memory"]["ratio"] = self.memory.ratio
        return d


def compare_with_scalesim(config, topology, dataflow: str | None = None, padding: str = "same",
                          buffer_kib: float | None = None, dram: str = "lpddr4", layout: str = "nhwc",
                          **overrides) -> ScaleSimComparison:
    """Every layer of a SCALE-Sim topology under SCALE-Sim's conventions and under hwsim's.

    Parameters
    ----------
    config : str, os.PathLike or ScaleSimConfig
        SCALE-Sim ``.cfg``.
    topology : str or os.PathLike
        SCALE-Sim topology ``.csv`` (conv or GEMM rows).
    dataflow : {"os", "ws", "is"}, optional
        Overrides the config's ``Dataflow``.
    padding : {"same", "none"}
        Padding of the layers hwsim runs (``"same"``: as in the real network; ``"none"``: as SCALE-Sim).
    buffer_kib, dram, layout
        The memory system of :func:`hwsim.memory.plan` on the real layers: a global buffer of ``buffer_kib``
        KiB (default the .cfg's three SRAMs together), DRAM timing of ``dram`` (a part of
        :data:`hwsim.dram.DRAM_SPECS`, a parameter file, or ``fixed``: the .cfg's ``Bandwidth``), raw
        tensors in ``layout``.
    **overrides
        Fields of the hwsim :class:`~hwsim.config.MacArrayConfig` (e.g. ``act_bits``).
    """
    from hwsim import memory
    from hwsim.dram import resolve_dram_spec
    from hwsim.mac_array import predict_gemm

    if padding not in ("same", "none"):
        raise HwsimError(f"padding={padding!r} is not allowed: expected one of same, none")
    if layout not in memory.LAYOUTS:
        raise HwsimError(f"--layout={layout!r} is not allowed: expected one of {', '.join(memory.LAYOUTS)}")
    if buffer_kib is not None and (isinstance(buffer_kib, bool) or not isinstance(buffer_kib, int | float)
                                   or not 0 < buffer_kib < 1 << 30):
        raise HwsimError(f"--buffer-kib={buffer_kib!r} is not allowed: expected a size in KiB > 0")
    spec = resolve_dram_spec(dram)
    t0 = time.perf_counter()
    scfg = config if isinstance(config, ScaleSimConfig) else read_scalesim_config(config)
    df = (dataflow or scfg.dataflow).lower()
    if df not in _DATAFLOWS:
        raise HwsimError(f"--dataflow={dataflow!r} is not allowed: expected one of {', '.join(_DATAFLOWS)}")
    cfg = scfg.mac_array_config(dataflow=df, **overrides)
    rows = read_scalesim_topology(topology)
    out = ScaleSimComparison(config=scfg, topology=str(topology), dataflow=df, padding=padding,
                             hwsim_config=cfg.to_dict())
    tensors = []
    for row in rows:
        m, n, k = row.mnk
        sc = scalesim_compute(df, cfg.rows, cfg.cols, m, n, k)
        try:
            layer = row.hwsim_layer(padding)
        except HwsimError as e:
            raise HwsimError(f"{topology}:{row.line}: {e}") from None
        gm, gk, gn = layer.gemm_shape
        tensors.append(memory.LayerTensors.of_workload(layer, cfg.weight_bits, cfg.act_bits, cfg.out_bits))
        st = predict_gemm(cfg, gm, gk, gn, name=row.name, groups=layer.groups)
        on_ss = predict_gemm(cfg, m, k, n, name=row.name, groups=row.repeats)
        out.layers.append(LayerComparison(
            name=row.name, scalesim_mnk=(m, n, k), repeats=row.repeats, scalesim_folds=sc.folds * row.repeats,
            scalesim_per_fold=sc.per_fold, scalesim_cycles=sc.cycles * row.repeats,
            scalesim_report_cycles=(sc.cycles - 1) * row.repeats, scalesim_macs=m * n * k * row.repeats,
            hwsim_gemm=(gm, gk, gn), hwsim_groups=layer.groups, hwsim_folds=st.folds, hwsim_cycles=st.cycles,
            hwsim_stall_cycles=st.stall_cycles, hwsim_macs=st.macs, hwsim_on_scalesim_gemm_cycles=on_ss.cycles))
    kib = buffer_kib if buffer_kib is not None else scfg.ifmap_sram_kb + scfg.filter_sram_kb + scfg.ofmap_sram_kb
    out.memory = memory.plan(tensors, int(kib * 1024), spec, cfg.clock_mhz, layout,
                             fixed_bytes_per_cycle=cfg.dram_bytes_per_cycle,
                             dram_name="fixed" if spec is None else "")
    out.wall_seconds = time.perf_counter() - t0
    return out


def format_comparison(cmp: ScaleSimComparison) -> str:
    """The table ``hwsim simulate --scalesim-config CFG --topology CSV`` prints."""
    c = cmp.config
    hc = cmp.hwsim_config
    lines = [
        f"hwsim simulate: SCALE-Sim topology {cmp.topology} on {c.path} ({c.run_name}): "
        f"{c.rows}x{c.cols} array, dataflow {cmp.dataflow}, bandwidth {c.bandwidth:g} words/cycle",
        f"hwsim side: MAC array {hc['rows']}x{hc['cols']} {cmp.dataflow}, int8, SRAM "
        f"{hc['input_sram_bytes']}/{hc['weight_sram_bytes']}/{hc['output_sram_bytes']} B, DRAM "
        f"{hc['dram_bytes_per_cycle']:g} B/cycle; layers padded '{cmp.padding}'",
        "",
        "SCALE-Sim convention: no padding, ofmap = ceil((in - filter + stride) / stride), folds of "
        "(os) K+R+C-2 or (ws/is) 2R+C+T-2 cycles,",
        "  'report' = its COMPUTE_REPORT 'Total Cycles' without stalls (folds x per-fold - 1); stalls not modelled.",
        "hwsim convention: the real layer (padding, floor output size) on hwsim's RTL-exact model, DRAM stalls "
        "included;",
        "  'hwsim@ss' = hwsim's model on SCALE-Sim's unpadded GEMM.",
        "",
    ]
    hdr = (f"{'layer':<10} {'SCALE-Sim M x N x K':<20} {'folds':>6} {'per fold':>8} {'report':>12} "
           f"{'hwsim m x k x n':<20} {'folds':>6} {'hwsim':>12} {'stalls':>10} {'hwsim@ss':>12} {'hwsim/ss':>8}")
    lines += [hdr, "-" * len(hdr)]
    for r in cmp.layers:
        mnk = "x".join(map(str, r.scalesim_mnk)) + (f" x{r.repeats}" if r.repeats > 1 else "")
        g = "x".join(map(str, r.hwsim_gemm)) + (f" x{r.hwsim_groups}g" if r.hwsim_groups > 1 else "")
        lines.append(f"{r.name:<10} {mnk:<20} {r.scalesim_folds:>6} {r.scalesim_per_fold:>8} "
                     f"{r.scalesim_report_cycles:>12,} {g:<20} {r.hwsim_folds:>6} {r.hwsim_cycles:>12,} "
                     f"{r.hwsim_stall_cycles:>10,} {r.hwsim_on_scalesim_gemm_cycles:>12,} "
                     f"{r.hwsim_cycles / r.scalesim_cycles:>8.3f}")
    ss = cmp.scalesim_cycles
    hw = cmp.hwsim_cycles
    lines += [
        "",
        f"total: SCALE-Sim convention {ss:,} cycles ({sum(r.scalesim_report_cycles for r in cmp.layers):,} as "
        f"reported), hwsim {hw:,} cycles ({sum(r.hwsim_stall_cycles for r in cmp.layers):,} stalls), "
        f"ratio {hw / ss:.3f}",
        f"MACs: SCALE-Sim lowering {sum(r.scalesim_macs for r in cmp.layers):,}, hwsim lowering "
        f"{sum(r.hwsim_macs for r in cmp.layers):,}",
    ]
    if cmp.memory is not None:
        from hwsim.memory import format_plan

        compute = {r.name: r.hwsim_cycles for r in cmp.layers}
        lines += ["", *format_plan(cmp.memory, compute)]
        bound = sum(max(compute[lp.name], lp.dram_cycles) for lp in cmp.memory.layers)
        lines.append(f"latency with DRAM transfers overlapped with compute: {bound:,} cycles "
                     f"(compute alone {hw:,}; per layer the larger of the two)")
    lines.append(f"(wall time {cmp.wall_seconds:.3f} s)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- CLI
#: The ``simulate`` options of the SCALE-Sim mode only (parsed with default None, so that one given with a
#: model is refused rather than ignored): attribute -> (flag, default).
CLI_DEFAULTS = {"dataflow": ("--dataflow", None), "padding": ("--padding", "same"),
                "buffer_kib": ("--buffer-kib", None), "layout": ("--layout", "nhwc")}


def add_cli_arguments(group) -> None:
    """The SCALE-Sim options of ``hwsim simulate`` (an argparse group): config, topology and overrides."""
    group.add_argument("--scalesim-config", metavar="CFG", help="a SCALE-Sim .cfg file (e.g. google.cfg)")
    group.add_argument("--topology", metavar="CSV",
                       help="a SCALE-Sim topology .csv (conv rows or 'Layer name, M, N, K')")
    group.add_argument("--dataflow", metavar="ws|os|is", help="override the config's Dataflow")
    group.add_argument("--padding", choices=("same", "none"), default=None,
                       help="padding of the layers hwsim runs: 'same' as in the real network (default) or 'none' "
                            "as SCALE-Sim")
    group.add_argument("--buffer-kib", type=float, default=None, metavar="KIB",
                       help="global on-chip buffer of the memory-system plan (default: the .cfg's three SRAMs)")
    group.add_argument("--layout", choices=("nhwc", "nchw"), default=None,
                       help="layout of the raw tensors in DRAM (default nhwc)")


def compare_from_cli(args):
    """:func:`compare_with_scalesim` of the options :func:`add_cli_arguments` added (both files required)."""
    if not (args.scalesim_config and args.topology):
        given, missing = ("--topology", "--scalesim-config") if args.topology else ("--scalesim-config", "--topology")
        raise HwsimError(f"{given} without {missing} is not allowed: expected both (a SCALE-Sim .cfg and a "
                         "topology .csv)")
    return compare_with_scalesim(args.scalesim_config, args.topology, dataflow=args.dataflow, padding=args.padding,
                                 buffer_kib=args.buffer_kib, dram=args.dram, layout=args.layout)
