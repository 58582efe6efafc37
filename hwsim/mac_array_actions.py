"""The MAC array's action counters: what its cycle model counts per GEMM, in the RTL's units (words,
beats, bytes), the ``(component, action)`` pairs of them the cost model prices, and the
:class:`hwsim.unit.Stats` the cycle model returns them in (:func:`gemm_stats`; :meth:`MacArrayActions.of`
reads them back).

Its own module so that the per-fold model (:mod:`hwsim.mac_array`) and the closed form
(:mod:`hwsim.mac_array_fast`) both import it without importing each other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hwsim.stats import ActionCounts
from hwsim.unit import Stats

__all__ = ["ALWAYS_PRICED", "PAIR_OF", "UNPRICED", "MacArrayActions", "gemm_stats", "gemm_stats_from", "priced_pairs"]

#: The counters the cost model does not price (bytes per SRAM buffer, DRAM beats): a Stats keeps them in
#: ``detail`` under these names.
UNPRICED = ("input_sram_read_bytes", "input_sram_write_bytes", "weight_sram_read_bytes", "weight_sram_write_bytes",
            "output_sram_read_bytes", "output_sram_write_bytes", "dram_read_beats", "dram_write_beats")

#: The priced counters and their ``(component, action)`` pair (:meth:`MacArrayActions.pairs`), in the order
#: the pairs are listed: first those that appear only when counted (N:M, zero-tile bitmap, idle slots, the
#: float32 requantizer's actions), then :data:`ALWAYS_PRICED`.
PAIR_OF = {
    "pe_index_loads": ("pe_index_reg", "write"), "pe_act_selects": ("pe_act_mux", "select"),
    "tile_bitmap_reads": ("tile_bitmap", "read"), "tile_bitmap_writes": ("tile_bitmap", "write"),
    "pe_idle_macs": ("pe_mac", "idle"), "pe_idle_regs": ("pe_pipeline_reg", "idle"),
    "requant_f32_ops": ("requant", "convert_f32"), "zp_correct_ops": ("requant", "zp_add"),
    "zp_row_adds": ("requant", "zp_row_add"), "zp_row_mults": ("requant", "zp_row_mult"),
    "pe_macs": ("pe_mac", "mac"), "pe_weight_loads": ("pe_weight_reg", "write"),
    "pe_reg_writes": ("pe_pipeline_reg", "write"),
    "input_sram_reads": ("input_sram", "read"), "input_sram_writes": ("input_sram", "write"),
    "weight_sram_reads": ("weight_sram", "read"), "weight_sram_writes": ("weight_sram", "write"),
    "output_sram_reads": ("output_sram", "read"), "output_sram_writes": ("output_sram", "write"),
    "dram_read_bytes": ("dram", "read"), "dram_write_bytes": ("dram", "write"),
    "requant_ops": ("requant", "convert"),
}
#: The counters whose pair is listed even when zero (every array prices them).
ALWAYS_PRICED = ("pe_macs", "pe_weight_loads", "pe_reg_writes", "input_sram_reads", "input_sram_writes",
                 "weight_sram_reads", "weight_sram_writes", "output_sram_reads", "output_sram_writes",
                 "dram_read_bytes", "dram_write_bytes", "requant_ops")
_COUNTERS, _ALWAYS = frozenset(PAIR_OF), frozenset(ALWAYS_PRICED)


@dataclass(frozen=True)
class MacArrayActions:
    """Per-component action counts of one layer (or a sum of layers), for the cost model.

    SRAM traffic is counted in words of ``MacArrayConfig.sram_word_bits`` and in bytes; an access of
    X bits costs ceil(X / sram_word_bits) words. DRAM traffic is counted in stream beats and bytes.
    """

    pe_macs: int = 0
    """Real multiply-accumulates: a PE whose row holds a real reduction step and whose column a real output
    (edge-tile padding excluded; equals the GEMM's M*K*N on a dense array)."""
    pe_idle_macs: int = 0
    """Idle MAC slots: a streamed vector (OS: a reduction step) passes a PE that has no real work (padding
    row or column of an edge tile). Priced by ``MacArrayConfig.gating``: as a MAC without gating, as the
    operand registers' clock-gate toggle with it."""
    pe_idle_regs: int = 0
    """``gating='clock'``: pipeline updates of PEs whose registers were clock-gated (idle columns; OS: idle
    rows or columns), counted instead of ``pe_reg_writes``."""
    pe_weight_loads: int = 0
    """Writes of a weight code into a PE's stationary weight register (WS)."""
    pe_reg_writes: int = 0
    """Pipeline updates inside the array: one per PE per valid hop, writing that PE's activation and psum
    registers (OS: activation, weight and psum) together, ``MacArrayConfig.pe_reg_write_bits`` bits in all."""
    input_sram_reads: int = 0
    input_sram_writes: int = 0
    weight_sram_reads: int = 0
    weight_sram_writes: int = 0
    output_sram_reads: int = 0
    output_sram_writes: int = 0
    input_sram_read_bytes: int = 0
    input_sram_write_bytes: int = 0
    weight_sram_read_bytes: int = 0
    weight_sram_write_bytes: int = 0
    output_sram_read_bytes: int = 0
    output_sram_write_bytes: int = 0
    dram_read_beats: int = 0
    dram_write_beats: int = 0
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    requant_ops: int = 0
    """Outputs passed through the requantizer (shift, round, ReLU, clamp)."""
    pe_index_loads: int = 0
    """N:M arrays: writes of a kept weight's index into a PE's index register (one per weight load; 0 dense)."""
    pe_act_selects: int = 0
    """N:M arrays: activation selections by a PE's M:1 multiplexer (one per MAC; 0 dense)."""
    tile_bitmap_reads: int = 0
    """Zero-tile skipping: reads of the block bitmap, one per fold by the loader and one by the compute engine
    (skipped folds included; 0 without skipping)."""
    tile_bitmap_writes: int = 0
    """Zero-tile skipping: bytes of the block bitmap written into its buffer before ``start`` (the
    ``ceil(blocks / 8)`` bytes read from DRAM; 0 without skipping)."""
    requant_f32_ops: int = 0
    """Outputs passed through the float32 requantizer (ONNX Runtime arithmetic) instead of the shift one."""
    zp_correct_ops: int = 0
    """Outputs passed through the zero-point correction adder (layers with a non-zero input or weight zero
    point; the folded column constant ``-z_x * sum_k w + K z_x z_w`` is added with the bias)."""
    zp_row_adds: int = 0
    """Weights with zero points: activation additions of the row-sum unit (``sum_k a[m, k]``, one per
    activation of each output row)."""
    zp_row_mults: int = 0
    """Weights with zero points: ``z_w[n] * rowsum[m]`` products subtracted from the outputs."""

    def __add__(self, other: MacArrayActions) -> MacArrayActions:
        return MacArrayActions(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                               for f in dataclasses.fields(self)})

    def scaled(self, factor: int) -> MacArrayActions:
        return MacArrayActions(**{f.name: getattr(self, f.name) * factor for f in dataclasses.fields(self)})

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def of(cls, stats: Stats) -> MacArrayActions:
        """The counters of a MAC-array :class:`~hwsim.unit.Stats` (:func:`gemm_stats`'s, or a sum of them):
        the priced ones from its action pairs, the others from its ``detail``."""
        return cls(**{f: stats.actions.get(*pair) for f, pair in PAIR_OF.items()},
                   **{f: stats.detail[f] for f in UNPRICED})

    def pairs(self) -> ActionCounts:
        """The ``(component, action)`` counts the cost model prices, named as in :func:`inventory`.

        SRAM actions count words, DRAM actions bytes; beats and SRAM bytes are not priced. Idle PE slots
        (``("pe_mac", "idle")``) and clock-gated pipeline updates (``("pe_pipeline_reg", "idle")``) appear
        only when counted; their price comes from the inventory's gating. The N:M
        components (``pe_index_reg``, ``pe_act_mux``) and the zero-tile bitmap (``tile_bitmap``, one 8-bit
        word per read or written byte) appear only when counted, so an inventory without them (a dense
        array without skipping) prices the same pairs as before they existed.
        """
        return priced_pairs(**{f: getattr(self, f) for f in PAIR_OF})


