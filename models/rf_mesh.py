"""Meshes of 2x2 RF interferometers realising unitary matrices: Clements and Reck decompositions, SVD
mapping of arbitrary matrices, device error models and a calibration that re-solves phases.

Interferometer convention (a Mach-Zehnder interferometer, MZI)
-------------------------------------------------------------
An MZI acts on two neighbouring modes ``(m, m + 1)``. Light (or an RF wave) first passes an external
phase shifter ``phi`` on the top arm, then a 50:50 coupler, an internal phase shifter ``theta`` on the
top arm and a second 50:50 coupler::

    B = 1/sqrt(2) [[1, i], [i, 1]],   P(x) = diag(exp(i x), 1)
    T(theta, phi) = B P(theta) B P(phi)
                  = i exp(i theta/2) [[exp(i phi) sin(theta/2),  cos(theta/2)],
                                      [exp(i phi) cos(theta/2), -sin(theta/2)]]

``theta = 0`` is the cross state (all power swaps modes), ``theta = pi`` the bar state. neuroptica's
MZI (``neuroptica.components.MZI.get_transfer_matrix``, phase shifters on the top arm too) is the
*transpose* of this one: ``P(phi) B P(theta) B``, its external phase shifter after the second coupler
(on the outputs) where this one has it before the first (on the inputs); since ``B`` and ``P`` are
symmetric, ``T_neuroptica(theta, phi) == T(theta, phi).T``. Clements et al. (Optica 3, 1460, 2016) write
the same family of matrices with a different global phase.

A :class:`Mesh` is a list of MZIs in the order a signal meets them (``modes[k]`` is the top mode of the
k-th MZI) followed by an output phase screen ``diag(exp(i out_phase))``; its matrix is
``diag(exp(i out_phase)) @ T_K ... @ T_1``. An N x N unitary needs N(N-1)/2 MZIs and N**2 phase shifters
(two per MZI plus the N output phases). Clements' mesh is rectangular (depth N, every path crosses about
the same number of MZIs, so loss is balanced); Reck's is triangular (depth 2N - 3).

Device errors (:class:`PhaseNoise`, :class:`PhaseQuantization`, :class:`CouplerError`,
:class:`InsertionLoss`, :class:`DetectorNoise`) compose as a tuple; :func:`realize` draws one device
(seeded) and :meth:`PhysicalMesh.matrix` is its transfer matrix. :func:`calibrate` is the robustness
method: given a device's measured static errors (coupler splitting errors, insertion loss) and its DAC
resolution, it re-solves every phase in signal order so each MZI realises the ideal one up to output
phases, which are carried forward into later MZIs' external phases and finally the output screen.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.tables import MESH_STYLES, mesh_columns

__all__ = [
    "MESH_STYLES",
    "SVD_COMPLETIONS",
    "CouplerError",
    "DetectorNoise",
    "InsertionLoss",
    "Mesh",
    "PhaseNoise",
    "PhaseQuantization",
    "PhysicalMesh",
    "SvdMesh",
    "calibrate",
    "check_unitary",
    "clements_decompose",
    "complete_unitary",
    "decompose",
    "detect",
    "mzi_count",
    "mzi_matrix",
    "quantize_phase",
    "random_unitary",
    "realize",
    "reck_decompose",
    "svd_map",
]

TWO_PI = 2.0 * math.pi


def mzi_count(n: int) -> int:
    """Interferometers of an n x n unitary mesh: n(n-1)/2."""
    return n * (n - 1) // 2


def mzi_matrix(theta, phi) -> np.ndarray:
    """The ideal 2x2 transfer matrix T(theta, phi) (see the module docstring); shape (..., 2, 2)."""
    theta, phi = np.broadcast_arrays(np.asarray(theta, float), np.asarray(phi, float))
    s, c = np.sin(theta / 2), np.cos(theta / 2)
    g = 1j * np.exp(0.5j * theta)
    e = np.exp(1j * phi)
    return np.stack([np.stack([g * e * s, g * c], -1), np.stack([g * e * c, -g * s], -1)], -2)


def _coupler(alpha) -> np.ndarray:
    """A coupler whose splitting angle is pi/4 + alpha (alpha = 0 is 50:50); shape (..., 2, 2)."""
    a = np.pi / 4 + np.asarray(alpha, float)
    c, s = np.cos(a), 1j * np.sin(a)
    return np.stack([np.stack([c, s], -1), np.stack([s, c], -1)], -2)


def _physical_mzi(theta, phi, alpha1, alpha2, loss_db) -> np.ndarray:
    """B(alpha2) P(theta) B(alpha1) P(phi) times the amplitude transmission 10**(-loss_db/20)."""
    theta, phi, alpha1, alpha2, loss_db = np.broadcast_arrays(*(np.asarray(v, float) for v in
                                                                (theta, phi, alpha1, alpha2, loss_db)))
    b1, b2 = _coupler(alpha1), _coupler(alpha2)
    p_in = np.exp(1j * phi)
    p_mid = np.exp(1j * theta)
    k = b1.copy()
    k[..., 0, :] *= p_mid[..., None]
    k = b2 @ k
    k[..., :, 0] *= p_in[..., None]
    return k * (10.0 ** (-loss_db / 20.0))[..., None, None]


def check_unitary(u, atol: float = 1e-8, name: str = "u") -> np.ndarray:
    """``u`` as a complex square array, or a one-line error if it is not unitary to ``atol``."""
    u = np.asarray(u)
    if u.ndim != 2 or u.shape[0] != u.shape[1] or u.shape[0] < 1:
        raise HwsimError(f"{name} with shape {u.shape} is not allowed: expected a square N x N matrix")
    if not np.all(np.isfinite(u)):
        raise HwsimError(f"{name} is not allowed: expected finite entries")
    u = u.astype(complex)
    dev = float(np.max(np.abs(u.conj().T @ u - np.eye(u.shape[0]))))
    if dev > atol:
        raise HwsimError(f"{name} is not allowed: expected a unitary matrix (max |U^H U - I| = {dev:.3g} > {atol:g})")
    return u


def random_unitary(n: int, rng) -> np.ndarray:
    """A Haar-random n x n unitary (QR of a complex Gaussian matrix with the phases of R fixed)."""
    rng = np.random.default_rng(rng)
    z = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / math.sqrt(2)
    q, r = np.linalg.qr(z)
    d = np.diagonal(r)
    return q * (d / np.abs(d))


# ---------------------------------------------------------------------------------------------- meshes
@dataclass(frozen=True)
class Mesh:
    """A programmed mesh: MZIs in signal order and the output phase screen (phases in radians).

    Parameters
    ----------
    n : int
        Number of modes (ports).
    style : {"clements", "reck"}
        Topology the MZIs were placed in.
    modes : ndarray of int, shape (K,)
        Top mode m of each MZI (it acts on modes m and m + 1), in the order a signal meets them.
    theta, phi : ndarray of float, shape (K,)
        Internal and external phase of each MZI.
    out_phase : ndarray of float, shape (n,)
        Output phase screen.
    """

    n: int
    style: str
    modes: np.ndarray
    theta: np.ndarray
    phi: np.ndarray
    out_phase: np.ndarray

    @property
    def mzis(self) -> int:
        return int(self.modes.size)

    @property
    def phase_shifters(self) -> int:
        """Tunable phase shifters: two per MZI plus the output screen."""
        return 2 * self.mzis + self.n

    @property
    def columns(self) -> np.ndarray:
        """Column of each MZI when every MZI is placed as early as its two modes allow."""
        return mesh_columns(self.n, self.modes)

    @property
    def depth(self) -> int:
        """Number of MZI columns (0 for n = 1)."""
        return int(self.columns.max()) + 1 if self.mzis else 0

    def matrix(self) -> np.ndarray:
        """The ideal n x n unitary this mesh realises."""
        return _mesh_apply(self.n, self.modes, mzi_matrix(self.theta, self.phi), np.exp(1j * self.out_phase),
                           np.eye(self.n, dtype=complex))

    def with_phases(self, theta, phi, out_phase) -> Mesh:
        return dataclasses.replace(self, theta=np.asarray(theta, float), phi=np.asarray(phi, float),
                                   out_phase=np.asarray(out_phase, float))


def _mesh_apply(n: int, modes: np.ndarray, mats: np.ndarray, screen: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Apply 2x2 ``mats`` (K, 2, 2) on ``modes`` in order, then the complex ``screen``, to columns of x.

    MZIs of one column (disjoint modes) are applied together.
    """
    y = np.array(x, dtype=complex, copy=True)
    if modes.size:
        cols = mesh_columns(n, modes)
        for c in range(int(cols.max()) + 1):
            sel = np.flatnonzero(cols == c)
            m = modes[sel]
            top, bot = y[m], y[m + 1]
            t = mats[sel]
            y[m] = t[:, 0, 0, None] * top + t[:, 0, 1, None] * bot
            y[m + 1] = t[:, 1, 0, None] * top + t[:, 1, 1, None] * bot
    return screen[:, None] * y


