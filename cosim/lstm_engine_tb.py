"""cocotb testbench of the LSTM engine (runs inside the simulator, launched by
:func:`hwsim.cosim.runner.run_job` as the test module of
:func:`hwsim.cosim.lstm_engine_harness.lstm_engine_harness`).

For every job (a whole TT or HT matvec, prepared by :mod:`hwsim.cosim.lstm_engine_regression` with the
bit-exact expectation and the cycle model's prediction) it writes the memory images, pulses ``load``,
``start`` and ``dump`` and waits on the harness's flags (no Python per clock cycle), then compares every
output, the busy cycles and, from the top's simulation-only activity counters, every priced action count,
the per-bank working-SRAM reads/writes and the stall cycles against the cycle model's
(:func:`hwsim.cosim.lstm_engine_regression.count_diffs`; a difference is a row's ``count_diffs``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from hwsim.cosim.lstm_engine_regression import count_diffs, measured_counts
from hwsim.cosim.runner import read_job
from hwsim.cosim.tb_util import pulse, reset_harness
from hwsim.rtl.lstm_engine import COUNTERS

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
        return measured_counts(self.cfg, {n: int(getattr(dut, n).value) for n in COUNTERS},
                               [(rd >> (b * w)) & mask for b in range(self.cfg.banks)],
                               [(wr >> (b * w)) & mask for b in range(self.cfg.banks)])

    async def reset(self):
        d = self.dut
        await reset_harness(d, (d.load, d.start, d.dump, d.n_stages, d.rbuf, d.n_desc, d.n_w, d.n_x, d.n_out))

    async def _pulse(self, sig):
        await pulse(self.dut, sig)

    async def run(self, layer: dict) -> dict:
        dut, mask = self.dut, (1 << self.data_bits) - 1
        Path("desc.hex").write_text("".join(f"{int(v):x}\n" for v in layer["desc"]))
        Path("wmem.hex").write_text("".join(f"{int(v):x}\n" for v in layer["weights"]))
        Path("xmem.hex").write_text("".join(f"{int(v) & mask:x}\n" for v in layer["x"]))
        n_out = len(layer["expect_out"])
        dut.n_desc.value, dut.n_w.value = len(layer["desc"]), len(layer["weights"])
        dut.n_x.value, dut.n_out.value = len(layer["x"]), n_out
        dut.n_stages.value, dut.rbuf.value = len(layer["desc"]), len(layer["desc"]) % 2
        await self._pulse(dut.load)
        await RisingEdge(dut.loaded)
        await self._pulse(dut.start)
        await RisingEdge(dut.finished)
        cycles = int(dut.cycles.value)
        diffs = count_diffs(self.counts(), layer["expect_counts"])
        await self._pulse(dut.dump)
        await RisingEdge(dut.dumped)
        await RisingEdge(dut.clk)
        raw = np.array([int(t, 16) for t in Path("out.hex").read_text().split() if not t.startswith("//")],
                       dtype=np.int64)
        raw = np.where(raw > mask >> 1, raw - (mask + 1), raw)
        got = raw[np.asarray(layer["perm"], dtype=np.int64)]
        expect = np.asarray(layer["expect_out"], dtype=np.int64)
        return {"name": layer["name"], "kind": layer["kind"], "shape": layer["shape"], "vectors": int(expect.size),
                "mismatches": int(np.count_nonzero(got != expect)), "rtl_cycles": cycles,
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
