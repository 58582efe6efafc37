"""Jobs for the LSTM engine's RTL (descriptors, weight words, input) and the randomized regression.

A job is one fixed-point matvec ``W x`` of a random TT or HT format (odd shapes, ranks, stage orders,
extreme values so accumulators saturate or wrap, random shifts so rounding ties occur). The same job runs
on Amaranth's simulator (:func:`run_amaranth`, the fast unit-test backend) and under Verilator
(:func:`run_regression`, through :mod:`hwsim.cosim.lstm_engine_tb`); outputs must equal
:func:`hwsim.models.tensor_formats.matvec_fixed` bit for bit and busy cycles the cycle model's.
"""

from __future__ import annotations

import numpy as np
from hwsim.models import tensor_formats as tf
from hwsim.rtl.lstm_engine import MAX_STAGES, pack_descriptor

from hwsim.errors import HwsimError
from hwsim.lstm_engine import LstmEngineConfig, predict_matvec, stage_descriptors

__all__ = ["make_job", "random_jobs", "run_amaranth", "run_regression"]


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
    return {
        "name": name, "kind": fmt.kind, "shape": list(fmt.shape),
        "desc": [pack_descriptor(cfg, d, int(s)) for d, s in zip(descs, shifts, strict=True)],
        "weights": weight_words(cfg, fmt, order), "x": np.asarray(x, dtype=np.int64),
        "expect": tf.matvec_fixed(fmt, x, shifts, data_bits=cfg.data_bits, acc_bits=cfg.acc_bits,
                                  overflow=cfg.overflow, rounding=cfg.rounding, order=order),
        "perm": tf.final_permutation(fmt, order), "predicted_cycles": predict_matvec(cfg, fmt, order).cycles,
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


def run_amaranth(cfg: LstmEngineConfig, job: dict) -> tuple[np.ndarray, int]:
    """Run ``job`` on Amaranth's simulator: (output in natural order, busy cycles)."""
    from amaranth.sim import Simulator
    from hwsim.rtl.lstm_engine import LstmStageEngine

    dut = LstmStageEngine(cfg)
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

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    return res["raw"][job["perm"]], res["cycles"]


def run_regression(cfg: LstmEngineConfig, seed: int = 1, count: int = 6, waves: bool = False, workdir=None):
    """Randomized Verilator regression (``hwsim cosim lstm-engine``): a RegressionReport."""
    from hwsim.cosim.lstm_engine_harness import lstm_engine_harness
    from hwsim.cosim.runner import cosimulate

    layers = []
    for job in random_jobs(cfg, seed, count):
        layers.append({"name": job["name"], "kind": job["kind"], "shape": job["shape"],
                       "predicted_cycles": job["predicted_cycles"], "desc": [str(v) for v in job["desc"]],
                       "weights": [str(v) for v in job["weights"]], "x": job["x"], "expect_out": job["expect"].tolist(),
                       "perm": job["perm"].tolist()})
    return cosimulate(cfg, lstm_engine_harness(), layers, waves=waves, workdir=workdir)
