"""The RF array's ``cosim_run`` (:class:`hwsim.families.Family`): one dense layer of a compressed model with
every V^H and U mesh pass on the fixed-point mesh emulator RTL under Verilator, for the model
co-simulation (:mod:`hwsim.cosim.model_cosim`).

The layer is cut and programmed as :func:`hwsim.rf_array_layers.lower` and
:func:`hwsim.models.rf_layers.program_linear` do (``n x n`` SVD tiles, ``n_tile``-major). The value path is
the spec's (:mod:`hwsim.models.rf_layers`, steps 1-8) with the two mesh stages on the RTL:

1. the signal DACs and the alignment of every tile's input slice (host, :func:`~hwsim.models.rf_layers.signal_dac`);
2. **every tile's V^H pass on the RTL**: one simulator run for the whole layer, one emulator run per tile
   with all the batch's vectors (split only where a run would overflow the harness memory or the
   ``n_vectors`` port);
3. the attenuators on the RTL's V^H outputs (host, :func:`~hwsim.models.rf_layers.attenuate`);
4. **every tile's U pass on the RTL**, likewise;
5. the ADCs, the post-adder and the requantization on the RTL's U outputs (host,
   :func:`~hwsim.models.rf_layers.adc`, :func:`~hwsim.models.rf_layers.post_exponents`,
   :func:`~hwsim.models.rf_layers.requantize_codes`).

The diagonal, the ADCs and the post-adder have no RTL. Every pass runs on the emulator of the unit's mesh
(``cfg.replace(target="emulator")``: one Verilator build per config, shared by every layer and both
stages); the testbench (:mod:`hwsim.cosim.rf_array_model_tb`) checks each pass against
:func:`hwsim.models.rf_array.emulate` and :func:`hwsim.rf_array.predict_emulator`, and each pass returns as
an :class:`~hwsim.cosim.model_cosim.RtlRun` (its :class:`~hwsim.rf_array_layers.MeshPass` with
``vectors`` = the run's vectors, the measured cycles, stalls and activity counters) that the model
co-simulation compares with :func:`hwsim.rf_array_layers.predict` on the emulator target.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hwsim.cosim.model_cosim import CosimContext, LayerCosim, RtlRun
from hwsim.cosim.rf_array_harness import DEFAULT_MEM_DEPTH, rf_array_harness
from hwsim.cosim.runner import run_job
from hwsim.models import rf_layers as spec
from hwsim.rtl.rf_array import VECTOR_COUNT_BITS

from hwsim.rf_array import RfArrayConfig
from hwsim.rf_array_layers import MeshPass, layer_input, lower
from hwsim.stats import ActionCounts
from hwsim.unit import Stats

__all__ = ["TEST_MODULE", "cosim_run", "max_vectors", "measured_stats"]

#: The testbench of the model co-simulation's mesh passes (outputs saved for chaining).
TEST_MODULE = "hwsim.cosim.rf_array_model_tb"


def max_vectors(mem_depth: int = DEFAULT_MEM_DEPTH) -> int:
    """The most input vectors of one emulator run: the harness memory and the ``n_vectors`` port."""
    return min(mem_depth, (1 << VECTOR_COUNT_BITS) - 1)


def measured_stats(row: dict) -> Stats:
    """The :class:`~hwsim.unit.Stats` of one emulator run as the harness measured it (a testbench result
    row: busy cycles, stall cycles and the activity counters as ``component.action``)."""
    acts = ActionCounts({tuple(k.split(".", 1)): int(v) for k, v in row["actions"].items()})
    return Stats(row["rtl_cycles"], row["rtl_stalls"], 0, acts)


def _stage(rcfg: RfArrayConfig, ctx: CosimContext, layer: str, stage: str,
           passes: list[tuple[MeshPass, np.ndarray, np.ndarray]]) -> tuple[list[np.ndarray], list[RtlRun]]:
    """Run every ``(op, codes, vectors)`` of one stage in one simulator run; the RTL's outputs per pass and
    the :class:`RtlRun` of every emulator run."""
    step = max_vectors()
    jobs, where = [], []
    for j, (op, codes, x) in enumerate(passes):
        for i in range(0, len(x), step):
            jobs.append({"name": f"{layer}.{stage}[{op.n_tile},{op.k_tile}]" + (f"+{i}" if i else ""),
                         "w": np.asarray(codes, dtype=np.int64), "x": x[i:i + step],
                         "shape": f"{len(x[i:i + step])} vectors x {rcfg.n} ports"})
            where.append((j, i))
    sub = ctx.run_dir(f"{layer}-{stage}")
    made = ctx.build(rcfg, rf_array_harness())
    result = run_job(made, {"family": "rf-array", "config": rcfg.to_dict(), "layers": jobs}, workdir=sub,
                     test_module=TEST_MODULE, assertion_files=TEST_MODULE.rpartition(".")[2] + ".py")
    with np.load(sub / "outputs.npz") as saved:
        outs = [saved[str(k)] for k in range(len(jobs))]
    y = [np.zeros_like(x) for _, _, x in passes]
    runs = []
    for (j, i), out, row in zip(where, outs, result["layers"], strict=True):
        op, _, x = passes[j]
        v = len(x[i:i + step])
        if out.shape == (v, rcfg.n, 2):
            y[j][i:i + v] = out
        runs.append(RtlRun(dataclasses.replace(op, vectors=v), rcfg, measured_stats(row), outputs=row["vectors"],
                           mismatches=row["mismatches"], diffs=row["count_diffs"]))
    return y, runs


def cosim_run(cfg: RfArrayConfig, layer, inputs, ctx: CosimContext) -> LayerCosim:
    """A compressed ``linear`` layer on the batch ``inputs`` with its mesh passes on the emulator RTL (see the
    module docstring): output codes (batch, O), the V^H then U runs."""
    ops = lower(cfg, layer)  # checks the layer
    x = layer_input(layer, inputs)
    a, n = int(layer.act_bits), cfg.n
    program = spec.program_linear(cfg, layer.weight)
    tiles = program.tiles
    rcfg = cfg.replace(target="emulator")
    v_ops = [op for op in ops if op.stage == "v"]
    u_ops = [op for op in ops if op.stage == "u"]
    x_v = [spec.signal_dac(cfg, x[:, t.k_tile * n:t.k_tile * n + t.rows], a) for t in tiles]
    y_v, runs_v = _stage(rcfg, ctx, layer.name, "v",
                         [(op, t.v_codes, xv) for op, t, xv in zip(v_ops, tiles, x_v, strict=True)])
    x_u = [spec.attenuate(cfg, t.atten_codes, yv) for t, yv in zip(tiles, y_v, strict=True)]
    y_u, runs_u = _stage(rcfg, ctx, layer.name, "u",
                         [(op, t.u_codes, xu) for op, t, xu in zip(u_ops, tiles, x_u, strict=True)])
    shifts, f = spec.post_exponents(cfg, program, a)
    acc = np.zeros((x.shape[0], program.n_tiles * n), dtype=np.int64)
    for t, s, yu in zip(tiles, shifts, y_u, strict=True):
        acc[:, t.n_tile * n:(t.n_tile + 1) * n] += spec.adc(cfg, yu) << int(s)
    acc = acc[:, :program.out_features]
    if layer.bias is not None:
        acc = acc + (np.asarray(layer.bias, dtype=np.int64)[None, :] << f)
    values = spec.requantize_codes(acc, np.asarray(layer.shift, dtype=np.int64) + f, layer.relu, a)
    o, i = np.shape(layer.weight)
    shape = f"{x.shape[0]}x{i}x{o} {program.k_tiles}x{program.n_tiles}t"
    return LayerCosim(values, tuple(runs_v + runs_u), shape)
