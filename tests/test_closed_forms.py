"""Closed-form cycle and traffic formulas against step-by-step models, over random shapes including 1 and
primes (Hypothesis).

The MAC array's closed form is checked against its per-fold model in tests/test_sweep.py and the deformable
unit's vectorized model against a per-sample scalar simulation in tests/test_deform_unit.py; this file covers
the LSTM engine's stage timing and action counts and the RF array's tile and emulator models. Each step
model walks the work element by element (tiles, k steps, result writes to banks by address, vectors through
the converters) and counts as it goes, so a wrong tile count, last-tile width or per-vector action in the
closed form shows up as a difference.
"""

from __future__ import annotations

from collections import Counter

from hwsim.models import tensor_formats as tf
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError
from hwsim.lstm_engine import LstmEngineConfig, predict_matvec
from hwsim.rf_array import RfArrayConfig, predict_emulator, predict_gemm

#: Sizes with 1, primes and composites.
SIZES = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 11, 13, 16])


# ---------------------------------------------------------------------------------------------- LSTM engine
def _lstm_stage_steps(cfg: LstmEngineConfig, R: int, K: int, Q: int) -> tuple[int, int, Counter]:
    """One stage walked step by step: for each of the Q operand columns, each PE tile takes K cycles (one k
    per cycle, every PE of the tile one MAC) plus one cycle into the requantizer; then its results are
    written to the working SRAM at consecutive addresses, one write per bank per cycle (the cycles beyond
    the first are bank-conflict stalls). One start cycle. The tile's other ``pes - lanes`` lanes are idle
    slots, each cycle, handled per ``cfg.gating`` (issue 27): without gating an idle lane multiplies and adds
    padding, writes its accumulator and its requantizer converts once per tile; ``operand`` forces its
    multiplier inputs (a closed gate) but still writes the accumulator; ``clock`` also holds the accumulator
    (a second closed gate). Returns (cycles, stalls, actions)."""
    cycles, stalls, acts = 1, 0, Counter()
    for q in range(Q):
        for p0 in range(0, R, cfg.pes):
            lanes = min(cfg.pes, R - p0)
            for _ in range(K):
                cycles += 1
                acts["weight_sram", "read"] += 1
                acts["work_sram", "read"] += 1
                acts["addr_gen", "add"] += 1
                for lane in range(cfg.pes):
                    if lane < lanes:
                        acts["pe_mult", "mult"] += 1
                        acts["pe_acc", "add"] += 1
                        acts["pe_acc_reg", "write"] += 1
                        continue
                    acts["pe_mult", "idle"] += 1
                    if cfg.gating == "none":
                        acts["pe_acc", "idle"] += 1
                    if cfg.gating == "clock":
                        acts["pe_acc_reg", "idle"] += 1
                    else:
                        acts["pe_acc_reg", "write"] += 1
            cycles += 1  # into the requantizer
            acts["addr_gen", "add"] += 1
            per_bank = Counter((q * R + p0 + i) % cfg.banks for i in range(lanes))
            write_cycles = max(per_bank.values())
            cycles += write_cycles
            stalls += write_cycles - 1
            acts["work_sram", "write"] += lanes
            acts["requant", "convert"] += cfg.pes if cfg.gating == "none" else lanes
    return cycles, stalls, acts


@settings(max_examples=80, deadline=None)
@given(out_modes=st.lists(SIZES, min_size=1, max_size=3), data=st.data(),
       pes=st.sampled_from([1, 2, 3, 5, 7, 16]), banks=st.sampled_from([1, 2, 4, 8, 16]),
       stream=st.booleans(), cheapest=st.booleans(), gating=st.sampled_from(["none", "operand", "clock"]))
def test_lstm_engine_matvec_closed_form_equals_the_step_model(out_modes, data, pes, banks, stream, cheapest,
                                                              gating):
    d = len(out_modes)
    in_modes = data.draw(st.lists(SIZES, min_size=d, max_size=d))
    ranks = [1, *data.draw(st.lists(st.sampled_from([1, 2, 3, 5]), min_size=d - 1, max_size=d - 1)), 1]
    fmt = tf.TTMatrix.random(out_modes, in_modes, ranks, rng=0)
    order = tf.cheapest_order(fmt) if cheapest else None
    big = 1 << 24
    try:
        cfg = LstmEngineConfig(pes=pes, banks=banks, x_load="stream" if stream else "overlapped", gating=gating,
                               weight_sram_bytes=big, work_sram_bytes=big, hidden_sram_bytes=big, addr_levels=8)
        got = predict_matvec(cfg, fmt, order)
    except HwsimError:
        assume(False)
    cycles, stalls, acts = 0, 0, Counter()
    for s in tf.plan_stages(fmt, order):
        c, sl, a = _lstm_stage_steps(cfg, s.R, s.K, s.Q)
        cycles, stalls, acts = cycles + c, stalls + sl, acts + a
    n = fmt.shape[1]
    acts["dram", "read"] += n * cfg.data_bytes  # the input vector, loaded once
    acts["work_sram", "write"] += n
    if stream:  # one element per cycle into working buffer 0, one address increment each
        cycles += n
        acts["addr_gen", "add"] += n
    assert (got.cycles, got.stall_cycles) == (cycles, stalls)
    assert got.macs == sum(s.macs for s in tf.plan_stages(fmt, order)) == acts["pe_mult", "mult"]
    assert {key: v for key, v in got.actions.counts.items() if v} == {key: v for key, v in acts.items() if v}


