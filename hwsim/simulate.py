"""Simulate a compressed model on an accelerator: accuracy, cycles, energy and area in one report.

Every conv / linear layer is lowered to GEMMs (``CompressedModel.gemm_ops``) and run through the
cycle-level MAC-array model, bit-exactly, on the whole digits test set; the per-layer timing, actions and
energy are those of ONE inference (batch 1). Pooling, ReLU, sign and residual adds run outside the array
(host / vector unit) and are not timed.

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

__all__ = ["LayerReport", "SimReport", "format_report", "resolve_accel", "simulate"]


def _load_model(model: str):
    from hwsim.models import lstm_models, zoo
    from hwsim.models.graph import load_model

    if model in zoo.list_models():
        return zoo.load(model)
    if model in lstm_models.list_models():
        return lstm_models.load_graph(model)
    p = Path(model)
    if p.suffix == ".npz" and p.is_file():
        return load_model(p)
    if p.suffix == ".onnx":
        from hwsim.models.onnx_import import load_onnx

        imp = load_onnx(p)
        imp.model.meta["onnx_import"] = imp  # its quantization annotations, for compress="onnx"
        return imp.model
    names = zoo.list_models() + lstm_models.list_models()
    raise HwsimError(f"model={model!r} is not allowed: expected one of {', '.join(names)} "
                     "or a model .npz or .onnx file")


@dataclass
class LayerReport:
    """One GEMM-bearing layer of one inference."""

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

    @property
    def total_pj(self) -> float:
        return sum(self.energy_pj.values())


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
    """Fill the report's totals from its per-layer rows (one inference, layers back to back)."""
    rep.cycles = sum(lr.cycles for lr in rep.layers)
    rep.macs = sum(lr.macs for lr in rep.layers)
    rep.latency_us = rep.cycles * cfg.ns_per_cycle / 1000.0
    rep.inferences_per_s = 1e6 / rep.latency_us
    rep.energy_pj = sum(lr.total_pj for lr in rep.layers)
    rep.tops_per_w = 2 * rep.macs / rep.energy_pj  # ops per pJ == TOPS/W
    rep.area_mm2 = math.fsum(cost.area(u.family.load("inventory")(u.config)).total_mm2 for u in acc.units)
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
                                      ml.utilization, ml.sram_bytes, ml.dram_bytes, e))
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
        cm = to_compressed(onnx_imp, acc.units[0].config)
        compress = f"onnx-{onnx_imp.style}"
    else:
        # '+ft' specs use a committed fine-tuned variant, or fine-tune on the training split.
        cm = comp.compress(fmodel, compress, x_tr[:512], cfg=acc.units[0].config, train_data=(x_tr, y_tr))
    index, unit = _gemm_unit(acc, cm)
    fam, cfg = unit.family, unit.config
    predict, execute, check_op = fam.load("predict"), fam.load("execute"), fam.load("check_op")
    inv = fam.load("inventory")(cfg)
    ops = cm.gemm_ops(batch=1)
    for op in ops:
        check_op(cfg, op)

    bar = _progress_bar(len(ops) + len(cm.compute_layers()), "simulating", progress)
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
            lr = by_layer[op.layer] = LayerReport(op.layer, "", op.weight_format, 0, 0, 0, 0.0, 0, 0, {})
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
    rep.layers = list(by_layer.values())
    _totals(rep, cfg, acc, cost)

    # Accuracy: float, compressed model in the reference, compressed model through the simulator.
    rep.accuracy_float = float(np.mean(fmodel.forward_float(x_te).argmax(axis=1) == y_te))
    ref_logits = cm.forward_int(x_te, cfg=cfg)
    compared = [0]

    def sim_gemm(a, w, lcfg, shift, relu, bias=None):
        out, _ = execute(lcfg, a, w, shift=shift, relu=relu, bias=bias)
        compared[0] += out.size
        return out

    sim_logits = cm.forward_int(x_te, gemm_fn=sim_gemm, cfg=cfg)
    bar.set_postfix_str("accuracy", refresh=False)
    bar.update()
    bar.close()
    rep.accuracy_reference = float(np.mean(ref_logits.argmax(axis=1) == y_te))
    rep.accuracy_simulated = float(np.mean(sim_logits.argmax(axis=1) == y_te))
    rep.simulated_equals_reference = bool(np.array_equal(ref_logits, sim_logits))
    rep.outputs_compared = compared[0]
    rep.wall_seconds = time.perf_counter() - t_start
    return rep


def format_report(rep: SimReport) -> str:
    """The human-readable report printed by ``hwsim simulate``."""
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
