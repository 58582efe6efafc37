"""MAC array: the closed form against the per-fold model, and both against a tile walk, over random shapes
including 1 and primes (Hypothesis); written for the mutation run (benchmarks/mutation.py, docs/testing.md).

The tile walk enumerates the folds with plain loops in the RTL's order (``for m0: for n0: for k0``; IS swaps
the roles of M and N) and counts the DRAM beats and bytes, SRAM words, PE operations, requantizations and
output-SRAM traffic fold by fold, from the config's widths alone. Hand formulas on top: a dense array does
``m * k * C * ceil(n / C)`` PE MACs in WS (padding columns idle but clocked), ``ceil(m / R) * ceil(n / C) * k
* R * C`` in OS.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.mac_array import fold_plan, predict_gemm, predict_gemm_folds
from hwsim.mac_array_actions import MacArrayActions
from hwsim.mac_array_fast import closed_form_gemm

#: 1, primes and composites.
DIMS = st.sampled_from([1, 2, 3, 4, 5, 7, 8, 11, 13, 16, 17, 31, 37])
ARRAY = st.sampled_from([1, 2, 3, 4, 5, 7, 8])


def _cfg(draw) -> MacArrayConfig:
    return MacArrayConfig(
        rows=draw(ARRAY), cols=draw(ARRAY), dataflow=draw(st.sampled_from(["ws", "os", "is"])),
        weight_format=draw(st.sampled_from(["int8", "int4", "int2", "ternary", "pow2", "binary"])),
        input_sram_bytes=draw(st.sampled_from([16, 64, 512, 65536])),
        weight_sram_bytes=draw(st.sampled_from([16, 64, 512, 65536])),
        output_sram_bytes=draw(st.sampled_from([64, 128, 65536])),
        dram_bytes_per_cycle=draw(st.sampled_from([0.25, 0.5, 1, 3, 16, 64])),
        sram_word_bits=draw(st.sampled_from([8, 24, 64, 128])),
        gating=draw(st.sampled_from(["clock", "operand", "none"])))


@st.composite
def gemms(draw):
    try:
        cfg = _cfg(draw)
        _ = cfg.fold_steps  # IS configs whose SRAMs hold no tile raise here
    except HwsimError:
        cfg = MacArrayConfig(rows=draw(ARRAY), cols=draw(ARRAY), dataflow="ws")
    return cfg, draw(DIMS), draw(DIMS), draw(DIMS)


def _walk(cfg: MacArrayConfig, m: int, k: int, n: int) -> dict:
    """Counts of one dense GEMM by walking its folds with loops (see the module docstring)."""
    R, C = cfg.rows, cfg.cols
    m_step, k_step = cfg.fold_steps
    big_m, big_n = (n, m) if cfg.dataflow == "is" else (m, n)
    if cfg.dataflow == "is":  # stationary activations (cols per beat), streamed weights (rows per beat)
        stat_bits, strm_bits = C * cfg.act_bits, R * cfg.weight_bits
    else:
        stat_bits, strm_bits = C * cfg.weight_bits, R * cfg.act_bits
    words = lambda bits: -(-bits // cfg.sram_word_bits)  # noqa: E731
    stat_lb, strm_lb = stat_bits // C, strm_bits // R
    wbits = cfg.sram_word_bits

    def touched(real: list[bool], lane_bits: int) -> int:
        """SRAM words one beat access touches: every word holding a bit of an accessed lane (all lanes without
        gating; with it the real ones: one memory per word, each with its own enable)."""
        acc = [i for i, r in enumerate(real) if r or gating == "none"]
        return len({b // wbits for i in acc for b in range(i * lane_bits, (i + 1) * lane_bits)})

    def used(real: list[bool]) -> int:
        return sum(1 for r in real if r or gating == "none")

    c = dict(stat_words=0, strm_words=0, stat_lanes=0, strm_lanes=0, folds=0, nw=0, na=0, out_rows=0, pe_macs=0, pe_idle=0, pe_w=0, pe_regs=0, pe_gated=0,
             psum_reads=0, o_writes=0, o_write_words=0, o_write_lanes=0, out_lanes=0, o_read_words=0,
             o_read_lanes=0)
    gating = cfg.gating
    for m0 in range(0, big_m, m_step):
        for n0 in range(0, big_n, C):
            for k0 in range(0, k, k_step):
                kt = min(k_step, k - k0)
                rows = min(m_step, big_m - m0)
                last = k0 + k_step >= k
                c["folds"] += 1
                # Per PE (r, c): real when its row and column hold real work; every pass visits every PE.
                real_col = [n0 + j < big_n for j in range(C)]
                if cfg.dataflow == "os":
                    c["nw"] += kt
                    c["na"] += kt
                    real_row = [m0 + r < big_m for r in range(R)]
                    c["stat_words"] += kt * touched(real_col, stat_lb)
                    c["stat_lanes"] += kt * used(real_col)
                    c["strm_words"] += kt * touched(real_row, strm_lb)
                    c["strm_lanes"] += kt * used(real_row)
                    for _step in range(kt):
                        for r in range(R):
                            for j in range(C):
                                real = m0 + r < big_m and real_col[j]
                                c["pe_macs" if real else "pe_idle"] += 1
                                gated = gating == "clock" and not real
                                c["pe_gated" if gated else "pe_regs"] += 1
                else:
                    c["nw"] += kt
                    c["na"] += rows
                    real_step = [r < kt for r in range(R)]
                    c["stat_words"] += kt * touched(real_col, stat_lb)
                    c["stat_lanes"] += kt * used(real_col)
                    c["strm_words"] += rows * touched(real_step, strm_lb)
                    c["strm_lanes"] += rows * used(real_step)
                    for _vec in range(rows):
                        for r in range(R):
                            for j in range(C):
                                real = r < kt and real_col[j]
                                c["pe_macs" if real else "pe_idle"] += 1
                                gated = gating == "clock" and not real_col[j]
                                c["pe_gated" if gated else "pe_regs"] += 1
                    c["pe_w"] += kt * (sum(real_col) if gating != "none" else C)
                    lanes = sum(real_col) if gating != "none" else C
                    c["o_writes"] += rows
                    c["o_write_words"] += rows * words(lanes * cfg.acc_bits)
                    c["o_write_lanes"] += rows * lanes
                    if k0 > 0:
                        c["psum_reads"] += rows
                        c["o_read_words"] += rows * words(lanes * cfg.acc_bits)
                        c["o_read_lanes"] += rows * lanes
                if last:
                    lanes_out = sum(real_col) if gating != "none" else C
                    c["out_rows"] += rows
                    c["out_lanes"] += rows * lanes_out
                    if cfg.dataflow != "os":  # the drain reads each output row's lanes once
                        c["o_read_words"] += rows * words(lanes_out * cfg.acc_bits)
                        c["o_read_lanes"] += rows * lanes_out
    stat_words, strm_words = c["stat_words"], c["strm_words"]
    if gating == "none":  # whole beats: ceil(beat bits / word) words each
        assert (stat_words, strm_words) == (words(stat_bits) * c["nw"], words(strm_bits) * c["na"])
    in_words, wt_words = (stat_words, strm_words) if cfg.dataflow == "is" else (strm_words, stat_words)
    stat_used, strm_used = c["stat_lanes"] * stat_lb, c["strm_lanes"] * strm_lb
    in_bits, wt_bits = (stat_used, strm_used) if cfg.dataflow == "is" else (strm_used, stat_used)
    return dict(
        folds=c["folds"], pe_macs=c["pe_macs"], pe_weight_loads=c["pe_w"], pe_reg_writes=c["pe_regs"],
        pe_idle_macs=c["pe_idle"], pe_idle_regs=c["pe_gated"],
        input_sram_reads=in_words, input_sram_writes=in_words, weight_sram_reads=wt_words,
        weight_sram_writes=wt_words, input_sram_read_bytes=math.ceil(in_bits / 8),
        input_sram_write_bytes=math.ceil(in_bits / 8), weight_sram_read_bytes=math.ceil(wt_bits / 8),
        weight_sram_write_bytes=math.ceil(wt_bits / 8),
        output_sram_reads=c["o_read_words"], output_sram_writes=c["o_write_words"],
        output_sram_read_bytes=math.ceil(c["o_read_lanes"] * cfg.acc_bits / 8),
        output_sram_write_bytes=math.ceil(c["o_write_lanes"] * cfg.acc_bits / 8),
        dram_read_beats=c["nw"] + c["na"], dram_write_beats=c["out_rows"],
        dram_read_bytes=math.ceil((c["nw"] * stat_bits + c["na"] * strm_bits) / 8),
        dram_write_bytes=math.ceil(c["out_lanes"] * cfg.out_bits / 8), requant_ops=c["out_lanes"],
        # dense, shift requantizer, no zero-tile skipping: none of these happen
        pe_index_loads=0, pe_act_selects=0, tile_bitmap_reads=0, tile_bitmap_writes=0, requant_f32_ops=0,
        zp_correct_ops=0, zp_row_adds=0, zp_row_mults=0)


@settings(max_examples=150, deadline=None)
@given(gemms())
def test_closed_form_equals_per_fold_model_and_the_tile_walk(g):
    cfg, m, k, n = g
    closed = closed_form_gemm(cfg, m, k, n, name="g")
    folds = predict_gemm_folds(cfg, m, k, n, name="g")
    assert closed == folds
    assert predict_gemm(cfg, m, k, n, name="g") == closed
    want = _walk(cfg, m, k, n)
    assert closed.detail["folds"] == want.pop("folds")
    assert MacArrayActions.of(closed).as_dict() == want
    assert closed.macs == m * k * n
    R, C = cfg.rows, cfg.cols
    assert want["pe_macs"] == m * k * n  # real MACs only; the rest of every pass is idle slots
    if cfg.dataflow == "ws":
        assert want["pe_macs"] + want["pe_idle_macs"] == m * -(-k // R) * R * C * -(-n // C)
    if cfg.dataflow == "os":
        assert want["pe_macs"] + want["pe_idle_macs"] == -(-m // R) * -(-n // C) * k * R * C


@settings(max_examples=60, deadline=None)
@given(gemms(), st.sampled_from([2, 3, 5]))
def test_groups_scale_every_count(g, groups):
    cfg, m, k, n = g
    one = predict_gemm(cfg, m, k, n)
    many = predict_gemm(cfg, m, k, n, groups=groups)
    assert (many.cycles, many.stall_cycles, many.detail["folds"], many.macs) == (
        one.cycles * groups, one.stall_cycles * groups, one.detail["folds"] * groups, one.macs * groups)
    assert many.detail["groups"] == groups
    assert [many.detail[d] for d in "mkn"] == [one.detail[d] for d in "mkn"] == [m, k, n]
    assert MacArrayActions.of(many).as_dict() == {key: v * groups for key, v in MacArrayActions.of(one).as_dict().items()}
    assert many == predict_gemm_folds(cfg, m, k, n, groups=groups)


def test_fold_plan_order_and_edges_by_hand():
    # 2x3 WS, m = 3 with m_tile 2 (input SRAM 8 B: 64 bits / (2 * 16-bit beats) = 2 rows), k = 5 (folds of 2),
    # n = 4 (column tiles of 3): order m0-major, then n0, then k0; edge tiles m = 1 row, n = 1 column, k = 1.
    cfg = MacArrayConfig(rows=2, cols=3, dataflow="ws", input_sram_bytes=8)
    assert cfg.fold_steps == (2, 2)
    p = fold_plan(cfg, 3, 5, 4)
    assert p.m0.tolist() == [0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2]
    assert p.n0.tolist() == [0, 0, 0, 3, 3, 3, 0, 0, 0, 3, 3, 3]
    assert p.k0.tolist() == [0, 2, 4] * 4
    assert p.kt.tolist() == [2, 2, 1] * 4
    assert p.mt.tolist() == [2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1]
    assert p.rows_out.tolist() == [0, 0, 2, 0, 0, 2, 0, 0, 1, 0, 0, 1]
    assert p.count == 12


def test_zero_tile_skipping_timing_by_hand():
    # 2x2 WS, M = 3, K = 4 (two folds of 2), N = 2 (one column tile), 1 beat per cycle; pipeline registers
    # S = D = 3 (hwsim.config). An executed fold: loader WAIT, weights kt = 2 beats, activations mt = 3 beats,
    # full the cycle after; compute WAIT until full, WLOAD kt + 1 = 3, STREAM mt + R + C + S = 10; after the
    # tile's last k-fold DRAIN mt + 2 + D = 8. A skipped fold: one WAIT cycle in each engine (plus the drain
    # when it is the tile's last fold). Dense: 42 cycles (tests/test_cycle_model.py, two folds).
    cfg = MacArrayConfig(rows=2, cols=2, dataflow="ws", skip_zero_tiles=True)
    w = np.ones((4, 2), dtype=np.int64)
    assert predict_gemm(cfg, 3, 4, 2, weight=w).cycles == 42
    # fold 0 zero: loader WAIT 1, fold 1's WAIT at 2, weights 3-4, activations 5-7, full from 8; compute skips
    # at 1, waits 2..8 (6 stalls), WLOAD + STREAM 13 -> 21, DRAIN 8 -> 29.
    a = w.copy()
    a[0:2] = 0
    st = predict_gemm(cfg, 3, 4, 2, weight=a)
    assert (st.cycles, st.stall_cycles, st.detail["folds"]) == (29, 6, 1)
    assert st.actions.get("output_sram", "read") == 3  # the drain; fold 1 starts the accumulation (no partial-sum read)
    # fold 1 zero: fold 0 loads 2-6, full from 7, compute 7 + 13 = 20; the skipped last fold WAITs at 21 and
    # the tile drains: 21 + 8 = 29.
    b = w.copy()
    b[2:4] = 0
    st = predict_gemm(cfg, 3, 4, 2, weight=b)
    assert (st.cycles, st.stall_cycles, st.detail["folds"]) == (29, 6, 1)
    # all zero: WAIT 1, WAIT 2 + DRAIN 8 = 10; the tile drains zero accumulators and reads no output SRAM.
    st = predict_gemm(cfg, 3, 4, 2, weight=np.zeros((4, 2), dtype=np.int64))
    assert (st.cycles, st.stall_cycles, st.detail["folds"]) == (10, 0, 0)
    a = MacArrayActions.of(st)
    assert (a.output_sram_reads, a.output_sram_writes, a.dram_write_beats) == (0, 0, 3)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["ws", "os", "is"]), st.sampled_from([1, 2, 3]), st.sampled_from([1, 2, 3, 5]),
       st.integers(20, 600), st.integers(1, 97), st.integers(1, 23), st.sampled_from([0.25, 0.5, 1, 3, 16]),
       st.sampled_from([16, 32, 64]))
def test_long_fold_sequences_closed_form_equals_per_fold_model(df, rows, cols, m, k, n, bw, sram):
    # Many repetitions of the same fold (tiles of 1-3 rows through small SRAMs, long K): the closed form skips
    # whole periods of the recurrence once its state repeats, then finishes the remainder fold by fold; the
    # per-fold model steps every fold. Also a fresh beat-period cache entry per config.
    try:
        cfg = MacArrayConfig(rows=rows, cols=cols, dataflow=df, input_sram_bytes=sram, weight_sram_bytes=sram,
                             output_sram_bytes=64, dram_bytes_per_cycle=bw)
        plan = fold_plan(cfg, m, k, n)
    except HwsimError:  # SRAMs too small for this array
        return
    if plan.count > 4000:
        return
    assert closed_form_gemm(cfg, m, k, n) == predict_gemm_folds(cfg, m, k, n)


def test_closed_form_default_name():
    assert closed_form_gemm(MacArrayConfig(), 1, 1, 1).detail["name"] == "gemm"


def test_nm_sparse_folds_and_actions_by_hand():
    # 4x2 WS 2:4: a fold covers rows * M / N = 8 reduction steps and streams the N = 2 kept weights of each
    # group of M = 4: K = 11 -> folds of 8 and 3 steps, kept rows 2 * 2 = 4 and min(2, 3) = 2. Each PE loads
    # a 2-bit index with each weight (6 kept rows x 2 columns = 12) and selects one activation per MAC
    # (3 rows x 6 kept x 2 columns = 36). 1:4: folds of 16 steps, K = 19 -> 4 and min(1, 3) = 1 kept rows.
    cfg = MacArrayConfig(rows=4, cols=2, sparsity="2:4")
    p = fold_plan(cfg, 3, 11, 2)
    assert (p.k0.tolist(), p.kt.tolist(), p.mt.tolist()) == ([0, 8], [4, 2], [3, 3])
    a = MacArrayActions.of(predict_gemm(cfg, 3, 11, 2))
    assert (a.pe_index_loads, a.pe_act_selects, a.pe_macs, a.pe_weight_loads) == (12, 36, 36, 12)
    assert fold_plan(MacArrayConfig(rows=4, cols=2, sparsity="1:4"), 3, 19, 2).kt.tolist() == [4, 1]
    dense = MacArrayActions.of(predict_gemm(MacArrayConfig(rows=4, cols=2), 3, 11, 2))
    assert (dense.pe_index_loads, dense.pe_act_selects) == (0, 0)


def _step_every_repetition(s: list, block: list, reps: int, pw: int, pa: int) -> None:
    """The naive loop ``_run`` accelerates: every repetition of every item, one ``_step`` per fold."""
    from hwsim.mac_array_fast import _step

    for _ in range(reps):
        for item, count in block:
            for _ in range(count):
                if isinstance(item, tuple):
                    _step(s, item, pw, pa)
                else:
                    _step_every_repetition(s, item, 1, pw, pa)


def test_period_skipping_equals_stepping_every_fold():
    # _run skips whole periods once the state relative to the compute clock repeats; it must end in the state
    # the plain fold-by-fold recurrence reaches, whatever folds came before the block (the first repetition
    # starts from their state, not from a steady one) and however the block nests. Folds are (weight beats,
    # activation beats, compute cycles, tail cycles); pw, pa: cycles per weight / activation beat.
    import random

    from hwsim.mac_array_fast import _run, _step

    # a block entered after two unrelated folds: the state after the first repetition matches the next ones in
    # (ok, loader, other half's release) but not in this half's release, which the next fold still waits for
    cases = [([(0, 5, 18, 9), (6, 1, 12, 7)], [((2, 5, 18, 10), 4), ((6, 1, 6, 10), 1)], 12, 3, 3)]
    rng = random.Random(16)

    def fold():
        return (rng.randint(0, 6), rng.randint(1, 6), rng.randint(1, 20), rng.randint(0, 10))

    for _ in range(300):
        block = [(fold(), rng.choice([1, 1, 2, 4])) for _ in range(rng.choice([1, 2, 3]))]
        if rng.random() < 0.3:
            block = [(block, rng.randint(2, 4)), (fold(), 1)]
        cases.append(([fold() for _ in range(rng.randint(0, 3))], block, rng.randint(3, 12), rng.randint(1, 6),
                      rng.randint(1, 6)))
    for prefix, block, reps, pw, pa in cases:
        s = [1, 1, 1, 1, 1, 0]
        for f in prefix:
            _step(s, f, pw, pa)
        want = list(s)
        _step_every_repetition(want, block, reps, pw, pa)
        _run(s, block, reps, pw, pa)
        assert s == want, (prefix, block, reps, pw, pa)
