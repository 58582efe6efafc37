"""ONNX import (hwsim.models.onnx_import): float graphs against ONNX Runtime, quantized graphs (QDQ,
QOperator, QONNX) against a NumPy evaluation of the same quantized graph, errors naming the node."""

from __future__ import annotations

import re

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from hwsim.models.onnx_import import load_onnx, to_compressed  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hwsim.errors import HwsimError  # noqa: E402

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _fresh_rng():
    """Every test draws from its own seeded generator, so its data does not depend on which tests ran
    before it in the same process (pytest-xdist hands tests to workers in varying order)."""
    global RNG
    RNG = np.random.default_rng(0)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def make(nodes, inits, in_shape, out_name="y", opset=17, domains=()):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                          [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)], inits)
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 8
    return m


def run_ort(m, x, optimize=True):
    so = ort.SessionOptions()
    if not optimize:  # run every node as written (no QDQ -> QLinear* fusion)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x.astype(np.float32)})[0]


def f32(*shape, scale=0.3, rng=None):
    return (((rng or RNG).standard_normal(shape)) * scale).astype(np.float32)


# ------------------------------------------------------------------------------------------ float graphs
def test_conv_bn_relu_pool_gemm_matches_ort():
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mu", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], group=4, strides=[2, 2], dilations=[1, 1], pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["c2", "zero"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["g1"], transB=1),
        helper.make_node("MatMul", ["g1", "wm"], ["mm"]),
        helper.make_node("Add", ["mm", "bm"], ["y0"]),
        helper.make_node("Softmax", ["y0"], ["y"]),
    ]
    inits = [init("w1", f32(8, 2, 3, 3)), init("b1", f32(8)), init("g", f32(8) + 1), init("beta", f32(8)),
             init("mu", f32(8)), init("var", np.abs(f32(8)) + 0.5), init("w2", f32(8, 2, 3, 3)),
             init("zero", np.float32(0)), init("wf", f32(10, 8 * 2 * 2)), init("bf", f32(10)),
             init("wm", f32(10, 6)), init("bm", f32(6))]
    m = make(nodes, inits, ["N", 2, 9, 9])
    imp = load_onnx(m)
    assert imp.style == "float" and not imp.quantized
    assert [la.kind for la in imp.model.layers] == ["conv2d", "relu", "conv2d", "relu", "maxpool", "flatten",
                                                    "linear", "linear"]
    x = RNG.standard_normal((5, 2, 9, 9))
    ref = run_ort(make(nodes[:-1], inits, ["N", 2, 9, 9], out_name="y0"), x)
    np.testing.assert_allclose(imp.model.forward_float(x), ref, rtol=1e-4, atol=1e-4)


def test_residual_add_global_pool_and_64_features_match_ort():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[2, 2, 2, 2], dilations=[2, 2]),
        helper.make_node("Add", ["c2", "r1"], ["s"]),
        helper.make_node("AveragePool", ["s"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["ap"], ["gp"]),
        helper.make_node("Reshape", ["gp", "shape"], ["y"]),
    ]
    inits = [init("w1", f32(4, 1, 3, 3)), init("w2", f32(4, 4, 3, 3)), init("b2", f32(4)),
             init("shape", np.array([-1, 4], dtype=np.int64))]
    m = make(nodes, inits, ["N", 1, 8, 8])
    x = RNG.random((3, 1, 8, 8))
    np.testing.assert_allclose(load_onnx(m).model.forward_float(x), run_ort(m, x), rtol=1e-4, atol=1e-5)
    # (N, 64) input: hwsim keeps digits images (1, 8, 8) and flattens first
    mlp = make([helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])],
               [init("w", f32(16, 64)), init("b", f32(16))], ["N", 64])
    imp = load_onnx(mlp)
    assert imp.model.input_shape == (1, 8, 8)
    np.testing.assert_allclose(imp.model.forward_float(x), run_ort(mlp, x.reshape(3, 64)), rtol=1e-4, atol=1e-5)


def test_concat_and_relu6_match_ort():
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], name="left"),
        helper.make_node("Clip", ["a", "zero", "six"], ["a6"], name="relu6"),
        helper.make_node("Conv", ["x", "w2", "b2"], ["b"], name="right", pads=[0, 0, 0, 0]),
        helper.make_node("Relu", ["b"], ["br"]),
        helper.make_node("Concat", ["a6", "br", "x"], ["cat"], axis=1, name="cat"),
        helper.make_node("Conv", ["cat", "w3"], ["c"], strides=[2, 2], name="mix"),
        helper.make_node("Clip", ["c", "zero", "half"], ["ch"]),
        helper.make_node("Flatten", ["ch"], ["f"]),
        helper.make_node("Gemm", ["f", "wf"], ["g1"], transB=1),
        helper.make_node("Gemm", ["f", "wg"], ["g2"], transB=1),
        helper.make_node("Concat", ["g1", "g2"], ["y"], axis=-1),
    ]
    inits = [init("w1", f32(3, 2, 3, 3, scale=3)), init("w2", f32(4, 2, 1, 1, scale=3)), init("b2", f32(4)),
             init("w3", f32(5, 9, 3, 3)), init("zero", np.float32(0)), init("six", np.float32(6)),
             init("half", np.float32(0.5)), init("wf", f32(6, 5 * 3 * 3)), init("wg", f32(2, 5 * 3 * 3))]
    m = make(nodes, inits, ["N", 2, 8, 8])
    imp = load_onnx(m)
    assert [la.kind for la in imp.model.layers] == ["conv2d", "clip", "conv2d", "relu", "concat", "conv2d", "clip",
                                                    "flatten", "linear", "linear", "concat"]
    assert imp.model.layers[1].meta["max"] == 6.0 and imp.model.shapes()["cat"] == (9, 8, 8)
    x = RNG.standard_normal((4, 2, 8, 8)) * 2
    acts = imp.model.forward_float(x, return_all=True)
    assert acts["relu6"].max() == 6.0 and acts["relu6"].min() == 0.0  # the clamp is exercised
    np.testing.assert_allclose(imp.model.forward_float(x), run_ort(m, x), rtol=1e-4, atol=1e-5)


def test_asymmetric_conv_pads_match_ort(tmp_path):
    """ONNX pads are [top, left, bottom, right]; hwsim's conv2d padding is (top, bottom, left, right)."""
    from hwsim.models.graph import load_model, save_model

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[0, 1, 2, 0], name="c1"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 0, 0, 3], strides=[2, 2], group=3, name="c2"),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], auto_pad="SAME_UPPER", name="up"),
        helper.make_node("Conv", ["c3", "w4"], ["y"], auto_pad="SAME_LOWER", name="lo"),
    ]
    inits = [init("w1", f32(6, 2, 3, 3)), init("b1", f32(6)), init("w2", f32(6, 2, 3, 2)), init("w3", f32(6, 6, 2, 2)),
             init("w4", f32(5, 6, 2, 3))]
    m = make(nodes, inits, ["N", 2, 7, 9])
    model = load_onnx(m).model
    assert [la.padding for la in model.layers if la.kind == "conv2d"] == [(0, 2, 1, 0), (1, 0, 0, 3), (0, 1, 0, 1),
                                                                         (1, 0, 1, 1)]
    x = RNG.standard_normal((3, 2, 7, 9))
    ref = run_ort(m, x)
    assert model.shapes()["c1"] == (6, 7, 8) and ref.shape[1:] == model.shapes()[model.output]
    np.testing.assert_allclose(model.forward_float(x), ref, rtol=1e-4, atol=1e-5)
    save_model(model, tmp_path / "m.npz")
    np.testing.assert_allclose(load_model(tmp_path / "m.npz").forward_float(x), ref, rtol=1e-4, atol=1e-5)


def test_pool_strides_default_to_one_as_in_onnx():
    for op in ("MaxPool", "AveragePool"):
        m = make([helper.make_node(op, ["x"], ["y"], kernel_shape=[2, 2])], [], ["N", 2, 5, 5])
        x = RNG.standard_normal((2, 2, 5, 5))
        got = load_onnx(m).model.forward_float(x)
        assert got.shape == (2, 2, 4, 4)
        np.testing.assert_allclose(got, run_ort(m, x), rtol=1e-5, atol=1e-6)


