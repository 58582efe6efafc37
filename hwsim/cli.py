"""The ``hwsim`` command line. Bad input prints one line ``hwsim: error: ...`` and exits with status 2.

Every family command (``generate``, ``cosim``, ``synth``, ``cost``) takes the family's name and its
config flags, both read from the registry (:mod:`hwsim.families`): the flags are generated from the
config dataclass's fields, so adding a family needs no edit here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
from pathlib import Path

from hwsim import families as fams
from hwsim.errors import HwsimError

__all__ = ["build_parser", "main"]

#: flag -> config field, for turning argparse's type errors into field-named messages.
_FLAG_FIELD: dict[str, str] = {}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints the usage too)
        m = re.match(r"argument (\w+): invalid choice: '(.*)' \(choose from (.*)\)$", message)
        if m:
            allowed = ", ".join(c.strip(" '") for c in m.group(3).split(","))
            raise HwsimError(f"{m.group(1).lower()}={m.group(2)!r} is not allowed: expected one of {allowed}")
        m = re.match(r"argument ([-\w]+)(?:/[-\w]+)*: invalid (\w+) value: '(.*)'$", message)
        if m:
            what = {"int": "an integer", "float": "a number"}.get(m.group(2), m.group(2))
            raise HwsimError(f"{_FLAG_FIELD.get(m.group(1), m.group(1))}={m.group(3)!r} is not allowed: "
                             f"expected {what}")
        m = re.match(r"the following arguments are required: (.*)$", message)
        if m:
            what = m.group(1)
            choices = {"FAMILY": [f.name for f in fams.all_families()], "command": ["simulate", "families",
                                                                             *_COMMANDS, "sweep", "study"]}
            if what in choices:
                raise HwsimError(f"{what.lower()} is missing: expected one of {', '.join(choices[what])}")
            raise HwsimError(f"{what} is missing: expected a value for it ('{self.prog} --help')")
        raise HwsimError(message)


class _Given(argparse.Action):
    """Stores the value and records that the option was given (a default and an explicit value may be equal)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        given = getattr(namespace, "given_options", None) or set()
        namespace.given_options = given | {self.dest}


# ------------------------------------------------------------------------------------------ config flags
#: The flags each family command declares itself; a config field with one of these flags takes ``--cfg-FIELD``.
_COMMAND_FLAGS = {
    "generate": {"-o", "--output"},
    "cosim": {"--seed", "--layers", "--waves", "--run-dir", "--json"},
    "synth": {"--node", "--target", "--seed", "--refresh", "--json"},
    "cost": {"--node", "--dram", "--json"},
}


def _add_config_flags(p: argparse.ArgumentParser, fam: fams.Family, reserved: frozenset[str] = frozenset()) -> None:
    cls = fam.config_cls
    g = p.add_argument_group(f"{fam.name} configuration (fields of {cls.__name__}; flags override --config)")
    g.add_argument("--config", metavar="FILE",
                   help=f"YAML/JSON mapping of {cls.__name__} fields, optionally under a '{fam.key}:' key")
    for f in cls.cli_fields():
        help_text = f.help
        if f.choices:
            help_text += f" One of: {', '.join(f.choices)}."
        default = "derived" if f.default is None and f.optional else f.default
        help_text += f" (default: {default})"
        kwargs = {"dest": f"cfg__{f.name}", "default": None, "help": help_text.replace("%", "%%")}
        if f.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = f.type
            kwargs["metavar"] = "|".join(f.choices) if f.choices else f.type.__name__.upper()
        flags = [f.flag if f.flag not in reserved else "--cfg-" + f.flag[2:],
                 *(a for a in f.aliases if a not in reserved)]
        for flag in flags:
            _FLAG_FIELD[flag] = f.name
        g.add_argument(*flags, **kwargs)


def _config_from_args(args):
    fam = args.family_obj
    data = fams.load_mapping_file(args.config, "--config") if args.config else {}
    for key in (fam.key, fam.name):
        if key in data:
            data = data[key]
            break
    if not isinstance(data, dict):
        raise HwsimError(f"--config={args.config!r} is not allowed: expected a mapping of "
                         f"{fam.config_cls.__name__} fields")
    data = dict(data)
    for name, value in vars(args).items():
        if name.startswith("cfg__") and value is not None:
            data[name[5:]] = value
    return fam.config_cls.from_dict(data)


