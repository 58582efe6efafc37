"""The gate unit and a full LSTM time step through the LSTM engine's RTL on Amaranth's simulator.

* :func:`run_nonlinearity` and :func:`run_gates` run :mod:`hwsim.rtl.lstm_gates` blocks inside a small
  simulation wrapper whose ROM feeds one operand per cycle and whose RAM captures the results, so the
  testbench does not run Python per clock cycle (it only waits for ``done`` and reads the RAM).
* :func:`run_step` runs one time step: the input layer ``W x`` (all TT/HT stages) and the hidden stage
  ``U h`` (one more stage descriptor: ``R = 4H``, ``K = H``, ``Q = 1``, shift ``e_u``) on the stage
  engine (:class:`hwsim.rtl.lstm_engine.LstmStageEngine`), then the ``H`` hidden units through the gate
  unit. Moving ``zx``/``zh``/``b``/``c`` from the engine's buffers to the gate unit's input stream is done
  by the testbench (the RTL has no gather path yet), untimed like the ``x`` load.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from hwsim.models import tensor_formats as tf
from hwsim.rtl.lstm_gates import GATE_COUNTERS, LstmGateUnit, LstmNonlinearity, gate_in_layout, gate_out_layout

__all__ = ["hidden_format", "pack_gate_ops", "run_gates", "run_nonlinearity", "run_step"]


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


def hidden_format(U) -> tf.TTMatrix:
    """The hidden stage as a one-core TT-matrix (4H x H, ranks (1, 1)): one stage ``R = 4H``, ``K = H``,
    ``Q = 1`` accumulated in hidden-index order, exactly ``accumulate_dense`` of the reference."""
    U = np.asarray(U, dtype=np.int64)
    fmt = tf.TTMatrix.random((U.shape[0],), (U.shape[1],), (1, 1), rng=0)
    return fmt.with_factors([U.reshape(fmt.factors[0].data.shape)])


def run_step(cfg, q, x, h, c) -> dict:
    """One LSTM step of the quantized LSTM ``q`` (:class:`hwsim.models.lstm_engine.FixedLstm`) through
    the RTL: ``h'``, ``c'``, the intermediate ``zx``/``zh``, the cycles of each phase and their sum, and
    the measured counts of each phase (matvec and hidden stage as
    :func:`hwsim.cosim.lstm_engine_regression.measured_counts`, gates as :func:`run_gates`)."""
    from hwsim.cosim.lstm_engine_regression import make_job, run_amaranth

    mv = make_job(cfg, q.fmt, x, q.shifts, q.order, name="wx")
    zx, mv_cycles, mv_counts = run_amaranth(cfg, mv)
    hid = make_job(cfg, hidden_format(q.U), h, [q.e_u], name="uh")
    zh, hid_cycles, hid_counts = run_amaranth(cfg, hid)
    h2, c2, gate_cycles, gate_counts = run_gates(cfg, zx, zh, q.b, c)
    return {"h": h2, "c": c2, "zx": zx, "zh": zh, "cycles": mv_cycles + hid_cycles + gate_cycles,
            "phase_cycles": {"matvec": mv_cycles, "hidden": hid_cycles, "gates": gate_cycles},
            "counts": {"matvec": mv_counts, "hidden": hid_counts, "gates": gate_counts}}
