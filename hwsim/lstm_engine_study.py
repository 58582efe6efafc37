"""``hwsim study tt-vs-ht``: TT (TIE-style) vs HT (FDHT-style) LSTM engines of equal PEs, buffers and bandwidth.

The claim checked (Gong et al., FDHT-LSTM, IEEE TC / arXiv:2212.02046): a fully decomposed hierarchical-Tucker
LSTM on its engine runs with higher throughput and energy efficiency than the TT-LSTM on TIE, for LSTM-UCF11
and LSTM-Youtube. Both run here on the same datapath (:mod:`hwsim.lstm_engine`: 16 PEs, 16 banks, int16,
1 GHz, the same SRAMs, priced at 28 nm like TIE, DRAM LPDDR4 at 8 pJ/bit unless swept); one frame = the input
layer's stages + the hidden-to-hidden product + the gate unit, H = 256.

Designs (rows of the table):

* ``tt-r4``: TIE as published: TT ranks 4 (Yang et al. 2017), dense ``U`` in the hidden SRAM, the RTL's
  ``"rows"`` schedule (its stages have 16 rows, so packing would change nothing).
* ``ht-r4 rows``: the old comparison: HT rank 4 on the ``"rows"`` schedule with a dense ``U`` - the
  transfer stages (4 rows) leave 12 of 16 lanes idle.
* ``ht-r4 packed``: the same with the transfer stages packed onto the lanes (``schedule="packed"``).
* ``ht-r4 packed+U``: **the fair FDHT baseline**: packed, and ``U`` decomposed as HT too (FDHT decomposes
  both matrices). The headline compares it with ``tt-r4``.
* ``ht-r7 packed+U``: HT rank 7, about the TT's input-layer parameter count.
* ``tt-r4 +U``: a control, TT with ``U`` TT-decomposed as well, to separate the format from the
  decision to decompose ``U``.

The packed schedule and the decomposed ``U`` exist in the cycle model only; the RTL implements the
``"rows"`` schedule with a dense ``U``. Every number comes from the model-run loop: the workload as a
shape-only model (:class:`hwsim.lstm_engine.WorkloadModel`, one :class:`~hwsim.lstm_engine.LstmWorkload`
layer) through :func:`hwsim.run.predict_model` (the family's ``lower`` and ``predict``), priced by
:func:`hwsim.run.price`; the sensitivity re-prices the same Stats over weight SRAM sizes and DRAM types
(energy per byte from :mod:`hwsim.cost`, each entry with its source). Only integer counts and fixed-order
float sums are involved (no BLAS, no random draw that reaches a number), so the output does not depend
on the thread count.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from hwsim import run as run_loop
from hwsim.cost import CostModel
from hwsim.errors import HwsimError
from hwsim.families import Accelerator, Unit
from hwsim.lstm_engine import FAMILY, LstmEngineConfig, WorkloadModel, workload

__all__ = ["PAPER", "StudyResult", "design_stats", "run"]

NODE_NM = 28
#: (name, input decomposition, rank, schedule, decomposition of U or None for dense)
DESIGNS = (
    ("tt-r4", "tt", 4, "rows", None),
    ("ht-r4 rows", "ht", 4, "rows", None),
    ("ht-r4 packed", "ht", 4, "packed", None),
    ("ht-r4 packed+U", "ht", 4, "packed", "ht"),
    ("ht-r7 packed+U", "ht", 7, "packed", "ht"),
    ("tt-r4 +U", "tt", 4, "rows", "tt"),
)
BASE, FAIR, OLD, CONTROL = "tt-r4", "ht-r4 packed+U", "ht-r4 rows", "tt-r4 +U"
#: FDHT-LSTM engine vs TIE as the paper's abstract states them (arXiv:2212.02046, Gong et al.): throughput
#: and energy-efficiency ratios, HT over TT (> 1: HT ahead). Its own engine and models against TIE's
#: published figures, not one datapath.
#: FDHT over TIE as the paper's abstract gives it: on LSTM-Youtube x2.5 throughput and x2.41 energy efficiency
#: (and x1.46 area efficiency); on LSTM-UCF only "higher throughput, higher energy efficiency" without a figure
#: in the abstract (None: not stated; we have no access to the paper's tables).
PAPER = {"ucf11": {"throughput": None, "energy_eff": None}, "youtube": {"throughput": 2.5, "energy_eff": 2.41}}
PAPER_SOURCE = ("Gong et al., 'Algorithm and Hardware Co-Design of Energy-Efficient LSTM Networks for Video "
                "Recognition with Hierarchical Tucker Tensor Decomposition', IEEE JETCAS 2022 (arXiv:2212.02046), "
                "abstract: FDHT engine vs TIE's published figures; UCF: 'higher' only")
#: Weight SRAM sizes (KiB) and DRAM types of the sensitivity table.
WEIGHT_KIB = (8, 16, 32, 64, 128)
DRAMS = ("hbm2", "lpddr4", "ddr3")


def _config(schedule: str, pes: int, weight_kib: int = 16) -> LstmEngineConfig:
    return LstmEngineConfig(pes=pes, banks=pes, schedule=schedule, weight_sram_bytes=weight_kib * 1024)


def design_stats(wl: str, design: str, pes: int = 16, weight_kib: int = 16):
    """``(config, workload, Stats)`` of one frame of ``design`` (a name in :data:`DESIGNS`) on workload
    ``wl``: the workload as a shape-only model (:class:`hwsim.lstm_engine.WorkloadModel`) through the
    counts-only model-run loop (:func:`hwsim.run.predict_model`: the family's ``lower`` and ``predict``)."""
    _, dec, rank, schedule, hidden = next(d for d in DESIGNS if d[0] == design)
    cfg = dataclasses.replace(_config(schedule, pes, weight_kib), decomposition=dec)
    w = workload(wl, dec, rank, hidden=hidden)
    (layer,) = run_loop.predict_model(Accelerator(design, (Unit(FAMILY, cfg),)), WorkloadModel(w)).layers
    return cfg, w, layer.stats


def _energy(cost: CostModel, cfg, st) -> tuple[float, float]:
    """(total pJ, DRAM pJ) of one frame's Stats on ``cfg``."""
    parts = run_loop.price(cost, Unit(FAMILY, cfg), st)
    return sum(parts.values()), parts.get("dram", 0.0)


@dataclass
class StudyResult:
    """Design rows, headline ratios, the sensitivity grid and where the plot went."""

    rows: list[dict] = field(default_factory=list)
    headline: list[dict] = field(default_factory=list)
    sensitivity: list[dict] = field(default_factory=list)
    plot: str | None = None
    pes: int = 16

    def format(self) -> str:
        out = [f"TT vs HT on lstm-engine: {self.pes} PEs, {self.pes} banks, int16, 1 GHz, {NODE_NM} nm, DRAM lpddr4 "
               "(8 pJ/bit); one frame = input layer + hidden (U) + gates, H = 256"]
        head = (f"{'workload':8} {'design':15} {'W params':>8} {'U params':>8} {'in-layer cyc':>12} {'stalls':>6} "
                f"{'cycles/frame':>12} {'frames/s':>8} {'uJ/frame':>8} {'no DRAM':>7} {'mm^2':>5} {'PE util':>7}")
        out += [head, "-" * len(head)]
        for r in self.rows:
            out.append(f"{r['workload']:8} {r['design']:15} {r['params']:8,d} {r['u_params']:8,d} "
                       f"{r['matvec_cycles']:12,d} {r['stall_cycles']:6,d} {r['cycles']:12,d} "
                       f"{r['frames_per_s']:8,.0f} {r['energy_uj']:8.2f} {r['energy_no_dram_uj']:7.2f} "
                       f"{r['area_mm2']:5.2f} {r['utilization']:7.2f}")
        out += ["", "HT over TT (> 1: HT ahead). throughput = TT cycles / HT cycles per frame (input layer alone in "
                "brackets); energy eff. = TT uJ / HT uJ per frame, with and without the DRAM fetch of x",
                f"{'workload':8} {'comparison':42} {'throughput':>10} {'(in-layer)':>10} {'energy eff.':>11} "
                f"{'(no DRAM)':>9}   paper: throughput, energy eff."]
        for h in self.headline:
            paper = PAPER[h["workload"]]
            out.append(f"{h['workload']:8} {h['comparison']:42} {h['throughput']:10.2f} {h['throughput_matvec']:10.2f} "
                       f"{h['energy_eff']:11.2f} {h['energy_eff_no_dram']:9.2f}   "
                       + (f"x{paper['throughput']:.2f}, x{paper['energy_eff']:.2f}" if paper["throughput"]
                          else "higher, higher (no figure in the abstract)"))
        out.append(f"paper: {PAPER_SOURCE}")
        out += ["", f"Sensitivity of the fair comparison ({FAIR} vs {BASE}): energy eff. HT/TT by weight SRAM size "
                "and DRAM energy per bit (cycles depend on neither: x's load is overlapped)"]
        drams = list(dict.fromkeys(s["dram"] for s in self.sensitivity))
        pj = {s["dram"]: s["dram_pj_per_bit"] for s in self.sensitivity}
        out.append(f"{'workload':8} {'weight SRAM':>11} {'TT uJ':>7} {'HT uJ':>7} "
                   + " ".join(f"{d + ' ' + format(pj[d], '.3g'):>12}" for d in drams) + f" {'no DRAM':>8}")
        for wl in dict.fromkeys(s["workload"] for s in self.sensitivity):
            for kib in dict.fromkeys(s["weight_kib"] for s in self.sensitivity):
                cells = {s["dram"]: s for s in self.sensitivity if s["workload"] == wl and s["weight_kib"] == kib}
                lp = cells["lpddr4"]
                out.append(f"{wl:8} {str(kib) + ' KiB':>11} {lp['tt_uj']:7.2f} {lp['ht_uj']:7.2f} "
                           + " ".join(f"{cells[d]['energy_eff']:12.2f}" for d in drams)
                           + f" {lp['energy_eff_no_dram']:8.2f}")
        if self.plot:
            out.append(f"plot: {self.plot}")
        return "\n".join(out)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "headline": self.headline, "sensitivity": self.sensitivity, "plot": self.plot,
                "node_nm": NODE_NM, "paper": PAPER, "paper_source": PAPER_SOURCE}


