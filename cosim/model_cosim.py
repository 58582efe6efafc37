"""Whole-model co-simulation through the model-run loop: every unit layer of a compiled zoo model on its
family's RTL under Verilator.

:func:`run_model_cosim` compiles the model exactly as ``hwsim simulate`` does (:func:`hwsim.run.compile_model`)
and runs :func:`hwsim.run.run_model` on the first ``images`` digits test images with each unit's ``run``
replaced by its family's ``cosim_run`` entry point (:class:`hwsim.families.Family`): the unit layers'
values come from the RTL, every layer on the whole batch at once; the host layers (input quantizer, pools,
adds, flatten, ...) run inside the compiled model between them, on the RTL's outputs; the loop runs the
same inputs through the families' ``run_reference`` beside it.

``cosim_run(cfg, layer, inputs, ctx) -> LayerCosim``
    One layer of a batch on the RTL: its output values (int64, as ``run`` returns them) and every RTL run
    it made (:class:`RtlRun`: the op as it ran, i.e. with the batch in its shape, the config the RTL was
    built from, the :class:`hwsim.unit.Stats` the harness measured and the testbench's own checks).
    ``ctx`` (:class:`CosimContext`) hands out run directories and shared Verilator builds.

Per layer this module compares (nothing here names a family):

* the values against the family's ``run_reference`` on the same inputs (the layer's inputs are the RTL's
  outputs of the layers before it), bit for bit;
* every RTL run's measured cycles, stall cycles and ``(component, action)`` counts (and the traffic fields
  the run declares measured) against the family's ``predict`` of the op as it ran, on the config it ran
  with; for a unit whose counts depend on the data, against the Stats the run carries as ``expected``
  (what the family's ``run`` gives for that run's inputs). Priced work the model puts on the unit but the
  run did outside the RTL top (``RtlRun.outside``: on the host, or in the harness's stand-ins of DRAM and
  of a neighbouring unit) is added to the measured counts and listed apart (``outside_actions``).

The report adds the accuracy from the RTL's outputs, which must equal the reference's, and the loop's
logits of both paths, which must be equal.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hwsim.cosim.runner import Build, Harness, build, run_dir

from hwsim.errors import HwsimError
from hwsim.stats import ActionCounts
from hwsim.unit import Stats

__all__ = ["CosimContext", "LayerCosim", "ModelCosimReport", "RtlRun", "compare_run", "format_model_report",
           "model_option", "run_model_cosim"]

#: The Stats fields every RTL run is compared on.
COMPARED = ("cycles", "stall_cycles", "actions")


@dataclass(frozen=True)
class RtlRun:
    """One run of the RTL for a layer (e.g. one GEMM chunk, one mesh pass over the batch).

    ``op`` is the family's op as it ran (its shape counts the whole batch), ``cfg`` the config the RTL was
    built from (the one ``predict`` takes), ``stats`` what the harness measured, ``outputs`` / ``mismatches``
    the values the testbench compared against the family's reference of the op and how many differed,
    ``diffs`` the testbench's own count differences (``{name: [rtl, model]}``, family-specific names) and
    ``compared`` the :class:`Stats` fields the harness measures (cycles, stall_cycles, actions, and the
    traffic fields where it counts them).

    ``expected``: the family model's Stats of this run when its counts depend on the run's data (what the
    unit's ``run`` gives for the run's inputs); None: ``predict(cfg, op)``, the counts in closed form.
    ``outside``: ``{"component.action": count}`` of priced work the model puts on the unit that this run
    did outside the RTL top (on the host, e.g. a bias add the RTL has no adder for, or in the harness's
    stand-ins of DRAM and of a neighbouring unit), as the family's ``cosim_run`` counted it from the run;
    added to the measured actions for the comparison and reported apart.
    """

    op: object
    cfg: object
    stats: Stats
    outputs: int = 0
    mismatches: int = 0
    diffs: Mapping = field(default_factory=dict)
    compared: tuple[str, ...] = COMPARED
    expected: Stats | None = None
    outside: Mapping = field(default_factory=dict)

    def outside_actions(self) -> ActionCounts:
        """:attr:`outside` as :class:`~hwsim.stats.ActionCounts`."""
        return ActionCounts({tuple(k.split(".", 1)): int(v) for k, v in self.outside.items()})


@dataclass(frozen=True)
class LayerCosim:
    """What a family's ``cosim_run`` returns for one layer: the output values, the RTL runs in order and a
    short shape label for the report."""

    values: np.ndarray
    runs: tuple[RtlRun, ...]
    shape: str = ""


@dataclass
class CosimContext:
    """What ``cosim_run`` gets besides the layer: the model co-simulation's run directory (each RTL job in a
    numbered sub-directory, :meth:`run_dir`), the Verilator builds shared by every layer (:meth:`build`,
    one per config and harness; the runner's disk cache is beneath) and the waves flag."""

    workdir: Path
    waves: bool = False
    builds: dict = field(default_factory=dict)
    jobs: int = 0

    def build(self, cfg, harness: Harness) -> Build:
        key = (cfg, harness.top)
        if key not in self.builds:
            self.builds[key] = build(cfg, harness, waves=self.waves)
        return self.builds[key]

    def run_dir(self, name: str) -> Path:
        """A new sub-directory ``NN-name`` of the work directory for one RTL job."""
        safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(name))[:80]
        path = self.workdir / f"{self.jobs:02d}-{safe}"
        self.jobs += 1
        path.mkdir(parents=True, exist_ok=True)
        return path


