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


# ---------------------------------------------------------------------------------------------- hardware
def _hand_walk(matrices):
    """Counts of one inference on rf-array-8 (8 ports, 8-bit phase DACs, 10-bit ADCs, 250 MHz, rf_stage_ns 0.05),
    walked tile by tile from docs/rf_array.md ("Physical system timing", "Memory and traffic"): ``matrices``
    are (rows P, cols Q, vectors B) products, each read from and written to memory as 8-bit codes."""
    n, codes = 8, 64                             # ports; phase codes per mesh: n(n-1) MZI phases + n screen = n^2
    rf = math.ceil((2 * 8 + 1) * 0.05 / 4.0)     # 8 MZI columns per mesh, two meshes + attenuators, 4 ns cycles
    assert rf == 1
    c = dict.fromkeys(("cycles", "dac", "ps", "att", "sig", "adc", "post", "idle", "dram", "buf_r", "buf_w"), 0)
    for p, q, m in matrices:
        kt, nt = -(-q // n), -(-p // n)
        for j in range(nt):
            cols = min(n, p - j * n)
            for i in range(kt):
                rows = min(n, q - i * n)
                c["cycles"] += 1 + rf + m + 1    # DACs settle, RF propagation, m ADC conversions, post add
                c["dac"] += 2 * codes + n        # both meshes' phase DACs and the attenuators' DACs
                c["ps"] += 2 * codes
                c["att"] += n
                c["sig"] += m * rows             # real conversions; the padding ports' converters are
                c["adc"] += m * cols             # clock-gated (rf-array-8's default gating, docs/idle_lanes.md)
                c["idle"] += m * (n - rows) + m * (n - cols)
                c["post"] += m * cols if i else 0  # a gated ADC's post lane holds
                c["dram"] += codes + (n + 1) + codes  # V codes, attenuator codes + gain byte, U codes
                if j == 0:                       # the input slice arrives once and fills the input buffer
                    c["dram"] += m * rows
                    c["buf_w"] += -(-m * rows // 8)
                c["buf_r"] += -(-m * rows // 8)  # every tile reads its slice (64-bit words)
                psum = -(-m * cols * 4 // 8)     # 32-bit partial sums
                c["buf_r"] += psum if kt > 1 and i > 0 else 0
                c["buf_w"] += psum if kt > 1 and i < kt - 1 else 0
                c["dram"] += m * cols if i == kt - 1 else 0  # output codes
    return c


def _hand_energy_pj(c):
    """Per action, from the cost tables' entries by hand: DAC 0.01 pJ x 2**8 (phase) or 2**10 (signal), ADC
    0.0217 pJ x 2**10, phase shifter / attenuator set 0.1 pJ, 32-bit add 0.1 pJ (Horowitz), a 16 KiB SRAM's 64-bit
    access 15 pJ (between 8 KB: 10 and 32 KB: 20, linear in log2 size), LPDDR4 8 pJ/bit, a padding port's skipped
    conversion one closed clock gate (icg.ge 5 GE x gate.energy_per_ge = 0.03 pJ x 0.798 / 36 per GE)."""
    return (c["dac"] * 0.01 * 2 ** 8 + c["sig"] * 0.01 * 2 ** 10 + c["adc"] * 0.0217 * 2 ** 10
            + (c["ps"] + c["att"]) * 0.1 + c["post"] * 0.1 + (c["buf_r"] + c["buf_w"]) * 15.0 + c["dram"] * 64.0
            + c["idle"] * 5 * 0.03 * 0.798 / 36)


def test_hardware_through_the_loop_equals_a_hand_count():
    # dense: 64 -> 32 is 8 x 4 tiles, 32 -> 10 is 4 x 2; one vector: 40 tiles x (1 + 1 + 1 + 1) = 160 cycles
    dense = [(32, 64, 1), (10, 32, 1)]
    # TT, per core in signal order, (r m) x (n r) on B vectors: layer 1 (in 4,4,4; out 2,4,4; ranks 1,4,4,1)
    # 16 x 4 on 4*4, 16 x 16 on 4*4, 2 x 16 on 4*4: 2 + 4 + 2 tiles x 19 = 152; layer 2 (in 2,4,4; out 1,2,5)
    # 20 x 4 on 2*4 (3 tiles x 11), 8 x 16 on 2*5 (2 x 13), 1 x 8 on 2*5 (1 x 13): 72
    tt = [(16, 4, 16), (16, 16, 16), (2, 16, 16), (20, 4, 8), (8, 16, 10), (1, 8, 10)]
    for kind, mats, cycles in (("dense", dense, 160), ("tt", tt, 152 + 72)):
        hw = S.hardware(kind)
        c = _hand_walk(mats)
        assert hw["cycles"] == c["cycles"] == cycles
        assert hw["latency_us"] == pytest.approx(cycles * 4e-3)
        assert (hw["dac_conversions"], hw["signal_dac_conversions"], hw["adc_conversions"], hw["dram_bytes"]) == (
            c["dac"], c["sig"], c["adc"], c["dram"])
        assert hw["energy_pj"] == pytest.approx(_hand_energy_pj(c), rel=1e-12)
        assert hw["components"]["dram"] == pytest.approx(c["dram"] * 64.0, rel=1e-12)
        assert hw["components"]["buffer"] == pytest.approx((c["buf_r"] + c["buf_w"]) * 15.0, rel=1e-12)
    # the dense network's layers are digits-mlp's fc2 and fc3 shapes: 4,480 and 1,138 DRAM bytes there too
    assert S.hardware("dense")["dram_bytes"] == 4480 + 1138


def test_hardware_in_the_study_output():
    r = S.StudyResult({"dense RFNN": S._counts("dense").as_dict(), "TT-RFNN reuse": S._counts("reuse").as_dict()},
                      {}, {}, {}, {}, {}, None, 0.0, hardware=S._hardware_section())
    text = "\n".join(r._format_hardware() + r._headline_hardware())
    d, t = (r.hardware["networks"][k] for k in ("dense RFNN", "TT-RFNN reuse"))
    assert re.search(r"dense RFNN +40 +160 +0\.640 ", text) and re.search(r"TT-RFNN reuse +14 +224 +0\.896 ", text)
    assert f"{d['energy_pj'] / t['energy_pj']:.2f}x ({d['energy_pj']:.1f} / {t['energy_pj']:.1f} pJ)" in text
    assert "adc.convert 22.22 <- adc.fom_walden 0.0217 pJ" in text and "B. Murmann, ADC Performance Survey" in text
    assert "dram.lpddr4.energy_per_bit 8 pJ/bit" in text and "paper: " in text


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
    assert "energy per inference dense / TT-RFNN on rf-array-8:" in one and "cycles 160 / 224" in one
