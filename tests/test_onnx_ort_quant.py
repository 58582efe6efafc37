"""Quantized ONNX models as users have them (issue 22): ``quantize_static`` QDQ (S8S8, U8S8, per tensor and
per channel) and QOperator graphs of the digits CNNs, run by hwsim with zero points folded out of the
array's inner product and ONNX Runtime's float32 requantizer; every output integer against ONNX Runtime's
(default session options). The arithmetic itself against exact rational arithmetic and naive loops."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")

import ort_quant_models as oqm  # noqa: E402
from hwsim.models import ort_ops, zoo  # noqa: E402
from hwsim.models.compressed import Arith, reference_gemm  # noqa: E402
from hwsim.models.mac_array import (  # noqa: E402
    FloatRequant,
    conv2d_as_gemms,
    requantize_f32,
    requantize_f32_int,
    zero_point_correction,
)
from hwsim.models.onnx_import import load_onnx, to_compressed  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from hwsim.errors import HwsimError  # noqa: E402

X_TEST, Y_TEST = zoo.load_digits_split()[2:]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("ortq")
    out = {}
    for net, build in (("residual", oqm.residual_cnn), ("gap", oqm.gap_cnn)):
        fm = build()
        for form in oqm.FORMS:
            out[net, form] = oqm.quantize(fm, form, d)
    return out


def hwsim_codes(path):
    cm = to_compressed(load_onnx(path))
    return cm.forward_int(X_TEST) + cm.layers[-1].meta.get("offset", 0), cm


def ort_runs_float_conv(path) -> bool:
    """ONNX Runtime left a DequantizeLinear -> Conv (float32) -> QuantizeLinear unfused in its optimized graph."""
    so = ort.SessionOptions()
    so.optimized_model_filepath = path + ".opt.onnx"
    so.log_severity_level = 3
    ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return any(n.op_type == "Conv" for n in onnx.load(path + ".opt.onnx").graph.node)


@pytest.mark.parametrize("form", list(oqm.FORMS))
@pytest.mark.parametrize("net", ["residual", "gap"])
def test_every_output_integer_equals_onnx_runtime(models, net, form):
    path = models[net, form]
    ours, cm = hwsim_codes(path)
    want = oqm.ort_codes(path, X_TEST)
    assert any(la.in_zp for la in cm.compute_layers()), "the model should have non-zero input zero points"
    assert all(la.requant == "f32" for la in cm.compute_layers())
    if not ort_runs_float_conv(path):
        np.testing.assert_array_equal(ours, want)
    else:
        # ONNX Runtime (1.32 here) leaves conv2/conv3 and the add of the S8S8 QDQ residual net unfused
        # (DequantizeLinear -> float32 Conv -> QuantizeLinear): its integers there come from float32
        # accumulation, which integer hardware cannot reproduce bit for bit (1 logit of 4,500 differs by one
        # code per tensor; per channel none); every fused (integer) kernel matches exactly.
        assert net == "residual" and form.startswith("qdq-s8s8")
        assert np.count_nonzero(ours != want) <= 2 and np.abs(ours - want).max() <= 1
    assert np.mean(ours.argmax(1) == Y_TEST) == np.mean(want.argmax(1) == Y_TEST)
    if net == "residual":
        assert np.mean(want.argmax(1) == Y_TEST) > 0.94


def test_uint8_and_per_channel_forms_keep_their_quantizers(models):
    imp = load_onnx(models["residual", "qdq-u8s8-pc"])
    assert imp.style == "qdq" and not imp.pow2_symmetric
    q = imp.quant["conv2"]
    assert not q.in_q.signed and q.w_q.signed and len(np.unique(q.w_q.scale)) > 1
    cm = to_compressed(imp)
    conv2 = cm.layer("conv2")
    assert conv2.pad_value == conv2.in_zp == int(q.in_q.zp()[0]) - 128  # uint8 codes shifted into int8
    assert conv2.scale.dtype == np.float32 and len(np.unique(conv2.scale)) > 1
    assert cm.layer("add").meta["ort"]["op"] == "qlinear_add"
    imp = load_onnx(models["gap", "qop-u8s8"])
    assert imp.style == "qoperator"
    assert to_compressed(imp).layer("gap_quant").meta["ort"]["op"] == "qlinear_gap"


# ------------------------------------------------------------------------------------------ arithmetic
def _rne(fr: Fraction) -> int:
    fl = fr.numerator // fr.denominator
    rem = fr - fl
    return fl + (1 if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2) else 0)


def _f32_round(fr: Fraction) -> Fraction:
    """Round a rational to the nearest float32 (ties to even), normal range only."""
    if fr == 0:
        return fr
    sign = -1 if fr < 0 else 1
    a = abs(fr)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    ulp = Fraction(2) ** (e - 23)
    return sign * _rne(a / ulp) * ulp


def naive_requant(acc: int, scale: np.float32, zp: int, lo: int, hi: int) -> int:
    v = _f32_round(_f32_round(Fraction(acc)) * Fraction(float(scale)))
    return min(max(_rne(v) + zp, lo), hi)


@settings(max_examples=300, deadline=None)
@given(acc=st.one_of(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 26), 1 << 26),
                     st.integers(-300, 300)),
       log_scale=st.floats(-20, 4), zp=st.sampled_from([-128, 127, 0, -1, 5]), relu=st.booleans())
def test_f32_requantizer_against_exact_rationals(acc, log_scale, zp, relu):
    scale = np.float32(2.0 ** log_scale)
    lo = max(-128, zp) if relu else -128
    fq = FloatRequant([scale], zp, lo, 127)
    a = np.array([[acc]], dtype=np.int64)
    want = naive_requant(acc, scale, zp, lo, 127)
    assert requantize_f32(a, fq)[0, 0] == want
    assert requantize_f32_int(a, fq)[0, 0] == want


def test_f32_requantizer_corners():
    # accumulators beyond float32's 24-bit precision, ties at x.5 after scaling, saturation at both ends
    accs = np.array([[(1 << 24) + 1, -(1 << 24) - 3, (1 << 25) + 5, 3, -3, 5, -5, (1 << 30), -(1 << 30)]])
    for scale in (0.5, 2.0 ** -20, 16.0, 0.1, 1.5):
        fq = FloatRequant([np.float32(scale)], -7, -128, 127)
        want = [naive_requant(int(v), np.float32(scale), -7, -128, 127) for v in accs[0]]
        np.testing.assert_array_equal(requantize_f32(accs, fq)[0], want)
        np.testing.assert_array_equal(requantize_f32_int(accs, fq)[0], want)
    fq = FloatRequant([np.float32(0.5)], 0, -128, 127)
    np.testing.assert_array_equal(requantize_f32(np.array([[5, -5, 7, -7]]), fq), [[2, -2, 4, -4]])  # half even
    with pytest.raises(HwsimError, match=r"^zero_point=200 is not allowed: expected a value in \[-128, 127\]$"):
        FloatRequant([0.5], 200, -128, 127)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), zx=st.sampled_from([-128, 127, 0, -37]), wzp=st.booleans())
def test_zero_point_folding_equals_the_naive_inner_product(seed, zx, wzp):
    rng = np.random.default_rng(seed)
    m, k, n = rng.integers(1, 6), rng.integers(1, 20), rng.integers(1, 6)
    a = rng.integers(-128, 128, (m, k))
    w = rng.integers(-128, 128, (k, n))
    zw = rng.integers(-128, 128, n) if wzp else None
    bias = rng.integers(-1000, 1000, n)
    naive = np.array([[sum((int(a[i, t]) - zx) * (int(w[t, j]) - (0 if zw is None else int(zw[j])))
                           for t in range(k)) + int(bias[j]) for j in range(n)] for i in range(m)])
    fq = FloatRequant(np.full(n, np.float32(2.0 ** -6)), 3, -128, 127, zw)
    got = reference_gemm(a, w, Arith(), bias=bias + zero_point_correction(w, zx, zw), requant=fq)
    np.testing.assert_array_equal(got, requantize_f32(naive, fq))


def test_padding_uses_the_input_zero_point():
    """A conv over a constant image equal to its zero point gives the bias alone everywhere, borders included."""
    from hwsim.models.compressed import QLayer

    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (4, 2, 3, 3))
    for zx in (-128, 127, 0, 55):
        la = QLayer("c", "conv2d", ("input",), (4, 5, 5), 0, 8, weight_format="int8", weight=w,
                    weight_exp=np.zeros(4, np.int64), bias=np.arange(4) * 40, in_exp=0,
                    shift=np.zeros(4, np.int64), padding=1, pad_value=zx, in_zp=zx, requant="f32",
                    scale=np.full(4, np.float32(0.25)), out_zp=-9)
        x = np.full((1, 2, 5, 5), zx)
        got = la.forward_int([x])
        want = np.clip(np.rint(np.float32(0.25) * np.arange(4) * 40) - 9, -128, 127)
        np.testing.assert_array_equal(got[0], np.broadcast_to(want[:, None, None], (4, 5, 5)))
        # and a random image against a naive zero-point-padded convolution
        x = rng.integers(-128, 128, (1, 2, 5, 5))
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=zx)
        acc = np.zeros((4, 5, 5), np.int64)
        for o in range(4):
            for i in range(5):
                for j in range(5):
                    acc[o, i, j] = ((xp[0, :, i:i + 3, j:j + 3] - zx) * w[o]).sum() + 40 * o
        fq = FloatRequant(np.full(4, np.float32(0.25)), -9, -128, 127)
        want = requantize_f32(acc.reshape(4, -1).T, fq).T.reshape(4, 5, 5)
        np.testing.assert_array_equal(la.forward_int([x])[0], want)
        assert conv2d_as_gemms  # the layer lowers through the same im2col


def _ms_model(node, inits, in_name, out_dtype, n):
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info(in_name[0], out_dtype, [n]),
                                        helper.make_tensor_value_info(in_name[1], out_dtype, [n])],
                          [helper.make_tensor_value_info("c", out_dtype, [n])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("unsigned", [False, True])
@pytest.mark.parametrize("scales", [(0.0217734, 0.0315773, 0.0305834, -8, -128, -128),
                                    (0.1, 0.003, 0.05, 17, 3, -100), (1.0, 1.0, 0.7, 0, 0, 0)])
def test_qlinear_add_over_every_code_pair_equals_onnx_runtime(unsigned, scales):
    sa, sb, sc, za, zb, zc = scales
    dt = np.uint8 if unsigned else np.int8
    if unsigned:
        za, zb, zc = za + 128, zb + 128, zc + 128
    lo, hi = (0, 255) if unsigned else (-128, 127)
    a, b = np.meshgrid(np.arange(lo, hi + 1), np.arange(lo, hi + 1))
    a, b = a.ravel().astype(dt), b.ravel().astype(dt)
    inits = [numpy_helper.from_array(np.float32(v), n) for v, n in ((sa, "sa"), (sb, "sb"), (sc, "sc"))]
    inits += [numpy_helper.from_array(dt(v), n) for v, n in ((za, "za"), (zb, "zb"), (zc, "zc"))]
    node = helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["c"],
                            domain="com.microsoft")
    tt = TensorProto.UINT8 if unsigned else TensorProto.INT8
    m = _ms_model(node, inits, ("a", "b"), tt, a.size)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"a": a, "b": b})[0]
    got = ort_ops.qlinear_add(a.astype(np.int64), b.astype(np.int64), sa, za, sb, zb, sc, zc, unsigned)
    np.testing.assert_array_equal(got, want.astype(np.int64))


def test_unsupported_quantized_operator_is_one_line():
    node = helper.make_node("QLinearSigmoid", ["xq", "s", "z", "s", "z"], ["yq"], name="sig", domain="com.microsoft")
    g = helper.make_graph([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]), node,
                           helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.uint8(3), "z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    with pytest.raises(HwsimError, match=r"^<model>: node 'sig' \(QLinearSigmoid\): op type 'QLinearSigmoid' is not "
                                         r"supported: expected one of Conv, "):
        load_onnx(m)


def test_simulate_runs_quantize_static_models_and_recompresses(models, capsys):
    from hwsim.simulate import simulate

    path = models["residual", "qdq-s8s8-pc"]
    rep = simulate(path, "mac-array-8x8-ws")
    want = oqm.ort_codes(path, X_TEST)
    assert rep.accuracy_simulated == rep.accuracy_reference == pytest.approx(np.mean(want.argmax(1) == Y_TEST))
    for spec in ("int8", "int4"):  # re-quantized from the dequantized weights
        rep = simulate(path, "mac-array-8x8-ws", compress=spec)
        assert re.fullmatch(spec, rep.compress) and rep.accuracy_simulated > 0.85


def test_uint8_weights_have_zero_points(models, tmp_path):
    """U8U8 (``weight_type=QuantType.QUInt8``, per tensor): ONNX Runtime gives the weights zero points, so
    :func:`test_every_output_integer_equals_onnx_runtime` checks the row term ``-z_w sum_k x``; shifted into
    int8 with the codes, and the same in the QDQ and QOperator graphs. Per channel, ONNX Runtime 1.32 quantizes
    uint8 weights symmetrically (zero point 128, 0 after the shift), so no per-channel form has a row term."""
    for net in ("residual", "gap"):
        qdq, qop = (to_compressed(load_onnx(models[net, f])).compute_layers() for f in ("qdq-u8u8", "qop-u8u8"))
        for la, lb in zip(qdq, qop, strict=True):
            assert la.weight_zp is not None and np.any(la.weight_zp != 0), la.name
            np.testing.assert_array_equal(la.weight_zp, lb.weight_zp)
            assert la.weight.min() >= -128 and la.weight.max() <= 127
    raw = onnx.load(models["residual", "qdq-u8u8"])
    zps = [numpy_helper.to_array(i) for i in raw.graph.initializer if i.name.startswith("w") and "zero_point" in i.name]
    assert zps and all(z.dtype == np.uint8 for z in zps)
    from onnxruntime.quantization import QuantFormat, QuantType

    path = oqm.quantize_as(oqm.gap_cnn(), "qdq-u8u8-pc", QuantFormat.QDQ, QuantType.QUInt8, QuantType.QUInt8, True,
                           tmp_path)
    assert all(la.weight_zp is None for la in to_compressed(load_onnx(path)).compute_layers())
