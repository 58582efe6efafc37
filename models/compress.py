"""Compression of float :class:`~hwsim.models.graph.Model` s into integer :class:`CompressedModel` s.

A compression is described by a spec string (:func:`parse_compress_spec`)::

    [svd-rR | svd-eE] + [pruneP | blockRxC-P | N:M] + FORMAT[-pt | -pc]

for example ``int8``, ``int4-pc``, ``binary``, ``prune50+int8``, ``block4x4-50+int8``, ``2:4+int8``,
``svd-r8+int8``, ``svd-e0.9+int8``. Transforms are applied to the float model in the order low-rank
factorization, pruning, quantization.

Integer pipeline (everything is a power of two, so requantization is a pure right shift)
-------------------------------------------------------------------------------------------
Every integer tensor ``t`` carries an exponent ``e``: its real value is ``t * 2**e``.

* ``input``: the float image is quantized to ``act_bits`` with ``e = ceil(log2(max|x| / (2**(b-1)-1)))``
  from the calibration batch (round with the configured rounding, clamp).
* ``conv2d`` / ``linear``: weights are integer values of the layer's ``weight_format`` with a
  power-of-two exponent per output channel (``weight_exp``; equal for all channels with per-tensor
  quantization). The layer is lowered to one GEMM per convolution group (:func:`mac_array.conv2d_as_gemms`,
  explicit padding with ``pad_value`` first) and, when output channels of a group have different shifts,
  one GEMM per distinct shift. Each GEMM is::

      acc = mac_array.accumulate(a, w, cfg)                  # sequential, saturate / wrap at acc_bits
      acc = ovf(acc + bias)                                   # bias: one more accumulation step
      out = mac_array.requantize(acc, cfg, shift, relu)

  The **bias** is an integer at the accumulator scale ``2**(in_exp + weight_exp[o])``, added after the
  accumulation as one extra exact addition with the same overflow rule (saturate / wrap to ``acc_bits``);
  see :func:`reference_gemm`. ``shift[o] = out_exp - in_exp - weight_exp[o] >= 0``; ``out_exp`` is
  calibrated from ``max|output|`` (or a percentile) of the fake-quant pipeline on the calibration batch.
  A ReLU that directly follows a conv / linear / add (its only consumer) is fused into ``requantize``.
* ``maxpool`` / ``relu`` / ``flatten`` are exact on integers; ``avgpool`` sums the window and requantizes
  with ``shift = log2(kernel**2)`` (power-of-two windows only); ``add`` aligns both inputs to the finer
  exponent with left shifts and requantizes to its calibrated exponent.

Binary layers (XNOR-style) take +-1 activations: the ReLU in front of a binary layer becomes a ``sign``
op (sign(0) = +1) applied to the un-rectified producer output (the producer then uses ``shift = 0`` so
the sign is exact), and a binary layer outputs ``sign(acc + bias)`` (``act_bits = 1``, ``weight_exp = 0``:
the bias counts units of the +-1 dot product). The layer that
consumes a +-1 tensor sees the float activation ``a`` replaced by ``alpha + beta * s`` (least squares per
input channel on the calibration batch), folded into its weights and bias; convolutions over +-1
tensors pad with -1 (which stands for a zero activation, since ``alpha - beta = E[a | s = -1] = 0`` after
a ReLU). The first and last conv / linear layers stay int8 (also by default for ternary and int2).

Scale gains: ternary weights are ``alpha * t`` with a float ``alpha`` per channel; the layer
computes with ``2**weight_exp`` instead, so its output is scaled by ``gain = 2**weight_exp / alpha``
(bias scaled likewise). Where every consumer is again a conv / linear (through relu / pools / flatten),
the consumer divides its input-channel weights by that gain before it is quantized, so the per-channel
alpha costs nothing; a layer whose output reaches an ``add`` or the model output uses
``weight_exp = round(log2(alpha))`` per channel instead.

Post-training corrections (no retraining; all on the calibration batch, all optional)
-----------------------------------------------------------------------------------
* ``refit``: after pruning, the kept weights and the bias of every layer are refitted by ridge least
  squares so the layer reproduces the unpruned output on the pruned model's own inputs (the masks do not
  change); after a low-rank split, the second factor is refitted the same way.
* ``bias_correction``: the mean output error of each quantized channel (vs. the float layer) is
  subtracted through the integer bias.
* binary layers: the output scale and offset are fitted by least squares per channel, and a per-channel
  threshold ``t`` (``sign(z - t)``, chosen so that ``alpha + beta * sign`` best fits ``relu(z)``) is
  folded into the bias of every layer whose output is binarized.

Fake quantization (:meth:`CompressedModel.forward_fakequant`) evaluates the same pipeline in float64
(dequantized weights, float convolution, float rounding and clamping); since all values are dyadic and
small it equals ``forward_int`` times ``2**out_exp`` exactly unless the accumulator saturates.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

import numpy as np
from hwsim.models import mac_array
from hwsim.models.errors import HwsimError
from hwsim.models.graph import COMPUTE_KINDS, INPUT, Model, conv2d_float, im2col_float, pool2d

__all__ = [
    "QUANT_FORMATS",
    "WEIGHT_BITS",
    "Arith",
    "CompressSpec",
    "CompressedModel",
    "GemmCall",
    "GemmOp",
    "QLayer",
    "QuantizedWeights",
    "apply_pruning",
    "apply_svd",
    "compress",
    "parse_compress_spec",
    "prune_blocks",
    "prune_magnitude",
    "prune_n_m",
    "quantize_weights",
    "reference_gemm",
    "sign_thresholds",
    "svd_factor",
    "svd_rank_for_energy",
]

QUANT_FORMATS = ("int8", "int4", "int2", "binary", "ternary", "pow2")
_INT_BITS = {"int8": 8, "int4": 4, "int2": 2}
#: Width of one weight code in bits (as ``hwsim.config.WEIGHT_BITS``).
WEIGHT_BITS = {"int8": 8, "int4": 4, "int2": 2, "ternary": 2, "binary": 1, "pow2": 4}
_POW2_MAX = 64
TERNARY_THRESHOLD = 0.7

SPEC_FORMS = (
    "[svd-rR+|svd-eE+][pruneP+|blockRxC-P+|N:M+]FORMAT[-pt|-pc] with FORMAT one of "
    + ", ".join(QUANT_FORMATS)
    + " (e.g. int8, int4-pc, binary, prune50+int8, block4x4-50+int8, 2:4+int8, svd-r8+int8, svd-e0.9+int8)"
)


# ============================================================================================== spec
@dataclass(frozen=True)
class CompressSpec:
    """A parsed compression spec (see :func:`parse_compress_spec`)."""

    weight_format: str = "int8"
    per_channel: bool = False
    prune: str | None = None  # "magnitude" | "block" | "nm"
    sparsity: float = 0.0  # fraction pruned, for magnitude / block
    block: tuple[int, int] | None = None  # (rows along K, cols along N)
    nm: tuple[int, int] | None = None  # keep N of every M
    svd_rank: int | None = None
    svd_energy: float | None = None

    def __str__(self) -> str:
        parts = []
        if self.svd_rank is not None:
            parts.append(f"svd-r{self.svd_rank}")
        if self.svd_energy is not None:
            parts.append(f"svd-e{self.svd_energy:g}")
        pct = f"{100 * self.sparsity:g}"
        if self.prune == "magnitude":
            parts.append(f"prune{pct}")
        elif self.prune == "block":
            parts.append(f"block{self.block[0]}x{self.block[1]}-{pct}")
        elif self.prune == "nm":
            parts.append(f"{self.nm[0]}:{self.nm[1]}")
        fmt = self.weight_format
        if self.per_channel and fmt != "binary":
            fmt += "-pc"
        parts.append(fmt)
        return "+".join(parts)


_NUM = r"(\d+(?:\.\d+)?)"
_RE_PRUNE = re.compile(rf"prune{_NUM}")
_RE_BLOCK = re.compile(rf"block(\d+)x(\d+)-{_NUM}")
_RE_NM = re.compile(r"(\d+):(\d+)")
_RE_SVD_R = re.compile(r"svd-r(\d+)")
_RE_SVD_E = re.compile(rf"svd-e{_NUM}")
_RE_FMT = re.compile(r"(int8|int4|int2|binary|ternary|pow2)(?:-(pt|pc))?")


def parse_compress_spec(spec) -> CompressSpec:
    """Parse a compression spec string; see the module docstring for the grammar.

    ``pruneP`` prunes P percent of every conv / linear weight by magnitude; ``blockRxC-P`` prunes P
    percent of the R x C blocks of every layer's GEMM weight matrix (R along the reduction K, C along the
    output channels N) by mean squared magnitude; ``N:M`` keeps the N largest of every M consecutive
    weights along K. ``svd-rR`` factorizes layers to rank R, ``svd-eE`` to the smallest rank keeping a
    fraction E of the squared singular values. ``-pt`` (default) quantizes per tensor, ``-pc`` per output
    channel. Bad specs raise HwsimError naming the spec and the allowed forms.
    """
    if isinstance(spec, CompressSpec):
        return spec

    def bad(why: str = ""):
        why = f" ({why})" if why else ""
        return HwsimError(f"compression spec {spec!r} is not allowed{why}: expected {SPEC_FORMS}")

    if not isinstance(spec, str) or not spec.strip():
        raise bad()
    parts = [p.strip() for p in spec.strip().lower().split("+")]
    m = _RE_FMT.fullmatch(parts[-1])
    if not m:
        raise bad(f"{parts[-1]!r} is not a weight format")
    kw: dict = {"weight_format": m.group(1), "per_channel": m.group(2) == "pc"}
    for part in parts[:-1]:
        m = _RE_PRUNE.fullmatch(part) or _RE_BLOCK.fullmatch(part) or _RE_NM.fullmatch(part)
        if m:
            if "prune" in kw:
                raise bad("at most one pruning transform")
            if m.re is _RE_NM:
                n, mm = int(m.group(1)), int(m.group(2))
                if not 1 <= n < mm:
                    raise bad(f"N:M needs 1 <= N < M, got {part!r}")
                kw.update(prune="nm", nm=(n, mm), sparsity=1 - n / mm)
                continue
            pct = float(m.group(m.re.groups))
            if not 0 < pct < 100:
                raise bad(f"the pruned percentage must be in (0, 100), got {pct:g}")
            kw.update(sparsity=pct / 100)
            if m.re is _RE_BLOCK:
                r, c = int(m.group(1)), int(m.group(2))
                if r < 1 or c < 1:
                    raise bad(f"block sizes must be >= 1, got {part!r}")
                kw.update(prune="block", block=(r, c))
            else:
                kw.update(prune="magnitude")
        elif (m := _RE_SVD_R.fullmatch(part)) or (m := _RE_SVD_E.fullmatch(part)):
            if "svd_rank" in kw or "svd_energy" in kw:
                raise bad("at most one svd transform")
            if m.re is _RE_SVD_R:
                r = int(m.group(1))
                if r < 1:
                    raise bad("the svd rank must be >= 1")
                kw["svd_rank"] = r
            else:
                e = float(m.group(1))
                if not 0 < e <= 1:
                    raise bad(f"the svd energy must be in (0, 1], got {e:g}")
                kw["svd_energy"] = e
        else:
            raise bad(f"unknown transform {part!r}")
    if kw["weight_format"] == "binary":
        if "prune" in kw:
            raise bad("binary weights have no zero, so they cannot be pruned")
        if "svd_rank" in kw or "svd_energy" in kw:
            raise bad("binary layers need a ReLU in front, which a low-rank split does not have")
    return CompressSpec(**kw)


# ============================================================================================== pruning / SVD
def prune_magnitude(w, sparsity: float) -> np.ndarray:
    """Boolean keep-mask of ``w``: the ``round(sparsity * size)`` smallest magnitudes are pruned."""
    w = np.asarray(w, dtype=np.float64)
    n_prune = int(round(sparsity * w.size))
    mask = np.ones(w.size, dtype=bool)
    if n_prune > 0:
        order = np.argsort(np.abs(w).ravel(), kind="stable")
        mask[order[:n_prune]] = False
    return mask.reshape(w.shape)


def prune_blocks(mat, rows: int, cols: int, sparsity: float) -> np.ndarray:
    """Keep-mask of a 2-D matrix pruned in ``rows x cols`` blocks.

    The matrix is tiled from the top-left corner (edge blocks may be smaller); the
    ``round(sparsity * number_of_blocks)`` blocks with the smallest mean squared value are zeroed whole.
    """
    mat = np.asarray(mat, dtype=np.float64)
    if mat.ndim != 2:
        raise HwsimError(f"matrix shape {mat.shape} is not allowed: block pruning needs a 2-D matrix")
    nr, nc = -(-mat.shape[0] // rows), -(-mat.shape[1] // cols)
    pad = np.full((nr * rows, nc * cols), np.nan)
    pad[: mat.shape[0], : mat.shape[1]] = mat
    blocks = pad.reshape(nr, rows, nc, cols)
    score = np.nanmean(blocks ** 2, axis=(1, 3)).ravel()
    n_prune = int(round(sparsity * score.size))
    keep = np.ones(score.size, dtype=bool)
    if n_prune > 0:
        keep[np.argsort(score, kind="stable")[:n_prune]] = False
    keep = np.repeat(np.repeat(keep.reshape(nr, nc), rows, axis=0), cols, axis=1)
    return keep[: mat.shape[0], : mat.shape[1]]


def prune_n_m(mat, n: int, m: int) -> np.ndarray:
    """Keep-mask with the ``n`` largest magnitudes of every ``m`` consecutive entries along the last axis.

    A trailing group of L < m entries keeps ``ceil(n * L / m)`` of them. Ties keep the earlier entry.
    """
    mat = np.asarray(mat, dtype=np.float64)
    k = mat.shape[-1]
    flat = np.abs(mat.reshape(-1, k))
    mask = np.zeros(flat.shape, dtype=bool)
    for start in range(0, k, m):
        grp = flat[:, start:start + m]
        keep = n if grp.shape[1] == m else math.ceil(n * grp.shape[1] / m)
        order = np.argsort(-grp, axis=1, kind="stable")[:, :keep]
        np.put_along_axis(mask[:, start:start + m], order, True, axis=1)
    return mask.reshape(mat.shape)


def _gemm_view(w: np.ndarray) -> np.ndarray:
    """(O, ...) weight -> (O, K) matrix: row o is output channel o, K ordered like im2col (c, i, j)."""
    return w.reshape(w.shape[0], -1)


def apply_pruning(model: Model, spec: CompressSpec, calib_x=None, ridge: float = 1e-3):
    """Prune every conv / linear layer of ``model``; returns the pruned copy and the keep-masks by layer.

    Masks are chosen on the weights of ``model`` (magnitude, block or N:M; see
    :func:`parse_compress_spec`). With a calibration batch ``calib_x`` the kept weights (and bias) of each
    layer are then refitted, layer after layer, by ridge least squares so that the layer's output on the
    pruned model's own inputs reproduces the unpruned model's output (the masks do not change).
    """
    if spec.prune is None:
        return model, {}
    layers, masks = [], {}
    for layer in model.layers:
        if layer.kind not in COMPUTE_KINDS:
            layers.append(layer)
            continue
        w = layer.weight
        if spec.prune == "magnitude":
            mask = prune_magnitude(w, spec.sparsity)
        elif spec.prune == "block":
            mask = prune_blocks(_gemm_view(w).T, spec.block[0], spec.block[1], spec.sparsity)
            mask = mask.T.reshape(w.shape)
        else:
            mask = prune_n_m(_gemm_view(w), *spec.nm).reshape(w.shape)
        masks[layer.name] = mask
        layers.append(layer.copy(weight=np.where(mask, w, 0.0)))
    pruned = model.replace_layers(layers)
    if calib_x is None:
        return pruned, masks
    target = model.forward_float(calib_x, return_all=True)
    for i, layer in enumerate(pruned.layers):
        if layer.kind not in COMPUTE_KINDS:
            continue
        x = pruned.forward_float(calib_x, return_all=True)[layer.inputs[0]]
        layers[i] = _refit(layer, masks[layer.name], x, target[layer.name], ridge)
        pruned = pruned.replace_layers(layers)
    return pruned, masks


def _refit(layer, mask: np.ndarray, x: np.ndarray, y: np.ndarray, ridge: float):
    """Ridge least-squares refit of the kept weights (and bias) of one layer: x -> y."""
    w = layer.weight.copy()
    o = w.shape[0]
    b = None if layer.bias is None else layer.bias.copy()
    if layer.kind == "linear":
        xs, ys, groups = [x], y, 1
    else:
        groups = layer.groups
        kh, kw = w.shape[2:]
        cols = im2col_float(x, kh, kw, layer.stride, layer.padding, layer.dilation)
        kg = w.shape[1] * kh * kw
        xs = [cols[:, g * kg:(g + 1) * kg] for g in range(groups)]
        ys = y.transpose(0, 2, 3, 1).reshape(-1, o)
    og = o // groups
    wm = w.reshape(o, -1)
    mm = mask.reshape(o, -1)
    for g in range(groups):
        xg = xs[g]
        if b is not None:
            xg = np.concatenate([xg, np.ones((xg.shape[0], 1))], axis=1)
        gram = xg.T @ xg
        lam = ridge * max(float(np.trace(gram)) / gram.shape[0], 1e-12)
        rhs = xg.T @ ys[:, g * og:(g + 1) * og]
        for j in range(og):
            oc = g * og + j
            keep = np.flatnonzero(mm[oc])
            if b is not None:
                keep = np.append(keep, xg.shape[1] - 1)
            if keep.size == 0:
                continue
            sub = gram[np.ix_(keep, keep)] + lam * np.eye(keep.size)
            sol = np.linalg.solve(sub, rhs[keep, j])
            if b is not None:
                b[oc] = sol[-1]
                sol = sol[:-1]
                keep = keep[:-1]
            row = np.zeros(wm.shape[1])
            row[keep] = sol
            wm[oc] = row
    return layer.copy(weight=wm.reshape(w.shape), bias=b)


def svd_rank_for_energy(s, energy: float) -> int:
    """Smallest rank r with ``sum(s[:r]**2) >= energy * sum(s**2)``."""
    e = np.cumsum(np.asarray(s, dtype=np.float64) ** 2)
    if e[-1] == 0:
        return 1
    return int(min(len(e), np.searchsorted(e / e[-1], energy - 1e-12) + 1))


def svd_factor(mat, rank: int | None = None, energy: float | None = None):
    """Factor a 2-D matrix ``W`` (out, in) as ``B @ A`` with ``A`` (r, in) and ``B`` (out, r).

    The singular values are split evenly (``A = sqrt(S_r) V_r^T``, ``B = U_r sqrt(S_r)``) so both factors
    have a similar range. ``||W - B @ A||_F**2 == sum(s[r:]**2)``. Returns ``(A, B, s)``.
    """
    mat = np.asarray(mat, dtype=np.float64)
    u, s, vt = np.linalg.svd(mat, full_matrices=False)
    r = svd_rank_for_energy(s, energy) if rank is None else int(rank)
    r = max(1, min(r, len(s)))
    root = np.sqrt(s[:r])
    return root[:, None] * vt[:r], u[:, :r] * root[None, :], s


def apply_svd(model: Model, spec: CompressSpec, calib_x=None, ridge: float = 1e-3) -> Model:
    """Split every linear and ungrouped conv layer into two low-rank layers where that saves weights.

    ``name`` becomes ``name_lr`` (rank r: a linear ``in -> r`` or a conv with the original kernel and r
    output channels, no bias) followed by ``name`` (``r -> out``, linear or 1x1 conv, with the bias). A
    layer is split only when ``r * (in + out) < in * out``. With a calibration batch ``calib_x`` the second
    factor (and bias) is then refitted by ridge least squares so that, on the factorized model's own
    inputs, it reproduces the original layer's output.
    """
    if spec.svd_rank is None and spec.svd_energy is None:
        return model
    layers, split = [], []
    for layer in model.layers:
        if layer.kind not in COMPUTE_KINDS or layer.groups != 1:
            layers.append(layer)
            continue
        mat = _gemm_view(layer.weight)
        a, b, _ = svd_factor(mat, spec.svd_rank, spec.svd_energy)
        r = a.shape[0]
        if r * (mat.shape[0] + mat.shape[1]) >= mat.size:
            layers.append(layer)
            continue
        lo_name = f"{layer.name}_lr"
        if layer.kind == "linear":
            first = layer.copy(name=lo_name, weight=a, bias=None)
            second = layer.copy(inputs=(lo_name,), weight=b)
        else:
            first = layer.copy(name=lo_name, weight=a.reshape((r,) + layer.weight.shape[1:]), bias=None)
            second = layer.copy(inputs=(lo_name,), weight=b[:, :, None, None], stride=1, padding=0,
                                dilation=1)
        first.meta = dict(layer.meta, svd_rank=r)
        second.meta = dict(layer.meta, svd_rank=r)
        split.append(len(layers) + 1)
        layers += [first, second]
    out = model.replace_layers(layers)
    if calib_x is not None and split:
        target = model.forward_float(calib_x, return_all=True)
        for i in split:
            la = layers[i]
            x = out.forward_float(calib_x, return_all=True)[la.inputs[0]]
            layers[i] = _refit(la, np.ones(la.weight.shape, dtype=bool), x, target[la.name], ridge)
            out = out.replace_layers(layers)
    return out


# ============================================================================================== weights
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
    m = np.minimum(np.abs(v), _POW2_MAX)
    lower = np.exp2(np.floor(np.log2(np.maximum(m, 1.0))))
    mag = np.where(m >= 1.5 * lower, 2 * lower, lower)
    mag = np.where(m < 0.5, 0.0, np.minimum(mag, _POW2_MAX))
    return (np.sign(v) * mag).astype(np.int64)


def _quant_uniform(u: np.ndarray, fmt: str, e: np.ndarray) -> np.ndarray:
    x = u / np.exp2(e)[:, None]
    if fmt == "pow2":
        return _pow2_levels(x)
    b = _INT_BITS[fmt]
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
    qmax = _POW2_MAX if fmt == "pow2" else (1 << (_INT_BITS[fmt] - 1)) - 1
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


# ============================================================================================== arithmetic
@dataclass(frozen=True)
class Arith:
    """The arithmetic fields of a MAC array configuration (duck-types ``hwsim.config.MacArrayConfig``)."""

    weight_format: str = "int8"
    act_bits: int = 8
    acc_bits: int = 32
    overflow: str = "saturate"
    rounding: str = "half_up"

    def replace(self, **changes) -> Arith:
        return dataclasses.replace(self, **changes)


def _layer_cfg(base, weight_format: str, act_bits: int):
    if hasattr(base, "replace"):
        return base.replace(weight_format=weight_format, act_bits=act_bits)
    return Arith(weight_format, act_bits, base.acc_bits, base.overflow, base.rounding)


def _ovf(x: np.ndarray, cfg) -> np.ndarray:
    lo, hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    if cfg.overflow == "wrap":
        return ((x - lo) & ((1 << cfg.acc_bits) - 1)) + lo
    return np.clip(x, lo, hi)


def reference_gemm(a, w, cfg, shift: int = 0, relu: bool = False, bias=None) -> np.ndarray:
    """The default GEMM executor: ``mac_array.gemm`` plus an optional bias.

    Without ``bias`` this is exactly ``mac_array.gemm(a, w, cfg, shift, relu)``. With ``bias`` (int, shape
    (N,)) it is ``requantize(ovf(accumulate(a, w, cfg) + bias), cfg, shift, relu)`` where ``ovf``
    saturates or wraps to ``cfg.acc_bits`` like every accumulation step (the bias is one extra exact
    addition after the K products). A substitute executor must have the same signature and results.
    """
    if bias is None:
        return mac_array.gemm(a, w, cfg, shift, relu)
    acc = mac_array.accumulate(a, w, cfg)
    acc = _ovf(acc + np.asarray(bias, dtype=np.int64)[None, :], cfg)
    return mac_array.requantize(acc, cfg, shift, relu)


def _round(v: np.ndarray, rounding: str) -> np.ndarray:
    return np.floor(v + 0.5) if rounding == "half_up" else np.rint(v)


def _act_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _calib_exp(values: np.ndarray, bits: int, percentile: float | None) -> int | None:
    a = np.abs(values)
    amax = float(np.percentile(a, percentile)) if percentile is not None else float(a.max(initial=0.0))
    if amax <= 0:
        return None
    return int(math.ceil(math.log2(amax / ((1 << (bits - 1)) - 1))))


# ============================================================================================== layers
@dataclass(frozen=True)
class GemmOp:
    """One GEMM of a layer's lowering: ``out[:, columns] = gemm(A (M, K), W (K, N), cfg, shift, relu)``."""

    layer: str
    group: int
    m: int
    k: int
    n: int
    columns: tuple[int, ...]  # output channels of the layer computed by this GEMM
    shift: int
    relu: bool
    weight_format: str
    act_bits: int
    has_bias: bool


