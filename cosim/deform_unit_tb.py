"""cocotb testbench for the deformable unit (runs inside the simulator; launched by
``hwsim.cosim.runner.run_job`` as the test module of :func:`hwsim.cosim.deform_unit_harness.deform_unit_harness`).

Each job layer is one 3x3 deformable layer: input ``x`` (C, H, W) (``ceil(C / lanes)`` channel blocks; the
last block's lanes beyond C are idle: zero padding in the input words, zero weights, ``chans = C``), raw
Q-format offsets ``a`` (free: 18 channels; square: 1), weights ``w``: (C, 1, 3, 3) depthwise or
(C_out, C, 3, 3) full (``depthwise``: the layer's mode, default from the shapes, :func:`is_depthwise`), an
optional bias ``bias`` (C_out,) at the accumulator's scale, ``shift``, ``relu`` and ``square``. The
testbench writes the harness's binary memory files, pulses ``load`` and ``start``, waits for ``done`` with
``free_run`` high (hwsim's Verilator main then runs the clock without visiting cocotb's callbacks: no
Python per cycle), dumps the captured outputs to a file and checks, against the fixed-point reference and the
cycle model: every output value, the busy cycles, the stall cycles and every activity counter the cost model
prices.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
from hwsim.cosim.deform_unit_harness import B_FILE, IN_FILE, OFF_FILE, OUT_FILE, W_FILE
from hwsim.cosim.memfile import lanes_to_words, words_to_lanes
from hwsim.cosim.runner import read_job
from hwsim.cosim.tb_util import dump_bytes, pulse, reset_harness
from hwsim.models import deform_unit as du
from hwsim.rtl.deform_unit import COUNTERS, OFFSET_BITS

from hwsim.deform_unit import DeformLayer, DeformUnitConfig, predict_layer

__all__ = ["PHASES", "DeformUnitTB", "bias_words", "check_run", "decode_outputs", "input_words", "is_depthwise",
           "layer_config", "memory_files", "pack_words", "weight_tiles"]

#: Phases of a layer's testbench wall time (``phase_seconds`` of the result): the cycle model's prediction;
#: encoding the layer and writing the memory files; the harness copying them in; the layer from ``start``
#: to ``done``; the output dump and decoding it; the fixed-point reference and every comparison.
PHASES = ("predict", "prepare", "load", "simulate", "dump", "check")


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


def is_depthwise(x, wt) -> bool:
    """A layer's mode from its shapes: weights ``(C, 1, 3, 3)`` on ``C`` channels are depthwise (for one channel
    both modes compute the same; depthwise)."""
    return np.asarray(wt).shape[1] == 1 and np.asarray(wt).shape[0] == np.asarray(x).shape[0]


def input_words(cfg: DeformUnitConfig, x) -> np.ndarray:
    """Input words ``(H W NB, lanes)``: pixel (r, c) block j at ``(r W + c) NB + j`` (channels beyond C zero)."""
    c, h, w = np.asarray(x).shape
    nb = -(-c // cfg.lanes)
    pad = np.zeros((nb * cfg.lanes, h * w), dtype=np.int64)
    pad[:c] = np.asarray(x, dtype=np.int64).reshape(c, -1)
    return pad.reshape(nb, cfg.lanes, h * w).transpose(2, 0, 1).reshape(h * w * nb, cfg.lanes)


def weight_tiles(cfg: DeformUnitConfig, wt, depthwise: bool) -> np.ndarray:
    """The weight tiles in the order the MAC stage reads them (tap, channel block, output group), one row of
    ``out_lanes x lanes`` fields (field ``q lanes + l``) each: full, output ``g out_lanes + q`` and input
    ``j lanes + l``; depthwise, field ``l`` is channel ``j lanes + l``'s weight (other fields zero)."""
    wt = np.asarray(wt, dtype=np.int64)
    L, Q = cfg.lanes, cfg.out_lanes
    co, cg = wt.shape[:2]
    c = co if depthwise else cg
    nb = -(-c // L)
    groups = 1 if depthwise else -(-co // Q)
    tiles = np.zeros((9, nb, groups, Q, L), dtype=np.int64)
    flat = wt.reshape(co, cg, 9)
    for j in range(nb):
        for lane in range(min(L, c - j * L)):
            if depthwise:
                tiles[:, j, 0, 0, lane] = flat[j * L + lane, 0]
            else:
                for g in range(groups):
                    for q in range(min(Q, co - g * Q)):
                        tiles[:, j, g, q, lane] = flat[g * Q + q, j * L + lane]
    return tiles.reshape(9 * nb * groups, Q * L)


def bias_words(cfg: DeformUnitConfig, bias, c_out: int, depthwise: bool) -> np.ndarray:
    """The bias words ``(blocks or groups, max(lanes, out_lanes))``: depthwise block j's channels, full output
    group g's outputs (zero without a bias)."""
    width = cfg.lanes if depthwise else cfg.out_lanes
    n = -(-c_out // width)
    words = np.zeros((n, max(cfg.lanes, cfg.out_lanes)), dtype=np.int64)
    if bias is not None:
        flat = np.zeros(n * width, dtype=np.int64)
        flat[:c_out] = np.asarray(bias, dtype=np.int64).reshape(-1)
        words[:, :width] = flat.reshape(n, width)
    return words


def decode_outputs(cfg: DeformUnitConfig, beats: np.ndarray, c_out: int, h: int, w: int, depthwise: bool):
    """The output beats ``(n, max(lanes, out_lanes))`` (signed) as ``(C_out, H, W)``; None if their number is
    not one per (pixel, block) or (pixel, group)."""
    width = cfg.lanes if depthwise else cfg.out_lanes
    per = -(-c_out // width)
    beats = np.asarray(beats, dtype=np.int64)
    if beats.shape[0] != h * w * per:
        return None
    return beats.reshape(h * w, per, -1)[:, :, :width].reshape(h * w, per * width)[:, :c_out].T.reshape(c_out, h, w)


def memory_files(cfg: DeformUnitConfig, x, raw, wt, off_fields: int, widths: dict[str, int], bias=None,
                 depthwise: bool | None = None) -> dict[str, bytes]:
    """The harness's memory files of one layer (file name to bytes), the words of :func:`pack_words`:
    :func:`input_words`, ``off_fields`` raw offsets per pixel, :func:`weight_tiles` and :func:`bias_words`.
    ``widths``: the harness's ``in``, ``off``, ``w`` and ``b`` word widths."""
    c, h, w = x.shape
    dwise = is_depthwise(x, wt) if depthwise is None else depthwise
    fields = np.zeros((off_fields, h * w), dtype=np.int64)
    fields[:raw.shape[0]] = np.asarray(raw, dtype=np.int64).reshape(raw.shape[0], -1)
    co = np.asarray(wt).shape[0]
    return {IN_FILE: lanes_to_words(input_words(cfg, x) & ((1 << cfg.act_bits) - 1), cfg.act_bits, widths["in"]),
            OFF_FILE: lanes_to_words(fields.T & ((1 << OFFSET_BITS) - 1), OFFSET_BITS, widths["off"]),
            W_FILE: lanes_to_words(weight_tiles(cfg, wt, dwise) & ((1 << cfg.weight_bits) - 1), cfg.weight_bits,
                                   widths["w"]),
            B_FILE: lanes_to_words(bias_words(cfg, bias, co, dwise) & ((1 << cfg.acc_bits) - 1), cfg.acc_bits,
                                   widths["b"])}


class DeformUnitTB:
    """Clock, reset, memory preload (driver), output capture (monitor), reference and checker."""

    def __init__(self, dut, cfg: DeformUnitConfig):
        self.dut, self.cfg = dut, cfg
        self.mem_depth = 0
        self.widths: dict[str, int] = {}
        #: Testbench wall seconds by phase, summed over layers (:data:`PHASES`).
        self.phases = dict.fromkeys(PHASES, 0.0)

    def lap(self, phase: str, t0: float) -> float:
        """Add the time since ``t0`` to ``phase``; return now."""
        now = time.perf_counter()
        self.phases[phase] += now - t0
        return now

    async def reset(self):
        d = self.dut
        self.mem_depth = await reset_harness(
            d, (d.free_run, d.start, d.load, d.dump, d.height, d.width, d.shift, d.relu, d.square, d.chans,
                d.chans_out, d.depthwise))
        self.widths = {k: int(getattr(d, f"{k}_bits").value) for k in ("in", "off", "w", "b", "pix")}

    async def _pulse(self, sig) -> None:
        await pulse(self.dut, sig)

    async def run(self, x, raw, wt, shift, relu, square, off_fields, limit_cycles: int = 1 << 30, bias=None,
                  depthwise: bool | None = None) -> dict:
        dut, cfg = self.dut, self.cfg
        c, h, w = x.shape
        dwise = is_depthwise(x, wt) if depthwise is None else depthwise
        co = np.asarray(wt).shape[0]
        assert h * w * -(-c // cfg.lanes) <= self.mem_depth
        t0 = time.perf_counter()
        for name, data in memory_files(cfg, x, raw, wt, off_fields, self.widths, bias, dwise).items():
            Path(name).write_bytes(data)
        t0 = self.lap("prepare", t0)
        await self._pulse(dut.load)
        await RisingEdge(dut.clk)  # the edge that sampled load copied the files in
        t0 = self.lap("load", t0)
        dut.height.value, dut.width.value, dut.shift.value = h, w, shift
        dut.relu.value, dut.square.value, dut.chans.value = int(relu), int(square), c
        dut.chans_out.value, dut.depthwise.value = co, int(dwise)
        await self._pulse(dut.start)
        dut.free_run.value = 1
        try:  # a run 4x the model's has failed: do not wait forever
            await with_timeout(RisingEdge(dut.done), 10 * limit_cycles, "ns")
        except SimTimeoutError:
            raise AssertionError(f"done did not rise within {limit_cycles} cycles of start") from None
        dut.free_run.value = 0
        # The last beat leaves in done's cycle and is captured at the edge that ends it. A RisingEdge of the
        # main's clock fires before that edge is evaluated, so the second one sees the capture.
        await ClockCycles(dut.clk, 2)
        t0 = self.lap("simulate", t0)
        n_out = int(dut.n_out.value)
        data = await dump_bytes(dut, Path(OUT_FILE), n_out)
        a = cfg.act_bits
        al = max(cfg.lanes, cfg.out_lanes)
        lanes = words_to_lanes(data, n_out, al, a, self.widths["pix"]).astype(np.int64)
        lanes = np.where(lanes >> (a - 1), lanes - (1 << a), lanes)
        outputs = decode_outputs(cfg, lanes, co, h, w, dwise)
        got = {"outputs": lanes if outputs is None else outputs, "cycles": int(dut.cycles.value),
               "stall": int(dut.cnt_stall.value), "conflict": int(dut.cnt_conflict.value), "n_out": n_out,
               "counters": {COUNTERS[k]: int(getattr(dut, k).value) for k in COUNTERS}}
        self.lap("dump", t0)
        return got


def check_run(cfg: DeformUnitConfig, layer: dict, got: dict | None = None):
    """The expectation of one job layer and, with ``got`` (a :meth:`DeformUnitTB.run` result), its comparison:
    ``(want, pred, mismatches, diffs)``: the fixed-point reference's outputs, the cycle model's
    :func:`~hwsim.deform_unit.predict_layer` on the same offsets, the output values that differ and the
    counters (stall and conflict cycles, every priced action) that differ, as ``name: [rtl, model]``."""
    x, raw, wt = np.asarray(layer["x"]), np.asarray(layer["a"]), np.asarray(layer["w"])
    bias = None if layer.get("bias") is None else np.asarray(layer["bias"])
    dwise = is_depthwise(x, wt) if layer.get("depthwise") is None else bool(layer["depthwise"])
    lcfg = layer_config(cfg, bool(layer["square"]))
    c, h, w = x.shape
    co = wt.shape[0]
    pred = predict_layer(lcfg, DeformLayer(layer["name"], c, h, w, co, depthwise=dwise), raw, with_offset_conv=False)
    if got is None:
        return None, pred, 0, {}
    off = du.variant_offsets(lcfg.variant(dwise), raw, 3, 3, frac_bits=cfg.frac_bits)
    want = du.deform_conv2d_fixed(x, off, wt, frac_bits=cfg.frac_bits, shift=int(layer["shift"]), bias=bias,
                                  padding=1, groups=c if dwise else 1, act_bits=cfg.act_bits,
                                  weight_bits=cfg.weight_bits, acc_bits=cfg.acc_bits, overflow=cfg.overflow,
                                  rounding=cfg.rounding, relu=bool(layer["relu"]))
    same = got["outputs"].shape == want.shape
    mismatches = int(np.count_nonzero(got["outputs"] != want)) if same else int(want.size)
    diffs = {f"{k[0]}.{k[1]}": [v, pred.actions.get(*k)] for k, v in got["counters"].items()
             if v != pred.actions.get(*k)}
    for name, rtl_v, model_v in (("stall_cycles", got["stall"], pred.stall_cycles),
                                 ("conflict_cycles", got["conflict"], pred.detail["conflict_cycles"])):
        if rtl_v != model_v:
            diffs[name] = [rtl_v, model_v]
    return want, pred, mismatches, diffs


@cocotb.test()
async def deform_unit_regression(dut):
    job = read_job(Path(os.environ["HWSIM_JOB"]))
    cfg = DeformUnitConfig.from_dict(job["config"])
    tb = DeformUnitTB(dut, cfg)
    await tb.reset()
    off_fields = 1 if cfg.offset_mode == "square" else 18
    rows, t0 = [], time.perf_counter()
    for idx, layer in enumerate(job["layers"]):
        t_layer = time.perf_counter()
        x, raw, wt = np.asarray(layer["x"]), np.asarray(layer["a"]), np.asarray(layer["w"])
        _, pred, _, _ = check_run(cfg, layer)
        tb.lap("predict", t_layer)
        got = await tb.run(x, raw, wt, int(layer["shift"]), bool(layer["relu"]), bool(layer["square"]), off_fields,
                           limit_cycles=4 * pred.detail["unit_cycles"] + 1000,
                           bias=None if layer.get("bias") is None else np.asarray(layer["bias"]),
                           depthwise=layer.get("depthwise"))
        t_check = time.perf_counter()
        want, pred, mismatches, diffs = check_run(cfg, layer, got)
        rows.append({"index": idx, "name": layer["name"], "kind": "dcn", "shape": layer["shape"],
                     "vectors": int(want.size), "mismatches": mismatches, "rtl_cycles": got["cycles"],
                     "predicted_cycles": pred.detail["unit_cycles"], "rtl_stalls": got["stall"],
                     "predicted_stalls": pred.stall_cycles, "count_diffs": diffs,
                     "actions": {f"{k[0]}.{k[1]}": v for k, v in got["counters"].items()},
                     "count_mismatches": len(diffs), "wall_seconds": time.perf_counter() - t_layer})
        tb.lap("check", t_check)
        dut._log.info("layer %d %s: %d values, %d mismatches, RTL %d cycles, predicted %d, diffs %s", idx,
                      layer["name"], want.size, mismatches, got["cycles"], pred.detail["unit_cycles"], diffs)
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": rows, "wall_seconds": time.perf_counter() - t0, "phase_seconds": tb.phases}, f)
    assert all(r["mismatches"] == 0 for r in rows), "output mismatches"
    assert all(r["rtl_cycles"] == r["predicted_cycles"] for r in rows), "cycle count mismatches"
    assert all(not r["count_diffs"] for r in rows), "stall or action count mismatches"
