"""Where ONNX Runtime's integers are not integer arithmetic (issue 22).

On x86, ONNX Runtime (1.32 here) fuses an S8S8 QDQ graph's ``DequantizeLinear -> Conv -> QuantizeLinear``
into ``QLinearConv`` only for some nodes: for the residual digits CNN it leaves conv2, conv3 and the add
as float32 operators between DequantizeLinear and QuantizeLinear (its QDQ selectors allow int8
activations with int8 weights only on ARM, ``QDQIsInt8Allowed``). Those outputs come from float32
accumulation in MLAS, whose rounding no integer datapath reproduces. The same quantization written as
QOperator graph (``QLinearConv``, ``QLinearAdd``) runs on ONNX Runtime's integer kernels, and there hwsim's
integers equal ONNX Runtime's on every output of every test image. These tests show both, and that every
output where hwsim differs from ONNX Runtime's QDQ run is one where ONNX Runtime's two runs of the same
quantization differ from each other.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime.quantization")

import ort_quant_models as oqm  # noqa: E402
from hwsim.models import zoo  # noqa: E402
from hwsim.models.onnx_import import load_onnx, to_compressed  # noqa: E402
from test_onnx_ort_quant import hwsim_codes, ort_runs_float_conv  # noqa: E402

X_TEST = zoo.load_digits_split()[2]


@pytest.fixture(scope="module")
def s8s8(tmp_path_factory):
    d = tmp_path_factory.mktemp("s8s8")
    fm = oqm.residual_cnn()
    return {form: oqm.quantize(fm, form, d) for form in ("qdq-s8s8", "qop-s8s8")}


def test_the_qdq_and_qoperator_forms_hold_the_same_quantization(s8s8):
    """Both forms come from one calibration: hwsim imports the same weight codes, biases, scales and zero
    points, so its integers are the same for both."""
    a, b = (to_compressed(load_onnx(s8s8[f])) for f in ("qdq-s8s8", "qop-s8s8"))
    la, lb = a.compute_layers(), b.compute_layers()
    assert [x.name for x in la] == [x.name.removesuffix("_quant") for x in lb] == ["conv1", "conv2", "conv3", "fc"]
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(x.weight, y.weight)
        np.testing.assert_array_equal(x.bias, y.bias)
        np.testing.assert_array_equal(x.scale, y.scale)
        assert (x.in_zp, x.out_zp) == (y.in_zp, y.out_zp)
    np.testing.assert_array_equal(hwsim_codes(s8s8["qdq-s8s8"])[0], hwsim_codes(s8s8["qop-s8s8"])[0])


def test_hwsim_equals_onnx_runtime_integer_kernels_and_differs_only_where_its_float_path_does(s8s8):
    ours = hwsim_codes(s8s8["qdq-s8s8"])[0]
    ort_int = oqm.ort_codes(s8s8["qop-s8s8"], X_TEST)
    ort_qdq = oqm.ort_codes(s8s8["qdq-s8s8"], X_TEST)
    assert not ort_runs_float_conv(s8s8["qop-s8s8"])
    np.testing.assert_array_equal(ours, ort_int)  # every output of every test image
    if ort_runs_float_conv(s8s8["qdq-s8s8"]):
        # Where ONNX Runtime's QDQ run differs from its own integer kernels, it differs from hwsim; nowhere else.
        np.testing.assert_array_equal(ours != ort_qdq, ort_int != ort_qdq)
        assert np.abs(ort_qdq - ort_int).max() <= 1
    else:  # a build that fuses the S8S8 QDQ nodes runs the integer kernels: hwsim equals it everywhere
        np.testing.assert_array_equal(ours, ort_qdq)
