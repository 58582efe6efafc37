"""Randomized MAC-array regression: random GEMM and conv layers through the RTL under Verilator.

On a top with the float32 requantizer (``requantizer = "f32"``) every other layer is a float-scale layer
(:func:`float_layer`): ONNX Runtime's requantization with the zero-point corners of quantized models.

:func:`run_regression` is the MAC family's ``cosim`` entry point; the build cache, the runner and the
report are the family-independent ones of :mod:`hwsim.cosim.runner` and :mod:`hwsim.cosim.report`.
"""

from __future__ import annotations

import numpy as np
from hwsim.cosim.harness import DEFAULT_MEM_DEPTH, mac_array_harness
from hwsim.cosim.report import RegressionReport
from hwsim.cosim.runner import Build, build, cosimulate
from hwsim.models import mac_array as ref

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError

__all__ = ["F32_ZERO_POINTS", "RegressionReport", "build_mac_array", "check_layers", "float_layer", "random_layers",
           "run_regression", "weight_zero_points"]


def _acts(rng: np.random.Generator, cfg: MacArrayConfig, shape, mode: str) -> np.ndarray:
    if cfg.act_bits == 1:
        return rng.choice(np.array([-1, 1]), size=shape)
    lo, hi = ref.act_value_range(cfg.act_bits)
    if mode == "extreme":  # drives accumulators into saturation / wrap-around
        return rng.choice(np.array([lo, hi]), size=shape)
    if mode == "sparse":
        x = rng.integers(lo, hi + 1, size=shape)
        return np.where(rng.random(shape) < 0.6, 0, x)
    return rng.integers(lo, hi + 1, size=shape)


def _weights(rng: np.random.Generator, cfg: MacArrayConfig, shape, mode: str, conv: bool = False,
             prune: bool = True) -> np.ndarray:
    values = ref.weight_values(cfg.weight_format)
    if mode == "extreme":
        w = rng.choice(np.array([values.min(), values.max()]), size=shape)
    else:
        w = rng.choice(values, size=shape)
    if cfg.sparse:
        # N:M: keep N random positions of every M consecutive reduction steps (K of a GEMM is axis 0; of a
        # conv the flattened (c, i, j) of each output channel), so the layer follows the array's pattern.
        sn, sm = cfg.sparse_nm
        mat = w.reshape(shape[0], -1) if conv else w.T
        k = mat.shape[1]
        keys = rng.random(mat.shape)
        keep = np.zeros(mat.shape, dtype=bool)
        for g0 in range(0, k, sm):
            grp = keys[:, g0:g0 + sm]
            order = np.argsort(grp, axis=1)[:, :sn]
            np.put_along_axis(keep[:, g0:g0 + sm], order, True, axis=1)
        if prune:  # (the keys are drawn either way, so a dense layer leaves the random stream unchanged)
            mat = np.where(keep, mat, 0)
        w = mat.reshape(shape) if conv else mat.T
    return w


def check_layers(cfg: MacArrayConfig, layers: list[dict]) -> None:
    """Raise (one line naming the layer and the first offending group) if a layer declared N:M
    (``"mode": "sparse"``) has weights that break ``cfg``'s pattern; other layers run sparse or in dense
    mode as their weights allow, and nothing is checked on a dense array."""
    from hwsim.mac_array import check_nm

    if not cfg.sparse:
        return
    for i, layer in enumerate(layers):
        mode = layer.get("mode")
        if mode not in (None, "sparse", "dense"):
            raise HwsimError(f"layer {layer.get('name', f'layer{i}')!r} mode={mode!r} is not allowed: expected "
                             "'sparse', 'dense' or none (chosen by the weights)")
        if mode != "sparse":
            continue
        name = layer.get("name", f"layer{i}")
        w = np.asarray(layer["w"], dtype=np.int64)
        if layer["kind"] == "gemm":
            check_nm(cfg, w, name)
        else:
            g = layer["groups"]
            og = w.shape[0] // g
            for j in range(g):
                check_nm(cfg, w[j * og:(j + 1) * og].reshape(og, -1).T, name)


#: Zero points of the float-scale regression layers, as the tensor's type has them: signed (``s``) at both ends
#: and 0, unsigned (``u``, shifted into the signed codes by ``-2**(act_bits-1)`` as the ONNX import shifts
#: uint8) at 0 and at its top (255 for 8 bits). Layer i takes input zero point i and output zero point i + 2.
F32_ZERO_POINTS = (("s", "lo"), ("s", "hi"), ("s", 0), ("u", 0), ("u", "hi"))


def _zero_point(cfg: MacArrayConfig, which: int) -> tuple[str, int]:
    """(label, signed zero point) of :data:`F32_ZERO_POINTS` entry ``which`` (cyclic)."""
    kind, v = F32_ZERO_POINTS[which % len(F32_ZERO_POINTS)]
    b = cfg.act_bits
    if kind == "s":
        z = {"lo": -(1 << (b - 1)), "hi": (1 << (b - 1)) - 1}.get(v, v)
        return f"s{b} {z}", z
    u = {"hi": (1 << b) - 1}.get(v, v)
    return f"u{b} {u}", u - (1 << (b - 1))


