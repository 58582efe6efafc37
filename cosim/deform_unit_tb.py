"""cocotb testbench for the deformable unit (runs inside the simulator; launched by
``hwsim.cosim.runner.run_job`` as the test module of :func:`hwsim.cosim.deform_unit_harness.deform_unit_harness`).

Each job layer is one depthwise 3x3 deformable layer: input ``x`` (C, H, W), raw Q-format offsets ``a``
(free: 18 channels; square: 1), weights ``w`` (C, 1, 3, 3), ``shift``, ``relu`` and ``square``. The
testbench writes the harness memories, pulses ``load`` and ``start``, waits for ``done``, dumps the captured
outputs and checks, against the fixed-point reference and the cycle model: every output value, the busy
cycles, the stall cycles and every activity counter the cost model prices.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from hwsim.cosim.deform_unit_harness import IN_FILE, OFF_FILE, OUT_FILE, W_FILE
from hwsim.cosim.runner import read_job
from hwsim.cosim.tb_util import dump_beats, pulse, reset_harness
from hwsim.models import deform_unit as du
from hwsim.rtl.deform_unit import COUNTERS, OFFSET_BITS

from hwsim.deform_unit import DeformLayer, DeformUnitConfig, predict_layer

__all__ = ["DeformUnitTB", "layer_config", "pack_words"]


def layer_config(cfg: DeformUnitConfig, square: bool) -> DeformUnitConfig:
    """The config the cycle model and reference use for a layer: a free-mode build running square offsets
    keeps its (taller) line buffer."""
    if square and cfg.offset_mode == "free":
        return cfg.replace(offset_mode="square", line_buffer_rows=cfg.rows_for(1))
    return cfg


def pack_words(values: np.ndarray, bits: int) -> list[int]:
    """One integer per row of ``values`` (fields of ``bits``, field 0 in the low bits)."""
    mask = (1 << bits) - 1
    return [sum((int(v) & mask) << (i * bits) for i, v in enumerate(row)) for row in np.asarray(values).tolist()]


class DeformUnitTB:
    """Clock, reset, memory preload (driver), output capture (monitor), reference and checker."""

    def __init__(self, dut, cfg: DeformUnitConfig):
        self.dut, self.cfg = dut, cfg
        self.mem_depth = 0

    async def reset(self):
        d = self.dut
        self.mem_depth = await reset_harness(
            d, (d.start, d.load, d.dump, d.height, d.width, d.shift, d.relu, d.square), clock=True)

    async def _pulse(self, sig) -> None:
        await pulse(self.dut, sig)

    async def run(self, x, raw, wt, shift, relu, square, off_fields) -> dict:
        dut, cfg = self.dut, self.cfg
        c, h, w = x.shape
        assert h * w <= self.mem_depth
        Path(IN_FILE).write_text("".join(f"{v:x}\n" for v in pack_words(x.reshape(c, -1).T, cfg.act_bits)))
        fields = np.zeros((off_fields, h * w), dtype=np.int64)
        fields[:raw.shape[0]] = raw.reshape(raw.shape[0], -1)
        Path(OFF_FILE).write_text("".join(f"{v:x}\n" for v in pack_words(fields.T, OFFSET_BITS)))
        wv = pack_words(wt.reshape(c, 9).T.reshape(1, -1), cfg.weight_bits)[0]
        Path(W_FILE).write_text(f"{wv:x}\n")
        await self._pulse(dut.load)
        dut.height.value, dut.width.value, dut.shift.value = h, w, shift
        dut.relu.value, dut.square.value = int(relu), int(square)
        await self._pulse(dut.start)
        await RisingEdge(dut.done)
        await RisingEdge(dut.clk)
        n_out = int(dut.n_out.value)
        beats = await dump_beats(dut, Path(OUT_FILE), n_out)
        a = cfg.act_bits
        lanes = np.array([[(b >> (i * a)) & ((1 << a) - 1) for i in range(cfg.lanes)] for b in beats], dtype=np.int64)
        lanes = np.where(lanes >> (a - 1), lanes - (1 << a), lanes)
        outputs = lanes.T.reshape(c, h, w) if len(beats) == h * w else lanes
        return {"outputs": outputs, "cycles": int(dut.cycles.value), "stall": int(dut.cnt_stall.value),
                "conflict": int(dut.cnt_conflict.value),
                "counters": {COUNTERS[k]: int(getattr(dut, k).value) for k in COUNTERS}}


@cocotb.test()
async def deform_unit_regression(dut):
    job = read_job(Path(os.environ["HWSIM_JOB"]))
    cfg = DeformUnitConfig.from_dict(job["config"])
    tb = DeformUnitTB(dut, cfg)
    await tb.reset()
    off_fields = 1 if cfg.offset_mode == "square" else 18
    rows, t0 = [], time.perf_counter()
    for idx, layer in enumerate(job["layers"]):
        x, raw, wt = np.asarray(layer["x"]), np.asarray(layer["a"]), np.asarray(layer["w"])
        shift, relu, square = int(layer["shift"]), bool(layer["relu"]), bool(layer["square"])
        lcfg = layer_config(cfg, square)
        c, h, w = x.shape
        got = await tb.run(x, raw, wt, shift, relu, square, off_fields)
        off = du.variant_offsets(lcfg.variant(True), raw, 3, 3, frac_bits=cfg.frac_bits)
        want = du.deform_conv2d_fixed(x, off, wt, frac_bits=cfg.frac_bits, shift=shift, padding=1, groups=c,
                                      act_bits=cfg.act_bits, weight_bits=cfg.weight_bits, acc_bits=cfg.acc_bits,
                                      overflow=cfg.overflow, rounding=cfg.rounding, relu=relu)
        pred = predict_layer(lcfg, DeformLayer(layer["name"], c, h, w, c, depthwise=True), raw,
                             with_offset_conv=False)
        same = got["outputs"].shape == want.shape
        mismatches = int(np.count_nonzero(got["outputs"] != want)) if same else int(want.size)
        diffs = {f"{k[0]}.{k[1]}": (v, pred.actions.get(*k)) for k, v in got["counters"].items()
                 if v != pred.actions.get(*k)}
        for name, rtl_v, model_v in (("stall_cycles", got["stall"], pred.stall_cycles),
                                     ("conflict_cycles", got["conflict"], pred.conflict_cycles)):
            if rtl_v != model_v:
                diffs[name] = (rtl_v, model_v)
        rows.append({"index": idx, "name": layer["name"], "kind": "dcn", "shape": layer["shape"],
                     "vectors": int(want.size), "mismatches": mismatches, "rtl_cycles": got["cycles"],
                     "predicted_cycles": pred.unit_cycles, "rtl_stalls": got["stall"],
                     "predicted_stalls": pred.stall_cycles, "count_diffs": diffs,
                     "actions": {f"{k[0]}.{k[1]}": v for k, v in got["counters"].items()}})
        dut._log.info("layer %d %s: %d values, %d mismatches, RTL %d cycles, predicted %d, diffs %s", idx,
                      layer["name"], want.size, mismatches, got["cycles"], pred.unit_cycles, diffs)
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": rows, "wall_seconds": time.perf_counter() - t0}, f)
    assert all(r["mismatches"] == 0 for r in rows), "output mismatches"
    assert all(r["rtl_cycles"] == r["predicted_cycles"] for r in rows), "cycle count mismatches"
    assert all(not r["count_diffs"] for r in rows), "stall or action count mismatches"