def naive_pool(a, kind, k, s, onnx_pads=(0, 0, 0, 0), ceil_mode=0, count_include_pad=0, dilation=(1, 1)):
    """ONNX MaxPool / AveragePool from the operator spec, with loops: pads [top, left, bottom, right]; output
    ``floor`` (or with ceil_mode ``ceil``) of ``(in + pads - k) / s`` plus 1, a ceil window that would start in
    the end padding dropped; each window clipped to the input: MaxPool ignores padding (-inf), AveragePool
    divides by its real pixels, or with count_include_pad by its pixels inside the explicitly padded input.
    A dilated (MaxPool) window takes every ``dilation``-th pixel and spans ``(k - 1) * dilation + 1``."""
    n, c, h, w = a.shape
    top, left, bottom, right = onnx_pads
    kh, kw = (k, k) if isinstance(k, int) else k  # a rectangular window: (rows, cols)
    sh, sw = (s, s) if isinstance(s, int) else s

    def size(n_in, lo, hi, k, s):
        span = n_in + lo + hi - k
        out = (-(-span // s) if ceil_mode else span // s) + 1
        return out - 1 if ceil_mode and (out - 1) * s >= n_in + lo else out

    dh, dw = dilation
    ho, wo = size(h, top, bottom, (kh - 1) * dh + 1, sh), size(w, left, right, (kw - 1) * dw + 1, sw)
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            r0, c0 = i * sh - top, j * sw - left
            if dilation != (1, 1):
                assert kind == "max"
                rows = [r0 + u * dh for u in range(kh) if 0 <= r0 + u * dh < h]
                cols = [c0 + v * dw for v in range(kw) if 0 <= c0 + v * dw < w]
                y[:, :, i, j] = a[:, :, rows][:, :, :, cols].max(axis=(2, 3))
                continue
            win = a[:, :, max(r0, 0):min(r0 + kh, h), max(c0, 0):min(c0 + kw, w)]
            if kind == "max":
                y[:, :, i, j] = win.max(axis=(2, 3))
                continue
            cnt = win.shape[2] * win.shape[3]
            if count_include_pad:
                cnt = (min(r0 + kh, h + bottom) - max(r0, -top)) * (min(c0 + kw, w + right) - max(c0, -left))
            y[:, :, i, j] = win.sum(axis=(2, 3)) / cnt
    return y


@pytest.mark.parametrize("op, attrs, naive_args", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1]), ("max", 3, 2, (1, 0, 1, 1))),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
     ("max", 3, 2, (1, 1, 1, 1), 1)),
    ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), ("max", 2, 2, (0, 0, 0, 0), 1)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]), ("avg", 3, 1, (1, 1, 1, 1))),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 2, 0, 1], count_include_pad=1, ceil_mode=1),
     ("avg", 3, 2, (1, 2, 0, 1), 1, 1)),
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1, count_include_pad=1),
     ("avg", 2, 2, (0, 0, 0, 0), 1, 1)),
    # SAME at stride 2 on 7 x 9: out 4 x 5, total pads 1 and 1 (kernel 2), 2 and 2 (kernel 3)
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER", count_include_pad=1),
     ("avg", 2, 2, (1, 1, 0, 0), 0, 1)),
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER"), ("avg", 2, 2, (0, 0, 1, 1))),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"), ("max", 3, 2, (1, 1, 1, 1))),
    # dilated MaxPool: spans 5 x 3 (rows dilated 2, columns 1); with ceil_mode
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[1, 2], dilations=[2, 1], pads=[1, 0, 2, 1]),
     ("max", 3, (1, 2), (1, 0, 2, 1), 0, 0, (2, 1))),
    ("MaxPool", dict(kernel_shape=[2, 3], strides=[2, 2], dilations=[3, 2], pads=[1, 1, 0, 0], ceil_mode=1),
     ("max", (2, 3), 2, (1, 1, 0, 0), 1, 0, (3, 2))),
])
def test_padded_pools_match_ort_and_a_naive_loop(op, attrs, naive_args):
    rng = np.random.default_rng(101)
    m = make([helper.make_node(op, ["x"], ["y"], name="pool", **attrs)], [], ["N", 2, 7, 9])
    x = rng.standard_normal((3, 2, 7, 9)) - 3.0  # mostly negative: a zero (not -inf) max padding would show
    ref = run_ort(m, x)
    model = load_onnx(m).model
    got = model.forward_float(x)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(naive_pool(x, *naive_args), ref, rtol=1e-5, atol=1e-5)


def test_rectangular_pools_match_ort_and_a_naive_loop(tmp_path):
    """MaxPool 2x3 / (2, 1) pads [1, 0, 0, 1] -> AveragePool 3x2 pads [1, 0, 1, 1] count_include_pad 0 ->
    AveragePool 3x2 / (1, 2) pads [0, 1, 1, 0] count_include_pad 1, on 7 x 9 maps. Rows (7 + 1 - 2) // 2 + 1
    = 4, cols 9 + 1 - 3 + 1 = 8; then 4 + 2 - 3 + 1 = 4 by 8 + 1 - 2 + 1 = 8; then 4 + 1 - 3 + 1 = 3 by
    (8 + 1 - 2) // 2 + 1 = 4. The layers keep (rows, cols) kernels and strides, also through save / load."""
    from hwsim.models.graph import load_model, save_model

    rng = np.random.default_rng(106)
    m = make([helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[2, 3], strides=[2, 1], pads=[1, 0, 0, 1],
                               name="mp"),
              helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[3, 2], pads=[1, 0, 1, 1], name="ap"),
              helper.make_node("AveragePool", ["ap"], ["y"], kernel_shape=[3, 2], strides=[1, 2], pads=[0, 1, 1, 0],
                               count_include_pad=1, name="ap1")], [], ["N", 2, 7, 9])
    model = load_onnx(m).model
    mp, ap, ap1 = model.layers
    assert (mp.kernel, mp.stride, mp.padding) == ((2, 3), (2, 1), (1, 0, 0, 1))
    assert (ap.kernel, ap.stride, ap.padding, ap.meta) == ((3, 2), 1, (1, 1, 0, 1), {"count_pads": (0, 0, 0, 0)})
    assert (ap1.kernel, ap1.stride, ap1.meta["count_pads"]) == ((3, 2), (1, 2), (0, 1, 1, 0))
    assert model.shapes() == {"input": (2, 7, 9), "mp": (2, 4, 8), "ap": (2, 4, 8), "ap1": (2, 3, 4)}
    x = rng.standard_normal((3, 2, 7, 9)) - 3.0  # mostly negative: a zero (not -inf) max padding would show
    want = naive_pool(naive_pool(naive_pool(x, "max", (2, 3), (2, 1), (1, 0, 0, 1)), "avg", (3, 2), 1,
                                 (1, 0, 1, 1)), "avg", (3, 2), (1, 2), (0, 1, 1, 0), count_include_pad=1)
    ref = run_ort(m, x)
    np.testing.assert_allclose(want, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.forward_float(x), ref, rtol=1e-5, atol=1e-5)
    save_model(model, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert [(la.kernel, la.stride) for la in back.layers] == [((2, 3), (2, 1)), ((3, 2), 1), ((3, 2), (1, 2))]
    np.testing.assert_allclose(back.forward_float(x), ref, rtol=1e-5, atol=1e-5)
    # a dilated maxpool keeps its (rows, cols) dilation through save / load
    from hwsim.models.graph import Layer, Model

    d = Model([Layer("dmp", "maxpool", ("input",), kernel=(2, 3), stride=1, dilation=(1, 2))], (2, 7, 9))
    save_model(d, tmp_path / "d.npz")
    back = load_model(tmp_path / "d.npz")
    assert back.layers[0].dilation == (1, 2) and back.shapes()["dmp"] == (2, 6, 5)
    np.testing.assert_allclose(back.forward_float(x), naive_pool(x, "max", (2, 3), 1, dilation=(1, 2)))
    # GlobalAveragePool on non-square maps: one (H, W) window
    g = make([helper.make_node("GlobalAveragePool", ["x"], ["y"], name="gap")], [], ["N", 2, 7, 9])
    np.testing.assert_allclose(load_onnx(g).model.forward_float(x), run_ort(g, x), rtol=1e-5, atol=1e-5)


def test_padded_pool_layers_by_hand():
    """MaxPool 3x3 / 2, pads 1, ceil_mode on 8 x 8: ceil(7 / 2) + 1 = 5 outputs, the last window ends at
    4 * 2 + 3 = 11 = 8 + 1 + 2: one more pixel of end padding. AveragePool count_include_pad=1 counts the
    explicit pads only (count_pads), never the ceil_mode overhang."""
    rng = np.random.default_rng(102)
    m = make([helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                               ceil_mode=1, name="mp"),
              helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 0, 0],
                               ceil_mode=1, count_include_pad=1, name="ap")], [], ["N", 1, 8, 8])
    model = load_onnx(m).model
    mp, ap = model.layers
    assert (mp.padding, mp.meta) == ((1, 2, 1, 2), {})
    # on 5 x 5: rows ceil((5 + 1 - 2) / 2) + 1 = 3, no overhang; columns ceil(3 / 2) + 1 = 3, overhang 1
    assert (ap.padding, ap.meta["count_pads"]) == ((1, 0, 0, 1), (1, 0, 0, 0))
    assert model.shapes() == {"input": (1, 8, 8), "mp": (1, 5, 5), "ap": (1, 3, 3)}
    x = rng.standard_normal((2, 1, 8, 8))
    np.testing.assert_allclose(model.forward_float(x), run_ort(m, x), rtol=1e-5, atol=1e-6)


def test_same_auto_pad_at_stride_2_matches_ort():
    """ONNX SAME: out = ceil(in / stride), total pad = max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0),
    the odd pixel at the end (SAME_UPPER) or the start (SAME_LOWER). Hand counts on 7 x 9:
    k3 s2 -> 4 x 5, totals 2 and 2 -> (1, 1, 1, 1); then k2 s2 on 4 x 5 -> 2 x 3, totals 0 and 1, LOWER ->
    left 1; then k3 s3 on 2 x 3 -> 1 x 1, totals 1 and 0, UPPER -> bottom 1."""
    rng = np.random.default_rng(103)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], auto_pad="SAME_UPPER", strides=[2, 2], name="c1"),
             helper.make_node("Conv", ["c1", "w2"], ["c2"], auto_pad="SAME_LOWER", strides=[2, 2], name="c2"),
             helper.make_node("Conv", ["c2", "w3"], ["y"], auto_pad="SAME_UPPER", strides=[3, 3], name="c3")]
    inits = [init("w1", f32(4, 2, 3, 3, rng=rng)), init("w2", f32(3, 4, 2, 2, rng=rng)),
             init("w3", f32(2, 3, 3, 3, rng=rng))]
    m = make(nodes, inits, ["N", 2, 7, 9])
    model = load_onnx(m).model
    assert [la.padding for la in model.layers] == [1, (0, 0, 1, 0), (0, 1, 0, 0)]
    assert model.shapes()["c3"] == (2, 1, 1)
    x = rng.standard_normal((3, 2, 7, 9))
    np.testing.assert_allclose(model.forward_float(x), run_ort(m, x), rtol=1e-4, atol=1e-5)
    # with dilation (ONNX Runtime rejects SAME with dilation, so its reference runs the hand-computed pads):
    # k3 d2 s2 on 7: out 4, total 3 * 2 + 2 * 2 + 1 - 7 = 4; k2 d3 s2 on 9: out 5, total 8 + 3 + 1 - 9 = 3,
    # SAME_LOWER -> 2 before, 1 after
    for auto, k, d, pads in (("SAME_UPPER", 3, 2, [2, 2, 2, 2]), ("SAME_LOWER", 2, 3, [2, 2, 1, 1])):
        w = init("w", f32(3, 2, k, k, rng=rng))
        same = make([helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto, strides=[2, 2], dilations=[d, d])],
                    [w], ["N", 2, 7, 9])
        explicit = make([helper.make_node("Conv", ["x", "w"], ["y"], pads=pads, strides=[2, 2], dilations=[d, d])],
                        [w], ["N", 2, 7, 9])
        np.testing.assert_allclose(load_onnx(same).model.forward_float(x), run_ort(explicit, x), rtol=1e-4, atol=1e-5)


