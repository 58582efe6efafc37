"""Tests of the model graph and the compression pipeline (hwsim.models.graph / hwsim.models.compress)."""

from __future__ import annotations

import re

import networkx as nx
import numpy as np
import pytest
from hwsim.models import compress as C
from hwsim.models import mac_array
from hwsim.models.errors import HwsimError
from hwsim.models.graph import Layer, Model, load_model, save_model

from hwsim.config import MacArrayConfig

RNG_SEED = 1234


# ----------------------------------------------------------------------------------------------- helpers
def naive_conv(x, w, b, stride, padding, dilation, groups):
    """Plain-loop float convolution, written independently of the library."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    xp[:, :, padding:padding + h, padding:padding + wd] = x
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    y = np.zeros((n, o, ho, wo))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(ho):
            for j in range(wo):
                acc = 0.0 if b is None else b[oc]
                for ci in range(cg):
                    for u in range(kh):
                        for v in range(kw):
                            acc = acc + xp[:, g * cg + ci, i * stride + u * dilation, j * stride + v * dilation] \
                                * w[oc, ci, u, v]
                y[:, oc, i, j] = acc
    return y


def toy_model(rng) -> Model:
    """Every layer kind: strided / dilated / depthwise conv, residual add, max and avg pooling, linear."""
    def conv(name, inputs, o, c, k, **kw):
        fan = c // kw.get("groups", 1) * k * k
        return Layer(name, "conv2d", inputs, rng.standard_normal((o, c // kw.get("groups", 1), k, k))
                     * np.sqrt(2 / fan), rng.standard_normal(o) * 0.1, **kw)

    layers = [
        conv("c1", ("input",), 4, 2, 3, padding=1),
        Layer("r1", "relu", ("c1",)),
        conv("dw", ("r1",), 4, 4, 3, padding=2, dilation=2, groups=4),
        Layer("r2", "relu", ("dw",)),
        conv("pw", ("r2",), 4, 4, 1),
        Layer("add", "add", ("pw", "r1")),
        Layer("r3", "relu", ("add",)),
        Layer("mp", "maxpool", ("r3",), kernel=2, stride=2),
        conv("c2", ("mp",), 8, 4, 3, padding=1, stride=2),
        Layer("r4", "relu", ("c2",)),
        Layer("ap", "avgpool", ("r4",), kernel=2, stride=2),
        Layer("fl", "flatten", ("ap",)),
        Layer("fc", "linear", ("fl",), rng.standard_normal((5, 8)) * 0.5, rng.standard_normal(5) * 0.1),
    ]
    return Model(layers, (2, 8, 8), "toy")


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(RNG_SEED)
    return toy_model(rng), rng.random((64, 2, 8, 8))


@pytest.fixture(scope="module")
def digits():
    from hwsim.models import zoo

    return zoo.load_digits_split()


@pytest.fixture(scope="module")
def zoo_models():
    from hwsim.models import zoo

    return {name: zoo.load(name) for name in zoo.list_models()}


# ----------------------------------------------------------------------------------------------- graph
def test_forward_float_matches_naive_loops(toy):
    model, x = toy
    acts = model.forward_float(x[:3], return_all=True)
    for layer in model.layers:
        if layer.kind == "conv2d":
            want = naive_conv(acts[layer.inputs[0]], layer.weight, layer.bias, layer.stride, layer.padding,
                              layer.dilation, layer.groups)
            np.testing.assert_allclose(acts[layer.name], want, rtol=1e-12, atol=1e-12)
    r3 = acts["r3"]
    np.testing.assert_allclose(acts["mp"], r3.reshape(3, 4, 4, 2, 4, 2).max(axis=(3, 5)))
    np.testing.assert_allclose(acts["add"], acts["pw"] + acts["r1"])
    r4 = acts["r4"]
    np.testing.assert_allclose(acts["ap"], r4.reshape(3, 8, 1, 2, 1, 2).mean(axis=(3, 5)))
    assert model.shapes()["fc"] == (5,)


def test_networkx_and_macs(toy):
    model, _ = toy
    g = model.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert g.number_of_nodes() == len(model.layers) + 1
    assert g.number_of_edges() == sum(len(la.inputs) for la in model.layers)
    assert list(nx.topological_sort(g))[0] == "input"
    assert model.macs()["dw"] == 4 * 1 * 9 * 8 * 8
    assert model.macs()["fc"] == 40


def test_save_load_roundtrip(toy, tmp_path):
    model, x = toy
    path = tmp_path / "toy.npz"
    save_model(model, path)
    back = load_model(path)
    assert back.names() == model.names()
    assert [la.inputs for la in back.layers] == [la.inputs for la in model.layers]
    # weights are stored as float32
    np.testing.assert_allclose(back.forward_float(x), model.forward_float(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("content", ["text", "npy", "npz", "dir", "missing"])
def test_load_non_model_raises_one_line(tmp_path, content):
    path = tmp_path / f"bad.{content}"
    if content == "text":
        path.write_text("hello\n")
    elif content == "npy":
        path = tmp_path / "bad.npy"
        np.save(path, np.arange(3))
    elif content == "npz":
        np.savez(path, a=np.arange(3))
    elif content == "dir":
        path.mkdir()
    with pytest.raises(HwsimError, match=rf"^model file '{re.escape(str(path))}' is not allowed: [^\n]+$"):
        load_model(path)


def test_model_validation_errors():
    w = np.zeros((4, 2, 3, 3))
    with pytest.raises(HwsimError, match=r"^layer 'c': input 'nope' is not allowed"):
        Model([Layer("c", "conv2d", ("nope",), w)], (2, 8, 8))
    with pytest.raises(HwsimError, match=r"^layer 'c': kind='pool' is not allowed"):
        Layer("c", "pool", ("input",))
    with pytest.raises(HwsimError, match=r"^layer 'c': input shape \(3, 8, 8\) is not allowed"):
        Model([Layer("c", "conv2d", ("input",), w)], (3, 8, 8))


# ----------------------------------------------------------------------------------------------- spec
@pytest.mark.parametrize("spec, fields", [
    ("int8", {"weight_format": "int8", "per_channel": False, "prune": None}),
    ("int4-pc", {"weight_format": "int4", "per_channel": True}),
    ("binary", {"weight_format": "binary"}),
    ("ternary", {"weight_format": "ternary"}),
    ("pow2", {"weight_format": "pow2"}),
    ("prune50+int8", {"prune": "magnitude", "sparsity": 0.5}),
    ("block4x4-50+int8", {"prune": "block", "block": (4, 4), "sparsity": 0.5}),
    ("block2x8-25+int4", {"prune": "block", "block": (2, 8), "sparsity": 0.25, "weight_format": "int4"}),
    ("2:4+int8", {"prune": "nm", "nm": (2, 4)}),
    ("svd-r8+int8", {"svd_rank": 8}),
    ("svd-e0.9+int8", {"svd_energy": 0.9}),
    ("svd-r4+2:4+ternary", {"svd_rank": 4, "nm": (2, 4), "weight_format": "ternary"}),
    ("int8", {"finetune": False}),
    ("binary+ft", {"weight_format": "binary", "finetune": True}),
    ("int2+ft", {"weight_format": "int2", "finetune": True, "prune": None}),
    ("2:4+int8+ft", {"prune": "nm", "nm": (2, 4), "weight_format": "int8", "finetune": True}),
    ("prune50+int4-pc+ft", {"sparsity": 0.5, "per_channel": True, "finetune": True}),
])
def test_parse_spec(spec, fields):
    sp = C.parse_compress_spec(spec)
    for k, v in fields.items():
        assert getattr(sp, k) == v
    assert C.parse_compress_spec(str(sp)) == sp
    assert str(sp) == spec


@pytest.mark.parametrize("spec", ["", "int9", "int8+", "prune50", "prune0+int8", "prune100+int8", "4:2+int8",
                                  "prune50+2:4+int8", "svd-e1.5+int8", "svd-r0+int8", "blockx4-50+int8",
                                  "prune50+binary", "svd-r8+binary", "int8-xx", 42, "ft", "int8+ft+ft", "ft+int8",
                                  "prune50+binary+ft"])
def test_parse_bad_spec(spec):
    with pytest.raises(HwsimError, match=rf"^compression spec {re.escape(repr(spec))} is not allowed"
                                         r"[^\n]*: expected \[svd-rR[^\n]*FORMAT[^\n]*int8, int4, int2, binary, "
                                         r"ternary, pow2[^\n]*$"):
        C.parse_compress_spec(spec)


# ----------------------------------------------------------------------------------------------- pruning
def test_n_m_keeps_the_largest_two_of_four():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 22))
    mask = C.prune_n_m(w, 2, 4)
    for r in range(w.shape[0]):
        for s in range(0, 20, 4):
            grp, keep = np.abs(w[r, s:s + 4]), mask[r, s:s + 4]
            assert keep.sum() == 2
            assert grp[keep].min() >= grp[~keep].max()
        assert mask[r, 20:].sum() == 1  # trailing group of 2 keeps ceil(2 * 2 / 4) = 1
        assert np.abs(w[r, 20:])[mask[r, 20:]][0] == np.abs(w[r, 20:]).max()


def test_magnitude_pruning():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((8, 3, 3, 3))
    mask = C.prune_magnitude(w, 0.5)
    assert mask.sum() == w.size - round(0.5 * w.size)
    assert np.abs(w[mask]).min() >= np.abs(w[~mask]).max()


def test_block_pruning_zeros_whole_blocks():
    rng = np.random.default_rng(2)
    mat = rng.standard_normal((18, 12))  # 5 x 3 blocks of 4x4, the last block row has 2 rows
    mask = C.prune_blocks(mat, 4, 4, 0.5)
    scores = {}
    for bi in range(5):
        for bj in range(3):
            blk = mask[4 * bi:4 * bi + 4, 4 * bj:4 * bj + 4]
            assert blk.all() or not blk.any()
            scores[(bi, bj)] = (np.mean(mat[4 * bi:4 * bi + 4, 4 * bj:4 * bj + 4] ** 2), bool(blk.all()))
    kept = [s for s, k in scores.values() if k]
    pruned = [s for s, k in scores.values() if not k]
    assert len(pruned) == round(0.5 * 15)
    assert min(kept) >= max(pruned)


@pytest.mark.parametrize("spec", ["prune50+int8", "2:4+int8", "block4x4-50+int8"])
def test_compressed_weights_respect_masks(zoo_models, digits, spec):
    x_tr = digits[0][:256]
    cm = C.compress(zoo_models["digits-cnn"], spec, x_tr)
    sp = cm.spec
    for q in cm.compute_layers():
        mask = cm.masks[q.name]
        assert not np.any(q.weight[~mask]), q.name  # pruned weights stay zero after quantization
        src = zoo_models["digits-cnn"].layer(q.name).weight
        mat = src.reshape(src.shape[0], -1)
        if sp.prune == "nm":
            np.testing.assert_array_equal(mask.reshape(mat.shape), C.prune_n_m(mat, 2, 4))
        elif sp.prune == "block":
            np.testing.assert_array_equal(mask.reshape(mat.shape).T, C.prune_blocks(mat.T, 4, 4, 0.5))
        else:
            assert mask.sum() == src.size - round(0.5 * src.size)


# ----------------------------------------------------------------------------------------------- low rank
@pytest.mark.parametrize("rank", [1, 3, 8])
def test_svd_reconstruction_error(rank):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((12, 20))
    a, b, s = C.svd_factor(w, rank=rank)
    assert a.shape == (rank, 20) and b.shape == (12, rank)
    s_ref = np.linalg.svd(w, compute_uv=False)
    err = np.sum((w - b @ a) ** 2)
    assert err == pytest.approx(np.sum(s_ref[rank:] ** 2), rel=1e-9)


def test_svd_energy_rank():
    s = np.array([4.0, 2.0, 1.0, 1.0])  # energies 16, 4, 1, 1 of 22
    assert C.svd_rank_for_energy(s, 0.7) == 1
    assert C.svd_rank_for_energy(s, 0.9) == 2
    assert C.svd_rank_for_energy(s, 0.95) == 3
    assert C.svd_rank_for_energy(s, 1.0) == 4


def test_apply_svd_splits_layers(zoo_models, digits):
    mlp = zoo_models["digits-mlp"]
    fm = C.apply_svd(mlp, C.parse_compress_spec("svd-r8+int8"))
    # fc1 (64x64) and fc2 (32x64) shrink at rank 8; fc3 (10x32) would grow and stays whole
    assert fm.names() == ["flatten", "fc1_lr", "fc1", "relu1", "fc2_lr", "fc2", "relu2", "fc3"]
    assert fm.layer("fc1_lr").weight.shape == (8, 64) and fm.layer("fc1").weight.shape == (64, 8)
    prod = fm.layer("fc2").weight @ fm.layer("fc2_lr").weight
    s = np.linalg.svd(mlp.layer("fc2").weight, compute_uv=False)
    assert np.sum((prod - mlp.layer("fc2").weight) ** 2) == pytest.approx(np.sum(s[8:] ** 2), rel=1e-6)
    cnn = C.apply_svd(zoo_models["digits-cnn"], C.parse_compress_spec("svd-r4+int8"))
    assert cnn.layer("conv2_lr").weight.shape == (4, 8, 3, 3) and cnn.layer("conv2").weight.shape == (16, 4, 1, 1)
    full = C.apply_svd(zoo_models["digits-cnn"], C.parse_compress_spec("svd-e1+int8"))
    np.testing.assert_allclose(full.forward_float(digits[2][:20]), zoo_models["digits-cnn"].forward_float(
        digits[2][:20]), atol=1e-9)


# ----------------------------------------------------------------------------------------------- weights
def _is_pow2_value(v):
    m = np.abs(v)
    return (m == 0) | ((m >= 1) & (m <= 64) & ((m & (m - 1)) == 0))


@pytest.mark.parametrize("per_channel", [False, True])
def test_quantize_weights_formats(per_channel):
    rng = np.random.default_rng(4)
    w = rng.standard_normal((6, 3, 3, 3)) * np.array([1, 0.1, 0.01, 2, 5, 0.5])[:, None, None, None]
    for fmt, (lo, hi) in {"int8": (-128, 127), "int4": (-8, 7), "int2": (-2, 1)}.items():
        q = C.quantize_weights(w, fmt, per_channel)
        assert q.values.dtype == np.int64 and q.values.min() >= lo and q.values.max() <= hi
        assert np.all(q.gain == 1)
        if not per_channel:
            assert len(set(q.exp.tolist())) == 1
        # the chosen power-of-two scale is at least as good as the unclipped one, computed independently
        units = w.reshape(6, -1) if per_channel else w.reshape(1, -1)
        e0 = np.ceil(np.log2(np.abs(units).max(axis=1) / hi))
        plain = np.clip(np.rint(units / np.exp2(e0)[:, None]), lo, hi) * np.exp2(e0)[:, None]
        deq = (q.values * np.exp2(q.exp)[:, None, None, None]).reshape(units.shape)
        assert np.all(((deq - units) ** 2).sum(axis=1) <= ((plain - units) ** 2).sum(axis=1) + 1e-15)
    q = C.quantize_weights(w, "pow2", per_channel)
    assert np.all(_is_pow2_value(q.values))
    q = C.quantize_weights(w, "ternary", per_channel)
    assert set(np.unique(q.values)) <= {-1, 0, 1}
    units = w.reshape(6, -1) if per_channel else w.reshape(1, -1)
    delta = 0.7 * np.abs(units).mean(axis=1, keepdims=True)
    want = (np.sign(units) * (np.abs(units) > delta)).reshape(w.shape)
    np.testing.assert_array_equal(q.values, want)
    q = C.quantize_weights(w, "binary")
    np.testing.assert_array_equal(q.values, np.where(w >= 0, 1, -1))


def test_int8_per_channel_error_bound():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 10)) * np.array([[1.0], [0.01], [3.0], [0.2]])
    q = C.quantize_weights(w, "int8", per_channel=True)
    deq = q.values * np.exp2(q.exp)[:, None]
    # every channel within one step of its own power-of-two scale, which is below max|w| / 63
    assert np.all(np.abs(deq - w) <= np.exp2(q.exp)[:, None])
    assert np.all(np.exp2(q.exp) <= np.abs(w).max(axis=1) / 63)


def test_ternary_gain_absorbs_alpha():
    rng = np.random.default_rng(6)
    w = rng.standard_normal((5, 16))
    q = C.quantize_weights(w, "ternary", per_channel=True, absorb_gain=True)
    assert len(set(q.exp.tolist())) == 1
    keep = q.values != 0
    alpha = np.array([np.abs(w[o][keep[o]]).mean() for o in range(5)])
    np.testing.assert_allclose(q.gain, np.exp2(q.exp) / alpha)


# ----------------------------------------------------------------------------------------------- pipelines
@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn"])
def test_int8_integer_equals_fakequant_and_accuracy(zoo_models, digits, name):
    x_tr, _, x_te, y_te = digits
    model = zoo_models[name]
    cm = C.compress(model, "int8", x_tr)
    yi = cm.forward_int(x_te)
    yf = cm.forward_fakequant(x_te)
    assert yi.dtype == np.int64
    lo, hi = -128, 127
    assert yi.min() >= lo and yi.max() <= hi
    # every value is dyadic and small, so the two agree exactly (within rounding, here: none)
    np.testing.assert_allclose(yi * 2.0 ** cm.output_exp, yf, rtol=0, atol=2.0 ** cm.output_exp / 2)
    assert np.array_equal(yi * 2.0 ** cm.output_exp, yf)
    acc_float = model.accuracy(x_te, y_te)
    acc_int = float(np.mean(yi.argmax(axis=1) == y_te))
    assert abs(acc_int - acc_float) <= 0.01
    # integer logits approximate the float logits
    lf = model.forward_float(x_te)
    assert np.abs(yi * 2.0 ** cm.output_exp - lf).max() < 0.1 * np.abs(lf).max()


def test_toy_every_layer_kind_int_equals_fakequant(toy):
    model, x = toy
    for spec in ["int8", "int4-pc", "pow2", "ternary-pc", "2:4+int8", "svd-r2+int8"]:
        cm = C.compress(model, spec, x)
        yi = cm.forward_int(x)
        assert np.array_equal(yi * 2.0 ** cm.output_exp, cm.forward_fakequant(x)), spec
    cm = C.compress(model, "int8", x)
    lf = model.forward_float(x)
    assert np.abs(cm.forward_int(x) * 2.0 ** cm.output_exp - lf).max() < 0.1 * np.abs(lf).max()
    assert cm.layer("dw").groups == 4 and len(cm.layer("dw").gemm_ops()) == 4
    assert [q.kind for q in cm.layers].count("relu") == 0  # all ReLUs fused (conv, conv, add, conv)
    assert cm.layer("add").relu


def test_conv_lowering_matches_mac_array_conv2d(toy):
    model, x = toy
    cm = C.compress(model, "int8", x)
    acts = cm.forward_int(x[:4], return_all=True)
    wide = C.Arith(act_bits=32, acc_bits=48)
    for q in cm.compute_layers():
        xin = acts[q.inputs[0]]
        if q.kind == "conv2d":
            acc = mac_array.conv2d(xin, q.weight, wide.replace(weight_format=q.weight_format), q.stride,
                                   q.padding, q.dilation, q.groups)
            acc = acc + q.bias[None, :, None, None]
        else:
            acc = mac_array.gemm(xin, q.weight.T, wide.replace(weight_format=q.weight_format)) + q.bias
        want = np.stack([mac_array.requantize(acc[:, o], q.cfg(), int(q.shift[o]), q.relu)
                         for o in range(q.weight.shape[0])], axis=1)
        np.testing.assert_array_equal(acts[q.name], want)


def test_gemm_fn_substitution_and_ops(zoo_models, digits):
    x_tr, _, x_te, _ = digits
    cm = C.compress(zoo_models["digits-cnn"], "int4-pc", x_tr[:200])
    calls = []

    def float_gemm(a, w, cfg, shift, relu, bias=None):
        """An independent executor: exact float64 products, then the documented requantization."""
        calls.append((a.shape, w.shape, cfg.weight_format, cfg.act_bits, shift, relu))
        acc = a.astype(np.float64) @ w.astype(np.float64)
        if bias is not None:
            acc = acc + bias
        acc = acc.astype(np.int64)
        if relu:
            acc = np.maximum(acc, 0)
        if shift:
            acc = (acc + (1 << (shift - 1))) >> shift
        return np.clip(acc, -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1)

    x = x_te[:7]
    ref = cm.forward_int(x)
    np.testing.assert_array_equal(cm.forward_int(x, gemm_fn=float_gemm), ref)
    ops = cm.gemm_ops(batch=7)
    assert [(op.m, op.k) for op in ops] == [(a[0], a[1]) for a, _, _, _, _, _ in calls]
    assert [(op.k, op.n) for op in ops] == [w for _, w, _, _, _, _ in calls]
    assert [op.shift for op in ops] == [c[4] for c in calls]
    assert sum(op.n for op in ops if op.layer == "conv2") == 16
    # per-channel shifts split a layer into one GEMM per distinct shift
    conv2 = cm.layer("conv2")
    assert len(conv2.gemm_ops()) == len(np.unique(conv2.shift))
    # a real MacArrayConfig works as the base configuration
    np.testing.assert_array_equal(cm.forward_int(x, cfg=MacArrayConfig()), ref)


def test_bias_is_one_more_saturating_accumulation():
    cfg = C.Arith(acc_bits=8, overflow="saturate", act_bits=8)
    a = np.array([[100, 100]])
    w = np.array([[1], [0]])
    # accumulate gives 100; +50 saturates at 127 before the shift
    assert C.reference_gemm(a, w, cfg, 0, False, bias=np.array([50]))[0, 0] == 127
    wrap = cfg.replace(overflow="wrap")
    assert C.reference_gemm(a, w, wrap, 0, False, bias=np.array([50]))[0, 0] == -106  # 150 - 256
    np.testing.assert_array_equal(C.reference_gemm(a, w, cfg, 1, True), mac_array.gemm(a, w, cfg, 1, True))


def test_binary_pipeline(zoo_models, digits):
    x_tr, _, x_te, y_te = digits
    for name, min_acc in [("digits-mlp", 0.75), ("digits-cnn", 0.35)]:
        cm = C.compress(zoo_models[name], "binary", x_tr)
        comp = cm.compute_layers()
        assert comp[0].weight_format == "int8" and comp[-1].weight_format == "int8"
        for q in comp[1:-1]:
            assert q.weight_format == "binary" and q.act_bits == 1
            assert set(np.unique(q.weight)) <= {-1, 1}
            assert q.cfg(MacArrayConfig()).act_bits == 1
        acts = cm.forward_int(x_te, return_all=True)
        for q in cm.layers:
            if q.kind == "sign" or q.weight_format == "binary":
                assert set(np.unique(acts[q.name])) <= {-1, 1}
        yi = acts[cm.output]
        assert np.array_equal(yi * 2.0 ** cm.output_exp, cm.forward_fakequant(x_te))
        assert np.mean(yi.argmax(axis=1) == y_te) >= min_acc


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn"])
@pytest.mark.parametrize("spec, min_acc", [
    ("int4", 0.96), ("int2", 0.95), ("ternary", 0.95), ("pow2", 0.96), ("prune50+int8", 0.96),
    ("2:4+int8", 0.95), ("block4x4-50+int8", 0.94), ("svd-e0.9+int8", 0.95),
])
def test_compressed_accuracy(zoo_models, digits, name, spec, min_acc):
    x_tr, _, x_te, y_te = digits
    cm = C.compress(zoo_models[name], spec, x_tr)
    fmt = cm.spec.weight_format
    for q in cm.compute_layers()[1:-1]:
        assert q.weight_format == fmt
        if fmt == "pow2":
            assert np.all(_is_pow2_value(q.weight))
        if fmt == "ternary":
            assert set(np.unique(q.weight)) <= {-1, 0, 1}
    assert cm.accuracy(x_te, y_te) >= min_acc


def test_compress_errors(toy, zoo_models, digits):
    model, x = toy
    upto = model.names().index("r3") + 1
    bad = Model(model.layers[:upto] + [Layer("ap3", "avgpool", ("r3",), kernel=3, stride=1)], model.input_shape)
    # a 3x3 window (9 pixels, not a power of two) divides each window sum by its count, as a padded pool does
    ap3 = C.compress(bad, "int8", x).layer("ap3")
    assert (ap3.meta["count_pads"], ap3.shift.tolist()) == ((0, 0, 0, 0), [0])
    with pytest.raises(HwsimError, match=r"^act_bits=1 is not allowed"):
        C.compress(model, "int8", x, act_bits=1)
    with pytest.raises(HwsimError, match=r"^layer 'add': add of a \+-1 \(binarized\) tensor is not supported$"):
        C.compress(model, "binary", x)
    mlp = zoo_models["digits-mlp"]
    with pytest.raises(HwsimError, match=r"^compression spec 'int3' is not allowed"):
        C.compress(mlp, "int3", digits[0])
