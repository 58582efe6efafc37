"""Tests of the energy/area cost model (hwsim.cost): table values, scaling rules, pricing."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from hwsim import cost
from hwsim.config import MacArrayConfig
from hwsim.cost import CostEntry, CostModel
from hwsim.errors import HwsimError
from hwsim.mac_array import MacArrayActions as ActionCounts

pytestmark = pytest.mark.filterwarnings("error")

# Independent copies of the published figures (Horowitz ISSCC 2014, 45 nm, 0.9 V).
E_ADD8, E_ADD32, E_MUL8, E_MUL32 = 0.03, 0.1, 0.2, 3.1
A_ADD8, A_ADD32, A_MUL8, A_MUL32 = 36.0, 137.0, 282.0, 3495.0
NAND2_UM2, DFF_UM2 = 0.798, 4.522  # NanGate 45 nm NAND2_X1, DFF_X1
GE_MUX2 = 3.0
E_GE = E_ADD8 * NAND2_UM2 / A_ADD8
E_REG_BIT = (DFF_UM2 / NAND2_UM2) * E_GE


# ------------------------------------------------------------------------------------ table values
def test_horowitz_energy_values_exact():
    assert cost.add_energy_pj(8) == 0.03
    assert cost.add_energy_pj(32) == 0.1
    assert cost.mult_energy_pj(8) == 0.2
    assert cost.mult_energy_pj(32) == 3.1
    assert cost.mult_energy_pj(8, 8) == 0.2
    m = CostModel()
    assert (m.add_energy_pj(8), m.add_energy_pj(32), m.mult_energy_pj(8), m.mult_energy_pj(32)) == (
        0.03, 0.1, 0.2, 3.1)
    t = cost.base_entries()
    assert t["int8_add.energy"].value == 0.03 and t["int32_add.energy"].value == 0.1
    assert t["int8_mult.energy"].value == 0.2 and t["int32_mult.energy"].value == 3.1
    fp_names = ("fp16_add.energy", "fp32_add.energy", "fp16_mult.energy", "fp32_mult.energy")
    fp = {k: t[k].value for k in fp_names}
    assert fp == {"fp16_add.energy": 0.4, "fp32_add.energy": 0.9, "fp16_mult.energy": 1.1,
                  "fp32_mult.energy": 3.7}


def test_horowitz_area_values_exact():
    assert cost.add_area_um2(8) == 36.0
    assert cost.add_area_um2(32) == 137.0
    assert cost.mult_area_um2(8) == 282.0
    assert cost.mult_area_um2(32) == 3495.0


def test_sram_and_dram_table_values():
    t = cost.base_entries()
    assert [t[f"sram.{s}.access64.energy"].value for s in ("8KB", "32KB", "1MB")] == [10.0, 20.0, 100.0]
    assert t["dram.lpddr4.energy_per_bit"].value == 8.0
    assert t["dram.hbm2.energy_per_bit"].value == 3.9
    assert t["dram.ddr3.energy_per_bit"].value == pytest.approx(1300 / 64)
    assert CostModel().dram_energy_pj_per_bit() == 8.0
    assert CostModel(dram="hbm2").dram_energy_pj_per_bit() == 3.9


def test_every_entry_is_documented():
    assert isinstance(cost.TABLE_VERSION, str) and cost.TABLE_VERSION
    for model in (CostModel(), CostModel(node_nm=7, dram="ddr3")):
        entries = model.entries()
        assert entries.keys() == cost.base_entries().keys()
        for e in entries.values():
            assert isinstance(e, CostEntry)
            assert e.name and isinstance(e.value, float) and math.isfinite(e.value)
            assert e.unit in {"pJ", "pJ/bit", "um^2", "um^2/bit", "mm^2", "GE", "x"}, e
            assert isinstance(e.source, str) and len(e.source) > 20, e
            assert isinstance(e.node_nm, int) and e.node_nm in cost.NODES, e
            assert isinstance(e.voltage_v, float) and 0.5 <= e.voltage_v <= 1.5, e
            assert isinstance(e.bits, int) and e.bits >= 1, e
    with pytest.raises(dataclasses.FrozenInstanceError):
        cost.base_entries()["int8_add.energy"].value = 1.0


def test_tables_render_and_serialize():
    model = CostModel(node_nm=16, dram="hbm2")
    text = cost.format_tables(model)
    for e in model.entries().values():
        assert e.name in text
        assert e.source in text
    assert cost.TABLE_VERSION in text
    d = cost.tables_as_dict(model)
    assert json.loads(json.dumps(d)) == d
    assert d["table_version"] == cost.TABLE_VERSION and d["node_nm"] == 16 and d["dram"] == "hbm2"
    names = [e["name"] for s in d["sections"] for e in s["entries"]]
    assert sorted(names) == sorted(model.entries())
    assert model.tables_as_dict() == d
    assert cost.format_tables() == cost.format_tables(CostModel())


# ------------------------------------------------------------------------------------ width scaling
def test_adder_is_linear_through_anchors():
    slope = (E_ADD32 - E_ADD8) / 24
    e16 = cost.add_energy_pj(16)
    assert E_ADD8 < e16 < E_ADD32
    assert e16 == pytest.approx(E_ADD8 + 8 * slope, rel=1e-12)
    for b in (1, 4, 12, 20, 40):
        assert cost.add_energy_pj(b) == pytest.approx(E_ADD8 + (b - 8) * slope, rel=1e-12)
        assert cost.add_area_um2(b) == pytest.approx(A_ADD8 + (b - 8) * (A_ADD32 - A_ADD8) / 24, rel=1e-12)
    # equal steps
    assert cost.add_energy_pj(20) - cost.add_energy_pj(16) == pytest.approx(
        cost.add_energy_pj(16) - cost.add_energy_pj(12), rel=1e-9)
    assert all(cost.add_energy_pj(b) > 0 and cost.add_area_um2(b) > 0 for b in range(1, 65))


def test_multiplier_is_quadratic_through_anchors():
    # a * b^2 + c through (8, E8) and (32, E32), computed here independently.
    a = (E_MUL32 - E_MUL8) / (32**2 - 8**2)
    c = E_MUL8 - a * 8**2
    expected_ratio = (a * 16**2 + c) / E_MUL8
    assert expected_ratio == pytest.approx(3.9)
    assert cost.mult_energy_pj(16) / cost.mult_energy_pj(8) == pytest.approx(expected_ratio, rel=1e-12)
    aa = (A_MUL32 - A_MUL8) / (32**2 - 8**2)
    ca = A_MUL8 - aa * 64
    assert cost.mult_area_um2(16) == pytest.approx(aa * 256 + ca, rel=1e-12)
    assert cost.mult_energy_pj(24) == pytest.approx(a * 24**2 + c, rel=1e-12)
    # Narrower than 8x8: proportional to the partial-product count relative to the 8x8 anchor.
    assert cost.mult_energy_pj(8, 4) == pytest.approx(E_MUL8 * 32 / 64)
    assert cost.mult_energy_pj(4) == pytest.approx(E_MUL8 * 16 / 64)
    assert cost.mult_area_um2(8, 2) == pytest.approx(A_MUL8 * 16 / 64)
    assert cost.mult_energy_pj(8, 4) == cost.mult_energy_pj(4, 8)
    widths = range(1, 40)
    energies = [cost.mult_energy_pj(b) for b in widths]
    assert all(x < y for x, y in zip(energies, energies[1:], strict=False))


# ------------------------------------------------------------------------------------ SRAM
def test_sram_interpolation_anchors_and_monotone():
    assert cost.sram_access_energy_pj(8 * 1024) == 10.0
    assert cost.sram_access_energy_pj(32 * 1024) == 20.0
    assert cost.sram_access_energy_pj(1024 * 1024) == 100.0
    # linear in log2(size): midpoints
    assert cost.sram_access_energy_pj(16 * 1024) == pytest.approx(15.0)
    assert cost.sram_access_energy_pj(64 * 1024) == pytest.approx(20 + 80 / 5)
    # extrapolation with the end slopes
    assert cost.sram_access_energy_pj(2 * 1024 * 1024) == pytest.approx(116.0)
    assert cost.sram_access_energy_pj(4 * 1024) == pytest.approx(5.0)
    # floored at 64 flip-flop writes for tiny buffers
    assert cost.sram_access_energy_pj(64) == pytest.approx(64 * E_REG_BIT)
    sizes = sorted({int(2 ** (x / 8)) for x in range(40, 200)})
    e = [cost.sram_access_energy_pj(s) for s in sizes]
    assert all(x <= y for x, y in zip(e, e[1:], strict=False))
    inner = [cost.sram_access_energy_pj(s) for s in sizes if 8 * 1024 <= s <= 1024 * 1024]
    assert all(x < y for x, y in zip(inner, inner[1:], strict=False))
    # word width scales the 64-bit figure linearly
    assert cost.sram_access_energy_pj(32 * 1024, 128) == pytest.approx(40.0)
    assert cost.sram_access_energy_pj(32 * 1024, 32) == pytest.approx(10.0)


# ------------------------------------------------------------------------------------ MACs
def test_int_macs_are_multiplier_plus_accumulator():
    assert cost.mac_energy_pj("int8", 8, 32) == pytest.approx(E_MUL8 + E_ADD32)
    assert cost.mac_area_um2("int8", 8, 32) == pytest.approx(A_MUL8 + A_ADD32)
    assert cost.mac_energy_pj("int4", 8, 32) == pytest.approx(E_MUL8 * 32 / 64 + E_ADD32)
    assert cost.mac_energy_pj("int2", 8, 24) == pytest.approx(E_MUL8 * 16 / 64 + cost.add_energy_pj(24))


def test_cheap_formats_are_cheaper():
    int8 = cost.mac_energy_pj("int8", 8, 32)
    assert cost.mac_energy_pj("binary", 1, 32) < int8
    assert cost.mac_area_um2("binary", 1, 32) < cost.mac_area_um2("int8", 8, 32)
    assert cost.mac_energy_pj("pow2", 8, 32) < int8
    assert cost.mac_energy_pj("ternary", 8, 32) < int8
    # pow2's product stage (everything but the accumulator) is cheaper than the int8 multiplier
    parts = cost.explain_mac("pow2", 8, 32)
    product = sum(e.value for e in parts if e.unit == "pJ" and ".accumulator." not in e.name)
    assert product < cost.mult_energy_pj(8)
    product_area = sum(e.value for e in parts if e.unit == "um^2" and ".accumulator." not in e.name)
    assert product_area < cost.mult_area_um2(8)


def test_gate_priced_mac_components():
    e_mux = GE_MUX2 * E_GE
    # ternary: negate adder(8) + 8 muxes + accumulator
    assert cost.mac_energy_pj("ternary", 8, 32) == pytest.approx(E_ADD8 + 8 * e_mux + E_ADD32)
    # binary: 1 XNOR (3 GE) + 2-bit counter adder + accumulator
    e_add2 = E_ADD8 + (2 - 8) * (E_ADD32 - E_ADD8) / 24
    assert cost.mac_energy_pj("binary", 1, 32) == pytest.approx(3 * E_GE + e_add2 + E_ADD32)
    # pow2: negate adder(8) + 8 muxes + 3 stages x (8 + 6) muxes + accumulator
    assert cost.mac_energy_pj("pow2", 8, 32) == pytest.approx(E_ADD8 + 8 * e_mux + 42 * e_mux + E_ADD32)


@pytest.mark.parametrize("fmt,act", [("int8", 8), ("int4", 6), ("int2", 8), ("ternary", 8), ("binary", 1),
                                     ("pow2", 8)])
def test_explain_mac_adds_up(fmt, act):
    for model in (CostModel(), CostModel(node_nm=14)):
        parts = model.explain_mac(fmt, act, 24)
        assert parts and all(isinstance(p, CostEntry) for p in parts)
        assert math.fsum(p.value for p in parts if p.unit == "pJ") == pytest.approx(
            model.mac_energy_pj(fmt, act, 24), rel=1e-12)
        assert math.fsum(p.value for p in parts if p.unit == "um^2") == pytest.approx(
            model.mac_area_um2(fmt, act, 24), rel=1e-12)
        for p in parts:
            assert p.source and p.note and p.node_nm == model.node_nm and p.voltage_v == model.voltage_v
            assert p.name.startswith(f"mac.{fmt}.")


def test_bad_mac_arguments():
    with pytest.raises(HwsimError, match=r"^weight_format='fp8' is not allowed: expected one of int8, "):
        cost.mac_energy_pj("fp8", 8, 32)
    with pytest.raises(HwsimError, match=r"^act_bits=0 is not allowed: expected an integer >= 1$"):
        cost.mac_area_um2("int8", 0, 32)
    with pytest.raises(HwsimError, match=r"^bits=True is not allowed"):
        cost.add_energy_pj(True)


# ------------------------------------------------------------------------------------ nodes
def _sb(coeffs, v):
    a, b, c = coeffs
    return a * v * v + b * v + c


def test_node_scaling_applies_cited_factor():
    hp45 = (1.018, -0.3107, 0.1539)  # Stillmaker & Baas HP 45 nm energy fit
    hp7 = (0.1776, -0.09097, 0.02447)  # Stillmaker & Baas HP 7 nm energy fit
    ef7 = _sb(hp7, 0.7) / _sb(hp45, 0.9)
    m7 = CostModel(node_nm=7)
    assert m7.energy_scale == pytest.approx(ef7, rel=1e-12)
    assert m7.area_scale == 0.059
    assert m7.add_energy_pj(8) == pytest.approx(0.03 * ef7, rel=1e-12)
    assert m7.mult_energy_pj(32) == pytest.approx(3.1 * ef7, rel=1e-12)
    assert m7.mult_area_um2(8) == pytest.approx(282 * 0.059, rel=1e-12)
    assert m7.sram_access_energy_pj(32 * 1024) == pytest.approx(20 * ef7, rel=1e-12)
    assert m7.mac_energy_pj("int8", 8, 32) == pytest.approx((0.2 + 0.1) * ef7, rel=1e-12)
    assert m7.entry("scale.energy.7nm").value == pytest.approx(ef7, rel=1e-12)
    assert m7.entry("scale.area.7nm").value == 0.059
    assert "Stillmaker" in m7.entry("scale.energy.7nm").source
    scaled = m7.entry("int8_add.energy")
    assert scaled.value == pytest.approx(0.03 * ef7) and scaled.node_nm == 7 and scaled.voltage_v == 0.7
    assert "Horowitz" in scaled.source and "Stillmaker" in scaled.source
    # DRAM is a device figure: not node-scaled
    assert m7.dram_energy_pj_per_bit() == 8.0 and m7.entry("dram.lpddr4.energy_per_bit").value == 8.0
    hp32 = (0.8367, -0.4341, 0.1701)
    m32 = CostModel(node_nm=32)
    assert m32.add_energy_pj(32) == pytest.approx(0.1 * _sb(hp32, 0.9) / _sb(hp45, 0.9), rel=1e-12)
    assert m32.add_area_um2(8) == pytest.approx(36 * 0.46)


def test_all_nodes_and_interpolated_nodes():
    factors = {n: CostModel(node_nm=n).energy_scale for n in cost.NODES}
    assert factors[45] == 1.0
    ordered = [factors[n] for n in sorted(cost.NODES, reverse=True)]
    assert all(x > y for x, y in zip(ordered, ordered[1:], strict=False))
    m28, m32, m20 = CostModel(node_nm=28), CostModel(node_nm=32), CostModel(node_nm=20)
    assert m28.area_scale == pytest.approx(m32.area_scale + (4 / 12) * (m20.area_scale - m32.area_scale))
    assert "interpolated" in m28.entry("scale.energy.28nm").note


def test_bad_node_and_dram():
    with pytest.raises(HwsimError, match=r"^node_nm=5 is not allowed: expected one of "
                                         r"45, 32, 28, 22, 20, 16, 14, 10, 7$"):
        CostModel(node_nm=5)
    with pytest.raises(HwsimError, match=r"^node_nm='45' is not allowed: expected one of 45, "):
        CostModel(node_nm="45")
    with pytest.raises(HwsimError, match=r"^dram='ddr5' is not allowed: expected one of lpddr4, ddr3, hbm2$"):
        CostModel(dram="ddr5")


# ------------------------------------------------------------------------------------ pricing
def _requant_by_hand(acc, out):
    e_add = E_ADD8 + (acc - 8) * (E_ADD32 - E_ADD8) / 24
    stages = math.ceil(math.log2(acc))
    return e_add + stages * acc * GE_MUX2 * E_GE + 2 * e_add + 2 * out * GE_MUX2 * E_GE


def test_energy_of_hand_made_actions():
    cfg = MacArrayConfig(global_buffer_bytes=0)  # 8x8 ws int8, act 8, acc 32, 64 KB buffers, 64-bit words; no global buffer
    actions = ActionCounts(
        pe_macs=1000, pe_weight_loads=64, pe_reg_writes=500,
        input_sram_reads=30, input_sram_writes=10, weight_sram_reads=8, weight_sram_writes=8,
        output_sram_reads=3, output_sram_writes=5, dram_read_bytes=1024, dram_write_bytes=256,
        dram_read_beats=128, requant_ops=64,
    )
    rep = CostModel().energy(cfg, actions, cycles=1234)
    e_sram_64k = 20 + (16 - 15) * (100 - 20) / (20 - 15)  # log2(64 KB) = 16
    hand = {
        "pe_mac": 1000 * (0.2 + 0.1),
        "pe_weight_reg": 64 * 8 * E_REG_BIT,
        "pe_pipeline_reg": 500 * (8 + 32) * E_REG_BIT,
        "input_sram": 40 * e_sram_64k,
        "weight_sram": 16 * e_sram_64k,
        "output_sram": 8 * e_sram_64k,
        "dram": (1024 + 256) * 8 * 8.0,
        "requant": 64 * _requant_by_hand(32, 8),
        "leakage": 0.0,
    }
    got = rep.components()
    assert got.keys() == hand.keys()
    for k, v in hand.items():
        assert got[k] == pytest.approx(v, rel=1e-12), k
    assert rep.total_pj == pytest.approx(sum(hand.values()), rel=1e-12)
    assert rep.total_pj == pytest.approx(math.fsum(got.values()), rel=1e-15)
    assert rep.cycles == 1234 and rep.node_nm == 45 and rep.dram_type == "lpddr4"
    assert rep.table_version == cost.TABLE_VERSION and rep.notes
    assert json.loads(json.dumps(rep.as_dict()))["total_pj"] == pytest.approx(rep.total_pj)


def test_energy_other_config():
    cfg = MacArrayConfig(rows=4, cols=4, dataflow="os", weight_format="int4", act_bits=6, acc_bits=20,
                         input_sram_bytes=8 * 1024, weight_sram_bytes=32 * 1024,
                         output_sram_bytes=1024 * 1024, sram_word_bits=128)
    actions = ActionCounts(pe_macs=10, pe_reg_writes=7, input_sram_reads=2, weight_sram_writes=3,
                           output_sram_reads=1, dram_write_bytes=10, requant_ops=2)
    rep = CostModel(dram="hbm2").energy(cfg, actions, 0)
    assert rep.pe_mac == pytest.approx(10 * (E_MUL8 * 24 / 64 + E_ADD8 + 12 * (E_ADD32 - E_ADD8) / 24))
    assert rep.pe_pipeline_reg == pytest.approx(7 * (6 + 4 + 20) * E_REG_BIT)
    assert rep.input_sram == pytest.approx(2 * 10.0 * 2)
    assert rep.weight_sram == pytest.approx(3 * 20.0 * 2)
    assert rep.output_sram == pytest.approx(1 * 100.0 * 2)
    assert rep.dram == pytest.approx(10 * 8 * 3.9)
    assert rep.requant == pytest.approx(2 * _requant_by_hand(20, 6))
    assert cfg.replace(dataflow="is").pe_reg_write_bits == 4 + 20


def test_energy_rejects_bad_inputs():
    cfg = MacArrayConfig()
    with pytest.raises(HwsimError, match=r"^cycles=-1 is not allowed: expected an integer >= 0$"):
        CostModel().energy(cfg, ActionCounts(), -1)
    with pytest.raises(HwsimError, match=r"^actions=\{\} is not allowed"):
        CostModel().energy(cfg, {}, 0)
    with pytest.raises(HwsimError, match=r"^cfg=None is not allowed"):
        CostModel().area(None)


def test_mux_class_from_its_gate_count():
    """An M:1 mux of b bits is a tree of (M - 1) * b MUX2 of 3 GE each (the N:M PE's activation select)."""
    from hwsim.cost import COMPONENT_CLASSES, Component, Inventory

    assert "mux" in COMPONENT_CLASSES  # built in, without any family's inventory being built first
    inv = Inventory("muxes", (Component("m4x8", "mux", {"inputs": 4, "bits": 8}, 2),
                              Component("m2x1", "mux", {"inputs": 2, "bits": 1}),
                              Component("m16x4", "mux", {"inputs": 16, "bits": 4})))
    model = CostModel()
    # 4:1 x 8 bits: 3 MUX2 per bit = 24 MUX2 = 72 GE = 57.456 um^2; 2:1 x 1 bit: one MUX2; 16:1 x 4: 60 MUX2.
    area = model.area(inv)
    assert area.m4x8 == pytest.approx(2 * 24 * 3 * 0.798)
    assert area.m4x8 / 2 == pytest.approx(57.456)
    assert area.m2x1 == pytest.approx(3 * NAND2_UM2)
    assert area.m16x4 == pytest.approx(60 * 3 * NAND2_UM2)
    e = model.unit_energies(inv)
    assert e[("m4x8", "select")] == pytest.approx(24 * GE_MUX2 * E_GE)
    assert e[("m2x1", "select")] == pytest.approx(GE_MUX2 * E_GE)
    # Node scaling as every gate-priced class: 7 nm area factor 0.059.
    assert CostModel(node_nm=7).area(inv).m16x4 == pytest.approx(60 * 3 * NAND2_UM2 * 0.059)
    assert "mux" in cost.format_tables()


def test_area_report():
    cfg = MacArrayConfig()
    rep = CostModel().area(cfg)
    icg = 5 * NAND2_UM2  # one clock-gating cell (icg.ge = 5 GE) on the operand registers, one on the pipeline's
    assert rep.pe_mac == pytest.approx(64 * (A_MUL8 + A_ADD32 + icg))
    assert rep.pe_weight_reg + rep.pe_pipeline_reg == pytest.approx(64 * ((8 + 8 + 32) * DFF_UM2 + icg))
    ungated = CostModel().area(cfg.replace(gating="none"))
    assert ungated.pe_mac == pytest.approx(64 * (A_MUL8 + A_ADD32))
    assert rep.total_um2 - ungated.total_um2 == pytest.approx(2 * 64 * icg)
    assert rep.input_sram == pytest.approx(64 * 1024 * 8 * 0.346 * 2.0)
    e_mux_a = GE_MUX2 * NAND2_UM2
    assert rep.requant == pytest.approx(8 * (A_ADD32 + 5 * 32 * e_mux_a + 2 * A_ADD32 + 16 * e_mux_a))
    assert rep.controller == pytest.approx(10000 * NAND2_UM2)
    assert rep.total_um2 == pytest.approx(sum(rep.components().values()))
    assert rep.total_mm2 == pytest.approx(rep.total_um2 / 1e6)
    small = CostModel(node_nm=7).area(cfg)
    assert small.total_um2 == pytest.approx(rep.total_um2 * 0.059)
    binary = CostModel().area(MacArrayConfig(weight_format="binary"))
    assert binary.pe_mac < rep.pe_mac


# ------------------------------------------------------------------------------------ pinned before the refactor
# Energy and area of a few configs, per component, as computed by the committed code BEFORE the cost model
# became inventory-based (commit 8b7c018, fixed ActionCounts fields and per-MAC pricing functions), by a
# script that ran predict_gemm + CostModel(node, dram).energy/area on these configs. The refactor must
# not change a number. Old component names map to new ones: pe_weight_load -> pe_weight_reg,
# pe_registers (energy) -> pe_pipeline_reg, pe_registers (area) -> pe_weight_reg + pe_pipeline_reg.
_PINNED = [
    ({}, 45, 'lpddr4', (64, 100, 30), 5001,
     {'pe_mac': 61440.00000000001, 'pe_weight_load': 96.46933333333334, 'pe_registers': 64209.98826666667, 'input_sram': 239616.0, 'weight_sram': 28800.0, 'output_sram': 958464.0, 'dram': 2039808.0, 'requant': 1333.49376, 'leakage': 0.0},
     {'pe_mac': 26816.0, 'pe_registers': 13891.584, 'input_sram': 362807.296, 'weight_sram': 362807.296, 'output_sram': 362807.296, 'requant': 6658.752, 'controller': 7980.0}),
    ({'rows': 16, 'cols': 16, 'dataflow': 'os', 'weight_format': 'int4', 'acc_bits': 24}, 45, 'hbm2', (200, 77, 50), 8178,
     {'pe_mac': 181087.57333333333, 'pe_weight_load': 0.0, 'pe_registers': 278109.51168, 'input_sram': 576576.0, 'weight_sram': 288288.0, 'output_sram': 0.0, 'dram': 3397555.1999999997, 'requant': 6416.896, 'leakage': 0.0},
     {'pe_mac': 62549.33333333333, 'pe_registers': 41674.752, 'input_sram': 362807.296, 'weight_sram': 362807.296, 'output_sram': 362807.296, 'requant': 10169.344000000001, 'controller': 7980.0}),
    ({'rows': 3, 'cols': 5, 'dataflow': 'is', 'weight_format': 'pow2', 'input_sram_bytes': 4096}, 7, 'ddr3', (17, 31, 13), 1213,
     {'pe_mac': 126.69828972597837, 'pe_weight_load': 0.639412590207722, 'pe_registers': 159.2756135994848, 'input_sram': 84.84023753309005, 'weight_sram': 2817.790598840952, 'output_sram': 8453.371796522857, 'dram': 282425.0, 'requant': 11.5828271131144, 'leakage': 0.0},
     {'pe_mac': 259.0395, 'pe_registers': 176.08667999999997, 'input_sram': 1337.8519039999999, 'weight_sram': 21405.630463999998, 'output_sram': 21405.630463999998, 'requant': 245.54148, 'controller': 470.82}),
    ({'rows': 8, 'cols': 4, 'weight_format': 'binary', 'sram_word_bits': 128}, 22, 'lpddr4', (33, 70, 9), 1626,
     {'pe_mac': 1105.9120855981969, 'pe_weight_load': 1.1029846151534664, 'pe_registers': 2470.9376487129425, 'input_sram': 44707.56873148744, 'weight_sram': 10537.137411461686, 'output_sram': 44707.56873148744, 'dram': 66944.0, 'requant': 85.9916967832582, 'leakage': 0.0},
     {'pe_mac': 1209.1596800000002, 'pe_registers': 1238.1838933333336, 'input_sram': 91306.50282666668, 'weight_sram': 91306.50282666668, 'output_sram': 91306.50282666668, 'requant': 804.1535200000001, 'controller': 2008.3000000000004}),
    ({'rows': 4, 'cols': 4, 'weight_format': 'ternary', 'dataflow': 'os', 'output_sram_bytes': 2048}, 16, 'lpddr4', (12, 40, 7), 539,
     {'pe_mac': 111.05506482249406, 'pe_weight_load': 0.0, 'pe_registers': 240.8424925932603, 'input_sram': 3423.868126207339, 'weight_sram': 3423.868126207339, 'output_sram': 0.0, 'dram': 82944.0, 'requant': 12.38527230186735, 'leakage': 0.0},
     {'pe_mac': 584.14208, 'pe_registers': 577.36896, 'input_sram': 68933.38623999999, 'weight_sram': 68933.38623999999, 'output_sram': 2154.1683199999998, 'requant': 632.58144, 'controller': 1516.2}),
]
_ENERGY_NAMES = {"pe_weight_load": ("pe_weight_reg",), "pe_registers": ("pe_pipeline_reg",)}
# One deliberate change since: the pinned code priced two pipeline-register writes per PE hop, each at
# the summed activation + psum (OS: + weight) width, so it counted every hop's register bits twice. A hop
# is now one update of those bits: exactly half the pinned pipeline-register energy.
_CORRECTED = {"pe_registers": 0.5}
_AREA_NAMES = {"pe_registers": ("pe_weight_reg", "pe_pipeline_reg")}
# And one deliberate change of cycles (not of energy or area): the RTL's pipeline registers for the FPGA
# clock (issue 24; hwsim.config.MAC_STREAM_STAGES cycles per fold, MAC_DRAIN_STAGES per tile drain).
_PIPELINED_CYCLES = {5001: 5169, 8178: 8184, 1213: 1357, 1626: 1716, 539: 545}
# And one deliberate change of energy (issue 27): the pins counted a MAC for every column of a streamed
# vector but none for a fold's padding rows (K not a multiple of the rows). With gating="none" (what the pins
# priced: nothing gated, every other count as before) every slot a vector passes is priced as a MAC: WS/IS
# ceil(K / rows) * rows slots per pinned K MACs; OS already priced every slot.


def _slots_per_pinned_mac(cfg: MacArrayConfig, k: int) -> float:
    return 1.0 if cfg.dataflow == "os" else -(-k // cfg.rows) * cfg.rows / k


@pytest.mark.parametrize(("fields", "node", "dram", "gemm", "cycles", "energy", "area"), _PINNED)
def test_energy_and_area_unchanged_by_the_refactor(fields, node, dram, gemm, cycles, energy, area):
    from hwsim.mac_array import predict_gemm

    # the pins predate the global buffer (issue 21) and price every idle lane (issue 27: gating="none")
    cfg = MacArrayConfig(**{"global_buffer_bytes": 0, "gating": "none", **fields})
    st = predict_gemm(cfg, *gemm)
    assert st.cycles == _PIPELINED_CYCLES[cycles]
    model = CostModel(node, dram)
    e, a = model.energy(cfg, st.actions, st.cycles), model.area(cfg)
    corrected = {**_CORRECTED, "pe_mac": _slots_per_pinned_mac(cfg, gemm[1])}
    for old, value in energy.items():
        got = math.fsum(e.parts[n] for n in _ENERGY_NAMES.get(old, (old,)))
        assert got == pytest.approx(value * corrected.get(old, 1.0), rel=1e-12, abs=1e-12), old
    for old, value in area.items():
        got = math.fsum(a.parts[n] for n in _AREA_NAMES.get(old, (old,)))
        assert got == pytest.approx(value, rel=1e-12), old
    assert e.total_pj == pytest.approx(sum(v * corrected.get(k, 1.0) for k, v in energy.items()), rel=1e-12)
    assert a.total_um2 == pytest.approx(sum(area.values()), rel=1e-12)
