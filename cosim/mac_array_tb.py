"""cocotb testbench for the MAC array (runs inside the simulator; launched by ``hwsim.cosim.runner``).

The job (JSON, path in ``$HWSIM_JOB``) names the configuration and a list of GEMM or conv layers with their
integer operands. For every layer the testbench computes the expected outputs with the bit-exact reference
(``hwsim.models.mac_array``) and the predicted cycle count with the cycle-level model
(``hwsim.mac_array.predict_gemm``), loads the DRAM-side memories of the harness, pulses ``start``, waits
for ``done``, and checks every output beat in order and the measured busy cycles.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from hwsim.models import mac_array as ref

from hwsim.config import MacArrayConfig
from hwsim.mac_array import dram_beats, fold_plan, pack_lanes, predict_gemm, unpack_outputs


class MacArrayTB:
    """Clock, reset, DRAM-side driver (memory preload), output monitor, reference and in-order checker."""

    def __init__(self, dut, cfg: MacArrayConfig):
        self.dut = dut
        self.cfg = cfg
        # Widths come from the DUT, never from constants.
        self.mem_depth = len(dut.wmem)
        self.dim_limit = (1 << len(dut.dim_m)) - 1

    async def reset(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.start.value = 0
        self.dut.rst.value = 1
        for sig in (self.dut.dim_m, self.dut.dim_k, self.dut.dim_n, self.dut.shift, self.dut.relu):
            sig.value = 0
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def _load(self, mem, beats: list[int]):
        if len(beats) > self.mem_depth:
            raise AssertionError(f"layer needs {len(beats)} beats, harness memory holds {self.mem_depth}")
        for i, b in enumerate(beats):
            mem[i].value = b

    async def run_gemm(self, a: np.ndarray, w: np.ndarray, shift: int, relu: bool) -> tuple[list[int], int]:
        """Drive one GEMM (values) through the RTL; return (output beats, busy cycles)."""
        cfg = self.cfg
        m, k = a.shape
        n = w.shape[1]
        assert max(m, k, n) <= self.dim_limit
        w_beats, a_beats = dram_beats(cfg, ref.encode_acts(a, cfg.act_bits),
                                      ref.encode_weights(w, cfg.weight_format))
        self._load(self.dut.wmem, w_beats)
        self._load(self.dut.amem, a_beats)
        dut = self.dut
        dut.dim_m.value, dut.dim_k.value, dut.dim_n.value = m, k, n
        dut.shift.value, dut.relu.value = shift, int(relu)
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await RisingEdge(dut.done)
        await RisingEdge(dut.clk)
        n_out = int(dut.n_out.value)
        assert int(dut.n_weights.value) == len(w_beats), (int(dut.n_weights.value), len(w_beats))
        assert int(dut.n_acts.value) == len(a_beats), (int(dut.n_acts.value), len(a_beats))
        outs = [int(dut.omem[i].value) for i in range(n_out)]
        return outs, int(dut.cycles.value)


def expected_beats(cfg: MacArrayConfig, out_values: np.ndarray) -> list[int]:
    """The output beats the RTL must produce for ``out_values`` [m, n] (padding lanes are masked off)."""
    codes = ref.encode_acts(out_values, cfg.act_bits)
    m, n = codes.shape
    plan = fold_plan(cfg, m, 1, n)
    rows = []
    for m0, n0, r in zip(plan.m0, plan.n0, plan.rows_out, strict=True):
        tile = np.zeros((r, cfg.cols), dtype=np.uint64)
        nt = min(cfg.cols, n - n0)
        tile[:, :nt] = codes[m0:m0 + r, n0:n0 + nt]
        rows.append(tile)
    return pack_lanes(np.concatenate(rows), cfg.act_bits)


def _lane_mask(cfg: MacArrayConfig, m: int, n: int) -> list[int]:
    """Per output beat, the bit mask of lanes that hold real outputs (lanes beyond N are undefined)."""
    plan = fold_plan(cfg, m, 1, n)
    masks = []
    for n0, r in zip(plan.n0, plan.rows_out, strict=True):
        nt = min(cfg.cols, n - n0)
        masks += [(1 << (nt * cfg.act_bits)) - 1] * int(r)
    return masks


def _gemms_of(layer: dict, cfg: MacArrayConfig):
    """(list of (a, w) GEMMs, function mapping their outputs to the layer output, reference output)."""
    shift, relu = layer["shift"], layer["relu"]
    if layer["kind"] == "gemm":
        a = np.array(layer["a"], dtype=np.int64)
        w = np.array(layer["w"], dtype=np.int64)
        return [(a, w)], ref.gemm(a, w, cfg, shift=shift, relu=relu), lambda outs: outs[0]
    x = np.array(layer["x"], dtype=np.int64)
    w = np.array(layer["w"], dtype=np.int64)
    conv = {key: layer[key] for key in ("stride", "padding", "dilation", "groups")}
    gemms = ref.conv2d_as_gemms(x, w, **conv)
    expect = ref.conv2d(x, w, cfg, shift=shift, relu=relu, **conv)

    def assemble(outs):
        # outs[g] is [oh*ow, o/g]; the layer output is (o, oh, ow).
        return np.concatenate([o.T for o in outs], axis=0).reshape(expect.shape)

    return gemms, expect, assemble


@cocotb.test()
async def mac_array_regression(dut):
    job = json.loads(open(os.environ["HWSIM_JOB"]).read())
    cfg = MacArrayConfig.from_dict(job["config"])
    tb = MacArrayTB(dut, cfg)
    await tb.reset()
    results = []
    t_start = time.perf_counter()
    total_cycles = 0
    for idx, layer in enumerate(job["layers"]):
        gemms, expect, assemble = _gemms_of(layer, cfg)
        outs, rtl_cycles, pred_cycles, compared, mismatches = [], 0, 0, 0, 0
        for a, w in gemms:
            beats, cycles = await tb.run_gemm(a, w, layer["shift"], layer["relu"])
            m, n = a.shape[0], w.shape[1]
            want = expected_beats(cfg, ref.gemm(a, w, cfg, shift=layer["shift"], relu=layer["relu"]))
            masks = _lane_mask(cfg, m, n)
            # In-order checker: beat i must equal expected beat i on every real lane.
            if len(beats) != len(want):
                mismatches += abs(len(beats) - len(want)) * cfg.cols
            for got, exp, mask in zip(beats, want, masks, strict=False):
                if (got ^ exp) & mask:
                    diff = (got ^ exp) & mask
                    mismatches += sum(1 for lane in range(cfg.cols)
                                      if (diff >> (lane * cfg.act_bits)) & ((1 << cfg.act_bits) - 1))
            compared += m * n
            rtl_cycles += cycles
            pred_cycles += predict_gemm(cfg, m, a.shape[1], n).cycles
            if len(beats) == len(want):
                outs.append(ref.decode_acts(unpack_outputs(cfg, beats, m, n).astype(np.int64), cfg.act_bits))
        layer_out = assemble(outs) if not mismatches else None
        if layer_out is not None and not np.array_equal(layer_out, expect):
            mismatches += int(np.count_nonzero(layer_out != expect))
        total_cycles += rtl_cycles
        results.append({
            "index": idx, "name": layer.get("name", f"layer{idx}"), "kind": layer["kind"],
            "shape": layer.get("shape"), "vectors": compared, "mismatches": mismatches,
            "rtl_cycles": rtl_cycles, "predicted_cycles": pred_cycles,
        })
        dut._log.info("layer %d: %d outputs, %d mismatches, RTL %d cycles, predicted %d",
                      idx, compared, mismatches, rtl_cycles, pred_cycles)
    wall = time.perf_counter() - t_start
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": results, "wall_seconds": wall, "rtl_cycles": total_cycles}, f)
    assert all(r["mismatches"] == 0 for r in results), "output mismatches"
    assert all(r["rtl_cycles"] == r["predicted_cycles"] for r in results), "cycle count mismatches"