def _family_options(args, command: str) -> list[tuple[fams.CliOption, object]]:
    """The family-specific options of ``command`` that were given, with their callables."""
    fam = args.family_obj
    return [(o, fams._resolve(o.run)) for o in fam.cli_options
            if o.command == command and o.run is not None and getattr(args, o.dest, None) not in (None, False)]


# ------------------------------------------------------------------------------------------ output paths
def _json_file(value: str) -> Path:
    p = Path(value)
    if p.is_dir():
        raise HwsimError(f"--json={value!r} is not allowed: it is a directory, expected a file path")
    if not p.parent.is_dir():
        raise HwsimError(f"--json={value!r} is not allowed: directory {str(p.parent)!r} does not exist")
    return p


def _directory(flag: str, value: str) -> Path:
    """``value`` as an absolute path (co-simulations run in another directory) of a directory that can be
    created and written: tried now, before any work, and what the try created is removed again, so a
    command that fails later on a bad input leaves nothing behind."""
    p = Path(value).expanduser().absolute()
    if p.exists() and not p.is_dir():
        raise HwsimError(f"{flag}={value!r} is not allowed: it exists and is not a directory")
    missing = [q for q in (p, *p.parents) if not q.exists()]
    try:
        p.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=p).close()
    except OSError as e:
        raise HwsimError(f"{flag}={value!r} is not allowed: cannot create or write it ({e.strerror or e}); "
                         "expected a writable directory") from None
    finally:
        for q in missing:  # deepest first
            with contextlib.suppress(OSError):
                q.rmdir()
    return p


def _check_output_paths(args) -> None:
    """Output paths are checked before any work is done, so a bad one costs nothing already computed."""
    if getattr(args, "json", None):
        args.json = _json_file(args.json)
    for flag, attr in (("--output", "output"), ("--run-dir", "run_dir")):
        if getattr(args, attr, None):
            setattr(args, attr, _directory(flag, getattr(args, attr)))


def _check_study(args) -> None:
    """``hwsim study`` without NAME lists the studies: options for a run would be ignored, so are refused;
    with NAME, the name is checked before ``--output`` is created."""
    if args.name:
        fams.find_study(args.name)
        return
    for flag, given in (("--output", args.output), ("--quick", args.quick), ("--json", args.json)):
        if given:
            value = "" if given is True else f"={given!r}"
            raise HwsimError(f"{flag}{value} is not allowed without a study NAME: expected 'hwsim study NAME' "
                             "with it ('hwsim study' alone lists the studies)")


def _check_option_pairs(args) -> None:
    """A family option that only carries a parameter (``--images N``) needs one of the command's options
    that does the work (``--model NAME``); given alone it would be ignored, so it is refused."""
    fam = getattr(args, "family_obj", None)
    if fam is None:
        return
    given = getattr(args, "given_options", set())
    opts = [o for o in fam.cli_options if o.command == args.command]
    runners = [o for o in opts if o.run is not None and o.metavar]
    if not runners or any(o.dest in given for o in runners):
        return
    for o in opts:
        if o.run is None and o.dest in given:
            value = getattr(args, o.dest)
            raise HwsimError(f"{o.flag}={value!r} is not allowed without "
                             f"{' or '.join(r.flag for r in runners)}: expected it with "
                             f"{' or '.join(f'{r.flag} {r.metavar}' for r in runners)} (alone it would be ignored)")


def _write_json(path: Path | None, data: dict) -> None:
    """Write ``--json`` after the table is printed, so a failing write loses nothing on screen."""
    if path is None:
        return
    try:
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    except OSError as e:
        raise HwsimError(f"--json={str(path)!r} could not be written: {e.strerror}") from None


# ------------------------------------------------------------------------------------------ commands
def _cmd_generate(args) -> int:
    cfg = _config_from_args(args)
    v, j = fams.write_verilog(cfg, args.output)
    print(f"wrote {v}")
    print(f"wrote {j}")
    return 0


