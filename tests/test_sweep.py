"""hwsim sweep: spec validation, counts-only vs value path, Pareto front, resuming, executors (local, Dask)."""

from __future__ import annotations

import itertools
import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from hwsim.cli import main
from hwsim.config import MacArrayConfig
from hwsim.cost import CostModel
from hwsim.errors import HwsimError
from hwsim.mac_array import predict_gemm, predict_gemm_folds, simulate_gemm
from hwsim.sweep import load_spec, pareto_mask, parse_spec, read_table, run_sweep
from hwsim.workloads import load_scalesim_topology

REPO = Path(__file__).resolve().parents[1]
RESNET = REPO / "examples" / "scalesim" / "Resnet18.csv"


def _layers_spec(**over) -> dict:
    spec = {
        "family": "mac-array",
        "workload": {"layers": [{"name": "fc", "m": 33, "k": 70, "n": 20},
                                {"name": "conv", "in_h": 9, "in_w": 9, "in_c": 6, "out_c": 12, "kh": 3, "kw": 3,
                                 "padding": 1, "groups": 2},
                                {"name": "fc2", "m": 33, "k": 70, "n": 20}]},
        "axes": {"rows": [2, 4, 8], "cols": [3, 8], "dataflow": ["ws", "os", "is"],
                 "dram_bytes_per_cycle": [1, 16]},
        "base": {"global_buffer_bytes": 0},  # the unit streaming from DRAM: predict_gemm's own traffic
        "plots": False,
    }
    spec.update(over)
    return spec


# ---------------------------------------------------------------------------------------------- fast path
def test_closed_form_predict_gemm_equals_the_per_fold_model():
    rng = random.Random(7)
    checked = 0
    while checked < 300:
        try:
            cfg = MacArrayConfig(
                rows=rng.choice([1, 2, 3, 4, 8, 16]), cols=rng.choice([1, 2, 3, 5, 8, 16]),
                dataflow=rng.choice(["ws", "os", "is"]),
                weight_format=rng.choice(["int8", "int4", "int2", "ternary", "pow2", "binary"]),
                input_sram_bytes=rng.choice([64, 512, 2048, 65536]), weight_sram_bytes=rng.choice([64, 512, 65536]),
                output_sram_bytes=rng.choice([128, 512, 65536]),
                dram_bytes_per_cycle=rng.choice([0.25, 0.5, 1, 3, 16, 64]), sram_word_bits=rng.choice([8, 64, 128]))
            m, k, n = rng.randint(1, 200), rng.randint(1, 150), rng.randint(1, 40)
            want = predict_gemm_folds(cfg, m, k, n, name="g")
        except HwsimError:
            continue
        assert predict_gemm(cfg, m, k, n, name="g") == want, (cfg, m, k, n)
        checked += 1
    # ... grouped GEMMs, and the value path's statistics (simulate_gemm) on small GEMMs with real operands.
    npr = np.random.default_rng(0)
    for df, (m, k, n) in itertools.product(["ws", "os", "is"], [(5, 7, 3), (40, 19, 11)]):
        cfg = MacArrayConfig(rows=4, cols=3, dataflow=df, dram_bytes_per_cycle=2)
        assert predict_gemm(cfg, m, k, n, groups=3) == predict_gemm_folds(cfg, m, k, n, groups=3)
        _, st = simulate_gemm(cfg, npr.integers(-9, 9, (m, k)), npr.integers(-9, 9, (k, n)))
        assert predict_gemm_folds(cfg, m, k, n) == st


# ---------------------------------------------------------------------------------------------- metrics
def _independent_row(cfg, layers):
    """cycles / energy / area of one topology point, from predict_gemm and the cost model directly."""
    cost = CostModel()
    cycles, energy = 0, 0.0
    macs = 0
    for la in layers:
        st = predict_gemm(cfg, *la.gemm_shape, groups=la.groups)
        cycles += st.cycles
        macs += st.macs
        energy += cost.energy(cfg, st.actions, st.cycles).total_pj
    return cycles, energy, cost.area(cfg).total_mm2, macs


