"""A small float model representation: a topologically ordered list of named layers.

A :class:`Model` is a list of :class:`Layer` nodes in execution order. Every layer names its inputs
(``"input"`` is the model input), so residual connections (``add``) are expressed by naming two producers.
The last layer is the model output. Tensors are NumPy arrays shaped (N, C, H, W) for feature maps and
(N, F) after ``flatten``.

Layer kinds and their attributes:

``conv2d``
    ``weight`` (O, C/groups, kh, kw), ``bias`` (O,) or None, ``stride``, ``padding`` (zeros: an int, the
    same on every side, or a tuple ``(top, bottom, left, right)`` as in :mod:`hwsim.models.mac_array`;
    a tuple with four equal values is stored as an int), ``dilation``, ``groups`` (depthwise is
    ``groups == C``).
``linear``
    ``weight`` (out, in), ``bias`` (out,) or None.
``relu``, ``flatten``
    No attributes.
``maxpool``, ``avgpool``
    ``kernel`` and ``stride`` (each an int, or ``(rows, cols)`` for rectangular windows / per-axis strides;
    an equal pair is stored as an int), maxpool's ``dilation`` (likewise; avgpool: 1) and ``padding`` (an int
    or ``(top, bottom, left, right)``):
    max pooling pads with -inf; average pooling sums the zero-padded window and divides it by the number of
    its pixels inside the input grown by ``meta["count_pads"]`` (``(top, bottom, left, right)``, each at most
    that side's padding; default no growth: only real pixels count, ONNX ``count_include_pad=0``; equal to
    ``padding``: ``count_include_pad=1``; padding beyond ``count_pads`` stands for ``ceil_mode``).
``add``
    Two inputs of the same shape (residual connection).
``concat``
    Two or more inputs joined along the channel axis (axis 0 of a sample: C of (C, H, W), F of (F,)); the
    other dimensions must match.
``clip``
    ``min(max(x, 0), meta["max"])`` (ReLU6 is ``meta["max"] == 6``); no weights.
``deform_conv2d``
    Deformable convolution (DCN v1, :mod:`hwsim.models.deform_unit` conventions, those of torchvision's
    ``deform_conv2d``). Two inputs: the feature map ``(C, H, W)`` and the offsets ``(2 G kh kw, H_out, W_out)``
    in pixels, interleaved ``(dy, dx)`` per tap (usually a plain ``conv2d`` of the same feature map, the
    offset conv, initialised at zero). ``weight`` (O, C/groups, kh, kw), ``bias`` (O,) or None, ``stride``,
    ``padding`` (an int), ``dilation``, ``groups`` (depthwise is ``groups == C``); ``meta["offset_bound"]``
    (pixels, optional) clamps every offset to ``[-bound, bound]`` first (CoDeNet's bounded offsets).
``lstm``
    A single-layer LSTM (gates i, f, g, o along its ``4H`` outputs) reading a per-sample input as a
    sequence: the last axis holds the ``N`` features of a step, all other axes are flattened into time
    steps (a (1, 8, 8) digit is 8 rows of 8 pixels). ``weight`` (4H, N) is the input-to-hidden matrix,
    ``bias`` (4H,), ``arrays["U"]`` (4H, H) the hidden-to-hidden matrix; the output is the last hidden
    state (H,). A decomposed input layer keeps its factors in ``arrays`` and its format in ``meta``
    (:mod:`hwsim.models.lstm_models`); ``weight`` is then their dense product.

Models are stored with :func:`save_model` / :func:`load_model` as ``.npz`` files: a JSON description under
the key ``__hwsim_model__`` and one array per weight, bias and named array (float32).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.tables import offset_bound_ok

__all__ = [
    "COMPUTE_KINDS",
    "DEFORM_KINDS",
    "WORKLOAD_KINDS",
    "INPUT",
    "LAYER_KINDS",
    "Layer",
    "Model",
    "conv2d_float",
    "deform_conv2d_float",
    "im2col_float",
    "load_model",
    "pads4",
    "pool2d",
    "pool_counts",
    "save_model",
]

INPUT = "input"
LAYER_KINDS = ("conv2d", "linear", "relu", "maxpool", "avgpool", "flatten", "add", "lstm", "concat", "clip",
               "deform_conv2d")
#: Kinds that carry weights and lower to GEMMs.
COMPUTE_KINDS = ("conv2d", "linear")
#: Kinds that carry weights and run on a deformable-convolution unit (not lowered to GEMMs).
DEFORM_KINDS = ("deform_conv2d",)
#: Kinds an accelerator unit runs (``simulate`` routes each to a unit): the GEMM kinds, ``lstm`` and
#: ``deform_conv2d``.
WORKLOAD_KINDS = COMPUTE_KINDS + ("lstm",) + DEFORM_KINDS
_FORMAT_KEY = "__hwsim_model__"
_FORMAT_VERSION = 1
_NOT_A_MODEL = "it is not an hwsim model (an .npz written by save_model)"


def _pair_free_int(name: str, layer: str, value, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        raise HwsimError(f"layer {layer!r}: {name}={value!r} is not allowed: expected an integer >= {lo}")
    return int(value)


def pair(value) -> tuple[int, int]:
    """A pool's ``kernel`` / ``stride`` (an int, or ``(rows, cols)`` for a rectangular one) as ``(rows, cols)``."""
    if isinstance(value, tuple | list):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _pool_pair(name: str, layer: str, value):
    """A pool's kernel or stride: an int >= 1, or a ``(rows, cols)`` pair (stored as an int when equal, so
    square pools keep their old form)."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise HwsimError(f"layer {layer!r}: {name}={value!r} is not allowed: expected an integer >= 1 or a "
                             "(rows, cols) pair of integers >= 1")
        v = tuple(_pair_free_int(name, layer, x, 1) for x in value)
        return v[0] if v[0] == v[1] else v
    return _pair_free_int(name, layer, value, 1)


def pads4(padding) -> tuple[int, int, int, int]:
    """``padding`` (an int or ``(top, bottom, left, right)``) as a 4-tuple ``(top, bottom, left, right)``."""
    if isinstance(padding, tuple | list):
        return tuple(int(p) for p in padding)
    p = int(padding)
    return (p, p, p, p)


def _check_padding(layer: str, value):
    if isinstance(value, tuple | list):
        if len(value) != 4:
            raise HwsimError(f"layer {layer!r}: padding={value!r} is not allowed: expected an integer >= 0 or a "
                             "tuple (top, bottom, left, right) of integers >= 0")
        pads = tuple(_pair_free_int("padding", layer, v, 0) for v in value)
        return pads[0] if len(set(pads)) == 1 else pads
    return _pair_free_int("padding", layer, value, 0)


@dataclass
class Layer:
    """One node of a :class:`Model` (see the module docstring for the attributes of each kind)."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int | tuple[int, int, int, int] = 0
    dilation: int = 1
    groups: int = 1
    kernel: int = 0
    meta: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or self.name == INPUT:
            raise HwsimError(
                f"layer name={self.name!r} is not allowed: expected a non-empty string, not {INPUT!r}"
            )
        if self.kind not in LAYER_KINDS:
            raise HwsimError(
                f"layer {self.name!r}: kind={self.kind!r} is not allowed: expected one of "
                f"{', '.join(LAYER_KINDS)}"
            )
        if isinstance(self.inputs, str):
            self.inputs = (self.inputs,)
        self.inputs = tuple(self.inputs)
        want = 2 if self.kind in ("add", "deform_conv2d") else 1
        if self.kind == "concat" and len(self.inputs) < 2:
            raise HwsimError(
                f"layer {self.name!r}: inputs={list(self.inputs)!r} is not allowed: concat takes 2 or more inputs"
            )
        if self.kind != "concat" and len(self.inputs) != want:
            raise HwsimError(
                f"layer {self.name!r}: inputs={list(self.inputs)!r} is not allowed: {self.kind} takes "
                f"{want} input(s)"
            )
        if self.kind in ("maxpool", "avgpool"):
            self.stride = _pool_pair("stride", self.name, self.stride)
        else:
            self.stride = _pair_free_int("stride", self.name, self.stride, 1)
        self.padding = _check_padding(self.name, self.padding)
        if not isinstance(self.padding, int) and self.kind not in ("conv2d", "maxpool", "avgpool"):
            raise HwsimError(f"layer {self.name!r}: padding={self.padding!r} is not allowed: only conv2d and "
                             "pooling take per-side padding")
        if self.kind == "maxpool":
            self.dilation = _pool_pair("dilation", self.name, self.dilation)
        else:
            self.dilation = _pair_free_int("dilation", self.name, self.dilation, 1)
        if self.kind == "avgpool" and self.dilation != 1:
            raise HwsimError(f"layer {self.name!r}: dilation={self.dilation!r} is not allowed: expected 1 (only "
                             "maxpool takes a dilation)")
        self.groups = _pair_free_int("groups", self.name, self.groups, 1)
        if self.kind in COMPUTE_KINDS + DEFORM_KINDS:
            if self.weight is None:
                raise HwsimError(f"layer {self.name!r}: weight is missing: {self.kind} needs a weight array")
            self.weight = np.asarray(self.weight, dtype=np.float64)
            ndim = 2 if self.kind == "linear" else 4
            if self.weight.ndim != ndim:
                raise HwsimError(
                    f"layer {self.name!r}: weight shape {self.weight.shape} is not allowed: {self.kind} "
                    f"needs {ndim} dimensions"
                )
            if self.kind != "linear" and self.weight.shape[0] % self.groups:
                raise HwsimError(
                    f"layer {self.name!r}: groups={self.groups} is not allowed: it must divide the "
                    f"{self.weight.shape[0]} output channels"
                )
            if self.bias is not None:
                self.bias = np.asarray(self.bias, dtype=np.float64)
                if self.bias.shape != (self.weight.shape[0],):
                    raise HwsimError(
                        f"layer {self.name!r}: bias shape {self.bias.shape} is not allowed: expected "
                        f"({self.weight.shape[0]},)"
                    )
        elif self.kind == "lstm":
            self._check_lstm()
        elif self.weight is not None or self.bias is not None:
            raise HwsimError(f"layer {self.name!r}: a {self.kind} layer takes no weight or bias")
        if self.arrays and self.kind != "lstm":
            raise HwsimError(f"layer {self.name!r}: a {self.kind} layer takes no named arrays")
        if self.kind in ("maxpool", "avgpool"):
            self.kernel = _pool_pair("kernel", self.name, self.kernel)
            t, b, l, r = pads4(self.padding)
            kh, kw = pair(self.kernel)
            if max(t, b) >= kh or max(l, r) >= kw:
                raise HwsimError(f"layer {self.name!r}: padding={self.padding!r} is not allowed: expected pads "
                                 f"smaller than the kernel {self.kernel} (no window entirely in the padding)")
        if "count_pads" in self.meta:
            cp = self.meta["count_pads"]
            ok = self.kind == "avgpool" and isinstance(cp, tuple | list) and len(cp) == 4 and all(
                isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 <= v <= p
                for v, p in zip(cp, pads4(self.padding), strict=True))
            if not ok:
                raise HwsimError(f"layer {self.name!r}: meta['count_pads']={cp!r} is not allowed: expected an "
                                 "avgpool's (top, bottom, left, right), each from 0 to that side's padding")
            self.meta["count_pads"] = tuple(int(v) for v in cp)
        if self.kind == "deform_conv2d":
            bound = self.meta.get("offset_bound")
            if not offset_bound_ok(bound):
                raise HwsimError(f"layer {self.name!r}: meta['offset_bound']={bound!r} is not allowed: expected "
                                 "a number >= 0 (pixels) or None")
        if self.kind == "clip":
            hi = self.meta.get("max")
            if isinstance(hi, bool) or not isinstance(hi, int | float | np.number) or not np.isfinite(hi) or hi <= 0:
                raise HwsimError(f"layer {self.name!r}: meta['max']={hi!r} is not allowed: clip needs a finite "
                                 "upper bound > 0")
            self.meta["max"] = float(hi)

    def _check_lstm(self) -> None:
        if self.weight is None or "U" not in self.arrays:
            raise HwsimError(f"layer {self.name!r}: weight/arrays['U'] is missing: lstm needs both")
        self.weight = np.asarray(self.weight, dtype=np.float64)
        self.arrays = {k: np.asarray(v, dtype=np.float64) for k, v in self.arrays.items()}
        u = self.arrays["U"]
        if self.weight.ndim != 2 or self.weight.shape[0] % 4:
            raise HwsimError(f"layer {self.name!r}: weight shape {self.weight.shape} is not allowed: lstm needs "
                             "(4H, N)")
        if u.shape != (self.weight.shape[0], self.weight.shape[0] // 4):
            raise HwsimError(f"layer {self.name!r}: arrays['U'] shape {u.shape} is not allowed: expected "
                             f"({self.weight.shape[0]}, {self.weight.shape[0] // 4})")
        self.bias = np.zeros(self.weight.shape[0]) if self.bias is None else np.asarray(self.bias, dtype=np.float64)
        if self.bias.shape != (self.weight.shape[0],):
            raise HwsimError(f"layer {self.name!r}: bias shape {self.bias.shape} is not allowed: expected "
                             f"({self.weight.shape[0]},)")

    def copy(self, **changes) -> Layer:
        """A copy (weights copied) with some attributes changed."""
        d = {
            "name": self.name, "kind": self.kind, "inputs": self.inputs,
            "weight": None if self.weight is None else self.weight.copy(),
            "bias": None if self.bias is None else self.bias.copy(),
            "stride": self.stride, "padding": self.padding, "dilation": self.dilation,
            "groups": self.groups, "kernel": self.kernel, "meta": dict(self.meta),
            "arrays": {k: v.copy() for k, v in self.arrays.items()},
        }
        d.update(changes)
        return Layer(**d)


# ---------------------------------------------------------------------------------------------- float ops
def conv_out_size(size: int, k: int, stride: int, padding, dilation: int) -> int:
    """Output length along one axis; ``padding`` is the pad on each side or a ``(before, after)`` pair."""
    total = sum(padding) if isinstance(padding, tuple | list) else 2 * padding
    return (size + total - dilation * (k - 1) - 1) // stride + 1


def _pad_input(x: np.ndarray, padding, pad_value) -> np.ndarray:
    t, b, l, r = pads4(padding)
    if not (t or b or l or r):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=pad_value)