def _cmd_cosim(args) -> int:
    fam = args.family_obj
    cfg = _config_from_args(args)
    run = fam.load("cosim")
    for opt, replacing in _family_options(args, "cosim"):
        if opt.replaces:  # e.g. a family's --model: a whole model instead of random layers
            text, data, passed = replacing(cfg, args)
            print(text)
            _write_json(args.json, data)
            return 0 if passed else 1
    if fam.rtl_check is not None:
        fam.load("rtl_check")(cfg)
    if args.layers < 1:
        raise HwsimError(f"--layers={args.layers} is not allowed: expected an integer >= 1")
    if sys.stderr.isatty():  # a note for people; logs and scripts get only the result or one error line
        print(f"building {cfg.top_name} with Verilator (cached builds are reused) ...", file=sys.stderr)
    rep = run(cfg, seed=args.seed, count=args.layers, waves=args.waves, workdir=args.run_dir)
    print(f"{cfg.top_name}: seed {args.seed}, {len(rep.layers)} layers "
          f"({'cached build' if rep.build_cached else 'fresh build'})")
    hdr = (f"{'layer':<8} {'kind':<5} {'shape':<44} {'vectors':>8} {'mismatch':>8} {'rtl cyc':>9} {'pred cyc':>9} "
           f"{'counts':>7}  ok")
    print(hdr)
    print("-" * len(hdr))
    for r in rep.layers:
        diffs = r.get("count_diffs")
        counts = "-" if diffs is None else ("equal" if not diffs else f"{len(diffs)} diff")
        ok = r["mismatches"] == 0 and r["rtl_cycles"] == r["predicted_cycles"] and not diffs
        print(f"{r['name']:<8} {r['kind']:<5} {str(r['shape'])[:44]:<44} {r['vectors']:>8} {r['mismatches']:>8} "
              f"{r['rtl_cycles']:>9} {r['predicted_cycles']:>9} {counts:>7}  {'yes' if ok else 'NO'}")
        for name, (rtl_n, model_n) in (diffs or {}).items():
            print(f"         {name}: RTL {rtl_n} != model {model_n}")
    rtl = sum(r["rtl_cycles"] for r in rep.layers)
    print(f"total: {rep.vectors} vectors compared, {rep.mismatches} mismatches, "
          f"{rep.cycle_mismatches} layers with RTL cycles != predicted, "
          f"{rep.count_mismatches if rep.counts_checked else 'unchecked'} layers with action/stall count "
          f"differences; {rtl} RTL cycles in "
          f"{rep.wall_seconds:.2f} s ({rtl / max(rep.wall_seconds, 1e-9):,.0f} cycles/s)")
    print(f"run directory: {rep.workdir} (sim.log{', dump.fst' if args.waves else ''})")
    _write_json(args.json, rep.as_dict())
    return 0 if rep.passed else 1


def _cmd_cost(args) -> int:
    from hwsim.cost import CostModel, format_inventory, format_tables, tables_as_dict

    model = CostModel(node_nm=args.node, dram=args.dram)
    fam = getattr(args, "family_obj", None)
    if fam is None:
        print(format_tables(model))
        _write_json(args.json, tables_as_dict(model))
        return 0
    cfg = _config_from_args(args)
    inv = fam.load("inventory")(cfg)
    print(format_inventory(model, inv))
    _write_json(args.json, {"family": fam.name, "config": cfg.to_dict(), "node_nm": model.node_nm,
                            "dram": model.dram, "inventory": model.price_inventory(inv),
                            "area": model.area(inv).as_dict()})
    return 0


def _cmd_synth_fpga(args, cfg) -> int:
    from hwsim import fpga
    from hwsim.cost import CostModel

    res = fpga.place_and_route(cfg, args.target, args.seed, refresh=args.refresh, progress=sys.stderr.isatty())
    fam = args.family_obj
    analytic = CostModel(args.node).area(fam.load("inventory")(cfg)).total_mm2 if fam.inventory else None
    print(fpga.format_fpga_report(res, title=cfg.describe() if hasattr(cfg, "describe") else fam.name,
                                  analytic_mm2=analytic))
    _write_json(args.json, {"family": fam.name, "config": cfg.to_dict(), **res.as_dict(),
                            "analytic_area_mm2": analytic})
    return 0


def _cmd_synth(args) -> int:
    from hwsim import synth
    from hwsim.cost import CostModel

    CostModel(node_nm=args.node)  # the node is checked before any work
    if args.target is not None:
        from hwsim.fpga import check_target

        check_target(args.target)  # before any work
        return _cmd_synth_fpga(args, _config_from_args(args))
    cfg = _config_from_args(args)
    options = _family_options(args, "synth")
    synth.check(cfg)  # before any work
    rep = synth.synth(cfg, node_nm=args.node)
    print(synth.format_synth_report(rep))
    data = rep.as_dict()
    for opt, run in options:
        text, extra = run(cfg, args)
        print()
        print(text)
        data[opt.flag.lstrip("-")] = extra
    _write_json(args.json, data)
    return 0


