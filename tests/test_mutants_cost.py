"""The MAC part lists `hwsim cost` explains, per weight format, against hand-built lists (mutation run,
docs/testing.md): each part's name, instance count, width and energy from the published 45 nm figures
(Horowitz, ISSCC 2014: 8-bit add 0.03 pJ, 32-bit add 0.1 pJ, 8x8-bit multiply 0.2 pJ; the MUX2/XNOR2 gate
energy is the table's derived entry), and the rule each note names."""

from __future__ import annotations

import pytest

from hwsim.cost import CostModel

ADD8, ADD32, MUL8 = 0.03, 0.1, 0.2


def _add(bits: int) -> float:
    """Horowitz's adder line through (8, 0.03) and (32, 0.1) pJ."""
    return ADD8 * (32 - bits) / 24 + ADD32 * (bits - 8) / 24


def _energy_rows(fmt: str, act_bits: int = 8, acc_bits: int = 32) -> dict:
    rows = CostModel().explain_mac(fmt, act_bits, acc_bits)
    return {e.name: (e.value, e.bits, e.note) for e in rows if e.name.endswith(".energy")}


@pytest.mark.parametrize("fmt", ["int8", "int4", "int2", "ternary", "binary", "pow2"])
def test_every_format_ends_in_the_32_bit_accumulator(fmt):
    acc = _energy_rows(fmt)[f"mac.{fmt}.accumulator.energy"]
    assert acc[:2] == (pytest.approx(ADD32), 32)
    assert acc[2].startswith("1 x 32-bit accumulator adder: adder line through int8_add and int32_add")


def test_multiplier_formats_by_hand():
    # int8 x 8-bit activations: P = 64 partial products = the int8 multiplier; int4: P = 32, half of it;
    # 16-bit activations x int8: P = 128 on the line to the 32-bit multiplier (P = 1024, 3.1 pJ).
    rows = _energy_rows("int8")
    assert list(rows) == ["mac.int8.multiplier.energy", "mac.int8.accumulator.energy"]
    assert rows["mac.int8.multiplier.energy"] == (pytest.approx(MUL8), 8,
                                                  "8x8-bit multiplier, P = 64 partial products, X(int8_mult) * P/64")
    v, bits, note = _energy_rows("int4")["mac.int4.multiplier.energy"]
    assert (v, bits) == (pytest.approx(MUL8 / 2), 8)
    assert note == "8x4-bit multiplier, P = 32 partial products, X(int8_mult) * P/64"
    v, bits, note = _energy_rows("int8", act_bits=16)["mac.int8.multiplier.energy"]
    assert (v, bits) == (pytest.approx(MUL8 * (1024 - 128) / 960 + 3.1 * (128 - 64) / 960), 16)
    assert note.startswith("16x8-bit multiplier, P = 128 partial products, line through int8_mult (P=64)")


def test_ternary_binary_pow2_parts_by_hand():
    mux = CostModel().entry("mux2.energy").value
    xnor = CostModel().entry("xnor2.energy").value
    t = _energy_rows("ternary")
    assert list(t) == ["mac.ternary.negate.energy", "mac.ternary.sign_select.energy", "mac.ternary.accumulator.energy"]
    assert t["mac.ternary.negate.energy"][:2] == (pytest.approx(ADD8), 8)
    assert t["mac.ternary.negate.energy"][2].startswith("1 x 8-bit negate (two's complement) adder")
    assert t["mac.ternary.sign_select.energy"] == (pytest.approx(8 * mux), 8,
                                                   "8 x MUX2 (select x or -x); mux2.energy / mux2.area per gate")
    b = _energy_rows("binary")
    assert list(b) == ["mac.binary.xnor.energy", "mac.binary.popcount.energy", "mac.binary.accumulator.energy"]
    assert b["mac.binary.xnor.energy"] == (pytest.approx(8 * xnor), 8,
                                           "8 x XNOR2 (XNOR multiply of +-1 codes); xnor2.energy / xnor2.area per gate")
    assert b["mac.binary.popcount.energy"][:2] == (pytest.approx(_add(2)), 2)
    assert b["mac.binary.popcount.energy"][2].startswith("1 x 2-bit popcount/counter adder forming the +-1 product")
    # pow2: shifts 0..6 need ceil(log2(7)) = 3 stages over 8 + 6 = 14 bits: 42 MUX2s
    p = _energy_rows("pow2")
    assert list(p) == ["mac.pow2.negate.energy", "mac.pow2.sign_select.energy", "mac.pow2.shifter.energy",
                       "mac.pow2.accumulator.energy"]
    assert p["mac.pow2.negate.energy"][:2] == (pytest.approx(ADD8), 8)
    assert p["mac.pow2.negate.energy"][2].startswith("1 x 8-bit negate (two's complement) adder")
    assert p["mac.pow2.sign_select.energy"] == t["mac.ternary.sign_select.energy"]
    assert p["mac.pow2.shifter.energy"] == (pytest.approx(42 * mux), 14, "42 x MUX2 (barrel shifter: 3 stages x 14 "
                                            "bits (act_bits + max shift 6)); mux2.energy / mux2.area per gate")


