"""lstm-engine performance figures (issue 10 targets):

* cycle-level model of one full UCF11 frame (TT r4 input layer, all stages, hidden stage and gates):
  target < 10 ms;
* bit-exact values of one UCF11 frame (57,600 int16 inputs through the TT input layer, the 1024 x 256
  hidden stage and the gates): target < 1 s;
* Verilator co-simulation rate on large matvecs (4 jobs of ~75k RTL cycles each on a 4-PE engine with
  8 KiB working SRAMs; builds once, cached afterwards): target >= 200k RTL cycles/s.

Run: ``python benchmarks/lstm_engine.py [--no-cosim]``.
"""

import argparse
import sys
import time

import numpy as np
from hwsim.models import lstm_engine as ref
from hwsim.models import tensor_formats as tf

from hwsim.lstm_engine import LstmEngineConfig, parse_preset, predict, simulate_step, workload


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def cycle_model() -> None:
    cfg = parse_preset("lstm-engine-tt-16")
    for dec in ("tt", "ht"):
        w = workload("ucf11", dec)
        st = predict(cfg, w)
        t = _best(lambda w=w: predict(cfg, w), 20)
        print(f"cycle model, UCF11 {dec.upper()} r4 frame on {cfg.describe()}: {st.cycles:,} cycles, "
              f"{len(st.detail['stages'])} stages; {t * 1e3:.2f} ms (target < 10 ms)")


def ucf11_values() -> None:
    cfg = parse_preset("lstm-engine-tt-16")
    w = workload("ucf11", "tt")
    rng = np.random.default_rng(0)
    fmt = w.fmt.with_factors([rng.integers(-2048, 2048, size=f.data.shape) for f in w.fmt.factors])
    order = tf.default_order(fmt)
    shifts = (11, 11, 11, 12)[:len(tf.plan_stages(fmt, order))]
    H = w.hidden
    q = ref.FixedLstm(fmt, order, shifts, 12, rng.integers(-512, 512, size=(4 * H, H)), 12,
                      rng.integers(-4096, 4096, size=4 * H))
    x = rng.integers(-32768, 32768, size=fmt.shape[1])
    h, c = rng.integers(-4096, 4096, size=H), rng.integers(-4096, 4096, size=H)
    out = {}

    def run():
        out["r"] = simulate_step(cfg, q, x, h, c)

    t = _best(run, 5)
    h2, c2, st = out["r"]
    print(f"bit-exact UCF11 TT frame ({fmt.shape[1]:,} inputs, 4H = {4 * H}, int16, stage shifts {shifts}): "
          f"{t * 1e3:.1f} ms (target < 1 s); h' in [{h2.min()}, {h2.max()}], {st.cycles:,} cycles")


def cosim_rate() -> None:
    from hwsim.cosim.lstm_engine_regression import job_layer, make_job, run_regression

    cfg = LstmEngineConfig(pes=4, banks=4, data_bits=8, acc_bits=24, frac_bits=5, work_sram_bytes=8192,
                           weight_sram_bytes=4096, addr_levels=4)
    rng = np.random.default_rng(1)
    layers = []
    for i in range(4):
        fmt = tf.TTMatrix.random((4, 4, 4, 4), (8, 8, 8, 8), (1, 4, 4, 4, 1), rng=rng)
        fmt = fmt.with_factors([rng.integers(-128, 128, size=f.data.shape) for f in fmt.factors])
        x = rng.integers(-128, 128, size=fmt.shape[1])
        layers.append(job_layer(make_job(cfg, fmt, x, [7, 7, 7, 7], name=f"large-{i}")))
    t = time.perf_counter()
    rep = run_regression(cfg, layers=layers)
    total = time.perf_counter() - t
    cyc = sum(r["rtl_cycles"] for r in rep.layers)
    print(f"co-simulation ({cfg.top_name}, {'cached' if rep.build_cached else 'fresh'} build, {total:.1f} s "
          f"incl. build): {len(rep.layers)} TT matvecs of {rep.layers[0]['vectors']} outputs, {cyc:,} RTL cycles "
          f"in {rep.wall_seconds:.2f} s of simulation = {cyc / rep.wall_seconds:,.0f} cycles/s (target >= 200k); "
          f"{rep.mismatches} mismatches, {rep.cycle_mismatches} cycle and {rep.count_mismatches} count mismatches")
    if not rep.passed:
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-cosim", action="store_true", help="skip the Verilator figure")
    args = ap.parse_args()
    cycle_model()
    ucf11_values()
    if not args.no_cosim:
        cosim_rate()


if __name__ == "__main__":
    main()
