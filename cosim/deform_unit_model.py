"""The deformable unit's ``cosim_run`` (:class:`hwsim.families.Family`): one ``deform_conv2d`` layer of a
compressed model through the deformable unit's RTL (:class:`hwsim.rtl.deform_unit.DeformUnitTop` in the
harness of :mod:`hwsim.cosim.deform_unit_harness`) under Verilator, for the model co-simulation
(:mod:`hwsim.cosim.model_cosim`).

Every image of the batch is one RTL run of the layer (its feature map, the raw Q-format offsets the model's
offset conv produced for it, the layer's weights, shift and ReLU), all in one simulator run; the RTL's
outputs are the layer's values. The offset conv and every other conv / linear layer run on the MAC array
unit of the same accelerator, through its own ``cosim_run``.

The unit's counts depend on the offsets (:func:`hwsim.unit.mean_stats`), so each run carries as its
``expected`` Stats what the family's :func:`hwsim.deform_unit.run` gives for that run's image (the
statistics of :func:`hwsim.deform_unit.execute_layer` on the same feature map and offsets), and the model
co-simulation compares the run's busy cycles, stall cycles and every action count with them. The actions
the RTL top cannot count are counted here from the run (:attr:`~hwsim.cosim.model_cosim.RtlRun.outside`):
the offsets written into the unit's offset buffer (``offset_buffer.write``: the raw offsets handed to the
harness, which stands in for the MAC array that writes them), the unit's DRAM reads (``dram.read``: one
input word per line-buffer write, which the fill engine reads from the harness's DRAM stand-in, plus the
weights) and writes (``dram.write``: the real output values of the beats the harness captured). The testbench
(:func:`deform_unit_model_runs`, this module's cocotb test) drives the regression's driver
(:class:`hwsim.cosim.deform_unit_tb.DeformUnitTB`), checks each run as the regression does (outputs against
the fixed-point reference, cycles, stalls, bank-conflict cycles and every activity counter against
:func:`hwsim.deform_unit.predict_layer` on the same offsets) and saves the RTL's outputs to ``outputs.npz``.

Scope: the RTL's (:func:`hwsim.deform_unit.check_rtl`, :func:`hwsim.deform_unit.check_rtl_layer`): 3x3
layers, depthwise or full (e.g. ``digits-dcn``'s 8 -> 16 deformable conv), with or without bias, any number
of channel blocks and output groups up to ``max_channels``, stride 1, padding 1, dilation 1, bounded free
offsets, a map the harness's memories hold; a layer outside it (e.g. stride 2) is refused in one line before
any build (:func:`check`).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from hwsim.cosim.deform_unit_harness import DEFAULT_MEM_DEPTH, deform_unit_harness
from hwsim.cosim.model_cosim import CosimContext, LayerCosim, RtlRun
from hwsim.cosim.runner import read_job, run_job

from hwsim.deform_unit import DeformUnitConfig, check_op, check_rtl, check_rtl_layer, lower
from hwsim.deform_unit import run as unit_run
from hwsim.errors import HwsimError
from hwsim.stats import ActionCounts
from hwsim.unit import Stats

__all__ = ["TEST_MODULE", "check", "cosim_run", "measured_stats", "outside_counts"]

#: This module: the cocotb test the model co-simulation runs on the unit's harness.
TEST_MODULE = "hwsim.cosim.deform_unit_model"
#: Width of the RTL's ``shift`` port (the accumulator is shifted by ``shift + 2F``).
SHIFT_BITS = 6
#: The ``height`` / ``width`` ports' width.
DIM_BITS = 12


def check(cfg: DeformUnitConfig, layer) -> None:
    """Refuse (one line) a layer the unit's RTL cannot run: the family's own checks (:func:`check_op`), a
    config without RTL, and a layer outside the RTL's scope (see the module docstring) or its harness's
    memories. The model co-simulation calls this on every layer before any build (as ``cosim_run.check``)."""
    check_op(cfg, layer)
    check_rtl(cfg)
    (op,) = lower(cfg, layer)
    where = f"layer {layer.name!r} is not allowed in the co-simulation of {cfg.top_name}"
    try:
        check_rtl_layer(cfg, op)
    except HwsimError as e:
        what = (f"{'depthwise' if op.depthwise else 'full'} {op.c}->{op.c_out}, stride {op.stride}, padding "
                f"{op.padding}, dilation {op.dilation}")
        raise HwsimError(f"{where} ({what}): the RTL runs 3x3 layers, depthwise or full, with stride 1, padding 1 "
                         f"and dilation 1, c and c_out up to max_channels == {cfg.max_channels}") from e
    words = op.h * op.w * max(-(-op.c // cfg.lanes), -(-op.c_out // (cfg.lanes if op.depthwise else cfg.out_lanes)))
    if max(op.h, op.w) >= 1 << DIM_BITS or words > DEFAULT_MEM_DEPTH:
        raise HwsimError(f"{where}: its {op.c}x{op.h}x{op.w} map is larger than the harness holds (at most "
                         f"{DEFAULT_MEM_DEPTH} words of input channel blocks or output beats, sides < "
                         f"{1 << DIM_BITS})")
    shifts = np.asarray(layer.shift).reshape(-1)
    if len(set(shifts.tolist())) != 1 or not 0 <= int(shifts[0]) < 1 << SHIFT_BITS:
        raise HwsimError(f"{where}: shift={shifts.tolist()} (expected one shift in [0, {(1 << SHIFT_BITS) - 1}], "
                         "the RTL's shift port)")


def measured_stats(row: dict) -> Stats:
    """The :class:`~hwsim.unit.Stats` of one RTL run as the harness measured it (a result row of
    :func:`deform_unit_model_runs`: busy cycles, the stall counter and the activity counters)."""
    acts = ActionCounts({tuple(k.split(".", 1)): int(v) for k, v in row["actions"].items() if v})
    return Stats(int(row["rtl_cycles"]), int(row["rtl_stalls"]), acts.get("mac", "mac"), acts)


def outside_counts(cfg: DeformUnitConfig, row: dict, offsets: np.ndarray, weight: np.ndarray) -> dict[str, int]:
    """The priced actions of one run that happen outside the RTL top, counted from the run (see the module
    docstring): the raw offsets handed to the unit's offset buffer, the DRAM bytes of the input words the
    fill engine wrote into the line buffer (one DRAM word per line-buffer write) and of the weights, and the
    DRAM bytes of the output beats the harness captured."""
    word = cfg.lanes * cfg.act_bits // 8
    w_bytes = math.ceil(int(np.asarray(weight).size) * cfg.weight_bits / 8)
    return {"offset_buffer.write": int(np.asarray(offsets).size),
            "dram.read": int(row["actions"].get("line_buffer.write", 0)) * word + w_bytes,
            "dram.write": int(row["n_values"]) * cfg.act_bits // 8}


def cosim_run(cfg: DeformUnitConfig, layer, inputs, ctx: CosimContext) -> LayerCosim:
    """A compressed ``deform_conv2d`` layer on the batch ``inputs`` (feature maps ``(B, C, H, W)``, raw
    offsets ``(B, 18, H, W)``) through the unit's RTL, one run per image (see the module docstring)."""
    check(cfg, layer)
    (op,) = lower(cfg, layer)
    x, off = (np.asarray(a, dtype=np.int64) for a in inputs)
    weight = np.asarray(layer.weight, dtype=np.int64)
    bias = getattr(layer, "bias", None)
    extra = {} if bias is None else {"bias": np.asarray(bias, dtype=np.int64).reshape(-1)}
    mode = "dw" if op.depthwise else f"full ->{op.c_out}"
    jobs = [{"name": f"{layer.name}[{i}]", "x": x[i], "a": off[i], "w": weight, **extra, "depthwise": op.depthwise,
             "shift": int(np.ravel(layer.shift)[0]), "relu": bool(layer.relu), "square": False,
             "shape": f"{op.c}x{op.h}x{op.w} {mode}"} for i in range(len(x))]
    sub = ctx.run_dir(layer.name)
    job = {"family": "deform-unit", "config": cfg.to_dict(), "layers": jobs}
    result = run_job(ctx.build(cfg, deform_unit_harness()), job, workdir=sub, test_module=TEST_MODULE,
                     assertion_files=TEST_MODULE.rpartition(".")[2] + ".py")
    with np.load(sub / "outputs.npz") as saved:
        outs = [np.asarray(saved[str(i)], dtype=np.int64) for i in range(len(jobs))]
    runs = []
    for i, row in enumerate(result["layers"]):
        _, want = unit_run(cfg, layer, [x[i:i + 1], off[i:i + 1]])  # the family's counts for this image
        runs.append(RtlRun(op, cfg, measured_stats(row), outputs=row["vectors"], mismatches=row["mismatches"],
                           diffs=row["count_diffs"], expected=want, outside=outside_counts(cfg, row, off[i], weight)))
    shape = (op.c_out, op.h, op.w)
    values = np.stack([o if o.shape == shape else np.zeros(shape, dtype=np.int64) for o in outs])
    return LayerCosim(values, tuple(runs), f"{len(x)}x {op.c}x{op.h}x{op.w} {mode}")


