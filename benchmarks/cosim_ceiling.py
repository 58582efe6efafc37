"""Co-simulation throughput of every converted family beside its own Verilator ceiling, measured in the same run.

For each family (``--family``, default all of them):

* **cosim**: RTL cycles per wall second of the family's cocotb testbench, per layer (the testbench's wall
  time of a whole checked layer: encoding and loading the memories, simulating, dumping the outputs, the
  reference and every check of values, cycles, stalls and action counts). One simulator process runs the
  case's layers ``--reps`` times; the testbench's phase split is printed too.
* **ceiling**: the same generated top and harness (the cached build's sources), Verilated with the same
  arguments, C++ flags and DPI-C sources, under a plain C++ ``main`` that toggles ``clk`` and calls
  ``eval()``: no VPI, no Python. It drives the harness through the same sequence as the testbench (reset,
  the same memory files loaded, each run started, the same dumps) and is timed from each ``start`` to its
  ``done`` only (the MAC array's main is its own; the other families' is :data:`SCRIPT_MAIN_CPP`, which
  replays a script of control writes, cycles and waits for ``done``). It runs the case ``--reps`` times too,
  and its cycles must equal the cosim's.

Cases: MAC array, an 8x8 WS int8 GEMM of 65535x8x8 (134,023 cycles; the layer of ``resnet18.py``); LSTM
engine, four TT matvecs of ~75k cycles each on a 4-PE engine with 8 KiB working SRAMs (the layers of
``lstm_engine.py``); rf-array, the default 8-port Clements emulator on one run of 65,535 vectors (a
decomposed random unitary); deform-unit, the default 16-lane unit on a 16x64x128 depthwise layer with
random offsets within the bound.

The machine's speed varies from run to run (a shared 2-core VM here), so both sides run interleaved
(ceiling, cosim, ceiling) and the medians are compared. Target (issue 20): every family's cosim >= 50 % of
its ceiling (issue 8: the MAC array also >= 400,000 RTL cycles/s).

Usage: python benchmarks/cosim_ceiling.py [--reps N] [--family NAME ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

MAIN_CPP = r"""
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include "Vtop.h"
#include "verilated.h"
// Plain main: toggle the clock, evaluate. Nothing else runs between edges.
static void edges(Vtop* top, long n) { for (long i = 0; i < 2 * n; ++i) { top->clk = !top->clk; top->eval(); } }
int main(int argc, char** argv) {
    VerilatedContext* ctx = new VerilatedContext;
    ctx->commandArgs(argc, argv);
    Vtop* top = new Vtop{ctx};
    const int reps = std::atoi(argv[4]);
    top->clk = 0; top->free_run = 0; top->dump = 0; top->eval();
    for (int r = 0; r < reps; ++r) {
        top->rst = 1; edges(top, 3); top->rst = 0; edges(top, 1);
        top->load = 1; edges(top, 1); top->load = 0;
        top->dim_m = std::atoi(argv[1]); top->dim_k = std::atoi(argv[2]); top->dim_n = std::atoi(argv[3]);
        top->shift = 9; top->relu = 0;
        auto t0 = std::chrono::steady_clock::now();
        top->start = 1; edges(top, 1); top->start = 0;
        while (!top->done) { top->clk = !top->clk; top->eval(); }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("%llu %.6f\n", (unsigned long long)top->cycles, s);
        std::fflush(stdout);
        edges(top, 1);
    }
    top->final();
    delete top;
    return 0;
}
"""

#: The plain main of the other families: replays a script (argv[1]) of whitespace-separated commands
#: ``set NAME VALUE`` (an input port), ``cycles N`` (N clock cycles), ``wait`` (cycles until the harness's
#: ``done`` has risen: first while it is high, then while it is low), ``tic`` / ``toc`` (time the commands
#: between them), ``count`` (add the harness's ``cycles`` output to the case's cycles) and ``report``
#: (print the case's cycles and timed seconds, then start a new case). ``SETTERS`` is generated from the
#: names the script sets.
SCRIPT_MAIN_CPP = r"""
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include "Vtop.h"
#include "verilated.h"
static Vtop* top;
static inline void cycle() { top->clk = 1; top->eval(); top->clk = 0; top->eval(); }
int main(int argc, char** argv) {
    VerilatedContext* ctx = new VerilatedContext;
    ctx->commandArgs(argc, argv);
    top = new Vtop{ctx};
    std::ifstream in(argv[1]);
    top->clk = 0; top->free_run = 0; top->eval();
    std::string op, name;
    unsigned long long v, cycles = 0;
    double seconds = 0;
    auto t0 = std::chrono::steady_clock::now();
    while (in >> op) {
        if (op == "set") {
            in >> name >> v;
            SETTERS
            else { std::fprintf(stderr, "unknown input %s\n", name.c_str()); return 2; }
        } else if (op == "cycles") {
            in >> v;
            for (unsigned long long i = 0; i < v; ++i) cycle();
        } else if (op == "wait") {
            while (top->done) cycle();
            while (!top->done) cycle();
        } else if (op == "tic") {
            t0 = std::chrono::steady_clock::now();
        } else if (op == "toc") {
            seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        } else if (op == "count") {
            cycles += top->cycles;
        } else if (op == "report") {
            std::printf("%llu %.6f\n", cycles, seconds);
            std::fflush(stdout);
            cycles = 0;
            seconds = 0;
        } else {
            std::fprintf(stderr, "unknown command %s\n", op.c_str());
            return 2;
        }
    }
    top->final();
    delete top;
    return 0;
}
"""


def script_main(script: str) -> str:
    """:data:`SCRIPT_MAIN_CPP` with setters for every input ``script`` sets."""
    names = sorted({line.split()[1] for line in script.splitlines() if line.startswith("set ")})
    setters = "\n            else ".join(f'if (name == "{n}") top->{n} = v;' for n in names)
    return SCRIPT_MAIN_CPP.replace("SETTERS", setters or "if (false) {}")


class Script:
    """A ceiling script (:data:`SCRIPT_MAIN_CPP`) built with the testbench's own steps."""

    def __init__(self):
        self.lines: list[str] = []

    def set(self, **values) -> None:
        self.lines += [f"set {k} {int(v)}" for k, v in values.items()]

    def cycles(self, n: int) -> None:
        self.lines.append(f"cycles {n}")

    def reset(self, inputs) -> None:
        """``tb_util.reset_harness``: inputs zero, ``rst`` for 3 cycles, one more cycle."""
        self.set(**dict.fromkeys(inputs, 0), rst=1)
        self.cycles(3)
        self.set(rst=0)
        self.cycles(1)

    def pulse(self, name: str) -> None:
        """``tb_util.pulse``: one cycle high."""
        self.set(**{name: 1})
        self.cycles(1)
        self.set(**{name: 0})

    def run(self, name: str = "start") -> None:
        """A timed run: pulse ``start``, wait for ``done``, count the busy cycles."""
        self.lines.append("tic")
        self.pulse(name)
        self.lines += ["wait", "toc", "count"]

    def wait(self) -> None:
        self.lines.append("wait")

    def report(self) -> None:
        self.lines.append("report")

    def load_run_dump(self, **settings) -> None:
        """One timed layer of a load / start / dump harness: load, set ``settings``, time start .. done,
        read the counters, dump."""
        self.pulse("load")
        self.cycles(1)
        self.set(**settings)
        self.lines.append("tic")
        self.pulse("start")
        self.lines += ["wait", "toc"]
        self.cycles(2)
        self.lines.append("count")
        self.pulse("dump")
        self.cycles(1)
        self.report()

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def build_ceiling(build, harness, work: Path, main_text: str) -> tuple[Path, float]:
    """Verilate the cached build's sources under ``main_text`` with ``harness``'s Verilator arguments,
    make variables and DPI-C sources (and the runner's own)."""
    from hwsim.cosim.runner import MAKE_OVERRIDES, VERILATOR_ARGS, cpp_source_path, verilator_env

    work.mkdir(parents=True, exist_ok=True)
    (work / "main.cpp").write_text(main_text)
    srcs = sorted((build.path / "src").iterdir())
    env = {**os.environ, **verilator_env()}
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Mdir", str(work / "obj"), "--top-module",
           harness.top, "--prefix", "Vtop", "-o", "ceiling", *VERILATOR_ARGS, *harness.build_args,
           "-MAKEFLAGS", " ".join((*MAKE_OVERRIDES, *harness.make_args)), str(work / "main.cpp"),
           *(str(cpp_source_path(name)) for name in harness.cpp_sources), *map(str, srcs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        (work / "build.log").write_text(proc.stdout + proc.stderr)
        raise SystemExit(f"ceiling build failed (log: {work / 'build.log'})")
    return work / "obj" / "ceiling", time.perf_counter() - t0


def _ceiling_pairs(binary: Path, args: list[str], cwd: Path) -> list[tuple[int, float]]:
    """Run the ceiling binary; its stdout is ``cycles seconds`` pairs, one per timed run."""
    out = subprocess.run([str(binary), *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.split()
    return [(int(out[i]), float(out[i + 1])) for i in range(0, len(out), 2)]


def _spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs):,.0f} (min {min(xs):,.0f}, max {max(xs):,.0f})"


def _compare(family: str, case: str, res: dict, c_runs: list[tuple[int, float]], flags: str, build_s: float,
             cycles_per_layer: list[int]) -> dict:
    """Print one family's figures; return its row of the summary table."""
    rows = res["layers"]
    rates = [r["rtl_cycles"] / r["wall_seconds"] for r in rows]
    ceilings = [c / s for c, s in c_runs]
    rate, ceiling = statistics.median(rates), statistics.median(ceilings)
    bad = sum(r["mismatches"] for r in rows), sum(r["count_mismatches"] for r in rows)
    bad_cycles = sum(r["rtl_cycles"] != r["predicted_cycles"] for r in rows)
    phases = ", ".join(f"{p} {s / len(rows) * 1e3:.1f} ms" for p, s in res.get("phase_seconds", {}).items())
    print(f"{family}: {case}")
    print(f"  cosim:   {sum(r['rtl_cycles'] for r in rows):,} RTL cycles in {len(rows)} layers, {bad[0]} mismatches, "
          f"{bad_cycles} cycle and {bad[1]} count differences; testbench wall per layer "
          f"{statistics.median(r['wall_seconds'] for r in rows) * 1e3:.1f} ms (median; by phase, mean: {phases})")
    print(f"           RTL cycles/s: {_spread(rates)}")
    fr = res.get("free_run")
    if fr and fr["seconds"]:
        print(f"           of which free-running inside the simulator: {fr['edges'] // 2:,} cycles in "
              f"{fr['seconds']:.3f} s over {fr['runs']} runs -> {fr['edges'] / 2 / fr['seconds']:,.0f} cycles/s")
    print(f"  ceiling: {sum(c for c, _ in c_runs):,} cycles in {len(c_runs)} runs, plain C++ main, same design, "
          f"harness and flags ({flags}; built in {build_s:.0f} s)")
    print(f"           cycles/s: {_spread(ceilings)}")
    print(f"  cosim / ceiling = {rate / ceiling:.0%} (medians; target >= 50 %)")
    if sorted(c for c, _ in c_runs) != sorted(cycles_per_layer * (len(c_runs) // max(1, len(cycles_per_layer)))):
        raise SystemExit(f"{family}: ceiling cycles {sorted({c for c, _ in c_runs})} differ from the cosim's "
                         f"{sorted(set(cycles_per_layer))}")
    if bad[0] or bad[1] or bad_cycles:
        raise SystemExit(f"{family}: the co-simulation failed its checks")
    return {"family": family, "rate": rate, "ceiling": ceiling}


def mac_array(reps: int, work: Path) -> dict:
    import numpy as np
    from hwsim.cosim.harness import ACT_FILE, BIAS_FILE, BUILD_ARGS, MAKE_ARGS, WEIGHT_FILE, mac_array_harness
    from hwsim.cosim.memfile import lanes_to_words
    from hwsim.cosim.runner import run_job
    from hwsim.models import mac_array as ref
    from resnet18 import cosim_case  # the same layer as resnet18.py's cosim case (same directory)

    from hwsim.mac_array import dram_lanes

    cfg, (m, k, n), a, w, pred, build, job = cosim_case()
    job = {**job, "layers": job["layers"] * reps}
    binary, build_s = build_ceiling(build, mac_array_harness(), work, MAIN_CPP)
    meta = build.meta
    (w_lanes, w_bits), (a_lanes, a_bits) = dram_lanes(cfg, ref.encode_acts(a, 8), ref.encode_weights(w, "int8"))
    members = meta["signature"]["interface"]["members"]
    wb, ab = (int(members[s]["members"]["payload"]["width"]) for s in ("i_weights", "i_acts"))
    (work / WEIGHT_FILE).write_bytes(lanes_to_words(w_lanes, w_bits, wb))
    (work / ACT_FILE).write_bytes(lanes_to_words(a_lanes, a_bits, ab))
    (work / BIAS_FILE).write_bytes(lanes_to_words(np.zeros((n, 1), dtype=np.uint64), cfg.acc_bits, cfg.acc_bits))

    def ceiling_run() -> list[tuple[int, float]]:
        return _ceiling_pairs(binary, [str(m), str(k), str(n), str(reps)], work)

    # Interleaved: ceiling, cosim, ceiling, so a change of machine speed hits both sides.
    c_runs = ceiling_run()
    res = run_job(build, job)
    c_runs += ceiling_run()
    return _compare("mac-array", f"8x8 WS int8 GEMM {m}x{k}x{n}, {pred:,} predicted cycles", res, c_runs,
                    f"{' '.join(BUILD_ARGS)} {' '.join(MAKE_ARGS)}", build_s, [pred])


def lstm_engine(reps: int, work: Path) -> dict:
    import numpy as np
    from hwsim.cosim.lstm_engine_harness import lstm_engine_harness
    from hwsim.cosim.lstm_engine_regression import job_layer, make_job
    from hwsim.cosim.lstm_engine_tb import load_files
    from hwsim.cosim.runner import build, run_job
    from hwsim.models import tensor_formats as tf

    from hwsim.lstm_engine import LstmEngineConfig

    cfg = LstmEngineConfig(pes=4, banks=4, data_bits=8, acc_bits=24, frac_bits=5, work_sram_bytes=8192,
                           weight_sram_bytes=4096, addr_levels=4)
    rng = np.random.default_rng(1)
    layers = []
    for i in range(4):  # the layers of benchmarks/lstm_engine.py
        fmt = tf.TTMatrix.random((4, 4, 4, 4), (8, 8, 8, 8), (1, 4, 4, 4, 1), rng=rng)
        fmt = fmt.with_factors([rng.integers(-128, 128, size=f.data.shape) for f in fmt.factors])
        x = rng.integers(-128, 128, size=fmt.shape[1])
        layers.append(job_layer(make_job(cfg, fmt, x, [7, 7, 7, 7], name=f"large-{i}")))
    harness = lstm_engine_harness()
    made = build(cfg, harness)
    ldata_bits = int(made.meta["signature"]["interface"]["members"]["ext_data"]["width"])
    # The testbench's steps (lstm_engine_tb.LstmEngineTB.run), one script per layer with its load files.
    runs = []
    for i, layer in enumerate(layers):
        d = work / f"layer{i}"
        d.mkdir(parents=True, exist_ok=True)
        for name, data in load_files(layer, cfg.data_bits, ldata_bits).items():
            (d / name).write_bytes(data)
        s = Script()
        s.reset(("free_run", "load", "clear", "start", "dump", "n_stages", "gates", "rsel", "ld_first", "ld_count",
                 "n_out", "x_first", "n_x"))
        s.set(n_stages=layer["n_stages"], gates=layer["gates"], ld_first=0, ld_count=len(layer["setup"]), clear=1)
        s.pulse("load")
        s.wait()
        s.set(ld_first=len(layer["setup"]), ld_count=len(layer["x"][0]), clear=0)
        s.pulse("load")
        s.wait()
        s.run()
        s.set(rsel=layer["n_stages"] % 2, n_out=len(layer["expect_out"]))  # the last stage's buffer
        s.pulse("dump")
        s.wait()
        s.report()
        (d / "script.txt").write_text(s.text())
        runs.append(d)
    binary, build_s = build_ceiling(made, harness, work / "ceiling", script_main(s.text()))

    def ceiling_run() -> list[tuple[int, float]]:
        out = []
        for _ in range(reps):
            for d in runs:
                out += _ceiling_pairs(binary, ["script.txt"], d)
        return out

    c_runs = ceiling_run()
    res = run_job(made, {"config": cfg.to_dict(), "layers": layers * reps})
    c_runs += ceiling_run()
    return _compare("lstm-engine", f"4 TT matvecs (4,4,4,4)x(8,8,8,8) ranks 4 on {cfg.top_name}, "
                    f"{sum(la['predicted_cycles'] for la in layers):,} predicted cycles", res, c_runs,
                    " ".join((*harness.build_args, *harness.make_args)), build_s,
                    [la["predicted_cycles"] for la in layers])


def rf_array(reps: int, work: Path) -> dict:
    import numpy as np
    from hwsim.cosim.rf_array_harness import rf_array_harness
    from hwsim.cosim.rf_array_tb import memory_files
    from hwsim.cosim.runner import build, run_job
    from hwsim.models import rf_array as ref
    from hwsim.models import rf_mesh

    from hwsim.rf_array import RfArrayConfig, predict_emulator

    cfg = RfArrayConfig()  # the default 8-port Clements emulator
    v = (1 << 16) - 1  # the most vectors one run takes (16-bit n_vectors)
    rng = np.random.default_rng(1)
    codes = ref.phase_codes(cfg, rf_mesh.decompose(rf_mesh.random_unitary(cfg.n, rng), cfg.mesh))
    x = rng.integers(-(1 << 13), 1 << 13, (v, cfg.n, 2))
    layers = [{"name": "unitary", "w": codes, "x": x, "shape": f"{v} vectors x {cfg.n} ports"}]
    pred = predict_emulator(cfg, v).cycles
    harness = rf_array_harness(1 << 16)
    made = build(cfg, harness)
    members = made.meta["signature"]["interface"]["members"]
    cb, vb = (int(members[s]["members"]["payload"]["width"]) for s in ("i_code", "i_vec"))
    for name, data in memory_files(cfg, codes, x, cb, vb).items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    s = Script()  # the testbench's steps (rf_array_tb.RfArrayTB.run)
    s.reset(("free_run", "start", "load", "dump", "n_vectors"))
    for _ in range(reps):
        s.load_run_dump(n_vectors=v)
    (work / "script.txt").write_text(s.text())
    binary, build_s = build_ceiling(made, harness, work / "ceiling", script_main(s.text()))

    def ceiling_run() -> list[tuple[int, float]]:
        return _ceiling_pairs(binary, ["script.txt"], work)

    c_runs = ceiling_run()
    res = run_job(made, {"config": cfg.to_dict(), "layers": layers * reps})
    c_runs += ceiling_run()
    return _compare("rf-array", f"{cfg.n}-port Clements emulator, one run of {v:,} vectors, {pred:,} predicted cycles",
                    res, c_runs, " ".join((*harness.build_args, *harness.make_args)), build_s, [pred])


def deform_unit(reps: int, work: Path) -> dict:
    import numpy as np
    from hwsim.cosim.deform_unit_harness import deform_unit_harness
    from hwsim.cosim.deform_unit_tb import memory_files
    from hwsim.cosim.runner import build, run_job

    from hwsim.deform_unit import DeformLayer, DeformUnitConfig, predict_layer

    cfg = DeformUnitConfig()  # the default 16-lane unit, bounded free offsets (bound 8)
    h, w = 64, cfg.max_width
    rng = np.random.default_rng(1)
    one = 1 << cfg.frac_bits
    bq = int(cfg.offset_bound * one)
    x = rng.integers(-128, 128, size=(cfg.lanes, h, w))
    raw = rng.integers(-bq, bq + 1, size=(18, h, w))
    wt = rng.integers(-128, 128, size=(cfg.lanes, 1, 3, 3))
    layer = {"name": "bounded", "x": x, "a": raw, "w": wt, "shift": 7, "relu": False, "square": False,
             "shape": f"{cfg.lanes}x{h}x{w} bounded"}
    pred = predict_layer(cfg, DeformLayer("bounded", cfg.lanes, h, w, cfg.lanes, depthwise=True), raw,
                         with_offset_conv=False).detail["unit_cycles"]
    harness = deform_unit_harness(1 << 14)
    made = build(cfg, harness)
    members = made.meta["signature"]["interface"]["members"]
    widths = {"in": int(members["in_data"]["width"]), "off": int(members["off_data"]["width"]),
              "w": int(members["w_data"]["width"]), "b": int(members["b_data"]["width"])}
    work.mkdir(parents=True, exist_ok=True)
    for name, data in memory_files(cfg, x, raw, wt, 18, widths).items():
        (work / name).write_bytes(data)
    s = Script()  # the testbench's steps (deform_unit_tb.DeformUnitTB.run)
    s.reset(("free_run", "start", "load", "dump", "height", "width", "shift", "relu", "square", "chans",
             "chans_out", "depthwise"))
    for _ in range(reps):
        s.load_run_dump(height=h, width=w, shift=7, relu=0, square=0, chans=cfg.lanes, chans_out=cfg.lanes,
                        depthwise=1)
    (work / "script.txt").write_text(s.text())
    binary, build_s = build_ceiling(made, harness, work / "ceiling", script_main(s.text()))

    def ceiling_run() -> list[tuple[int, float]]:
        return _ceiling_pairs(binary, ["script.txt"], work)

    c_runs = ceiling_run()
    res = run_job(made, {"config": cfg.to_dict(), "layers": [layer] * reps})
    c_runs += ceiling_run()
    return _compare("deform-unit", f"{cfg.lanes}-lane unit, a {cfg.lanes}x{h}x{w} depthwise layer with bounded "
                    f"offsets, {pred:,} predicted cycles", res, c_runs,
                    " ".join((*harness.build_args, *harness.make_args)), build_s, [pred])


FAMILIES = {"mac-array": mac_array, "lstm-engine": lstm_engine, "rf-array": rf_array, "deform-unit": deform_unit}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="case runs on each side (default 5)")
    ap.add_argument("--family", nargs="+", choices=sorted(FAMILIES), default=list(FAMILIES),
                    help="families to measure (default all)")
    args = ap.parse_args()
    if args.reps < 1:
        raise SystemExit(f"--reps={args.reps} is not allowed: expected an integer >= 1")
    work = Path(tempfile.mkdtemp(prefix="hwsim-ceiling-"))
    table = [FAMILIES[f](args.reps, work / f) for f in args.family]
    print()
    print(f"{'family':<13} {'cosim cycles/s':>15} {'ceiling cycles/s':>17} {'cosim/ceiling':>14}")
    for row in table:
        print(f"{row['family']:<13} {row['rate']:>15,.0f} {row['ceiling']:>17,.0f} "
              f"{row['rate'] / row['ceiling']:>14.0%}")
    low = [row["family"] for row in table if row["rate"] < 0.5 * row["ceiling"]]
    if low:
        print(f"below 50 % of the ceiling: {', '.join(low)}")


if __name__ == "__main__":
    main()
