"""Sweep throughput: counts-only MAC-array design points on every ResNet-18 conv layer.

Each design point is a whole ResNet-18 (the 20 conv layers of the SCALE-Sim topology
``examples/scalesim/Resnet18.csv``, "same" padding; the FC row excluded) on one MAC-array
config: exact cycles and stalls of every layer, the action counts priced by the cost model (energy per
component), area. The grid crosses array rows and columns, dataflow, PE format, SRAM size and DRAM
bandwidth. Every run starts from an empty output directory (nothing cached) and is timed end to end
(worker start-up, evaluation, table written; plots off), with

* 1 local worker (in process), 2 local worker processes, and
* a local Dask cluster of 2 single-threaded worker processes on 127.0.0.1 (``--scheduler``).

Printed: points per minute, and the ratio to 1 worker. Target (issue 9): >= 10,000 points per minute in
every case on a 2-core machine.

Usage: python benchmarks/sweep.py [--topology CSV] [--points N] [--skip-dask]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_spec(topology: Path, points: int) -> dict:
    return {
        "name": "resnet18_counts",
        "family": "mac-array",
        "workload": {"topology": str(topology), "exclude": ["FC"]},
        "axes": {
            "rows": [8, 16, 32, 64, 128],
            "cols": [8, 16, 32, 64, 128],
            "dataflow": ["ws", "os", "is"],
            "weight_format": ["int8", "int4", "int2", "ternary"],
            "input_sram_bytes": [16384, 65536, 262144],
            "weight_sram_bytes": [16384, 65536, 262144],
            "dram_bytes_per_cycle": [4, 16, 64],
        },
        "sample": {"count": points, "seed": 0},
        "objectives": {"latency_us": "min", "energy_pj": "min", "area_mm2": "min"},
        "plots": False,
    }


def run(spec: dict, **kw) -> tuple[float, int]:
    from hwsim.sweep import parse_spec, run_sweep

    parsed = parse_spec(spec)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = run_sweep(parsed, Path(d) / "out", progress=False, **kw)
        wall = time.perf_counter() - t0
    assert res.computed == len([p for p in parsed.points if p.config is not None]) and not res.cached
    return wall, len(res.rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--topology", default=str(REPO / "examples" / "scalesim" / "Resnet18.csv"),
                    help="SCALE-Sim topology .csv (default: the repository's examples/scalesim/Resnet18.csv)")
    ap.add_argument("--points", type=int, default=6000)
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()
    spec = make_spec(Path(args.topology).resolve(), args.points)
    cases = [("1 local worker", {"workers": 1}), ("2 local workers", {"workers": 2})]
    cluster = None
    if not args.skip_dask:
        from distributed import LocalCluster

        warnings.filterwarnings("ignore", category=UserWarning, module="distributed")  # dashboard port notices
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        cases.append(("Dask, 2 workers (local cluster)", {"scheduler": cluster.scheduler_address}))
    print(f"sweep benchmark: counts-only MAC-array points on the 20 ResNet-18 conv layers, "
          f"{args.points} points per run (sampled from the grid), nothing cached")
    print(f"{'executor':<34} {'points':>7} {'wall s':>8} {'points/min':>11} {'vs 1 worker':>12}")
    base = None
    try:
        for label, kw in cases:
            wall, n = run(spec, **kw)
            rate = n / wall * 60
            base = base or rate
            print(f"{label:<34} {n:>7} {wall:>8.2f} {rate:>11,.0f} {rate / base:>11.2f}x")
    finally:
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
