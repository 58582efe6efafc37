"""TT-RF networks: stage-by-stage evaluation with switch permutations against a naive TT sum; counts by hand."""

import itertools
import math

import numpy as np
import pytest
from hwsim.models import rf_mesh
from hwsim.models.rf_tt import (
    RfCounts,
    TTLayer,
    benes_switches,
    dense_counts,
    switch_permutation,
    tt_counts,
    tt_grads,
    tt_stagewise,
    tt_svd,
)

from hwsim.errors import HwsimError

LAYERS = [
    TTLayer((2, 2), (2, 2), (1, 2, 1)),
    TTLayer((4, 4, 4), (2, 4, 4), (1, 2, 2, 1)),
    TTLayer((2, 4, 4), (1, 2, 5), (1, 3, 3, 1)),
    TTLayer((7,), (3,), (1, 1)),
    TTLayer((3, 5), (7, 2), (1, 4, 1)),
    TTLayer((2, 3, 2, 2), (3, 1, 2, 2), (1, 2, 3, 2, 1)),
]


def _cores(layer, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(layer.core_shape(k)) for k in range(layer.d)]


def _naive_full(layer, cores):
    """W[(i..), (j..)] = product of core slices, by explicit loops over every multi-index."""
    w = np.zeros((layer.m, layer.n))
    for ii in itertools.product(*(range(m) for m in layer.out_modes)):
        for jj in itertools.product(*(range(n) for n in layer.in_modes)):
            v = np.ones((1, 1))
            for k in range(layer.d):
                v = v @ cores[k][:, ii[k], jj[k], :]
            w[np.ravel_multi_index(ii, layer.out_modes), np.ravel_multi_index(jj, layer.in_modes)] = v[0, 0]
    return w


@pytest.mark.parametrize("layer", LAYERS, ids=str)
def test_stagewise_matches_naive(layer):
    cores = _cores(layer, 1)
    w = _naive_full(layer, cores)
    assert np.allclose(layer.full(cores), w, atol=1e-12)
    x = np.random.default_rng(2).standard_normal((layer.n, 4))
    mats = [c.reshape(c.shape[0] * c.shape[1], -1) for c in cores]
    assert np.allclose(tt_stagewise(layer, mats, x), w @ x, atol=1e-12)
    for k in range(1, layer.d):
        perm = switch_permutation(layer, k)
        assert sorted(perm.tolist()) == list(range(perm.size))


@pytest.mark.parametrize("layer", LAYERS[:3], ids=str)
def test_stagewise_on_meshes(layer):
    cores = _cores(layer, 3)
    mats = [rf_mesh.svd_map(c.reshape(c.shape[0] * c.shape[1], -1)).matrix() for c in cores]
    x = np.random.default_rng(4).standard_normal((layer.n, 3))
    assert np.allclose(tt_stagewise(layer, mats, x), _naive_full(layer, cores) @ x, atol=1e-9)


def test_tt_svd_full_rank_is_exact_and_grads_match_finite_differences():
    layer = TTLayer((2, 3), (3, 2), (1, 6, 1))
    w = np.random.default_rng(5).standard_normal((6, 6))
    assert np.allclose(layer.full(tt_svd(w, layer)), w, atol=1e-12)
    cores = _cores(layer, 6)
    dw = np.random.default_rng(7).standard_normal((6, 6))
    grads = tt_grads(layer, cores, dw)
    for k in range(layer.d):
        for idx in [(0, 0, 0, 0), tuple(s - 1 for s in layer.core_shape(k))]:
            c2 = [c.copy() for c in cores]
            c2[k][idx] += 1e-6
            fd = np.sum((layer.full(c2) - layer.full(cores)) * dw) / 1e-6
            assert fd == pytest.approx(grads[k][idx], rel=1e-4, abs=1e-6)


def test_counts_by_hand():
    layer = TTLayer((2, 2), (2, 2), (1, 2, 1))
    # stage core 1: 4x2 core matrix on 2 vectors; stage core 0: 2x4 on 2 vectors; 8 wires between them
    mzis_per_copy = (4 * 3 // 2 + 2 * 1 // 2)
    assert tt_counts(layer, "spatial") == RfCounts(
        mzis=2 * mzis_per_copy * 2, phase_shifters=2 * (16 + 4) * 2, attenuators=2 * 2 * 2, switches=20,
        dacs=80 + 8, adcs=4, stages=2, passes=2)
    assert tt_counts(layer, "reuse") == RfCounts(
        mzis=2 * mzis_per_copy, phase_shifters=2 * 20, attenuators=4, switches=0, dacs=44 + 4, adcs=6, stages=2,
        passes=4)
    assert dense_counts(4, 4) == RfCounts(12, 32, 4, 0, 36, 4, 1, 1)
    assert dense_counts(10, 64) == RfCounts(45 + 2016, 100 + 4096, 10, 0, 4196 + 10, 10, 1, 1)


def test_benes():
    assert [benes_switches(n) for n in (1, 2, 4, 8, 16)] == [0, 1, 6, 20, 56]
    assert benes_switches(5) == benes_switches(8)
    assert benes_switches(64) == 32 * (2 * int(math.log2(64)) - 1)


def test_bad_layers():
    with pytest.raises(HwsimError, match=r"^ranks=\(2, 2, 1\) is not allowed: expected 3 ranks starting and ending"):
        TTLayer((2, 2), (2, 2), (2, 2, 1))
    with pytest.raises(HwsimError, match=r"^out_modes=\(2,\) is not allowed: expected 2 modes"):
        TTLayer((2, 2), (2,), (1, 1, 1))
    with pytest.raises(HwsimError, match=r"^in_modes=\(0, 2\) is not allowed"):
        TTLayer((0, 2), (2, 2), (1, 1, 1))
    with pytest.raises(HwsimError, match=r"^tt_mode='x' is not allowed: expected one of spatial, reuse$"):
        tt_counts(LAYERS[0], "x")
    with pytest.raises(HwsimError, match=r"^core 0 with shape \(1, 1, 1, 1\) is not allowed"):
        LAYERS[0].full([np.ones((1, 1, 1, 1))] * 2)
