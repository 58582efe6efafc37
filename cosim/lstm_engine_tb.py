"""cocotb testbench of the LSTM engine (runs inside the simulator, launched by
:func:`hwsim.cosim.runner.run_job` as the test module of
:func:`hwsim.cosim.lstm_engine_harness.lstm_engine_harness`).

For every layer (prepared by :mod:`hwsim.cosim.lstm_engine_regression` with the bit-exact expectation and
the cycle model's prediction: a whole TT or HT matvec, or an LSTM run for several time steps) it writes
the load files, pulses ``load`` for the setup writes, then per step ``load`` (the ``x`` of that step),
``start`` and, for LSTM layers, two ``dump`` s (``h`` and ``c``), each time waiting for the harness's
``done`` with ``free_run`` high (hwsim's Verilator main then runs the clock without visiting cocotb's
callbacks, so no Python runs per clock cycle). It compares every output (matvec: the last buffer; LSTM:
``h`` and ``c`` after every step), the busy cycles summed over the steps and, from the top's
simulation-only activity counters, every priced action count, the per-bank working-SRAM reads/writes and
the stall cycles against the cycle model's (:func:`hwsim.cosim.lstm_engine_regression.count_diffs`; a
difference is a row's ``count_diffs``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout
from hwsim.cosim.lstm_engine_harness import ADDR_FILE, COUNTER_PORTS, DATA_FILE, OUT_FILE, SEL_FILE
from hwsim.cosim.lstm_engine_regression import count_diffs, measured_counts
from hwsim.cosim.memfile import lanes_to_words, words_to_lanes
from hwsim.cosim.runner import read_job
from hwsim.cosim.tb_util import pulse, reset_harness
from hwsim.rtl.lstm_step import EXT_RSEL, EXT_SEL

from hwsim.lstm_engine import LstmEngineConfig


def memory_file(values, bits: int) -> bytes:
    """The memory file of ``bits``-bit unsigned ``values``: Python integers of any width (split into
    32-bit lanes), or a NumPy array of non-negative integers (at most 64 bits each)."""
    c = -(-bits // 32)
    if isinstance(values, np.ndarray):
        v = values.astype(np.uint64).reshape(-1)
        lanes = np.zeros((len(v), c), dtype=np.uint64)
        for j in range(min(c, 2)):
            lanes[:, j] = (v >> np.uint64(32 * j)) & np.uint64(0xFFFFFFFF)
    else:
        lanes = np.array([[(v >> (32 * j)) & 0xFFFFFFFF for j in range(c)] for v in values],
                         dtype=np.uint64).reshape(len(values), c)
    return lanes_to_words(lanes, 32, 32 * c)


def load_files(layer: dict, data_bits: int, ldata_bits: int) -> dict[str, bytes]:
    """The harness's load files of ``layer`` (file name to bytes): its setup writes ``[ext_sel, address,
    data]`` (data an integer or a hex string), then the ``x`` of every step into buffer 0 (``data_bits``
    two's complement), the data ``ldata_bits`` wide (the top's ``ext_data``)."""
    mask = (1 << data_bits) - 1
    setup = layer["setup"]
    xs = np.atleast_2d(np.asarray(layer["x"], dtype=np.int64))
    sel = np.array([int(e[0]) for e in setup] + [EXT_SEL["buf0"]] * xs.size, dtype=np.uint64)
    addr = np.concatenate([np.array([int(e[1]) for e in setup], dtype=np.uint64),
                           np.tile(np.arange(xs.shape[1], dtype=np.uint64), xs.shape[0])])
    data = memory_file([int(e[2], 16) if isinstance(e[2], str) else int(e[2]) for e in setup], ldata_bits)
    data += memory_file(xs & mask, ldata_bits)
    return {SEL_FILE: memory_file(sel, 32), ADDR_FILE: memory_file(addr, 32), DATA_FILE: data}


def write_load_files(layer: dict, data_bits: int, ldata_bits: int, mem_depth: int) -> None:
    """Write ``layer``'s :func:`load_files` into the working directory, after checking that its load entries
    fit the harness's ``mem_depth``."""
    files = load_files(layer, data_bits, ldata_bits)
    if len(files[SEL_FILE]) // 4 > mem_depth:
        raise AssertionError(f"layer {layer['name']} needs {len(files[SEL_FILE]) // 4} load entries, the harness "
                             f"holds {mem_depth}")
    for name, data in files.items():
        Path(name).write_bytes(data)


