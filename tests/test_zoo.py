"""Tests of the model zoo: committed data split, committed weights, documented accuracies, retraining."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hwsim.models import zoo
from hwsim.models.compress import compress
from hwsim.models.errors import HwsimError
from hwsim.models.graph import Model


@pytest.fixture(scope="module")
def split():
    return zoo.load_digits_split()


def test_list_and_load():
    assert zoo.list_models() == ["digits-mlp", "digits-cnn"]
    for name in zoo.list_models():
        m = zoo.load(name)
        assert isinstance(m, Model) and m.name == name and m.input_shape == (1, 8, 8)
        assert os.path.getsize(zoo.path_of(name)) < 64 * 1024
    assert sum(zoo.load("digits-cnn").macs().values()) == 8 * 64 * 9 + 16 * 16 * 72 + 256 * 10
    assert sum(zoo.load("digits-mlp").macs().values()) == 64 * 64 + 64 * 32 + 32 * 10


@pytest.mark.parametrize("name", ["resnet", "", "digits", "DIGITS-MLP"])
def test_unknown_model(name):
    with pytest.raises(HwsimError, match=rf"^model name '{name}' is not allowed: expected one of digits-mlp, "
                                         r"digits-cnn$"):
        zoo.load(name)


def test_digits_split_shapes(split):
    x_tr, y_tr, x_te, y_te = split
    assert x_tr.shape == (1347, 1, 8, 8) and x_te.shape == (450, 1, 8, 8)
    assert y_tr.shape == (1347,) and y_te.shape == (450,)
    assert x_tr.dtype == np.float64 and y_tr.dtype == np.int64
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0
    assert np.all((x_te * 16) == np.round(x_te * 16))
    # stratified: every class has 25 % of its samples in the test split (to within one sample)
    counts_te = np.bincount(y_te, minlength=10)
    counts_all = counts_te + np.bincount(y_tr, minlength=10)
    assert np.all(np.abs(counts_te - 0.25 * counts_all) <= 1)


def test_committed_split_matches_sklearn(split):
    pytest.importorskip("sklearn")
    from hwsim.models.zoo.train_digits import digits_split

    x_tr, y_tr, x_te, y_te = digits_split()
    got = split
    np.testing.assert_array_equal(got[0][:, 0] * 16, x_tr)
    np.testing.assert_array_equal(got[1], y_tr)
    np.testing.assert_array_equal(got[2][:, 0] * 16, x_te)
    np.testing.assert_array_equal(got[3], y_te)


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn"])
def test_committed_accuracy_is_documented(split, name):
    _, _, x_te, y_te = split
    m = zoo.load(name)
    acc = m.accuracy(x_te, y_te)
    assert acc == pytest.approx(zoo.DOCUMENTED_ACCURACY[name], abs=1e-12)
    assert acc == pytest.approx(m.meta["test_accuracy"], abs=1e-6)
    assert acc >= 0.95


@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn"])
def test_int8_within_one_point(split, name):
    x_tr, _, x_te, y_te = split
    m = zoo.load(name)
    cm = compress(m, "int8", x_tr)
    assert abs(cm.accuracy(x_te, y_te) - m.accuracy(x_te, y_te)) <= 0.01


@pytest.mark.slow
def test_training_reproduces_committed_weights(split):
    pytest.importorskip("sklearn")
    from hwsim.models.zoo import train_digits

    x_tr, y_tr, x_te, y_te = split
    for name in zoo.list_models():
        committed = zoo.load(name)
        fresh = train_digits.train(name, x_tr, y_tr)
        assert fresh.names() == committed.names()
        for a, b in zip(fresh.compute_layers(), committed.compute_layers(), strict=True):
            np.testing.assert_allclose(a.weight, b.weight, rtol=0, atol=1e-6)
            np.testing.assert_allclose(a.bias, b.bias, rtol=0, atol=1e-6)
        assert fresh.accuracy(x_te, y_te) == pytest.approx(zoo.DOCUMENTED_ACCURACY[name], abs=1e-12)
