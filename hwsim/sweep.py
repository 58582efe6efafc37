"""Design-space sweeps over an accelerator family's config fields and the model's compression, together.

A sweep spec (YAML/JSON, see ``docs/sweep.md``) names a workload, a registered family, fixed config
fields, axes over any of the family's config fields (read from the registry, so every family is
sweepable with no code here) and over the compression spec, optional random sampling, constraints and
Pareto objectives. :func:`run_sweep` evaluates every design point and writes one tidy table (CSV, and
Parquet when pandas/pyarrow are installed) with every parameter and metric, the Pareto front marked,
plots, and ``summary.json``.

How a point is evaluated (all through the family's registry entry points)
--------------------------------------------------------------------------
* **Counts only** (default): a model workload is compiled for one unit of the point's config and every
  layer is lowered and predicted by the one model-run loop (:func:`hwsim.run.predict_model`); a topology
  or layer list goes through the family's ``shape_ops`` (ops with multiplicities) and ``predict``. The
  summed :class:`hwsim.unit.Stats` are priced on the family's ``inventory`` by
  :class:`hwsim.cost.CostModel`.
* **Values** (``values: true``, model workloads): additionally the bit-exact run of the compiled model
  on the digits test set through the unit's ``run`` beside the family's reference
  (:func:`hwsim.run.run_model`, what ``hwsim simulate`` does), giving the accuracy and whether every
  logit equals the reference's. The value path's cycles must equal the counts-only cycles on every layer
  whose counts do not depend on the data, else the point fails.

FPGA (``fpga: {target: ecp5-85k, seed: 1}``): each point's RTL is also placed and routed on the target
(:mod:`hwsim.fpga`; the results are cached by the design's Verilog, so points whose RTL is the same, and a
second sweep, do not run nextpnr again), adding the metrics of :data:`FPGA_METRICS`; ``latency_us``,
``throughput_inf_s`` and ``power_mw`` are then at the design's Fmax instead of the config's clock.

Resuming: each evaluated point is appended to ``DIR/cache.jsonl`` under a hash of (family, full config,
workload content, compression, values, cost settings, code version); a rerun computes only points whose
key is missing. Tables are written to a temporary file and renamed, so they are never half-written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim import run
from hwsim.errors import HwsimError
from hwsim.families import BUILTIN, Accelerator, Family, Unit, get_family, load_mapping_file
from hwsim.unit import Stats, total

__all__ = [
    "BASE_METRICS",
    "Axis",
    "Constraint",
    "Point",
    "SweepResult",
    "SweepSpec",
    "code_version",
    "evaluate_task",
    "load_spec",
    "pareto_mask",
    "parse_spec",
    "read_table",
    "run_sweep",
]

#: Metrics of every point (plus ``energy_<component>_pj`` and ``area_<component>_mm2`` per inventory
#: component); the accuracy metrics exist only with ``values: true``.
BASE_METRICS = {
    "cycles": "cycles of one inference (layers back to back, batch 1)",
    "stall_cycles": "cycles the compute engine waited for DRAM",
    "latency_us": "cycles at the configured clock, in us",
    "throughput_inf_s": "inferences per second",
    "macs": "multiply-accumulates of one inference",
    "utilization": "MACs / (peak MACs per cycle x cycles)",
    "energy_pj": "energy of one inference in pJ",
    "power_mw": "energy / latency, in mW",
    "tops_per_w": "2 ops per MAC / energy",
    "area_mm2": "analytic area of every inventory component, in mm^2",
    "sram_bytes": "on-chip SRAM bytes moved per inference",
    "dram_bytes": "DRAM bytes moved per inference",
}
VALUE_METRICS = {
    "accuracy": "top-1 accuracy of the compressed model through the cycle-level simulator (fraction)",
    "accuracy_reference": "the same through the bit-exact reference",
    "accuracy_float": "the float model before compression",
    "bit_exact": "every simulator logit equals the reference's",
}
#: Metrics added by an FPGA target (``fpga:`` in the spec).
FPGA_METRICS = {
    "fmax_mhz": "Fmax of the point's RTL placed and routed on the FPGA target (nextpnr), in MHz",
    "luts": "LUT4 cells used (TRELLIS_COMB)",
    "ffs": "flip-flops used (TRELLIS_FF)",
    "dsps": "DSP blocks used (MULT18X18D)",
    "brams": "block RAMs used (DP16KD)",
    "fpga_cached": "the place-and-route result came from the cache (nextpnr did not run for this point)",
}
_TOP_KEYS = ("name", "family", "workload", "base", "compress", "axes", "sample", "values", "cost", "constraints",
             "objectives", "plots", "fpga")
_WORKLOAD_KEYS = ("model", "topology", "layers", "padding", "batch", "exclude")
_MAX_GRID = 2_000_000


@dataclass(frozen=True)
class LayerRow:
    """A row of a ``workload.layers`` list with an explicit ``kind`` (a layer that is neither a GEMM nor a
    conv): its name, kind and the other keys as sorted ``(key, value)`` pairs, which the family's
    ``shape_ops`` entry point turns into ops."""

    name: str
    kind: str
    fields: tuple

    def as_dict(self) -> dict:
        return dict(self.fields)


# ---------------------------------------------------------------------------------------------- spec
@dataclass(frozen=True)
class Axis:
    """One swept parameter: a config field of the family, or ``compress``."""

    name: str
    values: tuple


@dataclass(frozen=True)
class Constraint:
    """``metric op value``; a point violating it is infeasible (kept in the table, off the front)."""

    metric: str
    op: str
    value: float
    text: str

    def holds(self, x) -> bool:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            return False
        return {"<=": x <= self.value, ">=": x >= self.value, "<": x < self.value, ">": x > self.value,
                "==": x == self.value}[self.op]


@dataclass(frozen=True)
class Point:
    """One design point: grid ``index``, swept ``params``, its config (None if the validator rejected it,
    then ``error`` says why), compression spec and cache ``key``."""

    index: int
    params: dict
    config: object | None
    compress: str | None
    error: str | None = None
    key: str = ""


@dataclass
class SweepSpec:
    """A parsed, validated sweep spec (see :func:`parse_spec`)."""

    name: str
    family: Family
    workload: dict
    base: dict
    axes: tuple[Axis, ...]
    compress: str | None
    sample: tuple[int, int] | None
    values: bool
    node_nm: int
    dram: str
    constraints: tuple[Constraint, ...]
    objectives: tuple[tuple[str, str], ...]
    plots: bool
    metrics: tuple[str, ...]
    points: list[Point] = field(default_factory=list)
    #: ``{"target": ..., "seed": ...}`` when the points are placed and routed on an FPGA, else None
    fpga: dict | None = None

    def as_dict(self) -> dict:
        wl = {k: v for k, v in self.workload.items() if k != "layers"}
        wl["layer_count"] = len(self.workload.get("layers", ()))
        return {"name": self.name, "family": self.family.name, "workload": wl, "base": self.base,
                "axes": {a.name: list(a.values) for a in self.axes}, "compress": self.compress,
                "sample": None if self.sample is None else {"count": self.sample[0], "seed": self.sample[1]},
                "values": self.values, "cost": {"node": self.node_nm, "dram": self.dram},
                "constraints": [c.text for c in self.constraints],
                "objectives": {m: d for m, d in self.objectives}, "points": len(self.points), "fpga": self.fpga}


def _err(key: str, value, why: str) -> HwsimError:
    return HwsimError(f"spec key {key}={value!r} is not allowed: {why}")


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file (relative paths inside resolve against its directory)."""
    data = load_mapping_file(path, "spec")
    return parse_spec(data, base_dir=Path(path).resolve().parent)


