"""``hwsim study tt-rfnn``: a dense RFNN against a TT-RFNN on scikit-learn's digits.

Reproduces the direction of the claims of "In-Sensor Radio Frequency Computing for Energy-Efficient
Intelligent Radar" (Sui et al., ICCAD 2023, arXiv:2312.10343): decomposing each layer into a tensor train of
small cores mapped onto small interferometer meshes needs far fewer interferometers than mapping the dense
layer onto two big meshes (SVD), almost preserving accuracy, and a robustness method recovers accuracy lost
to device errors. The paper's abstract states these qualitatively; hwsim takes no figure from the paper
(:data:`PAPER`), so the study prints the paper's wording beside its own numbers.

Network (both variants): 64 inputs (8x8 digit, pixel / 16) -> linear 64 -> 32 (RF) -> bias + ReLU
(digital, after the ADCs) -> linear 32 -> 10 (RF) -> bias -> argmax. The TT-RFNN holds layer 1 as cores
with in-modes (4, 4, 4), out-modes (2, 4, 4) and layer 2 with in-modes (2, 4, 4), out-modes (1, 2, 5), ranks
(1, r, r, 1). Both are trained in float64 with Adam on the 1347 training images (seeded, full batch),
then every weight matrix (dense) or core matrix (TT) is mapped by SVD onto Clements (or Reck) meshes and
attenuators (the null space of non-square matrices completed canonically,
:func:`hwsim.models.rf_mesh.complete_unitary`), and evaluated on the 450 test images in float, on ideal
meshes and on devices drawn from the error models of :mod:`hwsim.models.rf_mesh`. Detection is coherent
(I/Q); the real part is used.

Corrections (:data:`CORRECTIONS`), applied per mesh of each realised device:

- ``raw``: the ideal phases as programmed, nothing else;
- ``gain`` (the baseline): a digital gain after detection that undoes the mesh's measured mean power
  transmission ``||U_real||_F^2 / n`` (what any real receiver chain normalizes);
- ``phase``: the phases re-solved for the measured couplers, losses and DAC grid
  (:func:`hwsim.models.rf_mesh.calibrate`), no gain;
- ``phase+gain``: both: the full calibration (the robustness method).

Realisations: one device per seed (``numpy.random.default_rng(1000 s + 7)``), the same devices for every
correction (so differences are paired); means carry a 95 % Student-t interval over the devices
(:func:`mean_interval`).

Hardware (:func:`hardware`): both networks as shape-only models (:class:`hwsim.rf_array_layers.WorkloadModel`:
the dense layers, or the TT layers whose cores run one after another on the processor, the ``reuse``
arrangement) through the model-run loop (:func:`hwsim.run.predict_model`: the family's ``lower`` into mesh
passes and ``predict``), priced by :func:`hwsim.run.price` on :data:`HARDWARE_PRESET` (one 8-port Clements
SVD processor, physical target), with every cost entry behind the energy and its source as ``hwsim cost``
gives them. Counts only, so independent of the trained weights and of every random draw.

Determinism: every random draw has a fixed seed and the BLAS runs on one thread inside :func:`run`,
:func:`train`, :func:`map_network` and :func:`evaluate` (``threadpoolctl``), so the numbers do not depend on
``OMP_NUM_THREADS`` or the core count.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from hwsim import run as run_loop
from hwsim.errors import HwsimError
from hwsim.models import rf_mesh
from hwsim.models.rf_tt import TTLayer, dense_counts, tt_counts, tt_grads, tt_stagewise
from hwsim.unit import total

__all__ = [
    "CORRECTIONS",
    "ERROR_SWEEPS",
    "HARDWARE_PRESET",
    "NOMINAL",
    "PAPER",
    "StudyResult",
    "device_errors",
    "evaluate",
    "gain_normalize",
    "hardware",
    "load_digits_split",
    "map_network",
    "mean_interval",
    "run",
    "train",
    "workload_model",
]

TT_LAYERS = (TTLayer((4, 4, 4), (2, 4, 4), (1, 4, 4, 1)), TTLayer((2, 4, 4), (1, 2, 5), (1, 4, 4, 1)))
DENSE_SHAPES = ((32, 64), (10, 32))

#: What the paper states (abstract of arXiv:2312.10343; hwsim takes no figure from it).
PAPER = {
    "interferometers": 'TT-RFNN: "a notable reduction in parameter count, thereby optimizing RF interferometer '
                       'utilization" (no figure taken)',
    "accuracy": 'TT-RFNN "almost preserving" the dense accuracy (no figure taken)',
    "robustness": 'RTT-RFNN\'s robustness solver "enhances robustness" to physical errors (no figure taken)',
    "energy": 'a large-scale RFNN "consumes a substantial amount of energy", which TT-RFNN addresses (title: '
              '"Energy-Efficient"; no energy or latency figure taken)',
}

#: The RF-array preset the study's networks are timed and priced on, through the model-run loop.
HARDWARE_PRESET = "rf-array-8"
#: Width of the digital codes a layer (or a TT stage) reads and writes: the int8 of ``hwsim simulate
#: digits-mlp --accel rf-array-8``.
HARDWARE_ACT_BITS = 8
#: The cost entries that price each component of the physical RF array's inventory (``hwsim cost rf-array``).
COST_ENTRIES = {"dac": ("dac.fom_walden",), "signal_dac": ("dac.fom_walden",), "adc": ("adc.fom_walden",),
                "phase_shifter": ("phase_shifter.set.energy",), "attenuator": ("phase_shifter.set.energy",),
                "post": ("int32_add.energy",), "buffer": ("sram.8KB.access64.energy", "sram.32KB.access64.energy"),
                "dram": ("dram.{dram}.energy_per_bit",)}

CORRECTIONS = ("raw", "gain", "phase", "phase+gain")
_CORRECTION_LABELS = {"raw": "as programmed", "gain": "gain only (baseline)", "phase": "phases re-solved",
                      "phase+gain": "re-solved + gain"}

#: The fabricated device of the headline: coupler splitting error sigma (rad), insertion loss mean and
#: spread (dB per MZI); hwsim assumptions of a plausible device, scaled by ``scale`` in the sensitivity.
NOMINAL = {"coupler_rad": 0.05, "loss_db": 0.2, "loss_sigma_db": 0.05}
HEADLINE_BITS = (4, 8)


def device_errors(bits: int, scale: float = 1.0) -> tuple:
    """Static errors of one fabricated device: ``bits`` phase DACs and the :data:`NOMINAL` coupler error and
    insertion loss times ``scale``."""
    return (rf_mesh.PhaseQuantization(int(bits)), rf_mesh.CouplerError(NOMINAL["coupler_rad"] * scale),
            rf_mesh.InsertionLoss(NOMINAL["loss_db"] * scale, NOMINAL["loss_sigma_db"] * scale))


#: error kind -> (label, unit, full sweep of magnitudes, what builds the error model tuple)
ERROR_SWEEPS = {
    "phase_noise": ("phase noise", "rad", np.linspace(0.0, 0.3, 11), lambda v: (rf_mesh.PhaseNoise(v),)),
    "dac_bits": ("phase DAC", "bits", np.arange(10, 1, -1), lambda v: (rf_mesh.PhaseQuantization(int(v)),)),
    "coupler": ("coupler error", "rad", np.linspace(0.0, 0.3, 11), lambda v: (rf_mesh.CouplerError(v),)),
    "loss": ("insertion loss", "dB/MZI", np.linspace(0.0, 1.0, 11), lambda v: (rf_mesh.InsertionLoss(v, 0.2 * v),)),
    "detector": ("detector noise", "x RMS", np.linspace(0.0, 1.0, 11), lambda v: (rf_mesh.DetectorNoise(v),)),
}
#: Kinds the calibration can act on (static device errors); phase and detector noise are random per use.
CALIBRATABLE = ("dac_bits", "coupler", "loss")

_pinned = threadpool_limits.wrap(limits=1, user_api="blas")


def mean_interval(samples, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``samples`` and its two-sided Student-t interval at ``level``.

    ``mean +- t_{(1 + level)/2, n-1} s / sqrt(n)`` with ``s`` the sample standard deviation (ddof = 1);
    low = high = mean when every sample is equal, NaN bounds for fewer than two samples.
    """
    from scipy import stats

    x = np.asarray(samples, dtype=float).ravel()
    if x.size == 0:
        return math.nan, math.nan, math.nan
    m = float(np.mean(x))
    if x.size < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * float(np.std(x, ddof=1)) / math.sqrt(x.size)
    return m, m - half, m + half


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


