"""Whole compressed models through the generated RTL under Verilator (default suite: a few images).

The reference for every GEMM is the bit-exact ``reference_gemm`` (with bias); the cycles, stalls and
action counts are the cycle model's; the accuracy from the RTL's logits must equal the reference's.
"""

import pytest
from hwsim.cosim.model_cosim import format_model_report, max_rows, run_model_cosim

from hwsim import cli
from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.mac_array import fold_plan


@pytest.mark.parametrize(("accel", "spec"), [("mac-array-4x4-ws", "int8"), ("mac-array-4x4-os", "int4")])
def test_digits_cnn_through_the_rtl(accel, spec, tmp_path):
    rep = run_model_cosim("digits-cnn", accel, spec, images=4, workdir=tmp_path)
    assert [r["name"] for r in rep.layers] == ["conv1", "conv2", "fc"]
    for r in rep.layers:
        assert r["vectors"] > 0 and r["mismatches"] == 0, r
        assert r["rtl_cycles"] == r["predicted_cycles"] and r["stall_cycles"] == r["predicted_stall_cycles"], r
        assert r["count_mismatches"] == 0, r
    # conv1 batches the 4 images into one GEMM of 4 x 8 x 8 output pixels (3x3 kernel, 8 channels).
    assert rep.layers[0]["shape"] == "256x9x8" and rep.layers[0]["vectors"] == 256 * 8
    assert rep.logits_equal and rep.accuracy_rtl == rep.accuracy_reference and rep.passed
    text = format_model_report(rep)
    assert "RTL logits equal the reference's: yes" in text


def test_cli_model_option(tmp_path, capsys):
    """The CLI runs the same (cached builds) and exits 0; a bad image count is one line, exit 2."""
    assert cli.main(["cosim", "mac-array", "--rows", "4", "--cols", "4", "--model", "digits-cnn", "--images", "2",
                     "--run-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "digits-cnn (int8) on mac_array_ws_int8_4x4: 2 images" in out and "NO" not in out
    assert cli.main(["cosim", "mac-array", "--model", "digits-cnn", "--images", "0"]) == 2
    assert capsys.readouterr().err.strip() == "hwsim: error: images=0 is not allowed: expected an integer in [1, 450]"


def test_max_rows_fits_the_harness_memory():
    cfg = MacArrayConfig(rows=4, cols=4)
    rows = max_rows(cfg, 10_000, 9, 8, mem_depth=1000)
    plan = fold_plan(cfg, rows, 9, 8)
    assert max(plan.na.sum(), plan.nw.sum(), plan.rows_out.sum()) <= 1000
    plan = fold_plan(cfg, rows + 1, 9, 8)
    assert max(plan.na.sum(), plan.nw.sum(), plan.rows_out.sum()) > 1000
    with pytest.raises(HwsimError, match=r"^layer k=9 n=8 is not allowed in the co-simulation"):
        max_rows(cfg, 10, 9, 8, mem_depth=1)
