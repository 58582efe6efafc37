"""The float-exact requantizer RTL (rtl/f32_requantizer.py) in Amaranth's simulator against the reference
(:func:`hwsim.models.mac_array.requantize_f32`, itself checked against exact rationals): zero points at the
type's ends, scales from 2**-20 to 2**4, accumulators beyond 2**24, saturation at both ends, ReLU; the
combinational lane and the two-stage pipelined lanes of the MAC array top (latency in ``en`` steps, hold)."""

import gc
import warnings

import numpy as np
import pytest

pytest.importorskip("amaranth")
from amaranth.hdl import UnusedElaboratable  # noqa: E402
from amaranth.sim import Simulator  # noqa: E402
from hwsim.models.mac_array import FloatRequant, requantize_f32  # noqa: E402
from hwsim.rtl.f32_requantizer import F32Requantizer, PipelinedF32Requantizer  # noqa: E402

from hwsim.config import MacArrayConfig  # noqa: E402
from hwsim.errors import HwsimError  # noqa: E402


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


def _want(a, c, s, z, r, acc_bits=32, wrap=False):
    """The reference of one lane: ``acc + corr`` with the accumulator's overflow rule, then requantize_f32."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    tot = int(a) + int(c)
    tot = ((tot - lo) % (1 << acc_bits)) + lo if wrap else min(max(tot, lo), hi)
    return int(requantize_f32(np.array([[tot]]), FloatRequant([s], int(z), int(z) if r else -128, 127))[0, 0])


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_pipelined_f32_requantizer_two_en_steps(overflow):
    """Two lanes, values entering on every ``en`` step (``en`` low one cycle in three: the stages hold); each
    output equals the reference of the values presented two ``en`` steps earlier; the layer's zero point and
    ReLU are registered copies (set a cycle before values enter)."""
    cfg = MacArrayConfig(overflow=overflow)
    dut = PipelinedF32Requantizer(cfg, 2)
    rng = np.random.default_rng(7)
    n = 120
    acc, corr, scale, _, _ = cases(rng, 2 * n)
    acc, corr, scale = acc.reshape(n, 2), corr.reshape(n, 2), scale.reshape(n, 2)
    zp, relu = -5, 1
    got, steps = [], []

    async def tb(ctx):
        ctx.set(dut.zero_point, zp)
        ctx.set(dut.relu, relu)
        await ctx.tick()
        i = cyc = 0
        while len(got) < n:
            en = cyc % 3 != 2
            if i < n:
                for lane in range(2):
                    ctx.set(dut.acc[lane], int(acc[i, lane]))
                    ctx.set(dut.corr[lane], int(corr[i, lane]))
                    ctx.set(dut.scale[lane], int(np.float32(scale[i, lane]).view(np.uint32)))
            ctx.set(dut.en, int(en))
            await ctx.tick()
            if en:
                steps.append(i)
                i += 1
                if len(steps) >= 2:  # after step j + 1 the output holds the values presented at step j
                    v = [ctx.get(dut.out[lane]) for lane in range(2)]
                    got.append([x - 256 if x >= 128 else x for x in v])
            cyc += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    want = [[_want(acc[j, lane], corr[j, lane], scale[j, lane], zp, relu, wrap=overflow == "wrap")
             for lane in range(2)] for j in range(n)]
    assert got == want


def test_f32_requantizer_rejects_binary_outputs():
    """One line; the component whose constructor raised is dropped without Amaranth's unused warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(HwsimError, match=r"^act_bits=1 is not allowed with the float32 requantizer: expected "
                                             r"2\.\.16 \(binary outputs are signs\)$") as excinfo:
            PipelinedF32Requantizer(MacArrayConfig(weight_format="binary"), 1)
        del excinfo
        gc.collect()


