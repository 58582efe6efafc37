"""Build a QDQ, a QONNX and a float (Concat / ReLU6) ONNX model of the zoo's digits CNN, for ``hwsim simulate``.

Both graphs quantize hwsim's float ``digits-cnn`` (conv 3x3 -> ReLU -> maxpool -> conv 3x3 -> ReLU ->
flatten -> linear) the way PyTorch / Brevitas exports look:

* ``digits_cnn_qdq.onnx``: ONNX Runtime style QDQ. int8 weight initializers behind DequantizeLinear, and a
  QuantizeLinear/DequantizeLinear pair on the input and after every ReLU and the logits (int8, zero point 0).
* ``digits_cnn_qonnx.onnx``: QONNX (Brevitas / FINN) style. ``Quant`` nodes (domain
  ``qonnx.custom_op.general``) on the float weights (8-bit, 4-bit for ``conv2``, narrow range) and on the
  activations (8-bit signed).
* ``digits_cnn_branches.onnx``: a float graph computing the same function with the ops hwsim's own
  ``--compress`` has to quantize: ``conv1`` split into two 4-channel Convs (one followed by Relu, one by
  ``Clip(0, 6)``, i.e. ReLU6) joined by a Concat, MaxPool with ``auto_pad=SAME_UPPER`` at stride 2, and
  ReLU6 after ``conv2`` (the float digits CNN's activations stay below 6 on all but a few images).

Scales are powers of two (``2**ceil(log2(max / qmax))``, activations calibrated on the training images), so
hwsim runs them exactly; ``--float-scales`` writes PyTorch-like ``max / qmax`` weight scales instead, which
hwsim maps to the nearest power of two and reports the error of per layer.

Usage::

    python examples/build_quantized_digits_onnx.py -o out/
    hwsim simulate out/digits_cnn_qdq.onnx --accel mac-array-8x8-ws
    hwsim simulate out/digits_cnn_qonnx.onnx --accel mac-array-8x8-ws
    hwsim simulate out/digits_cnn_branches.onnx --accel mac-array-8x8-ws --compress int8

Needs the ``onnx`` package (``pip install 'hwsim[onnx]'``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import onnx
from hwsim.models import zoo
from onnx import TensorProto, helper, numpy_helper

QONNX = "qonnx.custom_op.general"


def _pow2_scale(amax: float, qmax: int) -> float:
    return 2.0 ** math.ceil(math.log2(max(amax, 1e-12) / qmax))


def calibrate(model, x) -> dict[str, float]:
    """Activation scales (powers of two, int8) of the input and of every conv/linear output (after its ReLU)."""
    acts = model.forward_float(x, return_all=True)
    scales = {"input": _pow2_scale(float(np.abs(x).max()), 127)}
    for la in model.layers:
        if la.kind in ("conv2d", "linear"):
            nxt = [m for m in model.layers if la.name in m.inputs]
            out = nxt[0].name if len(nxt) == 1 and nxt[0].kind == "relu" else la.name
            scales[la.name] = _pow2_scale(float(np.abs(acts[out]).max()), 127)
    return scales


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def build(style: str, model, scales: dict[str, float], float_scales: bool, weight_bits: dict[str, int]):
    nodes, inits = [], []
    inits += [_init("zp8", np.int8(0)), _init("zero", np.float32(0.0))]
    bits_init: set[int] = set()

    def act_quant(x: str, scale: float, tag: str) -> str:
        inits.append(_init(f"s_{tag}", np.float32(scale)))
        if style == "qdq":
            nodes.append(helper.make_node("QuantizeLinear", [x, f"s_{tag}", "zp8"], [f"{tag}_q"], name=f"q_{tag}"))
            nodes.append(helper.make_node("DequantizeLinear", [f"{tag}_q", f"s_{tag}", "zp8"], [f"{tag}_dq"],
                                          name=f"dq_{tag}"))
            return f"{tag}_dq"
        if 8 not in bits_init:
            inits.append(_init("bits8", np.float32(8)))
            bits_init.add(8)
        nodes.append(helper.make_node("Quant", [x, f"s_{tag}", "zero", "bits8"], [f"{tag}_q"], name=f"quant_{tag}",
                                      domain=QONNX, signed=1, narrow=0, rounding_mode="ROUND"))
        return f"{tag}_q"

    def weight(la) -> str:
        bits = weight_bits.get(la.name, 8)
        qmax = (1 << (bits - 1)) - 1
        amax = float(np.abs(la.weight).max())
        scale = amax / qmax if float_scales else _pow2_scale(amax, qmax)
        if style == "qdq":
            codes = np.clip(np.rint(la.weight / scale), -qmax, qmax).astype(np.int8)
            inits.extend([_init(f"{la.name}_wq", codes), _init(f"{la.name}_ws", np.float32(scale))])
            nodes.append(helper.make_node("DequantizeLinear", [f"{la.name}_wq", f"{la.name}_ws", "zp8"],
                                          [f"{la.name}_w"], name=f"dq_{la.name}_w"))
            return f"{la.name}_w"
        if bits not in bits_init:
            inits.append(_init(f"bits{bits}", np.float32(bits)))
            bits_init.add(bits)
        inits.extend([_init(f"{la.name}_wf", la.weight.astype(np.float32)),
                      _init(f"{la.name}_ws", np.float32(scale))])
        nodes.append(helper.make_node("Quant", [f"{la.name}_wf", f"{la.name}_ws", "zero", f"bits{bits}"],
                                      [f"{la.name}_w"], name=f"quant_{la.name}_w", domain=QONNX, signed=1,
                                      narrow=1, rounding_mode="ROUND"))
        return f"{la.name}_w"

    cur = {"input": act_quant("x", scales["input"], "input")}
    for la in model.layers:
        x = cur[la.inputs[0]]
        if la.kind == "conv2d":
            w = weight(la)
            inits.append(_init(f"{la.name}_b", la.bias.astype(np.float32)))
            p = la.padding
            nodes.append(helper.make_node("Conv", [x, w, f"{la.name}_b"], [la.name], name=la.name, pads=[p] * 4,
                                          strides=[la.stride] * 2))
            cur[la.name] = la.name
        elif la.kind == "linear":
            w = weight(la)
            inits.append(_init(f"{la.name}_b", la.bias.astype(np.float32)))
            nodes.append(helper.make_node("Gemm", [x, w, f"{la.name}_b"], [la.name], name=la.name, transB=1))
            cur[la.name] = act_quant(la.name, scales[la.name], la.name)
        elif la.kind == "relu":
            nodes.append(helper.make_node("Relu", [x], [la.name], name=la.name))
            cur[la.name] = act_quant(la.name, scales[la.inputs[0]], la.name)
        elif la.kind == "maxpool":
            nodes.append(helper.make_node("MaxPool", [x], [la.name], name=la.name, kernel_shape=[la.kernel] * 2,
                                          strides=[la.stride] * 2))
            cur[la.name] = la.name
        elif la.kind == "flatten":
            nodes.append(helper.make_node("Flatten", [x], [la.name], name=la.name))
            cur[la.name] = la.name
        else:
            raise SystemExit(f"layer {la.name} ({la.kind}) is not handled by this example")
    out = cur[model.output]
    nodes.append(helper.make_node("Identity", [out], ["logits"], name="output"))
    graph = helper.make_graph(nodes, f"digits_cnn_{style}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(QONNX, 1)] if style == "qonnx" else [])
    m = helper.make_model(graph, opset_imports=opsets, producer_name="hwsim examples")
    m.ir_version = 8
    return m


def build_branches(model):
    """The float digits CNN as a two-branch graph with Concat, ReLU6 and a SAME-padded MaxPool."""
    L = {la.name: la for la in model.layers}
    c1, c2, fc, pool = L["conv1"], L["conv2"], L["fc"], L["pool1"]
    half = c1.weight.shape[0] // 2
    inits = [_init("zero", np.float32(0.0)), _init("six", np.float32(6.0))]
    for name, w, b in (("conv1a", c1.weight[:half], c1.bias[:half]), ("conv1b", c1.weight[half:], c1.bias[half:]),
                       ("conv2", c2.weight, c2.bias), ("fc", fc.weight, fc.bias)):
        inits += [_init(f"{name}_w", w.astype(np.float32)), _init(f"{name}_b", b.astype(np.float32))]
    nodes = [
        helper.make_node("Conv", ["x", "conv1a_w", "conv1a_b"], ["c1a"], name="conv1a", pads=[c1.padding] * 4),
        helper.make_node("Relu", ["c1a"], ["r1a"], name="relu1a"),
        helper.make_node("Conv", ["x", "conv1b_w", "conv1b_b"], ["c1b"], name="conv1b", pads=[c1.padding] * 4),
        helper.make_node("Clip", ["c1b", "zero", "six"], ["r1b"], name="relu6_1b"),
        helper.make_node("Concat", ["r1a", "r1b"], ["cat"], name="cat", axis=1),
        helper.make_node("MaxPool", ["cat"], ["pool1"], name="pool1", kernel_shape=[pool.kernel] * 2,
                         strides=[pool.stride] * 2, auto_pad="SAME_UPPER"),
        helper.make_node("Conv", ["pool1", "conv2_w", "conv2_b"], ["c2"], name="conv2", pads=[c2.padding] * 4),
        helper.make_node("Clip", ["c2", "zero", "six"], ["r2"], name="relu6_2"),
        helper.make_node("Flatten", ["r2"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "digits_cnn_branches",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hwsim examples")
    m.ir_version = 8
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", default=".", help="directory for the three .onnx files (default: .)")
    ap.add_argument("--float-scales", action="store_true",
                    help="PyTorch-like max/qmax weight scales instead of powers of two")
    args = ap.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    model = zoo.load("digits-cnn")
    x_tr, _, _, _ = zoo.load_digits_split()
    scales = calibrate(model, x_tr)
    for style, bits in (("qdq", {}), ("qonnx", {"conv2": 4})):
        m = build(style, model, scales, args.float_scales, bits)
        path = out / f"digits_cnn_{style}.onnx"
        onnx.save_model(m, path)
        print(f"wrote {path} ({style}; weights {', '.join(f'{k} {v} b' for k, v in bits.items()) or 'all 8 b'})")
    path = out / "digits_cnn_branches.onnx"
    onnx.save_model(build_branches(model), path)
    print(f"wrote {path} (float; Concat, ReLU6, SAME-padded MaxPool: run it with --compress SPEC)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
