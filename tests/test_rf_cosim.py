"""rf-array co-simulation under Verilator: one representative regression in the default suite (a small
3-port Reck emulator, cached build), the CLI's default 8-port run marked slow."""

import pytest
from hwsim.cosim.rf_array_regression import run_regression

from hwsim.rf_array import RfArrayConfig


def test_cosim_small_reck(tmp_path):
    cfg = RfArrayConfig(n=3, mesh="reck", dac_update_cycles=2, data_bits=10, coef_bits=7, dac_bits=5)
    rep = run_regression(cfg, seed=3, count=3, workdir=tmp_path)
    assert rep.passed, rep.as_dict()
    assert rep.mismatches == 0 and rep.cycle_mismatches == 0 and rep.vectors > 0
    for row in rep.layers:
        assert row["rtl_stalls"] == row["predicted_stalls"] == 0
        assert row["action_mismatches"] == []


@pytest.mark.slow
def test_cosim_default_preset(tmp_path):
    rep = run_regression(RfArrayConfig(), seed=1, count=6, workdir=tmp_path)
    assert rep.passed
