"""Simulate a compressed model on an accelerator: accuracy, cycles, energy and area in one report.

Every conv / linear layer is lowered to GEMMs (``CompressedModel.gemm_ops``) and run through the
cycle-level MAC-array model, bit-exactly, on the whole digits test set; the per-layer timing, actions and
energy are those of ONE inference (batch 1). Pooling, ReLU, sign and residual adds run outside the array
(host / vector unit) and are not timed.

Layers that are not lowered to GEMMs but run layer by layer on another unit of the accelerator (a family
with a ``run_layer`` entry point, e.g. ``deform_conv2d`` on a ``deform-unit`` listed beside the MAC array in
the accelerator YAML) run there inside the same compressed model: the reference is the unit's bit-exact spec
(with that unit's accumulator, overflow and rounding), the simulated values come from its cycle-level model,
and their cycles, stalls and energy (priced on that unit's inventory) are the mean per inference over the
test images, since they depend on the data (a deformable layer's offsets). The report then has a unit
column and a per-unit summary (cycles and energy of each unit; they sum to the totals).

A model whose layers route to a family with a ``simulate_model`` entry point (layers that are not lowered
to GEMMs, e.g. ``lstm`` on the ``lstm-engine``) is run by that entry point instead: it quantizes the whole
model for the unit and returns the reference and simulated logits and per-layer statistics, which are
priced and reported the same way.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.cost import TABLE_VERSION, CostModel
from hwsim.errors import HwsimError
from hwsim.families import Accelerator, Unit, resolve_accel

__all__ = ["LayerReport", "SimReport", "UnitReport", "format_report", "resolve_accel", "simulate"]


def _load_model(model: str):
    from hwsim.models import deform_models, lstm_models, zoo
    from hwsim.models.graph import load_model

    if model in zoo.list_models():
        return zoo.load(model)
    if model in lstm_models.list_models():
        return lstm_models.load_graph(model)
    if model in deform_models.list_models():
        return deform_models.load(model)
    p = Path(model)
    if p.suffix == ".npz" and p.is_file():
        return load_model(p)
    if p.suffix == ".onnx":
        from hwsim.models.onnx_import import load_onnx

        imp = load_onnx(p)
        imp.model.meta["onnx_import"] = imp  # its quantization annotations, for compress="onnx"
        return imp.model
    names = zoo.list_models() + lstm_models.list_models() + deform_models.list_models()
    raise HwsimError(f"model={model!r} is not allowed: expected one of {', '.join(names)} "
                     "or a model .npz or .onnx file")


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

    def as_dict(self) -> dict:
        d = dataclasses.asdict(dataclasses.replace(self, accel=None))
        d["accel"] = self.accel.as_dict()
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


def _base_cfg(acc: Accelerator, fmodel):
    """The config whose arithmetic (acc_bits, overflow, rounding) the compression plans with: the unit of the
    first conv / linear layer (the first unit if there is none)."""
    from hwsim.models.graph import COMPUTE_KINDS

    for la in fmodel.workload_layers():
        if la.kind in COMPUTE_KINDS:
            return acc.unit_for(la.kind, la.name).config
    return acc.units[0].config


def _gemm_unit(acc: Accelerator, cm) -> tuple[int, Unit]:
    """The unit that runs the model's GEMM-lowered layers (every compute layer must route to one)."""
    chosen: dict[int, list[str]] = {}
    for layer in cm.compute_layers():
        unit = acc.unit_for(layer.kind, layer.name)
        chosen.setdefault(acc.units.index(unit), []).append(layer.name)
    if len(chosen) != 1:
        raise HwsimError(f"--accel={acc.name!r} is not allowed: the model's layers route to "
                         f"{len(chosen)} units ({'; '.join(f'unit {i}: ' + ', '.join(n) for i, n in chosen.items())})"
                         "; running one model's GEMM layers on several units is not modelled")
    i = next(iter(chosen))
    return i, acc.units[i]


