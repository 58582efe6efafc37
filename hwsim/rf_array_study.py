"""``hwsim study tt-rfnn``: a dense RFNN against a TT-RFNN on scikit-learn's digits.

Reproduces the direction of the claims of "In-Sensor Radio Frequency Computing for Energy-Efficient
Intelligent Radar" (Sui et al.): decomposing each layer into a tensor train of small cores mapped onto small
interferometer meshes needs far fewer interferometers, phase shifters and DACs than mapping the dense layer
onto two big meshes (SVD), and a robustness method recovers accuracy lost to device errors.

Network (both variants): 64 inputs (8x8 digit, pixel / 16) -> linear 64 -> 32 (RF) -> bias + ReLU
(digital, after the ADCs) -> linear 32 -> 10 (RF) -> bias -> argmax. The TT-RFNN holds layer 1 as cores
with in-modes (4, 4, 4), out-modes (2, 4, 4) and layer 2 with in-modes (2, 4, 4), out-modes (1, 2, 5), ranks
(1, r, r, 1). Both are trained in float64 with Adam on the 1347 training images (seeded, full batch),
then every weight matrix (dense) or core matrix (TT) is mapped by SVD onto Clements (or Reck) meshes and
attenuators, and evaluated on the 450 test images: in float, on ideal meshes and on devices drawn from
each error model (:mod:`hwsim.models.rf_mesh`) across a sweep of magnitudes and seeds, without and with
the calibration (:func:`hwsim.models.rf_mesh.calibrate` re-solves the phases for the measured coupler
errors, losses and DAC grid; a per-layer digital gain undoes the measured mean transmission). Detection
is coherent (I/Q); the real part is used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hwsim.models import rf_mesh
from hwsim.models.rf_tt import TTLayer, dense_counts, tt_counts, tt_grads, tt_stagewise

__all__ = ["ERROR_SWEEPS", "StudyResult", "evaluate", "load_digits_split", "map_network", "run", "train"]

TT_LAYERS = (TTLayer((4, 4, 4), (2, 4, 4), (1, 4, 4, 1)), TTLayer((2, 4, 4), (1, 2, 5), (1, 4, 4, 1)))
DENSE_SHAPES = ((32, 64), (10, 32))

#: error kind -> (label, unit, full sweep of magnitudes, what builds the error model tuple)
ERROR_SWEEPS = {
    "phase_noise": ("phase noise", "rad", np.linspace(0.0, 0.3, 20), lambda v: (rf_mesh.PhaseNoise(v),)),
    "dac_bits": ("phase DAC", "bits", np.arange(12, 0, -1), lambda v: (rf_mesh.PhaseQuantization(int(v)),)),
    "coupler": ("coupler error", "rad", np.linspace(0.0, 0.3, 20), lambda v: (rf_mesh.CouplerError(v),)),
    "loss": ("insertion loss", "dB/MZI", np.linspace(0.0, 1.0, 20), lambda v: (rf_mesh.InsertionLoss(v, 0.2 * v),)),
    "detector": ("detector noise", "x RMS", np.linspace(0.0, 1.0, 20), lambda v: (rf_mesh.DetectorNoise(v),)),
}
#: Kinds the calibration can act on (static device errors); phase and detector noise are random per use.
CALIBRATABLE = ("dac_bits", "coupler", "loss")


def load_digits_split():
    """scikit-learn digits: (x_train, y_train, x_test, y_test), 1347 / 450 images, pixels / 16."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data / 16.0, d.target, test_size=450, random_state=0,
                                          stratify=d.target)
    return xtr, ytr, xte, yte


def _adam(params, grads, state, lr, t):
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        m, v = state.setdefault(i, (np.zeros_like(p), np.zeros_like(p)))
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        state[i] = (m, v)
        p -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)


def train(kind: str, xtr, ytr, epochs: int = 400, seed: int = 0, lr: float = 0.01):
    """Train the ``dense`` or ``tt`` network; returns its parameters (weights or cores, and biases)."""
    rng = np.random.default_rng(seed)
    onehot = np.eye(10)[ytr]
    if kind == "dense":
        ws = [rng.standard_normal(s) / math.sqrt(s[1]) for s in DENSE_SHAPES]
    else:
        ws = []
        for layer in TT_LAYERS:
            for k in range(layer.d):
                shp = layer.core_shape(k)
                ws.append(rng.standard_normal(shp) * (1.0 / math.sqrt(shp[0] * shp[2])) ** 1.0)
    bs = [np.zeros(32), np.zeros(10)]
    state: dict = {}
    for t in range(1, epochs + 1):
        mats = _matrices(kind, ws)
        h_pre = xtr @ mats[0].T + bs[0]
        h = np.maximum(h_pre, 0)
        z = h @ mats[1].T + bs[1]
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dz = (p - onehot) / len(xtr)
        dw2 = dz.T @ h
        dh = dz @ mats[1] * (h_pre > 0)
        dw1 = dh.T @ xtr
        if kind == "dense":
            gws = [dw1, dw2]
        else:
            gws = tt_grads(TT_LAYERS[0], ws[:3], dw1) + tt_grads(TT_LAYERS[1], ws[3:], dw2)
        _adam(ws + bs, gws + [dh.sum(0), dz.sum(0)], state, lr, t)
    return {"kind": kind, "weights": ws, "biases": bs}