@dataclass
class GemmCall:
    """A :class:`GemmOp` with its operands: what is passed to the GEMM executor."""

    op: GemmOp
    a: np.ndarray  # int64 (M, K) activation values
    w: np.ndarray  # int64 (K, N) weight values
    bias: np.ndarray | None  # int64 (N,) at the accumulator scale, or None


@dataclass
class QLayer:
    """One op of a :class:`CompressedModel` (integer semantics; see the module docstring).

    Common attributes: ``name``, ``kind`` (input, conv2d, linear, relu, sign, maxpool, avgpool, flatten,
    add), ``inputs``, ``out_shape`` (per sample), ``out_exp`` (real value = int * 2**out_exp; None for
    +-1 tensors and raw sign-feeding outputs) and ``out_bits`` (1 for +-1 tensors).

    conv2d / linear attributes: ``weight_format``, ``weight`` (int64 values, (O, C/groups, kh, kw) or
    (out, in)), ``weight_exp`` (O,), ``bias`` (int64 (O,) at scale 2**(in_exp + weight_exp), or None),
    ``in_exp`` (0 for +-1 inputs), ``shift`` (int64 (O,)), ``relu``, ``act_bits`` (the cfg.act_bits of
    the layer: 1 for binary layers, else the model's act_bits), ``stride``, ``padding``, ``dilation``,
    ``groups``, ``pad_value`` (-1 when the input is +-1, else 0) and ``gain`` (float (O,), see the module
    docstring). Pooling: ``kernel``, ``stride``; avgpool ``shift``. add: ``shift`` = (left shift of input
    0, left shift of input 1, right shift of the sum).
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    out_shape: tuple[int, ...]
    out_exp: int | None
    out_bits: int
    weight_format: str | None = None
    weight: np.ndarray | None = None
    weight_exp: np.ndarray | None = None
    bias: np.ndarray | None = None
    in_exp: int | None = None
    shift: np.ndarray | None = None
    relu: bool = False
    act_bits: int = 8
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    kernel: int = 0
    pad_value: int = 0
    gain: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ description for accelerators
    @property
    def is_compute(self) -> bool:
        return self.kind in COMPUTE_KINDS

    def cfg(self, base=None):
        """The per-layer MAC array configuration: ``base`` with this layer's weight_format and act_bits."""
        return _layer_cfg(Arith() if base is None else base, self.weight_format or "int8", self.act_bits)

    def weight_matrices(self) -> list[np.ndarray]:
        """The GEMM weight matrix of every group, (K, O/groups) int64 (linear: one (in, out) matrix)."""
        if self.kind == "linear":
            return [np.ascontiguousarray(self.weight.T)]
        og = self.weight.shape[0] // self.groups
        return [np.ascontiguousarray(self.weight[g * og:(g + 1) * og].reshape(og, -1).T)
                for g in range(self.groups)]

    def _shift_groups(self, g: int) -> list[tuple[int, np.ndarray]]:
        og = self.weight.shape[0] // (self.groups if self.kind == "conv2d" else 1)
        cols = np.arange(g * og, (g + 1) * og)
        sh = self.shift[cols]
        return [(int(s), cols[sh == s]) for s in np.unique(sh)]

    def gemm_ops(self, batch: int = 1) -> list[GemmOp]:
        """The GEMMs this layer lowers to for a batch of ``batch`` samples (shapes only)."""
        if not self.is_compute:
            return []
        m = batch * (int(np.prod(self.out_shape[1:])) if self.kind == "conv2d" else 1)
        k = int(np.prod(self.weight.shape[1:]))
        ops = []
        for g in range(self.groups if self.kind == "conv2d" else 1):
            for s, cols in self._shift_groups(g):
                ops.append(GemmOp(self.name, g, m, k, len(cols), tuple(int(c) for c in cols), s, self.relu,
                                  self.weight_format, self.act_bits, self.bias is not None))
        return ops

    def lower(self, x: np.ndarray) -> list[GemmCall]:
        """The GEMM calls (with operands) for the integer input ``x`` (N, C, H, W) or (N, F)."""
        x = np.asarray(x, dtype=np.int64)
        if self.kind == "linear":
            mats = [x]
        else:
            p = self.padding
            if p:
                x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.pad_value)
            mats = [a for a, _ in mac_array.conv2d_as_gemms(x, self.weight, self.stride, 0, self.dilation,
                                                             self.groups)]
        wmats = self.weight_matrices()
        calls = []
        for op in self.gemm_ops(x.shape[0]):
            g = op.group
            og = wmats[g].shape[1]
            local = np.asarray(op.columns) - g * og
            bias = None if self.bias is None else self.bias[list(op.columns)]
            calls.append(GemmCall(op, mats[g], np.ascontiguousarray(wmats[g][:, local]), bias))
        return calls

    def run_gemms(self, x: np.ndarray, cfg=None, gemm_fn=None) -> np.ndarray:
        """Integer forward of a conv2d / linear layer through ``gemm_fn`` (default :func:`reference_gemm`)."""
        gemm_fn = reference_gemm if gemm_fn is None else gemm_fn
        lcfg = self.cfg(cfg)
        n = x.shape[0]
        o = self.weight.shape[0]
        calls = self.lower(x)
        rows = calls[0].a.shape[0]
        out = np.empty((rows, o), dtype=np.int64)
        for c in calls:
            if c.bias is None:
                y = gemm_fn(c.a, c.w, lcfg, c.op.shift, c.op.relu)
            else:
                y = gemm_fn(c.a, c.w, lcfg, c.op.shift, c.op.relu, bias=c.bias)
            out[:, list(c.op.columns)] = np.asarray(y, dtype=np.int64)
        if self.kind == "linear":
            return out
        _, ho, wo = self.out_shape
        return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2).copy()

    def forward_int(self, inputs: list[np.ndarray], cfg=None, gemm_fn=None) -> np.ndarray:
        """Integer forward of this op given the integer values of its inputs."""
        x = inputs[0]
        k = self.kind
        if k in COMPUTE_KINDS:
            return self.run_gemms(x, cfg, gemm_fn)
        if k == "relu":
            return np.maximum(x, 0)
        if k == "sign":
            return np.where(x >= 0, 1, -1).astype(np.int64)
        if k == "maxpool":
            return pool2d(x, "max", self.kernel, self.stride)
        if k == "flatten":
            return x.reshape(x.shape[0], -1)
        lcfg = self.cfg(cfg)
        if k == "avgpool":
            s = pool2d(x, "sum", self.kernel, self.stride)
            return mac_array.requantize(s, lcfg, int(self.shift[0]), False)
        if k == "add":
            la, lb, rs = (int(v) for v in self.shift)
            s = _ovf((x << la) + (inputs[1] << lb), lcfg)
            return mac_array.requantize(s, lcfg, rs, self.relu)
        raise HwsimError(f"layer {self.name!r}: kind {k!r} has no integer forward")

    # ------------------------------------------------------------------ fake quantization
    def dequant_weight(self) -> np.ndarray:
        e = np.exp2(self.weight_exp.astype(np.float64))
        return self.weight * e.reshape((-1,) + (1,) * (self.weight.ndim - 1))

    def acc_exp(self) -> np.ndarray:
        return (self.in_exp or 0) + self.weight_exp

    def forward_fakequant(self, inputs: list[np.ndarray], rounding: str = "half_up") -> np.ndarray:
        """Float forward of this op on dequantized (real-valued) inputs; mirrors :meth:`forward_int`."""
        x = inputs[0]
        k = self.kind
        if k in COMPUTE_KINDS:
            y = self.accumulate_float(x)
            return self.requantize_float(y, rounding)
        if k == "relu":
            return np.maximum(x, 0.0)
        if k == "sign":
            return np.where(x >= 0, 1.0, -1.0)
        if k == "maxpool":
            return pool2d(x, "max", self.kernel, self.stride)
        if k == "flatten":
            return x.reshape(x.shape[0], -1)
        lo, hi = _act_range(self.act_bits)
        if k == "avgpool":
            s = pool2d(x, "sum", self.kernel, self.stride) / 2.0 ** self.out_exp
            return np.clip(_round(s / 2.0 ** int(self.shift[0]), rounding), lo, hi) * 2.0 ** self.out_exp
        if k == "add":
            y = x + inputs[1]
            if self.relu:
                y = np.maximum(y, 0.0)
            return np.clip(_round(y / 2.0 ** self.out_exp, rounding), lo, hi) * 2.0 ** self.out_exp
        raise HwsimError(f"layer {self.name!r}: kind {k!r} has no fake-quant forward")

    def accumulate_float(self, x: np.ndarray) -> np.ndarray:
        """Real value of ``acc + bias`` (no overflow): float conv / matmul with the dequantized weights."""
        wq = self.dequant_weight()
        if self.kind == "linear":
            y = x @ wq.T
        else:
            y = conv2d_float(x, wq, None, self.stride, self.padding, self.dilation, self.groups,
                             pad_value=float(self.pad_value))
        if self.bias is not None:
            b = self.bias * np.exp2(self.acc_exp().astype(np.float64))
            y = y + (b if y.ndim == 2 else b[None, :, None, None])
        return y

    def requantize_float(self, y: np.ndarray, rounding: str) -> np.ndarray:
        if self.act_bits == 1:
            return np.where(y >= 0, 1.0, -1.0)
        if self.relu:
            y = np.maximum(y, 0.0)
        e_acc = self.acc_exp().astype(np.float64)
        div = np.exp2(e_acc + self.shift)
        shape = (1, -1) if y.ndim == 2 else (1, -1, 1, 1)
        lo, hi = _act_range(self.act_bits)
        q = np.clip(_round(y / div.reshape(shape), rounding), lo, hi)
        return q * div.reshape(shape)


