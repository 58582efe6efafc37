"""Compression-aware fine-tuning: quantizers and pruning masks in the training loop (pure NumPy).

:func:`finetune` takes a trained float :class:`~hwsim.models.graph.Model` and a compression spec and
fine-tunes it so that :func:`hwsim.models.compress.compress` loses little accuracy. The forward pass
computes what the integer pipeline computes (:mod:`hwsim.models.ptq`, :mod:`hwsim.models.compressed`):

* **weights** are fake-quantized by :func:`hwsim.models.quantize.quantize_weights` every step
  (:func:`fake_quant_weight`): ``int8`` / ``int4`` / ``int2`` and ``pow2`` with their power-of-two
  scales; ``ternary`` as ``alpha * t`` (TWN: ``t`` in {-1, 0, 1} above ``0.7 * mean|w|``, ``alpha`` the
  mean kept magnitude); ``binary`` as ``alpha[o] * sign(w)`` (XNOR-Net: ``alpha[o] = mean|w[o]|`` per
  output channel). The first and last layers keep int8 like :func:`~hwsim.models.ptq.compress`;
* **activations** are fake-quantized to ``act_bits`` with the power-of-two scale of the batch maximum
  (:func:`fake_quant_act`), or, in front of a binary layer, binarized: the ReLU becomes ``sign``
  (sign(0) = +1) and convolutions over the +-1 tensor pad with -1, as in the hardware;
* **pruning**: ``pruneP`` and ``blockRxC-P`` prune gradually (Zhu & Gupta 2017: sparsity
  ``s_f * (1 - (1 - e / R)**3)`` at the start of epoch ``e < R``, ``R`` = two thirds of the epochs, masks
  re-chosen by magnitude on the current weights); ``N:M`` chooses its masks once, at the start (NVIDIA's
  ASP recipe: prune, then fine-tune). Pruned weights stay zero and receive no update.

Gradients use the straight-through estimator (STE): a quantizer passes its output gradient unchanged to
its input (masked by the pruning mask for weights); ``sign`` passes it where ``|z| <= 1`` (the hardtanh
STE of BinaryNet, Hubara et al. 2016). Training is softmax cross-entropy, Adam with cosine learning-rate
decay, batches drawn from ``numpy.random.default_rng(seed)`` and a single-threaded BLAS, so a rerun on the
same machine reproduces the weights bit for bit.

The returned model holds the *quantized* weights (``alpha * sign(w)``, ``q * 2**e``, ...) as floats, so
compressing it again re-finds exactly the trained codes, and records the recipe in
``model.meta["finetune"]``. :func:`~hwsim.models.ptq.compress` recognises such a model (same spec) and
keeps what training learned: no post-training refit or bias correction, and ``sign`` at threshold 0
feeding the next layer's weights unchanged. :func:`finetuned` returns a committed variant from the zoo
when one was trained from the same model with the same recipe (:func:`fingerprint`), and fine-tunes
otherwise.

Supported graphs are chains of conv2d (ungrouped), linear, relu, maxpool (kernel == stride) and flatten
layers, like the zoo's digits models.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.graph import COMPUTE_KINDS, INPUT, Model, pads4
from hwsim.models.lowrank import apply_svd
from hwsim.models.optim import Adam, cosine_lr, softmax_xent
from hwsim.models.prune import apply_pruning, gemm_view, prune_blocks, prune_magnitude, prune_n_m
from hwsim.models.quantize import quantize_weights
from hwsim.models.spec import CompressSpec, parse_compress_spec

__all__ = [
    "RECIPE",
    "FinetuneRecipe",
    "fake_quant_act",
    "fake_quant_weight",
    "finetune",
    "finetuned",
    "fingerprint",
    "gradients",
    "prune_schedule",
    "sign_ste_grad",
]


@dataclasses.dataclass(frozen=True)
class FinetuneRecipe:
    """Hyper-parameters of :func:`finetune` (part of every :func:`fingerprint`).

    ``epochs`` and ``lr`` (Adam, cosine decay to 0 over the epochs) are per weight format; ``batch`` is the
    mini-batch size, ``seed`` seeds shuffling, ``calib`` is the number of training images used to refit a
    low-rank split before fine-tuning, ``version`` changes whenever the training code changes numerically.
    """

    epochs: tuple[tuple[str, int], ...] = (("int8", 8), ("int4", 15), ("pow2", 15), ("int2", 25),
                                           ("ternary", 25), ("binary", 40))
    lr: tuple[tuple[str, float], ...] = (("int8", 5e-4), ("int4", 1e-3), ("pow2", 1e-3), ("int2", 1e-3),
                                         ("ternary", 1e-3), ("binary", 3e-3))
    batch: int = 32
    seed: int = 0
    calib: int = 512
    version: int = 1

    def epochs_for(self, weight_format: str) -> int:
        return dict(self.epochs)[weight_format]

    def lr_for(self, weight_format: str) -> float:
        return dict(self.lr)[weight_format]


#: The recipe the committed zoo variants were trained with.
RECIPE = FinetuneRecipe()


# ============================================================================================== quantizers
def fake_quant_weight(w, weight_format: str, per_channel: bool = False, absorb_gain: bool = True) -> np.ndarray:
    """The real values the integer pipeline uses for float weights ``w`` (O, ...).

    ``values * 2**exp / gain`` of :func:`~hwsim.models.quantize.quantize_weights`: ``q * 2**e`` for the
    integer and pow2 formats, ``alpha * t`` for ternary and binary when the scale is absorbed downstream
    (``absorb_gain``), else ``t * 2**round(log2(alpha))``. Its STE gradient is the identity.
    """
    w = np.asarray(w, dtype=np.float64)
    qw = quantize_weights(w, weight_format, per_channel, absorb_gain=absorb_gain)
    scale = np.exp2(qw.exp.astype(np.float64)) / qw.gain
    return qw.values * scale.reshape((-1,) + (1,) * (w.ndim - 1))


def fake_quant_act(a, bits: int) -> np.ndarray:
    """Round ``a`` to the signed ``bits``-wide grid of scale ``2**ceil(log2(max|a| / (2**(bits-1) - 1)))``.

    Ties round half up, as the pipeline's default rounding. The scale covers the maximum, so nothing clips
    and the STE gradient is the identity.
    """
    a = np.asarray(a, dtype=np.float64)
    amax = float(np.abs(a).max(initial=0.0))
    if amax <= 0:
        return a.copy()
    step = 2.0 ** np.ceil(np.log2(amax / ((1 << (bits - 1)) - 1)))
    return np.floor(a / step + 0.5) * step


def sign_ste_grad(z, g) -> np.ndarray:
    """Gradient of ``sign(z)`` under the hardtanh STE: ``g`` where ``|z| <= 1``, else 0."""
    return np.where(np.abs(np.asarray(z)) <= 1.0, g, 0.0)


def prune_schedule(epoch: int, epochs: int, final: float) -> float:
    """Sparsity at the start of ``epoch`` (0-based) of gradual pruning to ``final`` (Zhu & Gupta 2017).

    ``final * (1 - (1 - (epoch + 1) / R)**3)`` for ``epoch < R`` and ``final`` after, with
    ``R = max(1, round(2 * epochs / 3))``.
    """
    ramp = max(1, round(2 * epochs / 3))
    if epoch >= ramp:
        return final
    return final * (1.0 - (1.0 - (epoch + 1) / ramp) ** 3)


def _mask(w: np.ndarray, sp: CompressSpec, sparsity: float) -> np.ndarray:
    if sp.prune == "magnitude":
        return prune_magnitude(w, sparsity)
    if sp.prune == "block":
        return prune_blocks(gemm_view(w).T, sp.block[0], sp.block[1], sparsity).T.reshape(w.shape)
    return prune_n_m(gemm_view(w), *sp.nm).reshape(w.shape)


# ============================================================================================== network
def _conv_index(h: int, w: int, kh: int, kw: int, stride: int, dilation: int):
    """Row and column indices (into the padded input) of every window element: (kh, Ho), (kw, Wo)."""
    ho = (h - dilation * (kh - 1) - 1) // stride + 1
    wo = (w - dilation * (kw - 1) - 1) // stride + 1
    rows = np.arange(kh)[:, None] * dilation + np.arange(ho)[None, :] * stride
    cols = np.arange(kw)[:, None] * dilation + np.arange(wo)[None, :] * stride
    return rows, cols


@dataclasses.dataclass
class _Step:
    """One layer of the training chain and how it is quantized."""

    name: str
    op: str  # conv2d, linear, relu, sign, maxpool, flatten
    layer: object
    fmt: str | None = None
    absorb: bool = True
    pad_value: float = 0.0
    quant_out: bool = False


class _Net:
    """The chain of :class:`_Step` s of a float model under a compression plan, with forward / backward."""

    def __init__(self, model: Model, sp: CompressSpec, act_bits: int, keep_ends: bool):
        from hwsim.models.ptq import layer_formats, plan_ops

        prev = INPUT
        for la in model.layers:
            if la.inputs != (prev,):
                raise HwsimError(f"layer {la.name!r}: fine-tuning is not allowed on this graph: expected a chain "
                                 "(each layer consuming the previous one)")
            if la.kind not in COMPUTE_KINDS + ("relu", "maxpool", "flatten"):
                raise HwsimError(f"layer {la.name!r}: kind {la.kind!r} is not allowed in fine-tuning: expected "
                                 "conv2d, linear, relu, maxpool or flatten")
            if la.kind == "conv2d" and la.groups != 1:
                raise HwsimError(f"layer {la.name!r}: groups={la.groups} is not allowed in fine-tuning: "
                                 "expected 1")
            if la.kind == "maxpool" and not isinstance(la.kernel, int):
                raise HwsimError(f"layer {la.name!r}: maxpool kernel={la.kernel!r} is not allowed in fine-tuning: "
                                 "expected a square window")
            if la.kind == "maxpool" and la.dilation != 1:
                raise HwsimError(f"layer {la.name!r}: maxpool dilation={la.dilation!r} is not allowed in "
                                 "fine-tuning: expected 1")
            if la.kind == "maxpool" and la.kernel != la.stride:
                raise HwsimError(f"layer {la.name!r}: maxpool stride={la.stride} is not allowed in fine-tuning: "
                                 f"expected the kernel size {la.kernel}")
            if la.kind == "maxpool" and la.padding:
                raise HwsimError(f"layer {la.name!r}: maxpool padding={la.padding!r} is not allowed in fine-tuning: "
                                 "expected 0")
            prev = la.name
        self.sp, self.act_bits = sp, act_bits
        formats = layer_formats(model, sp, keep_ends)
        op_kind, fused, raw, absorb, domain, _ = plan_ops(model, formats)
        self.steps = []
        for i, la in enumerate(model.layers):
            if la.kind in COMPUTE_KINDS:
                fmt = formats[la.name]
                nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
                relu_next = nxt is not None and nxt.kind == "relu" and nxt.name in fused
                quant = fmt != "binary" and la.name not in raw and not relu_next
                sign_in = domain[la.inputs[0]] == "sign"
                self.steps.append(_Step(la.name, la.kind, la, fmt, la.name in absorb, -1.0 if sign_in else 0.0,
                                        quant))
            elif la.kind == "relu":
                kind = op_kind[la.name]
                self.steps.append(_Step(la.name, kind, la, quant_out=kind == "relu" and la.name in fused))
            else:
                self.steps.append(_Step(la.name, la.kind, la))
        self.weights = {s.name: s.layer.weight.astype(np.float64).copy() for s in self.steps if s.fmt}
        self.biases = {s.name: (np.zeros(s.layer.weight.shape[0]) if s.layer.bias is None
                                else s.layer.bias.astype(np.float64).copy()) for s in self.steps if s.fmt}
        self.masks = {n: np.ones(w.shape, dtype=bool) for n, w in self.weights.items()}

    def qweight(self, s: _Step) -> np.ndarray:
        return fake_quant_weight(self.weights[s.name] * self.masks[s.name], s.fmt, self.sp.per_channel, s.absorb)

    def forward(self, x: np.ndarray):
        cache = []
        a = fake_quant_act(x, self.act_bits)
        for s in self.steps:
            la = s.layer
            if s.op == "conv2d":
                wq = self.qweight(s)
                o, c, kh, kw = wq.shape
                pt, pb, pl, pr = pads4(la.padding)
                xp = (np.pad(a, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=s.pad_value)
                      if pt or pb or pl or pr else a)
                rows, cols = _conv_index(xp.shape[2], xp.shape[3], kh, kw, la.stride, la.dilation)
                win = xp[:, :, rows[:, None, :, None], cols[None, :, None, :]]  # (N, C, kh, kw, Ho, Wo)
                n, ho, wo = a.shape[0], rows.shape[1], cols.shape[1]
                colmat = win.transpose(0, 4, 5, 1, 2, 3).reshape(n * ho * wo, c * kh * kw)
                y = colmat @ wq.reshape(o, -1).T + self.biases[s.name]
                cache.append((wq, colmat, rows, cols, xp.shape, a.shape))
                a = y.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
            elif s.op == "linear":
                wq = self.qweight(s)
                cache.append((wq, a))
                a = a @ wq.T + self.biases[s.name]
            elif s.op == "relu":
                cache.append(a > 0)
                a = np.maximum(a, 0.0)
            elif s.op == "sign":
                cache.append(a)
                a = np.where(a >= 0, 1.0, -1.0)
            elif s.op == "maxpool":
                n, c, h, w = a.shape
                k = la.kernel
                hc, wc = h // k * k, w // k * k
                r = a[:, :, :hc, :wc].reshape(n, c, hc // k, k, wc // k, k)
                m = r.max(axis=(3, 5), keepdims=True)
                mask = r == m
                cache.append((mask / mask.sum(axis=(3, 5), keepdims=True), a.shape))
                a = m[:, :, :, 0, :, 0]
            else:  # flatten
                cache.append(a.shape)
                a = a.reshape(a.shape[0], -1)
            if s.quant_out:
                a = fake_quant_act(a, self.act_bits)
        return a, cache

    def backward(self, cache, g: np.ndarray) -> dict:
        grads = {}
        for s, c in zip(reversed(self.steps), reversed(cache), strict=True):
            la = s.layer
            if s.op == "conv2d":
                wq, colmat, rows, cols, xp_shape, x_shape = c
                o = wq.shape[0]
                gm = g.transpose(0, 2, 3, 1).reshape(-1, o)
                grads[s.name] = ((gm.T @ colmat).reshape(wq.shape) * self.masks[s.name], gm.sum(axis=0))
                dcols = gm @ wq.reshape(o, -1)
                n, ci, kh, kw = x_shape[0], wq.shape[1], wq.shape[2], wq.shape[3]
                dwin = dcols.reshape(n, rows.shape[1], cols.shape[1], ci, kh, kw).transpose(0, 3, 4, 5, 1, 2)
                dxp = np.zeros(xp_shape)
                np.add.at(dxp, (slice(None), slice(None), rows[:, None, :, None], cols[None, :, None, :]), dwin)
                pt, _, pl, _ = pads4(la.padding)
                g = dxp[:, :, pt:pt + x_shape[2], pl:pl + x_shape[3]]
            elif s.op == "linear":
                wq, x = c
                grads[s.name] = ((g.T @ x) * self.masks[s.name], g.sum(axis=0))
                g = g @ wq
            elif s.op == "relu":
                g = g * c
            elif s.op == "sign":
                g = sign_ste_grad(c, g)
            elif s.op == "maxpool":
                mask, shape = c
                k = la.kernel
                gp = np.zeros(shape)
                n, ch, h, w = shape
                hc, wc = h // k * k, w // k * k
                gp[:, :, :hc, :wc] = (mask * g[:, :, :, None, :, None]).reshape(n, ch, hc, wc)
                g = gp
            else:
                g = g.reshape(c)
        return grads

    def to_model(self, model: Model, meta: dict) -> Model:
        """``model`` with the quantized, pruned weights (float32-representable) and the trained biases."""
        layers = []
        for la in model.layers:
            if la.name in self.weights:
                s = next(s for s in self.steps if s.name == la.name)
                w = self.qweight(s).astype(np.float32).astype(np.float64)
                b = self.biases[la.name].astype(np.float32).astype(np.float64)
                la = la.copy(weight=w, bias=b if la.bias is not None or np.any(b != 0) else None)
            layers.append(la)
        return Model(layers, model.input_shape, model.name, dict(model.meta, finetune=meta))


# ============================================================================================== training
def _resolve(sp: CompressSpec, keep_ends: bool | None) -> bool:
    from hwsim.models.ptq import resolve_keep_ends

    return resolve_keep_ends(sp, keep_ends)


def _base_spec(spec) -> CompressSpec:
    return dataclasses.replace(parse_compress_spec(spec), finetune=False)


def fingerprint(model: Model, spec, act_bits: int = 8, keep_ends: bool | None = None,
                recipe: FinetuneRecipe = RECIPE) -> str:
    """Hex digest identifying a fine-tuning run: the source model's layers and float32 weights, the spec
    (without ``+ft``), ``act_bits``, ``keep_ends`` and the recipe."""
    sp = _base_spec(spec)
    h = hashlib.sha256()
    head = {"spec": str(sp), "act_bits": act_bits, "keep_ends": _resolve(sp, keep_ends),
            "recipe": dataclasses.asdict(recipe), "input_shape": list(model.input_shape)}
    h.update(json.dumps(head, sort_keys=True).encode())
    for la in model.layers:
        h.update(json.dumps([la.name, la.kind, list(la.inputs), la.stride, la.padding, la.dilation, la.groups,
                             la.kernel]).encode())
        for t in (la.weight, la.bias):
            h.update(b"-" if t is None else np.ascontiguousarray(t, dtype=np.float32).tobytes())
    return h.hexdigest()[:20]


def _single_thread_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - without scikit-learn's dependencies
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def finetune(model: Model, spec, x_train, y_train, *, act_bits: int = 8, keep_ends: bool | None = None,
             recipe: FinetuneRecipe = RECIPE, epochs: int | None = None, verbose: bool = False) -> Model:
    """Fine-tune ``model`` with the compression ``spec`` in the loop (see the module docstring).

    Parameters
    ----------
    model : Model
        A trained float model (a chain; see the module docstring).
    spec : str or CompressSpec
        The compression, with or without ``+ft``.
    x_train, y_train : array (N, C, H, W) float, array (N,) int
        Training images and labels (class indices of the model's outputs).
    act_bits : int
        Activation width of the integer pipeline (non-binary layers).
    keep_ends : bool or None
        As for :func:`~hwsim.models.ptq.compress` (default: True for binary, ternary and int2).
    recipe : FinetuneRecipe
        Epochs, learning rate, batch size and seed.
    epochs : int or None
        Override the recipe's epochs (for quick experiments; the result then matches no committed variant).

    Returns
    -------
    Model
        The fine-tuned model, with quantized weights and ``meta["finetune"]`` recording spec, recipe and
        the source's :func:`fingerprint`. Compress it with the same spec (without ``+ft``).
    """
    sp = _base_spec(spec)
    keep = _resolve(sp, keep_ends)
    x_train = model._check_input(x_train)
    y = np.asarray(y_train, dtype=np.int64)
    n_out = model.shapes()[model.output][0]
    if y.shape != (len(x_train),) or y.min(initial=0) < 0 or y.max(initial=0) >= n_out:
        raise HwsimError(f"y_train of shape {y.shape} is not allowed: expected {len(x_train)} labels in "
                         f"[0, {n_out - 1}]")
    epochs = recipe.epochs_for(sp.weight_format) if epochs is None else int(epochs)
    with _single_thread_blas():
        calib = x_train[:recipe.calib]
        src = apply_svd(model, sp, calib)
        if sp.prune == "nm":
            src, _ = apply_pruning(src, sp, calib)  # one-shot N:M masks with the post-training refit
        net = _Net(src, sp, act_bits, keep)
        _train(net, sp, x_train, y, n_out, epochs, recipe.lr_for(sp.weight_format), recipe, verbose)
    meta = {"spec": str(sp), "act_bits": act_bits, "keep_ends": keep, "epochs": epochs,
            "recipe": dataclasses.asdict(recipe), "source": model.name,
            "fingerprint": fingerprint(model, sp, act_bits, keep, recipe)}
    return net.to_model(src, json.loads(json.dumps(meta)))  # as stored: JSON lists, not tuples


def gradients(model: Model, spec, x, y, *, act_bits: int = 8, keep_ends: bool | None = None):
    """Mean cross-entropy of ``model`` under ``spec``'s quantizers on ``(x, y)`` and its STE gradients.

    Returns ``(loss, grads)`` with ``grads[layer] = (d loss / d weight, d loss / d bias)`` for every
    conv / linear layer: the gradients one step of :func:`finetune` applies (no pruning masks).
    """
    sp = _base_spec(spec)
    net = _Net(model, sp, act_bits, _resolve(sp, keep_ends))
    x = model._check_input(x)
    y = np.asarray(y, dtype=np.int64)
    logits, cache = net.forward(x)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = float(-np.mean(np.log(p[np.arange(len(y)), y])))
    onehot = np.eye(logits.shape[1])[y]
    return loss, net.backward(cache, (p - onehot) / len(y))


def _train(net: _Net, sp: CompressSpec, x, y, n_out: int, epochs: int, lr0: float, recipe: FinetuneRecipe,
           verbose: bool):
    rng = np.random.default_rng(recipe.seed)
    names = list(net.weights)
    params = [(net.weights, n) for n in names] + [(net.biases, n) for n in names]
    opt = Adam([d[k] for d, k in params])
    onehot = np.eye(n_out)[y]
    for ep in range(epochs):
        if sp.prune in ("magnitude", "block"):
            s = prune_schedule(ep, epochs, sp.sparsity)
            for k in names:
                net.masks[k] = _mask(net.weights[k] * net.masks[k], sp, s)
        elif sp.prune == "nm" and ep == 0:
            for k in names:
                net.masks[k] = _mask(net.weights[k], sp, 0.0)  # the start's masks (already applied)
        for k in names:
            net.weights[k] *= net.masks[k]
        order = rng.permutation(len(x))
        lr = cosine_lr(lr0, ep, epochs)
        total = 0.0
        for i in range(0, len(x), recipe.batch):
            idx = order[i:i + recipe.batch]
            logits, cache = net.forward(x[idx])
            loss, dlogits = softmax_xent(logits, onehot[idx])
            total += loss
            grads = net.backward(cache, dlogits)
            new = opt.step([d[k] for d, k in params],
                           [grads[k][0 if j < len(names) else 1] for j, (_, k) in enumerate(params)], lr)
            for (d, k), value in zip(params, new, strict=True):
                d[k] = value
            for k in names:
                net.weights[k] *= net.masks[k]
        if verbose:
            print(f"  {sp}+ft epoch {ep + 1:3d}/{epochs}: loss {total / len(x):.4f}")


def finetuned(model: Model, spec, *, train_data=None, act_bits: int = 8, keep_ends: bool | None = None,
              retrain: bool = False) -> Model:
    """The fine-tuned ``model`` for ``spec``: a committed zoo variant if one matches, else :func:`finetune`.

    A committed variant (``hwsim.models.zoo.finetuned_path``) is used when its recorded
    :func:`fingerprint` equals that of ``model`` with this spec, ``act_bits``, ``keep_ends`` and
    :data:`RECIPE`. Otherwise (or with ``retrain``) the model is fine-tuned on ``train_data = (x, y)``;
    without training data that is an error.
    """
    from hwsim.models import zoo
    from hwsim.models.graph import load_model

    sp = _base_spec(spec)
    keep = _resolve(sp, keep_ends)
    if not retrain:
        path = zoo.finetuned_path(model.name, f"{sp}+ft")
        if path is not None:
            cand = load_model(path)
            if cand.meta.get("finetune", {}).get("fingerprint") == fingerprint(model, sp, act_bits, keep):
                return cand
    if train_data is None:
        raise HwsimError(f"compression spec '{sp}+ft' is not allowed without training data: model "
                         f"{model.name!r} has no committed fine-tuned variant for it; expected train_data=(x, y)")
    x, y = train_data
    return finetune(model, sp, x, y, act_bits=act_bits, keep_ends=keep)
