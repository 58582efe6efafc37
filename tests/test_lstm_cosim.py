"""Verilator co-simulation of the LSTM engine: whole TT/HT matvecs, bit-exact and cycle-exact (one build)."""

from hwsim.cosim.lstm_engine_regression import run_regression

from hwsim.lstm_engine import LstmEngineConfig

CFG = LstmEngineConfig(pes=4, banks=4, data_bits=8, acc_bits=16, frac_bits=5, work_sram_bytes=512,
                       weight_sram_bytes=1024, addr_levels=4)


def test_regression_seed1_passes(tmp_path):
    rep = run_regression(CFG, seed=1, count=6, workdir=tmp_path)
    assert rep.mismatches == 0 and rep.cycle_mismatches == 0 and rep.passed
    assert {r["kind"] for r in rep.layers} == {"tt", "ht"}
    assert rep.vectors == sum(r["vectors"] for r in rep.layers) > 0