def test_layers_sweep_matches_predict_gemm(tmp_path):
    spec = parse_spec(_layers_spec())
    res = run_sweep(spec, tmp_path / "out", workers=1, progress=False)
    assert len(res.rows) == 3 * 2 * 3 * 2 and not res.failed
    layers = spec.workload["layers"]
    for r in res.rows:
        cfg = MacArrayConfig(rows=r["rows"], cols=r["cols"], dataflow=r["dataflow"],
                             dram_bytes_per_cycle=r["dram_bytes_per_cycle"], global_buffer_bytes=0)
        cycles, energy, area, macs = _independent_row(cfg, layers)
        assert r["cycles"] == cycles
        assert r["macs"] == macs
        assert r["energy_pj"] == pytest.approx(energy, rel=1e-12)
        assert r["area_mm2"] == pytest.approx(area, rel=1e-12)
        assert r["utilization"] == pytest.approx(macs / (cfg.rows * cfg.cols * cycles))
        assert r["latency_us"] == pytest.approx(cycles / cfg.clock_mhz)
        parts = sum(v for k, v in r.items() if k.startswith("energy_") and k.endswith("_pj") and k != "energy_pj")
        assert parts == pytest.approx(r["energy_pj"], rel=1e-12)
    # The CSV on disk holds the same rows, every parameter and metric column.
    disk = read_table(tmp_path / "out" / "sweep.csv")
    assert [d["cycles"] for d in disk] == [r["cycles"] for r in res.rows]
    assert {"rows", "cols", "dataflow", "acc_bits", "sram_banks", "cycles", "latency_us", "throughput_inf_s",
            "energy_pj", "energy_dram_pj", "area_mm2", "utilization", "pareto", "feasible"} <= set(disk[0])


def test_resnet_topology_points(tmp_path):
    spec = parse_spec({"family": "mac-array", "workload": {"topology": str(RESNET), "exclude": ["FC"]},
                       "axes": {"rows": [16, 32], "dataflow": ["ws", "os", "is"]}, "plots": False})
    layers = [la for la in load_scalesim_topology(RESNET) if la.name != "FC"]
    assert len(spec.workload["layers"]) == len(layers) == 20
    res = run_sweep(spec, tmp_path / "o", workers=1, progress=False)
    for r in res.rows:
        cfg = MacArrayConfig(rows=r["rows"], dataflow=r["dataflow"])
        assert r["cycles"] == sum(predict_gemm(cfg, *la.gemm_shape, groups=la.groups).cycles for la in layers)


def test_counts_only_equals_value_path(tmp_path):
    """Counts-only and value sweeps give the same cycles and energy; the value sweep's accuracy is what
    ``simulate`` reports for the same point."""
    from hwsim.simulate import simulate

    base = {"family": "mac-array", "workload": {"model": "digits-cnn"},
            "axes": {"rows": [4, 8], "compress": ["int4", "svd-r8+int8"]}, "base": {"dataflow": "os"},
            "plots": False}
    counts = run_sweep(parse_spec(base), tmp_path / "c", workers=1, progress=False)
    values = run_sweep(parse_spec({**base, "values": True}), tmp_path / "v", workers=1, progress=False)
    assert len(counts.ok) == len(values.ok) == 4
    for c, v in zip(counts.rows, values.rows, strict=True):
        for key in ("cycles", "stall_cycles", "energy_pj", "area_mm2", "dram_bytes"):
            assert c[key] == v[key], key
        assert v["bit_exact"] is True
    r = values.rows[-1]
    rep = simulate("digits-cnn", MacArrayConfig(rows=r["rows"], dataflow="os"), r["compress"], progress=False)
    assert (r["cycles"], r["accuracy"], r["accuracy_reference"]) == \
        (rep.cycles, rep.accuracy_simulated, rep.accuracy_reference)
    assert r["energy_pj"] == pytest.approx(rep.energy_pj, rel=1e-9)


# ---------------------------------------------------------------------------------------------- pareto
def _brute_front(v, dirs):
    s = np.array([-1.0 if d == "max" else 1.0 for d in dirs])
    w = np.asarray(v, dtype=float) * s
    out = []
    for i in range(len(w)):
        dominated = any(np.all(w[j] <= w[i]) and np.any(w[j] < w[i]) for j in range(len(w)) if j != i)
        out.append(not dominated and not np.isnan(w[i]).any())
    return np.array(out)


@pytest.mark.parametrize("seed", range(6))
def test_pareto_mask_vs_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(1, 120)), int(rng.integers(1, 4))
    v = rng.integers(0, 6, size=(n, d)).astype(float)  # many ties and duplicates
    if seed % 2:
        v[rng.integers(0, n)] = np.nan
    dirs = [rng.choice(["min", "max"]) for _ in range(d)]
    assert (pareto_mask(v, dirs) == _brute_front(v, dirs)).all()


