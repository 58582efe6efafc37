// hwsim's Verilator main for cocotb testbenches whose harness has a `clk` input, a `free_run` input and a
// `done` output (hwsim.cosim.harness). It replaces cocotb's share/lib/verilator/verilator.cpp, from which
// it is derived (Copyright cocotb contributors, Revised BSD License, SPDX-License-Identifier:
// BSD-3-Clause), with three changes:
//
// 1. The clock. This main toggles `clk` every half period (5 ns) itself, in the time slot where cocotb
//    would run a timed callback, so neither a cocotb Clock (a VPI write and a Python wake-up per edge)
//    nor an HDL `always #5` (Verilator's --timing scheduler) is needed. cocotb's triggers on `clk`
//    (RisingEdge, ClockCycles) work as with any clock.
// 2. Free running. While the testbench holds `free_run` high and `done` is low, the clock advances with
//    only `eval()` per edge: no VPI callback lists are visited. It stops at the edge where `done` rises
//    (the next loop iteration then runs that time slot's value-change callbacks, so RisingEdge(done)
//    fires in that slot as usual), at the next timed callback's deadline (cocotb Timers keep their
//    times), or on $finish. A testbench sets `free_run` only while it waits for `done` or a Timer, never
//    while it waits on another signal's edge: those edges are not reported during a free run.
// 3. One BLAS thread. Before Python starts, OPENBLAS_NUM_THREADS is set to 1 unless the environment sets
//    it. The testbench's NumPy work (references, encodings) runs only while the simulation waits, on the
//    simulator's own thread. With more, OpenBLAS's worker threads made the MAC array's float64 reference
//    product slower on this 2-core machine and then spin-waited through the next layer's simulation,
//    taking a core from it (docs/mac_array_rtl.md, "Co-simulation throughput").
//
// Everything else (tracing, coverage, the phase order of the callbacks) is cocotb's.

#include <libgen.h>  // basename
#include <stdio.h>   // stderr, fprintf

#include <algorithm>  // std::min
#include <chrono>     // free-run statistics
#include <cstdlib>    // getenv, setenv
#include <memory>     // std::unique_ptr
#include <string>     // std::string

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#ifndef VM_TRACE_FST
#define VM_TRACE_FST 0
#endif

#if VM_TRACE
#if VM_TRACE_FST
#include <verilated_fst_c.h>
using verilated_trace_t = VerilatedFstC;
#elif VM_TRACE_SAIF
#include <verilated_saif_c.h>
using verilated_trace_t = VerilatedSaifC;
#else
#include <verilated_vcd_c.h>
using verilated_trace_t = VerilatedVcdC;
#endif
static verilated_trace_t *tfp;
#endif

static vluint64_t main_time = 0;  // Current simulation time, in units of the time precision
// Free-run statistics, written at exit to $HWSIM_FREE_RUN_STATS if set: runs, edges, seconds.
static vluint64_t free_runs = 0, free_edges = 0;
static double free_seconds = 0.0;
#if VM_COVERAGE
static bool coverage_per_instance = false;
#endif

double sc_time_stamp() {  // Called by $time in Verilog
    return main_time;
}

extern "C" {
void vlog_startup_routines_bootstrap(void);
}

static inline bool settle_value_callbacks() {
    bool cbs_called, again;
    cbs_called = again = VerilatedVpi::callValueCbs();
    while (again) {
        again = VerilatedVpi::callValueCbs();
    }
    return cbs_called;
}

static inline void trace_dump() {
#if VM_TRACE
    // Once per time slot: a free run ends by revisiting its last slot, which is already dumped.
    static vluint64_t last_dump = ~0ULL;
    if (tfp && main_time != last_dump) {
        tfp->dump(main_time);
        last_dump = main_time;
    }
#endif
}

void wrap_up() {
    VerilatedVpi::callCbs(cbEndOfSimulation);
    if (const char *path = std::getenv("HWSIM_FREE_RUN_STATS")) {
        if (FILE *f = fopen(path, "w")) {
            fprintf(f, "{\"runs\": %llu, \"edges\": %llu, \"seconds\": %.6f}\n", (unsigned long long)free_runs,
                    (unsigned long long)free_edges, free_seconds);
            fclose(f);
        }
    }
#if VM_TRACE
    if (tfp) tfp->close();
#endif
#if VM_COVERAGE
    if (coverage_per_instance) {
        Verilated::threadContextp()->coveragep()->forcePerInstance(true);
    }
    VerilatedCov::write();
#endif
}

// Half the clock period (5 ns) in units of the time precision (e.g. 5000 at 1 ps).
static vluint64_t half_period() {
    vluint64_t half = 5;
    for (int p = Verilated::threadContextp()->timeprecision(); p < -9; ++p) half *= 10;
    return half;
}

