"""Power-of-two requantizer: optional bias, ReLU, rounding right shift, clamp to the activation width
(combinational)."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from hwsim.rtl.mac_pe import add_with_overflow

from hwsim.config import MacArrayConfig

__all__ = ["Requantizer", "relu_round_clamp"]


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
    if cfg.rounding == "half_up":
        m.d.comb += y.eq((x + half) >> shift)
    else:
        q = Signal(signed(n), name=f"q{lane}")
        rem = Signal(unsigned(n), name=f"rem{lane}")
        m.d.comb += [q.eq(x >> shift), rem.eq(x.as_unsigned() & ((1 << shift) - 1))]
        up = Signal(name=f"up{lane}")
        m.d.comb += up.eq((shift != 0) & ((rem > half) | ((rem == half) & q[0])))
        m.d.comb += y.eq(q + up)
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
