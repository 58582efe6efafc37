"""Tensor-train RF networks (TT-RFNN): a TT-format layer computed stage by stage on small interferometer
meshes, with the reshaping between stages done by an RF switch-matrix permutation, and the resource counts
of a dense RFNN against a TT-RFNN of the same layer sizes.

TT format
---------
A layer ``W`` of shape ``(M, N)`` with ``M = prod(out_modes)`` and ``N = prod(in_modes)`` is held as d
cores ``G_k`` of shape ``(r_{k-1}, m_k, n_k, r_k)`` (``r_0 = r_d = 1``)::

    W[(i_1..i_d), (j_1..j_d)] = G_1[:, i_1, j_1, :] @ G_2[:, i_2, j_2, :] @ ... @ G_d[:, i_d, j_d, :]

(multi-indices flattened row-major). ``y = W x`` is computed core by core from ``k = d`` down to 1. Before
stage k the signal is a tensor ``(n_1..n_{k-1}, n_k, r_k, m_{k+1}..m_d)``; stage k applies the core matrix
``C_k[(a, i), (j, b)] = G_k[a, i, j, b]`` (shape ``(r_{k-1} m_k) x (n_k r_k)``) to each of
``B_k = n_1..n_{k-1} * m_{k+1}..m_d`` vectors of length ``n_k r_k``. Each core matrix is mapped by SVD onto
two unitary meshes and attenuators (:func:`hwsim.models.rf_mesh.svd_map`).

Physical arrangement (``spatial``): stage k holds ``B_k`` copies of its core's meshes side by side; its
output wires are ordered (vector, element) and the next stage needs a different grouping of the same
wires, so a switch matrix (a rearrangeable Benes network of 2x2 RF switches, V. E. Benes, "Mathematical
Theory of Connecting Networks and Telephone Traffic", 1965) permutes them: :func:`switch_permutation`.
The output order after stage 1 is fixed digitally after the ADCs (free relabelling), so a d-core layer
needs d - 1 switch matrices. ``reuse``: one copy of each core's meshes, fed the ``B_k`` vectors one after
the other; between stages the signals are digitized (ADC), reordered in memory and re-generated (DAC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from hwsim.models import rf_mesh
from hwsim.models.errors import HwsimError

__all__ = [
    "TT_MODES",
    "RfCounts",
    "TTLayer",
    "benes_switches",
    "dense_counts",
    "stage_shapes",
    "switch_permutation",
    "tt_counts",
    "tt_grads",
    "tt_stagewise",
    "tt_svd",
]

TT_MODES = ("spatial", "reuse")


def _check_shape(name, v) -> tuple[int, ...]:
    t = tuple(v)
    if not t or any(isinstance(x, bool) or not isinstance(x, int | np.integer) or x < 1 for x in t):
        raise HwsimError(f"{name}={t!r} is not allowed: expected a non-empty tuple of integers >= 1")
    return tuple(int(x) for x in t)


@dataclass(frozen=True)
class TTLayer:
    """Shape of a TT layer: ``in_modes`` (n_k), ``out_modes`` (m_k), ``ranks`` (r_0 = 1, ..., r_d = 1)."""

    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]
    ranks: tuple[int, ...]

    def __post_init__(self):
        n = _check_shape("in_modes", self.in_modes)
        m = _check_shape("out_modes", self.out_modes)
        r = _check_shape("ranks", self.ranks)
        if len(m) != len(n):
            raise HwsimError(f"out_modes={m!r} is not allowed: expected {len(n)} modes like in_modes={n!r}")
        if len(r) != len(n) + 1 or r[0] != 1 or r[-1] != 1:
            raise HwsimError(f"ranks={r!r} is not allowed: expected {len(n) + 1} ranks starting and ending with 1")
        object.__setattr__(self, "in_modes", n)
        object.__setattr__(self, "out_modes", m)
        object.__setattr__(self, "ranks", r)

    @property
    def d(self) -> int:
        return len(self.in_modes)

    @property
    def n(self) -> int:
        return math.prod(self.in_modes)

    @property
    def m(self) -> int:
        return math.prod(self.out_modes)

    def core_shape(self, k: int) -> tuple[int, int, int, int]:
        """Shape of core k (0-based): (r_k, m_k, n_k, r_{k+1})."""
        return self.ranks[k], self.out_modes[k], self.in_modes[k], self.ranks[k + 1]

    def full(self, cores) -> np.ndarray:
        """The dense (M, N) matrix of ``cores``."""
        t = np.ones((1, 1, 1))                               # (M_<, N_<, r)
        for k, g in enumerate(cores):
            if g.shape != self.core_shape(k):
                raise HwsimError(f"core {k} with shape {g.shape} is not allowed: expected {self.core_shape(k)}")
            t = np.einsum("IJa,aijb->IiJjb", t, g)
            t = t.reshape(t.shape[0] * t.shape[1], t.shape[2] * t.shape[3], t.shape[4])
        return t[:, :, 0]

    def params(self) -> int:
        return sum(math.prod(self.core_shape(k)) for k in range(self.d))


def tt_grads(layer: TTLayer, cores, dw) -> list[np.ndarray]:
    """Gradients of a loss with respect to each core, given its gradient ``dw`` with respect to W (M, N)."""
    d = layer.d
    lefts = [np.ones((1, 1, 1))]
    for k in range(d - 1):
        t = np.einsum("IJa,aijb->IiJjb", lefts[-1], cores[k])
        lefts.append(t.reshape(t.shape[0] * t.shape[1], t.shape[2] * t.shape[3], t.shape[4]))
    rights = [np.ones((1, 1, 1))]
    for k in range(d - 1, 0, -1):
        t = np.einsum("aijb,bKL->aiKjL", cores[k], rights[0])
        rights.insert(0, t.reshape(t.shape[0], t.shape[1] * t.shape[2], t.shape[3] * t.shape[4]))
    out = []
    for k in range(d):
        left, right = lefts[k], rights[k]
        _, mk, nk, _ = layer.core_shape(k)
        g = dw.reshape(left.shape[0], mk, right.shape[1], left.shape[1], nk, right.shape[2])
        out.append(np.einsum("IJa,IiKJjL,bKL->aijb", left, g, right))
    return out


def tt_svd(w, layer: TTLayer) -> list[np.ndarray]:
    """Cores of ``layer``'s shape approximating ``w`` (M, N) by sequential truncated SVDs (Oseledets 2011)."""
    w = np.asarray(w, float)
    d, m, n, r = layer.d, layer.out_modes, layer.in_modes, layer.ranks
    t = w.reshape(*m, *n).transpose([i for k in range(d) for i in (k, d + k)])   # (m1 n1 m2 n2 ...)
    cores, rank = [], 1
    rest = t.reshape(1, -1)
    for k in range(d - 1):
        mat = rest.reshape(rank * m[k] * n[k], -1)
        u, s, vh = np.linalg.svd(mat, full_matrices=False)
        rk = min(r[k + 1], s.size)
        core = np.zeros((rank * m[k] * n[k], r[k + 1]))
        core[:, :rk] = u[:, :rk]
        cores.append(core.reshape(rank, m[k], n[k], r[k + 1]))
        rest = np.zeros((r[k + 1], vh.shape[1]))
        rest[:rk] = s[:rk, None] * vh[:rk]
        rank = r[k + 1]
    cores.append(rest.reshape(rank, m[-1], n[-1], 1))
    return cores


