"""Power-of-two requantizer: optional bias, ReLU, rounding right shift, clamp to the activation width
(combinational)."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from hwsim.rtl.mac_pe import add_with_overflow

from hwsim.config import MacArrayConfig

__all__ = ["REQUANT_STAGES", "PipelinedRequantizer", "Requantizer", "relu_round_clamp", "round_shift"]


def round_shift(m: Module, cfg: MacArrayConfig, x, shift, half, n: int, lane: int):
    """``x >> shift`` rounded as ``cfg.rounding`` says: ties towards +infinity (``(x + half) >> shift``) or to
    even (the truncated quotient plus one when the remainder is above ``half``, or equal to it with an odd
    quotient). ``x`` is signed(n), ``half = (1 << shift) >> 1``; the result fits signed(n + 1)."""
    if cfg.rounding == "half_up":
        return (x + half) >> shift
    q = Signal(signed(n), name=f"q{lane}")
    rem = Signal(unsigned(n), name=f"rem{lane}")
    m.d.comb += [q.eq(x >> shift), rem.eq(x.as_unsigned() & ((1 << shift) - 1))]
    up = Signal(name=f"up{lane}")
    m.d.comb += up.eq((shift != 0) & ((rem > half) | ((rem == half) & q[0])))
    return q + up


def relu_round_clamp(m: Module, cfg: MacArrayConfig, value, shift, relu, n: int, lane: int):
    """Output code of one lane: ReLU, rounding right shift by ``shift``, clamp to signed ``act_bits``.

    ``value`` is signed(n). Binary (``act_bits == 1``) gives code 1 (+1) when ``value >= 0``, else 0.
    """
    if cfg.act_bits == 1:
        return value >= 0
    x = Signal(signed(n), name=f"x{lane}")
    m.d.comb += x.eq(Mux(relu & (value < 0), 0, value))
    half = Signal(unsigned(n), name=f"half{lane}")
    m.d.comb += half.eq((1 << shift) >> 1)
    y = Signal(signed(n + 1), name=f"y{lane}")
    m.d.comb += y.eq(round_shift(m, cfg, x, shift, half, n, lane))
    hi, lo = (1 << (cfg.act_bits - 1)) - 1, -(1 << (cfg.act_bits - 1))
    clamped = Signal(signed(cfg.act_bits), name=f"clamped{lane}")
    m.d.comb += clamped.eq(Mux(y > hi, hi, Mux(y < lo, lo, y)))
    return clamped.as_unsigned()


class Requantizer(wiring.Component):
    """Requantize ``lanes`` accumulators to output codes, combinationally.

    With ``bias=True`` each lane first adds its ``bias`` input to the accumulator with the accumulator's
    own saturate/wrap step (``ovf(acc + bias)``, one more accumulation), then requantizes.

    For ``act_bits >= 2``: ``x = relu ? max(acc, 0) : acc``; ``y = round(x / 2**shift)`` with ties towards
    +infinity (``half_up``) or to even (``half_even``); clamp ``y`` to signed ``act_bits``.
    For binary (``act_bits == 1``): code 1 (+1) if ``acc >= 0`` else 0 (-1).

    Ports
    -----
    acc : In, lanes x signed(acc_bits)
    shift : In, unsigned, range 0 .. acc_bits-1
    relu : In, 1
    bias : In, lanes x signed(acc_bits)   (``bias=True`` only)
    out : Out, lanes x act_bits (two's complement codes)
    """

    def __init__(self, cfg: MacArrayConfig, lanes: int, bias: bool = False):
        self.cfg = cfg
        self.lanes = lanes
        self.has_bias = bias
        members = {
            "acc": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "shift": In(range(cfg.acc_bits)),
            "relu": In(1),
            "out": Out(data.ArrayLayout(unsigned(cfg.act_bits), lanes)),
        }
        if bias:
            members["bias"] = In(data.ArrayLayout(signed(cfg.acc_bits), lanes))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        for i in range(self.lanes):
            acc = self.acc[i]
            if self.has_bias:
                acc = add_with_overflow(m, cfg, acc, self.bias[i])
            m.d.comb += self.out[i].eq(relu_round_clamp(m, cfg, acc, self.shift, self.relu, cfg.acc_bits, i))
        return m


#: Register stages of :class:`PipelinedRequantizer` (its output follows its input by this many ``en`` steps).
REQUANT_STAGES = 2


class PipelinedRequantizer(wiring.Component):
    """:class:`Requantizer` with ``bias=True`` cut by two register stages, for the clock: stage 1 holds
    ``relu(ovf(acc + bias))`` (binary: ``ovf(acc + bias)``), stage 2 the rounded right shift; the clamp to
    ``act_bits`` (binary: the sign) is combinational after stage 2. Both stages take their input when ``en``
    is high and hold otherwise, so ``out`` is the requantization of the ``acc``/``bias`` presented two
    ``en`` steps earlier. ``shift`` and ``relu`` must be constant from a cycle before values enter until they
leave (a layer's: each lane keeps a registered copy).

    Ports: ``acc``, ``bias``, ``shift``, ``relu``, ``out`` as :class:`Requantizer`; ``en`` : In, 1.
    """

    def __init__(self, cfg: MacArrayConfig, lanes: int):
        self.cfg = cfg
        self.lanes = lanes
        super().__init__({
            "acc": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "bias": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "shift": In(range(cfg.acc_bits)),
            "relu": In(1),
            "en": In(1),
            "out": Out(data.ArrayLayout(unsigned(cfg.act_bits), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.acc_bits
        for i in range(self.lanes):
            # Per-lane registered copies of the layer's constants (set at start, long before a drain): no
            # high-fanout net from one shift register into every lane's shifter.
            shift, relu = Signal.like(self.shift, name=f"shift{i}"), Signal(name=f"relu{i}")
            half = Signal(unsigned(n), name=f"half{i}")
            m.d.sync += [shift.eq(self.shift), relu.eq(self.relu), half.eq((1 << self.shift) >> 1)]
            total = add_with_overflow(m, cfg, self.acc[i], self.bias[i])
            x = Signal(signed(n), name=f"x{i}")  # stage 1
            if cfg.act_bits == 1:
                with m.If(self.en):
                    m.d.sync += x.eq(total)
                y = Signal(signed(n), name=f"y{i}")  # stage 2
                with m.If(self.en):
                    m.d.sync += y.eq(x)
                m.d.comb += self.out[i].eq(y >= 0)
                continue
            with m.If(self.en):
                m.d.sync += x.eq(Mux(relu & (total < 0), 0, total))
            shifted = Signal(signed(n + 1), name=f"shifted{i}")
            m.d.comb += shifted.eq(round_shift(m, cfg, x, shift, half, n, i))
            y = Signal(signed(n + 1), name=f"y{i}")  # stage 2
            with m.If(self.en):
                m.d.sync += y.eq(shifted)
            hi, lo = (1 << (cfg.act_bits - 1)) - 1, -(1 << (cfg.act_bits - 1))
            clamped = Signal(signed(cfg.act_bits), name=f"clamped{i}")
            m.d.comb += clamped.eq(Mux(y > hi, hi, Mux(y < lo, lo, y)))
            m.d.comb += self.out[i].eq(clamped.as_unsigned())
        return m