cosim_run.check = check  # run by the model co-simulation on every layer before any build


# ---------------------------------------------------------------------------------------------- testbench
@cocotb.test()
async def deform_unit_model_runs(dut):
    """Every job layer (one image of a model layer) on the unit, checked as the regression checks it; rows
    with the measured counters to ``$HWSIM_RESULT``, the outputs to ``outputs.npz``."""
    from hwsim.cosim.deform_unit_tb import DeformUnitTB, check_run

    job = read_job(Path(os.environ["HWSIM_JOB"]))
    cfg = DeformUnitConfig.from_dict(job["config"])
    tb = DeformUnitTB(dut, cfg)
    await tb.reset()
    rows, saved, t0 = [], {}, time.perf_counter()
    for idx, layer in enumerate(job["layers"]):
        t_layer = time.perf_counter()
        x, raw, wt = np.asarray(layer["x"]), np.asarray(layer["a"]), np.asarray(layer["w"])
        _, pred, _, _ = check_run(cfg, layer)
        got = await tb.run(x, raw, wt, int(layer["shift"]), bool(layer["relu"]), False, raw.shape[0],
                           limit_cycles=4 * pred.detail["unit_cycles"] + 1000, bias=layer.get("bias"),
                           depthwise=bool(layer["depthwise"]))
        saved[str(idx)] = got["outputs"]
        want, pred, mismatches, diffs = check_run(cfg, layer, got)
        decoded = got["outputs"].shape == want.shape
        rows.append({"name": layer["name"], "kind": "dcn", "shape": layer["shape"], "vectors": int(want.size),
                     "mismatches": mismatches, "rtl_cycles": got["cycles"],
                     "predicted_cycles": pred.detail["unit_cycles"],
                     "rtl_stalls": got["stall"], "rtl_conflicts": got["conflict"], "n_out": got["n_out"],
                     "n_values": int(got["outputs"].size) if decoded else 0,
                     "actions": {f"{k[0]}.{k[1]}": v for k, v in got["counters"].items()}, "count_diffs": diffs,
                     "count_mismatches": len(diffs), "wall_seconds": time.perf_counter() - t_layer})
    np.savez(Path(os.environ["HWSIM_RESULT"]).with_name("outputs.npz"), **saved)
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": rows, "wall_seconds": time.perf_counter() - t0,
                   "rtl_cycles": sum(r["rtl_cycles"] for r in rows)}, f)