def compare_run(predict: Callable, run: RtlRun) -> tuple[Stats, dict[str, list[int]]]:
    """``(predicted Stats, differences)`` of one RTL run: ``predict(run.cfg, run.op)`` (or ``run.expected``
    when the run carries it) against the measured Stats, with ``run.outside`` added to its actions, on the
    ``run.compared`` fields (actions per ``component.action``), plus the testbench's own differences;
    ``{name: [rtl, model]}``."""
    want = run.expected if run.expected is not None else predict(run.cfg, run.op)
    got = run.stats
    if run.outside:
        got = dataclasses.replace(got, actions=got.actions + run.outside_actions())
    diffs: dict[str, list[int]] = {}
    for f in run.compared:
        if f == "actions":
            g, w = got.actions.as_dict(), want.actions.as_dict()
            for key in sorted(set(g) | set(w)):
                if g.get(key, 0) != w.get(key, 0):
                    diffs[key] = [g.get(key, 0), w.get(key, 0)]
        elif getattr(got, f) != getattr(want, f):
            diffs[f] = [getattr(got, f), getattr(want, f)]
    for key, (r, m) in run.diffs.items():
        diffs.setdefault(f"tb:{key}", [r, m])
    return want, diffs


@dataclass
class ModelCosimReport:
    """Result of a whole-model co-simulation.

    ``layers`` holds one row per unit layer: ``name``, ``kind``, ``unit`` (the unit config's top name),
    ``shape`` (the family's label of what ran), ``runs`` (RTL runs), ``vectors`` (output values compared),
    ``mismatches`` (values different from the reference, or, when more, from the testbench's per-run
    reference), ``rtl_cycles`` / ``predicted_cycles``, ``stall_cycles`` / ``predicted_stall_cycles`` (sums
    over the layer's runs), ``count_mismatches`` (differing counts, summed over the runs) and
    ``count_diffs`` (``{name: [rtl, model]}`` summed), ``actions`` (the measured ``component.action``
    counts, summed) and ``outside_actions`` (the runs' :attr:`RtlRun.outside`, summed). Accuracies are over
    the ``images`` test images; ``logits_reference`` / ``logits_rtl`` are the model's outputs through the
    references and through the RTL (not in :meth:`as_dict`).
    """

    model: str
    compress: str
    accel: str
    configs: list
    images: int
    layers: list[dict] = field(default_factory=list)
    accuracy_reference: float = 0.0
    accuracy_rtl: float = 0.0
    logits_equal: bool = False
    wall_seconds: float = 0.0
    rtl_cycles: int = 0
    builds: list[str] = field(default_factory=list)
    workdir: Path | None = None
    logits_reference: np.ndarray | None = field(default=None, repr=False)
    logits_rtl: np.ndarray | None = field(default=None, repr=False)

    @property
    def config(self):
        """The first unit's config (the only one on a one-unit accelerator)."""
        return self.configs[0]

    @property
    def vectors(self) -> int:
        return sum(r["vectors"] for r in self.layers)

    @property
    def mismatches(self) -> int:
        return sum(r["mismatches"] for r in self.layers)

    @property
    def cycle_mismatches(self) -> int:
        return sum(r["rtl_cycles"] != r["predicted_cycles"] for r in self.layers)

    @property
    def count_mismatches(self) -> int:
        return sum(r["count_mismatches"] for r in self.layers)

    @property
    def passed(self) -> bool:
        return (bool(self.layers) and self.mismatches == 0 and self.cycle_mismatches == 0
                and self.count_mismatches == 0 and self.logits_equal
                and self.accuracy_rtl == self.accuracy_reference)

    def as_dict(self) -> dict:
        return {"model": self.model, "compress": self.compress, "accel": self.accel,
                "config": self.config.to_dict(), "units": [c.to_dict() for c in self.configs],
                "images": self.images, "layers": self.layers, "vectors": self.vectors,
                "mismatches": self.mismatches, "cycle_mismatches": self.cycle_mismatches,
                "count_mismatches": self.count_mismatches, "accuracy_reference": self.accuracy_reference,
                "accuracy_rtl": self.accuracy_rtl, "logits_equal": self.logits_equal, "passed": self.passed,
                "rtl_cycles": self.rtl_cycles, "wall_seconds": self.wall_seconds, "builds": self.builds,
                "workdir": str(self.workdir) if self.workdir else None}


