"""cocotb testbench for the MAC array (runs inside the simulator; launched by ``hwsim.cosim.runner.run_job``
as the test module of :func:`hwsim.cosim.harness.mac_array_harness`).

The job (``job.json``, operands in ``job.npz``; path in ``$HWSIM_JOB``) names the configuration and a
list of GEMM or conv layers with their integer operands. For every layer the testbench computes the
expected outputs with the bit-exact reference (``hwsim.models.mac_array``) and the predicted cycle count
with the cycle-level model (``hwsim.mac_array.predict_gemm``), loads the DRAM-side memories of the
harness, pulses ``start``, waits for ``done``, and checks every output beat in order and the measured
busy cycles.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from hwsim.cosim.harness import ACT_FILE, OUT_FILE, WEIGHT_FILE
from hwsim.cosim.runner import read_job
from hwsim.models import mac_array as ref

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.mac_array import dram_beats, predict_gemm, unpack_outputs


class MacArrayTB:
    """Clock, reset, DRAM-side driver (memory preload), output monitor, reference and in-order checker.

    The DRAM memories are filled and the captured output beats read back through files (``$readmemh`` /
    ``$writememh`` in the harness, pulsed by ``load`` / ``dump``), so a layer costs two file transfers
    rather than one VPI access per beat.
    """

    def __init__(self, dut, cfg: MacArrayConfig):
        self.dut = dut
        self.cfg = cfg
        # Widths and depths come from the DUT, never from constants (the depth is read after reset,
        # once the model has evaluated).
        self.mem_depth = 0
        self.dim_limit = (1 << len(dut.dim_m)) - 1

    async def reset(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        for sig in (self.dut.start, self.dut.load, self.dut.dump, self.dut.dim_m, self.dut.dim_k,
                    self.dut.dim_n, self.dut.shift, self.dut.relu):
            sig.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)
        self.mem_depth = int(self.dut.mem_depth.value)

    def _write_mem(self, path: Path, beats: list[int]) -> None:
        if len(beats) > self.mem_depth:
            raise AssertionError(f"layer needs {len(beats)} beats, harness memory holds {self.mem_depth}")
        path.write_text("".join(f"{b:x}\n" for b in beats))

    async def _pulse(self, sig) -> None:
        sig.value = 1
        await RisingEdge(self.dut.clk)
        sig.value = 0

    async def run_gemm(self, a: np.ndarray, w: np.ndarray, shift: int, relu: bool) -> tuple[list[int], int]:
        """Drive one GEMM (values) through the RTL; return (output beats, busy cycles)."""
        cfg, dut = self.cfg, self.dut
        m, k = a.shape
        n = w.shape[1]
        assert max(m, k, n) <= self.dim_limit
        w_beats, a_beats = dram_beats(cfg, ref.encode_acts(a, cfg.act_bits),
                                      ref.encode_weights(w, cfg.weight_format))
        self._write_mem(Path(WEIGHT_FILE), w_beats)
        self._write_mem(Path(ACT_FILE), a_beats)
        await self._pulse(dut.load)
        dut.dim_m.value, dut.dim_k.value, dut.dim_n.value = m, k, n
        dut.shift.value, dut.relu.value = shift, int(relu)
        await self._pulse(dut.start)
        await RisingEdge(dut.done)
        await RisingEdge(dut.clk)
        n_out = int(dut.n_out.value)
        assert int(dut.n_weights.value) == len(w_beats), (int(dut.n_weights.value), len(w_beats))
        assert int(dut.n_acts.value) == len(a_beats), (int(dut.n_acts.value), len(a_beats))
        assert n_out <= self.mem_depth, f"{n_out} output beats overflow the harness memory ({self.mem_depth})"
        out_path = Path(OUT_FILE)
        out_path.unlink(missing_ok=True)
        await self._pulse(dut.dump)
        await RisingEdge(dut.clk)
        outs = [int(line, 16) for line in out_path.read_text().split()] if n_out else []
        return outs, int(dut.cycles.value)


def check_outputs(cfg: MacArrayConfig, beats: list[int], expect: np.ndarray) -> tuple[int, np.ndarray | None]:
    """In-order checker: (mismatching outputs, decoded output codes or None if the beat count is wrong).

    Beat ``i`` of the stream holds a fixed (row, column-tile) of the output (``unpack_outputs`` fixes the
    order), so decoding the stream and comparing with the reference codes checks order and values at once;
    lanes beyond N are padding and are not compared.
    """
    m, n = expect.shape
    want = ref.encode_acts(expect, cfg.act_bits)
    try:
        got = unpack_outputs(cfg, beats, m, n)
    except HwsimError:
        return m * n, None
    return int(np.count_nonzero(got != want)), got


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
    job = read_job(Path(os.environ["HWSIM_JOB"]))
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
            bad, got = check_outputs(cfg, beats, ref.gemm(a, w, cfg, shift=layer["shift"], relu=layer["relu"]))
            mismatches += bad
            compared += m * n
            rtl_cycles += cycles
            pred_cycles += predict_gemm(cfg, m, a.shape[1], n).cycles
            if got is not None:
                outs.append(ref.decode_acts(got.astype(np.int64), cfg.act_bits))
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
