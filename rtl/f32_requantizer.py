"""Float-exact requantizer: ONNX Runtime's ``rint_even(f32(f32(acc) * scale)) + zero_point`` in integer
logic, with the zero-point correction adder in front; combinational (:class:`F32Requantizer`) and cut by two
register stages (:class:`PipelinedF32Requantizer`, the MAC array top's float32 lanes).

Per lane, the algorithm of :func:`hwsim.models.mac_array.requantize_f32_int`: the corrected accumulator
``acc + corr`` (``corr``: the bias with the zero-point column constant folded in; one addition with the
accumulator's saturate/wrap rule) is rounded to a 24-bit significand (leading-one detector, normalising
shift, half-to-even), multiplied by the scale's 24-bit significand, the 48-bit product rounded again to 24
bits, shifted to an integer with half-to-even rounding, signed, offset by the zero point and clamped to
``[lo, hi]`` (the signed ``act_bits`` range; a ReLU raises ``lo`` to the zero point).

The three parts of that chain are three functions (:func:`f32_convert`, :func:`f32_multiply`,
:func:`f32_to_int`); the pipelined lane registers between them, the combinational one does not.

Weights with zero points (``cfg.weight_zero_points``): each lane also takes its output row's activation sum
``rowsum`` and its column's weight zero point ``row_zp`` and subtracts their product after the bias,
``ovf(ovf(acc + corr) - row_zp * rowsum)`` (the row term of
:func:`hwsim.models.compressed.corrected_accumulator`; the product is exact, the subtraction saturates or
wraps like every accumulation), in front of the conversion, in the same combinational stage.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from hwsim.rtl.mac_pe import add_with_overflow

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError

__all__ = ["F32_STAGES", "F32Requantizer", "PipelinedF32Requantizer", "f32_convert", "f32_multiply", "f32_to_int",
           "subtract_row_term"]

#: Register stages of :class:`PipelinedF32Requantizer` (as :data:`hwsim.rtl.requantizer.REQUANT_STAGES`).
F32_STAGES = 2


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


def subtract_row_term(m: Module, cfg: MacArrayConfig, v, rowsum, row_zp, name: str):
    """``ovf(v - row_zp * rowsum)``: the weight zero-point row correction, the exact product subtracted with
    the accumulator's saturate/wrap rule (signed ``acc_bits``)."""
    n = cfg.acc_bits
    prod = Signal(signed(len(rowsum) + len(row_zp)), name=f"{name}_rprod")
    wide = Signal(signed(max(n, len(prod)) + 2), name=f"{name}_rwide")
    out = Signal(signed(n), name=f"{name}_rcorr")
    m.d.comb += [prod.eq(rowsum * row_zp), wide.eq(v - prod)]
    if cfg.overflow == "wrap":
        m.d.comb += out.eq(wide[:n].as_signed())
    else:
        hi, lo = (1 << (n - 1)) - 1, -(1 << (n - 1))
        m.d.comb += out.eq(Mux(wide > hi, hi, Mux(wide < lo, lo, wide)))
    return out


def f32_convert(m: Module, cfg: MacArrayConfig, acc, corr, name: str, row=None):
    """Part 1: ``v = ovf(acc + corr)`` (with ``row = (rowsum, row_zp)``: then ``ovf(v - row_zp * rowsum)``,
    :func:`subtract_row_term`) rounded to float32: ``(neg, ma, d)`` with ``|v| ~ ma * 2**d``, ``ma <=
    2**24`` (25 bits), ``d = max(bitlen(|v|) - 24, 0)``."""
    ab = cfg.acc_bits
    v = add_with_overflow(m, cfg, acc, corr)
    if row is not None:
        v = subtract_row_term(m, cfg, v, *row, name)
    neg = Signal(name=f"{name}_neg")
    a = Signal(unsigned(ab), name=f"{name}_a")
    m.d.comb += [neg.eq(v < 0), a.eq(Mux(v < 0, -v, v))]
    n = _bitlen(m, a, ab, f"{name}_n")
    d = Signal(range(ab + 1), name=f"{name}_d")
    m.d.comb += d.eq(Mux(n > 24, n - 24, 0))
    ma = _rne_shift(m, a, d, ab, f"{name}_ma")
    return neg, ma, d


