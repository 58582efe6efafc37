"""MAC-array co-simulation throughput beside its Verilator ceiling, measured in the same run.

* **cosim**: RTL cycles per wall second of the cocotb testbench on an 8x8 WS int8 GEMM of 65535x8x8
  (134,023 cycles), testbench wall time as in ``benchmarks/resnet18.py``: loading the DRAM memories,
  simulating, the reference and every check (values, cycles, stalls, action counts).
* **ceiling**: the same generated top and harness (the cached build's sources), Verilated with the same
  arguments and C++ flags, under a plain C++ ``main`` that only advances time (the harness makes the
  clock), pulses ``load``/``start`` and waits for ``done``; no VPI, no Python.

Targets (issue 8): cosim >= 400,000 RTL cycles/s and >= 50 % of the ceiling.

Usage: python benchmarks/cosim_ceiling.py
"""

from __future__ import annotations

import os
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
// Plain main: the harness generates the clock (--timing), so we only advance to the next time slot.
static void step(VerilatedContext* ctx, Vtop* top) {
    top->eval();
    if (!top->eventsPending()) { std::fprintf(stderr, "no events\n"); std::exit(2); }
    ctx->time(top->nextTimeSlot());
}
static void edges(VerilatedContext* ctx, Vtop* top, int n) { for (int i = 0; i < 2 * n; ++i) step(ctx, top); }
int main(int argc, char** argv) {
    VerilatedContext* ctx = new VerilatedContext;
    ctx->commandArgs(argc, argv);
    Vtop* top = new Vtop{ctx};
    top->rst = 1; edges(ctx, top, 3); top->rst = 0;
    top->load = 1; edges(ctx, top, 1); top->load = 0;
    top->dim_m = std::atoi(argv[1]); top->dim_k = std::atoi(argv[2]); top->dim_n = std::atoi(argv[3]);
    top->shift = 9; top->relu = 0;
    top->start = 1; edges(ctx, top, 1); top->start = 0;
    auto t0 = std::chrono::steady_clock::now();
    while (!top->done) step(ctx, top);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%llu %.6f\n", (unsigned long long)top->cycles, s);
    top->final();
    delete top;
    return 0;
}
"""


def main() -> None:
    from hwsim.cosim.harness import ACT_FILE, BIAS_FILE, BUILD_ARGS, HARNESS_TOP, MAKE_ARGS, WEIGHT_FILE
    from hwsim.cosim.runner import _MAKE_OVERRIDES, _VERILATOR_ARGS, run_job, verilator_env
    from hwsim.models import mac_array as ref
    from resnet18 import cosim_case  # the same layer as resnet18.py's cosim case (same directory)

    from hwsim.mac_array import dram_beats

    cfg, (m, k, n), a, w, pred, build, job = cosim_case()
    res = run_job(build, job)
    row = res["layers"][0]
    rate = row["rtl_cycles"] / res["wall_seconds"]

    # Ceiling: the same sources and flags under a plain C++ main.
    work = Path(tempfile.mkdtemp(prefix="hwsim-ceiling-"))
    (work / "main.cpp").write_text(MAIN_CPP)
    srcs = sorted((build.path / "src").iterdir())
    env = {**os.environ, **verilator_env()}
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", "-Mdir", str(work / "obj"), "--top-module", HARNESS_TOP,
           "--prefix", "Vtop", "-o", "ceiling", *_VERILATOR_ARGS, *BUILD_ARGS,
           "-MAKEFLAGS", " ".join((*_MAKE_OVERRIDES, *MAKE_ARGS)), str(work / "main.cpp"), *map(str, srcs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        (work / "build.log").write_text(proc.stdout + proc.stderr)
        raise SystemExit(f"ceiling build failed (log: {work / 'build.log'})")
    build_s = time.perf_counter() - t0
    w_beats, a_beats = dram_beats(cfg, ref.encode_acts(a, 8), ref.encode_weights(w, "int8"))
    (work / WEIGHT_FILE).write_text("".join(f"{b:x}\n" for b in w_beats))
    (work / ACT_FILE).write_text("".join(f"{b:x}\n" for b in a_beats))
    (work / BIAS_FILE).write_text("0\n" * n)
    out = subprocess.run([str(work / "obj" / "ceiling"), str(m), str(k), str(n)], cwd=work, capture_output=True,
                         text=True, check=True).stdout.split()
    c_cycles, c_s = int(out[0]), float(out[1])
    ceiling = c_cycles / c_s
    print(f"case: 8x8 WS int8 GEMM {m}x{k}x{n}, {pred:,} predicted cycles")
    print(f"cosim:   {row['rtl_cycles']:,} RTL cycles, {row['mismatches']} mismatches, {row['count_mismatches']} "
          f"count differences, {res['wall_seconds']:.3f} s testbench wall -> {rate:,.0f} RTL cycles/s")
    print(f"ceiling: {c_cycles:,} cycles in {c_s:.3f} s (plain C++ main, same design, harness and flags: "
          f"{' '.join(BUILD_ARGS)} {' '.join(MAKE_ARGS)}; built in {build_s:.0f} s) -> {ceiling:,.0f} cycles/s")
    print(f"cosim / ceiling = {rate / ceiling:.0%} (targets: >= 400,000 cycles/s and >= 50 %)")


if __name__ == "__main__":
    main()