# ============================================================================================== model
class CompressedModel:
    """A compressed model: ordered :class:`QLayer` ops (the first is the ``input`` quantizer).

    Attributes: ``spec`` (:class:`CompressSpec`), ``source`` (the original float model), ``float_model``
    (after low-rank / pruning, before quantization), ``masks`` (pruning keep-masks by layer), ``layers``,
    ``act_bits``, ``cfg`` (arithmetic defaults: acc_bits, overflow, rounding), ``output`` (name of the
    output op) and ``output_exp`` (real logits = ``forward_int(x) * 2**output_exp``).
    """

    def __init__(self, layers, spec: CompressSpec, source: Model, float_model: Model, masks: dict,
                 act_bits: int, cfg):
        self.layers: list[QLayer] = list(layers)
        self.spec = spec
        self.source = source
        self.float_model = float_model
        self.masks = masks
        self.act_bits = act_bits
        self.cfg = cfg
        self.name = f"{source.name}@{spec}"

    @property
    def output(self) -> str:
        return self.layers[-1].name

    @property
    def output_exp(self) -> int:
        return self.layers[-1].out_exp

    @property
    def input_exp(self) -> int:
        return self.layers[0].out_exp

    def layer(self, name: str) -> QLayer:
        for la in self.layers:
            if la.name == name:
                return la
        names = ", ".join(la.name for la in self.layers)
        raise HwsimError(f"layer {name!r} is not allowed: expected one of {names}")

    def compute_layers(self) -> list[QLayer]:
        return [la for la in self.layers if la.is_compute]

    def gemm_ops(self, batch: int = 1) -> list[GemmOp]:
        """Every GEMM of the model for a batch of ``batch`` samples, in execution order."""
        return [op for la in self.compute_layers() for op in la.gemm_ops(batch)]

    def quantize_input(self, x, rounding: str | None = None) -> np.ndarray:
        """Float images (N, C, H, W) -> int64 activation values at ``2**input_exp`` (rounded, clamped)."""
        x = self.source._check_input(x)
        inp = self.layers[0]
        lo, hi = _act_range(inp.out_bits)
        rounding = self.cfg.rounding if rounding is None else rounding
        return np.clip(_round(x / 2.0 ** inp.out_exp, rounding), lo, hi).astype(np.int64)

    def run_int(self, x_int, gemm_fn=None, cfg=None, return_all: bool = False):
        """Integer forward from already quantized input values (see :meth:`forward_int`)."""
        cfg = self.cfg if cfg is None else cfg
        acts = {INPUT: np.asarray(x_int, dtype=np.int64)}
        for la in self.layers[1:]:
            acts[la.name] = la.forward_int([acts[i] for i in la.inputs], cfg, gemm_fn)
        return acts if return_all else acts[self.output]

    def forward_int(self, x, gemm_fn=None, cfg=None, return_all: bool = False):
        """Bit-exact integer inference of float images ``x`` (N, C, H, W); returns int64 logits.

        ``gemm_fn(a, w, cfg, shift, relu)`` (plus ``bias=`` for layers with a bias) executes every GEMM;
        default :func:`reference_gemm` (``hwsim.models.mac_array``). ``cfg`` supplies acc_bits, overflow
        and rounding (default ``self.cfg``); each layer replaces its weight_format and act_bits.
        """
        rounding = None if cfg is None else cfg.rounding
        return self.run_int(self.quantize_input(x, rounding), gemm_fn, cfg, return_all)

    def forward_fakequant(self, x, return_all: bool = False):
        """Float64 simulation of the quantized pipeline; returns real-valued logits."""
        acts = {INPUT: self.quantize_input(x) * 2.0 ** self.input_exp}
        for la in self.layers[1:]:
            acts[la.name] = la.forward_fakequant([acts[i] for i in la.inputs], self.cfg.rounding)
        return acts if return_all else acts[self.output]

    def predict(self, x, mode: str = "int") -> np.ndarray:
        if mode == "int":
            y = self.forward_int(x)
        elif mode == "fakequant":
            y = self.forward_fakequant(x)
        elif mode == "float":
            y = self.float_model.forward_float(x)
        else:
            raise HwsimError(f"mode={mode!r} is not allowed: expected one of int, fakequant, float")
        return np.argmax(y, axis=1)

    def accuracy(self, x, y, mode: str = "int") -> float:
        return float(np.mean(self.predict(x, mode) == np.asarray(y)))

    def weight_bits(self) -> int:
        """Dense weight storage in bits (codes only; pruned zeros still stored)."""
        return int(sum(la.weight.size * WEIGHT_BITS[la.weight_format] for la in self.compute_layers()))

