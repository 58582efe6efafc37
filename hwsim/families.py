"""The accelerator-family registry: one record per family drives the CLI, presets, simulate, cost, synth
and co-simulation, so adding a family adds its own files and one :func:`register` call, never a branch.

A :class:`Family` names its config class (a frozen dataclass mixing in
:class:`hwsim.config.FamilyConfig`), its preset parser, the model layer kinds its units run, and its
views. Views that need Amaranth or cocotb (RTL, co-simulation) are ``"module:attribute"`` strings
imported only when used (:meth:`Family.load`), so ``hwsim simulate`` never imports either.

Entry-point protocol (what each view's callable takes and returns)
------------------------------------------------------------------
``parse_preset(name) -> config | None``
    The config a preset name stands for, or None if the name is not this family's.
``inventory(cfg) -> hwsim.cost.Inventory``
    The priced components of one accelerator (see :mod:`hwsim.cost`).
``lower(cfg, layer) -> ops``, ``predict(cfg, op) -> Stats``, ``run(cfg, layer, inputs) -> (values, Stats)``
    The unit protocol (:mod:`hwsim.unit`): the work one layer of a compiled model gives the unit (raising
    :class:`HwsimError` for a layer the unit cannot run), its counts in closed form, and the bit-exact value
    path of the layer on a batch. :mod:`hwsim.run` drives every family through these.
``run_reference(cfg, layer, inputs) -> values``
    The layer through the family's bit-exact reference (the spec the unit's ``run`` must equal).
``describe_layer(cfg, layer, ops) -> (shape, weight_format)``
    Short labels of a layer for the report.
``compile(cfg, model, compress, calib, train_data) -> (compiled model, label)``
    Optional: a family whose number formats are its own (e.g. an LSTM engine's fixed point) compiles the
    float model itself; the compiled model offers ``unit_layers()``, ``quantize_input(x)`` and
    ``run_int(x_int, cfg=..., layer_fn=...)`` as :class:`hwsim.models.compressed.CompressedModel` does.
    Without it, :func:`hwsim.run.compile_model` compresses with :func:`hwsim.models.compress.compress`.
``fit_model(cfg, layers, chosen) -> (cfg, notes)``
    Optional: the config fitted to the compiled layers the unit runs (e.g. a quantized ONNX graph's float
    scales need float32 requantizer lanes), changing only fields not in ``chosen`` (None: the user chose
    every field) and saying so in ``notes``; a chosen field the layers cannot run with is a one-line error.
``shape_ops(cfg, rows) -> [(op, multiplicity), ...]``
    Optional: the ops of shape-only layer descriptions (a sweep's ``workload.layers`` or a SCALE-Sim
    topology: :class:`hwsim.workloads.GemmLayer` / ``ConvLayer`` rows, or ``hwsim.sweep.LayerRow`` rows
    of another kind), identical ops merged, each checked like ``lower`` does.
``rtl(cfg) -> (verilog text, metadata dict)``
    The generated Verilog of the top ``cfg.top_name`` and its metadata (ports from the signature).
``rtl_check(cfg) -> None``
    Raises :class:`HwsimError` if ``cfg`` has no RTL (e.g. a dataflow modelled only in the cycle model).
``cosim(cfg, seed, count, waves, workdir) -> report``
    Randomized Verilator regression; the report has ``layers`` (dicts with name, kind, shape, vectors,
    mismatches, rtl_cycles, predicted_cycles), ``vectors``, ``mismatches``, ``cycle_mismatches``,
    ``passed``, ``wall_seconds``, ``build_cached``, ``workdir`` and ``as_dict()``.
``cosim_run(cfg, layer, inputs, ctx) -> hwsim.cosim.model_cosim.LayerCosim``
    Optional: one layer of a compiled model on the family's RTL, for the model co-simulation
    (:func:`hwsim.cosim.model_cosim.run_model_cosim`, which runs :func:`hwsim.run.run_model` with this in
    place of ``run``). ``inputs`` are the layer's int64 input batches; the result holds the output values
    and every RTL run the layer made (the op as it ran, with the batch in its shape; the config the RTL was
    built from; the measured :class:`hwsim.unit.Stats`); the co-simulation compares the values with
    ``run_reference`` and each run's cycles and counted actions with ``predict``. ``ctx``
    (:class:`hwsim.cosim.model_cosim.CosimContext`) gives the run directories, the shared Verilator builds
    and the waves flag. The callable may carry a ``check(cfg, layer)`` attribute: the model co-simulation
    runs it on every layer before any build, so a layer the RTL cannot run fails before any work.

Built-in families are the modules listed in :data:`BUILTIN`, each defining ``FAMILY``; they are
registered on first use of the registry. Third-party families register themselves from the
``hwsim.families`` entry-point group (the entry point names a callable that calls :func:`register`).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.errors import HwsimError

__all__ = [
    "DEFAULT_ACCEL",
    "VIEWS",
    "Accelerator",
    "CliOption",
    "model_cosim_options",
    "Family",
    "Unit",
    "all_families",
    "config_from_mapping",
    "family_of",
    "find_study",
    "get_family",
    "load_mapping_file",
    "register",
    "resolve_accel",
    "unregister",
    "write_verilog",
]

#: The views a family may provide, in the order ``hwsim families`` lists them.
VIEWS = ("reference", "cycle model", "RTL", "cosim", "synth", "cost")


@dataclass(frozen=True)
class CliOption:
    """A family-specific option of one CLI command (e.g. ``synth mac-array --requant``).

    ``run(cfg, args) -> (text, json_data)`` runs when the flag is given and its text is printed after the
    command's own output; ``json_data`` is stored under ``flag`` in ``--json``.

    With ``metavar`` the option takes a value (``--images N``; ``type`` converts it, ``default`` when
    absent); a valued option without ``run`` only carries a parameter that another option's ``run``
    reads from ``args`` (attribute ``opt__<flag with - as _>``). With ``replaces`` the option's ``run``
    does the command's work instead: ``run(cfg, args) -> (text, json_data, passed)``, exit status 0 if
    ``passed`` else 1.
    """

    command: str
    flag: str
    help: str
    run: str | Callable | None = None
    metavar: str | None = None
    type: Callable = str
    default: object = None
    replaces: bool = False

    @property
    def dest(self) -> str:
        return "opt__" + self.flag.lstrip("-").replace("-", "_")


def model_cosim_options(model_help: str, compress_help: str = "compression spec (default int8)",
                        compress_default: str | None = None) -> tuple[CliOption, ...]:
    """The ``hwsim cosim FAMILY --model NAME [--compress SPEC] [--images N] [--accel ...]`` options of a
    family with ``cosim_run`` (the model co-simulation, :mod:`hwsim.cosim.model_cosim`); ``model_help`` says
    what of the model runs on the family's RTL, ``compress_help`` which specs it takes."""
    return (
        CliOption("cosim", "--model", model_help, "hwsim.cosim.model_cosim:model_option", metavar="NAME",
                  replaces=True),
        CliOption("cosim", "--compress", f"with --model: {compress_help}", metavar="SPEC", default=compress_default),
        CliOption("cosim", "--images", "with --model: test images (default: all 450)", metavar="N", type=int),
        CliOption("cosim", "--accel", "with --model: accelerator preset or YAML/JSON file (default: the config "
                  "flags)", metavar="PRESET|FILE"),
    )

