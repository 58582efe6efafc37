"""One model-run loop: every layer of a model on the unit that runs its kind, through the unit protocol.

``compile_model`` turns a float model into integer layers for the accelerator (the generic compressor,
or the family's own ``compile`` when its number formats are its own); ``route`` gives each layer a unit
(:meth:`hwsim.families.Accelerator.unit_for`); then for each layer the unit's family ``lower`` s it into
ops and ``predict`` s them (:func:`predict_model`, counts only), or ``run`` s it bit-exactly on a batch
beside the family's reference (:func:`run_model`). Layers that no unit runs (the input quantizer, pools,
adds, ...) run on the host inside the compiled model. :func:`price` turns a layer's
:class:`hwsim.unit.Stats` into energy on its unit's inventory.

``simulate``, ``sweep``, the model co-simulation and the studies all use this loop; nothing here names a
family (:mod:`hwsim.unit` has the protocol, :mod:`hwsim.families` the registry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError
from hwsim.families import Accelerator, Unit
from hwsim.unit import TRAFFIC, Stats, total

#: The integer-arithmetic fields compression and host layers take from a unit's config.
ARITH_FIELDS = ("acc_bits", "overflow", "rounding")

__all__ = ["LayerRun", "ModelRun", "apply_memory", "base_config", "check_memory", "compile_model", "memory_stats",
           "predict_model", "price", "reference_model", "route", "run_model"]


@dataclass(frozen=True)
class LayerRun:
    """One unit layer of one inference: its unit (index into ``Accelerator.units``), report labels and
    :class:`Stats` (for a data-dependent unit, the per-inference mean; see :func:`hwsim.unit.mean_stats`)."""

    name: str
    kind: str
    unit: int
    shape: str
    weight_format: str
    stats: Stats


@dataclass(frozen=True)
class ModelRun:
    """What :func:`run_model` returns: per-layer statistics of one inference, and the output of every input
    through the families' references (``logits_reference``) and through the units' ``run``
    (``logits_simulated``); ``outputs_compared`` counts the values the units computed."""

    compress: str
    layers: tuple[LayerRun, ...]
    logits_reference: np.ndarray | None = None
    logits_simulated: np.ndarray | None = None
    outputs_compared: int = 0
    data_dependent: tuple[str, ...] = field(default_factory=tuple)
    memory: tuple = ()  # (unit index, hwsim.memory.MemoryPlan) of each unit with a global buffer


def base_config(acc: Accelerator, fmodel):
    """The config whose arithmetic (acc_bits, overflow, rounding) compression plans with and host layers
    use: the unit of the first conv / linear layer (the first unit if there is none), or None (the
    compressor's defaults: 32-bit saturating accumulator, half-up rounding) when that unit's config has no
    integer accumulator (an analog unit)."""
    from hwsim.models.graph import COMPUTE_KINDS

    cfg = acc.units[0].config
    for la in fmodel.workload_layers():
        if la.kind in COMPUTE_KINDS:
            cfg = acc.unit_for(la.kind, la.name).config
            break
    return cfg if all(hasattr(cfg, f) for f in ARITH_FIELDS) else None


def chosen_fields(accel) -> frozenset | None:
    """The config fields the user chose for the units of ``accel``: None (all of them) for a config or
    Accelerator built in Python; the keys a YAML/JSON file names (top level, under a family key or in a unit);
    nothing for a preset name."""
    from hwsim.families import all_families, load_mapping_file

    if not isinstance(accel, (str, Path)):
        return None
    name = str(accel)
    if any(fam.preset(name) is not None for fam in all_families()):
        return frozenset()
    data = load_mapping_file(name, "--accel")
    maps = [data, *(data.get("units") or []), *(v for v in data.values() if isinstance(v, dict))]
    return frozenset(k for m in maps if isinstance(m, dict) for k in m)


def fit_units(acc: Accelerator, compiled, chosen: frozenset | None) -> tuple[Accelerator, list[str]]:
    """Each unit's config fitted to the layers of ``compiled`` it runs, by its family's ``fit_model`` entry
    (e.g. the hardware a quantized ONNX graph's layers need), changing only fields the user did not choose
    (``chosen``, :func:`chosen_fields`); a chosen field the layers cannot run with is a one-line error from
    the family. ``(accelerator, notes)``."""
    units, notes = [], []
    routed = route(acc, compiled)
    for i, u in enumerate(acc.units):
        if u.family.fit_model is None:
            units.append(u)
            continue
        cfg, n = u.family.load("fit_model")(u.config, [la for la, k in routed if k == i], chosen)
        units.append(Unit(u.family, cfg) if cfg != u.config else u)
        notes += n
    return Accelerator(acc.name, tuple(units)), notes


def onnx_rounding(acc: Accelerator, fmodel, chosen: frozenset | None) -> tuple[Accelerator, list[str]]:
    """A quantized ONNX graph rounds half to even, as ONNX Runtime does: when the user did not choose the
    units' rounding (not in ``chosen``, :func:`chosen_fields`: a preset, or a file without ``rounding``),
    every unit with a ``rounding`` field that rounds otherwise is set to ``half_even``, and a note says so.
    ``(accelerator, notes)``."""
    imp = fmodel.meta.get("onnx_import")
    if imp is None or not imp.quantized or chosen is None or "rounding" in chosen:
        return acc, []
    changed = [u for u in acc.units if getattr(u.config, "rounding", "half_even") != "half_even"]
    if not changed:
        return acc, []
    units = tuple(Unit(u.family, u.config.replace(rounding="half_even")) if u in changed else u for u in acc.units)
    was = ", ".join(dict.fromkeys(f"{u.family.name} {u.config.rounding}" for u in changed))
    return Accelerator(acc.name, units), [
        f"note: rounding half_even (was {was}): a quantized ONNX graph rounds half to even, as ONNX Runtime "
        "does; an --accel file with 'rounding: half_up' keeps the unit's own"]


def compile_model(acc: Accelerator, fmodel, compress: str | None = None, calib=None, train_data=None):
    """``(compiled model, compress label)`` of the float ``fmodel`` for ``acc``.

    Every workload layer must have a unit (one-line error naming the layer otherwise). A unit whose family
    has a ``compile`` entry point compiles the model itself (then every layer must route to that unit);
    otherwise :func:`hwsim.models.compress.compress` compresses it to ``compress`` (default ``int8``, or
    ``onnx`` for a quantized ONNX graph, which then runs with its own weight codes and scales).
    """
    from hwsim.models import compress as comp

    used = {acc.units.index(acc.unit_for(la.kind, la.name)) for la in fmodel.workload_layers()}
    own = sorted(i for i in used if acc.units[i].family.compile is not None)
    if own:
        if len(used) != 1:
            raise HwsimError(f"--accel={acc.name!r} is not allowed: the model's layers route to {len(used)} units "
                             f"and {acc.units[own[0]].family.name} compiles whole models only; expected every "
                             "layer on one unit")
        unit = acc.units[own[0]]
        return unit.family.load("compile")(unit.config, fmodel, compress, calib, train_data)
    base = base_config(acc, fmodel)
    onnx_imp = fmodel.meta.get("onnx_import")
    if compress is None:
        compress = "onnx" if onnx_imp is not None and onnx_imp.quantized else "int8"
    if compress == "onnx":
        from hwsim.models.onnx_import import to_compressed

        if onnx_imp is None or not onnx_imp.quantized:
            raise HwsimError(f"--compress='onnx' is not allowed for model={fmodel.name!r}: expected an ONNX graph "
                             "with QDQ, QOperator or QONNX quantizers")
        return to_compressed(onnx_imp, base), f"onnx-{onnx_imp.style}"
    return comp.compress(fmodel, compress, calib, cfg=base, train_data=train_data), compress


def route(acc: Accelerator, compiled) -> list[tuple[object, int]]:
    """Each unit layer of ``compiled`` with the index of the unit that runs it."""
    return [(la, acc.units.index(acc.unit_for(la.kind, la.name))) for la in compiled.unit_layers()]


def _lowered(acc: Accelerator, compiled) -> list[tuple[object, int, tuple]]:
    """Each unit layer, its unit and its ops (lowering raises for a layer its unit cannot run, before any
    work)."""
    out = []
    for la, i in route(acc, compiled):
        u = acc.units[i]
        out.append((la, i, tuple(u.family.load("lower")(u.config, la))))
    return out


def _labels(unit: Unit, la, ops) -> tuple[str, str]:
    if unit.family.describe_layer is not None:
        return unit.family.load("describe_layer")(unit.config, la, ops)
    return "", str(getattr(la, "weight_format", "") or "")


def predict_model(acc: Accelerator, compiled, label: str = "", progress=None) -> ModelRun:
    """Counts only: each unit layer's ops predicted in closed form and summed (one inference)."""
    layers = []
    for la, i, ops in _lowered(acc, compiled):
        u = acc.units[i]
        predict = u.family.load("predict")
        st = total(predict(u.config, op) for op in ops)
        layers.append(LayerRun(la.name, la.kind, i, *_labels(u, la, ops), st))
        if progress is not None:
            progress(la.name)
    return ModelRun(label, tuple(layers))


def _host_cfg(acc: Accelerator, lowered, cfg):
    """The arithmetic of the host layers: ``cfg``, else the first unit layer's unit when its config has an
    integer accumulator, else None (the compiled model's own)."""
    if cfg is None and lowered:
        cfg = acc.units[lowered[0][1]].config
    return cfg if cfg is not None and all(hasattr(cfg, f) for f in ARITH_FIELDS) else None


def _quantized(compiled, x, cfg):
    return compiled.quantize_input(x, None if cfg is None else getattr(cfg, "rounding", None))


def reference_model(acc: Accelerator, compiled, x, cfg=None) -> np.ndarray:
    """The outputs of the inputs ``x`` through the compiled model with every unit layer on its family's
    bit-exact reference (host layers with ``cfg``'s arithmetic, default the first unit's)."""
    lowered = _lowered(acc, compiled)
    unit_of = {la.name: i for la, i, _ in lowered}
    cfg = _host_cfg(acc, lowered, cfg)

    def ref_layer(la, ins):
        u = acc.units[unit_of[la.name]]
        return u.family.load("run_reference")(u.config, la, ins)

    return np.asarray(compiled.run_int(_quantized(compiled, x, cfg), cfg=cfg, layer_fn=ref_layer))


def run_model(acc: Accelerator, compiled, x, label: str = "", cfg=None, progress=None,
              reference: np.ndarray | None = None) -> ModelRun:
    """Bit-exact: the inputs ``x`` through the compiled model with every unit layer on the unit's ``run``
    (host layers with ``cfg``'s arithmetic, default the first unit's), beside :func:`reference_model` (or
    the ``reference`` outputs when the caller already has them, e.g. a sweep's points that share the
    arithmetic); per-layer :class:`Stats` of one inference from ``run``."""
    lowered = _lowered(acc, compiled)
    unit_of = {la.name: i for la, i, _ in lowered}
    cfg = _host_cfg(acc, lowered, cfg)
    ref = reference_model(acc, compiled, x, cfg) if reference is None else reference
    stats: dict[str, Stats] = {}
    computed = [0]

    def sim_layer(la, ins):
        u = acc.units[unit_of[la.name]]
        values, st = u.family.load("run")(u.config, la, ins)
        stats[la.name] = st
        computed[0] += np.asarray(values).size
        if progress is not None:
            progress(la.name)
        return values

    sim = compiled.run_int(_quantized(compiled, x, cfg), cfg=cfg, layer_fn=sim_layer)
    layers = tuple(LayerRun(la.name, la.kind, i, *_labels(acc.units[i], la, ops), stats[la.name])
                   for la, i, ops in lowered)
    dependent = tuple(lr.name for lr in layers if "inputs" in lr.stats.detail)
    return ModelRun(label, layers, np.asarray(ref), np.asarray(sim), computed[0], dependent)


def memory_stats(cfg, tensors, stats: list[Stats], dram: str = "lpddr4", links=None, batch: int = 1):
    """(the layers' :class:`Stats` with the memory system of ``cfg``'s global buffer, the
    :class:`hwsim.memory.MemoryPlan`) for the unit layers ``tensors`` (:class:`hwsim.memory.LayerTensors`,
    in order) whose unit-level Stats are ``stats``: the unit's port traffic (``dram_*``, what its RTL
    streams) becomes global-buffer reads and writes, DRAM carries the plan's raw tensors and the metadata the
    unit reads with the weights (``detail['dram_metadata_bytes']``) (``dram`` gives
    the part's timing, :mod:`hwsim.dram`), and a layer takes ``max(unit cycles, DRAM cycles)`` (transfers
    double-buffered against compute; the difference counts as stall).

    With ``batch > 1`` the plan may pin weights on chip for the batch (:func:`hwsim.memory.plan`): the first
    inference reads them, the others do not. Each layer's Stats are then the per-inference mean over the
    batch (counts rounded half up) with the batch's summed actions and cycles for pricing
    (``detail['inputs']`` = the batch, ``detail['cycles_total']``), as for a data-dependent unit."""
    import dataclasses
    import math

    from hwsim import memory
    from hwsim.dram import resolve_dram_spec
    from hwsim.stats import ActionCounts

    # Metadata a unit reads with a layer's weights (a Stats' detail['dram_metadata_bytes'], e.g. a zero-tile
    # bitmap) sits in DRAM beside them: read once, like the weights.
    tensors = [dataclasses.replace(t, weight_bytes=t.weight_bytes + int(st.detail.get("dram_metadata_bytes") or 0))
               for t, st in zip(tensors, stats, strict=True)]
    mp = memory.plan(tensors, cfg.global_buffer_bytes, resolve_dram_spec(dram), cfg.clock_mhz,
                     fixed_bytes_per_cycle=cfg.dram_bytes_per_cycle, links=links, size_field="global_buffer_bytes",
                     batch=batch)
    word = getattr(cfg, "sram_word_bits", 64) // 8

    def one(st, lp, pinned_bytes, dram_cycles):  # one inference of the layer
        pairs = dict(st.actions.pairs().counts)
        port_rd, port_wr = pairs.get(("dram", "read"), 0), pairs.get(("dram", "write"), 0)
        dram_rd = lp.weight_read_bytes + lp.input_read_bytes + pinned_bytes
        gb_rd, gb_wr = port_rd + lp.output_write_bytes, port_wr + dram_rd
        pairs.update({("dram", "read"): dram_rd, ("dram", "write"): lp.output_write_bytes,
                      ("global_buffer", "read"): math.ceil(gb_rd / word),
                      ("global_buffer", "write"): math.ceil(gb_wr / word)})
        cycles = max(st.cycles, dram_cycles)
        return dataclasses.replace(
            st, cycles=cycles, stall_cycles=st.stall_cycles + cycles - st.cycles, actions=ActionCounts(pairs),
            sram_read_bytes=st.sram_read_bytes + gb_rd, sram_write_bytes=st.sram_write_bytes + gb_wr,
            dram_read_bytes=dram_rd, dram_write_bytes=lp.output_write_bytes,
            detail={**st.detail, "unit_cycles": st.cycles, "dram_cycles": dram_cycles,
                    "input_from": lp.input_from, "output_to": lp.output_to})

    def mean(t, n):  # a per-inference mean of a batch's count, rounded half up
        return (2 * t + n) // (2 * n)

    out = []
    for st, lp in zip(stats, mp.layers, strict=True):
        first = one(st, lp, lp.pinned_weight_bytes, lp.first_dram_cycles)
        if batch == 1:
            out.append(first)
            continue
        rest = one(st, lp, 0, lp.dram_cycles)
        cycles = first.cycles + (batch - 1) * rest.cycles
        out.append(Stats(mean(cycles, batch), mean(first.stall_cycles + (batch - 1) * rest.stall_cycles, batch),
                         st.macs, first.actions + rest.actions.scaled(batch - 1),
                         *(mean(getattr(first, f) + (batch - 1) * getattr(rest, f), batch) for f in TRAFFIC),
                         detail={**rest.detail, "first_dram_cycles": lp.first_dram_cycles, "inputs": batch,
                                 "cycles_total": cycles}))
    return out, mp


def check_memory(acc: Accelerator, compiled, dram: str = "lpddr4", batch: int = 1) -> None:
    """Plan the memory system of every unit with a global buffer before any work, so a buffer too small for
    a layer (or a bad ``dram``) is one line up front (the plan needs shapes only, not the units' Stats)."""
    from hwsim import memory
    from hwsim.dram import resolve_dram_spec

    spec = resolve_dram_spec(dram)
    for i, u in enumerate(acc.units):
        cfg = u.config
        names = [la.name for la, k in route(acc, compiled) if k == i]
        if getattr(cfg, "global_buffer_bytes", 0) and names and hasattr(compiled, "layers"):
            tensors, links = memory.model_tensors(compiled, names)
            memory.plan(tensors, cfg.global_buffer_bytes, spec, cfg.clock_mhz,
                        fixed_bytes_per_cycle=cfg.dram_bytes_per_cycle, links=links, size_field="global_buffer_bytes",
                        batch=batch)


def apply_memory(acc: Accelerator, compiled, mr: ModelRun, dram: str = "lpddr4", batch: int = 1) -> ModelRun:
    """``mr`` with the memory system (:func:`memory_stats`, for a batch of ``batch`` inferences) of every unit
    whose config has a global buffer (``global_buffer_bytes > 0``) applied to its layers; data-dependent
    units and units without a global buffer keep their Stats."""
    import dataclasses

    from hwsim import memory

    layers = list(mr.layers)
    plans = []
    for i, u in enumerate(acc.units):
        mine = [k for k, lr in enumerate(layers) if lr.unit == i and "inputs" not in lr.stats.detail]
        if not getattr(u.config, "global_buffer_bytes", 0) or not mine:
            continue
        tensors, links = memory.model_tensors(compiled, [layers[k].name for k in mine])
        stats, mp = memory_stats(u.config, tensors, [layers[k].stats for k in mine], dram, links, batch)
        plans.append((i, mp))
        for k, st in zip(mine, stats, strict=True):
            layers[k] = dataclasses.replace(layers[k], stats=st)
    return dataclasses.replace(mr, layers=tuple(layers), memory=tuple(plans))


def idle_pj(cost, unit: Unit, st: Stats) -> float:
    """Energy (pJ, one inference) of the actions named ``idle`` in ``st``: work slots a unit passes without
    real work (padding lanes of an edge tile), priced as its inventory says (a full operation without
    gating, a closed clock gate with it)."""
    e = cost.unit_energies(unit.family.load("inventory")(unit.config))
    pj = math.fsum(n * e[ca] for ca, n in st.actions.counts.items() if ca[1] == "idle" and ca in e)
    return pj / (st.detail.get("inputs") or 1)


def price(cost, unit: Unit, st: Stats) -> dict[str, float]:
    """Energy (pJ per inventory component) of one inference's ``st`` on ``unit``. The Stats of a
    data-dependent unit (``detail['inputs']`` = n) carry the batch's summed actions and cycles
    (``detail['cycles_total']``); they are priced whole and divided by n."""
    inv = unit.family.load("inventory")(unit.config)
    n = st.detail.get("inputs")
    if n:
        e = cost.energy(inv, st.actions, st.detail["cycles_total"]).components()
        return {k: v / n for k, v in e.items()}
    return cost.energy(inv, st.actions, st.cycles).components()