# ============================================================================================== compile
def _per_input(w: np.ndarray, kind: str, groups: int, v: np.ndarray) -> np.ndarray:
    """Broadcast a per-input-channel vector v (C,) onto the weight layout of a layer."""
    if kind == "linear":
        return v[None, :]
    o, cg = w.shape[:2]
    per_out = np.repeat(v.reshape(groups, cg), o // groups, axis=0)
    return per_out[:, :, None, None]


def _channel_axes(a: np.ndarray) -> tuple[int, ...]:
    return (0, 2, 3) if a.ndim == 4 else (0,)


def sign_thresholds(y: np.ndarray, a: np.ndarray, candidates: int = 49) -> np.ndarray:
    """Per-channel threshold ``t`` such that ``alpha + beta * sign(y - t)`` best fits ``a``.

    ``y`` is the pre-activation the pipeline computes (N, C, ...) and ``a`` the float activation it should
    stand for (same shape), on the calibration batch. Candidates are 0 and quantiles of each channel of
    ``y``; alpha and beta are fitted by least squares for each, sign(0) = +1.
    """
    yc = np.moveaxis(y, 1, 0).reshape(y.shape[1], -1)
    ac = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)
    out = np.zeros(yc.shape[0])
    qs = np.linspace(0.02, 0.98, candidates)
    for c in range(yc.shape[0]):
        yy, aa = yc[c], ac[c]
        cand = np.concatenate([[0.0], np.quantile(yy, qs)])
        sgn = np.where(yy[None, :] >= cand[:, None], 1.0, -1.0)  # (T, n)
        ms = sgn.mean(axis=1)
        var = 1.0 - ms * ms
        cov = (sgn * aa[None, :]).mean(axis=1) - aa.mean() * ms
        gain = np.where(var > 1e-9, cov * cov / np.maximum(var, 1e-9), -1.0)
        out[c] = cand[int(np.argmax(gain))] if gain.max() > 0 else 0.0
    return out