def _matrices(kind, ws):
    if kind == "dense":
        return ws
    return [TT_LAYERS[0].full(ws[:3]), TT_LAYERS[1].full(ws[3:])]


def _core_mat(g):
    return g.reshape(g.shape[0] * g.shape[1], -1)


def map_network(net, style: str = "clements"):
    """SVD meshes of every weight matrix (dense) or core matrix (TT), layer by layer."""
    if net["kind"] == "dense":
        return [[rf_mesh.svd_map(w, style)] for w in net["weights"]]
    return [[rf_mesh.svd_map(_core_mat(g), style) for g in net["weights"][:3]],
            [rf_mesh.svd_map(_core_mat(g), style) for g in net["weights"][3:]]]


def _realized(sm, errors, rng, calibrated):
    mats = []
    for mesh in (sm.u_mesh, sm.v_mesh):
        dev = rf_mesh.sample_device(mesh, errors, rng)
        prog = rf_mesh.calibrate(mesh, dev) if calibrated else mesh
        u = rf_mesh.realize(prog, errors, rng, device=dev).matrix()
        if calibrated:      # digital gain from the measured mean transmission of the device
            u = u * math.sqrt(mesh.n / max(float(np.sum(np.abs(u) ** 2)), 1e-300))
        mats.append(u)
    return sm.matrix(*mats)


def evaluate(net, meshes, xte, yte, errors=(), rng=None, calibrated=False, ideal=False) -> float:
    """Test accuracy of ``net`` on its ``meshes`` realised with ``errors`` (float weights if ``meshes`` is None)."""
    rng = np.random.default_rng(rng)
    h = xte.T
    for li, layer_meshes in enumerate(meshes if meshes is not None else [None, None]):
        if meshes is None:
            y = _matrices(net["kind"], net["weights"])[li] @ h
        else:
            mats = [sm.matrix() if ideal else _realized(sm, errors, rng, calibrated) for sm in layer_meshes]
            y = mats[0] @ h if net["kind"] == "dense" else tt_stagewise(TT_LAYERS[li], mats, h)
            y = rf_mesh.detect(y, errors, rng).real
        y = y + net["biases"][li][:, None]
        h = np.maximum(y, 0) if li == 0 else y
    return float(np.mean(np.argmax(h, 0) == yte))


def _counts(kind):
    if kind == "dense":
        return dense_counts(*DENSE_SHAPES[0]) + dense_counts(*DENSE_SHAPES[1])
    return tt_counts(TT_LAYERS[0], kind) + tt_counts(TT_LAYERS[1], kind)


