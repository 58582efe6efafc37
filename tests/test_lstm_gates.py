"""The fixed-point gate unit RTL (rtl/lstm_gates.py) on Amaranth's simulator, bit-exact against the
reference (hwsim.models.lstm_engine): sigmoid/tanh over every input code (int8 in the default suite,
int16 marked slow), the cell update over all 256 int8 pre-activation codes plus random and corner
operands, its cycles and operation counts; and LSTM time steps (input-layer TT/HT matvec, hidden stage,
the RTL's gather, gates; h and c carried) through the whole engine RTL, bit-exact, with cycles and every
action count equal to the cycle model's."""

import math

import numpy as np
import pytest
from hwsim.cosim.lstm_engine_regression import count_diffs
from hwsim.cosim.lstm_engine_step import run_gates, run_nonlinearity, run_step
from hwsim.models import lstm_engine as ref
from hwsim.models import tensor_formats as tf

from hwsim.lstm_engine import (
    GATE_LATENCY,
    LstmEngineConfig,
    LstmWorkload,
    gate_phase_cycles,
    predict_matvec,
    predict_step,
)

SMALL = dict(data_bits=8, acc_bits=16, frac_bits=5, work_sram_bytes=512, weight_sram_bytes=1024,
             hidden_sram_bytes=1024, addr_levels=4)
CFGS = {
    "pwl-half-up": LstmEngineConfig(pes=4, banks=4, **SMALL),
    "pwl-half-even-f6": LstmEngineConfig(pes=4, banks=4, **{**SMALL, "frac_bits": 6}, rounding="half_even"),
    "lut8-half-even": LstmEngineConfig(pes=4, banks=4, nonlinearity="lut", rounding="half_even", **SMALL),
    "lut5": LstmEngineConfig(pes=4, banks=4, nonlinearity="lut", lut_bits=5, **SMALL),
}


def _all_codes(bits):
    return np.arange(-(1 << (bits - 1)), 1 << (bits - 1), dtype=np.int64)


@pytest.mark.parametrize("name", list(CFGS))
@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_nonlinearity_exhaustive_int8(name, kind):
    cfg = CFGS[name]
    x = _all_codes(8)
    want = (ref.sigmoid_fixed if kind == "sigmoid" else ref.tanh_fixed)(x, cfg)
    assert (run_nonlinearity(cfg, kind, x) == want).all()


