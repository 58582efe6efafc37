"""``hwsim study tt-vs-ht``: TT (TIE-style) vs HT (FDHT-style) input layers on LSTM engines of equal PE count.

The claim checked (Gong et al., FDHT-LSTM): a fully decomposed hierarchical-Tucker LSTM runs with higher
throughput and energy efficiency than the TT-LSTM on TIE for LSTM-UCF11 and LSTM-Youtube. Here both run
on the same engine datapath (:mod:`hwsim.lstm_engine`, 16 PEs, int16, 1 GHz, priced at 28 nm like TIE),
one frame = the input layer's stages + the dense hidden stage + the gate unit, H = 256. Rows: TT ranks 4
(Yang et al. 2017), HT ranks 4 (same rank), HT ranks 7 (about the TT's parameter count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hwsim.cost import CostModel
from hwsim.lstm_engine import LstmEngineConfig, inventory, predict_step, workload

__all__ = ["StudyResult", "run"]

CASES = (("tt", 4), ("ht", 4), ("ht", 7))
NODE_NM = 28


@dataclass
class StudyResult:
    """Rows of the comparison (one per workload and format) and where the plot went."""

    rows: list[dict] = field(default_factory=list)
    plot: str | None = None

    def format(self) -> str:
        head = (f"{'workload':9} {'format':7} {'params':>7} {'compr.':>8} {'in-layer MACs':>13} {'cycles/frame':>12} "
                f"{'frames/s':>9} {'uJ/frame':>9} {'mm^2':>6} {'fps/mm^2':>9} {'fps/W':>9} {'PE util':>7}")
        out = [f"TT vs HT on lstm-engine, {self_pes(self)} PEs, int16, 1 GHz, {NODE_NM} nm (one frame: input "
               "layer + hidden stage + gates, H = 256)", head, "-" * len(head)]
        for r in self.rows:
            out.append(f"{r['workload']:9} {r['format']:7} {r['params']:7d} {r['compression']:8.0f} "
                       f"{r['input_macs']:13,d} {r['cycles']:12,d} {r['frames_per_s']:9,.0f} {r['energy_uj']:9.2f} "
                       f"{r['area_mm2']:6.2f} {r['fps_per_mm2']:9,.0f} {r['fps_per_w']:9,.0f} "
                       f"{r['utilization']:7.2f}")
        out.append("")
        for wl in dict.fromkeys(r["workload"] for r in self.rows):
            tt = next(r for r in self.rows if r["workload"] == wl and r["format"] == "tt-r4")
            for r in self.rows:
                if r["workload"] == wl and r["format"] != "tt-r4":
                    out.append(f"{wl}: {r['format']} vs tt-r4: params x{tt['params'] / r['params']:.2f} fewer, "
                               f"throughput x{r['frames_per_s'] / tt['frames_per_s']:.2f}, "
                               f"energy/frame x{r['energy_uj'] / tt['energy_uj']:.2f}")
        if self.plot:
            out.append(f"plot: {self.plot}")
        return "\n".join(out)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "plot": self.plot, "node_nm": NODE_NM}


def self_pes(res: StudyResult) -> int:
    return res.rows[0]["pes"] if res.rows else 0


def run(out_dir=None, quick: bool = False, pes: int = 16) -> StudyResult:
    """Compute the table (``quick`` only runs UCF11) and, with ``out_dir``, save ``tt_vs_ht.png``."""
    model = CostModel(NODE_NM)
    res = StudyResult()
    for wl in (("ucf11",) if quick else ("ucf11", "youtube")):
        for dec, rank in CASES:
            cfg = LstmEngineConfig(decomposition=dec, pes=pes, banks=pes)
            w = workload(wl, dec, rank)
            s = predict_step(cfg, w)
            e = model.energy(inventory(cfg), s.actions, s.cycles)
            area = model.area(inventory(cfg)).total_mm2
            fps = 1e9 / (s.cycles * cfg.ns_per_cycle)
            watts = e.total_pj * 1e-12 * fps
            res.rows.append({
                "workload": wl, "format": f"{dec}-r{rank}", "pes": pes, "params": w.fmt.params,
                "dense_params": w.fmt.dense_params, "compression": w.fmt.dense_params / w.fmt.params,
                "input_macs": sum(st.macs for st in w.stages), "macs": s.macs, "cycles": s.cycles,
                "matvec_cycles": s.extra["matvec_cycles"], "frames_per_s": fps, "energy_uj": e.total_pj * 1e-6,
                "energy_no_dram_uj": (e.total_pj - e.parts["dram"]) * 1e-6, "area_mm2": area,
                "fps_per_mm2": fps / area, "fps_per_w": fps / watts, "utilization": s.macs / (s.cycles * pes),
                "stages": [{"factor": st.name, "R": st.R, "K": st.K, "Q": st.Q, "macs": st.macs,
                            "cycles": st.cycles} for st in s.stages],
            })
    if out_dir is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
        labels = [f"{r['workload']}\n{r['format']}" for r in res.rows]
        for ax, key, title in zip(axes, ("params", "frames_per_s", "energy_uj"),
                                  ("parameters", "frames/s", "uJ/frame"), strict=True):
            ax.bar(range(len(labels)), [r[key] for r in res.rows],
                   color=["tab:blue" if r["format"].startswith("tt") else "tab:orange" for r in res.rows])
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
            ax.set_title(title)
        fig.tight_layout()
        res.plot = str(out / "tt_vs_ht.png")
        fig.savefig(res.plot, dpi=100)
        plt.close(fig)
    return res
