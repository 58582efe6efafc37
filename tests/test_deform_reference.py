"""Deformable-conv references against direct per-pixel loops written from torchvision's conventions."""

import math

import numpy as np
import pytest
from hwsim.models import deform_unit as du
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError


# ------------------------------------------------------------------------- independent direct loops
def _px(x, c, yy, xx):
    h, w = len(x[0]), len(x[0][0])
    return x[c][yy][xx] if 0 <= yy < h and 0 <= xx < w else 0


def loop_float(x, off, wt, bias, stride, pad, dil, groups, mask):
    """One output value at a time, one tap at a time, pure Python floats."""
    c, h, w = x.shape
    co, cg, kh, kw = wt.shape
    ho = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    g_off = off.shape[0] // (2 * kh * kw)
    xl = x.tolist()
    out = np.zeros((co, ho, wo))
    for o in range(co):
        grp = o // (co // groups)
        for y in range(ho):
            for xo in range(wo):
                s = 0.0 if bias is None else float(bias[o])
                for ci in range(cg):
                    ch = grp * cg + ci
                    og = ch // (c // g_off)
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            dy = float(off[2 * (og * kh * kw + k), y, xo])
                            dx = float(off[2 * (og * kh * kw + k) + 1, y, xo])
                            py = y * stride - pad + i * dil + dy
                            pxx = xo * stride - pad + j * dil + dx
                            y0, x0 = math.floor(py), math.floor(pxx)
                            ly, lx = py - y0, pxx - x0
                            v = ((1 - ly) * (1 - lx) * _px(xl, ch, y0, x0) + (1 - ly) * lx * _px(xl, ch, y0, x0 + 1)
                                 + ly * (1 - lx) * _px(xl, ch, y0 + 1, x0) + ly * lx * _px(xl, ch, y0 + 1, x0 + 1))
                            if mask is not None:
                                v *= float(mask[og * kh * kw + k, y, xo])
                            s += float(wt[o, ci, i, j]) * v
                out[o, y, xo] = s
    return out


def loop_fixed(x, offq, wt, F, shift, stride, pad, dil, groups, acc_bits, overflow, rounding, maskq=None, mbits=0,
               bias=None, relu=False):
    """Integer loop: bilinear weights from the fraction bits, sequential accumulation, Python ints."""
    c, h, w = x.shape
    co, cg, kh, kw = wt.shape
    ho = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    g_off = offq.shape[0] // (2 * kh * kw)
    one = 2 ** F
    lo, hi = -(2 ** (acc_bits - 1)), 2 ** (acc_bits - 1) - 1
    xl = x.tolist()
    out = np.zeros((co, ho, wo), dtype=np.int64)
    ts = shift + 2 * F + (mbits if maskq is not None else 0)
    for o in range(co):
        grp = o // (co // groups)
        for y in range(ho):
            for xo in range(wo):
                acc = 0 if bias is None else int(bias[o])
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        for ci in range(cg):
                            ch = grp * cg + ci
                            og = ch // (c // g_off)
                            qy = (y * stride - pad + i * dil) * one + int(offq[2 * (og * kh * kw + k), y, xo])
                            qx = (xo * stride - pad + j * dil) * one + int(offq[2 * (og * kh * kw + k) + 1, y, xo])
                            y0, fy = divmod(qy, one)
                            x0, fx = divmod(qx, one)
                            ws = [(one - fy) * (one - fx), (one - fy) * fx, fy * (one - fx), fy * fx]
                            assert sum(ws) == one * one
                            smp = (ws[0] * _px(xl, ch, y0, x0) + ws[1] * _px(xl, ch, y0, x0 + 1)
                                   + ws[2] * _px(xl, ch, y0 + 1, x0) + ws[3] * _px(xl, ch, y0 + 1, x0 + 1))
                            if maskq is not None:
                                smp *= int(maskq[og * kh * kw + k, y, xo])
                            acc += int(wt[o, ci, i, j]) * smp
                            if overflow == "saturate":
                                acc = min(max(acc, lo), hi)
                            else:
                                acc = (acc - lo) % 2 ** acc_bits + lo
                v = max(acc, 0) if relu else acc
                if ts:
                    q, r = divmod(v, 2 ** ts)
                    half = 2 ** (ts - 1)
                    if r > half or (r == half and (rounding == "half_up" or q % 2 == 1)):
                        q += 1
                    v = q
                out[o, y, xo] = min(max(v, -128), 127)
    return out