def _plan(fm: Model, formats: dict[str, str]):
    """Decide relu -> sign conversions, relu fusion, raw (sign-feeding) producers and gain absorption."""
    cons = {n: [la for la in fm.layers if n in la.inputs] for n in [INPUT] + fm.names()}
    by_name = {la.name: la for la in fm.layers}
    passthrough = ("maxpool", "flatten")

    def reaches_binary(name: str) -> bool:
        for c in cons[name]:
            if c.kind in COMPUTE_KINDS and formats[c.name] == "binary":
                return True
            if c.kind in passthrough + ("relu",) and reaches_binary(c.name):
                return True
        return False

    domain, op_kind = {INPUT: "int"}, {}
    for la in fm.layers:
        d = domain[la.inputs[0]]
        if la.kind == "relu":
            op_kind[la.name] = "sign" if (d == "sign" or reaches_binary(la.name)) else "relu"
            domain[la.name] = "sign" if op_kind[la.name] == "sign" else "int"
        elif la.kind in passthrough:
            domain[la.name] = d
        elif la.kind in ("avgpool", "add"):
            if d == "sign" or any(domain[i] == "sign" for i in la.inputs):
                raise HwsimError(f"layer {la.name!r}: {la.kind} of a +-1 (binarized) tensor is not supported")
            domain[la.name] = "int"
        elif la.kind in COMPUTE_KINDS:
            if formats[la.name] == "binary" and d != "sign":
                raise HwsimError(
                    f"layer {la.name!r}: weight_format 'binary' is not allowed here: a binary layer needs "
                    "+-1 inputs, i.e. a ReLU (through max pooling / flatten) in front of it"
                )
            domain[la.name] = "sign" if formats[la.name] == "binary" else "int"
    # relu fusion into the producing conv / linear / add
    fused = {}
    for la in fm.layers:
        if la.kind == "relu" and op_kind[la.name] == "relu":
            src = la.inputs[0]
            p = by_name.get(src)
            if p is not None and p.kind in COMPUTE_KINDS + ("add",) and len(cons[src]) == 1 \
                    and formats.get(src) != "binary":
                fused[la.name] = src

    def only_to_sign(name: str) -> bool:
        cs = cons[name]
        if not cs:
            return False
        for c in cs:
            if c.kind == "relu" and op_kind[c.name] == "sign":
                continue
            if c.kind in passthrough and only_to_sign(c.name):
                continue
            return False
        return True

    def absorbable(name: str) -> bool:
        cs = cons[name]
        if not cs:
            return False
        for c in cs:
            if c.kind in COMPUTE_KINDS or (c.kind == "relu" and op_kind[c.name] == "sign"):
                continue
            if c.kind in passthrough + ("relu", "avgpool") and absorbable(c.name):
                continue
            return False
        return True

    def sign_below(name: str) -> str | None:
        """The relu-turned-sign op reached from ``name`` through max pooling / flatten, if any."""
        for c in cons[name]:
            if c.kind == "relu" and op_kind[c.name] == "sign":
                return c.name
            if c.kind in passthrough and (r := sign_below(c.name)) is not None:
                return r
        return None

    raw = {la.name for la in fm.compute_layers() if formats[la.name] != "binary" and only_to_sign(la.name)}
    absorb = {la.name for la in fm.compute_layers() if absorbable(la.name)}
    thresh = {la.name for la in fm.compute_layers()
              if (la.name in raw or formats[la.name] == "binary") and sign_below(la.name) is not None}
    return op_kind, fused, raw, absorb, domain, thresh


