"""LSTM engine survivors of the mutation run (docs/testing.md): the readout stage, the packed schedule's action
counts, the matvec statistics' fields, and the reference's dense accumulator and nonlinearities, each against a
hand count or a naive loop.
"""

from __future__ import annotations

import numpy as np
import pytest
from hwsim.models import lstm_engine as lref
from hwsim.models.tensor_formats import Factor, TTMatrix

from hwsim.errors import HwsimError
from hwsim.lstm_engine import LstmEngineConfig, ReadoutOp, predict, predict_matvec


def _tt(m1: int, m2: int, n1: int, n2: int, r: int) -> TTMatrix:
    """A 2-core TT matrix (cores (m1, n1, r) and (r, m2, n2)); only the shapes matter for the counts."""
    return TTMatrix((m1, m2), (n1, n2), (Factor("G1", ("m1", "n1", "r1"), np.ones((m1, n1, r))),
                                         Factor("G2", ("r1", "m2", "n2"), np.ones((r, m2, n2)))))


def test_readout_stage_cycles_and_actions_by_hand():
    # 11 outputs x 7 hidden on 4 PEs with 2 banks: row tiles of 4, 4, 3. A tile: 7 MAC cycles (one h element
    # and one weight word per cycle), 1 cycle to the requantizer, then its rows written 2 a cycle (4 rows: 2
    # cycles, 3 rows: 2). One start cycle: 1 + 3 * (7 + 1 + 2) = 31 cycles; writes beyond one per tile: 3.
    # The weights live in the hidden SRAM and h in the state SRAM (the matvec's weight SRAM and operand
    # reads); the results go into a working buffer, as the RTL's dense stage writes them (the step's hidden
    # stage writes zh the same way); each output gets its bias added once.
    cfg = LstmEngineConfig(pes=4, banks=2)
    st = predict(cfg, ReadoutOp("readout", 11, 7))
    assert (st.cycles, st.stall_cycles, st.macs) == (31, 3, 77)
    assert st.actions.as_dict() == {
        "pe_mult.mult": 77, "pe_acc.add": 77, "pe_acc_reg.write": 77,
        # the last tile's 4th lane is idle for its 7 MAC cycles: 7 idle slots, clock-gated by default
        "pe_mult.idle": 7, "pe_acc_reg.idle": 7,
        "hidden_sram.read": 3 * 7,  # one 4-entry weight word per tile and k
        "state_sram.read": 3 * 7,  # one h element per tile and k
        "work_sram.write": 11, "requant.convert": 11,  # one result per output, into the working buffer
        "addr_gen.add": 3 * 7 + 3,  # one read-address step per k, one write-address step per tile
        "gate_add.add": 11,
    }
    # bytes: a hidden-SRAM word is 4 entries of 2 bytes, a state- or work-SRAM word one entry
    assert (st.sram_read_bytes, st.sram_write_bytes) == (21 * 8 + 21 * 2, 11 * 2)
    # the detail: the op's name, its one stage row (3 tiles of 7 + 1 + 2 cycles), the idle slots
    (row,) = st.detail["stages"]
    assert st.detail["name"] == "readout" and (row.name, row.R, row.K, row.Q, row.groups) == ("readout", 11, 7, 1, 3)
    assert (row.cycles, row.conflict_cycles, st.detail["idle_slots"]) == (31, 3, 7)