def float_layer(rng: np.random.Generator, cfg: MacArrayConfig, i: int) -> dict:
    """A float-scale GEMM layer: a small conv (3x3, stride 1 or 2) whose input is padded with its zero point,
    lowered by im2col as the DRAM side does, on the float32 requantizer lanes.

    Input and output zero points cycle through :data:`F32_ZERO_POINTS` (the input's column constant
    ``-zx * sum_k w`` folded into the bias, :func:`hwsim.models.mac_array.zero_point_correction`); scales are
    per output channel, ``2**u`` with ``u`` uniform in [-20, 4] (the first two channels exactly 2**-20 and
    2**4); odd layers get biases up to 2**27, so corrected accumulators pass 2**24 (float32 rounds them)
    and, times 2**-20, still land inside the output range; extreme data (the format's ends) on every third
    layer; large scales saturate at both ends; ReLU at random. The layer's ``f32_case`` holds the conv as
    generated (input, zero points, bias before folding, stride), so a test can compute the outputs
    independently (a direct convolution and NumPy's float32).

    On a top with ``weight_zero_points`` the weights also get zero points (:func:`weight_zero_points`: per
    tensor on even layers, per channel on odd ones, at the weight type's ends), the column constant gains
    ``K zx zw`` and the requantizer its ``row_zp`` (``f32_case["w_zp"]``); other tops draw no more random
    numbers than before."""
    b = cfg.act_bits
    lo, hi = ref.act_value_range(b)
    in_label, in_zp = _zero_point(cfg, i)
    out_label, out_zp = _zero_point(cfg, i + 2)
    cin = int(rng.integers(1, 3))
    cout = int(rng.integers(1, 2 * cfg.cols + 2))
    h = int(rng.integers(3, 6))
    stride = int(rng.integers(1, 3))
    mode = "extreme" if i % 3 == 2 else "uniform"
    x = _acts(rng, cfg, (cin, h, h), mode)
    w = _weights(rng, cfg.replace(sparsity="dense"), (cout, cin, 3, 3), mode, conv=True)
    xpad = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=in_zp)
    a, wm = ref.conv2d_as_gemms(xpad, w, stride, 0, 1, 1)[0]
    big = 1 << min(27 if i % 2 else 12, cfg.acc_bits - 4)  # the bias fits the accumulator
    bias = rng.integers(-big, big + 1, cout)
    scale = (2.0 ** rng.uniform(-20, 4, cout)).astype(np.float32)
    scale[:2] = np.float32([2.0 ** -20, 2.0 ** 4])[:cout]
    relu = bool(rng.integers(0, 2))
    wzp = weight_zero_points(rng, cfg, i, cout) if cfg.weight_zero_points else None
    corr = ref.zero_point_correction(wm, in_zp, wzp)
    spec = {"scale_bits": [int(v) for v in scale.view(np.uint32)], "zero_point": out_zp,
            "lo": max(lo, out_zp) if relu else lo, "hi": hi}
    rows = {} if wzp is None else {"row_zp": wzp.tolist()}
    label = "" if wzp is None else f" wzp {'pc' if i % 2 else 'pt'} [{wzp.min()}, {wzp.max()}]"
    return {"kind": "gemm", "name": f"f32conv{i}", "a": a, "w": wm, "bias": bias + corr, "shift": 0, "relu": relu,
            "requant": {**spec, **rows}, "zp_correction": bool(in_zp) or wzp is not None,
            "shape": f"{a.shape[0]}x{a.shape[1]}x{cout} f32 zp {in_label}->{out_label}{label} pad1 s{stride}",
            "f32_case": {"x": x.tolist(), "w": w.tolist(), "bias": bias.tolist(), "in_zp": in_zp,
                         "stride": stride, **({} if wzp is None else {"w_zp": wzp.tolist()})}}


