"""One behaviour suite, run against every level of the MAC array (the FL -> CL -> RTL ladder).

Backends:

* ``reference``   -- ``hwsim.models.mac_array.gemm`` (functional level; no timing),
* ``cycle_model`` -- ``hwsim.mac_array.simulate_gemm`` (cycle level; ``stats.cycles``),
* ``amaranth``    -- the Amaranth RTL in Amaranth's Python simulator with the Verilog harness's DRAM model
  (``hwsim.cosim.amaranth_sim.run_gemm_amaranth``; busy cycles).

Every backend's outputs must equal the naive Python-loop GEMM below (written from the specification only:
sequential saturating / wrapping accumulation, explicit rounding), and every backend with a notion of time
must take exactly ``predict_gemm(...).cycles`` cycles, which is itself checked against cycle counts worked
out by hand from the timing description in ``hwsim/mac_array.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hwsim.cosim.amaranth_sim import run_gemm_amaranth
from hwsim.models import mac_array as ref
from naive import (
    NAIVE_WEIGHT_SETS,
    naive_accumulate,
    naive_act_range,
    naive_ovf,
    naive_requant,
    naive_round_shift,
)

from hwsim.config import MacArrayConfig
from hwsim.mac_array import predict_gemm, simulate_gemm

FORMATS = ("int8", "int4", "int2", "ternary", "binary", "pow2")
DATAFLOWS = ("ws", "os")

# ----------------------------------------------------------------------------------------- naive model
# Independent of hwsim: value sets, accumulation and requantization from tests/naive.py.
def naive_gemm(a, w, act_bits, acc_bits, overflow, rounding, shift, relu) -> np.ndarray:
    a, w = np.asarray(a).tolist(), np.asarray(w).tolist()
    accs = naive_accumulate(a, w, acc_bits, overflow)
    out = [[naive_requant(v, act_bits, shift, relu, rounding) for v in row] for row in accs]
    return np.array(out, dtype=np.int64).reshape(len(a), len(w[0]))


def naive_of(cfg: MacArrayConfig, a, w, shift, relu) -> np.ndarray:
    return naive_gemm(a, w, cfg.act_bits, cfg.acc_bits, cfg.overflow, cfg.rounding, shift, relu)


def test_naive_model_self_check():
    """The naive model itself, on values worked out by hand."""
    # half_up: ties towards +inf; half_even: ties to even.
    assert [naive_round_shift(x, 2, "half_up") for x in (-6, -2, 2, 6, 5, -5)] == [-1, 0, 1, 2, 1, -1]
    assert [naive_round_shift(x, 2, "half_even") for x in (-6, -2, 2, 6, 5, -5)] == [-2, 0, 0, 2, 1, -1]
    # 8-bit accumulator: 100 + 100 saturates to 127 then -100 gives 27; wrapping gives 100.
    assert naive_ovf(naive_ovf(100 + 100, 8, "saturate") - 100, 8, "saturate") == 27
    assert naive_ovf(naive_ovf(100 + 100, 8, "wrap") - 100, 8, "wrap") == 100
    assert naive_ovf(100 + 100, 8, "wrap") == -56


# ----------------------------------------------------------------------------------------- backends
@dataclass(frozen=True)
class Backend:
    name: str
    run: Callable  # (cfg, a, w, shift, relu) -> (out [m, n] int64, cycles or None)

    @property
    def has_cycles(self) -> bool:
        # The cycle model's cycles are predict_gemm's own: comparing them with predict_gemm proves nothing.
        # They are checked against hand-derived counts below and against the RTL (Amaranth here, Verilator
        # in tests/test_cosim.py).
        return self.name == "amaranth"


def _run_reference(cfg, a, w, shift, relu):
    return ref.gemm(a, w, cfg, shift=shift, relu=relu), None


def _run_cycle_model(cfg, a, w, shift, relu):
    out, stats = simulate_gemm(cfg, a, w, shift=shift, relu=relu)
    return out, stats.cycles


def _run_amaranth(cfg, a, w, shift, relu):
    return run_gemm_amaranth(cfg, a, w, shift, relu)


BACKENDS = {
    "reference": Backend("reference", _run_reference),
    "cycle_model": Backend("cycle_model", _run_cycle_model),
    "amaranth": Backend("amaranth", _run_amaranth),
}


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> Backend:
    return BACKENDS[request.param]


# ----------------------------------------------------------------------------------------- configurations
# Tiny SRAMs force folding: on a 2x3 array with 8-bit activations and 32-bit accumulators, WS tiles hold
# m_tile = min(8*16 // (2*2*8), 8*24 // (3*32)) = min(4, 2) = 2 activation rows, and OS chunks hold
# k_chunk = min(8*16 // (2*2*8), 8*16 // (2*3*8)) = min(4, 2) = 2 reduction steps (int8).
SMALL_SRAM = {"input_sram_bytes": 16, "weight_sram_bytes": 16, "output_sram_bytes": 24}


def make_cfg(fmt: str, dataflow: str, rows: int, cols: int, *, act_bits: int | None = 8, acc_extra: int | None = None,
             overflow: str = "saturate", rounding: str = "half_up", bw: float = 1.0) -> MacArrayConfig:
    """A small config; ``acc_extra`` sets ``acc_bits = product_bits + acc_extra`` (default 32 bits)."""
    act = None if fmt == "binary" else act_bits
    cfg = MacArrayConfig(rows=rows, cols=cols, dataflow=dataflow, weight_format=fmt, act_bits=act,
                         overflow=overflow, rounding=rounding, dram_bytes_per_cycle=bw, **SMALL_SRAM)
    if acc_extra is not None:
        cfg = cfg.replace(acc_bits=cfg.product_bits + acc_extra)
    return cfg


def steps(cfg: MacArrayConfig) -> tuple[int, int]:
    """(rows of M per output tile, reduction steps per fold) as documented in rtl/mac_array.py."""
    return (cfg.m_tile, cfg.rows) if cfg.dataflow == "ws" else (cfg.rows, cfg.k_chunk)


# ----------------------------------------------------------------------------------------- data
def rand_acts(rng, cfg, shape):
    return rng.choice(np.array(naive_act_range(cfg.act_bits), dtype=np.int64), size=shape)


def rand_weights(rng, cfg, shape):
    return rng.choice(np.array(NAIVE_WEIGHT_SETS[cfg.weight_format], dtype=np.int64), size=shape)


def extreme_data(cfg, m_rows: int, k: int, n: int, rng):
    """Extreme operands whose partial sums run far outside the accumulator, in both directions.

    Rows: all max, all min, max then min (order matters when saturating), min then max, random.
    Columns: all max weight, all min weight, alternating, random.
    """
    acts = naive_act_range(cfg.act_bits)
    amin, amax = acts[0], acts[-1]
    ws = NAIVE_WEIGHT_SETS[cfg.weight_format]
    wmin, wmax = min(ws), max(ws)
    half = k // 2 + 1
    rows = [[amax] * k, [amin] * k, [amax] * half + [amin] * (k - half), [amin] * half + [amax] * (k - half)]
    a = np.array(rows + [list(r) for r in rand_acts(rng, cfg, (max(m_rows - 4, 0), k))], dtype=np.int64)[:m_rows]
    cols = [[wmax] * k, [wmin] * k, [wmax if i % 2 else wmin for i in range(k)]]
    w = np.array(cols + [list(c) for c in rand_weights(rng, cfg, (max(n - 3, 0), k))], dtype=np.int64)[:n].T
    return a, np.ascontiguousarray(w)


@dataclass(frozen=True)
class Case:
    name: str
    rows: int
    cols: int
    make: Callable  # (cfg, rng) -> (a, w, shift, relu)
    act_bits: int = 8
    acc_extra: int | None = None
    overflow: str = "saturate"
    rounding: str = "half_up"
    bw: float = 1.0
    fold_k: bool = False  # the case must have several reduction folds
    fold_m: bool = False  # the case must have several output-row tiles
    overflows: bool = False  # the exact sums must leave the accumulator range

    def cfg(self, fmt: str, dataflow: str) -> MacArrayConfig:
        return make_cfg(fmt, dataflow, self.rows, self.cols, act_bits=self.act_bits, acc_extra=self.acc_extra,
                        overflow=self.overflow, rounding=self.rounding, bw=self.bw)


def _random(m, k, n, shift, relu=False):
    def make(cfg, rng):
        return rand_acts(rng, cfg, (m, k)), rand_weights(rng, cfg, (k, n)), shift, relu
    return make


def _k_folds(m, n, shift):
    def make(cfg, rng):
        k = 2 * steps(cfg)[1] + 1  # two full reduction folds and a ragged one
        return rand_acts(rng, cfg, (m, k)), rand_weights(rng, cfg, (k, n)), shift, False
    return make


def _m_tiles(k, n, shift, relu=False):
    def make(cfg, rng):
        m = 2 * steps(cfg)[0] + 1  # two full output-row tiles and a ragged one
        return rand_acts(rng, cfg, (m, k)), rand_weights(rng, cfg, (k, n)), shift, relu
    return make


def _extreme(m, k, n, relu=False):
    def make(cfg, rng):
        a, w = extreme_data(cfg, m, k, n, rng)
        # Map the accumulator range onto the output range so that saturation / wrap shows in the outputs.
        shift = max(cfg.acc_bits - cfg.act_bits, 0)
        return a, w, shift, relu
    return make


def _ties(shift):
    def make(cfg, rng):
        # K = 1 and w = +-1 (a value of every format): acc = +-a, so every residue mod 2**shift appears,
        # including the exact ties +-2**(shift-1), +-3*2**(shift-1), ... with both parities of the quotient.
        vals = [v for v in naive_act_range(cfg.act_bits) if -4 * 2**shift <= v < 4 * 2**shift]
        a = np.array(vals, dtype=np.int64).reshape(-1, 1)
        w = np.array([[1, -1, 1]], dtype=np.int64)
        return a, w, shift, False
    return make


CASES = [
    Case("1x1x1", 2, 3, _random(1, 1, 1, 0)),
    Case("ragged", 3, 2, _random(3, 5, 4, 3), act_bits=5, bw=2.0),
    Case("k_folds", 2, 3, _k_folds(2, 3, 4), bw=0.5, fold_k=True),
    Case("m_tiles", 3, 2, _m_tiles(4, 5, 2), rounding="half_even", fold_m=True),
    Case("saturate", 2, 3, _extreme(5, 9, 4), acc_extra=0, fold_k=True, overflows=True),
    Case("saturate_relu", 3, 2, _extreme(4, 12, 3, relu=True), acc_extra=1, rounding="half_even", bw=4.0,
         overflows=True),
    Case("wrap", 2, 3, _extreme(5, 9, 4), acc_extra=0, overflow="wrap", fold_k=True, overflows=True),
    Case("ties_half_up", 2, 3, _ties(2), rounding="half_up"),
    Case("ties_half_even", 3, 2, _ties(2), rounding="half_even"),
    Case("ties_half_even_s1", 2, 3, _ties(1), rounding="half_even", act_bits=4),
    Case("relu", 2, 3, _random(5, 7, 5, 3, relu=True), rounding="half_even", fold_k=True, fold_m=True),
]


def _case_params():
    return [pytest.param(c, fmt, df, id=f"{c.name}-{fmt}-{df}") for c in CASES for fmt in FORMATS for df in DATAFLOWS]


@pytest.mark.parametrize(("case", "fmt", "dataflow"), _case_params())
def test_gemm_matches_naive(backend: Backend, case: Case, fmt: str, dataflow: str):
    cfg = case.cfg(fmt, dataflow)
    seed = sum(map(ord, f"{case.name}/{fmt}/{dataflow}"))
    a, w, shift, relu = case.make(cfg, np.random.default_rng(seed))
    m, k = a.shape
    n = w.shape[1]
    m_step, k_step = steps(cfg)
    if case.fold_k and not (fmt == "binary" and dataflow == "os"):  # binary OS chunks hold 21 steps
        assert k > k_step, f"case {case.name} must fold K: k={k}, k_step={k_step}"
    if case.fold_m:
        assert m > m_step, f"case {case.name} must tile M: m={m}, m_step={m_step}"

    want = naive_of(cfg, a, w, shift, relu)
    out, cycles = backend.run(cfg, a, w, shift, relu)
    np.testing.assert_array_equal(np.asarray(out), want)
    assert np.asarray(out).dtype == np.int64
    if backend.has_cycles:
        assert cycles == predict_gemm(cfg, m, k, n).cycles
    elif backend.name == "reference":
        assert cycles is None


def test_cases_exercise_saturation_and_wrap():
    """The extreme cases really overflow: exact sums differ from the saturated / wrapped accumulators."""
    for case in CASES:
        if not case.overflows:
            continue
        for fmt in FORMATS:
            cfg = case.cfg(fmt, "ws")
            a, w, _, _ = case.make(cfg, np.random.default_rng(0))
            exact = a @ w
            lo, hi = -(2 ** (cfg.acc_bits - 1)), 2 ** (cfg.acc_bits - 1) - 1
            assert ((exact < lo) | (exact > hi)).any(), (case.name, fmt)


# ----------------------------------------------------------------------------------------- hand-timed cases
# Worked out from the timing description in hwsim/mac_array.py (cycle 1 = first busy cycle), int8 weights
# and 8-bit activations on a 2x2 array at 1 byte/cycle: a weight beat is cols*8 = 16 bits -> Pw = 2 cycles,
# an activation beat is rows*8 = 16 bits -> Pa = 2 cycles.
#
# WS, 1x1x1 (one fold, kt = 1, mt = 1):
#   loader WAIT at 1, g = max(1, free=1) = 1; weight beat at t0 = max(g+1, ok=1) = 2;
#   first act beat at ok = 2 + 1*Pw = 4, last act beat 4; loaded = 5.
#   compute WAIT at 1, proceeds at g = max(1, 5) = 5; WLOAD kt+1 = 2 (6..7); STREAM mt+rows+cols = 5 (8..12);
#   DRAIN mt+2 = 3 (13..15)  ->  15 cycles.
# OS, 1x1x1 (one chunk, kt = 1, rt = 1):
#   loader as above: weight beat 2, act beat 4, loaded = 5; compute proceeds at 5; STREAM kt = 1 (6);
#   FLUSH rows+cols-1 = 3 (7..9); DRAIN rt+1 = 2 (10..11)  ->  11 cycles.
# WS, 1x3x1 (two reduction folds: kt = 2 then 1, mt = 1), showing the loader running ahead:
#   fold 0: weight beats 2, 4; act beat ok = 2 + 2*Pw = 6; loaded = 7 (next loader WAIT 7, DRAM ok 8).
#           compute proceeds at 7; WLOAD 3 (8..10); STREAM 5 (11..15); half 0 released at 16; no drain.
#   fold 1: loader g = max(7, free(half 1) = 1) = 7; weight beat max(8, ok=8) = 8; act beat 10; loaded 11.
#           compute WAIT 16, proceeds at max(16, 11) = 16; WLOAD 2 (17..18); STREAM 5 (19..23);
#           DRAIN 3 (24..26)  ->  26 cycles.
# OS, 3x1x1 on the 2x2 array (two output-row tiles m0 = 0 (rt = 2) and m0 = 2 (rt = 1), one chunk each):
#   fold 0: weight beat 2, act beat 4, loaded 5 (DRAM ok 6); compute 5; STREAM 6; FLUSH 7..9;
#           DRAIN rt+1 = 3 (10..12).
#   fold 1: loader g = max(5, free(half 1) = 1) = 5; weight beat max(6, 6) = 6; act beat 8; loaded 9.
#           compute WAIT 13, proceeds at 13; STREAM 14; FLUSH 15..17; DRAIN 2 (18..19)  ->  19 cycles.
HAND_TIMED = [  # the counts above, plus the pipeline registers: S = 3 per STREAM / FLUSH, D = 3 per DRAIN
    ("ws", (1, 1, 1), 15 + 3 + 3),
    ("os", (1, 1, 1), 11 + 3 + 3),
    ("ws", (1, 3, 1), 26 + 2 * 3 + 3),
    ("os", (3, 1, 1), 19 + 2 * 3 + 2 * 3),
]


@pytest.mark.parametrize("backend", ["cycle_model", "amaranth"], indirect=True)
@pytest.mark.parametrize(("dataflow", "shape", "cycles"), HAND_TIMED,
                         ids=[f"{d}-{'x'.join(map(str, s))}" for d, s, _ in HAND_TIMED])
def test_hand_computed_cycles(backend: Backend, dataflow, shape, cycles):
    cfg = MacArrayConfig(rows=2, cols=2, dataflow=dataflow, weight_format="int8", dram_bytes_per_cycle=1)
    assert (cfg.weight_beat_period, cfg.act_beat_period) == (2, 2)
    m, k, n = shape
    rng = np.random.default_rng(1)
    a, w = rand_acts(rng, cfg, (m, k)), rand_weights(rng, cfg, (k, n))
    assert predict_gemm(cfg, m, k, n).cycles == cycles
    out, got = backend.run(cfg, a, w, 1, False)
    assert got == cycles
    np.testing.assert_array_equal(out, naive_of(cfg, a, w, 1, False))


# ----------------------------------------------------------------------------------------- backpressure
def _pattern(kind: str) -> Callable[[int], bool]:
    if kind == "alternate":
        return lambda c: c % 2 == 0
    if kind == "sparse":
        return lambda c: c % 5 == 3
    if kind == "bursts":  # long stalls: ready only 4 cycles out of every 23
        return lambda c: c % 23 < 4
    bits = np.random.default_rng(7).random(100_000) < 0.4
    return lambda c: bool(bits[c % len(bits)])


@pytest.mark.parametrize("kind", ["alternate", "sparse", "bursts", "random"])
@pytest.mark.parametrize(("fmt", "dataflow"), [("int8", "ws"), ("int4", "os"), ("pow2", "ws"), ("ternary", "os"),
                                               ("binary", "ws"), ("int2", "os")])
def test_amaranth_backpressure(kind: str, fmt: str, dataflow: str):
    """With o_out.ready toggling, the RTL must hold its output beats and still deliver every one exactly."""
    cfg = make_cfg(fmt, dataflow, 2, 3, rounding="half_even")
    m_step, k_step = steps(cfg)
    m, k, n = 2 * m_step + 1, min(2 * k_step + 1, 9), 5  # several M tiles and N tiles, ragged edges
    rng = np.random.default_rng(sum(map(ord, f"{kind}/{fmt}/{dataflow}")))
    a, w = rand_acts(rng, cfg, (m, k)), rand_weights(rng, cfg, (k, n))
    out, cycles = run_gemm_amaranth(cfg, a, w, 2, True, out_ready_pattern=_pattern(kind))
    np.testing.assert_array_equal(out, naive_of(cfg, a, w, 2, True))
    # The stalls cost time or hide behind waits for DRAM (not compared exactly): never fewer cycles.
    assert cycles >= predict_gemm(cfg, m, k, n).cycles


def test_amaranth_always_ready_pattern_is_the_plain_harness():
    cfg = make_cfg("int4", "ws", 2, 3)
    rng = np.random.default_rng(3)
    a, w = rand_acts(rng, cfg, (5, 5)), rand_weights(rng, cfg, (5, 4))
    plain = run_gemm_amaranth(cfg, a, w, 1, False)
    patterned = run_gemm_amaranth(cfg, a, w, 1, False, out_ready_pattern=lambda c: True)
    np.testing.assert_array_equal(plain[0], patterned[0])
    assert plain[1] == patterned[1] == predict_gemm(cfg, 5, 5, 4).cycles
