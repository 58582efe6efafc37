"""Run the MAC array RTL in Amaranth's Python simulator, with a DRAM model identical to the Verilog harness.

This is the pure-Python twin of ``hwsim.cosim.harness`` + ``hwsim.cosim.mac_array_tb`` (no Verilator, no
cocotb): slow (every clock cycle is Python), so meant for small layers in unit tests.

The DRAM model is the harness's, cycle for cycle: one shared read channel with a countdown that is 0 when
``start`` is pulsed; in every cycle both input streams are valid iff the countdown is 0; at the clock edge, if
a weight beat transferred (valid and ready in that cycle) the countdown becomes ``weight_beat_period - 1``,
else if an activation beat transferred it becomes ``act_beat_period - 1``, else it decrements when non-zero.
Stream payloads are beat ``n`` of :func:`hwsim.mac_array.dram_beats`, ``n`` being the number of beats of that
stream already transferred. On an N:M array a GEMM whose weights break the pattern runs in dense mode
(``dim_k = dense_k``, as the cocotb testbench drives it); with ``skip_zero_tiles`` the block bitmap of
:func:`hwsim.mac_array.zero_tile_bitmap` answers the top's ``ld_blk``/``cp_blk`` reads in the same cycle
(``ld_blk_zero``/``cp_blk_zero``), as the harness's bitmap memory does. The output sink records
``o_out.payload`` in every cycle where ``o_out.valid`` and ``o_out.ready`` are high (``ready`` is always
high unless an ``out_ready_pattern`` applies backpressure); busy cycles are the cycles in which ``busy`` is
high.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from amaranth.hdl import Cat
from amaranth.sim import Simulator
from hwsim.models import mac_array as ref
from hwsim.rtl.mac_array import MacArray

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.mac_array import dense_k, dram_beats, fold_plan, gemm_mode, predict_gemm, unpack_outputs, zero_tile_bitmap

__all__ = ["decode_gemm_out", "run_gemm_amaranth", "run_gemm_amaranth_beats"]


def decode_gemm_out(cfg: MacArrayConfig, out_beats: list[int], m: int, n: int) -> np.ndarray:
    """Output values ``[m, n]`` (int64) from the RTL's output beats, as the cocotb testbench decodes them.

    Tiles come in (m0, n0) order, rows within a tile; lanes beyond N are dropped.
    """
    plan = fold_plan(cfg, m, 1, n)
    need = int(plan.rows_out.sum())
    if len(out_beats) != need:
        raise RuntimeError(f"RTL produced {len(out_beats)} output beats, expected {need} for a {m}x{n} output")
    return ref.decode_acts(unpack_outputs(cfg, out_beats, m, n).astype(np.int64), cfg.act_bits)


def _check_args(cfg: MacArrayConfig, a, w, shift, relu) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
        raise HwsimError(f"gemm operands of shapes {a.shape} and {w.shape} are not allowed: expected [m,k] x [k,n]")
    for name, v in zip("mkn", (a.shape[0], a.shape[1], w.shape[1]), strict=True):
        if not 1 <= v <= cfg.max_dim:
            raise HwsimError(f"layer {name}={v} is not allowed on the RTL: expected 1 <= {name} <= {cfg.max_dim}")
    if isinstance(shift, bool) or not isinstance(shift, int | np.integer) or not 0 <= shift < cfg.acc_bits:
        raise HwsimError(f"shift={shift!r} is not allowed: expected an integer in [0, {cfg.acc_bits - 1}]")
    if not isinstance(relu, bool | np.bool_):
        raise HwsimError(f"relu={relu!r} is not allowed: expected True or False")
    return a, w


def run_gemm_amaranth_beats(cfg: MacArrayConfig, a, w, shift: int = 0, relu: bool = False, *,
                            out_ready_pattern: Callable[[int], bool] | None = None,
                            max_cycles: int | None = None) -> tuple[list[int], int]:
    """Drive one GEMM through ``MacArray(cfg)`` in Amaranth's simulator; return (output beats, busy cycles).

    ``out_ready_pattern(i)`` gives ``o_out.ready`` in cycle ``i`` after the ``start`` cycle (``i = 0`` is the
    first busy cycle); without it the sink is always ready. ``max_cycles`` bounds the run (default: ten
    times the predicted cycles plus 1000); exceeding it, or the RTL consuming a different number of input
    beats than the layer has, raises ``RuntimeError``.
    """
    a, w = _check_args(cfg, a, w, shift, relu)
    m, k = a.shape
    n = w.shape[1]
    mode = gemm_mode(cfg, w)  # N:M arrays: a GEMM off the pattern runs in dense mode (dim_k = dense_k)
    k_rtl = dense_k(cfg, k) if mode == "dense" else k
    if k_rtl > cfg.max_dim:
        raise HwsimError(f"layer k={k} is not allowed on the RTL in dense mode: dim_k = {k_rtl} > {cfg.max_dim}")
    w_beats, a_beats = dram_beats(cfg, ref.encode_acts(a, cfg.act_bits), ref.encode_weights(w, cfg.weight_format),
                                  mode=mode)
    # Zero-tile skipping: the block bitmap beside the top answers ld_blk / cp_blk combinationally.
    bitmap = zero_tile_bitmap(cfg, w, mode) if cfg.skip_zero_tiles else []
    if max_cycles is None:
        max_cycles = 10 * predict_gemm(cfg, m, k, n, mode=mode).cycles + 1000
    pw, pa = cfg.weight_beat_period, cfg.act_beat_period

    dut = MacArray(cfg)
    # Inputs driven every cycle, packed into one value so each cycle costs one ctx.set (one design step).
    drive = Cat(dut.i_weights.valid, dut.i_acts.valid, dut.o_out.ready,
                dut.i_weights.payload.as_value(), dut.i_acts.payload.as_value())
    # Outputs sampled every cycle: busy, done, weight ready, act ready, out valid, out payload.
    sample = Cat(dut.busy, dut.done, dut.i_weights.ready, dut.i_acts.ready, dut.o_out.valid,
                 dut.o_out.payload.as_value())
    w_shift, a_shift = 3, 3 + len(dut.i_weights.payload.as_value())
    nw_total, na_total = len(w_beats), len(a_beats)
    result: dict = {}

    blk_bits = len(dut.ld_blk) if cfg.skip_zero_tiles else 0

    def blk_zero(i: int) -> int:
        return bitmap[i] if i < len(bitmap) else 0

    async def testbench(ctx):
        ctx.set(Cat(dut.dim_m, dut.dim_k, dut.dim_n), m | (k_rtl << cfg.dim_bits) | (n << (2 * cfg.dim_bits)))
        ctx.set(dut.shift, int(shift))
        ctx.set(dut.relu, int(bool(relu)))
        ctx.set(dut.start, 1)
        await ctx.tick()  # the start cycle: the harness resets its countdown and counters at this edge
        ctx.set(dut.start, 0)
        countdown = n_w = n_a = busy_cycles = 0
        outs: list[int] = []
        cycle = 0
        while True:
            if cycle > max_cycles:
                raise RuntimeError(f"RTL did not finish within {max_cycles} cycles "
                                   f"({n_w}/{nw_total} weight beats, {n_a}/{na_total} act beats, "
                                   f"{len(outs)} output beats)")
            valid = countdown == 0
            ready = True if out_ready_pattern is None else bool(out_ready_pattern(cycle))
            w_pay = w_beats[n_w] if n_w < nw_total else 0
            a_pay = a_beats[n_a] if n_a < na_total else 0
            ctx.set(drive, valid * 3 | ready << 2 | w_pay << w_shift | a_pay << a_shift)
            if blk_bits:  # ld_blk / cp_blk come from registers: stable in the cycle, answered before the edge
                blk = ctx.get(Cat(dut.ld_blk, dut.cp_blk))
                ctx.set(Cat(dut.ld_blk_zero, dut.cp_blk_zero),
                        blk_zero(blk & ((1 << blk_bits) - 1)) | blk_zero(blk >> blk_bits) << 1)
            s = ctx.get(sample)
            busy, done, w_rdy, a_rdy, o_valid = s & 1, s >> 1 & 1, s >> 2 & 1, s >> 3 & 1, s >> 4 & 1
            if done:
                break
            busy_cycles += busy
            if o_valid and ready:
                outs.append(s >> 5)
            if valid and w_rdy:
                n_w += 1
                countdown = pw - 1
            elif valid and a_rdy:
                n_a += 1
                countdown = pa - 1
            elif countdown:
                countdown -= 1
            await ctx.tick()
            cycle += 1
        result.update(outs=outs, busy_cycles=busy_cycles, n_w=n_w, n_a=n_a)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    if result["n_w"] != nw_total or result["n_a"] != na_total:
        raise RuntimeError(f"RTL consumed {result['n_w']} weight and {result['n_a']} act beats, "
                           f"expected {nw_total} and {na_total}")
    return result["outs"], result["busy_cycles"]


def run_gemm_amaranth(cfg: MacArrayConfig, a, w, shift: int = 0, relu: bool = False, *,
                      out_ready_pattern: Callable[[int], bool] | None = None,
                      max_cycles: int | None = None) -> tuple[np.ndarray, int]:
    """One GEMM on the RTL in Amaranth's simulator: (output values ``[m, n]`` int64, busy cycles).

    ``a`` holds activation values, ``w`` weight values of ``cfg.weight_format``. See
    :func:`run_gemm_amaranth_beats` for ``out_ready_pattern`` (backpressure on ``o_out``; the cycle count
    then no longer matches the cycle model) and ``max_cycles``.
    """
    beats, cycles = run_gemm_amaranth_beats(cfg, a, w, shift, relu, out_ready_pattern=out_ready_pattern,
                                            max_cycles=max_cycles)
    a = np.asarray(a)
    return decode_gemm_out(cfg, beats, a.shape[0], np.asarray(w).shape[1]), cycles
