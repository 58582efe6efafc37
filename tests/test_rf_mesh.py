"""RF interferometer meshes: decompositions against numpy products, counts by hand, errors, calibration."""

import math
import re

import numpy as np
import pytest
from hwsim.models import rf_mesh as R

from hwsim.errors import HwsimError

B = np.array([[1, 1j], [1j, 1]]) / math.sqrt(2)


def _p(x):
    return np.diag([np.exp(1j * x), 1])


def _embed(n, m, t):
    e = np.eye(n, dtype=complex)
    e[m:m + 2, m:m + 2] = t
    return e


def _naive_matrix(mesh):
    """Product of every MZI embedded in an n x n identity, built from B P B P (independent of the code)."""
    u = np.eye(mesh.n, dtype=complex)
    for m, th, ph in zip(mesh.modes, mesh.theta, mesh.phi, strict=True):
        u = _embed(mesh.n, int(m), B @ _p(th) @ B @ _p(ph)) @ u
    return np.diag(np.exp(1j * mesh.out_phase)) @ u


def test_mzi_matrix_is_b_p_b_p():
    rng = np.random.default_rng(0)
    for th, ph in rng.uniform(0, 2 * np.pi, (20, 2)):
        assert np.allclose(R.mzi_matrix(th, ph), B @ _p(th) @ B @ _p(ph), atol=1e-14)
    assert np.allclose(np.abs(R.mzi_matrix(0.0, 0.0)), [[0, 1], [1, 0]])     # cross state
    assert np.allclose(np.abs(R.mzi_matrix(np.pi, 0.0)), [[1, 0], [0, 1]])   # bar state


@pytest.mark.parametrize("style", R.MESH_STYLES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 11, 13, 16, 31, 64])
def test_round_trip(style, n):
    u = R.random_unitary(n, 100 + n)
    mesh = R.decompose(u, style)
    assert mesh.mzis == n * (n - 1) // 2 == R.mzi_count(n)
    assert mesh.phase_shifters == n * n
    assert np.max(np.abs(mesh.matrix() - u)) < 1e-9
    if n <= 16:
        assert np.max(np.abs(_naive_matrix(mesh) - u)) < 1e-9
    assert np.all((mesh.theta >= 0) & (mesh.theta < 2 * np.pi) & (mesh.phi >= 0) & (mesh.phi < 2 * np.pi))


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 9])
def test_depths(n):
    u = R.random_unitary(n, n)
    assert R.clements_decompose(u).depth == (1 if n == 2 else n)
    assert R.reck_decompose(u).depth == (1 if n == 2 else 2 * n - 3)


def test_clements_is_rectangular():
    n = 6
    mesh = R.clements_decompose(R.random_unitary(n, 5))
    for c in range(n):
        assert sorted(mesh.modes[mesh.columns == c].tolist()) == list(range(c % 2, n - 1, 2))


def test_special_unitaries():
    for u in (np.eye(5), np.eye(5)[::-1], np.diag(np.exp(1j * np.arange(4))), np.array([[0, 1], [1, 0]])):
        for style in R.MESH_STYLES:
            assert np.max(np.abs(R.decompose(u, style).matrix() - u)) < 1e-9


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (10, 64), (8, 8), (7, 3)])
def test_svd_map(shape):
    rng = np.random.default_rng(1)
    w = rng.standard_normal(shape)
    sm = R.svd_map(w)
    assert np.max(np.abs(sm.matrix() - w)) < 1e-9
    assert np.max(sm.atten) == pytest.approx(1.0) and np.min(sm.atten) >= 0
    p, q = shape
    assert sm.mzis == p * (p - 1) // 2 + q * (q - 1) // 2
    wc = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    assert np.max(np.abs(R.svd_map(wc, "reck").matrix() - wc)) < 1e-9


