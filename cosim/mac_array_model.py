"""The MAC array's ``cosim_run`` (:class:`hwsim.families.Family`): one conv / linear layer of a compressed
model through the MAC array RTL under Verilator, for the model co-simulation
(:mod:`hwsim.cosim.model_cosim`).

The layer runs as :func:`hwsim.mac_array.run` runs it (its im2col and output assembly are the compressed
model's), with every GEMM sent to the RTL: for the whole batch at once (one GEMM per group and shift group,
``m`` = batch x output pixels), split along M only where the harness memories would overflow
(:func:`max_rows`), all chunks of a GEMM in one simulator run. Each GEMM runs on the RTL of the accelerator
named: a layer whose weight format or activation width is not its PEs' (e.g. int4 layers on a preset of
int8 PEs) is refused before any build, since the RTL that would run it (``cfg.replace(weight_format=layer
format, act_bits=layer width)``, the config :func:`hwsim.mac_array.predict_op` times it with) is another
array. The testbench (:mod:`hwsim.cosim.mac_array_tb`) checks every output against ``reference_gemm`` and
every GEMM's cycles, stalls and action counts against ``predict_gemm``; each chunk is returned as an
:class:`~hwsim.cosim.model_cosim.RtlRun` (its :class:`~hwsim.models.compressed.GemmOp` with the chunk's
rows, the measured Stats) that the model co-simulation compares with :func:`hwsim.mac_array.predict_op`.

Quantized ONNX models (``--compress onnx``, float scales and zero points): a float-scale GEMM runs on the
float32 requantizer lanes of a top built with ``requantizer = "f32"`` (its per-channel scales and output
zero point travel with the job; the input zero point's column constant is in its bias, as the model lowers
it), and the float32 requantizations and zero-point corrections are compared as counts too. Weights with
zero points (``-z_w[n] * sum_k a[m, k]``) run on a top built with ``weight_zero_points`` (its row-sum unit;
the zero points travel with the requantizer, the row-sum additions and the row term's products are compared
as counts). Such a layer on a ``shift`` accelerator, or with weight zero points on a top without the
row-sum unit, is refused before any build.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hwsim.cosim.harness import DEFAULT_MEM_DEPTH, mac_array_harness
from hwsim.cosim.model_cosim import CosimContext, LayerCosim, RtlRun
from hwsim.cosim.runner import run_job

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.mac_array import fold_plan
from hwsim.mac_array_actions import MacArrayActions, gemm_stats
from hwsim.unit import Stats

__all__ = ["check", "cosim_run", "max_rows", "measured_stats", "requant_spec"]

#: What the harness measures of a GEMM: cycles, stalls, the priced actions and the traffic per level.
MEASURED = ("cycles", "stall_cycles", "actions", "sram_read_bytes", "sram_write_bytes", "dram_read_bytes",
            "dram_write_bytes")


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


def requant_spec(fq, n: int) -> dict:
    """A float-scale GEMM's requantizer (:class:`~hwsim.models.mac_array.FloatRequant`) for ``n`` output
    channels as a job layer's ``requant`` entry (JSON, exact: the scales as IEEE-754 bits), the inverse of
    :func:`hwsim.cosim.mac_array_tb.float_requant_of` (weight zero points as ``row_zp``, one per channel)."""
    bits = np.ascontiguousarray(fq.scales_for(n), dtype=np.float32).view(np.uint32)
    rows = {} if fq.row_zp is None else {"row_zp": [int(z) for z in np.broadcast_to(fq.row_zp, (n,))]}
    return {"scale_bits": [int(b) for b in bits], "zero_point": fq.zero_point, "lo": fq.lo, "hi": fq.hi, **rows}


def measured_stats(row: dict) -> Stats:
    """The :class:`~hwsim.unit.Stats` of one GEMM as the harness measured it (a testbench result row:
    ``rtl_cycles``, ``stall_cycles`` and the measured ``actions``), built as the cycle model builds its own
    (:func:`hwsim.mac_array_actions.gemm_stats`)."""
    a = MacArrayActions(**row["actions"])
    return gemm_stats(row["rtl_cycles"], row["stall_cycles"], a.pe_macs, a)


def check(cfg: MacArrayConfig, layer) -> None:
    """Refuse (one line) a layer whose weight format or activation width is not ``cfg``'s PEs': the RTL that
    would run it is another array than the one the accelerator names. The model co-simulation calls this
    on every layer before any build (as ``cosim_run.check``)."""
    for op in layer.gemm_ops(batch=1):
        if (op.weight_format, op.act_bits) != (cfg.weight_format, cfg.act_bits):
            raise HwsimError(
                f"layer {op.layer!r} ({op.weight_format} weights, {op.act_bits}-bit activations) is not allowed in "
                f"the co-simulation of {cfg.top_name} ({cfg.weight_format} PEs, {cfg.act_bits}-bit activations): "
                f"its RTL would be {op.weight_format} PEs, not the accelerator named; expected --compress with "
                f"{cfg.weight_format} weights, or an accelerator with {op.weight_format} PEs (e.g. --weights "
                f"{op.weight_format} --act-bits {op.act_bits})")
        if getattr(op, "requant", "shift") == "f32" and cfg.requantizer != "f32":
            raise HwsimError(
                f"requantizer={cfg.requantizer!r} is not allowed for layer {op.layer!r} (float32 scales, ONNX "
                f"Runtime's requantizer) in the co-simulation: its RTL needs the float32 lanes; expected "
                "--requantizer f32 (or an --accel file with requantizer: f32)")
        if getattr(op, "row_correction", False) and not cfg.weight_zero_points:
            raise HwsimError(
                f"weight_zero_points=False is not allowed for layer {op.layer!r} (weights with zero points) in the "
                "co-simulation: its RTL needs the row-sum unit; expected --weight-zero-points (or an --accel file "
                "with weight_zero_points: true)")


def cosim_run(cfg: MacArrayConfig, layer, inputs, ctx: CosimContext) -> LayerCosim:
    """A compressed conv2d / linear ``layer`` on the batch ``inputs`` through the MAC array RTL (see the
    module docstring). Where the RTL's outputs cannot be used (mismatching or undecodable beats, which
    the testbench reports as mismatches), the layer carries on with the reference's values."""
    from hwsim.models.compressed import reference_gemm

    harness = mac_array_harness()
    batch = int(np.shape(inputs[0])[0])
    check(cfg, layer)
    ops = iter(layer.gemm_ops(batch=batch))  # the order of the layer's GEMM calls (QLayer.lower)
    runs: list[RtlRun] = []
    shapes: list[str] = []

    def rtl_gemm(a, w, lcfg, shift, relu, bias=None, requant=None):
        op = next(ops)
        rcfg = lcfg if isinstance(lcfg, MacArrayConfig) else cfg.replace(weight_format=op.weight_format,
                                                                           act_bits=op.act_bits)
        m, k = a.shape
        n = w.shape[1]
        step = max_rows(rcfg, m, k, n)
        f32 = {} if requant is None else {"requant": requant_spec(requant, n)}
        zpc = {"zp_correction": True} if getattr(op, "zp_correction", False) else {}
        chunks = [{"kind": "gemm", "name": f"{op.layer}[{i}]", "a": a[i:i + step], "w": w, "shift": int(shift),
                   "relu": bool(relu), "shape": f"{min(step, m - i)}x{k}x{n}",
                   **({} if bias is None else {"bias": np.asarray(bias, dtype=np.int64)}), **f32, **zpc}
                  for i in range(0, m, step)]
        sub = ctx.run_dir(f"{op.layer}-g{op.group}-s{op.shift}")
        job = {"family": "mac-array", "config": rcfg.to_dict(), "layers": chunks, "save_outputs": True}
        result = run_job(ctx.build(rcfg, harness), job, workdir=sub)
        with np.load(sub / "outputs.npz") as saved:
            outs = [saved[str(i)] if str(i) in saved.files else None for i in range(len(chunks))]
        for i, r in zip(range(0, m, step), result["layers"], strict=True):
            runs.append(RtlRun(dataclasses.replace(op, m=min(step, m - i)), rcfg, measured_stats(r),
                               outputs=r["vectors"], mismatches=r["mismatches"], diffs=r["count_diffs"],
                               compared=MEASURED))
        shapes.append(f"{m}x{k}x{n}")
        if any(o is None for o in outs):  # mismatching beats: carry on with the reference's values
            return reference_gemm(a, w, lcfg, shift, relu, bias=bias, requant=requant)
        return np.concatenate(outs, axis=0)

    values = layer.forward_int(inputs, cfg, rtl_gemm)
    shape = shapes[-1] + (f" x{len(shapes)}" if len(shapes) > 1 else "") if shapes else ""
    return LayerCosim(values, tuple(runs), shape)


cosim_run.check = check  # run by the model co-simulation on every layer before any build