def _case(rng, c, co, groups, h, w, kh, kw, g_off, stride, pad, dil, spread):
    ho = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    x = rng.integers(-128, 128, size=(c, h, w))
    wt = rng.integers(-128, 128, size=(co, c // groups, kh, kw))
    off = rng.uniform(-spread, spread, size=(2 * g_off * kh * kw, ho, wo))
    return x, wt, off, ho, wo


# ------------------------------------------------------------------------- float
shapes = st.tuples(
    st.sampled_from([(1, 1, 1, 1), (2, 2, 1, 1), (2, 4, 2, 2), (3, 3, 3, 1), (4, 4, 4, 2), (2, 3, 1, 2)]),
    st.integers(1, 7), st.integers(1, 7), st.sampled_from([(1, 1), (3, 3), (1, 3), (2, 3)]),
    st.integers(1, 2), st.integers(0, 2), st.integers(1, 2), st.integers(0, 2**31 - 1))


@settings(max_examples=40, deadline=None)
@given(shapes, st.booleans())
def test_float_matches_direct_loop(shape, modulated):
    (c, co, groups, g_off), h, w, (kh, kw), stride, pad, dil, seed = shape
    if (h + 2 * pad - dil * (kh - 1) - 1) < 0 or (w + 2 * pad - dil * (kw - 1) - 1) < 0:
        return
    rng = np.random.default_rng(seed)
    x, wt, off, ho, wo = _case(rng, c, co, groups, h, w, kh, kw, g_off, stride, pad, dil, 3.0)
    mask = du.sigmoid(rng.normal(size=(g_off * kh * kw, ho, wo))) if modulated else None
    bias = rng.normal(size=co)
    got = du.deform_conv2d_float(x, off, wt, bias, stride, pad, dil, groups, mask)
    want = loop_float(x, off, wt, bias, stride, pad, dil, groups, mask)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)


def test_zero_offsets_is_a_regular_conv():
    rng = np.random.default_rng(3)
    x = rng.integers(-5, 5, size=(2, 5, 7)).astype(float)
    wt = rng.integers(-3, 3, size=(3, 2, 3, 3)).astype(float)
    got = du.deform_conv2d_float(x, np.zeros((18, 5, 7)), wt, padding=1)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    want = np.zeros((3, 5, 7))
    for o in range(3):
        for y in range(5):
            for xx in range(7):
                want[o, y, xx] = np.sum(wt[o] * xp[:, y:y + 3, xx:xx + 3])
    np.testing.assert_array_equal(got, want)


def test_corners_outside_read_zero_and_integer_offsets_shift_exactly():
    x = np.arange(1, 13, dtype=float).reshape(1, 3, 4)
    wt = np.ones((1, 1, 1, 1))
    off = np.zeros((2, 3, 4))
    off[0], off[1] = 1.0, -1.0  # integer shift: sample (y+1, x-1)
    got = du.deform_conv2d_float(x, off, wt)[0]
    want = np.array([[0, 5, 6, 7], [0, 9, 10, 11], [0, 0, 0, 0]], dtype=float)
    np.testing.assert_array_equal(got, want)
    off[0], off[1] = -0.5, 0.0  # half a row above the first row: half of row 0 with a zero row
    assert du.deform_conv2d_float(x, off, wt)[0, 0, 0] == 0.5


# ------------------------------------------------------------------------- fixed point
@settings(max_examples=40, deadline=None)
@given(shapes, st.sampled_from([0, 1, 3, 4]), st.sampled_from([(32, "saturate"), (24, "saturate"), (26, "wrap")]),
       st.sampled_from(["half_up", "half_even"]), st.booleans(), st.integers(0, 4))
def test_fixed_matches_direct_loop(shape, F, acc, rounding, modulated, shift):
    (c, co, groups, g_off), h, w, (kh, kw), stride, pad, dil, seed = shape
    acc_bits, overflow = acc
    if (h + 2 * pad - dil * (kh - 1) - 1) < 0 or (w + 2 * pad - dil * (kw - 1) - 1) < 0:
        return
    mbits = 4 if modulated else None
    if du.acc_bits_needed(8, 8, F, mbits) > acc_bits:
        return
    rng = np.random.default_rng(seed)
    x, wt, off, ho, wo = _case(rng, c, co, groups, h, w, kh, kw, g_off, stride, pad, dil, 4.0)
    offq = du.quantize_offsets(off, F)
    maskq = rng.integers(0, 17, size=(g_off * kh * kw, ho, wo)) if modulated else None
    bias = rng.integers(-1000, 1000, size=co)
    got = du.deform_conv2d_fixed(x, offq, wt, frac_bits=F, shift=shift, stride=stride, padding=pad, dilation=dil,
                                 groups=groups, mask_q=maskq, mask_bits=4, acc_bits=acc_bits, overflow=overflow,
                                 rounding=rounding, bias=bias, relu=bool(seed % 2))
    want = loop_fixed(x, offq, wt, F, shift, stride, pad, dil, groups, acc_bits, overflow, rounding, maskq, 4, bias,
                      relu=bool(seed % 2))
    np.testing.assert_array_equal(got, want)


def test_fixed_overflow_corners():
    # every sample -128 * 2**(2F) (F = 1), weight -128: 18 products of 2**16 = 1179648 > 2**19 - 1 (20-bit acc)
    x = np.full((2, 3, 3), -128)
    wt = np.full((1, 2, 3, 3), -128)
    off = np.zeros((18, 1, 1), dtype=np.int64)
    kw = dict(frac_bits=1, shift=0, acc_bits=20, return_acc=True)
    assert du.deform_conv2d_fixed(x, off, wt, **kw)[1][0, 0, 0] == 2**19 - 1
    assert du.deform_conv2d_fixed(x, off, wt, overflow="wrap", **kw)[1][0, 0, 0] == 1179648 - 2**20
    out = du.deform_conv2d_fixed(x, off, wt, frac_bits=1, shift=0, acc_bits=20)
    assert out[0, 0, 0] == 127  # (2**19 - 1) >> 2 rounds to 131072, clamped to int8
    neg = du.deform_conv2d_fixed(x, off, -wt - 1, frac_bits=1, shift=0, acc_bits=20, return_acc=True)[1]
    assert neg[0, 0, 0] == -(2**19)


def test_bilinear_weights_sum_exactly():
    for F in range(0, 9):
        f = np.arange(1 << F)
        fy, fx = np.meshgrid(f, f)
        ws = du.bilinear_weights_fixed(fy, fx, F)
        assert np.all(sum(ws) == 1 << (2 * F))
        assert all(np.all(wi >= 0) for wi in ws)


@pytest.mark.parametrize("F", [2, 4, 6])
def test_fixed_vs_float_bound(F):
    """acc / 2**(2F) equals the float DCN at the quantized offsets exactly; against the unquantized offsets the
    error is at most 255 * 2**-F * sum|w| per output (bilinear Lipschitz bound, |dpos| <= 2**-(F+1) per axis)."""
    rng = np.random.default_rng(F)
    x, wt, off, ho, wo = _case(rng, 4, 4, 4, 13, 11, 3, 3, 1, 1, 1, 1, 5.0)
    offq = du.quantize_offsets(off, F)
    _, acc = du.deform_conv2d_fixed(x, offq, wt, frac_bits=F, shift=0, groups=4, padding=1, return_acc=True)
    exact = du.deform_conv2d_float(x, du.dequantize_offsets(offq, F), wt, padding=1, groups=4)
    np.testing.assert_allclose(acc / 2.0 ** (2 * F), exact, rtol=0, atol=1e-6)
    raw = du.deform_conv2d_float(x, off, wt, padding=1, groups=4)
    bound = 255 * 2.0 ** -F * np.abs(wt).reshape(4, -1).sum(1)[:, None, None]
    assert np.all(np.abs(acc / 2.0 ** (2 * F) - raw) <= bound + 1e-9)


# ------------------------------------------------------------------------- variants
def test_square_offsets_sample_a_square_kernel():
    d = np.array([[[2.0, 0.0]]])  # one offset group, 1x2 output
    off = du.square_offsets(d, 3, 3, dilation=1)
    assert off.shape == (18, 1, 2)
    for k in range(9):
        i, j = divmod(k, 3)
        # nominal (i-1, j-1) plus offset = (i-1)*d
        assert off[2 * k, 0, 0] + (i - 1) == (i - 1) * 2
        assert off[2 * k + 1, 0, 0] + (j - 1) == (j - 1) * 2
        assert off[2 * k, 0, 1] + (i - 1) == 0  # d = 0: every tap samples the centre


def test_variants_are_one_implementation():
    rng = np.random.default_rng(1)
    F = 4
    raw = rng.integers(-20 * 16, 20 * 16, size=(18, 5, 6))
    b = du.variant_offsets(du.variant("bounded"), raw, 3, 3, frac_bits=F)
    assert b.min() == -8 * 16 and b.max() == 8 * 16
    np.testing.assert_array_equal(du.variant_offsets(du.variant("depthwise"), raw, 3, 3, frac_bits=F), raw)
    b3 = du.variant_offsets(du.variant("bounded", bound=2.5), raw, 3, 3, frac_bits=F)
    assert b3.max() == 40 and b3.min() == -40
    dil = rng.integers(-16, 12 * 16, size=(1, 5, 6))
    sq = du.variant_offsets(du.variant("square_depthwise"), dil, 3, 3, frac_bits=F)
    d_int = np.minimum(np.clip(dil, 0, 128) + 8 >> 4, 8)  # round to integer pixels, within [0, 8]
    np.testing.assert_array_equal(sq, du.square_offsets(d_int * 16, 3, 3, 16))
    sqf = du.variant_offsets(du.variant("square", fractional=True), dil, 3, 3, frac_bits=F)
    np.testing.assert_array_equal(sqf, du.square_offsets(np.clip(dil, 0, 128), 3, 3, 16))
    # float and fixed agree on the same variant
    fl = du.variant_offsets(du.variant("square"), dil / 16.0, 3, 3)
    np.testing.assert_array_equal(fl * 16, du.variant_offsets(du.variant("square"), dil, 3, 3, frac_bits=F))


@pytest.mark.parametrize("kwargs, msg", [
    ({"frac_bits": 9}, r"^frac_bits=9 is not allowed with acc_bits=32: one product needs 34 bits"),
    ({"frac_bits": 2, "shift": 40}, r"^shift=40 is not allowed"),
    ({"frac_bits": 2, "overflow": "clip"}, r"^overflow='clip' is not allowed: expected one of saturate, wrap$"),
])
def test_fixed_rejects_bad_arguments(kwargs, msg):
    x, wt, off = np.zeros((1, 3, 3)), np.zeros((1, 1, 3, 3)), np.zeros((18, 1, 1))
    kwargs = {"shift": 0, **kwargs}
    with pytest.raises(HwsimError, match=msg):
        du.deform_conv2d_fixed(x, off, wt, **kwargs)


def test_rejects_offsets_not_matching_kernel():
    with pytest.raises(HwsimError, match=r"^offset channels=16 is not allowed: expected \(2 \* G \* 3 \* 3"):
        du.deform_conv2d_float(np.zeros((1, 3, 3)), np.zeros((16, 1, 1)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(HwsimError, match=r"^bound=-1 is not allowed: expected a number >= 0 or None$"):
        du.Variant("x", bound=-1)
