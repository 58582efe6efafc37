"""Verilator co-simulation of the LSTM engine (one build): whole TT/HT matvecs bit-exact, cycle-exact and
with every priced action count, per-bank SRAM count and stall count equal to the cycle model's; a
deliberately wrong expected count is reported as a count mismatch and fails the run."""

import copy

from hwsim.cosim.lstm_engine_regression import regression_layers, run_regression

from hwsim.lstm_engine import LstmEngineConfig

CFG = LstmEngineConfig(pes=4, banks=4, data_bits=8, acc_bits=16, frac_bits=5, work_sram_bytes=512,
                       weight_sram_bytes=1024, addr_levels=4)


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