def stage_shapes(layer: TTLayer) -> list[dict]:
    """Per stage in signal order (core d first): core index, core matrix P x Q and vectors B."""
    out = []
    for k in range(layer.d - 1, -1, -1):
        rk0, mk, nk, rk1 = layer.core_shape(k)
        b = math.prod(layer.in_modes[:k]) * math.prod(layer.out_modes[k + 1:])
        out.append({"core": k, "p": rk0 * mk, "q": nk * rk1, "vectors": b})
    return out


def switch_permutation(layer: TTLayer, k: int) -> np.ndarray:
    """Wire permutation between stage k's outputs and stage k-1's inputs (k = 1..d-1, 0-based cores).

    Stage k's output wires are ordered (n_1..n_k-1 prefix, m_k+1..m_d suffix, r_k-1, m_k): vector-major,
    then element. Stage k-1's inputs are ordered (n_1..n_k-2 prefix, m_k..m_d suffix, n_k-1, r_k-1).
    Returns ``perm`` with ``inputs_of_stage_k-1 = outputs_of_stage_k[perm]``.
    """
    if not 1 <= k < layer.d:
        raise HwsimError(f"k={k} is not allowed: expected a stage boundary in [1, {layer.d - 1}]")
    n, m, r = layer.in_modes, layer.out_modes, layer.ranks
    pre, nk1, suf = math.prod(n[:k - 1]), n[k - 1], math.prod(m[k + 1:])
    # logical tensor (pre, nk1, r_k, m_k, suf) -> output wire index (pre, nk1, suf, r_k, m_k)
    idx = np.arange(pre * nk1 * suf * r[k] * m[k]).reshape(pre, nk1, suf, r[k], m[k])
    logical = idx.transpose(0, 1, 3, 4, 2)                       # (pre, nk1, r_k, m_k, suf)
    # input wire order of stage k-1: (pre, m_k, suf, nk1, r_k)
    return logical.transpose(0, 3, 4, 1, 2).reshape(-1)


