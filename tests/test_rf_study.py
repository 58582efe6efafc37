"""tt-rfnn study pieces: training on digits, mapping onto meshes, error evaluation, the gain-normalized
baseline and the calibration's parts, intervals, and numbers independent of the BLAS thread count."""

import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hwsim.models import rf_mesh

from hwsim import rf_array_study as S


@pytest.fixture(scope="module")
def data():
    xtr, ytr, xte, yte = S.load_digits_split()
    return xtr[:400], ytr[:400], xte, yte


@pytest.fixture(scope="module")
def tt_net(data):
    xtr, ytr, _, _ = data
    return S.train("tt", xtr, ytr, epochs=60)


@pytest.mark.parametrize("kind", ["dense", "tt"])
def test_mapped_network_matches_float_and_errors_hurt(data, kind):
    xtr, ytr, xte, yte = data
    net = S.train(kind, xtr, ytr, epochs=60)
    meshes = S.map_network(net)
    acc = S.evaluate(net, None, xte, yte)
    assert acc > 0.7
    assert S.evaluate(net, meshes, xte, yte, ideal=True) == acc
    assert S.evaluate(net, meshes, xte, yte, (rf_mesh.PhaseNoise(0.0),), 0) == acc
    assert S.evaluate(net, meshes, xte, yte, (rf_mesh.PhaseNoise(0.3),), 0) < acc - 0.2
    errs = (rf_mesh.InsertionLoss(0.5),)
    before = S.evaluate(net, meshes, xte, yte, errs, 1)
    after = S.evaluate(net, meshes, xte, yte, errs, 1, calibrated=True)
    assert after > before + 0.2
    # uniform loss is (nearly) a scale: the digital gain alone recovers it, as the full calibration does
    gain_only = S.evaluate(net, meshes, xte, yte, errs, 1, correction="gain")
    assert gain_only > before + 0.2 and abs(after - gain_only) < 0.05


def test_resource_direction():
    dense, reuse = S._counts("dense"), S._counts("reuse")
    assert reuse.mzis < dense.mzis / 3 and reuse.dacs < dense.dacs / 3


def test_correction_is_checked(data, tt_net):
    _, _, xte, yte = data
    with pytest.raises(S.HwsimError, match=r"^correction='gain only' is not allowed: expected one of raw, gain, "
                                           r"phase, phase\+gain$"):
        S.evaluate(tt_net, S.map_network(tt_net), xte, yte, correction="gain only")


# ---------------------------------------------------------------------------------------------- intervals
def test_mean_interval_against_hand_computation():
    # 4 samples: mean 0.65, s = sqrt(0.05 / 3) = 0.1290994; t(0.975, 3 dof) = 3.182446 (Student-t table)
    m, lo, hi = S.mean_interval([0.5, 0.6, 0.7, 0.8])
    half = 3.182446 * math.sqrt(0.05 / 3) / 2
    assert m == pytest.approx(0.65, abs=1e-12)
    assert (lo, hi) == (pytest.approx(0.65 - half, abs=1e-6), pytest.approx(0.65 + half, abs=1e-6))
    # 10 samples 0.0 .. 0.9: mean 0.45, s = sqrt(82.5 / 9) / 10; t(0.975, 9 dof) = 2.262157
    m, lo, hi = S.mean_interval([i / 10 for i in range(10)])
    half = 2.262157 * math.sqrt(82.5 / 9) / 10 / math.sqrt(10)
    assert (m, lo, hi) == (pytest.approx(0.45), pytest.approx(0.45 - half, abs=1e-6),
                           pytest.approx(0.45 + half, abs=1e-6))
    assert S.mean_interval([0.3] * 5) == (pytest.approx(0.3), pytest.approx(0.3), pytest.approx(0.3))
    m, lo, hi = S.mean_interval([0.7])
    assert m == 0.7 and math.isnan(lo) and math.isnan(hi)


# ---------------------------------------------------------------------------------------------- gain baseline
def _naive_lossy_matrix(mesh, loss_db):
    """The device matrix built MZI by MZI (2x2 blocks on an identity), each MZI times 10**(-loss/20)."""
    t = 10 ** (-loss_db / 20)
    u = np.eye(mesh.n, dtype=complex)
    for m, th, ph in zip(mesh.modes, mesh.theta, mesh.phi, strict=True):
        blk = t * rf_mesh.mzi_matrix(th, ph)
        u[[m, m + 1], :] = blk @ u[[m, m + 1], :]
    return np.diag(np.exp(1j * mesh.out_phase)) @ u


def test_gain_normalized_baseline_normalizes_measured_power():
    rng = np.random.default_rng(3)
    mesh = rf_mesh.clements_decompose(rf_mesh.random_unitary(6, rng))
    loss = 0.7
    real = rf_mesh.realize(mesh, (rf_mesh.InsertionLoss(loss),), 0).matrix()
    naive = _naive_lossy_matrix(mesh, loss)
    assert np.allclose(real, naive, atol=1e-12)
    # measured transmission: unit tone into each input port in turn, detected output power summed
    power = [float(np.sum(np.abs(naive @ np.eye(6)[:, j]) ** 2)) for j in range(6)]
    assert sum(power) / 6 < 0.8                          # the raw device loses power
    norm = S.gain_normalize(real)
    assert np.allclose(norm, naive / math.sqrt(sum(power) / 6), atol=1e-12)
    out = [float(np.sum(np.abs(norm @ np.eye(6)[:, j]) ** 2)) for j in range(6)]
    assert sum(out) / 6 == pytest.approx(1.0, abs=1e-12)
    # a device that only quantizes phases stays unitary: the gain is one
    q = rf_mesh.realize(mesh, (rf_mesh.PhaseQuantization(3),), 0).matrix()
    assert np.allclose(S.gain_normalize(q), q, atol=1e-12)