def _whole_model_unit(acc: Accelerator, fmodel) -> tuple[int, Unit] | None:
    """The unit whose family simulates the whole model (a ``simulate_model`` entry point), or None when
    the model's layers go to GEMM families; such a model must route every layer to that one unit."""
    used = {acc.units.index(acc.unit_for(la.kind, la.name)) for la in fmodel.workload_layers()}
    whole = sorted(i for i in used if acc.units[i].family.simulate_model is not None)
    if not whole:
        return None
    if len(used) != 1:
        raise HwsimError(f"--accel={acc.name!r} is not allowed: the model's layers route to {len(used)} units and "
                         f"{acc.units[whole[0]].family.name} runs whole models only; expected every layer on one unit")
    return whole[0], acc.units[whole[0]]


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


def _simulate_whole_model(model, fmodel, acc, index, unit, compress, cost, t_start) -> SimReport:
    """``simulate`` through the unit's ``simulate_model`` entry point (see the module docstring)."""
    from hwsim.models import zoo

    fam, cfg = unit.family, unit.config
    x_tr, _, x_te, y_te = zoo.load_digits_split()
    run = fam.load("simulate_model")(cfg, fmodel, x_te, compress=compress, calib=x_tr[:256])
    inv = fam.load("inventory")(cfg)
    rep = SimReport(model=model, compress=run.compress, accel=acc, test_images=len(y_te), _unit_index=index)
    for ml in run.layers:
        e = cost.energy(inv, ml.actions, ml.cycles).components()
        rep.layers.append(LayerReport(ml.name, ml.shape, ml.weight_format, ml.macs, ml.cycles, ml.stall_cycles,
                                      ml.utilization, ml.sram_bytes, ml.dram_bytes, e, unit_labels(acc)[index]))
    _totals(rep, cfg, acc, cost)
    rep.accuracy_float = float(np.mean(fmodel.forward_float(x_te).argmax(axis=1) == y_te))
    ref_logits, sim_logits = np.asarray(run.logits_reference), np.asarray(run.logits_simulated)
    rep.accuracy_reference = float(np.mean(ref_logits.argmax(axis=1) == y_te))
    rep.accuracy_simulated = float(np.mean(sim_logits.argmax(axis=1) == y_te))
    rep.simulated_equals_reference = bool(np.array_equal(ref_logits, sim_logits))
    rep.outputs_compared = run.outputs_compared
    rep.wall_seconds = time.perf_counter() - t_start
    return rep