def _null_right(x: complex, y: complex) -> tuple[float, float]:
    """(theta, phi) with which [x, y] @ T^H has a zero first entry (columns m, m+1 of a row)."""
    return 2.0 * math.atan2(abs(y), abs(x)), float(np.angle(-x * np.conj(y))) % TWO_PI


def _null_left(x: complex, y: complex) -> tuple[float, float]:
    """(theta, phi) with which T @ [x, y] has a zero second entry (rows m, m+1 of a column)."""
    return 2.0 * math.atan2(abs(x), abs(y)), float(np.angle(y * np.conj(x))) % TWO_PI


def _diag_times_mzi(m: np.ndarray) -> tuple[complex, complex, float, float]:
    """(a, b, theta, phi) with m = diag(a, b) @ T(theta, phi) for a 2x2 unitary m."""
    theta = 2.0 * math.atan2(abs(m[0, 0]), abs(m[0, 1]))
    s, c = math.sin(theta / 2), math.cos(theta / 2)
    g = 1j * np.exp(0.5j * theta)
    phi = float(np.angle(m[0, 0]) - np.angle(m[0, 1])) % TWO_PI if s * c > 1e-300 else 0.0
    e = np.exp(1j * phi)
    a = m[0, 0] / (g * e * s) if s >= c else m[0, 1] / (g * c)
    b = m[1, 0] / (g * e * c) if c >= s else -m[1, 1] / (g * s)
    return a / abs(a), b / abs(b), theta, phi


