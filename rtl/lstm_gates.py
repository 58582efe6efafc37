"""Amaranth RTL of the LSTM engine's fixed-point gate unit: element-wise sigmoid/tanh (PLAN piecewise-linear
or LUT) and the cell update, one hidden unit per cycle, with exactly the integer definitions of
:mod:`hwsim.models.lstm_engine` (``cell_fixed``, ``sigmoid_fixed``, ``tanh_fixed``).

Built from one :class:`hwsim.lstm_engine.LstmEngineConfig` (``data_bits``, ``frac_bits``, ``rounding``,
``nonlinearity``, ``lut_bits``). Pipeline of :data:`hwsim.lstm_engine.GATE_LATENCY` (6) registered stages:

1. ``z = clamp(zx + zh + b)`` per gate (i, f, g, o), the three-term sum exact;
2. ``i, f, o = sigmoid(z)``, ``g = tanh(z)``;
3. ``f*c`` and ``i*g`` (exact products);
4. ``c' = clamp(round_shift(f*c + i*g, F))``;
5. ``tanh(c')``;
6. ``h' = clamp(round_shift(o * tanh(c'), F))``.

A unit accepted in cycle ``t`` leaves in cycle ``t + 6``, so ``H`` units back to back take ``H + 6`` cycles
from the first accepted to the last delivered. In the engine (:mod:`hwsim.rtl.lstm_step`) the gather
feeds it one unit every four cycles (one working-SRAM read per gate): the cycle model's
:func:`hwsim.lstm_engine.gate_phase_cycles`, ``4H + 9``.
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["GATE_COUNTERS", "LstmGateUnit", "LstmNonlinearity", "gate_in_layout", "gate_out_layout"]

#: Simulation-only activity counters of the ``debug=True`` gate unit and the (component, action) each counts.
GATE_COUNTERS = {"cnt_gate_add": ("gate_add", "add"), "cnt_sigmoid": ("sigmoid", "eval"),
                 "cnt_tanh": ("tanh", "eval"), "cnt_cell_mult": ("cell_mult", "mult"),
                 "cnt_cell_add": ("cell_add", "add"), "cnt_gate_requant": ("requant", "convert")}


def gate_in_layout(cfg) -> data.StructLayout:
    """Operands of one hidden unit ``j``: ``zx``, ``zh``, ``b`` (gates i, f, g, o, i.e. rows ``j``,
    ``H + j``, ``2H + j``, ``3H + j``) and the cell state ``c``, all signed ``data_bits``."""
    d = signed(cfg.data_bits)
    return data.StructLayout({"zx": data.ArrayLayout(d, 4), "zh": data.ArrayLayout(d, 4),
                              "b": data.ArrayLayout(d, 4), "c": d})


def gate_out_layout(cfg) -> data.StructLayout:
    """Results of one hidden unit: ``h'`` and ``c'``, signed ``data_bits``."""
    return data.StructLayout({"h": signed(cfg.data_bits), "c": signed(cfg.data_bits)})


def _clamp(m, x, bits: int, name: str) -> Signal:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = Signal(signed(bits), name=name)
    m.d.comb += out.eq(Mux(x > hi, hi, Mux(x < lo, lo, x)))
    return out


def _round_shift(m, x, shift: int, rounding: str, name: str):
    """``round_shift`` of :mod:`hwsim.models.tensor_formats` by a constant ``shift``."""
    if shift == 0:
        return x
    q = Signal(signed(len(x)), name=f"{name}_q")
    m.d.comb += q.eq(x >> shift)
    rem = x.as_unsigned()[:shift]
    half = 1 << (shift - 1)
    up = (rem >= half) if rounding == "half_up" else ((rem > half) | ((rem == half) & q[0]))
    out = Signal(signed(len(x) + 1), name=name)
    m.d.comb += out.eq(q + up)
    return out


class LstmNonlinearity(wiring.Component):
    """Combinational sigmoid or tanh of ``Q(frac_bits)`` data.

    Ports
    -----
    x : In, signed(data_bits)    the argument, ``Q(F)``
    y : Out, signed(data_bits)   ``sigmoid_fixed(x)`` or ``tanh_fixed(x)`` of the reference, same cycle
    """

    def __init__(self, cfg, kind: str):
        if kind not in ("sigmoid", "tanh"):
            raise ValueError(f"kind={kind!r} is not allowed: expected 'sigmoid' or 'tanh'")
        self.cfg, self.kind = cfg, kind
        super().__init__({"x": In(signed(cfg.data_bits)), "y": Out(signed(cfg.data_bits))})

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        db, F = cfg.data_bits, cfg.frac_bits
        if cfg.nonlinearity == "lut":
            from hwsim.models.tables import lut_table

            rom = Memory(shape=signed(db), depth=1 << cfg.lut_bits, init=[int(v) for v in lut_table(self.kind, cfg)])
            m.submodules.rom = rom
            rd = rom.read_port(domain="comb")
            # (x + 2**(db-1)) >> (db - lut_bits): the top lut_bits of x with its sign bit inverted
            m.d.comb += [rd.addr.eq((self.x.as_unsigned() ^ (1 << (db - 1)))[db - cfg.lut_bits:]),
                         self.y.eq(rd.data)]
            return m
        one = 1 << F
        c1, c2, c3 = (math.floor(c * one + 0.5) for c in (0.84375, 0.625, 0.5))
        arg = Signal(signed(db + 1))
        m.d.comb += arg.eq(self.x if self.kind == "sigmoid" else self.x * 2)
        a = Signal(db + 1)
        m.d.comb += a.eq(Mux(arg < 0, -arg, arg))
        y = Signal(signed(F + 3))
        m.d.comb += y.eq(Mux(a >= 5 * one, one, Mux(a >= (19 * one) >> 3, (a >> 5) + c1,
                                                  Mux(a >= one, (a >> 3) + c2, (a >> 2) + c3))))
        s = Signal(signed(F + 3))
        m.d.comb += s.eq(Mux(arg < 0, one - y, y))
        out = s if self.kind == "sigmoid" else (s * 2 - one)
        m.d.comb += self.y.eq(_clamp(m, out, db, "nl_y"))
        return m


class LstmGateUnit(wiring.Component):
    """The gate unit: ``H`` hidden units in, one per cycle, ``(h', c')`` out ``GATE_LATENCY`` cycles later.

    Ports
    -----
    i_op : In(stream.Signature(gate_in_layout(cfg)))    one hidden unit's operands (``zx``, ``zh``, ``b``, ``c``)
    o_hc : Out(stream.Signature(gate_out_layout(cfg)))  its ``h'``, ``c'``, 6 cycles after it was accepted
    busy : Out, 1        a unit is in the pipeline

    The whole pipeline advances when its last stage is empty or ``o_hc.ready``; ``i_op.ready`` is that
    advance. With ``debug=True`` the simulation-only counters of :data:`GATE_COUNTERS` (``Out, 32``) count
    each operation in the cycle its stage registers a valid result (8 adds in stage 1; 3 sigmoids and
    1 tanh in 2; 2 products in 3; 1 add and 1 requantization in 4; 1 tanh in 5; 1 product and
    1 requantization in 6); ``dbg_clear`` (``In, 1``) clears them.
    """

    LATENCY = 6

    def __init__(self, cfg, debug: bool = False):
        self.cfg, self.debug = cfg, debug
        members = {"i_op": In(stream.Signature(gate_in_layout(cfg))),
                   "o_hc": Out(stream.Signature(gate_out_layout(cfg))), "busy": Out(1)}
        if debug:
            members |= {"dbg_clear": In(1), **{name: Out(32) for name in GATE_COUNTERS}}
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        db, F, rnd = cfg.data_bits, cfg.frac_bits, cfg.rounding
        d = signed(db)
        valid = [Signal(name=f"v{s}") for s in range(1, 7)]
        adv = Signal()
        m.d.comb += [adv.eq(~valid[5] | self.o_hc.ready), self.i_op.ready.eq(adv),
                     self.busy.eq(Cat(*valid).any())]
        with m.If(adv):
            m.d.sync += valid[0].eq(self.i_op.valid)
            m.d.sync += [valid[s].eq(valid[s - 1]) for s in range(1, 6)]
        op = self.i_op.payload

        # stage 1: z = clamp(zx + zh + b)
        z = [Signal(d, name=f"z{g}") for g in range(4)]
        c1 = Signal(d)
        for g in range(4):
            total = Signal(signed(db + 2), name=f"zsum{g}")
            m.d.comb += total.eq(op.zx[g] + op.zh[g] + op.b[g])
            zc = _clamp(m, total, db, f"zc{g}")
            with m.If(adv):
                m.d.sync += z[g].eq(zc)
        with m.If(adv):
            m.d.sync += c1.eq(op.c)

        # stage 2: nonlinearities
        acts = []
        for g, kind in enumerate(("sigmoid", "sigmoid", "tanh", "sigmoid")):
            nl = LstmNonlinearity(cfg, kind)
            m.submodules[f"nl{g}"] = nl
            m.d.comb += nl.x.eq(z[g])
            r = Signal(d, name=f"a{g}")
            with m.If(adv):
                m.d.sync += r.eq(nl.y)
            acts.append(r)
        i_, f_, g_, o_ = acts
        c2 = Signal(d)
        with m.If(adv):
            m.d.sync += c2.eq(c1)

        # stage 3: products
        fc, ig = Signal(signed(2 * db)), Signal(signed(2 * db))
        o3 = Signal(d)
        with m.If(adv):
            m.d.sync += [fc.eq(f_ * c2), ig.eq(i_ * g_), o3.eq(o_)]

        # stage 4: c' = clamp(round_shift(fc + ig, F))
        csum = Signal(signed(2 * db + 1))
        m.d.comb += csum.eq(fc + ig)
        cn = Signal(d)
        o4 = Signal(d)
        cc = _clamp(m, _round_shift(m, csum, F, rnd, "c_rs"), db, "c_cl")
        with m.If(adv):
            m.d.sync += [cn.eq(cc), o4.eq(o3)]

        # stage 5: tanh(c')
        tc = LstmNonlinearity(cfg, "tanh")
        m.submodules.nl_c = tc
        m.d.comb += tc.x.eq(cn)
        t5, o5, c5 = Signal(d), Signal(d), Signal(d)
        with m.If(adv):
            m.d.sync += [t5.eq(tc.y), o5.eq(o4), c5.eq(cn)]

        # stage 6: h' = clamp(round_shift(o * tanh(c'), F))
        prod = Signal(signed(2 * db))
        m.d.comb += prod.eq(o5 * t5)
        hc = _clamp(m, _round_shift(m, prod, F, rnd, "h_rs"), db, "h_cl")
        with m.If(adv):
            m.d.sync += [self.o_hc.payload.h.eq(hc), self.o_hc.payload.c.eq(c5)]
        m.d.comb += self.o_hc.valid.eq(valid[5])

        if self.debug:
            # an operation is counted in the cycle its result is registered (the stage below it advances)
            take = [self.i_op.valid & adv] + [valid[s] & adv for s in range(5)]
            incs = {"cnt_gate_add": Mux(take[0], 8, 0),
                    "cnt_sigmoid": Mux(take[1], 3, 0),
                    "cnt_tanh": Mux(take[1], 1, 0) + Mux(take[4], 1, 0),
                    "cnt_cell_mult": Mux(take[2], 2, 0) + Mux(take[5], 1, 0),
                    "cnt_cell_add": Mux(take[3], 1, 0),
                    "cnt_gate_requant": Mux(take[3], 1, 0) + Mux(take[5], 1, 0)}
            for name, inc in incs.items():
                sig = getattr(self, name)
                m.d.sync += sig.eq(Mux(self.dbg_clear, 0, sig + inc))
        return m
