"""Whole-model co-simulation: every conv/linear GEMM of a compressed zoo model through the generated RTL.

:func:`run_model_cosim` compresses the model exactly as ``hwsim simulate`` does, then runs its bit-exact
integer inference (``CompressedModel.forward_int``) with a GEMM executor that sends every GEMM, for all
the images at once (batched into one GEMM per layer and shift group; split along M only where the
harness memories would overflow), through the RTL under Verilator. Layers the array does not run
(pooling, residual add, flatten, sign) run in the reference between RTL layers, on the RTL's outputs.

Each GEMM runs on the RTL of the configuration the cycle model prices that layer with
(``cfg.replace(weight_format=layer format, act_bits=layer width)``, as ``hwsim.mac_array.predict_op``),
so a model mixing formats uses one cached build per distinct layer configuration. The testbench checks
every output against the reference (with bias) bit for bit, and every GEMM's cycles, stalls and action
counts against ``predict_gemm``; the report adds the accuracy computed from the RTL's logits, which must
equal the reference's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hwsim.cosim.harness import DEFAULT_MEM_DEPTH, mac_array_harness
from hwsim.cosim.runner import Build, build, run_dir, run_job

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.mac_array import fold_plan

__all__ = ["ModelCosimReport", "format_model_report", "max_rows", "model_option", "run_model_cosim"]


@dataclass
class ModelCosimReport:
    """Result of a whole-model co-simulation.

    ``layers`` holds one row per conv/linear layer (the testbench's row fields, summed over the layer's
    GEMMs and M chunks: ``vectors``, ``mismatches``, ``rtl_cycles``, ``predicted_cycles``,
    ``stall_cycles``, ``predicted_stall_cycles``, ``count_mismatches``, ``count_diffs``, plus ``shape``
    and ``gemms``). Accuracies are over the ``images`` test images.
    """

    model: str
    compress: str
    config: MacArrayConfig
    images: int
    layers: list[dict] = field(default_factory=list)
    accuracy_reference: float = 0.0
    accuracy_rtl: float = 0.0
    logits_equal: bool = False
    wall_seconds: float = 0.0
    rtl_cycles: int = 0
    builds: list[str] = field(default_factory=list)
    workdir: Path | None = None

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
        return {"model": self.model, "compress": self.compress, "config": self.config.to_dict(),
                "images": self.images, "layers": self.layers, "vectors": self.vectors,
                "mismatches": self.mismatches, "cycle_mismatches": self.cycle_mismatches,
                "count_mismatches": self.count_mismatches, "accuracy_reference": self.accuracy_reference,
                "accuracy_rtl": self.accuracy_rtl, "logits_equal": self.logits_equal, "passed": self.passed,
                "rtl_cycles": self.rtl_cycles, "wall_seconds": self.wall_seconds, "builds": self.builds,
                "workdir": str(self.workdir) if self.workdir else None}


def max_rows(cfg: MacArrayConfig, m: int, k: int, n: int, mem_depth: int = DEFAULT_MEM_DEPTH) -> int:
    """The most rows of A (<= m) whose weight, activation and output beats each fit ``mem_depth`` beats."""
    def fits(rows: int) -> bool:
        plan = fold_plan(cfg, rows, k, n)
        return max(int(plan.nw.sum()), int(plan.na.sum()), int(plan.rows_out.sum())) <= mem_depth

    if fits(m):
        return m
    lo, hi = 0, m
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    if lo < 1:
        raise HwsimError(f"layer k={k} n={n} is not allowed in the co-simulation: one row needs more than "
                         f"mem_depth={mem_depth} harness beats")
    return lo


def run_model_cosim(model: str = "digits-cnn", accel="mac-array-8x8-ws", compress: str = "int8",
                    images: int | None = None, workdir=None, waves: bool = False) -> ModelCosimReport:
    """Run ``model`` compressed with ``compress`` through the RTL of ``accel`` for the first ``images``
    digits test images (default: all 450); see the module docstring."""
    from hwsim.models import catalog, zoo
    from hwsim.models import compress as comp

    from hwsim import run
    from hwsim.families import resolve_accel
    from hwsim.mac_array import check_op

    t_start = time.perf_counter()
    acc = resolve_accel(accel)
    comp.parse_compress_spec(compress)
    fmodel = catalog.load(model)
    for layer in fmodel.compute_layers():
        acc.unit_for(layer.kind, layer.name)
    x_tr, _, x_te, y_te = zoo.load_digits_split()
    if images is None:
        images = len(y_te)
    if isinstance(images, bool) or not isinstance(images, int) or not 1 <= images <= len(y_te):
        raise HwsimError(f"images={images!r} is not allowed: expected an integer in [1, {len(y_te)}]")
    cm = comp.compress(fmodel, compress, x_tr[:512], cfg=acc.units[0].config)
    used = sorted({i for _, i in run.route(acc, cm)})
    if len(used) != 1:
        raise HwsimError(f"--accel={accel!r} is not allowed: the model's layers route to {len(used)} units; the "
                         "model co-simulation runs every layer on one mac-array unit")
    cfg = acc.units[used[0]].config
    if not isinstance(cfg, MacArrayConfig):
        raise HwsimError(f"--accel={accel!r} is not allowed: the model co-simulation runs on a mac-array unit")
    ops = cm.gemm_ops(batch=images)
    for op in ops:
        check_op(cfg, op)
    x, y = x_te[:images], y_te[:images]
    work = run_dir(workdir, prefix="hwsim-model-cosim-")
    harness = mac_array_harness()
    builds: dict[MacArrayConfig, Build] = {}
    rows: dict[str, dict] = {}
    calls = iter(ops)

    def rtl_gemm(a, w, lcfg, shift, relu, bias=None):
        op = next(calls)
        rcfg = lcfg if isinstance(lcfg, MacArrayConfig) else cfg.replace(weight_format=op.weight_format,
                                                                           act_bits=op.act_bits)
        if rcfg not in builds:
            builds[rcfg] = build(rcfg, harness, waves=waves)
        m, k = a.shape
        n = w.shape[1]
        step = max_rows(rcfg, m, k, n)
        layers = [{"kind": "gemm", "name": f"{op.layer}[{i}]", "a": a[i:i + step], "w": w, "shift": int(shift),
                   "relu": bool(relu), "shape": f"{min(step, m - i)}x{k}x{n}",
                   **({} if bias is None else {"bias": np.asarray(bias, dtype=np.int64)})}
                  for i in range(0, m, step)]
        sub = work / f"{len(rows):02d}-{op.layer}-g{op.group}-s{op.shift}"
        job = {"family": "mac-array", "config": rcfg.to_dict(), "layers": layers, "save_outputs": True}
        result = run_job(builds[rcfg], job, workdir=sub)
        with np.load(sub / "outputs.npz") as saved:
            outs = [saved[str(i)] if str(i) in saved.files else None for i in range(len(layers))]
        row = rows.setdefault(op.layer, {"name": op.layer, "kind": "conv/linear", "shape": "", "gemms": 0,
                                         "vectors": 0, "mismatches": 0, "rtl_cycles": 0, "predicted_cycles": 0,
                                         "stall_cycles": 0, "predicted_stall_cycles": 0,
                                         "count_mismatches": 0, "count_diffs": {}})
        row["shape"] = f"{m}x{k}x{n}" + (f" x{row['gemms'] + 1}" if row["gemms"] else "")
        row["gemms"] += 1
        for r in result["layers"]:
            for key in ("vectors", "mismatches", "rtl_cycles", "predicted_cycles", "stall_cycles",
                        "predicted_stall_cycles", "count_mismatches"):
                row[key] += r[key]
            for key, (got, want) in r["count_diffs"].items():
                d = row["count_diffs"].setdefault(key, [0, 0])
                d[0] += got
                d[1] += want
        if any(o is None for o in outs):  # mismatching beats: carry on with the reference's values
            from hwsim.models.compressed import reference_gemm

            return reference_gemm(a, w, lcfg, shift, relu, bias=bias)
        return np.concatenate(outs, axis=0)

    ref_logits = cm.forward_int(x, cfg=cfg)
    rtl_logits = cm.forward_int(x, gemm_fn=rtl_gemm, cfg=cfg)
    rep = ModelCosimReport(model=model, compress=compress, config=cfg, images=images, layers=list(rows.values()),
                           workdir=work, builds=sorted(b.path.name for b in builds.values()))
    rep.accuracy_reference = float(np.mean(ref_logits.argmax(axis=1) == y))
    rep.accuracy_rtl = float(np.mean(rtl_logits.argmax(axis=1) == y))
    rep.logits_equal = bool(np.array_equal(ref_logits, rtl_logits))
    rep.rtl_cycles = sum(r["rtl_cycles"] for r in rep.layers)
    rep.wall_seconds = time.perf_counter() - t_start
    return rep


def format_model_report(rep: ModelCosimReport) -> str:
    """The per-layer table and the verdict lines the CLI prints."""
    lines = [f"{rep.model} ({rep.compress}) on {rep.config.top_name}: {rep.images} images through the RTL "
             f"({', '.join(rep.builds)})"]
    hdr = (f"{'layer':<10} {'gemm m x k x n':<22} {'vectors':>9} {'mismatch':>8} {'rtl cyc':>9} {'pred cyc':>9} "
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
    lines.append(f"total: {rep.vectors} outputs compared, {rep.mismatches} mismatches, {rep.cycle_mismatches} "
                 f"layers with RTL cycles != predicted, {rep.count_mismatches} action/stall count differences; "
                 f"{rep.rtl_cycles} RTL cycles, {rep.wall_seconds:.1f} s wall")
    lines.append(f"accuracy: reference {rep.accuracy_reference:.4f}, RTL {rep.accuracy_rtl:.4f}; RTL logits equal "
                 f"the reference's: {'yes' if rep.logits_equal else 'NO'}")
    lines.append(f"run directory: {rep.workdir}")
    return "\n".join(lines)


def model_option(cfg: MacArrayConfig, args) -> tuple[str, dict, bool]:
    """``hwsim cosim mac-array --model NAME [--compress SPEC] [--images N] [--accel PRESET|FILE]``: the
    accelerator is ``--accel`` if given, else the config from the command's flags."""
    import sys

    if sys.stderr.isatty():  # a note for people; logs and scripts get only the result or one error line
        print(f"compressing {args.opt__model} ({args.opt__compress}) and building the RTL with Verilator "
              "(cached builds are reused) ...", file=sys.stderr)
    rep = run_model_cosim(args.opt__model, args.opt__accel or cfg, args.opt__compress, images=args.opt__images,
                          workdir=args.run_dir, waves=args.waves)
    return format_model_report(rep), rep.as_dict(), rep.passed
