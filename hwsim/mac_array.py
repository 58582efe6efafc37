"""Cycle-level model of the MAC array: exact RTL cycle counts, stalls and action counts, per fold in closed form.

Mapping (``fold_plan``) is kept apart from timing (``_timing``). Timing is the RTL's, to the clock
(cycle 1 is the first cycle ``busy`` is high; ``cycles`` is the last busy cycle):

Loader, per fold f (weights first, then activations, into buffer half f % 2)::

    WAIT at cycle w; proceeds at g = max(w, free_f), where free_f is the cycle the half's full flag
        clears (cycle 1 for folds 0 and 1, else release(f-2));
    WEIGHTS from g + 1: nw beats, beat j at t0 + j*Pw with t0 = max(g + 1, ok);
    ACTS: na beats from ok = last weight beat + Pw, one every Pa; the half is full from the cycle after
        the last beat, which is also the loader's next WAIT cycle.

``ok`` is the first cycle the DRAM may deliver again: the DRAM model delivers one beat of B bits every
P = ceil(B / (8 * dram_bytes_per_cycle)) cycles (Pw for weight rows, Pa for activation vectors; one
shared channel).

Compute engine, per fold: WAIT at cycle c; proceeds at g = max(c, loaded_f) (stall = g - c); then

* WS: WLOAD kt + 1 cycles, STREAM mt + rows + cols + S cycles (the half is released after it), and after
  the last reduction fold of a tile DRAIN mt + 2 + D cycles (output beats, sink always ready);
* OS: STREAM kt cycles (released after it), and after the last chunk of a tile FLUSH rows + cols - 1 + S
  and DRAIN rt + 1 + D cycles (rt = rows of the tile that exist in M).

S = ``MAC_STREAM_STAGES`` (3) and D = ``MAC_DRAIN_STAGES`` (3) are the RTL's pipeline registers for the
clock (``hwsim.config``): a streamed operand's register after its buffer read and a PE's registers on both
sides of its multiplier; the drained row's register and the requantizer's two stages.

The next fold's WAIT is the cycle after. IS is WS with the roles of A and W exchanged (in the RTL too).

N:M sparse WS (``cfg.sparsity = "N:M"``): a fold covers ``rows * M / N`` reduction steps and loads only its
kept-weight rows, ``kt = N * (L // M) + min(N, L % M)`` for its L steps (each weight beat carries the
codes and their ``index_bits`` indices); activation beats carry all ``rows * M / N`` steps. The timing
above is unchanged with this ``kt``; the action counts add one index-register load per weight load and one
activation-mux select per MAC.

Dense layers on an N:M array (``mode="dense"``, chosen per GEMM by :func:`gemm_mode`): the layer is run as
the N:M layer obtained by inserting M - N zero reduction steps (zero weights, zero activations) after every
N real steps, ``K' = M * (K // N) + K % N`` (:func:`nm_dense_layout`). It follows the pattern by
construction and its kept rows are exactly the K real ones, so it takes the dense array's folds and
reduction steps; the cost is the index metadata on every weight beat and activation beats of
``rows * M / N`` lanes that carry ``rows`` real steps. The RTL needs no mode bit: it runs ``dim_k = K'``.

Zero-tile skipping (``cfg.skip_zero_tiles``, WS, in the RTL too): the controller reads one bit per weight
block (n-tile, k-fold; a bitmap beside the top, ``ceil(blocks / 8)`` DRAM read bytes per GEMM, loaded before
``start``; :func:`zero_tile_bitmap`) and
skips every fold whose block is entirely zero: no beats, no WLOAD/STREAM. A skipped fold costs the loader one
WAIT cycle (next WAIT at w + 1, no half used: the halves alternate over the executed folds) and the compute
engine one WAIT cycle, after which, if it is the tile's last k-fold, the tile drains as usual (DRAIN
mt + 2 + D). The first executed fold of a tile starts from zero partial sums (no output-SRAM read); a tile
with no executed fold drains zero accumulators (``requant(bias)``, no output-SRAM read). The bitmap is the
inventory's ``tile_bitmap`` (:func:`tile_bitmap_bytes`): its bytes are written once per GEMM
(``tile_bitmap_writes``) and each engine reads it once per fold, skipped or not, in the WAIT cycle that
decides (``tile_bitmap_reads = 2 x folds``; the RTL's ``dbg_blk``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np

from hwsim.config import MAC_DRAIN_STAGES, MAC_STREAM_STAGES, WEIGHT_FORMATS, MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.families import CliOption, Family, model_cosim_options
from hwsim.mac_array_actions import MacArrayActions, gemm_stats
from hwsim.mac_array_fast import closed_form_gemm
from hwsim.unit import Stats, total

__all__ = [
    "FAMILY",
    "FoldPlan",
    "MacArrayActions",
    "check_nm",
    "check_op",
    "inventory",
    "parse_preset",
    "predict_op",
    "lower",
    "run",
    "reference",
    "accumulate_tiled",
    "dram_beats",
    "dram_lanes",
    "dense_k",
    "fold_plan",
    "gemm_mode",
    "nm_compress",
    "nm_dense_layout",
    "skip_zero_folds",
    "synth_groups",
    "tile_bitmap_bytes",
    "zero_tile_bitmap",
    "zero_tiles",
    "pack_lanes",
    "predict_gemm",
    "predict_gemm_folds",
    "simulate_gemm",
    "unpack_lanes",
    "unpack_outputs",
]


_PRESET_RE = re.compile(rf"^mac-array-(\d+)x(\d+)-(ws|os|is)(?:-({'|'.join(WEIGHT_FORMATS)}))?(?:-(\d+)of(\d+))?$")


def parse_preset(name: str) -> MacArrayConfig | None:
    """``mac-array-RxC-DF[-FORMAT][-NofM]`` (FORMAT defaults to int8; ``-2of4`` is ``sparsity="2:4"``) as a
    config; None for other names."""
    m = _PRESET_RE.match(str(name))
    if not m:
        return None
    sparsity = f"{m[5]}:{m[6]}" if m[5] else "dense"
    return MacArrayConfig(rows=int(m[1]), cols=int(m[2]), dataflow=m[3], weight_format=m[4] or "int8",
                          sparsity=sparsity)


def inventory(cfg: MacArrayConfig):
    """The priced components of ``cfg`` (named as in :meth:`MacArrayActions.pairs`)."""
    from hwsim.cost import Component, Inventory
    from hwsim.memory import global_buffer_component

    pes = cfg.rows * cfg.cols
    w = cfg.sram_word_bits
    cg = {"clock_gate": True} if cfg.gating == "clock" else {}  # the PE's pipeline-register clock gate
    if cfg.sparse:
        n, m = cfg.sparse_nm
        reg_bits = m * cfg.act_bits + cfg.acc_bits
        pe_regs = (
            Component("pe_pipeline_reg", "register", {"bits": reg_bits, "write_bits": reg_bits, **cg}, pes,
                      f"{m} activations (the group's M, for the index mux) + psum registers; a write updates "
                      f"{reg_bits} bits ({cfg.sparsity} ws dataflow)"),
            Component("pe_index_reg", "register", {"bits": cfg.index_bits}, pes,
                      f"{cfg.sparsity}: index of the kept weight in its group of {m}, loaded with the weight"),
            Component("pe_act_mux", "mux", {"inputs": m, "bits": cfg.act_bits}, pes,
                      f"{cfg.sparsity}: selects the activation the index names; one select per MAC"),
        )
        name = f"mac_array {cfg.rows}x{cfg.cols} {cfg.dataflow} {cfg.weight_format} {cfg.sparsity}"
    else:
        pe_regs = (
            Component("pe_pipeline_reg", "register", {"bits": cfg.act_bits + cfg.acc_bits,
                                                      "write_bits": cfg.pe_reg_write_bits, **cg}, pes,
                      f"activation + psum registers; a write updates {cfg.pe_reg_write_bits} bits "
                      f"({cfg.dataflow} dataflow)" + ("; clock-gated while the PE is idle" if cg else "")),
        )
        name = f"mac_array {cfg.rows}x{cfg.cols} {cfg.dataflow} {cfg.weight_format}"
    if cfg.skip_zero_tiles:
        name += ", zero-tile skipping"
    return Inventory(name, (
        Component("pe_mac", "mac", {"weight_format": cfg.weight_format, "act_bits": cfg.act_bits,
                                    "acc_bits": cfg.acc_bits, "gating": cfg.gating}, pes,
                  {"none": "idle slots (edge-tile padding) priced as MACs: nothing is gated",
                   "operand": "operand isolation: idle slots hold the multiplier's operands (one clock gate)",
                   "clock": "idle slots hold the multiplier's operands (one clock gate)"}[cfg.gating]),
        Component("pe_weight_reg", "register", {"bits": cfg.weight_bits}, pes, "stationary weight register"),
        *pe_regs,
        Component("input_sram", "sram", {"bytes": cfg.input_sram_bytes, "word_bits": w}),
        Component("weight_sram", "sram", {"bytes": cfg.weight_sram_bytes, "word_bits": w}),
        Component("output_sram", "sram", {"bytes": cfg.output_sram_bytes, "word_bits": w}),
        *_bitmap_components(cfg),
        *((global_buffer_component(cfg.global_buffer_bytes, w),) if cfg.global_buffer_bytes else ()),
        Component("dram", "dram", {}),
        Component("requant", "requantizer", {"acc_bits": cfg.acc_bits, "out_bits": cfg.out_bits,
                                             **({"kind": "f32"} if cfg.requantizer == "f32" else {})}, cfg.cols,
                  "one requantizer per column" + (" (shift and float32 lanes, zero-point correction)"
                                                  if cfg.requantizer == "f32" else "")),
        *_row_sum_components(cfg),
        Component("controller", "controller", {}, 1, "rough 10k GE estimate (controller.ge)"),
    ))


def _row_sum_components(cfg: MacArrayConfig):
    """With ``weight_zero_points``: the row-sum unit and the row term's lanes (area; their actions are the
    requantizer's ``zp_row_add`` and ``zp_row_mult``, priced per addition and per product): the adders that
    sum an activation beat into a row sum (WS: a ``rows``-lane tree and its accumulate; OS: one per row
    register; IS: one per lane register), the row sums' storage (WS: ``m_tile`` sums beside the output
    buffer; OS/IS: registers), and per output lane a ``row_sum_bits x weight_bits`` multiplier and the
    subtraction (an ``acc_bits`` adder)."""
    from hwsim.cost import Component

    if not cfg.weight_zero_points:
        return ()
    rsb = cfg.row_sum_bits
    lanes = cfg.cols if cfg.dataflow == "is" else cfg.rows
    if cfg.dataflow == "ws":
        store = Component("row_sum_store", "sram", {"bytes": -(-cfg.m_tile * rsb // 8), "word_bits": rsb}, 1,
                          f"{cfg.m_tile} row sums of {rsb} bits beside the output buffer (one read and one write "
                          "per row and k-fold of the first n-tile, one read per drained row; not priced per access)")
    else:
        store = Component("row_sum_store", "register", {"bits": rsb}, lanes,
                          f"one {rsb}-bit row sum per {'lane (output row)' if cfg.dataflow == 'is' else 'PE row'}")
    return (
        Component("row_sum_adder", "adder", {"bits": rsb}, lanes,
                  "row-sum unit: adds an activation beat's real lanes into its row sum (actions: requant.zp_row_add)"),
        store,
        Component("row_zp_mult", "multiplier", {"a_bits": rsb, "b_bits": cfg.weight_bits}, cfg.cols,
                  "per output lane: weight zero point x row sum (actions: requant.zp_row_mult)"),
        Component("row_zp_sub", "adder", {"bits": cfg.acc_bits}, cfg.cols,
                  "per output lane: subtracts the row term after the bias (priced with requant.zp_row_mult)"),
    )



def tile_bitmap_bytes(cfg: MacArrayConfig) -> int:
    """Bytes of the zero-tile bitmap buffer of ``cfg`` (0 without ``skip_zero_tiles``): one bit per weight
    block of a layer whose stored weights fill the weight SRAM, ``ceil(weight_sram_bytes * 8 / block_bits / 8)``
    with ``block_bits = rows * weight_beat_bits`` (a full fold's weight rows; N:M: kept rows with their
    indices). A GEMM with more blocks needs a larger bitmap (the RTL reads it through ``ld_blk``/``cp_blk``
    from beside the top, any size)."""
    if not cfg.skip_zero_tiles:
        return 0
    blocks = -(-cfg.weight_sram_bytes * 8 // (cfg.rows * cfg.weight_beat_bits))
    return -(-blocks // 8)


def _bitmap_components(cfg: MacArrayConfig):
    from hwsim.cost import Component

    if not cfg.skip_zero_tiles:
        return ()
    nbytes = tile_bitmap_bytes(cfg)
    return (Component("tile_bitmap", "sram", {"bytes": nbytes, "word_bits": 8}, 1,
                      f"zero-tile block bitmap, {nbytes} B ({8 * nbytes} blocks: a layer whose weights fill the "
                      f"weight SRAM), byte-wide: one read per fold by the loader and one by the compute engine, "
                      "written once per GEMM from DRAM"),)


def check_nm(cfg: MacArrayConfig, w: np.ndarray, layer: str = "gemm") -> None:
    """Raise unless the ``[k, n]`` weight values ``w`` follow ``cfg``'s N:M pattern (nothing to check when dense).

    Groups are M consecutive reduction steps of one weight column, starting at k = 0; a group may hold at
    most N non-zero weights (a trailing group of L < M steps at most min(N, L), which holds by itself).
    """
    if not cfg.sparse:
        return
    bad = _first_nm_violation(cfg, w)
    if bad is not None:
        n, m = cfg.sparse_nm
        g, c, count = bad
        k = np.asarray(w).shape[0]
        raise HwsimError(
            f"layer {layer!r} breaks the {cfg.sparsity} pattern: weight column {c}, reduction steps "
            f"{g * m}..{min(g * m + m, k) - 1} hold {count} non-zero weights, at most {n} allowed "
            f"(prune it {cfg.sparsity}, e.g. --compress {cfg.sparsity}+int8; a layer not declared N:M runs in "
            "dense mode)")


def _first_nm_violation(cfg: MacArrayConfig, w) -> tuple[int, int, int] | None:
    """(group, column, non-zeros) of the first group of ``w`` with more than N non-zeros, or None."""
    n, m = cfg.sparse_nm
    w = np.asarray(w)
    k, cols = w.shape
    kp = -(-k // m) * m
    nz = np.zeros((kp, cols), dtype=np.int64)
    nz[:k] = w != 0
    per_group = nz.reshape(kp // m, m, cols).sum(axis=1)  # [group, column]
    bad = np.argwhere(per_group > n)
    if not len(bad):
        return None
    g, c = (int(v) for v in bad[0])
    return g, c, int(per_group[g, c])


def check_op(cfg: MacArrayConfig, op) -> None:
    """The op's weight values must be codes of the PE format and its activations must fit the PE; on an
    N:M array its weights (``op.weight``, when the op carries them) must follow the pattern."""
    from hwsim.models import mac_array as ref

    if cfg.sparse and getattr(op, "weight", None) is not None:
        gemm_mode(cfg, op.weight, op.layer, _declared(op))

    pe_values = set(ref.weight_values(cfg.weight_format).tolist())
    layer_values = set(ref.weight_values(op.weight_format).tolist())
    fits_acts = op.act_bits <= cfg.act_bits or (op.act_bits == 1 and cfg.weight_format == "binary")
    if not layer_values <= pe_values or not fits_acts:
        raise HwsimError(
            f"layer {op.layer!r} ({op.weight_format} weights, {op.act_bits}-bit activations) is not allowed on "
            f"{cfg.weight_format} PEs with {cfg.act_bits}-bit activations: choose an accelerator whose PE "
            "format holds these weights (e.g. mac-array-8x8-ws for int8/int4/int2/ternary/pow2)")


def predict_op(cfg: MacArrayConfig, op) -> Stats:
    """Unit protocol: counts-only statistics of one GEMM op of a compressed model, on PEs of ``cfg``'s format.

    The op runs with its own weight format and activation width (codes of the PE's format); pricing
    uses the PE physically present (the inventory of ``cfg``).
    """
    lcfg = cfg.replace(weight_format=op.weight_format, act_bits=op.act_bits)
    w = getattr(op, "weight", None)
    mode = gemm_mode(lcfg, w, op.layer, _declared(op)) if w is not None else None
    st = predict_gemm(lcfg, op.m, op.k, op.n, name=op.layer, mode=mode, weight=w)
    return onnx_actions(st, op, lcfg)


def onnx_actions(st: Stats, op, cfg: MacArrayConfig | None = None) -> Stats:
    """``st`` with the actions of an op's float32 requantizer and zero-point corrections (no extra cycle:
    both sit in the requantizer stage, combinational, like the bias add): the requantizer's conversions
    move from ``requant_ops`` to ``requant_f32_ops``; corrected outputs are counted per requantizer lane
    pass (padded columns included, as ``requant_ops``); the weight zero-point row sums add ``m * k``
    activation additions (IS, ``cfg.dataflow == "is"``: ``m * k`` per tile of ``cfg.is_m_tile`` output
    channels, since the activations are stationary and reloaded for every such tile, and the row-sum unit
    sums them as they load) and ``m * n`` products (one per real output)."""
    f32 = getattr(op, "requant", "shift") == "f32"
    zpc = getattr(op, "zp_correction", False)
    row = getattr(op, "row_correction", False)
    if not (f32 or zpc or row):
        return st
    a = MacArrayActions.of(st)
    n_tiles = -(-op.n // cfg.is_m_tile) if cfg is not None and cfg.dataflow == "is" else 1
    a = dataclasses.replace(
        a, requant_ops=0 if f32 else a.requant_ops, requant_f32_ops=a.requant_ops if f32 else 0,
        zp_correct_ops=a.requant_ops if zpc else 0, zp_row_adds=op.m * op.k * n_tiles if row else 0,
        zp_row_mults=op.m * op.n if row else 0)
    return dataclasses.replace(st, actions=a.pairs())


def _declared(op) -> str | None:
    """``"sparse"`` for an op declared N:M (``op.sparsity``, from an N:M compress spec), else None (auto)."""
    return "sparse" if getattr(op, "sparsity", None) else None


def gemm_mode(cfg: MacArrayConfig, w: np.ndarray | None, layer: str = "gemm", mode: str | None = None) -> str:
    """How a GEMM with ``[k, n]`` weight values ``w`` runs on ``cfg``: ``"sparse"`` or ``"dense"``.

    A dense array runs every layer dense. On an N:M array, ``mode=None`` (auto) runs the GEMM sparse when
    its weights follow the pattern and in dense mode otherwise (``w=None``: sparse); ``mode="sparse"``
    declares it N:M, so weights that break the pattern raise (one line naming the layer and the first
    offending group); ``mode="dense"`` forces dense mode.
    """
    if mode not in (None, "sparse", "dense"):
        raise HwsimError(f"mode={mode!r} is not allowed: expected 'sparse', 'dense' or None (auto)")
    if not cfg.sparse:
        return "dense"
    if mode == "dense":
        return "dense"
    if w is None:
        return "sparse"
    if mode == "sparse":
        check_nm(cfg, w, layer)
        return "sparse"
    return "sparse" if _first_nm_violation(cfg, w) is None else "dense"


def dense_k(cfg: MacArrayConfig, k: int) -> int:
    """Reduction steps ``K' = M * (K // N) + K % N`` of a K-step dense GEMM run in dense mode on an N:M array
    (``k`` itself on a dense array): M - N zero steps follow every N real ones."""
    if not cfg.sparse:
        return k
    n_, m_ = cfg.sparse_nm
    return m_ * (k // n_) + k % n_


def nm_dense_layout(cfg: MacArrayConfig, a: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(a', w')`` of a dense GEMM in dense mode on an N:M array: real step k moves to
    ``(k // N) * M + k % N`` of ``K' = dense_k(cfg, K)`` steps, the inserted steps are 0 in both (values or
    codes whose 0 is the value 0). ``a' @ w' == a @ w`` and ``w'`` follows the N:M pattern."""
    n_, m_ = cfg.sparse_nm
    a, w = np.asarray(a), np.asarray(w)
    k = w.shape[0]
    pos = (np.arange(k) // n_) * m_ + np.arange(k) % n_
    a2 = np.zeros((a.shape[0], dense_k(cfg, k)), dtype=a.dtype)
    w2 = np.zeros((dense_k(cfg, k), w.shape[1]), dtype=w.dtype)
    a2[:, pos] = a
    w2[pos] = w
    return a2, w2


@dataclass(frozen=True)
class FoldPlan:
    """The folds of one GEMM in execution order (numpy int64 arrays, one entry per fold).

    ``m0, n0, k0`` are the tile origins; ``kt`` the reduction steps in the fold (N:M arrays: the kept-weight
    rows, ``N * (L // M) + min(N, L % M)`` for the fold's L steps); ``mt`` the streamed
    vectors (WS/IS: rows of the tile; OS: equal to ``kt``); ``rows_out`` the output rows drained after
    the fold (0 unless it is the last reduction fold of its tile); ``nw``/``na`` the weight/activation
    beats it loads. ``first`` marks the fold that starts its tile's accumulation (no partial-sum read;
    ``k0 == 0`` unless zero tiles are skipped); ``skip`` marks a skipped zero fold (``kt = mt = nw = na =
    0``; ``rows_out`` kept, the tile still drains after its last k-fold) and ``drain_zero`` the drain of a tile
    with no executed fold (zero accumulators, no output-SRAM read). ``kl`` are the reduction steps the fold
    covers before N:M compression (the real lanes of a WS activation beat; ``kt`` on a dense array).
    """

    m0: np.ndarray
    n0: np.ndarray
    k0: np.ndarray
    kt: np.ndarray
    mt: np.ndarray
    rows_out: np.ndarray
    nw: np.ndarray
    na: np.ndarray
    m_step: int
    k_step: int
    first: np.ndarray | None = None
    skip: np.ndarray | None = None
    drain_zero: np.ndarray | None = None
    nt: np.ndarray | None = None
    tile_rows: np.ndarray | None = None
    kl: np.ndarray | None = None

    def __post_init__(self):
        if self.kl is None:
            object.__setattr__(self, "kl", self.kt)
        if self.first is None:
            object.__setattr__(self, "first", self.k0 == 0)
        for name in ("skip", "drain_zero"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(len(self.k0), dtype=bool))

    @property
    def count(self) -> int:
        """Folds that load and compute (skipped zero folds excluded)."""
        return int(len(self.k0) - self.skip.sum())


def _check_shape(m: int, k: int, n: int) -> None:
    for name, v in (("m", m), ("k", k), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise HwsimError(f"layer {name}={v!r} is not allowed: expected an integer >= 1")


def _grid(m: int, k: int, n: int, m_step: int, n_step: int, k_step: int):
    m0 = np.arange(0, m, m_step, dtype=np.int64)
    n0 = np.arange(0, n, n_step, dtype=np.int64)
    k0 = np.arange(0, k, k_step, dtype=np.int64)
    M0, N0, K0 = np.meshgrid(m0, n0, k0, indexing="ij")
    return M0.ravel(), N0.ravel(), K0.ravel()


def fold_plan(cfg: MacArrayConfig, m: int, k: int, n: int) -> FoldPlan:
    """Folds of an ``[m, k] x [k, n]`` GEMM in the RTL's order ``for m0: for n0: for k0``."""
    _check_shape(m, k, n)
    m_step, k_step = cfg.fold_steps
    n_step = cfg.cols
    M_, N_ = (n, m) if cfg.dataflow == "is" else (m, n)
    m0, n0, k0 = _grid(M_, k, N_, m_step, n_step, k_step)
    kt = kl = np.minimum(k_step, k - k0)
    if cfg.sparse:  # kept-weight rows: N per full group of M steps, min(N, L) for a trailing group of L
        sn, sm = cfg.sparse_nm
        kt = sn * (kt // sm) + np.minimum(sn, kt % sm)
    last_k = k0 + k_step >= k
    if cfg.dataflow in ("ws", "is"):
        mt = np.minimum(m_step, M_ - m0)
        rows_out = np.where(last_k, mt, 0)
        nw, na = kt, mt
    else:
        mt = kt
        rows_out = np.where(last_k, np.minimum(m_step, M_ - m0), 0)
        nw, na = kt, kt
    return FoldPlan(m0, n0, k0, kt, mt, rows_out, nw, na, m_step, k_step,
                    nt=np.minimum(n_step, N_ - n0), tile_rows=np.minimum(m_step, M_ - m0), kl=kl)


def zero_tiles(cfg: MacArrayConfig, plan: FoldPlan, w: np.ndarray) -> np.ndarray:
    """WS: per fold of ``plan``, True when its weight block ``w[k0:k0 + k_step, n0:n0 + cols]`` is all zero
    (``w`` the ``[k, n]`` matrix the plan folds: in dense mode on an N:M array, the expanded one)."""
    w = np.asarray(w)
    k, n = w.shape
    ks, C = plan.k_step, cfg.cols
    nk, nn = -(-k // ks), -(-n // C)
    nz = np.zeros((nk * ks, nn * C), dtype=bool)
    nz[:k, :n] = w != 0
    block_nz = nz.reshape(nk, ks, nn, C).any(axis=(1, 3))  # [k-fold, n-tile]
    return ~block_nz[plan.k0 // ks, plan.n0 // C]


def zero_tile_bitmap(cfg: MacArrayConfig, w: np.ndarray, mode: str | None = None) -> list[int]:
    """The block bitmap the controller reads with ``skip_zero_tiles``: 1 for an all-zero weight block, one
    entry per (n-tile, k-fold) of the ``[k, n]`` weights ``w`` in the order n-tile major, k-fold minor (the
    RTL's ``ld_blk``/``cp_blk`` address). On an N:M array in dense mode, the blocks of the expanded weights."""
    w = np.asarray(w)
    if cfg.sparse and gemm_mode(cfg, w, mode=mode) == "dense":
        w = nm_dense_layout(cfg, np.zeros((1, w.shape[0]), dtype=w.dtype), w)[1]
    k, n = w.shape
    plan = fold_plan(cfg, 1, k, n)  # one m-tile: every block once, in fold order
    return zero_tiles(cfg, plan, w).astype(int).tolist()


def skip_zero_folds(plan: FoldPlan, zero: np.ndarray) -> FoldPlan:
    """``plan`` with the folds marked ``zero`` skipped (see the module docstring): they load and compute
    nothing, the first executed fold of each tile starts its accumulation, and a tile with no executed fold
    drains zero accumulators."""
    zero = np.asarray(zero, dtype=bool)
    if not zero.any():
        return plan
    tile = plan.m0 * (int(plan.n0.max()) + 1) + plan.n0  # folds of a tile are consecutive in the plan
    starts = np.flatnonzero(np.r_[True, tile[1:] != tile[:-1]])
    tile_id = np.cumsum(np.r_[True, tile[1:] != tile[:-1]]) - 1
    # executed folds before this one in its tile (exclusive running count within the tile)
    run = np.cumsum(~zero)
    before = run - (~zero) - np.r_[0, run][starts][tile_id]
    executed = np.bincount(tile_id, weights=~zero, minlength=len(starts))[tile_id] > 0
    keep = ~zero
    z = np.zeros(len(zero), dtype=np.int64)
    return FoldPlan(plan.m0, plan.n0, plan.k0, kt=np.where(keep, plan.kt, z), mt=np.where(keep, plan.mt, z),
                    rows_out=plan.rows_out, nw=np.where(keep, plan.nw, z), na=np.where(keep, plan.na, z),
                    m_step=plan.m_step, k_step=plan.k_step, first=keep & (before == 0), skip=zero,
                    drain_zero=(plan.rows_out > 0) & ~executed, nt=plan.nt, tile_rows=plan.tile_rows,
                    kl=plan.kl)


def _timing(cfg: MacArrayConfig, plan: FoldPlan) -> tuple[int, int]:
    """(cycles, stall cycles) of one GEMM: a max-plus recurrence over folds, each fold in closed form."""
    R, C = cfg.rows, cfg.cols
    pw, pa = cfg.fold_beat_periods
    S, D = MAC_STREAM_STAGES, MAC_DRAIN_STAGES
    if cfg.dataflow == "os":
        comp = plan.kt
        tail = np.where(plan.rows_out > 0, (R + C - 1 + S) + plan.rows_out + 1 + D, 0)
    else:
        comp = np.where(plan.skip, 0, (plan.kt + 1) + (plan.mt + R + C + S))
        tail = np.where(plan.rows_out > 0, plan.rows_out + 2 + D, 0)
    nw, na = plan.nw.tolist(), plan.na.tolist()
    comp, tail = comp.tolist(), tail.tolist()
    skip = plan.skip.tolist()
    ok = 1
    loader_wait = 1
    compute_wait = 1
    release = [1, 1]  # cycle the half's full flag is clear again, per half
    stalls = 0
    end = 0
    h = 1
    for f in range(len(nw)):
        if skip[f]:  # one WAIT cycle in each engine; the compute engine drains after a tile's last k-fold
            loader_wait += 1
            end = compute_wait + tail[f]
            compute_wait = end + 1
            continue
        h ^= 1  # the halves alternate over the folds that load
        g = max(loader_wait, release[h])
        t0 = max(g + 1, ok)
        ok = t0 + nw[f] * pw                 # first activation beat
        last_a = ok + (na[f] - 1) * pa
        ok = last_a + pa
        loaded = last_a + 1
        loader_wait = loaded
        g = max(compute_wait, loaded)
        stalls += g - compute_wait
        e = g + comp[f]
        release[h] = e + 1
        end = e + tail[f]
        compute_wait = end + 1
    return end, stalls


def _words(bits: np.ndarray | int, word_bits: int):
    return -(-np.asarray(bits, dtype=np.int64) // word_bits)


def buffer_lanes(cfg: MacArrayConfig, plan: FoldPlan):
    """Lanes of the stationary and the streamed buffer's beats (the first and second stream of a fold) and
    the real ones of each fold's beats: ``(stat_lane_bits, stat_lanes, stat_real, strm_lane_bits,
    strm_lanes, strm_real)``. Stationary (WS/OS: weight rows; IS: activation rows): ``cols`` lanes, the tile's
    real columns ``nt`` real. Streamed: WS activation beats of ``ws_k_step`` lanes, the fold's reduction steps
    ``kl`` real; IS weight beats of ``rows`` lanes, ``kt`` real; OS activation beats of ``rows`` lanes, the
    tile's rows real. Without gating every lane counts (whole beats)."""
    R, C = cfg.rows, cfg.cols
    if cfg.dataflow == "is":
        s_lb, t_lb, t_lanes, t_real = cfg.act_bits, cfg.weight_bits, R, plan.kt
    elif cfg.dataflow == "os":
        s_lb, t_lb, t_lanes, t_real = cfg.weight_bits, cfg.act_bits, R, plan.tile_rows
    else:
        s_lb, t_lb, t_lanes, t_real = cfg.weight_bits + cfg.index_bits, cfg.act_bits, cfg.ws_k_step, plan.kl
    if cfg.gating == "none":
        s_real, t_real = np.full(len(plan.kt), C, dtype=np.int64), np.full(len(plan.kt), t_lanes, dtype=np.int64)
    else:
        s_real = plan.nt
    return s_lb, C, s_real, t_lb, t_lanes, np.asarray(t_real, dtype=np.int64)


def _actions(cfg: MacArrayConfig, plan: FoldPlan) -> MacArrayActions:
    R, C, wb = cfg.rows, cfg.cols, cfg.sram_word_bits
    ws_like = cfg.dataflow in ("ws", "is")
    gated = cfg.gating != "none"
    nw, na = int(plan.nw.sum()), int(plan.na.sum())
    if cfg.dataflow == "is":
        stat_bits, strm_bits = cfg.cols * cfg.act_bits, cfg.rows * cfg.weight_bits
    else:
        stat_bits, strm_bits = cfg.weight_beat_bits, cfg.act_beat_bits
    out_rows = int(plan.rows_out.sum())
    # Output lanes that carry a real output: every column without gating, the tile's real ones with it.
    lanes = plan.nt if gated else np.full(len(plan.nt), C, dtype=np.int64)
    out_lanes = int((plan.rows_out * lanes).sum())
    # Input and weight buffers: every beat is written once and read once. With gating a beat's access
    # touches the words holding its real lanes (one memory per SRAM word of the beat, each with its own
    # write and read enable; lanes from lane 0, a word with any real lane is one word access).
    s_lb, _, s_real, t_lb, _, t_real = buffer_lanes(cfg, plan)
    w_words = int((plan.nw * _words(s_real * s_lb, wb)).sum())
    a_words = int((plan.na * _words(t_real * t_lb, wb)).sum())
    s_used_bits = int((plan.nw * s_real).sum()) * s_lb
    t_used_bits = int((plan.na * t_real).sum()) * t_lb
    if ws_like:
        # Every streamed vector passes all R x C PEs; a real MAC needs a real row (kt) and column (nt).
        slots = int(plan.mt.sum()) * R * C
        pe_macs = int((plan.mt * plan.kt * plan.nt).sum())
        pe_w = int((plan.kt * lanes).sum())
        # Clock gating closes the pipeline registers of a PE whose column is idle (idle rows still pass psums).
        pe_regs = int((plan.mt * plan.nt).sum()) * R if cfg.gating == "clock" else slots
        # Reads: the partial sums of every fold but a tile's first, and the drain (zero tiles read nothing);
        # with gating only the words holding the tile's real lanes (one memory per lane, own read enables).
        reads = np.where(plan.first, 0, plan.mt) + np.where(plan.drain_zero, 0, plan.rows_out)
        o_read_words = int((reads * _words(lanes * cfg.acc_bits, wb)).sum())
        o_read_bits = int((reads * lanes).sum()) * cfg.acc_bits
        # A write touches the words holding its valid lanes (lane write enables; a partly written word is
        # one word access); without gating every write is the whole row.
        o_write_words = int((plan.mt * _words(lanes * cfg.acc_bits, wb)).sum())
        o_write_bits = int((plan.mt * lanes).sum()) * cfg.acc_bits
    else:
        # OS: every reduction step passes all R x C PEs; PE (r, c) is real when the tile has row r and column c.
        slots = int(plan.kt.sum()) * R * C
        pe_macs = int((plan.kt * plan.tile_rows * plan.nt).sum())
        pe_w = 0
        pe_regs = pe_macs if cfg.gating == "clock" else slots
        o_read_words = o_read_bits = o_write_words = o_write_bits = 0
    # In IS the "stationary" buffer is the input SRAM and the streamed one the weight SRAM.
    if cfg.dataflow == "is":
        in_w, in_r, in_bits = w_words, w_words, s_used_bits
        wt_w, wt_r, wt_bits = a_words, a_words, t_used_bits
    else:
        in_w, in_r, in_bits = a_words, a_words, t_used_bits
        wt_w, wt_r, wt_bits = w_words, w_words, s_used_bits
    dram_bits = nw * stat_bits + na * strm_bits
    return MacArrayActions(
        pe_macs=pe_macs,
        pe_idle_macs=slots - pe_macs,
        pe_idle_regs=slots - pe_regs,
        pe_weight_loads=pe_w,
        pe_reg_writes=pe_regs,
        input_sram_reads=in_r,
        input_sram_writes=in_w,
        weight_sram_reads=wt_r,
        weight_sram_writes=wt_w,
        output_sram_reads=o_read_words,
        output_sram_writes=o_write_words,
        input_sram_read_bytes=math.ceil(in_bits / 8),
        input_sram_write_bytes=math.ceil(in_bits / 8),
        weight_sram_read_bytes=math.ceil(wt_bits / 8),
        weight_sram_write_bytes=math.ceil(wt_bits / 8),
        output_sram_read_bytes=math.ceil(o_read_bits / 8),
        output_sram_write_bytes=math.ceil(o_write_bits / 8),
        dram_read_beats=nw + na,
        dram_write_beats=out_rows,
        dram_read_bytes=math.ceil(dram_bits / 8),
        dram_write_bytes=math.ceil(out_lanes * cfg.out_bits / 8),
        requant_ops=out_lanes,
        pe_index_loads=pe_w if cfg.sparse else 0,
        pe_act_selects=pe_macs if cfg.sparse else 0,
    )


def predict_gemm(cfg: MacArrayConfig, m: int, k: int, n: int, name: str = "gemm", groups: int = 1,
                 mode: str | None = None, weight: np.ndarray | None = None) -> Stats:
    """Cycle count, stalls and action counts of ``groups`` independent ``[m,k] x [k,n]`` GEMMs (no values).

    Groups run one after another, each as its own start/done on the hardware. ``mode`` and ``weight``
    (the ``[k, n]`` weight values, the same for every group) matter on N:M arrays and with zero-tile
    skipping: ``mode`` as :func:`gemm_mode` resolves it from ``weight`` (without weights: sparse), and
    ``cfg.skip_zero_tiles`` skips the folds whose weight block is zero (without weights: none). Dense
    arrays without skipping take the closed form of :mod:`hwsim.mac_array_fast` (tested equal to
    :func:`predict_gemm_folds` on every field); the others take the per-fold model.

    The :class:`~hwsim.unit.Stats` (:func:`hwsim.mac_array_actions.gemm_stats`) carry in ``detail`` the
    ``name``, ``m``, ``k`` and ``n`` of one group, ``groups`` and ``folds`` (over all groups), the idle PE
    slots, the zero-tile bitmap's bytes and the unpriced counters; the utilization is
    ``stats.utilization(cfg.peak_macs_per_cycle)``.
    """
    if getattr(cfg, "sparse", False) or getattr(cfg, "skip_zero_tiles", False):
        return predict_gemm_folds(cfg, m, k, n, name, groups, mode=mode, weight=weight)

    _check_shape(m, k, n)
    st = closed_form_gemm(cfg, m, k, n, name=name)
    if groups == 1:
        return st
    many = st.scaled(groups)  # every count x groups, and in detail groups and folds; m, k, n stay one group's
    return dataclasses.replace(many, detail={**many.detail, "m": m, "k": k, "n": n})


def gemm_plan(cfg: MacArrayConfig, m: int, k: int, n: int, mode: str | None = None,
              weight: np.ndarray | None = None) -> FoldPlan:
    """The executed folds of a GEMM: :func:`fold_plan` of its (dense-mode: expanded) K, without the zero
    folds when ``cfg.skip_zero_tiles`` and the weights are known."""
    _check_shape(m, k, n)
    if weight is not None:
        weight = np.asarray(weight)
        if weight.shape != (k, n):
            raise HwsimError(f"weight of shape {weight.shape} is not allowed: expected ({k}, {n})")
    dense = cfg.sparse and gemm_mode(cfg, weight, mode=mode) == "dense"
    k_eff = dense_k(cfg, k) if dense else k
    plan = fold_plan(cfg, m, k_eff, n)
    if cfg.skip_zero_tiles and weight is not None:
        w_eff = nm_dense_layout(cfg, np.zeros((1, k), dtype=np.int64), weight)[1] if dense else weight
        plan = skip_zero_folds(plan, zero_tiles(cfg, plan, w_eff))
    return plan


def predict_gemm_folds(cfg: MacArrayConfig, m: int, k: int, n: int, name: str = "gemm",
                       groups: int = 1, mode: str | None = None, weight: np.ndarray | None = None) -> Stats:
    """:func:`predict_gemm` by stepping the loader/compute recurrence once per fold (the reference for the
    closed form, and the model of N:M sparse arrays and zero-tile skipping)."""
    plan = gemm_plan(cfg, m, k, n, mode, weight)
    cycles, stalls = _timing(cfg, plan)
    actions = _actions(cfg, plan)
    if cfg.skip_zero_tiles:  # the block bitmap: one bit per (n-tile, k-fold) weight block, read before start
        blocks = -(-n // cfg.cols) * -(-_plan_k(cfg, k, mode, weight) // plan.k_step)
        nbytes = math.ceil(blocks / 8)
        # Both engines read the bitmap once per fold (in their WAIT cycle that decides skip or run).
        actions = dataclasses.replace(actions, dram_read_bytes=actions.dram_read_bytes + nbytes,
                                      tile_bitmap_writes=nbytes, tile_bitmap_reads=2 * len(plan.k0))
    return gemm_stats(cycles * groups, stalls * groups, m * k * n * groups,
                      actions.scaled(groups) if groups > 1 else actions,
                      name=name, m=m, k=k, n=n, groups=groups, folds=plan.count * groups)


def _plan_k(cfg: MacArrayConfig, k: int, mode: str | None, weight) -> int:
    """The reduction steps the plan folds: ``dense_k`` in dense mode on an N:M array, else ``k``."""
    return dense_k(cfg, k) if cfg.sparse and gemm_mode(cfg, weight, mode=mode) == "dense" else k


# ---------------------------------------------------------------------------------------------- values
def _overflow(cfg: MacArrayConfig, acc: np.ndarray) -> np.ndarray:
    """``acc`` brought into the signed ``acc_bits`` range by saturation or two's-complement wrap."""
    lo, hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    if cfg.overflow == "wrap":
        return ((acc - lo) & ((1 << cfg.acc_bits) - 1)) + lo
    return np.clip(acc, lo, hi)


def accumulate_tiled(cfg: MacArrayConfig, a: np.ndarray, w: np.ndarray, k_step: int) -> np.ndarray:
    """The accumulators of ``a @ w`` with the array's sequential-in-K overflow semantics.

    Wrap mode: one exact product, wrapped (wrapping commutes with addition). Saturate mode: when the bound
    ``sum_k |a||w|`` proves no partial sum of an output can leave the ``acc_bits`` range, one exact matmul;
    otherwise the reduction runs fold by fold (``k_step`` as the array folds K), carrying the accumulator,
    with a per-fold bound check and a saturating step-by-step accumulation only in folds that may
    saturate. Products are exact in float64 while every partial sum is below 2**52, else int64 is used.
    """
    hi = (1 << (cfg.acc_bits - 1)) - 1
    a = np.asarray(a, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    M, K = a.shape
    exact_float = (np.abs(a).max(initial=0) * np.abs(w).max(initial=0) * K) < (1 << 52)

    def matmul(x, y):
        if exact_float:
            return np.rint(x.astype(np.float64) @ y.astype(np.float64)).astype(np.int64)
        return x @ y

    if cfg.overflow == "wrap":
        return _overflow(cfg, matmul(a, w))
    abs_a, abs_w = np.abs(a).astype(np.float64), np.abs(w).astype(np.float64)
    if (abs_a @ abs_w).max(initial=0) <= hi:
        return matmul(a, w)
    acc = np.zeros((M, w.shape[1]), dtype=np.int64)
    for k0 in range(0, K, k_step):
        at, wt = a[:, k0:k0 + k_step], w[k0:k0 + k_step]
        bound = np.abs(acc) + abs_a[:, k0:k0 + k_step] @ abs_w[k0:k0 + k_step]
        if bound.max(initial=0) <= hi:
            acc = acc + matmul(at, wt)
            continue
        for kk in range(at.shape[1]):
            acc = _overflow(cfg, acc + np.outer(at[:, kk], wt[kk]))
    return acc


def _requantize(cfg: MacArrayConfig, acc: np.ndarray, shift: int, relu: bool) -> np.ndarray:
    if cfg.act_bits == 1:
        return np.where(acc >= 0, 1, -1).astype(np.int64)
    x = np.maximum(acc, 0) if relu else acc
    if shift:
        q = x >> shift
        rem = x - (q << shift)
        half = 1 << (shift - 1)
        if cfg.rounding == "half_up":
            q = q + (rem >= half)
        else:
            q = q + ((rem > half) | ((rem == half) & (q & 1 == 1)))
        x = q
    lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
    return np.clip(x, lo, hi)


def simulate_gemm(cfg: MacArrayConfig, a: np.ndarray, w: np.ndarray, shift: int = 0, relu: bool = False,
                  name: str = "gemm", bias: np.ndarray | None = None, mode: str | None = None, requant=None
                  ) -> tuple[np.ndarray, Stats]:
    """Run one GEMM: requantized outputs (values, int64 ``[m, n]``) and its :class:`~hwsim.unit.Stats`
    (:func:`predict_gemm`'s).

    ``a`` holds activation values (``+-1`` for binary), ``w`` weight values of ``cfg.weight_format``.
    ``bias`` (int, ``[n]``, at the accumulator scale) is one more accumulation step after the K products,
    with the same saturate/wrap rule, taken in the requantizer stage at no extra cycle. ``mode`` is
    :func:`gemm_mode`'s (N:M arrays: None runs the GEMM sparse if its weights follow the pattern, else in
    dense mode; ``"sparse"`` rejects weights that break it).
    """
    a = np.asarray(a)
    w = np.asarray(w)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise HwsimError(f"gemm operands of shapes {a.shape} and {w.shape} are not allowed: expected [m,k] x [k,n]")
    if not 0 <= shift < cfg.acc_bits:
        raise HwsimError(f"shift={shift!r} is not allowed: expected an integer in [0, {cfg.acc_bits - 1}]")
    m, k = a.shape
    n = w.shape[1]
    mode = gemm_mode(cfg, w, name, mode)
    stats = predict_gemm(cfg, m, k, n, name=name, mode=mode, weight=w)
    # N:M arrays (and skipped zero tiles) skip only zero products, which leave a saturating or wrapping
    # accumulator unchanged, so the values are the dense sequential accumulation in either mode.
    k_step = cfg.fold_steps[1]
    acc = accumulate_tiled(cfg, a, w, k_step)
    if requant is not None:  # float-scale layers: zero-point corrections, then the float32 requantizer
        from hwsim.models.compressed import corrected_accumulator
        from hwsim.models.mac_array import requantize_f32

        return requantize_f32(corrected_accumulator(acc, a, cfg, bias, requant), requant), stats
    if bias is not None:
        acc = _overflow(cfg, acc + np.asarray(bias, dtype=np.int64)[None, :])
    return _requantize(cfg, acc, shift, relu), stats


# ---------------------------------------------------------------------------------------------- DRAM layout
def pack_lanes(codes: np.ndarray, lane_bits: int) -> list[int]:
    """Pack ``codes[beat, lane]`` (unsigned, < 2**lane_bits) into one integer per beat, lane 0 in the LSBs."""
    codes = np.asarray(codes, dtype=np.uint64)
    beats, lanes = codes.shape
    bits = ((codes[:, :, None] >> np.arange(lane_bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    packed = np.packbits(bits.reshape(beats, lanes * lane_bits), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack_lanes(beats: list[int], lanes: int, lane_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_lanes`: ``codes[beat, lane]`` as uint64."""
    nbytes = (lanes * lane_bits + 7) // 8
    raw = np.frombuffer(b"".join(int(b).to_bytes(nbytes, "little") for b in beats), dtype=np.uint8)
    bits = np.unpackbits(raw.reshape(len(beats), nbytes), axis=1, bitorder="little")[:, :lanes * lane_bits]
    weights = (np.uint64(1) << np.arange(lane_bits, dtype=np.uint64))
    return (bits.reshape(len(beats), lanes, lane_bits).astype(np.uint64) * weights).sum(axis=2)


def dram_beats(cfg: MacArrayConfig, a_codes: np.ndarray, w_codes: np.ndarray,
               mode: str | None = None) -> tuple[list[int], list[int]]:
    """The weight and activation beats the RTL expects for one GEMM, in fold order (see ``rtl/mac_array``),
    one integer per beat: :func:`dram_lanes` packed by :func:`pack_lanes`."""
    (w_lanes, w_bits), (a_lanes, a_bits) = dram_lanes(cfg, a_codes, w_codes, mode)
    return pack_lanes(w_lanes, w_bits), pack_lanes(a_lanes, a_bits)


def dram_lanes(cfg: MacArrayConfig, a_codes: np.ndarray, w_codes: np.ndarray, mode: str | None = None
               ) -> tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]:
    """The weight and activation beats of :func:`dram_beats` as lane arrays: ``((w[beat, lane], lane bits),
    (a[beat, lane], lane bits))`` (what the co-simulation writes to its memory files without building
    one Python integer per beat).

    ``a_codes`` ``[m, k]`` and ``w_codes`` ``[k, n]`` are unsigned codes; padding lanes are code 0. On an N:M
    array ``mode`` is :func:`gemm_mode`'s; in dense mode the beats are those of :func:`nm_dense_layout`'s
    expanded GEMM (the RTL then runs ``dim_k = dense_k(cfg, k)``).
    """
    a_codes = np.asarray(a_codes, dtype=np.uint64)
    w_codes = np.asarray(w_codes, dtype=np.uint64)
    if cfg.sparse and gemm_mode(cfg, w_codes, mode=mode) == "dense":
        a_codes, w_codes = nm_dense_layout(cfg, a_codes, w_codes)
    m, k = a_codes.shape
    n = w_codes.shape[1]
    plan = fold_plan(cfg, m, k, n)
    if cfg.skip_zero_tiles:  # no beats for a zero block (code 0 is the value 0 in every format with a zero)
        plan = skip_zero_folds(plan, zero_tiles(cfg, plan, w_codes))
    R, C = cfg.rows, cfg.cols
    if cfg.dataflow == "is":
        # The transposed GEMM on the WS machinery: stationary activation rows on i_acts (kt beats of C
        # lanes, A[m0 + c, k0 + j]), then streamed weight vectors on i_weights (R lanes, W[k0 + r, n0 + i]).
        kp = -(-k // R) * R + R
        A = np.zeros((-(-m // C) * C + C, kp), dtype=np.uint64)
        A[:m, :k] = a_codes
        W = np.zeros((kp, -(-n // plan.m_step) * plan.m_step + C), dtype=np.uint64)
        W[:k, :n] = w_codes
        w_rows = [W[k0:k0 + R, n0:n0 + mt].T for n0, k0, mt in zip(plan.m0, plan.k0, plan.mt, strict=True)]
        a_rows = [A[m0:m0 + C, k0:k0 + kt].T for m0, k0, kt in zip(plan.n0, plan.k0, plan.kt, strict=True)]
        return (np.concatenate(w_rows), cfg.weight_bits), (np.concatenate(a_rows), cfg.act_bits)
    if cfg.sparse:
        return _sparse_lanes(cfg, plan, a_codes, w_codes)
    ks = plan.k_step
    # Zero-pad so every fold can slice full lanes.
    kp = -(-k // ks) * ks + R
    mp = -(-m // plan.m_step) * plan.m_step + R
    npad = -(-n // C) * C
    A = np.zeros((mp, kp), dtype=np.uint64)
    A[:m, :k] = a_codes
    W = np.zeros((kp, npad), dtype=np.uint64)
    W[:k, :n] = w_codes
    w_rows, a_rows = [], []
    for m0, n0, k0, kt, mt in zip(plan.m0, plan.n0, plan.k0, plan.kt, plan.mt, strict=True):
        w_rows.append(W[k0:k0 + kt, n0:n0 + C])
        if cfg.dataflow == "ws":
            a_rows.append(A[m0:m0 + mt, k0:k0 + R])
        else:
            a_rows.append(A[m0:m0 + R, k0:k0 + kt].T)
    return (np.concatenate(w_rows), cfg.weight_bits), (np.concatenate(a_rows), cfg.act_bits)


def nm_compress(cfg: MacArrayConfig, w_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kept-weight codes and indices of ``[k, n]`` weight codes on an N:M array (code 0 is the value 0).

    Returns ``(codes, idx)``, both ``[groups * N, n]``: row ``g * N + s`` holds slot ``s`` of group ``g``
    (reduction steps ``g*M .. g*M + M - 1``) of every column: its non-zero weights in ascending ``k``, then
    zeros at the lowest free positions; ``idx`` is the position within the group. A trailing group of
    ``L < M`` steps has only ``min(N, L)`` real slots (the others hold code 0, index 0, and their PE rows
    are disabled). Raises if a group has more than N non-zero codes.
    """
    n_, m_ = cfg.sparse_nm
    w_codes = np.asarray(w_codes, dtype=np.uint64)
    k, n = w_codes.shape
    groups = -(-k // m_)
    padded = np.zeros((groups * m_, n), dtype=np.uint64)
    padded[:k] = w_codes
    grp = padded.reshape(groups, m_, n)
    pos = np.arange(m_)[None, :, None]
    valid = (np.arange(groups)[:, None, None] * m_ + pos) < k
    # Sort key: real non-zero weights first, then real zeros, then padding; ties by position.
    key = np.where(grp != 0, 0, np.where(valid, 1, 2)) * m_ + pos
    if np.any((grp != 0).sum(axis=1) > n_):
        raise HwsimError(f"weights break the {cfg.sparsity} pattern: a group holds more than {n_} non-zero codes")
    order = np.argsort(key, axis=1, kind="stable")[:, :n_, :]
    codes = np.take_along_axis(grp, order, axis=1)
    idx = order.astype(np.uint64)
    real = np.take_along_axis(np.broadcast_to(valid, grp.shape), order, axis=1)
    codes = np.where(real, codes, 0)
    idx = np.where(real, idx, 0)
    return codes.reshape(groups * n_, n), idx.reshape(groups * n_, n)


def _sparse_lanes(cfg: MacArrayConfig, plan: FoldPlan, a_codes: np.ndarray, w_codes: np.ndarray):
    """N:M WS beats: per fold ``kt`` kept-weight rows (lane c: code | index << weight_bits) then ``mt``
    activation vectors of the fold's ``rows * M / N`` reduction steps (lane j: ``A[m0 + i, k0 + j]``)."""
    n_, m_ = cfg.sparse_nm
    m, k = a_codes.shape
    n = w_codes.shape[1]
    R, C, ks = cfg.rows, cfg.cols, plan.k_step
    codes, idx = nm_compress(cfg, w_codes)
    lanes = codes | (idx << np.uint64(cfg.weight_bits))
    rows_per_fold = R
    kr = -(-k // ks) * rows_per_fold + R
    Wc = np.zeros((kr, -(-n // C) * C), dtype=np.uint64)
    Wc[:lanes.shape[0], :n] = lanes
    A = np.zeros((-(-m // plan.m_step) * plan.m_step + R, -(-k // ks) * ks + ks), dtype=np.uint64)
    A[:m, :k] = a_codes
    w_rows, a_rows = [], []
    for m0, n0, k0, kt, mt in zip(plan.m0, plan.n0, plan.k0, plan.kt, plan.mt, strict=True):
        r0 = (k0 // ks) * rows_per_fold  # = k0 // M * N: the fold's first kept-weight row
        w_rows.append(Wc[r0:r0 + kt, n0:n0 + C])
        a_rows.append(A[m0:m0 + mt, k0:k0 + ks])
    return ((np.concatenate(w_rows), cfg.weight_bits + cfg.index_bits),
            (np.concatenate(a_rows), cfg.act_bits))


def unpack_outputs(cfg: MacArrayConfig, out_beats: list[int] | np.ndarray, m: int, n: int) -> np.ndarray:
    """Output codes ``[m, n]`` from the RTL's output beats (tiles in (m0, n0) order, rows within a tile;
    IS: the transposed output, one output channel per beat). ``out_beats`` is one integer per beat or
    the lanes ``[beat, cols]`` already unpacked."""
    if cfg.dataflow == "is":  # IS drains the transposed output: beat i of tile (n0, m0) is out[m0 + c, n0 + i]
        return np.ascontiguousarray(_unpack_tiles(cfg, out_beats, fold_plan(cfg, m, 1, n), n, m).T)
    return _unpack_tiles(cfg, out_beats, fold_plan(cfg, m, 1, n), m, n)


def _unpack_tiles(cfg: MacArrayConfig, out_beats: list[int], plan: FoldPlan, m: int, n: int) -> np.ndarray:
    lanes = out_beats if isinstance(out_beats, np.ndarray) else unpack_lanes(out_beats, cfg.cols, cfg.act_bits)
    out = np.zeros((m, n), dtype=np.uint64)
    i = 0
    for m0, n0, rows in zip(plan.m0, plan.n0, plan.rows_out, strict=True):
        nt = min(cfg.cols, n - n0)
        if i + rows > len(lanes):
            raise HwsimError(f"output stream has {len(lanes)} beats, fewer than the layer's tiles need")
        out[m0:m0 + rows, n0:n0 + nt] = lanes[i:i + rows, :nt]
        i += rows
    if i != len(lanes):
        raise HwsimError(f"output stream has {len(lanes)} beats, expected {i}")
    return out


# ---------------------------------------------------------------------------------------------- synth
_PE_REGS = ("pe_weight_reg", "pe_pipeline_reg", "pe_index_reg")
_PE_LOGIC = ("pe_mac", "pe_act_mux")


def synth_groups(cfg: MacArrayConfig) -> tuple:
    """``hwsim synth`` rows of ``cfg`` (see :func:`hwsim.synth.synth`): the PE modules against the PE
    components (N:M: with the index registers and activation muxes, which sit inside the PE module), the
    array's skew registers, requantizers, controller; with ``skip_zero_tiles`` the bitmap and with a global
    buffer the buffer, both beside the top (analytic only); with ``weight_zero_points`` the row term's
    multipliers and subtractions count with the requantizers, the row-sum adders (OS/IS: and registers)
    with the top, and two float32 lanes synthesized alone, with and without the row term, attribute it.
    An N:M array adds one N:M PE and one PE of the same config made dense, each synthesized alone, so the N:M
    overhead (index register, the M-wide activation register, the M:1 mux) is attributed by their difference:
    flip-flops against ``pe_index_reg`` + the wider ``pe_pipeline_reg``, the rest against ``pe_act_mux``. A
    dense array with idle-lane gating adds its PE and the same PE ungated (``gating='none'``), each synthesized
    alone: their difference is the gating logic (register enables, the operand register that no longer merges
    with the activation hop) against the clock-gating cells the inventory prices."""
    pe_names = ("pe_mac", "pe_weight_reg", "pe_pipeline_reg")
    row_lanes, row_unit = (), ()  # weight zero points: the row term's lane parts; the row-sum unit in the top
    if cfg.weight_zero_points:
        row_lanes = ("row_zp_mult", "row_zp_sub")
        row_unit = ("row_sum_adder",) + (() if cfg.dataflow == "ws" else ("row_sum_store",))  # WS: a memory
    label = "PEs (MAC + pipeline registers)"
    if cfg.sparse:
        pe_names += ("pe_index_reg", "pe_act_mux")
        label = "PEs (MAC, registers, index reg, act mux)"
    groups = [
        (label, ("pe",), pe_names),
        ("array skew/deskew registers", ("array",), ()),
        ("requantizers", ("requant", "f32_requant"), ("requant", *row_lanes)),
        ("controller (top-level logic)", ("top",), ("controller", *row_unit)),
    ]
    if cfg.skip_zero_tiles:
        groups.append(("zero-tile bitmap (beside the top)", (), ("tile_bitmap",)))
    if cfg.global_buffer_bytes:  # the memory system's buffer feeds the array's port (hwsim.memory)
        groups.append(("global buffer (beside the top)", (), ("global_buffer",)))
    if cfg.sparse:
        from hwsim.synth import SynthProbe

        dense = cfg.replace(sparsity="dense")
        groups += [
            SynthProbe("dense PE", f"{dense.top_name}_pe", _pe_builder(dense), _pe_analytic(dense)),
            SynthProbe(f"{cfg.sparsity} PE", f"{cfg.top_name}_pe", _pe_builder(cfg), _pe_analytic(cfg),
                       baseline="dense PE"),
        ]
    elif cfg.gating != "none":
        from hwsim.synth import SynthProbe

        plain = cfg.replace(gating="none")
        groups += [
            SynthProbe("ungated PE", f"{plain.top_name}_pe", _pe_builder(plain), _pe_analytic(plain)),
            SynthProbe(f"{cfg.gating}-gated PE", f"{cfg.top_name}_pe", _pe_builder(cfg), _pe_analytic(cfg),
                       baseline="ungated PE"),
        ]
    if cfg.weight_zero_points:  # one float32 lane with and without the row term: the difference is its correction
        from hwsim.synth import SynthProbe

        plain = cfg.replace(weight_zero_points=False)
        groups += [
            SynthProbe("f32 lane", f"{plain.top_name}_f32_lane", _f32_lane_builder(plain), _f32_lane_analytic(plain)),
            SynthProbe("f32 lane + row term", f"{cfg.top_name}_f32_lane", _f32_lane_builder(cfg),
                       _f32_lane_analytic(cfg), baseline="f32 lane"),
        ]
    return tuple(groups)


def _f32_lane_builder(cfg: MacArrayConfig):
    def build():
        from hwsim.rtl.f32_requantizer import F32Requantizer

        return F32Requantizer(cfg, 1)
    return build


def _f32_lane_analytic(cfg: MacArrayConfig):
    """(0, logic um^2) of one combinational float32 requantizer lane with its zero-point correction adder and,
    with ``weight_zero_points``, the row term's multiplier and subtraction (the inventory's per-lane parts)."""
    def analytic(model):
        from hwsim.cost import Component

        def lane_um2(kind):
            return model.component_area_um2(Component("requant", "requantizer", {
                "acc_bits": cfg.acc_bits, "out_bits": cfg.out_bits, "kind": kind}))

        lane = lane_um2("f32") - lane_um2("shift")  # the float32 lane and the zero-point adder beside the shift lane
        if cfg.weight_zero_points:
            inv = inventory(cfg)
            lane += model.component_area_um2(inv["row_zp_mult"]) + model.component_area_um2(inv["row_zp_sub"])
        return 0.0, lane
    return analytic


def _pe_builder(cfg: MacArrayConfig):
    def build():
        from hwsim.rtl.mac_pe import MacPE

        return MacPE(cfg)
    return build


def _pe_analytic(cfg: MacArrayConfig):
    """(register um^2, other logic um^2) of one PE of ``cfg`` from its inventory."""
    def analytic(model):
        inv = inventory(cfg)
        names = set(inv.names())
        return (math.fsum(model.component_area_um2(inv[n]) for n in _PE_REGS if n in names),
                math.fsum(model.component_area_um2(inv[n]) for n in _PE_LOGIC if n in names))
    return analytic


# ---------------------------------------------------------------------------------------------- registry
#: The MAC array's registry record (listed in :data:`hwsim.families.BUILTIN`). RTL, co-simulation and the
#: synth option are import paths, loaded only when used (no Amaranth or cocotb import for simulate).
# ---------------------------------------------------------------------------------------------- unit protocol
def lower(cfg: MacArrayConfig, layer) -> tuple:
    """Unit protocol: the GEMMs (:class:`hwsim.models.compressed.GemmOp`, batch 1) of a compressed conv2d /
    linear layer, each checked against the PE (:func:`check_op`)."""
    if getattr(layer, "kind", None) not in FAMILY.workload_kinds:
        raise HwsimError(f"layer {getattr(layer, 'name', layer)!r} (kind {getattr(layer, 'kind', None)}) is not "
                         f"allowed on mac-array: expected one of {', '.join(FAMILY.workload_kinds)}")
    ops = tuple(layer.gemm_ops(batch=1))
    for op in ops:
        check_op(cfg, op)
    return ops


def run(cfg: MacArrayConfig, layer, inputs) -> tuple[np.ndarray, Stats]:
    """Unit protocol: a compressed conv2d / linear layer on a batch, every GEMM through
    :func:`simulate_gemm` (the layer's im2col and output assembly are the compressed model's); the counts
    do not depend on the data, so the Stats are those of :func:`lower` + :func:`predict_op`."""
    def gemm(a, w, lcfg, shift, relu, bias=None, requant=None):
        return simulate_gemm(lcfg, a, w, shift=shift, relu=relu, bias=bias, requant=requant)[0]

    values = layer.forward_int(inputs, cfg, gemm)
    return values, total(predict_op(cfg, op) for op in lower(cfg, layer))


def reference(cfg: MacArrayConfig, layer, inputs) -> np.ndarray:
    """Unit protocol: the bit-exact spec of a compressed conv2d / linear layer (``reference_gemm``)."""
    return layer.forward_int(inputs, cfg)


def shape_ops(cfg: MacArrayConfig, rows) -> list[tuple]:
    """Registry entry: the GEMMs of shape-only GEMM / conv rows (:mod:`hwsim.workloads`), run in the PE's
    own format, identical ones (same shape, shift, relu) merged with their multiplicity, each checked."""
    from hwsim.models.compressed import GemmOp

    out: dict = {}
    for la in rows:
        if not hasattr(la, "gemm_shape"):
            raise HwsimError(f"layer {la.name!r} (kind {getattr(la, 'kind', '?')}) is not allowed on mac-array: "
                             "expected a GEMM (m, k, n) or conv layer row")
        m, k, n = la.gemm_shape
        for g in range(la.groups):
            key = (m, k, n, la.shift, la.relu)
            if key in out:
                out[key][1] += 1
            else:
                op = GemmOp(la.name, g, m, k, n, tuple(range(g * n, (g + 1) * n)), la.shift, la.relu,
                            cfg.weight_format, cfg.act_bits, False)
                check_op(cfg, op)
                out[key] = [op, 1]
    return [(op, mult) for op, mult in out.values()]


def describe_layer(cfg: MacArrayConfig, layer, ops) -> tuple[str, str]:
    """Report labels of a layer: its (last) GEMM's ``m x k x n`` (``xG g`` for a later group) and format."""
    op = ops[-1]
    return f"{op.m}x{op.k}x{op.n}" + (f" x{op.group + 1}g" if op.group else ""), op.weight_format


def fit_model(cfg: MacArrayConfig, layers, chosen) -> tuple[MacArrayConfig, list[str]]:
    """The hardware a compiled model's layers need (``hwsim.run.fit_units``): float32 requantizer lanes for
    layers with float scales (a quantized ONNX graph's ``requant="f32"``) and the row-sum unit for weights with
    zero points. A field the user did not choose (not in ``chosen``) is set, with a note; a chosen one that
    cannot run the layers is a one-line error. The values and cycles are the same either way; the area and the
    inventory are those of the hardware that runs the model."""
    f32 = [la.name for la in layers if getattr(la, "requant", "shift") == "f32"]
    wzp = [la.name for la in layers if getattr(la, "weight_zp", None) is not None]
    changes, notes = {}, []
    for fld, want, names, what in (("requantizer", "f32", f32, "float scales"),
                                   ("weight_zero_points", True, wzp, "weights with zero points")):
        if not names or getattr(cfg, fld) == want:
            continue
        if chosen is None or fld in chosen:
            raise HwsimError(f"{fld}={getattr(cfg, fld)!r} is not allowed for layer {names[0]!r}: it has {what}; "
                             f"expected {fld}={want!r}")
        changes[fld] = want
        notes.append(f"note: {fld} {want} (was {getattr(cfg, fld)!r}): {', '.join(names)} have {what}; the "
                     "area and inventory include that hardware")
    return (cfg.replace(**changes) if changes else cfg), notes


FAMILY = Family(
    name="mac-array",
    config_cls=MacArrayConfig,
    description="quantized systolic MAC array: WS/IS/OS, int8/int4/int2/ternary/binary/pow2 PEs",
    presets=("mac-array-8x8-ws", "mac-array-8x8-os", "mac-array-16x16-ws", "mac-array-32x32-ws",
             "mac-array-8x8-ws-int4", "mac-array-8x8-ws-binary", "mac-array-8x8-ws-2of4", "mac-array-8x8-ws-1of4"),
    preset_pattern="mac-array-RxC-ws|os|is[-FORMAT][-NofM]",
    parse_preset=parse_preset,
    workload_kinds=("conv2d", "linear"),
    reference="hwsim.models.mac_array",
    cycle_model="hwsim.mac_array",
    inventory=inventory,
    lower=lower,
    predict=predict_op,
    run=run,
    run_reference=reference,
    fit_model=fit_model,
    describe_layer=describe_layer,
    shape_ops=shape_ops,
    rtl="hwsim.rtl.mac_array:generate_verilog",
    cosim="hwsim.cosim.regression:run_regression",
    cosim_run="hwsim.cosim.mac_array_model:cosim_run",
    synth_groups=synth_groups,
    studies=(("compression", "hwsim.compression_study:run",
              "digits-cnn per compression spec: post-training vs fine-tuned accuracy, cycles, energy, weight bytes"),),
    cli_options=(
        CliOption("synth", "--requant", "also compare shift- vs multiplier-based requantizers",
                  "hwsim.mac_array_synth:requant_option"),
        *model_cosim_options("co-simulate a whole compressed zoo model (e.g. digits-cnn) instead of random "
                             "layers", "compression spec (default int8, or onnx for a quantized ONNX graph)"),
    ),
)
