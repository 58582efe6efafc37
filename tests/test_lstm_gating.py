"""Idle-lane gating of the LSTM engine (issue 27, ``LstmEngineConfig.gating``): the lanes of a partial row tile
(a stage's rows not a multiple of ``pes``, or fewer rows than ``pes``) are idle slots, counted apart from the
real MACs by the cycle model and by the RTL's activity counters, and priced per gating (docs/idle_lanes.md).

Expectations are a naive per-lane walk of the documented schedule (column q, row tile j, reduction step k, lane
i: real when ``j * pes + i < R``) and the documented gating rules, the cost tables' entries and hand sums."""

import numpy as np
import pytest
from hwsim.cosim.lstm_engine_regression import job_layer, make_job, run_amaranth, run_regression
from hwsim.models import tensor_formats as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from test_lstm_cosim import CFG

from hwsim.cost import CostModel
from hwsim.errors import HwsimError
from hwsim.lstm_engine import LstmEngineConfig, inventory, predict_classifier, predict_matvec

GATINGS = ("clock", "operand", "none")
LANE_KEYS = ("pe_mult.mult", "pe_acc.add", "pe_acc_reg.write", "pe_mult.idle", "pe_acc.idle", "pe_acc_reg.idle",
             "requant.convert")


def naive_lanes(pes: int, stages) -> tuple[int, int, int, int]:
    """(real MACs, idle slots, outputs, idle lanes summed over groups): every lane of every MAC cycle of the
    "rows" schedule, walked one by one."""
    real = idle = outs = idle_lanes = 0
    for R, K, Q in stages:
        for _q in range(Q):
            for j in range(-(-R // pes)):
                for i in range(pes):
                    if j * pes + i < R:
                        outs += 1
                    else:
                        idle_lanes += 1
                for _k in range(K):
                    for i in range(pes):
                        if j * pes + i < R:
                            real += 1
                        else:
                            idle += 1
    return real, idle, outs, idle_lanes


def hand_lane_actions(gating: str, real: int, idle: int, outs: int, idle_lanes: int) -> dict:
    """The documented rules: a real MAC is a multiply, an add and an accumulator write. An idle slot is a
    pe_mult.idle under every gating; without gating ('none') also an add on padding and an accumulator write;
    with 'operand' (operand isolation) an accumulator write; with 'clock' a held accumulator (pe_acc_reg.idle).
    Every output is requantized once; without gating so is each idle lane once per group (a live accumulator)."""
    return {"pe_mult.mult": real, "pe_acc.add": real,
            "pe_acc_reg.write": real + (0 if gating == "clock" else idle),
            "pe_mult.idle": idle, "pe_acc.idle": idle if gating == "none" else 0,
            "pe_acc_reg.idle": idle if gating == "clock" else 0,
            "requant.convert": outs + (idle_lanes if gating == "none" else 0)}


def _lane_counts(actions: dict) -> dict:
    return {k: int(actions.get(k, 0)) for k in LANE_KEYS}


def dense(R: int, N: int, rng, lo: int = -128, hi: int = 127) -> tf.TTMatrix:
    """An R x N matrix as a one-core TT (a single stage: R rows, K = N, Q = 1)."""
    return tf.TTMatrix((R,), (N,), (tf.Factor("G1", ("m1", "n1"), rng.integers(lo, hi + 1, size=(R, N))),))


def two_core(rng) -> tf.TTMatrix:
    """A 2-core TT of output modes (5, 7), input modes (3, 2), ranks (1, 3, 1): stages with 5 and 7-row (x rank)
    factors, so every stage has a partial row tile on 4 lanes."""
    fmt = tf.TTMatrix.random((5, 7), (3, 2), (1, 3, 1), rng)
    return fmt.with_factors([rng.integers(-128, 128, size=f.data.shape) for f in fmt.factors])


# ------------------------------------------------------------------------------------------- counts by hand
def test_idle_slots_of_small_shapes_by_hand():
    # pes = 4: R = 5 -> tiles of 4 and 1 lanes, 3 idle lanes for each of K = 3 steps: 9 idle slots, 15 real;
    # R = 7 -> 1 idle lane x K; R = 3 (fewer rows than lanes) -> 1 idle lane x K; R = 8 -> none.
    rng = np.random.default_rng(0)
    for R, K, lanes in ((5, 3, 3), (7, 2, 1), (3, 5, 1), (8, 4, 0), (1, 6, 3)):
        for g in GATINGS:
            mv = predict_matvec(CFG.replace(gating=g), dense(R, K, rng))
            assert _lane_counts(mv.actions.as_dict()) == hand_lane_actions(g, R * K, lanes * K, R, lanes), (R, K, g)
            assert mv.macs == R * K


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.sampled_from(GATINGS), st.lists(st.integers(1, 6), min_size=1, max_size=3),
       st.data())
def test_idle_slots_equal_a_naive_lane_walk(pes, gating, out_modes, data):
    """Random TT shapes and lane counts: the cycle model's lane actions equal the naive per-lane walk's."""
    d = len(out_modes)
    in_modes = data.draw(st.lists(st.integers(1, 5), min_size=d, max_size=d))
    ranks = (1, *data.draw(st.lists(st.integers(1, 4), min_size=d - 1, max_size=d - 1)), 1)
    fmt = tf.TTMatrix.random(tuple(out_modes), tuple(in_modes), ranks, 0)
    cfg = LstmEngineConfig(pes=pes, banks=1 << (pes - 1).bit_length(), data_bits=8, acc_bits=16, frac_bits=5,
                           gating=gating, addr_levels=8)
    try:
        mv = predict_matvec(cfg, fmt)
    except HwsimError:  # does not fit this config's memories
        return
    counts = naive_lanes(pes, [(s.R, s.K, s.Q) for s in tf.plan_stages(fmt)])
    assert _lane_counts(mv.actions.as_dict()) == hand_lane_actions(gating, *counts)


def test_digits_tt_lstm_idle_slots_by_hand():
    # digits-tt-lstm on lstm-engine-tt-16: stages G3 (R = 12, K = 2, Q = 4), G2 (12, 6, 8), G1 (8, 6, 16) on
    # 16 lanes: 4 * 2 * 4 + 4 * 6 * 8 + 8 * 6 * 16 = 992 idle slots a step; the hidden stage's 4H = 128 rows
    # fill 8 tiles; 8 steps. The readout (10 x 32): 6 idle lanes for 32 cycles.
    from hwsim.models import lstm_models as lm

    m = lm.load("digits-tt-lstm")
    cfg = LstmEngineConfig()  # the lstm-engine-tt-16 preset
    lstm, readout = predict_classifier(cfg, m)
    assert (lstm.detail["idle_slots"], readout.detail["idle_slots"]) == (8 * 992, 6 * 32)
    assert (lstm.macs, readout.macs) == (44288, 320)


# ------------------------------------------------------------------------------------------- prices by hand
def test_idle_slots_priced_per_gating_by_hand():
    cost = CostModel()
    gate = cost.entry("icg.ge").value * cost.entry("gate.energy_per_ge").value  # one closed clock gate
    e = {g: cost.unit_energies(inventory(LstmEngineConfig(gating=g))) for g in GATINGS}
    mult, add, wr = e["none"][("pe_mult", "mult")], e["none"][("pe_acc", "add")], e["none"][("pe_acc_reg", "write")]
    assert e["none"][("pe_mult", "idle")] == mult and e["none"][("pe_acc", "idle")] == add
    for g in ("operand", "clock"):
        assert e[g][("pe_mult", "idle")] == pytest.approx(gate, rel=1e-12)
        assert e[g][("pe_acc_reg", "idle")] == pytest.approx(gate, rel=1e-12)
        assert (e[g][("pe_mult", "mult")], e[g][("pe_acc", "add")], e[g][("pe_acc_reg", "write")]) == (mult, add, wr)
    rq = e["none"][("requant", "convert")]
    # area: one gating cell per lane on its operands (operand, clock), one on its accumulator (clock)
    icg = cost.entry("icg.ge").value * cost.entry("nand2.area").value
    area = {g: cost.area(inventory(LstmEngineConfig(gating=g))).total_um2 for g in GATINGS}
    assert area["operand"] - area["none"] == pytest.approx(16 * icg, rel=1e-9)
    assert area["clock"] - area["none"] == pytest.approx(2 * 16 * icg, rel=1e-9)

    # digits-tt-lstm, one inference: 8,128 idle slots (above); the gatings differ only in how they are priced,
    # and without gating the idle lanes' requantizers convert once per group: per step G3 4 groups x 4 lanes,
    # G2 8 x 4, G1 16 x 8 = 176, 8 steps, and the readout's 6
    from hwsim.models import lstm_models as lm

    m = lm.load("digits-tt-lstm")
    total = {}
    for g in GATINGS:
        cfg = LstmEngineConfig(gating=g)
        inv = inventory(cfg)
        total[g] = sum(cost.energy(inv, s.actions, s.cycles).total_pj for s in predict_classifier(cfg, m))
    idle = 8 * 992 + 6 * 32
    assert total["none"] - total["clock"] == pytest.approx(idle * (mult + add + wr - 2 * gate)
                                                           + (8 * 176 + 6) * rq, rel=1e-9)
    assert total["operand"] - total["clock"] == pytest.approx(idle * (wr - gate), rel=1e-9)


@pytest.mark.parametrize("gating", ["none", "operand", "clock"])
def test_only_clock_gating_gates_the_accumulator_register(gating):
    """The inventory says which hardware it prices: only ``clock`` gates a lane's accumulator register (a
    clock-gating cell of area, its note says so); ``none`` and ``operand`` write it every slot."""
    inv = {c.name: c for c in inventory(LstmEngineConfig(gating=gating)).components}
    reg = inv["pe_acc_reg"]
    assert ("clock-gated" in reg.note) == (gating == "clock")
    assert bool(reg.attrs.get("clock_gate")) == (gating == "clock")


def test_gating_is_checked_in_one_line():
    with pytest.raises(HwsimError, match=r"^gating='partial' is not allowed: expected one of"):
        LstmEngineConfig(gating="partial")


# ------------------------------------------------------------------------------------------- the RTL's counters
SHAPES = ((5, 3), (7, 2), (3, 4), (8, 2))  # R x N on 4 lanes: partial tiles, fewer rows than lanes, full tiles


def _jobs(cfg, rng):
    jobs = [make_job(cfg, dense(R, N, rng), rng.integers(-128, 128, size=N), [3], name=f"dense-{R}x{N}")
            for R, N in SHAPES]
    fmt = two_core(rng)
    jobs.append(make_job(cfg, fmt, rng.integers(-128, 128, size=fmt.shape[1]), [4, 5], name="tt-5x7"))
    return jobs, [[(R, N, 1)] for R, N in SHAPES] + [[(s.R, s.K, s.Q) for s in tf.plan_stages(fmt)]]


@pytest.mark.parametrize("gating", GATINGS)
def test_rtl_counts_idle_lanes_apart_in_amaranth(gating):
    """The stage engine in Amaranth's simulator: values, cycles and the lane counters (real MACs, idle slots,
    isolated slots, accumulator writes) equal the naive walk's under the gating's rules."""
    cfg = CFG.replace(gating=gating)
    jobs, stages = _jobs(cfg, np.random.default_rng(5))
    for job, sts in zip(jobs, stages, strict=True):
        out, cycles, counts = run_amaranth(cfg, job)
        assert out.tolist() == np.asarray(job["expect"]).tolist() and cycles == job["predicted_cycles"]
        hand = naive_lanes(cfg.pes, sts)
        assert hand[1] > 0 or job["name"] == "dense-8x2"
        assert _lane_counts(counts["actions"]) == hand_lane_actions(gating, *hand), job["name"]
        assert _lane_counts(job["expect_counts"]["actions"]) == hand_lane_actions(gating, *hand)


@pytest.mark.parametrize("gating", [pytest.param("operand"), pytest.param("none", marks=pytest.mark.slow),
                                    pytest.param("clock", marks=pytest.mark.slow)])
def test_rtl_counts_idle_lanes_apart_under_verilator(gating, tmp_path):
    """The whole engine top under Verilator (one build per gating; 'clock' is also the default build the
    behaviour suite runs, 'none' its slow variant): 0 mismatches in values, cycles and every count, real and
    idle, on the shapes above; the model's expectations equal the naive walk's."""
    cfg = CFG.replace(gating=gating)
    jobs, stages = _jobs(cfg, np.random.default_rng(6))
    for job, sts in zip(jobs, stages, strict=True):
        assert _lane_counts(job["expect_counts"]["actions"]) == hand_lane_actions(gating, *naive_lanes(4, sts))
    rep = run_regression(cfg, workdir=tmp_path, layers=[job_layer(j) for j in jobs])
    assert rep.passed and len(rep.layers) == len(jobs)
    for r in rep.layers:
        assert r["mismatches"] == 0 and r["rtl_cycles"] == r["predicted_cycles"] and r["count_diffs"] == {}, r
