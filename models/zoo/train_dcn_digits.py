"""Train ``digits-dcn``, the digits CNN with a deformable 3x3 layer, in pure NumPy and write its ``.npz``.

Run as ``python -m hwsim.models.zoo.train_dcn_digits [--out DIR]`` (reads the committed split, so it needs
no scikit-learn; about 10 s). Writes ``digits-dcn.npz`` into ``DIR`` (default: this package's directory).

Architecture (``digits-cnn`` with its second conv made deformable)::

    conv1   conv 3x3 1->8 pad 1, relu, maxpool 2                     (8, 4, 4)
    off2    conv 3x3 8->18 pad 1 of pool1: the offsets               (18, 4, 4), (dy, dx) per tap, pixels
    dconv2  deformable conv 3x3 8->16 pad 1 of (pool1, off2), relu   (16, 4, 4)
    fc      flatten, linear 256->10

The deformable layer is DCN v1 with the conventions of :mod:`hwsim.models.deform_unit` (bilinear sampling,
neighbours outside the map read as zero). Its backward pass is the usual one: the bilinear weights are
differentiated with respect to the fractional position (``d sample / d dy = (1 - fx)(v10 - v00) +
fx (v11 - v01)`` and likewise for ``dx``), the feature-map gradient is scattered to the four neighbours.

Training: softmax cross-entropy, Adam (lr 3e-3 with cosine decay, batch 32), He-normal initialisation
except the offset conv, which starts at zero (a plain CNN at first, as in the DCN papers) and learns with 0.3 times
the learning rate; everything drawn from ``numpy.random.default_rng(SEED)``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from hwsim.models.graph import Layer, Model, save_model
from hwsim.models.optim import Adam, cosine_lr, softmax_xent
from hwsim.models.zoo.train_digits import col2im, he_init, im2col, single_thread_blas

__all__ = ["EPOCHS", "NAME", "OFFSET_LR_SCALE", "SEED", "build", "forward", "main", "train"]

NAME = "digits-dcn"
SEED = 0
EPOCHS = 30
LR = 3e-3
OFFSET_LR_SCALE = 0.3
BATCH = 32
HERE = os.path.dirname(os.path.abspath(__file__))


def build(rng: np.random.Generator) -> Model:
    """The untrained ``digits-dcn`` (offset conv at zero)."""
    layers = [
        Layer("conv1", "conv2d", ("input",), he_init(rng, (8, 1, 3, 3), 9), np.zeros(8), padding=1),
        Layer("relu1", "relu", ("conv1",)),
        Layer("pool1", "maxpool", ("relu1",), kernel=2, stride=2),
        Layer("off2", "conv2d", ("pool1",), np.zeros((18, 8, 3, 3)), np.zeros(18), padding=1),
        Layer("dconv2", "deform_conv2d", ("pool1", "off2"), he_init(rng, (16, 8, 3, 3), 72), np.zeros(16),
              padding=1),
        Layer("relu2", "relu", ("dconv2",)),
        Layer("flatten", "flatten", ("relu2",)),
        Layer("fc", "linear", ("flatten",), he_init(rng, (10, 256), 256), np.zeros(10)),
    ]
    return Model(layers, (1, 8, 8), NAME)


# ------------------------------------------------------------------------------------ deformable conv
def _deform_forward(x, off, w, b, padding):
    """Batched DCN v1 (stride 1, dilation 1, one offset group, groups 1): x (N, C, H, W), off (N, 2K, H, W)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    kk = kh * kw
    ho, wo = h + 2 * padding - kh + 1, wd + 2 * padding - kw + 1
    i, j = np.divmod(np.arange(kk), kw)
    by = (np.arange(ho)[None, :, None] - padding + i[:, None, None]).astype(np.float64)  # (K, Ho, 1)
    bx = (np.arange(wo)[None, None, :] - padding + j[:, None, None]).astype(np.float64)  # (K, 1, Wo)
    py, px = by[None] + off[:, 0::2], bx[None] + off[:, 1::2]  # (N, K, Ho, Wo)
    y0, x0 = np.floor(py), np.floor(px)
    fy, fx = py - y0, px - x0
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    xf = x.reshape(n, c, h * wd)
    vals, where = [], []
    for a in (0, 1):
        for bb in (0, 1):
            yy, xx = y0 + a, x0 + bb
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < wd)
            pos = np.where(ok, yy * wd + xx, 0).reshape(n, 1, -1)
            v = np.take_along_axis(xf, np.broadcast_to(pos, (n, c, pos.shape[2])), axis=2)
            vals.append(np.where(ok.reshape(n, 1, -1), v, 0.0).reshape(n, c, kk, ho, wo))
            where.append((ok, pos[:, 0]))
    wts = ((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx)
    s = sum(wt[:, None] * v for wt, v in zip(wts, vals, strict=True))  # (N, C, K, Ho, Wo)
    cols = s.transpose(0, 3, 4, 1, 2).reshape(n * ho * wo, c * kk)
    y = (cols @ w.reshape(o, -1).T + b).reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
    return y, (cols, vals, where, wts, fy, fx, x.shape, (ho, wo))


def _deform_backward(g, w, cache):
    """Gradients (dW, db, dx, doff) of :func:`_deform_forward` for the output gradient ``g``."""
    cols, vals, where, wts, fy, fx, (n, c, h, wd), (ho, wo) = cache
    o = w.shape[0]
    kk = w.shape[2] * w.shape[3]
    gm = g.transpose(0, 2, 3, 1).reshape(-1, o)
    dw = (gm.T @ cols).reshape(w.shape)
    db = gm.sum(axis=0)
    ds = (gm @ w.reshape(o, -1)).reshape(n, ho, wo, c, kk).transpose(0, 3, 4, 1, 2)  # (N, C, K, Ho, Wo)
    dx = np.zeros(n * c * h * wd)
    base = (np.arange(n)[:, None, None] * c + np.arange(c)[None, :, None]) * (h * wd)  # (N, C, 1)
    for wt, (ok, pos) in zip(wts, where, strict=True):
        contrib = (ds * wt[:, None]).reshape(n, c, -1) * ok.reshape(n, 1, -1)
        idx = base + pos[:, None, :]
        dx += np.bincount(idx.ravel(), weights=contrib.ravel(), minlength=dx.size)
    v00, v01, v10, v11 = vals
    dfy = (ds * ((1 - fx)[:, None] * (v10 - v00) + fx[:, None] * (v11 - v01))).sum(axis=1)
    dfx = (ds * ((1 - fy)[:, None] * (v01 - v00) + fy[:, None] * (v11 - v10))).sum(axis=1)
    doff = np.empty((n, 2 * kk, ho, wo))
    doff[:, 0::2], doff[:, 1::2] = dfy, dfx
    return dw, db, dx.reshape(n, c, h, wd), doff


# ------------------------------------------------------------------------------------ the whole model
def _conv_forward(la: Layer, a):
    o = la.weight.shape[0]
    cols, book = im2col(a, 3, 3, 1, la.padding)
    y = (cols @ la.weight.reshape(o, -1).T + la.bias).reshape(a.shape[0], book[3], book[4], o).transpose(0, 3, 1, 2)
    return y, (cols, book, a.shape)


def _conv_backward(la: Layer, g, cache):
    cols, book, x_shape = cache
    o = la.weight.shape[0]
    gm = g.transpose(0, 2, 3, 1).reshape(-1, o)
    dx = col2im(gm @ la.weight.reshape(o, -1), x_shape, 3, 3, la.padding, book)
    return (gm.T @ cols).reshape(la.weight.shape), gm.sum(axis=0), dx


def forward(model: Model, x, cache: bool = False):
    """Logits of the batch ``x`` (N, 1, 8, 8) by the training code's own (batched) forward pass."""
    L = {la.name: la for la in model.layers}
    c1, k1 = _conv_forward(L["conv1"], x)
    r1 = np.maximum(c1, 0.0)
    n = x.shape[0]
    r = r1.reshape(n, 8, 4, 2, 4, 2)
    p1 = r.max(axis=(3, 5))
    pmask = r == p1[:, :, :, None, :, None]
    pmask = pmask / pmask.sum(axis=(3, 5), keepdims=True)
    off, ko = _conv_forward(L["off2"], p1)
    d2, kd = _deform_forward(p1, off, L["dconv2"].weight, L["dconv2"].bias, 1)
    r2 = np.maximum(d2, 0.0)
    f = r2.reshape(n, -1)
    logits = f @ L["fc"].weight.T + L["fc"].bias
    if not cache:
        return logits
    return logits, (k1, c1 > 0, pmask, ko, kd, d2 > 0, f)


def _grads(model: Model, cache, g):
    L = {la.name: la for la in model.layers}
    k1, m1, pmask, ko, kd, m2, f = cache
    n = g.shape[0]
    grads = {"fc": (g.T @ f, g.sum(axis=0))}
    gr2 = (g @ L["fc"].weight).reshape(n, 16, 4, 4) * m2
    dw, db, dp_d, doff = _deform_backward(gr2, L["dconv2"].weight, kd)
    grads["dconv2"] = (dw, db)
    ow, ob, dp_o = _conv_backward(L["off2"], doff, ko)
    grads["off2"] = (ow, ob)
    dp = dp_d + dp_o
    dr1 = (pmask * dp[:, :, :, None, :, None]).reshape(n, 8, 8, 8) * m1
    cw, cb, _ = _conv_backward(L["conv1"], dr1, k1)
    grads["conv1"] = (cw, cb)
    return grads


def train(x_train, y_train, epochs: int = EPOCHS, seed: int = SEED, verbose: bool = False) -> Model:
    """Train ``digits-dcn`` on float images (N, 1, 8, 8) in [0, 1] with integer labels; deterministic."""
    with single_thread_blas():
        rng = np.random.default_rng(seed)
        model = build(rng)
        params = [(la, at) for la in model.layers if la.weight is not None for at in ("weight", "bias")]
        opt = Adam([getattr(la, at) for la, at in params])
        scales = [OFFSET_LR_SCALE if la.name == "off2" else 1.0 for la, _ in params]
        n = len(x_train)
        onehot = np.eye(10)[np.asarray(y_train, dtype=np.int64)]
        for ep in range(epochs):
            order = rng.permutation(n)
            lr = cosine_lr(LR, ep, epochs)
            total = 0.0
            for i in range(0, n, BATCH):
                idx = order[i:i + BATCH]
                logits, cache = forward(model, x_train[idx], cache=True)
                loss, dlogits = softmax_xent(logits, onehot[idx])
                total += loss
                grads = _grads(model, cache, dlogits)
                new = opt.step([getattr(la, at) for la, at in params],
                               [grads[la.name][0 if at == "weight" else 1] for la, at in params], lr, scales)
                for (la, at), value in zip(params, new, strict=True):
                    setattr(la, at, value)
            if verbose:
                print(f"  {NAME} epoch {ep + 1:3d}/{epochs}: loss {total / n:.4f}")
        for la, at in params:  # the committed file holds float32 weights
            setattr(la, at, getattr(la, at).astype(np.float32).astype(np.float64))
    return model


def main(argv=None) -> int:
    from hwsim.models import zoo
    from hwsim.models.compress import compress

    ap = argparse.ArgumentParser(prog="python -m hwsim.models.zoo.train_dcn_digits",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=HERE, help="output directory (default: the zoo package directory)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    x_tr, y_tr, x_te, y_te = zoo.load_digits_split()
    t0 = time.time()
    model = train(x_tr, y_tr, verbose=not args.quiet)
    offs = model.forward_float(x_te, return_all=True)["off2"]
    model.meta = {"dataset": "sklearn digits 8x8", "seed": SEED, "epochs": EPOCHS,
                  "test_accuracy": round(model.accuracy(x_te, y_te), 6)}
    path = os.path.join(args.out, f"{NAME}.npz")
    save_model(model, path)
    int8 = compress(model, "int8", x_tr[:512]).accuracy(x_te, y_te)
    print(f"{NAME}: train acc {model.accuracy(x_tr, y_tr):.4f}, test acc {model.accuracy(x_te, y_te):.4f} "
          f"(int8 {int8:.4f}), {sum(model.macs().values())} MACs, offsets |mean| {np.abs(offs).mean():.3f} px, "
          f"max {np.abs(offs).max():.3f} px, {time.time() - t0:.1f} s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
