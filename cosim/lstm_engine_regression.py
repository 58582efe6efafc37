"""Jobs for the LSTM engine's RTL (descriptors, weight words, input) and the randomized regression.

A matvec job is one fixed-point ``W x`` of a random TT or HT format (odd shapes, ranks, stage orders,
extreme values so accumulators saturate or wrap, random shifts so rounding ties occur); it runs on the
stage engine alone in Amaranth's simulator (:func:`run_amaranth`). A step job (:func:`step_layer`) is a
random TT- or HT-LSTM run for several time steps with ``h`` and ``c`` carried in the RTL's state memories.

Under Verilator (:func:`run_regression`, through :mod:`hwsim.cosim.lstm_engine_tb`) both kinds run on the
whole engine top (:class:`hwsim.rtl.lstm_step.LstmStepEngine`, one build), as *layers*: a list of load
writes (``ext_sel``, address, data), the inputs ``x`` per step, and the expectations. Outputs must equal
:func:`hwsim.models.tensor_formats.matvec_fixed` (matvec) or :func:`hwsim.models.lstm_engine.cell_fixed`
step after step (``h`` and ``c`` after every step) bit for bit, busy cycles the cycle model's, and the
RTL's simulation-only activity counters every action count the cost model prices
(:func:`hwsim.lstm_engine.simulate_matvec`, :func:`hwsim.lstm_engine.simulate_step`), the per-bank
working-SRAM reads/writes and the stall cycles, exactly (:func:`count_diffs`).
"""

from __future__ import annotations

import numpy as np
from hwsim.cosim.report import RegressionReport
from hwsim.models import lstm_engine as ref
from hwsim.models import tensor_formats as tf
from hwsim.rtl.lstm_engine import MAX_STAGES, pack_descriptor

from hwsim.errors import HwsimError
from hwsim.lstm_engine import (
    LstmEngineConfig,
    predict_matvec,
    simulate_matvec,
    simulate_step,
    stage_descriptors,
)

__all__ = ["LstmRegressionReport", "count_diffs", "expected_counts", "hidden_format", "job_layer", "make_job",
           "measured_counts", "random_jobs", "random_lstm", "regression_layers", "run_amaranth", "run_regression",
           "step_layer"]


def expected_counts(stats) -> dict:
    """The counts a run must reproduce, from the cycle model's :class:`~hwsim.unit.Stats` with per-bank
    counts (:func:`~hwsim.lstm_engine.simulate_matvec`, :func:`~hwsim.lstm_engine.simulate_step`): ``actions``
    (``"component.action": count``), ``bank_reads``, ``bank_writes`` (one per bank, both working buffers
    summed; ``detail['bank_reads'/'bank_writes']``) and ``stall_cycles``."""
    return {"actions": {k: int(v) for k, v in stats.actions.as_dict().items()},
            "bank_reads": [int(v) for v in stats.detail["bank_reads"]],
            "bank_writes": [int(v) for v in stats.detail["bank_writes"]],
            "stall_cycles": int(stats.stall_cycles)}


