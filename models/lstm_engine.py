"""Bit-exact reference of the tensor-decomposed LSTM engine: fixed-point TT/HT stages, gate nonlinearities
and the LSTM cell update, plus the float cells they approximate.

A configuration is taken by duck typing (any object with ``data_bits``, ``acc_bits``, ``frac_bits``,
``overflow``, ``rounding``, ``nonlinearity`` and ``lut_bits``, such as
``hwsim.lstm_engine.LstmEngineConfig``); nothing from ``hwsim`` but the exception type is imported.

Number formats
--------------
* Data (inputs, factor entries, intermediates, gate pre-activations, cell and hidden state) are signed
  ``data_bits`` two's complement integers. A value ``v`` with ``e`` fractional bits means ``v * 2**-e``.
  The gate domain (pre-activations, ``c``, ``h``, nonlinearity outputs) has ``F = frac_bits`` fractional
  bits.
* Every contraction stage accumulates in a signed ``acc_bits`` register (saturate or wrap after every
  addition) and requantizes with its own power-of-two shift, rounding and clamping to ``data_bits``
  (:func:`hwsim.models.tensor_formats.stage_fixed`). The shift of the last stage puts ``W x`` in ``Q(F)``.

Nonlinearities (exact integer definitions; ``x`` in ``Q(F)``, result in ``Q(F)``, clamped to data range)
----------------------------------------------------------------------------------------------------
* ``pwl`` sigmoid is PLAN (Amin, Curtis & Hayes-Gill, IEE Proc. 1997), slopes are shifts:
  with ``a = |x|``: ``a >= 5*2**F``: ``2**F``; ``a >= (19*2**F) >> 3`` (2.375): ``(a >> 5) + c1``;
  ``a >= 2**F``: ``(a >> 3) + c2``; else ``(a >> 2) + c3``, where ``c1, c2, c3`` are
  ``floor(0.84375 * 2**F + 0.5)``, ``floor(0.625 * 2**F + 0.5)``, ``floor(0.5 * 2**F + 0.5)`` and
  ``>>`` is an arithmetic (floor) shift. For ``x < 0`` the result is ``2**F - y``.
  ``pwl`` tanh is ``2 * sigmoid_pwl(2x) - 2**F`` (``2x`` in int64, not clamped).
* ``lut`` uses ``2**lut_bits`` entries over the whole input range: ``i = (x + 2**(data_bits-1)) >>
  (data_bits - lut_bits)`` and entry ``i`` is ``floor(f(c_i) * 2**F + 0.5)`` at the centre
  ``c_i = ((i << s) + ((1 << s) >> 1) - 2**(data_bits-1)) / 2**F`` of its segment (``s = data_bits -
  lut_bits``), clamped to the data range (:func:`lut_table`).

LSTM cell (gates ``i, f, g, o`` in this order along the 4H outputs of the input layer)
-------------------------------------------------------------------------------------
``zx = W x`` (engine, ``Q(F)``); ``zh = clamp(round_shift(acc(U h), e_u))`` with ``acc`` the same
``acc_bits`` register in hidden-index order and ``e_u`` the fractional bits of ``U``;
``z = clamp(zx + zh + b)``; ``i, f, o = sigma(z)``, ``g = tanh(z)``;
``c' = clamp(round_shift(f*c + i*g, F))``; ``h' = clamp(round_shift(o * tanh(c'), F))`` (the sums of
products are exact in int64). ``round_shift`` rounds per ``rounding``; ``clamp`` is to ``data_bits``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from hwsim.models import tensor_formats as tf
from hwsim.models.errors import HwsimError
from hwsim.models.tables import lut_table

__all__ = [
    "FixedLstm",
    "accumulate_dense",
    "cell_fixed",
    "cell_float",
    "data_range",
    "lut_table",
    "quantize",
    "quantize_lstm",
    "sigmoid_fixed",
    "tanh_fixed",
    "wx_fixed",
]


def data_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _clamp(x, bits: int) -> np.ndarray:
    lo, hi = data_range(bits)
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def quantize(x, frac: int, bits: int) -> np.ndarray:
    """``clamp(rint(x * 2**frac))`` to signed ``bits`` (ties to even, NumPy's ``rint``)."""
    return _clamp(np.rint(np.asarray(x, dtype=np.float64) * 2.0 ** frac).astype(np.int64), bits)


# ---------------------------------------------------------------------------------------------- nonlinearities
def _plan_sigmoid(x: np.ndarray, F: int) -> np.ndarray:
    a = np.abs(x)
    one = np.int64(1 << F)
    c1, c2, c3 = (np.int64(math.floor(c * (1 << F) + 0.5)) for c in (0.84375, 0.625, 0.5))
    y = np.where(a >= 5 * one, one,
                 np.where(a >= (19 * one) >> 3, (a >> 5) + c1,
                          np.where(a >= one, (a >> 3) + c2, (a >> 2) + c3)))
    return np.where(x < 0, one - y, y)


def _lut_index(x: np.ndarray, cfg) -> np.ndarray:
    return (x + np.int64(1 << (cfg.data_bits - 1))) >> (cfg.data_bits - cfg.lut_bits)


def sigmoid_fixed(x, cfg) -> np.ndarray:
    """Fixed-point sigmoid of ``Q(F)`` data (``pwl`` or ``lut`` per ``cfg.nonlinearity``)."""
    x = np.asarray(x, dtype=np.int64)
    if cfg.nonlinearity == "lut":
        return lut_table("sigmoid", cfg)[_lut_index(x, cfg)]
    return _clamp(_plan_sigmoid(x, cfg.frac_bits), cfg.data_bits)


def tanh_fixed(x, cfg) -> np.ndarray:
    """Fixed-point tanh of ``Q(F)`` data (``pwl``: ``2 sigma(2x) - 1``; ``lut``: its own table)."""
    x = np.asarray(x, dtype=np.int64)
    if cfg.nonlinearity == "lut":
        return lut_table("tanh", cfg)[_lut_index(x, cfg)]
    return _clamp(2 * _plan_sigmoid(2 * x, cfg.frac_bits) - np.int64(1 << cfg.frac_bits), cfg.data_bits)


# ---------------------------------------------------------------------------------------------- cells
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def cell_float(zx: np.ndarray, U: np.ndarray, b: np.ndarray, h: np.ndarray, c: np.ndarray):
    """One float LSTM step from the input pre-activations ``zx`` (4H: gates i, f, g, o); returns (h', c')."""
    z = zx + U @ h + b
    H = h.shape[0]
    i, f, g, o = _sigmoid(z[:H]), _sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), _sigmoid(z[3 * H:])
    c2 = f * c + i * g
    return o * np.tanh(c2), c2


