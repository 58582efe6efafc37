"""The float-exact requantizer RTL (rtl/f32_requantizer.py) in Amaranth's simulator against the reference
(:func:`hwsim.models.mac_array.requantize_f32`, itself checked against exact rationals): zero points at the
type's ends, scales from 2**-20 to 2**4, accumulators beyond 2**24, saturation at both ends, ReLU."""

import numpy as np
import pytest

pytest.importorskip("amaranth")
from amaranth.sim import Simulator  # noqa: E402
from hwsim.models.mac_array import FloatRequant, requantize_f32  # noqa: E402
from hwsim.rtl.f32_requantizer import F32Requantizer  # noqa: E402

from hwsim.config import MacArrayConfig  # noqa: E402


def cases(rng, n):
    acc = np.concatenate([rng.integers(-(1 << 31), 1 << 31, n // 4), rng.integers(-(1 << 26), 1 << 26, n // 4),
                          rng.integers(-5000, 5000, n // 4),
                          np.array([(1 << 24) + 1, -(1 << 24) - 3, (1 << 25) + 5, 3, -3, 5, -5, 0, (1 << 31) - 1,
                                    -(1 << 31)] * (n // 40 + 1))[:n - 3 * (n // 4)]])
    corr = rng.integers(-(1 << 20), 1 << 20, n)
    corr[::5] = 0
    scale = (2.0 ** rng.uniform(-20, 4, n)).astype(np.float32)
    scale[::7] = np.float32(0.5)
    zp = rng.choice([-128, 127, 0, -1, 42], n)
    relu = rng.integers(0, 2, n)
    return acc, corr, scale, zp, relu


def test_f32_requantizer_matches_the_reference():
    cfg = MacArrayConfig()
    dut = F32Requantizer(cfg, 1)
    rng = np.random.default_rng(22)
    acc, corr, scale, zp, relu = cases(rng, 400)
    got = []

    async def tb(ctx):
        for a, c, s, z, r in zip(acc, corr, scale, zp, relu, strict=True):
            ctx.set(dut.acc[0], int(a))
            ctx.set(dut.corr[0], int(c))
            ctx.set(dut.scale[0], int(np.float32(s).view(np.uint32)))
            ctx.set(dut.zero_point, int(z))
            ctx.set(dut.relu, int(r))
            v = ctx.get(dut.out[0])
            got.append(v - 256 if v >= 128 else v)

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    want = []
    for a, c, s, z, r in zip(acc, corr, scale, zp, relu, strict=True):
        tot = int(np.clip(int(a) + int(c), -(1 << 31), (1 << 31) - 1))
        fq = FloatRequant([s], int(z), int(z) if r else -128, 127)
        want.append(int(requantize_f32(np.array([[tot]]), fq)[0, 0]))
    assert got == want
    assert min(want) == -128 and max(want) == 127  # saturation at both ends was exercised