def tt_stagewise(layer: TTLayer, core_mats, x) -> np.ndarray:
    """``W x`` for a batch ``x`` (N, batch) computed stage by stage: each stage applies its (realised)
    core matrix ``core_mats[k]`` ((r_k m_k) x (n_k r_k+1)) to its B_k vectors, and the wires are permuted
    by :func:`switch_permutation` between stages. Returns (M, batch) in row-major (m_1..m_d) order."""
    x = np.asarray(x)
    batch = x.shape[1]
    d = layer.d
    n, m, r = layer.in_modes, layer.out_modes, layer.ranks
    # stage d-1 (0-based): wires (prefix n_1..n_{d-1}, n_d, r_d=1) = row-major x
    wires = x.reshape(layer.n, batch)
    for k in range(d - 1, -1, -1):
        q = n[k] * r[k + 1]
        vecs = wires.reshape(-1, q, batch)                       # (B_k, q, batch)
        wires = np.einsum("pq,bqs->bps", core_mats[k], vecs).reshape(-1, batch)
        if k > 0:
            wires = wires[switch_permutation(layer, k)]
    # after stage 0: wires ordered (suffix m_2..m_d, r_0 = 1, m_1): relabel to (m_1, m_2..m_d)
    out = wires.reshape(math.prod(m[1:]), m[0], batch).transpose(1, 0, 2)
    return out.reshape(layer.m, batch)


def benes_switches(wires: int) -> int:
    """2x2 switches of a Benes network permuting ``wires`` (padded to a power of two): L/2 (2 log2 L - 1)."""
    if wires <= 1:
        return 0
    size = 1 << (wires - 1).bit_length()
    return size // 2 * (2 * size.bit_length() - 3)


@dataclass(frozen=True)
class RfCounts:
    """Device counts of an RF network: interferometers (MZIs), phase shifters, attenuators, RF switches,
    DACs (one per tunable phase shifter or attenuator; plus the signal DACs re-generating digitized
    intermediates in ``reuse``), ADCs (one per detected output port), stages, and the mesh programs
    (core reuses per inference in ``reuse``)."""

    mzis: int = 0
    phase_shifters: int = 0
    attenuators: int = 0
    switches: int = 0
    dacs: int = 0
    adcs: int = 0
    stages: int = 0
    passes: int = 0

    def __add__(self, other: RfCounts) -> RfCounts:
        return RfCounts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, ...]:
        return (self.mzis, self.phase_shifters, self.attenuators, self.switches, self.dacs, self.adcs,
                self.stages, self.passes)

    def as_dict(self) -> dict:
        return dict(zip(("mzis", "phase_shifters", "attenuators", "switches", "dacs", "adcs", "stages",
                         "passes"), self.as_tuple(), strict=True))


def _svd_counts(p: int, q: int) -> tuple[int, int, int]:
    return rf_mesh.mzi_count(p) + rf_mesh.mzi_count(q), p * p + q * q, min(p, q)


def dense_counts(m: int, n: int) -> RfCounts:
    """A dense M x N layer as U (M x M mesh), min(M, N) attenuators, V^H (N x N mesh); M ADCs."""
    mz, ps, at = _svd_counts(m, n)
    return RfCounts(mz, ps, at, 0, ps + at, m, 1, 1)


def tt_counts(layer: TTLayer, mode: str = "spatial") -> RfCounts:
    """Device counts of ``layer`` in ``mode`` (see the module docstring)."""
    if mode not in TT_MODES:
        raise HwsimError(f"tt_mode={mode!r} is not allowed: expected one of {', '.join(TT_MODES)}")
    mz = ps = at = sw = sig = passes = 0
    stages = stage_shapes(layer)
    for i, st in enumerate(stages):
        cm, cp, ca = _svd_counts(st["p"], st["q"])
        copies = st["vectors"] if mode == "spatial" else 1
        mz, ps, at = mz + copies * cm, ps + copies * cp, at + copies * ca
        passes += 1 if mode == "spatial" else st["vectors"]
        if i < len(stages) - 1:
            wires = st["vectors"] * st["p"]
            if mode == "spatial":
                sw += benes_switches(wires)
            else:
                sig += stages[i + 1]["q"]        # signal DACs re-generating the next core's inputs
    adcs = layer.m if mode == "spatial" else sum(st["p"] for st in stages)
    return RfCounts(mz, ps, at, sw, ps + at + sig, adcs, layer.d, passes)
