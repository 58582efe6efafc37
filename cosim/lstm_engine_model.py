"""The LSTM engine's ``cosim_run`` (:class:`hwsim.families.Family`): the two layers of an LSTM classifier
compiled for the engine (:class:`hwsim.lstm_engine.CompiledClassifier`) on the whole engine top
(:class:`hwsim.rtl.lstm_step.LstmStepEngine`, the harness of :mod:`hwsim.cosim.lstm_engine_harness`, one
Verilator build per config shared by both layers) under Verilator, for the model co-simulation
(:mod:`hwsim.cosim.model_cosim`).

* ``lstm``: every image's sequence is one RTL run of its ``T`` time steps, as the regression's step
  layers run (:func:`hwsim.cosim.lstm_engine_regression.step_layer`: the input layer's stage descriptors,
  the hidden stage's and the gate descriptor, the factors, ``U`` and ``b`` loaded, ``h`` and ``c``
  cleared; per step ``x`` into working buffer 0, the stages, the hidden stage and the gate phase). The
  layer's output is ``h`` after the last step, read from the RTL's state memory. All images run in one
  simulator run. Each run is the layer's op (:class:`~hwsim.lstm_engine.LstmWorkload` of ``T`` steps: one
  inference), compared with :func:`hwsim.lstm_engine.predict`; the testbench also checks ``h`` and
  ``c`` after every step against :func:`hwsim.models.lstm_engine.cell_fixed` and the per-bank
  working-SRAM counts against :func:`hwsim.lstm_engine.step_bank_counts`.
* ``readout``: the dense stage ``y = clamp(round_shift(V h, e))`` on the RTL, run as the step's hidden
  stage runs (a descriptor with ``hid`` set: the weights ``V`` from the hidden SRAM, the operand ``h`` from
  the state SRAM, the result into working buffer 1; no gate phase), one run per image, all in one
  simulator run. The bias add and clamp ``logits = clamp(y + c)`` are done on the host: the RTL top has no
  adder after the stage's requantizer. The cycle model counts that add on the gate adders
  (``gate_add.add``, one per output, no extra cycle), so each run reports it in
  :attr:`~hwsim.cosim.model_cosim.RtlRun.outside` and the comparison with the
  :class:`~hwsim.lstm_engine.ReadoutOp`'s prediction adds it to the RTL's counts (the report lists it).

The testbench (:func:`lstm_engine_model_runs`, this module's cocotb test) is the regression's driver
(:class:`hwsim.cosim.lstm_engine_tb.LstmEngineTB`) with the measured counters returned (every priced
action, per-bank reads/writes, stall cycles) and the RTL's outputs saved to ``outputs.npz`` beside the
result, so the caller chains the layers through them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from hwsim.cosim.lstm_engine_harness import DEFAULT_MEM_DEPTH, lstm_engine_harness
from hwsim.cosim.lstm_engine_regression import count_diffs, hidden_format, step_layer, weight_words
from hwsim.cosim.model_cosim import CosimContext, LayerCosim, RtlRun
from hwsim.cosim.runner import read_job, run_job
from hwsim.models import tensor_formats as tf
from hwsim.rtl.lstm_engine import SHIFT_BITS, hidden_words, pack_descriptor
from hwsim.rtl.lstm_step import EXT_RSEL, EXT_SEL, max_hidden

from hwsim.errors import HwsimError
from hwsim.lstm_engine import LstmEngineConfig, check_rtl, lower, predict, stage_descriptors
from hwsim.stats import ActionCounts
from hwsim.unit import Stats

__all__ = ["TEST_MODULE", "check", "cosim_run", "measured_stats", "readout_layer", "readout_outside"]

#: This module: the cocotb test the model co-simulation runs on the engine's harness.
TEST_MODULE = "hwsim.cosim.lstm_engine_model"


def _ext(sel: str, items, mask: int | None = None) -> list[list]:
    """Load writes ``[ext_sel, address, hex data]`` of ``items`` into memory ``sel`` of the step top."""
    return [[EXT_SEL[sel], i, f"{(int(v) & mask) if mask else int(v):x}"] for i, v in enumerate(items)]


def readout_outside(outputs: int) -> dict[str, int]:
    """What one readout run does outside the RTL top: the bias adds of ``logits = y + c``, one per output
    (the cycle model's ``gate_add.add`` of the readout)."""
    return {"gate_add.add": int(outputs)}


def readout_layer(cfg: LstmEngineConfig, q, h, name: str = "readout") -> dict:
    """The testbench layer of the readout stage of ``q`` (:class:`hwsim.models.lstm_models.FixedClassifier`)
    on one last hidden state ``h``: one descriptor with ``hid`` set (``R`` = outputs, ``K = H``, ``Q = 1``,
    shift ``q.readout_shift``), ``V``'s words in the hidden SRAM, ``h`` in the state SRAM; no ``x``, no gate
    phase. Expected: ``y`` before the bias (the one-stage matvec of ``V`` in hidden-index order); the
    expected cycles and counts come with :func:`_readout_expectation`."""
    V = np.asarray(q.V, dtype=np.int64)
    R = V.shape[0]
    mask = (1 << cfg.data_bits) - 1
    hfmt = hidden_format(V)
    desc = {**stage_descriptors(cfg, hfmt)[0], "wbase": 0, "hid": 1}
    setup = (_ext("dmem", [pack_descriptor(cfg, desc, int(q.readout_shift))]) + _ext("umem", weight_words(cfg, hfmt))
             + _ext("hmem", h, mask))
    h = np.asarray(h, dtype=np.int64)
    y = tf.matvec_fixed(hfmt, h, (int(q.readout_shift),), data_bits=cfg.data_bits, acc_bits=cfg.acc_bits,
                        overflow=cfg.overflow, rounding=cfg.rounding)
    return {"name": name, "kind": "readout", "shape": [R, len(h)], "gates": 0, "n_stages": 1, "setup": setup,
            "x": np.zeros((1, 0), dtype=np.int64), "hidden": len(h), "expect_out": y.tolist(),
            "perm": tf.final_permutation(hfmt).tolist()}


def _readout_expectation(cfg: LstmEngineConfig, op, layer: dict) -> dict:
    """``layer`` with the readout op's predicted cycles, stalls and actions (less the outside bias adds), no
    working-buffer reads and one working-buffer write per output row (rows 0..R-1, bank = row mod banks)."""
    pred = predict(cfg, op)
    outside = readout_outside(op.outputs)
    actions = {k: v - outside.get(k, 0) for k, v in pred.actions.as_dict().items()}
    writes = np.bincount(np.arange(op.outputs) % cfg.banks, minlength=cfg.banks)
    return {**layer, "predicted_cycles": pred.cycles,
            "expect_counts": {"actions": {k: v for k, v in actions.items() if v},
                              "bank_reads": [0] * cfg.banks, "bank_writes": [int(v) for v in writes],
                              "stall_cycles": pred.stall_cycles}}


def _check_shifts(name: str, shifts) -> None:
    for s in shifts:
        if not 0 <= int(s) < 1 << SHIFT_BITS:
            raise HwsimError(f"layer {name!r} shift={int(s)} is not allowed in the co-simulation: the RTL's "
                             f"descriptor holds shifts in [0, {(1 << SHIFT_BITS) - 1}]")


def check(cfg: LstmEngineConfig, layer) -> None:
    """Refuse (one line) a layer the engine's RTL cannot run as :func:`cosim_run` runs it: a config without
    RTL, an LSTM whose memories, stages, shifts or load entries do not fit the RTL and its harness, a
    readout whose weights do not fit the hidden SRAM. The model co-simulation calls this on every layer
    before any build (as ``cosim_run.check``)."""
    (op,) = lower(cfg, layer)  # an LSTM classifier's layer
    check_rtl(cfg)
    q = layer.fixed
    H = q.lstm.hidden
    if layer.kind == "lstm":
        N = q.lstm.fmt.shape[1]
        _check_shifts(layer.name, (*q.lstm.shifts, q.lstm.e_u))
        probe = step_layer(cfg, q.lstm, np.zeros((op.steps, N), dtype=np.int64), np.zeros(H, dtype=np.int64),
                           np.zeros(H, dtype=np.int64), name=layer.name)  # raises if the RTL cannot hold it
        entries = len(probe["setup"]) + op.steps * N
    else:
        R = op.outputs
        if cfg.x_load == "stream":
            raise HwsimError(f"x_load='stream' is not allowed for layer {layer.name!r} in the co-simulation: the "
                             "RTL's stream mode starts every run by taking x from its stream, and the readout has "
                             "no x (its operand is h in the state SRAM); expected x_load='overlapped'")
        _check_shifts(layer.name, (q.readout_shift,))
        if H > max_hidden(cfg) or -(-R // cfg.pes) * H > hidden_words(cfg) or R > cfg.work_words:
            raise HwsimError(f"layer {layer.name!r} ({R}x{H}) is not allowed in the co-simulation of {cfg.top_name}: "
                             f"its weights need {-(-R // cfg.pes) * H} hidden-SRAM words (the RTL has "
                             f"{hidden_words(cfg)}), h {H} state entries (it has {max_hidden(cfg)})")
        entries = 1 + -(-R // cfg.pes) * H + H
    if entries > DEFAULT_MEM_DEPTH:
        raise HwsimError(f"layer {layer.name!r} is not allowed in the co-simulation: one run needs {entries} load "
                         f"entries, the harness holds {DEFAULT_MEM_DEPTH}")


def measured_stats(row: dict) -> Stats:
    """The :class:`~hwsim.unit.Stats` of one RTL run as the harness measured it (a result row of
    :func:`lstm_engine_model_runs`: busy cycles, the stall counter and every priced action)."""
    acts = ActionCounts({tuple(k.split(".", 1)): int(v) for k, v in row["actions"].items() if v})
    return Stats(int(row["rtl_cycles"]), int(row["stall_cycles"]), acts.get("pe_mult", "mult"), acts)


def _run(ctx: CosimContext, cfg: LstmEngineConfig, name: str, layers: list[dict]) -> tuple[list, list[dict]]:
    """Run ``layers`` in one simulator run; the RTL's outputs of each and the result rows."""
    sub = ctx.run_dir(name)
    job = {"family": "lstm-engine", "config": cfg.to_dict(), "layers": layers}
    result = run_job(ctx.build(cfg, lstm_engine_harness()), job, workdir=sub, test_module=TEST_MODULE,
                     assertion_files=TEST_MODULE.rpartition(".")[2] + ".py")
    with np.load(sub / "outputs.npz") as saved:
        outs = [np.asarray(saved[str(i)], dtype=np.int64) for i in range(len(layers))]
    return outs, result["layers"]


def cosim_run(cfg: LstmEngineConfig, layer, inputs, ctx: CosimContext) -> LayerCosim:
    """A compiled LSTM classifier's ``lstm`` or ``readout`` layer on the batch ``inputs`` through the
    engine's RTL (see the module docstring): ``(B, H)`` last hidden states, or ``(B, outputs)`` logits."""
    check(cfg, layer)
    (op,) = lower(cfg, layer)
    q = layer.fixed
    x = np.asarray(inputs[0], dtype=np.int64)
    H = q.lstm.hidden
    zeros = np.zeros(H, dtype=np.int64)
    if layer.kind == "lstm":
        jobs = [step_layer(cfg, q.lstm, seq, zeros, zeros, name=f"{layer.name}[{i}]") for i, seq in enumerate(x)]
        outs, rows = _run(ctx, cfg, layer.name, jobs)
        runs = tuple(RtlRun(op, cfg, measured_stats(r), outputs=r["vectors"], mismatches=r["mismatches"],
                            diffs=r["count_diffs"]) for r in rows)
        values = np.stack(outs)
        return LayerCosim(values, runs, f"{len(x)}x T{op.steps} {4 * H}x{x.shape[-1]}+{4 * H}x{H}")
    jobs = [_readout_expectation(cfg, op, readout_layer(cfg, q, h, name=f"{layer.name}[{i}]"))
            for i, h in enumerate(x)]
    outs, rows = _run(ctx, cfg, layer.name, jobs)
    runs = tuple(RtlRun(op, cfg, measured_stats(r), outputs=r["vectors"], mismatches=r["mismatches"],
                        diffs=r["count_diffs"], outside=readout_outside(op.outputs)) for r in rows)
    y = np.stack(outs)
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    values = np.clip(y + np.asarray(q.c, dtype=np.int64)[None, :], lo, hi)  # the bias add: outside the RTL
    return LayerCosim(values, runs, f"{len(x)}x {op.outputs}x{op.hidden}")


cosim_run.check = check  # run by the model co-simulation on every layer before any build


# ---------------------------------------------------------------------------------------------- testbench
async def _run_layer(tb, layer: dict) -> tuple[np.ndarray, dict]:
    """One job layer on the harness (:class:`~hwsim.cosim.lstm_engine_tb.LstmEngineTB`): the setup writes,
    then per step ``x`` (none for a readout), ``start`` and, with the gate phase, ``h`` and ``c`` read
    back. Returns the layer's output (``h`` after the last step, or the stage's result in row order) and
    the result row with the measured counts."""
    from hwsim.cosim.lstm_engine_tb import write_load_files
    from hwsim.cosim.tb_util import pulse

    dut, cfg = tb.dut, tb.cfg
    xs = np.atleast_2d(np.asarray(layer["x"], dtype=np.int64))
    setup, N = layer["setup"], xs.shape[1]
    write_load_files(layer, cfg.data_bits, tb.ldata_bits, tb.mem_depth)
    n, gates = int(layer["n_stages"]), bool(layer["gates"])
    dut.n_stages.value, dut.gates.value = n, int(gates)
    await tb._load(0, len(setup), clear=True)
    limit = 4 * int(layer["predicted_cycles"]) + 1000
    cycles, got, want = 0, [], []
    for t in range(len(xs)):
        if cfg.x_load == "stream":
            dut.x_first.value, dut.n_x.value = len(setup) + t * N, N
        elif N:
            await tb._load(len(setup) + t * N, N)
        await pulse(dut, dut.start)
        await tb._wait_done("run", limit)
        cycles += int(dut.cycles.value)
        if gates:
            H = int(layer["hidden"])
            got += [await tb._dump(EXT_RSEL["hmem"], H), await tb._dump(EXT_RSEL["cmem"], H)]
            want += [np.asarray(layer["expect_h"][t]), np.asarray(layer["expect_c"][t])]
    counts = tb.counts()
    if gates:
        out = got[-2]
    else:
        raw = await tb._dump(n % 2, len(layer["expect_out"]))
        out = raw[np.asarray(layer["perm"], dtype=np.int64)]
        got, want = [out], [np.asarray(layer["expect_out"], dtype=np.int64)]
    got, want = np.concatenate(got), np.concatenate(want)
    diffs = count_diffs(counts, layer["expect_counts"])
    row = {"name": layer["name"], "kind": layer["kind"], "shape": layer["shape"], "vectors": int(want.size),
           "mismatches": int(np.count_nonzero(got != want)) if got.shape == want.shape else int(want.size),
           "rtl_cycles": cycles, "predicted_cycles": int(layer["predicted_cycles"]),
           "stall_cycles": counts["stall_cycles"], "actions": counts["actions"], "bank_reads": counts["bank_reads"],
           "bank_writes": counts["bank_writes"], "count_diffs": diffs, "count_mismatches": len(diffs)}
    return out, row


@cocotb.test()
async def lstm_engine_model_runs(dut):
    """The job's layers (step layers of :func:`~hwsim.cosim.lstm_engine_regression.step_layer`, readout
    layers of :func:`readout_layer`) in order; rows to ``$HWSIM_RESULT``, outputs to ``outputs.npz``."""
    from hwsim.cosim.lstm_engine_tb import LstmEngineTB

    job = read_job(Path(os.environ["HWSIM_JOB"]))
    tb = LstmEngineTB(dut, LstmEngineConfig.from_dict(job["config"]))
    await tb.reset()
    rows, saved, t0 = [], {}, time.perf_counter()
    for idx, layer in enumerate(job["layers"]):
        t_layer = time.perf_counter()
        out, row = await _run_layer(tb, layer)
        saved[str(idx)] = out
        rows.append({**row, "wall_seconds": time.perf_counter() - t_layer})
    np.savez(Path(os.environ["HWSIM_RESULT"]).with_name("outputs.npz"), **saved)
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": rows, "wall_seconds": time.perf_counter() - t0,
                   "rtl_cycles": sum(r["rtl_cycles"] for r in rows)}, f)
