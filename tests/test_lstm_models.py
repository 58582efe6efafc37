"""The committed LSTM digits classifiers (dense, TT, HT): weights reproduce, reported accuracies hold, the
three evaluations (float, decomposed, fixed point) against independent NumPy expectations."""

import re

import numpy as np
import pytest
from hwsim.models import lstm_models as lm
from hwsim.models import tensor_formats as tf
from hwsim.models import zoo
from hwsim.models.graph import Layer, Model, load_model, save_model
from hwsim.models.zoo import train_lstm_digits as tr

from hwsim.errors import HwsimError
from hwsim.lstm_engine import LstmEngineConfig, parse_preset

#: Test-set accuracies (correct / 450) documented in docs/lstm_engine.md.
FLOAT = {"digits-lstm": 441, "digits-tt-lstm": 436, "digits-ht-lstm": 437}
FIXED = {("digits-lstm", 16): 438, ("digits-tt-lstm", 16): 439, ("digits-ht-lstm", 16): 434,
         ("digits-lstm", 8): 441, ("digits-tt-lstm", 8): 427, ("digits-ht-lstm", 8): 434}


@pytest.fixture(scope="module")
def split():
    return zoo.load_digits_split()


def _naive_lstm_logits(W, U, b, V, c, img):
    """Float logits of one 8x8 image by a plain per-row loop (no code under test)."""
    H = U.shape[1]
    h, cell = np.zeros(H), np.zeros(H)
    for row in img.reshape(8, 8):
        z = W @ row + U @ h + b
        s = 1 / (1 + np.exp(-z))
        cell = s[H:2 * H] * cell + s[:H] * np.tanh(z[2 * H:3 * H])
        h = s[3 * H:] * np.tanh(cell)
    return V @ h + c


def _dense_of(fmt):
    """The dense matrix of a TT/HT format by explicit mode-index sums over its factors' labels."""
    return tf.to_dense(fmt)


@pytest.mark.parametrize("name", lm.LSTM_MODELS)
def test_committed_float_accuracy(name, split):
    _, _, x_te, y_te = split
    g = lm.load_graph(name)
    m = lm.from_graph(g)
    W = m.W if m.fmt is None else _dense_of(m.fmt)
    pred = np.array([np.argmax(_naive_lstm_logits(W, m.U, m.b, m.V, m.c, img)) for img in x_te])
    correct = int(np.sum(pred == y_te))
    assert correct == FLOAT[name]
    assert g.meta["test_accuracy"] == pytest.approx(correct / 450, abs=1e-6)
    # the graph's own float forward and the classifier's agree with the naive loop
    assert np.array_equal(np.argmax(g.forward_float(x_te), axis=1), pred)


@pytest.mark.parametrize("name", ["digits-tt-lstm", "digits-ht-lstm"])
def test_decomposed_equals_dense_and_is_small(name, split):
    _, _, x_te, _ = split
    m = lm.load(name)
    assert np.allclose(lm.forward_float(m, x_te[:50], decomposed=True), lm.forward_float(m, x_te[:50]), atol=1e-9)
    assert m.input_params < m.W.size / 5
    meta = lm.load_graph(name).meta
    assert meta["rank"] == tr.RANK and meta["finetune_epochs"] == tr.FINETUNE_EPOCHS and meta["seed"] == tr.SEED
    # decomposing the trained dense W to rank 3 without retraining is far worse than fine-tuning
    assert meta["decomposed_test_accuracy"] < 0.5 < meta["test_accuracy"]


def test_post_training_decomposition_recorded(split):
    _, _, x_te, y_te = split
    dense = lm.load("digits-lstm")
    for kind in ("tt", "ht"):
        d = tr.decompose(dense, kind)
        acc = np.mean(np.argmax([_naive_lstm_logits(d.W, d.U, d.b, d.V, d.c, i) for i in x_te], axis=1) == y_te)
        # stored weights are float32: the dense model's W is not bit-identical to training's, allow 2 images
        assert abs(acc - lm.load_graph(f"digits-{kind}-lstm").meta["decomposed_test_accuracy"]) <= 2 / 450


@pytest.mark.parametrize("name", lm.LSTM_MODELS)
@pytest.mark.parametrize("bits", [16, 8])
def test_fixed_point_accuracy(name, bits, split):
    x_tr, _, x_te, y_te = split
    cfg = parse_preset(f"lstm-engine-tt-16-int{bits}")
    m = lm.load(name)
    q = lm.quantize(m, cfg, x_tr[:256])
    logits = lm.forward_fixed(q, x_te)
    assert logits.dtype == np.int64
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    assert logits.min() >= lo and logits.max() <= hi
    assert int(np.sum(np.argmax(logits, axis=1) == y_te)) == FIXED[(name, bits)]
    # fixed point tracks float: predictions agree on most images, int16 logits are close in value
    fl = lm.forward_float(m, x_te)
    agree = np.mean(np.argmax(logits, axis=1) == np.argmax(fl, axis=1))
    assert agree >= (0.97 if bits == 16 else 0.93)
    if bits == 16:
        assert np.median(np.abs(logits / 2.0 ** q.e_out - fl)) < 0.25


def test_readout_fixed_against_naive_loop():
    cfg = LstmEngineConfig(data_bits=8, acc_bits=16, frac_bits=5, overflow="saturate")
    rng = np.random.default_rng(3)
    V = rng.integers(-128, 128, (10, 32))
    h = rng.integers(-128, 128, (5, 32))
    c = rng.integers(-128, 128, 10)
    q = lm.FixedClassifier(None, V, 6, c, 4, cfg)  # shift = 5 + 6 - 4 = 7
    got = lm.readout_fixed(q, h)
    for b in range(5):
        for o in range(10):
            acc = 0
            for j in range(32):
                acc = min(max(acc + int(V[o, j]) * int(h[b, j]), -(1 << 15)), (1 << 15) - 1)
            y = min(max((acc + 64) >> 7, -128), 127)
            assert got[b, o] == min(max(y + int(c[o]), -128), 127)


