"""``hwsim study codenet-variants``: CoDeNet's co-designed deformable conv against the original, at equal
on-chip buffer area.

The claim checked (Dong, Wang, Huang et al., "CoDeNet: Algorithm-hardware Co-design for Deformable
Convolution", arXiv:2006.08357, and its FPGA'21 version): bounding the offsets (line-buffer friendly) and
fixing the sampling shape to a square speed up the full deformable conv by 1.36x and the depthwise
deformable conv by 9.76x on their FPGA accelerator.

Layer set (the closest we define from the published descriptions; not CoDeNet's exact network): the
CenterNet-style upsampling head CoDeNet puts on a ShuffleNetV2 backbone at 512x512 input, three 3x3
deformable layers at 16x16x256, 32x32x128 and 64x64x64. A depthwise block is the depthwise 3x3 deformable
conv + a 1x1 pointwise conv (on the MAC array). The learned offsets are drawn ``N(0, offset_std)`` pixels
per coordinate (square: dilation ``1 + |N(0, offset_std)|``), seeded: draw ``r`` of layer ``i`` has seed
``r * len(layers) + i``; the original and the co-designed variant of one draw share the seeds.

The baseline (what CoDeNet's authors would accept): every variant on the same PEs (16x16 sampler / MAC
lanes, 4 banks, the offset and pointwise convs on the unit's 16x16 MAC array) and the same DRAM bandwidth,
and the **same on-chip buffer area** (line buffer + offset buffer, priced by the family inventory). The
buffer is not fixed: a sweep over the line-buffer height (``hwsim.sweep``, the family's ``shape_ops`` +
``predict`` + inventory, as ``hwsim sweep`` runs it) picks the co-designed variant's fastest height, and
the original gets its fastest height within that area. Each speedup is reported at three levels:
the sampler + MAC stage alone, the deformable layer (with its offset-generating conv) and the block (with
the 1x1 pointwise conv), as mean and 95 % interval (Student t) over the offset draws; and as curves
against the line-buffer height (4..32 rows) and the miss latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["LAYERS", "LEVELS", "PUBLISHED", "Design", "StudyResult", "VARIANT_ROWS", "buffer_area_mm2",
           "interval", "mac_cycles", "run", "select_equal_area", "sweep_cycles"]

#: (name, channels, height = width) of the CoDeNet-like deformable layers at 512x512 input.
LAYERS = (("head16", 256, 16), ("head32", 128, 32), ("head64", 64, 64))
#: CoDeNet's reported speedups of the co-designed (bounded + square) variant over the original.
PUBLISHED = {"full": 1.36, "depthwise": 9.76}
#: Variant-table rows: (row name, kind, depthwise, offset_mode, bound).
VARIANT_ROWS = (
    ("regular_3x3", "regular", False, None, None),
    ("full", "dcn", False, "free", None),
    ("full_bounded", "dcn", False, "free", 8.0),
    ("full_square", "dcn", False, "square", 8.0),
    ("depthwise", "dcn", True, "free", None),
    ("bounded", "dcn", True, "free", 8.0),
    ("square_depthwise", "dcn", True, "square", 8.0),
)
#: The unit every variant runs on (the deform-unit defaults otherwise: 16x16 lanes, 4 banks, 16 B/cycle,
#: 20-cycle misses, 200 MHz); the line buffer holds 64-pixel rows of 256 channels.
UNIT = {"max_width": 64, "max_channels": 256}
#: Speedup levels: sampler + MAC stage only; + the offset-generating conv; + the 1x1 pointwise conv.
LEVELS = ("unit", "layer", "block")
ROWS = tuple(range(4, 33))
MISS = (1, 2, 5, 10, 20, 50, 100, 200)
REPLICAS = 10
QUICK_ROWS = (4, 8, 12, 16, 18, 20, 24, 32)
QUICK_MISS = (5, 20, 100)
QUICK_REPLICAS = 3
#: The previous study's unequal setup: the original with this many rows, the co-designed at its own height.
SMALL_ROWS = 4


@dataclass(frozen=True)
class Design:
    """One variant of a comparison: its name, depthwise or full, and its offsets."""

    name: str
    depthwise: bool
    offset_mode: str
    offset_bound: float | None


#: kind -> (original, co-designed)
PAIRS = {
    "full": (Design("full", False, "free", None), Design("full_square", False, "square", 8.0)),
    "depthwise": (Design("depthwise", True, "free", None), Design("square_depthwise", True, "square", 8.0)),
}


# ---------------------------------------------------------------------------------------------- machinery
def interval(values) -> tuple[float, float, float]:
    """Mean and 95 % Student-t interval of the mean of ``values`` (the interval is the mean itself for one
    value or none spread)."""
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if v.size < 2:
        return m, m, m
    half = float(t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half


def _workload(design: Design, layers, offset_std: float, replica: int) -> list[dict]:
    return [{"name": name, "kind": "deform_conv2d", "c": c, "h": h, "w": h, "c_out": c, "depthwise": design.depthwise,
             "offset_std": float(offset_std), "seed": replica * len(layers) + i}
            for i, (name, c, h) in enumerate(layers)]


def sweep_cycles(design: Design, layers, axes: dict, replicas: int, offset_std: float = 2.0,
                 base: dict | None = None) -> list[list[dict]]:
    """The sampler + MAC stage of ``design`` on ``layers`` (``offset_array: false``: no offset conv) at every
    point of the grid ``axes`` (deform-unit config fields), one sweep per offset draw, through the sweep
    machinery (:func:`hwsim.sweep.parse_spec` + :func:`hwsim.sweep.evaluate_task`: ``shape_ops``,
    ``predict``, pricing on the inventory). Returns ``[replica][point]`` rows: the point's axis values and
    its sweep metrics (``cycles``, ``area_line_buffer_mm2``, ...)."""
    from hwsim.sweep import evaluate_task, parse_spec

    fixed = {**UNIT, **(base or {}), "offset_mode": design.offset_mode, "offset_bound": design.offset_bound,
             "offset_array": False}
    out = []
    for r in range(replicas):
        spec = parse_spec({"name": f"codenet-{design.name}-{r}", "family": "deform-unit",
                           "workload": {"layers": _workload(design, layers, offset_std, r)}, "base": fixed,
                           "axes": {k: list(v) for k, v in axes.items()}, "plots": False})
        bad = next((p for p in spec.points if p.config is None), None)
        if bad is not None:
            raise HwsimError(f"{design.name} {bad.params}: {bad.error}")
        recs = evaluate_task({"family": spec.family.name, "workload": spec.workload, "values": False,
                              "node": spec.node_nm, "dram": spec.dram,
                              "points": [(p.key, p.config, None) for p in spec.points]})
        rows = []
        for p, rec in zip(spec.points, recs, strict=True):
            if rec["status"] != "ok":
                raise HwsimError(f"{design.name} {p.params}: {rec['error']}")
            rows.append({**p.params, **rec["metrics"]})
        out.append(rows)
    return out


def mac_cycles(design: Design, layers, base: dict | None = None) -> dict:
    """Cycles of the GEMMs of ``design`` on the unit's MAC array, through the ``mac-array`` family's
    ``shape_ops`` + ``predict``: the offset-generating 3x3 convs (``2 * 9`` output channels free, 1 square;
    stride 1, padding 1) and, for a depthwise design, the 1x1 pointwise convs (``c -> c``). They do not
    depend on the line buffer, the miss latency or the offsets."""
    from hwsim.deform_unit import DeformUnitConfig
    from hwsim.families import get_family
    from hwsim.workloads import GemmLayer

    cfg = DeformUnitConfig(**{**UNIT, **(base or {}), "offset_mode": design.offset_mode,
                              "offset_bound": design.offset_bound})
    k = cfg.kernel
    n_off = 2 * k * k if design.offset_mode == "free" else 1
    mac = cfg.mac_array()
    fam = get_family("mac-array")
    shape_ops, predict = fam.load("shape_ops"), fam.load("predict")

    def cycles(rows):
        return sum(predict(mac, op).cycles * mult for op, mult in shape_ops(mac, rows))

    offset = cycles([GemmLayer(f"{n}.offsets", h * h, c * k * k, n_off) for n, c, h in layers])
    pointwise = cycles([GemmLayer(f"{n}.pointwise", h * h, c, c) for n, c, h in layers]) if design.depthwise else 0
    return {"offset": offset, "pointwise": pointwise}


def buffer_area_mm2(row: dict) -> float:
    """On-chip buffer area of a sweep point: line buffer + offset buffer, as the inventory prices them."""
    return row["area_line_buffer_mm2"] + row["area_offset_buffer_mm2"]


def _mean_cycles(reps: list[list[dict]], i: int) -> float:
    return float(np.mean([rep[i]["cycles"] for rep in reps]))


def select_equal_area(co: list[list[dict]], orig: list[list[dict]]) -> dict:
    """The equal-area design points of one comparison from two sweeps over the same line-buffer heights
    (``[replica][point]`` rows of :func:`sweep_cycles`): the co-designed variant's fastest point (mean
    cycles over the draws; the smallest buffer among equals), its buffer area as the budget, and the
    original's fastest point whose buffer area is within that budget."""
    n = len(co[0])
    i_co = min(range(n), key=lambda i: (_mean_cycles(co, i), buffer_area_mm2(co[0][i])))
    budget = buffer_area_mm2(co[0][i_co])
    fits = [i for i in range(n) if buffer_area_mm2(orig[0][i]) <= budget * (1 + 1e-12)]
    if not fits:
        raise HwsimError(f"line_buffer_rows={co[0][i_co]['line_buffer_rows']} is not allowed: the original has no "
                         "swept buffer within the co-designed variant's area")
    i_orig = min(fits, key=lambda i: (_mean_cycles(orig, i), buffer_area_mm2(orig[0][i])))
    return {"co_index": i_co, "orig_index": i_orig, "budget_mm2": budget,
            "co_rows": co[0][i_co]["line_buffer_rows"], "orig_rows": orig[0][i_orig]["line_buffer_rows"],
            "co_area_mm2": budget, "orig_area_mm2": buffer_area_mm2(orig[0][i_orig])}