def _windows(x: np.ndarray, kh: int, kw: int, stride, dilation) -> np.ndarray:
    """(N, C, H, W) -> (N, C, kh, kw, Ho, Wo) gathered windows (no padding); ``stride`` and ``dilation``: an
    int or ``(rows, cols)``."""
    _, _, h, w = x.shape
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    ho = conv_out_size(h, kh, sh, 0, dh)
    wo = conv_out_size(w, kw, sw, 0, dw)
    if ho < 1 or wo < 1:
        raise HwsimError(f"input of {h}x{w} is too small for a {kh}x{kw} window (dilation {dilation})")
    rows = np.arange(kh)[:, None] * dh + np.arange(ho)[None, :] * sh  # (kh, Ho)
    cols = np.arange(kw)[:, None] * dw + np.arange(wo)[None, :] * sw  # (kw, Wo)
    return x[:, :, rows[:, None, :, None], cols[None, :, None, :]]


def im2col_float(x, kh: int, kw: int, stride=1, padding=0, dilation=1, pad_value=0.0) -> np.ndarray:
    """(N, C, H, W) -> (N*Ho*Wo, C*kh*kw): rows (n, ho, wo), columns (c, i, j) like ``w.reshape(O, -1)``."""
    x = _pad_input(np.asarray(x, dtype=np.float64), padding, pad_value)
    win = _windows(x, kh, kw, stride, dilation)  # (N, C, kh, kw, Ho, Wo)
    n, c = win.shape[:2]
    return win.transpose(0, 4, 5, 1, 2, 3).reshape(n * win.shape[4] * win.shape[5], c * kh * kw)


