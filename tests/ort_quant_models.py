"""Quantized ONNX models as users have them, made in the tests with ONNX Runtime's ``quantize_static``.

:func:`residual_cnn` is a PyTorch-style digits CNN with a residual add, built with the onnx helper API from
the zoo's ``digits-cnn`` weights (conv1 -> ReLU -> maxpool -> conv2 -> ReLU -> [conv3 + skip] -> ReLU ->
flatten -> fc); the residual branch ``conv3`` starts near zero (seeded small weights, as a freshly
initialised residual block), so the network keeps the zoo model's accuracy. :func:`gap_cnn` is a second small
network ending in GlobalAveragePool whose classifier is a least-squares fit on the training split.
:func:`quantize` runs ``onnxruntime.quantization.quantize_static`` (calibration on the training split) for
one form; :func:`ort_codes` returns ONNX Runtime's output integers (default session options).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from hwsim.models import zoo
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

FORMS = {  # name -> (quant_format, activation_type, weight_type, per_channel)
    "qdq-s8s8": (QuantFormat.QDQ, QuantType.QInt8, QuantType.QInt8, False),
    "qdq-s8s8-pc": (QuantFormat.QDQ, QuantType.QInt8, QuantType.QInt8, True),
    "qdq-u8s8": (QuantFormat.QDQ, QuantType.QUInt8, QuantType.QInt8, False),
    "qdq-u8s8-pc": (QuantFormat.QDQ, QuantType.QUInt8, QuantType.QInt8, True),
    "qop-u8s8": (QuantFormat.QOperator, QuantType.QUInt8, QuantType.QInt8, False),
    "qop-s8s8": (QuantFormat.QOperator, QuantType.QInt8, QuantType.QInt8, False),
    "qop-s8s8-pc": (QuantFormat.QOperator, QuantType.QInt8, QuantType.QInt8, True),
    # uint8 weights (per tensor): asymmetric, with weight zero points (the row-sum unit's row term). ONNX
    # Runtime quantizes per-channel weights symmetrically whatever their type, so there is no per-channel form.
    "qdq-u8u8": (QuantFormat.QDQ, QuantType.QUInt8, QuantType.QUInt8, False),
    "qop-u8u8": (QuantFormat.QOperator, QuantType.QUInt8, QuantType.QUInt8, False),
}


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def _model(nodes, inits, name):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="hwsim tests")
    m.ir_version = 8
    return m


def residual_cnn() -> onnx.ModelProto:
    """The float residual digits CNN (zoo ``digits-cnn`` weights plus a near-zero residual conv3)."""
    L = {la.name: la for la in zoo.load("digits-cnn").layers}
    rng = np.random.default_rng(22)
    w3 = rng.standard_normal((16, 16, 3, 3)) * 0.03
    b3 = rng.standard_normal(16) * 0.01
    inits = [_init("w1", L["conv1"].weight), _init("b1", L["conv1"].bias), _init("w2", L["conv2"].weight),
             _init("b2", L["conv2"].bias), _init("w3", w3), _init("b3", b3), _init("wf", L["fc"].weight),
             _init("bf", L["fc"].bias)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="conv3", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c3", "r2"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["r3"], name="relu3"),
        helper.make_node("Flatten", ["r3"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1),
    ]
    return _model(nodes, inits, "digits_residual_cnn")


def gap_cnn() -> onnx.ModelProto:
    """conv1 -> ReLU -> conv2 (stride 2) -> ReLU -> GlobalAveragePool -> flatten -> fc, the fc a ridge fit."""
    L = {la.name: la for la in zoo.load("digits-cnn").layers}
    x_tr, y_tr, _, _ = zoo.load_digits_split()
    w1, b1, w2, b2 = L["conv1"].weight, L["conv1"].bias, L["conv2"].weight, L["conv2"].bias
    inits = [_init("w1", w1), _init("b1", b1), _init("w2", w2), _init("b2", b2)]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
    ]
    feat_model = _model(nodes, inits, "feat")
    feat_model.graph.output[0].CopyFrom(helper.make_tensor_value_info("f", TensorProto.FLOAT, ["N", 16]))
    sess = ort.InferenceSession(feat_model.SerializeToString(), providers=["CPUExecutionProvider"])
    f = sess.run(None, {"x": x_tr.astype(np.float32)})[0].astype(np.float64)
    fa = np.hstack([f, np.ones((len(f), 1))])
    t = np.eye(10)[y_tr] * 2 - 1
    sol = np.linalg.solve(fa.T @ fa + 1e-3 * np.eye(17), fa.T @ t)
    inits += [_init("wf", sol[:16].T), _init("bf", sol[16])]
    nodes.append(helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1))
    return _model(nodes, inits, "digits_gap_cnn")


class _Reader(CalibrationDataReader):
    def __init__(self, x):
        self.batches = iter([{"x": x[i:i + 64].astype(np.float32)} for i in range(0, len(x), 64)])

    def get_next(self):
        return next(self.batches, None)


def quantize(float_model: onnx.ModelProto, form: str, tmp_path) -> str:
    """``quantize_static`` of ``float_model`` in ``form`` (a key of :data:`FORMS`), calibrated on the training
    split; returns the path of the quantized model."""
    return quantize_as(float_model, form, *FORMS[form], tmp_path)


def quantize_as(float_model: onnx.ModelProto, name: str, fmt, act, wt, per_channel: bool, tmp_path) -> str:
    """``quantize_static`` of ``float_model`` with the given format and types (any form, also one not in
    :data:`FORMS`), calibrated on the training split; returns the path ``<graph>.<name>.onnx``."""
    src = str(tmp_path / f"{float_model.graph.name}.float.onnx")
    dst = str(tmp_path / f"{float_model.graph.name}.{name}.onnx")
    onnx.save(float_model, src)
    x_tr = zoo.load_digits_split()[0]
    quantize_static(src, dst, _Reader(x_tr), quant_format=fmt, activation_type=act, weight_type=wt,
                    per_channel=per_channel)
    return dst


def ort_session(path: str) -> ort.InferenceSession:
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def output_quantizer(path: str) -> tuple[float, int, bool]:
    """(scale, zero point, unsigned) of the quantizer whose codes the graph output dequantizes."""
    m = onnx.load(path)
    out = m.graph.output[0].name
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for node in m.graph.node:
        if node.output[0] == out and node.op_type == "DequantizeLinear":
            zp = inits[node.input[2]]
            return float(inits[node.input[1]]), int(zp), zp.dtype == np.uint8
    raise AssertionError(f"{path}: the output is not a DequantizeLinear")


def ort_codes(path: str, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime's output integers (default session options): the dequantized logits mapped back exactly
    to the codes of the output quantizer, ``rint(y / scale) + zero_point`` (``y = (q - zp) * scale`` in
    float32, so this inverts it exactly)."""
    scale, zp, _ = output_quantizer(path)
    y = ort_session(path).run(None, {"x": x.astype(np.float32)})[0]
    q = np.rint(y.astype(np.float64) / np.float64(np.float32(scale))).astype(np.int64) + zp
    back = ((q - zp).astype(np.float32) * np.float32(scale)).astype(np.float32)
    assert np.array_equal(back, y), "the output codes do not dequantize back to ONNX Runtime's floats"
    return q
