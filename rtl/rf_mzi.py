"""The two datapath blocks of the RF mesh emulator: a complex rotator and a 2x2 MZI mixer, both pipelined
(a new operand every cycle), bit-exact to :mod:`hwsim.models.rf_array`.

Each block takes its table coefficients as inputs (the emulator top looks them up once, as each phase code
is loaded, and holds them in registers that do not change while vectors stream). The pipeline of a block:

* the **operands** are registered as they enter the block, so the registers that feed the multipliers
  drive nothing else and sit beside them (the previous block's output register sits by its adders);
* the **products** are registered: each real product is one multiplier (a MULT18X18D DSP block on an ECP5
  for the default 16-bit data and 14-bit coefficients) between two registers;
* a mixer registers the two **pair sums** of each output's four products;
* the **sum, rounding and saturation** ``rs(.)`` of each output are registered.

A rotator is ``cfg.ROTATOR_STAGES`` = 3 registers deep, a mixer ``cfg.MIXER_STAGES`` = 4. The integer
results are those of the reference: every product and sum is exact, registers only delay them.

Ports are plain signals (not streams): the emulator's pipeline advances every cycle and carries one valid
bit beside the data, so a block has no handshake of its own.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["COEFFICIENTS", "ComplexRotator", "MziMixer", "coef_shape", "round_shift_saturate"]

#: The table coefficients of a phase code (:func:`hwsim.models.tables.rf_tables`): a rotator uses C and S of
#: its phi (or output-screen) code, a mixer AR, AI and BI of its theta code.
COEFFICIENTS = ("C", "S", "AR", "AI", "BI")


def coef_shape(cfg):
    """Signed ``coef_bits + 2`` bits: the width of every table entry."""
    return signed(cfg.coef_bits + 2)


def round_shift_saturate(m: Module, v, cfg, name: str) -> Signal:
    """``rs(v)`` of the reference: ``(v + 2**(F-1)) >> F`` (arithmetic), saturated to ``data_bits``.

    The saturation tests the bits above the result's sign bit (all equal to it: the value fits), which is
    the reference's ``clip`` without two magnitude comparators."""
    f, d = cfg.coef_bits, cfg.data_bits
    r = Signal(signed(len(v) + 1), name=f"{name}_r")
    out = Signal(signed(d), name=name)
    lo, hi = -(1 << (d - 1)), (1 << (d - 1)) - 1
    m.d.comb += r.eq((v + (1 << (f - 1))) >> f)
    if len(r) <= d:
        m.d.comb += out.eq(r)
        return out
    top = r[d - 1:]
    fits = (top == 0) | (top == (1 << len(top)) - 1)
    m.d.comb += out.eq(Mux(fits, r[:d].as_signed(), Mux(r[-1], lo, hi)))
    return out


def _operand(m: Module, v, name: str) -> Signal:
    r = Signal.like(v, name=name)
    m.d.sync += r.eq(v)
    return r


def _product(m: Module, a, b, name: str) -> Signal:
    p = Signal(signed(len(a) + len(b)), name=name)
    m.d.sync += p.eq(a * b)
    return p


class ComplexRotator(wiring.Component):
    """``o = rs(x * (c + i s))``, ``cfg.ROTATOR_STAGES`` (3) registers deep.

    Ports
    -----
    x_re, x_im : In, signed(data_bits)       operand
    c_re, s_re : In, signed(coef_bits + 2)   table cos/sin of the phase code for the real part's products
    c_im, s_im : In, signed(coef_bits + 2)   the same values for the imaginary part's products (each
                                             multiplier has its own coefficient register; all are held
                                             constant while vectors stream)
    o_re, o_im : Out, signed(data_bits)      result, three cycles after the operand
    """

    def __init__(self, cfg):
        self.cfg = cfg
        d, w = signed(cfg.data_bits), coef_shape(cfg)
        super().__init__({"x_re": In(d), "x_im": In(d), "c_re": In(w), "s_re": In(w), "c_im": In(w),
                          "s_im": In(w), "o_re": Out(d), "o_im": Out(d)})

    def elaborate(self, platform):
        m = Module()
        xr, xi = _operand(m, self.x_re, "rot_x_re"), _operand(m, self.x_im, "rot_x_im")
        rc, is_, rs_, ic = (_product(m, a, b, f"rot_p{k}") for k, (a, b) in
                            enumerate(((xr, self.c_re), (xi, self.s_re), (xr, self.s_im), (xi, self.c_im))))
        re = round_shift_saturate(m, rc - is_, self.cfg, "rot_re")
        im = round_shift_saturate(m, rs_ + ic, self.cfg, "rot_im")
        m.d.sync += [self.o_re.eq(re), self.o_im.eq(im)]
        return m