def accumulate_dense(U: np.ndarray, h: np.ndarray, acc_bits: int, overflow: str) -> np.ndarray:
    """``U @ h`` in a signed ``acc_bits`` register per row, saturating or wrapping after every addition
    in column order (int64 in, int64 out)."""
    U, h = np.asarray(U, dtype=np.int64), np.asarray(h, dtype=np.int64)
    amin, amax = data_range(acc_bits)
    if overflow == "wrap":
        return tf._wrap(U @ h, acc_bits)
    if int(np.abs(U).max(initial=0)) * int(np.abs(h).max(initial=0)) * U.shape[1] <= amax:
        return U @ h
    acc = np.zeros(U.shape[0], dtype=np.int64)
    for j in range(U.shape[1]):
        acc = np.clip(acc + U[:, j] * h[j], amin, amax)
    return acc


def cell_fixed(zx, U, b, h, c, e_u: int, cfg):
    """One bit-exact LSTM step (module docstring); all arguments int64, returns ``(h', c')``."""
    bits, F = cfg.data_bits, cfg.frac_bits
    zx = np.asarray(zx, dtype=np.int64)
    H = len(h)
    zh = _clamp(tf.round_shift(accumulate_dense(U, h, cfg.acc_bits, cfg.overflow), e_u, cfg.rounding), bits)
    z = _clamp(zx + zh + np.asarray(b, dtype=np.int64), bits)
    i, f = sigmoid_fixed(z[:H], cfg), sigmoid_fixed(z[H:2 * H], cfg)
    g, o = tanh_fixed(z[2 * H:3 * H], cfg), sigmoid_fixed(z[3 * H:], cfg)
    c2 = _clamp(tf.round_shift(f * np.asarray(c, dtype=np.int64) + i * g, F, cfg.rounding), bits)
    h2 = _clamp(tf.round_shift(o * tanh_fixed(c2, cfg), F, cfg.rounding), bits)
    return h2, c2