def compress(model: Model, spec, calib_x, *, act_bits: int = 8, keep_ends: bool | None = None,
             percentile: float | None = None, cfg=None, refit: bool = True,
             bias_correction: bool = True) -> CompressedModel:
    """Compress ``model`` according to ``spec`` (a string or :class:`CompressSpec`).

    Parameters
    ----------
    model : Model
    spec : str or CompressSpec
        See :func:`parse_compress_spec`.
    calib_x : array (N, C, H, W)
        Calibration batch (float): activation exponents, the +-1 folding statistics.
    act_bits : int
        Activation width of non-binary layers (weights are set by the spec: ``int4`` means W4A8).
    keep_ends : bool or None
        Keep the first and last conv / linear layers int8. Default: True for binary, ternary and int2
        (binary always), False otherwise.
    percentile : float or None
        Calibrate activation ranges on this percentile of |activation| instead of the maximum.
    cfg : MacArrayConfig-like or None
        Supplies acc_bits (default 32), overflow (saturate) and rounding (half_up).
    refit : bool
        After pruning or low-rank factorization, refit the kept weights on the calibration batch (see
        :func:`apply_pruning` and :func:`apply_svd`).
    bias_correction : bool
        Remove the mean output error of every quantized (non-binary) channel through its integer bias.

    Returns
    -------
    CompressedModel
        Evaluate with :meth:`CompressedModel.forward_int` (bit-exact, through ``mac_array``) or
        :meth:`CompressedModel.forward_fakequant`.
    """
    sp = parse_compress_spec(spec)
    cfg = Arith() if cfg is None else cfg
    if keep_ends is None:
        keep_ends = sp.weight_format in ("binary", "ternary", "int2")
    if sp.weight_format == "binary":
        keep_ends = True
    if isinstance(act_bits, bool) or not isinstance(act_bits, int) or not 2 <= act_bits <= 16:
        raise HwsimError(f"act_bits={act_bits!r} is not allowed: expected an integer in [2, 16]")
    calib_x = model._check_input(calib_x)
    fm = apply_svd(model, sp, calib_x if refit else None)
    fm, masks = apply_pruning(fm, sp, calib_x if refit else None)
    comp = fm.compute_layers()
    formats = {la.name: sp.weight_format for la in comp}
    if keep_ends:
        formats[comp[0].name] = "int8"
        formats[comp[-1].name] = "int8"
    op_kind, fused, raw, absorb, domain, thresh = _plan(fm, formats)
    shapes = fm.shapes()
    facts = fm.forward_float(calib_x, return_all=True)
    rounding = cfg.rounding
    acc_lo, acc_hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1

    rename = dict(fused)  # fused relu name -> producer name
    e_in = _calib_exp(calib_x, act_bits, None)
    e_in = 0 if e_in is None else e_in
    qlayers = [QLayer(INPUT, "input", (), model.input_shape, e_in, act_bits, act_bits=act_bits)]
    lo, hi = _act_range(act_bits)
    fq = {}  # fake-quant (real-valued) activations on the calibration batch
    fq[INPUT] = np.clip(_round(calib_x / 2.0 ** e_in, rounding), lo, hi) * 2.0 ** e_in
    exps = {INPUT: e_in}
    gains = {INPUT: None}  # per-channel gain of a tensor (None = 1)
    for la in fm.layers:
        if la.name in fused:
            continue
        ins = tuple(rename.get(i, i) for i in la.inputs)
        x = fq[ins[0]]
        g_in = gains[ins[0]]
        shape = shapes[la.name]
        relu_fused = la.name in fused.values()
        out_name = la.name
        if la.kind in COMPUTE_KINDS:
            fmt = formats[la.name]
            w = la.weight.copy()
            b = np.zeros(w.shape[0]) if la.bias is None else la.bias.copy()
            has_bias = la.bias is not None
            sign_in = domain[la.inputs[0]] == "sign"
            if sign_in:
                a = facts[la.inputs[0]]
                axes = _channel_axes(a)
                ma, ms = a.mean(axis=axes), x.mean(axis=axes)
                cov = (a * x).mean(axis=axes) - ma * ms
                var = 1.0 - ms * ms
                beta = np.where(var > 1e-9, cov / np.maximum(var, 1e-9), 0.0)
                alpha = ma - beta * ms
                w_alpha = w * _per_input(w, la.kind, la.groups, alpha)
                b = b + w_alpha.reshape(w.shape[0], -1).sum(axis=1)
                w = w * _per_input(w, la.kind, la.groups, beta)
                has_bias = True
                in_exp = 0
            else:
                in_exp = exps[ins[0]]
                if g_in is not None:
                    w = w / _per_input(w, la.kind, la.groups, g_in)
            if la.name in thresh:
                has_bias = True  # the sign threshold goes into the bias
            qw = quantize_weights(w, fmt, sp.per_channel, absorb_gain=la.name in absorb)
            e_acc = in_exp + qw.exp
            bias = None
            if has_bias:
                bias = np.clip(np.rint(b * qw.gain / np.exp2(e_acc.astype(np.float64))), acc_lo, acc_hi)
                bias = bias.astype(np.int64)
            layer_bits = 1 if fmt == "binary" else act_bits
            q = QLayer(out_name, la.kind, ins, shape, None, layer_bits, weight_format=fmt, weight=qw.values,
                       weight_exp=qw.exp, bias=bias, in_exp=in_exp,
                       shift=np.zeros(w.shape[0], dtype=np.int64),
                       relu=relu_fused, act_bits=layer_bits, stride=la.stride, padding=la.padding,
                       dilation=la.dilation, groups=la.groups, pad_value=-1 if sign_in else 0, gain=qw.gain,
                       meta=dict(la.meta))
            y = q.accumulate_float(x)
            if fmt == "binary":
                # Refit per output channel z ~ alpha * A + c by least squares, where A is the integer +-1
                # dot product and z the float pre-activation; the layer outputs sign(A + bias) with
                # bias = floor((c - t) / alpha), exactly sign(alpha * A + c - t) for alpha > 0.
                q.weight_exp = np.zeros(w.shape[0], dtype=np.int64)
                q.bias = None
                acc = q.accumulate_float(x)
                z = facts[la.name]
                axes = _channel_axes(z)
                ma, mz = acc.mean(axis=axes), z.mean(axis=axes)
                var = (acc * acc).mean(axis=axes) - ma * ma
                cov = (acc * z).mean(axis=axes) - ma * mz
                alpha = np.where(var > 1e-12, cov / np.maximum(var, 1e-12), 0.0)
                alpha = np.maximum(alpha, 1e-9)
                c = mz - alpha * ma
                bshape = (1, -1) if acc.ndim == 2 else (1, -1, 1, 1)
                t = np.zeros_like(c)
                if la.name in thresh:
                    t = sign_thresholds(alpha.reshape(bshape) * acc + c.reshape(bshape), np.maximum(z, 0.0))
                q.bias = np.clip(np.floor((c - t) / alpha), acc_lo, acc_hi).astype(np.int64)
                q.gain = 1.0 / alpha
                y = q.accumulate_float(x)
            else:
                if bias_correction and q.bias is not None:
                    # Remove the mean error per output channel (the quantized layer vs. the float layer).
                    g = qw.gain.reshape((1, -1) if y.ndim == 2 else (1, -1, 1, 1))
                    d = (facts[la.name] * g - y).mean(axis=_channel_axes(y))
                    q.bias = np.clip(q.bias + np.rint(d / np.exp2(e_acc.astype(np.float64))), acc_lo, acc_hi)
                    q.bias = q.bias.astype(np.int64)
                    y = q.accumulate_float(x)
            if fmt != "binary" and la.name in thresh:
                # The output only feeds a sign op: binarize at the threshold t (in y units) with which
                # sign(y - t) best stands for the float activation relu(z); t moves into the bias.
                t = sign_thresholds(y, np.maximum(facts[la.name], 0.0))
                q.bias = np.clip(q.bias - np.rint(t / np.exp2(e_acc.astype(np.float64))), acc_lo, acc_hi)
                q.bias = q.bias.astype(np.int64)
                y = q.accumulate_float(x)
            if fmt != "binary" and la.name not in raw:
                yr = np.maximum(y, 0.0) if relu_fused else y
                e_out = _calib_exp(yr, act_bits, percentile)
                e_out = int(e_acc.max()) if e_out is None else max(e_out, int(e_acc.max()))
                q.shift = (e_out - e_acc).astype(np.int64)
                if q.shift.max() > cfg.acc_bits - 1:
                    raise HwsimError(
                        f"layer {la.name!r}: requantization shift {int(q.shift.max())} is not allowed: "
                        f"expected < acc_bits={cfg.acc_bits}"
                    )
                q.out_exp = e_out
            elif la.name in raw and len(set(e_acc.tolist())) == 1:
                q.out_exp = int(e_acc[0])
            gains[out_name] = None if fmt == "binary" or la.name in raw else (
                None if np.all(qw.gain == 1) else qw.gain)
            if la.name not in absorb:
                gains[out_name] = None
            fq[out_name] = q.requantize_float(y, rounding)
        elif la.kind == "relu":
            kind = op_kind[la.name]
            bits = 1 if kind == "sign" else act_bits
            e = None if kind == "sign" else exps[ins[0]]
            q = QLayer(out_name, kind, ins, shape, e, bits, act_bits=bits)
            gains[out_name] = None if kind == "sign" else g_in
            fq[out_name] = q.forward_fakequant([x], rounding)
        elif la.kind in ("maxpool", "flatten"):
            src = next(q for q in qlayers if q.name == ins[0])
            q = QLayer(out_name, la.kind, ins, shape, exps[ins[0]], src.out_bits, act_bits=src.out_bits,
                       kernel=la.kernel, stride=la.stride)
            if la.kind == "flatten" and g_in is not None:
                g_in = np.repeat(g_in, int(np.prod(shapes[la.inputs[0]][1:])))
            gains[out_name] = g_in
            fq[out_name] = q.forward_fakequant([x], rounding)
        elif la.kind == "avgpool":
            area = la.kernel * la.kernel
            if area & (area - 1):
                raise HwsimError(
                    f"layer {la.name!r}: avgpool kernel {la.kernel} is not allowed in the integer pipeline: "
                    "the window area must be a power of two"
                )
            q = QLayer(out_name, "avgpool", ins, shape, exps[ins[0]], act_bits, act_bits=act_bits,
                       shift=np.array([area.bit_length() - 1]), kernel=la.kernel, stride=la.stride)
            gains[out_name] = g_in
            fq[out_name] = q.forward_fakequant([x], rounding)
        else:  # add
            ea, eb = exps[ins[0]], exps[ins[1]]
            if ea is None or eb is None:
                raise HwsimError(f"layer {la.name!r}: add of a raw or +-1 tensor is not supported")
            emin = min(ea, eb)
            y = x + fq[ins[1]]
            yr = np.maximum(y, 0.0) if relu_fused else y
            e_out = _calib_exp(yr, act_bits, percentile)
            e_out = emin if e_out is None else max(e_out, emin)
            q = QLayer(out_name, "add", ins, shape, e_out, act_bits, act_bits=act_bits, relu=relu_fused,
                       shift=np.array([ea - emin, eb - emin, e_out - emin]))
            ga, gb = gains[ins[0]], gains[ins[1]]
            gains[out_name] = None if ga is None and gb is None else (
                (np.ones(shape[0]) if ga is None else ga) + (np.ones(shape[0]) if gb is None else gb)) / 2
            fq[out_name] = q.forward_fakequant([x, fq[ins[1]]], rounding)
        exps[out_name] = q.out_exp
        qlayers.append(q)
    out = qlayers[-1]
    if out.out_exp is None:
        raise HwsimError(f"layer {out.name!r}: the model output must not be a +-1 or raw tensor")
    return CompressedModel(qlayers, sp, model, fm, masks, act_bits, cfg)
