"""TT/HT formats and the fixed-point reference, against dense NumPy and naive loops."""

import itertools
import math
import re

import networkx as nx
import numpy as np
import pytest
from hwsim.models import lstm_engine as ref
from hwsim.models import tensor_formats as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError

SHAPES = [((2, 3, 2), (3, 2, 5)), ((1, 7), (5, 1)), ((3,), (7,)), ((2, 2, 3, 1), (1, 3, 2, 2))]


def _naive_tt_entry(tt, i, j):
    """W[i, j] = G1[:, i1, j1, :] @ ... @ Gd[:, id, jd, :] with explicit rank loops."""
    d = tt.d
    ii = np.unravel_index(i, tt.out_modes)
    jj = np.unravel_index(j, tt.in_modes)
    vec = np.ones(1)
    for k in range(d):
        g = tt.factors[k].data.reshape(tt.ranks[k], tt.out_modes[k], tt.in_modes[k], tt.ranks[k + 1])
        vec = vec @ g[:, ii[k], jj[k], :]
    return float(vec[0])


@pytest.mark.parametrize("m,n", SHAPES)
def test_tt_full_rank_roundtrip_and_matvec(m, n):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((math.prod(m), math.prod(n)))
    tt = tf.tt_from_dense(W, m, n, ranks=10_000)
    assert np.allclose(tf.to_dense(tt), W, atol=1e-10)
    x = rng.standard_normal(W.shape[1])
    for order in itertools.permutations(range(len(m))):
        try:
            y = tf.matvec(tt, x, order)
        except HwsimError:
            continue
        assert np.allclose(y, W @ x, atol=1e-9)


def test_tt_matvec_matches_naive_entries():
    tt = tf.TTMatrix.random((2, 3), (3, 2), (1, 2, 1), rng=3)
    W = np.array([[_naive_tt_entry(tt, i, j) for j in range(6)] for i in range(6)])
    assert np.allclose(tf.to_dense(tt), W)
    x = np.arange(6.0) - 2
    assert np.allclose(tf.matvec(tt, x), W @ x)


@pytest.mark.parametrize("m,n", SHAPES)
def test_ht_full_rank_roundtrip_and_matvec(m, n):
    rng = np.random.default_rng(2)
    W = rng.standard_normal((math.prod(m), math.prod(n)))
    ht = tf.ht_from_dense(W, m, n, ranks=10_000)
    assert np.allclose(tf.to_dense(ht), W, atol=1e-9)
    x = rng.standard_normal(W.shape[1])
    assert np.allclose(tf.matvec(ht, x), W @ x, atol=1e-9)


def test_ht_unbalanced_tree():
    g = nx.DiGraph([((0, 1, 2), (0,)), ((0, 1, 2), (1, 2)), ((1, 2), (1,)), ((1, 2), (2,))])
    rng = np.random.default_rng(4)
    W = rng.standard_normal((12, 30))
    ht = tf.ht_from_dense(W, (2, 3, 2), (3, 2, 5), ranks=100, tree=g)
    assert np.allclose(tf.to_dense(ht), W, atol=1e-9)


def test_truncation_tolerance_bounds_error():
    rng = np.random.default_rng(5)
    W = rng.standard_normal((16, 36))
    for tol in (0.1, 0.3, 0.6):
        tt = tf.tt_from_dense(W, (4, 4), (6, 6), tol=tol)
        assert np.linalg.norm(tf.to_dense(tt) - W) <= tol * np.linalg.norm(W) + 1e-9
        ht = tf.ht_from_dense(W, (4, 4), (6, 6), tol=tol)
        assert np.linalg.norm(tf.to_dense(ht) - W) <= tol * np.linalg.norm(W) + 1e-9


def test_ucf11_and_youtube_counts_by_hand():
    # Yang et al. 2017: UCF11 TT-LSTM, 4 gates folded into the first output mode (4 x 4 = 16).
    ucf = tf.TTMatrix.random((16, 4, 4, 4), (8, 20, 20, 18), (1, 4, 4, 4, 1), rng=0)
    assert ucf.params == 16 * 8 * 4 + 4 * 4 * 20 * 4 + 4 * 4 * 20 * 4 + 4 * 4 * 18 == 3360
    assert ucf.dense_params == 57600 * 1024
    yt = tf.TTMatrix.random((16, 4, 4, 4), (4, 20, 20, 36), (1, 4, 4, 4, 1), rng=0)
    assert yt.params == 16 * 4 * 4 + 4 * 4 * 20 * 4 + 4 * 4 * 20 * 4 + 4 * 4 * 36 == 3392
    # right-to-left stages: G4 contracts n4 (18) of x: Q = 8*20*20, R = 4*4, K = 18.
    st4 = tf.plan_stages(ucf, (3, 2, 1, 0))
    assert [s.macs for s in st4] == [3200 * 16 * 18, 640 * 16 * 80, 128 * 16 * 80, 64 * 16 * 32]
    ht = tf.HTMatrix.random((16, 4, 4, 4), (8, 20, 20, 18), 4, rng=0)
    assert ht.params == 16 * 8 * 4 + 4 * 20 * 4 * 2 + 4 * 18 * 4 + 2 * 64 + 16