# ---------------------------------------------------------------------------------------------- quantized LSTM
@dataclass(frozen=True)
class FixedLstm:
    """A quantized TT/HT-LSTM: integer factors (``fmt`` with int64 factor data), per-stage shifts in stage
    order ``order``, input fractional bits ``x_frac``, integer ``U`` with ``e_u`` fractional bits and
    ``b`` in ``Q(F)``."""

    fmt: object
    order: tuple[int, ...]
    shifts: tuple[int, ...]
    x_frac: int
    U: np.ndarray = field(repr=False)
    e_u: int = 0
    b: np.ndarray = field(repr=False, default=None)
    factor_fracs: tuple[int, ...] = ()

    @property
    def hidden(self) -> int:
        return self.U.shape[1]


def wx_fixed(q: FixedLstm, x_int, cfg) -> np.ndarray:
    """The engine's input layer: fixed-point ``W x`` in ``Q(F)`` (``x_int`` in ``Q(x_frac)``)."""
    return tf.matvec_fixed(q.fmt, x_int, q.shifts, data_bits=cfg.data_bits, acc_bits=cfg.acc_bits,
                           overflow=cfg.overflow, rounding=cfg.rounding, order=q.order)


def run_fixed(q: FixedLstm, xs_int: np.ndarray, cfg) -> np.ndarray:
    """All hidden states (T, H) of a sequence ``xs_int`` (T, N) through the bit-exact cell."""
    H = q.hidden
    h = np.zeros(H, dtype=np.int64)
    c = np.zeros(H, dtype=np.int64)
    out = []
    for x in np.asarray(xs_int, dtype=np.int64):
        h, c = cell_fixed(wx_fixed(q, x, cfg), q.U, q.b, h, c, q.e_u, cfg)
        out.append(h)
    return np.stack(out)


def _frac_for(maxabs: float, bits: int, cap: int = 30) -> int:
    """Most fractional bits whose range holds ``maxabs`` (at most ``cap``)."""
    if maxabs <= 0:
        return cap
    return int(min(cap, math.floor(math.log2(((1 << (bits - 1)) - 1) / maxabs))))


def quantize_lstm(fmt, U, b, cfg, calib_x: np.ndarray, order=None, x_frac: int | None = None) -> FixedLstm:
    """Quantize a float decomposed LSTM input layer ``fmt`` plus ``U``, ``b`` for ``cfg``.

    Each factor gets the most fractional bits its range allows; stage shifts are calibrated on
    ``calib_x`` (rows are input vectors) so that no intermediate saturates on them, and the last stage
    lands in ``Q(frac_bits)``. ``x_frac`` defaults to the most fractional bits that hold ``calib_x``.
    """
    bits, F = cfg.data_bits, cfg.frac_bits
    calib_x = np.atleast_2d(np.asarray(calib_x, dtype=np.float64))
    order = tf.default_order(fmt) if order is None else tuple(order)
    x_frac = _frac_for(float(np.abs(calib_x).max()), bits) if x_frac is None else x_frac
    fracs = tuple(_frac_for(float(np.abs(f.data).max()), bits) for f in fmt.factors)
    qfmt = fmt.with_factors([quantize(f.data, e, bits) for f, e in zip(fmt.factors, fracs, strict=True)])
    stages = tf.plan_stages(fmt, order)
    sizes = fmt.sizes()
    t = [x for x in calib_x]
    cur = x_frac
    shifts = []
    for i, st in enumerate(stages):
        f = fmt.factors[st.factor]
        t = [tf.contract_stage(v, f, st, sizes) for v in t]
        full = cur + fracs[st.factor]
        out = F if i == len(stages) - 1 else min(full, _frac_for(max(float(np.abs(v).max()) for v in t), bits))
        s = full - out
        if s < 0 or s >= cfg.acc_bits:
            raise HwsimError(f"stage {st.name} shift={s} is not allowed: expected [0, {cfg.acc_bits - 1}]; "
                             "choose fewer frac_bits or more data_bits")
        shifts.append(int(s))
        cur = out
    U = np.asarray(U, dtype=np.float64)
    e_u = _frac_for(float(np.abs(U).max()), bits)
    return FixedLstm(qfmt, order, tuple(shifts), x_frac, quantize(U, e_u, bits), e_u,
                     quantize(np.asarray(b, dtype=np.float64), F, bits), fracs)