def simulate(model: str = "digits-cnn", accel="mac-array-8x8-ws", compress: str | None = None,
             node_nm: int = 45, dram: str = "lpddr4", progress: bool = True) -> SimReport:
    """Compress ``model``, run it on ``accel`` bit-exactly over the digits test set, and price it.

    ``accel`` is a preset name of any registered family, a YAML/JSON file, a family config or an
    :class:`hwsim.families.Accelerator`; each layer runs on the unit whose family runs its kind.
    ``model`` may be an ``.onnx`` graph; ``compress="onnx"`` runs a quantized graph with its own weight
    codes and power-of-two scales (:func:`hwsim.models.onnx_import.to_compressed`), and ``None`` does that
    when the graph is quantized and uses ``"int8"`` otherwise. A whole-model family (e.g. ``lstm-engine``)
    takes None or its own format (``int16`` on an int16 engine).
    """
    from hwsim.models import compress as comp
    from hwsim.models import zoo

    t_start = time.perf_counter()
    acc = resolve_accel(accel)
    if compress not in (None, "onnx"):
        comp.parse_compress_spec(compress)
    fmodel = _load_model(model)
    # Route before compressing: a layer no unit runs fails at once (in _whole_model_unit).
    whole = _whole_model_unit(acc, fmodel)
    if whole is not None:
        return _simulate_whole_model(model, fmodel, acc, *whole, compress, CostModel(node_nm=node_nm, dram=dram),
                                     t_start)
    onnx_imp = fmodel.meta.get("onnx_import")
    if compress is None:  # a quantized ONNX graph runs with its own annotations, anything else int8
        compress = "onnx" if onnx_imp is not None and onnx_imp.quantized else "int8"
    cost = CostModel(node_nm=node_nm, dram=dram)
    x_tr, y_tr, x_te, y_te = zoo.load_digits_split()
    if compress == "onnx":
        from hwsim.models.onnx_import import to_compressed

        if onnx_imp is None or not onnx_imp.quantized:
            raise HwsimError(f"--compress='onnx' is not allowed for model={model!r}: expected an ONNX graph with "
                             "QDQ, QOperator or QONNX quantizers")
        cm = to_compressed(onnx_imp, _base_cfg(acc, fmodel))
        compress = f"onnx-{onnx_imp.style}"
    else:
        # '+ft' specs use a committed fine-tuned variant, or fine-tune on the training split.
        cm = comp.compress(fmodel, compress, x_tr[:512], cfg=_base_cfg(acc, fmodel), train_data=(x_tr, y_tr))
    index, unit = _gemm_unit(acc, cm)
    labels = unit_labels(acc)
    layer_units = _layer_units(acc, cm)
    fam, cfg = unit.family, unit.config
    predict, execute, check_op = fam.load("predict"), fam.load("execute"), fam.load("check_op")
    inv = fam.load("inventory")(cfg)
    ops = cm.gemm_ops(batch=1)
    for op in ops:
        check_op(cfg, op)

    bar = _progress_bar(len(ops) + len(cm.compute_layers()) + len(layer_units), "simulating", progress)
    # Per-inference timing, actions and energy, GEMM by GEMM (batch 1).
    rep = SimReport(model=model, compress=compress, accel=acc, test_images=len(y_te), _unit_index=index)
    by_layer: dict[str, LayerReport] = {}
    for op in ops:
        st = predict(cfg, op)
        # Priced on the inventory physically present (an int8 PE running int4 weights costs an int8 MAC).
        e = cost.energy(inv, st.actions, st.cycles).components()
        traffic = st.actions.as_dict()
        lr = by_layer.get(op.layer)
        if lr is None:
            lr = by_layer[op.layer] = LayerReport(op.layer, "", op.weight_format, 0, 0, 0, 0.0, 0, 0, {},
                                                  labels[index])
        lr.macs += st.macs
        lr.cycles += st.cycles
        lr.stall_cycles += st.stall_cycles
        lr.sram_bytes += sum(v for k, v in traffic.items() if "sram" in k and k.endswith("_bytes"))
        lr.dram_bytes += sum(v for k, v in traffic.items() if k.startswith("dram") and k.endswith("_bytes"))
        for k, v in e.items():
            lr.energy_pj[k] = lr.energy_pj.get(k, 0.0) + v
        lr.shape = f"{op.m}x{op.k}x{op.n}" + (f" x{op.group + 1}g" if op.group else "")
        bar.set_postfix_str(op.layer, refresh=False)
        bar.update()
    peak = getattr(cfg, "peak_macs_per_cycle", None)
    for lr in by_layer.values():
        lr.utilization = lr.macs / (peak * lr.cycles) if peak else float("nan")

    # Accuracy: float, compressed model in the reference, compressed model through the simulator.
    rep.accuracy_float = float(np.mean(fmodel.forward_float(x_te).argmax(axis=1) == y_te))

    def ref_layer(q, ins):  # the unit's bit-exact spec, with that unit's arithmetic
        return q.forward_int(ins, cfg=layer_units[q.name].config)

    ref_logits = cm.forward_int(x_te, cfg=cfg, layer_fn=ref_layer if layer_units else None)
    compared = [0]
    layer_stats: dict[str, list] = {}

    def sim_gemm(a, w, lcfg, shift, relu, bias=None):
        out, _ = execute(lcfg, a, w, shift=shift, relu=relu, bias=bias)
        compared[0] += out.size
        return out

    def sim_layer(q, ins):
        u = layer_units[q.name]
        out, stats = u.family.load("run_layer")(u.config, q, ins)
        compared[0] += np.asarray(out).size
        layer_stats[q.name] = stats
        bar.set_postfix_str(q.name, refresh=False)
        bar.update()
        return out

    sim_logits = cm.forward_int(x_te, gemm_fn=sim_gemm, cfg=cfg, layer_fn=sim_layer if layer_units else None)
    for q in cm.deform_layers():
        u = layer_units[q.name]
        by_layer[q.name] = _layer_report(q, u, labels[acc.units.index(u)], layer_stats[q.name], cost)
    rep.layers = [by_layer[q.name] for q in cm.layers if q.name in by_layer]
    _totals(rep, cfg, acc, cost)
    if layer_units:
        rep.notes.append(f"{', '.join(layer_units)}: cycles, stalls, traffic and energy depend on the data (the "
                         f"offsets); mean per inference over the {len(y_te)} test images (cycles "
                         + "; ".join(f"{n} {min(s.cycles for s in st)}..{max(s.cycles for s in st)}"
                                     for n, st in layer_stats.items()) + ")")
    bar.set_postfix_str("accuracy", refresh=False)
    bar.update()
    bar.close()
    rep.accuracy_reference = float(np.mean(ref_logits.argmax(axis=1) == y_te))
    rep.accuracy_simulated = float(np.mean(sim_logits.argmax(axis=1) == y_te))
    rep.simulated_equals_reference = bool(np.array_equal(ref_logits, sim_logits))
    rep.outputs_compared = compared[0]
    rep.wall_seconds = time.perf_counter() - t_start
    return rep


