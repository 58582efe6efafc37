"""Property tests of the NumPy MAC-array reference against naive, independently written Python loops."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
from hwsim.models import mac_array as ref
from hwsim.models.errors import HwsimError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from naive import NAIVE_WEIGHT_SETS, naive_accumulate, naive_act_range, naive_ovf, naive_requant

from hwsim.config import MacArrayConfig

FORMATS = ("int8", "int4", "int2", "ternary", "binary", "pow2")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ----------------------------------------------------------------------------------------- naive model
# Written from the specification only, with plain Python ints.

CODE_BITS = {"int8": 8, "int4": 4, "int2": 2, "ternary": 2, "binary": 1, "pow2": 4}


def naive_decode(code: int, fmt: str) -> int:
    bits = CODE_BITS[fmt]
    if fmt == "binary":
        return 1 if code == 1 else -1
    if fmt == "pow2":
        sign = (code >> 3) & 1
        e = code & 0b111
        if e == 0:
            return 0
        return -(2 ** (e - 1)) if sign else 2 ** (e - 1)
    value = code - 2**bits if code >= 2 ** (bits - 1) else code
    if fmt == "ternary":
        assert value != -2
    return value


def naive_conv(x, w, acc_bits, overflow, act_bits, rounding, stride, pad, dilation, groups, shift, relu):
    """x: [C][H][W] python lists; w: [O][C/g][kh][kw]; pad = (top, bottom, left, right)."""
    c_in, h, wd = len(x), len(x[0]), len(x[0][0])
    o_ch, cg, kh, kw = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    og = o_ch // groups
    pt, pb, pl, pr = pad
    oh_n = (h + pt + pb - dilation * (kh - 1) - 1) // stride + 1
    ow_n = (wd + pl + pr - dilation * (kw - 1) - 1) // stride + 1
    out = [[[0] * ow_n for _ in range(oh_n)] for _ in range(o_ch)]
    for o in range(o_ch):
        g = o // og
        for oy in range(oh_n):
            for ox in range(ow_n):
                acc = 0
                for ci in range(cg):
                    c = g * cg + ci
                    for i in range(kh):
                        for j in range(kw):
                            y = oy * stride + i * dilation - pt
                            xx = ox * stride + j * dilation - pl
                            if 0 <= y < h and 0 <= xx < wd:
                                acc = naive_ovf(acc + x[c][y][xx] * w[o][ci][i][j], acc_bits, overflow)
                out[o][oy][ox] = naive_requant(acc, act_bits, shift, relu, rounding)
    assert c_in == cg * groups
    return out


# ----------------------------------------------------------------------------------------- strategies
@st.composite
def configs(draw, fmt=None, small_acc=None):
    fmt = draw(st.sampled_from(FORMATS)) if fmt is None else fmt
    act_bits = 1 if fmt == "binary" else draw(st.integers(2, 8))
    probe = MacArrayConfig(weight_format=fmt, act_bits=act_bits, acc_bits=48)
    pb = probe.product_bits
    if small_acc is None:
        small_acc = draw(st.booleans())
    acc_bits = draw(st.integers(pb, pb + 3)) if small_acc else draw(st.integers(pb, 48))
    return MacArrayConfig(
        weight_format=fmt,
        act_bits=act_bits,
        acc_bits=acc_bits,
        overflow=draw(st.sampled_from(("saturate", "wrap"))),
        rounding=draw(st.sampled_from(("half_up", "half_even"))),
    )


def draw_matrix(draw, shape, values, extreme_bias=True):
    """Python list-of-lists drawn from ``values``; often biased to the extremes (to force overflow)."""
    elems = st.sampled_from(values)
    if extreme_bias and draw(st.booleans()):
        extremes = [v for v in values if v in (min(values), max(values))]
        elems = st.sampled_from(extremes) | elems
    rows, cols = shape
    return [[draw(elems) for _ in range(cols)] for _ in range(rows)]


# ----------------------------------------------------------------------------------------- codes
@pytest.mark.parametrize("fmt", FORMATS)
def test_decode_all_codes_matches_naive(fmt):
    bits = CODE_BITS[fmt]
    codes = [c for c in range(2**bits) if not (fmt == "ternary" and c == 2)]
    got = ref.decode_weights(np.array(codes), fmt)
    assert got.dtype == np.int64
    assert got.tolist() == [naive_decode(c, fmt) for c in codes]
    # every representable value round-trips, and the sets agree
    assert sorted(set(got.tolist())) == sorted(NAIVE_WEIGHT_SETS[fmt])
    vals = np.array(NAIVE_WEIGHT_SETS[fmt])
    assert ref.decode_weights(ref.encode_weights(vals, fmt), fmt).tolist() == vals.tolist()
    assert ref.weight_values(fmt).tolist() == sorted(NAIVE_WEIGHT_SETS[fmt])
    assert ref.weight_value_range(fmt) == (min(NAIVE_WEIGHT_SETS[fmt]), max(NAIVE_WEIGHT_SETS[fmt]))


def test_specific_codes():
    assert ref.encode_weights([-1, 0, 1], "ternary").tolist() == [3, 0, 1]
    assert ref.encode_weights([1, -1], "binary").tolist() == [1, 0]
    assert ref.encode_weights([0, 1, -1, 64, -64, 8], "pow2").tolist() == [0, 1, 9, 7, 15, 4]
    assert ref.decode_weights([8], "pow2").tolist() == [0]  # sign ignored for e == 0
    assert ref.encode_weights([-128, 127], "int8").tolist() == [128, 127]
    assert ref.decode_weights(np.array([[0xF]]), "int4").tolist() == [[-1]]


@SETTINGS
@given(data=st.data())
def test_weight_roundtrip_property(data):
    fmt = data.draw(st.sampled_from(FORMATS))
    vals = data.draw(st.lists(st.sampled_from(NAIVE_WEIGHT_SETS[fmt]), min_size=0, max_size=20))
    codes = ref.encode_weights(np.array(vals, dtype=np.int64), fmt)
    assert all(0 <= c < 2 ** CODE_BITS[fmt] for c in codes.tolist())
    assert [naive_decode(c, fmt) for c in codes.tolist()] == vals
    assert ref.decode_weights(codes, fmt).tolist() == vals


@SETTINGS
@given(act_bits=st.integers(1, 16), data=st.data())
def test_act_roundtrip_property(act_bits, data):
    rng = naive_act_range(act_bits)
    vals = data.draw(st.lists(st.sampled_from([rng[0], rng[-1]]) | st.sampled_from(rng), max_size=20))
    codes = ref.encode_acts(vals, act_bits).tolist()
    for v, c in zip(vals, codes, strict=True):
        if act_bits == 1:
            assert c == (1 if v == 1 else 0)
        else:
            assert 0 <= c < 2**act_bits and c % 2**act_bits == v % 2**act_bits
    assert ref.decode_acts(codes, act_bits).tolist() == vals
    lo, hi = ref.act_value_range(act_bits)
    assert (lo, hi) == (rng[0], rng[-1])


@SETTINGS
@given(fmt=st.sampled_from(FORMATS), vals=st.lists(st.integers(-(2**70), 2**70) | st.integers(-300, 300),
                                                      max_size=30))
def test_quantize_to_format_property(fmt, vals):
    arr = np.array(vals, dtype=object) if vals else np.zeros(0, np.int64)
    got = ref.quantize_to_format(arr, fmt).tolist()
    allowed = NAIVE_WEIGHT_SETS[fmt]
    for v, q in zip(vals, got, strict=True):
        assert q in allowed
        if fmt in ("int8", "int4", "int2"):
            assert q == min(max(v, min(allowed)), max(allowed))
        elif fmt == "ternary":
            assert q == (v > 0) - (v < 0)
        elif fmt == "binary":
            assert q == (1 if v >= 0 else -1)
        elif v == 0:
            assert q == 0
        else:
            # nearest in the log domain, brute force over the candidates
            cands = [c for c in allowed if c != 0 and (c > 0) == (v > 0)]
            best = min(cands, key=lambda c: (abs(math.log2(abs(v)) - math.log2(abs(c))), -abs(c)))
            assert q == best


def test_quantize_floats():
    assert ref.quantize_to_format([0.3, -0.2, 0.0, 1.41, 1.42, -2.9, 1e300], "pow2").tolist() == [
        1, -1, 0, 1, 2, -4, 64]
    assert ref.quantize_to_format([2.5, -2.5, 3.5, 200.7, -0.4], "int8").tolist() == [2, -2, 4, 127, 0]
    assert ref.quantize_to_format([0.0, -0.0, -3.0], "binary").tolist() == [1, 1, -1]
    assert ref.quantize_to_format([0.0, 0.2, -7.0], "ternary").tolist() == [0, 1, -1]


# ----------------------------------------------------------------------------------------- accumulate / gemm
@SETTINGS
@given(cfg=configs(small_acc=True), data=st.data())
def test_accumulate_overflowing_matches_naive(cfg, data):
    m = data.draw(st.integers(1, 4))
    k = data.draw(st.integers(0, 48))
    n = data.draw(st.integers(1, 4))
    a = draw_matrix(data.draw, (m, k), naive_act_range(cfg.act_bits))
    w = draw_matrix(data.draw, (k, n), NAIVE_WEIGHT_SETS[cfg.weight_format])
    an = np.array(a, dtype=np.int64).reshape(m, k)
    wn = np.array(w, dtype=np.int64).reshape(k, n)
    got = ref.accumulate(an, wn, cfg)
    assert got.dtype == np.int64 and got.shape == (m, n)
    assert got.tolist() == naive_accumulate(a, w, cfg.acc_bits, cfg.overflow, n_cols=n)


@SETTINGS
@given(cfg=configs(), data=st.data())
def test_gemm_matches_naive(cfg, data):
    m = data.draw(st.integers(1, 5))
    k = data.draw(st.integers(1, 40))
    n = data.draw(st.integers(1, 5))
    a = draw_matrix(data.draw, (m, k), naive_act_range(cfg.act_bits))
    w = draw_matrix(data.draw, (k, n), NAIVE_WEIGHT_SETS[cfg.weight_format])
    shift = data.draw(st.integers(0, min(cfg.acc_bits - 1, 24)))
    relu = data.draw(st.booleans())
    got = ref.gemm(np.array(a), np.array(w), cfg, shift=shift, relu=relu)
    accs = naive_accumulate(a, w, cfg.acc_bits, cfg.overflow)
    want = [[naive_requant(v, cfg.act_bits, shift, relu, cfg.rounding) for v in row] for row in accs]
    assert got.tolist() == want


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_accumulate_forced_int64_path(overflow, monkeypatch):
    """The int64 matmul path and the all-sequential path give the same results as the float path."""
    rng = np.random.default_rng(1)
    cfg = MacArrayConfig(weight_format="int8", act_bits=8, acc_bits=18, overflow=overflow)
    a = rng.integers(-128, 128, (7, 60))
    w = rng.integers(-128, 128, (60, 5))
    a[0] = 127  # row 0 saturates for positive weight columns
    w[:, 0] = 127
    want = naive_accumulate(a.tolist(), w.tolist(), 18, overflow)
    assert ref.accumulate(a, w, cfg).tolist() == want
    monkeypatch.setattr(ref, "_FLOAT_EXACT_LIMIT", 0)
    assert ref.accumulate(a, w, cfg).tolist() == want
    monkeypatch.setattr(ref, "_INT_BOUND_LIMIT", 0)
    assert ref.accumulate(a, w, cfg).tolist() == want


def test_accumulate_wide_duck_typed_config():
    """act_bits=32 with K=2**15 exceeds the float64-exact bound; int64 path, duck-typed cfg."""
    cfg = types.SimpleNamespace(weight_format="int8", act_bits=32, acc_bits=48, overflow="saturate",
                                rounding="half_even")
    k = 1 << 15
    a = np.full((2, k), 2**31 - 1, dtype=np.int64)
    a[1, ::2] = -(2**31)
    w = np.full((k, 2), 127, dtype=np.int64)
    w[::3, 1] = -128
    want = naive_accumulate(a.tolist(), w.tolist(), 48, "saturate")
    assert ref.accumulate(a, w, cfg).tolist() == want
    assert want[0][0] == 2**47 - 1
    wrap = types.SimpleNamespace(**{**vars(cfg), "overflow": "wrap"})
    assert ref.accumulate(a, w, wrap).tolist() == naive_accumulate(a.tolist(), w.tolist(), 48, "wrap")


def test_saturation_is_order_dependent():
    cfg = MacArrayConfig(weight_format="int8", act_bits=8, acc_bits=16, overflow="saturate")
    a = np.array([[127, 127, 127, -128]])
    w = np.array([[127], [127], [127], [127]])
    # 3 * 16129 saturates at 32767, then 32767 - 16256 = 16511 (not the exact 32131)
    assert ref.accumulate(a, w, cfg).tolist() == [[16511]]
    wrap = cfg.replace(overflow="wrap")
    exact = 3 * 16129 - 16256
    assert ref.accumulate(a, w, wrap).tolist() == [[exact]]  # wrapping twice cancels
    assert ref.accumulate(a[:, :3], w[:3], wrap).tolist() == [[3 * 16129 - 65536]]


# ----------------------------------------------------------------------------------------- requantize
@SETTINGS
@given(cfg=configs(), data=st.data())
def test_requantize_matches_naive(cfg, data):
    lo, hi = -(2 ** (cfg.acc_bits - 1)), 2 ** (cfg.acc_bits - 1) - 1
    shift = data.draw(st.integers(0, cfg.acc_bits - 1))
    relu = data.draw(st.booleans())
    if shift >= 1 and data.draw(st.booleans()):
        # exact ties: q * 2**s + 2**(s-1)
        qs = data.draw(st.lists(st.integers(lo >> shift, (hi >> shift) - 1), min_size=1, max_size=10))
        accs = [q * 2**shift + 2 ** (shift - 1) for q in qs]
    else:
        accs = data.draw(st.lists(st.integers(lo, hi) | st.sampled_from([lo, hi, 0, -1, 1]), min_size=1,
                                  max_size=10))
    got = ref.requantize(np.array(accs, dtype=np.int64), cfg, shift=shift, relu=relu).tolist()
    assert got == [naive_requant(v, cfg.act_bits, shift, relu, cfg.rounding) for v in accs]


def test_requantize_ties_examples():
    up = MacArrayConfig(act_bits=8, acc_bits=32, rounding="half_up")
    even = up.replace(rounding="half_even")
    accs = np.array([5, -5, 7, -3, 6, -6, 1, -1, 3])
    # /2: 2.5, -2.5, 3.5, -1.5, 3, -3, 0.5, -0.5, 1.5
    assert ref.requantize(accs, up, shift=1).tolist() == [3, -2, 4, -1, 3, -3, 1, 0, 2]
    assert ref.requantize(accs, even, shift=1).tolist() == [2, -2, 4, -2, 3, -3, 0, 0, 2]
    assert ref.requantize(accs, even, shift=1, relu=True).tolist() == [2, 0, 4, 0, 3, 0, 0, 0, 2]
    assert ref.requantize([1000, -1000], up, shift=0).tolist() == [127, -128]
    assert ref.requantize([1000, -1000], up, shift=0, relu=True).tolist() == [127, 0]


def test_requantize_binary_ignores_shift_and_relu():
    cfg = MacArrayConfig(weight_format="binary", acc_bits=8)
    assert ref.requantize([-3, -1, 0, 2], cfg, shift=3, relu=True).tolist() == [-1, -1, 1, 1]


# ----------------------------------------------------------------------------------------- convolution
@SETTINGS
@given(cfg=configs(), data=st.data())
def test_conv2d_matches_naive(cfg, data):
    groups = data.draw(st.integers(1, 3))
    depthwise = data.draw(st.booleans())
    cg = 1 if depthwise else data.draw(st.integers(1, 2))
    og = 1 if depthwise else data.draw(st.integers(1, 2))
    c_in, o_ch = cg * groups, og * groups
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    stride, dilation = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 2))
    if cfg.act_bits == 1:
        pad = (0, 0, 0, 0)
        padding = 0
    elif data.draw(st.booleans()):
        padding = data.draw(st.integers(0, 2))
        pad = (padding,) * 4
    else:
        padding = pad = tuple(data.draw(st.integers(0, 2)) for _ in range(4))
    h = data.draw(st.integers(max(1, dilation * (kh - 1) + 1 - pad[0] - pad[1]), 7))
    wd = data.draw(st.integers(max(1, dilation * (kw - 1) + 1 - pad[2] - pad[3]), 7))
    batch = data.draw(st.sampled_from([None, 1, 2]))
    acts = naive_act_range(cfg.act_bits)
    xs = [[draw_matrix(data.draw, (h, wd), acts) for _ in range(c_in)] for _ in range(batch or 1)]
    w = [[draw_matrix(data.draw, (kh, kw), NAIVE_WEIGHT_SETS[cfg.weight_format]) for _ in range(cg)]
         for _ in range(o_ch)]
    shift = data.draw(st.integers(0, min(cfg.acc_bits - 1, 12)))
    relu = data.draw(st.booleans())
    x_arr = np.array(xs if batch else xs[0], dtype=np.int64)
    got = ref.conv2d(x_arr, np.array(w), cfg, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, shift=shift, relu=relu)
    want = [naive_conv(x, w, cfg.acc_bits, cfg.overflow, cfg.act_bits, cfg.rounding, stride, pad, dilation,
                       groups, shift, relu) for x in xs]
    assert got.tolist() == (want if batch else want[0])
    # conv2d_as_gemms lowers identically
    gemms = ref.conv2d_as_gemms(x_arr, np.array(w), stride, padding, dilation, groups)
    assert len(gemms) == groups
    oh, ow = len(want[0][0]), len(want[0][0][0])
    for g, (a_g, w_g) in enumerate(gemms):
        assert a_g.shape == ((batch or 1) * oh * ow, cg * kh * kw) and w_g.shape == (cg * kh * kw, og)
        y = ref.gemm(a_g, w_g, cfg, shift=shift, relu=relu).reshape(batch or 1, oh, ow, og)
        assert np.transpose(y, (0, 3, 1, 2)).tolist() == [img[g * og:(g + 1) * og] for img in want]


def test_im2col_layout():
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    cols = ref.im2col(x, 2, 2, stride=1, padding=(1, 0, 0, 1), dilation=1)
    # OH = 3 + 1 - 1 = 3, OW = 4 + 1 - 1 = 4
    assert cols.shape == (12, 8)
    # output (0, 0): padded rows -1..0, cols 0..1; column order (c, i, j)
    assert cols[0].tolist() == [0, 0, 0, 1, 0, 0, 12, 13]
    # output (2, 3): rows 1..2, cols 3..4 (col 4 is padding)
    assert cols[11].tolist() == [7, 0, 11, 0, 19, 0, 23, 0]
    w = np.arange(3 * 2 * 2 * 2).reshape(3, 2, 2, 2)
    assert (cols @ w.reshape(3, -1).T).shape == (12, 3)


def test_depthwise_example():
    cfg = MacArrayConfig(weight_format="int4", act_bits=8, acc_bits=16)
    x = np.arange(3 * 3 * 3).reshape(3, 3, 3) - 13
    w = np.array([[[[1]]], [[[-2]]], [[[7]]]])
    y = ref.conv2d(x, w, cfg, groups=3)
    assert y.tolist() == [(x[0] * 1).tolist(), (x[1] * -2).tolist(), np.clip(x[2] * 7, -128, 127).tolist()]


# ----------------------------------------------------------------------------------------- errors
CFG8 = MacArrayConfig(weight_format="int8", act_bits=8, acc_bits=24)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda: ref.accumulate([[1, 128]], [[1], [1]], CFG8),
         r"^a\[0, 1\]=128 is not allowed: expected an activation value in \[-128, 127\] \(act_bits=8\)$"),
        (lambda: ref.accumulate([[1, 2]], [[1], [-129]], CFG8),
         r"^w\[1, 0\]=-129 is not allowed: expected an int8 weight value in \[-128, 127\]$"),
        (lambda: ref.accumulate([[1, 2]], [[3], [1]], CFG8.replace(weight_format="pow2")),
         r"^w\[0, 0\]=3 is not allowed: expected a pow2 weight value in \{0, \+-1, \+-2, .*, \+-64\}$"),
        (lambda: ref.accumulate([[1, -1]], [[0], [1]], MacArrayConfig(weight_format="binary")),
         r"^w\[0, 0\]=0 is not allowed: expected a binary weight value in \{-1, \+1\}$"),
        (lambda: ref.accumulate([[0]], [[1]], MacArrayConfig(weight_format="binary")),
         r"^a\[0, 0\]=0 is not allowed: expected an activation value in \{-1, \+1\} \(act_bits=1\)$"),
        (lambda: ref.accumulate([[1, 2]], [[1, 2, 3]], CFG8),
         r"^a\.shape=\(1, 2\) and w\.shape=\(1, 3\) are not allowed: expected a of shape \[M, K\]"),
        (lambda: ref.accumulate([[1.5]], [[1]], CFG8),
         r"^a\.dtype=float64 is not allowed: expected an integer array$"),
        (lambda: ref.accumulate([[1]], [[1]], types.SimpleNamespace(weight_format="int8", act_bits=8,
                                                                   acc_bits=64, overflow="wrap")),
         r"^acc_bits=64 is not allowed: expected an integer in \[2, 48\]$"),
        (lambda: ref.accumulate([[1]], [[1]], object()),
         r"^cfg=<object object at .*> is not allowed: expected a MAC array configuration with attribute "
         r"'weight_format'$"),
        (lambda: ref.decode_weights([2], "ternary"),
         r"^codes\[0\]=2 is not allowed: expected a ternary weight code 0 \(0\), 1 \(\+1\) or 3 \(-1\); "),
        (lambda: ref.decode_weights([0, 16], "pow2"),
         r"^codes\[1\]=16 is not allowed: expected an unsigned 4-bit pow2 weight code in \[0, 15\]$"),
        (lambda: ref.encode_weights([1, 2, 5], "ternary"),
         r"^values\[1\]=2 is not allowed: expected a ternary weight value in \{-1, 0, \+1\}$"),
        (lambda: ref.encode_weights([[0, -3]], "pow2"), r"^values\[0, 1\]=-3 is not allowed: "),
        (lambda: ref.encode_weights([2**80], "int8"),
         r"^values\[0\]=1208925819614629174706176 is not allowed: expected an integer that fits int64$"),
        (lambda: ref.encode_weights([1], "int3"),
         r"^weight_format='int3' is not allowed: expected one of int8, int4, int2, ternary, binary, pow2$"),
        (lambda: ref.encode_acts([8], 4),
         r"^values\[0\]=8 is not allowed: expected an activation value in \[-8, 7\] \(act_bits=4\)$"),
        (lambda: ref.decode_acts([4], 2), r"^codes\[0\]=4 is not allowed: expected an unsigned 2-bit "),
        (lambda: ref.requantize([1], CFG8, shift=24),
         r"^shift=24 is not allowed: expected an integer in \[0, 23\]$"),
        (lambda: ref.requantize([1], CFG8, shift=-1),
         r"^shift=-1 is not allowed: expected an integer in \[0, 23\]$"),
        (lambda: ref.requantize([1 << 23], CFG8),
         r"^acc\[0\]=8388608 is not allowed: expected a signed 24-bit accumulator value in "
         r"\[-8388608, 8388607\]$"),
        (lambda: ref.requantize([1], CFG8, relu=1), r"^relu=1 is not allowed: expected True or False$"),
        (lambda: ref.gemm([[1]], [[1]], CFG8, shift=True),
         r"^shift=True is not allowed: expected an integer$"),
        (lambda: ref.conv2d(np.ones((1, 4, 4), int), np.ones((1, 1, 3, 3), int),
                            MacArrayConfig(weight_format="binary"), padding=1),
         r"^padding=1 is not allowed with act_bits=1: zero padding is not a \+-1 activation; "
         r"expected padding=0$"),
        (lambda: ref.conv2d(np.ones((4, 4, 4), int), np.ones((6, 2, 3, 3), int), CFG8, groups=3),
         r"^groups=3 is not allowed: expected a divisor of the input channels \(4\) and of the output "
         r"channels \(6\)$"),
        (lambda: ref.conv2d(np.ones((4, 4, 4), int), np.ones((6, 4, 3, 3), int), CFG8, groups=2),
         r"^w\.shape=\(6, 4, 3, 3\) is not allowed: expected \(O, C/groups, kh, kw\) with C/groups = 2 "),
        (lambda: ref.conv2d(np.ones((1, 2, 2), int), np.ones((1, 1, 3, 3), int), CFG8),
         r"^output size 0x0 is not allowed: expected at least 1x1 \(input 2x2, kernel 3x3, "),
        (lambda: ref.conv2d(np.full((1, 3, 3), 200), np.ones((1, 1, 1, 1), int), CFG8),
         r"^x\[0, 0, 0\]=200 is not allowed: expected an activation value in \[-128, 127\]"),
        (lambda: ref.conv2d(np.ones((1, 3, 3), int), np.full((1, 1, 1, 1), 300), CFG8),
         r"^w\[0, 0, 0, 0\]=300 is not allowed: expected an int8 weight value"),
        (lambda: ref.conv2d(np.ones((3, 3), int), np.ones((1, 1, 1, 1), int), CFG8),
         r"^x\.shape=\(3, 3\) is not allowed: expected \(C, H, W\) or \(N, C, H, W\)$"),
        (lambda: ref.im2col(np.ones((1, 3, 3)), 3, 3, padding=(1, 1)),
         r"^padding=\(1, 1\) is not allowed: expected an integer >= 0 or a tuple \(top, bottom, left, "
         r"right\)"),
        (lambda: ref.im2col(np.ones((1, 3, 3)), 3, 3, stride=0),
         r"^stride=0 is not allowed: expected an integer >= 1$"),
        (lambda: ref.quantize_to_format([1.0, float("nan")], "int8"),
         r"^values\[1\]=nan is not allowed: expected a finite number$"),
    ],
)
def test_errors(call, pattern):
    with pytest.raises(HwsimError, match=pattern):
        call()
