"""Verilator co-simulation of the LSTM engine (one build of the whole engine top): whole TT/HT matvecs and
full LSTM time steps (stages, hidden stage, the RTL's gather and gate unit, h and c carried over three
steps) bit-exact, cycle-exact and with every priced action count, per-bank SRAM count and stall count
equal to the cycle model's; a deliberately wrong expectation is reported and fails the run."""

import copy

import numpy as np
from hwsim.cosim.lstm_engine_regression import random_lstm, regression_layers, run_regression, step_layer
from hwsim.models import lstm_engine as ref

from hwsim.lstm_engine import LstmEngineConfig, LstmWorkload, gate_phase_cycles, predict_matvec, predict_step

CFG = LstmEngineConfig(pes=4, banks=4, data_bits=8, acc_bits=16, frac_bits=5, work_sram_bytes=512,
                       weight_sram_bytes=1024, hidden_sram_bytes=1024, addr_levels=4)


def test_regression_seed1_passes_and_catches_a_wrong_count(tmp_path):
    layers = regression_layers(CFG, seed=1, count=6)
    bad = copy.deepcopy(layers[0])
    bad["name"] = "tampered"
    want = bad["expect_counts"]
    reads = want["actions"]["weight_sram.read"]
    want["actions"]["weight_sram.read"] = reads + 1
    want["bank_reads"][2] += 5
    rep = run_regression(CFG, workdir=tmp_path, layers=[*layers, bad])
    good, tampered = rep.layers[:-1], rep.layers[-1]
    assert all(r["mismatches"] == 0 and r["rtl_cycles"] == r["predicted_cycles"] and r["count_diffs"] == {}
               for r in good), good
    assert {r["kind"] for r in good} == {"tt", "ht"}
    assert rep.vectors == sum(r["vectors"] for r in rep.layers) > 0
    b2 = want["bank_reads"][2]
    assert tampered["count_diffs"] == {"weight_sram.read": [reads, reads + 1], "bank_reads[2]": [b2 - 5, b2]}
    assert tampered["mismatches"] == 0 and rep.count_mismatches == 2 and not rep.passed


def test_full_lstm_steps_under_verilator(tmp_path):
    """A TT-LSTM (H = 5) and an HT-LSTM (H = 3, extreme weights), three steps each, through the same build."""
    rng = np.random.default_rng(3)
    layers, refs = [], []
    for kind, H, extreme in (("tt", 5, False), ("ht", 3, True)):
        q = random_lstm(CFG, kind, rng, H, (3, 4), extreme=extreme)
        xs = rng.integers(-128, 128, size=(3, q.fmt.shape[1]))
        h0, c0 = rng.integers(-128, 128, size=H), rng.integers(-128, 128, size=H)
        layers.append(step_layer(CFG, q, xs, h0, c0, name=f"step-{kind}"))
        refs.append((q, H))
        h, c = h0, c0
        for t, x in enumerate(xs):  # the expectation is the reference cell, step by step
            h, c = ref.cell_fixed(ref.wx_fixed(q, x, CFG), q.U, q.b, h, c, q.e_u, CFG)
            assert layers[-1]["expect_h"][t] == h.tolist() and layers[-1]["expect_c"][t] == c.tolist()
    bad = copy.deepcopy(layers[0])
    bad["name"] = "tampered"
    bad["expect_h"][2][1] += 1  # one h value of the last step
    rep = run_regression(CFG, workdir=tmp_path, layers=[*layers, bad])
    for r, (q, H) in zip(rep.layers[:-1], refs, strict=True):
        assert r["mismatches"] == 0 and r["count_diffs"] == {}, r
        assert r["vectors"] == 3 * 2 * H
        one = predict_step(CFG, LstmWorkload("w", q.fmt, H, 1, q.order))
        assert r["rtl_cycles"] == r["predicted_cycles"] == 3 * one.cycles
        assert one.cycles == predict_matvec(CFG, q.fmt, q.order).cycles + one.detail["stages"][-2].cycles + gate_phase_cycles(H)
    assert rep.layers[-1]["mismatches"] == 1 and not rep.passed


def test_harness_uses_the_free_running_machinery_and_compact_memory_inits():
    """The LSTM harness is the MAC array's machinery (hwsim's free-running Verilator main, DPI-C memory
    copies, no --timing, no $readmemh), and its Verilog is the plain generation with every all-zero memory
    init as a loop: the same text as compacting the plain generation (a LUT config keeps its ROM init)."""
    import functools

    from hwsim.cosim.harness import FREE_RUN_MAIN
    from hwsim.cosim.lstm_engine_harness import lstm_engine_harness
    from hwsim.cosim.runner import compact_memory_inits, fast_memory_rtl
    from hwsim.rtl.lstm_step import generate_verilog

    h = lstm_engine_harness()
    assert h.main_cpp == FREE_RUN_MAIN and "--timing" not in h.build_args and h.cpp_sources
    lut = CFG.replace(nonlinearity="lut", lut_bits=5, banks=2)
    plain = functools.partial(generate_verilog, debug=True)
    for cfg in (CFG, lut):
        text, meta = plain(cfg)
        fast, fast_meta = fast_memory_rtl(plain)(cfg)
        assert fast == compact_memory_inits(text) and fast_meta == meta
        assert "hwsim_zero_init_" in fast and len(fast) < len(text)
        assert fast.count(" = ") < text.count(" = ") - 1000  # the per-word zero lines are gone
        harness = h.verilog(meta)
        assert "$readmemh" not in harness and "$writememh" not in harness and "#1" not in harness
    assert "8'h" in fast_memory_rtl(plain)(lut)[0]  # the LUT's ROM init is kept
