"""Bit-exact NumPy reference of the quantized MAC array: the specification the cycle model and RTL match.

Everything here works on integer *values* (``numpy.int64`` arrays) except the ``encode_*`` / ``decode_*``
functions, which convert between values and the unsigned bit *codes* stored in SRAM and streamed to the
RTL. A configuration is taken by duck typing: any object with the attributes ``weight_format``,
``act_bits``, ``acc_bits``, ``overflow`` and ``rounding`` (such as ``hwsim.config.MacArrayConfig``) will
do; this module imports nothing from ``hwsim`` except the exception type.

Arithmetic, for one output ``(m, n)`` of a GEMM with reduction length ``K``:

1. Products ``a[m, k] * w[k, n]`` are exact (a product always fits the accumulator).
2. The accumulator is a signed ``acc_bits`` two's complement register that starts at 0 and is updated
   sequentially, ``k = 0, 1, ..., K-1``: ``acc = ovf(acc + a[m, k] * w[k, n])``. ``ovf`` saturates to
   ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]`` (``overflow="saturate"``) or wraps modulo
   ``2**acc_bits`` (``overflow="wrap"``). With saturation the order of ``k`` matters.
3. Requantization (:func:`requantize`): optional ReLU, a rounding arithmetic right shift, then a clamp
   to the signed ``act_bits`` range. Binary layers (``act_bits == 1``) output the sign instead.

Convolutions are lowered to one GEMM per group with :func:`im2col`; the reduction order inside a group
is ``(c, i, j)`` (input channel, kernel row, kernel column), the order of ``weight.reshape(O, -1)``.
"""

from __future__ import annotations

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.spec import POW2_MAX_SHIFT, WEIGHT_BITS

__all__ = [
    "accumulate",
    "act_value_range",
    "conv2d",
    "conv2d_as_gemms",
    "conv_output_size",
    "decode_acts",
    "decode_weights",
    "encode_acts",
    "encode_weights",
    "gemm",
    "im2col",
    "FloatRequant",
    "quantize_to_format",
    "requantize",
    "requantize_f32",
    "requantize_f32_int",
    "zero_point_correction",
    "weight_value_range",
    "weight_values",
]

_INT_FORMATS = ("int8", "int4", "int2")
_POW2_VALUES_TEXT = "{0, +-1, +-2, +-4, +-8, +-16, +-32, +-64}"
_OVERFLOW_MODES = ("saturate", "wrap")
_ROUNDING_MODES = ("half_up", "half_even")
_MAX_ACT_BITS = 32
_MAX_ACC_BITS = 48
#: float64 matrix products are used when every partial sum is provably below this magnitude (exact).
_FLOAT_EXACT_LIMIT = 1 << 53
#: int64 bound products (|a| @ |w|) are used below this; above it every output is accumulated sequentially.
_INT_BOUND_LIMIT = 1 << 62


# ---------------------------------------------------------------------------------------------- helpers
def _is_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _check_int_arg(name: str, value, lo: int, hi: int | None = None) -> int:
    if not _is_int(value):
        raise HwsimError(f"{name}={value!r} is not allowed: expected an integer")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise HwsimError(f"{name}={value!r} is not allowed: expected an integer {allowed}")
    return value


def _check_format(weight_format) -> str:
    if not isinstance(weight_format, str) or weight_format not in WEIGHT_BITS:
        raise HwsimError(
            f"weight_format={weight_format!r} is not allowed: expected one of {', '.join(WEIGHT_BITS)}"
        )
    return weight_format


def _check_act_bits(act_bits) -> int:
    return _check_int_arg("act_bits", act_bits, 1, _MAX_ACT_BITS)


def _cfg_attr(cfg, attr: str):
    try:
        return getattr(cfg, attr)
    except AttributeError:
        raise HwsimError(
            f"cfg={cfg!r} is not allowed: expected a MAC array configuration with attribute {attr!r}"
        ) from None


def _check_cfg(cfg) -> tuple[str, int, int, str]:
    """Validate the arithmetic fields of a duck-typed config: (format, act_bits, acc_bits, overflow)."""
    fmt = _check_format(_cfg_attr(cfg, "weight_format"))
    act_bits = _check_act_bits(_cfg_attr(cfg, "act_bits"))
    acc_bits = _check_int_arg("acc_bits", _cfg_attr(cfg, "acc_bits"), 2, _MAX_ACC_BITS)
    overflow = _cfg_attr(cfg, "overflow")
    if overflow not in _OVERFLOW_MODES:
        raise HwsimError(
            f"overflow={overflow!r} is not allowed: expected one of {', '.join(_OVERFLOW_MODES)}"
        )
    return fmt, act_bits, acc_bits, overflow


def _check_rounding(cfg) -> str:
    rounding = _cfg_attr(cfg, "rounding")
    if rounding not in _ROUNDING_MODES:
        raise HwsimError(
            f"rounding={rounding!r} is not allowed: expected one of {', '.join(_ROUNDING_MODES)}"
        )
    return rounding


def _raise_first(arr: np.ndarray, bad: np.ndarray, name: str, expected: str):
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    where = f"[{', '.join(map(str, idx))}]" if idx else ""
    value = arr[idx] if idx else arr[()]
    if isinstance(value, float | np.floating):
        shown = repr(float(value))
    else:
        shown = str(int(value))
    raise HwsimError(f"{name}{where}={shown} is not allowed: expected {expected}")