def _levels(orig_unit, co_unit, mo: dict, mc: dict) -> dict:
    """Per-draw speedups at the three levels from per-draw unit cycles and the MAC-array cycles."""
    o, c = np.asarray(orig_unit, dtype=float), np.asarray(co_unit, dtype=float)
    layer_o, layer_c = o + mo["offset"], c + mc["offset"]
    return {"unit": o / c, "layer": layer_o / layer_c,
            "block": (layer_o + mo["pointwise"]) / (layer_c + mc["pointwise"])}


def _summ(levels: dict) -> dict:
    return {lv: dict(zip(("mean", "lo", "hi"), interval(v), strict=True)) for lv, v in levels.items()}


# ---------------------------------------------------------------------------------------------- result
@dataclass
class StudyResult:
    """The equal-area headline, the curves against line-buffer rows and miss latency, the variant table at
    the equal-area buffer, and where the plot went."""

    rows: list[dict] = field(default_factory=list)
    headline: dict = field(default_factory=dict)
    selection: dict = field(default_factory=dict)
    rows_curve: list[dict] = field(default_factory=list)
    miss_curve: list[dict] = field(default_factory=list)
    sensitivity: list[dict] = field(default_factory=list)
    unequal: dict = field(default_factory=dict)
    offset_std: float = 2.0
    replicas: int = REPLICAS
    layers: tuple = LAYERS
    miss_cycles: int = 20
    plot: str | None = None
    table: str | None = None

    @property
    def speedups(self) -> dict:
        """kind -> the equal-area layer-level speedup (mean) with the paper's figure."""
        return {k: {"from": PAIRS[k][0].name, "to": PAIRS[k][1].name, "speedup": h["layer"]["mean"],
                    "published": PUBLISHED[k]} for k, h in self.headline.items()}

    def format(self) -> str:
        def ci(s):
            return f"x{s['mean']:.2f} [{s['lo']:.2f}, {s['hi']:.2f}]"

        n = self.replicas
        out = [f"CoDeNet-like deformable head at 512x512 ({', '.join(f'{c}x{h}x{h}' for _, c, h in self.layers)}), "
               f"offsets N(0, {self.offset_std:g}) px (square: dilation 1 + |N(0, {self.offset_std:g})|, bound 8), "
               f"{n} offset draws (seeds 0..{n * len(self.layers) - 1})",
               "same PEs (16x16 lanes, 4 banks, offset + pointwise convs on a 16x16 MAC array), 16 B/cycle DRAM, "
               f"{self.miss_cycles}-cycle misses, 200 MHz; buffers priced at 45 nm (SRAM 0.692 um^2/bit, "
               "Mistry 2007 cell x 2.0 array overhead)", ""]
        out.append("Equal on-chip buffer area (line buffer + offset buffer), heights chosen by the sweep over "
                   f"{min(r['rows'] for r in self.rows_curve)}..{max(r['rows'] for r in self.rows_curve)} rows:")
        for kind, s in self.selection.items():
            o, c = PAIRS[kind]
            out.append(f"  {kind:9}: {c.name} fastest at {s['co_rows']} rows ({s['co_area_mm2']:.3f} mm^2); "
                       f"{o.name} fastest within that area at {s['orig_rows']} rows ({s['orig_area_mm2']:.3f} mm^2)")
        out += ["", f"Speedup co-designed vs original at equal buffer area, mean [95 % interval] over {n} draws:"]
        hdr = f"{'kind':10} {'sampler+MAC only':>22} {'layer (+offset conv)':>22} {'block (+1x1 pointwise)':>24} " \
              f"{'CoDeNet':>8}"
        out += [hdr, "-" * len(hdr)]
        for kind, h in self.headline.items():
            blk = ci(h["block"]) if PAIRS[kind][0].depthwise else "= layer (no pointwise)"
            pub = f"x{PUBLISHED[kind]:.2f}"
            out.append(f"{kind:10} {ci(h['unit']):>22} {ci(h['layer']):>22} {blk:>24} {pub:>8}")
        narrow = all(s["hi"] - s["lo"] < abs(s["mean"] - 1.0) for h in self.headline.values()
                     for s in (h["layer"], h["block"]))
        out.append(f"intervals narrower than the effect (|speedup - 1|) at layer and block level: "
                   f"{'yes' if narrow else 'NO'}")
        d = {k: h["layer"]["mean"] for k, h in self.headline.items()}
        agrees = d["depthwise"] > d["full"] > 1.0
        out.append(f"direction {'agrees' if agrees else 'does NOT agree'} with CoDeNet (depthwise gains more than "
                   f"full, both > 1): layer x{d['depthwise']:.2f} vs x{d['full']:.2f}; magnitude: depthwise "
                   f"x{d['depthwise']:.2f} vs CoDeNet's x{PUBLISHED['depthwise']:.2f}")
        if self.unequal:
            u = self.unequal
            out.append(f"unequal areas (the previous study's setup: original with {u['orig_rows']} rows, co-designed "
                       f"at its own height, {self.miss_cycles}-cycle misses): full layer "
                       f"x{u['full']['layer']['mean']:.2f}; depthwise unit x{u['depthwise']['unit']['mean']:.2f}, "
                       "layer "
                       f"x{u['depthwise']['layer']['mean']:.2f}, block x{u['depthwise']['block']['mean']:.2f}")
        out += ["", "Speedup against line-buffer rows (mean over the draws; eq: both at these rows, equal area; "
                "vsR*: original at these rows, co-designed at its equal-area height)"]
        hdr = (f"{'rows':>4} {'buf mm^2':>8} | {'full unit':>9} {'layer':>6} | {'dw unit':>7} {'layer':>6} "
               f"{'block':>6} | {'vsR* full':>9} {'dw layer':>8} {'dw block':>8}")
        out += [hdr, "-" * len(hdr)]
        for r in self.rows_curve:
            e, v = r["equal"], r["vs_selected"]
            out.append(f"{r['rows']:4d} {r['buffer_mm2']:8.3f} | {e['full']['unit']:9.3f} {e['full']['layer']:6.3f} | "
                       f"{e['depthwise']['unit']:7.3f} {e['depthwise']['layer']:6.3f} {e['depthwise']['block']:6.3f} | "
                       f"{v['full']['layer']:9.3f} {v['depthwise']['layer']:8.3f} {v['depthwise']['block']:8.3f}")
        half = max(r["halfwidth"] for r in self.rows_curve)
        out.append(f"(largest 95 % half-width on this curve: {half:.4f})")
        out += ["", "Speedup against miss latency (eq: the equal-area heights above; vs4: original with "
                f"{SMALL_ROWS} rows, co-designed at its height)"]
        hdr = (f"{'miss cyc':>8} | {'eq full':>7} {'dw layer':>8} {'dw block':>8} | {'vs4 full':>8} {'dw layer':>8} "
               f"{'dw block':>8}")
        out += [hdr, "-" * len(hdr)]
        for r in self.miss_curve:
            e, v = r["equal"], r["vs_small"]
            out.append(f"{r['miss_cycles']:8d} | {e['full']['layer']:7.3f} {e['depthwise']['layer']:8.3f} "
                       f"{e['depthwise']['block']:8.3f} | {v['full']['layer']:8.3f} {v['depthwise']['layer']:8.3f} "
                       f"{v['depthwise']['block']:8.3f}")
        out += ["", *self._reach()]
        if self.sensitivity:
            out.append("equal-area layer speedup vs offset spread (at the heights chosen for 2 px): " + "; ".join(
                f"std {s['offset_std']:g} px: full x{s['full']:.2f}, depthwise x{s['depthwise']:.2f}"
                for s in self.sensitivity))
        out += ["", "Variants with the co-designed variant's equal-area line buffer (draw 0; cycles include the "
                "offset conv, depthwise rows the pointwise conv):"]
        head = (f"{'variant':17} {'cycles':>11} {'unit':>11} {'MAC array':>10} {'stalls':>11} {'misses':>9} "
                f"{'DRAM MB':>8} {'uJ':>8} {'mm^2':>6} {'LB rows':>7} {'vs regular':>10}")
        out += [head, "-" * len(head)]
        for r in self.rows:
            out.append(f"{r['variant']:17} {r['cycles']:11,d} {r['unit_cycles']:11,d} {r['mac_array_cycles']:10,d} "
                       f"{r['stall_cycles']:11,d} {r['misses']:9,d} {r['dram_bytes'] / 1e6:8.2f} "
                       f"{r['energy_uj']:8.1f} {r['area_mm2']:6.2f} {r['line_buffer_rows'] or '-':>7} "
                       f"{r['vs_regular']:10.2f}")
        for label, path in (("plot", self.plot), ("table", self.table)):
            if path:
                out.append(f"{label}: {path}")
        return "\n".join(out)

    def _reach(self) -> list[str]:
        """Where each curve reaches the paper's figure."""
        out = []
        for kind, lv in (("full", "layer"), ("depthwise", "layer"), ("depthwise", "block")):
            p = PUBLISHED[kind]
            eq = [r["rows"] for r in self.rows_curve if r["equal"][kind][lv] >= p]
            vs = [r["rows"] for r in self.rows_curve if r["vs_selected"][kind][lv] >= p]
            ms = [r["miss_cycles"] for r in self.miss_curve if r["equal"][kind][lv] >= p]
            out.append(f"CoDeNet's x{p:.2f} ({kind} {lv}): at equal area "
                       + (f"reached at {_span(eq)} rows" if eq else "never reached over these rows")
                       + (f" and at miss latency {_span(ms)}" if ms else " nor over these miss latencies")
                       + "; with the co-designed at its height, "
                       + (f"when the original has {_span(vs)} rows" if vs else "never"))
        return out

    def as_dict(self) -> dict:
        return {"rows": self.rows, "headline": self.headline, "speedups": self.speedups, "selection": self.selection,
                "rows_curve": self.rows_curve, "miss_curve": self.miss_curve, "sensitivity": self.sensitivity,
                "unequal": self.unequal, "offset_std": self.offset_std, "replicas": self.replicas,
                "miss_cycles": self.miss_cycles, "published": PUBLISHED, "plot": self.plot, "table": self.table,
                "layers": [{"name": n, "c": c, "h": h, "w": h} for n, c, h in self.layers]}