def test_reference_nonlinearities_by_hand():
    """Independent anchors for the reference the RTL is compared with (F = 5, int8)."""
    cfg = CFGS["pwl-half-up"]
    # PLAN, c1 = 27, c2 = 20, c3 = 16: sigma(0) = 16; x = 1.0 (32): (32 >> 3) + 20 = 24;
    # x = 127 (3.97 >= 2.375): (127 >> 5) + 27 = 30; x = -1.0: 32 - 24 = 8; x = -128: 32 - (4 + 27) = 1
    assert ref.sigmoid_fixed([0, 32, 127, -32, -128], cfg).tolist() == [16, 24, 30, 8, 1]
    # tanh = 2 sigma(2x) - 1: x = 0.5 (16) -> 2 * 24 - 32 = 16; x = 127 -> 32
    assert ref.tanh_fixed([16, 127, 0], cfg).tolist() == [16, 32, 0]
    lut = CFGS["lut5"]  # 32 entries, segment width 8 codes; entry 16 centre = (128 + 4 - 128) / 32
    assert ref.sigmoid_fixed([0], lut)[0] == math.floor(32 / (1 + math.exp(-4 / 32)) + 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("nl", ["pwl", "lut"])
def test_nonlinearity_exhaustive_int16(nl):
    cfg = LstmEngineConfig(pes=4, banks=4, data_bits=16, acc_bits=32, frac_bits=12, nonlinearity=nl)
    x = _all_codes(16)
    for kind, f in (("sigmoid", ref.sigmoid_fixed), ("tanh", ref.tanh_fixed)):
        assert (run_nonlinearity(cfg, kind, x) == f(x, cfg)).all(), kind


def _identity_u(H):
    """U (4H x H) with U[r, r mod H] = 1: with e_u = 0 the reference's zh is h[r mod H]."""
    U = np.zeros((4 * H, H), dtype=np.int64)
    U[np.arange(4 * H), np.arange(4 * H) % H] = 1
    return U


def _check_cell(cfg, zx, zh_h, b, c):
    H = len(c)
    want_h, want_c = ref.cell_fixed(zx, _identity_u(H), b, zh_h, c, 0, cfg)
    h2, c2, cycles, counts = run_gates(cfg, zx, np.tile(zh_h, 4), b, c)
    assert (c2 == want_c).all() and (h2 == want_h).all()
    assert cycles == H + GATE_LATENCY
    # the gate unit's share of the cycle model's action counts, by hand: per unit 8 adds, 3 sigmoids,
    # 2 tanh, 3 products, 1 add, 2 requantizations
    assert counts == {("gate_add", "add"): 8 * H, ("sigmoid", "eval"): 3 * H, ("tanh", "eval"): 2 * H,
                      ("cell_mult", "mult"): 3 * H, ("cell_add", "add"): H, ("requant", "convert"): 2 * H}


@pytest.mark.parametrize("name", list(CFGS))
def test_cell_all_int8_preactivation_codes(name):
    """256 hidden units: unit j has every gate's zx = code j, zh and b mixing to saturate z, c spanning
    the range, so every nonlinearity input and the c'/h' clamps and rounding ties occur."""
    cfg = CFGS[name]
    codes = _all_codes(8)
    H = len(codes)
    rng = np.random.default_rng(7)
    zx = np.tile(codes, 4)
    zh_h = np.where(np.arange(H) % 3 == 0, 0, rng.integers(-128, 128, size=H))
    b = np.concatenate([np.zeros(H, dtype=np.int64), rng.integers(-128, 128, size=3 * H)])
    c = codes[::-1].copy()
    _check_cell(cfg, zx, zh_h, b, c)


@pytest.mark.parametrize("name", list(CFGS))
def test_cell_random_and_extreme(name):
    cfg = CFGS[name]
    rng = np.random.default_rng(11)
    H = 64
    draw = lambda n: np.where(rng.random(n) < 0.3, rng.choice([-128, 127], size=n), rng.integers(-128, 128, size=n))  # noqa: E731
    _check_cell(cfg, draw(4 * H), draw(H), draw(4 * H), draw(H))


def _random_lstm(cfg, kind, rng, H=4):
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    if kind == "tt":
        fmt = tf.TTMatrix.random((4, H), (3, 5), (1, 3, 1), rng=rng)
    else:
        fmt = tf.HTMatrix.random((4, H), (3, 5), 2, rng=rng)
    fmt = fmt.with_factors([rng.integers(lo, hi + 1, size=f.data.shape) for f in fmt.factors])
    order = tf.default_order(fmt)
    shifts = tuple(int(v) for v in rng.integers(3, 9, size=len(tf.plan_stages(fmt, order))))
    return ref.FixedLstm(fmt, order, shifts, 4, rng.integers(lo, hi + 1, size=(4 * H, H)), 6,
                         rng.integers(lo, hi + 1, size=4 * H))


@pytest.mark.parametrize("kind", ["tt", "ht", "tt-2-banks", "ht-x-stream"])
def test_full_steps_through_rtl(kind):
    """Three LSTM time steps through the whole engine RTL (rtl/lstm_step.py): stages, hidden stage, the
    RTL's gather and the gate unit, h and c carried in its state memories (also with 2 banks for 4 PEs,
    whose writes stall on bank conflicts)."""
    cfg = {"tt": CFGS["pwl-half-up"], "ht": CFGS["lut8-half-even"],
           "tt-2-banks": CFGS["pwl-half-up"].replace(banks=2),
           "ht-x-stream": CFGS["pwl-half-up"].replace(x_load="stream")}[kind]
    kind = kind[:2]
    rng = np.random.default_rng(5)
    q = _random_lstm(cfg, kind, rng)
    H, T = q.hidden, 3
    xs = rng.integers(-128, 128, size=(T, q.fmt.shape[1]))
    h0, c0 = rng.integers(-128, 128, size=H), rng.integers(-128, 128, size=H)
    got = run_step(cfg, q, xs, h0, c0)
    h, c = h0, c0
    for t in range(T):  # the reference, step by step
        h, c = ref.cell_fixed(ref.wx_fixed(q, xs[t], cfg), q.U, q.b, h, c, q.e_u, cfg)
        assert (got["h"][t] == h).all() and (got["c"][t] == c).all(), t
    assert len({tuple(v) for v in got["h"]}) == T  # the state changes from step to step
    pred = predict_step(cfg, LstmWorkload("step", q.fmt, H, 1, q.order))
    # gate phase by hand: 1 hand-over cycle, 4 gather cycles per unit, 2 to land, the gate unit's 6
    assert gate_phase_cycles(H) == 1 + 4 * H + 2 + 6 == 4 * H + 3 + GATE_LATENCY
    assert got["cycles"] == [pred.cycles] * T
    assert pred.cycles == predict_matvec(cfg, q.fmt, q.order).cycles + pred.detail["stages"][-2].cycles + 4 * H + 9
    # the x load: 15 cycles (N = 3 * 5) per step when streamed, none when overlapped
    stages = sum(r.cycles for r in predict_matvec(cfg, q.fmt, q.order).detail["stages"])
    assert predict_matvec(cfg, q.fmt, q.order).cycles == stages + (15 if cfg.x_load == "stream" else 0)
    # every priced action, per-bank count and the stalls of the T steps equal the model's
    assert count_diffs(got["counts"], got["layer"]["expect_counts"]) == {}
    acts = got["counts"]["actions"]
    # by hand: per step the hidden stage reads h K = H times per row tile (ceil(4H / 4) tiles), the gather
    # 4H b and H c; writes h' and c'; reads 4H zx + 4H zh from the working buffers
    assert acts["state_sram.read"] == T * (H * H + 5 * H) and acts["state_sram.write"] == T * 2 * H
    assert acts["hidden_sram.read"] == T * H * H
    assert acts["gate_add.add"] == T * 8 * H and acts["sigmoid.eval"] == T * 3 * H and acts["tanh.eval"] == T * 2 * H
    mv_reads = predict_matvec(cfg, q.fmt, q.order).actions.get("work_sram", "read")
    assert acts["work_sram.read"] == T * (mv_reads + 8 * H) == sum(got["counts"]["bank_reads"])
    assert (got["counts"]["stall_cycles"] > 0) == (cfg.banks < cfg.pes)
