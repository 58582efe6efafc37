"""Small LSTM classifiers of scikit-learn's digits: dense, TT- and HT-LSTM, in float, decomposed and fixed point.

Each 8x8 digit is read as a sequence of ``T = 8`` rows of ``N = 8`` pixels (pixel / 16, in [0, 1]). One
LSTM layer of ``H`` hidden units (gates i, f, g, o along its ``4H`` outputs, as in
:mod:`hwsim.models.lstm_engine`) reads the rows; a linear readout of the last hidden state gives the 10
logits. The input-to-hidden matrix ``W`` (``4H x N``) is dense, a TT-matrix or an HT-matrix
(:mod:`hwsim.models.tensor_formats`); the hidden-to-hidden ``U`` (``4H x H``) is dense.

Three evaluations of the same classifier:

* **float** (:func:`forward_float`): ``W x`` with the dense matrix (``to_dense`` of the factors).
* **decomposed** (:func:`forward_float` with ``decomposed=True``): ``W x`` computed stage by stage on the
  factors (:func:`hwsim.models.tensor_formats.matvec`, ``W`` never formed), still float.
* **fixed point** (:func:`forward_fixed`): the bit-exact reference of the LSTM engine
  (:func:`hwsim.models.lstm_engine.run_fixed`) on the quantized classifier (:func:`quantize`), then
  :func:`readout_fixed`.

Readout in fixed point (the engine's dense stage, like its hidden stage): with ``h`` in ``Q(F)`` and the
readout weights ``V`` quantized with ``e_v`` fractional bits, ``acc = acc_bits register sum of V[o, j] *
h[j]`` in ``j`` order (saturate or wrap after every addition,
:func:`hwsim.models.lstm_engine.accumulate_dense`), ``y = clamp(round_shift(acc, F + e_v - e_out))``,
``logits = clamp(y + c)`` with ``c`` the bias in ``Q(e_out)``; ``e_out <= F`` is calibrated so the
training-set logits do not saturate. ``clamp`` is to signed ``data_bits``.

The committed classifiers (``digits-lstm``, ``digits-tt-lstm``, ``digits-ht-lstm``) are written by
``python -m hwsim.models.zoo.train_lstm_digits``; :func:`load` reads them, :func:`to_graph` gives the
:class:`hwsim.models.graph.Model` (an ``lstm`` layer and a ``linear`` layer) that ``hwsim simulate`` runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from hwsim.models import lstm_engine as ref
from hwsim.models import tensor_formats as tf
from hwsim.models.errors import HwsimError
from hwsim.models.graph import INPUT, Layer, Model, load_model

__all__ = [
    "IN_MODES",
    "LSTM_MODELS",
    "OUT_MODES",
    "FixedClassifier",
    "LstmClassifier",
    "accuracy",
    "digits_sequences",
    "engine_macs",
    "factor_grads",
    "forward_fixed",
    "forward_float",
    "from_graph",
    "list_models",
    "load",
    "load_graph",
    "out_modes",
    "path_of",
    "quantize",
    "quantize_inputs",
    "readout_fixed",
    "save",
    "to_graph",
]

ZOO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo")
#: The committed classifiers, each ``<name>.npz`` in the zoo directory.
LSTM_MODELS = ("digits-lstm", "digits-tt-lstm", "digits-ht-lstm")
#: Modes of the committed input layers W (4H x N = 128 x 8): outputs (4 gates x 2, 4, 4), inputs (2, 2, 2).
OUT_MODES = (8, 4, 4)
IN_MODES = (2, 2, 2)


def out_modes(hidden: int) -> tuple[int, int, int]:
    """Output modes of a ``4H x 8`` input layer: ``(8, a, b)`` with ``a * b = H / 2`` and ``a >= b`` closest
    (the 4 gates folded into the first mode); ``(8, 4, 4)`` for ``H = 32``."""
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 2 or hidden % 2:
        raise HwsimError(f"hidden={hidden!r} is not allowed: expected an even integer >= 2")
    half = hidden // 2
    b = max(d for d in range(1, int(half ** 0.5) + 1) if half % d == 0)
    return 8, half // b, b


def digits_sequences(x) -> np.ndarray:
    """Digits images ``(B, 1, 8, 8)`` (or ``(B, 8, 8)``) as sequences ``(B, T=8, N=8)`` of pixel rows."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise HwsimError(f"x shape={x.shape} is not allowed: expected (B, ..., N) sequences of rows")
    return x.reshape(x.shape[0], -1, x.shape[-1])


