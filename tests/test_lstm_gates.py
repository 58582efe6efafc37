"""The fixed-point gate unit RTL (rtl/lstm_gates.py) on Amaranth's simulator, bit-exact against the
reference (hwsim.models.lstm_engine): sigmoid/tanh over every input code (int8 in the default suite,
int16 marked slow), the cell update over all 256 int8 pre-activation codes plus random and corner
operands, its cycles and operation counts; and a full LSTM time step (input-layer TT/HT matvec, hidden
stage, gates) through the RTL with cycles equal to the cycle model's prediction."""

import math

import numpy as np
import pytest
from hwsim.cosim.lstm_engine_step import run_gates, run_nonlinearity, run_step
from hwsim.models import lstm_engine as ref
from hwsim.models import tensor_formats as tf

from hwsim.lstm_engine import GATE_LATENCY, LstmEngineConfig, LstmWorkload, predict_step

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


@pytest.mark.parametrize("kind", ["tt", "ht"])
def test_full_step_through_rtl(kind):
    cfg = CFGS["pwl-half-up"] if kind == "tt" else CFGS["lut8-half-even"]
    rng = np.random.default_rng(5)
    q = _random_lstm(cfg, kind, rng)
    H = q.hidden
    x = rng.integers(-128, 128, size=q.fmt.shape[1])
    h, c = rng.integers(-128, 128, size=H), rng.integers(-128, 128, size=H)
    got = run_step(cfg, q, x, h, c)
    want_h, want_c = ref.cell_fixed(ref.wx_fixed(q, x, cfg), q.U, q.b, h, c, q.e_u, cfg)
    assert (got["h"] == want_h).all() and (got["c"] == want_c).all()
    pred = predict_step(cfg, LstmWorkload("step", q.fmt, H, 1, q.order))
    assert got["cycles"] == pred.cycles
    assert got["phase_cycles"]["gates"] == H + GATE_LATENCY
    # every gate-unit, PE and requantizer action of the step equals the model's
    acts = pred.actions
    mv, hid, gates = (got["counts"][p] for p in ("matvec", "hidden", "gates"))
    for comp in ("pe_mult.mult", "pe_acc.add", "pe_acc_reg.write", "addr_gen.add"):
        assert mv["actions"][comp] + hid["actions"][comp] == acts.get(*comp.split(".")), comp
    assert mv["actions"]["requant.convert"] + hid["actions"]["requant.convert"] + gates[("requant", "convert")] \
        == acts.get("requant", "convert")
    assert hid["actions"]["weight_sram.read"] == acts.get("hidden_sram", "read")
    assert mv["actions"]["weight_sram.read"] == acts.get("weight_sram", "read")
    for key, v in gates.items():
        if key != ("requant", "convert"):
            assert v == acts.get(*key), key
    assert mv["stall_cycles"] == hid["stall_cycles"] == pred.stall_cycles == 0
