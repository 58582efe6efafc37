"""Deformable convolution (DCN v1/v2): float reference, bit-exact fixed-point spec, hardware-friendly variants.

Conventions (those of torchvision's ``deform_conv2d``):

* ``x`` is one image, shape ``(C, H, W)`` (call once per image for a batch);
* ``weight`` is ``(C_out, C / groups, kh, kw)``; ``groups == C == C_out`` is a depthwise conv;
* ``offset`` is ``(2 * G * kh * kw, H_out, W_out)`` with ``G`` offset groups (``G`` divides ``C``; input
  channel ``c`` uses offset group ``c // (C / G)``); for group ``g`` and tap ``k = i * kw + j`` channel
  ``2 * (g * kh * kw + k)`` is the row offset ``dy`` and the next one the column offset ``dx``
  (interleaved (dy, dx) per tap);
* tap ``(i, j)`` of output pixel ``(y, x)`` samples the input at
  ``(y * stride - padding + i * dilation + dy, x * stride - padding + j * dilation + dx)``;
* bilinear interpolation of the four neighbours ``(floor(py) + {0, 1}, floor(px) + {0, 1})``; a neighbour
  outside the image reads as zero;
* DCN v2: ``mask`` ``(G * kh * kw, H_out, W_out)`` multiplies each sampled value (the modulation scalar,
  the sigmoid of the mask branch, :func:`sigmoid`); v1 is ``mask=None``.

The fixed-point spec (:func:`deform_conv2d_fixed`) takes offsets in a signed Q format with ``F`` fractional
bits (the integer ``q`` means ``q / 2**F`` pixels). Position ``P = (base << F) + q`` splits into the integer
neighbour ``P >> F`` (floor) and the fraction ``f = P & (2**F - 1)``; the bilinear weights are the integers
``(2**F - fy)(2**F - fx)``, ``(2**F - fy) fx``, ``fy (2**F - fx)``, ``fy fx``, which sum to exactly
``2**(2F)``. The sample ``S = sum w * x`` is kept exact (``act_bits + 2F`` signed bits, no rounding), so
``S / 2**(2F)`` equals the float bilinear sample at the dequantized position exactly.

Hardware-friendly variants (CoDeNet; Huang et al., "Algorithm-hardware Co-design for Deformable
Convolution") are one implementation configured by :class:`Variant`: ``depthwise`` (groups == C),
``bound`` (offsets clamped to ``[-bound, bound]`` pixels) and ``mode="square"`` (one dilation ``d`` per
output pixel and offset group, clamped to ``[0, bound]``, integer or fractional; tap ``(i, j)`` samples at
the kernel centre plus ``((i - ci) d, (j - cj) d)``, i.e. the per-tap offsets
``((i - ci)(d - dilation), (j - cj)(d - dilation))``, :func:`square_offsets`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.tables import offset_bound_code, offset_bound_ok

__all__ = [
    "OVERFLOW_MODES",
    "ROUNDING_MODES",
    "VARIANTS",
    "Variant",
    "acc_bits_needed",
    "bilinear_weights_fixed",
    "deform_conv2d_fixed",
    "deform_conv2d_float",
    "dequantize_offsets",
    "offset_channels",
    "output_size",
    "quantize_offsets",
    "round_shift",
    "sample_positions_fixed",
    "sigmoid",
    "square_offsets",
    "variant",
    "variant_offsets",
]

OVERFLOW_MODES = ("saturate", "wrap")
ROUNDING_MODES = ("half_up", "half_even")
MODES = ("free", "square")


# ---------------------------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    """One deformable-convolution variant (a configuration of the single implementation).

    Parameters
    ----------
    name : str
        Label used in tables.
    depthwise : bool
        Depthwise deformable conv (``groups == C``; CoDeNet pairs it with a 1x1 pointwise conv).
    mode : {"free", "square"}
        ``free``: two learned offsets per tap; ``square``: one learned dilation per output pixel.
    bound : float or None
        Offsets (``free``) are clamped to ``[-bound, bound]`` pixels, dilations (``square``) to
        ``[0, bound]``; None means unbounded (``square`` requires a bound).
    fractional : bool
        ``square`` only: the dilation keeps its fraction bits (otherwise it is rounded to an integer).
    """

    name: str
    depthwise: bool = False
    mode: str = "free"
    bound: float | None = None
    fractional: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise HwsimError(f"mode={self.mode!r} is not allowed: expected one of {', '.join(MODES)}")
        if not offset_bound_ok(self.bound):
            raise HwsimError(f"bound={self.bound!r} is not allowed: expected a number >= 0 or None")
        if self.mode == "square" and self.bound is None:
            raise HwsimError("bound=None is not allowed with mode='square': expected the largest dilation")

    def channels_per_group(self, kh: int, kw: int) -> int:
        """Offset channels per offset group: ``2 kh kw`` (free) or 1 (square)."""
        return 1 if self.mode == "square" else 2 * kh * kw


VARIANTS = {
    "full": Variant("full"),
    "full_bounded": Variant("full_bounded", bound=8.0),
    "full_square": Variant("full_square", mode="square", bound=8.0),
    "depthwise": Variant("depthwise", depthwise=True),
    "bounded": Variant("bounded", depthwise=True, bound=8.0),
    "square": Variant("square", mode="square", bound=8.0),
    "square_depthwise": Variant("square_depthwise", depthwise=True, mode="square", bound=8.0),
}
"""The named variants: CoDeNet bounds offsets to [-8, 8] and square dilations to [0, 8]."""


def variant(name: str, bound: float | None = None, fractional: bool = False) -> Variant:
    """The named variant of :data:`VARIANTS`, optionally with another ``bound`` / fractional dilation."""
    if name not in VARIANTS:
        raise HwsimError(f"variant={name!r} is not allowed: expected one of {', '.join(VARIANTS)}")
    v = VARIANTS[name]
    return Variant(v.name, v.depthwise, v.mode, v.bound if bound is None else bound, fractional)


# ---------------------------------------------------------------------------------------------- helpers
def sigmoid(z) -> np.ndarray:
    """The DCN v2 modulation ``1 / (1 + exp(-z))`` of the mask branch's output."""
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


