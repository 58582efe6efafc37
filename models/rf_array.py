"""Bit-exact fixed-point reference of the RF mesh emulator (the spec its RTL must match bit for bit).

The emulator computes what a programmed interferometer mesh (:mod:`hwsim.models.rf_mesh`) does to a
complex input vector, in fixed point, for FPGA-in-the-loop use.

Layout
------
:func:`mesh_layout` lists the MZIs column by column (the RTL's pipeline columns): Clements' rectangular
mesh has N columns, column c holding MZIs on modes (m, m + 1) for m = c mod 2, c mod 2 + 2, ...;
Reck's triangular mesh places the MZIs of rows N-1, N-2, ..., 1 (modes 0..r-1 each) as early as their
modes allow (2N - 3 columns). Phase codes are loaded in that order, two per MZI (theta code, then phi
code), then the N output-screen codes: ``2 K + N`` codes (N**2 for K = N(N-1)/2).

Numbers
-------
* Data: each complex value is two signed ``data_bits`` integers (real, imaginary).
* Phase code k in [0, 2**dac_bits) means the angle 2 pi k / 2**dac_bits.
* Tables (``F = coef_bits``, entries signed ``F + 2`` bits, :func:`tables`): for the angle a of code k,
  ``C = rnd(cos a 2**F)``, ``S = rnd(sin a 2**F)``, ``AR = rnd((cos a - 1) / 2 2**F)``,
  ``AI = rnd(sin a / 2 2**F)``, ``BI = rnd((cos a + 1) / 2 2**F)`` with rnd = round half to even of the
  float64 value (NumPy's ``round``), computed once here and embedded in the RTL as constants.
* ``rs(v)`` = ``(v + 2**(F-1)) >> F`` (arithmetic shift: round half up) saturated to ``data_bits``.

One MZI with codes (t, p) on inputs x (top), y (bottom) -- T = [[e^{i phi} A, Bc], [e^{i phi} Bc, -A]]
with A = (e^{i theta} - 1) / 2 and Bc = i (e^{i theta} + 1) / 2 (= B P(theta) B P(phi) of rf_mesh)::

    stage 1: u = rs(x * (C[p] + i S[p]))                 (complex multiply, each part rounded)
    stage 2: top = rs(u * A + y * Bc),  bot = rs(u * Bc - y * A)     with A = AR[t] + i AI[t],
             Bc = -AI[t] + i BI[t]; every real and imaginary sum is formed exactly, then rounded once

Output screen: ``out_j = rs(v_j * (C[d_j] + i S[d_j]))``. Modes an MZI column does not touch pass
unchanged.
"""

from __future__ import annotations

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.rf_mesh import Mesh
from hwsim.models.tables import mesh_layout, rf_tables

__all__ = ["code_count", "emulate", "mesh_layout", "mesh_from_codes", "phase_codes", "tables"]


def code_count(n: int, style: str) -> int:
    """Phase codes of one program: two per MZI plus the n output-screen codes."""
    return 2 * sum(len(c) for c in mesh_layout(n, style)) + n


def tables(cfg) -> dict[str, np.ndarray]:
    """The cos/sin tables indexed by phase code (int64 arrays of 2**dac_bits entries; see the module doc)."""
    return rf_tables(cfg)


def _rs(cfg, v: np.ndarray) -> np.ndarray:
    f = cfg.coef_bits
    r = (v + (1 << (f - 1))) >> f
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    return np.clip(r, lo, hi)


def _check_codes(cfg, codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    need = code_count(cfg.n, cfg.mesh)
    if codes.size != need:
        raise HwsimError(f"codes with {codes.size} entries is not allowed: expected {need} phase codes "
                         f"(2 per MZI + {cfg.n} output phases)")
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << cfg.dac_bits):
        raise HwsimError(f"codes is not allowed: expected integers in [0, {(1 << cfg.dac_bits) - 1}]")
    return codes


def emulate(cfg, codes, x) -> np.ndarray:
    """Outputs of the emulator programmed with ``codes`` for inputs ``x`` (int64, shape (V, n, 2): real and
    imaginary parts, signed ``data_bits``); returns int64 (V, n, 2)."""
    codes = _check_codes(cfg, codes)
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 3 or x.shape[1:] != (cfg.n, 2):
        raise HwsimError(f"x with shape {x.shape} is not allowed: expected (vectors, {cfg.n}, 2)")
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise HwsimError(f"x is not allowed: expected signed {cfg.data_bits}-bit parts in [{lo}, {hi}]")
    t = tables(cfg)
    re, im = x[:, :, 0].copy(), x[:, :, 1].copy()
    i = 0
    for col in mesh_layout(cfg.n, cfg.mesh):
        m = np.array(col, dtype=np.int64)
        tc, pc = codes[i:i + 2 * m.size:2], codes[i + 1:i + 2 * m.size:2]
        i += 2 * m.size
        c, s = t["C"][pc], t["S"][pc]
        xr, xi, yr, yi = re[:, m], im[:, m], re[:, m + 1], im[:, m + 1]
        ur, ui = _rs(cfg, xr * c - xi * s), _rs(cfg, xr * s + xi * c)
        ar, ai, br, bi = t["AR"][tc], t["AI"][tc], -t["AI"][tc], t["BI"][tc]
        re[:, m] = _rs(cfg, ur * ar - ui * ai + yr * br - yi * bi)
        im[:, m] = _rs(cfg, ur * ai + ui * ar + yr * bi + yi * br)
        re[:, m + 1] = _rs(cfg, ur * br - ui * bi - yr * ar + yi * ai)
        im[:, m + 1] = _rs(cfg, ur * bi + ui * br - yr * ai - yi * ar)
    dc = codes[i:]
    c, s = t["C"][dc], t["S"][dc]
    return np.stack([_rs(cfg, re * c - im * s), _rs(cfg, re * s + im * c)], axis=-1)


def mesh_from_codes(cfg, codes) -> Mesh:
    """The ideal (float) :class:`Mesh` whose phases are the angles of ``codes`` (for comparisons)."""
    codes = _check_codes(cfg, codes)
    layout = mesh_layout(cfg.n, cfg.mesh)
    modes = np.array([m for col in layout for m in col], dtype=np.int64)
    k = modes.size
    step = 2 * np.pi / (1 << cfg.dac_bits)
    return Mesh(cfg.n, cfg.mesh, modes, codes[0:2 * k:2] * step, codes[1:2 * k:2] * step, codes[2 * k:] * step)


def phase_codes(cfg, mesh: Mesh) -> np.ndarray:
    """Codes (layout order) that program ``mesh`` (decomposed in ``cfg.mesh`` style) on the emulator.

    The MZIs of a decomposition are reordered to the layout's column order (MZIs of one column commute).
    """
    layout = mesh_layout(cfg.n, cfg.mesh)
    cols = mesh.columns
    order = []
    for c, col in enumerate(layout):
        idx = np.flatnonzero(cols == c)
        by_mode = {int(mesh.modes[j]): int(j) for j in idx}
        if sorted(by_mode) != list(col):
            raise HwsimError(f"mesh is not allowed: its MZIs do not fit the {cfg.mesh} layout of n={cfg.n}")
        order += [by_mode[m] for m in col]
    q = 1 << cfg.dac_bits
    step = 2 * np.pi / q
    th = np.round(mesh.theta[order] / step).astype(np.int64) % q
    ph = np.round(mesh.phi[order] / step).astype(np.int64) % q
    out = np.round(mesh.out_phase / step).astype(np.int64) % q
    return np.concatenate([np.stack([th, ph], 1).reshape(-1), out])
