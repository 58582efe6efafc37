"""ONNX front-end: float, QDQ, QOperator and QONNX graphs into hwsim's model representation.

:func:`load_onnx` reads an ONNX graph (a path, bytes or an ``onnx.ModelProto``) into a float
:class:`~hwsim.models.graph.Model` and, for quantized graphs, the quantization annotations of every layer
(:class:`LayerQuant`): weight format, bit widths, scales and their power-of-two mapping. With annotations,
:func:`to_compressed` builds the integer :class:`~hwsim.models.compress.CompressedModel` the MAC array runs,
from the graph's own integer weights and scales (no re-quantization, no calibration).

Supported operators (anything else is one :class:`HwsimError` naming the node and its op type):

* float: Conv (group, pads per side, strides, dilations; ``auto_pad`` NOTSET/VALID/SAME_* at any stride and
  dilation, ONNX's ``ceil(in / stride)`` formula), Gemm, MatMul
  (a constant right operand; a following Add of a constant vector becomes the bias), Relu, Clip with
  ``min = 0`` (no max: a ReLU; a max > 0, e.g. ReLU6: a ``clip`` layer), Concat on the channel axis,
  MaxPool / AveragePool (2-D windows, rectangular allowed, strides per axis, MaxPool dilations; pads per
  side or ``auto_pad``,
  ``ceil_mode`` as extra end padding where a window that would start in the end padding is dropped, as
  ONNX Runtime does; AveragePool ``count_include_pad`` 0/1), GlobalAveragePool (any H x W maps), Add (residual, or a
  constant bias after Conv/Gemm/MatMul), Flatten, Reshape to ``(N, -1)``, BatchNormalization (folded into
  the preceding Conv or Gemm), Identity, Dropout, and a final Softmax / LogSoftmax (dropped: it does not
  change the argmax).
* QDQ: QuantizeLinear / DequantizeLinear pairs on activations and weights (PyTorch / ONNX Runtime export).
* QOperator: QuantizeLinear, QLinearConv, QLinearMatMul, DequantizeLinear.
* QONNX (Brevitas / FINN): ``Quant`` (any bit width, signed, narrow range) and ``BipolarQuant`` on weights;
  ``Quant`` on activations.

Not representable in hwsim's model (and rejected by name): Concat on another axis, Clip with a non-zero
min, a dilated AveragePool. In the integer model ``clip`` clamps codes to
``max / 2**out_exp`` (an integer), ``concat`` shifts its inputs to its output quantizer's exponent and a
padded average pool, or one whose window area ``kh * kw`` is not a power of two, divides each window sum by
its pixel count (exactly, with the configured rounding).
Zero points must be 0 (symmetric quantization), as the MAC array has no zero-point correction.

Power-of-two scales: the MAC array requantizes with shifts, so every scale ``s`` is mapped to ``2**e`` with
``e = round(log2(s))``; the relative error ``2**e / s - 1`` is reported per layer, or with ``exact=True``
a scale that is not a power of two is rejected naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.graph import INPUT, Layer, Model, pair

__all__ = ["LayerQuant", "OnnxImport", "SUPPORTED_OPS", "load_onnx", "to_compressed"]

SUPPORTED_OPS = (
    "Conv", "Gemm", "MatMul", "Relu", "Clip", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool", "Add", "Flatten",
    "Reshape", "BatchNormalization", "Identity", "Dropout", "Softmax", "LogSoftmax", "QuantizeLinear",
    "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearGlobalAveragePool", "Quant",
    "BipolarQuant",
)
#: Operators of ONNX Runtime's contrib domain (``com.microsoft``) that quantize_static writes.
_MS_OPS = ("QGemm", "QLinearAdd", "QLinearGlobalAveragePool")


@dataclass
class QuantParam:
    """A quantizer found in the graph: ``real = (code - zero_point) * scale``, codes of ``bits`` bits."""

    scale: np.ndarray
    bits: int
    signed: bool
    node: str
    narrow: bool = False
    bipolar: bool = False
    zero_point: np.ndarray | None = None  # int64, in the codes' own (signed or unsigned) domain; None = 0

    def zp(self, n: int | None = None) -> np.ndarray:
        """The zero points as int64, broadcast to ``n`` values when given."""
        z = np.zeros(1, np.int64) if self.zero_point is None else np.asarray(self.zero_point, np.int64).ravel()
        return z if n is None else np.broadcast_to(z, (n,)).copy()

    @property
    def symmetric(self) -> bool:
        return self.zero_point is None or not np.any(np.asarray(self.zero_point) != 0)


@dataclass
class LayerQuant:
    """Quantization annotations of one conv / linear layer.

    Attributes
    ----------
    weight_format : str
        hwsim weight format: ``int8``, ``int4``, ``int2`` (signed codes of that width), ``ternary``
        (``{-1, 0, 1}``) or ``binary`` (``BipolarQuant``, ``{-1, +1}``).
    weight_bits, act_bits : int
        Bit widths of the weight codes and of the layer's input activations.
    weight_codes : ndarray of int64
        The graph's integer weights, shaped like the layer's weight.
    weight_scale : ndarray of float
        The graph's weight scale, one per output channel (a per-tensor scale is repeated).
    weight_exp : ndarray of int64
        ``round(log2(weight_scale))`` per output channel.
    in_scale, out_scale : float or None
        Scales of the input and output activations (``None`` where the graph leaves them float).
    in_exp, out_exp : int or None
        Their power-of-two exponents.
    max_rel_error : float
        Largest ``|2**e / s - 1|`` over the layer's weight, input and output scales.
    source : str
        ``qdq``, ``qoperator`` or ``qonnx``.
    in_q, out_q, w_q : QuantParam or None
        The quantizers themselves (float32 scales, zero points in their own domain, signedness): what the
        float32 requantizer (``requantizer="f32"``) uses.
    bias_codes : ndarray of int64 or None
        The graph's int32 bias (QDQ: the DequantizeLinear input of the bias; QOperator: the bias input).
    """

    weight_format: str
    weight_bits: int
    act_bits: int
    weight_codes: np.ndarray
    weight_scale: np.ndarray
    weight_exp: np.ndarray
    in_scale: float | None
    out_scale: float | None
    in_exp: int | None
    out_exp: int | None
    max_rel_error: float
    source: str
    in_q: QuantParam | None = None
    out_q: QuantParam | None = None
    w_q: QuantParam | None = None
    bias_codes: np.ndarray | None = None


@dataclass
class OnnxImport:
    """The result of :func:`load_onnx`.

    ``model`` is the float model (weights dequantized); ``quant`` maps conv/linear layer names to their
    :class:`LayerQuant` (empty for float graphs); ``input_scale`` is the graph input's quantizer scale;
    ``style`` is ``float``, ``qdq``, ``qoperator`` or ``qonnx``; ``notes`` lists what was folded or dropped.
    """

    model: Model
    quant: dict[str, LayerQuant] = field(default_factory=dict)
    input_scale: float | None = None
    style: str = "float"
    notes: list[str] = field(default_factory=list)
    path: str = "<model>"
    #: Output quantizer scale of every ``add`` / ``avgpool`` layer that has one (quantized graphs).
    act_scales: dict[str, float] = field(default_factory=dict)
    #: Quantizers of the graph input and of every layer output that has one (QuantParam by layer name).
    act_quant: dict = field(default_factory=dict)

    @property
    def pow2_symmetric(self) -> bool:
        """Every scale a power of two and every zero point 0: the power-of-two (shift) requantizer is exact."""
        qs = [q for lq in self.quant.values() for q in (lq.in_q, lq.out_q, lq.w_q) if q is not None]
        qs += list(self.act_quant.values())
        for q in qs:
            s = np.asarray(q.scale, np.float64).ravel()
            if not q.symmetric or not q.signed or np.any(np.exp2(np.round(np.log2(s))) != s):
                return False
        return True

    @property
    def quantized(self) -> bool:
        return bool(self.quant)

    def scale_report(self) -> list[str]:
        """One line per quantized layer: format, bits and the power-of-two mapping error of its scales."""
        lines = []
        for name, q in self.quant.items():
            ws = np.unique(q.weight_scale)
            wtxt = f"{ws[0]:.6g}" if len(ws) == 1 else f"{len(ws)} per-channel scales"
            lines.append(f"{name}: {q.weight_format} weights ({q.weight_bits} b, scale {wtxt} -> 2^"
                         f"{int(q.weight_exp.max())}), {q.act_bits}-bit inputs, max power-of-two error "
                         f"{100 * q.max_rel_error:.2f} %")
        return lines


# ------------------------------------------------------------------------------------------ helpers
def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise HwsimError("model .onnx is not allowed without the 'onnx' package: pip install 'hwsim[onnx]'") from None
    return onnx, numpy_helper


def _attrs(node) -> dict:
    onnx, _ = _onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pow2(scale, where: str, exact: bool) -> tuple[np.ndarray, float]:
    s = np.atleast_1d(np.asarray(scale, dtype=np.float64))
    if np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise HwsimError(f"{where}: scale {s.tolist()} is not allowed: expected positive finite scales")
    e = np.round(np.log2(s)).astype(np.int64)
    err = float(np.max(np.abs(np.exp2(e) / s - 1.0)))
    if exact and err > 0:
        bad = s[np.abs(np.exp2(e) / s - 1.0) > 0][0]
        raise HwsimError(f"{where}: scale {bad:.8g} is not allowed with exact scales: expected a power of two "
                         f"(nearest 2^{int(np.round(np.log2(bad)))}, error {100 * err:.3f} %)")
    return e, err


_INT_FORMATS = {8: "int8", 4: "int4", 2: "int2"}


#: The oldest default-domain opset read (opset 7 brought numpy broadcasting; older graphs carry
#: ``consumed_inputs`` / ``broadcast`` attributes this importer does not interpret).
MIN_OPSET = 7


class _Importer:
    def __init__(self, proto, path: str, shape_only: bool, exact: bool, seed: int):
        self.path, self.exact, self.shape_only = path, exact, shape_only
        self.rng = np.random.default_rng(seed)
        self.g = proto.graph
        self.proto_opsets = tuple(proto.opset_import)
        self.consts: dict[str, np.ndarray] = {}
        self.wq: dict[str, QuantParam] = {}      # constant tensor -> quantizer it came through
        self.wcodes: dict[str, np.ndarray] = {}  # constant tensor -> integer codes
        self.aq: dict[str, QuantParam] = {}      # activation tensor -> quantizer
        self.alias: dict[str, str] = {}          # onnx tensor -> hwsim layer name (or INPUT)
        self.layers: list[Layer] = []
        self.by_name: dict[str, Layer] = {}
        self.layer_in: dict[str, str] = {}       # compute layer -> onnx input tensor
        self.layer_out: dict[str, str] = {}      # hwsim layer -> onnx output tensor (last alias)
        self.notes: list[str] = []
        self.styles: set[str] = set()
        self.qop: dict[str, tuple] = {}          # layer -> (in QuantParam, out QuantParam) from QOperator
        _, nh = _onnx()
        for init in self.g.initializer:
            if shape_only:
                self.consts[init.name] = self._random(init)
            else:
                try:
                    self.consts[init.name] = nh.to_array(init)
                except Exception as e:  # external data not found, unknown dtype
                    raise HwsimError(f"{path}: initializer {init.name!r} is not readable ({e}); try shape-only "
                                     "import") from None
        self.uses: dict[str, int] = {}
        for node in self.g.node:
            for t in node.input:
                self.uses[t] = self.uses.get(t, 0) + 1
        for o in self.g.output:
            self.uses[o.name] = self.uses.get(o.name, 0) + 1

    def _random(self, init) -> np.ndarray:
        onnx, _ = _onnx()
        dims = tuple(int(d) for d in init.dims)
        np_dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
        if np.issubdtype(np_dtype, np.integer) and init.name and len(dims) <= 1 and (
                init.raw_data or init.int64_data or init.int32_data):
            _, nh = _onnx()
            return nh.to_array(init)  # shapes, axes, zero points: keep their values
        if np.issubdtype(np_dtype, np.integer):
            return self.rng.integers(-64, 64, size=dims).astype(np_dtype)
        return (self.rng.standard_normal(dims) * 0.1).astype(np.float32)

    # ---------------------------------------------------------------- tensors
    def where(self, node) -> str:
        return f"{self.path}: node {node.name or node.output[0]!r} ({node.op_type})"

    def const(self, name: str, node, what: str) -> np.ndarray:
        if name not in self.consts:
            raise HwsimError(f"{self.where(node)}: {what} {name!r} is not allowed: expected a constant "
                             "(an initializer or a Constant node)")
        return self.consts[name]

    def opt_const(self, node, i: int):
        return self.consts.get(node.input[i]) if len(node.input) > i and node.input[i] else None

    def src(self, name: str, node) -> str:
        if name not in self.alias:
            what = "a constant" if name in self.consts else "not produced by a supported node"
            raise HwsimError(f"{self.where(node)}: input {name!r} is not allowed here: it is {what}")
        return self.alias[name]

    def add_layer(self, node, out: str, **kw) -> Layer:
        base = (node.name or out or node.op_type).replace("/", "_").strip("_") or node.op_type
        name, i = base, 1
        while name in self.by_name or name == INPUT:
            i += 1
            name = f"{base}_{i}"
        try:
            layer = Layer(name=name, **kw)
        except HwsimError as e:
            raise HwsimError(f"{self.where(node)}: {e}") from None
        self.layers.append(layer)
        self.by_name[name] = layer
        self.alias[out] = name
        self.layer_out[name] = out
        return layer

    def zero_point(self, node, i: int, what: str) -> np.ndarray | None:
        """The zero point input ``i`` of ``node`` (int64, own domain), or None when absent."""
        zp = self.opt_const(node, i)
        if zp is None:
            return None
        zp = np.asarray(zp)
        if not np.issubdtype(zp.dtype, np.integer) and np.any(zp != np.rint(zp)):
            raise HwsimError(f"{self.where(node)}: {what} zero point {zp.ravel()[:4].tolist()} is not allowed: "
                             "expected integers")
        return zp.astype(np.int64)

    @staticmethod
    def dtype_bits(arr_or_dtype) -> tuple[int, bool]:
        dt = np.dtype(getattr(arr_or_dtype, "dtype", arr_or_dtype))
        return dt.itemsize * 8, np.issubdtype(dt, np.signedinteger)

    # ---------------------------------------------------------------- run
    def run(self) -> OnnxImport:
        onnx, _ = _onnx()
        newest = onnx.defs.onnx_opset_version()
        for op in self.proto_opsets:
            if op.domain in ("", "ai.onnx") and not MIN_OPSET <= op.version <= newest:
                raise HwsimError(f"{self.path}: opset={op.version} is not allowed: expected an ONNX opset in "
                                 f"[{MIN_OPSET}, {newest}] (the operators this onnx package defines)")
        for name, arr in self.consts.items():
            if not self.shape_only and np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
                raise HwsimError(f"{self.path}: initializer {name!r} holds {int(np.isnan(arr).sum())} NaN value(s) "
                                 "and is not allowed: expected finite numbers")
        inits = set(self.consts)
        inputs = [i for i in self.g.input if i.name not in inits]
        if len(inputs) != 1:
            raise HwsimError(f"{self.path}: {len(inputs)} graph inputs are not allowed: expected exactly one")
        inp = inputs[0]
        dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
        if len(dims) not in (2, 4) or any(d is None or d < 1 for d in dims[1:]):
            raise HwsimError(f"{self.path}: input {inp.name!r} shape {dims} is not allowed: expected (N, C, H, W) "
                             "or (N, F) with known C, H, W / F")
        self.alias[inp.name] = INPUT
        input_shape = tuple(dims[1:])
        if input_shape == (64,):  # digits as 64 features: keep the (1, 8, 8) images, flatten first
            input_shape = (1, 8, 8)
            layer = Layer(name="flatten_input", kind="flatten", inputs=(INPUT,))
            self.layers.append(layer)
            self.by_name[layer.name] = layer
            self.alias[inp.name] = layer.name
        nodes = list(self.g.node)
        for i, node in enumerate(nodes):
            handler = getattr(self, f"op_{node.op_type}", None)
            if node.op_type == "Constant":
                self.op_Constant(node)
                continue
            foreign = node.domain not in ("", "ai.onnx") and node.op_type not in ("Quant", "BipolarQuant") and not (
                node.domain == "com.microsoft" and node.op_type in _MS_OPS)
            if node.domain in ("", "ai.onnx") and node.op_type in _MS_OPS:
                handler = None
            if handler is None or foreign:
                raise HwsimError(f"{self.where(node)}: op type {node.op_type!r} is not supported: expected one of "
                                 f"{', '.join(SUPPORTED_OPS)}")
            handler(node, last=i == len(nodes) - 1)
            if node.op_type in ("Flatten", "Reshape", "MaxPool", "Identity", "Dropout") and node.input[0] in self.aq:
                self.aq.setdefault(node.output[0], self.aq[node.input[0]])  # value-preserving: same quantizer
        outs = [o.name for o in self.g.output]
        if len(outs) != 1:
            raise HwsimError(f"{self.path}: {len(outs)} graph outputs are not allowed: expected exactly one")
        final = self.alias.get(outs[0])
        if final is None or final == INPUT or not self.layers:
            raise HwsimError(f"{self.path}: output {outs[0]!r} is not allowed: it is not computed by any layer")
        if self.layers[-1].name != final:
            raise HwsimError(f"{self.path}: output {outs[0]!r} is not allowed: hwsim's model output is its last "
                             f"layer ({self.layers[-1].name!r}), not {final!r}")
        name = Path(self.path).stem if self.path != "<model>" else (self.g.name or "onnx")
        try:
            model = Model(self.layers, input_shape, name=name, meta={"source": self.path})
        except HwsimError as e:
            raise HwsimError(f"{self.path}: {e}") from None
        quant = self.annotations(model)
        act_scales, act_quant = {}, {}
        for la in model.layers if quant else ():
            aq = self._out_quant(self.layer_out[la.name]) if la.kind in ("add", "avgpool", "clip", "concat") else None
            if aq is not None:
                act_scales[la.name] = float(np.asarray(aq.scale).ravel()[0])
                act_quant[la.name] = aq
                _pow2(act_scales[la.name], f"{self.path}: node {aq.node!r} (output of {la.name})", self.exact)
        in_scale = None
        q0 = self.aq.get(inp.name)
        if q0 is not None:
            in_scale = float(np.asarray(q0.scale).ravel()[0])
            act_quant[INPUT] = q0
        style = "float" if not quant else ("qonnx" if "qonnx" in self.styles else
                                           "qoperator" if "qoperator" in self.styles else "qdq")
        return OnnxImport(model, quant, in_scale, style, self.notes, self.path, act_scales, act_quant)

    # ---------------------------------------------------------------- quantizers
    def op_Constant(self, node):
        _, nh = _onnx()
        a = _attrs(node)
        if "value" not in a:
            raise HwsimError(f"{self.where(node)}: only 'value' Constant nodes are supported")
        self.consts[node.output[0]] = nh.to_array(a["value"])

    def op_QuantizeLinear(self, node, last=False):
        self.styles.add("qdq")
        scale = self.const(node.input[1], node, "scale")
        zp = self.opt_const(node, 2)
        zpv = self.zero_point(node, 2, "QuantizeLinear")
        bits, signed = self.dtype_bits(zp if zp is not None else np.uint8)
        axis = _attrs(node).get("axis", 1)
        x = node.input[0]
        if x in self.consts:  # a weight: fold Q into integer codes
            w = np.asarray(self.consts[x], dtype=np.float64)
            s = _bcast(scale, w, axis)
            z = 0 if zpv is None else _bcast(zpv, w, axis)
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
            codes = np.clip(np.rint(w / s) + z, lo, hi).astype(np.int64)
            self.consts[node.output[0]] = codes
            self.wcodes[node.output[0]] = codes
            self.wq[node.output[0]] = QuantParam(np.asarray(scale, np.float64), bits, signed, node.name,
                                                 zero_point=zpv)
            return
        self.alias[node.output[0]] = self.src(x, node)
        self.aq[node.output[0]] = self.aq[x] = QuantParam(np.asarray(scale, np.float64), bits, signed, node.name,
                                                          zero_point=zpv)

    def op_DequantizeLinear(self, node, last=False):
        self.styles.add("qdq")
        scale = self.const(node.input[1], node, "scale")
        zpv = self.zero_point(node, 2, "DequantizeLinear")
        axis = _attrs(node).get("axis", 1)
        x = node.input[0]
        if x in self.consts:
            codes = np.asarray(self.consts[x]).astype(np.int64)
            bits, signed = self.dtype_bits(self.consts[x])
            if x in self.wq:
                bits, signed = self.wq[x].bits, self.wq[x].signed
            z = 0 if zpv is None else _bcast(zpv, codes, axis)
            self.consts[node.output[0]] = (codes - z) * _bcast(scale, codes, axis)
            self.wcodes[node.output[0]] = codes
            self.wq[node.output[0]] = QuantParam(np.asarray(scale, np.float64), bits, signed, node.name,
                                                 zero_point=zpv)
            return
        self.alias[node.output[0]] = self.src(x, node)
        q = self.aq.get(x)
        if q is None:
            zp = self.opt_const(node, 2)
            bits, signed = self.dtype_bits(zp) if zp is not None else (8, False)
            q = QuantParam(np.asarray(scale, np.float64), bits, signed, node.name, zero_point=zpv)
        self.aq[node.output[0]] = q

    def op_Quant(self, node, last=False):  # QONNX
        self.styles.add("qonnx")
        a = _attrs(node)
        scale = np.asarray(self.const(node.input[1], node, "scale"), np.float64)
        self.zero_point(node, 2, "Quant")
        bits = int(np.asarray(self.const(node.input[3], node, "bitwidth")).ravel()[0])
        if not 1 < bits <= 16 or float(np.asarray(self.consts[node.input[3]]).ravel()[0]) != bits:
            raise HwsimError(f"{self.where(node)}: bitwidth {self.consts[node.input[3]]} is not allowed: expected an "
                             "integer in [2, 16]")
        signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
        mode = a.get("rounding_mode", "ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        x = node.input[0]
        q = QuantParam(scale, bits, signed, node.name, narrow=narrow)
        if x in self.consts:
            w = np.asarray(self.consts[x], dtype=np.float64)
            s = scale if scale.size == 1 else scale.reshape(scale.shape + (1,) * (w.ndim - scale.ndim))
            lo = -(1 << (bits - 1)) + narrow if signed else 0
            hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1 - narrow
            rnd = {"ROUND": np.rint, "FLOOR": np.floor, "CEIL": np.ceil}.get(mode.upper(), np.rint)
            codes = np.clip(rnd(w / s), lo, hi).astype(np.int64)
            self.consts[node.output[0]] = codes * s
            self.wcodes[node.output[0]] = codes
            self.wq[node.output[0]] = q
            return
        self.alias[node.output[0]] = self.src(x, node)
        self.aq[node.output[0]] = self.aq[x] = q

    def op_BipolarQuant(self, node, last=False):
        self.styles.add("qonnx")
        scale = np.asarray(self.const(node.input[1], node, "scale"), np.float64)
        x = node.input[0]
        if x not in self.consts:
            raise HwsimError(f"{self.where(node)}: BipolarQuant on an activation is not supported: expected it on "
                             "weights (binary activations come from hwsim's binary compression)")
        w = np.asarray(self.consts[x], dtype=np.float64)
        codes = np.where(w >= 0, 1, -1).astype(np.int64)
        s = scale if scale.size == 1 else scale.reshape(scale.shape + (1,) * (w.ndim - scale.ndim))
        self.consts[node.output[0]] = codes * s
        self.wcodes[node.output[0]] = codes
        self.wq[node.output[0]] = QuantParam(scale, 1, True, node.name, bipolar=True)

    # ---------------------------------------------------------------- compute
    def _conv(self, node, x: str, w: np.ndarray, b, attrs: dict, wname: str) -> Layer:
        if w.ndim != 4:
            raise HwsimError(f"{self.where(node)}: weight shape {w.shape} is not allowed: expected 2-D convolution "
                             "(O, C/group, kh, kw)")
        kh, kw = w.shape[2:]
        strides = list(attrs.get("strides", [1, 1]))
        dil = list(attrs.get("dilations", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        auto = self._auto_pad(node, attrs)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            _, h, wd = self._shape_of(self.src(x, node))
            pads = _same_pads((h, wd), (kh, kw), strides, dil, auto == "SAME_UPPER")
        elif auto == "VALID":
            pads = [0, 0, 0, 0]
        for what, v in (("strides", strides), ("dilations", dil)):
            if len(set(v)) != 1:
                raise HwsimError(f"{self.where(node)}: {what}={v} is not allowed: expected equal values along H and W")
        if len(pads) != 4 or any(int(p) < 0 for p in pads):
            raise HwsimError(f"{self.where(node)}: pads={pads} is not allowed: expected 4 values >= 0 "
                             "[top, left, bottom, right]")
        # ONNX pads are [x1_begin, x2_begin, x1_end, x2_end] = [top, left, bottom, right]; hwsim's per-side
        # padding is (top, bottom, left, right).
        top, left, bottom, right = (int(p) for p in pads)
        layer = self.add_layer(node, node.output[0], kind="conv2d", inputs=(self.src(x, node),), weight=w,
                               bias=None if b is None else np.asarray(b, np.float64).ravel(), stride=int(strides[0]),
                               padding=(top, bottom, left, right), dilation=int(dil[0]),
                               groups=int(attrs.get("group", 1)))
        self.layer_in[layer.name] = x
        layer.meta["onnx_weight"] = wname
        return layer

    def op_Conv(self, node, last=False):
        w = self.const(node.input[1], node, "weight")
        layer = self._conv(node, node.input[0], np.asarray(w, np.float64), self.opt_const(node, 2), _attrs(node),
                           node.input[1])
        self._bias_codes(node, layer, 2)

    def _bias_codes(self, node, layer, i: int) -> None:
        """QDQ: keep the int32 codes of a bias that comes out of a DequantizeLinear (ONNX Runtime adds them)."""
        if len(node.input) > i and node.input[i] in self.wcodes:
            layer.meta["bias_codes"] = np.asarray(self.wcodes[node.input[i]], np.int64).ravel()

    def _linear(self, node, x: str, weight: np.ndarray, bias, wname: str, transposed: bool) -> Layer:
        layer = self.add_layer(node, node.output[0], kind="linear", inputs=(self.src(x, node),), weight=weight,
                               bias=None if bias is None else np.asarray(bias, np.float64).ravel())
        self.layer_in[layer.name] = x
        layer.meta["onnx_weight"] = wname
        layer.meta["onnx_weight_transposed"] = transposed
        return layer

    def op_Gemm(self, node, last=False):
        a = _attrs(node)
        if a.get("transA", 0):
            raise HwsimError(f"{self.where(node)}: transA=1 is not allowed: expected activations as (N, K)")
        w = np.asarray(self.const(node.input[1], node, "weight B"), np.float64)
        weight = (w if a.get("transB", 0) else w.T) * float(a.get("alpha", 1.0))
        c = self.opt_const(node, 2)
        bias = None
        if c is not None:
            c = np.asarray(c, np.float64) * float(a.get("beta", 1.0))
            if c.size not in (1, weight.shape[0]):
                raise HwsimError(f"{self.where(node)}: bias C of shape {c.shape} is not allowed: expected "
                                 f"({weight.shape[0]},)")
            bias = np.broadcast_to(c.ravel(), (weight.shape[0],)).copy()
        layer = self._linear(node, node.input[0], weight, bias, node.input[1], not a.get("transB", 0))
        if float(a.get("beta", 1.0)) == 1.0:
            self._bias_codes(node, layer, 2)

    def op_MatMul(self, node, last=False):
        w = np.asarray(self.const(node.input[1], node, "right operand"), np.float64)
        if w.ndim != 2:
            raise HwsimError(f"{self.where(node)}: right operand of shape {w.shape} is not allowed: expected (K, N)")
        self._linear(node, node.input[0], w.T, None, node.input[1], True)

    def op_QLinearConv(self, node, last=False):
        self.styles.add("qoperator")
        x, w = node.input[0], node.input[3]
        xs, ws, ys = (np.asarray(self.const(node.input[i], node, n), np.float64) for i, n in
                      ((1, "x_scale"), (4, "w_scale"), (6, "y_scale")))
        zx, zw, zy = (self.zero_point(node, i, what) for i, what in ((2, "x"), (5, "w"), (7, "y")))
        codes = np.asarray(self.const(w, node, "weight")).astype(np.int64)
        wf = (codes - (0 if zw is None else _bcast(zw, codes, 0))) * _bcast(ws, codes, 0)
        b = self.opt_const(node, 8)
        wsc = np.broadcast_to(ws.ravel(), (codes.shape[0],))
        bias = None if b is None else np.asarray(b, np.float64) * float(xs.ravel()[0]) * wsc
        layer = self._conv(node, x, wf, bias, _attrs(node), w)
        if b is not None:
            layer.meta["bias_codes"] = np.asarray(b).astype(np.int64).ravel()
        self._qop(node, layer, x, xs, codes, ws, ys, 3, 7, (zx, zw, zy))

    def op_QLinearMatMul(self, node, last=False):
        self.styles.add("qoperator")
        x, w = node.input[0], node.input[3]
        xs, ws, ys = (np.asarray(self.const(node.input[i], node, n), np.float64) for i, n in
                      ((1, "a_scale"), (4, "b_scale"), (6, "y_scale")))
        zx, zw, zy = (self.zero_point(node, i, what) for i, what in ((2, "a"), (5, "b"), (7, "y")))
        codes = np.asarray(self.const(w, node, "weight")).astype(np.int64).T  # (N, K)
        wf = (codes - (0 if zw is None else _bcast(zw, codes, 0))) * _bcast(ws, codes, 0)
        layer = self._linear(node, x, wf, None, w, True)
        self._qop(node, layer, x, xs, codes, ws, ys, 3, 7, (zx, zw, zy))

    def op_QGemm(self, node, last=False):  # com.microsoft: A, a_s, a_zp, B, b_s, b_zp, C (int32), y_s, y_zp
        self.styles.add("qoperator")
        a = _attrs(node)
        if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0:
            raise HwsimError(f"{self.where(node)}: transA={a.get('transA', 0)}, alpha={a.get('alpha', 1.0)} is not "
                             "allowed: expected transA=0, alpha=1")
        x, w = node.input[0], node.input[3]
        xs, ws = (np.asarray(self.const(node.input[i], node, n), np.float64) for i, n in ((1, "a_scale"),
                                                                                          (4, "b_scale")))
        if len(node.input) < 8 or not node.input[7]:
            raise HwsimError(f"{self.where(node)}: QGemm without y_scale (float output) is not supported: expected a "
                             "quantized output")
        ys = np.asarray(self.const(node.input[7], node, "y_scale"), np.float64)
        zx, zw, zy = (self.zero_point(node, i, what) for i, what in ((2, "a"), (5, "b"), (8, "y")))
        codes = np.asarray(self.const(w, node, "weight")).astype(np.int64)
        codes = codes if a.get("transB", 0) else codes.T  # (N, K)
        wf = (codes - (0 if zw is None else _bcast(zw, codes, 0))) * _bcast(ws, codes, 0)
        b = self.opt_const(node, 6)
        bias = None
        if b is not None:
            bias = np.asarray(b, np.float64).ravel() * float(xs.ravel()[0]) * np.broadcast_to(ws.ravel(),
                                                                                             (codes.shape[0],))
        layer = self._linear(node, x, wf, bias, w, not a.get("transB", 0))
        if b is not None:
            layer.meta["bias_codes"] = np.broadcast_to(np.asarray(b).astype(np.int64).ravel(), (codes.shape[0],)).copy()
        self._qop(node, layer, x, xs, codes, ws, ys, 3, 8, (zx, zw, zy))

    def op_QLinearAdd(self, node, last=False):  # com.microsoft: A, A_s, A_zp, B, B_s, B_zp, C_s, C_zp
        self.styles.add("qoperator")
        a, b = node.input[0], node.input[3]
        qs = []
        for t, si, zi, what in ((a, 1, 2, "A"), (b, 4, 5, "B"), (None, 6, 7, "C")):
            s = np.asarray(self.const(node.input[si], node, f"{what}_scale"), np.float64)
            zraw = self.opt_const(node, zi)
            bits, signed = self.dtype_bits(zraw) if zraw is not None else (8, False)
            q = QuantParam(s, bits, signed, node.name, zero_point=self.zero_point(node, zi, what))
            if t is not None:
                self.aq.setdefault(t, q)
            qs.append(q)
        self.add_layer(node, node.output[0], kind="add", inputs=(self.src(a, node), self.src(b, node)))
        self.aq[node.output[0]] = qs[2]

    def op_QLinearGlobalAveragePool(self, node, last=False):  # com.microsoft: X, x_s, x_zp, y_s, y_zp
        self.styles.add("qoperator")
        if _attrs(node).get("channels_last", 0):
            raise HwsimError(f"{self.where(node)}: channels_last=1 is not allowed: expected NCHW")
        qs = []
        for si, zi, what in ((1, 2, "x"), (3, 4, "y")):
            s = np.asarray(self.const(node.input[si], node, f"{what}_scale"), np.float64)
            zraw = self.opt_const(node, zi)
            bits, signed = self.dtype_bits(zraw) if zraw is not None else (8, False)
            qs.append(QuantParam(s, bits, signed, node.name, zero_point=self.zero_point(node, zi, what)))
        self.aq.setdefault(node.input[0], qs[0])
        self.op_GlobalAveragePool(node)
        self.aq[node.output[0]] = qs[1]

    def _qop(self, node, layer, x, xs, codes, ws, ys, wi, yi, zps=(None, None, None)):
        zx, zw, zy = zps
        bits, signed = self.dtype_bits(self.consts[node.input[wi]])
        self.wcodes[layer.name + "#w"] = codes
        self.wq[layer.name + "#w"] = QuantParam(ws, bits, signed, node.name, zero_point=zw)
        layer.meta["onnx_weight"] = layer.name + "#w"
        ybits, ysigned = self.dtype_bits(self.consts[node.input[yi]]) if node.input[yi] in self.consts else (8, False)
        xzp = self.opt_const(node, 2)
        xbits, xsigned = self.dtype_bits(xzp) if xzp is not None else (8, True)
        self.aq.setdefault(x, QuantParam(xs, xbits, xsigned, node.name, zero_point=zx))
        self.aq[node.output[0]] = QuantParam(ys, ybits, ysigned, node.name, zero_point=zy)

    def op_BatchNormalization(self, node, last=False):
        x = node.input[0]
        prev = self.by_name.get(self.alias.get(x, ""))
        if prev is None or prev.kind not in ("conv2d", "linear") or self.uses.get(x, 0) != 1:
            raise HwsimError(f"{self.where(node)}: BatchNormalization is not allowed here: expected it right after a "
                             "Conv or Gemm whose output feeds nothing else (it is folded into that layer)")
        if prev.meta.get("onnx_weight") in self.wcodes:
            raise HwsimError(f"{self.where(node)}: BatchNormalization after a quantized layer is not allowed: "
                             "fold it before quantizing")
        g, beta, mean, var = (np.asarray(self.const(node.input[i], node, n), np.float64)
                              for i, n in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
        k = g / np.sqrt(var + float(_attrs(node).get("epsilon", 1e-5)))
        shape = (-1,) + (1,) * (prev.weight.ndim - 1)
        prev.weight = prev.weight * k.reshape(shape)
        b = np.zeros(prev.weight.shape[0]) if prev.bias is None else prev.bias
        prev.bias = (b - mean) * k + beta
        self.alias[node.output[0]] = prev.name
        self.layer_out[prev.name] = node.output[0]
        self.notes.append(f"{node.name or node.output[0]}: BatchNormalization folded into {prev.name}")

    # ---------------------------------------------------------------- elementwise / shape
    def op_Relu(self, node, last=False):
        self.add_layer(node, node.output[0], kind="relu", inputs=(self.src(node.input[0], node),))

    def op_Clip(self, node, last=False):
        a = _attrs(node)
        lo = a.get("min", self.opt_const(node, 1))
        hi = a.get("max", self.opt_const(node, 2))
        lo = None if lo is None else float(np.asarray(lo).ravel()[0])
        hi = None if hi is None else float(np.asarray(hi).ravel()[0])
        if lo != 0.0 or (hi is not None and np.isfinite(hi) and hi <= 0):
            raise HwsimError(f"{self.where(node)}: Clip(min={lo}, max={hi}) is not supported: expected min 0 and no "
                             "max (ReLU) or a max > 0 (ReLU6 is Clip(0, 6))")
        if hi is None or not np.isfinite(hi):
            self.op_Relu(node)
            return
        self.add_layer(node, node.output[0], kind="clip", inputs=(self.src(node.input[0], node),), meta={"max": hi})

    def op_Concat(self, node, last=False):
        srcs = tuple(self.src(t, node) for t in node.input)
        rank = len(self._shape_of(srcs[0])) + 1
        axis = int(_attrs(node).get("axis", 1))
        if axis % rank != 1 or len(srcs) < 2:
            raise HwsimError(f"{self.where(node)}: axis={axis} with {len(srcs)} inputs is not allowed: expected 2 or "
                             "more inputs joined along the channel axis (1)")
        self.add_layer(node, node.output[0], kind="concat", inputs=srcs)

    def _auto_pad(self, node, attrs: dict) -> str:
        auto = attrs.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
            raise HwsimError(f"{self.where(node)}: auto_pad={auto!r} is not allowed: expected NOTSET, VALID, "
                             "SAME_UPPER or SAME_LOWER")
        return auto

    def _pool(self, node, kind: str):
        """MaxPool / AveragePool: 2-D window (rectangular allowed), strides per axis, MaxPool dilations per
        axis, pads per side
        (``auto_pad``), ``ceil_mode`` as extra end padding (windows that would start in the end padding are
        dropped, as ONNX Runtime does), AveragePool's ``count_include_pad`` as the layer's
        ``meta["count_pads"]``."""
        a = _attrs(node)
        ks = [int(v) for v in a.get("kernel_shape", [])]
        st = [int(v) for v in a.get("strides", [1] * len(ks))]  # ONNX: strides default to 1, not to the kernel
        dil = [int(v) for v in a.get("dilations", [1] * len(ks))]
        if len(ks) != 2 or len(st) != 2 or len(dil) != 2 or min(ks + st + dil) < 1:
            raise HwsimError(f"{self.where(node)}: kernel_shape={ks}, strides={st}, dilations={dil} is not allowed: "
                             "expected a 2-D window, strides and dilations of integers >= 1")
        if kind == "avgpool" and dil != [1, 1]:
            raise HwsimError(f"{self.where(node)}: dilations={dil} is not allowed: expected [1, 1] (dilated "
                             "AveragePool is not supported; MaxPool takes dilations)")
        src = self.src(node.input[0], node)
        shape = self._shape_of(src)
        if len(shape) != 3:
            raise HwsimError(f"{self.where(node)}: input shape {shape} is not allowed: expected (C, H, W) maps")
        auto = self._auto_pad(node, a)
        pads = [int(p) for p in a.get("pads", [0, 0, 0, 0])]
        if auto in ("SAME_UPPER", "SAME_LOWER") and dil != [1, 1]:
            raise HwsimError(f"{self.where(node)}: auto_pad={auto!r} with dilations={dil} is not allowed: expected "
                             "explicit pads or VALID (ONNX Runtime pads a dilated MaxPool as if undilated, unlike "
                             "the ONNX spec)")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = _same_pads(shape[1:], ks, st, [1, 1], auto == "SAME_UPPER")
        elif auto == "VALID":
            pads = [0, 0, 0, 0]
        if len(pads) != 4 or any(p < 0 or p >= k for p, k in zip(pads, ks + ks, strict=True)):
            raise HwsimError(f"{self.where(node)}: pads={pads} is not allowed: expected 4 values [top, left, bottom, "
                             f"right], each >= 0 and smaller than that axis's kernel {ks}")
        top, left, bottom, right = pads
        ceil_mode = int(a.get("ceil_mode", 0))
        if ceil_mode not in (0, 1):
            raise HwsimError(f"{self.where(node)}: ceil_mode={ceil_mode} is not allowed: expected 0 or 1")
        extra = [0, 0]
        if ceil_mode:
            for i, (size, lo, hi) in enumerate(((shape[1], top, bottom), (shape[2], left, right))):
                k, s = (ks[i] - 1) * dil[i] + 1, st[i]  # the dilated window's span
                out = -(-(size + lo + hi - k) // s) + 1
                if (out - 1) * s >= size + lo:  # the last window would start in the end padding: dropped
                    out -= 1
                extra[i] = max(0, (out - 1) * s + k - (size + lo + hi))
        meta = {}
        cip = int(a.get("count_include_pad", 0))
        if kind == "avgpool" and (top or left or bottom or right or any(extra)):
            if cip not in (0, 1):
                raise HwsimError(f"{self.where(node)}: count_include_pad={cip} is not allowed: expected 0 or 1")
            meta["count_pads"] = (top, bottom, left, right) if cip else (0, 0, 0, 0)
        self.add_layer(node, node.output[0], kind=kind, inputs=(src,), kernel=tuple(ks), stride=tuple(st),
                       padding=(top, bottom + extra[0], left, right + extra[1]), meta=meta,
                       **({"dilation": tuple(dil)} if kind == "maxpool" else {}))

    def op_MaxPool(self, node, last=False):
        if len(node.output) > 1 and node.output[1]:
            raise HwsimError(f"{self.where(node)}: the Indices output is not supported")
        self._pool(node, "maxpool")

    def op_AveragePool(self, node, last=False):
        self._pool(node, "avgpool")

    def op_GlobalAveragePool(self, node, last=False):
        src = self.src(node.input[0], node)
        shape = self._shape_of(src)
        if len(shape) != 3:
            raise HwsimError(f"{self.where(node)}: input shape {shape} is not allowed: expected (C, H, W) maps")
        self.add_layer(node, node.output[0], kind="avgpool", inputs=(src,), kernel=(shape[1], shape[2]), stride=1)

    def _shape_of(self, name: str) -> tuple:
        m = Model(self.layers, self._input_shape(), name="partial") if self.layers else None
        if name == INPUT or m is None:
            return self._input_shape()
        return m.shapes()[name]

    def _input_shape(self) -> tuple:
        inits = set(self.consts)
        inp = next(i for i in self.g.input if i.name not in inits)
        dims = tuple(d.dim_value for d in inp.type.tensor_type.shape.dim[1:])
        return (1, 8, 8) if dims == (64,) else dims

    def op_Add(self, node, last=False):
        a, b = node.input[0], node.input[1]
        ca, cb = a in self.consts, b in self.consts
        if ca and cb:
            raise HwsimError(f"{self.where(node)}: Add of two constants is not supported")
        if ca or cb:
            x, c = (b, self.consts[a]) if ca else (a, self.consts[b])
            prev = self.by_name.get(self.alias.get(x, ""))
            if prev is None or prev.kind not in ("conv2d", "linear") or self.uses.get(x, 0) != 1:
                raise HwsimError(f"{self.where(node)}: Add of a constant is not allowed here: expected a bias right "
                                 "after a Conv, Gemm or MatMul")
            c = np.asarray(c, np.float64)
            o = prev.weight.shape[0]
            if c.size not in (1, o):
                raise HwsimError(f"{self.where(node)}: bias of shape {c.shape} is not allowed: expected {o} values")
            prev.bias = (np.zeros(o) if prev.bias is None else prev.bias) + np.broadcast_to(c.ravel(), (o,))
            self.alias[node.output[0]] = prev.name
            self.layer_out[prev.name] = node.output[0]
            return
        self.add_layer(node, node.output[0], kind="add", inputs=(self.src(a, node), self.src(b, node)))

    def _flatten(self, node):
        src = self.src(node.input[0], node)
        if len(self._shape_of(src)) == 1:
            self.alias[node.output[0]] = src
            return
        self.add_layer(node, node.output[0], kind="flatten", inputs=(src,))

    def op_Flatten(self, node, last=False):
        if _attrs(node).get("axis", 1) != 1:
            raise HwsimError(f"{self.where(node)}: axis={_attrs(node).get('axis')} is not allowed: expected 1")
        self._flatten(node)

    def op_Reshape(self, node, last=False):
        shape = [int(v) for v in np.asarray(self.const(node.input[1], node, "shape")).ravel()]
        src = self.src(node.input[0], node)
        feat = int(np.prod(self._shape_of(src)))
        if len(shape) != 2 or shape[1] not in (-1, feat) or shape[0] not in (-1, 0, 1) and shape[1] != -1:
            raise HwsimError(f"{self.where(node)}: shape {shape} is not allowed: expected a flatten to (N, {feat})")
        self._flatten(node)

    def op_Identity(self, node, last=False):
        x = node.input[0]
        if x in self.consts:
            self.consts[node.output[0]] = self.consts[x]
            for d in (self.wq, self.wcodes):
                if x in d:
                    d[node.output[0]] = d[x]
            return
        self.alias[node.output[0]] = self.src(x, node)
        if x in self.aq:
            self.aq[node.output[0]] = self.aq[x]

    op_Dropout = op_Identity

    def op_Softmax(self, node, last=False):
        if not last:
            raise HwsimError(f"{self.where(node)}: {node.op_type} is only supported as the last node (it is dropped: "
                             "the argmax does not change)")
        self.alias[node.output[0]] = self.src(node.input[0], node)
        self.notes.append(f"{node.name or node.output[0]}: final {node.op_type} dropped (logits are the output)")

    op_LogSoftmax = op_Softmax

    # ---------------------------------------------------------------- annotations
    def annotations(self, model: Model) -> dict[str, LayerQuant]:
        quant = {}
        comp = model.compute_layers()
        marked = [la for la in comp if la.meta.get("onnx_weight") in self.wq]
        if not marked:
            if self.aq:
                self.notes.append("activation quantizers without quantized weights: imported as a float model")
            return quant
        missing = [la.name for la in comp if la not in marked]
        if missing:
            raise HwsimError(f"{self.path}: layers {', '.join(missing)} are not allowed unquantized in a quantized "
                             "graph: expected every Conv/Gemm/MatMul weight behind a quantizer")
        source = "qonnx" if "qonnx" in self.styles else "qoperator" if "qoperator" in self.styles else "qdq"
        for la in marked:
            key = la.meta["onnx_weight"]
            qp = self.wq[key]
            codes = self.wcodes[key]
            if la.kind == "linear" and la.meta.get("onnx_weight_transposed") and not key.endswith("#w"):
                codes = codes.T
            codes = codes.reshape(la.weight.shape)
            where = f"{self.path}: node {qp.node!r} (weights of {la.name})"
            if not qp.signed and qp.bits == 8:  # uint8 weights: shifted into int8, the zero point with them
                codes = codes - 128
                qp = QuantParam(qp.scale, 8, True, qp.node, zero_point=qp.zp() - 128)
            if qp.bipolar:
                fmt, bits = "binary", 1
            elif not qp.signed:
                raise HwsimError(f"{where}: unsigned {qp.bits}-bit weights are not allowed: expected signed codes "
                                 "or uint8")
            elif qp.bits == 2 and qp.narrow or (qp.bits == 2 and codes.min() >= -1):
                fmt, bits = "ternary", 2
            elif qp.bits in _INT_FORMATS:
                fmt, bits = _INT_FORMATS[qp.bits], qp.bits
            else:
                raise HwsimError(f"{where}: {qp.bits}-bit weights are not allowed: expected 8, 4, 2 bits or bipolar")
            ws = np.broadcast_to(np.asarray(qp.scale, np.float64).ravel(), (la.weight.shape[0],)).copy()
            we, err = _pow2(ws, where, self.exact)
            xin = self.layer_in[la.name]
            aq_in = self.aq.get(xin)
            out_t = self.layer_out[la.name]
            aq_out = self._out_quant(out_t)
            errs = [err]
            in_s = out_s = None
            in_e = out_e = None
            act_bits = 8
            if aq_in is not None:
                in_s = float(np.asarray(aq_in.scale).ravel()[0])
                e, er = _pow2(in_s, f"{self.path}: node {aq_in.node!r} (input of {la.name})", self.exact)
                in_e, act_bits = int(e[0]), aq_in.bits
                errs.append(er)
            if aq_out is not None:
                out_s = float(np.asarray(aq_out.scale).ravel()[0])
                e, er = _pow2(out_s, f"{self.path}: node {aq_out.node!r} (output of {la.name})", self.exact)
                out_e = int(e[0])
                errs.append(er)
            if fmt == "binary" and act_bits > 1:
                fmt, bits = "ternary", 2
                self.notes.append(f"{la.name}: bipolar weights with {act_bits}-bit inputs run as ternary codes "
                                  "(+-1 is a subset; hwsim's binary XNOR format needs 1-bit activations)")
            quant[la.name] = LayerQuant(fmt, bits, act_bits, codes.astype(np.int64), ws, we, in_s, out_s, in_e, out_e,
                                        max(errs), source, aq_in, aq_out, qp, la.meta.get("bias_codes"))
        return quant

    def _out_quant(self, tensor: str):
        """The quantizer on ``tensor`` or right after a ReLU that follows it."""
        if tensor in self.aq:
            return self.aq[tensor]
        for node in self.g.node:
            if tensor in node.input and node.op_type in ("Relu", "Clip") and node.output[0] in self.aq:
                return self.aq[node.output[0]]
            if tensor in node.input and node.op_type in ("QuantizeLinear", "Quant") and node.output[0] in self.aq:
                return self.aq[node.output[0]]
            if tensor in node.input and node.op_type == "Relu":
                for n2 in self.g.node:
                    if node.output[0] in n2.input and n2.output[0] in self.aq:
                        return self.aq[n2.output[0]]
        return None


def _same_pads(size, kernel, strides, dilations, upper: bool) -> list[int]:
    """ONNX ``auto_pad=SAME_UPPER/SAME_LOWER`` as ``[top, left, bottom, right]``: per axis the output is
    ``ceil(in / stride)`` and the total padding ``max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0)``;
    SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the start."""
    begin, end = [], []
    for n, k, s, d in zip(size, kernel, strides, dilations, strict=True):
        total = max((-(-int(n) // int(s)) - 1) * int(s) + (int(k) - 1) * int(d) + 1 - int(n), 0)
        lo = total // 2 if upper else total - total // 2
        begin.append(lo)
        end.append(total - lo)
    return begin + end


def _bcast(scale, arr: np.ndarray, axis: int) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64)
    if s.size == 1:
        return s.reshape(())
    shape = [1] * arr.ndim
    shape[axis % arr.ndim] = s.size
    return s.reshape(shape)


def load_onnx(source, *, shape_only: bool = False, exact: bool = False, seed: int = 0) -> OnnxImport:
    """Import an ONNX graph.

    Parameters
    ----------
    source : str, os.PathLike, bytes or onnx.ModelProto
        The model.
    shape_only : bool
        Do not read the weights: every initializer becomes random data of its shape (for performance studies
        of large networks; external weight files need not exist).
    exact : bool
        Reject quantization scales that are not powers of two instead of mapping them to the nearest one.
    seed : int
        Seed of the random weights of a shape-only import.

    Returns
    -------
    OnnxImport

    Raises
    ------
    HwsimError
        One line naming the file and the node (name and op type) that is malformed or unsupported.
    """
    onnx, _ = _onnx()
    path = "<model>"
    if isinstance(source, onnx.ModelProto):
        proto = source
    elif isinstance(source, bytes | bytearray):
        try:
            proto = onnx.load_from_string(bytes(source))
        except Exception as e:
            msg = (str(e).splitlines() or [type(e).__name__])[0][:80]
            raise HwsimError(f"model bytes are not allowed: not an ONNX model ({msg})") from None
    else:
        path = str(source)
        try:
            proto = onnx.load(path, load_external_data=not shape_only)
        except FileNotFoundError:
            raise HwsimError(f"model file {path!r} is not allowed: no such file") from None
        except Exception as e:
            msg = (str(e).splitlines() or [type(e).__name__])[0][:120]
            raise HwsimError(f"model file {path!r} is not allowed: not a readable ONNX model ({msg})") from None
    return _Importer(proto, path, shape_only, exact, seed).run()


# ------------------------------------------------------------------------------------------ integer model
def to_compressed(imp: OnnxImport, cfg=None, act_bits: int | None = None, requantizer: str = "auto"):
    """The integer model of a quantized import: the graph's weight codes and power-of-two scales.

    Conv/linear layers keep the graph's integer weights and take ``weight_exp``; activations take the
    exponents of their quantizers (``in_exp``/``out_exp``); a ReLU right after a layer is fused into it;
    each layer requantizes by ``shift = out_exp - (in_exp + weight_exp)`` and its float bias becomes
    ``rint(bias / 2**(in_exp + weight_exp))``. Supported layers: conv/linear (+ ReLU), maxpool, flatten, and
    ``add`` (+ ReLU) / ``avgpool`` with an output quantizer: add aligns its inputs to the finer exponent by
    left shifts and shifts the sum right to the output exponent; an unpadded avgpool whose window area ``kh * kw``
    is a power of two shifts the window sum right by ``log2(area) + out_exp - in_exp``, a padded one (or one
    of another area) divides it by
    ``count * 2**(out_exp - in_exp)`` (``count``: the window's counted pixels, ONNX ``count_include_pad``)
    with the configured rounding (as :mod:`hwsim.models.compressed` runs them); a padded maxpool pads with
    -inf;
    ``clip`` shifts right to its output exponent and clamps to ``[0, max / 2**out_exp]`` (an integer);
    ``concat`` shifts each input to its output quantizer's exponent (left, saturating, or right, rounding).

    Parameters
    ----------
    imp : OnnxImport
        A quantized import (``imp.quantized``).
    cfg : MacArrayConfig-like, optional
        acc_bits, overflow and rounding (default: the reference's defaults).
    act_bits : int, optional
        Activation width (default: the input quantizer's width).
    requantizer : {"auto", "shift", "f32"}
        ``shift``: the power-of-two requantizer above (scales mapped to the nearest power of two, zero points
        must be 0). ``f32``: ONNX Runtime's arithmetic (:func:`to_compressed_f32`). ``auto`` (default):
        ``shift`` when every scale is a power of two and every zero point 0, else ``f32``.

    Returns
    -------
    hwsim.models.compress.CompressedModel
    """
    from hwsim.models import compress as comp

    if not imp.quantized:
        raise HwsimError(f"{imp.path}: the model has no quantization annotations: expected QDQ, QOperator or "
                         "QONNX quantizers on its weights")
    if requantizer not in ("auto", "shift", "f32"):
        raise HwsimError(f"requantizer={requantizer!r} is not allowed: expected one of auto, shift, f32")
    if requantizer == "f32" or (requantizer == "auto" and imp.style != "qonnx" and not imp.pow2_symmetric):
        return to_compressed_f32(imp, cfg)
    for name, lq in imp.quant.items():
        for q in (lq.in_q, lq.out_q, lq.w_q):
            if q is not None and not q.symmetric:
                raise HwsimError(f"{imp.path}: layer {name!r}: zero point {q.zp().tolist()[:4]} (node {q.node!r}) is "
                                 "not allowed with the power-of-two requantizer: expected 0, or requantizer='f32'")
    cfg = comp.Arith() if cfg is None else cfg
    model = imp.model
    shapes = model.shapes()
    first = next(iter(imp.quant.values()))
    act_bits = act_bits or first.act_bits
    if imp.input_scale is None:
        raise HwsimError(f"{imp.path}: the graph input has no quantizer: expected a QuantizeLinear/Quant on it")
    e_in = int(_pow2(imp.input_scale, f"{imp.path}: input quantizer", False)[0][0])
    layers = [comp.QLayer(INPUT, "input", (), model.input_shape, e_in, act_bits, act_bits=act_bits)]
    exps = {INPUT: e_in}
    consumers: dict[str, list[str]] = {}
    for la in model.layers:
        for i in la.inputs:
            consumers.setdefault(i, []).append(la.name)
    fused: dict[str, str] = {}
    for la in model.layers:
        ins = tuple(fused.get(i, i) for i in la.inputs)
        if la.name in fused:
            continue
        if la.kind in ("conv2d", "linear"):
            q = imp.quant[la.name]
            in_exp = exps[ins[0]]
            if q.in_exp is not None and q.in_exp != in_exp:
                raise HwsimError(f"{imp.path}: layer {la.name!r}: input exponent {q.in_exp} is not allowed: its "
                                 f"producer has exponent {in_exp} (requantize between them)")
            nxt = consumers.get(la.name, [])
            relu = len(nxt) == 1 and model.layer(nxt[0]).kind == "relu"
            if relu:
                fused[nxt[0]] = la.name
            if q.out_exp is None:
                raise HwsimError(f"{imp.path}: layer {la.name!r} has no output quantizer: expected a "
                                 "QuantizeLinear/Quant on its output (or after its ReLU)")
            e_acc = in_exp + q.weight_exp
            shift = q.out_exp - e_acc
            if shift.min() < 0 or shift.max() > cfg.acc_bits - 1:
                raise HwsimError(f"{imp.path}: layer {la.name!r}: requantization shift {shift.tolist()[:4]} is not "
                                 f"allowed: expected 0..{cfg.acc_bits - 1} (output scale below input x weight scale)")
            bias = None
            if la.bias is not None:
                lo, hi = -(1 << (cfg.acc_bits - 1)), (1 << (cfg.acc_bits - 1)) - 1
                bias = np.clip(np.rint(la.bias / np.exp2(e_acc.astype(np.float64))), lo, hi).astype(np.int64)
            out_bits = act_bits
            layers.append(comp.QLayer(la.name, la.kind, ins, shapes[la.name], int(q.out_exp), out_bits,
                                      weight_format=q.weight_format, weight=q.weight_codes, weight_exp=q.weight_exp,
                                      bias=bias, in_exp=in_exp, shift=shift.astype(np.int64), relu=relu,
                                      act_bits=act_bits, stride=la.stride, padding=la.padding, dilation=la.dilation,
                                      groups=la.groups, gain=np.ones(la.weight.shape[0]), meta=dict(la.meta)))
            exps[la.name] = int(q.out_exp)
        elif la.kind in ("add", "avgpool"):
            nxt = consumers.get(la.name, [])
            relu = la.kind == "add" and len(nxt) == 1 and model.layer(nxt[0]).kind == "relu"
            if relu:
                fused[nxt[0]] = la.name
            if la.name not in imp.act_scales:
                raise HwsimError(f"{imp.path}: layer {la.name!r} ({la.kind}) has no output quantizer: expected a "
                                 "QuantizeLinear/Quant on its output (or after its ReLU)")
            e_out = int(_pow2(imp.act_scales[la.name], f"{imp.path}: output of {la.name}", False)[0][0])
            meta = {}
            if la.kind == "add":
                ea, eb = exps[ins[0]], exps[ins[1]]
                emin = min(ea, eb)
                shift = np.array([ea - emin, eb - emin, e_out - emin], dtype=np.int64)
                bad = shift[2] < 0
            elif la.padding:  # padded: divide each window sum by its pixel count
                meta = {"count_pads": la.meta.get("count_pads", (0, 0, 0, 0))}
                shift = np.array([e_out - exps[ins[0]]], dtype=np.int64)
                bad = shift[0] < 0
            else:
                kh, kw = pair(la.kernel)
                area = kh * kw
                if area & (area - 1):  # divide each window sum by its pixel count, as a padded pool does
                    meta = {"count_pads": (0, 0, 0, 0)}
                    shift = np.array([e_out - exps[ins[0]]], dtype=np.int64)
                else:
                    shift = np.array([area.bit_length() - 1 + e_out - exps[ins[0]]], dtype=np.int64)
                bad = shift[0] < 0
            if bad:
                raise HwsimError(f"{imp.path}: layer {la.name!r}: output exponent {e_out} is not allowed: expected "
                                 "an output scale no finer than the input scale (the requantizer shifts right)")
            layers.append(comp.QLayer(la.name, la.kind, ins, shapes[la.name], e_out, act_bits, act_bits=act_bits,
                                      relu=relu, shift=shift, kernel=la.kernel, stride=la.stride, padding=la.padding,
                                      meta=meta))
            exps[la.name] = e_out
        elif la.kind in ("clip", "concat"):
            ein = [exps[i] for i in ins]
            if la.name in imp.act_scales:
                e_out = int(_pow2(imp.act_scales[la.name], f"{imp.path}: output of {la.name}", False)[0][0])
            elif len(set(ein)) == 1:
                e_out = ein[0]
            else:
                raise HwsimError(f"{imp.path}: layer {la.name!r} (concat) has no output quantizer and inputs of "
                                 f"exponents {ein}: expected a QuantizeLinear/Quant on its output (or equal input "
                                 "scales)")
            shift = np.array([e - e_out for e in ein], dtype=np.int64)
            meta = {}
            if la.kind == "clip":
                if shift[0] > 0:
                    raise HwsimError(f"{imp.path}: layer {la.name!r}: output exponent {e_out} is not allowed: "
                                     "expected an output scale no finer than the input scale (the requantizer "
                                     "shifts right)")
                shift = -shift
                code = la.meta["max"] / 2.0 ** e_out
                if code != np.floor(code):
                    raise HwsimError(f"{imp.path}: layer {la.name!r}: clip max {la.meta['max']:g} is not allowed in "
                                     f"an integer model: it is not a multiple of the output scale 2**{e_out}")
                meta["max_code"] = int(code)
            layers.append(comp.QLayer(la.name, la.kind, ins, shapes[la.name], e_out, act_bits, act_bits=act_bits,
                                      shift=shift, meta=meta))
            exps[la.name] = e_out
        elif la.kind in ("maxpool", "flatten", "relu"):
            layers.append(comp.QLayer(la.name, la.kind, ins, shapes[la.name], exps[ins[0]], act_bits,
                                      act_bits=act_bits, kernel=la.kernel, stride=la.stride, padding=la.padding,
                                      dilation=la.dilation))
            exps[la.name] = exps[ins[0]]
        else:
            raise HwsimError(f"{imp.path}: layer {la.name!r} ({la.kind}) is not supported in an imported integer "
                             "model: expected conv/linear (+ReLU), add (+ReLU), avgpool, maxpool, flatten, clip and "
                             "concat")
    spec = comp.CompressSpec(weight_format=first.weight_format, per_channel=any(
        len(np.unique(q.weight_exp)) > 1 for q in imp.quant.values()))
    cm = comp.CompressedModel(layers, spec, model, model, {}, act_bits, cfg)
    cm.name = f"{model.name}@onnx-{imp.style}"
    return cm


def _own_unsigned(q) -> bool:
    return q is not None and not q.signed


def _scalar(v) -> float:
    return float(np.asarray(v, np.float64).ravel()[0])


def to_compressed_f32(imp: OnnxImport, cfg=None):
    """The integer model of a quantized import with ONNX Runtime's arithmetic (``requantizer="f32"``).

    How the graph maps onto the hardware:

    * Codes are signed inside hwsim: a uint8 tensor's codes and zero point are shifted by -128 (``x - z`` is
      unchanged), so the array multiplies int8 activations by int8 weights whatever the graph's types
      (uint8 weights likewise; their zero points become per-channel ``weight_zp``).
    * conv / linear (QLinearConv, QLinearMatMul, QGemm, or DequantizeLinear -> Conv/Gemm/MatMul ->
      QuantizeLinear): the graph's integer weights and int32 bias; the zero points are folded out of the
      inner product (:func:`hwsim.models.mac_array.zero_point_correction`: ``-z_x * sum_k w`` and
      ``K z_x z_w`` into the bias, ``-z_w * sum_k x`` as a row term), padding uses the input's zero point,
      and the output is ONNX Runtime's float32 requantizer with the scale formed as its kernels form it,
      ``f32(f32(s_x * s_w[n]) / s_y)`` (:class:`hwsim.models.mac_array.FloatRequant`).
    * the graph input's QuantizeLinear, QLinearAdd (a QDQ Add) and QLinearGlobalAveragePool run on the host,
      bit-exact to ONNX Runtime's kernels (:mod:`hwsim.models.ort_ops`); MaxPool and Flatten are exact on
      codes.

    Rejected by name: a standalone ReLU / Clip that is not fused into the layer before it, Concat, and
    AveragePool other than global.
    """
    from hwsim.models import compress as comp
    from hwsim.models.spec import CompressSpec

    cfg = comp.Arith(rounding="half_even") if cfg is None else cfg
    model = imp.model
    shapes = model.shapes()
    q_in = imp.act_quant.get(INPUT)
    if q_in is None:
        raise HwsimError(f"{imp.path}: the graph input has no quantizer: expected a QuantizeLinear on it")

    def off(q) -> int:
        return 128 if _own_unsigned(q) else 0

    def zp(q) -> int:
        return int(q.zp()[0])

    def exp_of(q) -> int:
        return int(np.round(np.log2(_scalar(q.scale))))

    def check8(q, where):
        if q.bits != 8:
            raise HwsimError(f"{imp.path}: {where}: {q.bits}-bit activations are not allowed with ONNX Runtime "
                             "arithmetic: expected int8 or uint8")

    check8(q_in, "graph input")
    layers = [comp.QLayer(INPUT, "input", (), model.input_shape, exp_of(q_in), 8, act_bits=8,
                          meta={"ort": {"scale": np.float32(_scalar(q_in.scale)), "zp": zp(q_in),
                                        "unsigned": _own_unsigned(q_in)}, "offset": off(q_in)})]
    qof = {INPUT: q_in}
    consumers: dict[str, list[str]] = {}
    for la in model.layers:
        for i in la.inputs:
            consumers.setdefault(i, []).append(la.name)
    fused: dict[str, str] = {}

    def fuse_relu(la) -> bool:
        nxt = consumers.get(la.name, [])
        if len(nxt) == 1 and model.layer(nxt[0]).kind == "relu":
            fused[nxt[0]] = la.name
            return True
        return False

    for la in model.layers:
        ins = tuple(fused.get(i, i) for i in la.inputs)
        if la.name in fused:
            continue
        if la.kind in ("conv2d", "linear"):
            q = imp.quant[la.name]
            qi = qof[ins[0]]
            if q.out_q is None:
                raise HwsimError(f"{imp.path}: layer {la.name!r} has no output quantizer: expected a "
                                 "QuantizeLinear on its output (or after its ReLU)")
            check8(q.out_q, f"output of {la.name}")
            xs = np.float32(_scalar((q.in_q or qi).scale))
            ws = np.broadcast_to(np.asarray(q.w_q.scale, np.float32).ravel(), (la.weight.shape[0],))
            ys = np.float32(_scalar(q.out_q.scale))
            scale = ((xs * ws).astype(np.float32) / ys).astype(np.float32)  # as ONNX Runtime forms it
            relu = fuse_relu(la)
            in_zp = zp(qi) - off(qi)
            wzp = None if q.w_q.symmetric else q.w_q.zp(la.weight.shape[0])
            if q.bias_codes is not None:
                bias = np.asarray(q.bias_codes, np.int64)
            elif la.bias is not None:
                bias = np.rint(la.bias / (np.float64(xs) * ws.astype(np.float64))).astype(np.int64)
            else:
                bias = None
            layers.append(comp.QLayer(
                la.name, la.kind, ins, shapes[la.name], exp_of(q.out_q), 8, weight_format=q.weight_format,
                weight=q.weight_codes, weight_exp=np.zeros(la.weight.shape[0], np.int64), bias=bias,
                in_exp=exp_of(qi), shift=np.zeros(la.weight.shape[0], np.int64), relu=relu, act_bits=8,
                stride=la.stride, padding=la.padding, dilation=la.dilation, groups=la.groups, pad_value=in_zp,
                gain=np.ones(la.weight.shape[0]), meta={**la.meta, "offset": off(q.out_q)}, in_zp=in_zp,
                weight_zp=wzp, requant="f32", scale=scale, out_zp=zp(q.out_q) - off(q.out_q)))
            qof[la.name] = q.out_q
        elif la.kind in ("add", "avgpool"):
            qo = imp.act_quant.get(la.name)
            if qo is None:
                raise HwsimError(f"{imp.path}: layer {la.name!r} ({la.kind}) has no output quantizer: expected a "
                                 "QuantizeLinear on its output (or after its ReLU)")
            check8(qo, f"output of {la.name}")
            qs = [qof[i] for i in ins]
            if la.kind == "add":
                relu = fuse_relu(la)
                ort = {"op": "qlinear_add", "sa": _scalar(qs[0].scale), "za": zp(qs[0]), "sb": _scalar(qs[1].scale),
                       "zb": zp(qs[1]), "sc": _scalar(qo.scale), "zc": zp(qo)}
            else:
                relu = False
                _, h, w = shapes[ins[0]] if ins[0] != INPUT else model.input_shape
                if la.padding or tuple(pair(la.kernel)) != (h, w):
                    raise HwsimError(f"{imp.path}: layer {la.name!r}: a quantized AveragePool is not allowed with "
                                     "ONNX Runtime arithmetic: expected GlobalAveragePool")
                ort = {"op": "qlinear_gap", "sx": _scalar(qs[0].scale), "zx": zp(qs[0]), "sy": _scalar(qo.scale),
                       "zy": zp(qo)}
            ort.update(unsigned=_own_unsigned(qo), in_unsigned=[_own_unsigned(q) for q in qs])
            layers.append(comp.QLayer(la.name, la.kind, ins, shapes[la.name], exp_of(qo), 8, act_bits=8, relu=relu,
                                      kernel=la.kernel, stride=la.stride, padding=la.padding,
                                      meta={"ort": ort, "offset": off(qo)}))
            qof[la.name] = qo
        elif la.kind in ("maxpool", "flatten"):
            qi = qof[ins[0]]
            layers.append(comp.QLayer(la.name, la.kind, ins, shapes[la.name], exp_of(qi), 8, act_bits=8,
                                      kernel=la.kernel, stride=la.stride, padding=la.padding, dilation=la.dilation,
                                      meta={"offset": off(qi)}))
            qof[la.name] = qi
        else:
            raise HwsimError(f"{imp.path}: layer {la.name!r} ({la.kind}) is not supported with ONNX Runtime "
                             "arithmetic: expected Conv/Gemm/MatMul (+ReLU), Add (+ReLU), GlobalAveragePool, "
                             "MaxPool and Flatten")
    first = next(iter(imp.quant.values()))
    spec = CompressSpec(weight_format=first.weight_format, per_channel=any(
        len(np.unique(np.asarray(q.w_q.scale))) > 1 for q in imp.quant.values()))
    cm = comp.CompressedModel(layers, spec, model, model, {}, 8, cfg)
    cm.name = f"{model.name}@onnx-{imp.style}"
    return cm