def _mzi_on(u: np.ndarray, m: int, t: np.ndarray, side: str) -> None:
    if side == "left":
        u[[m, m + 1], :] = t @ u[[m, m + 1], :]
    else:
        u[:, [m, m + 1]] = u[:, [m, m + 1]] @ t


def clements_decompose(u, atol: float = 1e-8) -> Mesh:
    """Phases of a rectangular (Clements) mesh realising the unitary ``u`` (N x N, N >= 1).

    Nulls the lower-left triangle alternately from the right (T^-1 on two columns) and from the left
    (T on two rows), then moves the left factors through the remaining diagonal (Clements et al.,
    "Optimal design for universal multiport interferometers", Optica 3, 1460 (2016)).
    """
    u = check_unitary(u, atol).copy()
    n = u.shape[0]
    right, left = [], []
    for i in range(n - 1):
        if i % 2 == 0:
            for j in range(i + 1):
                r, m = n - 1 - j, i - j
                th, ph = _null_right(u[r, m], u[r, m + 1])
                _mzi_on(u, m, mzi_matrix(th, ph).conj().T, "right")
                right.append((m, th, ph))
        else:
            for j in range(i + 1):
                m, c = n + j - i - 2, j
                th, ph = _null_left(u[m, c], u[m + 1, c])
                _mzi_on(u, m, mzi_matrix(th, ph), "left")
                left.append((m, th, ph))
    d = np.diagonal(u).copy()
    pushed = []
    for m, th, ph in reversed(left):
        blk = mzi_matrix(th, ph).conj().T @ np.diag(d[[m, m + 1]])
        a, b, th2, ph2 = _diag_times_mzi(blk)
        d[m], d[m + 1] = a, b
        pushed.append((m, th2, ph2))
    return _mesh_from(n, "clements", right + pushed, np.angle(d) % TWO_PI)