def _resolve_path(p: str, base_dir: Path | None) -> Path:
    q = Path(p).expanduser()
    if not q.is_absolute() and base_dir is not None and (base_dir / q).exists():
        return base_dir / q
    return q


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parse_workload(data, base_dir: Path | None) -> dict:
    from hwsim.models import catalog
    from hwsim.workloads import ConvLayer, GemmLayer, load_scalesim_topology

    if not isinstance(data, dict):
        raise _err("workload", data, "expected a mapping with one of model, topology or layers")
    unknown = sorted(set(data) - set(_WORKLOAD_KEYS))
    if unknown:
        raise _err(f"workload.{unknown[0]}", data[unknown[0]], f"expected one of {', '.join(_WORKLOAD_KEYS)}")
    given = [k for k in ("model", "topology", "layers") if k in data]
    if len(given) != 1:
        raise _err("workload", data, "expected exactly one of model, topology or layers")
    kind = given[0]
    if kind == "model":
        name = data["model"]
        if name in catalog.list_models():
            return {"kind": "model", "model": name, "digest": _file_digest(Path(catalog.path_of(name)))}
        p = _resolve_path(str(name), base_dir)
        if p.suffix != ".npz" or not p.is_file():
            raise _err("workload.model", name,
                       f"expected one of {', '.join(catalog.list_models())} or a model .npz file")
        return {"kind": "model", "model": str(p.resolve()), "digest": _file_digest(p)}
    if kind == "topology":
        p = _resolve_path(str(data["topology"]), base_dir)
        try:
            layers = load_scalesim_topology(p, padding=data.get("padding", "same"), batch=data.get("batch", 1))
        except HwsimError as e:
            raise HwsimError(f"spec key workload.topology: {e}") from None
        source = str(p)
    else:
        rows = data["layers"]
        if not isinstance(rows, list) or not rows:
            raise _err("workload.layers", rows, "expected a non-empty list of layer mappings")
        layers = []
        for i, row in enumerate(rows):
            try:
                if not isinstance(row, dict):
                    raise HwsimError("expected a mapping")
                if "kind" in row:  # a layer of another kind: the family's shape_ops reads it
                    if not isinstance(row.get("name"), str):
                        raise HwsimError("expected a 'name' string beside 'kind'")
                    layers.append(LayerRow(row["name"], str(row["kind"]),
                                           tuple(sorted((k, v) for k, v in row.items() if k not in ("name", "kind")))))
                    continue
                cls = GemmLayer if "m" in row else ConvLayer
                layers.append(cls(**row))
            except (HwsimError, TypeError) as e:
                raise _err(f"workload.layers[{i}]", row, str(e).splitlines()[0]) from None
        source = "layers"
    exclude = data.get("exclude", [])
    if not isinstance(exclude, list) or any(n not in {la.name for la in layers} for n in exclude):
        names = ", ".join(la.name for la in layers)
        raise _err("workload.exclude", exclude, f"expected a list of layer names ({names})")
    layers = [la for la in layers if la.name not in exclude]
    if not layers:
        raise _err("workload.exclude", exclude, "expected at least one layer left")
    digest = hashlib.sha256(repr(layers).encode()).hexdigest()
    return {"kind": "layers", "source": source, "layers": layers, "digest": digest}


