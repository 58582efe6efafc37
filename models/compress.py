"""Compression of float models into integer :class:`CompressedModel` s: the public entry point.

This module gathers the compression toolkit under one name; each concern lives in its own module:

=================================  ==================================================================
:mod:`hwsim.models.spec`           spec strings (``int4``, ``prune50+int8``, ``2:4+int8``, ...)
:mod:`hwsim.models.prune`          magnitude, block and N:M keep-masks; pruning with refit
:mod:`hwsim.models.lowrank`        truncated-SVD factorization of layers
:mod:`hwsim.models.quantize`       weight quantization to the PE formats (power-of-two scales)
:mod:`hwsim.models.compressed`     :class:`CompressedModel`: bit-exact integer execution, GEMM lowering
:mod:`hwsim.models.ptq`            :func:`compress`: post-training calibration and integer planning
:mod:`hwsim.models.deform_ptq`     the same for models with deformable layers (``deform_conv2d``)
=================================  ==================================================================

Typical use::

    from hwsim.models.compress import compress
    cm = compress(model, "int4", calib_x)
    logits = cm.forward_int(x)
"""

from __future__ import annotations

from hwsim.models import ptq as _ptq
from hwsim.models.compressed import Arith, CompressedModel, GemmCall, GemmOp, QLayer, reference_gemm
from hwsim.models.graph import DEFORM_KINDS
from hwsim.models.lowrank import apply_svd, svd_factor, svd_rank_for_energy
from hwsim.models.prune import apply_pruning, prune_blocks, prune_magnitude, prune_n_m
from hwsim.models.ptq import sign_thresholds
from hwsim.models.quantize import TERNARY_THRESHOLD, QuantizedWeights, quantize_weights
from hwsim.models.spec import QUANT_FORMATS, SPEC_FORMS, WEIGHT_BITS, CompressSpec, parse_compress_spec

__all__ = [
    "QUANT_FORMATS",
    "SPEC_FORMS",
    "TERNARY_THRESHOLD",
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


def compress(model, spec, calib_x, **kwargs) -> CompressedModel:
    """Compress ``model`` for ``spec``: :func:`hwsim.models.ptq.compress` (see there for the arguments), or
    :func:`hwsim.models.deform_ptq.compress_deform` when the model has ``deform_conv2d`` layers."""
    if any(la.kind in DEFORM_KINDS for la in getattr(model, "layers", ())):
        from hwsim.models.deform_ptq import compress_deform

        return compress_deform(model, spec, calib_x, **kwargs)
    return _ptq.compress(model, spec, calib_x, **kwargs)
