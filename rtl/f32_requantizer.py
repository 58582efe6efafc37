"""Float-exact requantizer: ONNX Runtime's ``rint_even(f32(f32(acc) * scale)) + zero_point`` in integer
logic (combinational), with the zero-point correction adder in front.

Per lane, the algorithm of :func:`hwsim.models.mac_array.requantize_f32_int`: the corrected accumulator
``acc + corr`` (``corr``: the bias with the zero-point column constant folded in) is rounded to a 24-bit
significand (leading-one detector, normalising shift, half-to-even), multiplied by the scale's 24-bit
significand, the 48-bit product rounded again to 24 bits, shifted to an integer with half-to-even rounding,
signed, offset by the zero point and clamped to ``[lo, hi]`` (a ReLU raises ``lo`` to the zero point).
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import MacArrayConfig

__all__ = ["F32Requantizer"]


def _bitlen(m: Module, x, width: int, name: str):
    """Bit length of unsigned ``x`` (0 for 0): a priority encoder."""
    n = Signal(range(width + 1), name=name)
    for i in range(width):
        with m.If(x[i]):
            m.d.comb += n.eq(i + 1)
    return n


def _rne_shift(m: Module, x, sh, width: int, name: str):
    """``x / 2**sh`` rounded half to even (unsigned ``x`` of ``width`` bits, unsigned ``sh``)."""
    q = Signal(unsigned(width), name=f"{name}_q")
    rem = Signal(unsigned(width), name=f"{name}_rem")
    half = Signal(unsigned(max(width, 1 << len(sh)) + 1), name=f"{name}_half")  # 2**(sh-1) without truncation
    y = Signal(unsigned(width + 1), name=f"{name}_y")
    m.d.comb += [q.eq(x >> sh), rem.eq(x - (q << sh)), half.eq(Mux(sh == 0, 0, (1 << sh) >> 1)),
                 y.eq(q + ((sh != 0) & ((rem > half) | ((rem == half) & q[0]))))]
    return y


class F32Requantizer(wiring.Component):
    """``lanes`` float32 requantizer lanes with zero-point correction (combinational).

    Ports
    -----
    acc : In, lanes x signed(acc_bits)
        Accumulators (the K products).
    corr : In, lanes x signed(acc_bits)
        Bias plus zero-point column constant of each lane's column (one addition, saturated to acc_bits).
    scale : In, lanes x 32
        Each column's float32 scale (IEEE-754 bits; positive, normal).
    zero_point : In, signed(act_bits)
        Output zero point.
    relu : In, 1
        Clamp below at the zero point.
    out : Out, lanes x act_bits (two's complement codes)
    """

    def __init__(self, cfg: MacArrayConfig, lanes: int):
        self.cfg = cfg
        self.lanes = lanes
        super().__init__({
            "acc": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "corr": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "scale": In(data.ArrayLayout(unsigned(32), lanes)),
            "zero_point": In(signed(cfg.act_bits)),
            "relu": In(1),
            "out": Out(data.ArrayLayout(unsigned(cfg.act_bits), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        ab = cfg.acc_bits
        lo_t, hi_t = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
        for i in range(self.lanes):
            s = Signal(signed(ab + 1), name=f"sum{i}")
            v = Signal(signed(ab), name=f"v{i}")
            m.d.comb += s.eq(self.acc[i] + self.corr[i])
            m.d.comb += v.eq(Mux(s > (1 << (ab - 1)) - 1, (1 << (ab - 1)) - 1, Mux(s < -(1 << (ab - 1)),
                                                                                   -(1 << (ab - 1)), s)))
            neg = v < 0
            a = Signal(unsigned(ab), name=f"a{i}")
            m.d.comb += a.eq(Mux(neg, -v, v))
            n = _bitlen(m, a, ab, f"n{i}")
            d = Signal(range(ab + 1), name=f"d{i}")
            m.d.comb += d.eq(Mux(n > 24, n - 24, 0))
            ma = _rne_shift(m, a, d, ab, f"ma{i}")  # <= 2**24
            bits = self.scale[i]
            ms = Signal(unsigned(24), name=f"ms{i}")
            m.d.comb += ms.eq(bits[:23] | (1 << 23))
            p = Signal(unsigned(49), name=f"p{i}")
            m.d.comb += p.eq(ma * ms)
            pn = _bitlen(m, p, 49, f"pn{i}")
            t = Signal(range(50), name=f"t{i}")
            m.d.comb += t.eq(Mux(pn > 24, pn - 24, 0))
            mp = _rne_shift(m, p, t, 49, f"mp{i}")  # <= 2**24
            e = Signal(signed(12), name=f"e{i}")
            m.d.comb += e.eq(d + t + bits[23:31] - 150)
            sh = Signal(range(32), name=f"sh{i}")
            m.d.comb += sh.eq(Mux(-e > 31, 31, -e))
            small = _rne_shift(m, mp, sh, 26, f"q{i}")
            q = Signal(unsigned(44), name=f"q{i}")
            big = 1 << 40
            with m.If(e < 0):
                m.d.comb += q.eq(small)
            with m.Elif(e > 16):
                m.d.comb += q.eq(big)
            with m.Else():
                m.d.comb += q.eq(mp << e.as_unsigned()[:5])
            r = Signal(signed(46), name=f"r{i}")
            m.d.comb += r.eq(Mux(neg, -q, q) + self.zero_point)
            lo = Signal(signed(cfg.act_bits + 1), name=f"lo{i}")
            m.d.comb += lo.eq(Mux(self.relu, self.zero_point, lo_t))
            y = Signal(signed(cfg.act_bits), name=f"y{i}")
            m.d.comb += y.eq(Mux(r > hi_t, hi_t, Mux(r < lo, lo, r)))
            m.d.comb += self.out[i].eq(y.as_unsigned())
        return m