def conv2d_float(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, pad_value=0.0) -> np.ndarray:
    """Float 2-D convolution (cross-correlation) of x (N, C, H, W) with w (O, C/groups, kh, kw)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n, c, _, _ = x.shape
    o, cg, kh, kw = w.shape
    if c != cg * groups:
        raise HwsimError(
            f"conv2d input with {c} channels is not allowed: the weight expects {cg * groups} "
            f"({cg} x {groups} groups)"
        )
    x = _pad_input(x, padding, pad_value)
    win = _windows(x, kh, kw, stride, dilation)  # (N, C, kh, kw, Ho, Wo)
    ho, wo = win.shape[-2:]
    win = win.reshape(n, groups, cg, kh, kw, ho, wo)
    wg = w.reshape(groups, o // groups, cg, kh, kw)
    y = np.einsum("ngcijpq,gocij->ngopq", win, wg, optimize=True).reshape(n, o, ho, wo)
    if b is not None:
        y = y + np.asarray(b, dtype=np.float64)[None, :, None, None]
    return y


def deform_conv2d_float(x, offset, w, b=None, stride=1, padding=0, dilation=1, groups=1, offset_bound=None):
    """Float deformable convolution of a batch: x (N, C, H, W), offset (N, 2 G kh kw, H_out, W_out) in pixels
    (clamped to ``[-offset_bound, offset_bound]`` when given), image by image through
    :func:`hwsim.models.deform_unit.deform_conv2d_float`."""
    from hwsim.models import deform_unit

    offset = np.asarray(offset, dtype=np.float64)
    if offset_bound is not None:
        offset = np.clip(offset, -float(offset_bound), float(offset_bound))
    return np.stack([deform_unit.deform_conv2d_float(xi, oi, w, b, stride, padding, dilation, groups)
                     for xi, oi in zip(np.asarray(x, dtype=np.float64), offset, strict=True)])


def pool2d(x: np.ndarray, kind: str, kernel, stride, padding=0, pad_value=0, dilation=1) -> np.ndarray:
    """Max or sum pooling over the windows of ``x`` padded with ``pad_value`` (``kernel`` / ``stride`` /
    ``dilation``: an int or ``(rows, cols)``; ``padding``: an int or ``(top, bottom, left, right)``); returns
    the same dtype family as x."""
    win = _windows(_pad_input(x, padding, pad_value), *pair(kernel), stride, dilation)
    return win.max(axis=(2, 3)) if kind == "max" else win.sum(axis=(2, 3))


def pool_counts(h: int, w: int, kernel, stride, padding=0, count_pads=(0, 0, 0, 0)) -> np.ndarray:
    """(Ho, Wo) int64: the pixels of every pooling window that lie inside the ``h x w`` input grown by
    ``count_pads`` (``(top, bottom, left, right)``, within ``padding``): an average pool's divisors."""
    t, b, l, r = pads4(padding)
    ct, cb, cl, cr = count_pads
    mask = np.zeros((1, 1, h + t + b, w + l + r), dtype=np.int64)
    mask[..., t - ct:t + h + cb, l - cl:l + w + cr] = 1
    return _windows(mask, *pair(kernel), stride, 1).sum(axis=(2, 3))[0, 0]