def _layer_units(acc: Accelerator, cm) -> dict[str, Unit]:
    """The unit of every layer of ``cm`` that runs layer by layer on a non-GEMM unit (``run_layer``), checked."""
    out = {}
    for q in cm.deform_layers():
        u = acc.unit_for(q.kind, q.name)
        if u.family.run_layer is None:
            raise HwsimError(f"layer {q.name!r} ({q.kind}) is not allowed on unit {u.family.name}: the family has "
                             "no run_layer entry point")
        u.family.load("check_op")(u.config, q)
        out[q.name] = u
    return out


def _mean(total: int, n: int) -> int:
    """``total / n`` rounded half up (a per-inference mean of integer counts)."""
    return (2 * total + n) // (2 * n)


def _layer_report(q, unit: Unit, label: str, stats: list, cost: CostModel) -> LayerReport:
    """The per-inference row of a layer run by ``run_layer``: means over the images of ``stats``."""
    n = len(stats)
    cfg = unit.config
    actions = stats[0].actions
    for st in stats[1:]:
        actions = actions + st.actions
    cycles = sum(st.cycles for st in stats)
    e = cost.energy(unit.family.load("inventory")(cfg), actions, cycles).components()
    o, cg, kh, kw = q.weight.shape
    _, ho, wo = q.out_shape
    macs = stats[0].macs
    mean_cycles = _mean(cycles, n)
    sram = sum(getattr(st, "sram_bytes", 0) for st in stats)
    peak = getattr(cfg, "peak_macs_per_cycle", None)
    return LayerReport(q.name, f"{ho * wo}x{cg * kh * kw}x{o} dcn", q.weight_format, macs, mean_cycles,
                       _mean(sum(st.stall_cycles for st in stats), n),
                       macs / (peak * mean_cycles) if peak else float("nan"), _mean(sram, n),
                       _mean(sum(st.dram_read_bytes + st.dram_write_bytes for st in stats), n),
                       {k: v / n for k, v in e.items()}, label)


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
    hdr = (f"{'layer':<10} {'gemm m x k x n':<16} {'format':<8} {'MACs':>8} {'cycles':>8} {'stalls':>7} {'util':>6} "
           f"{'SRAM B':>8} {'DRAM B':>8} " + " ".join(f"{c:>{max(12, len(c))}}" for c in comps) + f" {'total pJ':>10}")
    lines += [hdr, "-" * len(hdr)]
    for lr in rep.layers:
        lines.append(
            f"{lr.name:<10} {lr.shape:<16} {lr.weight_format:<8} {lr.macs:>8} {lr.cycles:>8} {lr.stall_cycles:>7} "
            f"{lr.utilization:>6.3f} {lr.sram_bytes:>8} {lr.dram_bytes:>8} "
            + " ".join(f"{lr.energy_pj.get(c, 0.0):>{max(12, len(c))}.1f}" for c in comps) + f" {lr.total_pj:>10.1f}")
    lines += [
        "",
        "Totals (one inference):",
        f"  latency          {rep.cycles:,} cycles = {rep.latency_us:.2f} us at {cfg.clock_mhz:g} MHz",
        f"  throughput       {rep.inferences_per_s:,.0f} inferences/s (layers run back to back, batch 1)",
        f"  MACs             {rep.macs:,}",
        f"  energy           {rep.energy_pj / 1e6:.4f} uJ per inference ({rep.energy_pj:,.0f} pJ)",
        f"  efficiency       {rep.tops_per_w:.3f} TOPS/W (2 ops per MAC)",
        f"  area             {rep.area_mm2:.4f} mm^2 (analytic, every inventory component; 'hwsim cost "
        f"{unit.family.name}' lists them)",
        f"  cost source      {'; '.join(rep.cost_notes)} (run 'hwsim cost' for every entry and its citation)",
        "",
        f"Accuracy on {rep.test_images} digits test images:",
        f"  float model                       {100 * rep.accuracy_float:6.2f} %",
        f"  compressed, bit-exact reference   {100 * rep.accuracy_reference:6.2f} %",
        f"  compressed, cycle-level simulator {100 * rep.accuracy_simulated:6.2f} %",
        f"  simulator == reference            "
        f"{'yes, every logit bit-exact' if rep.simulated_equals_reference else 'NO'}"
        f" ({rep.outputs_compared:,} GEMM outputs computed)",
        f"(wall time {rep.wall_seconds:.2f} s)",
    ]
    return "\n".join(lines)


