"""The MAC array's counts-only cycle model in closed form: what :func:`hwsim.mac_array.predict_gemm` runs.

A sweep evaluates thousands of design points, each a whole network of GEMMs, so the per-GEMM cost of
the counts-only cycle model matters. :func:`hwsim.mac_array.predict_gemm_folds` enumerates every fold
(NumPy arrays of fold origins) and steps the loader/compute recurrence once per fold in Python: 5 to
400 ms for ResNet-18, depending on the array size. :func:`closed_form_gemm` returns the same
:class:`~hwsim.unit.Stats` (every field, tested equal) in about 20 to 100 us per GEMM:

* **Actions in closed form.** A GEMM's folds have at most four distinct shapes (full or edge tile in the
  streamed dimension x full or last reduction fold), so every sum ``_actions`` takes over the fold
  arrays is a product of tile counts.
* **Timing by run-length acceleration of the same recurrence.** The fold sequence is
  ``T(full)^(nN * (nM - 1)) T(edge)^nN`` with ``T(mt) = F(mt)^(nK - 1) L(mt)``. The recurrence is
  max-plus, hence shift-invariant: when the state *relative to the compute engine's clock* repeats at
  the start of two repetitions of the same block, every later repetition of that block adds the same
  cycles and stalls, so the remaining whole periods are skipped in one step. Only exactly repeated
  states are skipped, so the result is the recurrence's, not an approximation.

The per-fold model stays as the reference this one is tested against, and serves N:M sparse arrays and
zero-tile skipping (this closed form is for dense arrays without skipping).
"""

from __future__ import annotations

from hwsim.config import MAC_DRAIN_STAGES, MAC_STREAM_STAGES, MacArrayConfig
from hwsim.mac_array_actions import gemm_stats_from, priced_pairs
from hwsim.unit import Stats

__all__ = ["closed_form_gemm"]


#: DRAM beat periods by (dataflow, rows, cols, act_bits, weight_bits, bandwidth): exact Fractions are slow.
_PERIODS: dict = {}


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _step(s: list, fold: tuple, pw: int, pa: int) -> None:
    """One fold of ``hwsim.mac_array._timing``; ``s = [ok, loader_wait, compute_wait, release of this fold's
    half, release of the other half, stalls]`` (the halves swap every fold)."""
    nw, na, comp, tail = fold
    ok, lw, cw, r0, r1, st = s
    g = lw if lw > r0 else r0
    t0 = g + 1 if g + 1 > ok else ok
    last_a = t0 + nw * pw + (na - 1) * pa
    loaded = last_a + 1
    g = cw if cw > loaded else loaded
    e = g + comp
    s[0], s[1], s[2], s[3], s[4], s[5] = last_a + pa, loaded, e + tail + 1, r1, e + 1, st + g - cw


def _run(s: list, block: list, reps: int, pw: int, pa: int) -> None:
    """``reps`` repetitions of ``block`` (items ``(fold, count)`` or ``(sub-block, count)``), skipping whole
    periods once the state relative to the compute clock repeats."""
    seen: dict = {}
    i = 0
    detect = reps > 2
    while i < reps:
        if detect:
            cw = s[2]
            key = (s[0] - cw, s[1] - cw, s[3] - cw, s[4] - cw)
            prev = seen.get(key)
            if prev is not None:
                j, cw_j, st_j = prev
                n = (reps - i) // (i - j)
                d = n * (cw - cw_j)
                s[0] += d
                s[1] += d
                s[2] += d
                s[3] += d
                s[4] += d
                s[5] += n * (s[5] - st_j)
                i += n * (i - j)
                detect = False
                continue
            seen[key] = (i, cw, s[5])
        for item, count in block:
            if isinstance(item, tuple):
                if count == 1:
                    _step(s, item, pw, pa)
                else:
                    _run(s, [(item, 1)], count, pw, pa)
            else:
                _run(s, item, count, pw, pa)
        i += 1