def _cmd_simulate_scalesim(args) -> int:
    from hwsim.scalesim import compare_from_cli, format_comparison

    cmp = compare_from_cli(args)
    print(format_comparison(cmp))
    _write_json(args.json, cmp.as_dict())
    return 0


#: ``simulate`` options that apply in one mode only (defaults None: given or not), and their defaults.
_MODEL_ONLY = {"model": ("MODEL", "digits-cnn"), "accel": ("--accel", fams.DEFAULT_ACCEL),
               "compress": ("--compress", None), "node": ("--node", 45),
               "clock_mhz": ("--clock-mhz", None), "target": ("--target", None), "pnr_seed": ("--pnr-seed", 1),
               "batch": ("--batch", 1)}


def _cmd_simulate(args) -> int:
    from hwsim.scalesim import CLI_DEFAULTS as scalesim_only
    from hwsim.simulate import format_report, simulate

    scalesim = bool(args.scalesim_config or args.topology)
    ignored, mode = (_MODEL_ONLY, "--scalesim-config/--topology") if scalesim else (scalesim_only, "a model")
    for attr, (flag, _) in ignored.items():
        if getattr(args, attr) is not None:
            expected = ("the SCALE-Sim .cfg and topology only (the array comes from the .cfg)" if scalesim
                        else "it with --scalesim-config and --topology")
            raise HwsimError(f"{flag}={getattr(args, attr)!r} is not allowed with {mode}: expected {expected}")
    if not scalesim and args.pnr_seed is not None and args.target is None:
        raise HwsimError(f"--pnr-seed={args.pnr_seed} is not allowed without --target: expected it with "
                         "--target FPGA (alone it would be ignored)")
    for attr, (_, default) in (scalesim_only if scalesim else _MODEL_ONLY).items():
        if getattr(args, attr) is None:
            setattr(args, attr, default)
    if args.dram is None:
        args.dram = "lpddr4"
    if scalesim:
        return _cmd_simulate_scalesim(args)

    rep = simulate(args.model, args.accel, args.compress, node_nm=args.node, dram=args.dram,
                   clock_mhz=args.clock_mhz, fpga_target=args.target, fpga_seed=args.pnr_seed, batch=args.batch)
    print(format_report(rep))
    _write_json(args.json, rep.as_dict())
    return 0 if rep.simulated_equals_reference else 1


def _cmd_study(args) -> int:
    if not args.name:
        for fam in fams.all_families():
            for name, _, desc in fam.studies:
                print(f"{name:<24} {fam.name:<14} {desc}")
        if not any(f.studies for f in fams.all_families()):
            print("no studies registered")
        return 0
    fam, run, _ = fams.find_study(args.name)
    result = run(out_dir=args.output, quick=args.quick)
    print(result.format())
    _write_json(args.json, {"study": args.name, "family": fam.name, **result.as_dict()})
    return 0


def _cmd_sweep(args) -> int:
    from hwsim.sweep import load_spec, run_sweep

    spec = load_spec(args.spec)  # the whole spec is checked before any point is evaluated
    res = run_sweep(spec, args.output, workers=args.workers, scheduler=args.scheduler,
                    batch_size=args.batch_size, progress=not args.no_progress)
    print(res.format())
    _write_json(args.json, res.as_dict())
    return 0


def _cmd_families(args) -> int:
    rows = fams.all_families()
    for fam in rows:
        views = fam.views()
        print(f"{fam.name}: {fam.description}")
        print(f"  config   {fam.config_cls.__name__} ({len(fam.config_cls.cli_fields())} fields; "
              f"'hwsim generate {fam.name} --help' lists the flags)")
        print(f"  presets  {', '.join(fam.presets) or '-'}" + (f"  (any {fam.preset_pattern})"
                                                               if fam.preset_pattern else ""))
        print(f"  runs     {', '.join(fam.workload_kinds) + ' layers' if fam.workload_kinds else 'no model layers'}")
        print("  views    " + ", ".join(f"{v} {'yes' if ok else 'no'}" for v, ok in views.items()))
        if fam.studies:
            print(f"  studies  {', '.join(n for n, _, _ in fam.studies)}")
        print()
    _write_json(args.json, {"families": [f.as_dict() for f in rows]})
    return 0


