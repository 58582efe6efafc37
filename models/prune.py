"""Pruning: keep-masks (unstructured magnitude, R x C blocks, N:M) and their application to a model.

Masks are chosen on float weights. :func:`apply_pruning` zeroes the pruned weights of every conv / linear
layer and, given a calibration batch, refits the kept weights by ridge least squares
(:func:`refit_layer`, also used after a low-rank split by :mod:`hwsim.models.lowrank`).
"""

from __future__ import annotations

import math

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.graph import COMPUTE_KINDS, Model, im2col_float
from hwsim.models.spec import CompressSpec

__all__ = ["apply_pruning", "gemm_view", "prune_blocks", "prune_magnitude", "prune_n_m", "refit_layer"]


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


def gemm_view(w: np.ndarray) -> np.ndarray:
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
            mask = prune_blocks(gemm_view(w).T, spec.block[0], spec.block[1], spec.sparsity)
            mask = mask.T.reshape(w.shape)
        else:
            mask = prune_n_m(gemm_view(w), *spec.nm).reshape(w.shape)
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
        layers[i] = refit_layer(layer, masks[layer.name], x, target[layer.name], ridge)
        pruned = pruned.replace_layers(layers)
    return pruned, masks


def refit_layer(layer, mask: np.ndarray, x: np.ndarray, y: np.ndarray, ridge: float):
    """Ridge least-squares refit of the kept weights (and bias) of one layer so that input ``x`` gives ``y``.

    ``mask`` (the weight's shape) says which weights may be non-zero; the ridge term is ``ridge`` times the
    mean diagonal of the Gram matrix. Returns a copy of ``layer``.
    """
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
