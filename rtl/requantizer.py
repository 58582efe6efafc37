"""Power-of-two requantizer: ReLU, rounding right shift, clamp to the activation width (combinational)."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import MacArrayConfig

__all__ = ["Requantizer"]


class Requantizer(wiring.Component):
    """Requantize ``lanes`` accumulators to output codes, combinationally.

    For ``act_bits >= 2``: ``x = relu ? max(acc, 0) : acc``; ``y = round(x / 2**shift)`` with ties towards
    +infinity (``half_up``) or to even (``half_even``); clamp ``y`` to signed ``act_bits``.
    For binary (``act_bits == 1``): code 1 (+1) if ``acc >= 0`` else 0 (-1).

    Ports
    -----
    acc : In, lanes x signed(acc_bits)
    shift : In, unsigned, range 0 .. acc_bits-1
    relu : In, 1
    out : Out, lanes x act_bits (two's complement codes)
    """

    def __init__(self, cfg: MacArrayConfig, lanes: int):
        self.cfg = cfg
        self.lanes = lanes
        super().__init__({
            "acc": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "shift": In(range(cfg.acc_bits)),
            "relu": In(1),
            "out": Out(data.ArrayLayout(unsigned(cfg.act_bits), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.acc_bits
        for i in range(self.lanes):
            acc = self.acc[i]
            if cfg.act_bits == 1:
                m.d.comb += self.out[i].eq(acc >= 0)
                continue
            x = Signal(signed(n), name=f"x{i}")
            m.d.comb += x.eq(Mux(self.relu & (acc < 0), 0, acc))
            half = Signal(unsigned(n), name=f"half{i}")
            m.d.comb += half.eq((1 << self.shift) >> 1)
            y = Signal(signed(n + 1), name=f"y{i}")
            if cfg.rounding == "half_up":
                m.d.comb += y.eq((x + half) >> self.shift)
            else:
                q = Signal(signed(n), name=f"q{i}")
                rem = Signal(unsigned(n), name=f"rem{i}")
                m.d.comb += [q.eq(x >> self.shift), rem.eq(x.as_unsigned() & ((1 << self.shift) - 1))]
                up = Signal(name=f"up{i}")
                m.d.comb += up.eq((self.shift != 0) & ((rem > half) | ((rem == half) & q[0])))
                m.d.comb += y.eq(q + up)
            hi, lo = (1 << (cfg.act_bits - 1)) - 1, -(1 << (cfg.act_bits - 1))
            clamped = Signal(signed(cfg.act_bits), name=f"clamped{i}")
            m.d.comb += clamped.eq(Mux(y > hi, hi, Mux(y < lo, lo, y)))
            m.d.comb += self.out[i].eq(clamped.as_unsigned())
        return m