def f32_multiply(m: Module, ma, d, scale_bits, name: str):
    """Part 2: the product with the scale (IEEE-754 bits, positive, normal) rounded to float32: ``(mp, e)``
    with the product ``~ mp * 2**e``, ``mp <= 2**24``, ``e`` signed 12 bits."""
    ms = Signal(unsigned(24), name=f"{name}_ms")
    m.d.comb += ms.eq(scale_bits[:23] | (1 << 23))
    p = Signal(unsigned(49), name=f"{name}_p")
    m.d.comb += p.eq(ma * ms)
    pn = _bitlen(m, p, 49, f"{name}_pn")
    t = Signal(range(50), name=f"{name}_t")
    m.d.comb += t.eq(Mux(pn > 24, pn - 24, 0))
    mp = _rne_shift(m, p, t, 49, f"{name}_mp")  # <= 2**24
    e = Signal(signed(12), name=f"{name}_e")
    m.d.comb += e.eq(d + t + scale_bits[23:31] - 150)
    return mp, e


def f32_to_int(m: Module, cfg: MacArrayConfig, neg, mp, e, zero_point, relu, name: str):
    """Part 3: ``mp * 2**e`` to an integer half to even, signed by ``neg``, plus ``zero_point``, clamped to
    signed ``act_bits`` (below at ``zero_point`` with ``relu``): the output code (unsigned ``act_bits``)."""
    lo_t, hi_t = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
    sh = Signal(range(32), name=f"{name}_sh")
    m.d.comb += sh.eq(Mux(-e > 31, 31, -e))
    small = _rne_shift(m, mp[:25], sh, 25, f"{name}_rq")
    q = Signal(unsigned(44), name=f"{name}_q")
    with m.If(e < 0):
        m.d.comb += q.eq(small)
    with m.Elif(e > 16):
        m.d.comb += q.eq(Mux(mp == 0, 0, 1 << 40))  # far above any clamp range: saturates (zero stays zero)
    with m.Else():
        m.d.comb += q.eq(mp << e.as_unsigned()[:5])
    r = Signal(signed(46), name=f"{name}_r")
    m.d.comb += r.eq(Mux(neg, -q, q) + zero_point)
    lo = Signal(signed(cfg.act_bits + 1), name=f"{name}_lo")
    m.d.comb += lo.eq(Mux(relu, zero_point, lo_t))
    y = Signal(signed(cfg.act_bits), name=f"{name}_y")
    m.d.comb += y.eq(Mux(r > hi_t, hi_t, Mux(r < lo, lo, r)))
    return y.as_unsigned()


def _row(lanes, i: int):
    """Lane ``i``'s ``(rowsum, row_zp)`` of a component with the row-term ports, else None."""
    return (lanes.rowsum[i], lanes.row_zp[i]) if lanes.cfg.weight_zero_points else None


def _check(cfg: MacArrayConfig):
    if cfg.act_bits < 2:
        raise HwsimError(f"act_bits={cfg.act_bits} is not allowed with the float32 requantizer: expected 2..16 "
                         "(binary outputs are signs)")


def _ports(cfg: MacArrayConfig, lanes: int) -> dict:
    rows = {"rowsum": In(data.ArrayLayout(signed(cfg.row_sum_bits), lanes)),
            "row_zp": In(data.ArrayLayout(signed(cfg.weight_bits), lanes))} if cfg.weight_zero_points else {}
    return {**rows,
        "acc": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
        "corr": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
        "scale": In(data.ArrayLayout(unsigned(32), lanes)),
        "zero_point": In(signed(cfg.act_bits)),
        "relu": In(1),
        "out": Out(data.ArrayLayout(unsigned(cfg.act_bits), lanes)),
    }