# ---------------------------------------------------------------------------------------------- classifier
@dataclass(frozen=True)
class LstmClassifier:
    """An LSTM digits classifier (module docstring).

    Parameters
    ----------
    name : str
    fmt : TTMatrix, HTMatrix or None
        The input layer in decomposed form; None for a dense ``W``.
    W : ndarray (4H, N)
        The dense input layer (``to_dense(fmt)`` when decomposed).
    U : ndarray (4H, H)
        Dense hidden-to-hidden matrix.
    b : ndarray (4H,)
        Gate biases.
    V : ndarray (10, H)
        Readout weights (last hidden state to logits).
    c : ndarray (10,)
        Readout bias.
    """

    name: str
    fmt: object
    W: np.ndarray = field(repr=False)
    U: np.ndarray = field(repr=False)
    b: np.ndarray = field(repr=False)
    V: np.ndarray = field(repr=False)
    c: np.ndarray = field(repr=False)

    @property
    def hidden(self) -> int:
        return self.U.shape[1]

    @property
    def decomposition(self) -> str:
        return "dense" if self.fmt is None else self.fmt.kind

    @property
    def input_params(self) -> int:
        """Stored parameters of the input layer ``W`` (factor entries when decomposed)."""
        return self.W.size if self.fmt is None else self.fmt.params

    @property
    def params(self) -> int:
        """All stored parameters (input layer, ``U``, ``b``, readout)."""
        return self.input_params + self.U.size + self.b.size + self.V.size + self.c.size

    def describe(self) -> str:
        if self.fmt is None:
            return "dense"
        r = max(self.fmt.ranks) if self.fmt.kind == "tt" else max(self.fmt.ranks.values())
        return f"{self.fmt.kind}-r{r}"


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def forward_float(m: LstmClassifier, x, decomposed: bool = False) -> np.ndarray:
    """Float logits ``(B, 10)`` of images or sequences ``x``; ``decomposed`` runs ``W x`` stage by stage."""
    xs = digits_sequences(x)
    B, T, N = xs.shape
    H = m.hidden
    if N != m.W.shape[1]:
        raise HwsimError(f"x rows of {N} values are not allowed: {m.name} expects {m.W.shape[1]}")
    h = np.zeros((B, H))
    c = np.zeros((B, H))
    for t in range(T):
        zx = tf.matvec(m.fmt, xs[:, t, :].T).T if decomposed and m.fmt is not None else xs[:, t, :] @ m.W.T
        z = zx + h @ m.U.T + m.b
        i, f, g, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), _sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
    return h @ m.V.T + m.c


def accuracy(logits, y) -> float:
    """Fraction of rows whose argmax (first index on ties) equals the label."""
    return float(np.mean(np.argmax(np.asarray(logits), axis=1) == np.asarray(y)))


def factor_grads(fmt, dW: np.ndarray) -> list[np.ndarray]:
    """Gradients of a loss with respect to every factor of ``fmt`` given its gradient ``dW`` with respect
    to the dense matrix (``W = to_dense(fmt)`` is multilinear in the factors: each gradient contracts
    ``dW`` with all the other factors)."""
    names: dict[str, str] = {}

    def sym(a):
        return names.setdefault(a, chr(ord("a") + len(names)))

    subs = ["".join(sym(a) for a in f.axes) for f in fmt.factors]
    mn = "".join(sym(f"m{k + 1}") for k in range(fmt.d)) + "".join(sym(f"n{k + 1}") for k in range(fmt.d))
    dT = np.asarray(dW, dtype=np.float64).reshape(*fmt.out_modes, *fmt.in_modes)
    out = []
    for i in range(len(fmt.factors)):
        others = [j for j in range(len(fmt.factors)) if j != i]
        expr = ",".join([mn] + [subs[j] for j in others]) + "->" + subs[i]
        out.append(np.einsum(expr, dT, *[fmt.factors[j].data for j in others], optimize=True))
    return out