def _pair(name: str, v) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int | np.integer) and not isinstance(v, bool) else tuple(v)
    if len(t) != 2 or any(isinstance(a, bool) or not isinstance(a, int | np.integer) for a in t):
        raise HwsimError(f"{name}={v!r} is not allowed: expected an integer or a pair of integers")
    return int(t[0]), int(t[1])


def output_size(h: int, w: int, kh: int, kw: int, stride=1, padding=0, dilation=1) -> tuple[int, int]:
    """``(H_out, W_out)`` of a convolution (same formula as a regular conv)."""
    (sh, sw), (ph, pw), (dh, dw) = _pair("stride", stride), _pair("padding", padding), _pair("dilation", dilation)
    if min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise HwsimError(f"stride={stride!r}, padding={padding!r}, dilation={dilation!r} are not allowed: "
                         "expected stride, dilation >= 1 and padding >= 0")
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise HwsimError(f"input {h}x{w} is not allowed with a {kh}x{kw} kernel: the output would be empty")
    return ho, wo


def offset_channels(kh: int, kw: int, offset_groups: int = 1, mode: str = "free") -> int:
    """Channels of the offset tensor: ``2 G kh kw`` (free) or ``G`` (square dilation map)."""
    return offset_groups * (1 if mode == "square" else 2 * kh * kw)


def _check_shapes(x, offset, weight, groups, mask):
    if x.ndim != 3:
        raise HwsimError(f"x shape={x.shape} is not allowed: expected (C, H, W)")
    if weight.ndim != 4:
        raise HwsimError(f"weight shape={weight.shape} is not allowed: expected (C_out, C/groups, kh, kw)")
    c = x.shape[0]
    co, cg, kh, kw = weight.shape
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1 or c % groups \
            or co % groups or cg * groups != c:
        raise HwsimError(f"groups={groups!r} is not allowed: expected a divisor of C={c} and C_out={co} with "
                         f"weight C/groups={cg}")
    if offset.ndim != 3 or offset.shape[0] % (2 * kh * kw) or offset.shape[0] == 0:
        raise HwsimError(f"offset channels={offset.shape[0] if offset.ndim == 3 else offset.shape} is not "
                         f"allowed: expected (2 * G * {kh} * {kw}, H_out, W_out) for the {kh}x{kw} kernel")
    g = offset.shape[0] // (2 * kh * kw)
    if c % g:
        raise HwsimError(f"offset groups={g} is not allowed: expected a divisor of C={c}")
    if mask is not None and mask.shape != (g * kh * kw,) + offset.shape[1:]:
        raise HwsimError(f"mask shape={mask.shape} is not allowed: expected {(g * kh * kw,) + offset.shape[1:]}")
    return c, co, cg, kh, kw, g


