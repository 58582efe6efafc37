"""Jobs for the LSTM engine's RTL (descriptors, weight words, input) and the randomized regression.

A job is one fixed-point matvec ``W x`` of a random TT or HT format (odd shapes, ranks, stage orders,
extreme values so accumulators saturate or wrap, random shifts so rounding ties occur). The same job runs
on Amaranth's simulator (:func:`run_amaranth`, the fast unit-test backend) and under Verilator
(:func:`run_regression`, through :mod:`hwsim.cosim.lstm_engine_tb`); outputs must equal
:func:`hwsim.models.tensor_formats.matvec_fixed` bit for bit, busy cycles the cycle model's, and the
RTL's simulation-only activity counters (:data:`hwsim.rtl.lstm_engine.COUNTERS`, per-bank reads and
writes) every action count the cost model prices (:func:`hwsim.lstm_engine.simulate_matvec`), the
per-bank working-SRAM reads/writes and the stall cycles, exactly (:func:`count_diffs`).
"""

from __future__ import annotations

import numpy as np
from hwsim.cosim.report import RegressionReport
from hwsim.models import tensor_formats as tf
from hwsim.rtl.lstm_engine import MAX_STAGES, pack_descriptor

from hwsim.errors import HwsimError
from hwsim.lstm_engine import LstmEngineConfig, predict_matvec, simulate_matvec, stage_descriptors

__all__ = ["LstmRegressionReport", "count_diffs", "expected_counts", "make_job", "measured_counts", "random_jobs",
           "regression_layers", "run_amaranth", "run_regression"]


def expected_counts(stats) -> dict:
    """The counts a run must reproduce, from the cycle model's :class:`~hwsim.lstm_engine.MatvecStats`
    (with per-bank counts): ``actions`` (``"component.action": count``), ``bank_reads``, ``bank_writes``
    (one per bank, both working buffers summed) and ``stall_cycles``."""
    return {"actions": {k: int(v) for k, v in stats.actions.as_dict().items()},
            "bank_reads": [int(v) for v in stats.bank_reads], "bank_writes": [int(v) for v in stats.bank_writes],
            "stall_cycles": int(stats.stall_cycles)}


def measured_counts(cfg: LstmEngineConfig, counters: dict, bank_rd: list[int], bank_wr: list[int]) -> dict:
    """The RTL's activity counters (``counters[name]`` for every name of
    :data:`~hwsim.rtl.lstm_engine.COUNTERS`, per-bank reads/writes) as the priced action pairs.

    An enabled PE lane is one ``pe_mult.mult``, one ``pe_acc.add`` and one ``pe_acc_reg.write``; DRAM
    bytes are the elements loaded into a working buffer through the ext port times ``data_bytes``.
    """
    mac = int(counters["cnt_mac"])
    actions = {"pe_mult.mult": mac, "pe_acc.add": mac, "pe_acc_reg.write": mac,
               "weight_sram.read": int(counters["cnt_wrd"]), "work_sram.read": int(sum(bank_rd)),
               "work_sram.write": int(sum(bank_wr)), "requant.convert": int(counters["cnt_requant"]),
               "addr_gen.add": int(counters["cnt_addr"]), "dram.read": int(counters["cnt_ext_x"]) * cfg.data_bytes}
    return {"actions": actions, "bank_reads": [int(v) for v in bank_rd], "bank_writes": [int(v) for v in bank_wr],
            "stall_cycles": int(counters["cnt_conflict"])}


def count_diffs(got: dict, want: dict) -> dict:
    """Every count that differs between ``got`` and ``want`` (both as :func:`expected_counts`):
    ``{name: [got, want]}`` with names ``component.action``, ``bank_reads[b]``, ``bank_writes[b]`` and
    ``stall_cycles``; a count missing on one side is 0 there."""
    diffs = {}
    ga, wa = got["actions"], want["actions"]
    for key in sorted(set(ga) | set(wa)):
        if ga.get(key, 0) != wa.get(key, 0):
            diffs[key] = [ga.get(key, 0), wa.get(key, 0)]
    for name in ("bank_reads", "bank_writes"):
        g, w = list(got[name]), list(want[name])
        for b in range(max(len(g), len(w))):
            gv, wv = (g[b] if b < len(g) else 0), (w[b] if b < len(w) else 0)
            if gv != wv:
                diffs[f"{name}[{b}]"] = [gv, wv]
    if got["stall_cycles"] != want["stall_cycles"]:
        diffs["stall_cycles"] = [got["stall_cycles"], want["stall_cycles"]]
    return diffs


