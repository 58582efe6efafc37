"""Post-training compression: a float :class:`~hwsim.models.graph.Model` to an integer
:class:`~hwsim.models.compressed.CompressedModel` (:func:`compress`).

The float model is factorized (:mod:`hwsim.models.lowrank`), pruned (:mod:`hwsim.models.prune`) and its
weights quantized (:mod:`hwsim.models.quantize`); activation exponents are calibrated on a calibration
batch, and the requantization shifts, biases and +-1 (binary) foldings are planned so that the integer
pipeline of :mod:`hwsim.models.compressed` stands for the float model.

Binary layers (XNOR-style) take +-1 activations: the ReLU in front of a binary layer becomes a ``sign``
op (sign(0) = +1) applied to the un-rectified producer output (the producer then uses ``shift = 0`` so
the sign is exact), and a binary layer outputs ``sign(acc + bias)`` (``act_bits = 1``, ``weight_exp = 0``:
the bias counts units of the +-1 dot product). The layer that
consumes a +-1 tensor sees the float activation ``a`` replaced by ``alpha + beta * s`` (least squares per
input channel on the calibration batch), folded into its weights and bias; convolutions over +-1
tensors pad with -1 (which stands for a zero activation, since ``alpha - beta = E[a | s = -1] = 0`` after
a ReLU). The first and last conv / linear layers stay int8 (also by default for ternary and int2).

Concat and clip (ONNX imports): a ``concat`` gets one exponent, calibrated on the joined tensor, and
shifts each input to it (left, saturating, from a coarser input; right, rounding, from a finer one). A
``clip`` (ReLU6) keeps its input's exponent unless its range needs a coarser one; a conv / linear / add
whose only reader is a clip is calibrated on the clipped range (what lies above saturates, then the clamp
makes it exact), and the clip's bound is the code ``max / 2**out_exp`` rounded like every other value, so
that clamping codes equals quantizing the clipped value (rounding is monotone). Padded average pools
and those whose window area (``kh * kw``, rectangular windows allowed) is not a power of two divide each
window sum by its pixel count (exactly, with the configured rounding); padded max pools pad with -inf.

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
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from hwsim.models.compressed import Arith, CompressedModel, QLayer, act_range, round_ties
from hwsim.models.errors import HwsimError
from hwsim.models.graph import COMPUTE_KINDS, INPUT, Model, pair
from hwsim.models.lowrank import apply_svd
from hwsim.models.prune import apply_pruning
from hwsim.models.quantize import quantize_weights
from hwsim.models.spec import CompressSpec, parse_compress_spec

__all__ = ["compress", "layer_formats", "plan_ops", "resolve_keep_ends", "sign_thresholds"]


def _area(kernel) -> int:
    """A pool window's pixel count (``kernel``: an int or ``(rows, cols)``)."""
    kh, kw = pair(kernel)
    return kh * kw


def _calib_exp(values: np.ndarray, bits: int, percentile: float | None) -> int | None:
    a = np.abs(values)
    amax = float(np.percentile(a, percentile)) if percentile is not None else float(a.max(initial=0.0))
    if amax <= 0:
        return None
    return int(math.ceil(math.log2(amax / ((1 << (bits - 1)) - 1))))


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


def resolve_keep_ends(sp: CompressSpec, keep_ends: bool | None) -> bool:
    """Whether the first and last conv / linear layers stay int8 (``keep_ends`` of :func:`compress`)."""
    if sp.weight_format == "binary":
        return True
    if keep_ends is None:
        return sp.weight_format in ("binary", "ternary", "int2")
    return bool(keep_ends)


def layer_formats(fm: Model, sp: CompressSpec, keep_ends: bool) -> dict[str, str]:
    """Weight format of every conv / linear layer of ``fm``: the spec's, int8 at the ends if ``keep_ends``."""
    comp = fm.compute_layers()
    formats = {la.name: sp.weight_format for la in comp}
    if keep_ends:
        formats[comp[0].name] = "int8"
        formats[comp[-1].name] = "int8"
    return formats


def plan_ops(fm: Model, formats: dict[str, str]):
    """Plan the integer ops of ``fm`` with the layer ``formats``.

    Returns ``(op_kind, fused, raw, absorb, domain, thresh)``: the kind of every relu (``relu`` or
    ``sign``), the relus fused into their producer (relu name -> producer), the producers whose raw
    accumulator feeds a sign, the layers whose output gain is absorbed by their consumers, the domain of
    every tensor (``int`` or ``sign``) and the layers whose output is binarized at a threshold.
    """
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
        elif la.kind in ("avgpool", "add", "concat", "clip"):
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


