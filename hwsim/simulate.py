"""Simulate a compressed model on an accelerator: accuracy, cycles, energy and area in one report.

The model is compiled for the accelerator and run by the one model-run loop (:mod:`hwsim.run`): each
layer goes to the unit whose family runs its kind, is lowered into that unit's ops and predicted in closed
form, and the whole digits test set runs bit-exactly through every unit's ``run`` beside the families'
references. Per-layer timing, actions and energy are those of ONE inference (batch 1); for a unit whose
counts depend on the data (e.g. learned sampling offsets) they are the mean over the test images. Pooling,
ReLU, sign and residual adds run on the host and are not timed. An accelerator with several units gets a
unit column and a per-unit summary (cycles and energy of each unit; they sum to the totals).

Clock: each unit's config field ``clock_mhz`` turns cycles into microseconds. ``clock_mhz=F`` runs every
unit at F MHz; ``fpga_target="ecp5-85k"`` runs each unit at the Fmax of its own RTL placed and routed on
that FPGA (:mod:`hwsim.fpga`: the cached result, or the flow run now). Cycles and energy do not depend on
the clock; energy is always the analytic figure of the cost tables (action counts x per-action energies at
the cost model's node), not a measured or FPGA power.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from hwsim import run
from hwsim.cost import TABLE_VERSION, CostModel
from hwsim.errors import HwsimError
from hwsim.families import DEFAULT_ACCEL, Accelerator, Unit, resolve_accel
from hwsim.stats import text_table as _table

__all__ = ["LayerReport", "SimReport", "UnitReport", "format_report", "resolve_accel", "simulate"]


@dataclass
class LayerReport:
    """One layer of one inference that a unit runs (``unit``: its label, :func:`unit_labels`)."""

    name: str
    shape: str
    weight_format: str
    macs: int
    cycles: int
    stall_cycles: int
    utilization: float
    sram_bytes: int
    dram_bytes: int
    energy_pj: dict[str, float]
    unit: str = ""
    unit_cycles: int = 0  # the unit's own cycles (its RTL's); ``cycles`` also waits for DRAM (hwsim.memory)
    #: work slots the unit passed without real work (a unit's Stats ``detail['idle_slots']``, e.g. PE slots
    #: of an edge tile's padding lanes) and the energy priced for them (actions named ``idle``)
    idle_slots: int = 0
    idle_pj: float = 0.0

    @property
    def total_pj(self) -> float:
        return sum(self.energy_pj.values())


@dataclass
class UnitReport:
    """One unit of the accelerator over one inference: its layers and their cycles, MACs and energy (pJ)."""

    unit: str
    family: str
    description: str
    layers: list[str] = field(default_factory=list)
    macs: int = 0
    cycles: int = 0
    stall_cycles: int = 0
    energy_pj: float = 0.0
    area_mm2: float = 0.0


@dataclass
class SimReport:
    """The whole run. Times are per inference; accuracies over the test set (fractions)."""

    model: str
    compress: str
    accel: Accelerator
    layers: list[LayerReport] = field(default_factory=list)
    cycles: int = 0
    latency_us: float = 0.0
    inferences_per_s: float = 0.0
    energy_pj: float = 0.0
    tops_per_w: float = 0.0
    area_mm2: float = 0.0
    macs: int = 0
    idle_slots: int = 0
    idle_pj: float = 0.0
    test_images: int = 0
    accuracy_float: float = 0.0
    accuracy_reference: float = 0.0
    accuracy_simulated: float = 0.0
    simulated_equals_reference: bool = False
    outputs_compared: int = 0
    cost_notes: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    units: list[UnitReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: where each unit's clock comes from (the config, --clock-mhz, or an FPGA's Fmax), one line per unit
    clock_notes: list[str] = field(default_factory=list)
    fpga: list[dict] = field(default_factory=list)
    #: the memory-system plan of each unit with a global buffer: (unit label, hwsim.memory.MemoryPlan)
    memory: list = field(default_factory=list)
    #: inferences run one after another (their global buffers may keep weights for the batch); the figures
    #: are per inference, the batch's mean
    batch: int = 1

    def as_dict(self) -> dict:
        d = dataclasses.asdict(dataclasses.replace(self, accel=None, memory=[]))
        d["accel"] = self.accel.as_dict()
        d["memory"] = [{"unit": lab, **dataclasses.asdict(mp), "dram_bytes": mp.dram_bytes,
                        "compulsory_bytes": mp.compulsory_bytes, "ratio": mp.ratio} for lab, mp in self.memory]
        return d

    @property
    def unit(self) -> Unit:
        """The unit that ran the model's conv/linear layers."""
        return self.accel.units[self._unit_index]

    _unit_index: int = 0


