"""cocotb testbench for the RF mesh emulator (runs inside the simulator; launched by
``hwsim.cosim.runner.run_job`` as the test module of :func:`hwsim.cosim.rf_array_harness.rf_array_harness`).

Each job layer is one run: phase codes (``w``) and input vectors (``x``, shape (V, n, 2)). The testbench
loads the harness memories from files, pulses ``start``, waits for ``done``, reads the captured outputs
back and checks, against the bit-exact reference and the cycle model: every output value in order, the
busy cycles, the stall cycles and every activity counter the cost model prices.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from hwsim.cosim.rf_array_harness import CODE_FILE, OUT_FILE, VEC_FILE
from hwsim.cosim.runner import read_job
from hwsim.cosim.tb_util import dump_beats, pulse, reset_harness
from hwsim.models import rf_array as ref
from hwsim.rtl.rf_array import COUNTERS

from hwsim.rf_array import RfArrayConfig, predict_emulator

__all__ = ["RfArrayTB", "pack_vectors", "unpack_vectors"]


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


class RfArrayTB:
    """Clock, reset, memory preload (driver), output capture (monitor), reference and in-order checker."""

    def __init__(self, dut, cfg: RfArrayConfig):
        self.dut, self.cfg = dut, cfg
        self.mem_depth = 0

    async def reset(self):
        d = self.dut
        self.mem_depth = await reset_harness(d, (d.start, d.load, d.dump, d.n_vectors), clock=True)

    async def _pulse(self, sig) -> None:
        await pulse(self.dut, sig)

    async def run(self, codes: np.ndarray, x: np.ndarray) -> dict:
        dut = self.dut
        assert len(x) <= min(self.mem_depth, (1 << len(dut.n_vectors)) - 1) and len(codes) <= self.mem_depth
        Path(CODE_FILE).write_text("".join(f"{int(c):x}\n" for c in codes))
        Path(VEC_FILE).write_text("".join(f"{b:x}\n" for b in pack_vectors(self.cfg, x)))
        await self._pulse(dut.load)
        dut.n_vectors.value = len(x)
        await self._pulse(dut.start)
        await RisingEdge(dut.done)
        await RisingEdge(dut.clk)
        n_out = int(dut.n_out.value)
        beats = await dump_beats(dut, Path(OUT_FILE), n_out)
        return {"outputs": unpack_vectors(self.cfg, beats), "cycles": int(dut.cycles.value),
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
                     "actions": {f"{c}.{a}": v for (c, a), v in got["counters"].items()}})
        dut._log.info("run %d: %d values, %d mismatches, RTL %d cycles, predicted %d, action mismatches %s",
                      idx, want.size, mismatches, got["cycles"], pred.cycles, action_mismatches)
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": rows, "wall_seconds": time.perf_counter() - t0}, f)
    assert all(r["mismatches"] == 0 for r in rows), "output mismatches"
    assert all(r["rtl_cycles"] == r["predicted_cycles"] for r in rows), "cycle count mismatches"
    assert all(r["rtl_stalls"] == r["predicted_stalls"] and not r["action_mismatches"] for r in rows), \
        "stall or action count mismatches"