def _span(xs) -> str:
    return str(xs[0]) if len(xs) == 1 else f"{min(xs)}..{max(xs)}"


# ---------------------------------------------------------------------------------------------- variant table
def _variant_rows(layers, rows_of: dict, offset_std: float, cost) -> list[dict]:
    """The variant table: every variant through the family's unit protocol (``predict`` on each layer), the
    deformable ones with the line buffer of their kind's equal-area height."""
    from hwsim.deform_unit import DeformLayer, DeformUnitConfig, inventory, rename_mac_actions
    from hwsim.families import get_family
    from hwsim.mac_array import inventory as mac_inventory
    from hwsim.mac_array import predict_gemm

    predict = get_family("deform-unit").load("predict")
    out = []
    base = DeformUnitConfig(**UNIT)
    for name, kind, dw, mode, bound in VARIANT_ROWS:
        cycles = unit_cycles = mac_cyc = stalls = misses = dram = 0
        energy = 0.0
        rows = None
        if kind == "regular":
            mac = base.mac_array()
            inv = mac_inventory(mac)
            for lname, c, h in layers:
                s = predict_gemm(mac, h * h, 9 * c, c, name=lname)
                cycles += s.cycles
                mac_cyc += s.cycles
                stalls += s.stall_cycles
                dram += s.dram_bytes
                energy += cost.energy(inv, s.actions, s.cycles).total_pj
        else:
            rows = rows_of["depthwise" if dw else "full"]
            cfg = DeformUnitConfig(**UNIT, offset_mode=mode, offset_bound=bound, line_buffer_rows=rows)
            inv = inventory(cfg)
            for i, (lname, c, h) in enumerate(layers):
                s = predict(cfg, DeformLayer(lname, c, h, h, c, depthwise=dw, offset_std=offset_std, seed=i))
                cycles += s.cycles
                unit_cycles += s.detail["unit_cycles"]
                mac_cyc += s.detail["offset_cycles"]
                stalls += s.stall_cycles
                misses += s.detail["misses"]
                dram += s.dram_bytes
                energy += cost.energy(inv, s.actions, s.cycles).total_pj
                if dw:  # the 1x1 pointwise conv of the depthwise-separable block, on the unit's MAC array
                    p = predict_gemm(cfg.mac_array(), h * h, c, c, name=f"{lname}.pointwise")
                    cycles += p.cycles
                    mac_cyc += p.cycles
                    stalls += p.stall_cycles
                    dram += p.dram_bytes
                    energy += cost.energy(inv, rename_mac_actions(p.actions), p.cycles).total_pj
        out.append({"variant": name, "kind": kind, "depthwise": dw, "offset_mode": mode, "bound": bound,
                    "cycles": cycles, "unit_cycles": unit_cycles, "mac_array_cycles": mac_cyc, "stall_cycles": stalls,
                    "misses": misses, "dram_bytes": dram, "energy_uj": energy * 1e-6,
                    "area_mm2": cost.area(inv).total_mm2, "line_buffer_rows": rows,
                    "latency_ms": cycles * base.ns_per_cycle * 1e-6})
    reg = out[0]["cycles"]
    for r in out:
        r["vs_regular"] = reg / r["cycles"]
    return out