def weight_zero_points(rng: np.random.Generator, cfg: MacArrayConfig, i: int, n: int) -> np.ndarray:
    """Weight zero points (signed ``weight_bits`` codes) of float-scale layer ``i`` with ``n`` output channels:
    per tensor (one value, repeated) on even layers, cycling through the signed type's ends and the unsigned
    type's ends as the ONNX import shifts them (uint8 0 -> -128, 255 -> 127, 128 -> 0), and per channel on odd
    layers: random values with the first two channels at both ends."""
    b = cfg.weight_bits
    lo, hi = -(1 << (b - 1)), (1 << (b - 1)) - 1
    if i % 2 == 0:
        return np.full(n, (lo, hi, 0, lo + 1, -1)[(i // 2) % 5], dtype=np.int64)
    z = rng.integers(lo, hi + 1, n)
    z[:2] = np.array([lo, hi])[:n]
    return z.astype(np.int64)


def random_layers(cfg: MacArrayConfig, seed: int, count: int) -> list[dict]:
    """``count`` random layers (about one in three a conv) sized a few folds larger than the array.

    Data modes cycle through uniform, extreme (the format's min/max values, so narrow accumulators
    saturate or wrap and outputs clamp) and sparse; shifts are random so rounding ties occur. On an N:M
    array every fourth layer (i % 4 == 1) is left unpruned (no ``mode``: it runs in dense mode unless its
    weights happen to follow the pattern); the others are pruned N:M and declared ``"mode": "sparse"``.
    With ``skip_zero_tiles`` every GEMM layer gets a zero weight block, and every other one a zero n-tile.
    With ``requantizer = "f32"`` every odd layer is instead a float-scale layer (:func:`float_layer`, from
    its own random stream, so the power-of-two layers are those of a shift top).
    """
    rng = np.random.default_rng(seed)
    R, C = cfg.rows, cfg.cols
    layers = []
    for i in range(count):
        mode = ("uniform", "extreme", "sparse")[i % 3]
        prune = i % 4 != 1
        declared = {"mode": "sparse"} if cfg.sparse and prune else {}
        shift = int(rng.integers(0, min(cfg.acc_bits - 1, 14) + 1))
        relu = bool(rng.integers(0, 2))
        if rng.random() < 0.34:
            groups = int(rng.choice([1, 2]))
            cin = groups * int(rng.integers(1, 3))
            cout = groups * int(rng.integers(1, C + 2))
            depthwise = rng.random() < 0.3
            if depthwise:
                groups = cin = cout = int(rng.integers(1, 4))
            kh = int(rng.integers(1, 4))
            stride, dilation = int(rng.integers(1, 3)), int(rng.integers(1, 3))
            padding = 0 if cfg.act_bits == 1 else int(rng.integers(0, 2))
            h = int(rng.integers(dilation * (kh - 1) + 1, dilation * (kh - 1) + 6))
            x = _acts(rng, cfg, (cin, h, h), mode)
            w = _weights(rng, cfg, (cout, cin // groups, kh, kh), mode, conv=True, prune=prune)
            layers.append({
                **declared, "kind": "conv", "name": f"conv{i}", "x": x.tolist(), "w": w.tolist(),
                "stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                "shift": shift, "relu": relu,
                "shape": f"x{list(x.shape)} w{list(w.shape)} s{stride} p{padding} d{dilation} g{groups}",
            })
        else:
            m = int(rng.integers(1, 3 * R + 3))
            k = int(rng.integers(1, 3 * R + 4))
            n = int(rng.integers(1, 2 * C + 3))
            a = _acts(rng, cfg, (m, k), mode)
            w = _weights(rng, cfg, (k, n), mode, prune=prune)
            if cfg.skip_zero_tiles:  # zero a random weight block and a random n-tile, so folds are skipped
                k_step = cfg.ws_k_step if prune else R  # a dense-mode fold covers `rows` real steps
                k0 = int(rng.integers(0, -(-k // k_step))) * k_step
                n0 = int(rng.integers(0, -(-n // C))) * C
                w[k0:k0 + k_step, n0:n0 + C] = 0
                if i % 2:
                    n1 = int(rng.integers(0, -(-n // C))) * C
                    w[:, n1:n1 + C] = 0
            layers.append({**declared, "kind": "gemm", "name": f"gemm{i}", "a": a.tolist(), "w": w.tolist(),
                           "shift": shift, "relu": relu, "shape": f"{m}x{k}x{n}"})
    if cfg.requantizer == "f32":
        frng = np.random.default_rng([seed, 22])
        layers = [float_layer(frng, cfg, i // 2) if i % 2 else la for i, la in enumerate(layers)]
    return layers


def build_mac_array(cfg: MacArrayConfig, waves: bool = False, mem_depth: int = DEFAULT_MEM_DEPTH) -> Build:
    """The (cached) Verilator build of ``cfg`` in the MAC-array harness with ``mem_depth``-beat memories."""
    return build(cfg, mac_array_harness(mem_depth), waves=waves)


def run_regression(cfg: MacArrayConfig, seed: int = 1, count: int = 5, waves: bool = False,
                   layers: list[dict] | None = None, workdir=None) -> RegressionReport:
    """Build (or reuse) the Verilator model of ``cfg`` and run ``layers`` (default: ``count`` random ones
    from ``seed``) through the MAC-array testbench; ``workdir`` keeps ``sim.log`` (and ``dump.fst``)."""
    if not isinstance(cfg, MacArrayConfig):
        raise HwsimError(f"cfg={type(cfg).__name__} is not allowed: expected a MacArrayConfig "
                         "(other families' regressions are their family's cosim entry point)")
    layers = random_layers(cfg, seed, count) if layers is None else layers
    check_layers(cfg, layers)  # before any build or simulation
    return cosimulate(cfg, mac_array_harness(), layers, waves=waves, workdir=workdir)