def test_packed_schedule_stage_actions_by_hand():
    # TT cores G1 (m1=3, n1=3, r=2) and G2 (r=2, m2=2, n2=5), x of 15 elements, in the order G1, G2.
    # G1: contracts n1 (K = 3), writes m1 * r = 6 rows (R) for each n2 (Q = 5); 2R > 4 PEs: "rows" timing,
    #     ceil(6 / 4) = 2 row tiles per column -> 10 groups, 10 * 3 = 30 weight words and 30 operand reads.
    # G2: contracts (r, n2) (K = 10), R = m2 = 2, Q = m1 = 3; 2R <= 4 PEs: packed, 4 // 2 = 2 columns side by
    #     side -> ceil(3 / 2) = 2 groups; one weight word per k step and group (20); every intermediate
    #     element read once (Q * K = 30); the walker adds once per k step and group plus once per group (22);
    #     the 2nd column's offset adder once per k step of its group: 30 - 20 = 10; one operand select per MAC.
    cfg = LstmEngineConfig(pes=4, banks=2, schedule="packed")
    mv = predict_matvec(cfg, _tt(3, 2, 3, 5, 2), order=(0, 1))
    assert [(s.name, s.R, s.K, s.Q, s.groups, s.pack) for s in mv.detail["stages"]] == [
        ("G1", 6, 3, 5, 10, 1), ("G2", 2, 10, 3, 2, 2)]
    macs = 5 * 6 * 3 + 3 * 2 * 10
    assert mv.macs == macs == 150
    assert mv.actions.as_dict() == {
        "pe_mult.mult": macs, "pe_acc.add": macs, "pe_acc_reg.write": macs,
        # idle slots: G1's second row tile uses 2 of 4 lanes (5 columns x 3 k x 2 = 30); G2's second group
        # packs one column of 2 rows (10 k x 2 lanes = 20); clock-gated by default
        "pe_mult.idle": 30 + 20, "pe_acc_reg.idle": 30 + 20,
        "weight_sram.read": 30 + 20, "work_sram.read": 30 + 30,
        "work_sram.write": 15 + 30 + 6,  # x, then each stage's Q * R outputs
        "requant.convert": 30 + 6, "addr_gen.add": (30 + 10) + (20 + 2), "pack_addr.add": 10,
        "pack_operand.select": 60, "dram.read": 15 * 2,  # x: 15 16-bit elements
    }


def test_matvec_record_names_and_utilization():
    # The default name, the stage names (the factors'), and utilization = MACs / (cycles * PEs) (the config's
    # peak is its 4 PEs): with 4 PEs no cycle does more than 4 MACs, so it is at most 1.
    cfg = LstmEngineConfig(pes=4, banks=2)
    fmt = _tt(3, 2, 3, 5, 2)
    mv = predict_matvec(cfg, fmt, order=(0, 1))
    assert mv.detail["name"] == "matvec"
    assert [s.name for s in mv.detail["stages"]] == ["G1", "G2"]
    assert cfg.peak_macs_per_cycle == 4
    assert mv.utilization(cfg.peak_macs_per_cycle) == mv.macs / (mv.cycles * 4) <= 1
    assert predict_matvec(cfg, fmt, name="x").detail["name"] == "x"


def test_matvec_checks_the_order_it_runs():
    # x has n1 * n2 = 15 elements. Order G1, G2: G1 contracts n1 -> (n2, m1, r) = 5 * 3 * 2 = 30 elements, then
    # G2 -> 3 * 2 = 6. Order G2, G1: G2 contracts n2 -> (n1, r, m2) = 3 * 2 * 2 = 12, then G1 -> 2 * 3 = 6.
    # A working SRAM of 30 bytes (15 16-bit elements) holds the second order's intermediates, not the first's:
    # the check must look at the order the matvec runs, whichever order is the cheapest.
    fmt = _tt(3, 2, 3, 5, 2)
    cfg = LstmEngineConfig(pes=4, banks=2, work_sram_bytes=30)
    assert predict_matvec(cfg, fmt, order=(1, 0)).macs == 3 * 4 * 5 + 2 * 3 * 6
    with pytest.raises(HwsimError, match=r"^work_sram_bytes=30 is not allowed for matvec: expected >= 60 bytes"):
        predict_matvec(cfg, fmt, order=(0, 1))