# ---------------------------------------------------------------------------------------------- study
def _compute(res: StudyResult, layers, rows_axis, miss_axis, replicas: int, offset_std: float, sensitivity) -> None:
    from hwsim.cost import CostModel

    miss0 = res.miss_cycles
    mac = {k: tuple(mac_cycles(d, layers) for d in PAIRS[k]) for k in PAIRS}
    sw = {k: tuple(sweep_cycles(d, layers, {"line_buffer_rows": rows_axis}, replicas, offset_std,
                                {"miss_cycles": miss0}) for d in PAIRS[k]) for k in PAIRS}
    small = rows_axis.index(SMALL_ROWS)
    for kind, (orig, co) in sw.items():
        s = res.selection[kind] = select_equal_area(co, orig)
        mo, mc = mac[kind]
        res.headline[kind] = _summ(_levels([rep[s["orig_index"]]["cycles"] for rep in orig],
                                           [rep[s["co_index"]]["cycles"] for rep in co], mo, mc))
        res.unequal[kind] = _summ(_levels([rep[small]["cycles"] for rep in orig],
                                          [rep[s["co_index"]]["cycles"] for rep in co], mo, mc))
    res.unequal["orig_rows"] = SMALL_ROWS
    for i, r in enumerate(rows_axis):
        entry = {"rows": r, "buffer_mm2": buffer_area_mm2(sw["full"][1][0][i]), "equal": {}, "vs_selected": {},
                 "equal_interval": {}}
        half = 0.0
        for kind, (orig, co) in sw.items():
            mo, mc = mac[kind]
            j = res.selection[kind]["co_index"]
            eq = _levels([rep[i]["cycles"] for rep in orig], [rep[i]["cycles"] for rep in co], mo, mc)
            vs = _levels([rep[i]["cycles"] for rep in orig], [rep[j]["cycles"] for rep in co], mo, mc)
            entry["equal"][kind] = {lv: float(np.mean(v)) for lv, v in eq.items()}
            entry["vs_selected"][kind] = {lv: float(np.mean(v)) for lv, v in vs.items()}
            entry["equal_interval"][kind] = _summ(eq)
            half = max(half, *(max(s["hi"] - s["mean"], s["mean"] - s["lo"])
                               for s in entry["equal_interval"][kind].values()))
        entry["halfwidth"] = half
        res.rows_curve.append(entry)
    # miss latency: the equal-area heights and the small original, re-evaluated at every latency
    for kind, (o, c) in PAIRS.items():
        s = res.selection[kind]
        heights = sorted({s["orig_rows"], s["co_rows"], SMALL_ROWS})
        so = sweep_cycles(o, layers, {"miss_cycles": list(miss_axis), "line_buffer_rows": heights}, replicas,
                          offset_std)
        sc = sweep_cycles(c, layers, {"miss_cycles": list(miss_axis), "line_buffer_rows": [s["co_rows"]]}, replicas,
                          offset_std)
        mo, mc = mac[kind]
        for im, m in enumerate(miss_axis):
            if kind == "full":
                res.miss_curve.append({"miss_cycles": m, "equal": {}, "vs_small": {}, "equal_interval": {}})
            entry = res.miss_curve[im]

            def at(reps, rows, _m=m):
                return [next(p["cycles"] for p in rep if p["miss_cycles"] == _m and p["line_buffer_rows"] == rows)
                        for rep in reps]

            co_c = at(sc, s["co_rows"])
            eq = _levels(at(so, s["orig_rows"]), co_c, mo, mc)
            vs = _levels(at(so, SMALL_ROWS), co_c, mo, mc)
            entry["equal"][kind] = {lv: float(np.mean(v)) for lv, v in eq.items()}
            entry["vs_small"][kind] = {lv: float(np.mean(v)) for lv, v in vs.items()}
            entry["equal_interval"][kind] = _summ(eq)
    for std in sensitivity:
        sp = {}
        for kind, (o, c) in PAIRS.items():
            s = res.selection[kind]
            so = sweep_cycles(o, layers, {"line_buffer_rows": [s["orig_rows"]]}, replicas, std, {"miss_cycles": miss0})
            sc = sweep_cycles(c, layers, {"line_buffer_rows": [s["co_rows"]]}, replicas, std, {"miss_cycles": miss0})
            sp[kind] = float(np.mean(_levels([r[0]["cycles"] for r in so], [r[0]["cycles"] for r in sc],
                                             *mac[kind])["layer"]))
        res.sensitivity.append({"offset_std": std, **sp})
    res.rows = _variant_rows(layers, {k: s["co_rows"] for k, s in res.selection.items()}, offset_std, CostModel())