def measured_counts(cfg: LstmEngineConfig, counters: dict, bank_rd: list[int], bank_wr: list[int]) -> dict:
    """The RTL's activity counters (``counters[name]`` for the names of
    :data:`~hwsim.rtl.lstm_engine.COUNTERS` and, from the step top, of
    :data:`~hwsim.rtl.lstm_step.STEP_COUNTERS` and :data:`~hwsim.rtl.lstm_gates.GATE_COUNTERS`; a name
    missing counts 0; per-bank reads/writes) as the priced action pairs.

    A real MAC lane is one ``pe_mult.mult`` and one ``pe_acc.add``, an accumulator register enable one
    ``pe_acc_reg.write``; an idle lane slot is one ``pe_mult.idle``, and one ``pe_acc.idle`` when its operands
    were not isolated, and a slot (real or idle) whose accumulator held is one ``pe_acc_reg.idle`` (the
    closed clock gate; idle counts of 0 are left out, as the cycle model leaves them); DRAM
    bytes are the elements loaded into a working buffer through the ext port times ``data_bytes``; the
    requantizer and address-adder actions are the stage engine's plus the gate phase's.
    """
    def c(name):
        return int(counters.get(name, 0))

    mac, idle = c("cnt_mac"), c("cnt_idle")
    lane_idle = {"pe_mult.idle": idle, "pe_acc.idle": idle - c("cnt_iso"),
                 "pe_acc_reg.idle": mac + idle - c("cnt_acc_wr")}
    actions = {"pe_mult.mult": mac, "pe_acc.add": mac, "pe_acc_reg.write": c("cnt_acc_wr"),
               **{k: v for k, v in lane_idle.items() if v},
               "weight_sram.read": c("cnt_wrd"), "hidden_sram.read": c("cnt_hid_rd"),
               "work_sram.read": int(sum(bank_rd)), "work_sram.write": int(sum(bank_wr)),
               "state_sram.read": c("cnt_state_rd"), "state_sram.write": c("cnt_state_wr"),
               "requant.convert": c("cnt_requant") + c("cnt_gate_requant"),
               "addr_gen.add": c("cnt_addr") + c("cnt_gate_addr") + c("cnt_x_addr"),
               "dram.read": c("cnt_ext_x") * cfg.data_bytes,
               "gate_add.add": c("cnt_gate_add"), "sigmoid.eval": c("cnt_sigmoid"), "tanh.eval": c("cnt_tanh"),
               "cell_mult.mult": c("cnt_cell_mult"), "cell_add.add": c("cnt_cell_add")}
    return {"actions": actions, "bank_reads": [int(v) for v in bank_rd], "bank_writes": [int(v) for v in bank_wr],
            "stall_cycles": int(counters["cnt_conflict"])}


def sim_counts(cfg: LstmEngineConfig, ctx, dut, names) -> dict:
    """:func:`measured_counts` of an engine in Amaranth's simulator: the counters ``names`` and the packed
    per-bank read/write counters, read through the testbench context ``ctx``."""
    from hwsim.rtl.lstm_engine import COUNTER_BITS

    mask = (1 << COUNTER_BITS) - 1
    rd, wr = ctx.get(dut.cnt_bank_rd), ctx.get(dut.cnt_bank_wr)
    return measured_counts(cfg, {name: ctx.get(getattr(dut, name)) for name in names},
                           [(rd >> (b * COUNTER_BITS)) & mask for b in range(cfg.banks)],
                           [(wr >> (b * COUNTER_BITS)) & mask for b in range(cfg.banks)])


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
    from hwsim.rtl.lstm_engine import COUNTERS, LstmStageEngine

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
        res["counts"] = sim_counts(cfg, ctx, dut, COUNTERS)

    sim = Simulator(dut)
    sim.add_clock(1e-9)
    sim.add_testbench(tb)
    sim.run()
    return res["raw"][job["perm"]], res["cycles"], res["counts"]


def _ext(sel: str, items, mask: int | None = None) -> list[list]:
    """Load writes ``[ext_sel, address, hex data]`` of ``items`` into memory ``sel`` of the step top."""
    from hwsim.rtl.lstm_step import EXT_SEL

    return [[EXT_SEL[sel], i, f"{(int(v) & mask) if mask else int(v):x}"] for i, v in enumerate(items)]


def job_layer(job: dict) -> dict:
    """A matvec job (:func:`make_job`) as a layer of the Verilator testbench's job file: descriptors and
    weight words loaded, then ``x`` into buffer 0, the stages run (no gate phase), the last buffer read."""
    setup = _ext("dmem", job["desc"]) + _ext("wmem", job["weights"])
    return {"name": job["name"], "kind": job["kind"], "shape": job["shape"], "gates": 0,
            "n_stages": len(job["desc"]), "setup": setup, "x": np.asarray(job["x"], dtype=np.int64)[None, :],
            "predicted_cycles": job["predicted_cycles"], "expect_out": job["expect"].tolist(),
            "perm": job["perm"].tolist(), "expect_counts": job["expect_counts"]}


def hidden_format(U) -> tf.TTMatrix:
    """The hidden stage as a one-core TT-matrix (4H x H, ranks (1, 1)): one stage ``R = 4H``, ``K = H``,
    ``Q = 1`` accumulated in hidden-index order, exactly ``accumulate_dense`` of the reference."""
    U = np.asarray(U, dtype=np.int64)
    fmt = tf.TTMatrix.random((U.shape[0],), (U.shape[1],), (1, 1), rng=0)
    return fmt.with_factors([U.reshape(fmt.factors[0].data.shape)])


