"""N:M sparse weight-stationary MAC array (issue 14, sparse hardware half): config, cycle model, values,
cost, simulate, and one representative co-simulation.

Expectations are independent of the code under test: hand counts from the documented fold rules, the
dense array's cycle model (proved against the RTL by the dense co-simulations), and the dense bit-exact
reference ``hwsim.models.mac_array.gemm``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hwsim.models import mac_array as ref

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.mac_array import (
    MacArrayActions,
    check_op,
    dense_k,
    gemm_mode,
    inventory,
    nm_compress,
    nm_dense_layout,
    parse_preset,
    predict_gemm,
    simulate_gemm,
)


def _nm_weights(rng, k, n, sn, sm, fmt="int8", values=None):
    """Random ``[k, n]`` weights with at most ``sn`` non-zeros in every group of ``sm`` steps (from k = 0)."""
    vals = ref.weight_values(fmt)
    vals = vals[vals != 0] if values is None else np.asarray(values)
    w = np.zeros((k, n), dtype=np.int64)
    for c in range(n):
        for g0 in range(0, k, sm):
            span = min(sm, k - g0)
            keep = rng.choice(span, size=min(sn, span), replace=False)
            keep = keep[rng.random(len(keep)) < 0.85]  # sometimes fewer than N non-zeros
            w[g0 + keep, c] = rng.choice(vals, size=len(keep))
    return w


# ---------------------------------------------------------------------------------------------- config
def test_presets_and_fields():
    cfg = parse_preset("mac-array-8x8-ws-2of4")
    assert (cfg.rows, cfg.cols, cfg.dataflow, cfg.weight_format, cfg.sparsity) == (8, 8, "ws", "int8", "2:4")
    assert cfg.sparse_nm == (2, 4) and cfg.index_bits == 2 and cfg.ws_k_step == 16
    assert cfg.weight_beat_bits == 8 * (8 + 2) and cfg.act_beat_bits == 16 * 8
    assert parse_preset("mac-array-4x4-ws-int4-1of4").sparsity == "1:4"
    assert parse_preset("mac-array-8x8-ws").sparsity == "dense"
    assert MacArrayConfig().top_name == "mac_array_ws_int8_8x8"
    assert cfg.top_name == "mac_array_ws_int8_8x8_2of4"
    field = {f.name: f for f in MacArrayConfig.cli_fields()}["sparsity"]
    assert field.flag == "--sparsity" and field.default == "dense" and field.help.startswith("Structured")


@pytest.mark.parametrize(("changes", "pattern"), [
    ({"sparsity": "2-4"}, r"^sparsity='2-4' is not allowed: expected \"dense\" or \"N:M\""),
    ({"sparsity": "4:4"}, r"^sparsity='4:4' is not allowed: expected"),
    ({"sparsity": "2:6"}, r"^sparsity='2:6' is not allowed: expected"),
    ({"sparsity": "2:4", "dataflow": "os"}, r"^sparsity='2:4' is not allowed with dataflow='os': .* ws dataflow only$"),
    ({"sparsity": "2:4", "rows": 3}, r"^sparsity='2:4' is not allowed with rows=3: rows must be a multiple of N=2"),
    ({"sparsity": "1:4", "weight_format": "binary"},
     r"^sparsity='1:4' is not allowed with weight_format='binary': binary weights have no zero"),
])
def test_config_errors(changes, pattern):
    with pytest.raises(HwsimError, match=pattern):
        MacArrayConfig(**changes)


# ---------------------------------------------------------------------------------------------- counts
def test_hand_counts_small_gemm():
    """4x2 array, 2:4, m=3 k=10 n=3. A fold covers 4 * 4 / 2 = 8 steps: folds (n0, k0) = (0,0) (0,8)
    (2,0) (2,8) with kept rows 4 (two full groups), 2 (a trailing group of L=2 keeps min(2, 2)), 4, 2."""
    cfg = MacArrayConfig(rows=4, cols=2, sparsity="2:4")
    st = predict_gemm(cfg, 3, 10, 3)
    a = MacArrayActions.of(st)
    kept = 4 + 2 + 4 + 2
    assert st.detail["folds"] == 4
    # Clock gating (default): n-tile 0 has 2 real columns, n-tile 1 one (n = 3 on 2 columns).
    assert a.pe_macs == 3 * (4 + 2) * (2 + 1) == 54     # mt * kept rows * real columns, per fold
    assert a.pe_idle_macs == 4 * 3 * 4 * 2 - 54         # every vector passes all 8 PEs
    assert a.pe_weight_loads == (4 + 2) * (2 + 1) == 18
    assert a.pe_index_loads == 18 and a.pe_act_selects == 54
    assert a.pe_reg_writes == 2 * 3 * 4 * (2 + 1) == 72  # vectors x rows x real columns (idle column gated)
    assert a.pe_idle_regs == 2 * 3 * 4 * 1
    ungated = MacArrayActions.of(predict_gemm(cfg.replace(gating="none"), 3, 10, 3))
    assert ungated.pe_weight_loads == kept * 2 == 24 and ungated.pe_reg_writes == (4 * 3) * 4 * 2
    assert ungated.pe_macs == 54 and ungated.pe_idle_macs == 96 - 54
    # Weight beats: 12 kept rows of 2 lanes x (8-bit code + 2-bit index) = 20 bits (one 64-bit word each);
    # gated, the real lanes' bytes: n-tile 0's 6 rows x 2 lanes + n-tile 1's 6 rows x 1 lane, 10 bits each.
    assert (a.weight_sram_writes, a.weight_sram_reads, a.weight_sram_write_bytes) == (12, 12, -(-18 * 10 // 8))
    assert (ungated.weight_sram_writes, ungated.weight_sram_write_bytes) == (12, 30)
    # Activation beats: 4 folds x 3 vectors of 8 steps x 8 bits = 64 bits; gated, the real steps: 8 and 2 per
    # n-tile (k = 10), 3 vectors, 2 n-tiles.
    assert (a.input_sram_writes, a.input_sram_write_bytes) == (12, 3 * (8 + 2) * 2)
    assert (ungated.input_sram_writes, ungated.input_sram_write_bytes) == (12, 96)
    assert (a.dram_read_beats, a.dram_read_bytes) == (24, (12 * 20 + 12 * 64) // 8)
    assert (a.dram_write_beats, a.dram_write_bytes, a.requant_ops) == (6, 9, 9)  # 3 x 3 real outputs
    assert (ungated.dram_write_bytes, ungated.requant_ops) == (12, 12)           # every lane of 6 beats
    # Output SRAM: every streamed vector writes a psum row; reads are the 2 non-first folds' 3 rows + drains.
    assert (a.output_sram_writes, a.output_sram_reads) == (12, 6 + 6)
    # The dense array does 3 * 10 * 3 = 90 useful MACs in 3 K-folds of 4 (3 * 3 * 8 * 2 = 144 slots).
    dense = MacArrayActions.of(predict_gemm(cfg.replace(sparsity="dense"), 3, 10, 3))
    assert (dense.pe_macs, dense.pe_idle_macs) == (90, 144 - 90)


def test_hand_cycles_one_fold():
    """m=2 k=4 n=2 on a 4x2 2:4 array, beat period 1 (documented recurrence): weight beats at cycles 2, 3;
    activation beats 4, 5; half full at 6 (5 stall cycles); WLOAD 2 + 1 and STREAM 2 + 4 + 2 end at 17;
    DRAIN 2 + 2 ends at 21. Dense: 4 weight beats (2..5), acts 6, 7, full at 8, WLOAD 5, STREAM 8, DRAIN 4: 25."""
    st = predict_gemm(MacArrayConfig(rows=4, cols=2, sparsity="2:4"), 2, 4, 2)
    assert (st.cycles, st.stall_cycles) == (21 + 3 + 3, 5)  # + pipeline registers (hwsim.config): S = 3 per STREAM, D = 3 per DRAIN
    dense = predict_gemm(MacArrayConfig(rows=4, cols=2), 2, 4, 2)
    assert (dense.cycles, dense.stall_cycles) == (25 + 3 + 3, 7)


@pytest.mark.parametrize(("sparsity", "k", "kept"), [("2:4", 10, 6), ("2:4", 37, 19), ("1:4", 37, 10),
                                                     ("1:2", 9, 5), ("2:8", 70, 18)])
def test_timing_equals_dense_array_on_kept_rows(sparsity, k, kept):
    """A sparse fold is a dense fold of its kept rows: with equal beat periods the sparse array's cycles and
    stalls on K equal the dense array's on the kept-row count (N per full group, min(N, L) for a tail)."""
    cfg = MacArrayConfig(rows=4, cols=3, sparsity=sparsity, dram_bytes_per_cycle=64.0)
    dense = cfg.replace(sparsity="dense")
    assert cfg.act_beat_period == dense.act_beat_period == 1
    for m, n in ((1, 1), (5, 7), (13, 4)):
        s, d = predict_gemm(cfg, m, k, n), predict_gemm(dense, m, kept, n)
        assert (s.cycles, s.stall_cycles) == (d.cycles, d.stall_cycles)
        assert MacArrayActions.of(s).pe_macs == MacArrayActions.of(d).pe_macs == m * kept * n