def _progress_bar(total: int, label: str, enabled: bool = True):
    """The tqdm bar ``hwsim sweep`` uses too, on stderr, shown once a run has taken more than a second."""
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="step", delay=1.0, leave=False, dynamic_ncols=True,
                disable=not enabled or None)


def unit_labels(acc: Accelerator) -> list[str]:
    """A label per unit: its family name, with ``#i`` (its index) when the family is there twice."""
    names = [u.family.name for u in acc.units]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def _describe(unit: Unit) -> str:
    cfg = unit.config
    desc = cfg.describe() if hasattr(cfg, "describe") else ""
    return desc if desc.startswith(unit.family.name) else f"{unit.family.name} {desc}".rstrip()


def _totals(rep: SimReport, cfg, acc: Accelerator, cost: CostModel) -> None:
    """Fill the report's totals and per-unit rows from its per-layer rows (one inference, layers back to back;
    each layer's cycles at its unit's clock)."""
    labels = unit_labels(acc)
    rep.units = [UnitReport(lab, u.family.name, _describe(u),
                            area_mm2=cost.area(u.family.load("inventory")(u.config)).total_mm2)
                 for lab, u in zip(labels, acc.units, strict=True)]
    by_label = {ur.unit: ur for ur in rep.units}
    for lr in rep.layers:
        ur = by_label[lr.unit]
        ur.layers.append(lr.name)
        ur.macs += lr.macs
        ur.cycles += lr.cycles
        ur.stall_cycles += lr.stall_cycles
        ur.energy_pj += lr.total_pj
    rep.cycles = sum(lr.cycles for lr in rep.layers)
    rep.macs = sum(lr.macs for lr in rep.layers)
    rep.idle_slots = sum(lr.idle_slots for lr in rep.layers)
    rep.idle_pj = math.fsum(lr.idle_pj for lr in rep.layers)
    clocks = {acc.units[labels.index(lr.unit)].config.ns_per_cycle for lr in rep.layers}
    if len(clocks) <= 1:
        rep.latency_us = rep.cycles * cfg.ns_per_cycle / 1000.0
    else:
        rep.latency_us = math.fsum(ur.cycles * u.config.ns_per_cycle
                                   for ur, u in zip(rep.units, acc.units, strict=True)) / 1000.0
    rep.inferences_per_s = 1e6 / rep.latency_us
    rep.energy_pj = sum(lr.total_pj for lr in rep.layers)
    rep.tops_per_w = 2 * rep.macs / rep.energy_pj  # ops per pJ == TOPS/W
    rep.area_mm2 = math.fsum(ur.area_mm2 for ur in rep.units)
    rep.cost_notes = [f"energy and area: hwsim.cost tables v{TABLE_VERSION}, {cost.node_nm} nm, DRAM {cost.dram}"]


