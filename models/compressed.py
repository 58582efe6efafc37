"""Compressed models and their bit-exact integer execution (:class:`CompressedModel`, :class:`QLayer`).

A :class:`CompressedModel` is built by :func:`hwsim.models.compress.compress`; this module only executes
it, bit-exactly through a GEMM executor (default :func:`reference_gemm`, i.e. ``hwsim.models.mac_array``)
or in float64 fake quantization.

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
* ``maxpool`` / ``relu`` / ``flatten`` are exact on integers (a padded maxpool pads with -inf); ``avgpool``
  sums the window and requantizes with ``shift = log2(kh * kw)`` (power-of-two window areas), or, with
  ``meta["count_pads"]`` (padded pools, and unpadded windows whose area is not a power of two), divides
  each zero-padded window sum by ``count * 2**shift`` (its pixel count, see
  :func:`~hwsim.models.graph.pool_counts`) with the configured rounding, exactly; ``add``
  aligns both inputs to the finer exponent with left shifts and requantizes to its calibrated exponent.
  ``clip`` (ReLU6, from ONNX imports) requantizes to its output exponent and clamps to
  ``[0, max / 2**out_exp]``; ``concat`` (ONNX imports) shifts every input to its output exponent and joins
  them.
* ``deform_conv2d`` (inputs: feature map, offsets) is the bit-exact fixed-point DCN of
  :func:`hwsim.models.deform_unit.deform_conv2d_fixed`, image by image. Its offsets input is an integer
  tensor at exponent ``-F`` (``F = meta["frac_bits"]``): exactly the Q-format offsets of the spec (the offset
  conv requantizes to that exponent), clamped to ``floor(meta["offset_bound"] * 2**F)`` when the layer has a
  bound. Weights have one exponent (per tensor), so one ``shift``; the bias is at the accumulator scale
  ``2**(in_exp + weight_exp - 2F)`` (the sample is kept exact at ``2**(2F)`` times the activation scale),
  ``out_exp = in_exp + weight_exp + shift``; acc_bits, overflow and rounding come from ``cfg``.

Binary layers take +-1 activations (a ``sign`` op, sign(0) = +1) and output ``sign(acc + bias)``
(``act_bits = 1``); convolutions over +-1 tensors pad with ``pad_value = -1``.

Fake quantization (:meth:`CompressedModel.forward_fakequant`) evaluates the same pipeline in float64
(dequantized weights, float convolution, float rounding and clamping); since all values are dyadic and
small it equals ``forward_int`` times ``2**out_exp`` exactly unless the accumulator saturates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from hwsim.models import mac_array
from hwsim.models.errors import HwsimError
from hwsim.models.graph import (
    COMPUTE_KINDS,
    DEFORM_KINDS,
    INPUT,
    Model,
    conv2d_float,
    deform_conv2d_float,
    pads4,
    pair,
    pool2d,
    pool_counts,
)
from hwsim.models.spec import WEIGHT_BITS, CompressSpec
from hwsim.models.tables import offset_bound_code

#: Layer kinds an accelerator unit runs; the others run on the host.
UNIT_KINDS = COMPUTE_KINDS + DEFORM_KINDS

__all__ = ["Arith", "CompressedModel", "GemmCall", "GemmOp", "QLayer", "act_range", "overflow",
           "reference_gemm", "round_ties"]


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


def overflow(x: np.ndarray, cfg) -> np.ndarray:
    """Saturate or wrap (``cfg.overflow``) int64 values to ``cfg.acc_bits`` signed bits."""
    lo, hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    if cfg.overflow == "wrap":
        return ((x - lo) & ((1 << cfg.acc_bits) - 1)) + lo
    return np.clip(x, lo, hi)


def reference_gemm(a, w, cfg, shift: int = 0, relu: bool = False, bias=None, requant=None) -> np.ndarray:
    """The default GEMM executor: ``mac_array.gemm`` plus an optional bias and float32 requantizer.

    Without ``bias`` this is exactly ``mac_array.gemm(a, w, cfg, shift, relu)``. With ``bias`` (int, shape
    (N,)) it is ``requantize(ovf(accumulate(a, w, cfg) + bias), cfg, shift, relu)`` where ``ovf``
    saturates or wraps to ``cfg.acc_bits`` like every accumulation step (the bias is one extra exact
    addition after the K products). With ``requant`` (a :class:`~hwsim.models.mac_array.FloatRequant`,
    ONNX imports with float scales or zero points) the weight zero-point row term
    ``-row_zp[n] * sum_k a[m, k]`` is one more such addition and the output is
    :func:`~hwsim.models.mac_array.requantize_f32` (``shift`` and ``relu`` are then unused: a fused ReLU is
    the requantizer's lower clamp). A substitute executor must have the same signature and results.
    """
    if requant is not None:
        return gemm_f32(a, w, cfg, bias, requant)
    if bias is None:
        return mac_array.gemm(a, w, cfg, shift, relu)
    acc = mac_array.accumulate(a, w, cfg)
    acc = overflow(acc + np.asarray(bias, dtype=np.int64)[None, :], cfg)
    return mac_array.requantize(acc, cfg, shift, relu)


def corrected_accumulator(acc, a, cfg, bias, requant) -> np.ndarray:
    """``acc`` plus the bias (zero-point column constant folded in) and the weight zero-point row term, each
    one addition with the accumulator's overflow rule."""
    if bias is not None:
        acc = overflow(acc + np.asarray(bias, dtype=np.int64)[None, :], cfg)
    if requant is not None and requant.row_zp is not None:
        rows = np.asarray(a, dtype=np.int64).sum(axis=1)
        acc = overflow(acc - rows[:, None] * requant.row_zp[None, :], cfg)
    return acc


def gemm_f32(a, w, cfg, bias, requant) -> np.ndarray:
    """The GEMM of a float-scale layer: exact integer accumulation (``mac_array.accumulate``), the bias and
    zero-point corrections (:func:`corrected_accumulator`), then ONNX Runtime's float32 requantizer."""
    acc = mac_array.accumulate(a, w, cfg)
    return mac_array.requantize_f32(corrected_accumulator(acc, a, cfg, bias, requant), requant)


def round_ties(v: np.ndarray, rounding: str) -> np.ndarray:
    """Round floats to integers: ``half_up`` (ties towards +inf) or ``half_even``."""
    return np.floor(v + 0.5) if rounding == "half_up" else np.rint(v)


def _div_round(num: np.ndarray, den: np.ndarray, rounding: str) -> np.ndarray:
    """``num / den`` (int64, ``den > 0``) rounded to an integer exactly: ``half_up`` (ties toward +inf, as
    :func:`mac_array.requantize`) or ``half_even``; a power-of-two ``den`` gives requantize's right shift."""
    q, r = np.divmod(np.asarray(num, dtype=np.int64), np.asarray(den, dtype=np.int64))
    up = 2 * r > den if rounding == "half_even" else 2 * r >= den
    if rounding == "half_even":
        up = up | ((2 * r == den) & (q % 2 == 1))
    return q + up


def act_range(bits: int) -> tuple[int, int]:
    """(min, max) of a signed ``bits``-wide activation."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


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
    weight: np.ndarray | None = field(default=None, compare=False, repr=False)
    """The ``(K, N)`` weight values of this GEMM (for checks such as an N:M pattern; None if not attached)."""
    sparsity: str | None = None
    """The N:M pattern the layer was pruned to (``"2:4"``; declared sparse), or None (not declared)."""
    requant: str = "shift"
    """The requantizer: ``"shift"`` (power of two, ``shift`` and ``cfg.rounding``) or ``"f32"`` (ONNX
    Runtime's float32 scale, :func:`~hwsim.models.mac_array.requantize_f32`)."""
    zp_correction: bool = False
    """The outputs pass the zero-point correction adder (an input or weight zero point is not 0)."""
    row_correction: bool = False
    """Weights have zero points: each output also subtracts ``w_zp[n] * sum_k a[m, k]`` (a row-sum unit)."""


@dataclass
class GemmCall:
    """A :class:`GemmOp` with its operands: what is passed to the GEMM executor."""

    op: GemmOp
    a: np.ndarray  # int64 (M, K) activation values
    w: np.ndarray  # int64 (K, N) weight values
    bias: np.ndarray | None  # int64 (N,) at the accumulator scale, or None
    requant: mac_array.FloatRequant | None = None  # float-scale layers: the float32 requantizer


@dataclass
class QLayer:
    """One op of a :class:`CompressedModel` (integer semantics; see the module docstring).

    Common attributes: ``name``, ``kind`` (input, conv2d, linear, relu, sign, maxpool, avgpool, flatten,
    add, clip, concat), ``inputs``, ``out_shape`` (per sample), ``out_exp`` (real value = int * 2**out_exp; None for
    +-1 tensors and raw sign-feeding outputs) and ``out_bits`` (1 for +-1 tensors).

    conv2d / linear attributes: ``weight_format``, ``weight`` (int64 values, (O, C/groups, kh, kw) or
    (out, in)), ``weight_exp`` (O,), ``bias`` (int64 (O,) at scale 2**(in_exp + weight_exp), or None),
    ``in_exp`` (0 for +-1 inputs), ``shift`` (int64 (O,)), ``relu``, ``act_bits`` (the cfg.act_bits of
    the layer: 1 for binary layers, else the model's act_bits), ``stride``, ``padding`` (int or
    ``(top, bottom, left, right)``), ``dilation``,
    ``groups``, ``pad_value`` (-1 when the input is +-1, else 0) and ``gain`` (float (O,), see the module
    docstring). Pooling: ``kernel``, ``stride``, ``padding``; avgpool ``shift`` and, for a padded pool,
    ``meta["count_pads"]`` (divide by the window's pixel count times ``2**shift``). add: ``shift`` = (left
    shift of input 0, left shift of input 1, right shift of the sum). clip (ReLU6): ``shift`` = (right
    shift to the output exponent,), then a clamp to ``[0, meta["max_code"]]`` (``max / 2**out_exp``, an
    integer). concat:
    ``shift[i] = in_exp[i] - out_exp`` per input (a left shift, saturated to ``act_bits``, when >= 0, else a
    rounding right shift), then the inputs are joined along axis 1. deform_conv2d (inputs: feature map,
    offsets): the conv2d attributes with one ``weight_exp`` and one ``shift`` for all channels, the bias at
    scale ``2**(in_exp + weight_exp - 2F)``, and ``meta`` ``frac_bits`` (F), ``offset_bound`` (pixels or
    None) and ``in_shape`` (the feature map's (C, H, W)).
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
    padding: int | tuple[int, int, int, int] = 0  # (top, bottom, left, right) when not the same
    dilation: int = 1
    groups: int = 1
    kernel: int = 0
    pad_value: int = 0
    gain: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    in_zp: int = 0
    """Input zero point (activation codes are signed: a uint8 tensor's codes and zero point are shifted by
    -128, which leaves every ``code - zero_point`` unchanged)."""
    weight_zp: np.ndarray | None = None
    """Per-output-channel weight zero points (int64 (O,)), or None (symmetric weights)."""
    requant: str = "shift"
    """``"shift"`` (power-of-two exponents) or ``"f32"`` (``scale``, ``out_zp``: ONNX Runtime's requantizer)."""
    scale: np.ndarray | None = None
    """f32 layers: the float32 requantization scale per output channel, ``f32(f32(s_x * s_w) / s_y)``."""
    out_zp: int = 0
    """f32 layers: the output zero point (signed domain, see ``in_zp``)."""

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
        if self.requant == "f32":  # one GEMM per group: the scale is per column
            return [(0, cols)]
        sh = self.shift[cols]
        return [(int(s), cols[sh == s]) for s in np.unique(sh)]

    def gemm_ops(self, batch: int = 1) -> list[GemmOp]:
        """The GEMMs this layer lowers to for a batch of ``batch`` samples (shapes only)."""
        if not self.is_compute:
            return []
        m = batch * (int(np.prod(self.out_shape[1:])) if self.kind == "conv2d" else 1)
        k = int(np.prod(self.weight.shape[1:]))
        ops = []
        wmats = self.weight_matrices()
        for g in range(self.groups if self.kind == "conv2d" else 1):
            og = wmats[g].shape[1]
            for s, cols in self._shift_groups(g):
                zpc = bool(self.in_zp) or self.weight_zp is not None
                ops.append(GemmOp(self.name, g, m, k, len(cols), tuple(int(c) for c in cols), s, self.relu,
                                  self.weight_format, self.act_bits, self.bias is not None or zpc,
                                  weight=wmats[g][:, cols - g * og], sparsity=self.meta.get("sparsity"),
                                  requant=self.requant, zp_correction=zpc,
                                  row_correction=self.weight_zp is not None))
        return ops

    def lower(self, x: np.ndarray) -> list[GemmCall]:
        """The GEMM calls (with operands) for the integer input ``x`` (N, C, H, W) or (N, F)."""
        x = np.asarray(x, dtype=np.int64)
        if self.kind == "linear":
            mats = [x]
        else:
            t, b, le, r = pads4(self.padding)
            if t or b or le or r:
                x = np.pad(x, ((0, 0), (0, 0), (t, b), (le, r)), constant_values=self.pad_value)
            mats = [a for a, _ in mac_array.conv2d_as_gemms(x, self.weight, self.stride, 0, self.dilation,
                                                             self.groups)]
        wmats = self.weight_matrices()
        calls = []
        for op in self.gemm_ops(x.shape[0]):
            g = op.group
            og = wmats[g].shape[1]
            local = np.asarray(op.columns) - g * og
            bias = None if self.bias is None else self.bias[list(op.columns)]
            w = np.ascontiguousarray(wmats[g][:, local])
            fq = None
            if op.zp_correction:
                wzp = None if self.weight_zp is None else self.weight_zp[list(op.columns)]
                corr = mac_array.zero_point_correction(w, self.in_zp, wzp)
                bias = corr if bias is None else bias + corr
            if self.requant == "f32":
                fq = self.float_requant().columns(op.columns)
            calls.append(GemmCall(op, mats[g], w, bias, fq))
        return calls

    def float_requant(self) -> mac_array.FloatRequant:
        """The layer's :class:`~hwsim.models.mac_array.FloatRequant` (f32 layers): its scales, output zero
        point and the ``act_bits`` clamp, raised to the zero point by a fused ReLU."""
        lo, hi = act_range(self.act_bits)
        if self.relu:
            lo = max(lo, self.out_zp)
        scale = np.broadcast_to(np.asarray(self.scale, np.float32).ravel(), (self.weight.shape[0],))
        return mac_array.FloatRequant(scale, self.out_zp, lo, hi, self.weight_zp)

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
            if c.requant is not None:
                y = gemm_fn(c.a, c.w, lcfg, c.op.shift, c.op.relu, bias=c.bias, requant=c.requant)
            elif c.bias is None:
                y = gemm_fn(c.a, c.w, lcfg, c.op.shift, c.op.relu)
            else:
                y = gemm_fn(c.a, c.w, lcfg, c.op.shift, c.op.relu, bias=c.bias)
            out[:, list(c.op.columns)] = np.asarray(y, dtype=np.int64)
        if self.kind == "linear":
            return out
        _, ho, wo = self.out_shape
        return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2).copy()

    # ------------------------------------------------------------------ deformable convolution
    def offset_bound_q(self) -> int | None:
        """The Q-format clamp of a deform_conv2d layer's offsets, ``floor(bound * 2**F)``, or None."""
        return offset_bound_code(self.meta.get("offset_bound"), self.meta["frac_bits"])

    def run_deform(self, x: np.ndarray, offsets: np.ndarray, cfg=None) -> np.ndarray:
        """Integer forward of a deform_conv2d layer (see the module docstring), image by image."""
        from hwsim.models import deform_unit

        base = Arith() if cfg is None else cfg
        bq = self.offset_bound_q()
        offsets = np.asarray(offsets, dtype=np.int64)
        if bq is not None:
            offsets = np.clip(offsets, -bq, bq)
        return np.stack([deform_unit.deform_conv2d_fixed(
            xi, oi, self.weight, frac_bits=int(self.meta["frac_bits"]), shift=int(self.shift[0]), bias=self.bias,
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
            act_bits=self.act_bits, weight_bits=WEIGHT_BITS[self.weight_format], acc_bits=base.acc_bits,
            overflow=base.overflow, rounding=base.rounding, relu=self.relu)
            for xi, oi in zip(np.asarray(x, dtype=np.int64), offsets, strict=True)])

    def forward_int(self, inputs: list[np.ndarray], cfg=None, gemm_fn=None) -> np.ndarray:
        """Integer forward of this op given the integer values of its inputs."""
        x = inputs[0]
        k = self.kind
        if k in COMPUTE_KINDS:
            return self.run_gemms(x, cfg, gemm_fn)
        if k in DEFORM_KINDS:
            return self.run_deform(x, inputs[1], cfg)
        if k == "relu":
            return np.maximum(x, 0)
        if k == "sign":
            return np.where(x >= 0, 1, -1).astype(np.int64)
        if k == "maxpool":
            return pool2d(x, "max", self.kernel, self.stride, self.padding, np.iinfo(np.int64).min, self.dilation)
        if k == "flatten":
            return x.reshape(x.shape[0], -1)
        lcfg = self.cfg(cfg)
        if "ort" in self.meta:
            from hwsim.models import ort_ops

            return ort_ops.forward(self, inputs)
        if k == "avgpool":
            s = pool2d(x, "sum", self.kernel, self.stride, self.padding)
            if "count_pads" in self.meta:
                den = self._pool_counts(x) << int(self.shift[0])
                lo, hi = act_range(lcfg.act_bits)
                return np.clip(_div_round(s, den, lcfg.rounding), lo, hi)
            return mac_array.requantize(s, lcfg, int(self.shift[0]), False)
        if k == "add":
            la, lb, rs = (int(v) for v in self.shift)
            s = overflow((x << la) + (inputs[1] << lb), lcfg)
            return mac_array.requantize(s, lcfg, rs, self.relu)
        if k == "clip":
            return np.clip(mac_array.requantize(x, lcfg, int(self.shift[0]), False), 0, int(self.meta["max_code"]))
        if k == "concat":
            lo, hi = act_range(lcfg.act_bits)
            parts = [np.clip(v << int(d), lo, hi) if d >= 0 else mac_array.requantize(v, lcfg, -int(d), False)
                     for v, d in zip(inputs, self.shift, strict=True)]
            return np.concatenate(parts, axis=1)
        raise HwsimError(f"layer {self.name!r}: kind {k!r} has no integer forward")

    def _pool_counts(self, x: np.ndarray) -> np.ndarray:
        return pool_counts(x.shape[2], x.shape[3], self.kernel, self.stride, self.padding, self.meta["count_pads"])

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
        if k in DEFORM_KINDS:
            return self.requantize_float(self.deform_float(x, inputs[1]), rounding)
        if k == "relu":
            return np.maximum(x, 0.0)
        if k == "sign":
            return np.where(x >= 0, 1.0, -1.0)
        if k == "maxpool":
            return pool2d(x, "max", self.kernel, self.stride, self.padding, -np.inf, self.dilation)
        if k == "flatten":
            return x.reshape(x.shape[0], -1)
        lo, hi = act_range(self.act_bits)
        if k == "avgpool":  # the window mean quantized to out_exp (forward_int's shift is log2(area) + out - in)
            div = self._pool_counts(x) if "count_pads" in self.meta else np.prod(pair(self.kernel))
            s = pool2d(x, "sum", self.kernel, self.stride, self.padding) / div / 2.0 ** self.out_exp
            return np.clip(round_ties(s, rounding), lo, hi) * 2.0 ** self.out_exp
        if k == "add":
            y = x + inputs[1]
            if self.relu:
                y = np.maximum(y, 0.0)
            return np.clip(round_ties(y / 2.0 ** self.out_exp, rounding), lo, hi) * 2.0 ** self.out_exp
        if k in ("clip", "concat"):
            ys = [np.clip(round_ties(v / 2.0 ** self.out_exp, rounding), lo, hi) for v in inputs]
            y = ys[0] if k == "clip" else np.concatenate(ys, axis=1)
            if k == "clip":
                y = np.clip(y, 0, int(self.meta["max_code"]))
            return y * 2.0 ** self.out_exp
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

    def deform_float(self, x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Real value of a deform_conv2d layer's ``acc`` (no overflow) from dequantized inputs: the float DCN
        at the clamped offsets with the dequantized weights and bias (exact: every value is dyadic)."""
        f = int(self.meta["frac_bits"])
        bq = self.offset_bound_q()
        off = np.asarray(offsets, dtype=np.float64)
        if bq is not None:
            off = np.clip(off, -bq / (1 << f), bq / (1 << f))
        b = None if self.bias is None else self.bias * np.exp2(self.acc_exp().astype(np.float64) - 2 * f)
        return deform_conv2d_float(x, off, self.dequant_weight(), b, self.stride, self.padding, self.dilation,
                                   self.groups)

    def requantize_float(self, y: np.ndarray, rounding: str) -> np.ndarray:
        if self.act_bits == 1:
            return np.where(y >= 0, 1.0, -1.0)
        if self.relu:
            y = np.maximum(y, 0.0)
        e_acc = self.acc_exp().astype(np.float64)
        div = np.exp2(e_acc + self.shift)
        shape = (1, -1) if y.ndim == 2 else (1, -1, 1, 1)
        lo, hi = act_range(self.act_bits)
        q = np.clip(round_ties(y / div.reshape(shape), rounding), lo, hi)
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
        nm = getattr(spec, "nm", None) if getattr(spec, "prune", None) == "nm" else None
        if nm:  # the layers declare their N:M pattern, so a unit lowering one layer sees it
            for la in self.compute_layers():
                la.meta["sparsity"] = f"{nm[0]}:{nm[1]}"

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

    def unit_layers(self) -> list[QLayer]:
        """The layers an accelerator unit runs (conv2d, linear, deform_conv2d), in execution order; the
        others (input, pools, adds, ...) run on the host."""
        return [la for la in self.layers if la.kind in UNIT_KINDS]

    def deform_layers(self) -> list[QLayer]:
        """The deform_conv2d layers (not lowered to GEMMs; a deformable-convolution unit runs them)."""
        return [la for la in self.layers if la.kind in DEFORM_KINDS]

    def gemm_ops(self, batch: int = 1) -> list[GemmOp]:
        """Every GEMM of the model for a batch of ``batch`` samples, in execution order (an N:M-pruned
        model's ops declare their pattern in ``GemmOp.sparsity``)."""
        return [op for la in self.compute_layers() for op in la.gemm_ops(batch)]

    def quantize_input(self, x, rounding: str | None = None) -> np.ndarray:
        """Float images (N, C, H, W) -> int64 activation values at ``2**input_exp`` (rounded, clamped)."""
        x = self.source._check_input(x)
        inp = self.layers[0]
        if "ort" in inp.meta:
            from hwsim.models import ort_ops

            return ort_ops.quantize_input(inp, x)
        lo, hi = act_range(inp.out_bits)
        rounding = self.cfg.rounding if rounding is None else rounding
        return np.clip(round_ties(x / 2.0 ** inp.out_exp, rounding), lo, hi).astype(np.int64)

    def run_int(self, x_int, gemm_fn=None, cfg=None, return_all: bool = False, layer_fn=None):
        """Integer forward from already quantized input values (see :meth:`forward_int`)."""
        cfg = self.cfg if cfg is None else cfg
        acts = {INPUT: np.asarray(x_int, dtype=np.int64)}
        for la in self.layers[1:]:
            ins = [acts[i] for i in la.inputs]
            if layer_fn is not None and la.kind in UNIT_KINDS:
                acts[la.name] = np.asarray(layer_fn(la, ins), dtype=np.int64)
            else:
                acts[la.name] = la.forward_int(ins, cfg, gemm_fn)
        return acts if return_all else acts[self.output]

    def forward_int(self, x, gemm_fn=None, cfg=None, return_all: bool = False, layer_fn=None):
        """Bit-exact integer inference of float images ``x`` (N, C, H, W); returns int64 logits.

        ``gemm_fn(a, w, cfg, shift, relu)`` (plus ``bias=`` for layers with a bias) executes every GEMM;
        default :func:`reference_gemm` (``hwsim.models.mac_array``). ``cfg`` supplies acc_bits, overflow
        and rounding (default ``self.cfg``); each layer replaces its weight_format and act_bits.
        ``layer_fn(layer, inputs)``, when given, executes every layer a unit runs (:meth:`unit_layers`;
        ``deform_conv2d``: inputs are the feature map and the offsets, int64 batches) instead of
        :meth:`QLayer.forward_int` (which uses ``gemm_fn``).
        """
        rounding = None if cfg is None else cfg.rounding
        return self.run_int(self.quantize_input(x, rounding), gemm_fn, cfg, return_all, layer_fn)

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
        return int(sum(la.weight.size * WEIGHT_BITS[la.weight_format]
                       for la in self.compute_layers() + self.deform_layers()))