class F32Requantizer(wiring.Component):
    """``lanes`` float32 requantizer lanes with zero-point correction (combinational).

    Ports
    -----
    acc : In, lanes x signed(acc_bits)
        Accumulators (the K products).
    corr : In, lanes x signed(acc_bits)
        Bias plus zero-point column constant of each lane's column (one addition with the accumulator's
        saturate/wrap rule).
    scale : In, lanes x 32
        Each column's float32 scale (IEEE-754 bits; positive, normal).
    zero_point : In, signed(act_bits)
        Output zero point.
    relu : In, 1
        Clamp below at the zero point.
    out : Out, lanes x act_bits (two's complement codes)

    With ``cfg.weight_zero_points`` also:

    rowsum : In, lanes x signed(row_sum_bits)
        The activation sum ``sum_k a[m, k]`` of each lane's output row.
    row_zp : In, lanes x signed(weight_bits)
        Each lane's column's weight zero point: ``row_zp * rowsum`` is subtracted after ``corr``.
    """

    def __init__(self, cfg: MacArrayConfig, lanes: int):
        _check(cfg)
        self.cfg = cfg
        self.lanes = lanes
        super().__init__(_ports(cfg, lanes))

    def elaborate(self, platform):
        m = Module()
        for i in range(self.lanes):
            neg, ma, d = f32_convert(m, self.cfg, self.acc[i], self.corr[i], f"c{i}", _row(self, i))
            mp, e = f32_multiply(m, ma, d, self.scale[i], f"p{i}")
            m.d.comb += self.out[i].eq(f32_to_int(m, self.cfg, neg, mp, e, self.zero_point, self.relu, f"o{i}"))
        return m


class PipelinedF32Requantizer(wiring.Component):
    """:class:`F32Requantizer` cut by two register stages, the float32 lanes of the MAC array top beside its
    :class:`~hwsim.rtl.requantizer.PipelinedRequantizer` (same depth, so a layer takes the same cycles on
    either): stage 1 holds ``float32(ovf(acc + corr))`` (sign, 25-bit significand, exponent) and the scale's
    significand and exponent; stage 2 the product rounded to float32 (25-bit significand, exponent) and the
    sign; the conversion to an integer, the zero point and the clamp are combinational after stage 2. Both
    stages take their input when ``en`` is high and hold otherwise, so ``out`` is the requantization of the
    ``acc``/``corr``/``scale`` presented two ``en`` steps earlier. ``zero_point`` and ``relu`` must be
    constant from a cycle before values enter until they leave (a layer's: each lane keeps a registered
    copy).

    Ports: ``acc``, ``corr``, ``scale``, ``zero_point``, ``relu``, ``out`` (and ``rowsum``, ``row_zp``) as
    :class:`F32Requantizer`; ``en`` : In, 1. The row term is subtracted before stage 1 (no extra stage).
    """

    def __init__(self, cfg: MacArrayConfig, lanes: int):
        _check(cfg)
        self.cfg = cfg
        self.lanes = lanes
        super().__init__({**_ports(cfg, lanes), "en": In(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        for i in range(self.lanes):
            zp, relu = Signal.like(self.zero_point, name=f"zp{i}"), Signal(name=f"frelu{i}")
            m.d.sync += [zp.eq(self.zero_point), relu.eq(self.relu)]
            neg, ma, d = f32_convert(m, cfg, self.acc[i], self.corr[i], f"c{i}", _row(self, i))
            # stage 1
            neg1, d1 = Signal(name=f"neg1_{i}"), Signal.like(d, name=f"d1_{i}")
            ma1 = Signal(25, name=f"ma1_{i}")  # ma <= 2**24
            s1 = Signal(31, name=f"scale1_{i}")  # positive: no sign bit
            with m.If(self.en):
                m.d.sync += [neg1.eq(neg), ma1.eq(ma), d1.eq(d), s1.eq(self.scale[i])]
            mp, e = f32_multiply(m, ma1, d1, s1, f"p{i}")
            # stage 2
            neg2, e2 = Signal(name=f"neg2_{i}"), Signal.like(e, name=f"e2_{i}")
            mp2 = Signal(25, name=f"mp2_{i}")  # mp <= 2**24
            with m.If(self.en):
                m.d.sync += [neg2.eq(neg1), mp2.eq(mp), e2.eq(e)]
            m.d.comb += self.out[i].eq(f32_to_int(m, cfg, neg2, mp2, e2, zp, relu, f"o{i}"))
        return m
