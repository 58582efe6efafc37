"""Plots of a sweep table (matplotlib, Agg backend): the Pareto scatter and each objective vs each axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_metric_vs_axis", "plot_pareto", "write_plots"]


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(metric: str, direction: str | None = None) -> str:
    return metric + (f" ({direction})" if direction else "")


def _log_if_wide(ax, axis: str, values) -> None:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], dtype=float)
    if len(v) and v.max() / v.min() > 100:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def plot_pareto(rows: list[dict], objectives, ax=None, title: str = "", line: bool = True):
    """Scatter of the first two objectives: feasible points, infeasible ones (x), the front in red.

    ``objectives`` is a sequence of ``(metric, "min"|"max")``; ``rows`` are sweep table rows. ``line``
    joins the front by a staircase (meaningful when the front is over these two objectives only).
    """
    plt = _plt()
    (mx, dx), (my, dy) = objectives[0], objectives[1]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    ok = [r for r in rows if r.get("status") == "ok"]
    feas = [r for r in ok if r.get("feasible")]
    infeas = [r for r in ok if not r.get("feasible")]
    front = sorted((r for r in feas if r.get("pareto")), key=lambda r: r[mx])
    if infeas:
        ax.scatter([r[mx] for r in infeas], [r[my] for r in infeas], marker="x", s=14, c="0.75",
                   label=f"infeasible ({len(infeas)})")
    ax.scatter([r[mx] for r in feas], [r[my] for r in feas], s=12, c="tab:blue", alpha=0.5,
               label=f"feasible ({len(feas)})")
    ax.scatter([r[mx] for r in front], [r[my] for r in front], s=30, c="tab:red", edgecolors="k", linewidths=0.5,
               zorder=3, label=f"Pareto front ({len(front)})")
    if line and front:
        ax.step([r[mx] for r in front], [r[my] for r in front], where="post", c="tab:red", lw=1)
    ax.set_xlabel(_label(mx, dx))
    ax.set_ylabel(_label(my, dy))
    _log_if_wide(ax, "x", [r[mx] for r in ok])
    _log_if_wide(ax, "y", [r[my] for r in ok])
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_metric_vs_axis(rows: list[dict], axis: str, metric: str, ax=None, values=None):
    """``metric`` of every evaluated point against the values of ``axis`` (categorical positions, jittered):
    feasible points blue, infeasible grey crosses, front points red, the best feasible per value joined."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    ok = [r for r in rows if r.get("status") == "ok"]
    vals = list(values) if values is not None else sorted({r[axis] for r in ok}, key=lambda v: (str(type(v)), v))
    pos = {str(v): i for i, v in enumerate(vals)}
    rng = np.random.default_rng(0)
    at = np.array([pos[str(r[axis])] for r in ok], dtype=float)
    x = at + rng.uniform(-0.15, 0.15, len(ok))
    y = np.array([r[metric] for r in ok], dtype=float)
    feas = np.array([bool(r.get("feasible")) for r in ok], dtype=bool)
    on = np.array([bool(r.get("pareto")) for r in ok], dtype=bool)
    ax.scatter(x[~feas], y[~feas], s=10, marker="x", c="0.75")
    ax.scatter(x[feas & ~on], y[feas & ~on], s=10, alpha=0.4, c="tab:blue")
    ax.scatter(x[on], y[on], s=18, c="tab:red", zorder=3)
    best = [y[feas & (at == i)].min() if (feas & (at == i)).any() else np.nan for i in range(len(vals))]
    ax.plot(range(len(vals)), best, c="k", lw=1, label="best feasible")
    ax.set_xticks(range(len(vals)), [str(v) for v in vals], rotation=30 if len(vals) > 6 else 0, fontsize=8)
    ax.set_xlabel(axis)
    ax.set_ylabel(metric)
    _log_if_wide(ax, "y", y)
    return ax


def write_plots(spec, rows: list[dict], out: Path) -> dict[str, Path]:
    """``pareto.png`` and ``vs_<axis>.png`` (every objective against that axis) in ``out``."""
    plt = _plt()
    files = {}
    objs = list(spec.objectives)
    if len(objs) >= 2:
        pairs = [(objs[i], objs[j]) for i in range(min(3, len(objs))) for j in range(i + 1, min(3, len(objs)))]
        fig, axs = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4.5), squeeze=False)
        for ax, (a, b) in zip(axs[0], pairs, strict=True):
            plot_pareto(rows, [a, b], ax=ax, line=len(objs) == 2)
        fig.suptitle(f"{spec.name}: Pareto front over {', '.join(m for m, _ in objs)} (red)", fontsize=11)
        fig.tight_layout()
        files["pareto_plot"] = out / "pareto.png"
        fig.savefig(files["pareto_plot"], dpi=110)
        plt.close(fig)
    for axis in spec.axes:
        fig, axs = plt.subplots(1, len(objs), figsize=(4.5 * len(objs), 3.6), squeeze=False)
        for ax, (m, _) in zip(axs[0], objs, strict=True):
            plot_metric_vs_axis(rows, axis.name, m, ax=ax, values=axis.values)
        fig.suptitle(f"{spec.name}: objectives vs {axis.name} (feasible points; red: Pareto front)", fontsize=11)
        fig.tight_layout()
        name = f"vs_{axis.name}"
        files[f"plot_{name}"] = out / f"{name}.png"
        fig.savefig(files[f"plot_{name}"], dpi=100)
        plt.close(fig)
    return files
