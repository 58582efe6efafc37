"""Cycle-level model: hand-computed cycle counts, action counts and values against the reference."""

import numpy as np
import pytest
from hwsim.models import mac_array as ref

from hwsim.config import MacArrayConfig
from hwsim.mac_array import dram_beats, fold_plan, predict_gemm, predict_gemm_folds, simulate_gemm, unpack_lanes
from hwsim.mac_array_actions import MacArrayActions


def test_ws_1x1x1_hand_count():
    # 4x4 WS, int8, 2 bytes/cycle: a weight beat (4 x 8 bit = 4 B) and an activation beat (4 B) each take 2 cycles.
    # Loader: WAIT at cycle 1, WEIGHTS from 2: weight beat at 2; next beat allowed at 4: act beat at 4;
    #   the half is full from cycle 5.
    # Compute: WAIT 1..5 (proceeds at 5, stall = 4), WLOAD kt+1 = 2 cycles (6, 7),
    #   STREAM mt+R+C = 1+4+4 = 9 cycles (8..16), DRAIN mt+2 = 3 cycles (17..19) -> 19 busy cycles.
    cfg = MacArrayConfig(rows=4, cols=4, dataflow="ws", dram_bytes_per_cycle=2.0)
    st = predict_gemm(cfg, 1, 1, 1)
    assert st.cycles == 19 + 3 + 3  # + pipeline registers (hwsim.config): S = 3 per STREAM, D = 3 per DRAIN
    assert st.stall_cycles == 4
    assert st.detail["folds"] == 1


def test_os_1x1x1_hand_count():
    # 4x4 OS, int8, 16 B/cycle: every beat takes 1 cycle. Loader: WAIT 1, weight beat at 2, act beat at 3,
    # full from 4. Compute: proceeds at 4 (stall 3), STREAM kt = 1 cycle (5), FLUSH R+C-1 = 7 (6..12),
    # DRAIN rt+1 = 2 (13, 14) -> 14.
    cfg = MacArrayConfig(rows=4, cols=4, dataflow="os")
    st = predict_gemm(cfg, 1, 1, 1)
    assert st.cycles == 14 + 3 + 3  # + pipeline registers: S = 3 in FLUSH, D = 3 in DRAIN
    assert st.stall_cycles == 3


def test_ws_two_folds_double_buffering_hand_count():
    # 2x2 WS, K = 4 -> two reduction folds of kt = 2; M = 3, N = 2; 16 B/cycle -> 1 beat/cycle.
    # Fold 0 load: WAIT 1, weights at 2, 3; acts at 4, 5, 6; full from 7.
    # Fold 1 load: WAIT 7 (half 1 free), weights at 8, 9, acts at 10, 11, 12; full from 13.
    # Compute fold 0: WAIT 1..7 (stall 6), WLOAD 3 (8..10), STREAM 3+2+2 = 7 (11..17), no drain.
    # Compute fold 1: WAIT 18 (data ready since 13), WLOAD 3 (19..21), STREAM 7 (22..28), DRAIN 5 (29..33).
    cfg = MacArrayConfig(rows=2, cols=2, dataflow="ws")
    st = predict_gemm(cfg, 3, 4, 2)
    assert (st.cycles, st.stall_cycles, st.detail["folds"]) == (33 + 2 * 3 + 3, 6, 2)  # + pipeline registers (hwsim.config): S = 3 per STREAM, D = 3 per DRAIN