int main(int argc, char **argv) {
#if VM_TRACE_FST
    const char *traceFile = "dump.fst";
#elif VM_TRACE_SAIF
    const char *traceFile = "dump.saif";
#else
    const char *traceFile = "dump.vcd";
#endif
    bool traceOn = false;
    bool traceFlush = false;
    bool coveragePerInstance = false;

    for (int i = 1; i < argc; i++) {
        std::string arg = std::string(argv[i]);
        if (arg == "--coverage-per-instance") {
#if VM_COVERAGE
            coveragePerInstance = true;
#else
            fprintf(stderr, "Error: --coverage-per-instance requires the design to be built with coverage support\n");
            return -1;
#endif
        } else if (arg == "--trace") {
#if VM_TRACE
            traceOn = true;
#else
            fprintf(stderr, "Error: --trace requires the design to be built with trace support\n");
            return -1;
#endif
        } else if (arg == "--trace-flush") {
            traceFlush = true;
        } else if (arg == "--trace-file") {
            if (++i < argc) {
                traceFile = argv[i];
            } else {
                fprintf(stderr, "Error: --trace-file requires a parameter\n");
                return -1;
            }
        } else if (arg == "--help") {
            fprintf(stderr,
                    "usage: %s [--coverage-per-instance] [--trace] [--trace-flush] [--trace-file TRACEFILE]\n\n"
                    "cocotb + Verilator sim (hwsim free-running clock)\n",
                    basename(argv[0]));
            return 0;
        }
    }

    setenv("OPENBLAS_NUM_THREADS", "1", 0);  // 3. (no override of an explicit setting)
    Verilated::commandArgs(argc, argv);
#if VM_COVERAGE
    coverage_per_instance = coveragePerInstance;
#endif
    std::unique_ptr<Vtop> top(new Vtop(""));
    Verilated::fatalOnVpiError(false);  // otherwise it will fail on systemtf

#if VM_TRACE
    Verilated::traceEverOn(true);
    if (traceOn) {
        tfp = new verilated_trace_t;
        top->trace(tfp, 99);
        tfp->open(traceFile);
    }
#endif
    (void)traceFlush;

    const vluint64_t half = half_period();
    vluint64_t next_edge = half;  // the clock starts low and rises at 5 ns
    top->clk = 0;
    top->free_run = 0;  // inputs start undefined (--x-initial): no free run before the testbench asks

    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void *) { wrap_up(); }, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle_value_callbacks();

    while (!Verilated::gotFinish()) {
        do {
            do {
                top->eval_step();
                VerilatedVpi::clearEvalNeeded();
                VerilatedVpi::doInertialPuts();
                settle_value_callbacks();
            } while (VerilatedVpi::evalNeeded());
            VerilatedVpi::callCbs(cbReadWriteSynch);
            VerilatedVpi::doInertialPuts();
            settle_value_callbacks();
        } while (VerilatedVpi::evalNeeded());

        top->eval_end_step();
        VerilatedVpi::callCbs(cbReadOnlySynch);
        trace_dump();
#if VM_TRACE
        if (tfp && traceFlush) tfp->flush();
#endif

        if (top->free_run && !top->done) {
            // Free run: edges only, up to (not including) the next timed callback; then back to the top of
            // the loop in the same time slot, whose value-change callbacks see `done`.
            const vluint64_t deadline = VerilatedVpi::cbNextDeadline();
            const auto t0 = std::chrono::steady_clock::now();
            vluint64_t edges = 0;
            while (!top->done && next_edge < deadline && !Verilated::gotFinish()) {
                main_time = next_edge;
                next_edge += half;
                top->clk = !top->clk;
                top->eval();
                trace_dump();
                ++edges;
            }
            if (edges) {
                free_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                free_edges += edges;
                ++free_runs;
                continue;
            }
        }

        // Next time slot: the next clock edge, a cocotb timed callback or a --timing event.
        vluint64_t next_time = std::min(VerilatedVpi::cbNextDeadline(), next_edge);
        if (top->eventsPending()) next_time = std::min(next_time, top->nextTimeSlot());
        main_time = next_time;
        if (main_time == next_edge) {
            top->clk = !top->clk;
            next_edge += half;
        }

        VerilatedVpi::callCbs(cbNextSimTime);
        settle_value_callbacks();
        VerilatedVpi::callTimedCbs();
        settle_value_callbacks();
    }

    top->final();
    wrap_up();
#if VM_TRACE
    if (tfp) {
        delete tfp;
        tfp = nullptr;
    }
#endif
    if (Verilated::threadContextp()->errorCount() > 0) {
        return 1;
    }
    return 0;
}
