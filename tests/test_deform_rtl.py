"""deform-unit RTL under Amaranth's simulator: outputs bit-exact to the fixed-point reference, busy cycles,
stall and conflict cycles and every priced activity counter equal to the cycle model's prediction."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from hwsim.models import deform_unit as du
from hwsim.rtl.deform_unit import COUNTERS, DeformUnitTop, words_per_cycle

from hwsim.deform_unit import DeformLayer, DeformUnitConfig, check_rtl, check_rtl_layer, predict_layer
from hwsim.errors import HwsimError
from hwsim.families import write_verilog


def pack_inputs(cfg, x, raw, wt, bias, depthwise):
    """Harness words (cosim.deform_unit_tb's layout): input words (pixel-major, then channel block), raw
    offsets (16-bit fields), the weight tiles in MAC order and the bias words."""
    from hwsim.cosim.deform_unit_tb import bias_words, input_words, pack_words, weight_tiles

    xw = pack_words(input_words(cfg, x), cfg.act_bits)
    ow = pack_words(np.asarray(raw).reshape(raw.shape[0], -1).T, 16)
    ww = pack_words(weight_tiles(cfg, wt, depthwise), cfg.weight_bits)
    bw = pack_words(bias_words(cfg, bias, wt.shape[0], depthwise), cfg.acc_bits)
    return xw, ow, ww, bw


def run_rtl(cfg, x, raw, wt, shift, relu=False, square=False, bias=None, depthwise=None):
    """One layer on the RTL under Amaranth's simulator: outputs (C_out, H, W), busy cycles, counters."""
    from hwsim.cosim.deform_unit_tb import decode_outputs, is_depthwise

    c, h, w = x.shape
    dwise = is_depthwise(x, wt) if depthwise is None else depthwise
    co = wt.shape[0]
    dut = DeformUnitTop(cfg)
    a = cfg.act_bits
    al = max(cfg.lanes, cfg.out_lanes)
    k = words_per_cycle(cfg)
    xw, ow, ww, bw = pack_inputs(cfg, x, raw, wt, bias, dwise)
    res = {}

    async def tb(ctx):
        for sig, v in ((dut.depthwise, int(dwise)), (dut.chans, c), (dut.chans_out, co), (dut.height, h),
                       (dut.width, w), (dut.shift, shift), (dut.relu, int(relu)), (dut.square, int(square))):
            ctx.set(sig, v)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        cycles, outs = 0, []
        while True:
            ia = ctx.get(dut.in_addr)  # K words per cycle from in_addr on
            ctx.set(dut.in_data, sum(xw[min(ia + i, len(xw) - 1)] << (i * cfg.lanes * a) for i in range(k)))
            ctx.set(dut.off_data, ow[min(ctx.get(dut.off_addr), len(ow) - 1)])
            ctx.set(dut.w_data, ww[min(ctx.get(dut.w_addr), len(ww) - 1)])
            ctx.set(dut.b_data, bw[min(ctx.get(dut.b_addr), len(bw) - 1)])
            cycles += ctx.get(dut.busy)
            done = ctx.get(dut.done)
            if ctx.get(dut.o_pix.valid):
                p = ctx.get(dut.o_pix.payload)
                outs.append([((p >> (lane * a)) & ((1 << a) - 1)) - ((p >> (lane * a + a - 1)) & 1) * (1 << a)
                             for lane in range(al)])
            await ctx.tick()
            if done:
                break
        res.update(cycles=cycles, outs=decode_outputs(cfg, np.array(outs, dtype=np.int64).reshape(-1, al), co, h, w,
                                                      dwise),
                   beats=len(outs), counters={COUNTERS[k]: ctx.get(getattr(dut, k)) for k in COUNTERS},
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
    assert got["cycles"] == pred.detail["unit_cycles"]
    assert got["stall"] == pred.stall_cycles and got["conflict"] == pred.detail["conflict_cycles"]
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
    assert (got["cycles"], got["stall"], got["conflict"]) == (pred.detail["unit_cycles"], pred.stall_cycles,
                                                              pred.detail["conflict_cycles"])
    assert got["counters"] == {k: pred.actions.get(*k) for k in COUNTERS.values()}


def test_rtl_scope_errors(tmp_path):
    with pytest.raises(HwsimError, match=r"^offset_bound=None has no RTL: expected a bound"):
        check_rtl(DeformUnitConfig(offset_bound=None))
    with pytest.raises(HwsimError, match=r"^banks=3 has no RTL: expected a power of two for the RTL$"):
        check_rtl(DeformUnitConfig(offset_bound=2.0, banks=3))
    with pytest.raises(HwsimError, match=r"^dram_bytes_per_cycle=6.0 has no RTL: expected 1 to 8 times lanes \* "
                                         r"act_bits / 8 = 4 \(whole input words per cycle\) for the RTL$"):
        check_rtl(DeformUnitConfig(lanes=4, dram_bytes_per_cycle=6.0))
    check_rtl(DeformUnitConfig(lanes=4, dram_bytes_per_cycle=32.0))  # 8 words per cycle
    cfg = DeformUnitConfig(offset_bound=8.0, lanes=4, dram_bytes_per_cycle=4.0)
    check_rtl_layer(cfg, DeformLayer("ok", 9, 3, 5, 17))  # 3 channel blocks, 2 output groups: in scope
    with pytest.raises(HwsimError, match=r"^layer 's2' stride=2 is not allowed on the RTL: expected 1 \(the RTL "
                                         r"runs stride 1, padding 1, dilation 1\)$"):
        check_rtl_layer(cfg, DeformLayer("s2", 4, 8, 8, 4, depthwise=True, stride=2))
    with pytest.raises(HwsimError, match=r"^layer 'wide' c_out=129 is not allowed on the RTL: expected at most "
                                         r"max_channels=128 \(its accumulators\)$"):
        check_rtl_layer(cfg, DeformLayer("wide", 4, 3, 3, 129))
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


# ---------------------------------------------------------------------------------------------- several blocks, full
#: lanes 2 x out_lanes 3 and a 22-bit accumulator (the narrowest int8 / Q.3 allows: a bias at its top makes the
#: saturating additions act).
FULL_CFG = DeformUnitConfig(offset_mode="free", offset_bound=2.0, lanes=2, out_lanes=3, banks=2, frac_bits=3,
                            dram_bytes_per_cycle=2.0, max_width=16, max_channels=8, acc_bits=22)


def _full_case(cfg, c, co, h, w, seed, depthwise=False, shift=9):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(c, h, w))
    x[:, 0, 0] = -128
    wt = rng.integers(-(1 << (cfg.weight_bits - 1)), 1 << (cfg.weight_bits - 1), size=(co, 1 if depthwise else c, 3, 3))
    raw = corner_offsets(cfg, rng, h, w)
    hi = (1 << (cfg.acc_bits - 1)) - 1
    bias = rng.integers(-(1 << 18), 1 << 18, size=co)
    bias[0], bias[-1] = hi, -hi - 1  # at the accumulator's ends: the first additions saturate
    return x, wt, raw, bias, shift


def _run_and_check(cfg, c, co, shape, seed, depthwise, shift, relu=False):
    """A random full/depthwise layer with bias on the RTL: values against the per-product loop, cycles against
    the model and the item simulation, stalls, conflicts and every counter against the model; the run."""
    from test_deform_reference import loop_fixed
    from test_deform_unit import simulate_items

    h, w = shape
    x, wt, raw, bias, shift = _full_case(cfg, c, co, h, w, seed=seed, depthwise=depthwise, shift=shift)
    got = run_rtl(cfg, x, raw, wt, shift, relu=relu, bias=bias, depthwise=depthwise)
    off = du.variant_offsets(cfg.variant(depthwise), raw, 3, 3, frac_bits=cfg.frac_bits)
    want = loop_fixed(x, off, wt, cfg.frac_bits, shift, 1, 1, 1, c if depthwise else 1, cfg.acc_bits, cfg.overflow,
                      cfg.rounding, bias=bias, relu=relu)
    np.testing.assert_array_equal(got["outs"], want)
    layer = DeformLayer("l", c, h, w, co, depthwise=depthwise)
    pred = predict_layer(cfg, layer, raw, with_offset_conv=False)
    assert got["cycles"] == pred.detail["unit_cycles"] == simulate_items(cfg, layer, off)[0]
    assert (got["stall"], got["conflict"]) == (pred.stall_cycles, pred.detail["conflict_cycles"])
    assert got["counters"] == {k: pred.actions.get(*k) for k in COUNTERS.values()}
    return got


@pytest.mark.parametrize("gating", ["clock", "operand", "none"])
def test_full_layer_two_channel_blocks_two_output_groups(gating):
    """Full 3 -> 4 on 2 lanes x 3 out lanes (C = lanes + 1: two channel blocks, the second with one idle lane;
    C_out = out_lanes + 1: two output groups, the second with two idle output lanes), a 3x5 map, bias. Values
    equal the integer loop of test_deform_reference (one saturating addition per product, in channel order),
    cycles the scalar item-by-item timing of test_deform_unit, and every counter the model's and a hand count."""
    from test_deform_reference import loop_fixed
    from test_deform_unit import simulate_items

    cfg = FULL_CFG.replace(gating=gating)
    c, co, h, w = 3, 4, 3, 5
    x, wt, raw, bias, shift = _full_case(cfg, c, co, h, w, seed=20)
    got = run_rtl(cfg, x, raw, wt, shift, bias=bias)
    off = du.variant_offsets(cfg.variant(False), raw, 3, 3, frac_bits=cfg.frac_bits)
    want = loop_fixed(x, off, wt, cfg.frac_bits, shift, 1, 1, 1, 1, cfg.acc_bits, cfg.overflow, cfg.rounding,
                      bias=bias)
    np.testing.assert_array_equal(got["outs"], want)
    wide = loop_fixed(x, off, wt, cfg.frac_bits, shift, 1, 1, 1, 1, 40, cfg.overflow, cfg.rounding, bias=bias)
    assert np.any(wide != want)  # saturation acted: an adder tree clamped once would not match
    layer = DeformLayer("l", c, h, w, co)
    assert got["cycles"] == simulate_items(cfg, layer, off)[0]
    pred = predict_layer(cfg, layer, raw, with_offset_conv=False)
    assert (got["cycles"], got["stall"], got["conflict"]) == (pred.detail["unit_cycles"], pred.stall_cycles,
                                                              pred.detail["conflict_cycles"])
    assert got["counters"] == {k: pred.actions.get(*k) for k in COUNTERS.values()}
    # by hand: 15 pixels x 9 taps x 2 blocks = 270 items, each 2 x 3 lanes x 2 groups = 12 MAC slots (3,240);
    # real 15 x 9 x 3 x 4 = 1,620 (idle 1,620); two output beats per pixel; requantized: the 4 real outputs per pixel with
    # gating, 2 x 3 lanes without; the whole map (8-row window) loaded once: 15 pixels x 2 words
    n = got["counters"]
    assert (n["sampler", "sample"], n["mac", "mac"], n["mac", "idle"]) == (270, 1620, 3240 - 1620)
    # the sampler: 270 items x 2 lanes = 540 lane interpolations, 15 x 9 x 3 = 405 real, 135 idle (lane 1 of block 1)
    assert (n["sampler", "interp"], n["sampler", "idle"]) == (405, 135)
    assert n["requant", "convert"] == 15 * (6 if gating == "none" else 4) and got["beats"] == 30
    assert (n["line_buffer", "write"], n["offset_buffer", "read"]) == (30, 15 * 18)


@pytest.mark.parametrize(("c", "co", "shape", "overflow"), [
    (5, 5, (1, 7), "saturate"), (4, 7, (5, 1), "wrap"), (1, 1, (2, 3), "saturate"),
    pytest.param(3, 8, (4, 4), "saturate", marks=pytest.mark.slow)])
def test_depthwise_blocks_and_full_layers_match_on_odd_shapes(c, co, shape, overflow):
    """Depthwise with three channel blocks (5 channels on 2 lanes), full with three output groups (7 on 3 out
    lanes) and one channel, 1xN / Nx1 maps, bias: values, cycles and every counter."""

    cfg = FULL_CFG.replace(overflow=overflow)
    depthwise = c == co and c > 1
    h, w = shape
    got = _run_and_check(cfg, c, co, shape, seed=c * 10 + co, depthwise=depthwise, shift=4, relu=overflow == "wrap")
    nb, groups = -(-c // cfg.lanes), 1 if depthwise else -(-co // cfg.out_lanes)
    n = got["counters"]
    assert n["mac", "mac"] == h * w * 9 * c * (1 if depthwise else co)
    assert n["mac", "idle"] == h * w * 9 * nb * (cfg.lanes if depthwise else cfg.lanes * cfg.out_lanes * groups) \
        - n["mac", "mac"]
    assert (n["sampler", "interp"], n["sampler", "idle"]) == (h * w * 9 * c, h * w * 9 * (nb * cfg.lanes - c))


@pytest.mark.parametrize(("k", "banks", "c", "co", "shape"), [(2, 2, 3, 4, (3, 5)), (3, 1, 2, 2, (3, 7)),
                                                              (8, 4, 3, 4, (7, 3))])
def test_several_input_words_per_cycle(k, banks, c, co, shape):
    """dram_bytes_per_cycle = k words: the fill engine writes k words a cycle (two in one bank go through two
    write ports), a window's fill takes ceil(words / k) cycles; the 7-row map on a 6-row line buffer
    (bound 1) loads rows while rows compute. Values, cycles and every counter."""

    bound = 1.0 if shape[0] == 7 else 2.0
    cfg = FULL_CFG.replace(dram_bytes_per_cycle=2.0 * k, banks=banks, offset_bound=bound)
    depthwise = c == co
    h, w = shape
    got = _run_and_check(cfg, c, co, shape, seed=k, depthwise=depthwise, shift=6)
    assert got["counters"]["line_buffer", "write"] == h * w * -(-c // cfg.lanes)  # every word once
