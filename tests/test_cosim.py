"""Verilator co-simulation of the generated RTL against the reference and the cycle model.

Every weight format x both RTL dataflows, on a non-square 3x2 array with small SRAMs (so layers fold over
M, N and K, and OS chunks K), a DRAM slower than the array (so stalls occur), and narrow accumulators
(so the extreme-data layers saturate or wrap). Builds are cached and shared (``hwsim.cosim.runner``):
the cache and runner tests below reuse the configurations built by the regressions.
"""


import numpy as np
import pytest
import pywellen
from hwsim.cosim.harness import HARNESS_TOP, TEST_MODULE, mac_array_harness
from hwsim.cosim.regression import build_mac_array, random_layers, run_regression
from hwsim.cosim.report import RegressionReport
from hwsim.cosim.runner import Harness, build, cache_dir, cosimulate, run_job

from hwsim.config import WEIGHT_FORMATS, MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.families import register, unregister
from hwsim.mac_array import predict_gemm

#: (format, dataflow, rows, cols): every format, every dataflow (IS included), odd shapes (1xN, Nx1,
#: non-square) that once produced zero-width signals, and beats wider than 64 bits.
CASES = [
    ("int8", "ws", 3, 2), ("int8", "os", 3, 2), ("int8", "is", 3, 5),
    ("int4", "ws", 1, 7), ("int4", "os", 7, 1), ("int4", "is", 3, 2),
    ("int2", "ws", 3, 2), ("int2", "is", 1, 7),
    ("ternary", "os", 3, 2), ("ternary", "is", 7, 1),
    ("binary", "ws", 3, 2), ("binary", "os", 1, 7),
    ("pow2", "ws", 3, 5), ("pow2", "os", 3, 2),
    ("int8", "ws", 9, 12),  # beats wider than 64 bits (72/96): three 32-bit words in the memory files
]
assert {c[0] for c in CASES} == set(WEIGHT_FORMATS) and {c[1] for c in CASES} == {"ws", "os", "is"}