def clocked(acc: Accelerator, clock_mhz: float | None = None, fpga_target: str | None = None,
            fpga_seed: int = 1, progress: bool = False) -> tuple[Accelerator, list[str], list[dict]]:
    """``acc`` with every unit's ``clock_mhz`` set to ``clock_mhz``, or to the Fmax of the unit's RTL placed
    and routed on ``fpga_target`` (cached; see :mod:`hwsim.fpga`). Returns the accelerator, one line per
    unit saying where its clock comes from, and the FPGA results (``as_dict``) used."""
    if clock_mhz is not None and fpga_target is not None:
        raise HwsimError("--clock-mhz and --target are not allowed together: expected one clock source")
    if clock_mhz is not None and (isinstance(clock_mhz, bool) or not isinstance(clock_mhz, int | float)
                                  or not 0 < clock_mhz <= 100_000):
        raise HwsimError(f"--clock-mhz={clock_mhz!r} is not allowed: expected a number in (0, 100000]")
    labels = unit_labels(acc)
    if clock_mhz is None and fpga_target is None:
        return acc, [f"{lab}: {u.config.clock_mhz:g} MHz (the config's clock_mhz)"
                     for lab, u in zip(labels, acc.units, strict=True)], []
    if fpga_target is not None:
        from hwsim import fpga

        fpga.check_target(fpga_target)
    units, notes, results = [], [], []
    for lab, u in zip(labels, acc.units, strict=True):
        if not hasattr(u.config, "clock_mhz"):
            raise HwsimError(f"unit {lab} is not allowed with a clock: its config has no clock_mhz field")
        if fpga_target is None:
            mhz, note = float(clock_mhz), f"{lab}: {clock_mhz:g} MHz (--clock-mhz)"
        else:
            res = fpga.place_and_route(u.config, fpga_target, fpga_seed, progress=progress)
            if res.fmax_mhz is None:
                raise HwsimError(f"unit {lab}: nextpnr reported no Fmax for {res.top} on {fpga_target}")
            mhz = res.fmax_mhz
            note = (f"{lab}: {mhz:.2f} MHz = Fmax of {res.top} on {fpga_target} ({res.part}, speed grade "
                    f"{res.speed_grade}, {res.nextpnr_version}, seed {res.seed}; {res.luts:,} LUT4, {res.ffs:,} FF, "
                    f"{res.dsps} MULT18X18D, {res.brams} DP16KD{', cached' if res.cached else ''})")
            results.append({"unit": lab, **res.as_dict()})
        units.append(Unit(u.family, u.config.replace(clock_mhz=mhz)))
        notes.append(note)
    return Accelerator(acc.name, tuple(units)), notes, results


def simulate(model: str = "digits-cnn", accel=DEFAULT_ACCEL, compress: str | None = None,
             node_nm: int = 45, dram: str = "lpddr4", progress: bool = True, clock_mhz: float | None = None,
             fpga_target: str | None = None, fpga_seed: int = 1, batch: int = 1) -> SimReport:
    """Compress ``model``, run it on ``accel`` bit-exactly over the digits test set, and price it.

    ``accel`` is a preset name of any registered family, a YAML/JSON file, a family config or an
    :class:`hwsim.families.Accelerator`; each layer runs on the unit whose family runs its kind.
    ``model`` may be an ``.onnx`` graph; ``compress="onnx"`` runs a quantized graph with its own weight
    codes and power-of-two scales (:func:`hwsim.models.onnx_import.to_compressed`), and ``None`` does that
    when the graph is quantized and uses ``"int8"`` otherwise. A family that compiles whole models itself
    (a ``compile`` entry point) takes None or its own format. ``clock_mhz`` / ``fpga_target`` (with
    ``fpga_seed``) set the units' clocks (see :func:`clocked`). ``batch`` inferences run one after another
    through a unit's global buffer, whose plan may then keep weights on chip for the whole batch
    (:func:`hwsim.memory.plan`); the report's figures are per inference, the batch's mean.
    """
    from hwsim.models import catalog, zoo
    from hwsim.models import compress as comp

    t_start = time.perf_counter()
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise HwsimError(f"--batch={batch!r} is not allowed: expected a whole number of inferences >= 1")
    acc = resolve_accel(accel)
    if fpga_target is not None:
        from hwsim import fpga

        fpga.check_target(fpga_target)  # before any work
    acc, clock_notes, fpga_results = clocked(acc, clock_mhz, fpga_target, fpga_seed, progress)
    if compress not in (None, "onnx"):
        comp.parse_compress_spec(compress)
    fmodel = catalog.load(model)
    chosen = run.chosen_fields(accel)  # the fields the user set (a preset sets none)
    acc, rounding_notes = run.onnx_rounding(acc, fmodel, chosen)
    cost = CostModel(node_nm=node_nm, dram=dram)
    x_tr, y_tr, x_te, y_te = zoo.load_digits_split()
    catalog.check_classes(fmodel, int(y_te.max()) + 1, model)  # scored against the digits labels
    # '+ft' specs use a committed fine-tuned variant, or fine-tune on the training split.
    compiled, label = run.compile_model(acc, fmodel, compress, x_tr[:512], train_data=(x_tr, y_tr))
    acc, fit_notes = run.fit_units(acc, compiled, chosen)
    n_layers = len(compiled.unit_layers())
    bar = _progress_bar(n_layers + 1, "simulating", progress)

    def step(name):
        bar.set_postfix_str(name, refresh=False)
        bar.update()

    run.check_memory(acc, compiled, dram, batch)  # a buffer too small for a layer fails here, before the run
    mr = run.run_model(acc, compiled, x_te, label, cfg=run.base_config(acc, fmodel), progress=step)
    mr = run.apply_memory(acc, compiled, mr, dram, batch)
    index = mr.layers[0].unit if mr.layers else 0
    rep = SimReport(model=model, compress=label, accel=acc, test_images=len(y_te), _unit_index=index,
                    clock_notes=clock_notes, fpga=fpga_results, batch=batch)
    labels = unit_labels(acc)
    for lr in mr.layers:
        u = acc.units[lr.unit]
        st = lr.stats
        rep.layers.append(LayerReport(lr.name, lr.shape, lr.weight_format, st.macs, st.cycles, st.stall_cycles,
                                      st.utilization(getattr(u.config, "peak_macs_per_cycle", 0)) or float("nan"),
                                      st.sram_bytes, st.dram_bytes, run.price(cost, u, st), labels[lr.unit],
                                      st.detail.get("unit_cycles", st.cycles),
                                      int(st.detail.get("idle_slots") or 0), run.idle_pj(cost, u, st)))
    _totals(rep, acc.units[index].config, acc, cost)
    rep.memory = [(labels[i], mp) for i, mp in mr.memory]
    if batch > 1 and not mr.memory:
        rep.notes.append(f"batch {batch}: no unit has a global buffer (global_buffer_bytes), so nothing stays on "
                         "chip between inferences; every figure is that of batch 1")
    rep.notes += rounding_notes + fit_notes + _onnx_rounding_note(fmodel, compiled, run.base_config(acc, fmodel))
    if mr.data_dependent:
        stats = {lr.name: lr.stats for lr in mr.layers if lr.name in mr.data_dependent}
        rep.notes.append(f"{', '.join(mr.data_dependent)}: cycles, stalls, traffic and energy depend on the data; "
                         f"mean per inference over the {len(y_te)} test images (cycles "
                         + "; ".join(f"{n} {st.detail['cycles_min']}..{st.detail['cycles_max']}"
                                     for n, st in stats.items()) + ")")
    step("accuracy")
    bar.close()
    rep.accuracy_float = float(np.mean(fmodel.forward_float(x_te).argmax(axis=1) == y_te))
    rep.accuracy_reference = float(np.mean(mr.logits_reference.argmax(axis=1) == y_te))
    rep.accuracy_simulated = float(np.mean(mr.logits_simulated.argmax(axis=1) == y_te))
    rep.simulated_equals_reference = bool(np.array_equal(mr.logits_reference, mr.logits_simulated))
    rep.outputs_compared = mr.outputs_compared
    rep.wall_seconds = time.perf_counter() - t_start
    return rep


