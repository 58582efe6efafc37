"""One behaviour suite, run against every level of the LSTM engine (the FL -> CL -> RTL -> Verilog ladder).

Levels:

* ``reference``   -- ``hwsim.models.tensor_formats.matvec_fixed`` / ``hwsim.models.lstm_engine.cell_fixed``
  (functional; no timing),
* ``cycle_model`` -- ``hwsim.lstm_engine.simulate_matvec`` / ``simulate_step`` (values, cycles, stalls, every
  priced action count, per-bank working-SRAM reads and writes),
* ``amaranth``    -- the whole engine top (``hwsim.rtl.lstm_step.LstmStepEngine``, debug counters) in Amaranth's
  simulator (``hwsim.cosim.lstm_engine_step.run_layer``),
* ``verilator``   -- the same top under Verilator: ONE job of all the behaviours of a config, as layers, on the
  build ``tests/test_lstm_cosim.py`` uses (its ``CFG``; the runner caches it). The variant config needs a
  second build, so its Verilator run is ``slow``.

Every level is checked against expectations computed here, independently of hwsim: a naive Python-int model of
the documented semantics (stage contractions with labelled axes in the documented reduction order, accumulator
saturating or wrapping after every addition, rounding shifts from ``tests/naive.py``, PLAN / LUT nonlinearities
from their integer definitions, the cell update), hand-derived stage shapes ``(R, K, Q)``, cycles from the
documented timing (a loop over groups, with a few totals worked out by hand below), every priced action count
from the documented per-action rules, and per-bank counts from the addresses the naive model reads and writes.
For the RTL levels the layer's expectations (values, last-stage permutation, cycles, counts) are replaced by
these, so ``mismatches == 0`` and ``count_diffs == {}`` compare the RTL with the naive model directly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import networkx as nx
import numpy as np
import pytest
from hwsim.cosim.lstm_engine_regression import job_layer, make_job, run_regression, step_layer
from hwsim.cosim.lstm_engine_step import run_layer
from hwsim.models import lstm_engine as ref
from hwsim.models import tensor_formats as tf
from naive import naive_ovf, naive_round_shift
from test_lstm_cosim import CFG as BASE

from hwsim.errors import HwsimError
from hwsim.lstm_engine import LstmEngineConfig, simulate_matvec, simulate_step

#: Every option the shared build does not have: wrapping accumulators, ties to even, a 32-entry LUT, fewer banks
#: than PEs (bank-conflict stalls), the timed x stream and ungated idle lanes (gating none; base: clock).
VARIANT = BASE.replace(banks=2, overflow="wrap", rounding="half_even", nonlinearity="lut", lut_bits=5,
                       x_load="stream", gating="none")
CFGS = {"base": BASE, "variant": VARIANT}
LEVELS = ("reference", "cycle_model", "amaranth", "verilator")


# ----------------------------------------------------------------------------------------- naive model
def n_clamp(v: int, bits: int) -> int:
    return min(max(v, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)


def n_plan(x: int, F: int) -> int:
    """PLAN sigmoid (Amin et al. 1997) in Q(F), from its definition: slopes 1/4, 1/8, 1/32, then 1."""
    one, a = 1 << F, abs(x)
    c1, c2, c3 = (math.floor(c * one + 0.5) for c in (0.84375, 0.625, 0.5))
    if a >= 5 * one:
        y = one
    elif a >= (19 * one) >> 3:  # |x| >= 2.375
        y = a // 32 + c1
    elif a >= one:
        y = a // 8 + c2
    else:
        y = a // 4 + c3
    return one - y if x < 0 else y


def n_lut(kind: str, x: int, cfg) -> int:
    """The LUT entry of ``x``: segment ``(x + 2**(b-1)) // 2**s`` evaluated at its centre, rounded half up."""
    b, F, s = cfg.data_bits, cfg.frac_bits, cfg.data_bits - cfg.lut_bits
    i = (x + (1 << (b - 1))) // (1 << s)
    centre = (i * (1 << s) + (1 << s) // 2 - (1 << (b - 1))) / (1 << F)
    f = 1 / (1 + math.exp(-centre)) if kind == "sigmoid" else math.tanh(centre)
    return n_clamp(math.floor(f * (1 << F) + 0.5), b)


def n_sigmoid(x: int, cfg) -> int:
    return n_lut("sigmoid", x, cfg) if cfg.nonlinearity == "lut" else n_clamp(n_plan(x, cfg.frac_bits), cfg.data_bits)


def n_tanh(x: int, cfg) -> int:
    if cfg.nonlinearity == "lut":
        return n_lut("tanh", x, cfg)
    return n_clamp(2 * n_plan(2 * x, cfg.frac_bits) - (1 << cfg.frac_bits), cfg.data_bits)


def n_sizes(fmt) -> dict[str, int]:
    sizes = {f"n{k + 1}": n for k, n in enumerate(fmt.in_modes)}
    for f in fmt.factors:
        sizes.update(zip(f.axes, np.shape(f.data), strict=True))
    return sizes


def n_flat(labels: dict[str, int], axes, sizes) -> int:
    """Row-major position of the labelled index in a tensor with ``axes``."""
    pos = 0
    for a in axes:
        pos = pos * sizes[a] + labels[a]
    return pos


@dataclass
class NaiveStage:
    out: list[int]
    axes: list[str]
    R: int
    K: int
    Q: int
    reads: list[list[int]]  # the (Q, K) element addresses the stage reads, per row tile


def n_stage(t: list[int], t_axes: list[str], factor, sizes, shift: int, cfg) -> NaiveStage:
    """Contract ``t`` with ``factor`` over their shared labels (documented rule: shared in the factor's axis
    order, result axes = t's other axes then the factor's other axes, row-major), one Python-int accumulator
    per output, overflow after every addition in reduction order, then rounding shift and clamp."""
    shared = [a for a in factor.axes if a in t_axes]
    rest = [a for a in t_axes if a not in shared]
    new = [a for a in factor.axes if a not in shared]
    F = np.asarray(factor.data).tolist()

    def at(arr, labels):
        for a in factor.axes:
            arr = arr[labels[a]]
        return arr

    out, reads = [], []
    kidx = list(itertools.product(*[range(sizes[a]) for a in shared]))
    for qi in itertools.product(*[range(sizes[a]) for a in rest]):
        lq = dict(zip(rest, qi, strict=True))
        row = [n_flat({**lq, **dict(zip(shared, ki, strict=True))}, t_axes, sizes) for ki in kidx]
        reads.append(row)
        for pi in itertools.product(*[range(sizes[a]) for a in new]):
            lp = {**lq, **dict(zip(new, pi, strict=True))}
            acc = 0
            for ki, addr in zip(kidx, row, strict=True):
                w = at(F, {**lp, **dict(zip(shared, ki, strict=True))})
                acc = naive_ovf(acc + t[addr] * int(w), cfg.acc_bits, cfg.overflow)
            out.append(n_clamp(naive_round_shift(acc, shift, cfg.rounding), cfg.data_bits))
    R, K, Q = (math.prod(sizes[a] for a in axes) for axes in (new, shared, rest))
    return NaiveStage(out, rest + new, R, K, Q, reads)


@dataclass
class NaiveMatvec:
    y: list[int]  # natural (m1..md) order
    perm: list[int]  # y[r] = last buffer[perm[r]]
    stages: list[NaiveStage]


def n_matvec(fmt, x, shifts, order, cfg) -> NaiveMatvec:
    sizes = n_sizes(fmt)
    t, axes, stages = [int(v) for v in x], [f"n{k + 1}" for k in range(len(fmt.in_modes))], []
    for i, s in zip(order, shifts, strict=True):
        st = n_stage(t, axes, fmt.factors[i], sizes, int(s), cfg)
        stages.append(st)
        t, axes = st.out, st.axes
    ms = [f"m{k + 1}" for k in range(len(fmt.out_modes))]
    assert sorted(axes) == sorted(ms), axes  # every rank label contracted
    perm = [n_flat(dict(zip(ms, idx, strict=True)), axes, sizes)
            for idx in itertools.product(*[range(sizes[a]) for a in ms])]
    return NaiveMatvec([t[p] for p in perm], perm, stages)


def n_cell(zx, U, b, h, c, e_u, cfg) -> tuple[list[int], list[int]]:
    """The documented LSTM cell, Python ints: zh in hidden-index order through the accumulator."""
    bits, F, H = cfg.data_bits, cfg.frac_bits, len(h)
    z = []
    for r in range(4 * H):
        acc = 0
        for j in range(H):
            acc = naive_ovf(acc + int(U[r][j]) * int(h[j]), cfg.acc_bits, cfg.overflow)
        zh = n_clamp(naive_round_shift(acc, e_u, cfg.rounding), bits)
        z.append(n_clamp(int(zx[r]) + zh + int(b[r]), bits))
    h2, c2 = [], []
    for j in range(H):
        i, f = n_sigmoid(z[j], cfg), n_sigmoid(z[H + j], cfg)
        g, o = n_tanh(z[2 * H + j], cfg), n_sigmoid(z[3 * H + j], cfg)
        cj = n_clamp(naive_round_shift(f * int(c[j]) + i * g, F, cfg.rounding), bits)
        c2.append(cj)
        h2.append(n_clamp(naive_round_shift(o * n_tanh(cj, cfg), F, cfg.rounding), bits))
    return h2, c2


# ----------------------------------------------------------------------------------------- hand timing and counts
def hand_stage(cfg, R: int, K: int, Q: int) -> tuple[int, int]:
    """(cycles, bank-conflict cycles) of one stage from the documented timing: a setup cycle, then per column q
    and row tile j: K read issues, the last MAC, ceil(L / banks) write cycles (L = the tile's lanes)."""
    cycles, stalls = 1, 0
    for _q in range(Q):
        for j in range(-(-R // cfg.pes)):
            lanes = min(cfg.pes, R - j * cfg.pes)
            writes = -(-lanes // cfg.banks)
            cycles += K + 1 + writes
            stalls += writes - 1
    return cycles, stalls


def lane_counts(cfg, macs: int, idle: int) -> dict:
    """The PE lanes' priced actions from the documented gating rules (docs/idle_lanes.md): a real MAC is a
    multiply, an add and an accumulator write; an idle slot is a ``pe_mult.idle``, plus an add on padding
    (``pe_acc.idle``) and an accumulator write with ``none``, an accumulator write with ``operand``, a held
    accumulator (``pe_acc_reg.idle``) with ``clock``."""
    g = cfg.gating
    return {"pe_mult.mult": macs, "pe_acc.add": macs, "pe_acc_reg.write": macs + (idle if g != "clock" else 0),
            "pe_mult.idle": idle, "pe_acc.idle": idle if g == "none" else 0,
            "pe_acc_reg.idle": idle if g == "clock" else 0}


def hand_matvec(cfg, stages: list[NaiveStage], N: int) -> dict:
    """Cycles, stalls, every priced action and per-bank reads/writes of one ``W x`` (x load included)."""
    P, B = cfg.pes, cfg.banks
    cycles, stalls = (N if cfg.x_load == "stream" else 0), 0
    macs = reads = groups = outs = idle = outs_idle = 0
    bank_rd, bank_wr = [0] * B, [0] * B
    for a in range(N):
        bank_wr[a % B] += 1
    for s in stages:
        c, st = hand_stage(cfg, s.R, s.K, s.Q)
        cycles, stalls = cycles + c, stalls + st
        tiles = -(-s.R // P)
        macs, reads, groups, outs = macs + s.Q * s.R * s.K, reads + s.Q * tiles * s.K, groups + s.Q * tiles, outs + s.Q * s.R
        idle += s.Q * s.K * (tiles * P - s.R)  # the last row tile's lanes past R, every k of every column
        if cfg.gating == "none":  # ungated idle lanes' accumulators run: their requantizers convert per group
            outs_idle += s.Q * (tiles * P - s.R)
        for row in s.reads:
            for a in row:
                bank_rd[a % B] += tiles
        for a in range(s.Q * s.R):
            bank_wr[a % B] += 1
    acts = {**lane_counts(cfg, macs, idle), "weight_sram.read": reads,
            "work_sram.read": reads, "work_sram.write": N + outs, "requant.convert": outs + outs_idle,
            "addr_gen.add": reads + groups + (N if cfg.x_load == "stream" else 0), "dram.read": N * cfg.data_bytes}
    return {"cycles": cycles, "stalls": stalls, "actions": acts, "bank_reads": bank_rd, "bank_writes": bank_wr}


def hand_step(cfg, stages: list[NaiveStage], N: int, H: int) -> dict:
    """One LSTM step: the input layer, the hidden stage (R = 4H, K = H, Q = 1: weights from the hidden SRAM,
    h from the state SRAM, zh written to rows 0..4H-1 of a working buffer) and the gate phase (1 hand-over
    cycle, 4 gather cycles per unit, 2 for the last reads to land and enter, the gate unit's 6 stages;
    per unit 4 zx + 4 zh working-SRAM reads, 4 b + 1 c state reads, h' and c' written, 8 gate adds,
    3 sigmoids, 2 tanh, 3 products, 1 add, 2 requantizations, address adds 2 per gather cycle + 1 per unit)."""
    mv = hand_matvec(cfg, stages, N)
    B, th = cfg.banks, -(-4 * H // cfg.pes)
    hc, hs = hand_stage(cfg, 4 * H, H, 1)
    a = dict(mv["actions"])
    for k, v in lane_counts(cfg, 4 * H * H, H * (th * cfg.pes - 4 * H)).items():
        a[k] += v
    a["work_sram.read"] += 8 * H
    a["work_sram.write"] += 4 * H
    a["requant.convert"] += 4 * H + 2 * H + (th * cfg.pes - 4 * H if cfg.gating == "none" else 0)
    a["addr_gen.add"] += th * H + th + 8 * H + H
    a |= {"hidden_sram.read": th * H, "state_sram.read": th * H + 5 * H, "state_sram.write": 2 * H,
          "gate_add.add": 8 * H, "sigmoid.eval": 3 * H, "tanh.eval": 2 * H, "cell_mult.mult": 3 * H,
          "cell_add.add": H}
    rows = [sum(1 for r in range(4 * H) if r % B == b) for b in range(B)]
    return {"cycles": mv["cycles"] + hc + 1 + 4 * H + 2 + 6, "stalls": mv["stalls"] + hs, "actions": a,
            "bank_reads": [v + 2 * n for v, n in zip(mv["bank_reads"], rows, strict=True)],
            "bank_writes": [v + n for v, n in zip(mv["bank_writes"], rows, strict=True)]}


# ----------------------------------------------------------------------------------------- behaviours
@dataclass(frozen=True)
class Case:
    """A named behaviour. ``make(cfg, rng)`` returns a matvec ``{"fmt", "x", "shifts", "order"}`` (``order``
    None: the engine's default, which must be ``hand_order``) or a step ``{"q", "xs", "h0", "c0"}``.
    ``stages``: the input layer's ``(R, K, Q)`` per stage, derived by hand in the comments; ``cycles``:
    per config, the total worked out by hand (optional)."""

    name: str
    make: Callable
    stages: tuple[tuple[int, int, int], ...] | None = None
    hand_order: tuple[int, ...] | None = None
    cfgs: tuple[str, ...] = ("base",)
    cycles: tuple[tuple[str, int], ...] = ()

    @property
    def is_step(self) -> bool:
        return self.name.startswith("step")


def _lo_hi(cfg):
    return -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1


def _rand_tt(m, n, ranks, shifts, order=None, extreme=False):
    def make(cfg, rng):
        lo, hi = _lo_hi(cfg)
        fmt = tf.TTMatrix.random(m, n, ranks, rng=0)
        draw = (lambda s: rng.choice([lo, hi], size=s)) if extreme else (lambda s: rng.integers(lo, hi + 1, size=s))
        return {"fmt": fmt.with_factors([draw(f.data.shape) for f in fmt.factors]), "x": draw(math.prod(n)),
                "shifts": shifts, "order": order}
    return make


def _rand_ht(m, n, rank, shifts, order, tree=None):
    def make(cfg, rng):
        lo, hi = _lo_hi(cfg)
        fmt = tf.HTMatrix.random(m, n, rank, tree=tree, rng=0)
        return {"fmt": fmt.with_factors([rng.integers(lo, hi + 1, size=f.data.shape) for f in fmt.factors]),
                "x": rng.integers(lo, hi + 1, size=math.prod(n)), "shifts": shifts, "order": order}
    return make


def _saturate(cfg, rng):
    """One stage (R = 6 rows on 4 PEs: tiles of 4 and 2 lanes, K = 8) with x = 4 x max then 4 x min: row 0
    (all max) climbs past 32767 and comes back down when saturating (-32257, exact -508), row 1 (all min)
    falls past -32768 and climbs back, rows 3 and 4 leave the range for good (exact -130048 / 130052), row 2
    alternates and stays inside, row 5 is one product. Shift 8 maps the accumulator onto the int8 range."""
    lo, hi = _lo_hi(cfg)
    fmt = tf.TTMatrix.random((6,), (8,), (1, 1), rng=0)
    w = np.array([[hi] * 8, [lo] * 8, [hi, lo] * 4, [lo] * 4 + [hi] * 4, [hi] * 4 + [lo] * 4, [0] * 7 + [lo]])
    return {"fmt": fmt.with_factors([w]), "x": np.array([hi] * 4 + [lo] * 4), "shifts": (8,), "order": None}


def _ties(cfg, rng):
    """y[m1, m2] = round(x[m1] * (+1, -1)[m2] / 4): G2 = [1, -1] against x (K = 1, shift 2) puts every residue
    mod 4 of -8..7, the ties +-2 and +-6 with both quotient parities among them, through the rounding; G1 is
    the 16 x 16 identity (shift 0), so the rounded values reach the output unchanged."""
    fmt = tf.TTMatrix.random((16, 2), (16, 1), (1, 1, 1), rng=0)
    return {"fmt": fmt.with_factors([np.eye(16, dtype=np.int64).reshape(16, 16, 1), np.array([[[1], [-1]]])]),
            "x": np.arange(-8, 8), "shifts": (2, 0), "order": (1, 0)}


#: Gate pre-activations at the nonlinearities' corners (int8, F = 5): PLAN breakpoints |x| = 1.0 (32) and
#: 2.375 (76) with their neighbours, tanh's (it evaluates PLAN at 2x: 16, 38, 80), LUT-5 segment edges
#: (multiples of 8 from -128) and the int extremes.
SIG_BP = [-128, -77, -76, -75, -33, -32, -31, -1, 0, 31, 32, 33, 75, 76, 77, 127]
TANH_BP = [-128, -80, -79, -38, -37, -16, -15, -1, 0, 15, 16, 37, 38, 79, 80, 127]
LUT_BP = [-128, -121, -120, -113, -9, -8, -7, 0, 7, 8, 9, 112, 119, 120, 121, 127]


def _breakpoints(cfg, rng):
    """H = 16, W = identity (TT I4 x I16, shifts 0), U = 0, b = 0: z = x exactly. Step 1 (c = 0): gate g
    at 127 (tanh = 1.0), so c' = round(i * 1.0) exposes sigmoid(i) at SIG_BP; o at LUT_BP. Step 2: g at the
    tanh breakpoints, f at SIG_BP against the carried c, o at the extremes and LUT edges."""
    H = 16
    fmt = tf.TTMatrix.random((4, H), (4, H), (1, 1, 1), rng=0)
    fmt = fmt.with_factors([np.eye(4, dtype=np.int64).reshape(4, 4, 1), np.eye(H, dtype=np.int64).reshape(1, H, H)])
    q = ref.FixedLstm(fmt, (1, 0), (0, 0), 0, np.zeros((4 * H, H), dtype=np.int64), 4, np.zeros(4 * H, dtype=np.int64))
    x1 = SIG_BP + SIG_BP[::-1] + [127] * H + LUT_BP
    x2 = [127] * H + SIG_BP + TANH_BP + LUT_BP[::-1]
    return {"q": q, "xs": np.array([x1, x2]), "h0": np.zeros(H, dtype=np.int64), "c0": np.zeros(H, dtype=np.int64)}


def _rand_step(kind, m, n, rank, order, shifts, e_u, T=3, extreme=False, tree=None):
    def make(cfg, rng):
        lo, hi = _lo_hi(cfg)
        draw = (lambda s: rng.choice([lo, hi], size=s)) if extreme else (lambda s: rng.integers(lo, hi + 1, size=s))
        fmt = (tf.TTMatrix.random(m, n, rank, rng=0) if kind == "tt" else tf.HTMatrix.random(m, n, rank, tree=tree, rng=0))
        fmt = fmt.with_factors([draw(f.data.shape) for f in fmt.factors])
        H = math.prod(m) // 4
        q = ref.FixedLstm(fmt, order, shifts, 4, draw((4 * H, H)), e_u, draw(4 * H))
        return {"q": q, "xs": rng.integers(lo, hi + 1, size=(T, math.prod(n))),
                "h0": rng.integers(lo, hi + 1, size=H), "c0": rng.integers(lo, hi + 1, size=H)}
    return make


UNBALANCED = nx.DiGraph([((0, 1, 2, 3), (0,)), ((0, 1, 2, 3), (1, 2, 3)), ((1, 2, 3), (1,)), ((1, 2, 3), (2, 3)),
                         ((2, 3), (2,)), ((2, 3), (3,))])
BOTH = ("base", "variant")

CASES = [
    # G1 (m1 3, n1 7, r1 2), G2 (r1 2, m2 5, n2 2). G1 first: K = n1 = 7, Q = n2 = 2, R = m1 r1 = 6 (84 MACs);
    # then G2: K = r1 n2 = 4, Q = m1 = 3, R = 5 (60). G2 first would cost 140 + 210: the default is (0, 1).
    # base: (1 + 2 * (9 + 9)) + (1 + 3 * (6 + 6)) = 74; variant (2 banks: a 4-lane write takes 2 cycles, x
    # streamed in 14 cycles): 14 + (1 + 2 * (10 + 9)) + (1 + 3 * (7 + 6)) = 93.
    Case("tt-primes", _rand_tt((3, 5), (7, 2), (1, 2, 1), (6, 6)), ((6, 7, 2), (5, 4, 3)), (0, 1), BOTH,
         (("base", 74), ("variant", 93))),
    # G3 (r2 1, m3 1, n3 5): K 5, Q n1 n2 = 3, R 1; G2 (r1 2, m2 4, n2 1, r2 1): K = n2 r2 = 1, Q = n1 m3 = 3,
    # R = r1 m2 = 8; G1 (m1 1, n1 3, r1 2): K = n1 r1 = 6, Q = m3 m2 = 4, R = 1. base: 22 + 19 + 33 = 74.
    Case("tt-unit-modes-rank1", _rand_tt((1, 4, 1), (3, 1, 5), (1, 2, 1, 1), (7, 5, 7), order=(2, 1, 0)),
         ((1, 5, 3), (8, 1, 3), (1, 6, 4)), (2, 1, 0), cycles=(("base", 74),)),
    # 1 x 35: G2 (r1 3, m2 1, n2 7) first: K 7, Q 5, R 3 (105 MACs), G1: K = n1 r1 = 15, Q 1, R 1 (15);
    # G1 first would cost 105 + 21.
    Case("tt-1xN", _rand_tt((1, 1), (5, 7), (1, 3, 1), (7, 9)), ((3, 7, 5), (1, 15, 1)), (1, 0)),
    # 15 x 1: G2 (r1 2, m2 3, n2 1) first: K 1, Q 1, R 6 (6 MACs); G1: K = n1 r1 = 2, Q = m2 = 3, R = 5 (30);
    # G1 first: 10 + 30.
    Case("tt-Nx1", _rand_tt((5, 3), (1, 1), (1, 2, 1), (0, 6)), ((6, 1, 1), (5, 2, 3)), (1, 0)),
    # all ranks 1, order (1, 0, 2): G2 K = n2 3, Q = n1 n3 = 6, R = 3; G1 K = n1 r1 = 2, Q = n3 m2 r2 = 9, R 2;
    # G3 K = r2 n3 = 3, Q = m2 m1 = 6, R 2.
    Case("tt-rank1", _rand_tt((2, 3, 2), (2, 3, 3), (1, 1, 1, 1), (6, 6, 7), order=(1, 0, 2)),
         ((3, 3, 6), (2, 2, 9), (2, 3, 6)), (1, 0, 2)),
    # U1 (m1 2, n1 3, h1 2), U2 (m2 3, n2 2, h2 2), U3 (m3 2, n3 2, h3 2), B1_2 (h1, h2, h1_2), root (h1_2, h3);
    # order U3, U1, U2, B1_2, root: K 2 Q 6 R 4; K 3 Q 8 R 4; K 2 Q 16 R 6; K = h1 h2 4 Q = m3 h3 m1 m2 24 R 2;
    # K = h1_2 h3 4 Q 12 R 1.
    Case("ht-balanced", _rand_ht((2, 3, 2), (3, 2, 2), 2, (6, 7, 7, 7, 7), (2, 0, 1, 3, 4)),
         ((4, 2, 6), (4, 3, 8), (6, 2, 16), (2, 4, 24), (1, 4, 12)), (2, 0, 1, 3, 4), BOTH),
    # tree 0 | (1 | (2 | 3)); order U4, U3, B3_4, U2, B2_3_4, U1, root.
    Case("ht-unbalanced", _rand_ht((2, 1, 3, 2), (1, 3, 2, 2), 2, (6, 7, 7, 6, 7, 6, 7), (3, 2, 4, 1, 5, 0, 6),
                                   UNBALANCED),
         ((4, 2, 6), (6, 2, 12), (2, 4, 18), (2, 3, 12), (2, 4, 6), (4, 1, 12), (1, 4, 12)), (3, 2, 4, 1, 5, 0, 6)),
    Case("saturate-wrap", _saturate, ((6, 8, 1),), (0,), BOTH),
    Case("rounding-ties", _ties, ((2, 1, 16), (16, 16, 2)), (1, 0), BOTH),
    # identity layer: G2 (1, 16, 16) first: K 16, Q 4, R 16; G1 (4, 4, 1): K = n1 r1 = 4, Q = 16, R = 4.
    # base per step: 289 + 97 + hidden (1 + 16 * (16 + 1 + 1)) 289 + gates 4 * 16 + 9 = 73 -> 748, twice.
    Case("step-breakpoints", _breakpoints, ((16, 16, 4), (4, 4, 16)), (1, 0), BOTH, (("base", 2 * 748),)),
    # G2 (r1 2, m2 3, n2 4) first: K 4, Q 3, R 6; G1 (m1 4, n1 3, r1 2): K 6, Q 3, R 4. H = 3, three steps.
    Case("step-tt", _rand_step("tt", (4, 3), (3, 4), (1, 2, 1), (1, 0), (6, 6), 6), ((6, 4, 3), (4, 6, 3)),
         (1, 0), BOTH),
    # U2 (m2 4, n2 2, h2 2) first: K 2, Q 5, R 8; U1 (m1 2, n1 5, h1 2): K 5, Q 8, R 4; root: K 4, Q 8, R 1.
    # Extreme weights: the hidden stage's two products of 16384 leave the 16-bit accumulator.
    Case("step-ht-extreme", _rand_step("ht", (2, 4), (5, 2), 2, (1, 0, 2), (9, 9, 9), 7, extreme=True),
         ((8, 2, 5), (4, 5, 8), (1, 4, 8)), (1, 0, 2), BOTH),
    # H = 1: G1 (m1 4, n1 2, r1 1) first: K 2, Q 3, R 4; G2 (r1 1, m2 1, n2 3): K 3, Q 4, R 1.
    Case("step-h1", _rand_step("tt", (4, 1), (2, 3), (1, 1, 1), (0, 1), (5, 5), 5, T=2), ((4, 2, 3), (1, 3, 4)),
         (0, 1)),
]
# Every stage order of a 3-core TT (all six are allowed: x carries every n_k) and every allowed order of a
# 2-leaf HT (the root shares no axis with x, so it cannot go first). Shapes come from the naive model.
CASES += [Case(f"tt-order-{''.join(map(str, o))}", _rand_tt((2, 3, 2), (3, 2, 2), (1, 2, 2, 1), (6, 6, 6), order=o),
               hand_order=o) for o in itertools.permutations(range(3))]
HT_ORDERS = [(0, 1, 2), (1, 0, 2), (0, 2, 1), (1, 2, 0)]
CASES += [Case(f"ht-order-{''.join(map(str, o))}", _rand_ht((3, 2), (2, 5), 2, (6, 6, 7), o), hand_order=o)
          for o in HT_ORDERS]
BY_NAME = {c.name: c for c in CASES}


@cache
def data(name: str, cfg_name: str) -> dict:
    case, cfg = BY_NAME[name], CFGS[cfg_name]
    return case.make(cfg, np.random.default_rng(sum(map(ord, name))))


@cache
def expected(name: str, cfg_name: str) -> dict:
    """The naive values and the hand timing and counts of a behaviour on a config."""
    case, cfg, d = BY_NAME[name], CFGS[cfg_name], data(name, cfg_name)
    if not case.is_step:
        mv = n_matvec(d["fmt"], d["x"], d["shifts"], case.hand_order, cfg)
        return {"y": mv.y, "perm": mv.perm, "stages": [(s.R, s.K, s.Q) for s in mv.stages],
                **hand_matvec(cfg, mv.stages, len(d["x"]))}
    q = d["q"]
    h, c, hs, cs = list(d["h0"]), list(d["c0"]), [], []
    for x in d["xs"]:
        mv = n_matvec(q.fmt, x, q.shifts, case.hand_order, cfg)
        h, c = n_cell(mv.y, q.U.tolist(), q.b.tolist(), h, c, q.e_u, cfg)
        hs.append(h)
        cs.append(c)
    one = hand_step(cfg, mv.stages, d["xs"].shape[1], q.hidden)
    T = len(d["xs"])
    return {"h": hs, "c": cs, "perm": mv.perm, "stages": [(s.R, s.K, s.Q) for s in mv.stages], "steps": T,
            "step_cycles": one["cycles"], "cycles": T * one["cycles"], "stalls": T * one["stalls"],
            "actions": {k: T * v for k, v in one["actions"].items()},
            "bank_reads": [T * v for v in one["bank_reads"]], "bank_writes": [T * v for v in one["bank_writes"]]}


def hand_counts(e: dict) -> dict:
    return {"actions": e["actions"], "bank_reads": e["bank_reads"], "bank_writes": e["bank_writes"],
            "stall_cycles": e["stalls"]}


def rtl_layer(name: str, cfg_name: str) -> dict:
    """The testbench layer of a behaviour with every expectation replaced by the naive / hand one."""
    case, cfg, d, e = BY_NAME[name], CFGS[cfg_name], data(name, cfg_name), expected(name, cfg_name)
    if case.is_step:
        layer = step_layer(cfg, d["q"], d["xs"], d["h0"], d["c0"], name=name)
        layer |= {"expect_h": e["h"], "expect_c": e["c"], "step_cycles": e["step_cycles"]}
    else:
        layer = job_layer(make_job(cfg, d["fmt"], d["x"], list(d["shifts"]), d["order"], name=name))
        layer |= {"expect_out": e["y"], "perm": e["perm"]}
    return layer | {"predicted_cycles": e["cycles"], "expect_counts": hand_counts(e)}


# ----------------------------------------------------------------------------------------- the suite
def _params():
    out = []
    for case in CASES:
        for cfg_name in case.cfgs:
            for level in LEVELS:
                marks = [pytest.mark.slow] if (level, cfg_name) == ("verilator", "variant") else []
                out.append(pytest.param(case.name, cfg_name, level, marks=marks, id=f"{case.name}-{cfg_name}-{level}"))
    return out


@pytest.fixture(scope="module")
def verilator_rows(tmp_path_factory):
    """One Verilator job per config, every behaviour of that config a layer; run on first use."""
    runs = {}

    def get(cfg_name: str) -> dict:
        if cfg_name not in runs:
            layers = [rtl_layer(c.name, cfg_name) for c in CASES if cfg_name in c.cfgs]
            rep = run_regression(CFGS[cfg_name], workdir=tmp_path_factory.mktemp(f"lstm-behaviour-{cfg_name}"),
                                 layers=layers)
            runs[cfg_name] = {r["name"]: r for r in rep.layers}
        return runs[cfg_name]
    return get


def _nonzero(counts: dict) -> dict:
    return {k: int(v) for k, v in counts.items() if v}


def _check_counts(got: dict, e: dict):
    assert _nonzero(got["actions"]) == _nonzero(e["actions"])
    assert list(got["bank_reads"]) == e["bank_reads"] and list(got["bank_writes"]) == e["bank_writes"]
    assert got["stall_cycles"] == e["stalls"]


@pytest.mark.parametrize(("name", "cfg_name", "level"), _params())
def test_behaviour(name: str, cfg_name: str, level: str, verilator_rows):
    case, cfg, d, e = BY_NAME[name], CFGS[cfg_name], data(name, cfg_name), expected(name, cfg_name)
    if case.stages is not None:
        assert e["stages"] == [tuple(s) for s in case.stages]  # the naive model derives the hand shapes
    for cname, cycles in case.cycles:
        if cname == cfg_name:
            assert e["cycles"] == cycles  # the documented timing reproduces the totals worked out by hand

    if level == "reference":
        if case.is_step:
            q, h, c = d["q"], d["h0"], d["c0"]
            assert [(s.R, s.K, s.Q) for s in tf.plan_stages(q.fmt, q.order)] == e["stages"]
            for t, x in enumerate(d["xs"]):
                h, c = ref.cell_fixed(ref.wx_fixed(q, x, cfg), q.U, q.b, h, c, q.e_u, cfg)
                assert h.tolist() == e["h"][t] and c.tolist() == e["c"][t], t
        else:
            if d["order"] is None:
                assert tf.default_order(d["fmt"]) == case.hand_order  # the cheapest order, by hand
            assert [(s.R, s.K, s.Q) for s in tf.plan_stages(d["fmt"], d["order"])] == e["stages"]
            y = tf.matvec_fixed(d["fmt"], d["x"], d["shifts"], data_bits=cfg.data_bits, acc_bits=cfg.acc_bits,
                                overflow=cfg.overflow, rounding=cfg.rounding, order=d["order"])
            assert y.tolist() == e["y"]
            assert tf.final_permutation(d["fmt"], d["order"]).tolist() == e["perm"]

    elif level == "cycle_model":
        if case.is_step:
            q, h, c = d["q"], d["h0"], d["c0"]
            for t, x in enumerate(d["xs"]):
                h, c, stats = simulate_step(cfg, q, x, h, c)
                assert h.tolist() == e["h"][t] and c.tolist() == e["c"][t], t
            T = e["steps"]
            got = {"actions": {k: T * v for k, v in stats.actions.as_dict().items()},
                   "bank_reads": [T * v for v in stats.detail["bank_reads"]], "bank_writes": [T * v for v in stats.detail["bank_writes"]],
                   "stall_cycles": T * stats.stall_cycles}
            assert T * stats.cycles == e["cycles"]
        else:
            y, stats = simulate_matvec(cfg, d["fmt"], d["x"], d["shifts"], d["order"])
            assert y.tolist() == e["y"]
            assert stats.cycles == e["cycles"]
            got = {"actions": stats.actions.as_dict(), "bank_reads": stats.detail["bank_reads"], "bank_writes": stats.detail["bank_writes"],
                   "stall_cycles": stats.stall_cycles}
        _check_counts(got, e)

    elif level == "amaranth":
        res = run_layer(cfg, rtl_layer(name, cfg_name))
        if case.is_step:
            assert [v.tolist() for v in res["h"]] == e["h"] and [v.tolist() for v in res["c"]] == e["c"]
            assert res["cycles"] == [e["step_cycles"]] * e["steps"]
        else:
            assert res["out"].tolist() == e["y"]
            assert res["cycles"] == [e["cycles"]]
        _check_counts(res["counts"], e)

    else:
        row = verilator_rows(cfg_name)[name]
        outputs = sum(len(v) for v in e["h"] + e["c"]) if case.is_step else len(e["y"])
        assert row["vectors"] == outputs and row["mismatches"] == 0, row
        assert row["rtl_cycles"] == row["predicted_cycles"] == e["cycles"], row
        assert row["count_diffs"] == {}, row


# ----------------------------------------------------------------------------------------- the naive model and the cases
def test_naive_model_by_hand():
    """The naive nonlinearities and rounding on values worked out by hand (int8, F = 5)."""
    # PLAN, one = 32, c1 = 27, c2 = 20, c3 = 16: 31 -> 31 // 4 + 16 = 23; 32 -> 4 + 20 = 24; 75 -> 9 + 20 = 29;
    # 76 (= 2.375) -> 76 // 32 + 27 = 29; 127 -> 3 + 27 = 30; negative: 32 - y
    assert [n_sigmoid(v, BASE) for v in (0, 31, 32, 75, 76, 127, -1, -128)] == [16, 23, 24, 29, 29, 30, 16, 1]
    # tanh = 2 sigma(2x) - 32: 16 -> 2 * 24 - 32 = 16; 80 -> 2x = 160 = 5.0 -> 2 * 32 - 32 = 32; -80 -> -32
    assert [n_tanh(v, BASE) for v in (0, 15, 16, 80, -80)] == [0, 2 * (30 // 4 + 16) - 32, 16, 32, -32]
    # LUT-5: segment width 8; x = 0 is segment 16 with centre (128 + 4 - 128) / 32 = 0.125
    assert n_sigmoid(0, VARIANT) == math.floor(32 / (1 + math.exp(-0.125)) + 0.5) == 17
    assert n_sigmoid(-1, VARIANT) == math.floor(32 / (1 + math.exp(0.125)) + 0.5) == 15  # segment 15
    assert n_tanh(-128, VARIANT) == math.floor(32 * math.tanh(-124 / 32) + 0.5) == -32
    # ties: -6/4 and 6/4 and 2/4 half up -> -1, 2, 1; half even -> -2, 2, 0
    assert [naive_round_shift(v, 2, "half_up") for v in (-6, 6, 2)] == [-1, 2, 1]
    assert [naive_round_shift(v, 2, "half_even") for v in (-6, 6, 2)] == [-2, 2, 0]


def test_naive_matvec_matches_dense_by_hand():
    """The naive stage model itself: with shift 0 and no overflow it is ``W @ x`` of the dense matrix built
    from the TT cores' definition W[i, j] = prod_k G_k[:, i_k, j_k, :]."""
    fmt = tf.TTMatrix.random((2, 3), (3, 2), (1, 2, 1), rng=4)
    fmt = fmt.with_factors([np.rint(f.data * 3).astype(np.int64) for f in fmt.factors])
    g1, g2 = fmt.factors[0].data, fmt.factors[1].data  # (m1, n1, r1), (r1, m2, n2)
    W = np.zeros((6, 6), dtype=np.int64)
    for i1, i2, j1, j2 in itertools.product(range(2), range(3), range(3), range(2)):
        W[i1 * 3 + i2, j1 * 2 + j2] = sum(int(g1[i1, j1, r]) * int(g2[r, i2, j2]) for r in range(2))
    x = np.arange(6) - 3
    wide = LstmEngineConfig(data_bits=16, acc_bits=40, frac_bits=5)
    for order in ((0, 1), (1, 0)):
        assert n_matvec(fmt, x, (0, 0), order, wide).y == (W @ x).tolist()


def test_cases_reach_their_corners():
    """The behaviours exercise what their names say."""
    # saturate-wrap: rows 0, 1, 3, 4 leave the 16-bit accumulator; saturating and wrapping then differ
    d = data("saturate-wrap", "base")
    w = d["fmt"].factors[0].data
    exact = w @ d["x"]
    # by hand: row 0 4 * 16129 - 4 * 16256; row 1 -4 * 16256 + 4 * 16384; row 2 2 * (16129 - 16256 - 16256 + 16384)
    assert exact.tolist() == [-508, 512, 2, -130048, 130052, 16384]
    partial = np.cumsum(w * d["x"][None, :], axis=1)
    assert ((partial > 32767) | (partial < -32768)).any(axis=1).tolist() == [True, True, False, True, True, False]
    assert expected("saturate-wrap", "base")["y"] != expected("saturate-wrap", "variant")["y"]
    # saturating row 0: 16129, 32258, 32767 (sat), 32767, 16511, 255, -16001, -32257 -> >> 8 -> -126
    assert expected("saturate-wrap", "base")["y"][0] == naive_round_shift(-32257, 8, "half_up") == -126
    assert expected("saturate-wrap", "variant")["y"][0] == naive_round_shift(-508, 8, "half_even") == -2
    # rounding ties, by hand: y[m1, 0] = round(x / 4), y[m1, 1] = round(-x / 4), x = -8..7
    x = list(range(-8, 8))
    for cfg_name, rnd in (("base", "half_up"), ("variant", "half_even")):
        y = expected("rounding-ties", cfg_name)["y"]
        assert y[0::2] == [naive_round_shift(v, 2, rnd) for v in x]
        assert y[1::2] == [naive_round_shift(-v, 2, rnd) for v in x]
    assert expected("rounding-ties", "base")["y"][2 * 2] == -1 and expected("rounding-ties", "variant")["y"][2 * 2] == -2
    # breakpoints: step 1's c' is sigmoid(i) exactly (c = 0, g = tanh(127) = 1.0)
    e = expected("step-breakpoints", "base")
    assert n_tanh(127, BASE) == n_tanh(127, VARIANT) == 32
    assert e["c"][0] == [n_sigmoid(v, BASE) for v in SIG_BP]
    assert expected("step-breakpoints", "variant")["c"][0] == [n_sigmoid(v, VARIANT) for v in SIG_BP]
    # the state moves from step to step; the variant config stalls on bank conflicts in every behaviour
    for name, distinct in (("step-tt", 3), ("step-ht-extreme", 2), ("step-h1", 2)):
        assert len({tuple(h) for h in expected(name, "base")["h"]}) == distinct
    assert all(expected(c.name, "variant")["stalls"] > 0 for c in CASES if "variant" in c.cfgs)
    assert all(expected(c.name, "base")["stalls"] == 0 for c in CASES)
    # the hidden stage of step-ht-extreme leaves the accumulator range
    q = data("step-ht-extreme", "base")["q"]
    assert (np.abs(q.U) @ np.full(q.hidden, 128) > 32767).any()


def test_root_first_ht_order_rejected():
    """The HT root shares no axis with x: an order starting with it is rejected in one line."""
    fmt = data("ht-order-012", "base")["fmt"]
    with pytest.raises(HwsimError, match=r"^order factor=B1_2 is not allowed at this point: it shares no axis"):
        tf.plan_stages(fmt, (2, 0, 1))
    allowed = []
    for o in itertools.permutations(range(3)):
        try:
            tf.plan_stages(fmt, o)
            allowed.append(o)
        except HwsimError:
            pass
    assert sorted(allowed) == sorted(HT_ORDERS)