def _parse_constraint(i: int, c, known: set[str], values: bool) -> Constraint:
    key = f"constraints[{i}]"
    if isinstance(c, dict) and len(c) == 1:
        metric, bound = next(iter(c.items()))
        if not isinstance(bound, dict) or len(bound) != 1 or next(iter(bound)) not in ("max", "min"):
            raise _err(key, c, "expected 'METRIC <= VALUE' or {METRIC: {max: VALUE}} / {METRIC: {min: VALUE}}")
        which, value = next(iter(bound.items()))
        text = f"{metric} {'<=' if which == 'max' else '>='} {value}"
    elif isinstance(c, str):
        text = c
    else:
        raise _err(key, c, "expected 'METRIC <= VALUE' (or >=, <, >, ==)")
    m = re.match(r"^\s*(\w+)\s*(<=|>=|<|>|==)\s*(\S+)\s*$", text)
    if not m:
        raise _err(key, c, "expected 'METRIC <= VALUE' (or >=, <, >, ==)")
    metric, op, raw = m.groups()
    _check_metric(key, metric, known, values)
    try:
        value = float(raw)
    except ValueError:
        raise _err(key, c, f"bound {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise _err(key, c, f"bound {raw!r} is not a finite number")
    return Constraint(metric, op, value, f"{metric} {op} {raw}")


def _check_metric(key: str, metric: str, known: set[str], values: bool) -> None:
    if metric in VALUE_METRICS and not values:
        raise _err(key, metric, "accuracy metrics need 'values: true' (and a model workload)")
    if metric not in known:
        raise _err(key, metric, f"expected a metric: {', '.join(sorted(known))}")


def _component_metrics(fam: Family, cfg) -> list[str]:
    from hwsim.cost import COMPONENT_CLASSES

    if fam.inventory is None:
        return []
    inv = fam.load("inventory")(cfg)
    out = [f"energy_{c.name}_pj" for c in inv.components if COMPONENT_CLASSES[c.cls].actions]
    out += [f"area_{c.name}_mm2" for c in inv.components if COMPONENT_CLASSES[c.cls].area is not None]
    return out


def parse_spec(data: dict, base_dir: str | Path | None = None) -> SweepSpec:
    """Validate a spec mapping and enumerate its points; every mistake is one :class:`HwsimError` line
    naming the key, raised before any point is evaluated."""
    from hwsim.cost import DRAM_TYPES, NODES
    from hwsim.models.compress import parse_compress_spec

    base_dir = None if base_dir is None else Path(base_dir)
    if not isinstance(data, dict):
        raise _err("(top level)", data, "expected a mapping")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise _err(unknown[0], data[unknown[0]], f"expected one of {', '.join(_TOP_KEYS)}")
    if "family" not in data:
        raise HwsimError("spec key family is missing: expected a registered family name")
    try:
        fam = get_family(data["family"])
    except HwsimError as e:
        raise HwsimError(f"spec key {e}") from None
    if fam.predict is None:
        raise _err("family", fam.name, "the family has no cycle model (predict entry point) to sweep")
    if "workload" not in data:
        raise HwsimError("spec key workload is missing: expected a mapping with one of model, topology or layers")
    workload = _parse_workload(data["workload"], base_dir)
    fields = {f.name: f for f in fam.config_cls.cli_fields()}
    base = data.get("base") or {}
    if not isinstance(base, dict):
        raise _err("base", base, f"expected a mapping of {fam.config_cls.__name__} fields")
    for k in base:
        if k not in fields:
            raise _err(f"base.{k}", base[k], f"expected a {fam.name} config field ({', '.join(fields)})")
        if isinstance(base[k], float) and not math.isfinite(base[k]):
            raise _err(f"base.{k}", base[k], "expected a finite number")
    axes_data = data.get("axes") or {}
    if not isinstance(axes_data, dict):
        raise _err("axes", axes_data, "expected a mapping of field -> list of values")
    axes = []
    for name, vals in axes_data.items():
        if name != "compress" and name not in fields:
            raise _err(f"axes.{name}", vals, f"expected compress or a {fam.name} config field ({', '.join(fields)})")
        if name in base:
            raise _err(f"axes.{name}", vals, "the field is also fixed in base")
        if not isinstance(vals, list) or not vals:
            raise _err(f"axes.{name}", vals, "expected a non-empty list of values")
        if any(isinstance(v, dict | list) for v in vals):
            raise _err(f"axes.{name}", vals, "expected a list of scalar values")
        bad = next((v for v in vals if isinstance(v, float) and not math.isfinite(v)), None)
        if bad is not None:
            raise _err(f"axes.{name}", vals, f"value {bad!r} is not a finite number")
        if len({json.dumps(v) for v in vals}) != len(vals):
            raise _err(f"axes.{name}", vals, "expected distinct values")
        axes.append(Axis(str(name), tuple(vals)))
    compress = data.get("compress")
    has_compress_axis = any(a.name == "compress" for a in axes)
    if workload["kind"] == "model":
        if compress is None and not has_compress_axis and fam.compile is None:
            compress = "int8"  # a family that compiles models itself picks its own format (compress: None)
    elif compress is not None or has_compress_axis:
        raise _err("compress" if compress is not None else "axes.compress", compress,
                   "compression applies to model workloads only (workload.model)")
    if compress is not None and has_compress_axis:
        raise _err("compress", compress, "compress is also an axis")
    for spec_text in ([compress] if compress is not None else []) + \
            [v for a in axes if a.name == "compress" for v in a.values]:
        try:
            parse_compress_spec(spec_text)
        except HwsimError as e:
            key = "axes.compress" if has_compress_axis else "compress"
            raise HwsimError(f"spec key {key}: {e}") from None
    values = data.get("values", False)
    if not isinstance(values, bool):
        raise _err("values", values, "expected true or false")
    if values and workload["kind"] != "model":
        raise _err("values", values, "accuracy needs a model workload (workload.model)")
    if values and fam.run is None:
        raise _err("values", values, f"family {fam.name} has no value path (run entry point)")
    if values:
        from hwsim.models import catalog, zoo
        from hwsim.models.graph import load_model

        name = workload["model"]
        fmodel = catalog.load(name) if name in catalog.list_models() else load_model(name)
        try:
            catalog.check_finite(fmodel, name)
            catalog.check_classes(fmodel, int(zoo.load_digits_split()[3].max()) + 1, name)
        except HwsimError as e:
            raise HwsimError(f"spec key workload.model: {e}") from None
    if workload["kind"] == "layers" and fam.shape_ops is None:
        raise _err("workload", workload.get("source"),
                   f"family {fam.name} runs model layers only (no shape_ops entry point): use workload.model")
    cost = data.get("cost") or {}
    if not isinstance(cost, dict) or set(cost) - {"node", "dram"}:
        raise _err("cost", cost, "expected a mapping with node and/or dram")
    node, dram = cost.get("node", 45), cost.get("dram", "lpddr4")
    if node not in NODES or isinstance(node, bool):
        raise _err("cost.node", node, f"expected one of {', '.join(str(n) for n in NODES)}")
    if dram not in DRAM_TYPES:
        raise _err("cost.dram", dram, f"expected one of {', '.join(DRAM_TYPES)}")
    sample = data.get("sample")
    if sample is not None:
        if not isinstance(sample, dict) or set(sample) - {"count", "seed"} or "count" not in sample:
            raise _err("sample", sample, "expected a mapping with count and optionally seed")
        count, seed = sample["count"], sample.get("seed", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _err("sample.count", count, "expected an integer >= 1")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise _err("sample.seed", seed, "expected an integer")
        sample = (count, seed)
    fpga_spec = _parse_fpga(data.get("fpga"), fam)
    plots = data.get("plots", True)
    if not isinstance(plots, bool):
        raise _err("plots", plots, "expected true or false")
    name = str(data.get("name", "sweep"))

    # Points, each config validated now (cheap): rejected ones are recorded, not evaluated.
    sizes = [len(a.values) for a in axes]
    total = math.prod(sizes)
    if sample is not None:
        rng = np.random.default_rng(sample[1])
        count = min(sample[0], total)
        indices = sorted(rng.choice(total, size=count, replace=False).tolist()) if total <= 10 * _MAX_GRID else \
            sorted(set(rng.integers(0, total, size=count).tolist()))
    else:
        if total > _MAX_GRID:
            raise _err("axes", f"{total} points", f"a grid of at most {_MAX_GRID} points (or use sample)")
        indices = range(total)
    points = []
    for idx in indices:
        combo, rem = [], idx
        for s in reversed(sizes):
            combo.append(rem % s)
            rem //= s
        params = {a.name: a.values[i] for a, i in zip(axes, reversed(combo), strict=True)}
        fields_of = {**base, **{k: v for k, v in params.items() if k != "compress"}}
        comp = params.get("compress", compress)
        try:
            cfg = fam.config_cls.from_dict(fields_of)
        except HwsimError as e:
            points.append(Point(idx, params, None, comp, str(e).splitlines()[0]))
        except (TypeError, ValueError) as e:
            points.append(Point(idx, params, None, comp, f"{type(e).__name__}: {str(e).splitlines()[0]}"))
        else:
            points.append(Point(idx, params, cfg, comp))
    for a in axes:
        for v in a.values:
            mine = [p for p in points if p.params[a.name] == v and type(p.params[a.name]) is type(v)]
            if mine and all(p.config is None for p in mine):
                raise HwsimError(f"spec key axes.{a.name} value {v!r} is rejected on every point: {mine[0].error}")
    if not axes and points[0].config is None:
        raise HwsimError(f"spec key base is rejected: {points[0].error}")

    first = next((p.config for p in points if p.config is not None), None)
    if first is None:
        raise HwsimError(f"spec key axes is rejected on every point: {points[0].error}")
    known = set(BASE_METRICS) | set(_component_metrics(fam, first)) | (set(VALUE_METRICS) if values else set()) \
        | (set(FPGA_METRICS) if fpga_spec else set())
    cons = data.get("constraints") or []
    if not isinstance(cons, list):
        raise _err("constraints", cons, "expected a list such as ['area_mm2 <= 1.0', 'accuracy >= 0.9']")
    constraints = tuple(_parse_constraint(i, c, known, values) for i, c in enumerate(cons))
    objs = data.get("objectives")
    if objs is None:
        objs = {"latency_us": "min", "energy_pj": "min", "area_mm2": "min", **({"accuracy": "max"} if values else {})}
    if isinstance(objs, list):
        objs = dict.fromkeys(objs, "min")
    if not isinstance(objs, dict) or not objs:
        raise _err("objectives", objs, "expected a mapping METRIC: min|max (or a list of metrics to minimize)")
    for m, d in objs.items():
        _check_metric(f"objectives.{m}", m, known, values)
        if d not in ("min", "max"):
            raise _err(f"objectives.{m}", d, "expected min or max")
    metrics = tuple(list(BASE_METRICS) + (list(FPGA_METRICS) if fpga_spec else [])
                    + sorted(known - set(BASE_METRICS) - set(VALUE_METRICS) - set(FPGA_METRICS))
                    + (list(VALUE_METRICS) if values else []))
    spec = SweepSpec(name, fam, workload, dict(base), tuple(axes), compress, sample, values, node, dram,
                     constraints, tuple(objs.items()), plots, metrics, fpga=fpga_spec)
    code = code_version(fam)
    wl_id = {"kind": workload["kind"], "digest": workload["digest"]}
    spec.points = [dataclasses.replace(p, key=_point_key(fam, p, wl_id, spec, code)) if p.config is not None else p
                   for p in points]
    return spec


def _parse_fpga(data, fam: Family) -> dict | None:
    """The spec's ``fpga:`` mapping (target, optional seed), checked; None without one."""
    if data is None:
        return None
    from hwsim.fpga import DEFAULT_SEED, TARGETS

    if not isinstance(data, dict) or set(data) - {"target", "seed"} or "target" not in data:
        raise _err("fpga", data, "expected a mapping with target (and optionally seed)")
    if data["target"] not in TARGETS:
        raise _err("fpga.target", data["target"], f"expected one of {', '.join(TARGETS)}")
    seed = data.get("seed", DEFAULT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise _err("fpga.seed", seed, "expected an integer in [0, 2**31)")
    if fam.rtl is None:
        raise _err("fpga", data, f"family {fam.name} has no RTL (rtl entry point) to place and route")
    return {"target": data["target"], "seed": seed}


def _point_key(fam: Family, p: Point, wl_id: dict, spec: SweepSpec, code: str) -> str:
    payload = {"family": fam.name, "config": p.config.to_dict(), "workload": wl_id, "compress": p.compress,
               "values": spec.values, "node": spec.node_nm, "dram": spec.dram, "code": code}
    if spec.fpga is not None:  # the FPGA metrics also depend on the RTL generators and the flow
        payload["fpga"] = {**spec.fpga, "code": _rtl_code_version(fam)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


_CODE_VERSIONS: dict[str, str] = {}
#: Modules every point's evaluation runs through, whatever the family.
_CORE_MODULES = ("hwsim.sweep", "hwsim.run", "hwsim.unit", "hwsim.cost", "hwsim.stats", "hwsim.config",
                 "hwsim.families", "hwsim.workloads", "hwsim.models.compress", "hwsim.models.compressed",
                 "hwsim.models.graph", "hwsim.models.zoo", "hwsim.models.catalog")


def _family_modules(fam: Family) -> set[str]:
    mods = {fam.config_cls.__module__}
    for attr in ("reference", "cycle_model"):
        if getattr(fam, attr):
            mods.add(getattr(fam, attr))
    for attr in ("inventory", "lower", "predict", "run", "run_reference", "compile", "shape_ops", "parse_preset"):
        target = getattr(fam, attr)
        if isinstance(target, str):
            mods.add(target.partition(":")[0])
        elif target is not None and getattr(target, "__module__", None):
            mods.add(target.__module__)
    return mods


def code_version(family: Family | str | None = None) -> str:
    """Hash of the sources a point's result depends on: the core modules (sweep, cost, config, workloads,
    compression), the family's modules (its config, reference, cycle model and entry points) and the
    hwsim and cost-table versions. Editing any of them gives new cache keys; editing another family does
    not."""
    import importlib

    import hwsim
    from hwsim.cost import TABLE_VERSION

    fam = get_family(family) if isinstance(family, str) else family
    name = fam.name if fam is not None else ""
    if name not in _CODE_VERSIONS:
        h = hashlib.sha256(f"{hwsim.__version__} {TABLE_VERSION}".encode())
        mods = set(_CORE_MODULES) | (_family_modules(fam) if fam is not None else set())
        for mod in sorted(mods):
            f = getattr(importlib.import_module(mod), "__file__", None)
            h.update(mod.encode())
            if f:
                h.update(Path(f).read_bytes())
        _CODE_VERSIONS[name] = h.hexdigest()[:16]
    return _CODE_VERSIONS[name]


def _rtl_code_version(fam: Family) -> str:
    """Hash of the sources an FPGA result depends on: every module of ``hwsim.rtl``, the family's RTL entry
    points' modules, ``hwsim.fpga`` and the flow's tool versions."""
    import importlib
    import importlib.util

    from hwsim import fpga

    key = "rtl:" + fam.name
    if key not in _CODE_VERSIONS:
        h = hashlib.sha256(json.dumps(fpga.tool_versions(), sort_keys=True).encode())
        rtl_pkg = importlib.import_module("hwsim.rtl")
        files = sorted(Path(rtl_pkg.__file__).parent.glob("*.py")) + [Path(fpga.__file__)]
        for attr in ("rtl", "rtl_check"):
            target = getattr(fam, attr)
            if isinstance(target, str):
                spec = importlib.util.find_spec(target.partition(":")[0])
                if spec is not None and spec.origin:
                    files.append(Path(spec.origin))
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
        _CODE_VERSIONS[key] = h.hexdigest()[:16]
    return _CODE_VERSIONS[key]


# ---------------------------------------------------------------------------------------------- evaluation
#: Per-process caches of the workers (compressed models, reference logits, op lists, cost models).
_MEMO: dict = {}


def _memo(key, make: Callable):
    v = _MEMO.get(key)
    if v is None:
        if len(_MEMO) > 256:
            _MEMO.clear()
        v = _MEMO[key] = make()
    return v


def _arith(cfg) -> tuple:
    """The fields of a config that compression and the reference read (see ``models.compress.compress``)."""
    return getattr(cfg, "acc_bits", 32), getattr(cfg, "overflow", "saturate"), getattr(cfg, "rounding", "half_up")


def _compiled(fam: Family, workload: dict, spec_text: str | None, cfg):
    """``(accelerator, compiled model, label, float model)``: the workload's model compiled for one unit of
    ``cfg`` (memoized: per arithmetic for the generic compressor, per config for a family that compiles
    models itself)."""
    from hwsim.models import catalog, zoo
    from hwsim.models.graph import load_model

    acc = _unit_accel(fam, cfg)
    name = workload["model"]
    fmodel = _memo(("model", name), lambda: catalog.load(name) if name in catalog.list_models() else load_model(name))

    def make():
        x_tr, y_tr, _, _ = zoo.load_digits_split()
        return run.compile_model(acc, fmodel, spec_text, x_tr[:512], train_data=(x_tr, y_tr))

    key = cfg if fam.compile is not None else _arith(cfg)
    compiled, label = _memo(("cm", name, workload["digest"], spec_text, key), make)
    return acc, compiled, label, fmodel


def _unit_accel(fam: Family, cfg) -> Accelerator:
    return Accelerator(fam.name, (Unit(fam, cfg),))


def _count_metrics(fam: Family, cfg, st: Stats, cost) -> dict:
    """The metrics of one inference's :class:`Stats` on ``cfg``, priced on its inventory."""
    inv = fam.load("inventory")(cfg)
    energy = cost.energy(inv, st.actions, st.cycles)
    area = cost.area(inv)
    ns = getattr(cfg, "ns_per_cycle", None)
    if ns is None and getattr(cfg, "clock_mhz", None):
        ns = 1000.0 / cfg.clock_mhz
    cycles, macs = st.cycles, st.macs
    latency_us = cycles * ns / 1000.0 if ns else float("nan")
    peak = getattr(cfg, "peak_macs_per_cycle", None)
    row = {
        "cycles": cycles, "stall_cycles": st.stall_cycles, "latency_us": latency_us,
        "throughput_inf_s": 1e6 / latency_us if latency_us > 0 else float("nan"), "macs": macs,
        "utilization": macs / (peak * cycles) if peak and cycles else float("nan"),
        "energy_pj": energy.total_pj,
        "power_mw": energy.total_pj / latency_us / 1000.0 if latency_us > 0 else float("nan"),
        "tops_per_w": 2 * macs / energy.total_pj if energy.total_pj > 0 else float("nan"),
        "area_mm2": area.total_mm2, "sram_bytes": st.sram_bytes, "dram_bytes": st.dram_bytes,
    }
    for comp_name, v in energy.parts.items():
        if comp_name != "leakage":
            row[f"energy_{comp_name}_pj"] = v
    for comp_name, v in area.parts.items():
        row[f"area_{comp_name}_mm2"] = v * 1e-6
    return row


def _value_metrics(acc: Accelerator, compiled, fmodel, workload: dict, predicted: run.ModelRun) -> dict:
    """The bit-exact run of the compiled model on the digits test set through the unit's ``run`` (what
    ``hwsim simulate`` does); the run's cycles must equal the counts-only prediction on every layer whose
    counts do not depend on the data."""
    from hwsim.models import zoo

    _, _, x_te, y_te = zoo.load_digits_split()
    acc_float = _memo(("float", workload["model"], workload["digest"]),
                      lambda: float(np.mean(fmodel.forward_float(x_te).argmax(axis=1) == y_te)))
    # The reference runs per point: it depends on the unit's whole config (an analog unit's converters,
    # not just the accumulator).
    mr = run.run_model(acc, compiled, x_te)
    for lr, lp in zip(mr.layers, predicted.layers, strict=True):
        if lr.name not in mr.data_dependent and lr.stats.cycles != lp.stats.cycles:
            raise HwsimError(f"layer {lr.name!r}: value path cycles {lr.stats.cycles} != counts-only cycles "
                             f"{lp.stats.cycles}")
    return {"accuracy": float(np.mean(mr.logits_simulated.argmax(axis=1) == y_te)),
            "accuracy_reference": float(np.mean(mr.logits_reference.argmax(axis=1) == y_te)),
            "accuracy_float": acc_float,
            "bit_exact": bool(np.array_equal(mr.logits_reference, mr.logits_simulated))}


def _fpga_metrics(cfg, fpga_spec: dict, row: dict) -> None:
    """Place and route ``cfg``'s RTL (cached) and put the FPGA metrics in ``row``, with the latency, throughput
    and power at its Fmax."""
    from hwsim import fpga

    res = fpga.place_and_route(cfg, fpga_spec["target"], fpga_spec["seed"])
    row.update(fmax_mhz=res.fmax_mhz, luts=res.luts, ffs=res.ffs, dsps=res.dsps, brams=res.brams,
               fpga_cached=res.cached)
    if res.fmax_mhz:
        latency_us = row["cycles"] / res.fmax_mhz
        row["latency_us"] = latency_us
        row["throughput_inf_s"] = 1e6 / latency_us if latency_us > 0 else float("nan")
        row["power_mw"] = row["energy_pj"] / latency_us / 1000.0 if latency_us > 0 else float("nan")
    else:
        row.update(latency_us=float("nan"), throughput_inf_s=float("nan"), power_mw=float("nan"))


def _evaluate_point(fam: Family, workload: dict, values: bool, cost, cfg, compress: str | None,
                    fpga_spec: dict | None = None) -> dict:
    if workload["kind"] == "model":
        acc, compiled, label, fmodel = _compiled(fam, workload, compress, cfg)
        predicted = run.predict_model(acc, compiled, label)
        st = total(lr.stats for lr in run.apply_memory(acc, compiled, predicted, cost.dram).layers)
    else:
        for la in workload["layers"]:
            kind = getattr(la, "kind", "linear" if hasattr(la, "m") else "conv2d")
            if kind not in fam.workload_kinds:
                raise HwsimError(f"layer {la.name!r} (kind {kind}) is not allowed on {fam.name}: it runs "
                                 f"{', '.join(fam.workload_kinds) or 'no model layers'}")
        predict = fam.load("predict")
        shape_ops = fam.load("shape_ops")
        per_layer = [total(predict(cfg, op).scaled(mult) for op, mult in shape_ops(cfg, [la]))
                     for la in workload["layers"]]
        if getattr(cfg, "global_buffer_bytes", 0):  # the memory system of a global buffer (hwsim.memory)
            from hwsim.memory import LayerTensors

            tensors = [LayerTensors.of_workload(la, cfg.weight_bits, cfg.act_bits, cfg.out_bits)
                       for la in workload["layers"]]
            per_layer = run.memory_stats(cfg, tensors, per_layer, cost.dram)[0]
        st = total(per_layer)
    row = _count_metrics(fam, cfg, st, cost)
    if fpga_spec is not None:
        _fpga_metrics(cfg, fpga_spec, row)
    if values:
        row.update(_value_metrics(acc, compiled, fmodel, workload, predicted))
    return row


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return text if isinstance(e, HwsimError) else f"{type(e).__name__}: {text}".rstrip(": ")


def evaluate_task(task: dict) -> list[dict]:
    """Evaluate a batch of points (what each executor task runs).

    ``task`` holds ``family`` (name), ``workload``, ``values``, ``node``, ``dram``, ``fpga`` (optional) and
    ``points``, a list of
    ``(key, config, compress)``. Returns one record per point: ``{"key", "status": "ok"|"failed",
    "metrics" | "error"}``; a failing point gives its one-line reason and the batch goes on.
    """
    from hwsim.cost import CostModel

    fam = get_family(task["family"])
    cost = _memo(("cost", task["node"], task["dram"]), lambda: CostModel(node_nm=task["node"], dram=task["dram"]))
    out = []
    for key, cfg, compress in task["points"]:
        try:
            row = _evaluate_point(fam, task["workload"], task["values"], cost, cfg, compress, task.get("fpga"))
            out.append({"key": key, "status": "ok", "metrics": row})
        except Exception as e:  # noqa: BLE001 - a failing point is recorded with its reason
            out.append({"key": key, "status": "failed", "error": _one_line(e)})
    return out


# ---------------------------------------------------------------------------------------------- executors
def _forkserver_pool(workers: int):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["hwsim.sweep", "hwsim.run", "hwsim.cost", *BUILTIN])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _run_local(tasks: list[dict], workers: int) -> Iterator[list[dict]]:
    if workers == 1:
        for t in tasks:
            yield evaluate_task(t)
        return
    from concurrent.futures import FIRST_COMPLETED, wait

    pool = _forkserver_pool(workers)
    try:
        pending = set()
        queue = iter(tasks)
        for t in itertools.islice(queue, 2 * workers):
            pending.add(pool.submit(evaluate_task, t))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                for t in itertools.islice(queue, 1):
                    pending.add(pool.submit(evaluate_task, t))
                yield f.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_scheduler(address: str) -> str:
    if not re.match(r"^tcp://[^\s:/]+:\d+$", address):
        raise HwsimError(f"--scheduler={address!r} is not allowed: expected tcp://HOST:PORT")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise HwsimError(f"--scheduler={address!r} needs Dask: pip install 'hwsim[dask]'") from None
    return address


def _run_dask(tasks: list[dict], address: str) -> Iterator[list[dict]]:
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout="10s")
    except OSError as e:
        raise HwsimError(f"--scheduler={address!r} is not reachable: {_one_line(e)}") from None
    try:
        futures = [client.submit(evaluate_task, t, pure=False) for t in tasks]
        # This client's loop, not the default client's (a caller may hold another client as current).
        for fut in as_completed(futures, loop=client.loop):
            records = fut.result()
            fut.release()
            yield records
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------- cache
def _load_cache(path: Path) -> dict[str, dict]:
    """Records by key; a line cut short by a kill (the last one) is ignored."""
    out: dict[str, dict] = {}
    if not path.exists():
        return out
    with path.open("rb") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "key" in rec and rec.get("status") in ("ok", "failed"):
                out[rec["key"]] = rec
    return out


def _append_cache(f, records: list[dict]) -> None:
    f.write("".join(json.dumps(r, allow_nan=True) + "\n" for r in records))
    f.flush()
    os.fsync(f.fileno())


# ---------------------------------------------------------------------------------------------- pareto
def pareto_mask(values, directions=None) -> np.ndarray:
    """Which rows of ``values`` (n x d) are Pareto-optimal: no other row is at least as good in every
    objective and better in one. ``directions`` holds ``"min"``/``"max"`` per column (default all min).
    Rows with a NaN are never on the front. O(n log n + n * front size)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise HwsimError(f"values of shape {v.shape} are not allowed: expected (points, objectives)")
    n, d = v.shape
    if directions is not None:
        sign = np.array([-1.0 if x == "max" else 1.0 for x in directions])
        v = v * sign
    mask = np.zeros(n, dtype=bool)
    ok = ~np.isnan(v).any(axis=1)
    idx = np.flatnonzero(ok)
    if not len(idx):
        return mask
    order = idx[np.lexsort(v[idx].T[::-1])]
    front = np.empty((0, d))
    for i in order:
        x = v[i]
        if len(front) and (np.all(front <= x, axis=1) & np.any(front < x, axis=1)).any():
            continue
        front = np.vstack([front, x])
        mask[i] = True
    return mask


# ---------------------------------------------------------------------------------------------- table
def _fmt_cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    import csv

    def write(tmp: Path):
        with tmp.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(columns)
            for r in rows:
                w.writerow([_fmt_cell(r.get(c)) for c in columns])
            f.flush()
            os.fsync(f.fileno())

    _atomic_write(path, write)


def _write_parquet(path: Path, columns: list[str], rows: list[dict]) -> bool:
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    df = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    for c in df.columns:  # mixed columns (a failed point's raw value beside parsed ones) as text
        if df[c].dtype == object:
            df[c] = df[c].map(lambda x: None if x is None else str(x))
    _atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
    return True


def read_table(path: str | Path) -> list[dict]:
    """The rows of a sweep CSV with numbers parsed back (``""`` -> None)."""
    import csv

    def parse(x: str):
        if x == "":
            return None
        if x in ("True", "False"):
            return x == "True"
        for t in (int, float):
            try:
                return t(x)
            except ValueError:
                pass
        return x

    with Path(path).open(newline="") as f:
        return [{k: parse(v) for k, v in r.items()} for r in csv.DictReader(f)]


# ---------------------------------------------------------------------------------------------- run
@dataclass
class SweepResult:
    """What :func:`run_sweep` produced: the table rows (one per point, in grid order) and the files."""

    spec: SweepSpec
    out_dir: Path
    columns: list[str]
    rows: list[dict]
    computed: int
    cached: int
    wall_seconds: float
    files: dict[str, str]

    @property
    def ok(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "ok"]

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "failed"]

    @property
    def front(self) -> list[dict]:
        return [r for r in self.rows if r.get("pareto")]

    def counts(self) -> dict:
        return {"points": len(self.rows), "ok": len(self.ok), "failed": len(self.failed),
                "feasible": sum(1 for r in self.rows if r.get("feasible")), "pareto": len(self.front),
                "computed": self.computed, "cached": self.cached}

    def as_dict(self) -> dict:
        return {"spec": self.spec.as_dict(), "out_dir": str(self.out_dir), **self.counts(),
                "wall_seconds": self.wall_seconds, "files": self.files, "front": self.front}

    def to_dataframe(self):
        """The table as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame([{c: r.get(c) for c in self.columns} for r in self.rows], columns=self.columns)

    def format(self, top: int = 15) -> str:
        c = self.counts()
        objs = [m for m, _ in self.spec.objectives]
        lines = [f"hwsim sweep {self.spec.name}: {self.spec.family.name}, {c['points']} points "
                 f"({c['computed']} computed, {c['cached']} from the cache), {c['ok']} ok, {c['failed']} failed, "
                 f"{c['feasible']} feasible, {c['pareto']} on the Pareto front of "
                 f"{', '.join(f'{m} ({d})' for m, d in self.spec.objectives)}; {self.wall_seconds:.1f} s"]
        if self.spec.fpga is not None:
            ran = sum(1 for r in self.ok if r.get("fpga_cached") is False)
            lines.append(f"FPGA: every point placed and routed on {self.spec.fpga['target']} (seed "
                         f"{self.spec.fpga['seed']}); latency_us at each point's Fmax; when the points were "
                         f"computed, {ran} ran nextpnr and {len(self.ok) - ran} took the place-and-route cache "
                         "(column fpga_cached)")
        if self.front:
            axes = [a.name for a in self.spec.axes]
            hdr = " ".join(f"{a:>14}" for a in axes + objs)
            lines += ["", f"Pareto front (first {min(top, len(self.front))} of {len(self.front)}, by {objs[0]}):",
                      hdr, "-" * len(hdr)]
            for r in sorted(self.front, key=lambda r: r[objs[0]])[:top]:
                lines.append(" ".join(f"{_short(r.get(a)):>14}" for a in axes + objs))
        reasons: dict[str, int] = {}
        for r in self.failed:
            reasons[r["error"]] = reasons.get(r["error"], 0) + 1
        if reasons:
            lines += ["", "Failed points (reason: count):"]
            lines += [f"  {why}: {n}" for why, n in sorted(reasons.items(), key=lambda x: -x[1])[:10]]
        lines += ["", *(f"wrote {p}" for p in self.files.values())]
        return "\n".join(lines)


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _batches(todo: list[Point], size: int) -> list[list[Point]]:
    todo = sorted(todo, key=lambda p: (str(p.compress), p.index))  # one compression per batch where possible
    return [todo[i:i + size] for i in range(0, len(todo), size)]


def run_sweep(spec: SweepSpec | dict | str | Path, out_dir: str | Path, workers: int | None = None,
              scheduler: str | None = None, batch_size: int | None = None, progress: bool = True,
              on_batch: Callable[[int, int], None] | None = None) -> SweepResult:
    """Evaluate every point of ``spec`` not already cached in ``out_dir`` and write the table and plots.

    Parameters
    ----------
    spec : SweepSpec, mapping or path
        A parsed spec, a spec mapping, or a YAML/JSON spec file.
    out_dir : path
        Output directory (created): ``sweep.csv`` (+ ``sweep.parquet``), ``cache.jsonl``,
        ``summary.json`` and the plots.
    workers : int or None
        Local worker processes (default: the number of cores); 1 runs in this process.
    scheduler : str or None
        ``tcp://HOST:PORT`` of a Dask distributed scheduler: run the batches on its workers instead.
    batch_size : int or None
        Points per task (default: about 8 tasks per worker, at most 256 points; 1 with ``values``).
    progress : bool
        Show a tqdm progress bar (points, points/s, ETA) on stderr.
    on_batch : callable or None
        Called as ``on_batch(done, total)`` after every finished batch (points done / to compute).
    """
    t0 = time.perf_counter()
    if isinstance(spec, str | Path):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec)
    workers = os.cpu_count() or 1 if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise HwsimError(f"--workers={workers!r} is not allowed: expected an integer >= 1")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise HwsimError(f"--batch-size={batch_size!r} is not allowed: expected an integer >= 1")
    if scheduler is not None:
        scheduler = _check_scheduler(scheduler)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise HwsimError(f"--output={str(out_dir)!r} is not allowed: it exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    try:
        cache_path = out / "cache.jsonl"
        cache = _load_cache(cache_path)
        valid = [p for p in spec.points if p.config is not None]
        todo = [p for p in valid if p.key not in cache]
        todo_keys = list(dict.fromkeys(p.key for p in todo))
        todo = list({p.key: p for p in todo}.values())
        cached = len(valid) - len(todo_keys)
        if batch_size is None:
            one = spec.values or spec.fpga is not None  # slow points: one per task
            batch_size = 1 if one else max(1, min(256, math.ceil(len(todo) / (8 * max(workers, 2)))))
        tasks = []
        for b in _batches(todo, batch_size):
            tasks.append({"family": spec.family.name, "workload": spec.workload, "values": spec.values,
                          "node": spec.node_nm, "dram": spec.dram, "fpga": spec.fpga,
                          "points": [(p.key, p.config, p.compress) for p in b]})
        if tasks:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), unit="pt", desc=f"sweep {spec.name}", disable=not progress or None,
                       dynamic_ncols=True, leave=True)
            results = _run_dask(tasks, scheduler) if scheduler else _run_local(tasks, workers)
            done = 0
            try:
                with cache_path.open("a") as f:
                    for records in results:
                        records = [r for r in records if r["key"] not in cache]
                        _append_cache(f, records)
                        for r in records:
                            cache[r["key"]] = r
                        done += len(records)
                        bar.update(len(records))
                        if on_batch is not None:
                            on_batch(done, len(todo))
            finally:
                bar.close()
                if hasattr(results, "close"):
                    results.close()
        result = _assemble(spec, out, cache, computed=len(todo), cached=cached, t0=t0)
    finally:
        lock.close()
    return result