def test_bad_inputs():
    with pytest.raises(HwsimError, match=r"^u is not allowed: expected a unitary matrix \(max"):
        R.clements_decompose(np.array([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(HwsimError, match=r"^u with shape \(2, 3\) is not allowed: expected a square"):
        R.reck_decompose(np.ones((2, 3)))
    with pytest.raises(HwsimError, match=r"^loss_db=-1 is not allowed: expected a number >= 0$"):
        R.InsertionLoss(-1)
    with pytest.raises(HwsimError, match=r"^dac_bits=0 is not allowed: expected an integer in \[1, 24\]$"):
        R.PhaseQuantization(0)
    with pytest.raises(HwsimError, match=r"^style='x' is not allowed: expected one of clements, reck$"):
        R.decompose(np.eye(2), "x")
    with pytest.raises(HwsimError, match=r"^error model 3 is not allowed"):
        R.realize(R.clements_decompose(np.eye(2)), (3,))


def test_zero_errors_are_ideal_and_seeded():
    mesh = R.clements_decompose(R.random_unitary(6, 2))
    errs = (R.PhaseNoise(0.0), R.CouplerError(0.0), R.InsertionLoss(0.0), R.DetectorNoise(0.0))
    assert np.max(np.abs(R.realize(mesh, errs, 1).matrix() - mesh.matrix())) < 1e-12
    noisy = (R.PhaseNoise(0.1), R.CouplerError(0.05))
    a, b = R.realize(mesh, noisy, 7).matrix(), R.realize(mesh, noisy, 7).matrix()
    assert np.array_equal(a, b)
    assert not np.allclose(a, R.realize(mesh, noisy, 8).matrix())


def test_insertion_loss_scales_by_path_length():
    # a single MZI (n = 2) with L dB loss is the ideal MZI times 10**(-L/20)
    mesh = R.clements_decompose(R.random_unitary(2, 3))
    got = R.realize(mesh, (R.InsertionLoss(1.5),), 0).matrix()
    assert np.allclose(got, mesh.matrix() * 10 ** (-1.5 / 20), atol=1e-12)


def test_quantization_grid():
    for bits in (1, 3, 8):
        x = np.random.default_rng(bits).uniform(0, 2 * np.pi, 1000)
        q = R.quantize_phase(x, bits)
        step = 2 * np.pi / 2 ** bits
        assert np.allclose(np.round(q / step), q / step)
        diff = np.angle(np.exp(1j * (q - x)))
        assert np.max(np.abs(diff)) <= step / 2 + 1e-12


def test_coupler_error_mzi_is_product_of_couplers():
    mesh = R.reck_decompose(R.random_unitary(2, 9))
    dev = R.sample_device(mesh, (R.CouplerError(0.1),), 4)
    a1, a2 = dev.alpha1[0], dev.alpha2[0]

    def b(alpha):
        a = np.pi / 4 + alpha
        return np.array([[np.cos(a), 1j * np.sin(a)], [1j * np.sin(a), np.cos(a)]])

    want = b(a2) @ _p(mesh.theta[0]) @ b(a1) @ _p(mesh.phi[0])
    want = np.diag(np.exp(1j * mesh.out_phase)) @ want
    got = R.realize(mesh, (R.CouplerError(0.1),), 4).matrix()
    assert np.allclose(got, want, atol=1e-12)


def test_detector_noise_relative_rms():
    y = np.ones((200, 50), complex)
    z = R.detect(y, (R.DetectorNoise(0.1),), 0)
    assert np.std(z - y) == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("style", R.MESH_STYLES)
def test_calibration_exact_without_quantization(style):
    u = R.random_unitary(8, 11)
    mesh = R.decompose(u, style)
    errs = (R.CouplerError(0.02),)
    dev = R.sample_device(mesh, errs, 5)
    naive = np.linalg.norm(R.realize(mesh, errs, 0, device=dev).matrix() - u)
    cal = np.linalg.norm(R.realize(R.calibrate(mesh, dev), errs, 0, device=dev).matrix() - u)
    assert naive > 0.05
    assert cal < naive / 5


def test_calibration_feeds_quantization_error_forward():
    rng = np.random.default_rng(3)
    errs = (R.PhaseQuantization(6),)
    wins = 0
    for seed in range(10):
        u = R.random_unitary(8, rng)
        mesh = R.clements_decompose(u)
        dev = R.sample_device(mesh, errs, seed)
        naive = np.linalg.norm(R.realize(mesh, errs, 0, device=dev).matrix() - u)
        cal = np.linalg.norm(R.realize(R.calibrate(mesh, dev), errs, 0, device=dev).matrix() - u)
        wins += cal < naive
    assert wins >= 9


def test_calibration_is_identity_on_ideal_device():
    u = R.random_unitary(7, 1)
    mesh = R.clements_decompose(u)
    dev = R.sample_device(mesh, (), 0)
    assert np.max(np.abs(R.calibrate(mesh, dev).matrix() - u)) < 1e-9
    assert re.match(r"^clements$", mesh.style)


def test_neuroptica_mzi_is_the_transpose():
    """neuroptica's ``MZI.get_transfer_matrix`` (fancompute/neuroptica, neuroptica/components.py), written out,
    is ``mzi_matrix(theta, phi).T``: its external phase shifter sits on the outputs, ours on the inputs."""
    from hwsim.models.rf_mesh import mzi_matrix

    rng = np.random.default_rng(3)
    for theta, phi in rng.uniform(0, 2 * np.pi, size=(20, 2)):
        e, t = np.exp(1j * phi), np.exp(1j * theta)
        neuroptica = 0.5 * np.array([[e * (t - 1), 1j * e * (1 + t)], [1j * (t + 1), 1 - t]])
        ours = mzi_matrix(theta, phi)
        assert np.allclose(neuroptica, ours.T, atol=1e-12)
        assert not np.allclose(neuroptica, ours, atol=1e-3)
