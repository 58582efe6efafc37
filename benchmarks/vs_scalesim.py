"""hwsim against SCALE-Sim on the same topology and config: per-layer cycle agreement and wall time.

For each topology (default: ResNet-18 and AlexNet, the repository's ``examples/scalesim/Resnet18.csv`` and
``alexnet.csv``) and each dataflow (os, ws, is) on the TPU-like ``examples/scalesim/google.cfg`` (256x256),
prints:

* per layer, SCALE-Sim's compute cycles ("Total Cycles" minus "Stall Cycles" of its COMPUTE_REPORT) beside
  hwsim's count under SCALE-Sim's conventions (``hwsim.scalesim``), and whether they are identical; also
  SCALE-Sim's stall cycles and hwsim's own cycle count (its RTL-exact convention) for reference;
* the wall time of each side in-process (the simulation call only) and as whole processes (interpreter
  start, imports, reading the files, the run, writing the report), and the ratios.

SCALE-Sim is not a dependency of hwsim. Install it into its own virtual environment (SCALE-Sim 3.0.0 needs
numpy < 2.4)::

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim "numpy<2.4"

and point the benchmark at that interpreter with ``--scalesim-python`` (default: ``$SCALESIM_PYTHON`` or
``/tmp/scalesim-venv/bin/python``). SCALE-Sim runs with its traces off (``save_disk_space=True``); one
ResNet-18 run takes minutes. Without SCALE-Sim the benchmark prints hwsim's side and says what is missing.

Usage: python benchmarks/vs_scalesim.py [--config CFG] [--layout CSV] [--scalesim-python PY]
       [--topologies Resnet18 alexnet | FILE.csv ...] [--dataflows os ws is] [--json FILE]

A topology given by name is ``examples/scalesim/NAME.csv``; a path to a ``.csv`` runs your own file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCALESIM = REPO / "examples" / "scalesim"  # SCALE-Sim-format files the repository ships

# Runs inside SCALE-Sim's interpreter: one run, traces off, prints the COMPUTE_REPORT rows and its time.
_DRIVER = r"""
import contextlib, io, json, sys, time
t0 = time.perf_counter()
from scalesim.scale_sim import scalesim
cfg, topo, layout, out = sys.argv[1:5]
t1 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                 input_type_gemm=False)
    s.run_scale(top_path=out)