@pytest.mark.parametrize("call, field", [
    (lambda m: m.explain_mac("int8", 0, 32), "act_bits"), (lambda m: m.explain_mac("int8", 8, 0), "acc_bits"),
    (lambda m: m.explain_requant(0, 8), "acc_bits"), (lambda m: m.explain_requant(32, 0), "out_bits"),
])
def test_part_widths_name_the_field(call, field):
    from hwsim.errors import HwsimError

    with pytest.raises(HwsimError, match=rf"^{field}=0 is not allowed: expected an integer >= 1$"):
        call(CostModel())


def test_requantizer_parts_by_hand():
    # 32-bit accumulator to 8 bits: a 32-bit rounding adder; a barrel shifter of ceil(log2(32)) = 5 stages of 32
    # MUX2s; two 32-bit clamp comparators (priced as adders); 2 levels x 8 MUX2s selecting the clamp value.
    mux = CostModel().entry("mux2.energy").value
    rows = {e.name: (e.value, e.bits, e.note) for e in CostModel().explain_requant(32, 8) if e.name.endswith(".energy")}
    assert list(rows) == ["requant.round.energy", "requant.shifter.energy", "requant.clamp_compare.energy",
                          "requant.clamp_select.energy"]
    assert rows["requant.round.energy"][:2] == (pytest.approx(ADD32), 32)
    assert rows["requant.round.energy"][2].startswith("1 x 32-bit rounding adder: adder line through int8_add")
    assert rows["requant.shifter.energy"] == (pytest.approx(160 * mux), 32, "160 x MUX2 (barrel shifter: 5 stages x "
                                              "32 bits); mux2.energy / mux2.area per gate")
    assert rows["requant.clamp_compare.energy"][:2] == (pytest.approx(2 * ADD32), 32)
    assert rows["requant.clamp_compare.energy"][2].startswith("2 x 32-bit clamp comparator (priced as an adder): ")
    assert rows["requant.clamp_select.energy"] == (pytest.approx(16 * mux), 8, "16 x MUX2 (clamp select: 2 levels x "
                                                   "8 bits); mux2.energy / mux2.area per gate")
    assert CostModel().requant_energy_pj(32, 8) == pytest.approx(ADD32 + 160 * mux + 2 * ADD32 + 16 * mux)
    # a 2-bit accumulator still has one shifter stage (log2(2) = 1): 2 MUX2s
    two = {e.name: e.value for e in CostModel().explain_requant(2, 2)}
    assert two["requant.shifter.energy"] == pytest.approx(2 * mux)


def test_multiplier_line_starts_just_above_64_partial_products():
    # Up to P = 64 partial products the multiplier scales from the int8 one (P / 64); above, the line from
    # (64, 0.2 pJ) to (1024, 3.1 pJ): a 5 x 13-bit multiplier (P = 65) is 1/960 of the way.
    m = CostModel()
    assert m.mult_energy_pj(8) == pytest.approx(MUL8)
    assert m.mult_energy_pj(4, 8) == pytest.approx(MUL8 / 2)
    assert m.mult_energy_pj(5, 13) == pytest.approx(MUL8 + (3.1 - MUL8) / 960)
    assert m.mult_energy_pj(32) == pytest.approx(3.1)


def test_sram_access_scales_with_the_word_and_names_bad_arguments():
    # one access moves word_bits: the energy is the 64-bit access's times word_bits / 64
    from hwsim.errors import HwsimError

    m = CostModel()
    e64 = m.sram_access_energy_pj(4096, 64)
    assert m.sram_access_energy_pj(4096, 65) == pytest.approx(e64 * 65 / 64)
    assert m.sram_access_energy_pj(4096, 16) == pytest.approx(e64 / 4)
    assert m.sram_access_energy_pj(4096) == e64
    with pytest.raises(HwsimError, match=r"^size_bytes=0 is not allowed: expected an integer >= 1$"):
        m.sram_access_energy_pj(0, 64)
    with pytest.raises(HwsimError, match=r"^word_bits=0 is not allowed: expected an integer >= 1$"):
        m.sram_access_energy_pj(4096, 0)


def test_area_report_fields():
    # DRAM is off chip: no area, no entry in the area parts (and 0 um^2 when asked for one component); the report
    # names each priced component's class, the node, and the inventory's notes as "name: note".
    from hwsim.cost import Component, Inventory

    dram = Component("dram", "dram", {})
    inv = Inventory("t", (Component("acc", "register", {"bits": 8}, 2, "two 8-bit registers"), dram))
    m = CostModel()
    assert m.component_area_um2(dram) == 0.0
    rep = m.area(inv)
    assert list(rep.parts) == ["acc"] and rep.classes == {"acc": "register"}
    assert rep.parts["acc"] == pytest.approx(2 * m.component_area_um2(inv.components[0]))
    assert (rep.node_nm, rep.notes) == (45, ("acc: two 8-bit registers",))