def reck_decompose(u, atol: float = 1e-8) -> Mesh:
    """Phases of a triangular (Reck) mesh realising the unitary ``u``: every row from the last up is
    nulled from the right with T^-1 on neighbouring columns (Reck et al., PRL 73, 58 (1994))."""
    u = check_unitary(u, atol).copy()
    n = u.shape[0]
    ops = []
    for r in range(n - 1, 0, -1):
        for m in range(r):
            th, ph = _null_right(u[r, m], u[r, m + 1])
            _mzi_on(u, m, mzi_matrix(th, ph).conj().T, "right")
            ops.append((m, th, ph))
    return _mesh_from(n, "reck", ops, np.angle(np.diagonal(u)) % TWO_PI)


def decompose(u, style: str = "clements", atol: float = 1e-8) -> Mesh:
    """``clements_decompose`` or ``reck_decompose`` by ``style``."""
    if style not in MESH_STYLES:
        raise HwsimError(f"style={style!r} is not allowed: expected one of {', '.join(MESH_STYLES)}")
    return (clements_decompose if style == "clements" else reck_decompose)(u, atol)


def _mesh_from(n: int, style: str, ops: list, out_phase: np.ndarray) -> Mesh:
    modes = np.array([o[0] for o in ops], dtype=np.int64)
    theta = np.array([o[1] for o in ops], dtype=float) % TWO_PI
    phi = np.array([o[2] for o in ops], dtype=float) % TWO_PI
    return Mesh(n, style, modes, theta, phi, np.asarray(out_phase, float))


# ---------------------------------------------------------------------------------------------- SVD
@dataclass(frozen=True)
class SvdMesh:
    """A real or complex P x Q matrix as ``scale * U @ diag(atten) @ V^H`` on a passive device.

    ``u_mesh`` (P x P) and ``v_mesh`` (Q x Q, realising V^H) are unitary meshes; ``atten`` holds the
    min(P, Q) per-channel amplitude transmissions in [0, 1] (the largest is 1); ``scale`` = the largest
    singular value is a gain applied after detection (digital), so the device itself is passive.
    """

    p: int
    q: int
    u_mesh: Mesh
    v_mesh: Mesh
    atten: np.ndarray
    scale: float

    def matrix(self, u_mat=None, v_mat=None) -> np.ndarray:
        """``scale * U diag(atten) V^H`` (with the given realised U and V^H matrices if not ideal)."""
        u_mat = self.u_mesh.matrix() if u_mat is None else u_mat
        v_mat = self.v_mesh.matrix() if v_mat is None else v_mat
        k = self.atten.size
        return self.scale * (u_mat[:, :k] * self.atten) @ v_mat[:k, :]

    @property
    def mzis(self) -> int:
        return self.u_mesh.mzis + self.v_mesh.mzis

    @property
    def phase_shifters(self) -> int:
        return self.u_mesh.phase_shifters + self.v_mesh.phase_shifters


#: How :func:`svd_map` fills the columns of U and rows of V^H beyond the min(P, Q) singular vectors (they
#: multiply nothing): ``"lapack"`` keeps what ``numpy.linalg.svd(full_matrices=True)`` returns,
#: ``"canonical"`` completes the thin SVD's singular vectors by :func:`complete_unitary`.
SVD_COMPLETIONS = ("lapack", "canonical")