t2 = time.perf_counter()
import glob
rep = glob.glob(out + "/*/COMPUTE_REPORT.csv")[0]
rows = [[x.strip() for x in line.split(",") if x.strip()] for line in open(rep)][1:]
print(json.dumps({"import_s": t1 - t0, "run_s": t2 - t1, "rows": rows}))
"""


def _scalesim_python(arg: str | None) -> tuple[str | None, str]:
    py = arg or os.environ.get("SCALESIM_PYTHON") or "/tmp/scalesim-venv/bin/python"
    if not Path(py).exists():
        return None, f"no interpreter at {py}"
    r = subprocess.run([py, "-c", "import scalesim.scale_sim, importlib.metadata as m; print(m.version('scalesim'))"],
                       capture_output=True, text=True)
    if r.returncode:
        return None, f"{py} cannot import scalesim ({(r.stderr.strip().splitlines() or ['?'])[-1]})"
    return py, r.stdout.strip()


def _cfg_with_dataflow(cfg: Path, dataflow: str, tmp: Path) -> Path:
    lines = []
    for line in cfg.read_text().splitlines():
        key = line.split(":", 1)[0].split("=", 1)[0].strip()
        if key == "Dataflow":
            line = f"Dataflow : {dataflow}"
        elif key == "run_name":
            line = f"run_name = bench_{dataflow}"
        lines.append(line)
    out = tmp / f"{cfg.stem}_{dataflow}.cfg"
    out.write_text("\n".join(lines) + "\n")
    return out


def run_hwsim(cfg: Path, topo: Path, dataflow: str) -> dict:
    from hwsim.scalesim import compare_with_scalesim

    compare_with_scalesim(cfg, topo, dataflow)  # warm: imports and first-call costs out of the timing
    t0 = time.perf_counter()
    cmp = compare_with_scalesim(cfg, topo, dataflow)
    inproc = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "hwsim.cli", "simulate", "--scalesim-config", str(cfg),
                        "--topology", str(topo), "--dataflow", dataflow], capture_output=True, text=True)
    whole = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"hwsim simulate failed: {r.stderr.strip()}")
    return {"cmp": cmp, "in_process_s": inproc, "process_s": whole}


def run_scalesim(py: str, cfg: Path, topo: Path, layout: Path, dataflow: str, tmp: Path) -> dict:
    c = _cfg_with_dataflow(cfg, dataflow, tmp)
    out = tmp / f"out_{topo.stem}_{dataflow}"
    t0 = time.perf_counter()
    r = subprocess.run([py, "-c", _DRIVER, str(c), str(topo), str(layout), str(out)], capture_output=True,
                       text=True, cwd=tmp)
    whole = time.perf_counter() - t0
    if r.returncode:
        return {"error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    data = json.loads(r.stdout.strip().splitlines()[-1])
    rows = [{"total": int(x[2]), "stall": int(x[3]), "total_incl_prefetch": int(x[1])} for x in data["rows"]]
    return {"rows": rows, "in_process_s": data["run_s"], "process_s": whole}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(SCALESIM / "google.cfg"),
                    help="SCALE-Sim .cfg (default: examples/scalesim/google.cfg)")
    ap.add_argument("--layout", default=str(SCALESIM / "no_layout.csv"),
                    help="SCALE-Sim layout .csv, which SCALE-Sim 3 always opens (default: examples/scalesim/"
                         "no_layout.csv, a header only: no custom layout)")
    ap.add_argument("--scalesim-python", help="interpreter with scalesim installed")
    ap.add_argument("--topologies", nargs="+", default=["Resnet18", "alexnet"],
                    help="names in examples/scalesim/ or paths to SCALE-Sim topology .csv files")
    ap.add_argument("--dataflows", nargs="+", default=["os", "ws", "is"])
    ap.add_argument("--json", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each run's table appears as soon as it is done
    cfg, layout = Path(args.config).resolve(), Path(args.layout).resolve()  # SCALE-Sim runs in a temp dir
    py, version = _scalesim_python(args.scalesim_python)
    if py:
        print(f"SCALE-Sim {version} at {py} (traces off)")
    else:
        print(f"SCALE-Sim missing: {version}. Only hwsim's side is printed. To compare, run:\n"
              "  python3 -m venv /tmp/scalesim-venv && /tmp/scalesim-venv/bin/pip install scalesim 'numpy<2.4'\n"
              "  python benchmarks/vs_scalesim.py --scalesim-python /tmp/scalesim-venv/bin/python")
    results = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for given in args.topologies:
            topo = Path(given).resolve() if given.endswith(".csv") else SCALESIM / f"{given}.csv"
            name = topo.stem
            for df in args.dataflows:
                h = run_hwsim(cfg, topo, df)
                s = run_scalesim(py, cfg, topo, layout, df, tmp) if py else None
                cmp = h["cmp"]
                print(f"\n== {name}, {cmp.config.rows}x{cmp.config.cols}, dataflow {df}")
                hdr = (f"{'layer':<10} {'hwsim (SS conv.)':>16} {'SCALE-Sim':>10} {'equal':>5} {'SS stalls':>10} "
                       f"{'hwsim (own)':>12}")
                print(hdr)
                print("-" * len(hdr))
                equal = 0
                rows = s.get("rows") if s else None
                if rows is not None and len(rows) != len(cmp.layers):
                    print(f"SCALE-Sim reported {len(rows)} layers, hwsim {len(cmp.layers)}: not compared")
                    rows = None
                per_layer = []
                for i, lc in enumerate(cmp.layers):
                    mine = lc.scalesim_report_cycles
                    if rows:
                        theirs = rows[i]["total"] - rows[i]["stall"]
                        ok = theirs == mine
                        equal += ok
                        cols = f"{theirs:>10,} {'yes' if ok else 'NO':>5} {rows[i]['stall']:>10,}"
                    else:
                        theirs, cols = None, f"{'-':>10} {'-':>5} {'-':>10}"
                    print(f"{lc.name:<10} {mine:>16,} {cols} {lc.hwsim_cycles:>12,}")
                    per_layer.append({"layer": lc.name, "hwsim_scalesim_convention": mine, "scalesim": theirs,
                                      "hwsim_own": lc.hwsim_cycles})
                line = (f"hwsim: {h['in_process_s'] * 1e3:.1f} ms in-process, {h['process_s']:.2f} s as a process")
                if s and "error" in s:
                    line += f"; SCALE-Sim failed: {s['error']}"
                elif s:
                    line += (f"; SCALE-Sim: {s['in_process_s']:.1f} s in-process, {s['process_s']:.1f} s as a process; "
                             f"speed-up {s['in_process_s'] / h['in_process_s']:,.0f}x in-process, "
                             f"{s['process_s'] / h['process_s']:,.0f}x as processes; "
                             f"{equal}/{len(cmp.layers)} layers with identical compute cycles")
                print(line)
                results.append({"topology": name, "dataflow": df, "layers": per_layer,
                                "hwsim_in_process_s": h["in_process_s"], "hwsim_process_s": h["process_s"],
                                "scalesim": None if not s else {k: v for k, v in s.items() if k != "rows"},
                                "identical_layers": equal if rows else None})
    if args.json:
        Path(args.json).write_text(json.dumps({"scalesim": version if py else None, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
