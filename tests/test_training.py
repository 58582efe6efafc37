"""Tests of compression-aware fine-tuning (hwsim.models.training) and the committed ``+ft`` zoo variants.

Accuracy targets are the issue's, measured through ``hwsim.simulate.simulate`` on the committed variants;
gradients and quantizers are checked against hand-computed values. Only one test fine-tunes (the
bit-for-bit reproduction of a committed variant).
"""

from __future__ import annotations

import numpy as np
import pytest
from hwsim.models import zoo
from hwsim.models.compress import compress
from hwsim.models.errors import HwsimError
from hwsim.models.graph import Layer, Model, load_model
from hwsim.models.training import (
    fake_quant_act,
    fake_quant_weight,
    finetune,
    gradients,
    prune_schedule,
    sign_ste_grad,
)

from hwsim.simulate import simulate

FLOAT = zoo.DOCUMENTED_ACCURACY["digits-cnn"]  # 97.78 %


@pytest.fixture(scope="module")
def split():
    return zoo.load_digits_split()


# ------------------------------------------------------------------------------------ accuracy targets
@pytest.mark.parametrize("spec, target", [
    ("int4+ft", FLOAT - 0.01),
    ("pow2+ft", FLOAT - 0.01),
    ("int2+ft", 0.95),
    ("ternary+ft", 0.95),
    ("binary+ft", 0.90),
    ("2:4+int8+ft", FLOAT - 0.01),
])
def test_finetuned_targets_through_simulator(spec, target):
    rep = simulate("digits-cnn", "mac-array-8x8-ws", spec, progress=False)
    assert rep.accuracy_float == pytest.approx(FLOAT)
    assert rep.simulated_equals_reference
    assert rep.accuracy_simulated >= target - 1e-9, (spec, rep.accuracy_simulated)


def test_binary_ft_beats_post_training_and_keeps_ends_int8(split):
    x_tr, _, x_te, y_te = split
    model = zoo.load("digits-cnn")
    cm = compress(model, "binary+ft", x_tr[:512])
    assert [la.weight_format for la in cm.compute_layers()] == ["int8", "binary", "int8"]
    assert str(cm.spec) == "binary+ft" and cm.source is model
    assert cm.accuracy(x_te, y_te) >= 0.90
    assert compress(model, "binary", x_tr[:512]).accuracy(x_te, y_te) < 0.5  # the 43.56 %


def test_nm_variant_keeps_the_pattern(split):
    """Every group of 4 consecutive weights along K of every GEMM weight matrix has at most 2 non-zeros."""
    cm = compress(zoo.load("digits-cnn"), "2:4+int8+ft", split[0][:512])
    for la in cm.compute_layers():
        for mat in la.weight_matrices():  # (K, N)
            k, n = mat.shape
            for col in range(n):
                for start in range(0, k, 4):
                    nonzero = sum(1 for i in range(start, min(start + 4, k)) if mat[i, col] != 0)
                    assert nonzero <= 2, (la.name, col, start)


def test_gradual_pruning_variant_reaches_its_sparsity():
    ft = load_model(zoo.finetuned_path("digits-cnn", "prune50+int8+ft"))
    for la in ft.compute_layers():
        assert np.mean(la.weight == 0) >= 0.5, la.name


def test_every_variant_is_used_by_compress(split):
    """A committed variant matches its source: compress(+ft) never needs training data for them."""
    from hwsim.models.zoo.finetune_digits import VARIANTS

    model = zoo.load("digits-cnn")
    for spec in VARIANTS:
        assert zoo.finetuned_path("digits-cnn", f"{spec}+ft") is not None, spec
        compress(model, f"{spec}+ft", split[0][:64])  # no train_data: raises if it would retrain


def test_reproduces_committed_variant_bit_for_bit(split):
    """The training script's recipe rebuilds a committed variant exactly (same machine, single-thread BLAS)."""
    x_tr, y_tr, _, _ = split
    ft = finetune(zoo.load("digits-cnn"), "prune50+int8", x_tr, y_tr)
    committed = load_model(zoo.finetuned_path("digits-cnn", "prune50+int8+ft"))
    assert ft.meta["finetune"] == committed.meta["finetune"]
    for a, b in zip(ft.layers, committed.layers, strict=True):
        for t, u in ((a.weight, b.weight), (a.bias, b.bias)):
            assert (t is None) == (u is None)
            if t is not None:
                np.testing.assert_array_equal(t.astype(np.float32), u.astype(np.float32))


# ------------------------------------------------------------------------------------ quantizers and the STE
def _tiny_linear(w, b=(0.0, 0.0)):
    layers = [Layer("flatten", "flatten", ("input",)),
              Layer("fc", "linear", ("flatten",), np.array(w, dtype=np.float64), np.array(b, dtype=np.float64))]
    return Model(layers, (1, 1, 2), "tiny")


