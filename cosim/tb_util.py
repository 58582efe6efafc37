"""What every family's cocotb testbench does the same way: reset the harness and pulse its controls.

Runs inside the simulator (imported by the ``*_tb.py`` modules). Each harness has ``clk``, ``rst`` and
one-cycle ``load``/``start``/``dump`` controls; most report their memory depth on ``mem_depth``.
"""

from __future__ import annotations

from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

__all__ = ["dump_beats", "dump_bytes", "dump_text", "pulse", "reset_harness"]


async def reset_harness(dut, inputs, clock: bool = False) -> int | None:
    """Zero ``inputs``, hold ``rst`` for 3 cycles and return the harness's ``mem_depth`` (None if it has none).

    ``clock=True`` drives ``clk`` from cocotb (10 ns); harnesses that generate their own clock in HDL
    (built with ``--timing``) or get it from hwsim's Verilator main (``free_run_main.cpp``) leave it False.
    """
    if clock:
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for sig in inputs:
        sig.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    return int(dut.mem_depth.value) if hasattr(dut, "mem_depth") else None


async def pulse(dut, sig) -> None:
    """Drive ``sig`` high for one clock cycle."""
    sig.value = 1
    await RisingEdge(dut.clk)
    sig.value = 0


async def dump_bytes(dut, path: Path, n_out: int) -> bytes:
    """Pulse ``dump`` (the harness writes its output memory to ``path``) and return the file's bytes
    (empty when ``n_out`` is 0, when the harness writes nothing)."""
    path.unlink(missing_ok=True)
    await pulse(dut, dut.dump)
    await RisingEdge(dut.clk)  # the edge that sampled dump wrote the file
    return path.read_bytes() if n_out else b""


async def dump_text(dut, path: Path, n_out: int) -> str:
    """:func:`dump_bytes` of a ``$writememh`` dump, as text."""
    return (await dump_bytes(dut, path, n_out)).decode()


async def dump_beats(dut, path: Path, n_out: int) -> list[int]:
    """:func:`dump_text` as integers, one per line of the dump (the harness's whole output memory; none
    when ``n_out`` is 0)."""
    return [int(line, 16) for line in (await dump_text(dut, path, n_out)).split()]