@_pinned
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


@_pinned
def map_network(net, style: str = "clements"):
    """SVD meshes of every weight matrix (dense) or core matrix (TT), layer by layer (canonical completion)."""
    def smap(w):
        return rf_mesh.svd_map(w, style, completion="canonical")

    if net["kind"] == "dense":
        return [[smap(w)] for w in net["weights"]]
    return [[smap(_core_mat(g)) for g in net["weights"][:3]], [smap(_core_mat(g)) for g in net["weights"][3:]]]


def gain_normalize(u: np.ndarray) -> np.ndarray:
    """``u`` times the digital gain that makes its mean power transmission ``||u||_F^2 / n`` one.

    What a receiver measures by sending each input port a unit tone and summing the detected output power;
    one real scalar per mesh, so it undoes uniform loss but not its spread, nor phase or coupler errors.
    """
    u = np.asarray(u)
    return u * math.sqrt(u.shape[1] / max(float(np.sum(np.abs(u) ** 2)), 1e-300))


def _realized(sm, errors, rng, correction):
    resolve, gain = correction in ("phase", "phase+gain"), correction in ("gain", "phase+gain")
    mats = []
    for mesh in (sm.u_mesh, sm.v_mesh):
        dev = rf_mesh.sample_device(mesh, errors, rng)
        prog = rf_mesh.calibrate(mesh, dev) if resolve else mesh
        u = rf_mesh.realize(prog, errors, rng, device=dev).matrix()
        mats.append(gain_normalize(u) if gain else u)
    return sm.matrix(*mats)