@dataclass(frozen=True)
class Family:
    """One accelerator family (see the module docstring for each entry point's protocol).

    Parameters
    ----------
    name : str
        CLI name, e.g. ``mac-array``; also the key its YAML/JSON configs may sit under (as ``mac_array``).
    config_cls : type
        Frozen dataclass mixing in :class:`hwsim.config.FamilyConfig`.
    description : str
        One line for ``hwsim families``.
    presets : tuple of str
        Example preset names, listed by ``hwsim families``; ``preset_pattern`` describes all of them.
    workload_kinds : tuple of str
        Model layer kinds (``conv2d``, ``linear``, ...) this family's units run in ``simulate``.
    reference, cycle_model : str
        Modules holding the bit-exact reference and the cycle-level model.
    synth_groups : tuple of (label, module kinds, inventory components), or a callable of the config
        returning one
        Rows of the synthesized-vs-analytic table of ``hwsim synth``: synthesized modules of the given
        kinds against the analytic area of the given inventory components (a row without module kinds is
        hardware beside the top: analytic only, out of the totals).
    studies : tuple of (name, entry point, description)
        ``hwsim study NAME``: reproductions of the published claims the family is built from. The entry
        point is ``run(out_dir=None, quick=False) -> result`` with ``result.format() -> str`` (the
        table printed) and ``result.as_dict() -> dict`` (``--json``); plots go to ``out_dir``.
    """

    name: str
    config_cls: type
    description: str
    presets: tuple[str, ...] = ()
    preset_pattern: str = ""
    parse_preset: str | Callable | None = None
    workload_kinds: tuple[str, ...] = ()
    reference: str | None = None
    cycle_model: str | None = None
    inventory: str | Callable | None = None
    lower: str | Callable | None = None
    predict: str | Callable | None = None
    run: str | Callable | None = None
    run_reference: str | Callable | None = None
    describe_layer: str | Callable | None = None
    shape_ops: str | Callable | None = None
    compile: str | Callable | None = None
    fit_model: str | Callable | None = None
    execute: str | Callable | None = None
    check_op: str | Callable | None = None
    rtl: str | Callable | None = None
    rtl_check: str | Callable | None = None
    cosim: str | Callable | None = None
    cosim_run: str | Callable | None = None
    synth_groups: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] | Callable = ()
    cli_options: tuple[CliOption, ...] = ()
    studies: tuple[tuple[str, str | Callable, str], ...] = ()

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")

    def load(self, attr: str) -> Callable:
        """The entry point ``attr`` (importing its module now); an error names a missing view."""
        target = getattr(self, attr)
        if target is None:
            raise HwsimError(f"family={self.name!r} has no {attr} entry point: its views are "
                             f"{', '.join(v for v, ok in self.views().items() if ok) or 'none'}")
        return _resolve(target)

    def views(self) -> dict[str, bool]:
        return {
            "reference": self.reference is not None,
            "cycle model": self.predict is not None,
            "RTL": self.rtl is not None,
            "cosim": self.cosim is not None,
            "synth": self.rtl is not None and self.inventory is not None,
            "cost": self.inventory is not None,
        }

    def preset(self, name: str):
        """The config for preset ``name``, or None if it is not one of this family's presets."""
        return None if self.parse_preset is None else _resolve(self.parse_preset)(name)

    def as_dict(self) -> dict:
        return {
            "name": self.name, "config": self.config_cls.__name__, "description": self.description,
            "presets": list(self.presets), "preset_pattern": self.preset_pattern,
            "workload_kinds": list(self.workload_kinds), "views": self.views(),
            "studies": [{"name": n, "description": d} for n, _, d in self.studies],
            "fields": [{"name": f.name, "type": f.type.__name__, "default": f.default, "choices": f.choices,
                        "help": f.help} for f in self.config_cls.cli_fields()],
        }