def _onnx_rounding_note(fmodel, compiled, base) -> list[str]:
    """A quantized ONNX graph whose layers run on the power-of-two requantizer of a unit that rounds half up:
    ONNX Runtime rounds half to even, so ties differ (say so, and how to match it)."""
    if fmodel.meta.get("onnx_import") is None or getattr(base, "rounding", "half_even") == "half_even":
        return []
    shift = [op.layer for op in getattr(compiled, "gemm_ops", lambda: [])() if getattr(op, "requant", "") == "shift"]
    if not shift:
        return []
    return [f"note: {', '.join(dict.fromkeys(shift))} requantize on the power-of-two requantizer, which rounds "
            f"{base.rounding} on this unit; ONNX Runtime rounds half to even, so ties can differ from its outputs "
            "(set 'rounding: half_even' in the --accel file to match it)"]


def format_report(rep: SimReport) -> str:
    """The human-readable report printed by ``hwsim simulate``."""
    if len(rep.accel.units) > 1:
        return _format_multi_unit(rep)
    unit = rep.unit
    cfg = unit.config
    desc = cfg.describe() if hasattr(cfg, "describe") else ""
    if not desc.startswith(unit.family.name):
        desc = f"{unit.family.name} {desc}".rstrip()
    lines = [
        f"hwsim simulate: {rep.model} compressed {rep.compress} on {rep.accel.name}: {desc}",
        "",
        "Per layer, one inference (energy in pJ per inventory component; SRAM/DRAM in bytes):",
    ]
    comps = [c for c in (rep.layers[0].energy_pj if rep.layers else {}) if c != "leakage"]
    idle = rep.idle_slots > 0
    lines += _table(
        [("layer", 10, "<"), ("shape", 16, "<"), ("format", 8, "<"), ("MACs", 8, ">"), ("cycles", 8, ">"),
         ("stalls", 7, ">"), ("util", 6, ">"), *((("idle", 9, ">"), ("idle pJ", 8, ">")) if idle else ()),
         ("SRAM B", 8, ">"), ("DRAM B", 8, ">"), *((c, 12, ">") for c in comps), ("total pJ", 10, ">")],
        [[lr.name, lr.shape, lr.weight_format, lr.macs, lr.cycles, lr.stall_cycles, f"{lr.utilization:.3f}",
          *((lr.idle_slots, f"{lr.idle_pj:.1f}") if idle else ()),
          lr.sram_bytes, lr.dram_bytes, *(f"{lr.energy_pj.get(c, 0.0):.1f}" for c in comps), f"{lr.total_pj:.1f}"]
         for lr in rep.layers])
    lines += rep.notes
    lines += [
        "",
        "Totals (one inference):",
        f"  latency          {rep.cycles:,} cycles = {rep.latency_us:.2f} us at {cfg.clock_mhz:.6g} MHz",
        *_clock_lines(rep),
        f"  throughput       {rep.inferences_per_s:,.0f} inferences/s (layers run back to back, "
        f"{_batch_text(rep)})",
        f"  MACs             {rep.macs:,}" + _idle_text(rep),
        f"  energy           {rep.energy_pj / 1e6:.4f} uJ per inference ({rep.energy_pj:,.0f} pJ; analytic: action "
        "counts x the cost tables' per-action energies, independent of the clock)",
        f"  efficiency       {rep.tops_per_w:.3f} TOPS/W (2 ops per MAC)",
        f"  area             {rep.area_mm2:.4f} mm^2 (analytic, every inventory component; 'hwsim cost "
        f"{unit.family.name}' lists them)",
        f"  cost source      {'; '.join(rep.cost_notes)} (run 'hwsim cost' for every entry and its citation)",
        *_memory_lines(rep),
        "",
        f"Accuracy on {rep.test_images} digits test images:",
        f"  float model                       {100 * rep.accuracy_float:6.2f} %",
        f"  compressed, bit-exact reference   {100 * rep.accuracy_reference:6.2f} %",
        f"  compressed, cycle-level simulator {100 * rep.accuracy_simulated:6.2f} %",
        f"  simulator == reference            "
        f"{'yes, every logit bit-exact' if rep.simulated_equals_reference else 'NO'}"
        f" ({rep.outputs_compared:,} layer outputs computed on the unit)",
        f"(wall time {rep.wall_seconds:.2f} s)",
    ]
    return "\n".join(lines)


