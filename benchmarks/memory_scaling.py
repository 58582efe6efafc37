"""The memory-system model's cost against the size of the work (issue 21): it must grow no faster than the
number of layers and tiles, because every per-layer formula is closed form.

For ResNet-18 at 224x224 (the SCALE-Sim topology) and copies of it made deeper (the layer list repeated)
and wider (the image scaled), prints the wall time of :func:`hwsim.memory.plan` (greedy residency, loop
order, halo rows, DRAM timing of every run) and of the whole ``hwsim simulate --scalesim-config`` mode
(the MAC array's closed-form cycle model per layer plus the plan), the number of layers and of the
array's tiles (folds), and the time per layer and per 1,000 folds. A per-element or per-cycle loop would
show as time per layer growing with the image and time per fold staying flat; a closed form shows the
opposite.

Usage: python benchmarks/memory_scaling.py [--repeats N]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCALESIM = REPO / "examples" / "scalesim"


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions, best kept (default 5)")
    args = ap.parse_args(argv)

    from hwsim.dram import DRAM_SPECS
    from hwsim.mac_array import predict_gemm
    from hwsim.memory import LayerTensors, plan
    from hwsim.workloads import load_scalesim_config, load_scalesim_topology

    cfg = load_scalesim_config(SCALESIM / "google.cfg", dataflow="ws", rows=32, cols=32)
    base = load_scalesim_topology(SCALESIM / "Resnet18.csv")
    cases = []
    for depth in (1, 4, 16):
        for scale in (1, 2, 4):
            layers = []
            for d in range(depth):
                for la in base:
                    if hasattr(la, "in_h"):
                        la = dataclasses.replace(la, name=f"{la.name}_{d}", in_h=la.in_h * scale, in_w=la.in_w * scale)
                    else:
                        la = dataclasses.replace(la, name=f"{la.name}_{d}")
                    layers.append(la)
            cases.append((depth, scale, layers))

    print(f"hwsim memory system: ResNet-18 (224x224) made deeper and wider, {cfg.rows}x{cfg.cols} WS array (google.cfg "
          "otherwise), "
          f"256 KiB global buffer, LPDDR4; best of {args.repeats}")
    hdr = (f"{'depth':>5} {'image':>6} {'layers':>6} {'folds':>11} {'plan ms':>9} {'model+plan ms':>14} "
           f"{'us/layer':>9} {'us/1k folds':>12}")
    print(hdr)
    print("-" * len(hdr))
    per_layer = {}
    for depth, scale, layers in cases:
        tensors = [LayerTensors.of_workload(la) for la in layers]
        t_plan = _best(lambda t=tensors: plan(t, 256 * 1024, DRAM_SPECS["lpddr4"], cfg.clock_mhz), args.repeats)
        folds = 0

        def whole(layers=layers):
            nonlocal folds
            folds = 0
            for la in layers:
                folds += predict_gemm(cfg, *la.gemm_shape, name=la.name, groups=la.groups).detail["folds"]
            plan([LayerTensors.of_workload(la) for la in layers], 256 * 1024, DRAM_SPECS["lpddr4"], cfg.clock_mhz)

        t_all = _best(whole, args.repeats)
        print(f"{depth:>5} {224 * scale:>6} {len(layers):>6} {folds:>11,} {1e3 * t_plan:>9.2f} {1e3 * t_all:>14.2f} "
              f"{1e6 * t_all / len(layers):>9.1f} {1e6 * t_all / folds * 1000:>12.2f}")
        per_layer[depth, scale] = (t_all / len(layers), folds)
    (t1, f1), (t4, f4) = per_layer[1, 1], per_layer[1, 4]
    (d1, _), (d16, _) = per_layer[1, 1], per_layer[16, 1]
    print(f"image 224 -> 896 (16x the pixels): folds x{f4 / f1:.1f}, time per layer x{t4 / t1:.2f}; depth 1 -> 16: "
          f"time per layer x{d16 / d1:.2f}. The model's cost follows the number of layers, not of tiles or pixels "
          "(closed form per layer and per fold range).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
