"""cocotb testbench for the RF mesh emulator (runs inside the simulator; launched by
``hwsim.cosim.runner.run_job`` as the test module of :func:`hwsim.cosim.rf_array_harness.rf_array_harness`).

Each job layer is one run: phase codes (``w``) and input vectors (``x``, shape (V, n, 2)). The testbench
writes the harness's binary memory files, pulses ``load`` and ``start``, waits for ``done`` with
``free_run`` high (hwsim's Verilator main then runs the clock without visiting cocotb's callbacks: no
Python per cycle), dumps the captured outputs to a file and checks, against the bit-exact reference and
the cycle model: every output value in order, the busy cycles, the stall cycles and every activity
counter the cost model prices.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
from hwsim.cosim.memfile import lanes_to_words, words_to_lanes
from hwsim.cosim.rf_array_harness import CODE_FILE, OUT_FILE, VEC_FILE
from hwsim.cosim.runner import read_job
from hwsim.cosim.tb_util import dump_bytes, pulse, reset_harness
from hwsim.models import rf_array as ref
from hwsim.rtl.rf_array import COUNTERS

from hwsim.rf_array import RfArrayConfig, predict_emulator

__all__ = ["RfArrayTB", "memory_files", "pack_vectors", "unpack_vectors", "vector_lanes"]


def pack_vectors(cfg: RfArrayConfig, x: np.ndarray) -> list[int]:
    """One integer beat per vector: element j's real part at bits [2jD, 2jD+D), imaginary above it."""
    d = cfg.data_bits
    lanes = (np.asarray(x, dtype=np.int64).reshape(len(x), -1) & ((1 << d) - 1)).tolist()
    return [sum(v << (i * d) for i, v in enumerate(row)) for row in lanes]


def unpack_vectors(cfg: RfArrayConfig, beats: list[int]) -> np.ndarray:
    """Inverse of :func:`pack_vectors` (sign-extending each lane); int64 (V, n, 2)."""
    d = cfg.data_bits
    lanes = np.array([[(b >> (i * d)) & ((1 << d) - 1) for i in range(2 * cfg.n)] for b in beats], dtype=np.int64)
    lanes = np.where(lanes >> (d - 1), lanes - (1 << d), lanes)
    return lanes.reshape(len(beats), cfg.n, 2)


def vector_lanes(cfg: RfArrayConfig, x: np.ndarray) -> np.ndarray:
    """The beats of :func:`pack_vectors` as lanes ``[vector, 2n]`` of ``data_bits`` unsigned codes."""
    return np.asarray(x, dtype=np.int64).reshape(len(x), -1) & ((1 << cfg.data_bits) - 1)


def memory_files(cfg: RfArrayConfig, codes: np.ndarray, x: np.ndarray, code_bits: int, vec_bits: int
                 ) -> dict[str, bytes]:
    """The harness's memory files of one run (file name to bytes): the codes (``code_bits`` each) and the
    vectors (``vec_bits`` beats of :func:`pack_vectors`)."""
    codes = np.asarray(codes, dtype=np.uint64).reshape(-1, 1)
    return {CODE_FILE: lanes_to_words(codes, code_bits, code_bits),
            VEC_FILE: lanes_to_words(vector_lanes(cfg, x), cfg.data_bits, vec_bits)}