@dataclass
class StudyResult:
    """Resource counts, accuracies and sweep curves of the study."""

    counts: dict
    params: dict
    accuracy: dict
    sweeps: dict
    plot: str | None
    seconds: float
    notes: list = field(default_factory=list)

    def format(self) -> str:
        lines = ["TT-RFNN study (scikit-learn digits, 64-32-10 network, 450 test images)", "",
                 "Device counts of the whole network (both RF layers)",
                 f"  {'network':<22} {'params':>7} {'MZIs':>6} {'phase sh.':>9} {'atten.':>6} {'switches':>8} "
                 f"{'DACs':>6} {'ADCs':>5} {'stages':>6} {'passes':>6}"]
        for name, c in self.counts.items():
            lines.append(f"  {name:<22} {self.params[name.split()[0]]:>7} {c['mzis']:>6} {c['phase_shifters']:>9} "
                         f"{c['attenuators']:>6} {c['switches']:>8} {c['dacs']:>6} {c['adcs']:>5} "
                         f"{c['stages']:>6} {c['passes']:>6}")
        d, ts, tr = (self.counts[k]["mzis"] for k in self.counts)
        lines += [f"  MZIs: dense / TT-RFNN = {d / tr:.1f}x (reused cores), {d / ts:.2f}x (spatial copies)", "",
                  "Test accuracy"]
        for k, v in self.accuracy.items():
            lines.append(f"  {k:<40} {v['dense']:>7.3f} dense {v['tt']:>7.3f} TT")
        lines += ["", "Accuracy under device errors (mean over seeds; 'cal' = with calibration)",
                  f"  {'error':<16} {'magnitude':>10}  {'dense':>7} {'dense cal':>9} {'TT':>7} {'TT cal':>7}"]
        for sw in self.sweeps.values():
            mags = sw["magnitudes"]
            for i in sorted({0, len(mags) // 3, 2 * len(mags) // 3, len(mags) - 1}):
                row = [sw["dense"][i], sw.get("dense_cal", [math.nan] * len(mags))[i], sw["tt"][i],
                       sw.get("tt_cal", [math.nan] * len(mags))[i]]
                cells = " ".join(f"{v:>7.3f}" if not math.isnan(v) else f"{'-':>7}" for v in row)
                lines.append(f"  {sw['label']:<16} {mags[i]:>7.3g} {sw['unit']:<6} {cells}")
        lines += [""] + [f"  note: {n}" for n in self.notes]
        if self.plot:
            lines.append(f"plot: {self.plot}")
        lines.append(f"({self.seconds:.1f} s)")
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict:
        return {"counts": self.counts, "params": self.params, "accuracy": self.accuracy,
                "sweeps": {k: {kk: (list(map(float, vv)) if isinstance(vv, list | np.ndarray) else vv)
                               for kk, vv in v.items()} for k, v in self.sweeps.items()},
                "plot": self.plot, "seconds": self.seconds, "notes": self.notes}


def sweep(nets, meshes, xte, yte, kind, magnitudes, seeds, calibrated=False):
    """Mean accuracy per magnitude of error ``kind`` for each network (dict name -> list)."""
    build = ERROR_SWEEPS[kind][3]
    out = {}
    for name in nets:
        accs = []
        for v in magnitudes:
            errs = build(v)
            accs.append(float(np.mean([evaluate(nets[name], meshes[name], xte, yte, errs, 1000 * s + 7, calibrated)
                                       for s in range(seeds)])))
        out[name] = accs
    return out


def run(out_dir=None, quick: bool = False, style: str = "clements") -> StudyResult:
    """Train, map, sweep; write ``tt_rfnn_accuracy.png`` to ``out_dir`` (default: the current directory)."""
    t0 = time.perf_counter()
    xtr, ytr, xte, yte = load_digits_split()
    nets = {"dense": train("dense", xtr, ytr, epochs=150 if quick else 400),
            "tt": train("tt", xtr, ytr, epochs=150 if quick else 400)}
    meshes = {k: map_network(v, style) for k, v in nets.items()}
    counts = {"dense RFNN": _counts("dense").as_dict(), "TT-RFNN spatial": _counts("spatial").as_dict(),
              "TT-RFNN reuse": _counts("reuse").as_dict()}
    params = {"dense": sum(w.size for w in nets["dense"]["weights"]),
              "TT-RFNN": sum(w.size for w in nets["tt"]["weights"])}
    acc = {"float (trained weights)": {k: evaluate(v, None, xte, yte) for k, v in nets.items()},
           f"ideal {style} meshes": {k: evaluate(nets[k], meshes[k], xte, yte, ideal=True) for k in nets}}
    seeds = 2 if quick else 10
    sweeps = {}
    for kind, (label, unit, mags, _) in ERROR_SWEEPS.items():
        mags = mags[::4] if quick else mags
        s = {"label": label, "unit": unit, "magnitudes": [float(m) for m in mags]}
        s.update(sweep(nets, meshes, xte, yte, kind, mags, seeds))
        if kind in CALIBRATABLE:
            c = sweep(nets, meshes, xte, yte, kind, mags, max(1, seeds // 5), calibrated=True)
            s["dense_cal"], s["tt_cal"] = c["dense"], c["tt"]
        sweeps[kind] = s
    notes = [f"sweeps: {seeds} seeds per magnitude without calibration, {max(1, seeds // 5)} with it "
             "(calibration re-solves every MZI in Python)",
             "calibration acts on static errors (DAC grid, couplers, loss); phase and detector noise are random "
             "per use and are not calibrated",
             "TT-RFNN spatial: one copy of each core's meshes per vector it processes, Benes switch matrices "
             "between stages; reuse: one copy per core, intermediates digitized (ADC) and re-generated (DAC)"]
    plot = _plot(sweeps, Path(out_dir) if out_dir else Path.cwd())
    return StudyResult(counts, params, acc, sweeps, plot, time.perf_counter() - t0, notes)


def _plot(sweeps, out_dir: Path) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4 * len(sweeps), 3.4))
    for ax, (_kind, s) in zip(axes, sweeps.items(), strict=True):
        x = s["magnitudes"]
        ax.plot(x, s["dense"], "o-", label="dense RFNN")
        ax.plot(x, s["tt"], "s-", label="TT-RFNN")
        if "dense_cal" in s:
            ax.plot(x, s["dense_cal"], "o--", label="dense, calibrated")
            ax.plot(x, s["tt_cal"], "s--", label="TT, calibrated")
        ax.set_xlabel(f"{s['label']} ({s['unit']})")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "tt_rfnn_accuracy.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
