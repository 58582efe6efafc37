"""Low-rank factorization: truncated SVD of every layer's GEMM weight matrix into two layers."""

from __future__ import annotations

import numpy as np
from hwsim.models.graph import COMPUTE_KINDS, Model
from hwsim.models.prune import gemm_view, refit_layer
from hwsim.models.spec import CompressSpec

__all__ = ["apply_svd", "svd_factor", "svd_rank_for_energy"]


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
        mat = gemm_view(layer.weight)
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
            layers[i] = refit_layer(la, np.ones(la.weight.shape, dtype=bool), x, target[la.name], ridge)
            out = out.replace_layers(layers)
    return out