def _gather(x: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """``x[c, yy, xx]`` for every channel, zero where (yy, xx) is outside the image. Result (C,) + yy.shape."""
    _, h, w = x.shape
    ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    v = x[:, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
    return np.where(ok, v, 0)


def _base_grid(kh, kw, ho, wo, stride, padding, dilation):
    """Integer nominal positions (kh*kw, ho, wo) of every tap: rows and columns."""
    (sh, sw), (ph, pw), (dh, dw) = _pair("stride", stride), _pair("padding", padding), _pair("dilation", dilation)
    i, j = np.divmod(np.arange(kh * kw), kw)
    by = np.arange(ho)[None, :, None] * sh - ph + i[:, None, None] * dh
    bx = np.arange(wo)[None, None, :] * sw - pw + j[:, None, None] * dw
    return np.broadcast_to(by, (kh * kw, ho, wo)), np.broadcast_to(bx, (kh * kw, ho, wo))


def _conv_sum(samples: np.ndarray, weight: np.ndarray, groups: int) -> np.ndarray:
    """``out[o] = sum_{c in group(o), k} weight[o, c, k] * samples[c, k]`` (float)."""
    c, kk, ho, wo = samples.shape
    co, cg = weight.shape[:2]
    s = samples.reshape(groups, cg, kk, ho * wo)
    w = weight.reshape(groups, co // groups, cg, kk)
    return np.einsum("gock,gckp->gop", w, s).reshape(co, ho, wo)


# ---------------------------------------------------------------------------------------------- float
def deform_conv2d_float(x, offset, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1,
                        mask=None) -> np.ndarray:
    """Float deformable convolution (DCN v1, or v2 with ``mask``) with torchvision's conventions.

    Parameters
    ----------
    x : array_like, (C, H, W)
    offset : array_like, (2 G kh kw, H_out, W_out)
        Interleaved (dy, dx) per tap, in pixels.
    weight : array_like, (C_out, C / groups, kh, kw)
    bias : array_like, (C_out,), optional
    stride, padding, dilation : int or (int, int)
    groups : int
        Convolution groups (``C`` for depthwise).
    mask : array_like, (G kh kw, H_out, W_out), optional
        DCN v2 modulation scalars (already through the sigmoid).

    Returns
    -------
    numpy.ndarray of float64, (C_out, H_out, W_out)
    """
    x, offset, weight = (np.asarray(a, dtype=np.float64) for a in (x, offset, weight))
    mask = None if mask is None else np.asarray(mask, dtype=np.float64)
    c, co, cg, kh, kw, g = _check_shapes(x, offset, weight, groups, mask)
    ho, wo = output_size(x.shape[1], x.shape[2], kh, kw, stride, padding, dilation)
    if offset.shape[1:] != (ho, wo):
        raise HwsimError(f"offset shape={offset.shape} is not allowed: expected H_out x W_out = {ho}x{wo}")
    by, bx = _base_grid(kh, kw, ho, wo, stride, padding, dilation)
    off = offset.reshape(g, kh * kw, 2, ho, wo)
    samples = np.empty((c, kh * kw, ho, wo))
    cpg = c // g
    for gi in range(g):
        py, px = by + off[gi, :, 0], bx + off[gi, :, 1]
        y0, x0 = np.floor(py).astype(np.int64), np.floor(px).astype(np.int64)
        fy, fx = py - y0, px - x0
        xs = x[gi * cpg:(gi + 1) * cpg]
        s = ((1 - fy) * (1 - fx) * _gather(xs, y0, x0) + (1 - fy) * fx * _gather(xs, y0, x0 + 1)
             + fy * (1 - fx) * _gather(xs, y0 + 1, x0) + fy * fx * _gather(xs, y0 + 1, x0 + 1))
        if mask is not None:
            s = s * mask.reshape(g, kh * kw, ho, wo)[gi]
        samples[gi * cpg:(gi + 1) * cpg] = s
    out = _conv_sum(samples, weight.reshape(co, cg, kh * kw), groups)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)[:, None, None]
    return out


# ---------------------------------------------------------------------------------------------- variants -> offsets
def square_offsets(dil_map, kh: int, kw: int, dilation: int = 1) -> np.ndarray:
    """Per-tap offsets ``(2 G kh kw, H, W)`` of a square-shape map of dilations ``(G, H, W)``.

    Tap ``(i, j)`` gets ``dy = (i - (kh - 1) // 2) (d - dilation)`` and ``dx = (j - (kw - 1) // 2) (d - dilation)``
    so it samples at the kernel centre plus ``(i - ci) d``: the kernel is a square of dilation ``d``. Works on
    floats (pixels) and on Q-format integers (pass ``dilation << F``); integer in, integer out.
    """
    d = np.asarray(dil_map)
    if d.ndim != 3:
        raise HwsimError(f"dilation map shape={d.shape} is not allowed: expected (G, H_out, W_out)")
    i, j = np.divmod(np.arange(kh * kw), kw)
    ri, rj = i - (kh - 1) // 2, j - (kw - 1) // 2
    e = d - dilation
    dy = ri[None, :, None, None] * e[:, None]
    dx = rj[None, :, None, None] * e[:, None]
    out = np.stack([dy, dx], axis=2)  # (G, K, 2, H, W)
    return out.reshape(-1, *d.shape[1:])


def variant_offsets(v: Variant, raw, kh: int, kw: int, dilation: int = 1, frac_bits: int | None = None):
    """The per-tap offsets a variant uses, from the learned tensor ``raw``.

    ``free``: ``raw`` is ``(2 G kh kw, H, W)`` offsets, clamped to ``[-bound, bound]``. ``square``: ``raw`` is
    ``(G, H, W)`` dilations, clamped to ``[0, bound]`` and rounded to integers unless ``v.fractional``
    (half away from zero on floats; ``(q + 2**(F-1)) >> F << F`` on Q-format integers), then expanded by
    :func:`square_offsets`. With ``frac_bits`` the tensors are Q-format integers and the bound is
    ``floor(bound * 2**F)``.
    """
    raw = np.asarray(raw)
    q = frac_bits is not None
    if q:
        raw = raw.astype(np.int64)
        b = offset_bound_code(v.bound, frac_bits)
    else:
        raw = raw.astype(np.float64)
        b = v.bound
    if v.mode == "free":
        if raw.ndim != 3 or raw.shape[0] % (2 * kh * kw) or raw.shape[0] == 0:
            raise HwsimError(f"offset channels={raw.shape[0] if raw.ndim == 3 else raw.shape} is not allowed: "
                             f"expected a multiple of 2 * {kh} * {kw} for the {kh}x{kw} kernel")
        return raw if b is None else np.clip(raw, -b, b)
    if raw.ndim != 3:
        raise HwsimError(f"dilation map shape={raw.shape} is not allowed: expected (G, H_out, W_out)")
    d = np.clip(raw, 0, b)
    if not v.fractional:
        if q:
            d = np.minimum(((d + (1 << frac_bits >> 1)) >> frac_bits) << frac_bits, (b >> frac_bits) << frac_bits)
        else:
            d = np.minimum(np.floor(d + 0.5), np.floor(b))
    return square_offsets(d, kh, kw, dilation << frac_bits if q else dilation)


def quantize_offsets(offset, frac_bits: int) -> np.ndarray:
    """Float offsets in pixels to Q-format integers: ``round(offset * 2**F)`` (half to even, NumPy)."""
    return np.rint(np.asarray(offset, dtype=np.float64) * (1 << frac_bits)).astype(np.int64)


def dequantize_offsets(q, frac_bits: int) -> np.ndarray:
    """Q-format offsets to pixels (exact in float64)."""
    return np.asarray(q, dtype=np.int64) / float(1 << frac_bits)


# ---------------------------------------------------------------------------------------------- fixed point
def _check_int_arg(name, v, lo, hi=None):
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise HwsimError(f"{name}={v!r} is not allowed: expected an integer {rng}")
    return int(v)


def _as_int(a, name: str, lo: int, hi: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iub" and arr.size and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise HwsimError(f"{name} values are not allowed: expected integers")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        raise HwsimError(f"{name} value {int(bad)} is not allowed: expected integers in [{lo}, {hi}]")
    return arr


def acc_bits_needed(act_bits: int, weight_bits: int, frac_bits: int, mask_bits: int | None = None) -> int:
    """Signed bits one product ``w * m * S`` needs: ``act + weight + 2F (+ mask_bits)``. The bilinear weight
    ``S`` reaches ``2**(2F)`` itself (an integer sample position), so the worst case (-2**(act-1)) *
    (-2**(weight-1)) * 2**(2F) = +2**(act + weight + 2F - 2) needs ``act + weight + 2F`` signed bits (the
    mask, in ``[0, 2**mask_bits]``, adds ``mask_bits``)."""
    return act_bits + weight_bits + 2 * frac_bits + (mask_bits or 0)


def bilinear_weights_fixed(fy, fx, frac_bits: int) -> tuple[np.ndarray, ...]:
    """Integer bilinear weights ``(w00, w01, w10, w11)`` of fractions ``fy, fx`` in ``[0, 2**F)``.

    ``w00 = (2**F - fy)(2**F - fx)``, ``w01 = (2**F - fy) fx``, ``w10 = fy (2**F - fx)``, ``w11 = fy fx``;
    they sum to exactly ``2**(2F)``.
    """
    one = 1 << frac_bits
    fy, fx = np.asarray(fy, dtype=np.int64), np.asarray(fx, dtype=np.int64)
    return (one - fy) * (one - fx), (one - fy) * fx, fy * (one - fx), fy * fx


def sample_positions_fixed(offset_q, kh, kw, ho, wo, frac_bits, stride=1, padding=0, dilation=1):
    """Q-format sampling positions ``(G, kh*kw, ho, wo)`` (rows, cols): ``(base << F) + offset``."""
    off = np.asarray(offset_q, dtype=np.int64)
    g = off.shape[0] // (2 * kh * kw)
    by, bx = _base_grid(kh, kw, ho, wo, stride, padding, dilation)
    off = off.reshape(g, kh * kw, 2, ho, wo)
    return (by.astype(np.int64) << frac_bits) + off[:, :, 0], (bx.astype(np.int64) << frac_bits) + off[:, :, 1]


def round_shift(x: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """``x / 2**shift`` rounded: ``half_up`` = ``(x + 2**(s-1)) >> s``; ``half_even`` ties to even."""
    x = np.asarray(x, dtype=np.int64)
    if shift == 0:
        return x
    q = (x + (1 << (shift - 1))) >> shift
    if rounding == "half_even":
        tie = (x & ((1 << shift) - 1)) == (1 << (shift - 1))
        q = np.where(tie & (q & 1 == 1), q - 1, q)
    return q


def _tap_samples(table: np.ndarray, y0: np.ndarray, x0: np.ndarray, fy: np.ndarray, fx: np.ndarray, h: int,
                 w: int, frac_bits: int) -> np.ndarray:
    """Exact bilinear samples ``S = sum w * x`` of one tap: ``(P, C)`` for the ``P`` integer neighbours
    ``y0, x0`` and fractions ``fy, fx`` (each ``(P,)``); neighbours outside the image are zero.

    ``table`` is the image pixel-major, ``(H W + 1, C)``, with a last row of zeros: each neighbour is
    gathered as a whole pixel (all channels at once) and one outside the image reads the zero row.
    ``|S| <= max|x| 2**(2F)``, and so is every partial sum (the four weights are >= 0 and sum to
    ``2**(2F)``): the table's dtype holds them when the caller chose it so."""
    dt = table.dtype
    row_ok = ((y0 >= 0) & (y0 < h), (y0 >= -1) & (y0 < h - 1))
    col_ok = ((x0 >= 0) & (x0 < w), (x0 >= -1) & (x0 < w - 1))
    base = y0 * w + x0
    s = None
    for (dy, dx), wn in zip(((0, 0), (0, 1), (1, 0), (1, 1)), bilinear_weights_fixed(fy, fx, frac_bits),
                            strict=True):
        idx = np.where(row_ok[dy] & col_ok[dx], base + (dy * w + dx), h * w)
        v = np.take(table, idx, axis=0)
        np.multiply(v, wn.astype(dt)[:, None], out=v)
        if s is None:
            s = v
        else:
            s += v
    return s


def deform_conv2d_fixed(x, offset_q, weight, *, frac_bits: int, shift: int, bias=None, stride=1, padding=0,
                        dilation=1, groups: int = 1, mask_q=None, mask_bits: int = 8, act_bits: int = 8,
                        weight_bits: int = 8, acc_bits: int = 32, overflow: str = "saturate",
                        rounding: str = "half_up", relu: bool = False, return_acc: bool = False) -> np.ndarray:
    """Bit-exact fixed-point deformable convolution (the spec the unit model and the RTL follow).

    Parameters
    ----------
    x : array_like of int, (C, H, W)
        Signed ``act_bits`` activations.
    offset_q : array_like of int, (2 G kh kw, H_out, W_out)
        Offsets in Q format with ``frac_bits`` fraction bits (any int64 value; variants clamp beforehand,
        :func:`variant_offsets`).
    weight : array_like of int, (C_out, C / groups, kh, kw)
        Signed ``weight_bits`` weights (4 for int4, 8 for int8).
    frac_bits : int
        ``F``: fraction bits of offsets and of each bilinear weight coordinate (weights sum to ``2**(2F)``).
    shift : int
        Output right shift in activation scale; the accumulator is shifted by ``shift + 2F`` (``+ mask_bits``
        with a mask) with ``rounding``.
    bias : array_like of int, (C_out,), optional
        Added to the accumulator first, in the accumulator's scale (``2**(2F)`` (``+ mask_bits``) times
        the product scale).
    groups : int
        Convolution groups (``C`` for depthwise).
    mask_q : array_like of int, (G kh kw, H_out, W_out), optional
        DCN v2 modulation as unsigned integers in ``[0, 2**mask_bits]`` (value ``m / 2**mask_bits``).
    act_bits, weight_bits, acc_bits : int
        Widths; ``acc_bits >= act_bits + weight_bits + 2F (+ mask_bits) - 1`` (one product must fit).
    overflow : {"saturate", "wrap"}
        Accumulator after every addition. Order: bias, then for each tap ``k = i kw + j`` (raster) each
        input channel of the group ascending, one product ``w * (m *) S`` per addition.
    rounding : {"half_up", "half_even"}
        Ties of the shift: towards +infinity, or to even.
    relu : bool
        ``max(acc, 0)`` before the shift.
    return_acc : bool
        Also return the final accumulators.

    Returns
    -------
    numpy.ndarray of int64, (C_out, H_out, W_out)
        ``clamp(round_shift(acc, shift + 2F (+ mask_bits)), -2**(act_bits-1), 2**(act_bits-1) - 1)``
        (and the accumulators with ``return_acc``).
    """
    act_bits = _check_int_arg("act_bits", act_bits, 2, 16)
    weight_bits = _check_int_arg("weight_bits", weight_bits, 2, 16)
    frac_bits = _check_int_arg("frac_bits", frac_bits, 0, 16)
    acc_bits = _check_int_arg("acc_bits", acc_bits, 2, 62)
    mbits = None
    if mask_q is not None:
        mbits = _check_int_arg("mask_bits", mask_bits, 0, 16)
    need = acc_bits_needed(act_bits, weight_bits, frac_bits, mbits)
    if need > acc_bits:
        raise HwsimError(f"frac_bits={frac_bits} is not allowed with acc_bits={acc_bits}: one product needs "
                         f"{need} bits (act_bits + weight_bits + 2 * frac_bits{' + mask_bits' if mbits else ''})")
    if overflow not in OVERFLOW_MODES:
        raise HwsimError(f"overflow={overflow!r} is not allowed: expected one of {', '.join(OVERFLOW_MODES)}")
    if rounding not in ROUNDING_MODES:
        raise HwsimError(f"rounding={rounding!r} is not allowed: expected one of {', '.join(ROUNDING_MODES)}")
    lo_a, hi_a = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    x = _as_int(x, "x", lo_a, hi_a)
    weight = _as_int(weight, "weight", -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1)
    offset_q = _as_int(offset_q, "offset", -(1 << 40), 1 << 40)
    mask = None if mask_q is None else _as_int(mask_q, "mask", 0, 1 << mbits)
    c, co, cg, kh, kw, g = _check_shapes(x, offset_q, weight, groups, mask)
    ho, wo = output_size(x.shape[1], x.shape[2], kh, kw, stride, padding, dilation)
    if offset_q.shape[1:] != (ho, wo):
        raise HwsimError(f"offset shape={offset_q.shape} is not allowed: expected H_out x W_out = {ho}x{wo}")
    total_shift = _check_int_arg("shift", shift, 0, 62) + 2 * frac_bits + (mbits or 0)
    if total_shift >= acc_bits:
        raise HwsimError(f"shift={shift} is not allowed: shift + 2 * frac_bits{' + mask_bits' if mbits else ''} "
                         f"must be < acc_bits={acc_bits}")
    py, px = sample_positions_fixed(offset_q, kh, kw, ho, wo, frac_bits, stride, padding, dilation)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    cog, cpg, kk, npix = co // groups, c // g, kh * kw, ho * wo
    wk = weight.reshape(co, cg, kk)
    bias = None if bias is None else _as_int(bias, "bias", lo, hi).reshape(co)
    # The largest |partial sum| any accumulation order can reach: |bias| + sum |w| |S| with
    # |S| <= max|x| 2**(2F) (the bilinear weights are >= 0 and sum to 2**(2F)) (* 2**mask_bits). When it
    # fits, neither saturation nor wrap-around ever acts, and the sum is the same in any order.
    xmax = int(np.abs(x).max(initial=0))
    smax = (xmax << (2 * frac_bits)) << (mbits or 0)
    exact = (0 if bias is None else int(np.abs(bias).max(initial=0))) \
        + int(np.abs(wk).sum(axis=(1, 2)).max(initial=0)) * smax <= hi
    # Pixel-major: one table per offset group (its channels), one accumulator row per output pixel, one
    # tap at a time (arrays of P x C stay in cache).
    sdt = np.int32 if (max(xmax, 1) << (2 * frac_bits)) < 1 << 31 else np.int64
    tables = np.zeros((g, x.shape[1] * x.shape[2] + 1, cpg), dtype=sdt)
    tables[:, :-1] = x.reshape(g, cpg, -1).transpose(0, 2, 1)
    fmask = (1 << frac_bits) - 1
    y0, x0 = (py >> frac_bits).reshape(g, kk, npix), (px >> frac_bits).reshape(g, kk, npix)
    fy, fx = (py & fmask).reshape(g, kk, npix), (px & fmask).reshape(g, kk, npix)
    mk = None if mask is None else mask.reshape(g, kk, npix)
    group_of = np.arange(co) // cog
    chans = [group_of * cg + ci for ci in range(cg)]
    same = [bool(np.array_equal(ch, np.arange(c))) and co == c for ch in chans]
    acc = np.zeros((npix, co), dtype=np.int64)
    if bias is not None:
        acc += bias
    for k in range(kk):
        parts = []
        for gi in range(g):
            sg = _tap_samples(tables[gi], y0[gi, k], x0[gi, k], fy[gi, k], fx[gi, k], x.shape[1], x.shape[2],
                              frac_bits)
            if mk is not None:
                sg = sg.astype(np.int64) * mk[gi, k][:, None]
            parts.append(sg)
        sk = parts[0] if g == 1 else np.concatenate(parts, axis=1)  # (P, C): channel gi * C/G + j
        if exact and groups == 1:
            acc += sk.astype(np.int64) @ wk[:, :, k].T
            continue
        for ci in range(cg):  # the specified order: each tap, each input channel of the group, one product each
            acc += (sk if same[ci] else sk[:, chans[ci]]) * wk[:, ci, k]
            if exact:
                continue
            if overflow == "saturate":
                np.clip(acc, lo, hi, out=acc)
            else:
                acc = ((acc - lo) & ((1 << acc_bits) - 1)) + lo
    acc = acc.T.reshape(co, ho, wo)
    out = np.maximum(acc, 0) if relu else acc
    out = np.clip(round_shift(out, total_shift, rounding), lo_a, hi_a)
    return (out, acc) if return_acc else out
