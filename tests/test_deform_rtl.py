"""deform-unit RTL under Amaranth's simulator: outputs bit-exact to the fixed-point reference, busy cycles,
stall and conflict cycles and every priced activity counter equal to the cycle model's prediction."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from hwsim.models import deform_unit as du
from hwsim.rtl.deform_unit import COUNTERS, DeformUnitTop

from hwsim.deform_unit import DeformLayer, DeformUnitConfig, check_rtl, predict_layer
from hwsim.errors import HwsimError
from hwsim.families import write_verilog


def pack_inputs(cfg, x, raw, wt):
    """Harness words: input pixels (lanes x act_bits; lanes from C up zero), raw offsets (16-bit fields), the
    weight vector (idle lanes zero)."""
    c, h, w = x.shape
    a, wb = cfg.act_bits, cfg.weight_bits
    xw = [sum((int(v) & ((1 << a) - 1)) << (lane * a) for lane, v in enumerate(x[:, r, q]))
          for r in range(h) for q in range(w)]
    ow = [sum((int(raw[f, r, q]) & 0xFFFF) << (16 * f) for f in range(raw.shape[0])) for r in range(h) for q in range(w)]
    wv = sum((int(wt[lane, 0, t // 3, t % 3]) & ((1 << wb) - 1)) << ((t * cfg.lanes + lane) * wb)
             for t in range(9) for lane in range(c))
    return xw, ow, wv


def run_rtl(cfg, x, raw, wt, shift, relu=False, square=False):
    c, h, w = x.shape
    dut = DeformUnitTop(cfg)
    a = cfg.act_bits
    xw, ow, wv = pack_inputs(cfg, x, raw, wt)
    res = {}

    async def tb(ctx):
        for sig, v in ((dut.weights, wv), (dut.chans, c), (dut.height, h), (dut.width, w), (dut.shift, shift), (dut.relu, int(relu)), (dut.square, int(square))):
            ctx.set(sig, v)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles, outs = 0, []
        while True:
            ctx.set(dut.in_data, xw[min(ctx.get(dut.in_addr), len(xw) - 1)])
            ctx.set(dut.off_data, ow[min(ctx.get(dut.off_addr), len(ow) - 1)])
            cycles += ctx.get(dut.busy)
            done = ctx.get(dut.done)
            if ctx.get(dut.o_pix.valid):
                p = ctx.get(dut.o_pix.payload)
                outs.append([((p >> (lane * a)) & ((1 << a) - 1)) - ((p >> (lane * a + a - 1)) & 1) * (1 << a)
                             for lane in range(cfg.lanes)])
            await ctx.tick()
            if done:
                break
        res.update(cycles=cycles, outs=np.array(outs, dtype=np.int64).T[:c].reshape(c, h, w),
                   counters={COUNTERS[k]: ctx.get(getattr(dut, k)) for k in COUNTERS},
                   stall=ctx.get(dut.cnt_stall), conflict=ctx.get(dut.cnt_conflict))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return res


def corner_offsets(cfg, rng, h, w):
    """Raw offsets with integer positions, values at and beyond the bound, and samples outside the image."""
    one = 1 << cfg.frac_bits
    bq = int(cfg.offset_bound * one)
    if cfg.offset_mode == "square":
        raw = rng.integers(-one, bq + 2 * one, size=(1, h, w))
        raw[0, 0, :] = bq  # at the bound
        raw[0, -1, :] = (raw[0, -1, :] // one) * one  # integer dilations
        return raw
    raw = rng.integers(-bq - 2 * one, bq + 2 * one, size=(18, h, w))
    raw[:, 0, 0] = bq
    raw[:, -1, -1] = -bq
    raw[:, h // 2, :] = (raw[:, h // 2, :] // one) * one  # exactly on integer positions
    return raw


CASES = [
    DeformUnitConfig(offset_mode="free", offset_bound=2.0, lanes=2, banks=2, frac_bits=3, dram_bytes_per_cycle=2.0,
                     max_width=16),
    DeformUnitConfig(offset_mode="square", offset_bound=3.0, lanes=2, banks=4, frac_bits=2, dram_bytes_per_cycle=2.0,
                     max_width=16, overflow="wrap", acc_bits=20, rounding="half_even"),
    DeformUnitConfig(offset_mode="square", offset_bound=1.5, square_fractional=True, lanes=1, banks=1, frac_bits=4,
                     dram_bytes_per_cycle=1.0, max_width=8, weight_format="int4"),
    DeformUnitConfig(offset_mode="free", offset_bound=1.0, lanes=3, banks=8, frac_bits=0, dram_bytes_per_cycle=3.0,
                     max_width=16, acc_bits=18),
]


@pytest.mark.parametrize("cfg, shape", list(zip(CASES, [(5, 7), (7, 5), (1, 7), (3, 1)], strict=True)),
                         ids=lambda v: v.top_name if hasattr(v, "top_name") else f"{v[0]}x{v[1]}")
def test_rtl_matches_reference_and_model(cfg, shape):
    h, w = shape
    rng = np.random.default_rng(h * 31 + w)
    c = cfg.lanes
    lo, hi = -(1 << (cfg.act_bits - 1)), 1 << (cfg.act_bits - 1)
    x = rng.integers(lo, hi, size=(c, h, w))
    wt = rng.integers(-(1 << (cfg.weight_bits - 1)), 1 << (cfg.weight_bits - 1), size=(c, 1, 3, 3))
    raw = corner_offsets(cfg, rng, h, w)
    shift = 2
    got = run_rtl(cfg, x, raw, wt, shift, relu=cfg.overflow == "wrap")
    want = du.deform_conv2d_fixed(x, du.variant_offsets(cfg.variant(True), raw, 3, 3, frac_bits=cfg.frac_bits), wt,
                                  frac_bits=cfg.frac_bits, shift=shift, padding=1, groups=c,
                                  weight_bits=cfg.weight_bits, acc_bits=cfg.acc_bits, overflow=cfg.overflow,
                                  rounding=cfg.rounding, relu=cfg.overflow == "wrap")
    np.testing.assert_array_equal(got["outs"], want)
    pred = predict_layer(cfg, DeformLayer("l", c, h, w, c, depthwise=True), raw, with_offset_conv=False)
    assert got["cycles"] == pred.unit_cycles
    assert got["stall"] == pred.stall_cycles and got["conflict"] == pred.conflict_cycles
    assert got["counters"] == {k: pred.actions.get(*k) for k in COUNTERS.values()}


def test_free_config_runs_square_offsets_on_its_line_buffer():
    cfg = CASES[0]
    sq = cfg.replace(offset_mode="square", line_buffer_rows=cfg.rows_for(1))  # the model of that run
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, size=(2, 6, 5))
    wt = rng.integers(-128, 128, size=(2, 1, 3, 3))
    raw = corner_offsets(sq, rng, 6, 5)
    got = run_rtl(cfg, x, np.concatenate([raw, np.zeros((17, 6, 5), np.int64)]), wt, 3, square=True)
    want = du.deform_conv2d_fixed(x, du.variant_offsets(sq.variant(True), raw, 3, 3, frac_bits=3), wt, frac_bits=3,
                                  shift=3, padding=1, groups=2)
    np.testing.assert_array_equal(got["outs"], want)
    pred = predict_layer(sq, DeformLayer("l", 2, 6, 5, 2, depthwise=True), raw, with_offset_conv=False)
    assert (got["cycles"], got["stall"], got["conflict"]) == (pred.unit_cycles, pred.stall_cycles,
                                                              pred.conflict_cycles)
    assert got["counters"] == {k: pred.actions.get(*k) for k in COUNTERS.values()}


def test_rtl_scope_errors(tmp_path):
    with pytest.raises(HwsimError, match=r"^offset_bound=None has no RTL: expected a bound"):
        check_rtl(DeformUnitConfig(offset_bound=None))
    with pytest.raises(HwsimError, match=r"^banks=3 has no RTL: expected a power of two for the RTL$"):
        check_rtl(DeformUnitConfig(offset_bound=2.0, banks=3))
    cfg = DeformUnitConfig(offset_bound=8.0, lanes=4, dram_bytes_per_cycle=4.0)
    v, j = write_verilog(cfg, tmp_path)
    assert f"module {cfg.top_name}" in v.read_text() and '"rows": 20' in j.read_text()


def test_generated_verilog_is_lint_clean(tmp_path):
    import os
    import subprocess

    from hwsim.cosim.runner import verilator_env

    cfg = DeformUnitConfig(offset_mode="square", offset_bound=2.0, lanes=2, banks=2, dram_bytes_per_cycle=2.0,
                           max_width=16)
    v, _ = write_verilog(cfg, tmp_path)
    r = subprocess.run(["verilator", "--lint-only", str(v)], capture_output=True, text=True,
                       env={**os.environ, **verilator_env()}, cwd=tmp_path)
    assert r.returncode == 0 and "%Warning" not in r.stderr and "%Error" not in r.stderr, r.stderr
