"""Statistics returned by the cycle-level models: plain dataclasses, no state."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["ActionCounts", "LayerStats"]


@dataclass(frozen=True)
class ActionCounts:
    """Per-component action counts of one layer (or a sum of layers), for the cost model.

    SRAM traffic is counted in words of ``MacArrayConfig.sram_word_bits`` and in bytes; an access of
    X bits costs ceil(X / sram_word_bits) words. DRAM traffic is counted in stream beats and bytes.
    """

    pe_macs: int = 0
    """Multiply-accumulates the PEs executed on valid data (includes zero-padded lanes of edge tiles)."""
    pe_weight_loads: int = 0
    """Writes of a weight code into a PE's stationary weight register (WS)."""
    pe_reg_writes: int = 0
    """Pipeline register writes inside the array (activation/weight/psum hops between PEs)."""
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

    def __add__(self, other: ActionCounts) -> ActionCounts:
        return ActionCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                               for f in dataclasses.fields(self)})

    def scaled(self, factor: int) -> ActionCounts:
        return ActionCounts(**{f.name: getattr(self, f.name) * factor for f in dataclasses.fields(self)})

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class LayerStats:
    """Timing and actions of one GEMM (or a conv lowered to ``groups`` GEMMs) on one accelerator.

    ``cycles`` counts clock cycles from the first busy cycle after ``start`` to the last busy cycle,
    exactly as the RTL's busy flag does; ``stall_cycles`` are the cycles the compute engine waited for
    DRAM data; ``utilization`` is useful MACs / (rows * cols * cycles).
    """

    name: str
    m: int
    k: int
    n: int
    groups: int
    cycles: int
    stall_cycles: int
    folds: int
    macs: int
    utilization: float
    actions: ActionCounts

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["actions"] = self.actions.as_dict()
        return d
