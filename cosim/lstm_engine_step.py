"""The gate unit and a full LSTM time step through the LSTM engine's RTL on Amaranth's simulator.

* :func:`run_nonlinearity` and :func:`run_gates` run :mod:`hwsim.rtl.lstm_gates` blocks inside a small
  simulation wrapper whose ROM feeds one operand per cycle and whose RAM captures the results, so the
  testbench does not run Python per clock cycle (it only waits for ``done`` and reads the RAM).
* :func:`run_layer` runs a testbench layer (a matvec, or LSTM time steps) on the whole engine top
  (:class:`hwsim.rtl.lstm_step.LstmStepEngine`): per step the input layer ``W x`` (all TT/HT stages) and
  the hidden stage ``U h`` on the stage engine, then the RTL's gather streams every hidden unit's
  ``zx``/``zh``/``b``/``c`` through the gate unit and writes ``h'``/``c'`` back; :func:`run_step` runs
  ``T`` steps with ``h`` and ``c`` carried in the RTL's state memories.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from hwsim.cosim.lstm_engine_regression import hidden_format
from hwsim.rtl.lstm_gates import GATE_COUNTERS, LstmGateUnit, LstmNonlinearity, gate_in_layout, gate_out_layout

__all__ = ["hidden_format", "pack_gate_ops", "run_gates", "run_layer", "run_nonlinearity", "run_step"]


class _NlWrapper(Elaboratable):
    def __init__(self, cfg, kind, codes):
        self.dut = LstmNonlinearity(cfg, kind)
        self.n = len(codes)
        mask = (1 << cfg.data_bits) - 1
        self.rom = Memory(shape=cfg.data_bits, depth=self.n, init=[int(v) & mask for v in codes])
        self.ram = Memory(shape=cfg.data_bits, depth=self.n, init=[])
        self.done = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut, m.submodules.rom, m.submodules.ram = self.dut, self.rom, self.ram
        idx = Signal(range(self.n + 1))
        rd, wr = self.rom.read_port(domain="comb"), self.ram.write_port()
        m.d.comb += [rd.addr.eq(idx), self.dut.x.eq(rd.data), wr.addr.eq(idx), wr.data.eq(self.dut.y),
                     wr.en.eq(idx < self.n), self.done.eq(idx == self.n)]
        with m.If(idx < self.n):
            m.d.sync += idx.eq(idx + 1)
        return m


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def run_nonlinearity(cfg, kind: str, codes) -> np.ndarray:
    """``kind`` (``sigmoid``/``tanh``) of every code in ``codes`` through :class:`LstmNonlinearity`."""
    top = _NlWrapper(cfg, kind, codes)
    out = {}

    async def tb(ctx):
        await ctx.tick().until(top.done)
        out["y"] = [_signed(ctx.get(top.ram.data[i]), cfg.data_bits) for i in range(top.n)]

    sim = Simulator(top)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    return np.array(out["y"], dtype=np.int64)


def pack_gate_ops(cfg, zx, zh, b, c) -> list[int]:
    """One ``gate_in_layout`` word per hidden unit ``j`` from the 4H vectors ``zx``, ``zh``, ``b`` (gate
    ``g`` of unit ``j`` at row ``g*H + j``) and the H vector ``c``."""
    lay = gate_in_layout(cfg)
    H = len(c)
    rows = lambda v, j: [int(v[g * H + j]) for g in range(4)]  # noqa: E731
    return [lay.const({"zx": rows(zx, j), "zh": rows(zh, j), "b": rows(b, j), "c": int(c[j])}).as_value().value
            for j in range(H)]


class _GateWrapper(Elaboratable):
    def __init__(self, cfg, words):
        self.cfg = cfg
        self.dut = LstmGateUnit(cfg, debug=True)
        self.n = len(words)
        self.rom = Memory(shape=gate_in_layout(cfg).size, depth=self.n, init=words)
        self.ram = Memory(shape=gate_out_layout(cfg).size, depth=self.n, init=[])
        self.cycles, self.done = Signal(32), Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut, m.submodules.rom, m.submodules.ram = self.dut, self.rom, self.ram
        dut = self.dut
        idx, oidx = Signal(range(self.n + 1)), Signal(range(self.n + 1))
        rd, wr = self.rom.read_port(domain="comb"), self.ram.write_port()
        m.d.comb += [rd.addr.eq(idx), dut.i_op.payload.as_value().eq(rd.data), dut.i_op.valid.eq(idx < self.n),
                     dut.o_hc.ready.eq(1), wr.addr.eq(oidx), wr.data.eq(dut.o_hc.payload.as_value()),
                     wr.en.eq(dut.o_hc.valid), self.done.eq(oidx == self.n)]
        with m.If(dut.i_op.valid & dut.i_op.ready):
            m.d.sync += idx.eq(idx + 1)
        with m.If(dut.o_hc.valid):
            m.d.sync += oidx.eq(oidx + 1)
        with m.If((dut.i_op.valid & dut.i_op.ready) | dut.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m


def run_gates(cfg, zx, zh, b, c) -> tuple[np.ndarray, np.ndarray, int, dict]:
    """The H hidden units through :class:`LstmGateUnit`: ``(h', c')``, the cycles from the first unit
    accepted to the last delivered, and the gate unit's counters as ``{(component, action): count}``."""
    top = _GateWrapper(cfg, pack_gate_ops(cfg, zx, zh, b, c))
    lay = gate_out_layout(cfg)
    res = {}

    async def tb(ctx):
        await ctx.tick().until(top.done)
        await ctx.tick()
        words = [ctx.get(top.ram.data[i]) for i in range(top.n)]
        get = lambda w, f: _signed((w >> lay[f].offset) & ((1 << lay[f].width) - 1), cfg.data_bits)  # noqa: E731
        res["h"] = np.array([get(w, "h") for w in words], dtype=np.int64)
        res["c"] = np.array([get(w, "c") for w in words], dtype=np.int64)
        res["cycles"] = ctx.get(top.cycles)
        res["counts"] = {GATE_COUNTERS[n]: ctx.get(getattr(top.dut, n)) for n in GATE_COUNTERS}

    sim = Simulator(top)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    return res["h"], res["c"], res["cycles"], res["counts"]