def run(out_dir=None, quick: bool = False, offset_std: float = 2.0, layers=LAYERS, rows=None, miss=None,
        replicas: int | None = None) -> StudyResult:
    """The study (BLAS pinned to one thread; every draw seeded): with ``quick`` fewer heights, latencies and
    draws and no offset-spread sensitivity; with ``out_dir`` the plot ``codenet_variants.png`` and the
    curves as ``codenet_variants_curves.csv``. ``layers`` ((name, c, h) with h = w), ``rows``, ``miss`` and
    ``replicas`` override the defaults (the rows must include 4)."""
    from threadpoolctl import threadpool_limits

    rows_axis = tuple(rows if rows is not None else QUICK_ROWS if quick else ROWS)
    miss_axis = tuple(miss if miss is not None else QUICK_MISS if quick else MISS)
    n = replicas if replicas is not None else QUICK_REPLICAS if quick else REPLICAS
    if SMALL_ROWS not in rows_axis:
        raise HwsimError(f"rows={rows_axis!r} is not allowed: expected line-buffer heights including {SMALL_ROWS}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise HwsimError(f"replicas={n!r} is not allowed: expected an integer >= 1")
    res = StudyResult(offset_std=offset_std, replicas=n, layers=tuple(layers))
    with threadpool_limits(limits=1):
        _compute(res, tuple(layers), rows_axis, miss_axis, n, offset_std, () if quick else (1.0, 4.0))
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        res.table = str(out / "codenet_variants_curves.csv")
        _write_curves(res, Path(res.table))
        res.plot = str(out / "codenet_variants.png")
        _plot(res, Path(res.plot))
    return res


def _write_curves(res: StudyResult, path: Path) -> None:
    import csv

    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["curve", "x", "kind", "level", "speedup_mean", "ci95_lo", "ci95_hi", "speedup_vs_other"])
        for r in res.rows_curve:
            for kind, lvs in r["equal_interval"].items():
                for lv, s in lvs.items():
                    w.writerow(["line_buffer_rows", r["rows"], kind, lv, f"{s['mean']:.6f}", f"{s['lo']:.6f}",
                                f"{s['hi']:.6f}", f"{r['vs_selected'][kind][lv]:.6f}"])
        for r in res.miss_curve:
            for kind, lvs in r["equal_interval"].items():
                for lv, s in lvs.items():
                    w.writerow(["miss_cycles", r["miss_cycles"], kind, lv, f"{s['mean']:.6f}", f"{s['lo']:.6f}",
                                f"{s['hi']:.6f}", f"{r['vs_small'][kind][lv]:.6f}"])