def closed_form_gemm(cfg: MacArrayConfig, m: int, k: int, n: int, name: str = "gemm") -> Stats:
    """Same result as ``hwsim.mac_array.predict_gemm_folds(cfg, m, k, n, name)`` (one group, dense array)."""
    R, C = cfg.rows, cfg.cols
    df = cfg.dataflow
    m_step, k_step = cfg.fold_steps
    M_, N_ = (n, m) if df == "is" else (m, n)
    nM, nN, nK = _cdiv(M_, m_step), _cdiv(N_, C), _cdiv(k, k_step)
    m_last, k_last = M_ - (nM - 1) * m_step, k - (nK - 1) * k_step
    folds = nM * nN * nK

    # ---- timing: the fold sequence as nested repeated blocks
    pkey = (df, R, C, cfg.act_bits, cfg.weight_bits, cfg.dram_bytes_per_cycle)
    periods = _PERIODS.get(pkey)
    if periods is None:
        periods = _PERIODS[pkey] = cfg.fold_beat_periods
    pw, pa = periods

    def tile(mt: int) -> list:
        S, D = MAC_STREAM_STAGES, MAC_DRAIN_STAGES
        if df == "os":   # nw = na = kt; compute kt; after the last chunk flush + drain mt (= rows_out) rows
            full, last = (k_step, k_step, k_step, 0), (k_last, k_last, k_last, (R + C - 1 + S) + mt + 1 + D)
        else:            # nw = kt, na = mt; WLOAD + STREAM; after the last fold DRAIN mt + 2 + D
            full = (k_step, mt, (k_step + 1) + (mt + R + C + S), 0)
            last = (k_last, mt, (k_last + 1) + (mt + R + C + S), mt + 2 + D)
        return [(full, nK - 1), (last, 1)] if nK > 1 else [(last, 1)]

    program = []
    if nM > 1:
        program.append((tile(m_step), nN * (nM - 1)))
    program.append((tile(m_last), nN))
    s = [1, 1, 1, 1, 1, 0]
    _run(s, program, 1, pw, pa)
    cycles, stalls = s[2] - 1, s[5]

    # ---- actions: the sums of hwsim.mac_array._actions over the folds, in closed form
    wb = cfg.sram_word_bits
    if df == "is":
        stat_bits, strm_bits = C * cfg.act_bits, R * cfg.weight_bits
    else:
        stat_bits, strm_bits = cfg.weight_beat_bits, cfg.act_beat_bits
    acc_row_bits = C * cfg.acc_bits
    sum_kt = nM * nN * k
    out_rows = nN * M_
    n_last = N_ - (nN - 1) * C   # real columns of the last n-tile (the others have C)
    gated = cfg.gating != "none"
    lanes_n = N_ if gated else nN * C  # output lanes of one output row, summed over the n-tiles
    if df == "os":
        nw = na = sum_kt
        slots = sum_kt * R * C
        pe_macs, pe_w = m * k * n, 0
        pe_regs = pe_macs if cfg.gating == "clock" else slots
        o_read_words = o_read_bits = o_write_words = o_write_bits = 0
    else:
        sum_mt = nN * nK * M_
        nw, na = sum_kt, sum_mt
        slots = sum_mt * R * C
        pe_macs, pe_w = m * k * n, nM * k * lanes_n
        pe_regs = nK * M_ * N_ * R if cfg.gating == "clock" else slots
        # Every output row is written once per k-fold and read once per k-fold (the partial sums of the later
        # folds and the drain); with gating only the words of each tile's real lanes.
        if gated:
            row_words = (nN - 1) * _cdiv(C * cfg.acc_bits, wb) + _cdiv(n_last * cfg.acc_bits, wb)
        else:
            row_words = nN * _cdiv(acc_row_bits, wb)
        o_write_words = o_read_words = nK * M_ * row_words
        o_write_bits = o_read_bits = nK * M_ * lanes_n * cfg.acc_bits
    # Input and weight buffers (hwsim.mac_array.buffer_lanes): stationary beats (WS/OS weight rows, IS
    # activation rows) have cols lanes, the n-tile's real columns real; streamed beats (WS activations, IS
    # weights: the fold's reduction steps real; OS activations: the m-tile's rows real) rows lanes. Without
    # gating every beat is whole. A beat's access touches ceil(real lanes x lane bits / word) words.
    if df == "is":
        s_lb, t_lb = cfg.act_bits, cfg.weight_bits
    elif df == "os":
        s_lb, t_lb = cfg.weight_bits, cfg.act_bits
    else:
        s_lb, t_lb = cfg.weight_bits + cfg.index_bits, cfg.act_bits
    if gated:
        # stationary: k rows per (m-tile, n-tile), (nN - 1) full n-tiles and one of n_last columns
        w_words = nM * k * ((nN - 1) * _cdiv(C * s_lb, wb) + _cdiv(n_last * s_lb, wb))
        s_bits = nM * k * N_ * s_lb
        if df == "os":  # activations: k steps per (m-tile, n-tile), the m-tile's rows real
            a_words = nN * k * ((nM - 1) * _cdiv(R * t_lb, wb) + _cdiv(m_last * t_lb, wb))
            t_bits = nN * k * M_ * t_lb
        else:  # M_ vectors per (n-tile, k-fold), the fold's reduction steps real
            a_words = nN * M_ * ((nK - 1) * _cdiv(k_step * t_lb, wb) + _cdiv(k_last * t_lb, wb))
            t_bits = nN * M_ * k * t_lb
    else:
        w_words, a_words = _cdiv(stat_bits, wb) * nw, _cdiv(strm_bits, wb) * na
        s_bits, t_bits = nw * stat_bits, na * strm_bits
    if df == "is":
        in_words, in_bits, wt_words, wt_bits = w_words, s_bits, a_words, t_bits
    else:
        in_words, in_bits, wt_words, wt_bits = a_words, t_bits, w_words, s_bits
    out_lanes = M_ * lanes_n
    # The counters as MacArrayActions names them, without building one (a sweep calls this per GEMM).
    pairs = priced_pairs(
        pe_macs=pe_macs, pe_idle_macs=slots - pe_macs, pe_idle_regs=slots - pe_regs,
        pe_weight_loads=pe_w, pe_reg_writes=pe_regs,
        input_sram_reads=in_words, input_sram_writes=in_words,
        weight_sram_reads=wt_words, weight_sram_writes=wt_words,
        output_sram_reads=o_read_words, output_sram_writes=o_write_words,
        dram_read_bytes=_cdiv(nw * stat_bits + na * strm_bits, 8),
        dram_write_bytes=_cdiv(out_lanes * cfg.out_bits, 8),
        requant_ops=out_lanes)
    unpriced = {
        "input_sram_read_bytes": _cdiv(in_bits, 8), "input_sram_write_bytes": _cdiv(in_bits, 8),
        "weight_sram_read_bytes": _cdiv(wt_bits, 8), "weight_sram_write_bytes": _cdiv(wt_bits, 8),
        "output_sram_read_bytes": _cdiv(o_read_bits, 8), "output_sram_write_bytes": _cdiv(o_write_bits, 8),
        "dram_read_beats": nw + na, "dram_write_beats": out_rows}
    return gemm_stats_from(cycles, stalls, m * k * n, pairs, unpriced, name=name, m=m, k=k, n=n, groups=1,
                           folds=folds)
