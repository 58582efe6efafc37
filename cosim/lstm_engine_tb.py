"""cocotb testbench of the LSTM engine (runs inside the simulator, launched by
:func:`hwsim.cosim.runner.run_job` as the test module of
:func:`hwsim.cosim.lstm_engine_harness.lstm_engine_harness`).

For every layer (prepared by :mod:`hwsim.cosim.lstm_engine_regression` with the bit-exact expectation and
the cycle model's prediction: a whole TT or HT matvec, or an LSTM run for several time steps) it writes
the load images, pulses ``load`` for the setup writes, then per step ``load`` (the ``x`` of that step),
``start`` and, for LSTM layers, two ``dump`` s (``h`` and ``c``), waiting on the harness's flags (no
Python per clock cycle). It compares every output (matvec: the last buffer; LSTM: ``h`` and ``c`` after
every step), the busy cycles summed over the steps and, from the top's simulation-only activity counters,
every priced action count, the per-bank working-SRAM reads/writes and the stall cycles against the cycle
model's (:func:`hwsim.cosim.lstm_engine_regression.count_diffs`; a difference is a row's ``count_diffs``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from hwsim.cosim.lstm_engine_harness import COUNTER_PORTS
from hwsim.cosim.lstm_engine_regression import count_diffs, measured_counts
from hwsim.cosim.runner import read_job
from hwsim.cosim.tb_util import pulse, reset_harness
from hwsim.rtl.lstm_step import EXT_RSEL, EXT_SEL

from hwsim.lstm_engine import LstmEngineConfig


class LstmEngineTB:
    """Clock, reset, memory loading and the in-order checker for one harness instance."""

    def __init__(self, dut, cfg: LstmEngineConfig):
        self.dut = dut
        self.cfg = cfg
        self.data_bits = cfg.data_bits

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
        await reset_harness(d, (d.load, d.clear, d.start, d.dump, d.n_stages, d.gates, d.rsel, d.ld_first,
                                d.ld_count, d.n_out, d.x_first, d.n_x))

    async def _load(self, first: int, count: int, clear: bool = False):
        dut = self.dut
        dut.ld_first.value, dut.ld_count.value, dut.clear.value = first, count, int(clear)
        await pulse(dut, dut.load)
        await RisingEdge(dut.loaded)

    async def _dump(self, rsel: int, count: int) -> np.ndarray:
        dut, mask = self.dut, (1 << self.data_bits) - 1
        dut.rsel.value, dut.n_out.value = rsel, count
        await pulse(dut, dut.dump)
        await RisingEdge(dut.dumped)
        await RisingEdge(dut.clk)
        raw = np.array([int(t, 16) for t in Path("out.hex").read_text().split() if not t.startswith("//")],
                       dtype=np.int64)
        return np.where(raw > mask >> 1, raw - (mask + 1), raw)

    async def run(self, layer: dict) -> dict:
        dut, mask = self.dut, (1 << self.data_bits) - 1
        xs = np.atleast_2d(np.asarray(layer["x"], dtype=np.int64))
        setup = layer["setup"]
        N = xs.shape[1]
        entries = list(setup) + [[EXT_SEL["buf0"], i, f"{int(v) & mask:x}"] for x in xs for i, v in enumerate(x)]
        Path("lsel.hex").write_text("".join(f"{int(e[0]):x}\n" for e in entries))
        Path("laddr.hex").write_text("".join(f"{int(e[1]):x}\n" for e in entries))
        Path("ldata.hex").write_text("".join(f"{e[2]}\n" for e in entries))
        n = int(layer["n_stages"])
        gates = bool(layer["gates"])
        dut.n_stages.value, dut.gates.value = n, int(gates)
        await self._load(0, len(setup), clear=True)
        cycles, got, want = 0, [], []
        for t in range(len(xs)):
            if self.cfg.x_load == "stream":  # the run takes x from its i_x stream (harness entries)
                dut.x_first.value, dut.n_x.value = len(setup) + t * N, N
            else:
                await self._load(len(setup) + t * N, N)
            await pulse(dut, dut.start)
            await RisingEdge(dut.finished)
            cycles += int(dut.cycles.value)
            if gates:
                H = int(layer["hidden"])
                got += [await self._dump(EXT_RSEL["hmem"], H), await self._dump(EXT_RSEL["cmem"], H)]
                want += [np.asarray(layer["expect_h"][t]), np.asarray(layer["expect_c"][t])]
        diffs = count_diffs(self.counts(), layer["expect_counts"])
        if not gates:
            raw = await self._dump(n % 2, len(layer["expect_out"]))
            got = [raw[np.asarray(layer["perm"], dtype=np.int64)]]
            want = [np.asarray(layer["expect_out"], dtype=np.int64)]
        got, want = np.concatenate(got), np.concatenate(want)
        return {"name": layer["name"], "kind": layer["kind"], "shape": layer["shape"], "vectors": int(want.size),
                "mismatches": int(np.count_nonzero(got != want)), "rtl_cycles": cycles,
                "predicted_cycles": int(layer["predicted_cycles"]), "count_diffs": diffs,
                "count_mismatches": len(diffs)}


@cocotb.test()
async def lstm_engine_regression(dut):
    job = read_job(Path(os.environ["HWSIM_JOB"]))
    tb = LstmEngineTB(dut, LstmEngineConfig.from_dict(job["config"]))
    await tb.reset()
    t0 = time.perf_counter()
    rows = []
    for layer in job["layers"]:
        rows.append(await tb.run(layer))
        dut._log.info("%s: %d outputs, %d mismatches, RTL %d cycles, predicted %d, count differences %s",
                      rows[-1]["name"], rows[-1]["vectors"], rows[-1]["mismatches"], rows[-1]["rtl_cycles"],
                      rows[-1]["predicted_cycles"], rows[-1]["count_diffs"])
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": rows, "wall_seconds": time.perf_counter() - t0}, f)
    assert all(r["mismatches"] == 0 for r in rows), "output mismatches"
    assert all(r["rtl_cycles"] == r["predicted_cycles"] for r in rows), "cycle count mismatches"
    assert all(not r["count_diffs"] for r in rows), "stall or action count mismatches"