def test_cheapest_order_is_minimal():
    tt = tf.TTMatrix.random((16, 4, 4, 4), (8, 20, 20, 18), (1, 4, 4, 4, 1), rng=0)
    best = sum(s.macs for s in tf.plan_stages(tt))
    for order in itertools.permutations(range(4)):
        try:
            assert sum(s.macs for s in tf.plan_stages(tt, order)) >= best
        except HwsimError:
            pass


@pytest.mark.parametrize("call,msg", [
    (lambda: tf.tt_from_dense(np.zeros((6, 6)), (2, 2), (3, 2), ranks=2), r"^out_modes=\[2, 2\] is not allowed: expected modes whose product is M=6$"),
    (lambda: tf.tt_from_dense(np.zeros((6, 6)), (2, 3), (3, 3), ranks=2), r"^in_modes=\[3, 3\] is not allowed"),
    (lambda: tf.tt_from_dense(np.zeros((6, 6)), (2, 3), (3, 2), ranks=0), r"^ranks=0 is not allowed"),
    (lambda: tf.TTMatrix.random((2, 3), (3, 2), (1, 0, 1)), r"^ranks=\[1, 0, 1\] is not allowed"),
    (lambda: tf.HTMatrix.random((2, 3, 2), (3, 2, 5), 2, tree=nx.DiGraph([((0, 1, 2), (0,)), ((0, 1, 2), (1,))])), r"^tree node=\(0, 1, 2\) is not allowed"),
    (lambda: tf.plan_stages(tf.HTMatrix.random((2, 3, 2), (3, 2, 5), 2), (3, 0, 1, 2, 4)), r"^order factor=B1_2 is not allowed"),
    (lambda: tf.plan_stages(tf.HTMatrix.random((2, 3, 2), (3, 2, 5), 2), (0, 0, 1, 2, 4)), r"^order=\[0, 0, 1, 2, 4\] is not allowed"),
])
def test_bad_shapes_rejected(call, msg):
    with pytest.raises(HwsimError, match=msg):
        call()
    try:
        call()
    except HwsimError as e:
        assert "\n" not in str(e)


class _Cfg:
    def __init__(self, data_bits=8, acc_bits=16, overflow="saturate", rounding="half_up", frac_bits=5,
                 nonlinearity="pwl", lut_bits=6):
        self.__dict__.update(locals())


def _naive_stage(t, f, stage, sizes, cfg, shift):
    """Dict-of-indices loop over (q, p, k) with a Python-int register."""
    tt = np.asarray(t).reshape([sizes[a] for a in stage.t_axes])
    out = np.zeros([sizes[a] for a in stage.out_axes], dtype=np.int64)
    amin, amax = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    for qi in itertools.product(*[range(sizes[a]) for a in stage.rest]):
        for pi in itertools.product(*[range(sizes[a]) for a in stage.new]):
            acc = 0
            for ki in itertools.product(*[range(sizes[a]) for a in stage.shared]):
                lab = dict(zip(stage.rest + stage.new + stage.shared, qi + pi + ki, strict=True))
                prod = int(tt[tuple(lab[a] for a in stage.t_axes)]) * int(f.data[tuple(lab[a] for a in f.axes)])
                acc += prod
                if cfg.overflow == "saturate":
                    acc = min(max(acc, amin), amax)
                else:
                    acc = (acc - amin) % (1 << cfg.acc_bits) + amin
            if shift:
                if cfg.rounding == "half_up":
                    acc = (acc + (1 << (shift - 1))) >> shift
                else:
                    acc = round(acc / (1 << shift))  # Python's round: ties to even
            out[qi + pi] = min(max(acc, -(1 << (cfg.data_bits - 1))), (1 << (cfg.data_bits - 1)) - 1)
    return out.reshape(-1)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), bits=st.sampled_from([4, 8]), acc=st.integers(8, 20),
       overflow=st.sampled_from(["saturate", "wrap"]), rounding=st.sampled_from(["half_up", "half_even"]),
       shift=st.integers(0, 6), kind=st.sampled_from(["tt", "ht"]), extreme=st.booleans())
def test_fixed_stages_match_naive_loops(seed, bits, acc, overflow, rounding, shift, kind, extreme):
    cfg = _Cfg(data_bits=bits, acc_bits=max(acc, 2 * bits), overflow=overflow, rounding=rounding)
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    m, n = (2, 3, 1), (3, 1, 2)
    fmt = tf.TTMatrix.random(m, n, (1, 2, 3, 1), rng) if kind == "tt" else tf.HTMatrix.random(m, n, 2, rng=rng)
    draw = (lambda s: rng.choice([lo, hi], size=s)) if extreme else (lambda s: rng.integers(lo, hi + 1, size=s))
    fmt = fmt.with_factors([draw(f.data.shape) for f in fmt.factors])
    t = draw(6)
    sizes = fmt.sizes()
    for stg in tf.plan_stages(fmt):
        f = fmt.factors[stg.factor]
        got = tf.stage_fixed(t, f, stg, sizes, data_bits=bits, acc_bits=cfg.acc_bits, overflow=overflow,
                             rounding=rounding, shift=shift)
        want = _naive_stage(t, f, stg, sizes, cfg, shift)
        assert (got == want).all()
        t = got