def test_stalls_grow_when_dram_is_slow():
    fast = predict_gemm(MacArrayConfig(rows=8, cols=8, dram_bytes_per_cycle=64.0), 256, 64, 64)
    slow = predict_gemm(MacArrayConfig(rows=8, cols=8, dram_bytes_per_cycle=0.5), 256, 64, 64)
    assert slow.stall_cycles > fast.stall_cycles
    assert slow.cycles > fast.cycles
    assert 0 < fast.utilization(64) <= 1


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_action_counts_match_hand_formulas(dataflow):
    cfg = MacArrayConfig(rows=4, cols=4, dataflow=dataflow, input_sram_bytes=64, output_sram_bytes=256,
                         weight_sram_bytes=64)
    m, k, n = 10, 9, 7
    st = predict_gemm(cfg, m, k, n)
    a = MacArrayActions.of(st)
    assert st.macs == m * k * n
    # Clock gating (the default): every real output requantized once; without gating every lane of every
    # output beat (WS/OS: 2 column tiles of 4 lanes per row of M; IS: 3 tiles of 4 lanes per row of N).
    assert a.requant_ops == m * n
    ungated = MacArrayActions.of(predict_gemm(cfg.replace(gating="none"), m, k, n))
    assert ungated.requant_ops == (m * 4 * 2 if dataflow != "is" else n * 4 * 3)
    assert a.pe_macs == ungated.pe_macs == m * k * n
    # Idle slots: every streamed vector (OS: reduction step) passes all 16 PEs. WS: 2 n-tiles x 3 k-folds x m
    # vectors; IS: 3 n-tiles (of M = 10 on 4 columns) x 3 k-folds x n = 7 vectors; OS: 3 m-tiles x 2 n-tiles x k.
    passes = {"ws": 2 * 3 * m, "is": 3 * 3 * n, "os": 3 * 2 * k}[dataflow]
    assert a.pe_idle_macs == ungated.pe_idle_macs == passes * 16 - m * k * n
    if dataflow == "ws":
        # K in folds of 4 rows (4, 4, 1), N in 2 column tiles, M = 10 fits one m tile (m_tile = 4? see below).
        mt = cfg.m_tile
        m_tiles = -(-m // mt)
        weight_rows = m_tiles * 2 * k              # every (m, n) tile reloads the whole K x 4 weight slice
        act_vectors = 2 * 3 * m                    # activations re-streamed for each n tile and k fold
        assert a.dram_read_beats == weight_rows + act_vectors
        assert a.dram_read_bytes == weight_rows * 4 + act_vectors * 4
        assert a.dram_write_beats == m * 2
        assert a.pe_weight_loads == m_tiles * k * n        # gated: only the 7 real columns load
        assert ungated.pe_weight_loads == weight_rows * 4  # ungated: all 4 columns of both tiles


def test_values_equal_reference_every_format():
    rng = np.random.default_rng(3)
    for fmt in ("int8", "int4", "int2", "ternary", "binary", "pow2"):
        for dataflow in ("ws", "os", "is"):
            cfg = MacArrayConfig(rows=3, cols=5, dataflow=dataflow, weight_format=fmt, acc_bits=18, overflow="saturate")
            if fmt == "binary":
                a = rng.choice([-1, 1], (17, 40))
            else:
                a = rng.integers(-128, 128, (17, 40))
            w = rng.choice(ref.weight_values(fmt), (40, 6))
            out, st = simulate_gemm(cfg, a, w, shift=5, relu=True)
            assert np.array_equal(out, ref.gemm(a, w, cfg, shift=5, relu=True))
            assert (st.detail["m"], st.detail["k"], st.detail["n"], st.macs) == (17, 40, 6, 17 * 40 * 6)  # cycles: hand counts above, RTL


def test_dram_beats_layout_ws():
    cfg = MacArrayConfig(rows=2, cols=2, dataflow="ws")
    a = np.arange(6).reshape(2, 3)     # m=2, k=3
    w = np.arange(6).reshape(3, 2)     # k=3, n=2
    wb, ab = dram_beats(cfg, a, w)
    # folds: k0=0 (kt=2), k0=2 (kt=1); weight rows W[0], W[1], then W[2]; acts rows A[:, 0:2], then A[:, 2:4] padded
    assert unpack_lanes(wb, 2, 8).tolist() == [[0, 1], [2, 3], [4, 5]]
    assert unpack_lanes(ab, 2, 8).tolist() == [[0, 1], [3, 4], [2, 0], [5, 0]]
    assert fold_plan(cfg, 2, 3, 2).count == 2


def test_bad_gemm_shape_rejected():
    cfg = MacArrayConfig()
    with pytest.raises(Exception, match=r"^layer m=0 is not allowed"):
        predict_gemm(cfg, 0, 1, 1)


def test_is_1x1x1_hand_count():
    # 4x4 IS, int8, 2 bytes/cycle: the stationary beat is cols activations (4 B) and the streamed beat
    # rows weights (4 B), 2 cycles each; with m = k = n = 1 the timing is WS's 1x1x1 (19 cycles, 4 stalls).
    # A 4x4 IS with 1-byte/cycle DRAM and 4-bit weights: stationary 4 x 8 bit = 4 B -> 4 cycles, streamed
    # 4 x 4 bit = 2 B -> 2 cycles. Loader: stationary beat at 2, streamed beat at 2 + 4 = 6, full from 7;
    # compute proceeds at 7 (stall 6), WLOAD 2 (8, 9), STREAM 1+4+4 = 9 (10..18), DRAIN 3 (19..21) -> 21.
    assert predict_gemm(MacArrayConfig(rows=4, cols=4, dataflow="is", dram_bytes_per_cycle=2.0), 1, 1, 1).cycles == 19 + 6
    cfg = MacArrayConfig(rows=4, cols=4, dataflow="is", weight_format="int4", dram_bytes_per_cycle=1.0)
    st = predict_gemm(cfg, 1, 1, 1)
    assert (st.cycles, st.stall_cycles) == (21 + 3 + 3, 6)  # + pipeline registers (hwsim.config): S = 3 per STREAM, D = 3 per DRAIN


def test_stats_keep_every_counter():
    """A MAC-array Stats (gemm_stats) keeps every counter: the priced ones as (component, action) pairs, the
    bytes per SRAM buffer and the DRAM beats in detail; MacArrayActions.of gives them all back. Traffic per
    level: SRAM = the input, weight and output buffers' bytes, DRAM the port's."""
    import dataclasses

    from hwsim.mac_array_actions import gemm_stats

    names = [f.name for f in dataclasses.fields(MacArrayActions)]
    a = MacArrayActions(**{n: 10 + i for i, n in enumerate(names)})  # every counter a different value
    st = gemm_stats(7, 3, 99, a, name="g", m=2, k=3, n=4, groups=1, folds=5)
    assert MacArrayActions.of(st) == a
    assert MacArrayActions.of(st + st) == a + a and MacArrayActions.of(st.scaled(3)) == a.scaled(3)
    assert (st.cycles, st.stall_cycles, st.macs) == (7, 3, 99)
    assert st.sram_read_bytes == a.input_sram_read_bytes + a.weight_sram_read_bytes + a.output_sram_read_bytes
    assert st.sram_write_bytes == a.input_sram_write_bytes + a.weight_sram_write_bytes + a.output_sram_write_bytes
    assert (st.dram_read_bytes, st.dram_write_bytes) == (a.dram_read_bytes, a.dram_write_bytes)
    assert st.actions.get("pe_mac", "mac") == a.pe_macs and st.actions.get("dram", "read") == a.dram_read_bytes
    assert (st.detail["idle_slots"], st.detail["dram_metadata_bytes"]) == (a.pe_idle_macs, a.tile_bitmap_writes)
    assert [st.detail[d] for d in ("name", "m", "k", "n", "folds")] == ["g", 2, 3, 4, 5]
    assert (st.detail["dram_read_beats"], st.detail["input_sram_read_bytes"]) == (a.dram_read_beats,
                                                                                  a.input_sram_read_bytes)


def test_predict_gemm_detail_and_utilization_by_hand():
    # 4x4 WS, 10 x 9 x 7: k-folds of 4 (4, 4, 1) x 2 column tiles (m = 10 fits one m-tile) = 6 folds;
    # 3 groups run back to back: 18 folds, 3 x 630 MACs; utilization = MACs / (16 PEs x cycles).
    cfg = MacArrayConfig(rows=4, cols=4)
    st = predict_gemm(cfg, 10, 9, 7, name="c", groups=3)
    assert [st.detail[d] for d in ("name", "m", "k", "n", "groups", "folds")] == ["c", 10, 9, 7, 3, 18]
    assert st == predict_gemm_folds(cfg, 10, 9, 7, name="c", groups=3)  # closed form and per-fold model
    assert st.macs == 3 * 630
    assert st.utilization(cfg.peak_macs_per_cycle) == 3 * 630 / (16 * st.cycles)