def _row(cost: CostModel, wl: str, design: str, pes: int) -> dict:
    cfg, w, st = design_stats(wl, design, pes)
    total, dram = _energy(cost, cfg, st)
    area = cost.area(FAMILY.load("inventory")(cfg)).total_mm2
    fps = 1e9 / (st.cycles * cfg.ns_per_cycle)
    return {"workload": wl, "design": design, "schedule": cfg.schedule, "pes": pes, "params": w.fmt.params,
            "u_params": w.hidden_fmt.params if w.hidden_fmt is not None else 4 * w.hidden * w.hidden,
            "input_macs": sum(s.macs for s in w.stages), "macs": st.macs, "cycles": st.cycles,
            "stall_cycles": st.stall_cycles, "matvec_cycles": st.detail["matvec_cycles"], "frames_per_s": fps,
            "energy_uj": total * 1e-6, "energy_no_dram_uj": (total - dram) * 1e-6, "dram_uj": dram * 1e-6,
            "area_mm2": area, "utilization": st.macs / (st.cycles * pes),
            "stages": [{"factor": s.name, "R": s.R, "K": s.K, "Q": s.Q, "pack": s.pack, "macs": s.macs,
                        "cycles": s.cycles, "stalls": s.conflict_cycles} for s in st.detail["stages"]]}