@_pinned
def evaluate(net, meshes, xte, yte, errors=(), rng=None, calibrated=False, ideal=False,
             correction: str | None = None) -> float:
    """Test accuracy of ``net`` on its ``meshes`` realised with ``errors`` (float weights if ``meshes`` is None).

    ``correction`` is one of :data:`CORRECTIONS`; without it ``calibrated`` picks ``phase+gain`` (True) or
    ``raw`` (False). ``rng`` seeds the device draws (same seed, same device for every correction).
    """
    if correction is None:
        correction = "phase+gain" if calibrated else "raw"
    if correction not in CORRECTIONS:
        raise HwsimError(f"correction={correction!r} is not allowed: expected one of {', '.join(CORRECTIONS)}")
    rng = np.random.default_rng(rng)
    h = xte.T
    for li, layer_meshes in enumerate(meshes if meshes is not None else [None, None]):
        if meshes is None:
            y = _matrices(net["kind"], net["weights"])[li] @ h
        else:
            mats = [sm.matrix() if ideal else _realized(sm, errors, rng, correction) for sm in layer_meshes]
            y = mats[0] @ h if net["kind"] == "dense" else tt_stagewise(TT_LAYERS[li], mats, h)
            y = rf_mesh.detect(y, errors, rng).real
        y = y + net["biases"][li][:, None]
        h = np.maximum(y, 0) if li == 0 else y
    return float(np.mean(np.argmax(h, 0) == yte))


def _seed(s: int) -> int:
    return 1000 * s + 7


def _accuracies(net, meshes, xte, yte, errors, corrections, seeds) -> dict:
    """correction -> accuracy per device seed 0..seeds-1 (the same devices for every correction)."""
    return {c: [evaluate(net, meshes, xte, yte, errors, _seed(s), correction=c) for s in range(seeds)]
            for c in corrections}


def _counts(kind):
    if kind == "dense":
        return dense_counts(*DENSE_SHAPES[0]) + dense_counts(*DENSE_SHAPES[1])
    return tt_counts(TT_LAYERS[0], kind) + tt_counts(TT_LAYERS[1], kind)


def _ci(samples) -> str:
    m, lo, hi = mean_interval(samples)
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else f"{m:.3f}"


def _diff(a, b) -> list[float]:
    return [x - y for x, y in zip(a, b, strict=True)]


