"""hwsim against SCALE-Sim on the same topology and config: per-layer cycle agreement and wall time.

For each topology (default: ResNet-18 and AlexNet, the repository's ``examples/scalesim/Resnet18.csv`` and
``alexnet.csv``) and each dataflow (os, ws, is) on the TPU-like ``examples/scalesim/google.cfg`` (256x256),
prints:

* per layer, SCALE-Sim's "Total Cycles" (stalls included), "Stall Cycles" and "Total Cycles (incl.
  prefetch)" from its COMPUTE_REPORT beside hwsim's SCALE-Sim convention (``hwsim simulate ... --convention
  scalesim``: SCALE-Sim 3's lowering, folds and memory system in closed form), and whether each is
  identical; hwsim's own cycle count (its RTL-exact convention) for reference;
* the wall time of each side in-process (the simulation call only) and as whole processes (interpreter
  start, imports, reading the files, the run, writing the report), and the ratios.

Without a SCALE-Sim interpreter the benchmark compares against the reports SCALE-Sim 3.0.0 wrote earlier
(``tests/data/scalesim3/``, how they were made: its README) when it has one for the run, and says so.

SCALE-Sim is not a dependency of hwsim. Install it into its own virtual environment (SCALE-Sim 3.0.0 needs
numpy < 2.4)::

    python3 -m venv /tmp/scalesim-venv
    /tmp/scalesim-venv/bin/pip install scalesim "numpy<2.4"

and point the benchmark at that interpreter with ``--scalesim-python`` (default: ``$SCALESIM_PYTHON`` or
``/tmp/scalesim-venv/bin/python``). SCALE-Sim runs with its traces off (``save_disk_space=True``); one
ResNet-18 run takes minutes. Without SCALE-Sim the benchmark prints hwsim's side and says what is missing.

Usage: python benchmarks/vs_scalesim.py [--config CFG] [--layout CSV] [--scalesim-python PY] [--stored]
       [--topologies Resnet18 alexnet | FILE.csv ...] [--dataflows os ws is] [--json FILE]

``--stored`` skips SCALE-Sim even when it is installed and uses the stored reports. The small-SRAM runs
(drains and stalls): ``--config examples/scalesim/small_sram_64x64.cfg --topologies tail_layers``.

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
STORED = REPO / "tests" / "data" / "scalesim3"  # reports SCALE-Sim 3.0.0 wrote (README there)
STORED_CONFIGS = {"google.cfg": "google", "small_sram_64x64.cfg": "small"}  # config file -> run-name part

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
    if arg is None and not os.environ.get("SCALESIM_PYTHON"):
        try:  # installed beside hwsim
            import importlib.metadata as md

            import scalesim.scale_sim  # noqa: F401

            return sys.executable, md.version("scalesim")
        except ImportError:
            pass
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

    compare_with_scalesim(cfg, topo, dataflow, convention="scalesim")  # warm: imports, first-call costs
    t0 = time.perf_counter()
    cmp = compare_with_scalesim(cfg, topo, dataflow, convention="scalesim")
    inproc = time.perf_counter() - t0
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "hwsim.cli", "simulate", "--scalesim-config", str(cfg),
                        "--topology", str(topo), "--dataflow", dataflow, "--convention", "scalesim"],
                       capture_output=True, text=True)
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


def stored_scalesim(cfg: Path, topo: Path, dataflow: str) -> dict | None:
    """The COMPUTE_REPORT SCALE-Sim 3.0.0 wrote for this run earlier (tests/data/scalesim3), if there is one."""
    name = STORED_CONFIGS.get(cfg.name)
    rep = STORED / f"{topo.stem}_{name}_{dataflow}" / "COMPUTE_REPORT.csv"
    if name is None or not rep.is_file():
        return None
    rows = [[x.strip() for x in line.split(",") if x.strip()] for line in rep.read_text().splitlines()[1:]]
    out = {"rows": [{"total": int(x[2]), "stall": int(x[3]), "total_incl_prefetch": int(x[1])} for x in rows if x],
           "stored": str(rep.relative_to(REPO))}
    for line in (STORED / "wall_times.csv").read_text().splitlines()[1:]:
        run, seconds, *_ = line.split(",")
        if run == rep.parent.name:
            out["stored_process_s"] = float(seconds)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(SCALESIM / "google.cfg"),
                    help="SCALE-Sim .cfg (default: examples/scalesim/google.cfg)")
    ap.add_argument("--layout", default=str(SCALESIM / "no_layout.csv"),
                    help="SCALE-Sim layout .csv, which SCALE-Sim 3 always opens (default: examples/scalesim/"
                         "no_layout.csv, a header only: no custom layout)")
    ap.add_argument("--scalesim-python", help="interpreter with scalesim installed")
    ap.add_argument("--stored", action="store_true",
                    help="compare with the stored SCALE-Sim 3.0.0 reports (tests/data/scalesim3), do not run it")
    ap.add_argument("--topologies", nargs="+", default=["Resnet18", "alexnet"],
                    help="names in examples/scalesim/ or paths to SCALE-Sim topology .csv files")
    ap.add_argument("--dataflows", nargs="+", default=["os", "ws", "is"])
    ap.add_argument("--json", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each run's table appears as soon as it is done
    cfg, layout = Path(args.config).resolve(), Path(args.layout).resolve()  # SCALE-Sim runs in a temp dir
    py, version = (None, "--stored given") if args.stored else _scalesim_python(args.scalesim_python)
    if py:
        print(f"SCALE-Sim {version} at {py} (traces off)")
    else:
        print(f"SCALE-Sim not run: {version}. Comparing with the reports SCALE-Sim 3.0.0 wrote earlier "
              f"({STORED.relative_to(REPO)}, see its README) where there is one; run times of SCALE-Sim are the "
              "stored ones. To run it, install:\n"
              "  python3 -m venv /tmp/scalesim-venv && /tmp/scalesim-venv/bin/pip install scalesim==3.0.0 "
              "'numpy<2.4'\n"
              "  python benchmarks/vs_scalesim.py --scalesim-python /tmp/scalesim-venv/bin/python")
    results = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for given in args.topologies:
            topo = Path(given).resolve() if given.endswith(".csv") else SCALESIM / f"{given}.csv"
            name = topo.stem
            for df in args.dataflows:
                h = run_hwsim(cfg, topo, df)
                s = run_scalesim(py, cfg, topo, layout, df, tmp) if py else stored_scalesim(cfg, topo, df)
                cmp = h["cmp"]
                src = ("SCALE-Sim run now" if py else f"stored SCALE-Sim 3.0.0 report {s['stored']}" if s
                       else "no SCALE-Sim report")
                print(f"\n== {name}, {cmp.config.rows}x{cmp.config.cols}, dataflow {df} ({src})")
                hdr = (f"{'layer':<10} {'hwsim: Total':>12} {'SCALE-Sim':>10} {'stalls':>8} {'SCALE-Sim':>9} "
                       f"{'hwsim: incl. pref.':>18} {'SCALE-Sim':>10} {'equal':>5} {'hwsim (own)':>12}")
                print(hdr)
                print("-" * len(hdr))
                equal = 0
                rows = s.get("rows") if s else None
                if rows is not None and len(rows) != len(cmp.layers):
                    print(f"SCALE-Sim reported {len(rows)} layers, hwsim {len(cmp.layers)}: not compared")
                    rows = None
                per_layer = []
                for i, lc in enumerate(cmp.layers):
                    mm, x = lc.scalesim_memory, lc.repeats
                    mine = (mm.total_cycles * x, mm.stall_cycles * x, mm.total_incl_prefetch * x)
                    if rows:
                        theirs = (rows[i]["total"], rows[i]["stall"], rows[i]["total_incl_prefetch"])
                        ok = theirs == mine
                        equal += ok
                        t = [f"{v:,}" for v in theirs]
                    else:
                        theirs, ok, t = None, None, ["-"] * 3
                    print(f"{lc.name:<10} {mine[0]:>12,} {t[0]:>10} {mine[1]:>8,} {t[1]:>9} {mine[2]:>18,} {t[2]:>10} "
                          f"{'-' if ok is None else 'yes' if ok else 'NO':>5} {lc.hwsim_cycles:>12,}")
                    keys = ("total", "stall", "total_incl_prefetch")
                    per_layer.append({"layer": lc.name, "hwsim_scalesim_convention": dict(zip(keys, mine, strict=True)),
                                      "scalesim": theirs and dict(zip(keys, theirs, strict=True)),
                                      "hwsim_own": lc.hwsim_cycles})
                line = (f"hwsim: {h['in_process_s'] * 1e3:.1f} ms in-process, {h['process_s']:.2f} s as a process")
                if s and "error" in s:
                    line += f"; SCALE-Sim failed: {s['error']}"
                elif s and "in_process_s" in s:
                    line += (f"; SCALE-Sim: {s['in_process_s']:.1f} s in-process, {s['process_s']:.1f} s as a process; "
                             f"run-time ratio SCALE-Sim/hwsim {s['in_process_s'] / h['in_process_s']:,.0f}x "
                             f"in-process, {s['process_s'] / h['process_s']:,.0f}x as processes")
                elif s and "stored_process_s" in s:
                    line += (f"; SCALE-Sim (stored run, {STORED.relative_to(REPO)}/wall_times.csv): "
                             f"{s['stored_process_s']:.1f} s as a process; run-time ratio SCALE-Sim/hwsim "
                             f"{s['stored_process_s'] / h['process_s']:,.0f}x as processes")
                if rows:
                    line += (f"; {equal}/{len(cmp.layers)} layers identical in Total Cycles, Stall Cycles and "
                             "Total Cycles (incl. prefetch)")
                print(line)
                results.append({"topology": name, "dataflow": df, "layers": per_layer,
                                "hwsim_in_process_s": h["in_process_s"], "hwsim_process_s": h["process_s"],
                                "scalesim": None if not s else {k: v for k, v in s.items() if k != "rows"},
                                "scalesim_source": src,
                                "identical_layers": equal if rows else None})
    if args.json:
        Path(args.json).write_text(json.dumps({"scalesim": version if py else None, "runs": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