def test_front_and_constraints_in_table(tmp_path):
    spec = parse_spec(_layers_spec(constraints=["area_mm2 <= 0.1", {"cycles": {"max": 40000}}],
                                   base={"input_sram_bytes": 4096, "weight_sram_bytes": 4096,
                                         "output_sram_bytes": 4096, "global_buffer_bytes": 0},
                                   objectives={"latency_us": "min", "energy_pj": "min", "utilization": "max"}))
    res = run_sweep(spec, tmp_path / "o", workers=1, progress=False)
    feas = [r for r in res.rows if r["feasible"]]
    assert 0 < len(feas) < len(res.rows)
    for r in res.rows:
        assert r["feasible"] == (r["area_mm2"] <= 0.1 and r["cycles"] <= 40000)
    want = _brute_front([[r["latency_us"], r["energy_pj"], r["utilization"]] for r in feas], ["min", "min", "max"])
    assert [r["pareto"] for r in feas] == want.tolist()
    assert not any(r["pareto"] for r in res.rows if not r["feasible"])


# ---------------------------------------------------------------------------------------------- malformed specs
@pytest.mark.parametrize(("change", "pattern"), [
    ({"axes": {"rowz": [4]}}, r"^hwsim: error: spec key axes\.rowz=\[4\] is not allowed: expected compress or a "
                              r"mac-array config field \(rows, cols, "),
    ({"axes": {"rows": []}}, r"^hwsim: error: spec key axes\.rows=\[\] is not allowed: expected a non-empty list"),
    ({"axes": {"rows": [4, 0]}}, r"^hwsim: error: spec key axes\.rows value 0 is rejected on every point: rows=0 "
                                 r"is not allowed: expected an integer in \[1, 1024\]$"),
    ({"axes": {"rows": [4], "dataflow": ["ws", "xs"]}}, r"^hwsim: error: spec key axes\.dataflow value 'xs' is "
                                                        r"rejected on every point: dataflow='xs'"),
    ({"constraints": ["aera_mm2 <= 1"]}, r"^hwsim: error: spec key constraints\[0\]='aera_mm2' is not allowed: "
                                         r"expected a metric: .*area_mm2"),
    ({"constraints": ["accuracy >= 0.9"]}, r"^hwsim: error: spec key constraints\[0\]='accuracy' is not allowed: "
                                           r"accuracy metrics need 'values: true'"),
    ({"constraints": ["area_mm2 < lots"]}, r"^hwsim: error: spec key constraints\[0\]='area_mm2 < lots' is not "
                                           r"allowed: bound 'lots' is not a number$"),
    ({"objectives": {"latency": "min"}}, r"^hwsim: error: spec key objectives\.latency='latency' is not allowed"),
    ({"objectives": {"latency_us": "fast"}}, r"^hwsim: error: spec key objectives\.latency_us='fast' is not allowed: "
                                             r"expected min or max$"),
    ({"axess": {}}, r"^hwsim: error: spec key axess=\{\} is not allowed: expected one of name, family, workload"),
    ({"family": "gpu"}, r"^hwsim: error: spec key family='gpu' is not allowed: expected one of mac-array"),
    ({"axes": {"compress": ["int8"]}}, r"^hwsim: error: spec key axes\.compress=None is not allowed: compression "
                                       r"applies to model workloads only"),
    ({"workload": {"model": "digits-cnn"}, "axes": {"compress": ["int9"]}},
     r"^hwsim: error: spec key axes\.compress: compression spec 'int9' is not allowed"),
    ({"workload": {"topology": "nope.csv"}}, r"^hwsim: error: spec key workload\.topology: --topology='nope.csv' is not "
                                             r"allowed: cannot read"),
    ({"values": True}, r"^hwsim: error: spec key values=True is not allowed: accuracy needs a model workload"),
    ({"sample": {"count": 0}}, r"^hwsim: error: spec key sample\.count=0 is not allowed: expected an integer >= 1$"),
])
def test_malformed_spec_one_line_exit_2_before_work(tmp_path, capsys, change, pattern):
    spec = {**_layers_spec(), **change}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    code = main(["sweep", str(path), "-o", str(out), "--workers", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and re.match(pattern, err[0]), err
    assert not out.exists()  # rejected before any work


def test_cli_bad_options(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_layers_spec()))
    for argv, pattern in [
        (["--workers", "0"], r"^hwsim: error: --workers=0 is not allowed: expected an integer >= 1$"),
        (["--workers", "x"], r"^hwsim: error: --workers='x' is not allowed: expected an integer$"),
        (["--scheduler", "127.0.0.1:8786"], r"^hwsim: error: --scheduler='127.0.0.1:8786' is not allowed: "
                                            r"expected tcp://HOST:PORT$"),
    ]:
        code = main(["sweep", str(path), "-o", str(tmp_path / "o"), *argv])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and re.match(pattern, err[0]), err
    code = main(["sweep", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o")])
    assert code == 2 and re.match(r"^hwsim: error: spec='.*missing.yaml' is not allowed: no such file$",
                                  capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------- failures, resume
def test_failing_points_recorded_and_sweep_goes_on(tmp_path):
    spec = {"family": "mac-array", "workload": {"model": "digits-cnn"}, "plots": False,
            "axes": {"weight_format": ["int8", "int4"], "acc_bits": [12, 32]}}
    res = run_sweep(parse_spec(spec), tmp_path / "o", workers=1, progress=False)
    by = {(r["weight_format"], r["acc_bits"]): r for r in res.rows}
    assert by[("int8", 32)]["status"] == "ok"
    # Rejected by the config validator (an int8 x int8 product needs 16 bits): never evaluated.
    assert re.match(r"^acc_bits=12 is not allowed: the accumulator must hold one product", by[("int8", 12)]["error"])
    # Rejected while evaluating: int4 PEs cannot run the model's int8 layers.
    assert re.match(r"^layer 'conv1' \(int8 weights, 8-bit activations\) is not allowed on int4 PEs",
                    by[("int4", 32)]["error"])
    for r in res.failed:
        assert "\n" not in r["error"] and r.get("cycles") is None
    assert len(res.failed) == 3 and len(res.ok) == 1


def test_rerun_computes_nothing_and_table_is_identical(tmp_path):
    spec = _layers_spec()
    first = run_sweep(parse_spec(spec), tmp_path / "o", workers=1, progress=False)
    table = (tmp_path / "o" / "sweep.csv").read_bytes()
    again = run_sweep(parse_spec(spec), tmp_path / "o", workers=1, progress=False)
    assert (first.computed, again.computed, again.cached) == (36, 0, 36)
    assert (tmp_path / "o" / "sweep.csv").read_bytes() == table
    # A changed point (one more axis value) computes only the new points.
    more = run_sweep(parse_spec({**spec, "axes": {**spec["axes"], "rows": [2, 4, 8, 16]}}), tmp_path / "o",
                     workers=1, progress=False)
    assert (more.computed, more.cached) == (12, 36)


def _cache_keys(path: Path) -> list[str]:
    """Keys of the complete records of a cache file (a line cut short by the kill is not a record)."""
    keys = []
    for line in path.read_bytes().splitlines():
        try:
            keys.append(json.loads(line)["key"])
        except ValueError:
            pass
    return keys


def test_killed_sweep_resumes_with_only_missing_points(tmp_path):
    """A CLI sweep killed mid-way, then rerun, computes only the missing points and ends with the same
    table as an uninterrupted run."""
    spec = {"family": "mac-array", "workload": {"model": "digits-cnn"}, "values": True, "plots": False,
            "axes": {"rows": [4, 8, 16], "dataflow": ["ws", "os"], "compress": ["int8", "int4"]}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "hwsim.cli", "sweep", str(path), "-o", str(out), "--workers", "1",
                             "--batch-size", "1", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cache = out / "cache.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not cache.exists() or len(cache.read_bytes().splitlines()) < 3):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    done_before = len(_cache_keys(cache))
    assert 3 <= done_before < 12
    assert not (out / "sweep.csv").exists()  # killed before the table: nothing half-written
    resumed = run_sweep(load_spec(path), out, workers=1, progress=False)
    assert (resumed.cached, resumed.computed) == (done_before, 12 - done_before)
    fresh = run_sweep(load_spec(path), tmp_path / "fresh", workers=2, progress=False)
    assert fresh.computed == 12
    assert (out / "sweep.csv").read_bytes() == (tmp_path / "fresh" / "sweep.csv").read_bytes()
    keys = _cache_keys(cache)
    assert len(keys) == len(set(keys)) == 12


def test_sampling_is_seeded_subset(tmp_path):
    spec = _layers_spec(sample={"count": 10, "seed": 3})
    a, b = parse_spec(spec), parse_spec(spec)
    assert [p.index for p in a.points] == [p.index for p in b.points]
    assert len(a.points) == 10 and len({p.index for p in a.points}) == 10
    full = {p.index: p.params for p in parse_spec(_layers_spec()).points}
    assert all(full[p.index] == p.params for p in a.points)
    assert [p.index for p in parse_spec(_layers_spec(sample={"count": 10, "seed": 4})).points] != \
        [p.index for p in a.points]


# ---------------------------------------------------------------------------------------------- CLI, outputs
def test_example_spec_cli_writes_table_and_plots(tmp_path, capsys):
    """The README's example (shrunk to a few points for the test suite) through the CLI."""
    spec = yaml.safe_load((REPO / "examples" / "mac_array_sweep.yaml").read_text())
    spec["axes"] = {"rows": [4, 8], "weight_format": ["int8", "int4"], "compress": ["int4"]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    code = main(["sweep", str(path), "-o", str(tmp_path / "out"), "--workers", "1", "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"4 points \(4 computed, 0 from the cache\), 4 ok, 0 failed", out)
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"sweep.csv", "sweep.parquet", "summary.json", "cache.jsonl", "pareto.png", "vs_rows.png",
            "vs_weight_format.png", "vs_compress.png"} <= files
    assert json.loads((tmp_path / "s.json").read_text())["ok"] == 4
    import pandas as pd

    df = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert df["cycles"].tolist() == [r["cycles"] for r in read_table(tmp_path / "out" / "sweep.csv")]


# ---------------------------------------------------------------------------------------------- Dask
def _start(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as f:  # the child keeps its own descriptor
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=f, cwd=log.parent)


def test_dask_sweep_survives_a_killed_worker(tmp_path):
    """A real scheduler and two workers on 127.0.0.1; one worker is killed while it holds tasks; every point
    is computed exactly once and the table equals a local run's."""
    pytest.importorskip("distributed")
    from distributed import Client

    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    sched_file = tmp_path / "scheduler.json"
    procs = [_start([*dask, "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                     str(sched_file)], tmp_path / "scheduler.log")]
    try:
        deadline = time.monotonic() + 30
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for name in ("a", "b"):
            procs.append(_start([sys.executable, "-m", "distributed.cli.dask_worker", address, "--name", name,
                                 "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard",
                                 "--local-directory", str(tmp_path / name)], tmp_path / f"worker-{name}.log"))
        spec = {"family": "mac-array", "workload": {"model": "digits-cnn"}, "values": True, "plots": False,
                "axes": {"rows": [4, 8, 16], "cols": [4, 8], "compress": ["int8", "int4"]}}
        with Client(address, timeout="20s") as client:
            client.wait_for_workers(2, timeout=30)
            killed = {}

            def kill_a(done, total):
                if killed:
                    return
                workers = {w["name"]: addr for addr, w in client.scheduler_info()["workers"].items()}
                held = client.processing().get(workers.get("a"), ())
                if held:
                    procs[1].kill()
                    procs[1].wait()
                    killed.update(done=done, held=len(held))

            res = run_sweep(parse_spec(spec), tmp_path / "dask", scheduler=address, batch_size=1, progress=False,
                            on_batch=kill_a)
        assert killed and killed["done"] < 12, killed  # worker a died holding tasks, mid-sweep
        assert res.computed == 12 and len(res.ok) == 12
        keys = _cache_keys(tmp_path / "dask" / "cache.jsonl")
        assert len(keys) == len(set(keys)) == 12  # every point exactly once
        local = run_sweep(parse_spec(spec), tmp_path / "local", workers=1, progress=False)
        assert (tmp_path / "dask" / "sweep.csv").read_bytes() == (tmp_path / "local" / "sweep.csv").read_bytes()
        assert local.computed == 12
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_layers_sweep_with_the_global_buffer_prices_raw_tensors(tmp_path):
    """A 4x8x4 int8 GEMM with the default 64 KiB global buffer: DRAM moves the 32 B of weights, the 32 B
    input and the 16 B output once (80 B x 64 pJ/B on LPDDR4 = 5,120 pJ); each is one 32 B burst in its
    own run (55 ns to open the page + 5 ns), 180 ns = 90 cycles at 500 MHz, more than the array needs, so
    the layer is DRAM-bound at 90 cycles."""
    from hwsim.mac_array import predict_gemm

    spec = parse_spec({"family": "mac-array", "workload": {"layers": [{"name": "g", "m": 4, "k": 8, "n": 4}]},
                       "axes": {"rows": [8]}, "plots": False})
    [r] = run_sweep(spec, tmp_path / "o", workers=1, progress=False).rows
    assert r["energy_dram_pj"] == pytest.approx(80 * 64.0)
    assert predict_gemm(MacArrayConfig(), 4, 8, 4).cycles < 90 == r["cycles"]