# ---------------------------------------------------------------------------------------------- fixed point
@dataclass(frozen=True)
class FixedClassifier:
    """A quantized classifier: the engine's :class:`hwsim.models.lstm_engine.FixedLstm`, the readout
    weights ``V`` (``e_v`` fractional bits) and bias ``c`` (``Q(e_out)``), and the config it is for."""

    lstm: ref.FixedLstm
    V: np.ndarray = field(repr=False)
    e_v: int = 0
    c: np.ndarray = field(repr=False, default=None)
    e_out: int = 0
    cfg: object = None

    @property
    def readout_shift(self) -> int:
        return self.cfg.frac_bits + self.e_v - self.e_out


def quantize(m: LstmClassifier, cfg, calib_x) -> FixedClassifier:
    """Quantize ``m`` for the engine ``cfg`` (any object with the fields listed in
    :mod:`hwsim.models.lstm_engine`), calibrating shifts on the images or sequences ``calib_x``.

    A dense ``W`` runs on the engine as a one-core TT-matrix (a single stage ``4H x N``).
    """
    xs = digits_sequences(calib_x)
    fmt = m.fmt if m.fmt is not None else tf.TTMatrix((m.W.shape[0],), (m.W.shape[1],),
                                                      (tf.Factor("G1", ("m1", "n1"), m.W),))
    q = ref.quantize_lstm(fmt, m.U, m.b, cfg, xs.reshape(-1, xs.shape[-1]))
    bits, F = cfg.data_bits, cfg.frac_bits
    e_v = ref._frac_for(float(np.abs(m.V).max()), bits)
    logits = forward_float(m, xs)
    e_out = min(F, ref._frac_for(float(np.abs(logits).max()), bits))
    if F + e_v - e_out >= cfg.acc_bits:
        raise HwsimError(f"readout shift={F + e_v - e_out} is not allowed: expected [0, {cfg.acc_bits - 1}]")
    return FixedClassifier(q, ref.quantize(m.V, e_v, bits), e_v, ref.quantize(m.c, e_out, bits), e_out, cfg)


def quantize_inputs(q: FixedClassifier, x) -> np.ndarray:
    """Images or sequences as int64 sequences ``(B, T, N)`` in ``Q(x_frac)``."""
    return ref.quantize(digits_sequences(x), q.lstm.x_frac, q.cfg.data_bits)


def readout_fixed(q: FixedClassifier, h) -> np.ndarray:
    """Bit-exact readout of the last hidden state(s) ``h`` (``(H,)`` or ``(B, H)``, ``Q(F)``): int64 logits
    in ``Q(e_out)`` (module docstring)."""
    cfg = q.cfg
    h = np.atleast_2d(np.asarray(h, dtype=np.int64))
    acc = np.stack([ref.accumulate_dense(q.V, v, cfg.acc_bits, cfg.overflow) for v in h])
    y = ref._clamp(tf.round_shift(acc, q.readout_shift, cfg.rounding), cfg.data_bits)
    return ref._clamp(y + q.c, cfg.data_bits)


def forward_fixed(q: FixedClassifier, x) -> np.ndarray:
    """Bit-exact int64 logits ``(B, 10)`` of images or sequences ``x`` through the engine's reference."""
    xs = quantize_inputs(q, x)
    hs = np.stack([ref.run_fixed(q.lstm, seq, q.cfg)[-1] for seq in xs])
    return readout_fixed(q, hs)