# ---------------------------------------------------------------------------------------------- values
@pytest.mark.parametrize(("sparsity", "fmt", "acc_bits", "overflow"), [
    ("2:4", "int8", 32, "saturate"), ("2:4", "int8", 18, "saturate"), ("1:4", "int4", 14, "wrap"),
    ("2:4", "ternary", 10, "saturate"), ("1:2", "pow2", 16, "saturate"), ("2:8", "int2", 12, "wrap"),
])
def test_values_bit_exact_against_dense_reference(sparsity, fmt, acc_bits, overflow):
    rng = np.random.default_rng(7)
    cfg = MacArrayConfig(rows=4, cols=3, weight_format=fmt, acc_bits=acc_bits, overflow=overflow,
                         sparsity=sparsity)
    sn, sm = cfg.sparse_nm
    lo, hi = ref.act_value_range(cfg.act_bits)
    for m, k, n in ((1, 1, 1), (5, 9, 4), (17, 37, 7), (9, 64, 5)):
        extreme = m % 2 == 1
        a = rng.choice([lo, hi], size=(m, k)) if extreme else rng.integers(lo, hi + 1, size=(m, k))
        wv = ref.weight_values(fmt)
        w = _nm_weights(rng, k, n, sn, sm, fmt, values=[wv.min(), wv.max()] if extreme else None)
        for shift, relu in ((0, False), (3, True)):
            got, _ = simulate_gemm(cfg, a, w, shift=shift, relu=relu)
            np.testing.assert_array_equal(got, ref.gemm(a, w, cfg, shift=shift, relu=relu))