def _ratios(wl: str, label: str, tt: dict, ht: dict) -> dict:
    return {"workload": wl, "comparison": label, "tt": tt["design"], "ht": ht["design"],
            "throughput": tt["cycles"] / ht["cycles"], "throughput_matvec": tt["matvec_cycles"] / ht["matvec_cycles"],
            "energy_eff": tt["energy_uj"] / ht["energy_uj"],
            "energy_eff_no_dram": tt["energy_no_dram_uj"] / ht["energy_no_dram_uj"]}


def sensitivity(workloads, pes: int = 16, weight_kib=WEIGHT_KIB, drams=DRAMS) -> list[dict]:
    """Energy efficiency HT/TT of the fair comparison (``FAIR`` vs ``BASE``) on a grid of weight SRAM sizes
    (KiB) and DRAM types: one Stats per design and size from the unit protocol, priced per DRAM type."""
    out = []
    for wl in workloads:
        for kib in weight_kib:
            try:
                (ct, _, st_t), (ch, _, st_h) = (design_stats(wl, d, pes, kib) for d in (BASE, FAIR))
            except HwsimError:  # the factors do not fit this weight SRAM
                continue
            for dram in drams:
                cost = CostModel(NODE_NM, dram)
                (et, dt), (eh, dh) = _energy(cost, ct, st_t), _energy(cost, ch, st_h)
                out.append({"workload": wl, "weight_kib": kib, "dram": dram,
                            "dram_pj_per_bit": cost.dram_energy_pj_per_bit(), "tt_uj": et * 1e-6, "ht_uj": eh * 1e-6,
                            "energy_eff": et / eh, "energy_eff_no_dram": (et - dt) / (eh - dh),
                            "throughput": st_t.cycles / st_h.cycles})
    return out