def step_layer(cfg: LstmEngineConfig, q: ref.FixedLstm, xs, h0, c0, name: str = "step") -> dict:
    """``len(xs)`` LSTM time steps of the quantized LSTM ``q`` from state ``(h0, c0)`` as a testbench layer.

    Loaded once: the input layer's stage descriptors plus the hidden stage's (``hid`` set, shift ``e_u``),
    the factor words, ``U`` (hidden SRAM), ``b``, ``h0``, ``c0`` and the gate descriptor; per step ``x``
    into buffer 0, then the stages and the gate phase. Expected: ``h`` and ``c`` after every step
    (:func:`hwsim.models.lstm_engine.cell_fixed` step after step), the cycles (``len(xs)`` times
    :func:`hwsim.lstm_engine.predict_step`'s) and the counts of all steps (:func:`simulate_step`'s, per-bank
    included, times the steps). Raises :class:`~hwsim.errors.HwsimError` if the RTL cannot hold it.
    """
    from hwsim.cosim.lstm_engine_descriptors import pack_gate_descriptor
    from hwsim.rtl.lstm_step import max_hidden

    H = q.hidden
    if H > max_hidden(cfg):
        raise HwsimError(f"hidden={H} is not allowed on this RTL: expected <= {max_hidden(cfg)} (hidden_sram_bytes="
                         f"{cfg.hidden_sram_bytes}, work_sram_bytes={cfg.work_sram_bytes})")
    xs = np.atleast_2d(np.asarray(xs, dtype=np.int64))
    mask = (1 << cfg.data_bits) - 1
    descs = stage_descriptors(cfg, q.fmt, q.order)
    if len(descs) + 1 > MAX_STAGES:
        raise HwsimError(f"stages={len(descs) + 1} is not allowed on this RTL: expected <= {MAX_STAGES} "
                         "(input-layer stages + the hidden stage)")
    hfmt = hidden_format(q.U)
    hdesc = {**stage_descriptors(cfg, hfmt)[0], "wbase": 0, "hid": 1}
    words = [pack_descriptor(cfg, d, int(s)) for d, s in zip(descs, q.shifts, strict=True)]
    words.append(pack_descriptor(cfg, hdesc, int(q.e_u)))
    setup = (_ext("dmem", words) + _ext("wmem", weight_words(cfg, q.fmt, q.order))
             + _ext("umem", weight_words(cfg, hfmt)) + _ext("bmem", q.b, mask) + _ext("hmem", h0, mask)
             + _ext("cmem", c0, mask) + _ext("gdesc", [pack_gate_descriptor(cfg, q.fmt, q.order, H)]))
    h, c = np.asarray(h0, dtype=np.int64), np.asarray(c0, dtype=np.int64)
    hs, cs = [], []
    for x in xs:
        h, c, stats = simulate_step(cfg, q, x, h, c, hidden_name=name)
        hs.append(h)
        cs.append(c)
    T = len(xs)
    want = expected_counts(stats)
    want = {"actions": {k: v * T for k, v in want["actions"].items()},
            "bank_reads": [v * T for v in want["bank_reads"]], "bank_writes": [v * T for v in want["bank_writes"]],
            "stall_cycles": want["stall_cycles"] * T}
    return {"name": name, "kind": "lstm", "shape": [4 * H, q.fmt.shape[1], T], "gates": 1,
            "n_stages": len(words), "setup": setup, "x": xs, "hidden": H, "predicted_cycles": stats.cycles * T,
            "step_cycles": stats.cycles, "expect_h": np.stack(hs).tolist(), "expect_c": np.stack(cs).tolist(),
            "expect_counts": want}