def complete_unitary(a) -> np.ndarray:
    """An n x n unitary whose first k columns are the orthonormal columns of ``a`` (n x k).

    The other n - k columns are the columns of a fixed reference matrix (real Gaussian, n x (n - k), drawn
    from ``numpy.random.default_rng(n)``) projected off ``a`` and made orthonormal in order (QR). They
    are a continuous function of ``a``: a tiny change of ``a`` moves them by a tiny amount, and their
    entries are generically nonzero (the identity as reference would give exact zeros, at which the
    nulling decompositions pick phases from rounding noise). LAPACK's full SVD fills the same
    null space with vectors that depend on rounding (and so on the BLAS thread count). On an ideal mesh
    they multiply zero; under device errors (e.g. coarse phase DACs) every phase of the mesh matters, so an
    arbitrary completion makes the accuracy under errors arbitrary too.
    """
    a = np.asarray(a, dtype=complex)
    n, k = a.shape
    if k == n:
        return a.copy()
    ref = np.random.default_rng(n).standard_normal((n, n - k))
    rest = ref - a @ (a.conj().T @ ref)
    rest, _ = np.linalg.qr(rest - a @ (a.conj().T @ rest))    # projected twice: orthogonal to a to rounding
    return np.hstack([a, rest])


def svd_map(w, style: str = "clements", completion: str = "lapack") -> SvdMesh:
    """Map a P x Q matrix ``w`` onto two unitary meshes and min(P, Q) attenuators (see :class:`SvdMesh`).

    ``completion`` (one of :data:`SVD_COMPLETIONS`) says how the singular vectors outside the min(P, Q)
    kept ones (the null space of a non-square ``w``) are chosen; the ideal mesh matrices differ, the
    mapped matrix ``scale U diag(atten) V^H`` does not (to rounding). ``"lapack"`` (the default) keeps
    earlier mappings unchanged; ``"canonical"`` makes the mapping continuous in ``w`` and independent of the
    BLAS thread count.
    """
    w = np.asarray(w)
    if w.ndim != 2 or min(w.shape) < 1 or not np.all(np.isfinite(w)):
        raise HwsimError(f"w with shape {w.shape} is not allowed: expected a finite 2-D matrix")
    if completion not in SVD_COMPLETIONS:
        raise HwsimError(f"completion={completion!r} is not allowed: expected one of {', '.join(SVD_COMPLETIONS)}")
    if completion == "lapack":
        u, s, vh = np.linalg.svd(w.astype(complex))
    else:
        u, s, vh = np.linalg.svd(w.astype(complex), full_matrices=False)
        u, vh = complete_unitary(u), complete_unitary(vh.conj().T).conj().T
    scale = float(s[0]) if s.size and s[0] > 0 else 1.0
    return SvdMesh(w.shape[0], w.shape[1], decompose(u, style, atol=1e-6), decompose(vh, style, atol=1e-6),
                   s / scale, scale)