def _resolve(target: str | Callable) -> Callable:
    if callable(target):
        return target
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


# ---------------------------------------------------------------------------------------------- registry
_REGISTRY: dict[str, Family] = {}
_PLUGINS_LOADED = False
#: Modules of the built-in families; each defines ``FAMILY``, its :class:`Family` record.
BUILTIN = ("hwsim.mac_array", "hwsim.lstm_engine", "hwsim.rf_array", "hwsim.deform_unit")
#: The accelerator ``simulate`` runs when none is named (the README's quick start).
DEFAULT_ACCEL = "mac-array-8x8-ws"


def register(family: Family, replace: bool = False) -> Family:
    """Add ``family`` to the registry (``replace=True`` to redefine one of the same name)."""
    _load_plugins()
    if not isinstance(family, Family):
        raise HwsimError(f"family={family!r} is not allowed: expected a hwsim.families.Family")
    if family.name in _REGISTRY and not replace:
        raise HwsimError(f"family={family.name!r} is already registered")
    if getattr(family.config_cls, "FAMILY", None) != family.name:
        raise HwsimError(f"family={family.name!r}: {family.config_cls.__name__}.FAMILY must be {family.name!r}")
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for module in BUILTIN:
        fam = importlib.import_module(module).FAMILY
        if fam.name not in _REGISTRY:
            register(fam)
    from importlib.metadata import entry_points

    for ep in entry_points(group="hwsim.families"):
        obj = ep.load()
        if callable(obj):
            obj()


def all_families() -> list[Family]:
    _load_plugins()
    return list(_REGISTRY.values())


def get_family(name: str) -> Family:
    """The registered family ``name`` (``mac-array`` or ``mac_array``); one-line error listing them all."""
    _load_plugins()
    fam = _REGISTRY.get(str(name)) or _REGISTRY.get(str(name).replace("_", "-"))
    if fam is None:
        raise HwsimError(f"family={name!r} is not allowed: expected one of {', '.join(_REGISTRY)}")
    return fam


def find_study(name: str) -> tuple[Family, Callable, str]:
    """The study ``name`` of any family: (family, its run entry point, description)."""
    for fam in all_families():
        for study, run, desc in fam.studies:
            if study == name:
                return fam, _resolve(run), desc
    names = [s for f in all_families() for s, _, _ in f.studies]
    raise HwsimError(f"study={name!r} is not allowed: expected one of {', '.join(names) or '(no studies registered)'}")


def family_of(cfg) -> Family:
    """The family whose config class ``cfg`` is an instance of."""
    for fam in all_families():
        if type(cfg) is fam.config_cls:
            return fam
    raise HwsimError(f"cfg={type(cfg).__name__} is not allowed: expected a config of a registered family "
                     f"({', '.join(f.config_cls.__name__ for f in all_families())})")


