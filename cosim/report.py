"""The result of a co-simulation regression, the same for every accelerator family.

A family's testbench writes one row per layer (``name``, ``kind``, ``shape``, ``vectors`` compared,
``mismatches``, ``rtl_cycles`` measured, ``predicted_cycles`` from the cycle model); the report adds the
totals and the verdict. It imports neither cocotb nor Amaranth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LAYER_FIELDS", "RegressionReport"]

#: Keys of every per-layer row (a testbench may add more, e.g. ``index``). A testbench that compares the
#: RTL's activity counters with the cycle model adds ``count_diffs``: ``{count: [rtl, model]}`` for every
#: action or stall count that differs (empty when all agree).
LAYER_FIELDS = ("name", "kind", "shape", "vectors", "mismatches", "rtl_cycles", "predicted_cycles")


@dataclass
class RegressionReport:
    """Result of a regression of any family: per-layer rows (see ``LAYER_FIELDS``) and totals.

    ``config`` is the family config that was simulated; ``workdir`` is where the run wrote its log
    (``sim.log``) and, with waves, ``dump.fst``.
    """

    config: object
    layers: list[dict] = field(default_factory=list)
    wall_seconds: float = 0.0
    build_cached: bool = False
    workdir: Path | None = None

    @property
    def family(self) -> str:
        """Registry name of the config's family (e.g. ``mac-array``)."""
        from hwsim.families import family_of

        return family_of(self.config).name

    @property
    def vectors(self) -> int:
        return sum(r["vectors"] for r in self.layers)

    @property
    def mismatches(self) -> int:
        return sum(r["mismatches"] for r in self.layers)

    @property
    def cycle_mismatches(self) -> int:
        """Layers whose measured RTL cycles differ from the cycle model's prediction."""
        return sum(r["rtl_cycles"] != r["predicted_cycles"] for r in self.layers)

    @property
    def count_mismatches(self) -> int:
        """Layers whose RTL activity counts (actions, stalls) differ from the cycle model's."""
        return sum(bool(r.get("count_diffs")) for r in self.layers)

    @property
    def counts_checked(self) -> bool:
        """Whether the testbench compared activity counts (it wrote ``count_diffs`` on every layer)."""
        return bool(self.layers) and all("count_diffs" in r for r in self.layers)

    @property
    def passed(self) -> bool:
        return (self.mismatches == 0 and self.cycle_mismatches == 0 and self.count_mismatches == 0
                and bool(self.layers))

    def as_dict(self) -> dict:
        return {"family": self.family, "config": self.config.to_dict(), "layers": self.layers,
                "vectors": self.vectors, "mismatches": self.mismatches,
                "cycle_mismatches": self.cycle_mismatches, "count_mismatches": self.count_mismatches,
                "counts_checked": self.counts_checked, "passed": self.passed,
                "wall_seconds": self.wall_seconds, "build_cached": self.build_cached,
                "workdir": str(self.workdir) if self.workdir else None}