def test_ste_gradient_of_int2_linear_by_hand():
    # int2 per tensor, codes in [-2, 1]: the exponent search tries 2**-1, 2**-2, 2**-3; by hand the squared
    # errors are 0.0925, 0.0175 and 0.039375, so the scale is 1/4 and the codes [[1, 0], [0, 1]].
    w = [[0.3, -0.1], [0.05, 0.2]]
    wq = np.array([[0.25, 0.0], [0.0, 0.25]])
    np.testing.assert_array_equal(fake_quant_weight(np.array(w), "int2"), wq)
    x = np.array([[[[1.0, 0.5]]]])  # on the 8-bit grid (step 2**-6)
    model = _tiny_linear(w, b=(0.0, 0.125))
    loss, grads = gradients(model, "int2", x, [0], keep_ends=False)
    logits = np.array([1.0 * 0.25, 0.5 * 0.25 + 0.125])  # [0.25, 0.25]: on the 8-bit grid
    p = np.exp(logits) / np.exp(logits).sum()  # [0.5, 0.5]
    assert loss == pytest.approx(-np.log(p[0]))
    dlogits = p - np.array([1.0, 0.0])  # [-0.5, 0.5]
    # STE: the gradient reaching the float weights is the one of the quantized weights, unchanged.
    np.testing.assert_allclose(grads["fc"][0], np.outer(dlogits, [1.0, 0.5]))
    np.testing.assert_allclose(grads["fc"][1], dlogits)


def test_binary_and_ternary_weight_scales_by_hand():
    w = np.array([[0.5, -0.25, 0.125, -0.125], [1.0, 1.0, -1.0, 0.0]])
    # binary: alpha per output channel = mean |w|: 0.25 and 0.75; sign(0) = +1
    np.testing.assert_allclose(fake_quant_weight(w, "binary"),
                               [[0.25, -0.25, 0.25, -0.25], [0.75, 0.75, -0.75, 0.75]])
    # ternary per tensor: delta = 0.7 * mean|w| = 0.7 * 0.5 = 0.35 keeps 0.5 and the three 1.0s; alpha = 0.875
    np.testing.assert_allclose(fake_quant_weight(w, "ternary"),
                               [[0.875, 0, 0, 0], [0.875, 0.875, -0.875, 0]])


def test_sign_ste_and_activation_quantizer_by_hand():
    z = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(sign_ste_grad(z, np.full(7, 3.0)), [0, 3, 3, 3, 3, 3, 0])
    # max 1.0 with 8 bits: step 2**ceil(log2(1/127)) = 2**-6; 0.3 * 64 = 19.2 -> 19; ties round up
    np.testing.assert_array_equal(fake_quant_act(np.array([0.3, -1.0, 1.5 / 64]), 8), [19 / 64, -1.0, 2 / 64])


def test_prune_schedule_by_hand():
    # 15 epochs: the ramp is round(2 * 15 / 3) = 10 epochs; s = 0.5 * (1 - (1 - (e + 1) / 10)**3)
    assert prune_schedule(0, 15, 0.5) == pytest.approx(0.5 * (1 - 0.9 ** 3))
    assert prune_schedule(4, 15, 0.5) == pytest.approx(0.5 * (1 - 0.5 ** 3))
    assert prune_schedule(9, 15, 0.5) == 0.5 and prune_schedule(14, 15, 0.5) == 0.5


# ------------------------------------------------------------------------------------ errors
def test_ft_without_variant_or_training_data(split):
    model = zoo.load("digits-cnn")
    model.layers[0].weight = model.layers[0].weight * 1.5  # no longer the committed source
    with pytest.raises(HwsimError, match=r"^compression spec 'int4\+ft' is not allowed without training data: "
                                         r"model 'digits-cnn' has no committed fine-tuned variant for it; "
                                         r"expected train_data=\(x, y\)$"):
        compress(model, "int4+ft", split[0][:64])


def test_finetune_rejects_non_chain_graph_and_bad_labels(split):
    layers = [Layer("flatten", "flatten", ("input",)),
              Layer("fc", "linear", ("flatten",), np.eye(2), None),
              Layer("sum", "add", ("fc", "flatten"))]
    model = Model(layers, (1, 1, 2), "residual")
    x = np.zeros((4, 1, 1, 2))
    with pytest.raises(HwsimError, match=r"^layer 'sum': fine-tuning is not allowed on this graph: expected a "
                                         r"chain \(each layer consuming the previous one\)$"):
        finetune(model, "int8", x, [0, 1, 0, 1])
    with pytest.raises(HwsimError, match=r"^y_train of shape \(3,\) is not allowed: expected 4 labels in \[0, 1\]$"):
        finetune(_tiny_linear(np.eye(2)), "int8", x, [0, 1, 0])


# ------------------------------------------------------------------------------------ the study
def test_compression_study_quick(tmp_path):
    from hwsim.families import find_study

    fam, run, _ = find_study("compression")
    assert fam.name == "mac-array"
    res = run(out_dir=tmp_path, quick=True)
    rows = {r.spec: r for r in res.rows}
    assert list(rows) == ["int8", "binary", "2:4+int8"]
    assert all(r.bit_exact for r in res.rows)
    assert rows["binary"].accuracy_finetuned >= 0.90 > rows["binary"].accuracy_post
    # weight bytes by hand: 72 + 1152 + 2560 weights; binary keeps conv1 and fc int8, conv2 at 1 bit
    assert rows["int8"].weight_bytes == 72 + 1152 + 2560
    assert rows["binary"].weight_bytes == 72 + 1152 // 8 + 2560
    assert rows["binary"].energy_pj < rows["int8"].energy_pj
    text = (tmp_path / "compression.md").read_text()
    assert text == res.format() + "\n" and "| `binary` | " in text
    assert res.as_dict()["rows"][1]["spec"] == "binary"