class LstmEngineTB:
    """Reset, memory loading and the in-order checker for one harness instance (the clock is the Verilator
    main's, free-running while the harness works)."""

    def __init__(self, dut, cfg: LstmEngineConfig):
        self.dut = dut
        self.cfg = cfg
        self.data_bits = cfg.data_bits
        self.mem_depth = 0
        self.ldata_bits = 0  # the width of the top's ext_data, read from the harness after reset
        #: Testbench wall seconds by phase, summed over layers: writing the load files; the harness's loads
        #: (setup and x); the runs from ``start`` to ``done``; the dumps; the checks.
        self.phases = dict.fromkeys(("prepare", "load", "simulate", "dump", "check"), 0.0)

    def _lap(self, phase: str, t0: float) -> float:
        now = time.perf_counter()
        self.phases[phase] += now - t0
        return now

    def counts(self) -> dict:
        """The harness's activity counters as :func:`measured_counts` (widths read from the DUT)."""
        dut = self.dut
        w = len(dut.cnt_bank_rd) // self.cfg.banks
        rd, wr = int(dut.cnt_bank_rd.value), int(dut.cnt_bank_wr.value)
        mask = (1 << w) - 1
        scalars = [n for n in COUNTER_PORTS if n not in ("cnt_bank_rd", "cnt_bank_wr")]
        return measured_counts(self.cfg, {n: int(getattr(dut, n).value) for n in scalars},
                               [(rd >> (b * w)) & mask for b in range(self.cfg.banks)],
                               [(wr >> (b * w)) & mask for b in range(self.cfg.banks)])

    async def reset(self):
        d = self.dut
        self.mem_depth = await reset_harness(d, (d.free_run, d.load, d.clear, d.start, d.dump, d.n_stages, d.gates,
                                                 d.rsel, d.ld_first, d.ld_count, d.n_out, d.x_first, d.n_x))
        self.ldata_bits = int(d.ldata_bits.value)

    async def _wait_done(self, what: str, limit_cycles: int) -> None:
        """Wait for the harness's ``done`` with ``free_run`` high (the Verilator main free-runs the clock
        until it rises); one that has not risen within ``limit_cycles`` fails the test instead of hanging."""
        self.dut.free_run.value = 1
        try:
            await with_timeout(RisingEdge(self.dut.done), 10 * (limit_cycles + 100), "ns")
        except SimTimeoutError:
            raise AssertionError(f"{what}: done did not rise within {limit_cycles + 100} cycles") from None
        self.dut.free_run.value = 0

    async def _load(self, first: int, count: int, clear: bool = False):
        dut = self.dut
        dut.ld_first.value, dut.ld_count.value, dut.clear.value = first, count, int(clear)
        await pulse(dut, dut.load)
        await self._wait_done("load", count)

    async def _dump(self, rsel: int, count: int) -> np.ndarray:
        dut, mask = self.dut, (1 << self.data_bits) - 1
        dut.rsel.value, dut.n_out.value = rsel, count
        path = Path(OUT_FILE)
        path.unlink(missing_ok=True)
        await pulse(dut, dut.dump)
        await self._wait_done("dump", count)
        raw = words_to_lanes(path.read_bytes(), count, 1, 32, 32)[:, 0].astype(np.int64) & mask
        return np.where(raw > mask >> 1, raw - (mask + 1), raw)

    async def run(self, layer: dict) -> dict:
        dut = self.dut
        t0 = time.perf_counter()
        xs = np.atleast_2d(np.asarray(layer["x"], dtype=np.int64))
        setup = layer["setup"]
        N = xs.shape[1]
        write_load_files(layer, self.data_bits, self.ldata_bits, self.mem_depth)
        n = int(layer["n_stages"])
        gates = bool(layer["gates"])
        dut.n_stages.value, dut.gates.value = n, int(gates)
        t0 = self._lap("prepare", t0)
        await self._load(0, len(setup), clear=True)
        t0 = self._lap("load", t0)
        # A run that takes four times the predicted cycles has failed: do not wait forever.
        limit = 4 * int(layer["predicted_cycles"]) + 1000
        cycles, got, want = 0, [], []
        for t in range(len(xs)):
            if self.cfg.x_load == "stream":  # the run takes x from its i_x stream (harness entries)
                dut.x_first.value, dut.n_x.value = len(setup) + t * N, N
            else:
                await self._load(len(setup) + t * N, N)
                t0 = self._lap("load", t0)
            await pulse(dut, dut.start)
            await self._wait_done("run", limit)
            cycles += int(dut.cycles.value)
            t0 = self._lap("simulate", t0)
            if gates:
                H = int(layer["hidden"])
                got += [await self._dump(EXT_RSEL["hmem"], H), await self._dump(EXT_RSEL["cmem"], H)]
                want += [np.asarray(layer["expect_h"][t]), np.asarray(layer["expect_c"][t])]
                t0 = self._lap("dump", t0)
        diffs = count_diffs(self.counts(), layer["expect_counts"])
        if not gates:
            raw = await self._dump(n % 2, len(layer["expect_out"]))
            got = [raw[np.asarray(layer["perm"], dtype=np.int64)]]
            want = [np.asarray(layer["expect_out"], dtype=np.int64)]
            t0 = self._lap("dump", t0)
        got, want = np.concatenate(got), np.concatenate(want)
        row = {"name": layer["name"], "kind": layer["kind"], "shape": layer["shape"], "vectors": int(want.size),
               "mismatches": int(np.count_nonzero(got != want)), "rtl_cycles": cycles,
               "predicted_cycles": int(layer["predicted_cycles"]), "count_diffs": diffs,
               "count_mismatches": len(diffs)}
        self._lap("check", t0)
        return row


@cocotb.test()
async def lstm_engine_regression(dut):
    job = read_job(Path(os.environ["HWSIM_JOB"]))
    tb = LstmEngineTB(dut, LstmEngineConfig.from_dict(job["config"]))
    await tb.reset()
    t0 = time.perf_counter()
    rows = []
    for layer in job["layers"]:
        t_layer = time.perf_counter()
        rows.append({**await tb.run(layer), "wall_seconds": time.perf_counter() - t_layer})
        dut._log.info("%s: %d outputs, %d mismatches, RTL %d cycles, predicted %d, count differences %s",
                      rows[-1]["name"], rows[-1]["vectors"], rows[-1]["mismatches"], rows[-1]["rtl_cycles"],
                      rows[-1]["predicted_cycles"], rows[-1]["count_diffs"])
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": rows, "wall_seconds": time.perf_counter() - t0,
                   "rtl_cycles": sum(r["rtl_cycles"] for r in rows), "phase_seconds": tb.phases}, f)
    assert all(r["mismatches"] == 0 for r in rows), "output mismatches"
    assert all(r["rtl_cycles"] == r["predicted_cycles"] for r in rows), "cycle count mismatches"
    assert all(not r["count_diffs"] for r in rows), "stall or action count mismatches"
