"""One processing element of the MAC array, for every weight format and every dataflow (WS, IS, OS).

The product logic is per format: a signed multiplier for int8/int4/int2, an add/skip/subtract select
for ternary, an XNOR for binary (a +-1 product counted into the accumulator), and a barrel shift plus
negate for pow2. Accumulation saturates or wraps after every addition, as the reference specifies.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import MacArrayConfig

__all__ = ["MacPE", "add_with_overflow", "product"]


def product(m: Module, cfg: MacArrayConfig, a_code, w_code):
    """Build the product of one activation code and one weight code; returns a signed(product_bits)."""
    p = Signal(signed(cfg.product_bits))
    fmt = cfg.weight_format
    if fmt == "binary":
        # XNOR of the sign bits: equal signs give +1, different signs -1.
        m.d.comb += p.eq(Mux(~(a_code[0] ^ w_code[0]), 1, -1))
        return p
    a = a_code.as_signed()
    if fmt in ("int8", "int4", "int2"):
        m.d.comb += p.eq(a * w_code.as_signed())
    elif fmt == "ternary":
        w = w_code.as_signed()
        m.d.comb += p.eq(Mux(w == 1, a, Mux(w == -1, -a, 0)))
    elif fmt == "pow2":
        sign, exp = w_code[3], w_code[0:3]
        mag = Signal(signed(cfg.product_bits))
        with m.Switch(exp):
            with m.Case(0):
                m.d.comb += mag.eq(0)
            for e in range(1, 8):
                with m.Case(e):
                    m.d.comb += mag.eq(a << (e - 1))
        m.d.comb += p.eq(Mux(sign, -mag, mag))
    else:  # pragma: no cover - the config rejects other formats
        raise AssertionError(fmt)
    return p


def add_with_overflow(m: Module, cfg: MacArrayConfig, x, y):
    """``x + y`` in a signed acc_bits register, saturating or wrapping as ``cfg.overflow`` says."""
    n = cfg.acc_bits
    wide = Signal(signed(n + 1))
    out = Signal(signed(n))
    m.d.comb += wide.eq(x + y)
    if cfg.overflow == "wrap":
        m.d.comb += out.eq(wide[:n].as_signed())
    elif len(x) <= n and len(y) <= n:
        # Both operands fit signed n bits, so the n+1-bit sum left the n-bit range exactly when its two top
        # bits differ, and then its sign says which end (the same result as comparing with hi/lo, without a
        # carry chain for each comparison).
        hi, lo = (1 << (n - 1)) - 1, -(1 << (n - 1))
        m.d.comb += out.eq(Mux(wide[n] == wide[n - 1], wide[:n].as_signed(), Mux(wide[n], lo, hi)))
    else:
        hi, lo = (1 << (n - 1)) - 1, -(1 << (n - 1))
        m.d.comb += out.eq(Mux(wide > hi, hi, Mux(wide < lo, lo, wide)))
    return out


class MacPE(wiring.Component):
    """A systolic PE.

    Weight-stationary (``cfg.dataflow == "ws"``): holds a weight code loaded through ``w_load``/``w_code``;
    each cycle registers ``psum_out <= ovf(psum_in + (a_valid & a_en ? a*w : 0))`` and passes the
    activation on (``a_out``, one cycle latency). ``a_valid`` travels with the streamed vector (a token,
    set for every PE the vector passes); ``a_en`` says this PE's row holds a real reduction step (0 for the
    padding rows of a ragged fold), so a MAC happens when both are set.

    Input-stationary (``"is"``): the same PE with the operands' roles exchanged: the stationary register
    holds an activation code (``w_code`` is ``act_bits`` wide) and the streamed lane carries weight codes
    (``a_in``/``a_out`` are ``weight_bits`` wide).

    N:M sparse weight-stationary (``cfg.sparse``): ``a_in``/``a_out`` carry the M activations of the PE
    row's group (``M * act_bits``, lane j = reduction step ``g*M + j``), ``w_code`` is the kept weight's
    code with its ``index_bits`` index above it, and the product uses the activation lane the stored index
    selects (an M:1 multiplexer); everything else is the dense WS PE.

    Output-stationary (``"os"``): activations move right and weights move down (both one cycle per PE);
    when ``a_valid``, ``acc <= ovf((a_first ? 0 : acc) + a*w)``.

    Idle-lane gating (``cfg.gating``; ``pe_en`` says the PE holds real work in the current tile: its column
    has a real output, OS: its row too). ``"none"``: ``pe_en`` is ignored. ``"operand"``: the multiplier's
    operand registers (and the stationary register) load only for a real MAC, so an idle slot's multiplier
    and adder see constant inputs. ``"clock"``: also every data register of the PE (streamed operand,
    partial sum or accumulator) holds while ``pe_en`` is low: a synthesis tool turns the enable into a clock
    gate. The token chain (``a_valid_out``, OS ``a_first_out``: one flip-flop each) is never gated, so the
    activity counters observe every slot a vector passes.

    Ports (all registered outputs, one cycle latency)
    -------------------------------------------------
    a_in, a_out : act_bits (IS: weight_bits; N:M: M x act_bits)   streamed code(s)
    a_valid_in, a_valid_out : 1   OS: the activation is real data; WS/IS: the streamed-vector token
    pe_en : 1 (input)      the PE holds real work in the current tile (constant while vectors are in flight)
    WS/IS: a_en : 1; psum_in, psum_out : signed(acc_bits); w_load : 1; w_code : weight_bits (IS: act_bits)
    OS: a_first_in, a_first_out : 1; w_in, w_out : weight_bits; acc : signed(acc_bits)
    """

    def __init__(self, cfg: MacArrayConfig):
        self.cfg = cfg
        is_ = cfg.dataflow == "is"
        strm_bits = cfg.weight_bits if is_ else cfg.act_bits * cfg.sparse_nm[1]
        members = {
            "a_in": In(strm_bits),
            "a_valid_in": In(1),
            "a_out": Out(strm_bits),
            "a_valid_out": Out(1),
            "pe_en": In(1),
        }
        if cfg.dataflow in ("ws", "is"):
            members |= {
                "a_en": In(1),
                "psum_in": In(signed(cfg.acc_bits)),
                "psum_out": Out(signed(cfg.acc_bits)),
                "w_load": In(1),
                "w_code": In(unsigned(cfg.act_bits if is_ else cfg.weight_bits + cfg.index_bits)),
            }
        else:
            members |= {
                "a_first_in": In(1),
                "a_first_out": Out(1),
                "w_in": In(unsigned(cfg.weight_bits)),
                "w_out": Out(unsigned(cfg.weight_bits)),
                "acc": Out(signed(cfg.acc_bits)),
            }
        super().__init__(members)

    def real(self):
        """The PE multiplies real data this cycle; a slot a vector passes without it is an idle slot."""
        if self.cfg.dataflow in ("ws", "is"):
            return self.a_valid_in & self.a_en & self.pe_en
        return self.a_valid_in & self.pe_en

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        gate = cfg.gating
        # The PE's data registers, assigned at the end: under gating="clock" only while pe_en (a register
        # enable, which synthesis turns into a clock gate on an ASIC and a clock enable on an FPGA).
        data = []

        def assign(m, stmts, acc=None):
            """The data registers, and (OS) the accumulator when ``acc = (enable, value)``."""
            m.d.sync += stmts
            if acc is not None:
                with m.If(acc[0]):
                    m.d.sync += self.acc.eq(acc[1])
        m.d.sync += self.a_valid_out.eq(self.a_valid_in)
        data.append(self.a_out.eq(self.a_in))
        if cfg.dataflow in ("ws", "is"):
            stationary = Signal(len(self.w_code))
            load = self.w_load if gate == "none" else self.w_load & self.pe_en
            with m.If(load):
                m.d.sync += stationary.eq(self.w_code)
            # The multiplier has a register of its own on each side (PE_STAGES = 2): its operand (the streamed
            # code, and the token that gates it) and its product, so a placer can put both beside a DSP block.
            a_m = Signal.like(self.a_in, name="a_m")
            mac = Signal(name="mac")
            if gate == "none":
                m.d.sync += a_m.eq(self.a_in)
            else:  # operand isolation: the operand changes only for a real MAC
                with m.If(self.real()):
                    m.d.sync += a_m.eq(self.a_in)
            if cfg.sparse:
                # Index-driven activation select: the stored index picks lane idx of the group's M activations.
                code, idx = stationary[:cfg.weight_bits], stationary[cfg.weight_bits:]
                p = product(m, cfg, a_m.word_select(idx, cfg.act_bits), code)
            elif cfg.dataflow == "ws":
                p = product(m, cfg, a_m, stationary)
            else:
                p = product(m, cfg, stationary, a_m)
            term = Signal(signed(cfg.product_bits))
            data += [mac.eq(self.a_valid_in & self.a_en), term.eq(Mux(mac, p, 0)),
                     self.psum_out.eq(add_with_overflow(m, cfg, self.psum_in, term))]
            if gate == "clock":
                with m.If(self.pe_en):
                    assign(m, data)
            else:
                assign(m, data)
        else:
            m.d.sync += self.a_first_out.eq(self.a_first_in)
            data.append(self.w_out.eq(self.w_in))
            # Registers on both sides of the multiplier, with the flags (PE_STAGES = 2, as in WS).
            a_m, w_m = Signal.like(self.a_in, name="a_m"), Signal.like(self.w_in, name="w_m")
            valid_m, first_m = Signal(), Signal()
            if gate == "none":
                m.d.sync += [a_m.eq(self.a_in), w_m.eq(self.w_in)]
                data.append(valid_m.eq(self.a_valid_in))
            else:  # operand isolation; an idle PE's accumulator holds (its value is never read)
                with m.If(self.real()):
                    m.d.sync += [a_m.eq(self.a_in), w_m.eq(self.w_in)]
                data.append(valid_m.eq(self.real()))
            p = product(m, cfg, a_m, w_m)
            p_q = Signal(signed(cfg.product_bits))
            valid_q, first_q = Signal(), Signal()
            base = Signal(signed(cfg.acc_bits))
            m.d.comb += base.eq(Mux(first_q, 0, self.acc))
            acc_next = add_with_overflow(m, cfg, base, p_q)
            data += [first_m.eq(self.a_first_in), p_q.eq(p), valid_q.eq(valid_m), first_q.eq(first_m)]
            if gate == "clock":
                with m.If(self.pe_en):
                    assign(m, data, (valid_q, acc_next))
            else:
                assign(m, data, (valid_q, acc_next))
        return m
