"""The unit protocol: what every family's cycle model offers, and the one statistics record it returns.

A *unit* is one accelerator engine (a MAC array, an LSTM engine, a deformable-convolution unit, an RF
interferometer array) built from its family's frozen config. The generic code (the run loop, ``simulate``,
``sweep``, the cost model) knows a unit only through three functions of its family's registry record
(:class:`hwsim.families.Family`):

``lower(cfg, layer) -> tuple[op, ...]``
    The work one inference of one model layer gives this unit: GEMM tiles, matrix-vector stages, sampling
    sets, mesh passes. ``layer`` is a compressed model's layer (:class:`hwsim.models.compressed.QLayer` or
    the family's own layer record); each ``op`` is a frozen record of the family's with at least a
    ``layer`` attribute (the layer's name). Shapes matter, values need not.
``predict(cfg, op) -> Stats``
    Counts only, in closed form: the exact cycles, stalls, priced actions and traffic of ``op``.
``run(cfg, layer, inputs) -> (values, Stats)``
    The bit-exact value path of one model layer on a batch: ``inputs`` are the layer's int64 input
    batches (one per layer input), ``values`` its int64 output batch, and the :class:`Stats` those of ONE
    inference (for a unit whose counts depend on the data, the mean over the batch rounded half up, with
    the spread in ``detail``). The value path takes the whole layer, not one op, because the operands of a
    layer's ops (im2col matrices, stage intermediates) exist only inside the unit.

A family whose counts do not depend on the data has ``run``'s Stats equal to the sum of ``predict`` over
``lower``; the tests check that for every family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from hwsim.stats import ActionCounts

__all__ = ["Stats", "mean_stats", "total"]

#: The traffic fields of :class:`Stats`, per memory level and direction (bytes).
TRAFFIC = ("sram_read_bytes", "sram_write_bytes", "dram_read_bytes", "dram_write_bytes")


@dataclass(frozen=True)
class Stats:
    """Timing, priced actions and traffic of one op, one layer or one inference on one unit.

    ``cycles`` are clock cycles from the first busy cycle to the last (the RTL's busy flag);
    ``stall_cycles`` the cycles among them the compute engine waited (for memory, bank conflicts, line
    buffer misses); ``macs`` the useful multiply-accumulates; ``actions`` the ``(component, action)``
    counts the cost model prices (:class:`hwsim.stats.ActionCounts`); ``*_bytes`` the bytes moved per
    memory level; ``detail`` what only one family has (folds, stage rows, offset-conv cycles, ...):
    numbers in it add up when two Stats are added, other values are kept when equal.
    """

    cycles: int = 0
    stall_cycles: int = 0
    macs: int = 0
    actions: ActionCounts = field(default_factory=ActionCounts)
    sram_read_bytes: int = 0
    sram_write_bytes: int = 0
    dram_read_bytes: int = 0
    dram_write_bytes: int = 0
    detail: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.actions, ActionCounts):  # a family's richer counter object
            object.__setattr__(self, "actions", self.actions.pairs())
        object.__setattr__(self, "detail", MappingProxyType(dict(self.detail)))

    @property
    def sram_bytes(self) -> int:
        return self.sram_read_bytes + self.sram_write_bytes

    @property
    def dram_bytes(self) -> int:
        return self.dram_read_bytes + self.dram_write_bytes

    def utilization(self, peak_macs_per_cycle: int) -> float:
        """Useful MACs / (peak MACs per cycle x cycles)."""
        return self.macs / (peak_macs_per_cycle * self.cycles) if self.cycles and peak_macs_per_cycle else 0.0

    def __add__(self, other: Stats) -> Stats:
        """Two pieces of work run back to back: counts add; numeric details add, others kept if equal."""
        detail = dict(self.detail)
        for k, v in other.detail.items():
            if k not in detail:
                detail[k] = v
            elif _number(v) and _number(detail[k]):
                detail[k] = detail[k] + v
            elif detail[k] != v:
                detail[k] = None
        return Stats(self.cycles + other.cycles, self.stall_cycles + other.stall_cycles, self.macs + other.macs,
                     self.actions + other.actions,
                     *(getattr(self, f) + getattr(other, f) for f in TRAFFIC), detail=detail)

    def scaled(self, factor: int) -> Stats:
        """The same work done ``factor`` times back to back (numeric details scaled too)."""
        return Stats(self.cycles * factor, self.stall_cycles * factor, self.macs * factor,
                     self.actions.scaled(factor), *(getattr(self, f) * factor for f in TRAFFIC),
                     detail={k: v * factor if _number(v) else v for k, v in self.detail.items()})

    def as_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["actions"] = self.actions.as_dict()
        d["detail"] = dict(self.detail)
        return d


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def total(stats) -> Stats:
    """The sum of an iterable of :class:`Stats` (work run back to back); ``Stats()`` if empty."""
    out = Stats()
    for st in stats:
        out = out + st
    return out


def _mean(total_: int, n: int) -> int:
    """``total / n`` rounded half up (a per-inference mean of integer counts)."""
    return (2 * total_ + n) // (2 * n)


def mean_stats(stats) -> Stats:
    """Per-inference Stats of a data-dependent unit from the Stats of each input of a batch: every count
    the mean rounded half up, except the action counts, which stay the batch's sums divided exactly when the
    cost model prices them (``detail['inputs']`` says over how many; ``detail['cycles_min'/'cycles_max']``
    the spread; ``detail['cycles_total']`` the batch's cycles, with which the sums are priced)."""
    stats = list(stats)
    n = len(stats)
    if n == 0:
        return Stats()
    s = total(stats)
    return Stats(_mean(s.cycles, n), _mean(s.stall_cycles, n), stats[0].macs, s.actions,
                 *(_mean(getattr(s, f), n) for f in TRAFFIC),
                 detail={"inputs": n, "cycles_total": s.cycles, "cycles_min": min(st.cycles for st in stats),
                         "cycles_max": max(st.cycles for st in stats)})