def _naive_dense(U, h, acc_bits: int, overflow: str) -> list[int]:
    """Row by row, column order, Python ints: saturate or wrap to ``acc_bits`` after every addition."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    out = []
    for row in U:
        acc = 0
        for u, x in zip(row, h, strict=True):
            acc += int(u) * int(x)
            acc = min(max(acc, lo), hi) if overflow == "saturate" else (acc - lo) % (1 << acc_bits) + lo
        out.append(acc)
    return out


def test_dense_accumulator_saturates_and_wraps_after_every_addition():
    # 16-bit accumulator ([-32768, 32767]): row 0 climbs past the top then comes back down (saturating: 32767 -
    # 20000, not the exact 45000 - 20000); row 1 the same below the bottom; row 2 stays in range; row 3 peaks at
    # exactly 32767; row 4 ends above the top. Wrapping keeps the low 16 bits of the exact sum (25000, -25000,
    # 200, 32766, 45000 - 65536), whatever the order.
    U = np.array([[30000, 15000, -20000], [-30000, -15000, 20000], [100, -200, 300], [32767, 0, -1],
                  [30000, 15000, 0]])
    h = np.array([1, 1, 1])
    for overflow in ("saturate", "wrap"):
        got = lref.accumulate_dense(U, h, 16, overflow)
        assert got.dtype == np.int64
        assert got.tolist() == _naive_dense(U, h, 16, overflow), overflow
    assert lref.accumulate_dense(U, h, 16, "saturate").tolist() == [12767, -12768, 200, 32766, 32767]
    assert lref.accumulate_dense(U, h, 16, "wrap").tolist() == [25000, -25000, 200, 32766, 45000 - 65536]
    rng = np.random.default_rng(5)
    for k in (1, 2, 7):
        U = rng.integers(-(1 << 15), 1 << 15, (6, k))
        h = rng.integers(-(1 << 15), 1 << 15, k)
        for overflow in ("saturate", "wrap"):
            assert lref.accumulate_dense(U, h, 32, overflow).tolist() == _naive_dense(U, h, 32, overflow)


def test_dense_accumulator_fast_path_only_when_nothing_can_saturate():
    # The exact product is taken when max|U| * max|h| * K cannot leave the range: each bound factor matters.
    # Two columns of 32767 * 1 overflow a 16-bit accumulator (the sum saturates at 32767), and so do two columns
    # of 1 * 32767 (the large factor in h).
    assert lref.accumulate_dense(np.array([[32767, 32767]]), np.array([1, 1]), 16, "saturate").tolist() == [32767]
    assert lref.accumulate_dense(np.array([[1, 1]]), np.array([32767, 32767]), 16, "saturate").tolist() == [32767]
    # no columns: every row sums nothing
    for overflow in ("saturate", "wrap"):
        assert lref.accumulate_dense(np.zeros((3, 0), dtype=np.int64), np.zeros(0, dtype=np.int64), 32,
                                     overflow).tolist() == [0, 0, 0]


def test_plan_sigmoid_is_one_from_five_at_every_fraction_width():
    # PLAN: sigma(x) = 1 for |x| >= 5 (0 for x <= -5). With F = 2 fraction bits x = 5 is the code 20; the next
    # segment (x / 32 + 0.84375) would give floor(20 / 32) + round(0.84375 * 4) = 3, not 4.
    for F in (1, 2, 3, 6, 12):
        cfg = LstmEngineConfig(data_bits=16, frac_bits=F)
        one = 1 << F
        assert lref.sigmoid_fixed(np.array([5 * one, -5 * one, 7 * one]), cfg).tolist() == [one, 0, one], F


def test_nonlinearities_take_16_bit_code_arrays():
    # int16 arrays are the natural container of 16-bit data: the full range must give the same codes as Python
    # ints. At the extremes x = -32768 / 4096 = -8 and 32767 / 4096 = 8: sigma = 0 and 1, tanh = -1 and 1 (PLAN
    # saturates from |x| >= 5, tanh(x) = 2 sigma(2x) - 1 from |x| >= 2.5).
    cfg = LstmEngineConfig(data_bits=16, frac_bits=12)
    x16 = np.array([-32768, -20000, -1, 0, 1, 20000, 32767], dtype=np.int16)
    for f in (lref.sigmoid_fixed, lref.tanh_fixed):
        assert f(x16, cfg).tolist() == f([int(v) for v in x16], cfg).tolist()
    assert lref.sigmoid_fixed(x16, cfg)[[0, -1]].tolist() == [0, 4096]
    assert lref.tanh_fixed(x16, cfg)[[0, 1, -2, -1]].tolist() == [-4096, -4096, 4096, 4096]


def test_clamp_returns_int64_codes():
    # clamp to signed 8 bits from any integer container
    got = lref._clamp(np.array([-1000, -128, 5, 127, 1000], dtype=np.int32), 8)
    assert got.dtype == np.int64 and got.tolist() == [-128, -128, 5, 127, 127]


def test_dense_accumulator_takes_16_bit_code_arrays():
    # (-32768) * (-32768) * 2 columns = 2**31 exceeds a 32-bit accumulator (2**31 - 1) after the second addition:
    # it saturates, whether U and h come as int16 arrays (where |-32768| does not fit) or as Python ints.
    U = np.full((1, 2), -32768, dtype=np.int16)
    h = np.full(2, -32768, dtype=np.int16)
    assert _naive_dense(U.tolist(), h.tolist(), 32, "saturate") == [2**31 - 1]
    assert lref.accumulate_dense(U, h, 32, "saturate").tolist() == [2**31 - 1]
    assert lref.accumulate_dense(U, h.astype(np.int64), 32, "saturate").tolist() == [2**31 - 1]
    assert lref.accumulate_dense(U.astype(np.int64), h, 32, "saturate").tolist() == [2**31 - 1]