def _batch_text(rep: SimReport) -> str:
    if rep.batch == 1 or not rep.memory:  # without a global buffer a batch changes nothing (a note says so)
        return "batch 1"
    return f"batch of {rep.batch:,}: per inference, the batch's mean"


def _idle_text(rep: SimReport) -> str:
    """The idle work slots beside the real MACs (utilization counts real MACs only)."""
    if not rep.idle_slots:
        return ""
    share = rep.idle_slots / (rep.idle_slots + rep.macs)
    return (f" real; {rep.idle_slots:,} idle slots ({100 * share:.1f} % of the slots the array passed: padding "
            f"lanes of edge tiles), priced {rep.idle_pj:,.1f} pJ = {100 * rep.idle_pj / rep.energy_pj:.2g} % of "
            "the energy (columns 'idle', 'idle pJ'; see the unit's gating)")


def _memory_lines(rep: SimReport) -> list[str]:
    """The memory-system plan of each unit with a global buffer (where each tensor lives, DRAM bytes and
    their causes, DRAM vs unit cycles)."""
    from hwsim.memory import format_plan

    out = []
    for lab, mp in rep.memory:
        lines = format_plan(mp, {lr.name: lr.unit_cycles for lr in rep.layers if lr.unit == lab})
        out += ["", f"{lab}: {lines[0]}", *lines[1:]]
    return out


def _clock_lines(rep: SimReport) -> list[str]:
    """Where the clock comes from, when it is not the config's (``--clock-mhz``, an FPGA's Fmax)."""
    if not rep.fpga and not any("--clock-mhz" in n for n in rep.clock_notes):
        return []
    return [f"  clock            {n}" for n in rep.clock_notes]