class RfArrayTB:
    """Reset, memory preload (driver), output capture (monitor), reference and in-order checker (the clock
    is the Verilator main's, free-running while a run waits for ``done``)."""

    def __init__(self, dut, cfg: RfArrayConfig):
        self.dut, self.cfg = dut, cfg
        self.mem_depth = self.code_bits = self.vec_bits = 0

    async def reset(self):
        d = self.dut
        self.mem_depth = await reset_harness(d, (d.free_run, d.start, d.load, d.dump, d.n_vectors))
        self.code_bits, self.vec_bits = int(d.code_bits.value), int(d.vec_bits.value)

    async def _pulse(self, sig) -> None:
        await pulse(self.dut, sig)

    async def run(self, codes: np.ndarray, x: np.ndarray) -> dict:
        dut = self.dut
        assert len(x) <= min(self.mem_depth, (1 << len(dut.n_vectors)) - 1) and len(codes) <= self.mem_depth
        for name, data in memory_files(self.cfg, codes, x, self.code_bits, self.vec_bits).items():
            Path(name).write_bytes(data)
        await self._pulse(dut.load)
        await RisingEdge(dut.clk)  # the edge that sampled load copied the files in
        dut.n_vectors.value = len(x)
        await self._pulse(dut.start)
        limit = 4 * predict_emulator(self.cfg, len(x)).cycles + 1000  # a run 4x the model's has failed
        dut.free_run.value = 1
        try:
            await with_timeout(RisingEdge(dut.done), 10 * limit, "ns")
        except SimTimeoutError:
            raise AssertionError(f"done did not rise within {limit} cycles of start") from None
        dut.free_run.value = 0
        # The last output beat leaves in done's cycle and is captured at the edge that ends it. A RisingEdge
        # of the main's clock fires before that edge is evaluated, so the second one sees the capture.
        await ClockCycles(dut.clk, 2)
        n_out = int(dut.n_out.value)
        data = await dump_bytes(dut, Path(OUT_FILE), n_out)
        d = self.cfg.data_bits
        lanes = words_to_lanes(data, n_out, 2 * self.cfg.n, d, self.vec_bits).astype(np.int64)
        outputs = np.where(lanes >> (d - 1), lanes - (1 << d), lanes).reshape(n_out, self.cfg.n, 2)
        return {"outputs": outputs, "cycles": int(dut.cycles.value),
                "stall": int(dut.cnt_stall.value),
                "counters": {COUNTERS[k]: int(getattr(dut, k).value) for k in COUNTERS}}


@cocotb.test()
async def rf_array_regression(dut):
    job = read_job(Path(os.environ["HWSIM_JOB"]))
    cfg = RfArrayConfig.from_dict(job["config"])
    tb = RfArrayTB(dut, cfg)
    await tb.reset()
    rows, t0 = [], time.perf_counter()
    for idx, layer in enumerate(job["layers"]):
        t_layer = time.perf_counter()
        codes, x = np.asarray(layer["w"]), np.asarray(layer["x"])
        got = await tb.run(codes, x)
        want = ref.emulate(cfg, codes, x)
        pred = predict_emulator(cfg, len(x))
        same_shape = got["outputs"].shape == want.shape
        mismatches = int(np.count_nonzero(got["outputs"] != want)) if same_shape else want.size
        action_mismatches = sorted(f"{c}.{a}" for (c, a), v in pred.actions.counts.items()
                                   if got["counters"].get((c, a)) != v)
        count_diffs = {f"{c}.{a}": [got["counters"].get((c, a)), v] for (c, a), v in pred.actions.counts.items()
                       if got["counters"].get((c, a)) != v}
        if got["stall"] != pred.stall_cycles:
            count_diffs["stall_cycles"] = [got["stall"], pred.stall_cycles]
        rows.append({"index": idx, "name": layer.get("name", f"run{idx}"), "kind": "mesh",
                     "shape": layer.get("shape"), "vectors": int(want.size), "mismatches": mismatches,
                     "rtl_cycles": got["cycles"], "predicted_cycles": pred.cycles,
                     "rtl_stalls": got["stall"], "predicted_stalls": pred.stall_cycles,
                     "action_mismatches": action_mismatches, "count_diffs": count_diffs,
                     "actions": {f"{c}.{a}": v for (c, a), v in got["counters"].items()},
                     "count_mismatches": len(count_diffs), "wall_seconds": time.perf_counter() - t_layer})
        dut._log.info("run %d: %d values, %d mismatches, RTL %d cycles, predicted %d, action mismatches %s",
                      idx, want.size, mismatches, got["cycles"], pred.cycles, action_mismatches)
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": rows, "wall_seconds": time.perf_counter() - t0}, f)
    assert all(r["mismatches"] == 0 for r in rows), "output mismatches"
    assert all(r["rtl_cycles"] == r["predicted_cycles"] for r in rows), "cycle count mismatches"
    assert all(r["rtl_stalls"] == r["predicted_stalls"] and not r["action_mismatches"] for r in rows), \
        "stall or action count mismatches"