def run(out_dir=None, quick: bool = False, pes: int = 16) -> StudyResult:
    """Compute the table, the headline ratios and the sensitivity (``quick``: UCF11 only) and, with
    ``out_dir``, save ``tt_vs_ht.png`` (the designs) and ``tt_vs_ht_sensitivity.png``."""
    cost = CostModel(NODE_NM)
    res = StudyResult(pes=pes)
    workloads = ("ucf11",) if quick else ("ucf11", "youtube")
    for wl in workloads:
        rows = {d[0]: _row(cost, wl, d[0], pes) for d in DESIGNS}
        res.rows += rows.values()
        res.headline += [_ratios(wl, f"fair: {FAIR} vs {BASE}", rows[BASE], rows[FAIR]),
                         _ratios(wl, f"old: {OLD} vs {BASE}", rows[BASE], rows[OLD]),
                         _ratios(wl, f"format alone: {FAIR} vs {CONTROL}", rows[CONTROL], rows[FAIR])]
    res.sensitivity = sensitivity(workloads, pes)
    if out_dir is not None:
        res.plot = _plot(res, Path(out_dir))
    return res


def _plot(res: StudyResult, out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    labels = [f"{r['workload']}\n{r['design']}" for r in res.rows]
    for ax, key, title in zip(axes, ("frames_per_s", "energy_uj"), ("frames/s", "uJ/frame"), strict=True):
        ax.bar(range(len(labels)), [r[key] for r in res.rows],
               color=["tab:blue" if r["design"].startswith("tt") else "tab:orange" for r in res.rows])
        ax.set_xticks(range(len(labels)), labels, fontsize=6, rotation=90)
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out / "tt_vs_ht.png", dpi=100)
    plt.close(fig)

    wls = list(dict.fromkeys(s["workload"] for s in res.sensitivity))
    fig, axes = plt.subplots(1, len(wls), figsize=(5.5 * len(wls), 3.8), squeeze=False)
    for ax, wl in zip(axes[0], wls, strict=True):
        pts = [s for s in res.sensitivity if s["workload"] == wl]
        for dram in dict.fromkeys(s["dram"] for s in pts):
            ps = [s for s in pts if s["dram"] == dram]
            ax.plot([s["weight_kib"] for s in ps], [s["energy_eff"] for s in ps], "o-",
                    label=f"{dram} ({ps[0]['dram_pj_per_bit']:.3g} pJ/bit)")
        ps = [s for s in pts if s["dram"] == "lpddr4"]
        ax.plot([s["weight_kib"] for s in ps], [s["energy_eff_no_dram"] for s in ps], "k--", label="without DRAM")
        ax.plot([s["weight_kib"] for s in ps], [s["throughput"] for s in ps], "s:", color="tab:gray",
                label="throughput HT/TT")
        if PAPER[wl]["energy_eff"] is not None:  # the abstract gives figures for Youtube only
            ax.axhline(PAPER[wl]["energy_eff"], color="tab:red", lw=0.8,
                       label=f"paper energy eff. x{PAPER[wl]['energy_eff']}")
            ax.axhline(PAPER[wl]["throughput"], color="tab:red", lw=0.8, ls=":",
                       label=f"paper throughput x{PAPER[wl]['throughput']}")
        ax.axhline(1.0, color="black", lw=0.5)
        ax.set_xscale("log", base=2)
        kibs = sorted({s["weight_kib"] for s in pts})
        ax.set_xticks(kibs, [str(k) for k in kibs])
        ax.set_xlabel("weight SRAM (KiB)")
        ax.set_ylabel("HT over TT (> 1: HT ahead)")
        ax.set_title(f"{wl}: {FAIR} vs {BASE}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "tt_vs_ht_sensitivity.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