def _plot(res: StudyResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), sharey=True)
    series = (("full", "layer", "tab:blue"), ("depthwise", "layer", "tab:orange"), ("depthwise", "block", "tab:red"))
    for ax, curve, x, other, xlabel in ((axes[0], res.rows_curve, "rows", "vs_selected", "line-buffer rows"),
                                        (axes[1], res.miss_curve, "miss_cycles", "vs_small",
                                         "miss latency (cycles)")):
        xs = [r[x] for r in curve]
        for kind, lv, color in series:
            mean = [r["equal_interval"][kind][lv]["mean"] for r in curve]
            lo = [r["equal_interval"][kind][lv]["lo"] for r in curve]
            hi = [r["equal_interval"][kind][lv]["hi"] for r in curve]
            ax.plot(xs, mean, "o-", ms=3, color=color, label=f"{kind} {lv}, equal area")
            ax.fill_between(xs, lo, hi, color=color, alpha=0.25)
            ax.plot(xs, [r[other][kind][lv] for r in curve], "--", color=color,
                    label=f"{kind} {lv}, unequal" if x == "rows" else f"{kind} {lv}, original {SMALL_ROWS} rows")
        for kind, color in (("full", "tab:blue"), ("depthwise", "tab:orange")):
            ax.axhline(PUBLISHED[kind], color=color, ls=":", lw=1.2)
            ax.annotate(f"CoDeNet {kind} x{PUBLISHED[kind]:g}", (xs[0], PUBLISHED[kind]), fontsize=7, color=color,
                        va="bottom")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        if x == "miss_cycles":
            ax.set_xscale("log")
        else:
            for kind, color in (("full", "tab:blue"), ("depthwise", "tab:orange")):
                r_sel = res.selection[kind]["co_rows"]
                ax.axvline(r_sel, color=color, lw=0.8, alpha=0.5)
                ax.plot([r_sel], [PUBLISHED[kind]], "*", ms=11, color=color,
                        label=f"CoDeNet {kind} x{PUBLISHED[kind]:g} at the equal-area height ({r_sel} rows)")
            axes[0].legend(fontsize=6, loc="upper right")
    axes[0].set_ylabel("speedup co-designed / original")
    axes[0].set_title("vs line-buffer rows (dashed: co-designed at its equal-area height)", fontsize=9)
    axes[1].set_title("vs miss latency (at the equal-area heights)", fontsize=9)
    axes[1].legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
