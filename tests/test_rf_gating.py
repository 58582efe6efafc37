"""Idle ports of the RF array's edge tiles (``RfArrayConfig.gating``, issue 27; docs/idle_lanes.md).

An ``n``-port SVD tile of a ``k``-input, ``out``-output matrix holds ``rows <= n`` inputs and ``cols <= n``
outputs. Per vector its ``rows`` signal DACs and ``cols`` ADCs convert real samples, and (after the first k
tile of an output block) its ``cols`` post-adder lanes add real codes; the other ports are padding. The
counts are checked against a port-by-port walk of the tiles written here, the prices against the cost
entries worked out by hand (docs/rf_array.md's figures: ADC 0.0217 pJ x 2**bits, DAC 0.01 pJ x 2**bits,
32-bit add 0.1 pJ, a closed clock gate icg.ge x gate.energy_per_ge = 5 x 0.03 x 0.798 / 36 pJ)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from hwsim.models.rf_tt import TTLayer
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import rf_array_layers as rfl
from hwsim.cost import CostModel
from hwsim.errors import HwsimError
from hwsim.rf_array import GATINGS, RfArrayConfig, inventory, predict_emulator, predict_gemm, predict_tt
from hwsim.unit import total

COST = CostModel()
ICG_PJ = 5 * 0.03 * 0.798 / 36          # icg.ge (5 GE) x gate.energy_per_ge (int8 add energy per GE of its area)
ICG_UM2 = 5 * 0.798                     # icg.ge x nand2.area
ADC10_PJ = 0.0217 * 2 ** 10             # Walden FoM x 2**bits, 10-bit ADC
SIG10_PJ = 0.01 * 2 ** 10               # 10-bit signal DAC
ADD32_PJ = 0.1                          # Horowitz int32 add


def _port_walk(cfg: RfArrayConfig, m: int, k: int, out: int) -> tuple[Counter, int]:
    """Signal-DAC, ADC and post-adder port slots of ``a (m, k) @ w (k, out)`` walked tile by tile, vector by
    vector, port by port; idle ones named as ``cfg.gating`` says (docs/idle_lanes.md). Also the padding MAC
    slots (an input-output port pair of a tile with either port padding)."""
    n = cfg.n
    gated = cfg.gating == "clock"
    c, pad = Counter(), 0
    for c0 in range(0, out, n):
        for r0 in range(0, k, n):
            for _ in range(m):
                for p in range(n):
                    if r0 + p < k:
                        c["signal_dac", "convert"] += 1
                    else:
                        c["signal_dac_gate" if gated else "signal_dac", "idle"] += 1
                    if c0 + p < out:
                        c["adc", "convert"] += 1
                        if r0:
                            c["post", "add"] += 1
                    else:
                        c["adc_gate" if gated else "adc", "idle"] += 1
                        if r0 and not gated:
                            c["post", "idle"] += 1
            pad += m * sum(not (r0 + a < k and c0 + b < out) for a in range(n) for b in range(n))
    return c, pad


def _ports(counts) -> dict:
    keep = ("signal_dac", "adc", "post", "signal_dac_gate", "adc_gate")
    return {key: v for key, v in counts.items() if v and key[0] in keep}


SHAPES = [(1, 13), (13, 1), (1, 1), (7, 11), (17, 29), (10, 32), (8, 8), (16, 24), (3, 5)]


@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("ports", [1, 3, 4, 8])
@pytest.mark.parametrize("k,out", SHAPES)
def test_port_slots_equal_the_walk(k, out, ports, gating):
    cfg = RfArrayConfig(n=ports, gating=gating)
    walk, pad = _port_walk(cfg, 3, k, out)
    g = predict_gemm(cfg, 3, k, out)
    assert _ports(g.actions.counts) == _ports(walk)
    assert g.detail["idle_slots"] == pad
    # the layer's mesh passes (one vector per inference) count the same ports
    st_ = total(rfl.predict(cfg, op) for op in rfl.lower(cfg, rfl.WorkloadLayer("fc", out, k)))
    walk1, pad1 = _port_walk(cfg, 1, k, out)
    assert _ports(st_.actions.counts) == _ports(walk1)
    assert st_.detail["idle_slots"] == pad1


@settings(max_examples=80, deadline=None)
@given(m=st.integers(1, 4), k=st.integers(1, 40), out=st.integers(1, 40), ports=st.sampled_from([2, 5, 7, 8]),
       gating=st.sampled_from(GATINGS))
def test_port_slots_equal_the_walk_random(m, k, out, ports, gating):
    cfg = RfArrayConfig(n=ports, gating=gating)
    walk, pad = _port_walk(cfg, m, k, out)
    g = predict_gemm(cfg, m, k, out)
    assert _ports(g.actions.counts) == _ports(walk)
    assert g.detail["idle_slots"] == pad
    # every port slot is real or idle: n per tile and vector on each side
    tiles = g.detail["folds"]
    side = "signal_dac_gate" if gating == "clock" else "signal_dac"
    assert g.actions.get("signal_dac", "convert") + g.actions.get(side, "idle") == tiles * m * ports


@pytest.mark.parametrize("gating", GATINGS)
def test_tt_cores_walked_one_by_one(gating):
    # layer 2 of the tt-rfnn study (in 2,4,4; out 1,2,5; ranks 1,4,4,1), core by core in signal order:
    # 20 x 4 on 2*4 vectors, 8 x 16 on 2*5, 1 x 8 on 2*5 (out x in, vectors), every core an edge tile on 8 ports
    cfg = RfArrayConfig(n=8, gating=gating)
    s = predict_tt(cfg, TTLayer((2, 4, 4), (1, 2, 5), (1, 4, 4, 1)), vectors=1)
    want, pad = Counter(), 0
    for out, k, v in ((20, 4, 8), (8, 16, 10), (1, 8, 10)):
        c, p = _port_walk(cfg, v, k, out)
        want += c
        pad += p
    assert _ports(s.actions.counts) == _ports(want)
    assert s.detail["idle_slots"] == pad
    # by hand: 20 x 4 is 3 tiles (4 of 8 inputs; 8, 8, 4 outputs) on 8 vectors; 8 x 16 is 2 tiles (8 inputs
    # each, 8 outputs) on 10; 1 x 8 is one tile (8 inputs, 1 output) on 10
    idle_sig = 3 * 4 * 8 + 0 + 0
    idle_adc = 4 * 8 + 0 + 7 * 10
    if gating == "none":
        assert (s.actions.get("signal_dac", "idle"), s.actions.get("adc", "idle")) == (idle_sig, idle_adc)
        assert s.actions.get("post", "idle") == 0                # the 8 x 16 core's second k tile fills 8 outputs
    else:
        assert (s.actions.get("signal_dac_gate", "idle"), s.actions.get("adc_gate", "idle")) == (idle_sig, idle_adc)
    assert s.actions.get("signal_dac", "convert") == 3 * 4 * 8 + 2 * 8 * 10 + 8 * 10
    assert s.actions.get("adc", "convert") == 20 * 8 + 2 * 8 * 10 + 1 * 10


def test_digits_fc3_by_hand():
    """digits-mlp's fc3, 32 -> 10 on rf-array-8: 4 k tiles x 2 output blocks; the second block holds outputs
    8, 9, so per vector its 4 tiles leave 6 ADC ports idle (24) and its 3 later k tiles 6 post lanes (18); the
    inputs fill every port. 8 tiles of 64 MAC slots, 320 real: 192 idle."""
    layer = rfl.WorkloadLayer("fc3", 10, 32)
    none, clock = (total(rfl.predict(c, op) for op in rfl.lower(c, layer))
                   for c in (RfArrayConfig(n=8, gating="none"), RfArrayConfig(n=8, gating="clock")))
    assert none.actions.get("adc", "idle") == clock.actions.get("adc_gate", "idle") == 24
    assert none.actions.get("post", "idle") == 18 and clock.actions.get("post", "idle") == 0
    assert none.actions.get("signal_dac", "idle") == clock.actions.get("signal_dac_gate", "idle") == 0
    assert none.actions.get("adc", "convert") == clock.actions.get("adc", "convert") == 4 * 10
    assert none.detail["idle_slots"] == clock.detail["idle_slots"] == 8 * 64 - 320
    assert none.cycles == clock.cycles == 8 * 4
    e_none = COST.energy(RfArrayConfig(n=8, gating="none"), none.actions, none.cycles)
    e_clock = COST.energy(RfArrayConfig(n=8, gating="clock"), clock.actions, clock.cycles)
    # without gating the 24 idle conversions cost an ADC conversion each and the 18 idle lanes an add; with it
    # each idle conversion is one closed gate on the ADC's sample clock
    assert e_none.total_pj - e_clock.total_pj == pytest.approx(24 * ADC10_PJ + 18 * ADD32_PJ - 24 * ICG_PJ,
                                                               rel=1e-9)
    assert e_clock.parts["adc_gate"] == pytest.approx(24 * ICG_PJ, rel=1e-12)
    assert e_none.parts["adc"] - e_clock.parts["adc"] == pytest.approx(24 * ADC10_PJ, rel=1e-12)


def test_one_row_and_one_column_by_hand():
    """1 x 13 (one output from 13 inputs) and 13 x 1 on 8 ports, 2 vectors, priced by hand."""
    one_out = predict_gemm(RfArrayConfig(n=8, gating="none"), 2, 13, 1)   # 2 k tiles (8 + 5 inputs), 1 output
    assert one_out.actions.get("signal_dac", "idle") == 3 * 2            # the second k tile's 3 padding inputs
    assert one_out.actions.get("adc", "idle") == 2 * 7 * 2               # 7 of 8 outputs idle in both tiles
    assert one_out.actions.get("post", "idle") == 7 * 2                  # the second k tile's padding lanes
    one_in = predict_gemm(RfArrayConfig(n=8, gating="none"), 2, 1, 13)   # 1 input, 2 output blocks (8 + 5)
    assert one_in.actions.get("signal_dac", "idle") == 2 * 7 * 2
    assert one_in.actions.get("adc", "idle") == 3 * 2
    assert one_in.actions.get("post", "idle") == 0                       # one k tile: no post-adds
    for g in (one_out, one_in):
        assert g.detail["idle_slots"] == 2 * (2 * 64 - 13)
    # energy of the idle ports, by hand, on each gating
    for shape, sig, adc, post in (((13, 1), 6, 28, 14), ((1, 13), 28, 6, 0)):
        pj = {}
        for gating in GATINGS:
            cfg = RfArrayConfig(n=8, gating=gating)
            s = predict_gemm(cfg, 2, *shape)
            pj[gating] = COST.energy(cfg, s.actions, s.cycles).total_pj
        assert pj["none"] - pj["clock"] == pytest.approx(sig * SIG10_PJ + adc * ADC10_PJ + post * ADD32_PJ
                                                         - (sig + adc) * ICG_PJ, rel=1e-9)


def test_full_tiles_have_no_idle_ports():
    for gating in GATINGS:
        g = predict_gemm(RfArrayConfig(n=8, gating=gating), 5, 16, 24)
        assert g.detail["idle_slots"] == 0
        assert not [key for key in g.actions.counts if key[1] == "idle" and g.actions.counts[key]]


def test_values_and_cycles_do_not_depend_on_gating():
    rng = np.random.default_rng(3)
    w = rng.integers(-100, 100, size=(5, 11))
    layer = SimpleNamespace(name="fc", kind="linear", weight=w, bias=rng.integers(-50, 50, size=5), relu=False,
                            shift=np.full(5, 6, dtype=np.int64), act_bits=8, weight_format="int8")
    x = rng.integers(-128, 128, size=(4, 11))
    (v0, s0), (v1, s1) = (rfl.run(RfArrayConfig(n=4, gating=g), layer, [x]) for g in ("none", "clock"))
    assert np.array_equal(v0, v1)
    assert (s0.cycles, s0.macs, s0.detail["idle_slots"]) == (s1.cycles, s1.macs, s1.detail["idle_slots"])
    # 3 k tiles (4, 4, 3 inputs) x 2 output blocks (4, 1 outputs): 6 tiles of 16 slots, 55 real
    assert s0.detail["idle_slots"] == 6 * 16 - 55
    assert s0.sram_bytes == s1.sram_bytes and s0.dram_bytes == s1.dram_bytes


def test_emulator_target_has_no_idle_ports():
    """The emulator RTL runs one programmed mesh whose columns mix every port; the converters and the post
    adder are glue outside it. Its counts and Verilog are the same under both choices."""
    a, b = (RfArrayConfig(n=4, target="emulator", gating=g) for g in GATINGS)
    layer = rfl.WorkloadLayer("fc", 3, 6)
    for op in rfl.lower(a, layer):
        assert rfl.predict(a, op) == rfl.predict(b, op)
    assert predict_emulator(a, 5) == predict_emulator(b, 5)
    assert "idle_slots" not in total(rfl.predict(a, op) for op in rfl.lower(a, layer)).detail
    assert [c.name for c in inventory(a).components] == [c.name for c in inventory(b).components]
    pytest.importorskip("amaranth")
    from hwsim.rtl.rf_array import generate_verilog

    (va, ma), (vb, mb) = (generate_verilog(c.replace(n=2)) for c in (a, b))  # small: the RTL reads no gating
    assert va == vb
    assert {**ma["config"], "gating": "clock"} == mb["config"]


def test_inventory_gates_and_their_area():
    none, clock = (RfArrayConfig(n=8, gating=g) for g in ("none", "clock"))
    names = {c.name: c for c in inventory(clock).components}
    assert (names["signal_dac_gate"].cls, names["signal_dac_gate"].count) == ("converter_gate", 8)
    assert (names["adc_gate"].cls, names["adc_gate"].count) == ("converter_gate", 8)
    assert not {"signal_dac_gate", "adc_gate"} & {c.name for c in inventory(none).components}
    # one clock-gating cell per signal DAC and per ADC
    assert COST.area(clock).total_mm2 - COST.area(none).total_mm2 == pytest.approx(16 * ICG_UM2 / 1e6, rel=1e-9)
    e = COST.unit_energies(inventory(clock))
    assert e["adc_gate", "idle"] == e["signal_dac_gate", "idle"] == pytest.approx(ICG_PJ, rel=1e-12)
    e = COST.unit_energies(inventory(none))
    assert e["adc", "idle"] == e["adc", "convert"] == pytest.approx(ADC10_PJ, rel=1e-12)
    assert e["signal_dac", "idle"] == e["signal_dac", "convert"] == pytest.approx(SIG10_PJ, rel=1e-12)
    assert e["post", "idle"] == e["post", "add"] == pytest.approx(ADD32_PJ, rel=1e-12)


def test_bad_gating_is_one_line():
    with pytest.raises(HwsimError, match=r"^gating='operand' is not allowed: expected one of none, clock$"):
        RfArrayConfig(gating="operand")


def test_default_is_clock_gating():
    # docs/idle_lanes.md ("RF array"): a converter that is not triggered spends no conversion energy, and the
    # enables are known when the layer is compiled; the presets take the default
    assert RfArrayConfig().gating == "clock"
    from hwsim.rf_array import parse_preset

    assert parse_preset("rf-array-8").gating == parse_preset("rf-array-4-emulator").gating == "clock"
