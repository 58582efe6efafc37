"""MAC-array co-simulation throughput beside its Verilator ceiling, measured in the same run.

* **cosim**: RTL cycles per wall second of the cocotb testbench on an 8x8 WS int8 GEMM of 65535x8x8
  (134,023 cycles), testbench wall time per layer as in ``benchmarks/resnet18.py``: encoding and
  loading the DRAM memories, simulating, dumping the outputs, the reference and every check (values,
  cycles, stalls, action counts). One simulator process runs the layer ``--reps`` times (each a whole
  checked layer); the testbench's phase split is printed too.
* **ceiling**: the same generated top and harness (the cached build's sources), Verilated with the same
  arguments and C++ flags, under a plain C++ ``main`` that toggles ``clk`` and calls ``eval()``: reset,
  ``load`` (the same DPI-C copies of the same memory files), ``start``, then edges until ``done``, timed
  from ``start`` to ``done`` only; no VPI, no Python. It runs the GEMM ``--reps`` times too.

The machine's speed varies from run to run (a shared 2-core VM here: the same binary takes 0.14-0.29 s
for this layer), so both sides run interleaved in one process each, and the medians are compared.

Targets (issue 8): cosim >= 400,000 RTL cycles/s and >= 50 % of the ceiling.

Usage: python benchmarks/cosim_ceiling.py [--reps N]
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


def build_ceiling(build, work: Path) -> tuple[Path, float]:
    """Verilate the cached build's sources under :data:`MAIN_CPP` with the harness's arguments, flags and
    DPI-C sources."""
    from hwsim.cosim.harness import BUILD_ARGS, DPI_SOURCES, HARNESS_TOP, MAKE_ARGS
    from hwsim.cosim.runner import _MAKE_OVERRIDES, _VERILATOR_ARGS, cpp_source_path, verilator_env

    (work / "main.cpp").write_text(MAIN_CPP)
    srcs = sorted((build.path / "src").iterdir())
    env = {**os.environ, **verilator_env()}
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Mdir", str(work / "obj"), "--top-module", HARNESS_TOP,
           "--prefix", "Vtop", "-o", "ceiling", *_VERILATOR_ARGS, *BUILD_ARGS,
           "-MAKEFLAGS", " ".join((*_MAKE_OVERRIDES, *MAKE_ARGS)), str(work / "main.cpp"),
           *(str(cpp_source_path(name)) for name in DPI_SOURCES), *map(str, srcs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        (work / "build.log").write_text(proc.stdout + proc.stderr)
        raise SystemExit(f"ceiling build failed (log: {work / 'build.log'})")
    return work / "obj" / "ceiling", time.perf_counter() - t0


def _spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs):,.0f} (min {min(xs):,.0f}, max {max(xs):,.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="layer runs on each side (default 5)")
    args = ap.parse_args()
    if args.reps < 1:
        raise SystemExit(f"--reps={args.reps} is not allowed: expected an integer >= 1")

    import numpy as np
    from hwsim.cosim.harness import ACT_FILE, BIAS_FILE, BUILD_ARGS, MAKE_ARGS, WEIGHT_FILE
    from hwsim.cosim.memfile import lanes_to_words
    from hwsim.cosim.runner import run_job
    from hwsim.models import mac_array as ref
    from resnet18 import cosim_case  # the same layer as resnet18.py's cosim case (same directory)

    from hwsim.mac_array import dram_lanes

    cfg, (m, k, n), a, w, pred, build, job = cosim_case()
    job = {**job, "layers": job["layers"] * args.reps}

    work = Path(tempfile.mkdtemp(prefix="hwsim-ceiling-"))
    binary, build_s = build_ceiling(build, work)
    meta = build.meta
    (w_lanes, w_bits), (a_lanes, a_bits) = dram_lanes(cfg, ref.encode_acts(a, 8), ref.encode_weights(w, "int8"))
    members = meta["signature"]["interface"]["members"]
    wb, ab = (int(members[s]["members"]["payload"]["width"]) for s in ("i_weights", "i_acts"))
    (work / WEIGHT_FILE).write_bytes(lanes_to_words(w_lanes, w_bits, wb))
    (work / ACT_FILE).write_bytes(lanes_to_words(a_lanes, a_bits, ab))
    (work / BIAS_FILE).write_bytes(lanes_to_words(np.zeros((n, 1), dtype=np.uint64), cfg.acc_bits, cfg.acc_bits))

    def ceiling_run() -> list[tuple[int, float]]:
        out = subprocess.run([str(binary), str(m), str(k), str(n), str(args.reps)], cwd=work, capture_output=True,
                             text=True, check=True).stdout.split()
        return [(int(out[i]), float(out[i + 1])) for i in range(0, len(out), 2)]

    # Interleaved: ceiling, cosim, ceiling, so a change of machine speed hits both sides.
    c_runs = ceiling_run()
    res = run_job(build, job)
    c_runs += ceiling_run()
    rows = res["layers"]
    rates = [r["rtl_cycles"] / r["wall_seconds"] for r in rows]
    ceilings = [c / s for c, s in c_runs]
    rate, ceiling = statistics.median(rates), statistics.median(ceilings)
    bad = sum(r["mismatches"] for r in rows), sum(r["count_mismatches"] for r in rows)
    phases = ", ".join(f"{p} {s / len(rows) * 1e3:.0f} ms" for p, s in res["phase_seconds"].items())
    print(f"case: 8x8 WS int8 GEMM {m}x{k}x{n}, {pred:,} predicted cycles")
    print(f"cosim:   {rows[0]['rtl_cycles']:,} RTL cycles x {len(rows)} layers, {bad[0]} mismatches, {bad[1]} count "
          f"differences; testbench wall per layer {statistics.median(r['wall_seconds'] for r in rows):.3f} s "
          f"(median; by phase, mean: {phases})")
    print(f"         RTL cycles/s: {_spread(rates)}")
    fr = res.get("free_run")
    if fr:
        print(f"         of which free-running inside the simulator: {fr['edges'] // 2:,} cycles in "
              f"{fr['seconds']:.3f} s over {fr['runs']} runs -> {fr['edges'] / 2 / fr['seconds']:,.0f} cycles/s")
    print(f"ceiling: {c_runs[0][0]:,} cycles x {len(c_runs)} runs, plain C++ main, same design, harness and flags "
          f"({' '.join(BUILD_ARGS)} {' '.join(MAKE_ARGS)}; built in {build_s:.0f} s)")
    print(f"         cycles/s: {_spread(ceilings)}")
    print(f"cosim / ceiling = {rate / ceiling:.0%} (medians; targets: >= 400,000 cycles/s and >= 50 %)")
    if any(c != rows[0]["rtl_cycles"] for c, _ in c_runs):
        raise SystemExit(f"ceiling cycles {sorted({c for c, _ in c_runs})} differ from the cosim's "
                         f"{rows[0]['rtl_cycles']}")


if __name__ == "__main__":
    main()