def run_layer(cfg, layer: dict) -> dict:
    """Run a testbench layer (:func:`hwsim.cosim.lstm_engine_regression.job_layer` or ``step_layer``) on
    the whole engine top (:class:`hwsim.rtl.lstm_step.LstmStepEngine`, ``debug=True``) in Amaranth's
    simulator, as the Verilator testbench does: the setup writes, then per step the ``x`` load, ``start``
    and (step layers) a read of ``h`` and ``c``. Returns the busy cycles of every run (``cycles``), the
    outputs (``out`` in natural order for a matvec; ``h``, ``c`` per step for a step layer) and the
    measured counts (:func:`hwsim.cosim.lstm_engine_regression.measured_counts`)."""
    from hwsim.cosim.lstm_engine_regression import sim_counts
    from hwsim.rtl.lstm_engine import COUNTERS
    from hwsim.rtl.lstm_step import EXT_RSEL, EXT_SEL, STEP_COUNTERS, LstmStepEngine

    dut = LstmStepEngine(cfg, debug=True)
    mask = (1 << cfg.data_bits) - 1
    res = {"cycles": [], "h": [], "c": []}
    n = int(layer["n_stages"])

    async def write(ctx, items):
        for sel, addr, data in items:
            ctx.set(dut.ext_we, 1)
            ctx.set(dut.ext_sel, int(sel))
            ctx.set(dut.ext_addr, int(addr))
            ctx.set(dut.ext_data, int(data, 16) if isinstance(data, str) else int(data))
            await ctx.tick()
        ctx.set(dut.ext_we, 0)

    async def read(ctx, rsel, count):
        ctx.set(dut.ext_rsel, rsel)
        out = []
        for i in range(count):
            ctx.set(dut.ext_raddr, i)
            await ctx.tick()
            out.append(ctx.get(dut.ext_rdata))
        return np.array(out, dtype=np.int64)

    async def tb(ctx):
        ctx.set(dut.dbg_clear, 1)
        await ctx.tick()
        ctx.set(dut.dbg_clear, 0)
        await write(ctx, layer["setup"])
        stream_x = cfg.x_load == "stream"
        for x in np.atleast_2d(layer["x"]):
            if stream_x:  # the run takes x from its i_x stream, kept valid, one element per cycle
                ctx.set(dut.n_x, len(x))
                ctx.set(dut.i_x.valid, 1)
            else:
                await write(ctx, [(EXT_SEL["buf0"], i, int(v) & mask) for i, v in enumerate(x)])
            ctx.set(dut.n_stages, n)
            ctx.set(dut.gates, int(layer["gates"]))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles, xi = 0, 0
            while not ctx.get(dut.done):
                if stream_x:
                    ctx.set(dut.i_x.payload, int(x[min(xi, len(x) - 1)]))
                    xi += ctx.get(dut.i_x.ready)
                cycles += ctx.get(dut.busy)
                await ctx.tick()
            res["cycles"].append(cycles)
            if layer["gates"]:
                res["h"].append(await read(ctx, EXT_RSEL["hmem"], layer["hidden"]))
                res["c"].append(await read(ctx, EXT_RSEL["cmem"], layer["hidden"]))
        if not layer["gates"]:
            raw = await read(ctx, n % 2, len(layer["expect_out"]))
            res["out"] = raw[np.asarray(layer["perm"], dtype=np.int64)]
        res["counts"] = sim_counts(cfg, ctx, dut, (*COUNTERS, *STEP_COUNTERS, *GATE_COUNTERS))

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    return res


def run_step(cfg, q, xs, h0, c0) -> dict:
    """``len(xs)`` LSTM time steps of ``q`` (:class:`hwsim.models.lstm_engine.FixedLstm`) from
    ``(h0, c0)`` through the whole engine RTL on Amaranth's simulator (:func:`run_layer` of
    :func:`hwsim.cosim.lstm_engine_regression.step_layer`): ``h`` and ``c`` after every step, the busy
    cycles of every step, the measured counts of all steps, and the layer (with its expectations)."""
    from hwsim.cosim.lstm_engine_regression import step_layer

    layer = step_layer(cfg, q, xs, h0, c0)
    res = run_layer(cfg, layer)
    return {"h": np.stack(res["h"]), "c": np.stack(res["c"]), "cycles": res["cycles"], "counts": res["counts"],
            "layer": layer}