def test_shape_only_import_needs_no_weights(tmp_path):
    m = make([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [init("w", f32(6, 3, 3, 3))],
             [1, 3, 32, 32])
    onnx.save_model(m, tmp_path / "big.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="w.bin", size_threshold=0)
    (tmp_path / "w.bin").unlink()
    imp = load_onnx(tmp_path / "big.onnx", shape_only=True)
    assert imp.model.layers[0].weight.shape == (6, 3, 3, 3) and imp.model.macs() == {imp.model.layers[0].name: 6 * 27 * 1024}


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("node, inits, pattern", [
    (helper.make_node("Sigmoid", ["x"], ["y"], name="sig"), [],
     r"^<model>: node 'sig' \(Sigmoid\): op type 'Sigmoid' is not supported: expected one of Conv, .*$"),
    (helper.make_node("Concat", ["x", "x"], ["y"], axis=2, name="cat"), [],
     r"^<model>: node 'cat' \(Concat\): axis=2 with 2 inputs is not allowed: expected 2 or more inputs joined "
     r"along the channel axis \(1\)$"),
    (helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, -1, 1, 1], name="c"), [init("w", f32(2, 1, 3, 3))],
     r"^<model>: node 'c' \(Conv\): pads=\[0, -1, 1, 1\] is not allowed: expected 4 values >= 0 "
     r"\[top, left, bottom, right\]$"),
    (helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="hardtanh"),
     [init("lo", np.float32(-1)), init("hi", np.float32(1))],
     r"^<model>: node 'hardtanh' \(Clip\): Clip\(min=-1.0, max=1.0\) is not supported: expected min 0"),
    (helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], name="ap"), [],
     r"^<model>: node 'ap' \(AveragePool\): dilations=\[2, 2\] is not allowed: expected \[1, 1\] \(dilated "
     r"AveragePool is not supported; MaxPool takes dilations\)$"),
    (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], auto_pad="SAME_UPPER",
                      name="mp"), [],
     r"^<model>: node 'mp' \(MaxPool\): auto_pad='SAME_UPPER' with dilations=\[2, 2\] is not allowed: expected "
     r"explicit pads or VALID \(ONNX Runtime pads a dilated MaxPool as if undilated, unlike the ONNX spec\)$"),
    (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 0], name="mp"), [],
     r"^<model>: node 'mp' \(MaxPool\): kernel_shape=\[2, 2\], strides=\[1, 1\], dilations=\[2, 0\] is not allowed: "
     r"expected a 2-D window, strides and dilations of integers >= 1$"),
    (helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 3], strides=[1, 0], name="ap"), [],
     r"^<model>: node 'ap' \(AveragePool\): kernel_shape=\[2, 3\], strides=\[1, 0\], .* is not allowed: expected "
     r"a 2-D window, strides and dilations of integers >= 1$"),
    (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[2, 0, 0, 0], name="mp"), [],
     r"^<model>: node 'mp' \(MaxPool\): pads=\[2, 0, 0, 0\] is not allowed: expected 4 values \[top, left, bottom, "
     r"right\], each >= 0 and smaller than that axis's kernel \[2, 2\]$"),
    (helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 2], pads=[0, 2, 0, 0], name="mp"), [],
     r"^<model>: node 'mp' \(MaxPool\): pads=\[0, 2, 0, 0\] is not allowed: .* smaller than that axis's kernel "
     r"\[3, 2\]$"),
    (helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME", name="c"), [init("w", np.ones((2, 1, 3, 3), np.float32))],
     r"^<model>: node 'c' \(Conv\): auto_pad='SAME' is not allowed: expected NOTSET, VALID, SAME_UPPER or "
     r"SAME_LOWER$"),
])
def test_unsupported_nodes_are_named(node, inits, pattern):
    with pytest.raises(HwsimError, match=pattern):
        load_onnx(make([node], inits, ["N", 1, 8, 8]))


def test_unreadable_files(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf at all \x00\xff")
    with pytest.raises(HwsimError, match=r"^model file '.*bad\.onnx' is not allowed: not a readable ONNX model"):
        load_onnx(tmp_path / "bad.onnx")
    with pytest.raises(HwsimError, match=r"^model file '.*missing\.onnx' is not allowed: no such file$"):
        load_onnx(tmp_path / "missing.onnx")


# ------------------------------------------------------------------------------------------ quantized graphs
def np_qdq_eval(x, layers, in_scale, rounding=np.rint):
    """NumPy evaluation of a QDQ chain: q(x), then per layer y = relu?(conv/linear(dq(a), dq(w)) + b), q(y).
    Returns the integer codes of the output quantizer. np.rint rounds half to even, as QuantizeLinear."""
    a = np.clip(rounding(x / in_scale), -128, 127)
    s_a = in_scale
    for kind, wq, ws, b, relu, s_out, extra in layers:
        xf = a * s_a
        if kind == "pool":
            n, c, h, w = xf.shape
            a = xf.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5)) / s_a
            continue
        wf = wq * ws
        if kind == "conv":
            from hwsim.models.graph import conv2d_float
            y = conv2d_float(xf, wf, b, padding=extra)
        else:
            y = xf.reshape(len(xf), -1) @ wf.T + b
        if relu:
            y = np.maximum(y, 0)
        a = np.clip(rounding(y / s_out), -128, 127)
        s_a = s_out
    return a.astype(np.int64)