def _clip_after(fm: Model, fused: dict[str, str]) -> dict[str, float]:
    """Producers (conv / linear / add, a fused ReLU included) whose only reader is a ``clip``: their
    output exponent is calibrated on the clipped range (values above the clip saturate, exactly)."""
    cons = {n: [la for la in fm.layers if n in la.inputs] for n in [INPUT] + fm.names()}
    kinds = {la.name: la.kind for la in fm.layers}
    out = {}
    for la in fm.layers:
        if la.kind != "clip" or len(cons[la.inputs[0]]) != 1:
            continue
        src = fused.get(la.inputs[0], la.inputs[0])
        if src == la.inputs[0] or len(cons[src]) == 1:
            if kinds.get(src) in COMPUTE_KINDS + ("add",):
                out[src] = float(la.meta["max"])
    return out


def compress(model: Model, spec, calib_x, *, act_bits: int = 8, keep_ends: bool | None = None,
             percentile: float | None = None, cfg=None, refit: bool = True,
             bias_correction: bool = True, train_data=None, retrain: bool = False) -> CompressedModel:
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
    train_data : (x, y) or None
        Training images and labels for a ``+ft`` spec that has no committed fine-tuned variant
        (:func:`hwsim.models.training.finetuned`).
    retrain : bool
        With ``+ft``, fine-tune again even if a committed variant matches.

    A model fine-tuned for this very spec (``model.meta["finetune"]``, written by
    :func:`hwsim.models.training.finetune`) is compressed as trained: its low-rank split is not redone,
    nothing is refitted or bias-corrected, every sign is taken at threshold 0 and the layer consuming a
    +-1 tensor uses its weights as they are (the training saw +-1 inputs).

    Returns
    -------
    CompressedModel
        Evaluate with :meth:`CompressedModel.forward_int` (bit-exact, through ``mac_array``) or
        :meth:`CompressedModel.forward_fakequant`.
    """
    sp = parse_compress_spec(spec)
    cfg = Arith() if cfg is None else cfg
    keep_ends = resolve_keep_ends(sp, keep_ends)
    if isinstance(act_bits, bool) or not isinstance(act_bits, int) or not 2 <= act_bits <= 16:
        raise HwsimError(f"act_bits={act_bits!r} is not allowed: expected an integer in [2, 16]")
    calib_x = model._check_input(calib_x)
    if sp.finetune:
        from hwsim.models.training import finetuned

        ft = finetuned(model, sp, train_data=train_data, act_bits=act_bits, keep_ends=keep_ends, retrain=retrain)
        cm = compress(ft, dataclasses.replace(sp, finetune=False), calib_x, act_bits=act_bits,
                      keep_ends=keep_ends, percentile=percentile, cfg=cfg)
        cm.spec, cm.source, cm.name = sp, model, f"{model.name}@{sp}"
        return cm
    trained = model.meta.get("finetune", {}).get("spec") == str(sp)
    if trained:
        refit = bias_correction = False
    fm = model if trained else apply_svd(model, sp, calib_x if refit else None)
    fm, masks = apply_pruning(fm, sp, calib_x if refit else None)
    bad = [la for la in fm.layers if la.kind not in COMPUTE_KINDS + ("relu", "maxpool", "avgpool", "flatten", "add",
                                                                    "concat", "clip")]
    if bad:
        raise HwsimError(f"layer {bad[0].name!r} ({bad[0].kind}) is not supported by hwsim's compression: "
                         "expected conv2d, linear, relu, maxpool, avgpool, flatten, add, concat and clip layers")
    formats = layer_formats(fm, sp, keep_ends)
    op_kind, fused, raw, absorb, domain, thresh = plan_ops(fm, formats)
    shapes = fm.shapes()
    facts = fm.forward_float(calib_x, return_all=True)
    rounding = cfg.rounding
    acc_lo, acc_hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1

    rename = dict(fused)  # fused relu name -> producer name
    clip_after = _clip_after(fm, fused)
    e_in = _calib_exp(calib_x, act_bits, None)
    e_in = 0 if e_in is None else e_in
    qlayers = [QLayer(INPUT, "input", (), model.input_shape, e_in, act_bits, act_bits=act_bits)]
    lo, hi = act_range(act_bits)
    fq = {}  # fake-quant (real-valued) activations on the calibration batch
    fq[INPUT] = np.clip(round_ties(calib_x / 2.0 ** e_in, rounding), lo, hi) * 2.0 ** e_in
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
            if sign_in and trained:
                has_bias = True  # the trained layer saw the +-1 tensor itself
                in_exp = 0
            elif sign_in:
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
                if trained:
                    # The trained layer computes alpha * A + b with alpha = mean |w| per output channel.
                    alpha = np.maximum(np.abs(w).reshape(w.shape[0], -1).mean(axis=1), 1e-9)
                    c = b
                else:
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
                if la.name in thresh and not trained:
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
            if fmt != "binary" and la.name in thresh and not trained:
                # The output only feeds a sign op: binarize at the threshold t (in y units) with which
                # sign(y - t) best stands for the float activation relu(z); t moves into the bias.
                t = sign_thresholds(y, np.maximum(facts[la.name], 0.0))
                q.bias = np.clip(q.bias - np.rint(t / np.exp2(e_acc.astype(np.float64))), acc_lo, acc_hi)
                q.bias = q.bias.astype(np.int64)
                y = q.accumulate_float(x)
            if fmt != "binary" and la.name not in raw:
                yr = np.maximum(y, 0.0) if relu_fused else y
                if la.name in clip_after:  # only a clip reads it: calibrate on the clipped range
                    yr = np.clip(y, 0.0, clip_after[la.name])
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
                       kernel=la.kernel, stride=la.stride, padding=la.padding, dilation=la.dilation)
            if la.kind == "flatten" and g_in is not None:
                g_in = np.repeat(g_in, int(np.prod(shapes[la.inputs[0]][1:])))
            gains[out_name] = g_in
            fq[out_name] = q.forward_fakequant([x], rounding)
        elif la.kind == "avgpool" and (la.padding or _area(la.kernel) & (_area(la.kernel) - 1)):
            # padded, or a window area that is not a power of two: each window sum is divided by its pixel
            # count (exact integer division, rounded)
            q = QLayer(out_name, "avgpool", ins, shape, exps[ins[0]], act_bits, act_bits=act_bits,
                       shift=np.array([0]), kernel=la.kernel, stride=la.stride, padding=la.padding,
                       meta={"count_pads": la.meta.get("count_pads", (0, 0, 0, 0))})
            gains[out_name] = g_in
            fq[out_name] = q.forward_fakequant([x], rounding)
        elif la.kind == "avgpool":
            area = _area(la.kernel)
            q = QLayer(out_name, "avgpool", ins, shape, exps[ins[0]], act_bits, act_bits=act_bits,
                       shift=np.array([area.bit_length() - 1]), kernel=la.kernel, stride=la.stride)
            gains[out_name] = g_in
            fq[out_name] = q.forward_fakequant([x], rounding)
        elif la.kind in ("concat", "clip"):
            ein = [exps[i] for i in ins]
            if any(e is None for e in ein) or any(gains[i] is not None for i in ins):
                raise HwsimError(f"layer {la.name!r}: {la.kind} of a raw, +-1 or gain-scaled tensor is not supported")
            xs = [fq[i] for i in ins]
            if la.kind == "clip":
                e_out = _calib_exp(np.clip(x, 0.0, la.meta["max"]), act_bits, percentile)
                e_out = ein[0] if e_out is None else max(e_out, ein[0])  # never a left shift of the input
                meta = {"max_code": int(round_ties(np.float64(la.meta["max"] / 2.0 ** e_out), rounding))}
                shift = np.array([e_out - ein[0]], dtype=np.int64)  # right shift to the output exponent
            else:
                e_out = _calib_exp(np.concatenate(xs, axis=1), act_bits, percentile)
                e_out = min(ein) if e_out is None else e_out
                meta = {}
                shift = np.array([e - e_out for e in ein], dtype=np.int64)  # left (saturating) or right
            q = QLayer(out_name, la.kind, ins, shape, e_out, act_bits, act_bits=act_bits, shift=shift, meta=meta)
            gains[out_name] = None
            fq[out_name] = q.forward_fakequant(xs, rounding)
        else:  # add
            ea, eb = exps[ins[0]], exps[ins[1]]
            if ea is None or eb is None:
                raise HwsimError(f"layer {la.name!r}: add of a raw or +-1 tensor is not supported")
            emin = min(ea, eb)
            y = x + fq[ins[1]]
            yr = np.maximum(y, 0.0) if relu_fused else y
            if la.name in clip_after:
                yr = np.clip(y, 0.0, clip_after[la.name])
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