# ---------------------------------------------------------------------------------------------- RF array
def _rf_gemm_steps(cfg: RfArrayConfig, m: int, k: int, n: int) -> tuple[int, Counter, int, int]:
    """``a (m, k) @ w (k, n)`` walked tile by tile: each n x n tile of ``w`` (the last row and column of
    tiles partial: ``rows`` inputs, ``cols`` outputs) is programmed (its DAC codes), the RF settles, then the
    m vectors go through it one after the other (``adc_cycles`` per vector: ``rows`` signal DACs and ``cols``
    ADCs convert real samples), one cycle to switch tiles; a tile after the first along k adds its ``cols``
    outputs per vector to the partial sums on the post-adder. The padding ports are idle slots
    (docs/idle_lanes.md, "RF array"): without gating the converters' and the post lanes' own ``idle``; with
    ``gating='clock'`` one closed gate per skipped conversion on the converters' gates, the post lane holds.
    Returns (cycles, actions, tiles, MACs)."""
    cycles, acts, tiles, macs = 0, Counter(), 0, 0
    gated = cfg.gating == "clock"
    for c0 in range(0, n, cfg.n):
        for kt, r0 in enumerate(range(0, k, cfg.n)):
            rows, cols = min(cfg.n, k - r0), min(cfg.n, n - c0)
            tiles += 1
            cycles += cfg.dac_update_cycles + cfg.rf_cycles
            acts["dac", "convert"] += cfg.tile_codes
            acts["phase_shifter", "set"] += 2 * cfg.codes
            acts["attenuator", "set"] += cfg.n
            for _ in range(m):
                cycles += cfg.adc_cycles
                acts["signal_dac", "convert"] += rows
                acts["signal_dac_gate" if gated else "signal_dac", "idle"] += cfg.n - rows
                acts["adc", "convert"] += cols
                acts["adc_gate" if gated else "adc", "idle"] += cfg.n - cols
                if kt:
                    acts["post", "add"] += cols
                    if not gated:
                        acts["post", "idle"] += cfg.n - cols
                macs += rows * cols
            cycles += 1
    return cycles, acts, tiles, macs


@settings(max_examples=120, deadline=None)
@given(m=SIZES, k=SIZES, n=SIZES, ports=st.sampled_from([2, 3, 4, 5, 7, 8]), dac=st.sampled_from([1, 2, 3]),
       adc=st.sampled_from([1, 2, 5]), stage_ns=st.sampled_from([0.05, 0.5, 3.0]),
       mesh=st.sampled_from(["clements", "reck"]), gating=st.sampled_from(["none", "clock"]))
def test_rf_array_gemm_closed_form_equals_the_tile_walk(m, k, n, ports, dac, adc, stage_ns, mesh, gating):
    cfg = RfArrayConfig(n=ports, mesh=mesh, dac_update_cycles=dac, adc_cycles=adc, rf_stage_ns=stage_ns,
                        gating=gating)
    got = predict_gemm(cfg, m, k, n)
    cycles, acts, tiles, macs = _rf_gemm_steps(cfg, m, k, n)
    assert (got.cycles, got.detail["folds"], got.macs) == (cycles, tiles, macs)
    assert got.macs == m * k * n
    assert got.detail["idle_slots"] == tiles * m * ports * ports - macs
    assert {key: v for key, v in got.actions.pairs().counts.items() if v} == {key: v for key, v in acts.items() if v}


@settings(max_examples=80, deadline=None)
@given(vectors=SIZES, ports=st.sampled_from([1, 2, 3, 4, 5, 7, 8]), dac=st.sampled_from([1, 2, 3]),
       mesh=st.sampled_from(["clements", "reck"]))
def test_rf_array_emulator_closed_form_equals_the_stream(vectors, ports, dac, mesh):
    """The emulator walked cycle by cycle: a start cycle, the phase codes written one per DAC update
    (the first with the start), the vectors streamed one per cycle, the last one out after the pipeline
    latency; every vector rotates and mixes in each MZI and rotates in each output-screen port."""
    try:
        cfg = RfArrayConfig(n=ports, mesh=mesh, target="emulator", dac_update_cycles=dac)
    except HwsimError:
        assume(False)
    got = predict_emulator(cfg, vectors)
    t, acts = 1, Counter()
    for i in range(cfg.codes):
        t += dac if i else 0
        acts["code_reg", "write"] += 1
    for _ in range(vectors):
        t += 1
        acts["rotator", "rotate"] += cfg.mzis
        acts["mixer", "mix"] += cfg.mzis
        acts["screen", "rotate"] += cfg.n
    t += cfg.latency
    assert got.cycles == t
    assert {key: v for key, v in got.actions.pairs().counts.items() if v} == {key: v for key, v in acts.items() if v}