# ---------------------------------------------------------------------------------------------- errors
def _check_nonneg(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise HwsimError(f"{name}={value!r} is not allowed: expected a number >= 0")
    return float(value)


@dataclass(frozen=True)
class PhaseNoise:
    """Gaussian noise of standard deviation ``sigma_rad`` on every programmed phase (theta, phi, output)."""

    sigma_rad: float

    def __post_init__(self):
        _check_nonneg("phase_noise_rad", self.sigma_rad)


@dataclass(frozen=True)
class PhaseQuantization:
    """Phases set by a DAC of ``bits``: a phase x is programmed as 2 pi round(x 2**bits / 2 pi) / 2**bits."""

    bits: int

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 24:
            raise HwsimError(f"dac_bits={self.bits!r} is not allowed: expected an integer in [1, 24]")


@dataclass(frozen=True)
class CouplerError:
    """Each coupler's splitting angle is pi/4 + alpha with alpha ~ N(0, sigma_rad) (fixed per device)."""

    sigma_rad: float

    def __post_init__(self):
        _check_nonneg("coupler_sigma_rad", self.sigma_rad)


@dataclass(frozen=True)
class InsertionLoss:
    """Every MZI attenuates both arms by ``db`` dB (plus N(0, ``sigma_db``) per MZI, clipped at 0 dB)."""

    db: float
    sigma_db: float = 0.0

    def __post_init__(self):
        _check_nonneg("loss_db", self.db)
        _check_nonneg("loss_sigma_db", self.sigma_db)


@dataclass(frozen=True)
class DetectorNoise:
    """Additive complex Gaussian noise at the detectors, ``sigma`` times the RMS of the clean outputs."""

    sigma: float

    def __post_init__(self):
        _check_nonneg("detector_noise", self.sigma)


ERROR_TYPES = (PhaseNoise, PhaseQuantization, CouplerError, InsertionLoss, DetectorNoise)


def _check_errors(errors) -> tuple:
    errors = tuple(errors or ())
    for e in errors:
        if not isinstance(e, ERROR_TYPES):
            raise HwsimError(f"error model {e!r} is not allowed: expected one of "
                             f"{', '.join(t.__name__ for t in ERROR_TYPES)}")
    return errors


def quantize_phase(x, bits: int | None) -> np.ndarray:
    """Phases on the grid of a ``bits`` DAC (2 pi k / 2**bits), or unchanged for ``bits=None``."""
    x = np.asarray(x, float)
    if bits is None:
        return x
    step = TWO_PI / (1 << bits)
    return (np.round(x / step) % (1 << bits)) * step


@dataclass(frozen=True)
class PhysicalMesh:
    """One realised device: the phases it actually holds and its static imperfections per MZI."""

    mesh: Mesh
    theta: np.ndarray
    phi: np.ndarray
    out_phase: np.ndarray
    alpha1: np.ndarray
    alpha2: np.ndarray
    loss_db: np.ndarray

    def matrix(self) -> np.ndarray:
        mats = _physical_mzi(self.theta, self.phi, self.alpha1, self.alpha2, self.loss_db)
        return _mesh_apply(self.mesh.n, self.mesh.modes, mats, np.exp(1j * self.out_phase),
                           np.eye(self.mesh.n, dtype=complex))


@dataclass(frozen=True)
class Device:
    """Static imperfections of a fabricated mesh (what a calibration measures)."""

    alpha1: np.ndarray
    alpha2: np.ndarray
    loss_db: np.ndarray
    dac_bits: int | None = None
    extra: dict = field(default_factory=dict)


def sample_device(mesh: Mesh, errors, rng) -> Device:
    """Draw the static errors (couplers, loss) of one device carrying ``mesh``'s topology."""
    errors = _check_errors(errors)
    rng = np.random.default_rng(rng)
    k = mesh.mzis
    a1, a2, loss = np.zeros(k), np.zeros(k), np.zeros(k)
    bits = None
    for e in errors:
        if isinstance(e, CouplerError) and e.sigma_rad:
            a1 = a1 + rng.normal(0.0, e.sigma_rad, k)
            a2 = a2 + rng.normal(0.0, e.sigma_rad, k)
        elif isinstance(e, InsertionLoss):
            loss = loss + np.maximum(e.db + (rng.normal(0.0, e.sigma_db, k) if e.sigma_db else 0.0), 0.0)
        elif isinstance(e, PhaseQuantization):
            bits = e.bits if bits is None else min(bits, e.bits)
    return Device(a1, a2, loss, bits)


def realize(mesh: Mesh, errors=(), rng=None, device: Device | None = None) -> PhysicalMesh:
    """Program ``mesh`` onto one device with ``errors`` (drawn from ``rng``; ``device`` fixes the
    static part). Phases are quantized to the DAC grid, then phase noise is added."""
    errors = _check_errors(errors)
    rng = np.random.default_rng(rng)
    dev = sample_device(mesh, errors, rng) if device is None else device
    th, ph, out = (quantize_phase(v, dev.dac_bits) for v in (mesh.theta, mesh.phi, mesh.out_phase))
    for e in errors:
        if isinstance(e, PhaseNoise) and e.sigma_rad:
            th = th + rng.normal(0.0, e.sigma_rad, th.shape)
            ph = ph + rng.normal(0.0, e.sigma_rad, ph.shape)
            out = out + rng.normal(0.0, e.sigma_rad, out.shape)
    return PhysicalMesh(mesh, th, ph, out, dev.alpha1, dev.alpha2, dev.loss_db)


def detect(y, errors=(), rng=None) -> np.ndarray:
    """Detector readout of complex outputs ``y`` with the :class:`DetectorNoise` among ``errors``."""
    errors = _check_errors(errors)
    rng = np.random.default_rng(rng)
    y = np.asarray(y, dtype=complex)
    for e in errors:
        if isinstance(e, DetectorNoise) and e.sigma:
            rms = math.sqrt(float(np.mean(np.abs(y) ** 2))) if y.size else 0.0
            noise = rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)
            y = y + e.sigma * rms / math.sqrt(2) * noise
    return y


