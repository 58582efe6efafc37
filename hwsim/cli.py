"""The ``hwsim`` command line. Bad input prints one line ``hwsim: error: ...`` and exits with status 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hwsim.config import DATAFLOWS, OVERFLOW_MODES, ROUNDING_MODES, WEIGHT_FORMATS, MacArrayConfig
from hwsim.errors import HwsimError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints the usage too)
        raise HwsimError(message)


def _load_config_file(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise HwsimError(f"--config={path!r} is not allowed: no such file")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parse error becomes one line
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HwsimError(f"--config={path!r} is not valid YAML/JSON: {first}") from None
    if isinstance(data, dict) and "mac_array" in data:
        data = data["mac_array"]
    if not isinstance(data, dict):
        raise HwsimError(f"--config={path!r} is not allowed: expected a mapping of MacArrayConfig fields")
    return data


_FLAG_FIELDS = {
    "rows": "rows", "cols": "cols", "dataflow": "dataflow", "weights": "weight_format",
    "act_bits": "act_bits", "acc_bits": "acc_bits", "overflow": "overflow", "rounding": "rounding",
    "input_sram": "input_sram_bytes", "weight_sram": "weight_sram_bytes", "output_sram": "output_sram_bytes",
    "sram_banks": "sram_banks", "sram_word_bits": "sram_word_bits", "dram_bw": "dram_bytes_per_cycle",
    "clock_mhz": "clock_mhz",
}


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("MAC array configuration (defaults: MacArrayConfig)")
    g.add_argument("--config", help="YAML/JSON file of MacArrayConfig fields (flags override it)")
    g.add_argument("--rows", type=int)
    g.add_argument("--cols", type=int)
    g.add_argument("--dataflow", help=f"one of {', '.join(DATAFLOWS)}")
    g.add_argument("--weights", help=f"weight format: one of {', '.join(WEIGHT_FORMATS)}")
    g.add_argument("--act-bits", type=int)
    g.add_argument("--acc-bits", type=int)
    g.add_argument("--overflow", help=f"one of {', '.join(OVERFLOW_MODES)}")
    g.add_argument("--rounding", help=f"one of {', '.join(ROUNDING_MODES)}")
    g.add_argument("--input-sram", type=int, metavar="BYTES")
    g.add_argument("--weight-sram", type=int, metavar="BYTES")
    g.add_argument("--output-sram", type=int, metavar="BYTES")
    g.add_argument("--sram-banks", type=int)
    g.add_argument("--sram-word-bits", type=int)
    g.add_argument("--dram-bw", type=float, metavar="BYTES_PER_CYCLE")
    g.add_argument("--clock-mhz", type=float)


def _config_from_args(args) -> MacArrayConfig:
    fields = _load_config_file(args.config) if args.config else {}
    for flag, field_name in _FLAG_FIELDS.items():
        v = getattr(args, flag)
        if v is not None:
            fields[field_name] = v
    return MacArrayConfig.from_dict(fields)


def _json_file(value: str) -> Path:
    p = Path(value)
    if p.is_dir():
        raise HwsimError(f"--json={value!r} is not allowed: it is a directory, expected a file path")
    if not p.parent.is_dir():
        raise HwsimError(f"--json={value!r} is not allowed: directory {str(p.parent)!r} does not exist")
    return p


def _directory(flag: str, value: str) -> Path:
    p = Path(value)
    if p.exists() and not p.is_dir():
        raise HwsimError(f"{flag}={value!r} is not allowed: it exists and is not a directory")
    return p


def _check_output_paths(args) -> None:
    """Output paths are checked before any work is done, so a bad one costs nothing already computed."""
    if getattr(args, "json", None):
        args.json = _json_file(args.json)
    for flag, attr in (("--output", "output"), ("--run-dir", "run_dir")):
        if getattr(args, attr, None):
            setattr(args, attr, _directory(flag, getattr(args, attr)))


def _write_json(path: Path | None, data: dict) -> None:
    """Write ``--json`` after the table is printed, so a failing write loses nothing on screen."""
    if path is None:
        return
    try:
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as e:
        raise HwsimError(f"--json={str(path)!r} could not be written: {e.strerror}") from None


def _family(value: str) -> str:
    if value != "mac-array":
        raise HwsimError(f"family={value!r} is not allowed: expected mac-array")
    return value


# ------------------------------------------------------------------------------------------ commands
def _cmd_generate(args) -> int:
    from hwsim.rtl.mac_array import write_verilog

    cfg = _config_from_args(args)
    v, j = write_verilog(cfg, args.output)
    print(f"wrote {v}")
    print(f"wrote {j}")
    return 0


def _cmd_cosim(args) -> int:
    from hwsim.cosim.regression import run_regression

    cfg = _config_from_args(args)
    if cfg.dataflow not in ("ws", "os"):
        raise HwsimError(f"dataflow={cfg.dataflow!r} has no RTL: expected ws or os")
    if args.layers < 1:
        raise HwsimError(f"--layers={args.layers} is not allowed: expected an integer >= 1")
    print(f"building {cfg.top_name} with Verilator (cached builds are reused) ...", file=sys.stderr)
    rep = run_regression(cfg, seed=args.seed, count=args.layers, waves=args.waves, workdir=args.run_dir)
    print(f"{cfg.top_name}: seed {args.seed}, {len(rep.layers)} layers "
          f"({'cached build' if rep.build_cached else 'fresh build'})")
    hdr = f"{'layer':<8} {'kind':<5} {'shape':<44} {'vectors':>8} {'mismatch':>8} {'rtl cyc':>9} {'pred cyc':>9}  ok"
    print(hdr)
    print("-" * len(hdr))
    for r in rep.layers:
        ok = r["mismatches"] == 0 and r["rtl_cycles"] == r["predicted_cycles"]
        print(f"{r['name']:<8} {r['kind']:<5} {str(r['shape'])[:44]:<44} {r['vectors']:>8} {r['mismatches']:>8} "
              f"{r['rtl_cycles']:>9} {r['predicted_cycles']:>9}  {'yes' if ok else 'NO'}")
    rtl = sum(r["rtl_cycles"] for r in rep.layers)
    print(f"total: {rep.vectors} vectors compared, {rep.mismatches} mismatches, "
          f"{rep.cycle_mismatches} layers with RTL cycles != predicted; {rtl} RTL cycles in "
          f"{rep.wall_seconds:.2f} s ({rtl / max(rep.wall_seconds, 1e-9):,.0f} cycles/s)")
    print(f"run directory: {rep.workdir} (sim.log{', dump.fst' if args.waves else ''})")
    _write_json(args.json, rep.as_dict())
    return 0 if rep.passed else 1


def _cmd_cost(args) -> int:
    from hwsim.cost import CostModel, format_tables, tables_as_dict

    model = CostModel(node_nm=args.node, dram=args.dram)
    print(format_tables(model))
    _write_json(args.json, tables_as_dict(model))
    return 0


def _cmd_synth(args) -> int:
    from hwsim import synth

    cfg = _config_from_args(args)
    rep = synth.synth_mac_array(cfg)
    print(synth.format_synth_report(rep))
    if args.requant:
        print()
        print(synth.format_requant_comparison(synth.compare_requantizers(cfg)))
    _write_json(args.json, rep.as_dict())
    return 0


def _cmd_simulate(args) -> int:
    from hwsim.simulate import format_report, simulate

    rep = simulate(args.model, args.accel, args.compress, node_nm=args.node, dram=args.dram)
    print(format_report(rep))
    _write_json(args.json, rep.as_dict())
    return 0 if rep.simulated_equals_reference else 1


def _family_command(sub, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand on one accelerator family, configured by the config flags."""
    p = sub.add_parser(name, help=help)
    p.add_argument("family", type=_family, help="accelerator family: mac-array")
    _add_config_flags(p)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hwsim", description="Cycle-level simulator and RTL co-design for compressed-NN accelerators")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    m = sub.add_parser("simulate", help="run a compressed model on an accelerator: accuracy, cycles, energy, area")
    m.add_argument("model", nargs="?", default="digits-cnn", help="zoo name (digits-cnn, digits-mlp) or model .npz")
    m.add_argument("--accel", default="mac-array-8x8-ws",
                   help="preset mac-array-RxC-ws|os|is[-format] or a YAML/JSON MacArrayConfig file")
    m.add_argument("--compress", default="int8", help="compression spec, e.g. int8, int4, binary, prune50+int8")
    m.add_argument("--node", type=int, default=45, help="technology node for the cost model (nm)")
    m.add_argument("--dram", default="lpddr4", help="lpddr4, ddr3 or hbm2")
    m.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    m.set_defaults(func=_cmd_simulate)

    g = _family_command(sub, "generate", "write synthesizable Verilog + metadata JSON")
    g.add_argument("-o", "--output", default="out", help="output directory (default: out)")
    g.set_defaults(func=_cmd_generate)

    c = _family_command(sub, "cosim", "randomized cocotb + Verilator regression against the reference")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--layers", type=int, default=5, help="random layers to run (default 5)")
    c.add_argument("--waves", action="store_true", help="dump an FST waveform (dump.fst in the run directory)")
    c.add_argument("--run-dir", metavar="DIR",
                   help="directory for sim.log and dump.fst (default: a new temporary one)")
    c.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    c.set_defaults(func=_cmd_cosim)

    k = sub.add_parser("cost", help="print the energy/area tables with their sources")
    k.add_argument("--node", type=int, default=45, help="technology node in nm (default 45)")
    k.add_argument("--dram", default="lpddr4", help="lpddr4, ddr3 or hbm2 (default lpddr4)")
    k.add_argument("--json", metavar="FILE", help="also write the tables as JSON")
    k.set_defaults(func=_cmd_cost)

    s = _family_command(sub, "synth", "Yosys synthesis area of the generated Verilog, beside the analytic estimate")
    s.add_argument("--requant", action="store_true", help="also compare shift- vs multiplier-based requantizers")
    s.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    s.set_defaults(func=_cmd_synth)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        _check_output_paths(args)
        return args.func(args)
    except HwsimError as e:
        print(f"hwsim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
