"""deform-unit idle lanes (issue 27, ``DeformUnitConfig.gating``): real MACs and idle MAC slots counted apart
by the cycle model (against hand counts and a slot-by-slot walk of the items), their prices per gating
by hand, and the RTL's activity counters under Amaranth's simulator on shapes that leave lanes idle.

The RTL co-simulation under Verilator (each gating, channels not a multiple of lanes) is in
``test_idle_lanes_counted_apart_in_deform_rtl`` below (one gating in the default suite, the others slow)."""

import numpy as np
import pytest
from hwsim.models import deform_unit as du
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.cost import CostModel
from hwsim.deform_unit import DeformLayer, DeformUnitConfig, inventory, predict_layer
from hwsim.errors import HwsimError

GATINGS = ("none", "operand", "clock")
NAND2_UM2 = 0.798  # NanGate 45 nm NAND2_X1 (1 GE)
E_GE = 0.03 * NAND2_UM2 / 36.0  # pJ per GE: Horowitz's int8 add (0.03 pJ) over its area (36 um^2)
ICG_GE = 5.0  # one integrated clock-gating cell (icg.ge)


def _pred(cfg, layer):
    return predict_layer(cfg, layer, np.zeros((2 * cfg.kernel ** 2, layer.h, layer.w), dtype=np.int64),
                         with_offset_conv=False)


def test_default_is_clock_and_bad_gating_is_one_line():
    assert DeformUnitConfig().gating == "clock"
    with pytest.raises(HwsimError, match=r"^gating='partial' is not allowed: expected one of clock, operand, none"):
        DeformUnitConfig(gating="partial")


@pytest.mark.parametrize("gating", GATINGS)
def test_hand_counts_depthwise_five_channels_on_four_lanes(gating):
    # 5 channels on 4 lanes: 2 blocks, the second with 1 real lane and 3 idle; 3x4 map, padding 1 -> 12
    # output pixels x 9 taps x 2 blocks = 216 items of 4 slots = 864 slots; real MACs 12 x 9 x 5 = 540,
    # idle 864 - 540 = 324 (= 12 x 9 x 3). Requantizations: 12 x 5 = 60 real outputs; ungated 12 x 8 = 96.
    cfg = DeformUnitConfig(lanes=4, out_lanes=4, gating=gating)
    s = _pred(cfg, DeformLayer("l", 5, 3, 4, 5, depthwise=True))
    assert s.detail["items"] == 216 and s.macs == 540
    assert s.actions.get("mac", "mac") == 540
    assert s.actions.get("mac", "idle") == 324
    assert s.actions.get("requant", "convert") == (96 if gating == "none" else 60)
    # the sampler interpolates 4 lanes per item: 12 x 9 x 5 = 540 real channels, 12 x 9 x 3 = 324 idle lanes
    assert (s.actions.get("sampler", "interp"), s.actions.get("sampler", "idle")) == (540, 324)


@pytest.mark.parametrize("gating", GATINGS)
def test_hand_counts_full_layer_idle_input_and_output_lanes(gating):
    # full 3 -> 5 on 2 lanes x 4 out lanes: 2 channel blocks (the second 1 real lane of 2), b = 2 groups
    # (the second 1 real output of 4); 2x2 map -> 4 pixels x 9 taps x 2 blocks = 72 items, each 2 x 4 x 2 = 16
    # slots = 1,152 slots; real 4 x 9 x 3 x 5 = 540; idle 612. Requantizations: 4 x 5 = 20; ungated 4 x 8 = 32.
    cfg = DeformUnitConfig(lanes=2, out_lanes=4, gating=gating)
    s = _pred(cfg, DeformLayer("l", 3, 2, 2, 5))
    assert s.detail["items"] == 72 and s.detail["mac_cycles_per_item"] == 2
    assert (s.actions.get("mac", "mac"), s.actions.get("mac", "idle")) == (540, 612)
    assert s.actions.get("requant", "convert") == (32 if gating == "none" else 20)
    # sampler: once per item whatever b is: 4 x 9 x 3 = 108 real lane interpolations, 4 x 9 x 1 = 36 idle
    assert (s.actions.get("sampler", "interp"), s.actions.get("sampler", "idle")) == (108, 36)