# ---------------------------------------------------------------------------------------------- calibration
def calibrate(mesh: Mesh, device: Device) -> Mesh:
    """Phases that make ``device`` (measured coupler errors, losses, DAC grid) realise ``mesh``'s matrix.

    Walks the MZIs in signal order keeping, per mode, the phase by which the device's signal leads the
    ideal one. For each MZI it picks the internal phase whose power splitting equals the ideal one (for
    the measured couplers; clipped when out of reach), quantizes it, picks the external phase that
    absorbs the incoming phase lead, and carries the MZI's residual output phases forward. The output
    screen removes what is left. Uniform insertion loss only scales the matrix (undone by the digital
    gain); what cannot be corrected: phase noise (random per programming) and detector noise.
    """
    n, bits = mesh.n, device.dac_bits
    lead = np.zeros(n)
    theta, phi = np.empty(mesh.mzis), np.empty(mesh.mzis)
    ideal = mzi_matrix(mesh.theta, mesh.phi)
    cols = mesh.columns
    for c in range(mesh.depth):                       # MZIs of one column are independent
        idx = np.flatnonzero(cols == c)
        m = mesh.modes[idx]
        a1, a2 = device.alpha1[idx], device.alpha2[idx]
        c1, s1 = np.cos(np.pi / 4 + a1), np.sin(np.pi / 4 + a1)
        c2, s2 = np.cos(np.pi / 4 + a2), np.sin(np.pi / 4 + a2)
        lin = np.stack([np.exp(1j * lead[m]), np.exp(1j * lead[m + 1])], -1)     # device signal lead
        target = ideal[idx] / lin[:, None, :]          # from the device's signal to the ideal output
        want = np.abs(target[:, 0, 0]) ** 2
        cos_t = (c1 * c1 * c2 * c2 + s1 * s1 * s2 * s2 - want) / (2 * c1 * c2 * s1 * s2)
        th = quantize_phase(np.arccos(np.clip(cos_t, -1.0, 1.0)), bits)
        k = _physical_mzi(th, 0.0, a1, a2, 0.0)
        # K diag(e^{i phi}, 1) = diag(e^{i d}) target: d0 from the (0, 1) entries, phi from the (0, 0) ones
        use01 = np.abs(target[:, 0, 1]) > 1e-12
        d0 = np.where(use01, np.angle(k[:, 0, 1]) - np.angle(target[:, 0, 1]),
                      np.angle(k[:, 0, 0]) - np.angle(target[:, 0, 0]))
        ph = np.where(np.abs(target[:, 0, 0]) > 1e-12,
                      quantize_phase((d0 + np.angle(target[:, 0, 0]) - np.angle(k[:, 0, 0])) % TWO_PI, bits), 0.0)
        real = _physical_mzi(th, ph, a1, a2, 0.0) * lin[:, None, :]
        err = real @ np.conj(np.swapaxes(ideal[idx], -1, -2))   # ~ diag(e^{i lead'}) up to what is unmatched
        lead[m], lead[m + 1] = np.angle(err[:, 0, 0]), np.angle(err[:, 1, 1])
        theta[idx], phi[idx] = th, ph
    out = quantize_phase((mesh.out_phase - lead) % TWO_PI, bits)
    return mesh.with_phases(theta, phi, out)