def test_f32_requantizer_zero_with_a_huge_scale_gives_the_zero_point():
    """acc + corr == 0 times any finite scale is 0: the output is the zero point, also for scales >= 2**40
    whose float32 exponent took the saturating branch (a defect the mutation run found, issue 25); +-1 times
    such a scale still saturates to hi / lo."""
    dut = F32Requantizer(MacArrayConfig(), 1)
    rows = [(a, c, s, z) for s in (2.0**40, 2.0**41, 2.0**60, 2.0**100, 3e38) for a, c, z in
            ((0, 0, -3), (5, -5, 17), (0, 0, 0), (1, 0, 0), (-1, 0, 0))]
    got = []

    async def tb(ctx):
        for a, c, s, z in rows:
            ctx.set(dut.acc[0], a)
            ctx.set(dut.corr[0], c)
            ctx.set(dut.scale[0], int(np.float32(s).view(np.uint32)))
            ctx.set(dut.zero_point, z)
            ctx.set(dut.relu, 0)
            v = ctx.get(dut.out[0])
            got.append(v - 256 if v >= 128 else v)

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()
    want = [z if a + c == 0 else (127 if a + c > 0 else -128) for a, c, s, z in rows]
    assert got == want


@pytest.mark.parametrize(("overflow", "acc_bits"), [("saturate", 32), ("wrap", 32), ("saturate", 20), ("wrap", 20)])
def test_f32_requantizer_weight_zero_point_row_term(overflow, acc_bits):
    """``weight_zero_points``: each lane subtracts ``row_zp * rowsum`` after the bias, both steps with the
    accumulator's overflow rule, exactly as a Python-integer loop does it: row sums at the ends of their
    signed ``act_bits + dim_bits`` range, zero points at the int8 ends (-128, 127; uint8 0 and 255 as the
    import shifts them), a narrow accumulator that the row term alone drives out of range at both ends."""
    cfg = MacArrayConfig(acc_bits=acc_bits, overflow=overflow, requantizer="f32", weight_zero_points=True)
    dut = F32Requantizer(cfg, 1)
    rng = np.random.default_rng(2222)
    n = 300
    ab, rb = cfg.acc_bits, cfg.row_sum_bits
    lo, hi = -(1 << (ab - 1)), (1 << (ab - 1)) - 1
    acc = rng.integers(lo, hi + 1, n)
    corr = rng.integers(lo // 4, hi // 4, n)
    rows = np.concatenate([rng.integers(-(1 << (rb - 1)), 1 << (rb - 1), n // 2), rng.integers(-3000, 3000, n // 2)])
    rows[:4] = [-(1 << (rb - 1)), (1 << (rb - 1)) - 1, 0, 1]
    zps = rng.choice([-128, 127, 0, -1, 1], n)
    scale = (2.0 ** rng.uniform(-24, 2, n)).astype(np.float32)
    zp_out = rng.choice([-128, 127, 0], n)
    got = []

    async def tb(ctx):
        for a, c, r, z, s, zo in zip(acc, corr, rows, zps, scale, zp_out, strict=True):
            for port, v in ((dut.acc[0], a), (dut.corr[0], c), (dut.rowsum[0], r), (dut.row_zp[0], z),
                            (dut.scale[0], int(np.float32(s).view(np.uint32))), (dut.zero_point, zo), (dut.relu, 0)):
                ctx.set(port, int(v))
            v = ctx.get(dut.out[0])
            got.append(v - 256 if v >= 128 else v)

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()

    def ovf(x):
        return ((x - lo) % (1 << ab)) + lo if overflow == "wrap" else min(max(x, lo), hi)

    want, ends = [], set()
    for a, c, r, z, s, zo in zip(acc, corr, rows, zps, scale, zp_out, strict=True):
        first = ovf(int(a) + int(c))
        raw = first - int(z) * int(r)
        ends |= {"above"} if raw > hi else {"below"} if raw < lo else set()
        tot = ovf(raw)
        want.append(int(requantize_f32(np.array([[tot]]), FloatRequant([s], int(zo), -128, 127))[0, 0]))
    assert got == want
    assert ends == {"above", "below"}  # the row term left the accumulator's range at both ends
    assert min(want) == -128 and max(want) == 127