def workload_model(kind: str):
    """The ``dense`` network (:data:`DENSE_SHAPES`) or the ``tt`` network (:data:`TT_LAYERS`, read when
    called) as a shape-only model of the RF array's run loop (:class:`hwsim.rf_array_layers.WorkloadModel`)."""
    from hwsim.rf_array_layers import WorkloadLayer, WorkloadModel

    if kind == "dense":
        return WorkloadModel(*(WorkloadLayer(f"fc{i + 1}", o, n, act_bits=HARDWARE_ACT_BITS)
                               for i, (o, n) in enumerate(DENSE_SHAPES)))
    if kind == "tt":
        return WorkloadModel(*(WorkloadLayer.from_tt(f"tt{i + 1}", la, HARDWARE_ACT_BITS)
                               for i, la in enumerate(TT_LAYERS)))
    raise HwsimError(f"kind={kind!r} is not allowed: expected 'dense' or 'tt'")


def hardware(kind: str, accel=HARDWARE_PRESET, cost=None) -> dict:
    """Cycles, energy and counts of one inference of the ``dense`` or ``tt`` network on ``accel`` (an
    rf-array preset name or config): its :func:`workload_model` through the model-run loop
    (:func:`hwsim.run.predict_model`), each layer priced by :func:`hwsim.run.price` (``cost`` default: 45 nm,
    LPDDR4)."""
    from hwsim.cost import CostModel
    from hwsim.families import resolve_accel

    acc = resolve_accel(accel)
    cost = CostModel() if cost is None else cost
    mr = run_loop.predict_model(acc, workload_model(kind), label=kind)
    layers, parts = [], {}
    for lr in mr.layers:
        e = run_loop.price(cost, acc.units[lr.unit], lr.stats)
        for k, v in e.items():
            parts[k] = parts.get(k, 0.0) + v
        layers.append({"name": lr.name, "shape": lr.shape, "cycles": lr.stats.cycles,
                       "energy_pj": math.fsum(e.values()), "tiles": lr.stats.detail.get("tiles", 0)})
    st = total(lr.stats for lr in mr.layers)
    cfg = acc.units[0].config
    return {"cycles": st.cycles, "latency_us": st.cycles * cfg.ns_per_cycle / 1000.0,
            "energy_pj": math.fsum(parts.values()), "components": parts, "macs": st.macs,
            "tiles": st.detail.get("tiles", 0), "dac_conversions": st.actions.get("dac", "convert"),
            "signal_dac_conversions": st.actions.get("signal_dac", "convert"),
            "adc_conversions": st.actions.get("adc", "convert"), "dram_bytes": st.dram_bytes,
            "sram_bytes": st.sram_bytes, "layers": layers}


def _hardware_section(preset: str = HARDWARE_PRESET) -> dict:
    from hwsim.cost import CostModel
    from hwsim.families import resolve_accel

    cost = CostModel()
    nets = {"dense RFNN": hardware("dense", preset, cost), "TT-RFNN reuse": hardware("tt", preset, cost)}
    unit = resolve_accel(preset).units[0]
    cfg = unit.config
    per_action = cost.unit_energies(unit.family.load("inventory")(cfg))
    groups: dict[tuple, dict] = {}
    for comp, names in COST_ENTRIES.items():
        key = tuple(n.format(dram=cost.dram) for n in names)
        acts = groups.setdefault(key, {})
        acts.update({f"{c}.{a}": pj for (c, a), pj in per_action.items() if c == comp and a != "idle"})
    entries = [{"actions": acts, "entries": [{"name": e.name, "value": e.value, "unit": e.unit, "source": e.source}
                                             for e in map(cost.entry, key)]} for key, acts in groups.items()]
    return {"preset": preset, "description": cfg.describe(), "node_nm": cost.node_nm, "dram": cost.dram,
            "act_bits": HARDWARE_ACT_BITS, "networks": nets, "entries": entries}