def random_lstm(cfg: LstmEngineConfig, kind: str, rng, hidden: int, n_modes=(3, 5),
                extreme: bool = False) -> ref.FixedLstm:
    """A random integer TT- or HT-LSTM with ``hidden`` units: output modes ``(4, hidden)`` (or ``(2, 2*hidden)``
    at random), the two input modes ``n_modes``, ranks 1-3, a random allowed stage order, stage shifts in [3, 8],
    ``e_u`` in [4, 7]; values uniform, or only the extremes of the data range (``extreme``)."""
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    m = (4, hidden) if rng.random() < 0.5 else (2, 2 * hidden)
    if kind == "tt":
        ranks = (1, *(int(v) for v in rng.integers(1, 4, size=len(m) - 1)), 1)
        fmt = tf.TTMatrix.random(m, tuple(n_modes), ranks, rng=rng)
    else:
        fmt = tf.HTMatrix.random(m, tuple(n_modes), int(rng.integers(1, 4)), rng=rng)

    def draw(shape):
        return rng.choice([lo, hi], size=shape) if extreme else rng.integers(lo, hi + 1, size=shape)

    fmt = fmt.with_factors([draw(f.data.shape) for f in fmt.factors])
    order = tf.default_order(fmt)
    for _ in range(10):
        cand = tuple(int(v) for v in rng.permutation(len(fmt.factors)))
        try:
            tf.plan_stages(fmt, cand)
        except Exception:  # noqa: BLE001 - order not allowed: draw again
            continue
        order = cand
        break
    shifts = tuple(int(v) for v in rng.integers(3, 9, size=len(tf.plan_stages(fmt, order))))
    return ref.FixedLstm(fmt, order, shifts, 4, draw((4 * hidden, hidden)), int(rng.integers(4, 8)),
                         draw(4 * hidden))


def random_step_layers(cfg: LstmEngineConfig, seed: int, steps: int) -> list[dict]:
    """Two step layers (a TT- and an HT-LSTM, ``steps`` time steps each, random state and inputs; the HT
    one with extreme weights) of a random hidden size the RTL holds (1-6)."""
    from hwsim.rtl.lstm_step import max_hidden

    rng = np.random.default_rng(seed + 1000)
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    out = []
    for kind in ("tt", "ht"):
        for _ in range(50):
            H = int(rng.integers(1, min(6, max_hidden(cfg)) + 1))
            n = tuple(int(v) for v in rng.integers(1, 6, size=2))  # two input modes, as the two output modes
            q = random_lstm(cfg, kind, rng, H, n, extreme=kind == "ht")
            xs = rng.integers(lo, hi + 1, size=(steps, q.fmt.shape[1]))
            h0, c0 = rng.integers(lo, hi + 1, size=H), rng.integers(lo, hi + 1, size=H)
            try:
                out.append(step_layer(cfg, q, xs, h0, c0, name=f"{kind}-step"))
            except HwsimError:  # does not fit this config's memories or address generator: draw again
                continue
            break
    return out


def regression_layers(cfg: LstmEngineConfig, seed: int, count: int, steps: int = 0) -> list[dict]:
    """The layers of :func:`run_regression`: ``count`` random matvec jobs of ``seed``, then (``steps`` > 0)
    a TT- and an HT-LSTM of ``steps`` time steps each (:func:`random_step_layers`)."""
    layers = [job_layer(job) for job in random_jobs(cfg, seed, count)]
    return layers + (random_step_layers(cfg, seed, steps) if steps > 0 else [])


def run_regression(cfg: LstmEngineConfig, seed: int = 1, count: int = 6, waves: bool = False, workdir=None,
                   layers: list[dict] | None = None, steps: int = 3) -> LstmRegressionReport:
    """Randomized Verilator regression (``hwsim cosim lstm-engine``) of the whole engine top: ``count``
    random matvecs and two full LSTMs of ``steps`` time steps (:func:`regression_layers`), or ``layers``
    if given (:func:`job_layer`, :func:`step_layer`): values, cycles and every count checked."""
    from hwsim.cosim.lstm_engine_harness import lstm_engine_harness
    from hwsim.cosim.runner import cosimulate

    layers = regression_layers(cfg, seed, count, steps) if layers is None else layers
    rep = cosimulate(cfg, lstm_engine_harness(), layers, waves=waves, workdir=workdir)
    return LstmRegressionReport(rep.config, rep.layers, rep.wall_seconds, rep.build_cached, rep.workdir)
