"""The two datapath blocks of the RF mesh emulator: a complex rotator and a 2x2 MZI mixer, both registered
(latency 1 cycle, a new operand every cycle), bit-exact to :mod:`hwsim.models.rf_array`.

Ports are plain signals (not streams): the emulator's pipeline advances every cycle and carries one valid
bit beside the data, so a block has no handshake of its own. Coefficients come from constant tables
indexed by the block's phase-code input.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from hwsim.models.tables import rf_tables

__all__ = ["ComplexRotator", "MziMixer", "round_shift_saturate"]


def round_shift_saturate(m: Module, v, cfg, name: str) -> Signal:
    """``rs(v)`` of the reference: ``(v + 2**(F-1)) >> F`` (arithmetic), saturated to ``data_bits``."""
    f, d = cfg.coef_bits, cfg.data_bits
    r = Signal(signed(len(v) + 1), name=f"{name}_r")
    out = Signal(signed(d), name=name)
    lo, hi = -(1 << (d - 1)), (1 << (d - 1)) - 1
    m.d.comb += [r.eq((v + (1 << (f - 1))) >> f),
                 out.eq(Mux(r > hi, hi, Mux(r < lo, lo, r)))]
    return out


def _table(cfg, key: str) -> Array:
    w = cfg.coef_bits + 2
    return Array(Const(int(v), signed(w)) for v in rf_tables(cfg)[key])


class ComplexRotator(wiring.Component):
    """``o = rs(x * (C[code] + i S[code]))``, registered.

    Ports
    -----
    x_re, x_im : In, signed(data_bits)       operand
    code : In, dac_bits                      phase code (table index)
    o_re, o_im : Out, signed(data_bits)      result, one cycle after the operand
    """

    def __init__(self, cfg):
        self.cfg = cfg
        d = signed(cfg.data_bits)
        super().__init__({"x_re": In(d), "x_im": In(d), "code": In(cfg.dac_bits), "o_re": Out(d), "o_im": Out(d)})

    def elaborate(self, platform):
        m = Module()
        c, s = _table(self.cfg, "C")[self.code], _table(self.cfg, "S")[self.code]
        re = round_shift_saturate(m, self.x_re * c - self.x_im * s, self.cfg, "rot_re")
        im = round_shift_saturate(m, self.x_re * s + self.x_im * c, self.cfg, "rot_im")
        m.d.sync += [self.o_re.eq(re), self.o_im.eq(im)]
        return m


class MziMixer(wiring.Component):
    """The 2x2 mix of an MZI with internal-phase code ``code``: ``top = rs(u A + y Bc)``,
    ``bot = rs(u Bc - y A)`` with A = AR + i AI and Bc = -AI + i BI from the tables; registered.

    Ports
    -----
    u_re, u_im, y_re, y_im : In, signed(data_bits)   rotated top input u and bottom input y
    code : In, dac_bits                              internal-phase (theta) code
    top_re, top_im, bot_re, bot_im : Out, signed(data_bits)   outputs, one cycle later
    """

    def __init__(self, cfg):
        self.cfg = cfg
        d = signed(cfg.data_bits)
        super().__init__({"u_re": In(d), "u_im": In(d), "y_re": In(d), "y_im": In(d), "code": In(cfg.dac_bits),
                          "top_re": Out(d), "top_im": Out(d), "bot_re": Out(d), "bot_im": Out(d)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        ar, ai, bi = (_table(cfg, k)[self.code] for k in ("AR", "AI", "BI"))
        br = -ai
        ur, ui, yr, yi = self.u_re, self.u_im, self.y_re, self.y_im
        outs = {
            "top_re": ur * ar - ui * ai + yr * br - yi * bi,
            "top_im": ur * ai + ui * ar + yr * bi + yi * br,
            "bot_re": ur * br - ui * bi - yr * ar + yi * ai,
            "bot_im": ur * bi + ui * br - yr * ai - yi * ar,
        }
        for name, expr in outs.items():
            m.d.sync += getattr(self, name).eq(round_shift_saturate(m, expr, cfg, f"mix_{name}"))
        return m
