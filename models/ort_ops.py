"""The host operators of a quantized ONNX model, bit-exact to ONNX Runtime's CPU kernels (MLAS, x86-64).

The accelerator runs the convolutions and matrix products (:func:`hwsim.models.mac_array.requantize_f32`
is their requantizer); the input quantizer, residual adds and global average pools run on the host with
the float32 arithmetic of ONNX Runtime's kernels, reproduced here operation by operation:

* ``QuantizeLinear`` (``MlasQuantizeLinear``): ``q = clip(rint_even(f32(x / scale)) + zp)``.
* ``QLinearAdd`` (``MlasQLinearAddKernelAvx2Helper``): ``R_a = f32(s_a / s_c)``, ``R_b = f32(s_b / s_c)``,
  ``F = f32(zp_c - f32(f32(R_a * zp_a) + f32(R_b * zp_b)))``, ``t = fma(b, R_b, F)``,
  ``t = fma(a, R_a, t)`` (fused multiply-adds: one rounding each), ``c = sat(rint_even(t))``. ``a`` and
  ``b`` are the codes of the operator's first and second input, in their own (uint8 or int8) domain.
* ``QLinearGlobalAveragePool`` (``MlasQLinearGlobalAveragePool``): ``acc = sum(x) - zp_x * N``,
  ``scale = f32(s_x / f32(s_y * f32(N)))``, ``y = sat(rint_even(f32(f32(acc) * scale)) + zp_y)``.

Codes inside hwsim are signed; a uint8 tensor's codes are stored minus 128 (``meta["ort"]["offset"]``
says which), and every float formula above is evaluated on the tensor's own codes, since float rounding
depends on the values, not only on their differences.
"""

from __future__ import annotations

import numpy as np
from hwsim.models.errors import HwsimError

__all__ = ["fma_f32", "forward", "qlinear_add", "qlinear_global_avgpool", "quantize_input", "quantize_linear"]

f32 = np.float32


def type_range(unsigned: bool) -> tuple[int, int]:
    return (0, 255) if unsigned else (-128, 127)


def quantize_linear(x, scale, zero_point: int, unsigned: bool) -> np.ndarray:
    """ONNX Runtime's QuantizeLinear of float32 ``x`` (codes in the tensor's own domain)."""
    lo, hi = type_range(unsigned)
    v = (np.asarray(x, dtype=np.float32) / f32(scale)).astype(np.float32)
    return np.clip(np.rint(v.astype(np.float64)) + zero_point, lo, hi).astype(np.int64)


def fma_f32(x, y, z) -> np.ndarray:
    """``x * y + z`` rounded once to float32 (a fused multiply-add), for integers ``|x| < 2**29`` and float32
    ``y``, ``z``: the product is exact in float64, the sum's rounding error is recovered exactly (TwoSum),
    and a float64 sum lying exactly halfway between two float32 values is resolved by that error's sign."""
    p = np.asarray(x, dtype=np.float64) * np.asarray(y, dtype=np.float32).astype(np.float64)
    zz = np.asarray(z, dtype=np.float32).astype(np.float64)
    s = p + zz
    bp = s - zz
    e = (p - bp) + (zz - (s - bp))  # TwoSum: s + e == p + zz exactly
    f = s.astype(np.float32)
    toward = np.where(f.astype(np.float64) < s, np.inf, -np.inf).astype(np.float32)
    g = np.nextafter(f, toward)
    mid = (f.astype(np.float64) + g.astype(np.float64)) / 2
    tie = (mid == s) & (e != 0) & (f.astype(np.float64) != s)
    hi_, lo_ = np.maximum(f, g), np.minimum(f, g)
    return np.where(tie, np.where(e > 0, hi_, lo_), f).astype(np.float32)


def qlinear_add(a, b, sa, za, sb, zb, sc, zc, unsigned: bool) -> np.ndarray:
    """ONNX Runtime's QLinearAdd (AVX2 kernel) of codes ``a``, ``b`` (own domain); output codes."""
    ra, rb = f32(f32(sa) / f32(sc)), f32(f32(sb) / f32(sc))
    fixed = f32(f32(zc) - f32(f32(ra * f32(za)) + f32(rb * f32(zb))))
    t = fma_f32(np.asarray(b, np.int64), rb, np.full(np.shape(b), fixed, dtype=np.float32))
    t = fma_f32(np.asarray(a, np.int64), ra, t)
    lo, hi = type_range(unsigned)
    return np.clip(np.rint(t.astype(np.float64)), lo, hi).astype(np.int64)


def qlinear_global_avgpool(x, sx, zx, sy, zy, unsigned: bool) -> np.ndarray:
    """ONNX Runtime's QLinearGlobalAveragePool of codes ``x`` (N, C, H, W) (own domain): (N, C, 1, 1)."""
    x = np.asarray(x, dtype=np.int64)
    n = x.shape[2] * x.shape[3]
    acc = x.sum(axis=(2, 3), keepdims=True) - int(zx) * n
    scale = f32(f32(sx) / f32(f32(sy) * f32(n)))
    v = (acc.astype(np.float32) * scale).astype(np.float32)
    lo, hi = type_range(unsigned)
    return np.clip(np.rint(v.astype(np.float64)) + zy, lo, hi).astype(np.int64)


def quantize_input(layer, x) -> np.ndarray:
    """The input layer's QuantizeLinear (``layer.meta["ort"]``: scale, zp, unsigned), as signed codes."""
    q = layer.meta["ort"]
    codes = quantize_linear(np.asarray(x, dtype=np.float64).astype(np.float32), q["scale"], q["zp"], q["unsigned"])
    return codes - (128 if q["unsigned"] else 0)


def forward(layer, inputs) -> np.ndarray:
    """A host layer with ONNX Runtime semantics (``layer.meta["ort"]``) on signed codes."""
    q = layer.meta["ort"]
    own = [np.asarray(v, dtype=np.int64) + (128 if u else 0) for v, u in zip(inputs, q["in_unsigned"], strict=True)]
    if q["op"] == "qlinear_add":
        y = qlinear_add(own[0], own[1], q["sa"], q["za"], q["sb"], q["zb"], q["sc"], q["zc"], q["unsigned"])
        if layer.relu:
            y = np.maximum(y, q["zc"])
    elif q["op"] == "qlinear_gap":
        y = qlinear_global_avgpool(own[0], q["sx"], q["zx"], q["sy"], q["zy"], q["unsigned"])
    else:
        raise HwsimError(f"layer {layer.name!r}: ONNX Runtime operator {q['op']!r} is not allowed: expected "
                         "qlinear_add or qlinear_gap")
    return y - (128 if q["unsigned"] else 0)