# ---------------------------------------------------------------------------------------------- storage
def _fmt_meta(fmt) -> dict:
    if fmt is None:
        return {"decomposition": "dense"}
    d = {"decomposition": fmt.kind, "out_modes": list(fmt.out_modes), "in_modes": list(fmt.in_modes),
         "factors": [{"name": f.name, "axes": list(f.axes)} for f in fmt.factors]}
    if fmt.kind == "ht":
        d["tree"] = [[list(a), list(b)] for a, b in sorted(fmt.tree.edges)]
    return d


def _fmt_from(meta: dict, arrays: dict):
    kind = meta.get("decomposition", "dense")
    if kind == "dense":
        return None
    facs = tuple(tf.Factor(f["name"], tuple(f["axes"]), np.asarray(arrays[f["name"]], dtype=np.float64))
                 for f in meta["factors"])
    m, n = tuple(meta["out_modes"]), tuple(meta["in_modes"])
    if kind == "tt":
        return tf.TTMatrix(m, n, facs)
    import networkx as nx

    tree = nx.DiGraph()
    tree.add_edges_from((tuple(a), tuple(b)) for a, b in meta["tree"])
    return tf.HTMatrix(m, n, tree, facs)


def to_graph(m: LstmClassifier, meta: dict | None = None) -> Model:
    """``m`` as a :class:`hwsim.models.graph.Model`: an ``lstm`` layer (``weight`` W, ``bias`` b,
    ``arrays`` U and the factors, the format in ``meta``) then a ``linear`` readout."""
    arrays = {"U": m.U}
    if m.fmt is not None:
        arrays.update({f.name: f.data for f in m.fmt.factors})
    layers = [Layer("lstm", "lstm", (INPUT,), m.W, m.b, arrays=arrays, meta=_fmt_meta(m.fmt)),
              Layer("readout", "linear", ("lstm",), m.V, m.c)]
    return Model(layers, (1, 8, 8), m.name, meta or {})


def from_graph(model: Model) -> LstmClassifier:
    """The classifier of a graph of one ``lstm`` layer followed by one ``linear`` readout."""
    kinds = [la.kind for la in model.layers]
    if kinds != ["lstm", "linear"]:
        raise HwsimError(f"model {model.name!r} layers={kinds} is not allowed: expected ['lstm', 'linear']")
    la, ro = model.layers
    fmt = _fmt_from(la.meta, la.arrays)
    W = la.weight if fmt is None else tf.to_dense(fmt)  # the factors are the stored weights
    return LstmClassifier(model.name, fmt, W, la.arrays["U"], la.bias, ro.weight, ro.bias)


def save(m: LstmClassifier, path, meta: dict | None = None) -> None:
    """Write ``m`` as a model ``.npz`` (:func:`hwsim.models.graph.save_model` of :func:`to_graph`)."""
    from hwsim.models.graph import save_model

    save_model(to_graph(m, meta), path)


def list_models() -> list[str]:
    return list(LSTM_MODELS)


def path_of(name: str) -> str:
    if name not in LSTM_MODELS:
        raise HwsimError(f"model name {name!r} is not allowed: expected one of {', '.join(LSTM_MODELS)}")
    return os.path.join(ZOO, f"{name}.npz")


def load_graph(name: str) -> Model:
    """The committed classifier ``name`` as a graph :class:`Model` (its ``meta`` holds the training record)."""
    return load_model(path_of(name))


def load(name: str) -> LstmClassifier:
    """The committed classifier ``name`` (``digits-lstm``, ``digits-tt-lstm`` or ``digits-ht-lstm``)."""
    return from_graph(load_graph(name))


def engine_macs(m: LstmClassifier, steps: int = 8) -> int:
    """MACs of one sequence: per step the input layer's stages (or ``4H x N``) and ``4H x H``, plus the
    readout."""
    wx = m.W.size if m.fmt is None else sum(s.macs for s in tf.plan_stages(m.fmt))
    return steps * (wx + m.U.size) + m.V.size