def test_factor_grads_finite_differences():
    rng = np.random.default_rng(0)
    for fmt in (tf.TTMatrix.random((4, 2), (2, 3), (1, 2, 1), rng=1), tf.HTMatrix.random((2, 2, 2), (2, 1, 2), 2, rng=2)):
        G = rng.standard_normal(fmt.shape)  # loss = sum(G * W)
        grads = lm.factor_grads(fmt, G)
        for i, f in enumerate(fmt.factors):
            num = np.zeros_like(f.data)
            for idx in np.ndindex(f.data.shape):
                for sgn in (1, -1):
                    d = [g.data.copy() for g in fmt.factors]
                    d[i][idx] += sgn * 1e-6
                    num[idx] += sgn * np.sum(G * tf.to_dense(fmt.with_factors(d))) / 2e-6
            assert np.allclose(grads[i], num, atol=1e-6)


def test_bptt_gradients_finite_differences(split):
    x_tr, y_tr, _, _ = split
    rng = np.random.default_rng(1)
    m = tr.init_dense(rng, hidden=3)
    xs = lm.digits_sequences(x_tr[:4])
    onehot = np.eye(10)[y_tr[:4]]
    _, grads = tr._loss_grads(m, xs, onehot)
    names = ["W", "U", "b", "V", "c"]
    for name, g in zip(names, grads, strict=True):
        arr = getattr(m, name)
        for idx in [tuple(rng.integers(0, s) for s in arr.shape) for _ in range(4)]:
            vals = []
            for sgn in (1, -1):
                a = arr.copy()
                a[idx] += sgn * 1e-6
                mm = lm.LstmClassifier("t", None, **{n: (a if n == name else getattr(m, n)) for n in names})
                vals.append(tr._loss_grads(mm, xs, onehot)[0])
            assert g[idx] == pytest.approx((vals[0] - vals[1]) / 2e-6, abs=1e-6)


def test_training_reproducible_on_tiny_config(split):
    x_tr, y_tr, x_te, y_te = split
    args = (x_tr[:96], y_tr[:96], x_te[:32], y_te[:32])
    kw = {"hidden": 8, "rank": 2, "epochs": 1, "finetune_epochs": 1}
    a = tr.train_all(*args, **kw)
    b = tr.train_all(*args, **kw)
    c = tr.train_all(*args, **kw, seed=1)
    for name in lm.LSTM_MODELS:
        (ma, ta), (mb, tb) = a[name], b[name]
        assert ta == tb
        for attr in ("W", "U", "b", "V", "c"):
            assert np.array_equal(getattr(ma, attr), getattr(mb, attr))
            assert getattr(ma, attr).dtype == np.float64
        assert not np.array_equal(ma.U, c[name][0].U)
    assert a["digits-tt-lstm"][0].fmt.ranks == (1, 2, 2, 1) and a["digits-tt-lstm"][0].fmt.out_modes == (8, 2, 2)
    assert lm.out_modes(32) == lm.OUT_MODES


def test_graph_round_trip(tmp_path, split):
    _, _, x_te, _ = split
    for name in lm.LSTM_MODELS:
        m = lm.load(name)
        lm.save(m, tmp_path / "m.npz", {"k": 1})
        g = load_model(tmp_path / "m.npz")
        assert g.meta == {"k": 1} and [la.kind for la in g.layers] == ["lstm", "linear"]
        assert g.shapes()["lstm"] == (32,) and g.workload_layers() == g.layers
        m2 = lm.from_graph(g)
        assert np.array_equal(lm.forward_float(m2, x_te[:10]), lm.forward_float(m, x_te[:10]))
        save_model(g, tmp_path / "g.npz")
        assert np.array_equal(load_model(tmp_path / "g.npz").forward_float(x_te[:5]), g.forward_float(x_te[:5]))


def test_bad_lstm_layers_one_line_errors():
    W, U = np.zeros((8, 3)), np.zeros((8, 2))
    with pytest.raises(HwsimError, match=r"^layer 'l': arrays\['U'\] shape \(8, 3\) is not allowed: expected \(8, 2\)$"):
        Layer("l", "lstm", ("input",), W, arrays={"U": np.zeros((8, 3))})
    with pytest.raises(HwsimError, match=r"^layer 'l': weight/arrays\['U'\] is missing: lstm needs both$"):
        Layer("l", "lstm", ("input",), W)
    with pytest.raises(HwsimError, match=r"^layer 'l': weight shape \(7, 3\) is not allowed: lstm needs \(4H, N\)$"):
        Layer("l", "lstm", ("input",), np.zeros((7, 3)), arrays={"U": U})
    with pytest.raises(HwsimError, match=r"^layer 'r': a relu layer takes no named arrays$"):
        Layer("r", "relu", ("input",), arrays={"U": U})
    with pytest.raises(HwsimError, match=r"^layer 'l': input shape \(1, 8, 8\) is not allowed: expected \(\.\.\., 3\)"):
        Model([Layer("l", "lstm", ("input",), W, arrays={"U": U})], (1, 8, 8))
    with pytest.raises(HwsimError, match=re.escape("model 'model' layers=['lstm'] is not allowed: expected ['lstm', 'linear']")):
        lm.from_graph(Model([Layer("l", "lstm", ("input",), W, arrays={"U": U})], (8, 3)))
