"""The ``(component, action)`` counts the cost model prices, and the text tables of the reports.

The one statistics record every cycle model returns is :class:`hwsim.unit.Stats`, which holds these
counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ActionCounts", "text_table"]


@dataclass(frozen=True)
class ActionCounts:
    """Counts of ``(component, action)`` pairs, what the cost model prices.

    Component names are those of the family's inventory (:class:`hwsim.cost.Inventory`); actions are
    those of the component's class (``read``/``write`` words of an SRAM, bytes of DRAM, ``mac``, ...).
    A family's cycle model may keep richer counters of its own (bytes, beats) and give these pairs by
    ``pairs()``; :meth:`pairs` of this class returns itself.
    """

    counts: dict = field(default_factory=dict)

    def pairs(self) -> ActionCounts:
        return self

    def get(self, component: str, action: str) -> int:
        return self.counts.get((component, action), 0)

    def __add__(self, other) -> ActionCounts:
        out = dict(self.counts)
        for key, v in other.pairs().counts.items():
            out[key] = out.get(key, 0) + v
        return ActionCounts(out)

    def scaled(self, factor: int) -> ActionCounts:
        return ActionCounts({key: v * factor for key, v in self.counts.items()})

    def as_dict(self) -> dict[str, int]:
        return {f"{c}.{a}": v for (c, a), v in self.counts.items()}


def text_table(columns: list[tuple[str, int, str]], rows: list[list]) -> list[str]:
    """Header, rule and rows of a table whose columns (title, minimum width, ``<`` or ``>``) are as wide as
    their widest cell, so long layer names or large counts keep every column aligned."""
    cells = [[str(v) for v in row] for row in rows]
    widths = [max([minimum, len(title), *(len(r[i]) for r in cells)]) for i, (title, minimum, _) in enumerate(columns)]
    hdr = " ".join(f"{title:{a}{w}}" for (title, _, a), w in zip(columns, widths, strict=True))
    return [hdr, "-" * len(hdr)] + [" ".join(f"{c:{a}{w}}" for c, (_, _, a), w in zip(r, columns, widths, strict=True))
                                     for r in cells]
