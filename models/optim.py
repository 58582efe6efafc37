"""The optimizer pieces every NumPy training script here shares: Adam, the softmax cross-entropy loss and
the cosine learning-rate decay.

The zoo's committed weights were produced with exactly these operations in this order; keep them so a
re-run of a training script reproduces its ``.npz`` bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Adam", "cosine_lr", "softmax_xent"]


class Adam:
    """Adam (Kingma and Ba, 2015) over a fixed list of parameter arrays, with bias correction.

    ``step(params, grads, lr)`` returns the updated arrays (new objects; the caller stores them). ``scales``
    multiplies the learning rate per parameter (e.g. a slower offset conv).
    """

    def __init__(self, params, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.b1, self.b2, self.eps = b1, b2, eps
        self.t = 0

    def step(self, params, grads, lr: float, scales=None) -> list[np.ndarray]:
        b1, b2, eps = self.b1, self.b2, self.eps
        self.t += 1
        out = []
        for j, (p, g) in enumerate(zip(params, grads, strict=True)):
            self.m[j] = b1 * self.m[j] + (1 - b1) * g
            self.v[j] = b2 * self.v[j] + (1 - b2) * g * g
            mh = self.m[j] / (1 - b1 ** self.t)
            vh = self.v[j] / (1 - b2 ** self.t)
            rate = lr if scales is None else scales[j] * lr
            out.append(p - rate * mh / (np.sqrt(vh) + eps))
        return out


def softmax_xent(logits: np.ndarray, onehot: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed cross-entropy of the batch and its gradient with respect to ``logits`` (mean over the batch)."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.sum(np.log(p[onehot > 0] + 1e-12))
    return loss, (p - onehot) / len(logits)


def cosine_lr(lr0: float, epoch: int, epochs: int) -> float:
    """Cosine decay per epoch from ``lr0`` toward 0."""
    return lr0 * 0.5 * (1 + np.cos(np.pi * epoch / epochs))