class MziMixer(wiring.Component):
    """The 2x2 mix of an MZI with internal-phase coefficients A = AR + i AI and Bc = -AI + i BI:
    ``top = rs(u A + y Bc)``, ``bot = rs(u Bc - y A)``; ``cfg.MIXER_STAGES`` registers deep.

    Bc's real part is -AI, so the sixteen real products of the four complex ones are twelve distinct
    products (each of ur, ui, yr, yi by AR, AI and BI), each computed once:

    ``top_re = ur AR - ui AI - yr AI - yi BI``, ``top_im = ur AI + ui AR + yr BI - yi AI``,
    ``bot_re = -ur AI - ui BI - yr AR + yi AI``, ``bot_im = ur BI - ui AI - yr AI - yi AR``
    (the reference's sums with ``yr * (-AI) = -(yr AI)``: equal integers).

    Ports
    -----
    u_re, u_im, y_re, y_im : In, signed(data_bits)   rotated top input u and bottom input y
    ar_ur, ar_ui, ar_yr, ar_yi, ai_ur, ..., bi_yi : In, signed(coef_bits + 2)
                                                     table coefficients AR, AI, BI of the theta code, one
                                                     input per multiplier (``ar_ui`` multiplies ``u_im``);
                                                     the four of a coefficient carry the same value
    top_re, top_im, bot_re, bot_im : Out, signed(data_bits)   outputs, MIXER_STAGES cycles later
    """

    #: The operands, in the order of a coefficient's four inputs (``{coef}_{operand}``).
    OPERANDS = ("ur", "ui", "yr", "yi")

    def __init__(self, cfg):
        self.cfg = cfg
        d, w = signed(cfg.data_bits), coef_shape(cfg)
        super().__init__({"u_re": In(d), "u_im": In(d), "y_re": In(d), "y_im": In(d),
                          **{f"{k}_{x}": In(w) for k in ("ar", "ai", "bi") for x in self.OPERANDS},
                          "top_re": Out(d), "top_im": Out(d), "bot_re": Out(d), "bot_im": Out(d)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        ins = {x: _operand(m, v, f"mix_{x}") for x, v in
               (("ur", self.u_re), ("ui", self.u_im), ("yr", self.y_re), ("yi", self.y_im))}
        p = {(x, k): _product(m, xv, getattr(self, f"{k}_{x}"), f"mix_{x}_{k}")
             for x, xv in ins.items() for k in ("ar", "ai", "bi")}
        # each output: (+ first, - second) and (+ third, - fourth) pairs of products
        terms = {
            "top_re": ((+1, "ur", "ar"), (-1, "ui", "ai"), (-1, "yr", "ai"), (-1, "yi", "bi")),
            "top_im": ((+1, "ur", "ai"), (+1, "ui", "ar"), (+1, "yr", "bi"), (-1, "yi", "ai")),
            "bot_re": ((-1, "ur", "ai"), (-1, "ui", "bi"), (-1, "yr", "ar"), (+1, "yi", "ai")),
            "bot_im": ((+1, "ur", "bi"), (-1, "ui", "ai"), (-1, "yr", "ai"), (-1, "yi", "ar")),
        }

        def signed_sum(items):
            total = None
            for sign, x, k in items:
                v = p[x, k]
                total = (v if sign > 0 else -v) if total is None else (total + v if sign > 0 else total - v)
            return total

        for name, items in terms.items():
            halves = []
            for h, half in enumerate((items[:2], items[2:])):
                s = Signal(signed(cfg.data_bits + cfg.coef_bits + 4), name=f"mix_{name}_s{h}")
                m.d.sync += s.eq(signed_sum(half))
                halves.append(s)
            total = halves[0] + halves[1]
            m.d.sync += getattr(self, name).eq(round_shift_saturate(m, total, cfg, f"mix_{name}"))
        return m