def qdq_cnn(scale_w1=2.0 ** -6, exact_scales=True):
    """q(x) -> conv(3x3, pad 1) + relu -> q -> maxpool -> flatten -> gemm -> q; int8 codes, pow2 scales."""
    w1 = RNG.integers(-127, 128, size=(4, 1, 3, 3)).astype(np.int8)
    b1 = f32(4)
    w2 = RNG.integers(-127, 128, size=(10, 64)).astype(np.int8)
    b2 = f32(10)
    s_in, s1, s2, sw2 = 2.0 ** -7, 2.0 ** -4, 2.0 ** -2, 2.0 ** -7
    z = init("z8", np.int8(0))
    sc = lambda n, v: init(n, np.float32(v))  # noqa: E731
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s_in", "z8"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s_in", "z8"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w1q", "sw1", "z8"], ["w1d"]),
        helper.make_node("Conv", ["xd", "w1d", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("QuantizeLinear", ["r1", "s1", "z8"], ["r1q"]),
        helper.make_node("DequantizeLinear", ["r1q", "s1", "z8"], ["r1d"]),
        helper.make_node("MaxPool", ["r1d"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("DequantizeLinear", ["w2q", "sw2", "z8"], ["w2d"]),
        helper.make_node("Gemm", ["f", "w2d", "b2"], ["g"], transB=1, name="fc"),
        helper.make_node("QuantizeLinear", ["g", "s2", "z8"], ["gq"]),
        helper.make_node("DequantizeLinear", ["gq", "s2", "z8"], ["y"]),
    ]
    inits = [z, sc("s_in", s_in), sc("sw1", scale_w1), sc("s1", s1), sc("s2", s2), sc("sw2", sw2),
             init("w1q", w1), init("b1", b1), init("w2q", w2), init("b2", b2)]
    m = make(nodes, inits, ["N", 1, 8, 8])
    layers = [("conv", w1.astype(float), scale_w1, b1.astype(float), True, s1, 1),
              ("pool", None, None, None, None, None, None),
              ("linear", w2.astype(float), sw2, b2.astype(float), False, s2, None)]
    return m, layers, s_in


def test_qdq_integer_outputs_match_numpy_evaluation():
    from hwsim.config import MacArrayConfig

    m, layers, s_in = qdq_cnn()
    imp = load_onnx(m, exact=True)
    assert imp.style == "qdq" and set(imp.quant) == {"conv1", "fc"}
    q = imp.quant["conv1"]
    assert q.weight_format == "int8" and q.act_bits == 8 and int(q.weight_exp[0]) == -6 and q.max_rel_error == 0
    cfg = MacArrayConfig(rows=4, cols=4, rounding="half_even")
    cm = to_compressed(imp, cfg)
    # biases round to the accumulator scale 2**(in_exp + w_exp); the NumPy graph uses the same rounded bias
    acc_scale = {0: s_in * 2.0 ** -6, 2: 2.0 ** -4 * 2.0 ** -7}
    layers = [(k, w, s, b if b is None else np.rint(b / acc_scale[i]) * acc_scale[i], r, so, e)
              for i, (k, w, s, b, r, so, e) in enumerate(layers)]
    x = RNG.random((20, 1, 8, 8))
    got = cm.forward_int(x, cfg=cfg)
    want = np_qdq_eval(x, layers, s_in)
    np.testing.assert_array_equal(got, want)
    # ...and the float model ONNX Runtime runs is the dequantized graph: same logits up to rounding of biases
    ort_y = run_ort(m, x)
    assert np.mean(np.argmax(ort_y, 1) == np.argmax(got, 1)) > 0.9


def test_qdq_residual_add_and_avgpool_integer_outputs_match_numpy_and_ort():
    """q(x) -> conv+relu -> q (s1) -> conv -> q (s2) -> add(., s1 branch) + relu -> q (s3) -> avgpool 2x2 -> q (s4)
    -> global avgpool -> q (s5) -> flatten -> gemm -> q (s6). Integer biases at the accumulator scale, so ONNX
    Runtime's dequantized output is exactly codes * s6."""
    rng = np.random.default_rng(0)  # its own draws: the module's RNG depends on which tests ran first (xdist)
    from hwsim.models.graph import conv2d_float

    from hwsim.config import MacArrayConfig

    s_in, sw, s1, s2, s3, s4, s5, s6 = (2.0 ** e for e in (-7, -7, -3, -2, -2, -3, -3, -1))
    w1 = rng.integers(-127, 128, size=(4, 1, 3, 3)).astype(np.int8)
    w2 = rng.integers(-127, 128, size=(4, 4, 3, 3)).astype(np.int8)
    w3 = rng.integers(-127, 128, size=(10, 4)).astype(np.int8)
    b1 = rng.integers(-500, 500, size=4) * s_in * sw
    b3 = rng.integers(-50, 50, size=10) * s5 * sw
    sc = lambda n, v: init(n, np.float32(v))  # noqa: E731

    qdq = _qdq

    nodes = (qdq("x", "s_in") + [
        helper.make_node("DequantizeLinear", ["w1q", "sw", "z8"], ["w1d"]),
        helper.make_node("DequantizeLinear", ["w2q", "sw", "z8"], ["w2d"]),
        helper.make_node("DequantizeLinear", ["w3q", "sw", "z8"], ["w3d"]),
        helper.make_node("Conv", ["xd", "w1d", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"])] + qdq("r1", "s1") + [
        helper.make_node("Conv", ["r1d", "w2d"], ["c2"], pads=[1, 1, 1, 1], name="conv2")] + qdq("c2", "s2") + [
        helper.make_node("Add", ["c2d", "r1d"], ["sum"], name="res"),
        helper.make_node("Relu", ["sum"], ["sr"])] + qdq("sr", "s3") + [
        helper.make_node("AveragePool", ["srd"], ["ap"], kernel_shape=[2, 2], strides=[2, 2], name="pool")]
        + qdq("ap", "s4") + [
        helper.make_node("GlobalAveragePool", ["apd"], ["gp"], name="gap")] + qdq("gp", "s5") + [
        helper.make_node("Flatten", ["gpd"], ["f"]),
        helper.make_node("Gemm", ["f", "w3d", "b3"], ["g"], transB=1, name="fc")] + qdq("g", "s6") + [
        helper.make_node("Identity", ["gd"], ["y"])])
    inits = [init("z8", np.int8(0)), sc("s_in", s_in), sc("sw", sw), sc("s1", s1), sc("s2", s2), sc("s3", s3),
             sc("s4", s4), sc("s5", s5), sc("s6", s6), init("w1q", w1), init("w2q", w2), init("w3q", w3),
             init("b1", b1.astype(np.float32)), init("b3", b3.astype(np.float32))]
    m = make(nodes, inits, ["N", 1, 8, 8])
    imp = load_onnx(m, exact=True)
    assert imp.act_scales == {"res": s3, "pool": s4, "gap": s5}
    cfg = MacArrayConfig(rows=4, cols=4, rounding="half_even")
    cm = to_compressed(imp, cfg)
    assert [q.kind for q in cm.layers] == ["input", "conv2d", "conv2d", "add", "avgpool", "avgpool", "flatten",
                                           "linear"]
    assert [q.shift.tolist() for q in cm.layers if q.kind in ("add", "avgpool")] == [[1, 0, 1], [1], [4]]
    x = rng.random((16, 1, 8, 8)) * 1.5 - 0.5

    q = _quantize_linear

    r1 = _qdq_conv_relu(x, w1, b1, s_in, sw, s1)
    c2 = q(conv2d_float(r1, w2 * sw, None, padding=1), s2) * s2
    sr = q(np.maximum(c2 + r1, 0), s3) * s3
    ap = q(sr.reshape(16, 4, 4, 2, 4, 2).mean(axis=(3, 5)), s4) * s4
    gp = q(ap.mean(axis=(2, 3)), s5) * s5
    want = q(gp @ (w3 * sw).T + b3, s6).astype(np.int64)
    got = cm.forward_int(x, cfg=cfg)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, np.rint(run_ort(m, x) / s6).astype(np.int64))
    assert len(np.unique(want)) > 5  # not saturated or all zero
    # an avgpool without an output quantizer is one line
    for k, quantized, pattern in ((2, False, r" \(avgpool\) has no output quantizer: expected a QuantizeLinear"),):
        pool = [helper.make_node("AveragePool", ["r1d"], ["ap"], kernel_shape=[k, k], name="pool")]
        tail = qdq("ap", "s4") + [helper.make_node("Flatten", ["apd"], ["f"])] if quantized else [
            helper.make_node("Flatten", ["ap"], ["f"])]
        w = rng.integers(-127, 128, size=(10, 4 * (9 - k) ** 2)).astype(np.int8)
        g = make(nodes[:9] + pool + tail + [helper.make_node("Gemm", ["f", "w3d"], ["g"], transB=1, name="fc")]
                 + qdq("g", "s6") + [helper.make_node("Identity", ["gd"], ["y"])],
                 [i for i in inits if i.name != "w3q"] + [init("w3q", w)], ["N", 1, 8, 8])
        with pytest.raises(HwsimError, match=r"^<model>: layer 'pool'" + pattern):
            to_compressed(load_onnx(g), cfg)


def test_qdq_asymmetric_conv_pads_integer_outputs_match_numpy_and_ort():
    """q(x) -> conv (pads [top, left, bottom, right] = [0, 1, 2, 0]) + relu -> q -> grouped conv, stride 2,
    pads [1, 0, 0, 2] -> q -> flatten -> gemm -> q. Integer biases at the accumulator scale, so ONNX Runtime's
    dequantized output is exactly codes * scale; the NumPy reference pads with np.pad in ONNX's order."""
    from hwsim.models import mac_array

    from hwsim.config import MacArrayConfig

    s_in, sw, s1, s2, s3 = (2.0 ** e for e in (-7, -7, -3, -3, -1))
    w1 = RNG.integers(-127, 128, size=(4, 1, 3, 3)).astype(np.int8)
    w2 = RNG.integers(-127, 128, size=(6, 2, 2, 3)).astype(np.int8)
    b1 = RNG.integers(-500, 500, size=4) * s_in * sw
    sc = lambda n, v: init(n, np.float32(v))  # noqa: E731

    qdq = _qdq

    h1, w1o = 8 + 0 + 2 - 2, 8 + 1 + 0 - 2  # conv1 output: 8 x 7
    h2, w2o = (h1 + 1 + 0 - 2) // 2 + 1, (w1o + 0 + 2 - 3) // 2 + 1  # conv2 output: 4 x 4
    w3 = RNG.integers(-127, 128, size=(10, 6 * h2 * w2o)).astype(np.int8)
    nodes = (qdq("x", "s_in") + [
        helper.make_node("DequantizeLinear", ["w1q", "sw", "z8"], ["w1d"]),
        helper.make_node("DequantizeLinear", ["w2q", "sw", "z8"], ["w2d"]),
        helper.make_node("DequantizeLinear", ["w3q", "sw", "z8"], ["w3d"]),
        helper.make_node("Conv", ["xd", "w1d", "b1"], ["c1"], pads=[0, 1, 2, 0], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"])] + qdq("r1", "s1") + [
        helper.make_node("Conv", ["r1d", "w2d"], ["c2"], pads=[1, 0, 0, 2], strides=[2, 2], group=2,
                         name="conv2")] + qdq("c2", "s2") + [
        helper.make_node("Flatten", ["c2d"], ["f"]),
        helper.make_node("Gemm", ["f", "w3d"], ["g"], transB=1, name="fc")] + qdq("g", "s3") + [
        helper.make_node("Identity", ["gd"], ["y"])])
    inits = [init("z8", np.int8(0)), sc("s_in", s_in), sc("sw", sw), sc("s1", s1), sc("s2", s2), sc("s3", s3),
             init("w1q", w1), init("w2q", w2), init("w3q", w3), init("b1", b1.astype(np.float32))]
    m = make(nodes, inits, ["N", 1, 8, 8])
    cfg = MacArrayConfig(rows=4, cols=4, rounding="half_even")
    cm = to_compressed(load_onnx(m, exact=True), cfg)
    assert [q.padding for q in cm.layers if q.kind == "conv2d"] == [(0, 2, 1, 0), (1, 0, 0, 2)]
    x = RNG.random((5, 1, 8, 8)) * 1.5 - 0.5

    q = _quantize_linear

    def conv(a, w, b, onnx_pads, stride, groups):  # direct loops over an np.pad-ed input
        top, left, bottom, right = onnx_pads
        a = np.pad(a, ((0, 0), (0, 0), (top, bottom), (left, right)))
        o, cg, kh, kw = w.shape
        ho, wo = (a.shape[2] - kh) // stride + 1, (a.shape[3] - kw) // stride + 1
        y = np.zeros((a.shape[0], o, ho, wo))
        for oc in range(o):
            g = oc // (o // groups)
            for i in range(kh):
                for j in range(kw):
                    patch = a[:, g * cg:(g + 1) * cg, i:i + stride * ho:stride, j:j + stride * wo:stride]
                    y[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, i, j])
        return y if b is None else y + b[None, :, None, None]

    a0 = q(x, s_in) * s_in
    r1 = q(np.maximum(conv(a0, w1 * sw, b1, (0, 1, 2, 0), 1, 1), 0), s1) * s1
    c2 = q(conv(r1, w2 * sw, None, (1, 0, 0, 2), 2, 2), s2) * s2
    assert c2.shape == (5, 6, h2, w2o)
    want = q(c2.reshape(5, -1) @ (w3 * sw).T, s3).astype(np.int64)
    acts = cm.forward_int(x, cfg=cfg, return_all=True)
    np.testing.assert_array_equal(acts[cm.output], want)
    np.testing.assert_array_equal(acts[cm.output], np.rint(run_ort(m, x) / s3).astype(np.int64))
    np.testing.assert_array_equal(acts["conv2"], np.rint(c2 / s2).astype(np.int64))
    assert len(np.unique(want)) > 5
    # the MAC array's GEMMs are those of the padded input: M = N * Ho * Wo, A = im2col of the padded input
    conv2 = cm.layer("conv2")
    xin = acts["conv1"]  # conv1 with its ReLU fused
    calls = conv2.lower(xin)
    assert [(c.op.m, c.op.k, c.op.n) for c in calls] == [(5 * h2 * w2o, 2 * 2 * 3, 3)] * 2
    for g, c in enumerate(calls):
        a = np.concatenate([mac_array.im2col(xin[i, 2 * g:2 * g + 2], 2, 3, 2, (1, 0, 0, 2)) for i in range(5)])
        np.testing.assert_array_equal(c.a, a)


def test_qdq_relu6_and_concat_integer_outputs_match_numpy_and_ort():
    """q(x) -> conv + Clip(0, 6) -> q (s1) -> [conv -> q (s2)] ++ [the s1 branch] ++ [q(x)] -> q (s3)
    -> conv -> q (s4) -> Clip(0, 0.5) -> q (s5) -> flatten -> gemm -> q (s6). Concat inputs are at 2**-3,
    2**-2 and 2**-7 (left and right shifts to s3 = 2**-2); integer biases at the accumulator scale, so ONNX
    Runtime's dequantized output is exactly codes * s6."""
    from hwsim.config import MacArrayConfig

    s_in, sw, s1, s2, s3, s4, s5, s6 = (2.0 ** e for e in (-7, -7, -3, -2, -2, -5, -4, -1))
    w1 = RNG.integers(-127, 128, size=(3, 1, 3, 3)).astype(np.int8)
    w2 = RNG.integers(-127, 128, size=(2, 3, 1, 1)).astype(np.int8)
    w3 = RNG.integers(-127, 128, size=(4, 6, 3, 3)).astype(np.int8)
    w4 = RNG.integers(-127, 128, size=(10, 4 * 6 * 6)).astype(np.int8)
    b1 = RNG.integers(40000, 100000, size=3) * s_in * sw  # 2.4 .. 6.1: Relu6 clamps
    sc = lambda n, v: init(n, np.float32(v))  # noqa: E731

    qdq = _qdq

    nodes = (qdq("x", "s_in") + [helper.make_node("DequantizeLinear", [f"w{i}q", "sw", "z8"], [f"w{i}d"])
                                 for i in range(1, 5)] + [
        helper.make_node("Conv", ["xd", "w1d", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Clip", ["c1", "zero", "six"], ["r1"], name="relu6")] + qdq("r1", "s1") + [
        helper.make_node("Conv", ["r1d", "w2d"], ["c2"], name="conv2")] + qdq("c2", "s2") + [
        helper.make_node("Concat", ["c2d", "r1d", "xd"], ["cat"], axis=1, name="cat")] + qdq("cat", "s3") + [
        helper.make_node("Conv", ["catd", "w3d"], ["c3"], name="conv3")] + qdq("c3", "s4") + [
        helper.make_node("Clip", ["c3d", "zero", "half"], ["r3"], name="clip3")] + qdq("r3", "s5") + [
        helper.make_node("Flatten", ["r3d"], ["f"]),
        helper.make_node("Gemm", ["f", "w4d"], ["g"], transB=1, name="fc")] + qdq("g", "s6") + [
        helper.make_node("Identity", ["gd"], ["y"])])
    inits = [init("z8", np.int8(0)), sc("s_in", s_in), sc("sw", sw), sc("s1", s1), sc("s2", s2), sc("s3", s3),
             sc("s4", s4), sc("s5", s5), sc("s6", s6), sc("zero", 0), sc("six", 6), sc("half", 0.5),
             init("w1q", w1), init("w2q", w2), init("w3q", w3), init("w4q", w4), init("b1", b1.astype(np.float32))]
    m = make(nodes, inits, ["N", 1, 8, 8])
    cfg = MacArrayConfig(rows=4, cols=4, rounding="half_even")
    cm = to_compressed(load_onnx(m, exact=True), cfg)
    assert [q.kind for q in cm.layers] == ["input", "conv2d", "clip", "conv2d", "concat", "conv2d", "clip",
                                           "flatten", "linear"]
    assert [(q.shift.tolist(), q.meta["max_code"]) for q in cm.layers if q.kind == "clip"] == [([0], 48), ([1], 8)]
    assert cm.layer("cat").shift.tolist() == [0, -1, -5]
    x = RNG.random((16, 1, 8, 8)) * 4 - 2

    q = _quantize_linear

    from hwsim.models.graph import conv2d_float

    a0 = q(x, s_in) * s_in
    r1 = q(np.clip(conv2d_float(a0, w1 * sw, b1, padding=1), 0, 6), s1) * s1
    c2 = q(conv2d_float(r1, w2 * sw), s2) * s2
    cat = q(np.concatenate([c2, r1, a0], axis=1), s3) * s3
    c3 = q(conv2d_float(cat, w3 * sw), s4) * s4
    r3 = q(np.clip(c3, 0, 0.5), s5) * s5
    want = q(r3.reshape(16, -1) @ (w4 * sw).T, s6).astype(np.int64)
    acts = cm.forward_int(x, cfg=cfg, return_all=True)
    np.testing.assert_array_equal(acts[cm.output], want)
    np.testing.assert_array_equal(acts[cm.output], np.rint(run_ort(m, x) / s6).astype(np.int64))
    assert acts["relu6"].max() == 48 and acts["clip3"].max() == 8 and acts["clip3"].min() == 0  # clamps exercised
    assert len(np.unique(want)) > 5
    np.testing.assert_array_equal(cm.forward_fakequant(x), want * s6)
    # a clip max that is not a multiple of the output scale, and a concat of unequal scales without a quantizer
    bad = [init("six", np.float32(6.1)) if i.name == "six" else i for i in inits]
    with pytest.raises(HwsimError, match=r"^<model>: layer 'relu6': clip max 6.1 is not allowed in an integer "
                                         r"model: it is not a multiple of the output scale 2\*\*-3$"):
        to_compressed(load_onnx(make(nodes, bad, ["N", 1, 8, 8])), cfg)
    cut = [n for n in nodes if n.output[0] not in ("catq", "catd")]
    for n in cut:
        if n.name == "conv3":
            n.input[0] = "cat"
    with pytest.raises(HwsimError, match=r"^<model>: layer 'cat' \(concat\) has no output quantizer and inputs of "
                                         r"exponents \[-2, -3, -7\]"):
        to_compressed(load_onnx(make(cut, inits, ["N", 1, 8, 8])), cfg)



def _qdq(t, sname):
    """QuantizeLinear then DequantizeLinear of tensor ``t`` with scale ``sname`` (int8, zero point 0)."""
    return [helper.make_node("QuantizeLinear", [t, sname, "z8"], [t + "q"]),
            helper.make_node("DequantizeLinear", [t + "q", sname, "z8"], [t + "d"])]


def _quantize_linear(v, s):
    """QuantizeLinear's codes: round half to even, int8."""
    return np.clip(np.rint(v / s), -128, 127)


def _qdq_conv_relu(x, w1, b1, s_in, sw, s1):
    """The float QDQ chain's first stage: q(x) -> conv 3x3 pad 1 + relu -> q (s1), dequantized."""
    from hwsim.models.graph import conv2d_float

    a0 = _quantize_linear(x, s_in) * s_in
    return _quantize_linear(np.maximum(conv2d_float(a0, w1 * sw, b1, padding=1), 0), s1) * s1


def _assert_pool_net_codes(m, cm, cfg, x, ap, ap2, want, s1, s3, s4):
    """A :func:`_qdq_pool_net` model's integer graph gives the float QDQ chain's ``ap`` / ``ap2`` / output
    codes, and ONNX Runtime running its QDQ nodes as written (``optimize=False``) gives the same output.
    Returns the integer activations."""
    acts = cm.forward_int(x, cfg=cfg, return_all=True)
    np.testing.assert_array_equal(acts["ap"], np.rint(ap / s1).astype(np.int64))
    np.testing.assert_array_equal(acts["ap2"], np.rint(ap2 / s3).astype(np.int64))
    np.testing.assert_array_equal(acts[cm.output], want)
    np.testing.assert_array_equal(acts[cm.output], np.rint(run_ort(m, x, optimize=False) / s4).astype(np.int64))
    return acts


def _qdq_pool_net(rng, pool_nodes, feat):
    """q(x) -> conv 3x3 pad 1 + relu -> q (s1) -> ``pool_nodes`` (reading ``r1d``, ending in ``ap2d``) ->
    flatten -> gemm of ``feat`` inputs -> q (s4), on 1x8x8 inputs. Returns the model, the int8 conv and gemm
    weights, the float conv bias and the scales (s_in, sw, s1, s3, s4)."""
    scales = s_in, sw, s1, s3, s4 = tuple(2.0 ** e for e in (-7, -7, -3, -2, -1))
    w1 = rng.integers(-127, 128, size=(4, 1, 3, 3)).astype(np.int8)
    w2 = rng.integers(-127, 128, size=(10, feat)).astype(np.int8)
    b1 = rng.integers(-500, 500, size=4) * s_in * sw
    nodes = (_qdq("x", "s_in") + [
        helper.make_node("DequantizeLinear", ["w1q", "sw", "z8"], ["w1d"]),
        helper.make_node("DequantizeLinear", ["w2q", "sw", "z8"], ["w2d"]),
        helper.make_node("Conv", ["xd", "w1d", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"])] + _qdq("r1", "s1") + pool_nodes + [
        helper.make_node("Flatten", ["ap2d"], ["f"]),
        helper.make_node("Gemm", ["f", "w2d"], ["g"], transB=1, name="fc")] + _qdq("g", "s4") + [
        helper.make_node("Identity", ["gd"], ["y"])])
    inits = [init("z8", np.int8(0)), *(init(n, np.float32(v)) for n, v in zip(("s_in", "sw", "s1", "s3", "s4"), scales,
                                                                               strict=True)),
             init("w1q", w1), init("w2q", w2), init("b1", b1.astype(np.float32))]
    return make(nodes, inits, ["N", 1, 8, 8]), w1, w2, b1, scales

def test_qdq_padded_pools_integer_outputs_match_numpy_and_ort():
    """q(x) -> conv + relu -> q (s1) -> MaxPool 3x3/2 pads 1 ceil_mode -> AveragePool 3x3/1 pads 1
    (count_include_pad 0: border windows of 4 and 6 pixels) -> q (s1) -> AveragePool 2x2/2 pads [1, 0, 0, 0]
    ceil_mode count_include_pad 1 -> q (s3, coarser: divide by count * 2) -> flatten -> gemm -> q (s4).
    The NumPy reference pools the dequantized values with naive_pool and quantizes like QuantizeLinear."""
    rng = np.random.default_rng(104)
    from hwsim.models.graph import conv2d_float

    from hwsim.config import MacArrayConfig

    m, w1, w2, b1, (s_in, sw, s1, s3, s4) = _qdq_pool_net(rng, [
        helper.make_node("MaxPool", ["r1d"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         ceil_mode=1, name="mp"),
        helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="ap")]
        + _qdq("ap", "s1") + [
        helper.make_node("AveragePool", ["apd"], ["ap2"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 0, 0, 0],
                         ceil_mode=1, count_include_pad=1, name="ap2")] + _qdq("ap2", "s3"), 4 * 3 * 3)
    cfg = MacArrayConfig(rows=4, cols=4, rounding="half_even")
    cm = to_compressed(load_onnx(m, exact=True), cfg)
    assert [(q.kind, q.padding, q.meta.get("count_pads")) for q in cm.layers if "pool" in q.kind] == [
        ("maxpool", (1, 2, 1, 2), None), ("avgpool", 1, (0, 0, 0, 0)), ("avgpool", (1, 0, 0, 1), (1, 0, 0, 0))]
    assert [q.shift.tolist() for q in cm.layers if q.kind == "avgpool"] == [[0], [1]]
    x = rng.random((16, 1, 8, 8)) * 1.5 - 0.5

    q = _quantize_linear

    r1 = _qdq_conv_relu(x, w1, b1, s_in, sw, s1)
    mp = naive_pool(r1, "max", 3, 2, (1, 1, 1, 1), ceil_mode=1)
    ap = q(naive_pool(mp, "avg", 3, 1, (1, 1, 1, 1)), s1) * s1
    ap2 = q(naive_pool(ap, "avg", 2, 2, (1, 0, 0, 0), ceil_mode=1, count_include_pad=1), s3) * s3
    want = q(ap2.reshape(16, -1) @ (w2 * sw).T, s4).astype(np.int64)
    # ONNX Runtime runs the QDQ nodes as written (DequantizeLinear, float pools, QuantizeLinear); its graph
    # optimizer fuses them into a QLinearAveragePool that, with ceil_mode and count_include_pad=1, divides the
    # overhanging window differently from its own float AveragePool (1.32)
    acts = _assert_pool_net_codes(m, cm, cfg, x, ap, ap2, want, s1, s3, s4)
    assert len(np.unique(want)) > 5 and len(np.unique(acts["ap"])) > 5
    np.testing.assert_array_equal(cm.forward_fakequant(x), want * s4)
    # half_up (hwsim's default) rounds the division's ties up, like the shifts: the NumPy graph with floor(v + .5)
    up = MacArrayConfig(rows=4, cols=4, rounding="half_up")
    got = to_compressed(load_onnx(m, exact=True), up).forward_int(x, cfg=up, return_all=True)
    hq = lambda v, s: np.clip(np.floor(v / s + 0.5), -128, 127)  # noqa: E731
    r1 = hq(np.maximum(conv2d_float(hq(x, s_in) * s_in, w1 * sw, b1, padding=1), 0), s1) * s1
    ap = hq(naive_pool(naive_pool(r1, "max", 3, 2, (1, 1, 1, 1), ceil_mode=1), "avg", 3, 1, (1, 1, 1, 1)), s1)
    np.testing.assert_array_equal(got["ap"], ap)


@pytest.mark.parametrize("dil", [(1, 1), (2, 1)])
def test_qdq_rectangular_pools_integer_outputs_match_numpy_and_ort(dil):
    """q(x) -> conv + relu -> q (s1) -> MaxPool 2x3 / (2, 1) pads [1, 0, 0, 1] -> AveragePool 3x2 pads
    [1, 0, 1, 1] count_include_pad 1 -> q (s1) -> AveragePool 3x2 / (1, 2) unpadded (6 pixels: not a power
    of two, so it divides by the count like a padded pool) -> q (s3) -> flatten -> gemm -> q (s4). 1x8x8:
    4x8x8 -> 4x4x7 -> 4x4x7 -> 4x2x3. The MaxPool again with dilations [2, 1]: its rows span 3, (8 + 1 - 3) // 2
    + 1 = 4 rows again."""
    rng = np.random.default_rng(107)

    from hwsim.config import MacArrayConfig

    m, w1, w2, b1, (s_in, sw, s1, s3, s4) = _qdq_pool_net(rng, [
        helper.make_node("MaxPool", ["r1d"], ["mp"], kernel_shape=[2, 3], strides=[2, 1], pads=[1, 0, 0, 1],
                         dilations=list(dil), name="mp"),
        helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[3, 2], pads=[1, 0, 1, 1],
                         count_include_pad=1, name="ap")] + _qdq("ap", "s1") + [
        helper.make_node("AveragePool", ["apd"], ["ap2"], kernel_shape=[3, 2], strides=[1, 2], name="ap2")]
        + _qdq("ap2", "s3"), 4 * 2 * 3)
    cfg = MacArrayConfig(rows=4, cols=4, rounding="half_even")
    cm = to_compressed(load_onnx(m, exact=True), cfg)
    assert [(q.kind, q.kernel, q.stride, q.meta.get("count_pads")) for q in cm.layers if "pool" in q.kind] == [
        ("maxpool", (2, 3), (2, 1), None), ("avgpool", (3, 2), 1, (1, 1, 0, 1)),
        ("avgpool", (3, 2), (1, 2), (0, 0, 0, 0))]
    assert [q.shift.tolist() for q in cm.layers if q.kind == "avgpool"] == [[0], [1]]
    x = rng.random((16, 1, 8, 8)) * 1.5 - 0.5

    q = _quantize_linear

    r1 = _qdq_conv_relu(x, w1, b1, s_in, sw, s1)
    mp = naive_pool(r1, "max", (2, 3), (2, 1), (1, 0, 0, 1), dilation=dil)
    assert cm.layer("mp").dilation == (dil[0] if dil[0] == dil[1] else dil)
    ap = q(naive_pool(mp, "avg", (3, 2), 1, (1, 0, 1, 1), count_include_pad=1), s1) * s1
    ap2 = q(naive_pool(ap, "avg", (3, 2), (1, 2)), s3) * s3
    want = q(ap2.reshape(16, -1) @ (w2 * sw).T, s4).astype(np.int64)
    acts = _assert_pool_net_codes(m, cm, cfg, x, ap, ap2, want, s1, s3, s4)
    assert len(np.unique(want)) > 5 and len(np.unique(acts["ap2"])) >= 5
    sums = naive_pool(acts["ap"].astype(np.float64), "avg", (3, 2), (1, 2)) * 6  # window sums of codes
    assert (sums % 12 != 0).mean() > 0.5  # the division by 6 * 2**1 mostly rounds: not a disguised shift
    np.testing.assert_array_equal(cm.forward_fakequant(x), want * s4)


def test_padded_avgpool_division_rounds_ties_like_the_shifts():
    """Hand values: a 2x2 window over one padded row and a real row of [v0, v1, v2]: 2 real pixels (or 4 with
    count_include_pad), so window means of x.5 are ties: half_up goes toward +inf (1.5 -> 2, 2.5 -> 3,
    -1.5 -> -1, -2.5 -> -2), half_even to the even neighbour (2, 2, -2, -2); shift 1 divides by 2 more."""
    from hwsim.models.compressed import Arith, QLayer

    def pool(row, rounding, count_pads=(0, 0, 0, 0), shift=0):
        q = QLayer("ap", "avgpool", ("input",), (1, 1, 2), 0, 8, shift=np.array([shift]), kernel=2, stride=1,
                   padding=(1, 0, 0, 0), meta={"count_pads": count_pads})
        return q.forward_int([np.array(row, dtype=np.int64).reshape(1, 1, 1, 3)], Arith(rounding=rounding)).ravel()

    assert pool([1, 2, 3], "half_up").tolist() == [2, 3]
    assert pool([1, 2, 3], "half_even").tolist() == [2, 2]
    assert pool([-1, -2, -3], "half_up").tolist() == [-1, -2]
    assert pool([-1, -2, -3], "half_even").tolist() == [-2, -2]
    assert pool([1, 2, 3], "half_up", count_pads=(1, 0, 0, 0)).tolist() == [1, 1]  # 3/4 -> 1, 5/4 -> 1
    assert pool([3, 4, 7], "half_up", shift=1).tolist() == [2, 3]  # 7/4 -> 2, 11/4 -> 3
    assert pool([120, 127, 127], "half_up", shift=0).tolist() == [124, 127]  # 123.5 -> 124, 127


def np_eval_compressed(cm, x, pools, rounding="half_up"):
    """NumPy evaluation of a compressed model's quantized graph from its parameters, written from the meaning
    of each op on real values (every tensor is codes * 2**exp): conv / linear with the dequantized weights and
    bias, then quantize to the output exponent; clip = quantize(clip(v, 0, max)); concat = quantize every input
    to the common exponent; pools by naive_pool with the ONNX attributes ``pools[name]``. Returns the codes."""
    from hwsim.models.graph import conv2d_float

    rnd = (lambda v: np.floor(v + 0.5)) if rounding == "half_up" else np.rint

    def q(v, e):
        return np.clip(rnd(v / 2.0 ** e), -128, 127) * 2.0 ** e

    real = {"input": q(x, cm.layers[0].out_exp)}
    for la in cm.layers[1:]:
        a = real[la.inputs[0]]
        if la.kind in ("conv2d", "linear"):
            w = la.weight * 2.0 ** la.weight_exp.reshape((-1,) + (1,) * (la.weight.ndim - 1))
            b = np.zeros(len(w)) if la.bias is None else la.bias * 2.0 ** (la.in_exp + la.weight_exp)
            y = conv2d_float(a, w, None, la.stride, la.padding, la.dilation, la.groups) + b[None, :, None, None] \
                if la.kind == "conv2d" else a @ w.T + b
            real[la.name] = q(np.maximum(y, 0) if la.relu else y, la.out_exp)
        elif la.kind == "maxpool":
            real[la.name] = naive_pool(a, *pools[la.name])
        elif la.kind == "avgpool":
            real[la.name] = q(naive_pool(a, *pools[la.name]), la.out_exp)
        elif la.kind == "relu":
            real[la.name] = np.maximum(a, 0)
        elif la.kind == "flatten":
            real[la.name] = a.reshape(len(a), -1)
        elif la.kind == "clip":
            real[la.name] = q(np.clip(a, 0, cm.source.layer(la.name).meta["max"]), la.out_exp)
        elif la.kind == "concat":
            real[la.name] = np.concatenate([q(real[i], la.out_exp) for i in la.inputs], axis=1)
        else:
            raise AssertionError(la.kind)
    return np.rint(real[cm.output] / 2.0 ** cm.output_exp).astype(np.int64)


def test_compress_float_graph_with_concat_relu6_and_padded_pools_matches_numpy():
    """hwsim's own compression of a float graph: concat (common exponent, per-input shifts), ReLU6 (the conv in
    front calibrated on the clipped range), padded pools; its integer forward equals the NumPy evaluation."""
    rng = np.random.default_rng(105)
    from hwsim.models.ptq import compress

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Clip", ["c1", "zero", "six"], ["r1"], name="relu6"),
        helper.make_node("Conv", ["x", "w2"], ["c2"], auto_pad="SAME_LOWER", name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Concat", ["r1", "r2", "x"], ["cat"], axis=1, name="cat"),
        helper.make_node("MaxPool", ["cat"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                         ceil_mode=1, name="mp"),
        helper.make_node("Conv", ["mp", "w3"], ["c3"], pads=[1, 1, 1, 1], name="conv3"),
        helper.make_node("Clip", ["c3", "zero", "half"], ["r3"], name="clip3"),
        helper.make_node("AveragePool", ["r3"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="ap"),
        helper.make_node("Flatten", ["ap"], ["f"]),
        helper.make_node("Gemm", ["f", "wf"], ["y"], transB=1, name="fc"),
    ]
    inits = [init("w1", f32(4, 1, 3, 3, scale=4, rng=rng)), init("b1", f32(4, scale=3, rng=rng)),
             init("w2", f32(3, 1, 2, 2, scale=2, rng=rng)), init("w3", f32(4, 8, 3, 3, rng=rng)),
             init("wf", f32(10, 4 * 5 * 5, rng=rng)), init("zero", np.float32(0)),
             init("six", np.float32(6)), init("half", np.float32(0.5))]
    m = make(nodes, inits, ["N", 1, 8, 8])
    model = load_onnx(m).model
    x = rng.random((64, 1, 8, 8)) * 4 - 1
    np.testing.assert_allclose(model.forward_float(x), run_ort(m, x), rtol=1e-4, atol=1e-4)
    cm = compress(model, "int8", x[:48])
    kinds = [(q.kind, q.shift.tolist() if q.kind in ("clip", "concat") else None) for q in cm.layers]
    assert [k for k, _ in kinds] == ["input", "conv2d", "clip", "conv2d", "concat", "maxpool", "conv2d", "clip",
                                     "avgpool", "flatten", "linear"]
    e = {q.name: q.out_exp for q in cm.layers}
    # ReLU6's producer is calibrated on [0, 6]: 6 / 127 -> 2**-4 (its raw range would need a coarser one)
    assert e["conv1"] == -4 and cm.layer("relu6").shift.tolist() == [0] and cm.layer("relu6").meta["max_code"] == 96
    assert cm.layer("cat").shift.tolist() == [e["relu6"] - e["cat"], e["conv2"] - e["cat"], e["input"] - e["cat"]]
    assert cm.layer("clip3").meta["max_code"] == round(0.5 / 2.0 ** e["clip3"])
    pools = {"mp": ("max", 3, 2, (1, 1, 1, 1), 1), "ap": ("avg", 3, 1, (1, 1, 1, 1))}
    got = cm.forward_int(x, return_all=True)
    want = np_eval_compressed(cm, x, pools)
    np.testing.assert_array_equal(got[cm.output], want)
    assert got["relu6"].max() == 96 and got["clip3"].min() == 0  # the clamps are exercised
    assert len(np.unique(want)) > 20
    # the integer model stands for the float one
    assert np.corrcoef(got[cm.output].ravel() * 2.0 ** cm.output_exp, model.forward_float(x).ravel())[0, 1] > 0.99


def rect_pool_graph(rng):
    """conv 3x3 pad 1 + relu -> MaxPool 2x3 / (2, 1) dilations [1, 2] pads [1, 0, 0, 1] -> AveragePool 3x2
    pads [1, 0, 1, 1] count_include_pad 0 -> AveragePool 3x2 / (1, 2) unpadded (area 6) -> flatten -> gemm;
    1x8x8 input: 4x8x8 -> 4x4x5 (columns span 5) -> 4x4x5 -> 4x2x2."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["mp"], kernel_shape=[2, 3], strides=[2, 1], pads=[1, 0, 0, 1],
                         dilations=[1, 2], name="mp"),
        helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[3, 2], pads=[1, 0, 1, 1], name="ap"),
        helper.make_node("AveragePool", ["ap"], ["ap2"], kernel_shape=[3, 2], strides=[1, 2], name="ap2"),
        helper.make_node("Flatten", ["ap2"], ["f"]),
        helper.make_node("Gemm", ["f", "wf"], ["y"], transB=1, name="fc"),
    ]
    inits = [init("w1", f32(4, 1, 3, 3, scale=1, rng=rng)), init("b1", f32(4, scale=0.2, rng=rng)),
             init("wf", f32(10, 4 * 2 * 2, rng=rng))]
    return make(nodes, inits, ["N", 1, 8, 8])


def test_compress_float_graph_with_rectangular_pools_matches_numpy():
    """hwsim's own --compress int8 of rect_pool_graph: the padded 3x2 pool divides by its real-pixel counts,
    the unpadded one (area 6) by 6; the integer forward equals the NumPy evaluation of the quantized graph."""
    rng = np.random.default_rng(108)
    from hwsim.models.ptq import compress

    m = rect_pool_graph(rng)
    model = load_onnx(m).model
    x = rng.random((64, 1, 8, 8)) * 4 - 1
    np.testing.assert_allclose(model.forward_float(x), run_ort(m, x), rtol=1e-4, atol=1e-4)
    cm = compress(model, "int8", x[:48])
    assert [(q.kind, q.meta.get("count_pads"), q.shift.tolist()) for q in cm.layers if q.kind == "avgpool"] == [
        ("avgpool", (0, 0, 0, 0), [0]), ("avgpool", (0, 0, 0, 0), [0])]
    pools = {"mp": ("max", (2, 3), (2, 1), (1, 0, 0, 1), 0, 0, (1, 2)), "ap": ("avg", (3, 2), 1, (1, 0, 1, 1)),
             "ap2": ("avg", (3, 2), (1, 2))}
    got = cm.forward_int(x, return_all=True)
    want = np_eval_compressed(cm, x, pools)
    np.testing.assert_array_equal(got[cm.output], want)
    assert len(np.unique(want)) > 20
    np.testing.assert_array_equal(cm.forward_fakequant(x), want * 2.0 ** cm.output_exp)
    assert np.corrcoef(got[cm.output].ravel() * 2.0 ** cm.output_exp, model.forward_float(x).ravel())[0, 1] > 0.99


def test_non_pow2_scale_mapped_with_error_or_rejected():
    m, _, _ = qdq_cnn(scale_w1=0.0123)
    imp = load_onnx(m)
    q = imp.quant["conv1"]
    assert int(q.weight_exp[0]) == round(np.log2(0.0123))
    assert q.max_rel_error == pytest.approx(abs(2.0 ** round(np.log2(0.0123)) / 0.0123 - 1), rel=1e-6)
    assert any(line.startswith("conv1: int8 weights") for line in imp.scale_report())
    with pytest.raises(HwsimError, match=r"^<model>: node '' \(weights of conv1\): scale 0.0123 is not allowed with exact "
                                         r"scales: expected a power of two"):
        load_onnx(m, exact=True)


def test_nonzero_zero_point_needs_the_f32_requantizer():
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="qin"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "sw", "z0"], ["w"]),
             helper.make_node("Conv", ["xd", "w"], ["c"], name="conv"),
             helper.make_node("QuantizeLinear", ["c", "s", "zp"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "s", "zp"], ["y"])]
    inits = [init("s", np.float32(0.5)), init("zp", np.int8(3)), init("sw", np.float32(0.25)), init("z0", np.int8(0)),
             init("wq", np.ones((2, 1, 3, 3), np.int8))]
    imp = load_onnx(make(nodes, inits, ["N", 1, 8, 8]))
    assert to_compressed(imp).layer("conv").requant == "f32"  # auto: zero points select ONNX Runtime's arithmetic
    with pytest.raises(HwsimError, match=r"^<model>: layer 'conv': zero point \[3\] \(node 'qin'\) is not allowed "
                                         r"with the power-of-two requantizer"):
        to_compressed(imp, requantizer="shift")


def test_qoperator_graph():
    w = RNG.integers(-127, 128, size=(10, 64)).astype(np.int8)
    s_in, s_w, s_y = 2.0 ** -7, 2.0 ** -6, 2.0 ** -3
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_in", "z8"], ["xq"]),
             helper.make_node("Flatten", ["xq"], ["fq"]),
             helper.make_node("QLinearMatMul", ["fq", "s_in", "z8", "wq", "s_w", "z8", "s_y", "z8"], ["yq"], name="qmm"),
             helper.make_node("DequantizeLinear", ["yq", "s_y", "z8"], ["y"])]
    inits = [init("z8", np.int8(0)), init("s_in", np.float32(s_in)), init("s_w", np.float32(s_w)),
             init("s_y", np.float32(s_y)), init("wq", w.T.copy())]
    m = make(nodes, inits, ["N", 1, 8, 8])
    imp = load_onnx(m)
    assert imp.style == "qoperator" and imp.quant["qmm"].weight_format == "int8"
    x = RNG.random((7, 1, 8, 8))
    from hwsim.config import MacArrayConfig
    cfg = MacArrayConfig(rows=4, cols=4, rounding="half_even")
    got = to_compressed(imp, cfg).forward_int(x, cfg=cfg)
    xq = np.clip(np.rint(x.reshape(7, 64) / s_in), -128, 127)
    want = np.clip(np.rint(xq @ w.T.astype(float) * (s_in * s_w / s_y)), -128, 127)
    np.testing.assert_array_equal(got, want)
    # ONNX Runtime computes the same integer graph
    np.testing.assert_array_equal(np.rint(run_ort(m, x) / s_y), want)


def test_qonnx_quant_and_bipolar():
    w1 = f32(16, 64)
    w2 = f32(10, 16)
    nodes = [helper.make_node("Quant", ["x", "s_in", "zero", "b8"], ["xq"], domain="qonnx.custom_op.general",
                              signed=1, narrow=0, rounding_mode="ROUND"),
             helper.make_node("Flatten", ["xq"], ["f"]),
             helper.make_node("Quant", ["w1", "sw1", "zero", "b4"], ["w1q"], domain="qonnx.custom_op.general",
                              signed=1, narrow=1, rounding_mode="ROUND", name="qw1"),
             helper.make_node("MatMul", ["f", "w1qt"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Quant", ["r", "s_h", "zero", "b8"], ["rq"], domain="qonnx.custom_op.general", signed=1),
             helper.make_node("BipolarQuant", ["w2", "sw2"], ["w2q"], domain="qonnx.custom_op.general"),
             helper.make_node("Gemm", ["rq", "w2q"], ["g"], transB=1, name="fc2"),
             helper.make_node("Quant", ["g", "s_o", "zero", "b8"], ["y"], domain="qonnx.custom_op.general", signed=1)]
    # MatMul needs (K, N): transpose the quantized weight with a constant-folded Identity-free trick:
    nodes.insert(3, helper.make_node("Transpose", ["w1q"], ["w1qt"]))
    inits = [init("s_in", np.float32(2 ** -7)), init("zero", np.float32(0)), init("b8", np.float32(8)),
             init("b4", np.float32(4)), init("w1", w1), init("sw1", np.float32(2 ** -4)), init("s_h", np.float32(2 ** -4)),
             init("w2", w2), init("sw2", np.float32(2 ** -3)), init("s_o", np.float32(2 ** -2))]
    m = make(nodes, inits, ["N", 1, 8, 8], domains=("qonnx.custom_op.general",))
    with pytest.raises(HwsimError, match=r"^<model>: node 'w1qt' \(Transpose\): op type 'Transpose' is not supported"):
        load_onnx(m)
    # without the Transpose: weights stored (K, N) already
    nodes.pop(3)
    nodes[2].input[0] = "w1t"
    nodes[3].input[1] = "w1q"
    inits.append(init("w1t", w1.T.copy()))
    m = make(nodes, inits, ["N", 1, 8, 8], domains=("qonnx.custom_op.general",))
    imp = load_onnx(m)
    assert imp.style == "qonnx"
    # bipolar weights behind 8-bit activations run as ternary codes (binary XNOR PEs need 1-bit activations)
    assert (imp.quant["fc1"].weight_format, imp.quant["fc2"].weight_format) == ("int4", "ternary")
    assert any("fc2: bipolar weights with 8-bit inputs run as ternary" in n for n in imp.notes)
    assert imp.quant["fc1"].weight_codes.min() >= -7  # narrow range
    from hwsim.config import MacArrayConfig
    cfg = MacArrayConfig(rows=4, cols=4, rounding="half_even")
    x = RNG.random((9, 1, 8, 8))
    got = to_compressed(imp, cfg).forward_int(x, cfg=cfg)
    # NumPy evaluation of the QONNX graph (Quant: clip(round(x / s)), BipolarQuant: sign(w) with sign(0) = +1)
    xq = np.clip(np.rint(x.reshape(9, 64) / 2 ** -7), -128, 127)
    c1 = np.clip(np.rint(w1 / 2 ** -4), -7, 7)
    h = np.clip(np.rint(np.maximum(xq @ c1.T * 2 ** -11, 0) / 2 ** -4), -128, 127)
    c2 = np.where(w2 >= 0, 1, -1)
    want = np.clip(np.rint(h @ c2.T * 2 ** -7 / 2 ** -2), -128, 127)
    np.testing.assert_array_equal(got, want)
    assert re.search(r"fc2: ternary weights \(2 b, scale 0.125 -> 2\^-3\)", "\n".join(imp.scale_report()))


# ------------------------------------------------------------------------------------------ CLI and the example
def test_simulate_quantized_digits_models_from_the_example(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    from hwsim.cli import main

    script = Path(__file__).resolve().parents[1] / "examples" / "build_quantized_digits_onnx.py"
    spec = importlib.util.spec_from_file_location("build_quantized_digits_onnx", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["-o", str(tmp_path)]) == 0
    for style, conv2 in (("qdq", "int8"), ("qonnx", "int4")):
        capsys.readouterr()
        assert main(["simulate", str(tmp_path / f"digits_cnn_{style}.onnx"), "--accel", "mac-array-4x4-ws"]) == 0
        out = capsys.readouterr().out
        assert f"compressed onnx-{style} on mac-array-4x4-ws" in out
        assert re.search(rf"^conv2\s+16x72x16\s+{conv2}\s", out, re.M)
        assert "simulator == reference            yes, every logit bit-exact" in out
        acc = float(re.search(r"compressed, cycle-level simulator\s+([\d.]+) %", out).group(1))
        assert acc > 90.0
    # the float two-branch graph (Concat, ReLU6, SAME MaxPool at stride 2) under hwsim's own compression
    capsys.readouterr()
    assert main(["simulate", str(tmp_path / "digits_cnn_branches.onnx"), "--accel", "mac-array-4x4-ws",
                 "--compress", "int8"]) == 0
    out = capsys.readouterr().out
    assert "digits_cnn_branches.onnx compressed int8 on mac-array-4x4-ws" in out
    assert re.search(r"^conv1a\s+64x9x4\s+int8\s", out, re.M) and re.search(r"^conv1b\s+64x9x4\s+int8\s", out, re.M)
    assert "simulator == reference            yes, every logit bit-exact" in out
    accs = [float(v) for v in re.findall(r"^  (?:float model|compressed, cycle-level simulator)\s+([\d.]+) %", out, re.M)]
    assert len(accs) == 2 and accs[0] > 95.0 and accs[1] > 95.0


def test_simulate_compress_int8_rectangular_pools_is_bit_exact(tmp_path, capsys):
    from hwsim.cli import main

    onnx.save_model(rect_pool_graph(np.random.default_rng(109)), tmp_path / "rect.onnx")
    assert main(["simulate", str(tmp_path / "rect.onnx"), "--accel", "mac-array-4x4-ws", "--compress", "int8"]) == 0
    out = capsys.readouterr().out
    assert "rect.onnx compressed int8 on mac-array-4x4-ws" in out
    assert re.search(r"^conv1\s+64x9x4\s+int8\s", out, re.M) and re.search(r"^fc\s+\S+\s+int8\s", out, re.M)
    assert "simulator == reference            yes, every logit bit-exact" in out


def test_simulate_malformed_onnx_is_one_line(tmp_path, capsys):
    from hwsim.cli import main

    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07garbage")
    m = make([helper.make_node("Sigmoid", ["x"], ["y"], name="sig")], [], ["N", 1, 8, 8])
    onnx.save_model(m, tmp_path / "sig.onnx")
    assert main(["simulate", str(tmp_path / "sig.onnx")]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"hwsim: error: .*sig\.onnx: node 'sig' \(Sigmoid\): op type 'Sigmoid' is not supported: .*\n", err)
    assert main(["simulate", str(tmp_path / "bad.onnx")]) == 2
    assert re.fullmatch(r"hwsim: error: model file '.*bad\.onnx' is not allowed: .*\n", capsys.readouterr().err)


@pytest.mark.parametrize("attrs, pattern", [
    (dict(kernel=(2, 3), stride=(2, 3)), r"maxpool kernel=\(2, 3\) is not allowed in fine-tuning: expected a square "
                                         r"window$"),
    (dict(kernel=2, stride=2, dilation=(1, 2)), r"maxpool dilation=\(1, 2\) is not allowed in fine-tuning: "
                                                r"expected 1$"),
])
def test_finetuning_rejects_rectangular_and_dilated_maxpools(attrs, pattern):
    from hwsim.models.graph import Layer, Model
    from hwsim.models.training import gradients

    rng = np.random.default_rng(110)
    mp = Layer("mp", "maxpool", ("r",), **attrs)
    model = Model([Layer("c", "conv2d", ("input",), weight=rng.standard_normal((2, 1, 3, 3)), padding=1),
                   Layer("r", "relu", ("c",)), mp, Layer("f", "flatten", ("mp",))], (1, 8, 8))
    model = Model(model.layers + [Layer("fc", "linear", ("f",), weight=rng.standard_normal(
        (10, model.shapes()["f"][0])))], (1, 8, 8))
    with pytest.raises(HwsimError, match=r"^layer 'mp': " + pattern):
        gradients(model, "int8", rng.random((4, 1, 8, 8)), np.arange(4))


def test_simulate_says_when_the_unit_rounds_unlike_onnx_runtime(tmp_path):
    """A quantized ONNX graph rounds half to even by default (ONNX Runtime's rounding): on a preset, whose
    rounding the user did not choose, the unit is set to half_even and the report says so; an --accel file
    that names 'rounding: half_up' keeps it, and the report says ONNX Runtime's ties can differ and how to
    match it; a half_even unit gets neither note."""
    import onnx
    import yaml

    from hwsim.config import MacArrayConfig
    from hwsim.simulate import format_report, simulate

    m, _, _ = qdq_cnn()
    path = tmp_path / "qdq.onnx"
    onnx.save(m, path)
    assert MacArrayConfig().rounding == "half_up"  # the presets' own rounding, replaced below
    rep = simulate(str(path), "mac-array-8x8-ws", progress=False)
    assert rep.unit.config.rounding == "half_even"
    [note] = [n for n in rep.notes if "rounding half_even" in n]
    assert "mac-array half_up" in note and note in format_report(rep)
    assert not [n for n in rep.notes if "ties can differ" in n]
    even = simulate(str(path), MacArrayConfig(rounding="half_even"), progress=False)
    assert not [n for n in even.notes if "half to even" in n or "rounding half_even" in n]
    # The same graph on a file that chooses half_up: the unit keeps it, the report says ties can differ.
    for i, data in enumerate([{"family": "mac-array", "rounding": "half_up"},
                              {"mac_array": {"rounding": "half_up"}}]):
        f = tmp_path / f"up{i}.yaml"
        f.write_text(yaml.safe_dump(data))
        up = simulate(str(path), str(f), progress=False)
        assert up.unit.config.rounding == "half_up"
        [note] = [n for n in up.notes if "half to even" in n]
        assert "conv1" in note and "half_up" in note and "rounding: half_even" in note
    # A file that leaves rounding unset takes ONNX Runtime's, as a preset does.
    f = tmp_path / "unset.yaml"
    f.write_text(yaml.safe_dump({"family": "mac-array", "rows": 4}))
    assert simulate(str(path), str(f), progress=False).unit.config.rounding == "half_even"
