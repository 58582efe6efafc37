"""Tables and constants the RTL shares with the bit-exact references (``hwsim.rtl`` imports only these).

Everything here is a pure function of a few configuration numbers: the contents the RTL embeds as
constants (the LSTM engine's sigmoid/tanh LUTs, the RF mesh emulator's cos/sin tables and its column
layout) and the deformable unit's Q-format offset bound. The references in this package compute with them,
the generators in ``hwsim.rtl`` embed them; neither imports the other.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from hwsim.models.errors import HwsimError

__all__ = ["MESH_STYLES", "lut_table", "mesh_columns", "mesh_layout", "offset_bound_code", "offset_bound_ok",
           "rf_tables"]


# ---------------------------------------------------------------------------------------------- lstm-engine LUTs
def lut_table(kind: str, cfg) -> np.ndarray:
    """The ``2**lut_bits`` int64 entries of the ``sigmoid`` or ``tanh`` LUT of an LSTM engine config
    (``data_bits``, ``frac_bits``, ``lut_bits``): the function at each segment's centre, rounded half up
    and clamped to the data range (see :mod:`hwsim.models.lstm_engine`)."""
    bits, F, lb = cfg.data_bits, cfg.frac_bits, cfg.lut_bits
    s = bits - lb
    i = np.arange(1 << lb, dtype=np.int64)
    centre = ((i << s) + ((1 << s) >> 1) - (1 << (bits - 1))) / float(1 << F)
    f = (1.0 / (1.0 + np.exp(-centre))) if kind == "sigmoid" else np.tanh(centre)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(np.floor(f * (1 << F) + 0.5).astype(np.int64), lo, hi)


# ---------------------------------------------------------------------------------------------- rf-array mesh
MESH_STYLES = ("clements", "reck")


def mesh_columns(n: int, modes: np.ndarray) -> np.ndarray:
    """Column of each MZI (on modes ``(m, m + 1)`` for ``m`` in ``modes``, in order) of an ``n``-mode mesh
    when every MZI is placed as early as its two modes allow."""
    last = np.full(n, -1, dtype=np.int64)
    cols = np.empty(modes.size, dtype=np.int64)
    for k, m in enumerate(modes.tolist()):
        c = max(last[m], last[m + 1]) + 1
        cols[k] = c
        last[m] = last[m + 1] = c
    return cols


@functools.lru_cache(maxsize=64)
def _layout(n: int, style: str) -> tuple[tuple[int, ...], ...]:
    if style == "clements":
        return tuple(tuple(range(c % 2, n - 1, 2)) for c in range(n)) if n > 1 else ()
    modes = np.array([m for r in range(n - 1, 0, -1) for m in range(r)], dtype=np.int64)
    cols = mesh_columns(n, modes)
    return tuple(tuple(sorted(modes[cols == c].tolist())) for c in range(int(cols.max()) + 1)) if modes.size \
        else ()


def mesh_layout(n: int, style: str) -> tuple[tuple[int, ...], ...]:
    """Top modes of the MZIs of each pipeline column (empty columns dropped; n = 2 has one column)."""
    if style not in MESH_STYLES:
        raise HwsimError(f"mesh={style!r} is not allowed: expected one of {', '.join(MESH_STYLES)}")
    return tuple(c for c in _layout(n, style) if c)


@functools.lru_cache(maxsize=32)
def _rf_tables(dac_bits: int, coef_bits: int) -> dict[str, np.ndarray]:
    a = 2 * np.pi * np.arange(1 << dac_bits) / (1 << dac_bits)
    one = float(1 << coef_bits)
    t = {"C": np.cos(a) * one, "S": np.sin(a) * one, "AR": (np.cos(a) - 1) / 2 * one,
         "AI": np.sin(a) / 2 * one, "BI": (np.cos(a) + 1) / 2 * one}
    return {k: np.round(v).astype(np.int64) for k, v in t.items()}


def rf_tables(cfg) -> dict[str, np.ndarray]:
    """The RF emulator's cos/sin tables indexed by phase code (int64 arrays of ``2**dac_bits`` entries; see
    :mod:`hwsim.models.rf_array`)."""
    return _rf_tables(cfg.dac_bits, cfg.coef_bits)


# ---------------------------------------------------------------------------------------------- deformable offsets
def offset_bound_ok(bound) -> bool:
    """Whether ``bound`` is an offset bound in pixels: None (unbounded) or a finite number >= 0."""
    return bound is None or (not isinstance(bound, bool) and isinstance(bound, int | float | np.number)
                             and bool(np.isfinite(bound)) and bound >= 0)


def offset_bound_code(bound, frac_bits: int) -> int | None:
    """The Q-format clamp of offsets bounded to ``[-bound, bound]`` pixels with ``frac_bits`` fraction bits,
    ``floor(bound * 2**frac_bits)``, or None for no bound: the one quantization the reference, the cycle
    model, the RTL and the co-simulation use."""
    return None if bound is None else int(math.floor(float(bound) * (1 << int(frac_bits))))