def test_full_lanes_have_no_idle_slots_and_cycles_do_not_depend_on_gating():
    # digits-dcn's layer: 8 -> 16 on 8 x 8 lanes, 4x4 map: every slot real (no ("mac", "idle") at all)
    layer = DeformLayer("dconv2", 8, 4, 4, 16)
    runs = {g: _pred(DeformUnitConfig(lanes=8, out_lanes=8, gating=g), layer) for g in GATINGS}
    for s in runs.values():
        assert s.actions.get("mac", "mac") == 16 * 9 * 8 * 16 and ("mac", "idle") not in s.actions.counts
        assert s.actions.get("requant", "convert") == 16 * 16
        assert s.actions.get("sampler", "interp") == 16 * 9 * 8 and ("sampler", "idle") not in s.actions.counts
    assert len({(s.detail["unit_cycles"], s.stall_cycles) for s in runs.values()}) == 1


def _walk(cfg, layer, ho, wo):
    """Slot by slot: every item (pixel, tap, channel block) and every MAC slot the stage passes for it."""
    L, Q, k = cfg.lanes, cfg.out_lanes, cfg.kernel
    nb = -(-layer.c // L)
    groups = 1 if layer.depthwise else -(-layer.c_out // Q)
    real = idle = interp = interp_idle = 0
    for _pixel in range(ho * wo):
        for _tap in range(k * k):
            for blk in range(nb):
                for lane in range(L):  # the sampler: every lane of the item, once
                    interp += blk * L + lane < layer.c
                    interp_idle += blk * L + lane >= layer.c
                for g in range(groups):
                    for lane in range(L):
                        for q in range(1 if layer.depthwise else Q):
                            ok = blk * L + lane < layer.c and (layer.depthwise or g * Q + q < layer.c_out)
                            real += ok
                            idle += not ok
    rq = 0
    for _pixel in range(ho * wo):  # the lanes the MAC stage delivers per pixel; real ones with gating
        lanes_out = range(nb * L) if layer.depthwise else range(groups * Q)
        rq += sum(1 for o in lanes_out if cfg.gating == "none" or o < layer.c_out)
    return real, idle, rq, interp, interp_idle


@settings(max_examples=40, deadline=None)
@given(lanes=st.integers(1, 5), out_lanes=st.integers(1, 5), c=st.integers(1, 11), c_out=st.integers(1, 11),
       h=st.integers(1, 4), w=st.integers(1, 4), depthwise=st.booleans(), gating=st.sampled_from(GATINGS))
def test_closed_form_equals_slot_walk(lanes, out_lanes, c, c_out, h, w, depthwise, gating):
    cfg = DeformUnitConfig(lanes=lanes, out_lanes=out_lanes, gating=gating, max_channels=16)
    layer = DeformLayer("l", c, h, w, c if depthwise else c_out, depthwise=depthwise)
    s = _pred(cfg, layer)
    real, idle, rq, interp, interp_idle = _walk(cfg, layer, h, w)  # kernel 3, padding 1: output = input size
    assert s.actions.get("sampler", "interp") == interp and s.actions.get("sampler", "idle") == interp_idle
    assert s.actions.get("mac", "mac") == real == s.macs
    assert s.actions.get("mac", "idle") == idle
    assert s.actions.get("requant", "convert") == rq
    assert s.detail["idle_slots"] == idle


def test_idle_slot_prices_and_gating_area_by_hand():
    m = CostModel()
    invs = {g: inventory(DeformUnitConfig(lanes=4, out_lanes=2, gating=g, offset_array=False)) for g in GATINGS}
    e = {g: m.unit_energies(inv) for g, inv in invs.items()}
    # without gating an idle slot is a full MAC of the same datapath; with it one closed clock gate
    assert e["none"][("mac", "idle")] == e["none"][("mac", "mac")]
    for g in ("operand", "clock"):
        assert e[g][("mac", "idle")] == pytest.approx(ICG_GE * E_GE)
        assert e[g][("mac", "mac")] == e["none"][("mac", "mac")]
    assert ICG_GE * E_GE == pytest.approx(0.0033, abs=1e-4)  # docs/idle_lanes.md: about 1 % of an int8 MAC
    # the sampler's lane: 4 products of an 8-bit neighbour and a (2F + 1) = 9-bit weight and 3 (8 + 8 + 2) =
    # 18-bit adds (F = 4); ungated an idle lane costs one such interpolation, gated one closed clock gate
    lane = 4 * m.mult_energy_pj(8, 9) + 3 * m.add_energy_pj(18)
    for g in GATINGS:
        assert e[g][("sampler", "interp")] == pytest.approx(lane)
        assert e[g][("sampler", "idle")] == pytest.approx(lane if g == "none" else ICG_GE * E_GE)
        # one tap's address and weights: 4 (F + 1) x (F + 1) = 5x5 weight products and 2 (16 + F)-bit adds
        assert e[g][("sampler", "sample")] == pytest.approx(4 * m.mult_energy_pj(5, 5) + 2 * m.add_energy_pj(20))
    # area: one clock-gating cell per MAC lane (4 x 2) and per sampler lane (4) with gating, nothing else changes
    area = {g: m.area(inv).total_um2 for g, inv in invs.items()}
    assert area["operand"] == pytest.approx(area["clock"])
    assert area["clock"] - area["none"] == pytest.approx((8 + 4) * ICG_GE * NAND2_UM2)


@pytest.mark.parametrize("gating", GATINGS)
def test_layer_energy_per_gating_by_hand(gating):
    # 5 channels depthwise on 4 lanes (see the hand count above): 324 idle MAC slots and 324 idle sampler lanes;
    # the ungated unit also requantizes 96 - 60 = 36 idle lanes. Gated energy = ungated - 324 x (MAC - closed
    # gate) - 324 x (interpolation - closed gate) - 36 x requant.
    m = CostModel()
    layer = DeformLayer("l", 5, 3, 4, 5, depthwise=True)
    cfgs = {g: DeformUnitConfig(lanes=4, out_lanes=4, gating=g, offset_array=False) for g in GATINGS}
    tot = {g: m.energy(inventory(c), _pred(c, layer).actions, 0).total_pj for g, c in cfgs.items()}
    e = m.unit_energies(inventory(cfgs["none"]))
    e_mac, e_rq, e_int = e[("mac", "mac")], e[("requant", "convert")], e[("sampler", "interp")]
    saved = 324 * (e_mac - ICG_GE * E_GE) + 324 * (e_int - ICG_GE * E_GE) + 36 * e_rq
    if gating == "none":
        assert tot["none"] - tot["clock"] == pytest.approx(saved)
    else:
        assert tot[gating] == pytest.approx(tot["none"] - saved)


# ---------------------------------------------------------------------------------------------- RTL (Amaranth)
def _rtl_case(gating, lanes, c, h, w, seed):
    from test_deform_rtl import corner_offsets, run_rtl

    cfg = DeformUnitConfig(offset_mode="free", offset_bound=2.0, lanes=lanes, banks=4, frac_bits=3,
                           dram_bytes_per_cycle=float(lanes), max_width=16, gating=gating)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(c, h, w))
    wt = rng.integers(-128, 128, size=(c, 1, 3, 3))
    raw = corner_offsets(cfg, rng, h, w)
    got = run_rtl(cfg, x, raw, wt, 2, relu=True)
    want = du.deform_conv2d_fixed(x, du.variant_offsets(cfg.variant(True), raw, 3, 3, frac_bits=3), wt, frac_bits=3,
                                  shift=2, padding=1, groups=c, relu=True)
    return cfg, got, want, raw


@pytest.mark.parametrize(("gating", "lanes", "c", "shape"), [
    ("clock", 4, 3, (3, 5)), ("operand", 4, 1, (1, 5)), ("none", 8, 5, (5, 1)),
    ("clock", 3, 5, (2, 3)), ("operand", 3, 7, (1, 4)), ("none", 3, 2, (3, 1)), ("clock", 1, 3, (2, 2)),
    pytest.param("clock", 8, 7, (2, 3), marks=pytest.mark.slow),
    pytest.param("none", 4, 1, (3, 3), marks=pytest.mark.slow),
    pytest.param("operand", 8, 5, (3, 2), marks=pytest.mark.slow),
    pytest.param("none", 3, 5, (2, 2), marks=pytest.mark.slow),
    pytest.param("operand", 1, 2, (1, 3), marks=pytest.mark.slow)])
def test_rtl_counts_idle_lanes_apart(gating, lanes, c, shape):
    """Depthwise, channels not a multiple of lanes (one or several blocks; lanes 1, 3, 4, 8): values
    bit-exact, cycles equal, and the RTL's counters (real MACs, idle slots, requantized lanes, real and idle
    sampler lane interpolations, every other priced action) equal the model's and a hand count."""
    from hwsim.rtl.deform_unit import COUNTERS

    h, w = shape
    cfg, got, want, raw = _rtl_case(gating, lanes, c, h, w, seed=27 + c)
    np.testing.assert_array_equal(got["outs"], want)
    pred = predict_layer(cfg, DeformLayer("l", c, h, w, c, depthwise=True), raw, with_offset_conv=False)
    assert got["cycles"] == pred.detail["unit_cycles"] and got["stall"] == pred.stall_cycles
    assert got["counters"] == {k: pred.actions.get(*k) for k in COUNTERS.values()}
    nb = -(-c // lanes)  # channel blocks; the last has nb lanes - c idle lanes
    taps = h * w * 9
    n = got["counters"]
    assert n[("sampler", "sample")] == taps * nb
    assert (n[("mac", "mac")], n[("mac", "idle")]) == (taps * c, taps * (nb * lanes - c))
    assert (n[("sampler", "interp")], n[("sampler", "idle")]) == (taps * c, taps * (nb * lanes - c))
    assert n[("requant", "convert")] == h * w * (nb * lanes if gating == "none" else c)


# ---------------------------------------------------------------------------------------------- RTL (Verilator)
@pytest.mark.parametrize("gating", [pytest.param(g, marks=() if g == "clock" else pytest.mark.slow)
                                    for g in GATINGS])
def test_idle_lanes_counted_apart_in_deform_rtl(gating, tmp_path):
    """Each gating under Verilator on the 4-lane build of test_deform_behaviour (the default, clock, shares
    that build; the other two are slow): 1 and 3 channels on 4 lanes, 1xN, Nx1, bounded and square offsets.
    Values bit-exact, cycles and every activity counter (real MACs, idle slots, requantized lanes) equal
    the model's, and the MAC counters equal a hand count."""
    from hwsim.cosim.deform_unit_regression import random_layers, run_regression

    cfg = DeformUnitConfig(lanes=4, dram_bytes_per_cycle=4.0, max_width=16, gating=gating)
    layers = [dict(lay, name=f"c{c}_{lay['name']}") for c in (1, 3)
              for lay in random_layers(cfg, 27 + c, 3, max_side=7, channels=c)]
    rep = run_regression(cfg, layers=layers, workdir=tmp_path)
    assert len(rep.layers) == 6
    for row, lay in zip(rep.layers, layers, strict=True):
        assert row["mismatches"] == 0 and row["count_diffs"] == {}, row
        assert row["rtl_cycles"] == row["predicted_cycles"], row
        c, h, w = lay["x"].shape
        a = row["actions"]
        assert a["mac.mac"] == h * w * 9 * c and a["mac.idle"] == h * w * 9 * (4 - c)
        assert a["requant.convert"] == h * w * (4 if gating == "none" else c)


# ---------------------------------------------------------------------------------------------- sampler lanes
@pytest.mark.parametrize("gating", [pytest.param(g, marks=() if g == "clock" else pytest.mark.slow)
                                    for g in GATINGS])
def test_idle_sampler_lanes_counted_apart_in_deform_rtl(gating, tmp_path):
    """The sampler's lanes under Verilator on a 3-lane, 2-out-lane build: depthwise 1, 2 and 5 channels (one
    block with 2 / 1 idle lanes, two blocks with 1 idle; three layers, one of them Nx1) and full 7 -> 5 (three blocks, the last with 2 idle
    lanes; three output groups, the last with 1 idle), 1xN and Nx1 maps among them. Values bit-exact, cycles
    and every activity counter equal the model's, and the interpolation counters equal a hand count:
    per output pixel and tap, C real lane interpolations and ceil(C / 3) x 3 - C idle ones."""
    from hwsim.cosim.deform_unit_regression import random_layers, run_regression

    cfg = DeformUnitConfig(lanes=3, out_lanes=2, offset_bound=2.0, frac_bits=3, dram_bytes_per_cycle=3.0,
                           max_width=16, max_channels=8, gating=gating)
    layers = [dict(lay, name=f"c{c}_{lay['name']}") for c in (1, 2, 5)
              for lay in random_layers(cfg, 270 + c, 1 if c < 5 else 3, max_side=6, channels=c)]
    layers += [dict(lay, name=f"full_{lay['name']}") for lay in random_layers(cfg, 277, 2, max_side=5, channels=7,
                                                                               c_out=5)]
    rep = run_regression(cfg, layers=layers, workdir=tmp_path)
    assert len(rep.layers) == 7
    shapes = set()
    for row, lay in zip(rep.layers, layers, strict=True):
        assert row["mismatches"] == 0 and row["count_diffs"] == {}, row
        assert row["rtl_cycles"] == row["predicted_cycles"], row
        c, h, w = lay["x"].shape
        shapes.add((h == 1) + 2 * (w == 1))
        a = row["actions"]
        assert a["sampler.interp"] == h * w * 9 * c
        assert a["sampler.idle"] == h * w * 9 * (-(-c // 3) * 3 - c)
        assert a["sampler.sample"] == h * w * 9 * -(-c // 3)
    assert {1, 2} <= shapes  # a 1xN and an Nx1 map were among them


@pytest.mark.parametrize("gating", GATINGS)
def test_sampler_isolates_idle_lanes(gating):
    """The bilinear sampler alone (Amaranth simulator), with data in every lane of the banks' words (the unit's
    line buffer holds zeros beyond C, which would hide a missing isolation): one item at (1 + 1/4, 1 + 1/4) in
    a 4x4 image (Q.2: weights 9, 3, 3, 1 of 16 on the neighbours (1,1), (1,2), (2,1), (2,2), banks 3, 0, 1, 2)
    with lanes 0 and 1 enabled of 3. A real lane's sample is its interpolation under every gating; the idle
    lane 2 interpolates its data without gating and reads zero with operand isolation (with ``clock`` its
    value is not defined: its register holds)."""
    from amaranth.sim import Simulator
    from hwsim.rtl.deform_sampler import BilinearSampler

    cfg = DeformUnitConfig(lanes=3, banks=4, frac_bits=2, offset_bound=2.0, max_width=8, max_channels=3,
                           gating=gating)
    smp = BilinearSampler(cfg, 8)
    vals = {b: [(-1) ** (b + lane) * (17 * b + 5 * lane + 3) for lane in range(3)] for b in range(4)}
    rd = sum((vals[b][lane] & 0xFF) << (8 * (3 * b + lane)) for b in range(4) for lane in range(3))
    want = [9 * vals[3][lane] + 3 * vals[0][lane] + 3 * vals[1][lane] + 1 * vals[2][lane] for lane in range(3)]
    res = {}

    async def tb(ctx):
        for sig, v in ((smp.start, 1), (smp.active, 1), (smp.hold, 0), (smp.lane_en, 0b011), (smp.blk, 0),
                       (smp.oy, 1), (smp.ox, 1), (smp.dy, 1), (smp.dx, 1), (smp.height, 4), (smp.width, 4),
                       (smp.rd_data, rd)):
            ctx.set(sig, v)
        assert ctx.get(smp.done) == 1 and ctx.get(smp.reads) == 4  # four banks: one cycle
        await ctx.tick()
        ctx.set(smp.lane_en, 0b111)  # the next item's enables must not act on this item's data
        assert ctx.get(smp.sample_valid) == 1
        s = ctx.get(smp.sample)
        sb = smp.sb
        res["s"] = [((s >> (lane * sb)) & ((1 << sb) - 1)) - ((s >> (lane * sb + sb - 1)) & 1) * (1 << sb)
                    for lane in range(3)]

    sim = Simulator(smp)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert res["s"][:2] == want[:2]
    if gating == "none":
        assert res["s"][2] == want[2] != 0
    elif gating == "operand":
        assert res["s"][2] == 0
