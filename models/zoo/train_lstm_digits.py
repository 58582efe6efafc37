"""Train the zoo's LSTM digits classifiers in pure NumPy and write the committed ``.npz`` files.

Run as ``python -m hwsim.models.zoo.train_lstm_digits [--out DIR]`` (about 20 s on one core). Each digit of
the committed split (``digits.npz``, scikit-learn's 8x8 digits) is read as 8 rows of 8 pixels
(:mod:`hwsim.models.lstm_models`). Writes into ``DIR`` (default: this package's directory):

``digits-lstm.npz``
    Dense LSTM, ``H = 32`` hidden units, linear readout of the last hidden state.
``digits-tt-lstm.npz``
    The same with the input layer ``W`` (128 x 8) as a TT-matrix, output modes (8, 4, 4) (the 4 gates
    folded into the first mode), input modes (2, 2, 2), TT ranks (1, RANK, RANK, 1).
``digits-ht-lstm.npz``
    The same as an HT-matrix over the balanced tree, every node rank RANK.

Training: softmax cross-entropy, back-propagation through time, Adam (batch 32, cosine learning-rate
decay per epoch), everything drawn from ``numpy.random.default_rng(SEED)``, BLAS single-threaded, so a
rerun reproduces the committed weights (up to float rounding). The dense LSTM is trained from scratch
(``EPOCHS`` epochs). The TT and HT classifiers start from the dense one: its ``W`` is decomposed to the
ranks (TT-SVD / hierarchical SVD; the **decomposed** accuracy in the model's ``meta`` is this network
before any retraining), then every parameter, the factors included, is fine-tuned for
``FINETUNE_EPOCHS`` epochs (factor gradients by :func:`hwsim.models.lstm_models.factor_grads`). Weights
are stored as float32; every accuracy in ``meta`` is computed from the stored weights.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from hwsim.models import lstm_models as lm
from hwsim.models import tensor_formats as tf
from hwsim.models.optim import Adam, cosine_lr
from hwsim.models.zoo.train_digits import single_thread_blas

__all__ = ["EPOCHS", "FINETUNE_EPOCHS", "HIDDEN", "RANK", "SEED", "decompose", "main", "train", "train_all"]

SEED = 0
HIDDEN = 32
RANK = 3
EPOCHS = 30
FINETUNE_EPOCHS = 15
LR = 1e-2
BATCH = 32
HERE = os.path.dirname(os.path.abspath(__file__))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def init_dense(rng: np.random.Generator, hidden: int = HIDDEN, n_in: int = 8, name: str = "digits-lstm"):
    """An untrained dense classifier: uniform(+-1/sqrt(H)) weights, forget-gate bias 1."""
    s = 1.0 / np.sqrt(hidden)
    b = np.zeros(4 * hidden)
    b[hidden:2 * hidden] = 1.0
    return lm.LstmClassifier(name, None, rng.uniform(-s, s, (4 * hidden, n_in)),
                             rng.uniform(-s, s, (4 * hidden, hidden)), b, rng.uniform(-s, s, (10, hidden)),
                             np.zeros(10))


def _loss_grads(m: lm.LstmClassifier, xs: np.ndarray, onehot: np.ndarray):
    """Mean cross-entropy of a batch and its gradients (dW, dU, db, dV, dc) by BPTT."""
    B, T, _ = xs.shape
    H = m.hidden
    h, c = np.zeros((B, H)), np.zeros((B, H))
    cache = []
    for t in range(T):
        z = xs[:, t] @ m.W.T + h @ m.U.T + m.b
        i, f, g, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), _sigmoid(z[:, 3 * H:])
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        cache.append((h, c, i, f, g, o, tc))
        h, c = o * tc, c_new
    logits = h @ m.V.T + m.c
    zl = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(zl)
    p /= p.sum(axis=1, keepdims=True)
    loss = -float(np.sum(np.log(p[onehot > 0] + 1e-12))) / B
    dl = (p - onehot) / B
    dV, dc_ = dl.T @ h, dl.sum(axis=0)
    dh = dl @ m.V
    dcell = np.zeros((B, H))
    dW, dU, db = np.zeros_like(m.W), np.zeros_like(m.U), np.zeros_like(m.b)
    for t in range(T - 1, -1, -1):
        h_prev, c_prev, i, f, g, o, tc = cache[t]
        dcell = dcell + dh * o * (1 - tc * tc)
        dz = np.concatenate([dcell * g * i * (1 - i), dcell * c_prev * f * (1 - f), dcell * i * (1 - g * g),
                             dh * tc * o * (1 - o)], axis=1)
        dW += dz.T @ xs[:, t]
        dU += dz.T @ h_prev
        db += dz.sum(axis=0)
        dh = dz @ m.U
        dcell = dcell * f
    return loss, (dW, dU, db, dV, dc_)


def train(m: lm.LstmClassifier, x_train, y_train, epochs: int, seed: int = SEED, lr: float = LR,
          verbose: bool = False) -> lm.LstmClassifier:
    """``m`` after ``epochs`` of Adam on images ``x_train`` (decomposed: the factors are trained)."""
    with single_thread_blas():
        return _train(m, x_train, y_train, epochs, seed, lr, verbose)


def _train(m, x_train, y_train, epochs, seed, lr0, verbose):
    rng = np.random.default_rng(seed)
    xs = lm.digits_sequences(x_train)
    onehot = np.eye(10)[np.asarray(y_train, dtype=np.int64)]
    first = [f.data for f in m.fmt.factors] if m.fmt is not None else [m.W]
    params = [*first, m.U, m.b, m.V, m.c]
    params = [np.array(p, dtype=np.float64) for p in params]
    opt = Adam(params)
    nf = len(first)

    def build(ps):
        if m.fmt is None:
            return lm.LstmClassifier(m.name, None, ps[0], *ps[1:])
        fmt = m.fmt.with_factors(ps[:nf])
        return lm.LstmClassifier(m.name, fmt, tf.to_dense(fmt), *ps[nf:])

    cur = build(params)
    for ep in range(epochs):
        order = rng.permutation(len(xs))
        lr = cosine_lr(lr0, ep, epochs)
        total = 0.0
        for s in range(0, len(xs), BATCH):
            idx = order[s:s + BATCH]
            loss, (dW, *rest) = _loss_grads(cur, xs[idx], onehot[idx])
            total += loss * len(idx)
            grads = (lm.factor_grads(cur.fmt, dW) if cur.fmt is not None else [dW]) + rest
            params = opt.step(params, grads, lr)
            cur = build(params)
        if verbose:
            print(f"  {m.name} epoch {ep + 1:3d}/{epochs}: loss {total / len(xs):.4f}")
    # The committed files hold float32 weights: round now so the returned model equals the stored one.
    return build([p.astype(np.float32).astype(np.float64) for p in params])


def decompose(dense: lm.LstmClassifier, kind: str, rank: int = RANK, name: str | None = None) -> lm.LstmClassifier:
    """``dense`` with its ``W`` as a TT- (``kind="tt"``) or HT-matrix (``"ht"``) of the given rank."""
    if kind == "tt":
        fmt = tf.tt_from_dense(dense.W, lm.out_modes(dense.hidden), lm.IN_MODES, ranks=rank)
    else:
        fmt = tf.ht_from_dense(dense.W, lm.out_modes(dense.hidden), lm.IN_MODES, ranks=rank)
    return lm.LstmClassifier(name or f"digits-{kind}-lstm", fmt, tf.to_dense(fmt), dense.U, dense.b, dense.V,
                             dense.c)


def train_all(x_tr, y_tr, x_te, y_te, hidden: int = HIDDEN, rank: int = RANK, epochs: int = EPOCHS,
              finetune_epochs: int = FINETUNE_EPOCHS, seed: int = SEED, verbose: bool = False):
    """The three classifiers and their ``meta`` records: ``{name: (classifier, meta)}``."""
    rng = np.random.default_rng(seed)
    dense = train(init_dense(rng, hidden), x_tr, y_tr, epochs, seed, verbose=verbose)
    base = {"dataset": "sklearn digits 8x8 as 8 rows of 8 pixels", "seed": seed, "hidden": hidden}
    out = {"digits-lstm": (dense, {**base, "epochs": epochs,
                                   "test_accuracy": lm.accuracy(lm.forward_float(dense, x_te), y_te)})}
    for kind in ("tt", "ht"):
        start = decompose(dense, kind, rank)
        acc_dec = lm.accuracy(lm.forward_float(start, x_te, decomposed=True), y_te)
        tuned = train(start, x_tr, y_tr, finetune_epochs, seed + 1, verbose=verbose)
        out[start.name] = (tuned, {**base, "rank": rank, "finetune_epochs": finetune_epochs,
                                   "decomposed_test_accuracy": acc_dec,
                                   "test_accuracy": lm.accuracy(lm.forward_float(tuned, x_te), y_te)})
    return out


def main(argv=None) -> int:
    from hwsim.models.zoo import load_digits_split

    ap = argparse.ArgumentParser(prog="python -m hwsim.models.zoo.train_lstm_digits",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=HERE, help="output directory (default: the zoo package directory)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    x_tr, y_tr, x_te, y_te = load_digits_split()
    t0 = time.time()
    for name, (m, meta) in train_all(x_tr, y_tr, x_te, y_te, verbose=not args.quiet).items():
        meta = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in meta.items()}
        path = os.path.join(args.out, f"{name}.npz")
        lm.save(m, path, meta)
        print(f"{name}: {m.describe()}, input layer {m.input_params} params, "
              f"test acc {meta['test_accuracy']:.4f}"
              + (f" (decomposed before fine-tuning {meta['decomposed_test_accuracy']:.4f})"
                 if "decomposed_test_accuracy" in meta else "") + f" -> {path}")
    print(f"trained in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