# ---------------------------------------------------------------------------------------------- configs
def load_mapping_file(path: str | Path, what: str) -> dict:
    """A YAML or JSON file's top-level mapping; one-line errors name ``what`` (e.g. ``--config``)."""
    p = Path(path)
    if not p.is_file():
        raise HwsimError(f"{what}={str(path)!r} is not allowed: no such file")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(p.read_text())
        else:
            import yaml
            data = yaml.safe_load(p.read_text())
    except Exception as e:  # noqa: BLE001 - one-line error for any parse failure
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise HwsimError(f"{what}={str(path)!r} is not valid YAML/JSON: {first}") from None
    if not isinstance(data, dict):
        raise HwsimError(f"{what}={str(path)!r} is not allowed: expected a YAML/JSON mapping (key: value lines)")
    return data


def config_from_mapping(family: Family, data: dict):
    """``family``'s config from a mapping of its fields, optionally under the family's key."""
    for key in (family.key, family.name):
        if isinstance(data, dict) and key in data:
            data = data[key]
            break
    return family.config_cls.from_dict(data)


def write_verilog(cfg, out_dir) -> tuple[Path, Path]:
    """Write ``<top>.v`` and ``<top>.json`` (metadata) of ``cfg``'s family RTL into ``out_dir``."""
    fam = family_of(cfg)
    if fam.rtl_check is not None:
        fam.load("rtl_check")(cfg)
    text, meta = fam.load("rtl")(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v_path, j_path = out_dir / f"{cfg.top_name}.v", out_dir / f"{cfg.top_name}.json"
    v_path.write_text(text)
    j_path.write_text(json.dumps(meta, indent=2) + "\n")
    return v_path, j_path


# ---------------------------------------------------------------------------------------------- accelerators
@dataclass(frozen=True)
class Unit:
    """One unit of an accelerator: a family and its config."""

    family: Family
    config: object

    def as_dict(self) -> dict:
        return {"family": self.family.name, **self.config.to_dict()}


@dataclass(frozen=True)
class Accelerator:
    """What ``simulate --accel`` runs on: one or more units; each model layer goes to the unit whose
    family runs its kind."""

    name: str
    units: tuple[Unit, ...] = field(default_factory=tuple)

    def unit_for(self, kind: str, layer: str) -> Unit:
        for u in self.units:
            if kind in u.family.workload_kinds:
                return u
        runs = "; ".join(f"{u.family.name} runs {', '.join(u.family.workload_kinds) or 'nothing'}"
                         for u in self.units)
        raise HwsimError(f"layer {layer!r} (kind {kind}) is not allowed on accelerator {self.name}: "
                         f"no unit runs {kind} layers ({runs})")

    def as_dict(self) -> dict:
        return {"name": self.name, "units": [u.as_dict() for u in self.units]}


def _unit_from_mapping(data: dict, what: str) -> Unit:
    if "family" in data:
        fam = get_family(data["family"])
        return Unit(fam, fam.config_cls.from_dict({k: v for k, v in data.items() if k != "family"}))
    keys = [f for f in all_families() if f.key in data or f.name in data]
    if len(keys) == 1 and len(data) == 1:
        return Unit(keys[0], config_from_mapping(keys[0], data))
    raise HwsimError(f"{what} is not allowed: expected a mapping with 'family: NAME' and its fields, or the "
                     f"fields under one family key ({', '.join(f.key for f in all_families())}), or 'units:'")


def resolve_accel(accel) -> Accelerator:
    """An :class:`Accelerator` from a preset of any family, a YAML/JSON file, a config or an Accelerator.

    A file holds either one unit (``family: mac-array`` plus its fields, or its fields under the family's
    key) or ``units:`` a list of such mappings.
    """
    if isinstance(accel, Accelerator):
        return accel
    if dataclasses.is_dataclass(accel) and not isinstance(accel, type):
        fam = family_of(accel)
        return Accelerator(fam.name, (Unit(fam, accel),))
    name = str(accel)
    for fam in all_families():
        cfg = fam.preset(name)
        if cfg is not None:
            return Accelerator(name, (Unit(fam, cfg),))
    p = Path(name)
    if p.suffix.lower() in (".yaml", ".yml", ".json"):
        data = load_mapping_file(p, "--accel")
        if "units" in data:
            units = data["units"]
            if not isinstance(units, list) or not units or not all(isinstance(u, dict) for u in units):
                raise HwsimError(f"--accel={name!r} units is not allowed: expected a non-empty list of mappings")
            return Accelerator(p.stem, tuple(_unit_from_mapping(u, f"--accel={name!r} unit {i}")
                                             for i, u in enumerate(units)))
        return Accelerator(p.stem, (_unit_from_mapping(data, f"--accel={name!r}"),))
    examples = ", ".join(ps for f in all_families() for ps in f.presets[:3])
    patterns = "; ".join(f.preset_pattern for f in all_families() if f.preset_pattern)
    raise HwsimError(f"--accel={name!r} is not allowed: expected a preset like {examples} ({patterns}) "
                     "or a .yaml/.json config file")
