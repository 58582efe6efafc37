"""Post-training compression of models with deformable layers (``deform_conv2d``) into a
:class:`~hwsim.models.compressed.CompressedModel` (:func:`compress_deform`).

:func:`hwsim.models.compress.compress` sends a model with a ``deform_conv2d`` layer here. The supported
specs are plain weight quantization, ``int8`` or ``int4`` (``-pc`` per channel for the conv / linear
layers), the layers conv2d, linear, relu, maxpool, flatten and deform_conv2d; pruning, low-rank
factorization, binary / ternary weights and fine-tuning are not supported for such models (one-line error).

Integer plan (the pipeline of :mod:`hwsim.models.compressed`):

* input, conv2d, linear, relu, maxpool, flatten as in :func:`hwsim.models.ptq.compress` for integer
  formats: power-of-two weight exponents (:func:`hwsim.models.quantize.quantize_weights`), integer bias at
  the accumulator scale, output exponents calibrated on ``max |activation|`` of the fake-quant pipeline,
  a ReLU fused into the layer it follows when it is that layer's only consumer, and bias correction (the
  mean output error of every channel on the calibration batch moves into the integer bias).
* the **offset conv** (the conv2d whose output is a deform layer's second input) requantizes to the
  exponent ``-F``: its int8 outputs are the Q-format offsets of :mod:`hwsim.models.deform_unit` with ``F``
  fraction bits (``F = meta["offset_frac_bits"]`` of the deform layer, default :data:`OFFSET_FRAC_BITS`;
  int8 offsets in Q.4 cover [-8, 7.9375] pixels in steps of 1/16).
* **deform_conv2d**: per-tensor weight exponent (one requantization shift, as the fixed-point spec has),
  bias at ``2**(in_exp + weight_exp - 2F)``, output exponent calibrated like a conv's.
"""

from __future__ import annotations

import math

import numpy as np
from hwsim.models.compressed import Arith, CompressedModel, QLayer, act_range, round_ties
from hwsim.models.errors import HwsimError
from hwsim.models.graph import COMPUTE_KINDS, DEFORM_KINDS, INPUT, Model
from hwsim.models.quantize import quantize_weights
from hwsim.models.spec import parse_compress_spec

__all__ = ["DEFORM_FORMATS", "OFFSET_FRAC_BITS", "compress_deform"]

#: Weight formats of models with deformable layers (those of the deformable unit's MAC stage).
DEFORM_FORMATS = ("int8", "int4")
#: Default fraction bits of the Q-format offsets (the deform-unit config's default ``frac_bits``).
OFFSET_FRAC_BITS = 4
_KINDS = COMPUTE_KINDS + DEFORM_KINDS + ("relu", "maxpool", "flatten")


def _calib_exp(values: np.ndarray, bits: int) -> int | None:
    amax = float(np.abs(values).max(initial=0.0))
    if amax <= 0:
        return None
    return int(math.ceil(math.log2(amax / ((1 << (bits - 1)) - 1))))


def _channel_mean(a: np.ndarray) -> np.ndarray:
    return a.mean(axis=(0,) if a.ndim == 2 else (0, 2, 3))


