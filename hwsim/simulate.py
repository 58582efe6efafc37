"""Simulate a compressed model on an accelerator: accuracy, cycles, energy and area in one report.

Every conv / linear layer is lowered to GEMMs (``CompressedModel.gemm_ops``) and run through the
cycle-level MAC-array model, bit-exactly, on the whole digits test set; the per-layer timing, actions and
energy are those of ONE inference (batch 1). Pooling, ReLU, sign and residual adds run outside the array
(host / vector unit) and are not timed.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.config import MacArrayConfig
from hwsim.cost import CostModel
from hwsim.errors import HwsimError
from hwsim.mac_array import predict_gemm, simulate_gemm
from hwsim.models import mac_array as ref

__all__ = ["PRESETS", "LayerReport", "SimReport", "format_report", "resolve_accel", "simulate"]

_PRESET_RE = re.compile(r"^mac-array-(\d+)x(\d+)-(ws|os|is)(?:-(int8|int4|int2|ternary|binary|pow2))?$")
#: Named accelerators; any ``mac-array-RxC-DF[-FORMAT]`` name works (FORMAT defaults to int8).
PRESETS = ("mac-array-8x8-ws", "mac-array-8x8-os", "mac-array-16x16-ws", "mac-array-32x32-ws",
           "mac-array-8x8-ws-int4", "mac-array-8x8-ws-binary")


def resolve_accel(accel: str | MacArrayConfig) -> MacArrayConfig:
    """A :class:`MacArrayConfig` from a preset name, a YAML/JSON file of its fields, or a config object."""
    if isinstance(accel, MacArrayConfig):
        return accel
    m = _PRESET_RE.match(str(accel))
    if m:
        rows, cols, df, fmt = int(m[1]), int(m[2]), m[3], m[4] or "int8"
        return MacArrayConfig(rows=rows, cols=cols, dataflow=df, weight_format=fmt)
    p = Path(str(accel))
    if p.suffix.lower() in (".yaml", ".yml", ".json"):
        if not p.is_file():
            raise HwsimError(f"--accel={accel!r} is not allowed: no such file")
        try:
            if p.suffix.lower() == ".json":
                data = json.loads(p.read_text())
            else:
                import yaml
                data = yaml.safe_load(p.read_text())
        except Exception as e:  # noqa: BLE001 - one-line error for any parse failure
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise HwsimError(f"--accel={accel!r} is not valid YAML/JSON: {first}") from None
        if isinstance(data, dict) and "mac_array" in data:
            data = data["mac_array"]
        return MacArrayConfig.from_dict(data)
    raise HwsimError(f"--accel={accel!r} is not allowed: expected a preset like {', '.join(PRESETS)} "
                     "(mac-array-RxC-ws|os|is[-format]) or a .yaml/.json config file")


def _load_model(model: str):
    from hwsim.models import zoo
    from hwsim.models.graph import load_model

    if model in zoo.list_models():
        return zoo.load(model)
    p = Path(model)
    if p.suffix == ".npz" and p.is_file():
        return load_model(p)
    raise HwsimError(f"model={model!r} is not allowed: expected one of {', '.join(zoo.list_models())} "
                     "or a model .npz file")


def _check_runs_on(cfg: MacArrayConfig, layer_name: str, fmt: str, act_bits: int) -> None:
    """The layer's weight values must be codes of the array's PE format and its activations must fit."""
    pe_values = set(ref.weight_values(cfg.weight_format).tolist())
    layer_values = set(ref.weight_values(fmt).tolist())
    fits_acts = act_bits <= cfg.act_bits or (act_bits == 1 and cfg.weight_format == "binary")
    if not layer_values <= pe_values or not fits_acts:
        raise HwsimError(
            f"layer {layer_name!r} ({fmt} weights, {act_bits}-bit activations) is not allowed on "
            f"{cfg.weight_format} PEs with {cfg.act_bits}-bit activations: choose an accelerator whose PE "
            "format holds these weights (e.g. mac-array-8x8-ws for int8/int4/int2/ternary/pow2)")


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
    accel: MacArrayConfig
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
        d = dataclasses.asdict(self)
        d["accel"] = self.accel.to_dict()
        return d


class _Progress:
    """A one-line progress bar on stderr, shown once a run has taken more than a second."""

    def __init__(self, total: int, label: str, enabled: bool = True):
        self.total, self.label, self.done = total, label, 0
        self.t0 = time.perf_counter()
        self.enabled = enabled and sys.stderr.isatty()
        self.shown = False

    def step(self, what: str = "") -> None:
        self.done += 1
        if not self.enabled or time.perf_counter() - self.t0 < 1.0:
            return
        self.shown = True
        frac = self.done / max(self.total, 1)
        bar = "#" * int(30 * frac)
        print(f"\r{self.label} [{bar:<30}] {self.done}/{self.total} {what[:24]:<24}", end="", file=sys.stderr)

    def close(self) -> None:
        if self.shown:
            print(file=sys.stderr)


def simulate(model: str = "digits-cnn", accel: str | MacArrayConfig = "mac-array-8x8-ws",
             compress: str = "int8", node_nm: int = 45, dram: str = "lpddr4", progress: bool = True) -> SimReport:
    """Compress ``model``, run it on ``accel`` bit-exactly over the digits test set, and price it."""
    from hwsim.models import compress as comp
    from hwsim.models import zoo

    t_start = time.perf_counter()
    cfg = resolve_accel(accel)
    comp.parse_compress_spec(compress)
    fmodel = _load_model(model)
    cost = CostModel(node_nm=node_nm, dram=dram)
    x_tr, _, x_te, y_te = zoo.load_digits_split()
    cm = comp.compress(fmodel, compress, x_tr[:512], cfg=cfg)
    ops = cm.gemm_ops(batch=1)
    for op in ops:
        _check_runs_on(cfg, op.layer, op.weight_format, op.act_bits)

    bar = _Progress(len(ops) + len(cm.compute_layers()), "simulating", progress)
    # Per-inference timing, actions and energy, GEMM by GEMM (batch 1).
    rep = SimReport(model=model, compress=compress, accel=cfg, test_images=len(y_te))
    by_layer: dict[str, LayerReport] = {}
    for op in ops:
        lcfg = cfg.replace(weight_format=op.weight_format, act_bits=op.act_bits)
        st = predict_gemm(lcfg, op.m, op.k, op.n, name=op.layer)
        # Price on the PE format physically present (an int8 PE running int4 weights costs an int8 MAC).
        e = cost.energy(cfg, st.actions, st.cycles).components()
        a = st.actions
        sram = (a.input_sram_read_bytes + a.input_sram_write_bytes + a.weight_sram_read_bytes
                + a.weight_sram_write_bytes + a.output_sram_read_bytes + a.output_sram_write_bytes)
        lr = by_layer.get(op.layer)
        if lr is None:
            lr = by_layer[op.layer] = LayerReport(op.layer, "", op.weight_format, 0, 0, 0, 0.0, 0, 0, {})
        lr.macs += st.macs
        lr.cycles += st.cycles
        lr.stall_cycles += st.stall_cycles
        lr.sram_bytes += sram
        lr.dram_bytes += a.dram_read_bytes + a.dram_write_bytes
        for k, v in e.items():
            lr.energy_pj[k] = lr.energy_pj.get(k, 0.0) + v
        lr.shape = f"{op.m}x{op.k}x{op.n}" + (f" x{op.group + 1}g" if op.group else "")
        bar.step(op.layer)
    for lr in by_layer.values():
        lr.utilization = lr.macs / (cfg.rows * cfg.cols * lr.cycles)
    rep.layers = list(by_layer.values())
    rep.cycles = sum(lr.cycles for lr in rep.layers)
    rep.macs = sum(lr.macs for lr in rep.layers)
    rep.latency_us = rep.cycles * cfg.ns_per_cycle / 1000.0
    rep.inferences_per_s = 1e6 / rep.latency_us
    rep.energy_pj = sum(lr.total_pj for lr in rep.layers)
    rep.tops_per_w = 2 * rep.macs / rep.energy_pj  # ops per pJ == TOPS/W
    area = cost.area(cfg)
    rep.area_mm2 = area.total_mm2
    rep.cost_notes = [f"energy and area: hwsim.cost tables v{area.table_version}, {node_nm} nm, DRAM {dram}"]

    # Accuracy: float, compressed model in the reference, compressed model through the simulator.
    rep.accuracy_float = float(np.mean(fmodel.forward_float(x_te).argmax(axis=1) == y_te))
    ref_logits = cm.forward_int(x_te, cfg=cfg)
    compared = [0]

    def sim_gemm(a, w, lcfg, shift, relu, bias=None):
        out, _ = simulate_gemm(lcfg, a, w, shift=shift, relu=relu, bias=bias)
        compared[0] += out.size
        return out

    sim_logits = cm.forward_int(x_te, gemm_fn=sim_gemm, cfg=cfg)
    bar.step("accuracy")
    bar.close()
    rep.accuracy_reference = float(np.mean(ref_logits.argmax(axis=1) == y_te))
    rep.accuracy_simulated = float(np.mean(sim_logits.argmax(axis=1) == y_te))
    rep.simulated_equals_reference = bool(np.array_equal(ref_logits, sim_logits))
    rep.outputs_compared = compared[0]
    rep.wall_seconds = time.perf_counter() - t_start
    return rep


def format_report(rep: SimReport) -> str:
    """The human-readable report printed by ``hwsim simulate``."""
    cfg = rep.accel
    lines = [
        f"hwsim simulate: {rep.model} compressed {rep.compress} on mac_array {cfg.rows}x{cfg.cols} "
        f"{cfg.dataflow.upper()} ({cfg.weight_format} PEs, {cfg.acc_bits}-bit acc, {cfg.clock_mhz:g} MHz, "
        f"DRAM {cfg.dram_bytes_per_cycle:g} B/cycle)",
        "",
        "Per layer, one inference (energy in pJ; SRAM/DRAM in bytes):",
    ]
    comps = ["pe_mac", "pe_registers", "input_sram", "weight_sram", "output_sram", "dram", "requant"]
    hdr = (f"{'layer':<10} {'gemm m x k x n':<16} {'format':<8} {'MACs':>8} {'cycles':>8} {'stalls':>7} {'util':>6} "
           f"{'SRAM B':>8} {'DRAM B':>8} " + " ".join(f"{c:>12}" for c in comps) + f" {'total pJ':>10}")
    lines += [hdr, "-" * len(hdr)]
    for lr in rep.layers:
        lines.append(
            f"{lr.name:<10} {lr.shape:<16} {lr.weight_format:<8} {lr.macs:>8} {lr.cycles:>8} {lr.stall_cycles:>7} "
            f"{lr.utilization:>6.3f} {lr.sram_bytes:>8} {lr.dram_bytes:>8} "
            + " ".join(f"{lr.energy_pj.get(c, 0.0):>12.1f}" for c in comps) + f" {lr.total_pj:>10.1f}")
    lines += [
        "",
        "Totals (one inference):",
        f"  latency          {rep.cycles:,} cycles = {rep.latency_us:.2f} us at {cfg.clock_mhz:g} MHz",
        f"  throughput       {rep.inferences_per_s:,.0f} inferences/s (layers run back to back, batch 1)",
        f"  MACs             {rep.macs:,}",
        f"  energy           {rep.energy_pj / 1e6:.4f} uJ per inference ({rep.energy_pj:,.0f} pJ)",
        f"  efficiency       {rep.tops_per_w:.3f} TOPS/W (2 ops per MAC)",
        f"  area             {rep.area_mm2:.4f} mm^2 (analytic, PEs + SRAMs + requantizers + controller)",
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
