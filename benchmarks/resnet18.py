"""ResNet-18 on the MAC array (cycle-level model) and MAC-array co-simulation throughput.

Prints, per case, wall seconds and peak resident memory (each case runs in a fresh subprocess, so the
peak is the case's own):

* ResNet-18 conv layers (SCALE-Sim topology ``examples/scalesim/Resnet18.csv``, "same" padding
  as in the real network) on 32x32 and 256x256 arrays, in each dataflow (WS, OS, IS); SRAM sizes and
  DRAM bandwidth from the TPU-like ``examples/scalesim/google.cfg``. The 256x256 runs are cycle counts only; the
  32x32 runs also compute every output value on random int8 data.
* Co-simulation throughput: RTL cycles per wall second of an 8x8 WS array under Verilator on one GEMM
  of over 100k cycles, including the testbench's loading of the DRAM memories, the reference and
  checking; printed a second time counting the simulator's start-up (process launch, cocotb import).

Targets (issue 2): 256x256 cycle-count-only ResNet-18 < 2 s and < 1 GB; cosim >= 100k cycles/s.

Usage: python benchmarks/resnet18.py [--config CFG] [--topology CSV] [--skip-cosim]
(``--config``/``--topology``: your own SCALE-Sim files instead of the repository's)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCALESIM = REPO / "examples" / "scalesim"  # SCALE-Sim-format files the repository ships


def run_resnet(config: Path, topology: Path, size: int, dataflow: str, values: bool) -> dict:
    import numpy as np
    from hwsim.models import mac_array as ref

    from hwsim.mac_array import predict_gemm, simulate_gemm
    from hwsim.workloads import load_scalesim_config, load_scalesim_topology

    cfg = load_scalesim_config(config, rows=size, cols=size, dataflow=dataflow)
    layers = [layer for layer in load_scalesim_topology(topology) if layer.name != "FC"]
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    cycles = macs = 0
    checked = 0
    for layer in layers:
        m, k, n = layer.gemm_shape
        if values:
            x = rng.integers(-128, 128, size=(layer.in_c, layer.in_h, layer.in_w))
            w = rng.integers(-128, 128, size=layer.weight_shape)
            for a_g, w_g in ref.conv2d_as_gemms(x, w, stride=layer.stride, padding=layer.padding,
                                                 dilation=layer.dilation, groups=layer.groups):
                out, st = simulate_gemm(cfg, a_g, w_g, shift=10, relu=True, name=layer.name)
                cycles += st.cycles
                checked += out.size
        else:
            cycles += predict_gemm(cfg, m, k, n, name=layer.name, groups=layer.groups).cycles
        macs += layer.macs
    wall = time.perf_counter() - t0
    return {"case": f"resnet18 {size}x{size} {dataflow}{' +values' if values else ''}", "wall_s": wall,
            "layers": len(layers), "cycles": cycles, "macs": macs, "outputs_computed": checked,
            "utilization": macs / (size * size * cycles)}


def cosim_case():
    """The co-simulation benchmark layer (also used by ``cosim_ceiling.py``): an 8x8 WS int8 array and a
    random 65535x8x8 GEMM. Returns ``(cfg, (m, k, n), a, w, predicted cycles, build, job)``."""
    import numpy as np
    from hwsim.cosim.regression import build_mac_array

    from hwsim.config import MacArrayConfig
    from hwsim.mac_array import predict_gemm

    cfg = MacArrayConfig(rows=8, cols=8, dataflow="ws", weight_format="int8")
    m, k, n = 65535, 8, 8
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, size=(m, k))
    w = rng.integers(-128, 128, size=(k, n))
    build = build_mac_array(cfg, mem_depth=1 << 17)
    job = {"config": cfg.to_dict(),
           "layers": [{"kind": "gemm", "name": "big", "a": a, "w": w, "shift": 9, "relu": False}]}
    return cfg, (m, k, n), a, w, predict_gemm(cfg, m, k, n).cycles, build, job


def run_cosim() -> dict:
    from hwsim.cosim.runner import run_job

    _, (m, k, n), _, _, pred, build, job = cosim_case()
    t0 = time.perf_counter()
    res = run_job(build, job)
    outer = time.perf_counter() - t0
    row = res["layers"][0]
    return {"case": f"cosim 8x8 ws int8 gemm {m}x{k}x{n}", "predicted_cycles": pred, "rtl_cycles": row["rtl_cycles"],
            "mismatches": row["mismatches"], "vectors": row["vectors"], "testbench_wall_s": res["wall_seconds"],
            "cycles_per_s": row["rtl_cycles"] / res["wall_seconds"], "wall_s_with_sim_startup": outer}


def _child(spec: str, config: Path, topology: Path) -> None:
    kind, *rest = spec.split(":")
    if kind == "resnet":
        size, dataflow, values = int(rest[0]), rest[1], rest[2] == "1"
        out = run_resnet(config, topology, size, dataflow, values)
    else:
        out = run_cosim()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(SCALESIM / "google.cfg"),
                    help="SCALE-Sim .cfg (default: examples/scalesim/google.cfg)")
    ap.add_argument("--topology", default=str(SCALESIM / "Resnet18.csv"),
                    help="SCALE-Sim topology .csv (default: examples/scalesim/Resnet18.csv)")
    ap.add_argument("--skip-cosim", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    config, topology = Path(args.config).resolve(), Path(args.topology).resolve()
    if args.child:
        _child(args.child, config, topology)
        return
    specs = [f"resnet:256:{df}:0" for df in ("ws", "os", "is")]
    specs += [f"resnet:32:{df}:1" for df in ("ws", "os", "is")]
    if not args.skip_cosim:
        specs.append("cosim")
    print(f"{'case':<44} {'wall s':>8} {'peak MB':>8}  details")
    for spec in specs:
        cmd = [sys.executable, __file__, "--child", spec, "--config", str(config), "--topology", str(topology)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            print(f"{spec:<44} FAILED: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        if spec == "cosim":
            print(f"{r['case']:<44} {r['testbench_wall_s']:>8.2f} {r['peak_rss_mb']:>8.0f}  "
                  f"{r['rtl_cycles']:,} RTL cycles (predicted {r['predicted_cycles']:,}), "
                  f"{r['mismatches']} mismatches in {r['vectors']:,} outputs, "
                  f"{r['cycles_per_s']:,.0f} RTL cycles/s (target >= 100,000); "
                  f"{r['rtl_cycles'] / r['wall_s_with_sim_startup']:,.0f} counting simulator start-up")
        else:
            extra = f", {r['outputs_computed']:,} output values" if r["outputs_computed"] else ""
            print(f"{r['case']:<44} {r['wall_s']:>8.3f} {r['peak_rss_mb']:>8.0f}  "
                  f"{r['cycles']:,} cycles, utilization {r['utilization']:.3f}{extra}")


if __name__ == "__main__":
    main()