def compress_deform(model: Model, spec, calib_x, *, act_bits: int = 8, cfg=None, bias_correction: bool = True,
                    keep_ends: bool | None = None, percentile: float | None = None, train_data=None,
                    **_unused) -> CompressedModel:
    """Compress ``model`` (which has ``deform_conv2d`` layers) for ``spec`` (see the module docstring).

    ``cfg`` supplies acc_bits (default 32), overflow and rounding. Every layer gets the spec's format
    (``keep_ends=True`` and ``percentile`` are rejected); ``train_data``, ``refit`` and ``retrain`` of
    :func:`hwsim.models.ptq.compress` only matter for specs this function rejects.
    """
    if keep_ends:
        raise HwsimError("keep_ends=True is not allowed for a model with deform_conv2d layers: expected False/None")
    if percentile is not None:
        raise HwsimError(f"percentile={percentile!r} is not allowed for a model with deform_conv2d layers: "
                         "expected None (max calibration)")
    sp = parse_compress_spec(spec)
    if sp.weight_format not in DEFORM_FORMATS or sp.prune or sp.svd_rank is not None \
            or sp.svd_energy is not None or sp.finetune:
        raise HwsimError(f"compress={str(sp)!r} is not allowed for model {model.name!r} (it has deform_conv2d "
                         f"layers): expected {' or '.join(DEFORM_FORMATS)} (optionally -pc)")
    bad = [la for la in model.layers if la.kind not in _KINDS]
    if bad:
        raise HwsimError(f"layer {bad[0].name!r} ({bad[0].kind}) is not supported in a model with deform_conv2d "
                         f"layers: expected {', '.join(_KINDS)}")
    cfg = Arith() if cfg is None else cfg
    if isinstance(act_bits, bool) or not isinstance(act_bits, int) or not 2 <= act_bits <= 16:
        raise HwsimError(f"act_bits={act_bits!r} is not allowed: expected an integer in [2, 16]")
    calib_x = model._check_input(calib_x)
    rounding = cfg.rounding
    acc_lo, acc_hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
    shapes = model.shapes()
    facts = model.forward_float(calib_x, return_all=True)
    consumers: dict[str, list] = {}
    for la in model.layers:
        for src in la.inputs:
            consumers.setdefault(src, []).append(la)
    # relu fused into the layer it follows when it is that layer's only consumer
    fused = {}
    for la in model.layers:
        src = la.inputs[0]
        if la.kind == "relu" and src != INPUT and model.layer(src).kind in COMPUTE_KINDS + DEFORM_KINDS \
                and len(consumers[src]) == 1:
            fused[la.name] = src
    offset_frac = {}  # offset conv -> F
    for la in model.layers:
        if la.kind in DEFORM_KINDS:
            src = la.inputs[1]
            f = la.meta.get("offset_frac_bits", OFFSET_FRAC_BITS)
            if src == INPUT or model.layer(src).kind != "conv2d" or src in fused.values():
                raise HwsimError(f"layer {la.name!r}: offsets input {src!r} is not allowed: expected a conv2d layer "
                                 "(the offset conv, with no ReLU)")
            if offset_frac.get(src, f) != f:
                raise HwsimError(f"layer {src!r} feeds deform layers with different offset_frac_bits")
            offset_frac[src] = int(f)

    rename = {relu: prod for relu, prod in fused.items()}
    e_in = _calib_exp(calib_x, act_bits)
    e_in = 0 if e_in is None else e_in
    lo, hi = act_range(act_bits)
    qlayers = [QLayer(INPUT, "input", (), model.input_shape, e_in, act_bits, act_bits=act_bits)]
    fq = {INPUT: np.clip(round_ties(calib_x / 2.0 ** e_in, rounding), lo, hi) * 2.0 ** e_in}
    exps = {INPUT: e_in}
    for la in model.layers:
        if la.name in fused:
            continue
        ins = tuple(rename.get(i, i) for i in la.inputs)
        x = fq[ins[0]]
        shape = shapes[la.name]
        relu = la.name in fused.values()
        if la.kind in COMPUTE_KINDS + DEFORM_KINDS:
            deform = la.kind in DEFORM_KINDS
            qw = quantize_weights(la.weight, sp.weight_format, sp.per_channel and not deform)
            in_exp = exps[ins[0]]
            e_acc = in_exp + qw.exp
            f = int(la.meta.get("offset_frac_bits", OFFSET_FRAC_BITS)) if deform else 0
            if deform and exps[ins[1]] != -f:
                raise HwsimError(f"layer {la.name!r}: offsets at exponent {exps[ins[1]]} are not allowed: expected "
                                 f"-{f} (Q.{f})")
            b = np.zeros(la.weight.shape[0]) if la.bias is None else la.bias
            scale = np.exp2(e_acc.astype(np.float64) - 2 * f)  # the integer bias's unit
            bias = None
            if la.bias is not None:
                bias = np.clip(np.rint(b / scale), acc_lo, acc_hi).astype(np.int64)
            meta = dict(la.meta)
            if deform:
                meta = {"frac_bits": f, "offset_bound": la.meta.get("offset_bound"), "in_shape": shapes[ins[0]]}
            q = QLayer(la.name, la.kind, ins, shape, None, act_bits, weight_format=sp.weight_format,
                       weight=qw.values, weight_exp=qw.exp, bias=bias, in_exp=in_exp,
                       shift=np.zeros(la.weight.shape[0], dtype=np.int64), relu=relu, act_bits=act_bits,
                       stride=la.stride, padding=la.padding, dilation=la.dilation, groups=la.groups,
                       gain=qw.gain, meta=meta)

            def acc(q=q, x=x, ins=ins, deform=deform):
                return q.deform_float(x, fq[ins[1]]) if deform else q.accumulate_float(x)

            y = acc()
            if bias_correction and q.bias is not None:
                d = _channel_mean(facts[la.name] - y)
                q.bias = np.clip(q.bias + np.rint(d / scale), acc_lo, acc_hi).astype(np.int64)
                y = acc()
            if la.name in offset_frac:
                e_out = -offset_frac[la.name]
                if e_out < int(e_acc.max()):
                    raise HwsimError(f"layer {la.name!r}: offsets in Q.{-e_out} are not allowed: the layer's "
                                     f"accumulator has exponent {int(e_acc.max())} (expected <= {e_out})")
            else:
                e_out = _calib_exp(np.maximum(y, 0.0) if relu else y, act_bits)
                e_out = int(e_acc.max()) if e_out is None else max(e_out, int(e_acc.max()))
            q.shift = (e_out - e_acc).astype(np.int64)
            if int(q.shift.max()) + 2 * f > cfg.acc_bits - 1:
                raise HwsimError(f"layer {la.name!r}: requantization shift {int(q.shift.max()) + 2 * f} is not "
                                 f"allowed: expected < acc_bits={cfg.acc_bits}")
            q.out_exp = e_out
            fq[la.name] = q.requantize_float(y, rounding)
        else:  # relu, maxpool, flatten
            q = QLayer(la.name, la.kind, ins, shape, exps[ins[0]], act_bits, act_bits=act_bits, kernel=la.kernel,
                       stride=la.stride)
            fq[la.name] = q.forward_fakequant([x], rounding)
        exps[la.name] = q.out_exp
        qlayers.append(q)
    return CompressedModel(qlayers, sp, model, model, {}, act_bits, cfg)