def _cfg(fmt: str, dataflow: str, rows: int = 3, cols: int = 2) -> MacArrayConfig:
    """Small SRAMs (two rows per WS/IS tile, a few K steps per OS chunk), so layers fold over M, N and K;
    a DRAM slower than the array, so stalls occur; a narrow accumulator, so extreme data saturates/wraps."""
    base = MacArrayConfig(rows=rows, cols=cols, dataflow=dataflow, weight_format=fmt)
    i = CASES.index((fmt, dataflow, rows, cols))
    acc = base.product_bits + 2
    return base.replace(
        acc_bits=acc,
        overflow=("saturate", "wrap")[i % 2],
        rounding=("half_up", "half_even")[(i // 2) % 2],
        input_sram_bytes=-(-4 * max(rows, cols) * base.act_bits // 8),
        weight_sram_bytes=-(-2 * rows * max(rows, cols) * base.weight_bits // 8) * 2,
        output_sram_bytes=-(-2 * cols * acc // 8),
        dram_bytes_per_cycle=(0.5, 1.0, 3.0)[i % 3],
    )


@pytest.mark.parametrize(("fmt", "dataflow", "rows", "cols"), CASES, ids=[f"{f}-{d}-{r}x{c}" for f, d, r, c in CASES])
def test_regression_matches_reference_and_cycle_model(fmt, dataflow, rows, cols, tmp_path):
    """Values bit-exact; cycles, stalls and every action count equal to the cycle model's, per layer."""
    cfg = _cfg(fmt, dataflow, rows, cols)
    layers = random_layers(cfg, seed=CASES.index((fmt, dataflow, rows, cols)), count=6)
    rep = run_regression(cfg, layers=layers, workdir=tmp_path)
    assert len(rep.layers) == 6
    for row in rep.layers:
        assert row["mismatches"] == 0, row
        assert row["rtl_cycles"] == row["predicted_cycles"], row
        assert row["stall_cycles"] == row["predicted_stall_cycles"], row
        assert row["count_mismatches"] == 0 and row["count_diffs"] == {}, row
        assert row["actions"] == row["predicted_actions"], row
        assert row["vectors"] > 0
    # The DRAM is slower than the array somewhere in the run: stalls are exercised, not all zero.
    assert sum(r["stall_cycles"] for r in rep.layers) > 0
    total = {key: sum(r["actions"][key] for r in rep.layers) for key in rep.layers[0]["actions"]}
    assert total["pe_macs"] > 0 and total["requant_ops"] > 0
    assert (total["pe_weight_loads"] > 0) == (dataflow != "os")
    assert (total["output_sram_writes"] > 0) == (dataflow != "os")


#: Same top (mac_array_ws_int8_3x2) as ``_cfg("int8", "ws")`` but a 16-bit accumulator.
SAT_CFG = MacArrayConfig(rows=3, cols=2, dataflow="ws", weight_format="int8", acc_bits=16,
                         overflow="saturate", input_sram_bytes=12, weight_sram_bytes=12, output_sram_bytes=16)


def test_overflow_corners_exercised(tmp_path):
    """A layer whose exact sums exceed the accumulator: RTL saturates exactly like the reference."""
    cfg = SAT_CFG
    a = np.full((4, 9), 127)
    a[1] = -128
    w = np.full((9, 3), -128)
    w[:, 1] = 127
    exact = a @ w
    assert np.abs(exact).max() > (1 << 15)  # the exact sums overflow 16 bits
    layers = [{"kind": "gemm", "name": "sat", "a": a.tolist(), "w": w.tolist(), "shift": 8, "relu": False,
               "shape": "4x9x3"}]
    rep = run_regression(cfg, layers=layers, workdir=tmp_path)
    assert rep.mismatches == 0 and rep.cycle_mismatches == 0
    assert rep.layers[0]["rtl_cycles"] == predict_gemm(cfg, 4, 9, 3).cycles
    data = rep.as_dict()
    assert data["family"] == "mac-array" and data["config"] == cfg.to_dict()
    assert data["passed"] is True and data["vectors"] == 12 and data["workdir"] == str(tmp_path)


def test_checker_flags_wrong_and_missing_beats():
    """The in-order checker counts each wrong lane, ignores padding lanes, and rejects a short stream."""
    from hwsim.cosim.mac_array_tb import check_outputs
    from hwsim.models import mac_array as ref

    from hwsim.mac_array import pack_lanes

    cfg = MacArrayConfig(rows=2, cols=4, dataflow="ws", weight_format="int8")
    rng = np.random.default_rng(0)
    expect = rng.integers(-128, 128, size=(3, 3))  # N = 3 of 4 lanes: lane 3 is padding
    codes = np.zeros((3, 4), dtype=np.uint64)
    codes[:, :3] = ref.encode_acts(expect, 8)
    beats = pack_lanes(codes, 8)
    assert check_outputs(cfg, beats, expect)[0] == 0
    padded = [b | (0xAB << 24) for b in beats]  # garbage in the padding lane only
    assert check_outputs(cfg, padded, expect)[0] == 0
    wrong = list(beats)
    wrong[1] ^= (1 << 3) | (1 << 17)  # lanes 0 and 2 of row 1
    assert check_outputs(cfg, wrong, expect)[0] == 2
    swapped = [beats[1], beats[0], beats[2]]  # out of order
    assert check_outputs(cfg, swapped, expect)[0] == 2 * int(np.count_nonzero(expect[0] != expect[1]))
    assert check_outputs(cfg, beats[:2], expect) == (9, None)


def test_waves_written(tmp_path):
    """``waves=True`` builds with FST tracing and the run leaves a waveform in its work directory."""
    cfg = MacArrayConfig(rows=2, cols=2, dataflow="ws", weight_format="int4")
    a = np.arange(12).reshape(4, 3) % 7 - 3
    w = np.arange(6).reshape(3, 2) % 5 - 2
    layers = [{"kind": "gemm", "name": "g", "a": a.tolist(), "w": w.tolist(), "shift": 1, "relu": False}]
    rep = run_regression(cfg, layers=layers, waves=True, workdir=tmp_path)
    assert rep.passed
    wave = pywellen.Waveform(str(tmp_path / "dump.fst"))
    assert wave.file_format == "FST"
    names = {v.full_name for v in wave.all_vars()}
    # The DUT's internals are traced although only the harness ports are public to VPI.
    assert {"mac_array_tb.done", "mac_array_tb.dut.loader_state", "mac_array_tb.dut.acc.[0]"} <= names


def test_build_cache_keyed_by_config():
    """Configs with the same top name but different RTL get different cache entries; the same config
    reuses its build (both configs are built by the regressions above, so this adds no build)."""
    cfg, other = _cfg("int8", "ws"), SAT_CFG
    assert cfg.top_name == other.top_name and cfg != other
    first = build_mac_array(cfg)
    again = build(cfg, mac_array_harness())
    second = build_mac_array(other)
    assert again.cached is True and again.path == first.path and (again.path / "build.ok").is_file()
    assert second.path != first.path
    for b in (first, second):
        assert b.path.parent == cache_dir() / "verilator" and b.path.name.startswith(cfg.top_name + "-")
    assert (again.toplevel, again.test_module, again.assertion_files) == (HARNESS_TOP, TEST_MODULE, "mac_array_tb.py")
    assert again.meta["top"] == cfg.top_name and again.meta["config"] == cfg.to_dict()


def test_run_job_uses_the_given_test_module(tmp_path):
    """The cocotb module is a parameter: a module that does not exist fails with a one-line error."""
    b = build_mac_array(SAT_CFG)
    job = {"config": SAT_CFG.to_dict(), "layers": []}
    with pytest.raises(HwsimError, match=r"hwsim\.cosim\.no_such_tb did not finish on mac_array_tb, see .*sim\.log$") as e:
        run_job(b, job, workdir=tmp_path, test_module="hwsim.cosim.no_such_tb")
    assert "\n" not in str(e.value)
    assert "no_such_tb" in (tmp_path / "sim.log").read_text()


def test_free_run_matches_stepped_clock(tmp_path):
    """hwsim's Verilator main: a GEMM free running until done gives the same outputs, counters and done
    time as the same GEMM with every edge through cocotb's callbacks; a Timer pending during a free run
    fires at its exact time (3 ns past an edge, mid-GEMM) with the same state as in a stepped run; the
    clock period stays 10 ns; a cycle limit shorter than the GEMM fails at the limit (tests/free_run_tb.py)."""
    b = build_mac_array(SAT_CFG)
    rng = np.random.default_rng(11)
    a, w = rng.integers(-128, 128, size=(37, 5)), rng.integers(-128, 128, size=(5, 3))
    pred = predict_gemm(SAT_CFG, 37, 5, 3).cycles
    timer_ns = 10 * (pred // 2) + 3
    job = {"config": SAT_CFG.to_dict(), "timer_ns": timer_ns, "limit_cycles": 17,
           "layers": [{"kind": "gemm", "name": "g", "a": a, "w": w, "shift": 4, "relu": False}]}
    res = run_job(b, job, workdir=tmp_path, test_module="free_run_tb", assertion_files="free_run_tb.py")
    free, stepped, free_t, stepped_t = (res[k] for k in ("free", "stepped", "free_timer", "stepped_timer"))
    assert free["counters"]["cycles"] == pred
    for run in (stepped, free_t, stepped_t):
        assert run["counters"] == free["counters"] and run["outputs"] == free["outputs"]
        assert run["done"] - run["start"] == free["done"] - free["start"]
    assert {r["period_ps"] for r in (free, stepped, free_t, stepped_t)} == {10_000}
    assert free_t["timer"] - free_t["start"] == timer_ns * 1000 == stepped_t["timer"] - stepped_t["start"]
    assert free_t["busy_at_timer"] == 1 and 0 < free_t["cycles_at_timer"] < pred
    assert free_t["cycles_at_timer"] == stepped_t["cycles_at_timer"]
    # A done that has not risen within the testbench's cycle limit is an error at the limit, not a hang.
    limit = res["limit"]
    assert limit["error"] == "done did not rise within 17 cycles of start" and limit["error_after_ps"] == 170_000
    assert limit["cycles"] == pred


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(HwsimError, match=r"^cfg=str is not allowed: expected a MacArrayConfig"):
        run_regression("mac-array-8x8-ws")
    with pytest.raises(HwsimError, match=r"^harness top='1tb' is not allowed: expected a Verilog module name$"):
        Harness("1tb", str, TEST_MODULE)
    with pytest.raises(HwsimError, match=r"^mem_depth=0 is not allowed: expected an integer in \[2, 16777216\]$"):
        mac_array_harness(0)


def test_runner_serves_any_family(tmp_path):
    """The test-only accum family through the same build cache and runner (its own harness and cocotb
    module, tests/accum_cosim_tb.py): bit-exact and cycle-exact, reported as a RegressionReport."""
    from accum_cosim_tb import ACCUM_HARNESS
    from accum_family import FAMILY_RECORD, AccumConfig

    register(FAMILY_RECORD)
    try:
        cfg = AccumConfig(in_bits=4, acc_bits=6, overflow="saturate")
        rng = np.random.default_rng(3)
        layers = [
            {"kind": "accumulate", "name": "rand", "x": rng.integers(-8, 8, size=23), "shape": "23"},
            {"kind": "accumulate", "name": "high", "x": np.full(12, 7), "shape": "12"},  # saturates at 31
            {"kind": "accumulate", "name": "low", "x": np.full(9, -8), "shape": "9"},  # saturates at -32
        ]
        rep = cosimulate(cfg, ACCUM_HARNESS, layers, workdir=tmp_path)
        assert [r["name"] for r in rep.layers] == ["rand", "high", "low"]
        assert [r["vectors"] for r in rep.layers] == [23, 12, 9]
        assert [r["rtl_cycles"] for r in rep.layers] == [24, 13, 10]
        assert rep.passed and rep.mismatches == 0 and rep.cycle_mismatches == 0
        assert rep.as_dict()["family"] == "accum" and rep.as_dict()["config"] == cfg.to_dict()
        again = build(cfg, ACCUM_HARNESS)
        assert again.cached and again.path.name.startswith("accum_4_6_saturate-")
        assert (again.toplevel, again.test_module, again.assertion_files) == ("accum_tb", "accum_cosim_tb", "accum_cosim_tb.py")
        # The checker can fail: told the (saturating) RTL wraps, it flags the outputs past the range.
        lied = run_job(again, {"config": cfg.replace(overflow="wrap").to_dict(), "layers": layers[1:2]},
                       workdir=tmp_path / "lied")
        assert lied["layers"][0]["mismatches"] == 8  # 7, 14, 21, 28 fit in 6 bits; the next 8 sums do not
    finally:
        unregister(FAMILY_RECORD.name)


def test_unusable_cache_is_one_line(tmp_path, monkeypatch, capsys):
    """A build cache that cannot be created (HWSIM_CACHE under a file): one line naming it, exit status 2."""
    from hwsim import cli

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(HwsimError, match=r"^HWSIM_CACHE='.*/file/cache' is not allowed: cannot create the build "
                                         r"directory .*/file/cache/verilator \(Not a directory\)"):
        build(MacArrayConfig(rows=2, cols=2), mac_array_harness())
    assert cli.main(["cosim", "mac-array", "--rows", "2", "--cols", "2", "--layers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hwsim: error: HWSIM_CACHE=")


def test_unusable_run_dir_is_one_line(tmp_path, capsys):
    """--run-dir under a file: one line naming it, exit status 2, for random layers and a whole model."""
    from hwsim import cli

    (tmp_path / "file").write_text("")
    bad = str(tmp_path / "file" / "run")
    for argv in (["cosim", "mac-array", "--rows", "2", "--cols", "2", "--layers", "1", "--run-dir", bad],
                 ["cosim", "mac-array", "--model", "digits-cnn", "--images", "2", "--run-dir", bad]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"hwsim: error: --run-dir={bad!r} is not allowed: cannot create or write it (Not a " \
                      "directory); expected a writable directory"


def test_build_failure_names_step_and_log(tmp_path, monkeypatch):
    """A harness Verilator rejects: one-line error with the failing step, its first error and build.log."""
    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path))
    broken = Harness("broken_tb", lambda meta: f"module broken_tb(;\n  {meta['top']} dut();\nendmodule\n", TEST_MODULE)
    with pytest.raises(HwsimError) as e:
        build(MacArrayConfig(rows=2, cols=2), broken)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("cosim build of mac_array_ws_int8_2x2 in harness broken_tb failed in Verilator: %Error")
    log = tmp_path / msg.rpartition("(log: ")[2].rstrip(")")
    assert log.name == "build.log" and log.parent.name.endswith(".failed") and "%Error" in log.read_text()
    assert not list((tmp_path / "verilator").glob("*/build.ok"))


def test_report_totals():
    cfg = MacArrayConfig(rows=2, cols=2)
    row = {"name": "g", "kind": "gemm", "shape": "1x1x1", "vectors": 4, "mismatches": 0, "rtl_cycles": 9,
           "predicted_cycles": 9}
    ok = RegressionReport(cfg, [row, {**row, "vectors": 3}])
    assert (ok.vectors, ok.mismatches, ok.cycle_mismatches, ok.passed, ok.family) == (7, 0, 0, True, "mac-array")
    bad = RegressionReport(cfg, [row, {**row, "mismatches": 2, "rtl_cycles": 10}])
    assert (bad.mismatches, bad.cycle_mismatches, bad.passed) == (2, 1, False)
    assert RegressionReport(cfg).passed is False  # no layers run is not a pass


def test_forced_build_failure_is_one_line_with_log(tmp_path, monkeypatch, capsys):
    """A Verilator flag it rejects: one line naming the step and build.log, no traceback, no cache entry;
    through the CLI, exit status 2."""
    import dataclasses

    from hwsim import cli

    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path))
    broken = dataclasses.replace(mac_array_harness(), build_args=("--no-such-verilator-flag",))
    with pytest.raises(HwsimError) as e:
        build(MacArrayConfig(rows=2, cols=2), broken)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("cosim build of mac_array_ws_int8_2x2 in harness mac_array_tb failed in "
                                              "Verilator: %Error")
    log = tmp_path / msg.rpartition("(log: ")[2].rstrip(")")
    assert log.is_file() and "no-such-verilator-flag" in log.read_text()
    entries = list((tmp_path / "verilator").iterdir())
    assert [p.name.endswith(".failed") for p in entries] == [True]  # only the log holder, no half-built entry
    monkeypatch.setattr("hwsim.cosim.harness.BUILD_ARGS", ("--no-such-verilator-flag",))
    assert cli.main(["cosim", "mac-array", "--rows", "2", "--cols", "2", "--layers", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hwsim: error: cosim build of") and "build.log" in err


def test_measured_actions_convert_units():
    """Access counts become words and bytes as the cost model counts them (hand-computed)."""
    from hwsim.cosim.mac_array_tb import count_diffs, measured_actions

    cfg = MacArrayConfig(rows=3, cols=2, sram_word_bits=16)
    counters = {"cycles": 50, "stall_cycles": 4, "n_weights": 5, "n_acts": 7, "n_out": 3, "requant_ops": 6,
                "pe_macs": 40, "pe_hops": 21, "pe_weight_loads": 10, "input_sram_reads": 7,
                "input_sram_writes": 7, "weight_sram_reads": 5, "weight_sram_writes": 5,
                "output_sram_reads": 2, "output_sram_writes": 3, "pe_idle_macs": 14, "pe_idle_regs": 9,
                "output_sram_write_words": 5, "output_sram_write_lanes": 5, "out_lanes": 5,
                "output_sram_read_words": 8, "output_sram_read_lanes": 3}
    widths = {"wbeat": 16, "abeat": 24, "obeat": 16, "osram": 64}
    got = measured_actions(cfg, counters, widths)
    # output-buffer reads: the harness's word count; bytes from its lanes (3 lanes of 32 bits)
    assert (got.input_sram_reads, got.weight_sram_reads, got.output_sram_reads) == (7 * 2, 5 * 1, 8)
    assert got.output_sram_read_bytes == 12
    # output-buffer writes: the harness's word count; bytes from its lanes (5 lanes of 64 / 2 = 32 bits)
    assert (got.input_sram_read_bytes, got.output_sram_writes, got.output_sram_write_bytes) == (21, 5, 20)
    # output beats: 5 valid lanes of 16 / 2 = 8 bits
    assert (got.dram_read_beats, got.dram_read_bytes, got.dram_write_bytes) == (12, (5 * 16 + 7 * 24) // 8, 5)
    assert (got.pe_idle_macs, got.pe_idle_regs) == (14, 9)
    assert (got.pe_reg_writes, got.requant_ops) == (21, 6)
    assert count_diffs(got, got, 4, 4) == {}
    assert count_diffs(got, dataclasses_replace(got, pe_macs=41), 4, 5) == {"pe_macs": [40, 41],
                                                                            "stall_cycles": [4, 5]}


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


# ---------------------------------------------------------------------------------------------- float32 lanes
#: The float32-requantizer top of the corner regression, the same build as the ONNX model co-simulation's
#: in tests/test_cosim_model.py (``--rows 4 --cols 4 --requantizer f32``).
F32_CFG = MacArrayConfig(rows=4, cols=4, requantizer="f32")


def _direct_f32_conv(layer: dict) -> tuple[np.ndarray, list[int]]:
    """A float-scale regression layer computed independently of the reference and the RTL's algorithm: a
    direct convolution over the input padded with its zero point, ``sum (x - zx) * w + bias`` in Python
    integers, then NumPy's IEEE float32 ``f32(f32(acc) * scale)``, ``rint`` and the zero point, clamped.
    Returns the outputs (rows (oy, ox), columns = channels) and every exact accumulator."""
    case, spec = layer["f32_case"], layer["requant"]
    x, w, zx, s = np.array(case["x"]), np.array(case["w"]), case["in_zp"], case["stride"]
    scale = np.array(spec["scale_bits"], dtype=np.uint32).view(np.float32)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=zx)
    cout, cin = w.shape[:2]
    oh = (xp.shape[1] - 3) // s + 1
    out, accs = np.empty((oh * oh, cout), dtype=np.int64), []
    for o in range(cout):
        for y in range(oh):
            for xx in range(oh):
                acc = int(case["bias"][o]) + sum((int(xp[c, y * s + i, xx * s + j]) - zx) * int(w[o, c, i, j])
                                                 for c in range(cin) for i in range(3) for j in range(3))
                accs.append(acc)
                f = np.float32(np.float32(acc) * scale[o])
                r = int(np.rint(float(f))) + spec["zero_point"]
                out[y * oh + xx, o] = min(max(r, spec["lo"]), spec["hi"])
    return out, accs


def _check_f32_regression(cfg: MacArrayConfig, tmp_path, count: int) -> list[dict]:
    layers = random_layers(cfg, seed=22, count=count)
    job = {"family": "mac-array", "config": cfg.to_dict(), "layers": layers, "save_outputs": True}
    result = run_job(build_mac_array(cfg), job, workdir=tmp_path)
    rows = result["layers"]
    for row in rows:
        assert row["mismatches"] == 0 and row["rtl_cycles"] == row["predicted_cycles"], row
        assert row["count_diffs"] == {} and row["actions"] == row["predicted_actions"], row
    with np.load(tmp_path / "outputs.npz") as saved:
        outs = {int(k): saved[k] for k in saved.files}
    f32 = [i for i, la in enumerate(layers) if "requant" in la]
    assert f32 == list(range(1, count, 2))
    for i in f32:
        want, _ = _direct_f32_conv(layers[i])
        np.testing.assert_array_equal(outs[i], want, err_msg=layers[i]["shape"])
        a = rows[i]["actions"]
        assert a["requant_f32_ops"] > 0 and a["requant_ops"] == 0
        assert a["zp_correct_ops"] == (a["requant_f32_ops"] if layers[i]["zp_correction"] else 0)
    assert all(rows[i]["actions"]["requant_ops"] > 0 and rows[i]["actions"]["requant_f32_ops"] == 0
               for i in range(0, count, 2))
    return [layers[i] for i in f32]


def test_f32_requantizer_corners_in_rtl(tmp_path):
    """ONNX Runtime's requantizer on the float32 lanes of the MAC array top, interleaved with power-of-two
    layers on the same build: zero points at the type's ends (-128, 127, 0; uint8 0 and 255 shifted), padding
    with a non-zero zero point, per-channel scales 2**-20..2**4, accumulators beyond 2**24, saturation at
    both ends; values against a direct convolution in float32, cycles and every count against the model."""
    layers = _check_f32_regression(F32_CFG, tmp_path, count=10)
    labels = [la["shape"].split(" zp ")[1].split(" pad")[0].split("->") for la in layers]
    assert {lab[0] for lab in labels} == {"s8 -128", "s8 127", "s8 0", "u8 0", "u8 255"}
    assert {la["f32_case"]["in_zp"] for la in layers} == {-128, 127, 0}
    # padding with the zero point: every layer's border rows hold it, and it is non-zero in four of five
    assert sum(la["f32_case"]["in_zp"] != 0 for la in layers) == 4
    scales = np.concatenate([np.array(la["requant"]["scale_bits"], dtype=np.uint32).view(np.float32)
                             for la in layers])
    assert scales.min() == np.float32(2.0 ** -20) and scales.max() == np.float32(16.0)
    unclipped, big = [], 0
    for la in layers:
        _, accs = _direct_f32_conv(la)
        sc = np.array(la["requant"]["scale_bits"], dtype=np.uint32).view(np.float32)
        cout = len(sc)
        acc = np.array(accs).reshape(cout, -1)
        big += int(np.count_nonzero(np.abs(acc) > 1 << 24))
        f = (acc.astype(np.float32) * sc[:, None]).astype(np.float64)
        unclipped.append((np.rint(f) + la["requant"]["zero_point"]).ravel())
    r = np.concatenate(unclipped)
    assert big > 0 and r.min() < -128 and r.max() > 127  # float32 rounds the accumulator; both ends saturate


@pytest.mark.slow
@pytest.mark.parametrize("dataflow", ["os", "is"])
def test_f32_requantizer_corners_other_dataflows(dataflow, tmp_path):
    """The same corners on OS (accumulators drained from the array) and IS (one output channel per beat:
    lane 0's scale and bias for every lane)."""
    _check_f32_regression(MacArrayConfig(rows=3, cols=2, dataflow=dataflow, requantizer="f32"), tmp_path, count=6)


def _gemm_layer(rng, m: int, k: int, n: int, name: str) -> dict:
    a = rng.integers(-128, 128, size=(m, k))
    w = rng.integers(-128, 128, size=(k, n))
    return {"kind": "gemm", "name": name, "a": a.tolist(), "w": w.tolist(), "shift": 6, "relu": False,
            "shape": f"{m}x{k}x{n}"}


#: Shapes that fill a fraction of a 4x8 array: 3 output channels on 8 columns, one row of 5, primes.
GATING_SHAPES = ((5, 4, 3), (1, 5, 3), (7, 9, 11), (3, 1, 1))


#: (gating, dataflow): each gating choice and each dataflow once in the default suite (the CASES above run
#: the default gating, clock, on every format); the other six pairs are marked slow.
_GATING_FAST = {("none", "ws"), ("operand", "os"), ("clock", "is")}


@pytest.mark.parametrize(("gating", "dataflow"), [
    pytest.param(g, d, marks=() if (g, d) in _GATING_FAST else pytest.mark.slow)
    for g in ("none", "operand", "clock") for d in ("ws", "os", "is")])
def test_idle_lanes_counted_apart_in_rtl(gating, dataflow, tmp_path):
    """Every gating choice on every dataflow: values bit-exact, cycles equal, and the RTL's counters of real
    MACs, idle slots, gated pipeline updates, output-buffer words, input/weight-buffer words and lanes and
    requantized lanes equal the model's and a hand count: real MACs = m*k*n; every vector (OS: reduction
    step) passes all R x C PEs. 16-bit SRAM words, so an int8 beat of 8 lanes spans 4 word memories and a
    beat of 4 lanes 2: with gating an access enables only the words of its real lanes."""
    R, C = 4, 8
    cfg = MacArrayConfig(rows=R, cols=C, dataflow=dataflow, gating=gating, sram_word_bits=16)
    rng = np.random.default_rng(27)
    layers = [_gemm_layer(rng, m, k, n, f"g{i}") for i, (m, k, n) in enumerate(GATING_SHAPES)]
    rep = run_regression(cfg, layers=layers, workdir=tmp_path)
    _, k_step = cfg.fold_steps
    for row, (m, k, n) in zip(rep.layers, GATING_SHAPES, strict=True):
        assert row["mismatches"] == 0 and row["count_diffs"] == {}, row
        assert row["rtl_cycles"] == row["predicted_cycles"], row
        a = row["actions"]
        M_, N_ = (n, m) if dataflow == "is" else (m, n)
        n_tiles, k_folds = -(-N_ // C), -(-k // k_step)
        passes = n_tiles * k_folds * M_ if dataflow != "os" else -(-M_ // R) * n_tiles * k  # vectors / steps
        assert a["pe_macs"] == m * k * n
        assert a["pe_idle_macs"] == passes * R * C - m * k * n
        lanes = N_ if gating != "none" else n_tiles * C  # output lanes per output row
        assert a["requant_ops"] == M_ * lanes
        if dataflow == "os":
            assert a["pe_idle_regs"] == (passes * R * C - m * k * n if gating == "clock" else 0)
        else:
            assert a["pe_idle_regs"] == (k_folds * M_ * (n_tiles * C - N_) * R if gating == "clock" else 0)
        # Input and weight buffers (int8 lanes, 2 per 16-bit word): every beat written once and read once.
        # Stationary beats (WS/OS weights, IS activations) carry C lanes, the n-tile's real columns real;
        # streamed beats (WS activations, IS weights) R lanes, the fold's reduction steps real; OS activations
        # R lanes, the m-tile's rows real. Gated: ceil(real / 2) words and real bytes; none: whole beats.
        def beat(real, lanes):
            return (-(-real // 2), real) if gating != "none" else (lanes // 2, lanes)
        n_real = [min(C, N_ - n0) for n0 in range(0, N_, C)]
        if dataflow == "os":
            m_real = [min(R, M_ - m0) for m0 in range(0, M_, R)]
            stat = [(k * len(m_real), beat(r, C)) for r in n_real]
            strm = [(k * n_tiles, beat(r, R)) for r in m_real]
        else:
            m_tiles = -(-M_ // cfg.fold_steps[0])
            k_real = [min(k_step, k - k0) for k0 in range(0, k, k_step)]
            stat = [(m_tiles * kr, beat(r, C)) for r in n_real for kr in k_real]
            strm = [(n_tiles * M_, beat(kr, R)) for kr in k_real]
        words = [sum(n * wb[0] for n, wb in part) for part in (stat, strm)]
        nbytes = [sum(n * wb[1] for n, wb in part) for part in (stat, strm)]
        (in_w, in_b), (wt_w, wt_b) = (((words[0], nbytes[0]), (words[1], nbytes[1])) if dataflow == "is"
                                      else ((words[1], nbytes[1]), (words[0], nbytes[0])))
        for op in ("read", "write"):
            assert (a[f"input_sram_{op}s"], a[f"input_sram_{op}_bytes"]) == (in_w, in_b), (op, row)
            assert (a[f"weight_sram_{op}s"], a[f"weight_sram_{op}_bytes"]) == (wt_w, wt_b), (op, row)
    a0 = rep.layers[0]["actions"]
    if dataflow == "ws":  # 5x4x3: five output-buffer writes of 3 (gated) or 8 lanes of 32 bits, 16-bit words,
        # and five drain reads (one k-fold: no partial-sum reads) of the same lanes
        words, lanes = (6, 3) if gating != "none" else (16, 8)
        assert (a0["output_sram_writes"], a0["output_sram_write_bytes"]) == (5 * words, 5 * lanes * 4)
        assert (a0["output_sram_reads"], a0["output_sram_read_bytes"]) == (5 * words, 5 * lanes * 4)
        # four weight beats of 3 real columns: 2 words of 4 (gated); five activation beats of 4 real steps
        assert a0["weight_sram_writes"] == 4 * (2 if gating != "none" else 4)
        assert a0["input_sram_writes"] == 5 * 2