def _layer_on_rtl(unit, ctx: CosimContext, rows: dict):
    """The ``run`` of ``unit`` for :func:`hwsim.run.run_model`: the layer through its family's ``cosim_run``,
    compared (values, cycles, counts) and recorded in ``rows``; returns the RTL's values and the measured
    Stats of the whole batch."""
    fam = unit.family
    cosim_run, predict, reference = fam.load("cosim_run"), fam.load("predict"), fam.load("run_reference")

    def run(cfg, layer, inputs):
        got = cosim_run(cfg, layer, inputs, ctx)
        values = np.asarray(got.values, dtype=np.int64)
        want = np.asarray(reference(cfg, layer, inputs), dtype=np.int64)
        diff = int(np.count_nonzero(values != want)) if values.shape == want.shape else want.size
        row = {"name": layer.name, "kind": layer.kind, "unit": cfg.top_name, "shape": got.shape,
               "runs": len(got.runs), "vectors": int(want.size), "mismatches": diff, "rtl_cycles": 0,
               "predicted_cycles": 0, "stall_cycles": 0, "predicted_stall_cycles": 0, "count_mismatches": 0,
               "count_diffs": {}}
        run_bad = 0
        measured = Stats()
        outside = ActionCounts()
        for r in got.runs:
            pred, diffs = compare_run(predict, r)
            measured = measured + r.stats
            outside = outside + r.outside_actions()
            run_bad += r.mismatches
            row["rtl_cycles"] += r.stats.cycles
            row["predicted_cycles"] += pred.cycles
            row["stall_cycles"] += r.stats.stall_cycles
            row["predicted_stall_cycles"] += pred.stall_cycles
            row["count_mismatches"] += len(diffs)
            for key, (x, y) in diffs.items():
                d = row["count_diffs"].setdefault(key, [0, 0])
                d[0] += x
                d[1] += y
        row["mismatches"] = max(diff, run_bad)
        row["actions"] = measured.actions.as_dict()
        row["outside_actions"] = outside.as_dict()
        if not got.runs:  # a layer must have run on the RTL to count as co-simulated
            row["count_mismatches"] += 1
            row["count_diffs"]["rtl_runs"] = [0, 1]
        rows[layer.name] = row
        return values, measured

    return run


def run_model_cosim(model: str = "digits-cnn", accel=None, compress: str | None = "int8",
                    images: int | None = None, workdir=None, waves: bool = False) -> ModelCosimReport:
    """Run ``model`` compiled with ``compress`` (None: the loop's default) through the RTL of the units of
    ``accel`` (a preset, file, config or :class:`~hwsim.families.Accelerator`; default
    :data:`hwsim.families.DEFAULT_ACCEL`) for the first ``images`` digits test images (default: all 450);
    see the module docstring."""
    from hwsim.models import catalog, zoo

    from hwsim import run
    from hwsim.families import DEFAULT_ACCEL, Accelerator, Unit, resolve_accel

    t_start = time.perf_counter()
    acc = resolve_accel(DEFAULT_ACCEL if accel is None else accel)
    fmodel = catalog.load(model)
    acc, _ = run.onnx_rounding(acc, fmodel, run.chosen_fields(DEFAULT_ACCEL if accel is None else accel))
    x_tr, y_tr, x_te, y_te = zoo.load_digits_split()
    catalog.check_classes(fmodel, int(y_te.max()) + 1, model)  # scored against the digits labels
    if images is None:
        images = len(y_te)
    if isinstance(images, bool) or not isinstance(images, int) or not 1 <= images <= len(y_te):
        raise HwsimError(f"images={images!r} is not allowed: expected an integer in [1, {len(y_te)}]")
    if compress not in (None, "onnx"):  # "onnx": a quantized ONNX graph's own codes (run.compile_model checks)
        from hwsim.models import compress as comp

        comp.parse_compress_spec(compress)
    compiled, label = run.compile_model(acc, fmodel, compress, x_tr[:512], train_data=(x_tr, y_tr))
    used = sorted({i for _, i in run.route(acc, compiled)})
    if not used:
        raise HwsimError(f"model={model!r} is not allowed: it has no layer an accelerator unit runs")
    for i in used:
        fam = acc.units[i].family
        if fam.cosim_run is None:
            raise HwsimError(f"--accel={acc.name!r} is not allowed for the model co-simulation: {fam.name} has no "
                             "cosim_run entry point (a layer on its RTL)")
    for la, i in run.route(acc, compiled):  # every layer the RTL cannot run is refused before any build
        check = getattr(acc.units[i].family.load("cosim_run"), "check", None)
        if check is not None:
            check(acc.units[i].config, la)
    work = run_dir(workdir, prefix="hwsim-model-cosim-")
    ctx = CosimContext(work, waves)
    rows: dict[str, dict] = {}
    on_rtl = Accelerator(acc.name, tuple(
        Unit(dataclasses.replace(u.family, run=_layer_on_rtl(u, ctx, rows)), u.config) for u in acc.units))
    x, y = x_te[:images], y_te[:images]
    mr = run.run_model(on_rtl, compiled, x, label)
    rep = ModelCosimReport(model=model, compress=label, accel=acc.name,
                           configs=[acc.units[i].config for i in used], images=images,
                           layers=[rows[lr.name] for lr in mr.layers], workdir=work,
                           builds=sorted(b.path.name for b in ctx.builds.values()))
    ref_logits, rtl_logits = np.asarray(mr.logits_reference), np.asarray(mr.logits_simulated)
    rep.logits_reference, rep.logits_rtl = ref_logits, rtl_logits
    rep.accuracy_reference = float(np.mean(ref_logits.argmax(axis=1) == y))
    rep.accuracy_rtl = float(np.mean(rtl_logits.argmax(axis=1) == y))
    rep.logits_equal = bool(ref_logits.shape == rtl_logits.shape and np.array_equal(ref_logits, rtl_logits))
    rep.rtl_cycles = sum(r["rtl_cycles"] for r in rep.layers)
    rep.wall_seconds = time.perf_counter() - t_start
    return rep


