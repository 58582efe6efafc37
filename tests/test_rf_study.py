"""tt-rfnn study pieces: training on digits, mapping onto meshes, error evaluation, calibration direction."""

import pytest
from hwsim.models import rf_mesh

from hwsim import rf_array_study as S


@pytest.fixture(scope="module")
def data():
    xtr, ytr, xte, yte = S.load_digits_split()
    return xtr[:400], ytr[:400], xte, yte


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


def test_resource_direction():
    dense, reuse = S._counts("dense"), S._counts("reuse")
    assert reuse.mzis < dense.mzis / 3 and reuse.dacs < dense.dacs / 3


@pytest.mark.slow
def test_study_quick_run(tmp_path):
    res = S.run(tmp_path, quick=True)
    assert (tmp_path / "tt_rfnn_accuracy.png").exists()
    assert "Device counts" in res.format() and res.as_dict()["counts"]["dense RFNN"]["mzis"] == 3053
