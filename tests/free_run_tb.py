"""cocotb module for ``test_cosim.test_free_run_matches_stepped_clock``: hwsim's Verilator main
(``cosim/hdl/free_run_main.cpp``) against itself with the free run off.

On a MAC array build it runs the job's one GEMM three ways: (a) free running until ``done`` (the
testbench's default wait), (b) with ``free_run`` low, so every clock edge goes through cocotb's callbacks
(what a cocotb clock or an HDL clock gives), (c) free running with a ``Timer`` of ``timer_ns`` pending,
which must fire at its exact time, mid-GEMM. It records, per run, the simulation time from ``start`` to
``done``, the clock period seen by ``RisingEdge(clk)`` after the run, the counters and the outputs;
in (c) also the Timer's wake-up time and the ``cycles`` counter there, and the same counter at the same
time in a stepped run (d). Last, (e) waits with a cycle limit below the GEMM's length and records the
error and when it came. The pytest side compares them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge, Timer
from cocotb.utils import get_sim_time
from hwsim.cosim.mac_array_tb import MacArrayTB
from hwsim.cosim.runner import read_job

from hwsim.config import MacArrayConfig


def _now() -> int:
    return int(get_sim_time("ps"))


@cocotb.test()
async def free_run_vs_stepped(dut):
    job = read_job(Path(os.environ["HWSIM_JOB"]))
    cfg = MacArrayConfig.from_dict(job["config"])
    layer = job["layers"][0]
    timer_ns = int(job["timer_ns"])
    tb = MacArrayTB(dut, cfg)
    await tb.reset()
    out: dict = {}

    async def run(name: str, wait):
        marks: dict = {}

        async def timed_wait():
            marks["start"] = _now()
            await wait(marks)
            marks["done"] = _now()

        lanes, counters = await tb.run_gemm(layer["a"], layer["w"], layer["shift"], layer["relu"], wait=timed_wait)
        t0 = _now()
        await RisingEdge(dut.clk)
        out[name] = {**marks, "period_ps": _now() - t0, "counters": counters, "outputs": lanes.tolist()}

    async def free(marks):
        await tb.wait_done()

    async def stepped(marks):
        dut.free_run.value = 0
        await RisingEdge(dut.done)

    async def free_with_timer(marks):
        dut.free_run.value = 1
        await Timer(timer_ns, unit="ns")
        marks["timer"] = _now()
        marks["cycles_at_timer"] = int(dut.cycles.value)
        marks["busy_at_timer"] = int(dut.busy.value)
        await RisingEdge(dut.done)
        dut.free_run.value = 0

    async def stepped_with_timer(marks):
        dut.free_run.value = 0
        await Timer(timer_ns, unit="ns")
        marks["timer"] = _now()
        marks["cycles_at_timer"] = int(dut.cycles.value)
        await RisingEdge(dut.done)

    await run("free", free)
    await run("stepped", stepped)
    await run("free_timer", free_with_timer)
    await run("stepped_timer", stepped_with_timer)

    async def too_short(marks):  # the testbench's cycle limit: a failure at the limit, not a hang
        marks["start"] = _now()
        try:
            await tb.wait_done(limit_cycles=int(job["limit_cycles"]))
        except AssertionError as e:
            marks["error"], marks["error_after_ps"] = str(e), _now() - marks["start"]
        dut.free_run.value = 0
        await RisingEdge(dut.done)

    marks: dict = {}
    _, counters = await tb.run_gemm(layer["a"], layer["w"], layer["shift"], layer["relu"],
                                    wait=lambda: too_short(marks))
    out["limit"] = {**marks, "cycles": counters["cycles"]}
    Path(os.environ["HWSIM_RESULT"]).write_text(json.dumps(out))