def _format_multi_unit(rep: SimReport) -> str:
    """The report of an accelerator with several units: a unit column and a per-unit summary."""
    clocks = sorted({u.config.clock_mhz for u in rep.accel.units})
    clock = f"at {clocks[0]:.6g} MHz" if len(clocks) == 1 else "(each unit at its own clock)"
    lines = [f"hwsim simulate: {rep.model} compressed {rep.compress} on {rep.accel.name} ({len(rep.units)} units):"]
    lines += [f"  {ur.unit:<12} {ur.description}" for ur in rep.units]
    lines += ["", "Per layer, one inference (energy in pJ; SRAM/DRAM in bytes):"]
    idle = rep.idle_slots > 0
    lines += _table(
        [("layer", 10, "<"), ("unit", 12, "<"), ("m x k x n", 16, "<"), ("format", 8, "<"), ("MACs", 8, ">"),
         ("cycles", 8, ">"), ("stalls", 7, ">"), ("util", 6, ">"),
         *((("idle", 9, ">"), ("idle pJ", 8, ">")) if idle else ()), ("SRAM B", 8, ">"), ("DRAM B", 8, ">"),
         ("total pJ", 12, ">")],
        [[lr.name, lr.unit, lr.shape, lr.weight_format, lr.macs, lr.cycles, lr.stall_cycles,
          f"{lr.utilization:.3f}", *((lr.idle_slots, f"{lr.idle_pj:.1f}") if idle else ()),
          lr.sram_bytes, lr.dram_bytes, f"{lr.total_pj:.1f}"] for lr in rep.layers])
    lines += rep.notes
    lines += ["", "Per unit, one inference:"]
    hdr = (f"{'unit':<12} {'layers':>6} {'MACs':>8} {'cycles':>8} {'% time':>7} {'stalls':>7} {'energy pJ':>12} "
           f"{'% energy':>8} {'area mm^2':>10}")
    lines += [hdr, "-" * len(hdr)]
    for ur in rep.units:
        lines.append(f"{ur.unit:<12} {len(ur.layers):>6} {ur.macs:>8} {ur.cycles:>8} "
                     f"{100 * ur.cycles / max(rep.cycles, 1):>6.1f}% {ur.stall_cycles:>7} {ur.energy_pj:>12.1f} "
                     f"{100 * ur.energy_pj / rep.energy_pj if rep.energy_pj else 0.0:>7.1f}% {ur.area_mm2:>10.4f}")
    lines.append("Energy per inventory component (pJ, one inference):")
    for ur in rep.units:
        parts: dict[str, float] = {}
        for lr in rep.layers:
            if lr.unit == ur.unit:
                for k, v in lr.energy_pj.items():
                    parts[k] = parts.get(k, 0.0) + v
        top = sorted(((v, k) for k, v in parts.items() if k != "leakage"), reverse=True)
        lines.append(f"  {ur.unit:<12} " + (", ".join(f"{k} {v:,.1f}" for v, k in top) or "(no layers)"))
    lines += [
        "",
        "Totals (one inference):",
        f"  latency          {rep.cycles:,} cycles = {rep.latency_us:.2f} us {clock}",
        *_clock_lines(rep),
        f"  throughput       {rep.inferences_per_s:,.0f} inferences/s (layers run back to back, "
        f"{_batch_text(rep)})",
        f"  MACs             {rep.macs:,}" + _idle_text(rep),
        f"  energy           {rep.energy_pj / 1e6:.4f} uJ per inference ({rep.energy_pj:,.0f} pJ; analytic: action "
        "counts x the cost tables' per-action energies, independent of the clock)",
        f"  efficiency       {rep.tops_per_w:.3f} TOPS/W (2 ops per MAC)",
        f"  area             {rep.area_mm2:.4f} mm^2 (analytic, every unit's inventory; 'hwsim cost FAMILY' lists "
        "them)",
        f"  cost source      {'; '.join(rep.cost_notes)} (run 'hwsim cost' for every entry and its citation)",
        *_memory_lines(rep),
        "",
        f"Accuracy on {rep.test_images} digits test images:",
        f"  float model                       {100 * rep.accuracy_float:6.2f} %",
        f"  compressed, bit-exact reference   {100 * rep.accuracy_reference:6.2f} %",
        f"  compressed, cycle-level simulator {100 * rep.accuracy_simulated:6.2f} %",
        f"  simulator == reference            "
        f"{'yes, every logit bit-exact' if rep.simulated_equals_reference else 'NO'}"
        f" ({rep.outputs_compared:,} layer outputs computed on the units)",
        f"(wall time {rep.wall_seconds:.2f} s)",
    ]
    return "\n".join(lines)