def _as_int_array(x, name: str) -> np.ndarray:
    """``x`` as an int64 array; HwsimError for non-integer data or integers outside int64."""
    arr = np.asarray(x)
    kind = arr.dtype.kind
    if kind == "i":
        return arr.astype(np.int64, copy=False)
    if kind == "u":
        if arr.size and arr.dtype.itemsize >= 8 and arr.max() > np.iinfo(np.int64).max:
            _raise_first(arr, arr > np.iinfo(np.int64).max, name, "an integer that fits int64")
        return arr.astype(np.int64)
    if kind == "O":
        flat = arr.ravel()
        for i, v in enumerate(flat):
            if not _is_int(v):
                raise HwsimError(
                    f"{name} element {v!r} (flat index {i}) is not allowed: expected an integer"
                )
            if not -(1 << 63) <= int(v) < (1 << 63):
                idx = np.unravel_index(i, arr.shape)
                where = f"[{', '.join(map(str, idx))}]" if arr.ndim else ""
                raise HwsimError(
                    f"{name}{where}={int(v)} is not allowed: expected an integer that fits int64"
                )
        return np.array([int(v) for v in flat], dtype=np.int64).reshape(arr.shape)
    if arr.size == 0 and kind in "f":
        return arr.astype(np.int64)
    raise HwsimError(f"{name}.dtype={arr.dtype} is not allowed: expected an integer array")


# ---------------------------------------------------------------------------------------------- weights
def weight_value_range(weight_format: str) -> tuple[int, int]:
    """Smallest and largest weight value of a format.

    Parameters
    ----------
    weight_format : {"int8", "int4", "int2", "ternary", "binary", "pow2"}

    Returns
    -------
    (int, int)
        ``int8``: (-128, 127), ``int4``: (-8, 7), ``int2``: (-2, 1), ``ternary``: (-1, 1),
        ``binary``: (-1, 1) (0 is *not* a binary value), ``pow2``: (-64, 64) (only 0 and powers of two).
        Use :func:`weight_values` for the exact set.
    """
    fmt = _check_format(weight_format)
    if fmt in _INT_FORMATS:
        b = WEIGHT_BITS[fmt]
        return -(1 << (b - 1)), (1 << (b - 1)) - 1
    if fmt in ("ternary", "binary"):
        return -1, 1
    return -(1 << POW2_MAX_SHIFT), 1 << POW2_MAX_SHIFT


def weight_values(weight_format: str) -> np.ndarray:
    """All representable weight values of a format, sorted ascending (``int64``)."""
    fmt = _check_format(weight_format)
    lo, hi = weight_value_range(fmt)
    if fmt in _INT_FORMATS or fmt == "ternary":
        return np.arange(lo, hi + 1, dtype=np.int64)
    if fmt == "binary":
        return np.array([-1, 1], dtype=np.int64)
    mags = [1 << e for e in range(POW2_MAX_SHIFT + 1)]
    return np.array(sorted([0] + mags + [-m for m in mags]), dtype=np.int64)


def _weight_expected(fmt: str) -> str:
    if fmt in _INT_FORMATS:
        lo, hi = weight_value_range(fmt)
        return f"an {fmt} weight value in [{lo}, {hi}]"
    if fmt == "ternary":
        return "a ternary weight value in {-1, 0, +1}"
    if fmt == "binary":
        return "a binary weight value in {-1, +1}"
    return f"a pow2 weight value in {_POW2_VALUES_TEXT}"