def format_model_report(rep: ModelCosimReport) -> str:
    """The per-layer table and the verdict lines the CLI prints."""
    tops = " + ".join(dict.fromkeys(c.top_name for c in rep.configs))
    lines = [f"{rep.model} ({rep.compress}) on {tops}: {rep.images} images through the RTL "
             f"({', '.join(rep.builds)})"]
    hdr = (f"{'layer':<10} {'shape (as run)':<22} {'vectors':>9} {'mismatch':>8} {'rtl cyc':>9} {'pred cyc':>9} "
           f"{'stalls':>7} {'pred st':>7} {'counts':>6}  ok")
    lines += [hdr, "-" * len(hdr)]
    for r in rep.layers:
        ok = r["mismatches"] == 0 and r["rtl_cycles"] == r["predicted_cycles"] and r["count_mismatches"] == 0
        counts = "equal" if not r["count_mismatches"] else f"{r['count_mismatches']} diff"
        lines.append(f"{r['name']:<10} {r['shape'][:22]:<22} {r['vectors']:>9} {r['mismatches']:>8} "
                     f"{r['rtl_cycles']:>9} {r['predicted_cycles']:>9} {r['stall_cycles']:>7} "
                     f"{r['predicted_stall_cycles']:>7} {counts:>6}  {'yes' if ok else 'NO'}")
        for key, (got, want) in r["count_diffs"].items():
            lines.append(f"{'':<10} {key}: RTL {got}, model {want}")
        if r.get("outside_actions"):
            lines.append(f"{'':<10} outside the RTL top (counted by cosim_run, added to the RTL's counts): "
                         + ", ".join(f"{k} {v}" for k, v in r["outside_actions"].items()))
    lines.append(f"total: {rep.vectors} outputs compared, {rep.mismatches} mismatches, {rep.cycle_mismatches} "
                 f"layers with RTL cycles != predicted, {rep.count_mismatches} action/stall count differences; "
                 f"{rep.rtl_cycles} RTL cycles, {rep.wall_seconds:.1f} s wall")
    lines.append(f"accuracy: reference {rep.accuracy_reference:.4f}, RTL {rep.accuracy_rtl:.4f}; RTL logits equal "
                 f"the reference's: {'yes' if rep.logits_equal else 'NO'}")
    lines.append(f"run directory: {rep.workdir}")
    return "\n".join(lines)


def model_option(cfg, args) -> tuple[str, dict, bool]:
    """``hwsim cosim FAMILY --model NAME [--compress SPEC] [--images N] [--accel PRESET|FILE]``: the
    accelerator is ``--accel`` if given, else the config from the command's flags."""
    import sys

    if sys.stderr.isatty():  # a note for people; logs and scripts get only the result or one error line
        print(f"compiling {args.opt__model} ({args.opt__compress or 'default compression'}) and building the RTL "
              "with Verilator (cached builds are reused) ...", file=sys.stderr)
    rep = run_model_cosim(args.opt__model, args.opt__accel or cfg, args.opt__compress, images=args.opt__images,
                          workdir=args.run_dir, waves=args.waves)
    return format_model_report(rep), rep.as_dict(), rep.passed