def priced_pairs(**counts: int) -> ActionCounts:
    """:meth:`MacArrayActions.pairs` of the counters given by name (:data:`PAIR_OF`; the closed form calls this
    with its sums, without building a :class:`MacArrayActions`): every :data:`ALWAYS_PRICED` pair, the
    others when counted. Every name must be a counter of :data:`PAIR_OF`; the always-priced ones must be
    given."""
    unknown, missing = counts.keys() - _COUNTERS, _ALWAYS - counts.keys()
    if unknown or missing:
        raise TypeError(f"priced_pairs: unknown counters {sorted(unknown)}, missing {sorted(missing)}")
    return ActionCounts({pair: counts.get(f, 0) for f, pair in PAIR_OF.items()
                         if counts.get(f, 0) or f in ALWAYS_PRICED})


def gemm_stats(cycles: int, stall_cycles: int, macs: int, actions: MacArrayActions, **detail) -> Stats:
    """The :class:`~hwsim.unit.Stats` of MAC-array work: the priced ``actions`` as pairs; SRAM traffic = the
    input, weight and output buffers'; in ``detail`` the caller's entries (the cycle model's ``name``,
    ``m``, ``k``, ``n``, ``groups``, ``folds``), the idle PE slots (``idle_slots``), the zero-tile
    bitmap's bytes (``dram_metadata_bytes``, metadata the memory system keeps in DRAM beside the weights)
    and the :data:`UNPRICED` counters."""
    a = actions
    return gemm_stats_from(cycles, stall_cycles, macs, a.pairs(), {f: getattr(a, f) for f in UNPRICED}, **detail)


def gemm_stats_from(cycles: int, stall_cycles: int, macs: int, pairs: ActionCounts, unpriced: dict,
                    **detail) -> Stats:
    """:func:`gemm_stats` from the priced pairs (:func:`priced_pairs`) and the :data:`UNPRICED` counters by
    name."""
    u = unpriced
    return Stats(cycles, stall_cycles, macs, pairs,
                 u["input_sram_read_bytes"] + u["weight_sram_read_bytes"] + u["output_sram_read_bytes"],
                 u["input_sram_write_bytes"] + u["weight_sram_write_bytes"] + u["output_sram_write_bytes"],
                 pairs.get("dram", "read"), pairs.get("dram", "write"),
                 {**detail, "idle_slots": pairs.get("pe_mac", "idle"),
                  "dram_metadata_bytes": pairs.get("tile_bitmap", "write"), **u})
