"""Train the zoo's digits models in pure NumPy and write the committed ``.npz`` files.

Run as ``python -m hwsim.models.zoo.train_digits [--out DIR]`` (needs scikit-learn for ``load_digits``;
the runtime does not). Writes into ``DIR`` (default: this package's directory):

``digits.npz``
    The fixed split of scikit-learn's 8x8 digits (``train_test_split(test_size=0.25, random_state=0,
    stratify=y)``): ``x_train``/``x_test`` uint8 pixel values 0..16 shaped (N, 8, 8), ``y_train``/``y_test``
    uint8 labels.
``digits-mlp.npz``
    flatten, linear 64->64, relu, linear 64->32, relu, linear 32->10 (6.5k MACs).
``digits-cnn.npz``
    conv 3x3 1->8 pad 1, relu, maxpool 2, conv 3x3 8->16 pad 1, relu, flatten, linear 256->10 (25.6k MACs).

Training: inputs scaled to [0, 1], softmax cross-entropy, Adam (lr 3e-3, batch 32) for a fixed number of
epochs, He-normal initialisation, everything drawn from ``numpy.random.default_rng(SEED)`` so a rerun
reproduces the committed weights (up to float rounding of the BLAS).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import numpy as np
from hwsim.models.graph import Layer, Model, save_model
from hwsim.models.optim import Adam, cosine_lr, softmax_xent

__all__ = ["EPOCHS", "SEED", "build", "digits_split", "main", "train"]

SEED = 0
EPOCHS = {"digits-mlp": 40, "digits-cnn": 30}
LR = 3e-3
BATCH = 32
HERE = os.path.dirname(os.path.abspath(__file__))


def digits_split():
    """The fixed split as uint8 arrays: (x_train, y_train, x_test, y_test), images (N, 8, 8) in 0..16."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.uint8)
    y = d.target.astype(np.uint8)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return x_tr, y_tr, x_te, y_te


def he_init(rng, shape, fan_in):
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def build(name: str, rng: np.random.Generator) -> Model:
    """The untrained architecture ``name`` with weights drawn from ``rng``."""
    if name == "digits-mlp":
        layers = [
            Layer("flatten", "flatten", ("input",)),
            Layer("fc1", "linear", ("flatten",), he_init(rng, (64, 64), 64), np.zeros(64)),
            Layer("relu1", "relu", ("fc1",)),
            Layer("fc2", "linear", ("relu1",), he_init(rng, (32, 64), 64), np.zeros(32)),
            Layer("relu2", "relu", ("fc2",)),
            Layer("fc3", "linear", ("relu2",), he_init(rng, (10, 32), 32), np.zeros(10)),
        ]
    elif name == "digits-cnn":
        layers = [
            Layer("conv1", "conv2d", ("input",), he_init(rng, (8, 1, 3, 3), 9), np.zeros(8), padding=1),
            Layer("relu1", "relu", ("conv1",)),
            Layer("pool1", "maxpool", ("relu1",), kernel=2, stride=2),
            Layer("conv2", "conv2d", ("pool1",), he_init(rng, (16, 8, 3, 3), 72), np.zeros(16), padding=1),
            Layer("relu2", "relu", ("conv2",)),
            Layer("flatten", "flatten", ("relu2",)),
            Layer("fc", "linear", ("flatten",), he_init(rng, (10, 256), 256), np.zeros(10)),
        ]
    else:
        raise ValueError(name)
    return Model(layers, (1, 8, 8), name)