def _format_multi_unit(rep: SimReport) -> str:
    """The report of an accelerator with several units: a unit column and a per-unit summary."""
    clocks = sorted({u.config.clock_mhz for u in rep.accel.units})
    clock = f"at {clocks[0]:g} MHz" if len(clocks) == 1 else "(each unit at its own clock)"
    lines = [f"hwsim simulate: {rep.model} compressed {rep.compress} on {rep.accel.name} ({len(rep.units)} units):"]
    lines += [f"  {ur.unit:<12} {ur.description}" for ur in rep.units]
    lines += ["", "Per layer, one inference (energy in pJ; SRAM/DRAM in bytes):"]
    hdr = (f"{'layer':<10} {'unit':<12} {'m x k x n':<16} {'format':<8} {'MACs':>8} {'cycles':>8} {'stalls':>7} "
           f"{'util':>6} {'SRAM B':>8} {'DRAM B':>8} {'total pJ':>12}")
    lines += [hdr, "-" * len(hdr)]
    for lr in rep.layers:
        lines.append(f"{lr.name:<10} {lr.unit:<12} {lr.shape:<16} {lr.weight_format:<8} {lr.macs:>8} {lr.cycles:>8} "
                     f"{lr.stall_cycles:>7} {lr.utilization:>6.3f} {lr.sram_bytes:>8} {lr.dram_bytes:>8} "
                     f"{lr.total_pj:>12.1f}")
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
        f"  throughput       {rep.inferences_per_s:,.0f} inferences/s (layers run back to back, batch 1)",
        f"  MACs             {rep.macs:,}",
        f"  energy           {rep.energy_pj / 1e6:.4f} uJ per inference ({rep.energy_pj:,.0f} pJ)",
        f"  efficiency       {rep.tops_per_w:.3f} TOPS/W (2 ops per MAC)",
        f"  area             {rep.area_mm2:.4f} mm^2 (analytic, every unit's inventory; 'hwsim cost FAMILY' lists "
        "them)",
        f"  cost source      {'; '.join(rep.cost_notes)} (run 'hwsim cost' for every entry and its citation)",
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