def test_fixed_matvec_close_to_float():
    rng = np.random.default_rng(7)
    tt = tf.TTMatrix.random((4, 4, 4), (5, 6, 7), (1, 3, 3, 1), rng, scale=0.3)
    cfg = _Cfg(data_bits=16, acc_bits=40, frac_bits=10)
    xs = rng.uniform(-1, 1, size=(8, 210))
    q = ref.quantize_lstm(tt, np.zeros((4 * 16, 16)), np.zeros(64), cfg, xs)
    for x in xs:
        y = ref.wx_fixed(q, ref.quantize(x, q.x_frac, 16), cfg) / 2.0 ** cfg.frac_bits
        y_float = tf.matvec(tt, x)
        # stated bound: relative error < 1% of the output range at 16-bit data
        assert np.abs(y - y_float).max() < 0.01 * np.abs(y_float).max()


def test_pwl_sigmoid_matches_plan_by_hand():
    cfg = _Cfg(data_bits=16, frac_bits=8)
    x = np.array([0, 128, 256, 512, 608, 1280, 2000, -256])
    # F = 8: 0.25|x| + 0.5 below 1; 0.125|x| + 0.625 up to 2.375; 0.03125|x| + 0.84375 up to 5; then 1
    assert ref.sigmoid_fixed(x, cfg).tolist() == [128, 32 + 128, 32 + 160, 64 + 160, 19 + 216, 256, 256, 256 - 192]
    assert ref.tanh_fixed(np.array([0, 256, -256]), cfg).tolist() == [0, 2 * 224 - 256, 2 * (256 - 224) - 256]
    # within PLAN's published max error (0.0189) of the true sigmoid, plus one LSB
    xs = np.arange(-4096, 4096)
    err = np.abs(ref.sigmoid_fixed(xs, cfg) / 256 - 1 / (1 + np.exp(-xs / 256)))
    assert err.max() < 0.0189 + 1 / 256


def test_lut_nonlinearity_by_hand():
    cfg = _Cfg(data_bits=8, frac_bits=5, nonlinearity="lut", lut_bits=4)
    x = np.array([-128, -113, -112, 0, 127])
    # segment width 16 codes; centre of segment i is (16 i + 8 - 128) / 32
    idx = [0, 0, 1, 8, 15]
    want = [math.floor(32 / (1 + math.exp(-((16 * i + 8 - 128) / 32))) + 0.5) for i in idx]
    assert ref.sigmoid_fixed(x, cfg).tolist() == want


def test_cell_fixed_close_to_float():
    rng = np.random.default_rng(9)
    cfg = _Cfg(data_bits=16, acc_bits=32, frac_bits=11)
    H = 5
    zx, U, b = rng.uniform(-2, 2, 4 * H), rng.uniform(-0.5, 0.5, (4 * H, H)), rng.uniform(-0.5, 0.5, 4 * H)
    h, c = rng.uniform(-1, 1, H), rng.uniform(-1, 1, H)
    hf, cf = ref.cell_float(zx, U, b, h, c)
    q = lambda v: ref.quantize(v, 11, 16)  # noqa: E731
    hq, cq = ref.cell_fixed(q(zx), ref.quantize(U, 14, 16), q(b), q(h), q(c), 14, cfg)
    # PLAN's error (< 0.019 per nonlinearity) dominates; two nonlinearities in series
    assert np.abs(hq / 2048 - hf).max() < 0.06 and np.abs(cq / 2048 - cf).max() < 0.06


def test_hand_single_stage_saturates():
    fmt = tf.TTMatrix.random((1,), (4,), (1, 1), rng=0).with_factors([np.full((1, 4), 127)])
    st1 = tf.plan_stages(fmt)[0]
    out = tf.stage_fixed(np.full(4, 127), fmt.factors[0], st1, fmt.sizes(), data_bits=8, acc_bits=16,
                         overflow="saturate", rounding="half_up", shift=8)
    assert out.tolist() == [min((32767 + 128) >> 8, 127)]  # 4*16129 saturates at 32767, then >> 8 -> 128 -> 127
    wrapped = tf.stage_fixed(np.full(4, 127), fmt.factors[0], st1, fmt.sizes(), data_bits=8, acc_bits=16,
                             overflow="wrap", rounding="half_up", shift=0)
    assert wrapped.tolist() == [max(-128, ((4 * 16129 + 32768) % 65536) - 32768)]
    assert re.match(r"^-?\d+$", str(wrapped[0]))