# ------------------------------------------------------------------------------------------ parser
_COMMANDS = {
    "generate": ("write synthesizable Verilog + metadata JSON", "rtl"),
    "cosim": ("randomized cocotb + Verilator regression against the reference", "cosim"),
    "synth": ("Yosys synthesis area of the generated Verilog, beside the analytic estimate; with --target, "
              "FPGA place and route (utilization, Fmax)", "rtl"),
    "cost": ("the energy/area tables with their sources; with a family, its inventory priced", "inventory"),
}


def _cost_flags(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = argparse.SUPPRESS if suppress else None
    p.add_argument("--node", type=int, default=d if suppress else 45, help="technology node in nm (default 45)")
    p.add_argument("--dram", default=d if suppress else "lpddr4", help="lpddr4, ddr3 or hbm2 (default lpddr4)")


def _family_parsers(sub, command: str) -> argparse.ArgumentParser:
    """``hwsim COMMAND FAMILY [flags]``: one sub-parser per registered family that has the view."""
    help_text, view = _COMMANDS[command]
    p = sub.add_parser(command, help=help_text, description=help_text)
    if command == "cost":
        _cost_flags(p, suppress=False)
        p.add_argument("--json", metavar="FILE", help="also write the tables as JSON")
    fsub = p.add_subparsers(dest="family", metavar="FAMILY", parser_class=_Parser, required=command != "cost")
    for fam in fams.all_families():
        f = fsub.add_parser(fam.name, help=fam.description, description=f"{help_text}: {fam.description}")
        # A family without this view parses, then fails with a line naming the views it has.
        f.set_defaults(family_obj=fam, needs_view=view)
        _add_config_flags(f, fam, frozenset(_COMMAND_FLAGS[command]))
        if command == "generate":
            f.add_argument("-o", "--output", default="out", help="output directory (default: out)")
        elif command == "cosim":
            f.add_argument("--seed", type=int, default=1)
            f.add_argument("--layers", type=int, default=5, help="random layers to run (default 5)")
            f.add_argument("--waves", action="store_true",
                           help="dump an FST waveform (dump.fst in the run directory)")
            f.add_argument("--run-dir", metavar="DIR",
                           help="directory for sim.log and dump.fst (default: a new temporary one)")
        elif command == "synth":
            f.add_argument("--node", type=int, default=45, help="technology node in nm (default 45)")
            f.add_argument("--target", metavar="FPGA", default=None,
                           help="place and route on this FPGA instead (ecp5-12k, ecp5-25k, ecp5-45k, ecp5-85k): "
                                "LUT/FF/DSP/BRAM, Fmax and the critical path; results are cached")
            f.add_argument("--seed", type=int, default=1, help="nextpnr's placement seed with --target (default 1)")
            f.add_argument("--refresh", action="store_true", help="with --target: run again even if cached")
        if command == "cost":
            _cost_flags(f, suppress=True)
            f.add_argument("--json", metavar="FILE", default=argparse.SUPPRESS, help="also write the result as JSON")
        elif command != "generate":
            f.add_argument("--json", metavar="FILE", help="also write the results as JSON")
        for opt in fam.cli_options:
            if opt.command == command and opt.metavar:
                f.add_argument(opt.flag, dest=opt.dest, metavar=opt.metavar, type=opt.type, default=opt.default,
                               help=opt.help, action=_Given)
            elif opt.command == command:
                f.add_argument(opt.flag, dest=opt.dest, action="store_true", help=opt.help)
    p.set_defaults(func=globals()[f"_cmd_{command}"])
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hwsim", description="Cycle-level simulator and RTL co-design for compressed-NN accelerators")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    presets = ", ".join(ps for f in fams.all_families() for ps in f.presets[:2])
    m = sub.add_parser("simulate", help="run a compressed model on an accelerator: accuracy, cycles, energy, area")
    m.add_argument("model", nargs="?", default=None,
                   help="zoo name (digits-cnn, digits-mlp), model .npz, or ONNX graph .onnx (float, QDQ, QOperator, "
                        "QONNX); default digits-cnn")
    m.add_argument("--accel", default=None,
                   help=f"a preset of any family ({presets}, ...; 'hwsim families' lists them) or a YAML/JSON "
                        f"file naming the family (default {fams.DEFAULT_ACCEL})")
    m.add_argument("--compress", default=None,
                   help="compression spec, e.g. int8, int4, binary, prune50+int8, or 'onnx' (a quantized ONNX graph's "
                        "own weights and scales; the default for such graphs, int8 otherwise)")
    m.add_argument("--node", type=int, default=None, help="technology node for the cost model (nm, default 45)")
    m.add_argument("--dram", default=None,
                   help="lpddr4, ddr3 or hbm2 (default lpddr4): DRAM energy per bit; with --scalesim-config also its "
                        "timing (JEDEC parameters), or 'fixed' (the .cfg's Bandwidth) or a DRAM parameter file")
    m.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    clk = m.add_mutually_exclusive_group()
    clk.add_argument("--clock-mhz", type=float, default=None, metavar="F",
                     help="run every unit at F MHz (default: each config's clock_mhz)")
    clk.add_argument("--target", metavar="FPGA", default=None,
                     help="run each unit at the Fmax of its RTL placed and routed on this FPGA (ecp5-12k, ecp5-25k, "
                          "ecp5-45k, ecp5-85k; 'hwsim synth FAMILY --target' results are cached and reused)")
    m.add_argument("--pnr-seed", type=int, default=None, metavar="N", help="nextpnr's seed with --target (default 1)")
    m.add_argument("--batch", type=int, default=None, metavar="N",
                   help="inferences run one after another; a unit's global buffer may keep weights on chip for the "
                        "whole batch (read from DRAM once); figures per inference, the batch's mean (default 1)")
    from hwsim.scalesim import add_cli_arguments

    add_cli_arguments(m.add_argument_group(
        "SCALE-Sim import (instead of MODEL and --accel; per-layer cycles in both conventions)"))
    m.set_defaults(func=_cmd_simulate)

    f = sub.add_parser("families", help="list the accelerator families, their presets and views")
    f.add_argument("--json", metavar="FILE", help="also write the list as JSON")
    f.set_defaults(func=_cmd_families)

    for command in _COMMANDS:
        _family_parsers(sub, command)

    sw = sub.add_parser("sweep", help="design-space sweep over config fields and compression: table, Pareto "
                                      "front, plots (resumable)")
    sw.add_argument("spec", help="sweep spec YAML/JSON (docs/sweep.md; examples/*.yaml)")
    sw.add_argument("-o", "--output", required=True, metavar="DIR",
                    help="output directory: sweep.csv/.parquet, plots, cache.jsonl (rerun to resume)")
    sw.add_argument("--workers", type=int, default=None, metavar="N",
                    help="local worker processes (default: the number of cores)")
    sw.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask distributed scheduler")
    sw.add_argument("--batch-size", type=int, default=None, metavar="N", help="points per task (default: automatic)")
    sw.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw.add_argument("--json", metavar="FILE", help="also write the summary and the Pareto front as JSON")
    sw.set_defaults(func=_cmd_sweep)

    st = sub.add_parser("study", help="reproduce a family's published claims (no NAME: list the studies)")
    st.add_argument("name", nargs="?", help="study name ('hwsim study' lists them)")
    st.add_argument("-o", "--output", metavar="DIR", help="directory for the study's plots and tables")
    st.add_argument("--quick", action="store_true", help="small sizes (what the test suite runs)")
    st.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    st.set_defaults(func=_cmd_study)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:
            fam = getattr(args, "family_obj", None)
            allowed = "the flags 'hwsim " + args.command + (f" {fam.name}" if fam else "") + " --help' lists"
            if fam is not None:
                allowed = "one of " + ", ".join(f.flag for f in fam.config_cls.cli_fields())
            raise HwsimError(f"argument {extra[0]!r} is not allowed: expected {allowed}")
        fam = getattr(args, "family_obj", None)
        if fam is not None:
            fam.load(args.needs_view)  # one line naming the family's views if it lacks this one
        _check_option_pairs(args)
        if args.command == "study":
            _check_study(args)
        _check_output_paths(args)
        return args.func(args)
    except HwsimError as e:
        print(f"hwsim: error: {e}", file=sys.stderr)
        return getattr(e, "exit_status", 2)  # 2: bad input or a build the config cannot produce; 1: a failed run
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. head: stop quietly
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
