"""Dense model layers on an RF interferometer array (family ``rf-array``): the unit protocol
(:mod:`hwsim.unit`) ``lower`` / ``predict`` / ``run``, plus ``check_op``, ``reference`` and
``describe_layer``.

A compressed model's ``linear`` layer (:class:`hwsim.models.compressed.QLayer`, weight ``O x I``) is
cut into ``n x n`` SVD tiles, ``k_tiles = ceil(I / n)`` along the inputs and ``n_tiles = ceil(O / n)``
along the outputs, run ``n_tile``-major (the post-adder accumulates an output block over its
``k_tiles``). Each tile is three ops, one :class:`MeshPass` per stage: the V^H mesh (``"v"``), the
attenuator diagonal (``"diag"``) and the U mesh (``"u"``). Values follow the bit-exact spec of
:mod:`hwsim.models.rf_layers` (signal DACs, fixed-point mesh emulator with phase codes, attenuator table,
ADCs, power-of-two digital gain, requantization to the layer's output codes); :func:`run` computes them
with its own implementation (every tile of a stage at once) and the tests hold it to the reference and to
a naive loop.

Timing and actions (``m`` = vectors, 1 per inference; ``C = cfg.codes`` phase codes per mesh)
-------------------------------------------------------------------------------------------
``target="rf"`` (the physical SVD processor; per tile exactly :func:`hwsim.rf_array.predict_gemm`'s
``program + rf + stream + post``). The three stages are one pass of the signal: the tile's DACs all settle
in parallel (charged to the ``v`` op), the wave crosses V^H, the attenuators and U in one propagation, and
the ADCs at U's outputs close the stream (charged to the ``u`` op)::

    v     cycles = dac_update_cycles            dac.convert C, phase_shifter.set C, signal_dac.convert m rows
    diag  cycles = 0                            dac.convert n, attenuator.set n
    u     cycles = rf_cycles + m adc_cycles + 1 dac.convert C, phase_shifter.set C, adc.convert m cols,
                                                post.add m cols (every tile but the first of its output block)

An edge tile's padding ports (``n - rows`` signal DACs on ``v``, ``n - cols`` ADCs and post lanes on ``u``,
per vector) are idle slots, named by ``cfg.gating`` (:mod:`hwsim.rf_array`): ``signal_dac.idle``,
``adc.idle``, ``post.idle`` without gating; ``signal_dac_gate.idle``, ``adc_gate.idle`` with ``clock`` (the
post lane of a gated ADC holds). The ``u`` op's ``detail['idle_slots']`` = ``m (n^2 - rows cols)``.

``target="emulator"`` (the digital emulator of one mesh, :mod:`hwsim.rtl.rf_array`): the ``v`` and ``u``
ops are one emulator run each, exactly :func:`hwsim.rf_array.predict_emulator` (``1 + (C - 1)
dac_update_cycles + m + 7 columns + 3`` cycles; code_reg, rotator, mixer and screen actions). The ``diag``
op, the ADC and the post-adder are digital glue outside the emulator RTL: 0 cycles, no priced actions.

Memory and traffic (bytes; ``a`` = the layer's act_bits, ``d`` = dac_bits)
------------------------------------------------------------------------
* **DAC code registers**: one per DAC, written when a tile is programmed (priced as ``dac.convert``).
  The codes come from DRAM, where the compiled layer keeps every tile's program: ``ceil(C d / 8)`` bytes per
  mesh (``v`` and ``u`` ops) and ``ceil(n d / 8) + 1`` for the attenuators and the gain exponent
  (``diag`` op), read once per tile.
* **Input buffer** (SRAM in front of the signal DACs): the layer's input codes arrive from DRAM once
  (``ceil(m I a / 8)``, charged in slices to the ``v`` ops of the first output block, which write them
  into the buffer); every tile reads its input slice, ``ceil(m rows a / 8)`` (``v`` op).
* **Accumulator buffer** (SRAM of the post-adder, ``POST_BITS``-bit partial sums): with ``k_tiles > 1``
  the first tile of an output block writes ``m cols`` partial sums, each later one reads and writes them, and
  the last reads them; the requantized output codes go to DRAM (``ceil(m cols a / 8)``, last ``u`` op of
  the block).
* ``target="emulator"`` adds the complex vectors between the passes (``2 data_bits`` bits per port, all
  ``n`` ports): written by ``v``, read and written by ``diag``, read by ``u``.

The inventory of ``target="rf"`` prices the traffic (``buffer`` reads and writes of 64-bit words, ``dram``
bytes); the emulator's has neither, so there it is only reported in the :class:`~hwsim.unit.Stats` byte
fields.

Shape-only layers (counts only)
-------------------------------
A :class:`WorkloadLayer` is a ``linear`` layer given by its shape, dense or a TT layer
(:class:`hwsim.models.rf_tt.TTLayer`), for the counts-only run loop (:class:`WorkloadModel` through
:func:`hwsim.run.predict_model`, as ``hwsim study tt-rfnn`` runs its networks). A dense one lowers like a
compressed layer of its shape. A TT one lowers core by core in signal order, core ``k``'s matrix
``(r_{k-1} m_k) x (n_k r_k)`` tiled like a weight and fed its ``B_k`` vectors (``vectors = B_k``,
``core = k``): the ``reuse`` arrangement, each stage's outputs digitized, requantized to ``act_bits`` codes,
written out and read back by the next stage. Its passes add up to :func:`hwsim.rf_array.predict_tt` plus the
memory traffic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.config import check_int
from hwsim.errors import HwsimError
from hwsim.models import rf_array as ref
from hwsim.models import rf_layers as spec
from hwsim.models.rf_tt import TTLayer, stage_shapes
from hwsim.rf_array import RfArrayConfig, predict_emulator
from hwsim.stats import ActionCounts
from hwsim.unit import Stats, total

__all__ = ["POST_BITS", "STAGES", "MeshPass", "WorkloadLayer", "WorkloadModel", "check_op", "describe_layer",
           "layer_input", "lower", "mesh_runs", "predict", "reference", "run"]

#: The stages of one SVD tile, in signal order.
STAGES = ("v", "diag", "u")
#: Width of the post-adder's partial sums in the accumulator buffer (the inventory's ``post`` adder).
POST_BITS = 32


@dataclass(frozen=True)
class MeshPass:
    """One stage of one ``n x n`` SVD tile of a layer (see the module docstring).

    ``rows`` / ``cols`` are the input features / output channels of the weight block the tile holds
    (``<= n``; an edge tile is zero-padded); ``vectors`` the input vectors per inference; ``act_bits`` the
    width of the layer's input and output codes; ``core`` the TT core whose matrix the tile holds (None for
    a dense layer).
    """

    layer: str
    stage: str
    k_tile: int
    n_tile: int
    k_tiles: int
    n_tiles: int
    rows: int
    cols: int
    vectors: int
    act_bits: int
    core: int | None = None


@dataclass(frozen=True)
class WorkloadLayer:
    """A ``linear`` layer given by its shape only, for the counts-only run loop
    (:func:`hwsim.run.predict_model`): a dense ``out_features x in_features`` matrix, or with ``tt`` a TT
    layer of that shape (:class:`hwsim.models.rf_tt.TTLayer`, ``tt.m x tt.n``) run core by core on the
    processor (the ``reuse`` arrangement: each stage's outputs digitized, written out and read back as the
    next stage's inputs, all as ``act_bits`` codes). No values: :func:`run` and :func:`reference` refuse it."""

    name: str
    out_features: int
    in_features: int
    tt: TTLayer | None = None
    act_bits: int = 8
    kind: str = "linear"
    inputs: tuple[str, ...] = ("input",)

    def __post_init__(self):
        check_int("out_features", self.out_features, 1)
        check_int("in_features", self.in_features, 1)
        check_int("act_bits", self.act_bits, 1, 32)
        if self.tt is not None and (self.tt.m, self.tt.n) != (self.out_features, self.in_features):
            raise HwsimError(f"layer {self.name!r}: tt with shape {self.tt.m}x{self.tt.n} is not allowed: expected "
                             f"out_features x in_features = {self.out_features}x{self.in_features}")

    @classmethod
    def from_tt(cls, name: str, tt: TTLayer, act_bits: int = 8) -> WorkloadLayer:
        """The TT layer ``tt`` (its shape ``tt.m x tt.n``) named ``name``."""
        return cls(name, tt.m, tt.n, tt, act_bits)


class WorkloadModel:
    """Shape-only ``linear`` layers as a model the counts-only run loop drives (:func:`hwsim.run.predict_model`,
    then :func:`hwsim.run.price`): one :class:`WorkloadLayer` each, no host layers."""

    def __init__(self, *layers: WorkloadLayer):
        self.layers = tuple(layers)

    def unit_layers(self) -> tuple[WorkloadLayer, ...]:
        return self.layers


# ---------------------------------------------------------------------------------------------- check / lower
def check_op(cfg: RfArrayConfig, layer) -> None:
    """Raise a one-line :class:`HwsimError` if the RF array cannot run ``layer`` (a compressed model's layer,
    or a :class:`MeshPass`): only dense ``linear`` layers, with inputs narrow enough for the data word."""
    if isinstance(layer, MeshPass | WorkloadLayer):
        if isinstance(layer, MeshPass) and layer.stage not in STAGES:
            raise HwsimError(f"stage={layer.stage!r} is not allowed: expected one of {', '.join(STAGES)}")
        spec.input_alignment(cfg, layer.act_bits)
        return
    kind = getattr(layer, "kind", None)
    name = getattr(layer, "name", "?")
    if kind != "linear":
        raise HwsimError(f"layer {name!r}: kind={kind!r} is not allowed on rf-array: expected 'linear' (a dense "
                         f"layer, SVD-mapped onto {cfg.n}x{cfg.n} mesh tiles)")
    w = getattr(layer, "weight", None)
    if w is None or np.ndim(w) != 2 or min(np.shape(w)) < 1:
        raise HwsimError(f"layer {name!r}: weight with shape {np.shape(w)} is not allowed: expected an (out, in) "
                         "matrix")
    spec.input_alignment(cfg, int(layer.act_bits))


def _tiles(cfg: RfArrayConfig, name: str, o: int, i: int, vectors: int, act_bits: int,
           core: int | None = None) -> list[MeshPass]:
    """The mesh passes of an ``o x i`` matrix applied to ``vectors`` vectors: for each tile (``n_tile``-major,
    then ``k_tile``) its ``v``, ``diag`` and ``u`` stages."""
    kt_n, nt_n = spec.tile_grid(cfg.n, i, o)
    ops = []
    for nt in range(nt_n):
        cols = min(cfg.n, o - nt * cfg.n)
        for kt in range(kt_n):
            rows = min(cfg.n, i - kt * cfg.n)
            ops += [MeshPass(name, s, kt, nt, kt_n, nt_n, rows, cols, vectors, act_bits, core) for s in STAGES]
    return ops


def lower(cfg: RfArrayConfig, layer) -> tuple[MeshPass, ...]:
    """The mesh passes of one inference of a ``linear`` layer: for each tile (``n_tile``-major, then
    ``k_tile``) its ``v``, ``diag`` and ``u`` stages. A :class:`WorkloadLayer` with ``tt``: each TT core in
    signal order (core d first, :func:`hwsim.models.rf_tt.stage_shapes`) as its ``(r m) x (n r)`` core matrix
    on its ``B_k`` vectors, tiled the same way (``core`` set on its passes)."""
    check_op(cfg, layer)
    a = int(layer.act_bits)
    if isinstance(layer, WorkloadLayer):
        if layer.tt is None:
            return tuple(_tiles(cfg, layer.name, layer.out_features, layer.in_features, 1, a))
        return tuple(op for st in stage_shapes(layer.tt)
                     for op in _tiles(cfg, layer.name, st["p"], st["q"], st["vectors"], a, st["core"]))
    o, i = np.shape(layer.weight)
    return tuple(_tiles(cfg, layer.name, o, i, 1, a))


# ---------------------------------------------------------------------------------------------- predict
#: The action naming a padding port's slot under each ``gating`` (:mod:`hwsim.rf_array`): the converter's own
#: ``idle`` without gating, its sample-clock gate's with it.
_IDLE = {"none": {"signal_dac": ("signal_dac", "idle"), "adc": ("adc", "idle")},
         "clock": {"signal_dac": ("signal_dac_gate", "idle"), "adc": ("adc_gate", "idle")}}
def _nonzero(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if v}


def _bytes(bits: int) -> int:
    return math.ceil(bits / 8)


def _traffic(cfg: RfArrayConfig, op: MeshPass) -> dict[str, int]:
    m, a, n = op.vectors, op.act_bits, cfg.n
    t = {"sram_read_bytes": 0, "sram_write_bytes": 0, "dram_read_bytes": 0, "dram_write_bytes": 0}
    inter = _bytes(m * n * 2 * cfg.data_bits) if cfg.target == "emulator" else 0
    if op.stage == "v":
        t["dram_read_bytes"] = _bytes(cfg.codes * cfg.dac_bits)
        if op.n_tile == 0:  # the layer's input slice arrives once, into the input buffer
            t["dram_read_bytes"] += _bytes(m * op.rows * a)
            t["sram_write_bytes"] += _bytes(m * op.rows * a)
        t["sram_read_bytes"] += _bytes(m * op.rows * a)
        t["sram_write_bytes"] += inter
    elif op.stage == "diag":
        t["dram_read_bytes"] = _bytes(n * cfg.dac_bits) + 1
        t["sram_read_bytes"] += inter
        t["sram_write_bytes"] += inter
    else:
        t["dram_read_bytes"] = _bytes(cfg.codes * cfg.dac_bits)
        t["sram_read_bytes"] += inter
        psum = _bytes(m * op.cols * POST_BITS)
        if op.k_tiles > 1:
            if op.k_tile > 0:
                t["sram_read_bytes"] += psum
            if op.k_tile < op.k_tiles - 1:
                t["sram_write_bytes"] += psum
        if op.k_tile == op.k_tiles - 1:
            t["dram_write_bytes"] = _bytes(m * op.cols * a)
    return t


def predict(cfg: RfArrayConfig, op: MeshPass) -> Stats:
    """Closed-form :class:`~hwsim.unit.Stats` of one mesh pass (see the module docstring): cycles, no stalls,
    the MACs of the tile's block (on its ``u`` op), the priced actions of ``cfg.target``'s inventory and
    the traffic per memory level; ``detail`` splits the cycles (program / rf / stream / post) and counts
    ``tiles``; on ``target="rf"`` the ``u`` op also the tile's padding MAC slots (``idle_slots``), whose
    signal-DAC, ADC and post-adder port slots are counted apart from the real ones (``cfg.gating``)."""
    check_op(cfg, op)
    m, n, c = op.vectors, cfg.n, cfg.codes
    macs = m * op.rows * op.cols if op.stage == "u" else 0
    detail = {"tiles": int(op.stage == "u")}
    if cfg.target == "emulator":
        if op.stage == "diag":
            cycles, acts = 0, {}
        else:
            st = predict_emulator(cfg, m)
            cycles, acts = st.cycles, dict(st.actions.counts)
        detail["emulator_runs"] = int(op.stage != "diag")
    elif op.stage == "v":
        cycles = cfg.dac_update_cycles
        acts = {("dac", "convert"): c, ("phase_shifter", "set"): c, ("signal_dac", "convert"): m * op.rows,
                **_nonzero({_IDLE[cfg.gating]["signal_dac"]: m * (n - op.rows)})}
        detail["program_cycles"] = cycles
    elif op.stage == "diag":
        cycles, acts = 0, {("dac", "convert"): n, ("attenuator", "set"): n}
    else:
        cycles = cfg.rf_cycles + m * cfg.adc_cycles + 1
        acts = {("dac", "convert"): c, ("phase_shifter", "set"): c, ("adc", "convert"): m * op.cols,
                **_nonzero({_IDLE[cfg.gating]["adc"]: m * (n - op.cols)})}
        if op.k_tile > 0:
            acts[("post", "add")] = m * op.cols
            if cfg.gating == "none":  # a gated ADC's post lane holds: nothing counted
                acts.update(_nonzero({("post", "idle"): m * (n - op.cols)}))
        detail.update(rf_cycles=cfg.rf_cycles, stream_cycles=m * cfg.adc_cycles, post_cycles=1,
                      idle_slots=m * (n * n - op.rows * op.cols))
    traffic = _traffic(cfg, op)
    if cfg.target == "rf":  # the SVD processor's buffer (64-bit words) and DRAM are in its inventory
        acts.update({("buffer", "read"): -(-traffic["sram_read_bytes"] // 8),
                     ("buffer", "write"): -(-traffic["sram_write_bytes"] // 8),
                     ("dram", "read"): traffic["dram_read_bytes"], ("dram", "write"): traffic["dram_write_bytes"]})
    return Stats(cycles, 0, macs, ActionCounts(acts), **traffic, detail=detail)


# ---------------------------------------------------------------------------------------------- run
def _rs(cfg: RfArrayConfig, v: np.ndarray) -> np.ndarray:
    f = cfg.coef_bits
    return np.clip((v + (1 << (f - 1))) >> f, -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1)


def _emulate_tiles(cfg: RfArrayConfig, codes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The emulator programmed with each row of ``codes`` (T, cfg.codes) on its vectors ``x`` (T, V, n, 2),
    every program at once (the same integer arithmetic as :func:`hwsim.models.rf_array.emulate`)."""
    t = ref.tables(cfg)
    re, im = x[..., 0].copy(), x[..., 1].copy()
    i = 0
    for col in ref.mesh_layout(cfg.n, cfg.mesh):
        top = np.array(col, dtype=np.int64)
        k = top.size
        theta, phi = codes[:, i:i + 2 * k:2][:, None, :], codes[:, i + 1:i + 2 * k:2][:, None, :]
        i += 2 * k
        c, s = t["C"][phi], t["S"][phi]
        ar, ai, bi = t["AR"][theta], t["AI"][theta], t["BI"][theta]
        xr, xi, yr, yi = re[:, :, top], im[:, :, top], re[:, :, top + 1], im[:, :, top + 1]
        ur, ui = _rs(cfg, xr * c - xi * s), _rs(cfg, xr * s + xi * c)
        # [top; bot] = [[A, Bc], [Bc, -A]] [u; y] with A = ar + i ai, Bc = -ai + i bi
        re[:, :, top] = _rs(cfg, ur * ar - ui * ai - yr * ai - yi * bi)
        im[:, :, top] = _rs(cfg, ur * ai + ui * ar + yr * bi - yi * ai)
        re[:, :, top + 1] = _rs(cfg, -ur * ai - ui * bi - yr * ar + yi * ai)
        im[:, :, top + 1] = _rs(cfg, ur * bi - ui * ai - yr * ai - yi * ar)
    d = codes[:, i:][:, None, :]
    c, s = t["C"][d], t["S"][d]
    return np.stack([_rs(cfg, re * c - im * s), _rs(cfg, re * s + im * c)], axis=-1)


def _stage_inputs(cfg: RfArrayConfig, program: spec.LinearProgram, x: np.ndarray, act_bits: int) -> np.ndarray:
    """Signal DACs and alignment of every tile's input slice: (T, V, n, 2)."""
    dsh, sx = spec.input_alignment(cfg, act_bits)
    n = cfg.n
    if dsh:
        lo, hi = -(1 << (cfg.adc_bits - 1)), (1 << (cfg.adc_bits - 1)) - 1
        x = np.clip((x + (1 << (dsh - 1))) >> dsh, lo, hi)
    xp = np.zeros((x.shape[0], program.k_tiles * n), dtype=np.int64)
    xp[:, :x.shape[1]] = x << sx
    blocks = xp.reshape(x.shape[0], program.k_tiles, n).transpose(1, 0, 2)       # (k_tiles, V, n)
    out = np.zeros((len(program.tiles), x.shape[0], n, 2), dtype=np.int64)
    out[..., 0] = blocks[[t.k_tile for t in program.tiles]]
    return out


def _run_program(cfg: RfArrayConfig, program: spec.LinearProgram, layer, x: np.ndarray,
                 keep: list | None = None) -> np.ndarray:
    a = int(layer.act_bits)
    tiles = program.tiles
    xin = _stage_inputs(cfg, program, x, a)
    y_v = _emulate_tiles(cfg, np.stack([t.v_codes for t in tiles]), xin)
    att = spec.attenuator_table(cfg)[np.stack([t.atten_codes for t in tiles])]
    y_d = _rs(cfg, y_v * att[:, None, :, None])
    y_u = _emulate_tiles(cfg, np.stack([t.u_codes for t in tiles]), y_d)
    if keep is not None:
        keep += [xin, y_v, y_d, y_u]
    sa = max(0, cfg.data_bits - cfg.adc_bits)
    re = y_u[..., 0]
    codes = re if sa == 0 else np.clip((re + (1 << (sa - 1))) >> sa, -(1 << (cfg.adc_bits - 1)),
                                       (1 << (cfg.adc_bits - 1)) - 1)
    shifts, f = spec.post_exponents(cfg, program, a)
    # post-adder: each tile's codes shifted by its exponent, summed over the k tiles of its output block
    part = (codes << shifts[:, None, None]).reshape(program.n_tiles, program.k_tiles, x.shape[0], cfg.n).sum(1)
    acc = part.transpose(1, 0, 2).reshape(x.shape[0], -1)[:, :program.out_features]
    if layer.bias is not None:
        acc = acc + (np.asarray(layer.bias, dtype=np.int64)[None, :] << f)
    return spec.requantize_codes(acc, np.asarray(layer.shift, dtype=np.int64) + f, layer.relu, a)


def layer_input(layer, inputs) -> np.ndarray:
    """The layer's input codes ``inputs[0]`` as int64 (batch, I), checked: shape and ``act_bits`` range."""
    if isinstance(layer, WorkloadLayer):
        raise HwsimError(f"layer {layer.name!r} is not allowed on the value path: a WorkloadLayer has shapes only "
                         "(counts: hwsim.run.predict_model)")
    x = np.asarray(inputs[0], dtype=np.int64)
    i = np.shape(layer.weight)[1]
    if x.ndim != 2 or x.shape[1] != i:
        raise HwsimError(f"layer {layer.name!r}: input with shape {x.shape} is not allowed: expected (batch, {i})")
    a = int(layer.act_bits)
    lo, hi = (-1, 1) if a == 1 else (-(1 << (a - 1)), (1 << (a - 1)) - 1)
    if x.size and (x.min() < lo or x.max() > hi):
        raise HwsimError(f"layer {layer.name!r}: input is not allowed: expected {a}-bit codes in [{lo}, {hi}]")
    return x


def run(cfg: RfArrayConfig, layer, inputs) -> tuple[np.ndarray, Stats]:
    """Bit-exact output codes (batch, O) of a ``linear`` layer on the RF array for ``inputs = [x]`` (int64
    (batch, I) codes), and the :class:`Stats` of one inference (the sum of :func:`predict` over
    :func:`lower`: the counts do not depend on the data)."""
    x = layer_input(layer, inputs)
    ops = lower(cfg, layer)
    values = _run_program(cfg, spec.program_linear(cfg, layer.weight), layer, x)
    return values, total(predict(cfg, op) for op in ops)


def mesh_runs(cfg: RfArrayConfig, layer, inputs) -> list[tuple[MeshPass, np.ndarray, np.ndarray, np.ndarray]]:
    """For co-simulating a layer on the mesh emulator RTL: each ``v`` / ``u`` op of :func:`lower` with its
    phase codes, its input vectors (batch, n, 2) and the outputs the emulator must produce, as :func:`run`
    computes them (the ``v`` outputs pass the attenuators before they become the ``u`` inputs). The op's
    ``vectors`` is the batch size here."""
    x = layer_input(layer, inputs)
    program = spec.program_linear(cfg, layer.weight)
    keep: list = []
    _run_program(cfg, program, layer, x, keep)
    xin, y_v, y_d, y_u = keep
    out = []
    ops = [op for op in lower(cfg, layer) if op.stage != "diag"]
    for op in ops:
        j = op.n_tile * program.k_tiles + op.k_tile
        t = program.tiles[j]
        op = MeshPass(op.layer, op.stage, op.k_tile, op.n_tile, op.k_tiles, op.n_tiles, op.rows, op.cols,
                      x.shape[0], op.act_bits)
        out.append((op, t.v_codes, xin[j], y_v[j]) if op.stage == "v" else (op, t.u_codes, y_d[j], y_u[j]))
    return out


def reference(cfg: RfArrayConfig, layer, inputs) -> np.ndarray:
    """The layer through the bit-exact spec :func:`hwsim.models.rf_layers.linear_layer`."""
    x = layer_input(layer, inputs)
    check_op(cfg, layer)
    return spec.linear_layer(cfg, layer, x)


def describe_layer(cfg: RfArrayConfig, layer, ops) -> tuple[str, str]:
    """``(shape, weight format)`` labels of a layer's report row: ``IxO`` and its tile grid (a TT
    :class:`WorkloadLayer`: its ranks and its tiles over all cores)."""
    if isinstance(layer, WorkloadLayer):
        i, o = layer.in_features, layer.out_features
        if layer.tt is not None:
            ranks = ",".join(map(str, layer.tt.ranks))
            return f"{i}x{o} tt r({ranks}) {sum(op.stage == 'u' for op in ops)}t", "shape only"
        kt, nt = spec.tile_grid(cfg.n, i, o)
        return f"{i}x{o} svd {kt}x{nt}t", "shape only"
    o, i = np.shape(layer.weight)
    kt, nt = spec.tile_grid(cfg.n, i, o)
    return f"{i}x{o} svd {kt}x{nt}t", str(layer.weight_format or "")
