"""Multiplier-based requantizer (the conventional alternative to :mod:`hwsim.rtl.requantizer`), combinational.

Conventional integer-only inference requantizes with a fixed-point multiplier: the accumulator is multiplied
by a per-layer integer scale, then the product is shifted right with rounding and clamped to the activation
width. The power-of-two requantizer of :mod:`hwsim.rtl.requantizer` drops the multiplier and keeps only the
rounding shift and the clamp; this component exists so the two can be synthesized and compared
(:func:`hwsim.mac_array_synth.compare_requantizers`).
"""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from hwsim.rtl.requantizer import relu_round_clamp

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError

__all__ = ["MultRequantizer"]


class MultRequantizer(wiring.Component):
    """Requantize ``lanes`` accumulators with a multiplier, a rounding right shift and a clamp.

    With ``n = acc_bits + scale_bits`` and act_bits >= 2, per lane: ``p = acc * scale`` (signed, n bits, exact);
    ``x = relu ? max(p, 0) : p``; ``y = round(x / 2**shift)`` with ties towards +infinity (``half_up``) or to
    even (``half_even``) as ``cfg.rounding`` says; clamp ``y`` to signed ``act_bits``.
    For binary (``act_bits == 1``): code 1 (+1) if ``acc * scale >= 0`` else 0 (-1).

    Ports
    -----
    acc : In, lanes x signed(acc_bits)
    scale : In, signed(scale_bits)      per-layer multiplier, shared by the lanes
    shift : In, unsigned, range 0 .. acc_bits + scale_bits - 1
    relu : In, 1
    out : Out, lanes x act_bits (two's complement codes)
    """

    def __init__(self, cfg: MacArrayConfig, lanes: int, scale_bits: int = 16):
        for name, value, lo in (("lanes", lanes, 1), ("scale_bits", scale_bits, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < lo:
                raise HwsimError(f"{name}={value!r} is not allowed: expected an integer >= {lo}")
        self.cfg = cfg
        self.lanes = lanes
        self.scale_bits = scale_bits
        self.product_bits = cfg.acc_bits + scale_bits
        super().__init__({
            "acc": In(data.ArrayLayout(signed(cfg.acc_bits), lanes)),
            "scale": In(signed(scale_bits)),
            "shift": In(range(self.product_bits)),
            "relu": In(1),
            "out": Out(data.ArrayLayout(unsigned(cfg.act_bits), lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = self.product_bits
        for i in range(self.lanes):
            p = Signal(signed(n), name=f"p{i}")
            m.d.comb += p.eq(self.acc[i] * self.scale)
            m.d.comb += self.out[i].eq(relu_round_clamp(m, cfg, p, self.shift, self.relu, n, i))
        return m