# ------------------------------------------------------------------------------------ backprop (chains only)
def im2col(x, kh, kw, stride, padding):
    """x (N, C, H, W) -> cols (N*Ho*Wo, C*kh*kw) with K ordered (c, i, j), plus bookkeeping."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    ri = (np.arange(kh)[:, None] + stride * np.arange(ho)[None, :])  # (kh, Ho)
    ci = (np.arange(kw)[:, None] + stride * np.arange(wo)[None, :])  # (kw, Wo)
    win = xp[:, :, ri[:, None, :, None], ci[None, :, None, :]]  # (N, C, kh, kw, Ho, Wo)
    cols = win.transpose(0, 4, 5, 1, 2, 3).reshape(n * ho * wo, c * kh * kw)
    return cols, (ri, ci, xp.shape, ho, wo)


def col2im(dcols, x_shape, kh, kw, padding, book):
    ri, ci, xp_shape, ho, wo = book
    n, c = x_shape[:2]
    dwin = dcols.reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    dxp = np.zeros(xp_shape)
    np.add.at(dxp, (slice(None), slice(None), ri[:, None, :, None], ci[None, :, None, :]), dwin)
    h, w = x_shape[2:]
    return dxp[:, :, padding:padding + h, padding:padding + w]


def _forward(model: Model, x):
    cache = []
    a = x
    for layer in model.layers:
        k = layer.kind
        if k == "conv2d":
            o, c, kh, kw = layer.weight.shape
            cols, book = im2col(a, kh, kw, layer.stride, layer.padding)
            y = cols @ layer.weight.reshape(o, -1).T + layer.bias
            n = a.shape[0]
            cache.append((cols, book, a.shape))
            a = y.reshape(n, book[3], book[4], o).transpose(0, 3, 1, 2)
        elif k == "linear":
            cache.append(a)
            a = a @ layer.weight.T + layer.bias
        elif k == "relu":
            cache.append(a > 0)
            a = np.maximum(a, 0.0)
        elif k == "maxpool":
            n, c, h, w = a.shape
            s = layer.kernel
            r = a.reshape(n, c, h // s, s, w // s, s)
            m = r.max(axis=(3, 5), keepdims=True)
            mask = r == m
            mask = mask / mask.sum(axis=(3, 5), keepdims=True)
            cache.append((mask, a.shape))
            a = m[:, :, :, 0, :, 0]
        elif k == "flatten":
            cache.append(a.shape)
            a = a.reshape(a.shape[0], -1)
        else:
            raise ValueError(k)
    return a, cache


def _backward(model: Model, cache, g):
    grads = {}
    for layer, c in zip(reversed(model.layers), reversed(cache), strict=True):
        k = layer.kind
        if k == "conv2d":
            cols, book, x_shape = c
            o, ci, kh, kw = layer.weight.shape
            gm = g.transpose(0, 2, 3, 1).reshape(-1, o)
            grads[layer.name] = ((gm.T @ cols).reshape(layer.weight.shape), gm.sum(axis=0))
            g = col2im(gm @ layer.weight.reshape(o, -1), x_shape, kh, kw, layer.padding, book)
        elif k == "linear":
            grads[layer.name] = (g.T @ c, g.sum(axis=0))
            g = g @ layer.weight
        elif k == "relu":
            g = g * c
        elif k == "maxpool":
            mask, shape = c
            g = (mask * g[:, :, :, None, :, None]).reshape(shape)
        elif k == "flatten":
            g = g.reshape(c)
    return grads


def single_thread_blas():
    """Run the BLAS single-threaded (threadpoolctl comes with scikit-learn): the tiny matrix products of
    this training are faster that way, much faster on a loaded machine, and independent of the core count."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - training without scikit-learn's dependencies
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def train(name: str, x_train, y_train, epochs: int | None = None, seed: int = SEED,
          verbose: bool = False) -> Model:
    """Train ``name`` on float images x_train (N, 1, 8, 8) in [0, 1] with integer labels; deterministic."""
    with single_thread_blas():
        return _train(name, x_train, y_train, epochs, seed, verbose)


def _train(name, x_train, y_train, epochs, seed, verbose) -> Model:
    rng = np.random.default_rng(seed)
    model = build(name, rng)
    epochs = EPOCHS[name] if epochs is None else epochs
    params = [(layer, attr) for layer in model.compute_layers() for attr in ("weight", "bias")]
    opt = Adam([getattr(la, at) for la, at in params])
    n = len(x_train)
    onehot = np.eye(10)[np.asarray(y_train, dtype=np.int64)]
    for ep in range(epochs):
        order = rng.permutation(n)
        lr = cosine_lr(LR, ep, epochs)
        total = 0.0
        for i in range(0, n, BATCH):
            idx = order[i:i + BATCH]
            logits, cache = _forward(model, x_train[idx])
            loss, dlogits = softmax_xent(logits, onehot[idx])
            total += loss
            grads = _backward(model, cache, dlogits)
            new = opt.step([getattr(la, at) for la, at in params],
                           [grads[la.name][0 if at == "weight" else 1] for la, at in params], lr)
            for (la, at), value in zip(params, new, strict=True):
                setattr(la, at, value)
        if verbose:
            print(f"  {name} epoch {ep + 1:3d}/{epochs}: loss {total / n:.4f}")
    # The committed files hold float32 weights: round now so the returned model equals the stored one.
    for la, at in params:
        setattr(la, at, getattr(la, at).astype(np.float32).astype(np.float64))
    return model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwsim.models.zoo.train_digits",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=HERE, help="output directory (default: the zoo package directory)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    x_tr, y_tr, x_te, y_te = digits_split()
    np.savez_compressed(os.path.join(args.out, "digits.npz"), x_train=x_tr, y_train=y_tr, x_test=x_te,
                        y_test=y_te)
    xf_tr = (x_tr.astype(np.float64) / 16.0)[:, None]
    xf_te = (x_te.astype(np.float64) / 16.0)[:, None]
    for name in EPOCHS:
        t0 = time.time()
        model = train(name, xf_tr, y_tr, verbose=not args.quiet)
        model.meta = {"dataset": "sklearn digits 8x8", "seed": SEED, "epochs": EPOCHS[name],
                      "test_accuracy": round(model.accuracy(xf_te, y_te), 6)}
        path = os.path.join(args.out, f"{name}.npz")
        save_model(model, path)
        print(f"{name}: train acc {model.accuracy(xf_tr, y_tr):.4f}, "
              f"test acc {model.accuracy(xf_te, y_te):.4f}, "
              f"{sum(model.macs().values())} MACs, {time.time() - t0:.1f} s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