def _weight_ok(v: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "binary":
        return (v == 1) | (v == -1)
    if fmt == "pow2":
        m = np.abs(v)  # abs(int64 min) stays negative and is rejected by m >= 1
        return (v == 0) | ((m >= 1) & (m <= (1 << POW2_MAX_SHIFT)) & ((m & (m - 1)) == 0))
    lo, hi = weight_value_range(fmt)
    return (v >= lo) & (v <= hi)


def _check_weight_values(v: np.ndarray, fmt: str, name: str) -> None:
    ok = _weight_ok(v, fmt)
    if not ok.all():
        _raise_first(v, ~ok, name, _weight_expected(fmt))


def decode_weights(codes, weight_format: str) -> np.ndarray:
    """Weight codes to weight values.

    Parameters
    ----------
    codes : array_like of int
        Unsigned codes of ``WEIGHT_BITS[weight_format]`` bits, any shape.
    weight_format : {"int8", "int4", "int2", "ternary", "binary", "pow2"}
        ``int8`` / ``int4`` / ``int2``: two's complement of 8 / 4 / 2 bits. ``ternary``: 2-bit two's
        complement restricted to {-1, 0, +1} (codes 3, 0, 1; code 2 would be -2 and is invalid).
        ``binary``: 1 bit, code 1 -> +1, code 0 -> -1. ``pow2``: 4 bits, bit 3 is the sign and bits 2..0
        an exponent code e; e == 0 is the value 0 whatever the sign bit, e >= 1 is
        ``(-1)**sign * 2**(e-1)``.

    Returns
    -------
    numpy.ndarray of int64
        The values, same shape as ``codes``.

    Raises
    ------
    HwsimError
        A code is outside ``[0, 2**bits - 1]`` or is the invalid ternary code 2.
    """
    fmt = _check_format(weight_format)
    bits = WEIGHT_BITS[fmt]
    c = _as_int_array(codes, "codes")
    bad = (c < 0) | (c > (1 << bits) - 1)
    if bad.any():
        _raise_first(c, bad, "codes", f"an unsigned {bits}-bit {fmt} weight code in [0, {(1 << bits) - 1}]")
    if fmt == "binary":
        return np.where(c == 1, 1, -1).astype(np.int64)
    if fmt == "pow2":
        e = c & 7
        mag = np.where(e == 0, 0, np.left_shift(1, np.maximum(e - 1, 0)))
        return np.where((c >> 3) == 1, -mag, mag).astype(np.int64)
    if fmt == "ternary" and (c == 2).any():
        _raise_first(c, c == 2, "codes",
                     "a ternary weight code 0 (0), 1 (+1) or 3 (-1); code 2 (-2) is invalid")
    return np.where(c >= (1 << (bits - 1)), c - (1 << bits), c).astype(np.int64)


def encode_weights(values, weight_format: str) -> np.ndarray:
    """Weight values to unsigned weight codes (the inverse of :func:`decode_weights`).

    Parameters
    ----------
    values : array_like of int
        Weight values, any shape; each must be representable in ``weight_format``.
    weight_format : {"int8", "int4", "int2", "ternary", "binary", "pow2"}
        See :func:`decode_weights`. A pow2 zero is encoded as code 0 (sign bit clear).

    Returns
    -------
    numpy.ndarray of int64
        Codes in ``[0, 2**WEIGHT_BITS[weight_format] - 1]``, same shape as ``values``.

    Raises
    ------
    HwsimError
        A value is not representable; the message names the index, the value and the allowed set.
    """
    fmt = _check_format(weight_format)
    v = _as_int_array(values, "values")
    _check_weight_values(v, fmt, "values")
    if fmt == "binary":
        return (v > 0).astype(np.int64)
    if fmt == "pow2":
        m = np.abs(v)
        e = np.zeros_like(v)
        for k in range(POW2_MAX_SHIFT + 1):
            e[m == (1 << k)] = k + 1
        return (np.where(v < 0, 8, 0) | e).astype(np.int64)
    return (v & ((1 << WEIGHT_BITS[fmt]) - 1)).astype(np.int64)


def _pow2_int_table() -> np.ndarray:
    """Nearest pow2 magnitude (log domain, ties up, capped at 64) of the integer magnitudes 0..128."""
    table = np.zeros(129, dtype=np.int64)
    for m in range(1, 129):
        lower = 1 << (m.bit_length() - 1)
        q = 2 * lower if m * m >= 2 * lower * lower else lower
        table[m] = min(q, 1 << POW2_MAX_SHIFT)
    return table


_POW2_TABLE = _pow2_int_table()


def quantize_to_format(values, weight_format: str) -> np.ndarray:
    """Map arbitrary numbers to representable weight values (handy for generating test data).

    Parameters
    ----------
    values : array_like of int or float
        Finite numbers, any shape.
    weight_format : {"int8", "int4", "int2", "ternary", "binary", "pow2"}
        ``int8`` / ``int4`` / ``int2``: floats are rounded half-to-even, then clipped to the range.
        ``ternary``: the sign (-1, 0 or +1). ``binary``: the sign with sign(0) = +1.
        ``pow2``: 0 stays 0; otherwise the sign times the power of two nearest to ``|v|`` in the log
        domain (ties, at ``|v| = 2**e * sqrt(2)``, toward the larger magnitude), clipped to [1, 64]; so
        0 < |v| < 1 gives 1 and |v| >= 91 gives 64.

    Returns
    -------
    numpy.ndarray of int64
        Representable values, same shape as ``values``.
    """
    fmt = _check_format(weight_format)
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            _raise_first(arr, ~np.isfinite(arr), "values", "a finite number")
        arr = arr.astype(np.float64)
        if fmt in _INT_FORMATS:
            lo, hi = weight_value_range(fmt)
            return np.clip(np.rint(arr), lo, hi).astype(np.int64)
        if fmt == "ternary":
            return np.sign(arr).astype(np.int64)
        if fmt == "binary":
            return np.where(arr >= 0, 1, -1).astype(np.int64)
        m = np.minimum(np.abs(arr), 128.0)
        _, ex = np.frexp(m)  # m = f * 2**ex, f in [0.5, 1)  =>  floor(log2 m) = ex - 1 for m >= 1
        lower = np.ldexp(1.0, np.maximum(ex - 1, 0))
        mag = np.where(m * m >= 2.0 * lower * lower, 2.0 * lower, lower)
        mag = np.where(m == 0, 0.0, np.minimum(mag, float(1 << POW2_MAX_SHIFT)))
        return (np.sign(arr) * mag).astype(np.int64)
    if arr.dtype.kind == "O":
        arr = np.array([max(-(1 << 62), min(1 << 62, int(v))) if _is_int(v) else v for v in arr.ravel()],
                       dtype=object).reshape(arr.shape)
    elif arr.dtype.kind == "u":
        arr = np.minimum(arr, np.uint64(1 << 62))
    v = _as_int_array(arr, "values")
    if fmt in _INT_FORMATS:
        lo, hi = weight_value_range(fmt)
        return np.clip(v, lo, hi).astype(np.int64)
    if fmt == "ternary":
        return np.sign(v).astype(np.int64)
    if fmt == "binary":
        return np.where(v >= 0, 1, -1).astype(np.int64)
    vc = np.clip(v, -128, 128)
    return (np.sign(vc) * _POW2_TABLE[np.abs(vc)]).astype(np.int64)


# ---------------------------------------------------------------------------------------------- activations
def act_value_range(act_bits: int) -> tuple[int, int]:
    """Smallest and largest activation value: ``(-2**(b-1), 2**(b-1) - 1)``, or ``(-1, 1)`` for b == 1.

    For ``act_bits == 1`` the only values are -1 and +1 (0 is not an activation value).
    """
    b = _check_act_bits(act_bits)
    if b == 1:
        return -1, 1
    return -(1 << (b - 1)), (1 << (b - 1)) - 1


def _act_expected(act_bits: int) -> str:
    if act_bits == 1:
        return "an activation value in {-1, +1} (act_bits=1)"
    lo, hi = act_value_range(act_bits)
    return f"an activation value in [{lo}, {hi}] (act_bits={act_bits})"


def _check_act_values(v: np.ndarray, act_bits: int, name: str) -> None:
    if act_bits == 1:
        bad = (v != 1) & (v != -1)
    else:
        lo, hi = act_value_range(act_bits)
        bad = (v < lo) | (v > hi)
    if bad.any():
        _raise_first(v, bad, name, _act_expected(act_bits))


def encode_acts(values, act_bits: int) -> np.ndarray:
    """Activation values to unsigned codes of ``act_bits`` bits.

    Parameters
    ----------
    values : array_like of int
        Values in ``[-2**(act_bits-1), 2**(act_bits-1) - 1]``; for ``act_bits == 1`` only -1 and +1.
    act_bits : int
        1..32. Two's complement, except ``act_bits == 1``: code 1 is +1 and code 0 is -1.

    Returns
    -------
    numpy.ndarray of int64
        Codes in ``[0, 2**act_bits - 1]``, same shape as ``values``.
    """
    b = _check_act_bits(act_bits)
    v = _as_int_array(values, "values")
    _check_act_values(v, b, "values")
    if b == 1:
        return (v > 0).astype(np.int64)
    return (v & ((1 << b) - 1)).astype(np.int64)


def decode_acts(codes, act_bits: int) -> np.ndarray:
    """Unsigned activation codes of ``act_bits`` bits to values (inverse of :func:`encode_acts`).

    Returns
    -------
    numpy.ndarray of int64
        Two's complement values, or -1 / +1 for ``act_bits == 1``.
    """
    b = _check_act_bits(act_bits)
    c = _as_int_array(codes, "codes")
    bad = (c < 0) | (c > (1 << b) - 1)
    if bad.any():
        _raise_first(c, bad, "codes", f"an unsigned {b}-bit activation code in [0, {(1 << b) - 1}]")
    if b == 1:
        return np.where(c == 1, 1, -1).astype(np.int64)
    return np.where(c >= (1 << (b - 1)), c - (1 << b), c).astype(np.int64)


# ---------------------------------------------------------------------------------------------- GEMM
def _check_gemm_operands(a, w, fmt: str, act_bits: int) -> tuple[np.ndarray, np.ndarray]:
    a = _as_int_array(a, "a")
    w = _as_int_array(w, "w")
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise HwsimError(
            f"a.shape={a.shape} and w.shape={w.shape} are not allowed: expected a of shape [M, K] and w of "
            "shape [K, N] with the same K"
        )
    _check_act_values(a, act_bits, "a")
    _check_weight_values(w, fmt, "w")
    return a, w


def _sequential_saturate(a: np.ndarray, w: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """acc = clip(acc + a[:, k] (x) w[k, :]) for k = 0..K-1, vectorized over the outputs."""
    at = np.ascontiguousarray(a.T)
    acc = np.zeros((a.shape[0], w.shape[1]), dtype=np.int64)
    for k in range(a.shape[1]):
        acc += np.multiply.outer(at[k], w[k])
        np.clip(acc, lo, hi, out=acc)
    return acc


def _accumulate(a: np.ndarray, w: np.ndarray, acc_bits: int, overflow: str) -> np.ndarray:
    """Accumulate validated int64 operands (see :func:`accumulate`)."""
    m, k = a.shape
    n = w.shape[1]
    if m == 0 or n == 0 or k == 0:
        return np.zeros((m, n), dtype=np.int64)
    lo = -(1 << (acc_bits - 1))
    hi = (1 << (acc_bits - 1)) - 1
    # Operands are range-checked, so np.abs cannot overflow here; this bounds every |partial sum|.
    bound = k * int(np.abs(a).max()) * int(np.abs(w).max())
    need_bound = overflow == "saturate" and bound > hi
    s = None
    if bound < _FLOAT_EXACT_LIMIT:
        # Every partial sum of any summation order is an integer of magnitude < 2**53: float64 is exact.
        af = a.astype(np.float64)
        wf = w.astype(np.float64)
        t = (af @ wf).astype(np.int64)
        if need_bound:
            s = (np.abs(af) @ np.abs(wf)).astype(np.int64)
    else:
        t = a @ w  # int64; may wrap modulo 2**64, which is harmless for overflow="wrap"
        if need_bound and bound < _INT_BOUND_LIMIT:
            s = np.abs(a) @ np.abs(w)
    if overflow == "wrap":
        return ((t - lo) & ((1 << acc_bits) - 1)) + lo
    if not need_bound:
        return t
    if s is None:
        return _sequential_saturate(a, w, lo, hi)
    # s = P + Q and t = P - Q, with P (Q) the sum of the positive (magnitudes of the negative) products;
    # every partial sum lies in [-Q, P], so outputs with P <= hi and Q <= -lo never saturate.
    pos = (s + t) // 2
    neg = (s - t) // 2
    unsafe = (pos > hi) | (neg > -lo)
    if not unsafe.any():
        return t
    rows = np.flatnonzero(unsafe.any(axis=1))
    cols = np.flatnonzero(unsafe.any(axis=0))
    out = t.copy()
    out[np.ix_(rows, cols)] = _sequential_saturate(a[rows], w[:, cols], lo, hi)
    return out


def accumulate(a, w, cfg) -> np.ndarray:
    """Accumulator contents after a quantized GEMM, bit-exact.

    Parameters
    ----------
    a : array_like of int, shape (M, K)
        Activation values: in ``[-2**(act_bits-1), 2**(act_bits-1) - 1]``, or in {-1, +1} when
        ``cfg.act_bits == 1``.
    w : array_like of int, shape (K, N)
        Weight values (decoded, see :func:`decode_weights`), representable in ``cfg.weight_format``.
    cfg : MacArrayConfig-like
        Uses ``weight_format``, ``act_bits`` (1..32), ``acc_bits`` (2..48) and ``overflow``.

    Returns
    -------
    numpy.ndarray of int64, shape (M, N)
        For every output, a signed ``acc_bits`` register starts at 0 and for k = 0..K-1 in this order
        ``acc = ovf(acc + a[m, k] * w[k, n])`` with exact products; ``ovf`` saturates to
        ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]`` (``overflow="saturate"``; order-dependent) or wraps
        two's complement (``overflow="wrap"``; equal to the exact sum reduced modulo ``2**acc_bits``).

    Raises
    ------
    HwsimError
        Bad configuration field, shapes that do not chain, an activation outside the ``act_bits`` range
        or a weight not representable in the format (the message names ``a`` / ``w``, the index, the value
        and the allowed range).

    Notes
    -----
    Wrap mode is an exact integer product reduced modulo ``2**acc_bits``. Saturate mode bounds the partial
    sums of every output (by the sums of its positive and of its negative products); outputs that cannot
    saturate take the plain product, the others are accumulated sequentially over K. Products run in
    float64 BLAS when ``K * max|a| * max|w| < 2**53`` (then exact), else in int64.
    """
    fmt, act_bits, acc_bits, overflow = _check_cfg(cfg)
    a, w = _check_gemm_operands(a, w, fmt, act_bits)
    return _accumulate(a, w, acc_bits, overflow)


def _round_shift(x: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    if shift == 0:
        return x
    q = x >> shift  # floor division by 2**shift
    if rounding == "half_up":
        return (x + (1 << (shift - 1))) >> shift
    r = x & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    up = (r > half) | ((r == half) & ((q & 1) == 1))
    return q + up.astype(np.int64)


def _requantize(acc: np.ndarray, act_bits: int, rounding: str, shift: int, relu: bool) -> np.ndarray:
    if act_bits == 1:
        return np.where(acc >= 0, 1, -1).astype(np.int64)
    x = np.maximum(acc, 0) if relu else acc
    y = _round_shift(x, shift, rounding)
    lo, hi = act_value_range(act_bits)
    return np.clip(y, lo, hi).astype(np.int64)


def _check_requant_args(cfg, shift, relu) -> tuple[int, int, str, int, bool]:
    _, act_bits, acc_bits, _ = _check_cfg(cfg)
    rounding = _check_rounding(cfg)
    shift = _check_int_arg("shift", shift, 0, acc_bits - 1)
    if not isinstance(relu, bool | np.bool_):
        raise HwsimError(f"relu={relu!r} is not allowed: expected True or False")
    return act_bits, acc_bits, rounding, shift, bool(relu)


def requantize(acc, cfg, shift: int = 0, relu: bool = False) -> np.ndarray:
    """Requantize accumulator values to activations of ``cfg.act_bits`` bits.

    Parameters
    ----------
    acc : array_like of int
        Accumulator values, any shape, in the signed ``cfg.acc_bits`` range.
    cfg : MacArrayConfig-like
        Uses ``act_bits``, ``acc_bits`` and ``rounding`` (the other arithmetic fields are validated).
    shift : int
        Right shift ``s``, ``0 <= s < acc_bits`` (validated even when ``act_bits == 1``).
    relu : bool
        Apply ``max(x, 0)`` before shifting.

    Returns
    -------
    numpy.ndarray of int64
        For ``act_bits >= 2``: ``x = max(acc, 0)`` if ``relu`` else ``acc``; then ``x / 2**s`` rounded to
        an integer, ``rounding="half_up"``: ``floor((x + 2**(s-1)) / 2**s)`` (ties toward +infinity,
        so -2.5 -> -2), ``rounding="half_even"``: ties to the even neighbour (2.5 -> 2, -2.5 -> -2,
        3.5 -> 4); ``s == 0`` is the identity; then clamped (saturated) to
        ``[-2**(act_bits-1), 2**(act_bits-1) - 1]``.
        For ``act_bits == 1`` (binary): +1 where ``acc >= 0`` else -1; ``shift`` and ``relu`` are ignored.
    """
    act_bits, acc_bits, rounding, shift, relu = _check_requant_args(cfg, shift, relu)
    x = _as_int_array(acc, "acc")
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    bad = (x < lo) | (x > hi)
    if bad.any():
        _raise_first(x, bad, "acc", f"a signed {acc_bits}-bit accumulator value in [{lo}, {hi}]")
    return _requantize(x, act_bits, rounding, shift, relu)


def gemm(a, w, cfg, shift: int = 0, relu: bool = False) -> np.ndarray:
    """Quantized GEMM: ``requantize(accumulate(a, w, cfg), cfg, shift, relu)``.

    Parameters
    ----------
    a : array_like of int, shape (M, K)
        Activation values (see :func:`accumulate`).
    w : array_like of int, shape (K, N)
        Weight values.
    cfg : MacArrayConfig-like
    shift, relu
        See :func:`requantize`.

    Returns
    -------
    numpy.ndarray of int64, shape (M, N)
        Output activations of ``cfg.act_bits`` bits.
    """
    fmt, act_bits, acc_bits, overflow = _check_cfg(cfg)
    act_bits, acc_bits, rounding, shift, relu = _check_requant_args(cfg, shift, relu)
    a, w = _check_gemm_operands(a, w, fmt, act_bits)
    return _requantize(_accumulate(a, w, acc_bits, overflow), act_bits, rounding, shift, relu)


# ---------------------------------------------------------------------------------------------- zero points, f32
class FloatRequant:
    """The ONNX Runtime requantizer of one GEMM: per-column float32 scales, an output zero point, a clamp.

    ``out = clip(rint_even(f32(f32(acc) * scale[n])) + zero_point, lo, hi)``: the accumulator (bias and
    zero-point corrections included) rounded to float32, times the column's float32 scale with one float32
    rounding, rounded to an integer half-to-even, plus the zero point, saturated to ``[lo, hi]`` (a fused
    ReLU raises ``lo`` to the zero point). This is MLAS's ``MlasRequantizeOutput`` (the QLinearConv,
    QLinearMatMul and QGemm kernels of ONNX Runtime) with the scale formed as ONNX Runtime forms it,
    ``f32(f32(x_scale * w_scale[n]) / y_scale)`` (see :mod:`hwsim.models.onnx_import`).

    Attributes: ``scale`` (float32, (N,)), ``zero_point`` (int), ``lo``, ``hi`` (ints), and, for weights
    with zero points, ``row_zp`` (int64 (N,): the correction ``-row_zp[n] * sum_k a[m, k]``) or None.
    """

    def __init__(self, scale, zero_point: int, lo: int, hi: int, row_zp=None):
        self.scale = np.asarray(scale, dtype=np.float32).ravel()
        if np.any(~np.isfinite(self.scale)) or np.any(self.scale <= 0) or np.any(self.scale < np.float32(2.0**-126)):
            raise HwsimError(f"scale {self.scale.tolist()[:4]} is not allowed: expected positive normal float32 "
                             "scales")
        self.zero_point, self.lo, self.hi = int(zero_point), int(lo), int(hi)
        if not self.lo <= self.zero_point <= self.hi:
            raise HwsimError(f"zero_point={self.zero_point} is not allowed: expected a value in [{self.lo}, "
                             f"{self.hi}]")
        self.row_zp = None if row_zp is None else np.asarray(row_zp, dtype=np.int64).ravel()

    def columns(self, cols) -> FloatRequant:
        """The requantizer of a subset of the columns."""
        cols = list(cols)
        return FloatRequant(self.scale[cols] if self.scale.size > 1 else self.scale, self.zero_point, self.lo,
                            self.hi, None if self.row_zp is None else self.row_zp[cols])

    def scales_for(self, n: int) -> np.ndarray:
        return np.broadcast_to(self.scale, (n,)) if self.scale.size == 1 else self.scale


def requantize_f32(acc, fq: FloatRequant) -> np.ndarray:
    """ONNX Runtime's requantization of int64 accumulators ``acc`` (M, N) (see :class:`FloatRequant`),
    evaluated with NumPy's IEEE float32 arithmetic (round to nearest even at every step).

    The int -> float32 conversion is exact below 2**24 and rounds to nearest even above; ``|acc|`` must stay
    below 2**62. Saturation happens after the zero point is added, as in MLAS (``lo - zp <= r <= hi - zp``
    before adding is the same clamp)."""
    acc = np.asarray(acc, dtype=np.int64)
    s = fq.scales_for(acc.shape[-1]).astype(np.float32)
    f = acc.astype(np.float32) * s  # float32 * float32 -> float32, one rounding
    r = np.rint(f.astype(np.float64))  # exact: f is a float32; rint rounds half to even
    r = np.clip(r, fq.lo - fq.zero_point, fq.hi - fq.zero_point)
    return r.astype(np.int64) + fq.zero_point


def _rne_shift(m: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """``m / 2**sh`` rounded half to even (m >= 0 int64, sh >= 0 int64, elementwise)."""
    sh = np.minimum(sh, 62)
    q = m >> sh
    r = m - (q << sh)
    half = np.where(sh > 0, np.left_shift(np.int64(1), np.maximum(sh - 1, 0)), 0)
    up = (sh > 0) & ((r > half) | ((r == half) & ((q & 1) == 1)))
    return q + up


def requantize_f32_int(acc, fq: FloatRequant) -> np.ndarray:
    """The same function as :func:`requantize_f32` with integer operations only (the RTL's algorithm).

    Per output, with ``a = |acc|`` of bit length ``n`` and the scale ``ms * 2**es`` (``ms`` its 24-bit
    significand with the hidden bit, ``2**23 <= ms < 2**24``):

    1. float32(acc): ``ma = rne(a / 2**d)``, ``d = max(n - 24, 0)`` (``ma <= 2**24``, exponent ``d``);
    2. the product ``p = ma * ms`` (<= 48 bits) rounded to 24 significant bits: ``mp = rne(p / 2**t)``,
       ``t = max(bitlen(p) - 24, 0)``, exponent ``e = d + es + t``;
    3. to an integer half to even: ``q = rne(mp / 2**-e)`` when ``e < 0``, else ``mp * 2**e`` (saturated;
       an exact zero stays 0 whatever the scale);
    4. sign, plus the zero point, clamped to ``[lo, hi]``.

    A mantissa that rounds up to ``2**24`` in step 1 or 2 is still exact (it is a power of two), so no
    renormalisation is needed.
    """
    acc = np.asarray(acc, dtype=np.int64)
    s = fq.scales_for(acc.shape[-1]).astype(np.float32)
    bits = s.view(np.uint32).astype(np.int64)
    ms = (bits & 0x7FFFFF) | 0x800000
    es = ((bits >> 23) & 0xFF) - 127 - 23
    a = np.abs(acc)
    n = np.where(a > 0, np.floor(np.log2(np.maximum(a, 1).astype(np.float64))).astype(np.int64) + 1, 0)
    # log2 of a float64 can be off by one just below a power of two: fix n so that 2**(n-1) <= a < 2**n
    n = np.where((a > 0) & (np.left_shift(np.int64(1), np.maximum(n - 1, 0)) > a), n - 1, n)
    n = np.where((a > 0) & (np.left_shift(np.int64(1), np.minimum(n, 62)) <= a), n + 1, n)
    d = np.maximum(n - 24, 0)
    ma = _rne_shift(a, d)
    p = ma * ms
    pn = np.where(p > 0, np.floor(np.log2(np.maximum(p, 1).astype(np.float64))).astype(np.int64) + 1, 0)
    pn = np.where((p > 0) & (np.left_shift(np.int64(1), np.maximum(pn - 1, 0)) > p), pn - 1, pn)
    pn = np.where((p > 0) & (np.left_shift(np.int64(1), np.minimum(pn, 62)) <= p), pn + 1, pn)
    t = np.maximum(pn - 24, 0)
    mp = _rne_shift(p, t)
    e = d + es + t
    big = 1 << 40  # any magnitude above the clamp range saturates
    q = np.where(e < 0, _rne_shift(mp, np.minimum(-e, 62)),
                 np.where(e > 16, np.where(mp == 0, 0, big), mp << np.clip(e, 0, 16)))  # zero stays zero
    q = np.minimum(q, big)
    r = np.where(acc < 0, -q, q)
    return np.clip(r + fq.zero_point, fq.lo, fq.hi).astype(np.int64)


def zero_point_correction(w, in_zp: int, w_zp=None) -> np.ndarray:
    """The per-column constant that folds the zero points out of ``sum_k (a - in_zp)(w - w_zp)``.

    ``sum_k (a - zx)(w - zw) = sum_k a w - zx * sum_k w[k, n] - zw[n] * sum_k a[m, k] + K zx zw[n]``: the
    array multiplies the plain integers ``a`` and ``w``, this function returns the column constant
    ``-zx * sum_k w[k, n] + K * zx * zw[n]`` (int64 (N,)) and the row term ``-zw[n] * sum_k a[m, k]`` is
    :class:`FloatRequant`'s ``row_zp``.
    """
    w = np.asarray(w, dtype=np.int64)
    k = w.shape[0]
    corr = -int(in_zp) * w.sum(axis=0)
    if w_zp is not None:
        corr = corr + k * int(in_zp) * np.asarray(w_zp, dtype=np.int64)
    return corr


# ---------------------------------------------------------------------------------------------- convolution
def _normalize_padding(padding) -> tuple[int, int, int, int]:
    if _is_int(padding):
        p = _check_int_arg("padding", padding, 0)
        return p, p, p, p
    if (isinstance(padding, tuple | list) and len(padding) == 4
            and all(_is_int(p) and p >= 0 for p in padding)):
        return tuple(int(p) for p in padding)
    raise HwsimError(
        f"padding={padding!r} is not allowed: expected an integer >= 0 or a tuple (top, bottom, left, right) "
        "of integers >= 0"
    )


def conv_output_size(size: int, kernel: int, stride: int = 1, pad_before: int = 0, pad_after: int = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution along one axis.

    ``floor((size + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride) + 1``; may be <= 0
    (callers raise).
    """
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def _conv_geometry(h, w, kh, kw, stride, padding, dilation):
    kh = _check_int_arg("kh", kh, 1)
    kw = _check_int_arg("kw", kw, 1)
    stride = _check_int_arg("stride", stride, 1)
    dilation = _check_int_arg("dilation", dilation, 1)
    pads = _normalize_padding(padding)
    oh = conv_output_size(h, kh, stride, pads[0], pads[1], dilation)
    ow = conv_output_size(w, kw, stride, pads[2], pads[3], dilation)
    if oh <= 0 or ow <= 0:
        raise HwsimError(
            f"output size {oh}x{ow} is not allowed: expected at least 1x1 (input {h}x{w}, kernel {kh}x{kw}, "
            f"stride {stride}, padding {pads}, dilation {dilation})"
        )
    return kh, kw, stride, dilation, pads, oh, ow


def _im2col_batch(x: np.ndarray, kh, kw, stride, pads, dilation, oh, ow) -> np.ndarray:
    """x (N, C, H, W) -> (N*OH*OW, C*kh*kw); rows (n, oh, ow), columns (c, i, j)."""
    nb, c, h, w = x.shape
    pt, pb, pl, pr = pads
    xp = np.zeros((nb, c, h + pt + pb, w + pl + pr), dtype=x.dtype)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    cols = np.empty((nb, oh, ow, c, kh, kw), dtype=x.dtype)
    for i in range(kh):
        r0 = i * dilation
        for j in range(kw):
            c0 = j * dilation
            patch = xp[:, :, r0:r0 + stride * (oh - 1) + 1:stride, c0:c0 + stride * (ow - 1) + 1:stride]
            cols[:, :, :, :, i, j] = patch.transpose(0, 2, 3, 1)
    return cols.reshape(nb * oh * ow, c * kh * kw)


def im2col(x, kh: int, kw: int, stride: int = 1, padding=0, dilation: int = 1) -> np.ndarray:
    """Unfold an image into the activation matrix of a convolution GEMM.

    Parameters
    ----------
    x : array_like, shape (C, H, W)
        One image (the dtype is kept; the reference passes int64 values).
    kh, kw : int
        Kernel height and width (>= 1).
    stride, dilation : int
        >= 1, the same along both axes.
    padding : int or tuple of 4 ints
        Zero padding, either the same on all sides or ``(top, bottom, left, right)``. Zero is not a valid
        activation when ``act_bits == 1``: binary convolutions must use ``padding=0`` (:func:`conv2d`
        enforces it) or handle the border themselves.

    Returns
    -------
    numpy.ndarray, shape (OH*OW, C*kh*kw)
        Row ``oh*OW + ow`` holds the receptive field of output ``(oh, ow)``; column ``(c*kh + i)*kw + j``
        holds ``x_padded[c, oh*stride + i*dilation, ow*stride + j*dilation]``, matching
        ``weight.reshape(O, -1)``. ``OH = floor((H + pad_top + pad_bottom - dilation*(kh-1) - 1) / stride)
        + 1`` (likewise OW).

    Raises
    ------
    HwsimError
        ``x`` is not 3-D, a parameter is out of range or the output would be empty.
    """
    arr = np.asarray(x)
    if arr.ndim != 3:
        raise HwsimError(f"x.shape={arr.shape} is not allowed: expected (C, H, W)")
    kh, kw, stride, dilation, pads, oh, ow = _conv_geometry(
        arr.shape[1], arr.shape[2], kh, kw, stride, padding, dilation)
    return _im2col_batch(arr[None], kh, kw, stride, pads, dilation, oh, ow)


def _conv_setup(x, w, stride, padding, dilation, groups):
    x = _as_int_array(x, "x")
    w = _as_int_array(w, "w")
    if x.ndim not in (3, 4):
        raise HwsimError(f"x.shape={x.shape} is not allowed: expected (C, H, W) or (N, C, H, W)")
    batched = x.ndim == 4
    x4 = x if batched else x[None]
    c = x4.shape[1]
    if w.ndim != 4:
        raise HwsimError(f"w.shape={w.shape} is not allowed: expected (O, C/groups, kh, kw)")
    o = w.shape[0]
    groups = _check_int_arg("groups", groups, 1)
    if c % groups or o % groups:
        raise HwsimError(
            f"groups={groups} is not allowed: expected a divisor of the input channels ({c}) and of the "
            f"output channels ({o})"
        )
    if w.shape[1] != c // groups:
        raise HwsimError(
            f"w.shape={w.shape} is not allowed: expected (O, C/groups, kh, kw) with C/groups = {c // groups} "
            f"(C={c}, groups={groups})"
        )
    kh, kw, stride, dilation, pads, oh, ow = _conv_geometry(
        x4.shape[2], x4.shape[3], w.shape[2], w.shape[3], stride, padding, dilation)
    return x4, w, batched, groups, kh, kw, stride, dilation, pads, oh, ow


def _gemms(x4, w, groups, kh, kw, stride, dilation, pads, oh, ow):
    cols = _im2col_batch(x4, kh, kw, stride, pads, dilation, oh, ow)
    cg = x4.shape[1] // groups
    og = w.shape[0] // groups
    kg = cg * kh * kw
    out = []
    for g in range(groups):
        a_g = np.ascontiguousarray(cols[:, g * kg:(g + 1) * kg])
        w_g = np.ascontiguousarray(w[g * og:(g + 1) * og].reshape(og, -1).T)
        out.append((a_g, w_g))
    return out


def conv2d_as_gemms(x, w, stride: int = 1, padding=0, dilation: int = 1,
                    groups: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """Lower a (grouped) convolution to one GEMM per group, exactly as :func:`conv2d` does.

    Parameters
    ----------
    x : array_like of int, shape (C, H, W) or (N, C, H, W)
    w : array_like of int, shape (O, C/groups, kh, kw)
    stride, padding, dilation
        See :func:`im2col`.
    groups : int
        Divides C and O. Depthwise convolution is ``groups == C == O``.

    Returns
    -------
    list of (A_g, W_g)
        ``A_g`` (int64, shape (N*OH*OW, C/groups*kh*kw)): the im2col rows of the channels of group g,
        images stacked in order (rows ``(n, oh, ow)``). ``W_g`` (int64, shape (C/groups*kh*kw, O/groups)):
        ``w[g*O/groups:(g+1)*O/groups].reshape(O/groups, -1).T``. The output channels of group g are
        ``A_g @ W_g`` reshaped to (N, OH, OW, O/groups).

    Values are not range-checked here (no configuration is involved).
    """
    x4, w, _, groups, kh, kw, stride, dilation, pads, oh, ow = _conv_setup(x, w, stride, padding, dilation,
                                                                          groups)
    return _gemms(x4, w, groups, kh, kw, stride, dilation, pads, oh, ow)


def conv2d(x, w, cfg, stride: int = 1, padding=0, dilation: int = 1, groups: int = 1, shift: int = 0,
           relu: bool = False) -> np.ndarray:
    """Quantized 2-D convolution (cross-correlation, like PyTorch), bit-exact.

    Parameters
    ----------
    x : array_like of int, shape (C, H, W) or (N, C, H, W)
        Activation values (range as in :func:`accumulate`).
    w : array_like of int, shape (O, C/groups, kh, kw)
        Weight values representable in ``cfg.weight_format``.
    cfg : MacArrayConfig-like
    stride, padding, dilation
        See :func:`im2col`. ``padding`` must be 0 when ``cfg.act_bits == 1`` (zero is not a +-1 value).
    groups : int
        Divides C and O; depthwise is ``groups == C == O``.
    shift, relu
        See :func:`requantize`.

    Returns
    -------
    numpy.ndarray of int64, shape (O, OH, OW) or (N, O, OH, OW)
        Each group g is ``gemm(A_g, W_g, cfg, shift, relu)`` with the operands of
        :func:`conv2d_as_gemms`; the reduction order of one output is (c, i, j) over the group's input
        channels c and kernel positions (i, j), padded positions contributing a zero product.
    """
    fmt, act_bits, acc_bits, overflow = _check_cfg(cfg)
    act_bits, acc_bits, rounding, shift, relu = _check_requant_args(cfg, shift, relu)
    x4, w, batched, groups, kh, kw, stride, dilation, pads, oh, ow = _conv_setup(
        x, w, stride, padding, dilation, groups)
    if act_bits == 1 and any(pads):
        raise HwsimError(
            f"padding={padding!r} is not allowed with act_bits=1: zero padding is not a +-1 activation; "
            "expected padding=0"
        )
    _check_act_values(x4 if batched else x4[0], act_bits, "x")
    _check_weight_values(w, fmt, "w")
    nb = x4.shape[0]
    og = w.shape[0] // groups
    outs = []
    for a_g, w_g in _gemms(x4, w, groups, kh, kw, stride, dilation, pads, oh, ow):
        y = _requantize(_accumulate(a_g, w_g, acc_bits, overflow), act_bits, rounding, shift, relu)
        outs.append(y.reshape(nb, oh, ow, og).transpose(0, 3, 1, 2))
    out = np.ascontiguousarray(np.concatenate(outs, axis=1))
    return out if batched else out[0]
