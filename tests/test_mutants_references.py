"""Survivors of the mutation run (docs/testing.md) in the RF array's records and emulator reference, the pow2
weight levels, the LSTM reference's quantizer and LUT index and the deformable reference's accumulator width,
killed against hand values and naive searches."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hwsim.models import lstm_engine as lref

from hwsim.errors import HwsimError
from hwsim.rf_array import RfArrayConfig, predict_emulator


def test_rf_emulator_stats_fields_by_hand():
    # 8-port emulator streaming 5 vectors: one 8x8 complex matrix-vector product per vector = 4 real MACs per
    # complex MAC: 4 * 64 * 5 = 1,280 MACs; the record is one fold, one group, no stalls, M = vectors.
    cfg = RfArrayConfig(target="emulator")
    st = predict_emulator(cfg, 5)
    assert (dict(st.detail), st.stall_cycles, st.macs) == (
        {"name": "mesh", "m": 5, "k": 8, "n": 8, "folds": 1}, 0, 1280)
    assert 5 < st.cycles  # one vector per cycle at best
    with pytest.raises(HwsimError, match=r"^vectors=0 is not allowed: expected an integer >= 1"):
        predict_emulator(cfg, 0)


def test_lstm_quantize_returns_int64_codes():
    # clamp(rint(x * 2**frac)) to signed 8 bit: 0.3 * 16 = 4.8 -> 5; -20 * 16 -> -320 -> -128; 7.97 -> 127.5 -> 128
    # (ties to even) -> 127.
    q = lref.quantize(np.array([0.3, -20.0, 7.96875]), 4, 8)
    assert q.dtype == np.int64
    assert q.tolist() == [5, -128, 127]


def test_rf_gemm_record_fields_by_hand():
    # 5 x 13 x 11 on an 8-port mesh: ceil(13 / 8) = 2 k-tiles x ceil(11 / 8) = 2 n-tiles = 4 folds;
    # 715 MACs; at most 64 MACs a cycle, so utilization = 715 / (64 * cycles); the 4 tiles pass 4 x 64 MAC
    # slots per vector, 143 of them real: 5 x 113 padding slots (idle_slots, docs/idle_lanes.md "RF array").
    from hwsim.rf_array import predict_gemm

    st = predict_gemm(RfArrayConfig(), 5, 13, 11)
    assert (dict(st.detail), st.stall_cycles, st.macs) == (
        {"name": "gemm", "m": 5, "k": 13, "n": 11, "folds": 4, "idle_slots": 5 * (4 * 64 - 143)}, 0, 715)
    assert st.utilization(64) == 715 / (64 * st.cycles)
    for i, field in enumerate("mkn"):
        dims = [5, 13, 11]
        dims[i] = 0
        with pytest.raises(HwsimError, match=rf"^{field}=0 is not allowed: expected an integer >= 1"):
            predict_gemm(RfArrayConfig(), *dims)


def test_rf_emulate_refuses_bad_shapes_and_ranges():
    from hwsim.models import rf_array as rref

    cfg = RfArrayConfig(target="emulator")
    codes = np.zeros(cfg.codes, dtype=np.int64)
    lo, hi = -(1 << 15), (1 << 15) - 1  # signed 16-bit parts
    rref.emulate(cfg, codes, np.full((1, 8, 2), lo))
    rref.emulate(cfg, codes, np.full((1, 8, 2), hi))
    for bad in (lo - 1, hi + 1):
        with pytest.raises(HwsimError, match=r"^x is not allowed: expected signed 16-bit parts"):
            rref.emulate(cfg, codes, np.full((1, 8, 2), bad))
    for shape in ((1, 8, 3), (1, 7, 2), (8, 2)):
        with pytest.raises(HwsimError, match=r"^x with shape .* is not allowed: expected \(vectors, 8, 2\)"):
            rref.emulate(cfg, codes, np.zeros(shape, dtype=np.int64))


def test_pow2_levels_are_the_nearest_power_of_two():
    # {0, +-1, +-2, ..., +-64}: the nearest by linear distance, a tie to the larger magnitude (0.5 -> 1,
    # 1.5 -> 2, 3 -> 4, 48 -> 64), everything beyond 64 -> 64; a naive search over the levels.
    from hwsim.models.quantize import _pow2_levels

    levels = [0] + [s * 2**e for e in range(7) for s in (1, -1)]
    v = np.arange(-80, 80.25, 0.25)
    want = [min(levels, key=lambda lv, x=x: (abs(x - lv), -abs(lv))) for x in v]
    assert _pow2_levels(v).tolist() == want


def test_lstm_lut_index_spans_the_table():
    # 16-bit data, 256-entry tables: x + 2**15 over 2**8 codes per entry: -32768 -> 0, -1 -> 127, 0 -> 128,
    # 32767 -> 255
    from hwsim.models.lstm_engine import _lut_index

    from hwsim.lstm_engine import LstmEngineConfig

    cfg = LstmEngineConfig()
    assert (cfg.data_bits, cfg.lut_bits) == (16, 8)
    assert _lut_index(np.array([-32768, -1, 0, 255, 256, 32767]), cfg).tolist() == [0, 127, 128, 128, 129, 255]


def test_deform_accumulator_width_grows_with_every_factor():
    # A product w * S * m (sample S scaled by bilinear weights up to 2**(2F), mask m up to 2**mask_bits) gains
    # one bit per bit of each factor: 8 more with an 8-bit mask, 2 more per fraction bit, 1 per act/weight bit.
    from hwsim.models.deform_unit import acc_bits_needed

    base = acc_bits_needed(8, 8, 4)
    assert acc_bits_needed(8, 8, 4, 8) - base == 8
    assert acc_bits_needed(8, 8, 5) - base == 2
    assert acc_bits_needed(9, 8, 4) - base == 1 == acc_bits_needed(8, 9, 4) - base


def test_deform_worst_case_product_fits_acc_bits_needed():
    """(-2**(a-1)) * (-2**(w-1)) * 2**(2F) = +2**(a+w+2F-2) needs a + w + 2F signed bits (the formula was one
    bit short until the mutation run found it, issue 25)."""
    # 1x1 kernel, F = 0, no offsets: the accumulator holds exactly (-128) * (-128) = 16,384, which needs 16
    # signed bits (15 hold at most 16,383).
    from hwsim.models import deform_unit as du

    need = du.acc_bits_needed(8, 8, 0)
    acc = du.deform_conv2d_fixed(np.full((1, 1, 1), -128), np.zeros((2, 1, 1), dtype=np.int64),
                                 np.full((1, 1, 1, 1), -128), frac_bits=0, shift=0, acc_bits=need,
                                 overflow="wrap", return_acc=True)[1]
    assert acc.item() == 16384


def _rne(v: Fraction) -> int:
    """The integer nearest ``v``, ties to even."""
    f = v.numerator // v.denominator
    r = v - f
    return f + (r > Fraction(1, 2) or (r == Fraction(1, 2) and f % 2 == 1))


def _f32(v: Fraction) -> Fraction:
    """``v`` rounded to 24 significant bits, ties to even (float32 without overflow or subnormals)."""
    if v == 0:
        return v
    a = abs(v)
    e = a.numerator.bit_length() - a.denominator.bit_length()  # 2**e <= a < 2**(e + 2)
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    ulp = Fraction(2) ** (e - 23)
    return (1 if v > 0 else -1) * _rne(a / ulp) * ulp


def test_f32_requantizer_integer_algorithm_against_exact_rationals():
    """requantize_f32_int (the RTL's integer algorithm) is ONNX Runtime's float32 requantization: f32(acc) times
    the f32 scale, rounded to f32, to an integer half to even, plus the zero point, clamped. Checked here against
    exact rational arithmetic over accumulators around every power of two up to 2**40 (float32 rounds above
    2**24), ties, per-column scales from 2**-30 to 2**12, and 8-, 16- and 32-bit clamps."""
    from hwsim.models.mac_array import FloatRequant, requantize_f32_int

    rng = np.random.default_rng(25)
    accs = {0, 1, -1, 2, 3, 5, -5, 7, 127, 128, 255, 1000, -1000}
    for k in range(1, 41):
        accs |= {2**k - 1, 2**k, 2**k + 1, -(2**k) + 1, -(2**k), -(2**k) - 1, 3 * 2**k // 2}
    accs |= set(rng.integers(-(1 << 40), 1 << 40, 60).tolist()) | set(rng.integers(-5000, 5000, 40).tolist())
    accs = np.array(sorted(accs), dtype=np.int64)
    scales = np.array([2.0**-30, 2.0**-20, 2.0**-9, 0.1, 0.375, 0.5, 1.0, 1.5, 3.0, 2.0**12, 0.7071, 1e-4],
                      dtype=np.float32)
    acc = np.repeat(accs[:, None], scales.size, axis=1)
    exact = [[_rne(_f32(_f32(Fraction(int(a))) * Fraction(float(s)))) for s in scales] for a in accs]
    for zp, lo, hi in ((0, -128, 127), (-7, -128, 127), (100, 100, 127), (0, -(1 << 15), (1 << 15) - 1),
                       (3, -(1 << 31), (1 << 31) - 1)):
        got = requantize_f32_int(acc, FloatRequant(scales, zp, lo, hi))
        assert got.dtype == np.int64
        assert got.tolist() == [[min(max(q + zp, lo), hi) for q in row] for row in exact], (zp, lo, hi)
    # one scale for every column (a per-tensor requantizer)
    fq = FloatRequant([np.float32(0.5)], 0, -128, 127)
    assert requantize_f32_int(np.array([[5, -5, 7, -7, 300]]), fq).tolist() == [[2, -2, 4, -4, 127]]


def test_rne_shift_against_exact_rationals():
    # m / 2**sh rounded half to even for m >= 0 (up to 48 bits, the widest product) and shifts 0..70
    from hwsim.models.mac_array import _rne_shift

    ms = [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 2**24 - 1, 2**24, 2**24 + 1, 3 * 2**23, 5 * 2**22, 2**47 + 2**20,
          2**48 - 1]
    for sh in range(71):
        got = _rne_shift(np.array(ms, dtype=np.int64), np.full(len(ms), sh, dtype=np.int64))
        assert got.tolist() == [_rne(Fraction(m, 2**sh)) for m in ms], sh


def test_rf_emulate_is_independent_of_the_input_container():
    # The emulator's parts are signed 16-bit; inputs held in an int8 array (values in [-128, 127]) must give the
    # same outputs as the same values as Python ints, although the mesh's sums leave the int8 range.
    from hwsim.models import rf_array as rref

    cfg = RfArrayConfig(target="emulator")
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 1 << cfg.dac_bits, rref.code_count(cfg.n, cfg.mesh))
    x8 = rng.integers(-128, 128, (4, cfg.n, 2)).astype(np.int8)
    got = rref.emulate(cfg, codes, x8)
    want = rref.emulate(cfg, codes, x8.tolist())
    assert np.abs(want).max() > 127
    assert got.dtype == np.int64 and got.tolist() == want.tolist()


def _exact_requant(acc: int, scale, zp: int, lo: int, hi: int) -> int:
    """ONNX Runtime's requantization of one accumulator in exact rational arithmetic."""
    return min(max(_rne(_f32(_f32(Fraction(acc)) * Fraction(float(scale)))) + zp, lo), hi)


def test_f32_requantizer_integer_algorithm_corners():
    """requantize_f32_int against exact rationals where its integer steps are exercised at their edges: 32-bit
    accumulators as NumPy int32 (|-2**31| does not fit one), one scale for a 3 x 5 block, accumulators of +-1
    times scales of 2**23 and more (the product's 24 significant bits all kept), accumulators near 2**61 (the
    bit-length estimate of values beyond float64's 53 bits), and a zero accumulator with a scale just below
    2**40 (the largest scale that still shifts the significand instead of saturating)."""
    from hwsim.models.mac_array import FloatRequant, requantize_f32_int

    i32 = (-(1 << 31), (1 << 31) - 1)
    acc32 = np.array([[-(1 << 31), -(1 << 31) + 1, (1 << 31) - 1, -5, 0, 1 << 30]], dtype=np.int32)
    for scale in (np.float32(2.0**-20), np.float32(0.7071), np.float32(2.0**-31)):
        got = requantize_f32_int(acc32, FloatRequant([scale], 0, -128, 127))
        assert got.tolist() == [[_exact_requant(int(a), scale, 0, -128, 127) for a in acc32[0]]], float(scale)
    block = np.arange(-7, 8, dtype=np.int64).reshape(3, 5) * 1001
    got = requantize_f32_int(block, FloatRequant([np.float32(0.01)], 3, -128, 127))
    assert got.tolist() == [[_exact_requant(int(a), np.float32(0.01), 3, -128, 127) for a in row] for row in block]
    cases = [(a, s) for a in (1, -1, 2, 3, -7) for s in (2.0**23 + 1, 2.0**24 - 1, 26783926.0, 1e9, 3.3e8)]
    cases += [(a, s) for a in (2473308746939790336, (1 << 62) - 1, -(1 << 61) - (1 << 37) - 1, (1 << 61) + 12345,
                               (1 << 55) - 1, -(1 << 50) + 3)
              for s in (1.9214766496661317e-12, 2.0**-40, 2.0**-45, 3.1e-14, 2.0**-55)]
    cases += [(0, s) for s in (2.0**39, 1.5 * 2.0**39, 2.0**40 - 2.0**16)]
    for a, s in cases:
        s32 = np.float32(s)
        got = requantize_f32_int(np.array([[a]], dtype=np.int64), FloatRequant([s32], 0, *i32))[0, 0]
        assert got == _exact_requant(a, s32, 0, *i32), (a, float(s32))


def test_f32_requantizer_zero_accumulator_with_a_huge_scale_gives_the_zero_point():
    # f32(0) * scale = 0 for every finite scale: the output is the zero point (clamped), whatever the scale.
    # Found by the mutation run (issue 25): the model and the RTL saturated any value whose float32 exponent
    # is above 16, an exact zero included (tests/test_f32_requantizer_rtl.py checks the RTL lane).
    from hwsim.models.mac_array import FloatRequant, requantize_f32_int

    scales = np.array([2.0**40, 2.0**41, 2.0**60, 2.0**100], dtype=np.float32)
    got = requantize_f32_int(np.zeros((1, 4), dtype=np.int64), FloatRequant(scales, -3, -128, 127))
    assert got.tolist() == [[-3, -3, -3, -3]]


def test_mac_accumulator_saturates_at_the_bottom_and_keeps_int64():
    # 16-bit accumulator ([-32768, 32767]). Column 0: four products of 100 * -100 = -10,000 run -10,000, -20,000,
    # -30,000, then -40,000 saturates to -32,768. Column 1: +10,000 then -10,000 x 3 ends at -20,000; column 2:
    # +12,700 then -10,000 x 3 ends at -17,300 (neither leaves the range). Empty batches and empty outputs
    # accumulate nothing.
    from hwsim.models.mac_array import accumulate

    from hwsim.config import MacArrayConfig

    cfg = MacArrayConfig(acc_bits=16)
    a = np.array([[100, 100, 100, 100], [100, 100, 100, 100], [100, 100, 100, 100]])
    w = np.array([[-100, 100, 127], [-100, -100, -100], [-100, -100, -100], [-100, -100, -100]])
    got = accumulate(a, w, cfg)
    assert got.dtype == np.int64
    assert got.tolist() == [[-32768, -20000, -17300]] * 3
    assert accumulate(np.zeros((0, 3), dtype=np.int64), np.ones((3, 2), dtype=np.int64), cfg).shape == (0, 2)
    assert accumulate(np.ones((2, 3), dtype=np.int64), np.ones((3, 0), dtype=np.int64), cfg).shape == (2, 0)