class LstmRegressionReport(RegressionReport):
    """A :class:`~hwsim.cosim.report.RegressionReport` whose rows also carry ``count_diffs`` (action,
    per-bank and stall count differences); a run passes only when there are none."""

    @property
    def count_mismatches(self) -> int:
        return sum(len(r.get("count_diffs", {})) for r in self.layers)

    @property
    def passed(self) -> bool:
        return super().passed and self.count_mismatches == 0

    def as_dict(self) -> dict:
        return {**super().as_dict(), "count_mismatches": self.count_mismatches}


def weight_words(cfg: LstmEngineConfig, fmt, order=None) -> list[int]:
    """The weight memory image: per stage, per row tile ``j``, per ``k`` one word of ``pes`` lanes
    (lane ``i`` = ``F[j*pes + i, k]``, two's complement, lane 0 in the low bits; rows past R are 0)."""
    words = []
    mask = (1 << cfg.data_bits) - 1
    for st in tf.plan_stages(fmt, order):
        F = tf._factor_matrix(fmt.factors[st.factor], st).astype(np.int64)
        tiles = -(-st.R // cfg.pes)
        Fp = np.zeros((tiles * cfg.pes, st.K), dtype=np.int64)
        Fp[:st.R] = F
        lanes = (Fp & mask).reshape(tiles, cfg.pes, st.K)
        for j in range(tiles):
            for k in range(st.K):
                words.append(sum(int(v) << (i * cfg.data_bits) for i, v in enumerate(lanes[j, :, k])))
    return words


def make_job(cfg: LstmEngineConfig, fmt, x, shifts, order=None, name: str = "matvec") -> dict:
    """Everything one run needs: memory images, the expected output and the predicted cycles."""
    descs = stage_descriptors(cfg, fmt, order)
    _, stats = simulate_matvec(cfg, fmt, x, shifts, order)
    return {
        "name": name, "kind": fmt.kind, "shape": list(fmt.shape),
        "desc": [pack_descriptor(cfg, d, int(s)) for d, s in zip(descs, shifts, strict=True)],
        "weights": weight_words(cfg, fmt, order), "x": np.asarray(x, dtype=np.int64),
        "expect": tf.matvec_fixed(fmt, x, shifts, data_bits=cfg.data_bits, acc_bits=cfg.acc_bits,
                                  overflow=cfg.overflow, rounding=cfg.rounding, order=order),
        "perm": tf.final_permutation(fmt, order), "predicted_cycles": stats.cycles,
        "expect_counts": expected_counts(stats),
    }


def random_jobs(cfg: LstmEngineConfig, seed: int, count: int) -> list[dict]:
    """``count`` random jobs: TT and HT, 1-4 modes of size 1-5, ranks 1-4, a random allowed stage order,
    uniform or extreme (min/max) values, shifts in [0, 10]."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    jobs = []
    while len(jobs) < count:
        d = int(rng.integers(1, 5))
        m = tuple(int(v) for v in rng.integers(1, 6, size=d))
        n = tuple(int(v) for v in rng.integers(1, 6, size=d))
        kind = "tt" if len(jobs) % 2 == 0 else "ht"
        if kind == "tt":
            fmt = tf.TTMatrix.random(m, n, (1, *(int(v) for v in rng.integers(1, 5, size=d - 1)), 1), rng)
        else:
            fmt = tf.HTMatrix.random(m, n, int(rng.integers(1, 5)), rng=rng)
        extreme = len(jobs) % 3 == 1
        draw = (lambda s: rng.choice([lo, hi], size=s)) if extreme else (lambda s: rng.integers(lo, hi + 1, size=s))
        fmt = fmt.with_factors([draw(f.data.shape) for f in fmt.factors])
        order = None
        for _ in range(20):  # a random allowed order, else the cheapest
            cand = tuple(int(v) for v in rng.permutation(len(fmt.factors)))
            try:
                tf.plan_stages(fmt, cand)
                order = cand
                break
            except Exception:  # noqa: BLE001 - order not allowed: draw again
                continue
        stages = tf.plan_stages(fmt, order)
        try:
            predict_matvec(cfg, fmt, order)  # fits the memories and the address generator
        except HwsimError:
            continue
        if len(stages) > MAX_STAGES:
            continue
        shifts = [int(v) for v in rng.integers(0, 11, size=len(stages))]
        x = draw(fmt.shape[1])
        jobs.append(make_job(cfg, fmt, x, shifts, order, name=f"{kind}-{len(jobs)}{'-extreme' if extreme else ''}"))
    return jobs


def run_amaranth(cfg: LstmEngineConfig, job: dict) -> tuple[np.ndarray, int, dict]:
    """Run ``job`` on Amaranth's simulator (the ``debug`` top): output in natural order, busy cycles and
    the measured counts (:func:`measured_counts`, compare with :func:`count_diffs`)."""
    from amaranth.sim import Simulator
    from hwsim.rtl.lstm_engine import COUNTER_BITS, COUNTERS, LstmStageEngine

    dut = LstmStageEngine(cfg, debug=True)
    res = {}
    mask = (1 << cfg.data_bits) - 1

    async def tb(ctx):
        for sel, items in ((3, job["desc"]), (2, job["weights"]), (0, [int(v) & mask for v in job["x"]])):
            for i, v in enumerate(items):
                ctx.set(dut.ext_we, 1)
                ctx.set(dut.ext_sel, sel)
                ctx.set(dut.ext_addr, i)
                ctx.set(dut.ext_data, v)
                await ctx.tick()
        ctx.set(dut.ext_we, 0)
        ctx.set(dut.n_stages, len(job["desc"]))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles = 0
        while not ctx.get(dut.done):
            cycles += ctx.get(dut.busy)
            await ctx.tick()
        ctx.set(dut.ext_rbuf, len(job["desc"]) % 2)
        raw = []
        for i in range(len(job["expect"])):
            ctx.set(dut.ext_raddr, i)
            await ctx.tick()
            raw.append(ctx.get(dut.ext_rdata))
        res["raw"], res["cycles"] = np.array(raw, dtype=np.int64), cycles
        mask_c = (1 << COUNTER_BITS) - 1
        rd, wr = ctx.get(dut.cnt_bank_rd), ctx.get(dut.cnt_bank_wr)
        res["counts"] = measured_counts(
            cfg, {name: ctx.get(getattr(dut, name)) for name in COUNTERS},
            [(rd >> (b * COUNTER_BITS)) & mask_c for b in range(cfg.banks)],
            [(wr >> (b * COUNTER_BITS)) & mask_c for b in range(cfg.banks)])

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    return res["raw"][job["perm"]], res["cycles"], res["counts"]


def job_layer(job: dict) -> dict:
    """A job as a layer of the Verilator testbench's job file."""
    return {"name": job["name"], "kind": job["kind"], "shape": job["shape"],
            "predicted_cycles": job["predicted_cycles"], "desc": [str(v) for v in job["desc"]],
            "weights": [str(v) for v in job["weights"]], "x": job["x"], "expect_out": job["expect"].tolist(),
            "perm": job["perm"].tolist(), "expect_counts": job["expect_counts"]}


def regression_layers(cfg: LstmEngineConfig, seed: int, count: int) -> list[dict]:
    """The layers of :func:`run_regression` (``count`` random jobs of ``seed``)."""
    return [job_layer(job) for job in random_jobs(cfg, seed, count)]


def run_regression(cfg: LstmEngineConfig, seed: int = 1, count: int = 6, waves: bool = False, workdir=None,
                   layers: list[dict] | None = None) -> LstmRegressionReport:
    """Randomized Verilator regression (``hwsim cosim lstm-engine``), or ``layers`` if given (from
    :func:`regression_layers` / :func:`job_layer`): values, cycles and every count checked."""
    from hwsim.cosim.lstm_engine_harness import lstm_engine_harness
    from hwsim.cosim.runner import cosimulate

    layers = regression_layers(cfg, seed, count) if layers is None else layers
    rep = cosimulate(cfg, lstm_engine_harness(), layers, waves=waves, workdir=workdir)
    return LstmRegressionReport(rep.config, rep.layers, rep.wall_seconds, rep.build_cached, rep.workdir)