def test_gain_baseline_undoes_uniform_loss_on_one_mzi_meshes():
    # a 2x2 weight: U and V^H are one MZI each, so 1 dB per MZI scales the matrix by t**2, t = 10**(-1/20)
    w = np.array([[0.8, -0.3], [0.2, 0.5]])
    sm = rf_mesh.svd_map(w, completion="canonical")
    errs = (rf_mesh.InsertionLoss(1.0),)
    raw = S._realized(sm, errs, 0, "raw")
    gain = S._realized(sm, errs, 0, "gain")
    assert np.allclose(raw, 10 ** (-2 / 20) * w, atol=1e-12)
    assert np.allclose(gain, w, atol=1e-12)
    assert np.allclose(S._realized(sm, errs, 0, "phase+gain"), w, atol=1e-12)


def test_corrections_draw_the_same_device(data, tt_net):
    """Paired differences need the same device for every correction: with no errors every correction is ideal,
    and the phase re-solve alone differs from the gain alone on a device with coupler errors."""
    _, _, xte, yte = data
    meshes = S.map_network(tt_net)
    ideal = S.evaluate(tt_net, meshes, xte, yte, ideal=True)
    assert {S.evaluate(tt_net, meshes, xte, yte, (), 5, correction=c) for c in S.CORRECTIONS} == {ideal}
    errs = S.device_errors(8, 2.0)
    sm = meshes[0][0]
    a = S._realized(sm, errs, 11, "gain")
    b = S._realized(sm, errs, 11, "gain")
    c = S._realized(sm, errs, 11, "phase+gain")
    assert np.array_equal(a, b)
    err_gain, err_cal = np.linalg.norm(a - sm.matrix()), np.linalg.norm(c - sm.matrix())
    assert err_cal < 0.5 * err_gain


# ---------------------------------------------------------------------------------------------- determinism
def test_canonical_mapping_is_continuous_and_exact(tt_net):
    """A 1e-12 change of a core moves every mesh phase by far less than a 4-bit DAC step, so the accuracy on
    a 4-bit device does not jump (LAPACK's null-space completion moved phases by up to pi)."""
    rng = np.random.default_rng(0)
    for g in tt_net["weights"]:
        w = g.reshape(g.shape[0] * g.shape[1], -1)
        a = rf_mesh.svd_map(w, completion="canonical")
        b = rf_mesh.svd_map(w + 1e-12 * rng.standard_normal(w.shape), completion="canonical")
        assert np.allclose(a.matrix(), w, atol=1e-10)
        for ma, mb in ((a.u_mesh, b.u_mesh), (a.v_mesh, b.v_mesh)):
            assert np.allclose(ma.matrix().conj().T @ ma.matrix(), np.eye(ma.n), atol=1e-10)
            for x, y in ((ma.theta, mb.theta), (ma.phi, mb.phi), (ma.out_phase, mb.out_phase)):
                assert np.max(np.abs((x - y + np.pi) % (2 * np.pi) - np.pi), initial=0.0) < 1e-6


def test_accuracy_on_4bit_device_survives_a_1e12_perturbation(data, tt_net):
    _, _, xte, yte = data
    rng = np.random.default_rng(1)
    moved = {**tt_net, "weights": [g + 1e-12 * rng.standard_normal(g.shape) for g in tt_net["weights"]]}
    errs = S.device_errors(4)
    for corr in ("gain", "phase+gain"):
        a = [S.evaluate(tt_net, S.map_network(tt_net), xte, yte, errs, s, correction=corr) for s in (7, 1007)]
        b = [S.evaluate(moved, S.map_network(moved), xte, yte, errs, s, correction=corr) for s in (7, 1007)]
        assert a == b


def _study_numbers(threads: str, out) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env["OMP_NUM_THREADS"] = threads
    res = subprocess.run([sys.executable, "-m", "hwsim.cli", "study", "tt-rfnn", "--quick", "-o", str(out)],
                         env=env, capture_output=True, text=True, check=True)
    # everything but the elapsed time
    return "\n".join(line for line in res.stdout.splitlines() if not re.fullmatch(r"\(\d+\.\d s\)", line))


@pytest.mark.slow
def test_study_prints_the_same_numbers_on_1_and_3_threads(tmp_path):
    one = _study_numbers("1", tmp_path)
    three = _study_numbers("3", tmp_path)
    assert one == three
    assert (tmp_path / "tt_rfnn_accuracy.png").exists() and (tmp_path / "tt_rfnn_sensitivity.png").exists()
    rows = (tmp_path / "tt_rfnn_sensitivity.csv").read_text().splitlines()
    assert rows[0] == "axis,value,network,correction,devices,mean,ci95_low,ci95_high"
    # headline: 2 networks x 2 bit widths x 4 corrections, each over the quick run's 3 devices
    assert sum(r.startswith("headline_bits,") and r.split(",")[4] == "3" for r in rows) == 16
    # 3053 / 859 = 3.554: the MZI counts of DENSE_SHAPES and TT_LAYERS (tests/test_rf_tt.py derives them)
    assert "interferometers dense / TT-RFNN: 3.55x with reused cores (3053 / 859)" in one
    assert "paper:" in one and "digital gain (gain - raw)" in one