# ---------------------------------------------------------------------------------------------- model
class Model:
    """An ordered chain of layers; see the module docstring.

    Parameters
    ----------
    layers : list of Layer
        In execution order; each layer's inputs must be ``"input"`` or an earlier layer. The last layer is
        the output.
    input_shape : tuple
        Shape of one sample, (C, H, W).
    name : str
    """

    def __init__(self, layers, input_shape=(1, 8, 8), name: str = "model", meta: dict | None = None):
        self.layers: list[Layer] = list(layers)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.name = str(name)
        self.meta = dict(meta or {})
        if not self.layers:
            raise HwsimError("model layers=[] is not allowed: expected at least one layer")
        seen = {INPUT}
        for layer in self.layers:
            if layer.name in seen:
                raise HwsimError(f"layer name {layer.name!r} is not allowed: it is used twice")
            for src in layer.inputs:
                if src not in seen:
                    raise HwsimError(
                        f"layer {layer.name!r}: input {src!r} is not allowed: expected 'input' or an "
                        "earlier layer"
                    )
            seen.add(layer.name)
        self.shapes()  # validates the shapes

    # ------------------------------------------------------------------ structure
    @property
    def output(self) -> str:
        return self.layers[-1].name

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise HwsimError(f"layer {name!r} is not allowed: expected one of {', '.join(self.names())}")

    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def compute_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.kind in COMPUTE_KINDS]

    def workload_layers(self) -> list[Layer]:
        """The layers an accelerator unit runs (kinds in :data:`WORKLOAD_KINDS`), in order."""
        return [layer for layer in self.layers if layer.kind in WORKLOAD_KINDS]

    def to_networkx(self):
        """A ``networkx.DiGraph``: one node per layer plus ``"input"``, edges producer -> consumer."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        g.add_node(INPUT, kind="input", shape=self.input_shape)
        shapes = self.shapes()
        for layer in self.layers:
            g.add_node(layer.name, kind=layer.kind, layer=layer, shape=shapes[layer.name])
            for src in layer.inputs:
                g.add_edge(src, layer.name)
        return g

    def shapes(self) -> dict[str, tuple]:
        """Per-sample output shape of every layer (and of ``"input"``)."""
        shapes = {INPUT: self.input_shape}
        for layer in self.layers:
            s = shapes[layer.inputs[0]]
            k = layer.kind
            where = f"layer {layer.name!r}"
            if k == "conv2d":
                o, cg, kh, kw = layer.weight.shape
                if len(s) != 3 or s[0] != cg * layer.groups:
                    raise HwsimError(
                        f"{where}: input shape {s} is not allowed: expected ({cg * layer.groups}, H, W)"
                    )
                t, bo, le, ri = pads4(layer.padding)
                ho = conv_out_size(s[1], kh, layer.stride, (t, bo), layer.dilation)
                wo = conv_out_size(s[2], kw, layer.stride, (le, ri), layer.dilation)
                if ho < 1 or wo < 1:
                    raise HwsimError(f"{where}: input shape {s} is too small for its {kh}x{kw} kernel")
                out = (o, ho, wo)
            elif k == "deform_conv2d":
                o, cg, kh, kw = layer.weight.shape
                if len(s) != 3 or s[0] != cg * layer.groups:
                    raise HwsimError(
                        f"{where}: input shape {s} is not allowed: expected ({cg * layer.groups}, H, W)"
                    )
                ho = conv_out_size(s[1], kh, layer.stride, layer.padding, layer.dilation)
                wo = conv_out_size(s[2], kw, layer.stride, layer.padding, layer.dilation)
                if ho < 1 or wo < 1:
                    raise HwsimError(f"{where}: input shape {s} is too small for its {kh}x{kw} kernel")
                so = shapes[layer.inputs[1]]
                taps2 = 2 * kh * kw
                if len(so) != 3 or so[1:] != (ho, wo) or so[0] % taps2 or not so[0] or s[0] % (so[0] // taps2):
                    raise HwsimError(
                        f"{where}: offset shape {so} is not allowed: expected (2 * G * {kh} * {kw}, {ho}, {wo}) "
                        f"with G offset groups dividing the {s[0]} input channels"
                    )
                out = (o, ho, wo)
            elif k == "linear":
                if len(s) != 1 or s[0] != layer.weight.shape[1]:
                    raise HwsimError(
                        f"{where}: input shape {s} is not allowed: expected ({layer.weight.shape[1]},)"
                    )
                out = (layer.weight.shape[0],)
            elif k in ("maxpool", "avgpool"):
                if len(s) != 3:
                    raise HwsimError(f"{where}: input shape {s} is not allowed: expected (C, H, W)")
                t, bo, le, ri = pads4(layer.padding)
                (kh, kw), (sh, sw), (dh, dw) = pair(layer.kernel), pair(layer.stride), pair(layer.dilation)
                ho = conv_out_size(s[1], kh, sh, (t, bo), dh)
                wo = conv_out_size(s[2], kw, sw, (le, ri), dw)
                if ho < 1 or wo < 1:
                    raise HwsimError(f"{where}: input shape {s} is too small for its kernel {layer.kernel}")
                out = (s[0], ho, wo)
            elif k == "flatten":
                out = (int(np.prod(s)),)
            elif k == "lstm":
                if s[-1] != layer.weight.shape[1]:
                    raise HwsimError(f"{where}: input shape {s} is not allowed: expected (..., "
                                     f"{layer.weight.shape[1]}) (the last axis is one step's features)")
                out = (layer.weight.shape[0] // 4,)
            elif k == "add":
                s2 = shapes[layer.inputs[1]]
                if s != s2:
                    raise HwsimError(
                        f"{where}: input shapes {s} and {s2} are not allowed: add needs equal shapes"
                    )
                out = s
            elif k == "concat":
                others = [shapes[i] for i in layer.inputs]
                if any(len(o) != len(s) or o[1:] != s[1:] for o in others):
                    raise HwsimError(
                        f"{where}: input shapes {others} are not allowed: concat needs equal shapes except "
                        "along the channel axis"
                    )
                out = (sum(o[0] for o in others),) + tuple(s[1:])
            else:  # relu, clip
                out = s
            shapes[layer.name] = tuple(int(d) for d in out)
        return shapes

    def macs(self) -> dict[str, int]:
        """Multiply-accumulates per sample of every conv2d / linear / deform_conv2d layer."""
        shapes = self.shapes()
        out = {}
        for layer in self.layers:
            if layer.kind not in COMPUTE_KINDS + DEFORM_KINDS:
                continue
            if layer.kind == "linear":
                out[layer.name] = int(layer.weight.size)
            else:
                _, ho, wo = shapes[layer.name]
                out[layer.name] = int(layer.weight.size * ho * wo)
        return out

    def replace_layers(self, layers, name: str | None = None) -> Model:
        return Model(layers, self.input_shape, self.name if name is None else name, self.meta)

    # ------------------------------------------------------------------ evaluation
    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[1:] != self.input_shape:
            raise HwsimError(
                f"input shape {x.shape} is not allowed: model {self.name!r} expects "
                f"(N, {', '.join(map(str, self.input_shape))})"
            )
        return x

    def forward_float(self, x, return_all: bool = False):
        """Float64 forward pass of x (N, C, H, W); returns the output, or every tensor by name."""
        acts = {INPUT: self._check_input(x)}
        for layer in self.layers:
            a = acts[layer.inputs[0]]
            k = layer.kind
            if k == "conv2d":
                y = conv2d_float(a, layer.weight, layer.bias, layer.stride, layer.padding, layer.dilation,
                                 layer.groups)
            elif k == "linear":
                y = a @ layer.weight.T
                if layer.bias is not None:
                    y = y + layer.bias
            elif k == "relu":
                y = np.maximum(a, 0.0)
            elif k == "maxpool":
                y = pool2d(a, "max", layer.kernel, layer.stride, layer.padding, -np.inf, layer.dilation)
            elif k == "avgpool":
                y = pool2d(a, "sum", layer.kernel, layer.stride, layer.padding) / pool_counts(
                    a.shape[2], a.shape[3], layer.kernel, layer.stride, layer.padding,
                    layer.meta.get("count_pads", (0, 0, 0, 0)))
            elif k == "flatten":
                y = a.reshape(a.shape[0], -1)
            elif k == "clip":
                y = np.clip(a, 0.0, layer.meta["max"])
            elif k == "concat":
                y = np.concatenate([acts[i] for i in layer.inputs], axis=1)
            elif k == "lstm":
                y = _lstm_float(a.reshape(a.shape[0], -1, a.shape[-1]), layer)
            elif k == "deform_conv2d":
                y = deform_conv2d_float(a, acts[layer.inputs[1]], layer.weight, layer.bias, layer.stride,
                                        layer.padding, layer.dilation, layer.groups, layer.meta.get("offset_bound"))
            else:  # add
                y = a + acts[layer.inputs[1]]
            acts[layer.name] = y
        return acts if return_all else acts[self.output]

    def predict(self, x) -> np.ndarray:
        return np.argmax(self.forward_float(x), axis=1)

    def accuracy(self, x, y) -> float:
        return float(np.mean(self.predict(x) == np.asarray(y)))


def _lstm_float(xs: np.ndarray, layer: Layer) -> np.ndarray:
    """Last hidden state (B, H) of the float LSTM ``layer`` over sequences ``xs`` (B, T, N)."""
    u = layer.arrays["U"]
    H = u.shape[1]
    h = np.zeros((xs.shape[0], H))
    c = np.zeros((xs.shape[0], H))

    def sig(v):
        return 1.0 / (1.0 + np.exp(-v))

    for t in range(xs.shape[1]):
        z = xs[:, t, :] @ layer.weight.T + h @ u.T + layer.bias
        c = sig(z[:, H:2 * H]) * c + sig(z[:, :H]) * np.tanh(z[:, 2 * H:3 * H])
        h = sig(z[:, 3 * H:]) * np.tanh(c)
    return h


def save_model(model: Model, path) -> None:
    """Write ``model`` to ``path`` (.npz): JSON structure plus float32 weights, compressed."""
    desc = {"version": _FORMAT_VERSION, "name": model.name, "input_shape": list(model.input_shape),
            "meta": model.meta, "layers": []}
    arrays = {}
    for i, layer in enumerate(model.layers):
        d = {"name": layer.name, "kind": layer.kind, "inputs": list(layer.inputs),
             "stride": layer.stride if isinstance(layer.stride, int) else list(layer.stride),
             "padding": layer.padding if isinstance(layer.padding, int) else list(layer.padding),
             "dilation": layer.dilation if isinstance(layer.dilation, int) else list(layer.dilation),
             "groups": layer.groups, "meta": layer.meta,
             "kernel": layer.kernel if isinstance(layer.kernel, int) else list(layer.kernel)}
        if layer.weight is not None:
            arrays[f"w{i}"] = layer.weight.astype(np.float32)
            d["weight"] = f"w{i}"
        if layer.bias is not None:
            arrays[f"b{i}"] = layer.bias.astype(np.float32)
            d["bias"] = f"b{i}"
        if layer.arrays:
            d["arrays"] = {}
            for j, (key, a) in enumerate(sorted(layer.arrays.items())):
                arrays[f"a{i}_{j}"] = np.asarray(a).astype(np.float32)
                d["arrays"][key] = f"a{i}_{j}"
        desc["layers"].append(d)
    arrays[_FORMAT_KEY] = np.array(json.dumps(desc, sort_keys=True))
    with open(os.fspath(path), "wb") as f:
        np.savez_compressed(f, **arrays)


def _json_padding(p):
    return tuple(p) if isinstance(p, list) else p


def load_model(path) -> Model:
    """Read a model written by :func:`save_model`; any other file raises HwsimError naming it."""
    path = os.fspath(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise HwsimError(f"model file {path!r} is not allowed: {_NOT_A_MODEL}")
        with loaded as data:
            if _FORMAT_KEY not in data.files:
                raise HwsimError(f"model file {path!r} is not allowed: {_NOT_A_MODEL}")
            desc = json.loads(str(data[_FORMAT_KEY]))
            if desc.get("version") != _FORMAT_VERSION:
                raise HwsimError(
                    f"model file {path!r} is not allowed: format version {desc.get('version')!r}, "
                    f"expected {_FORMAT_VERSION}"
                )
            layers = []
            for d in desc["layers"]:
                w = data[d["weight"]].astype(np.float64) if "weight" in d else None
                b = data[d["bias"]].astype(np.float64) if "bias" in d else None
                named = {k: data[v].astype(np.float64) for k, v in d.get("arrays", {}).items()}
                layers.append(Layer(d["name"], d["kind"], tuple(d["inputs"]), w, b, _json_padding(d["stride"]),
                                    _json_padding(d["padding"]), _json_padding(d["dilation"]), d["groups"],
                                    _json_padding(d["kernel"]),
                                    dict(d.get("meta", {})), named))
            return Model(layers, tuple(desc["input_shape"]), desc["name"], desc.get("meta", {}))
    except HwsimError as e:
        if path in str(e):
            raise
        raise HwsimError(f"model file {path!r} is not allowed: {e}") from None
    except FileNotFoundError:
        raise HwsimError(f"model file {path!r} is not allowed: no such file") from None
    except OSError as e:
        raise HwsimError(f"model file {path!r} is not allowed: {e.strerror or _NOT_A_MODEL}") from None
    except (ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile):
        raise HwsimError(f"model file {path!r} is not allowed: {_NOT_A_MODEL}") from None