@dataclass
class StudyResult:
    """Resource counts, accuracies (per device realisation), sensitivity and sweep curves of the study."""

    counts: dict
    params: dict
    accuracy: dict
    headline: dict
    sensitivity: dict
    sweeps: dict
    plot: str | None
    seconds: float
    notes: list = field(default_factory=list)
    files: dict = field(default_factory=dict)
    hardware: dict = field(default_factory=dict)

    def format(self) -> str:
        lines = ["TT-RFNN study (scikit-learn digits, 64-32-10 network, 450 test images)", "",
                 "Device counts of the whole network (both RF layers)",
                 f"  {'network':<22} {'params':>7} {'MZIs':>6} {'phase sh.':>9} {'atten.':>6} {'switches':>8} "
                 f"{'DACs':>6} {'ADCs':>5} {'stages':>6} {'passes':>6}"]
        for name, c in self.counts.items():
            lines.append(f"  {name:<22} {self.params[name.split()[0]]:>7} {c['mzis']:>6} {c['phase_shifters']:>9} "
                         f"{c['attenuators']:>6} {c['switches']:>8} {c['dacs']:>6} {c['adcs']:>5} "
                         f"{c['stages']:>6} {c['passes']:>6}")
        lines += self._format_hardware()
        d, ts, tr = (self.counts[k]["mzis"] for k in self.counts)
        h = self.headline
        lines += ["", "Headline (paper: Sui et al., arXiv:2312.10343; its abstract gives no figures, hwsim takes none)",
                  f"  interferometers dense / TT-RFNN: {d / tr:.2f}x with reused cores ({d} / {tr}), "
                  f"{d / ts:.2f}x with spatial copies ({d} / {ts})",
                  f"      paper: {PAPER['interferometers']}",
                  *self._headline_hardware(),
                  f"  accuracy on ideal meshes: dense {self.accuracy['ideal']['dense']:.3f}, "
                  f"TT {self.accuracy['ideal']['tt']:.3f} (float {self.accuracy['float']['dense']:.3f} / "
                  f"{self.accuracy['float']['tt']:.3f})",
                  f"      paper: {PAPER['accuracy']}",
                  f"  accuracy on fabricated devices, mean [95 % interval] over {h['devices']} devices each; "
                  f"device: phase DACs of the given bits, coupler error N(0, {NOMINAL['coupler_rad']} rad), "
                  f"loss {NOMINAL['loss_db']} +- {NOMINAL['loss_sigma_db']} dB/MZI",
                  f"    {'network':<8}{'bits':>4}  " + "".join(f"{_CORRECTION_LABELS[c]:<24}" for c in CORRECTIONS)]
        for net in ("dense", "tt"):
            for b in h["bits"]:
                accs = h["accuracy"][net][str(b)]
                lines.append(f"    {net:<8}{b:>4}  " + "".join(f"{_ci(accs[c]):<24}" for c in CORRECTIONS))
        lines += [f"      paper: {PAPER['robustness']}",
                  "  effects of the calibration's two parts, paired over the same devices (mean [95 % interval]):",
                  f"    {'network':<8}{'bits':>4}  {'digital gain (gain - raw)':<30}"
                  f"{'phase re-solve (re-solved + gain - gain)':<42}{'phase re-solve without gain':<30}"]
        for net in ("dense", "tt"):
            for b in h["bits"]:
                a = h["accuracy"][net][str(b)]
                lines.append(f"    {net:<8}{b:>4}  {_ci(_diff(a['gain'], a['raw'])):<30}"
                             f"{_ci(_diff(a['phase+gain'], a['gain'])):<42}{_ci(_diff(a['phase'], a['raw'])):<30}")
        lines += ["", "Sensitivity: accuracy, mean [95 % interval] over "
                  f"{self.sensitivity['devices']} devices ('gain' = baseline, 'cal' = re-solved + gain)"]
        for axis in ("bits", "scale"):
            sv = self.sensitivity[axis]
            lines.append(f"  vs {sv['label']} ({sv['fixed']})")
            lines.append(f"    {axis:>6}  " + "".join(f"{n + ' ' + c:<24}" for n in ("dense", "tt")
                                                          for c in ("gain", "cal")))
            for i, v in enumerate(sv["values"]):
                cells = "".join(f"{_ci(sv['accuracy'][n][c][i]):<24}" for n in ("dense", "tt") for c in ("gain", "cal"))
                lines.append(f"    {v:>6g}  {cells}")
        lines += ["", f"Accuracy under each device error alone (mean over {self.sweeps['devices']} devices; "
                  "'gain' = baseline, 'cal' = re-solved + gain, 'raw' = as programmed)",
                  f"  {'error':<16} {'magnitude':>10}  {'dense raw':>9} {'dense':>7} {'dense cal':>9} "
                  f"{'TT raw':>7} {'TT':>7} {'TT cal':>7}"]
        for kind, sw in self.sweeps.items():
            if kind == "devices":
                continue
            mags = sw["magnitudes"]
            for i in sorted({0, len(mags) // 3, 2 * len(mags) // 3, len(mags) - 1}):
                row = [sw["accuracy"][n].get(c, [None] * len(mags))[i] for n in ("dense", "tt")
                       for c in ("raw", "gain", "phase+gain")]
                cells = " ".join(f"{float(np.mean(v)):>7.3f}" if v is not None else f"{'-':>7}" for v in row)
                lines.append(f"  {sw['label']:<16} {mags[i]:>7.3g} {sw['unit']:<6} {cells}")
        lines += [""] + [f"  note: {n}" for n in self.notes]
        for key, path in self.files.items():
            lines.append(f"{key}: {path}")
        lines.append(f"({self.seconds:.1f} s)")
        return "\n".join(lines) + "\n"

    def _format_hardware(self) -> list[str]:
        hw = self.hardware
        if not hw:
            return []
        lines = ["", f"Time and energy of one inference on {hw['preset']} ({hw['description']}; {hw['node_nm']} nm, "
                 f"DRAM {hw['dram']}): each dense weight or TT core matrix tiled onto the one processor (TT cores one "
                 f"after another), {hw['act_bits']}-bit codes in memory; hwsim.run.predict_model + hwsim.run.price",
                 f"  {'network':<22} {'tiles':>5} {'cycles':>6} {'us':>6} {'energy pJ':>10} {'DAC conv':>8} "
                 f"{'sig.DAC':>7} {'ADC conv':>8} {'DRAM B':>6}   {'MZIs':>5} {'DACs':>5} {'ADCs':>4} "
                 "(its own meshes, above)"]
        for name, r in hw["networks"].items():
            c = self.counts.get(name, {})
            lines.append(f"  {name:<22} {r['tiles']:>5} {r['cycles']:>6} {r['latency_us']:>6.3f} "
                         f"{r['energy_pj']:>10.1f} {r['dac_conversions']:>8} {r['signal_dac_conversions']:>7} "
                         f"{r['adc_conversions']:>8} {r['dram_bytes']:>6}   {c.get('mzis', '-'):>5} "
                         f"{c.get('dacs', '-'):>5} {c.get('adcs', '-'):>4}")
        names = list(hw["networks"])
        comps = [k for k in hw["networks"][names[0]]["components"]
                 if any(hw["networks"][n]["components"].get(k) for n in names)]
        lines.append("  energy per component, pJ (" + " / ".join(names) + "): " + "; ".join(
            f"{k} " + " / ".join(f"{hw['networks'][n]['components'].get(k, 0.0):.1f}" for n in names) for k in comps))
        lines.append("  pJ per priced action ('hwsim cost rf-array') <- the cost entries behind it (as 'hwsim cost' "
                     "gives them):")
        sources: dict[str, int] = {}
        for g in hw["entries"]:
            acts = ", ".join(f"{a} {pj:.4g}" for a, pj in g["actions"].items())
            behind = ", ".join(f"{e['name']} {e['value']:g} {e['unit']} "
                               f"[{sources.setdefault(e['source'], len(sources) + 1)}]" for e in g["entries"])
            lines.append(f"    {acts} <- {behind}")
        lines += [f"    [{k}] {src}" for src, k in sources.items()]
        return lines

    def _headline_hardware(self) -> list[str]:
        hw = self.hardware
        if not hw:
            return []
        (dn, d), (tn, t) = hw["networks"].items()
        return [f"  energy per inference dense / TT-RFNN on {hw['preset']}: {d['energy_pj'] / t['energy_pj']:.2f}x "
                f"({d['energy_pj']:.1f} / {t['energy_pj']:.1f} pJ); cycles {d['cycles']} / {t['cycles']} "
                f"({d['cycles'] / t['cycles']:.2f}x)",
                f"      paper: {PAPER['energy']}"]

    def as_dict(self) -> dict:
        def clean(v):
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, list | tuple | np.ndarray):
                return [clean(x) for x in v]
            if isinstance(v, np.integer | np.floating):
                return v.item()
            return v

        return clean({"counts": self.counts, "params": self.params, "accuracy": self.accuracy,
                      "headline": self.headline, "sensitivity": self.sensitivity, "sweeps": self.sweeps,
                      "plot": self.plot, "files": self.files, "seconds": self.seconds, "notes": self.notes,
                      "hardware": self.hardware})


def sweep(nets, meshes, xte, yte, kind, magnitudes, seeds, corrections=("gain",)):
    """Accuracies per device seed per magnitude of error ``kind``: network -> correction -> [[acc] * seeds]."""
    build = ERROR_SWEEPS[kind][3]
    out = {}
    for name in nets:
        per = {c: [] for c in corrections}
        for v in magnitudes:
            for c, accs in _accuracies(nets[name], meshes[name], xte, yte, build(v), corrections, seeds).items():
                per[c].append(accs)
        out[name] = per
    return out


@_pinned
def run(out_dir=None, quick: bool = False, style: str = "clements") -> StudyResult:
    """Train, map, evaluate; write the plots and the sensitivity table to ``out_dir`` (default: the current
    directory). ``quick``: fewer epochs, devices and sweep points (what the test suite runs)."""
    t0 = time.perf_counter()
    xtr, ytr, xte, yte = load_digits_split()
    epochs = 150 if quick else 400
    nets = {"dense": train("dense", xtr, ytr, epochs=epochs), "tt": train("tt", xtr, ytr, epochs=epochs)}
    meshes = {k: map_network(v, style) for k, v in nets.items()}
    counts = {"dense RFNN": _counts("dense").as_dict(), "TT-RFNN spatial": _counts("spatial").as_dict(),
              "TT-RFNN reuse": _counts("reuse").as_dict()}
    params = {"dense": sum(w.size for w in nets["dense"]["weights"]),
              "TT-RFNN": sum(w.size for w in nets["tt"]["weights"])}
    acc = {"float": {k: evaluate(v, None, xte, yte) for k, v in nets.items()},
           "ideal": {k: evaluate(nets[k], meshes[k], xte, yte, ideal=True) for k in nets}}

    devices = 3 if quick else 20
    headline = {"devices": devices, "bits": list(HEADLINE_BITS), "nominal": dict(NOMINAL), "accuracy": {
        net: {str(b): _accuracies(nets[net], meshes[net], xte, yte, device_errors(b), CORRECTIONS, devices)
              for b in HEADLINE_BITS} for net in nets}}

    sens_devices = 2 if quick else 10
    bits_axis = [4, 8] if quick else [2, 3, 4, 5, 6, 7, 8, 10]
    scale_axis = [0.0, 1.0, 3.0] if quick else [0.0, 0.5, 1.0, 2.0, 3.0, 4.0]
    sens = {"devices": sens_devices,
            "bits": {"label": "phase-DAC bits", "fixed": "nominal coupler error and loss", "values": bits_axis,
                     "accuracy": {}},
            "scale": {"label": "error magnitude, x nominal coupler error and loss", "fixed": "8-bit phase DACs",
                      "values": scale_axis, "accuracy": {}}}
    for net in nets:
        for axis, errs in (("bits", [device_errors(b) for b in bits_axis]),
                           ("scale", [device_errors(8, v) for v in scale_axis])):
            rows = [_accuracies(nets[net], meshes[net], xte, yte, e, ("gain", "phase+gain"), sens_devices)
                    for e in errs]
            sens[axis]["accuracy"][net] = {"gain": [r["gain"] for r in rows], "cal": [r["phase+gain"] for r in rows]}

    sweep_devices = 1 if quick else 10
    sweeps: dict = {"devices": sweep_devices}
    for kind, (label, unit, mags, _) in ERROR_SWEEPS.items():
        mags = mags[::5] if quick else mags
        corr = ("raw", "gain", "phase+gain") if kind in CALIBRATABLE else ("raw", "gain")
        sweeps[kind] = {"label": label, "unit": unit, "magnitudes": [float(m) for m in mags],
                        "accuracy": sweep(nets, meshes, xte, yte, kind, mags, sweep_devices, corr)}
    notes = [f"device seeds 1000 s + 7 for s = 0..n-1; headline {devices} devices, sensitivity {sens_devices}, "
             f"per-error sweeps {sweep_devices}; the same devices under every correction",
             "gain: one digital gain per mesh undoing its measured mean power transmission (the baseline any "
             "receiver applies); phase re-solve: rf_mesh.calibrate for the measured couplers, losses and DAC grid",
             "phase and detector noise are random per use and are not calibrated",
             "BLAS pinned to one thread (threadpoolctl); SVD null spaces completed canonically, so the numbers "
             "do not depend on the thread count",
             "TT-RFNN spatial: one copy of each core's meshes per vector it processes, Benes switch matrices "
             "between stages; reuse: one copy per core, intermediates digitized (ADC) and re-generated (DAC)"]
    out = Path(out_dir) if out_dir else Path.cwd()
    out.mkdir(parents=True, exist_ok=True)
    files = {"plot": _plot(sweeps, out), "sensitivity plot": _plot_sensitivity(sens, out),
             "sensitivity table": _write_table(sens, headline, out)}
    hw = _hardware_section()
    return StudyResult(counts, params, acc, headline, sens, sweeps, files["plot"], time.perf_counter() - t0,
                       notes, files, hw)


def _write_table(sens, headline, out_dir: Path) -> str:
    path = out_dir / "tt_rfnn_sensitivity.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["axis", "value", "network", "correction", "devices", "mean", "ci95_low", "ci95_high"])
        for b in headline["bits"]:
            for net, per in headline["accuracy"].items():
                for c, accs in per[str(b)].items():
                    w.writerow(["headline_bits", b, net, c, len(accs), *(f"{v:.6f}" for v in mean_interval(accs))])
        for axis in ("bits", "scale"):
            sv = sens[axis]
            for net, per in sv["accuracy"].items():
                for c, rows in per.items():
                    for v, accs in zip(sv["values"], rows, strict=True):
                        w.writerow([axis, v, net, "phase+gain" if c == "cal" else c, len(accs),
                                    *(f"{x:.6f}" for x in mean_interval(accs))])
    return str(path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(ax, x, per_point, style, label):
    stats = np.array([mean_interval(a) for a in per_point])
    line = ax.plot(x, stats[:, 0], style, label=label)[0]
    if not np.isnan(stats[:, 1]).all():
        ax.fill_between(x, stats[:, 1], stats[:, 2], color=line.get_color(), alpha=0.15)


def _plot(sweeps, out_dir: Path) -> str:
    plt = _pyplot()
    kinds = [k for k in sweeps if k != "devices"]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 3.4))
    for ax, kind in zip(axes, kinds, strict=True):
        s = sweeps[kind]
        x = s["magnitudes"]
        for net, mark in (("dense", "o"), ("tt", "s")):
            per = s["accuracy"][net]
            _band(ax, x, per["gain"], f"{mark}-", f"{net}, gain (baseline)")
            if "phase+gain" in per:
                _band(ax, x, per["phase+gain"], f"{mark}--", f"{net}, calibrated")
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


def _plot_sensitivity(sens, out_dir: Path) -> str:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, axis in zip(axes, ("bits", "scale"), strict=True):
        sv = sens[axis]
        for net, mark in (("dense", "o"), ("tt", "s")):
            _band(ax, sv["values"], sv["accuracy"][net]["gain"], f"{mark}-", f"{net}, gain (baseline)")
            _band(ax, sv["values"], sv["accuracy"][net]["cal"], f"{mark}--", f"{net}, re-solved + gain")
        ax.set_xlabel(f"{sv['label']}\n{sv['fixed']}")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"test accuracy (mean, 95 % interval, {sens['devices']} devices)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "tt_rfnn_sensitivity.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
