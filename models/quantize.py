"""Weight quantization to the PE formats with power-of-two scales (:func:`quantize_weights`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.spec import QUANT_FORMATS

__all__ = ["POW2_MAX", "TERNARY_THRESHOLD", "QuantizedWeights", "quantize_weights"]

INT_BITS = {"int8": 8, "int4": 4, "int2": 2}
#: Largest magnitude of a pow2 weight code.
POW2_MAX = 64
#: Ternary threshold as a fraction of mean |w| (TWN).
TERNARY_THRESHOLD = 0.7


@dataclass
class QuantizedWeights:
    """``values * 2**exp[o]`` (per output channel o) approximates ``gain[o] * w``."""

    values: np.ndarray  # int64, same shape as w
    exp: np.ndarray  # int64 (O,)
    gain: np.ndarray  # float64 (O,)


def _units(w: np.ndarray, per_channel: bool) -> np.ndarray:
    """(O, R) view over which scales are shared: one row per channel, or one row for the whole tensor."""
    return w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)


def _pow2_levels(v: np.ndarray) -> np.ndarray:
    """Nearest value (linear distance) of {0, +-1, +-2, ..., +-64} to every element of v (floats)."""
    m = np.minimum(np.abs(v), POW2_MAX)
    lower = np.exp2(np.floor(np.log2(np.maximum(m, 1.0))))
    mag = np.where(m >= 1.5 * lower, 2 * lower, lower)
    mag = np.where(m < 0.5, 0.0, np.minimum(mag, POW2_MAX))
    return (np.sign(v) * mag).astype(np.int64)


def _quant_uniform(u: np.ndarray, fmt: str, e: np.ndarray) -> np.ndarray:
    x = u / np.exp2(e)[:, None]
    if fmt == "pow2":
        return _pow2_levels(x)
    b = INT_BITS[fmt]
    return np.clip(np.rint(x), -(1 << (b - 1)), (1 << (b - 1)) - 1).astype(np.int64)


def quantize_weights(w, weight_format: str, per_channel: bool = False, absorb_gain: bool = False,
                     search: int = 2) -> QuantizedWeights:
    """Quantize a weight tensor ``w`` (O, ...) to ``weight_format`` with power-of-two scales.

    ``int8`` / ``int4`` / ``int2``: symmetric (zero maps to zero) two's complement values in
    ``[-2**(b-1), 2**(b-1)-1]``, ``values = rint(w / 2**e)``; ``e`` starts at
    ``ceil(log2(max|w| / (2**(b-1)-1)))`` (no clipping) and the ``search`` next smaller exponents are
    tried too, keeping the one with the least squared error (per channel or per tensor).
    ``pow2``: values in {0, +-1, ..., +-64} (nearest in linear distance, |w|/2**e < 0.5 -> 0) with the
    same exponent search starting at ``ceil(log2(max|w| / 64))`` (and one larger exponent).
    ``ternary``: threshold ``delta = 0.7 * mean|w|``, values ``sign(w) * (|w| > delta)`` and
    ``alpha = mean |w|`` over the kept weights. ``binary``: values ``sign(w)`` (sign(0) = +1),
    ``alpha = mean|w|`` per output channel (always). For ternary / binary, with ``absorb_gain`` one exponent
    ``e = round(log2(mean alpha))`` is shared and ``gain = 2**e / alpha`` reports the output scaling that
    downstream layers must absorb; without it ``e = round(log2(alpha))`` per unit and gain is 1. Integer and
    pow2 formats always have gain 1.
    """
    w = np.asarray(w, dtype=np.float64)
    o = w.shape[0]
    fmt = weight_format
    if fmt not in QUANT_FORMATS:
        raise HwsimError(f"weight_format={fmt!r} is not allowed: expected one of {', '.join(QUANT_FORMATS)}")
    if fmt in ("ternary", "binary"):
        u = _units(w, per_channel or fmt == "binary")
        a = np.abs(u)
        if fmt == "ternary":
            keep = a > TERNARY_THRESHOLD * a.mean(axis=1, keepdims=True)
            q = (np.sign(u) * keep).astype(np.int64)
            cnt = keep.sum(axis=1)
            alpha = np.where(cnt > 0, (a * keep).sum(axis=1) / np.maximum(cnt, 1), 0.0)
        else:
            q = np.where(u >= 0, 1, -1).astype(np.int64)
            alpha = a.mean(axis=1)
        alpha = np.where(alpha > 0, alpha, np.nan)
        if absorb_gain:
            ref = np.nanmean(alpha) if np.isfinite(alpha).any() else 1.0
            e = np.full(len(alpha), int(np.round(np.log2(ref))), dtype=np.int64)
            gain = np.where(np.isfinite(alpha), np.exp2(e) / np.nan_to_num(alpha, nan=1.0), 1.0)
        else:
            e = np.round(np.log2(np.nan_to_num(alpha, nan=1.0))).astype(np.int64)
            gain = np.ones(len(alpha))
        values = q.reshape(w.shape)
        exp = np.broadcast_to(e, (o,)).astype(np.int64) if len(e) == 1 else e
        gain = np.broadcast_to(gain, (o,)).astype(np.float64) if len(gain) == 1 else gain
        return QuantizedWeights(values, exp.copy(), gain.copy())
    u = _units(w, per_channel)
    amax = np.abs(u).max(axis=1)
    qmax = POW2_MAX if fmt == "pow2" else (1 << (INT_BITS[fmt] - 1)) - 1
    e0 = np.where(amax > 0, np.ceil(np.log2(np.where(amax > 0, amax, 1.0) / qmax)), 0).astype(np.int64)
    best_q, best_e, best_err = None, None, None
    offsets = range(-search, 2) if fmt == "pow2" else range(-search, 1)
    for off in offsets:
        e = e0 + off
        q = _quant_uniform(u, fmt, e)
        err = ((q * np.exp2(e)[:, None] - u) ** 2).sum(axis=1)
        if best_err is None:
            best_q, best_e, best_err = q, e, err
        else:
            better = err < best_err
            best_q = np.where(better[:, None], q, best_q)
            best_e = np.where(better, e, best_e)
            best_err = np.minimum(err, best_err)
    exp = np.broadcast_to(best_e, (o,)).astype(np.int64).copy()
    return QuantizedWeights(best_q.reshape(w.shape), exp, np.ones(o))