def _lock(out: Path):
    import fcntl

    f = (out / ".lock").open("w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise HwsimError(f"--output={str(out)!r} is not allowed: another sweep is writing to it") from None
    return f


def _assemble(spec: SweepSpec, out: Path, cache: dict, computed: int, cached: int, t0: float) -> SweepResult:
    fields = [f.name for f in spec.family.config_cls.cli_fields()]
    has_compress = spec.workload["kind"] == "model"
    rows = []
    for p in spec.points:
        row = {"point": p.index}
        row.update(p.config.to_dict() if p.config is not None else {**spec.base, **p.params})
        if has_compress:
            row["compress"] = p.compress
        rec = cache.get(p.key) if p.config is not None else None
        if p.config is None:
            row.update(status="failed", error=p.error)
        elif rec["status"] == "failed":
            row.update(status="failed", error=rec["error"])
        else:
            row.update(status="ok", error="")
            row.update(rec["metrics"])
        rows.append(row)
    ok = [r for r in rows if r["status"] == "ok"]
    for r in rows:
        r["feasible"] = r["status"] == "ok" and all(c.holds(r.get(c.metric)) for c in spec.constraints)
        r["pareto"] = False
    feas = [r for r in ok if r["feasible"]]
    if feas:
        vals = np.array([[_num(r.get(m)) for m, _ in spec.objectives] for r in feas])
        for r, on in zip(feas, pareto_mask(vals, [d for _, d in spec.objectives]), strict=True):
            r["pareto"] = bool(on)
    metric_cols = [m for m in spec.metrics if any(m in r for r in ok)]
    extra = sorted({k for r in ok for k in r} - set(metric_cols) - set(fields) -
                   {"point", "compress", "status", "error", "feasible", "pareto"})
    columns = ["point", *(["compress"] if has_compress else []), *fields, "status", "error", *metric_cols, *extra,
               "feasible", "pareto"]
    files = {"csv": str(out / "sweep.csv")}
    _write_csv(out / "sweep.csv", columns, rows)
    if _write_parquet(out / "sweep.parquet", columns, rows):
        files["parquet"] = str(out / "sweep.parquet")
    if spec.plots and ok:
        from hwsim.sweep_plots import write_plots

        for name, path in write_plots(spec, rows, out).items():
            files[name] = str(path)
    result = SweepResult(spec, out, columns, rows, computed, cached, time.perf_counter() - t0, files)
    summary = {**result.as_dict(), "code_version": code_version(spec.family)}
    _atomic_write(out / "summary.json",
                  lambda tmp: tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n"))
    result.files["summary"] = str(out / "summary.json")
    return result


def _num(x) -> float:
    if x is None or isinstance(x, str):
        return float("nan")
    return float(x)