@pytest.mark.parametrize("sparsity", ["2:4", "1:4", "2:8"])
def test_compressed_storage_round_trip(sparsity):
    """Scattering the kept codes back by (group, index) rebuilds the weight matrix; slots are ascending in
    k for the non-zero weights, and a trailing group's slots never point past K."""
    rng = np.random.default_rng(3)
    cfg = MacArrayConfig(rows=8, cols=4, sparsity=sparsity)
    sn, sm = cfg.sparse_nm
    for k in (1, 3, 8, 21):
        w = _nm_weights(rng, k, 6, sn, sm)
        codes, idx = nm_compress(cfg, ref.encode_weights(w, "int8"))
        groups = -(-k // sm)
        assert codes.shape == idx.shape == (groups * sn, 6)
        back = np.zeros((groups * sm, 6), dtype=np.int64)
        for row in range(groups * sn):
            g = row // sn
            for c in range(6):
                v = int(ref.decode_weights(int(codes[row, c]), "int8"))
                if v:
                    assert back[g * sm + int(idx[row, c]), c] == 0
                    back[g * sm + int(idx[row, c]), c] = v
                assert g * sm + int(idx[row, c]) < k or (v == 0 and int(idx[row, c]) == 0)
        np.testing.assert_array_equal(back[:k], w)


def test_pattern_violation_is_one_line_naming_layer_and_group():
    cfg = MacArrayConfig(rows=4, cols=2, sparsity="2:4")
    w = np.zeros((9, 2), dtype=np.int64)
    w[4:7, 1] = 5  # column 1, group 1 (steps 4..7) has 3 non-zeros
    with pytest.raises(HwsimError, match=r"^layer 'fc3' breaks the 2:4 pattern: weight column 1, reduction steps "
                                         r"4\.\.7 hold 3 non-zero weights, at most 2 allowed \(.*\)$"):
        simulate_gemm(cfg, np.ones((2, 9), dtype=np.int64), w, name="fc3", mode="sparse")

    class Op:
        layer, weight_format, act_bits, weight, sparsity = "conv2", "int8", 8, w, "2:4"

    with pytest.raises(HwsimError, match=r"^layer 'conv2' breaks the 2:4 pattern: weight column 1"):
        check_op(cfg, Op)  # declared N:M (an N:M compress spec) but the weights break it
    check_op(cfg.replace(sparsity="dense"), Op)  # a dense array runs it

    class Undeclared(Op):
        sparsity = None

    check_op(cfg, Undeclared)  # not declared N:M: it runs in dense mode


# ---------------------------------------------------------------------------------------------- cost
def test_inventory_and_pricing_of_sparse_components():
    from hwsim.cost import CostModel

    cfg = MacArrayConfig(rows=4, cols=2, sparsity="2:4")
    inv = inventory(cfg)
    assert inv["pe_act_mux"].cls == "mux" and inv["pe_act_mux"].attrs == {"inputs": 4, "bits": 8}
    assert inv["pe_index_reg"].attrs == {"bits": 2} and inv["pe_index_reg"].count == 8
    assert inv["pe_pipeline_reg"].attrs["write_bits"] == 4 * 8 + 32
    model = CostModel()
    mux2 = model.entry("mux2.energy").value
    reg_bit = model.register_bit_energy_pj()
    e = model.energy(inv, MacArrayActions(pe_act_selects=10, pe_index_loads=3), 1).components()
    assert e["pe_act_mux"] == pytest.approx(10 * 3 * 8 * mux2)   # 4:1 mux = 3 MUX2 per bit
    assert e["pe_index_reg"] == pytest.approx(3 * 2 * reg_bit)
    # A dense inventory has neither component and its actions never name them.
    dense_pairs = predict_gemm(cfg.replace(sparsity="dense"), 3, 10, 3).actions.pairs().counts
    assert not {name for name, _ in dense_pairs} & {"pe_act_mux", "pe_index_reg"}


# ---------------------------------------------------------------------------------------------- simulate
def test_simulate_digits_cnn_sparse_saves_cycles_and_energy():
    from hwsim.simulate import simulate

    dense = simulate("digits-cnn", "mac-array-8x8-ws", compress="int8", progress=False)
    dense_24 = simulate("digits-cnn", "mac-array-8x8-ws", compress="2:4+int8", progress=False)
    sparse = simulate("digits-cnn", "mac-array-8x8-ws-2of4", compress="2:4+int8", progress=False)
    assert sparse.simulated_equals_reference and dense_24.simulated_equals_reference
    assert sparse.cycles < dense.cycles and sparse.energy_pj < dense.energy_pj
    assert sparse.cycles < dense_24.cycles and sparse.energy_pj < dense_24.energy_pj
    # Skipping zeros changes no value: the same compressed model classifies identically on either array.
    assert sparse.accuracy_simulated == dense_24.accuracy_simulated == dense_24.accuracy_reference
    assert abs(sparse.accuracy_simulated - sparse.accuracy_float) <= 0.01
    # Same useful MACs; the sparse array's PEs execute fewer.
    assert sparse.macs == dense.macs
    pe = sum(lr.energy_pj["pe_mac"] for lr in sparse.layers)
    assert pe < 0.6 * sum(lr.energy_pj["pe_mac"] for lr in dense.layers)


def test_cli_rejects_model_declared_nm_that_breaks_the_array_pattern(capsys):
    """A 2:4-pruned model is declared N:M; on a 1:4 array its layers break the pattern: one line, exit 2."""
    from hwsim.cli import main

    assert main(["simulate", "digits-cnn", "--accel", "mac-array-8x8-ws-1of4", "--compress", "2:4+int8"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"hwsim: error: layer 'conv1' breaks the 1:4 pattern: weight column \d+, reduction steps "
                        r"\d+\.\.\d+ hold \d non-zero weights, at most 1 allowed \(.*\)", err)


def test_simulate_dense_model_on_sparse_array():
    """An unpruned int8 model runs on the 2:4 array in dense mode: the dense array's accuracy and logits, the
    dense array's cycles (same folds, beat periods 1 at 16 B/cycle), twice its activation DRAM bytes (beats of
    16 lanes carrying 8 real steps) and 10/8 of its weight bytes (a 2-bit index per 8-bit code)."""
    from hwsim.simulate import simulate

    dense = simulate("digits-cnn", "mac-array-8x8-ws", compress="int8", progress=False)
    sp = simulate("digits-cnn", "mac-array-8x8-ws-2of4", compress="int8", progress=False)
    assert sp.simulated_equals_reference
    assert sp.accuracy_simulated == dense.accuracy_simulated == dense.accuracy_reference
    assert sp.cycles == dense.cycles == 3140  # 2873 before the RTL's pipeline registers (hwsim.config)
    assert sp.energy_pj > dense.energy_pj  # the index metadata, the wider activation beats and the muxes
    assert [lr.macs for lr in sp.layers] == [lr.macs for lr in dense.layers]


def test_dense_mode_counts_against_dense_array():
    """Dense mode on a 4x4 2:4 array is the dense 4x4 array's schedule: equal cycles, stalls and PE counts
    (beat periods equal at 64 B/cycle); activation bytes x M/N = 2, weight bytes x (8 + 2) / 8 (beats of
    whole bytes: 4 lanes)."""
    cfg = MacArrayConfig(rows=4, cols=4, sparsity="2:4", dram_bytes_per_cycle=64.0)
    dense = cfg.replace(sparsity="dense")
    for m, k, n in ((1, 1, 1), (5, 9, 4), (13, 37, 7), (3, 16, 3)):
        s, d = predict_gemm(cfg, m, k, n, mode="dense"), predict_gemm(dense, m, k, n)
        assert (s.cycles, s.stall_cycles, s.detail["folds"]) == (d.cycles, d.stall_cycles, d.detail["folds"])
        sa, da = MacArrayActions.of(s), MacArrayActions.of(d)
        assert (sa.pe_macs, sa.pe_weight_loads, sa.pe_reg_writes) == (da.pe_macs, da.pe_weight_loads, da.pe_reg_writes)
        assert sa.pe_index_loads == sa.pe_weight_loads and sa.pe_act_selects == sa.pe_macs
        # whole beats (no gating); gated, the real lanes: the sparse beat's 4 * (k // 2) + k % 2 steps (the
        # inserted zero steps are written) against the dense beat's k
        su = MacArrayActions.of(predict_gemm(cfg.replace(gating="none"), m, k, n, mode="dense"))
        du = MacArrayActions.of(predict_gemm(dense.replace(gating="none"), m, k, n))
        assert su.input_sram_write_bytes == 2 * du.input_sram_write_bytes
        assert 8 * su.weight_sram_write_bytes == 10 * du.weight_sram_write_bytes
        assert sa.input_sram_write_bytes * k == da.input_sram_write_bytes * (4 * (k // 2) + k % 2)
        assert (sa.dram_read_beats, sa.dram_write_bytes, sa.requant_ops) == \
            (da.dram_read_beats, da.dram_write_bytes, da.requant_ops)


@pytest.mark.parametrize(("sparsity", "k", "k_dense"), [("2:4", 9, 17), ("2:4", 8, 16), ("1:4", 5, 20),
                                                        ("2:8", 7, 25), ("1:2", 3, 6)])
def test_dense_layout(sparsity, k, k_dense):
    """K' = M * (K // N) + K % N by hand; a' @ w' == a @ w; w' follows N:M though w is fully dense."""
    cfg = MacArrayConfig(rows=4, cols=2, sparsity=sparsity)
    rng = np.random.default_rng(11)
    a = rng.integers(-128, 128, size=(3, k))
    w = rng.integers(1, 128, size=(k, 5))  # no zero: breaks every N:M pattern once a group has > N steps
    a2, w2 = nm_dense_layout(cfg, a, w)
    assert dense_k(cfg, k) == k_dense == a2.shape[1] == w2.shape[0]
    np.testing.assert_array_equal(a2 @ w2, a @ w)
    assert gemm_mode(cfg, w2, mode="sparse") == "sparse"  # raises if w' broke the pattern
    assert np.count_nonzero(w2) == np.count_nonzero(w)


def test_gemm_mode_choice():
    cfg = MacArrayConfig(rows=4, cols=2, sparsity="2:4")
    ok = np.array([[1, 0], [0, 2], [0, 0], [3, 4]])
    bad = np.array([[1, 0], [1, 2], [0, 0], [3, 4]])
    assert gemm_mode(cfg, ok) == "sparse" and gemm_mode(cfg, bad) == "dense"
    assert gemm_mode(cfg, ok, mode="dense") == "dense" and gemm_mode(cfg, None) == "sparse"
    assert gemm_mode(cfg.replace(sparsity="dense"), ok, mode="sparse") == "dense"
    with pytest.raises(HwsimError, match=r"^layer 'fc' breaks the 2:4 pattern: weight column 0, reduction steps "
                                         r"0\.\.3 hold 3 non-zero weights"):
        gemm_mode(cfg, bad, "fc", mode="sparse")
    with pytest.raises(HwsimError, match=r"^mode='both' is not allowed: expected 'sparse', 'dense' or None"):
        gemm_mode(cfg, ok, mode="both")


@pytest.mark.parametrize(("sparsity", "fmt", "acc_bits", "overflow"), [
    ("2:4", "int8", 18, "saturate"), ("1:4", "int4", 12, "wrap"), ("2:8", "ternary", 10, "saturate"),
])
def test_dense_mode_values_bit_exact(sparsity, fmt, acc_bits, overflow):
    """Unpruned weights on an N:M array (auto mode picks dense) against the dense reference, saturating too."""
    rng = np.random.default_rng(5)
    cfg = MacArrayConfig(rows=4, cols=3, weight_format=fmt, acc_bits=acc_bits, overflow=overflow,
                         sparsity=sparsity)
    lo, hi = ref.act_value_range(cfg.act_bits)
    vals = ref.weight_values(fmt)
    for m, k, n in ((5, 9, 4), (17, 37, 7)):
        a = rng.choice([lo, hi], size=(m, k))
        w = rng.choice([vals.min(), vals.max()], size=(k, n))
        got, st = simulate_gemm(cfg, a, w, shift=2, relu=False)
        np.testing.assert_array_equal(got, ref.gemm(a, w, cfg, shift=2, relu=False))
        assert st.cycles == predict_gemm(cfg, m, k, n, mode="dense").cycles


# ---------------------------------------------------------------------------------------------- co-simulation
#: One representative N:M build for the default suite: a 4x2 2:4 array with two-row tiles, a DRAM slower
#: than the array (stalls) and an 18-bit saturating accumulator (extreme data saturates).
COSIM_CFG = MacArrayConfig(rows=4, cols=2, sparsity="2:4", acc_bits=18, overflow="saturate",
                           input_sram_bytes=32, weight_sram_bytes=20, output_sram_bytes=10, dram_bytes_per_cycle=3.0)


def test_cosim_sparse_matches_reference_and_cycle_model(tmp_path):
    pytest.importorskip("cocotb")
    from hwsim.cosim.regression import random_layers, run_regression

    cfg = COSIM_CFG
    assert cfg.m_tile == 2
    layers = random_layers(cfg, seed=5, count=8)
    assert {la["kind"] for la in layers} == {"gemm", "conv"}
    rep = run_regression(cfg, layers=layers, workdir=tmp_path)
    assert len(rep.layers) == 8
    for row in rep.layers:
        assert row["mismatches"] == 0, row
        assert row["rtl_cycles"] == row["predicted_cycles"], row
        assert row["stall_cycles"] == row["predicted_stall_cycles"], row
        assert row["count_mismatches"] == 0 and row["actions"] == row["predicted_actions"], row
    # Unpruned layers (i % 4 == 1; layer 1 with extreme data, saturating) ran in dense mode, the others sparse.
    assert [r["shape"].rsplit(" ", 1)[1] for r in rep.layers] == ["sparse", "dense"] + ["sparse"] * 3 + \
        ["dense"] + ["sparse"] * 2
    total = {key: sum(r["actions"][key] for r in rep.layers) for key in rep.layers[0]["actions"]}
    assert sum(r["stall_cycles"] for r in rep.layers) > 0
    assert total["pe_act_selects"] == total["pe_macs"] > 0
    assert total["pe_index_loads"] == total["pe_weight_loads"] > 0


def test_cosim_rejects_pattern_violation_before_building(tmp_path):
    from hwsim.cosim.regression import run_regression

    w = np.zeros((8, 2), dtype=np.int64)
    w[0:3, 0] = 1
    layer = {"kind": "gemm", "name": "bad", "a": np.ones((2, 8), dtype=np.int64).tolist(), "w": w.tolist(),
             "shift": 0, "relu": False, "mode": "sparse"}  # declared N:M
    with pytest.raises(HwsimError, match=r"^layer 'bad' breaks the 2:4 pattern: weight column 0, reduction steps "
                                         r"0\.\.3 hold 3 non-zero weights, at most 2 allowed"):
        run_regression(COSIM_CFG.replace(acc_bits=19), layers=[layer], workdir=tmp_path)  # never built


# ---------------------------------------------------------------------------------------------- zero-tile skipping
def test_skip_zero_tiles_hand_count():
    """4x2 WS array, m=3 k=12 n=4, beat period 1. Folds (n0, k0): (0,0) zero, (0,4), (0,8) run; (2,*) all zero.
    Loader: WAIT 1 skips; fold (0,4) weights 3..6, acts 7..9, full at 10; fold (0,8) weights 11..14, acts
    15..17. Compute: WAIT 1 skips; (0,4) waits 2..9 (8 stalls), WLOAD 5 + STREAM 9 end at 24; (0,8) from 25
    ends STREAM at 39, DRAIN 5 at 44; tile n0=2: WAIT 45, 46, 47 and DRAIN 5 of zero accumulators: 52."""
    cfg = MacArrayConfig(rows=4, cols=2, dram_bytes_per_cycle=64.0, skip_zero_tiles=True)
    w = np.ones((12, 4), dtype=np.int64)
    w[0:4, 0:2] = 0
    w[:, 2:4] = 0
    st = predict_gemm(cfg, 3, 12, 4, weight=w)
    a = MacArrayActions.of(st)
    assert (st.cycles, st.stall_cycles, st.detail["folds"]) == (52 + 2 * 3 + 2 * 3, 8, 2)  # + pipeline registers (hwsim.config): S = 3 per STREAM, D = 3 per DRAIN
    assert (a.pe_macs, a.pe_weight_loads, a.pe_reg_writes) == (3 * 4 * 2 * 2, 8 * 2, 6 * 4 * 2)
    assert (a.weight_sram_writes, a.input_sram_writes) == (8, 6)  # 8 weight rows, 6 activation vectors
    # Output SRAM: 6 psum writes; reads: 3 psums of fold (0,8) + 3 drained rows (tile n0=2 drains zeros).
    assert (a.output_sram_writes, a.output_sram_reads) == (6, 6)
    # DRAM: 8 beats of 16 bits + 6 of 32 bits + the 6-bit block bitmap in one byte; 6 output rows.
    assert (a.dram_read_beats, a.dram_read_bytes) == (14, 16 + 24 + 1)
    assert (a.dram_write_beats, a.requant_ops) == (6, 12)
    # Bitmap: 6 folds (2 n-tiles x 3 k-folds), each read once by the loader and once by the compute engine.
    assert (a.tile_bitmap_reads, a.tile_bitmap_writes) == (12, 1)
    # Without skipping: all 6 folds, and no bitmap.
    off = predict_gemm(cfg.replace(skip_zero_tiles=False), 3, 12, 4)
    assert off.detail["folds"] == 6 and off.cycles > st.cycles


def test_skip_zero_tiles_without_zero_blocks_costs_only_the_bitmap():
    rng = np.random.default_rng(2)
    for sparsity in ("dense", "2:4"):
        cfg = MacArrayConfig(rows=4, cols=3, sparsity=sparsity, skip_zero_tiles=True)
        w = rng.integers(1, 100, size=(37, 7))  # no zero block (dense mode on the 2:4 array)
        on, off = predict_gemm(cfg, 9, 37, 7, weight=w), predict_gemm(cfg.replace(skip_zero_tiles=False), 9, 37, 7,
                                                                     weight=w)
        assert (on.cycles, on.stall_cycles, on.detail["folds"]) == (off.cycles, off.stall_cycles, off.detail["folds"])
        # Blocks: 3 n-tiles x 10 k-folds (dense: 37 steps / 4; dense mode on 2:4: K' = 4 * 18 + 1 = 73 steps / 8).
        blocks = 3 * 10
        a_on, a_off = MacArrayActions.of(on).as_dict(), MacArrayActions.of(off).as_dict()
        diff = {k: (v, a_off[k]) for k, v in a_on.items() if v != a_off[k]}
        # The bitmap: its bytes from DRAM into its buffer, and one read per fold by each engine (one m-tile).
        assert diff == {"dram_read_bytes": (a_off["dram_read_bytes"] + -(-blocks // 8), a_off["dram_read_bytes"]),
                        "tile_bitmap_writes": (-(-blocks // 8), 0), "tile_bitmap_reads": (2 * blocks, 0)}


def test_tile_bitmap_inventory_and_pricing():
    """The bitmap buffer: one bit per weight block of a layer that fills the weight SRAM, byte-wide SRAM."""
    from hwsim.cost import CostModel

    cfg = MacArrayConfig(skip_zero_tiles=True)
    inv = inventory(cfg)
    # 64 KiB of int8 weights in 8x8 blocks of 512 bits: 1024 blocks = 128 bytes.
    assert inv["tile_bitmap"].cls == "sram" and inv["tile_bitmap"].attrs == {"bytes": 128, "word_bits": 8}
    # 2:4: a block is 8 kept rows of 8 x (8 + 2) bits = 640 bits: ceil(524288 / 640) = 820 blocks = 103 bytes.
    assert inventory(cfg.replace(sparsity="2:4"))["tile_bitmap"].attrs["bytes"] == 103
    assert "tile_bitmap" not in inventory(MacArrayConfig()).names()
    model = CostModel()
    # Area: 1024 bits x 0.346 um^2 bitcell x 2.0 overhead. A read/write of 8 bits: the 64-bit access of a
    # 128-byte buffer is the floor, 64 flip-flop writes (64 x 4.522/0.798 GE x 0.03 pJ * 0.798 / 36), x 8/64.
    assert model.area(cfg).tile_bitmap == pytest.approx(1024 * 0.346 * 2.0)
    e_read = 64 * (4.522 / 0.798) * (0.03 * 0.798 / 36) * 8 / 64
    assert model.unit_energies(cfg)[("tile_bitmap", "read")] == pytest.approx(e_read)
    w = np.zeros((16, 16), dtype=np.int64)
    w[:8, :8] = 1  # 4 blocks, one non-zero; m = 3 rows: one m-tile
    st = predict_gemm(cfg, 3, 16, 16, weight=w)
    assert (st.actions.get("tile_bitmap", "read"), st.actions.get("tile_bitmap", "write")) == (8, 1)
    e = model.energy(cfg, st.actions, st.cycles).parts
    assert e["tile_bitmap"] == pytest.approx(9 * e_read)


def test_skip_zero_tiles_values_and_config():
    rng = np.random.default_rng(4)
    cfg = MacArrayConfig(rows=4, cols=2, acc_bits=18, skip_zero_tiles=True)
    a = rng.choice([-128, 127], size=(6, 13))
    w = rng.choice([-128, 127], size=(13, 5))
    w[4:8] = 0
    w[:, 2:4] = 0
    got, st = simulate_gemm(cfg, a, w, shift=3)
    np.testing.assert_array_equal(got, ref.gemm(a, w, cfg, shift=3))
    assert st.detail["folds"] < predict_gemm(cfg.replace(skip_zero_tiles=False), 6, 13, 5).detail["folds"]
    field = {f.name: f for f in MacArrayConfig.cli_fields()}["skip_zero_tiles"]
    assert field.flag == "--skip-zero-tiles" and field.type is bool and field.default is False
    with pytest.raises(HwsimError, match=r"^skip_zero_tiles=True is not allowed with dataflow='os': "):
        MacArrayConfig(dataflow="os", skip_zero_tiles=True)
    with pytest.raises(HwsimError, match=r"^skip_zero_tiles=True is not allowed with weight_format='binary': "):
        MacArrayConfig(weight_format="binary", skip_zero_tiles=True)
    with pytest.raises(HwsimError, match=r"^skip_zero_tiles=1 is not allowed: expected true or false$"):
        MacArrayConfig(skip_zero_tiles=1)


def test_simulate_block_pruned_model_skips_zero_tiles():
    """block8x8-50 zeroes half the 8x8 weight blocks, which are exactly the 8x8 WS array's folds: skipping
    them saves cycles and energy; values (and so accuracy) are unchanged. DRAM holds the weights dense (the
    bitmap saves the array's reads, not DRAM's: hwsim.memory), so its energy is the same with skipping but
    for the bitmap's 12 bytes (1 + 3 + 8, tests/test_memory.py) at 8 pJ/bit, and the saving is in
    everything else."""
    from hwsim.simulate import simulate

    base = simulate("digits-cnn", MacArrayConfig(), compress="block8x8-50+int8", progress=False)
    skip = simulate("digits-cnn", MacArrayConfig(skip_zero_tiles=True), compress="block8x8-50+int8", progress=False)
    assert skip.simulated_equals_reference
    assert skip.accuracy_simulated == base.accuracy_simulated
    def parts(rep):
        dram = sum(lr.energy_pj["dram"] for lr in rep.layers)
        return dram, rep.energy_pj - dram

    (dram_base, rest_base), (dram_skip, rest_skip) = parts(base), parts(skip)
    assert skip.cycles < 0.6 * base.cycles and rest_skip < 0.6 * rest_base
    assert dram_skip == pytest.approx(dram_base + 12 * 64.0)
    assert base.cycles == simulate("digits-cnn", MacArrayConfig(), compress="int8", progress=False).cycles


def test_amaranth_sim_drives_the_block_bitmap():
    """Amaranth's simulator answers the top's bitmap reads: the hand-counted 52-cycle GEMM of
    test_skip_zero_tiles_hand_count, then the 2:4 array with a zero first k-fold and a zero n-tile (sparse) and
    a dense-mode GEMM with a zero block; values against the dense reference, cycles against the model."""
    from hwsim.cosim.amaranth_sim import run_gemm_amaranth

    rng = np.random.default_rng(3)
    cfg = MacArrayConfig(rows=4, cols=2, dram_bytes_per_cycle=64.0, skip_zero_tiles=True, input_sram_bytes=64,
                         weight_sram_bytes=64, output_sram_bytes=64)
    w = rng.choice([-3, -1, 2, 5], size=(12, 4))
    w[0:4, 0:2] = 0
    w[:, 2:4] = 0
    a = rng.integers(-128, 128, size=(3, 12))
    out, cycles = run_gemm_amaranth(cfg, a, w, 3, False)
    assert cycles == 52 + 2 * 3 + 2 * 3  # the pipeline registers, as in test_skip_zero_tiles_hand_count
    np.testing.assert_array_equal(out, ref.gemm(a, w, cfg, shift=3))

    cfg = COSIM_CFG.replace(skip_zero_tiles=True)
    ks = cfg.ws_k_step
    w1 = _nm_weights(rng, 2 * ks + 3, 5, 2, 4)
    w1[0:ks, 0:2] = 0
    w1[:, 2:4] = 0
    w2 = rng.choice([-128, 127], size=(11, 3))  # dense mode (breaks 2:4), a zero middle block
    w2[4:8, 0:2] = 0
    for w, mode in ((w1, "sparse"), (w2, "dense")):
        assert gemm_mode(cfg, w) == mode
        a = rng.integers(-128, 128, size=(3, w.shape[0]))
        out, cycles = run_gemm_amaranth(cfg, a, w, 4, True)
        np.testing.assert_array_equal(out, ref.gemm(a, w, cfg, shift=4, relu=True))
        st = predict_gemm(cfg, 3, w.shape[0], w.shape[1], weight=w)
        assert cycles == st.cycles
        assert cycles < predict_gemm(cfg.replace(skip_zero_tiles=False), 3, w.shape[0], w.shape[1], weight=w).cycles


def test_cosim_zero_tile_skipping(tmp_path):
    """The N:M array with skipping: a declared-sparse GEMM with a zero first k-fold, an all-zero n-tile and a
    zero last k-fold (and bias), a dense-mode GEMM with a zero middle block (saturating data), an all-zero
    GEMM (every tile drains requant(bias))."""
    pytest.importorskip("cocotb")
    from hwsim.cosim.regression import run_regression

    cfg = COSIM_CFG.replace(skip_zero_tiles=True)
    rng = np.random.default_rng(9)
    ks = cfg.ws_k_step
    k, n = 3 * ks - 3, 5
    w1 = _nm_weights(rng, k, n, 2, 4)
    w1[0:ks, 0:2] = 0
    w1[:, 2:4] = 0
    w1[2 * ks:, 4:] = 0
    w2 = rng.choice([-128, 127], size=(11, 3))
    w2[4:8, 0:2] = 0
    layers = [
        {"kind": "gemm", "name": "blocks", "a": rng.integers(-128, 128, size=(5, k)).tolist(), "w": w1.tolist(),
         "shift": 6, "relu": False, "bias": rng.integers(-3000, 3000, size=n).tolist(), "mode": "sparse"},
        {"kind": "gemm", "name": "dense", "a": rng.choice([-128, 127], size=(3, 11)).tolist(), "w": w2.tolist(),
         "shift": 2, "relu": True},
        {"kind": "gemm", "name": "zero", "a": rng.integers(-128, 128, size=(4, 9)).tolist(),
         "w": np.zeros((9, 3), dtype=np.int64).tolist(), "shift": 3, "relu": False,
         "bias": rng.integers(-500, 500, size=3).tolist()},
    ]
    rep = run_regression(cfg, layers=layers, workdir=tmp_path)
    for row in rep.layers:
        assert row["mismatches"] == 0, row
        assert row["rtl_cycles"] == row["predicted_cycles"], row
        assert row["stall_cycles"] == row["predicted_stall_cycles"], row
        assert row["count_mismatches"] == 0 and row["actions"] == row["predicted_actions"], row
    assert [r["shape"] for r in rep.layers] == ["sparse", "dense", "sparse"]
    off = cfg.replace(skip_zero_tiles=False)
    for row, la in zip(rep.layers, layers, strict=True):
        a, w = np.asarray(la["a"]), np.asarray(la["w"])
        assert row["rtl_cycles"] < predict_gemm(off, a.shape[0], a.shape[1], w.shape[1], weight=w).cycles
    assert rep.layers[2]["actions"]["pe_macs"] == 0 and rep.layers[2]["actions"]["output_sram_reads"] == 0
