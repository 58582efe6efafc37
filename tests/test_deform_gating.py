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


def test_full_lanes_have_no_idle_slots_and_cycles_do_not_depend_on_gating():
    # digits-dcn's layer: 8 -> 16 on 8 x 8 lanes, 4x4 map: every slot real (no ("mac", "idle") at all)
    layer = DeformLayer("dconv2", 8, 4, 4, 16)
    runs = {g: _pred(DeformUnitConfig(lanes=8, out_lanes=8, gating=g), layer) for g in GATINGS}
    for s in runs.values():
        assert s.actions.get("mac", "mac") == 16 * 9 * 8 * 16 and ("mac", "idle") not in s.actions.counts
        assert s.actions.get("requant", "convert") == 16 * 16
    assert len({(s.detail["unit_cycles"], s.stall_cycles) for s in runs.values()}) == 1


def _walk(cfg, layer, ho, wo):
    """Slot by slot: every item (pixel, tap, channel block) and every MAC slot the stage passes for it."""
    L, Q, k = cfg.lanes, cfg.out_lanes, cfg.kernel
    nb = -(-layer.c // L)
    groups = 1 if layer.depthwise else -(-layer.c_out // Q)
    real = idle = 0
    for _pixel in range(ho * wo):
        for _tap in range(k * k):
            for blk in range(nb):
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
    return real, idle, rq


@settings(max_examples=40, deadline=None)
@given(lanes=st.integers(1, 5), out_lanes=st.integers(1, 5), c=st.integers(1, 11), c_out=st.integers(1, 11),
       h=st.integers(1, 4), w=st.integers(1, 4), depthwise=st.booleans(), gating=st.sampled_from(GATINGS))
def test_closed_form_equals_slot_walk(lanes, out_lanes, c, c_out, h, w, depthwise, gating):
    cfg = DeformUnitConfig(lanes=lanes, out_lanes=out_lanes, gating=gating, max_channels=16)
    layer = DeformLayer("l", c, h, w, c if depthwise else c_out, depthwise=depthwise)
    s = _pred(cfg, layer)
    real, idle, rq = _walk(cfg, layer, h, w)  # kernel 3, padding 1: output = input size
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
    # area: one clock-gating cell per MAC lane (4 x 2) with gating, nothing else changes
    area = {g: m.area(inv).total_um2 for g, inv in invs.items()}
    assert area["operand"] == pytest.approx(area["clock"])
    assert area["clock"] - area["none"] == pytest.approx(8 * ICG_GE * NAND2_UM2)


@pytest.mark.parametrize("gating", GATINGS)
def test_layer_energy_per_gating_by_hand(gating):
    # 5 channels depthwise on 4 lanes (see the hand count above): 324 idle slots; the ungated unit also
    # requantizes 96 - 60 = 36 idle lanes. Gated energy = ungated - 324 x (MAC - closed gate) - 36 x requant.
    m = CostModel()
    layer = DeformLayer("l", 5, 3, 4, 5, depthwise=True)
    cfgs = {g: DeformUnitConfig(lanes=4, out_lanes=4, gating=g, offset_array=False) for g in GATINGS}
    tot = {g: m.energy(inventory(c), _pred(c, layer).actions, 0).total_pj for g, c in cfgs.items()}
    e = m.unit_energies(inventory(cfgs["none"]))
    e_mac, e_rq = e[("mac", "mac")], e[("requant", "convert")]
    if gating == "none":
        assert tot["none"] - tot["clock"] == pytest.approx(324 * (e_mac - ICG_GE * E_GE) + 36 * e_rq)
    else:
        assert tot[gating] == pytest.approx(tot["none"] - 324 * (e_mac - ICG_GE * E_GE) - 36 * e_rq)


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
    pytest.param("clock", 8, 7, (2, 3), marks=pytest.mark.slow),
    pytest.param("none", 4, 1, (3, 3), marks=pytest.mark.slow),
    pytest.param("operand", 8, 5, (3, 2), marks=pytest.mark.slow)])
def test_rtl_counts_idle_lanes_apart(gating, lanes, c, shape):
    """Channels < lanes: values bit-exact, cycles equal, and the RTL's counters (real MACs, idle slots,
    requantized lanes, every other priced action) equal the model's and a hand count."""
    from hwsim.rtl.deform_unit import COUNTERS

    h, w = shape
    cfg, got, want, raw = _rtl_case(gating, lanes, c, h, w, seed=27 + c)
    np.testing.assert_array_equal(got["outs"], want)
    pred = predict_layer(cfg, DeformLayer("l", c, h, w, c, depthwise=True), raw, with_offset_conv=False)
    assert got["cycles"] == pred.detail["unit_cycles"] and got["stall"] == pred.stall_cycles
    assert got["counters"] == {k: pred.actions.get(*k) for k in COUNTERS.values()}
    items = h * w * 9
    assert got["counters"][("mac", "mac")] == items * c  # one block: c real lanes per item
    assert got["counters"][("mac", "idle")] == items * (lanes - c)
    assert got["counters"][("requant", "convert")] == h * w * (lanes if gating == "none" else c)


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
