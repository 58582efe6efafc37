"""Tests of the synthesis-based area report (hwsim.synth) and of the multiplier-based requantizer RTL."""

from __future__ import annotations

import gc
import json
import math
import random
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator
from hwsim.rtl.mult_requantizer import MultRequantizer

from hwsim.config import MacArrayConfig
from hwsim.cost import CostModel
from hwsim.errors import HwsimError
from hwsim.mac_array_synth import compare_requantizers, format_requant_comparison
from hwsim.synth import format_synth_report, synth

pytestmark = pytest.mark.filterwarnings("error")

# Independent copies of the tables: Yosys kernel/cost.h static-CMOS transistors (+16 for the DFF, as
# `stat -tech cmos` counts it); NAND2 = 4 transistors; DFF = NanGate DFF_X1 / NAND2_X1; 45 nm areas.
TRANSISTORS = {"$_BUF_": 1, "$_NOT_": 2, "$_NAND_": 4, "$_NOR_": 4, "$_AND_": 6, "$_OR_": 6, "$_ANDNOT_": 6,
               "$_ORNOT_": 6, "$_AOI3_": 6, "$_OAI3_": 6, "$_AOI4_": 8, "$_OAI4_": 8, "$_NMUX_": 10,
               "$_MUX_": 12, "$_XOR_": 12, "$_XNOR_": 12, "$_DFF_P_": 16}
NAND2_UM2, DFF_UM2 = 0.798, 4.522
SRAM_UM2_PER_BIT = 0.346 * 2.0


def ge(cell: str) -> float:
    return DFF_UM2 / NAND2_UM2 if cell == "$_DFF_P_" else TRANSISTORS[cell] / 4


CFG = MacArrayConfig(rows=2, cols=2)


@pytest.fixture(scope="module")
def report():
    return synth(CFG)


@pytest.fixture(scope="module")
def binary_report():
    return synth(MacArrayConfig(rows=2, cols=2, weight_format="binary"))


@pytest.fixture(scope="module")
def requant_cmp():
    return compare_requantizers(CFG)


# ------------------------------------------------------------------------------------------ MAC array
def test_rows_per_module_with_instance_counts(report):
    kinds = {r.kind for r in report.rows}
    assert kinds == {"top", "array", "pe", "requant"}
    by_kind = {k: [r for r in report.rows if r.kind == k] for k in kinds}
    assert [r.instances for r in by_kind["top"]] == [1]
    assert [r.module for r in by_kind["top"]] == [CFG.top_name]
    assert [(r.module, r.instances) for r in by_kind["array"]] == [("array", 1)]
    assert [(r.module, r.instances) for r in by_kind["requant"]] == [("requant", 1)]
    pes = by_kind["pe"]
    assert sum(r.instances for r in pes) == CFG.rows * CFG.cols == 4
    # Every emitted PE module is covered exactly once; each row stands for `instances` identical modules.
    covered = [m for r in pes for m in r.members]
    assert sorted(covered) == [f"array.pe_{r}_{c}" for r in range(2) for c in range(2)]
    assert all(len(r.members) == r.instances for r in pes)
    # PE registers: activation + valid hop (not in the last column, where Amaranth drops them), weight, psum,
    # and the multiplier's pipeline registers (timing closure): its operand (the same bits as the activation
    # hop, which Yosys merges with it where the hop exists), its gate bit and its product.
    # With idle-lane gating (the default, clock) the operand register loads only for a real MAC, so it no
    # longer merges with the activation hop: act_bits more flip-flops where the hop exists.
    full = CFG.act_bits + 1 + CFG.weight_bits + CFG.acc_bits
    mult = 1 + CFG.product_bits
    assert sorted(r.flops for r in pes) == [full - CFG.act_bits - 1 + CFG.act_bits + mult,
                                            full + mult + CFG.act_bits]
    assert all(r.cells > 0 and r.nand2_eq > 0 and r.transistors > 0 for r in report.rows)


def test_rows_are_priced_from_the_tables(report):
    for r in report.rows:
        assert r.cells == sum(r.cell_types.values())
        assert r.flops == r.cell_types.get("$_DFF_P_", 0)
        assert r.transistors == sum(n * TRANSISTORS[c] for c, n in r.cell_types.items())
        assert r.nand2_eq == pytest.approx(sum(n * ge(c) for c, n in r.cell_types.items()), rel=1e-12)
        assert r.area_um2 == pytest.approx(r.nand2_eq * NAND2_UM2, rel=1e-12)
    assert report.node_nm == 45 and report.nand2_area_um2 == NAND2_UM2


def test_totals_are_rows_times_instances(report):
    rows = report.rows
    assert report.total_cells == sum(r.cells * r.instances for r in rows)
    assert report.total_flops == sum(r.flops * r.instances for r in rows)
    assert report.total_transistors == sum(r.transistors * r.instances for r in rows)
    assert report.total_nand2_eq == pytest.approx(sum(r.nand2_eq * r.instances for r in rows), rel=1e-12)
    assert report.logic_area_um2 == pytest.approx(sum(r.area_um2 * r.instances for r in rows), rel=1e-12)
    assert report.logic_area_um2 == pytest.approx(report.total_nand2_eq * NAND2_UM2, rel=1e-12)
    # Yosys's own hierarchical `stat -tech cmos` estimate of the top (memories not counted) agrees.
    assert report.yosys_transistors == report.total_transistors


def test_memories_excluded_from_logic_and_listed(report):
    for r in report.rows:
        assert not any(c.startswith("$mem") for c in r.cell_types)
        assert all(c in TRANSISTORS for c in r.cell_types)
    mems = {m.name: m for m in report.memories}
    expected = {  # name: (width, depth); with idle-lane gating (default) the output buffer is one memory per lane
        "wbuf": (CFG.cols * CFG.weight_bits, 2 * CFG.rows),
        "abuf": (CFG.rows * CFG.act_bits, 2 * CFG.m_tile),
        **{f"obuf{c}": (CFG.acc_bits, CFG.m_tile) for c in range(CFG.cols)},
    }
    assert set(mems) == set(expected)
    for name, (width, depth) in expected.items():
        m = mems[name]
        assert (m.width, m.depth, m.instances, m.module) == (width, depth, 1, CFG.top_name)
        assert m.bits == width * depth
        assert m.area_um2 == pytest.approx(m.bits * SRAM_UM2_PER_BIT, rel=1e-12)
    assert mems["wbuf"].bits == 2 * 2 * 2 * 8
    assert report.memory_bits == sum(w * d for w, d in expected.values())
    assert report.memory_area_um2 == pytest.approx(report.memory_bits * SRAM_UM2_PER_BIT, rel=1e-12)
    assert report.total_area_um2 == pytest.approx(report.logic_area_um2 + report.memory_area_um2, rel=1e-12)


def test_analytic_estimate_side_by_side(report):
    assert report.analytic == CostModel().area(CFG)
    comp = {c: (s, a) for c, s, a in report.comparison}
    assert comp["total"][0] == pytest.approx(report.total_area_um2)
    # the global buffer sits beside the top (the memory system's, not in the RTL): listed, not in the total
    assert comp["total"][1] == pytest.approx(report.analytic.total_um2 - report.analytic.global_buffer)
    assert comp["global buffer (beside the top)"] == (None, pytest.approx(report.analytic.global_buffer))
    assert comp["on-chip memories"][0] == pytest.approx(report.memory_area_um2)
    pe_um2 = sum(r.area_um2 * r.instances for r in report.rows if r.kind == "pe")
    assert comp["PEs (MAC + pipeline registers)"] == pytest.approx(
        (pe_um2, report.analytic.pe_mac + report.analytic.pe_weight_reg + report.analytic.pe_pipeline_reg))
    assert comp["requantizers"][1] == pytest.approx(report.analytic.requant)
    assert comp["on-chip memories"][1] == pytest.approx(
        report.analytic.input_sram + report.analytic.weight_sram + report.analytic.output_sram)
    assert comp["array skew/deskew registers"][1] is None
    # a dense array's blocks synthesized alone: its PE and the same PE without idle-lane gating (issue 27)
    assert [p.label for p in report.probes] == ["ungated PE", "clock-gated PE"]
    assert report_of_ungated_has_no_probes()


def report_of_ungated_has_no_probes() -> bool:
    from hwsim.mac_array import synth_groups
    from hwsim.synth import SynthProbe

    return not any(isinstance(g, SynthProbe) for g in synth_groups(CFG.replace(gating="none")))


SPARSE_CFG = MacArrayConfig(rows=2, cols=2, sparsity="2:4", skip_zero_tiles=True)


@pytest.fixture(scope="module")
def sparse_report():
    return synth(SPARSE_CFG)


def test_sparse_pe_rows_and_probes(sparse_report):
    """2:4 PE: the PE modules against the PE components incl. index register and activation mux; one dense
    and one 2:4 PE synthesized alone, their difference attributed to flip-flops and the mux."""
    rep = sparse_report
    a = rep.analytic
    comp = {c: (s, an) for c, s, an in rep.comparison}
    pe_um2 = sum(r.area_um2 * r.instances for r in rep.rows if r.kind == "pe")
    mux_um2 = 3 * 8 * 3 * NAND2_UM2  # 4:1 mux of 8 bits: 3 MUX2 per bit, 3 GE each = 57.456 um^2
    # Analytic per PE: int8 MAC (Horowitz 8x8 multiplier + 32-bit adder), registers weight 8 + index 2 +
    # 4 activations + psum (4 x 8 + 32), the mux.
    # Clock gating (default): two clock-gating cells of 5 GE (operand registers, pipeline registers).
    pe_analytic = 282.0 + 137.0 + (8 + 2 + 4 * 8 + 32) * DFF_UM2 + mux_um2 + 2 * 5 * NAND2_UM2
    assert comp["PEs (MAC, registers, index reg, act mux)"] == pytest.approx((pe_um2, 4 * pe_analytic))
    assert a.pe_act_mux == pytest.approx(4 * mux_um2)
    # The bitmap is beside the top: listed with its analytic area, outside the memories and the total.
    blocks = math.ceil(65536 * 8 / (2 * 2 * 10))  # weight SRAM bits / (2 kept rows x 2 cols x (8 + 2) bits)
    bitmap_bytes = math.ceil(blocks / 8)
    assert (blocks, bitmap_bytes) == (13108, 1639)
    assert comp["zero-tile bitmap (beside the top)"] == (None, pytest.approx(bitmap_bytes * 8 * SRAM_UM2_PER_BIT))
    assert comp["on-chip memories"][1] == pytest.approx(3 * 65536 * 8 * SRAM_UM2_PER_BIT)
    assert comp["total"][1] == pytest.approx(a.total_um2 - a.tile_bitmap - a.global_buffer)
    assert comp["logic subtotal"][1] == pytest.approx(a.total_um2 - a.tile_bitmap - a.global_buffer
                                                      - comp["on-chip memories"][1])
    probes = {p.label: p for p in rep.probes}
    dense, nm = probes["dense PE"], probes["2:4 PE"]
    assert nm.baseline == "dense PE"
    # Flip-flops: dense 8 act + 1 valid + 8 weight + 32 psum, + the multiplier's gate bit and 16-bit product
    # register (its operand register is the activation hop's bits, merged); 2:4 adds the index (2) and 3 more
    # activations.
    # With operand isolation (clock gating, the default) the multiplier's operand register loads only for a
    # real MAC and no longer merges with the activation hop: 8 more (dense) and 4 x 8 more (2:4) flip-flops.
    assert (dense.flops, nm.flops) == (49 + 17 + 8, 49 + 17 + 2 + 3 * 8 + 4 * 8)
    assert nm.flop_um2 - dense.flop_um2 == pytest.approx((26 + 24) * DFF_UM2)
    icg = 5 * NAND2_UM2  # a clock-gating cell on the operand registers (in the MAC) and on the pipeline's
    assert (dense.analytic_reg_um2, dense.analytic_logic_um2) == pytest.approx(((8 + 8 + 32) * DFF_UM2 + icg,
                                                                                419.0 + icg))
    assert (nm.analytic_reg_um2, nm.analytic_logic_um2) == pytest.approx(((8 + 2 + 4 * 8 + 32) * DFF_UM2 + icg,
                                                                          419.0 + mux_um2 + icg))
    assert nm.area_um2 == pytest.approx(nm.nand2_eq * NAND2_UM2)
    text = format_synth_report(rep)
    assert "not in the RTL" in text and "2:4 PE - dense PE" in text
    d = json.loads(json.dumps(rep.as_dict()))
    assert [p["label"] for p in d["probes"]] == ["dense PE", "2:4 PE"]


@pytest.mark.xfail(strict=True, reason="since the multiplier's pipeline registers (timing closure, 83af32c) the "
                   "2:4 PE's synthesized logic exceeds the dense PE's by ~1.66x the analytic M:1 mux (95 vs 57 um^2: "
                   "about one more 16-bit MUX2 row, the product register's gate, that the dense PE absorbs); the "
                   "analytic N:M overhead does not model it yet (issue 24)")
def test_sparse_pe_logic_difference_is_the_mux(sparse_report):
    """The synthesized non-flip-flop difference of a 2:4 PE over a dense one is the M:1 activation mux (and
    the index register's load enable): within 25 % of the (M - 1) x bits MUX2 tree."""
    probes = {p.label: p for p in sparse_report.probes}
    dense, nm = probes["dense PE"], probes["2:4 PE"]
    mux_um2 = 3 * 8 * 3 * NAND2_UM2
    assert 0.8 * mux_um2 < nm.logic_um2 - dense.logic_um2 < 1.25 * mux_um2


def test_binary_pe_is_smaller_than_int8_pe(report, binary_report):
    int8 = [r.nand2_eq for r in report.rows if r.kind == "pe"]
    binary = [r.nand2_eq for r in binary_report.rows if r.kind == "pe"]
    assert sum(r.instances for r in binary_report.rows if r.kind == "pe") == 4
    assert max(binary) < min(int8)
    mems = {m.name: m.bits for m in binary_report.memories}
    assert mems["wbuf"] == 2 * 2 * 2 * 1 and mems["abuf"] == 2 * binary_report.config.m_tile * 2 * 1


def test_format_and_as_dict(report):
    text = format_synth_report(report)
    for needle in (CFG.top_name, "array.pe_0_0", "requant", "wbuf", "abuf", "obuf", "analytic", "NAND2-eq",
                   "45 nm"):
        assert needle in text
    d = json.loads(json.dumps(report.as_dict()))
    assert d["totals"]["cells"] == report.total_cells
    assert [r["module"] for r in d["rows"]] == [r.module for r in report.rows]
    assert sum(m["bits"] for m in d["memories"]) == report.memory_bits


def _raises_hwsim_error(fn, *args, **kwargs):
    """``fn`` raises HwsimError; a component whose constructor raised is dropped without Amaranth's
    unused-elaboratable warning (it was never meant to be elaborated)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(HwsimError) as excinfo:
            fn(*args, **kwargs)
        del excinfo
        gc.collect()


def test_rejects_what_is_not_a_family_config():
    _raises_hwsim_error(synth, {"rows": 2})


# ---------------------------------------------------------------------------------------- requantizers
def test_multiplier_requantizer_is_larger(requant_cmp):
    s, m = requant_cmp.shift, requant_cmp.mult
    assert m.nand2_eq > s.nand2_eq and m.transistors > s.transistors and m.cells > s.cells
    assert requant_cmp.area_ratio == pytest.approx(m.nand2_eq / s.nand2_eq)
    assert requant_cmp.area_ratio > 1
    assert s.area_um2 == pytest.approx(s.nand2_eq * NAND2_UM2)
    # Energies are cost-model prices: shift = requant(acc, out); mult = 32x16 multiply + requant at 48 bits.
    model = CostModel()
    assert s.energy_pj == pytest.approx(model.requant_energy_pj(32, 8))
    assert m.energy_pj == pytest.approx(model.mult_energy_pj(32, 16) + model.requant_energy_pj(48, 8))
    assert requant_cmp.energy_ratio == pytest.approx(m.energy_pj / s.energy_pj)
    assert (requant_cmp.published_area_ratio, requant_cmp.published_energy_ratio) == (15.0, 9.0)
    text = format_requant_comparison(requant_cmp)
    assert "measured here" in text and "published (Geng et al. 2019)" in text
    json.dumps(requant_cmp.as_dict())


def _reference(acc, scale, shift, relu, cfg):
    p = acc * scale
    if relu and p < 0:
        p = 0
    if shift == 0:
        y = p
    elif cfg.rounding == "half_up":
        y = (p + (1 << (shift - 1))) >> shift
    else:
        q, rem, half = p >> shift, p & ((1 << shift) - 1), 1 << (shift - 1)
        y = q + (rem > half or (rem == half and q & 1))
    hi, lo = (1 << (cfg.act_bits - 1)) - 1, -(1 << (cfg.act_bits - 1))
    return min(max(y, lo), hi)


@pytest.mark.parametrize("rounding", ["half_up", "half_even"])
def test_multiplier_requantizer_matches_reference(rounding):
    cfg = MacArrayConfig(rows=2, cols=2, rounding=rounding)
    dut = MultRequantizer(cfg, 2)
    rng = random.Random(7)
    n = cfg.acc_bits + 16
    vectors = [(0, 0, 0, 0, 0), (-(1 << 31), -(1 << 15), n - 1, 0, 0), ((1 << 31) - 1, (1 << 15) - 1, 40, 0, 0)]
    for _ in range(150):
        acc = [rng.choice([rng.randint(-(1 << 31), (1 << 31) - 1), rng.randint(-5000, 5000)]) for _ in range(2)]
        vectors.append((acc[0], acc[1], rng.randint(-(1 << 15), (1 << 15) - 1), rng.randint(0, n - 1),
                        rng.randint(0, 1)))
    # Exact ties (x.5 after the shift) exercise both rounding modes.
    vectors += [(5, -5, 1, 1, 0), (3, -3, 1, 1, 0), (6, 10, 1, 2, 0), (-6, -10, 1, 2, 1)]
    mismatches = []

    async def bench(ctx):
        for a0, a1, scale, shift, relu in vectors:
            ctx.set(dut.acc, [a0, a1])
            ctx.set(dut.scale, scale)
            ctx.set(dut.shift, shift)
            ctx.set(dut.relu, relu)
            out = ctx.get(dut.out)
            for lane, acc in enumerate((a0, a1)):
                got = out[lane] - (1 << cfg.act_bits) * (out[lane] >> (cfg.act_bits - 1))
                want = _reference(acc, scale, shift, relu, cfg)
                if got != want:
                    mismatches.append((acc, scale, shift, relu, got, want))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, mismatches[:5]


def test_multiplier_requantizer_rejects_bad_parameters():
    _raises_hwsim_error(MultRequantizer, CFG, 0)
    _raises_hwsim_error(MultRequantizer, CFG, 1, scale_bits=1)


def test_yosys_failure_is_one_line_with_its_log(monkeypatch, capsys):
    """A failing Yosys run: one line naming the tool, the first error and a log that holds its output."""
    import re
    import sys
    from pathlib import Path

    from hwsim import synth as synth_mod
    from hwsim.cli import main

    script = "print('reading design.v'); print('ERROR: deliberate failure for the test'); raise SystemExit(3)"
    monkeypatch.setattr(synth_mod, "_yosys_argv", lambda: [sys.executable, "-c", script])
    assert main(["synth", "mac-array", "--rows", "1", "--cols", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    m = re.match(r"^hwsim: error: Yosys failed on mac_array_ws_int8_1x2 \(exit code 3\): ERROR: deliberate failure "
                 r"for the test \(log: (.+)\)$", err)
    assert m, err
    assert "reading design.v" in Path(m.group(1)).read_text()


def test_gating_logic_area_is_shown(report):
    """Issue 27: the clock-gated PE and the same PE ungated, each synthesized alone; their difference is the
    gating logic. Flip-flops: the operand register (8 bits) no longer merges with the activation hop;
    analytic: two clock-gating cells of 5 GE (operand registers in pe_mac, pipeline registers)."""
    probes = {p.label: p for p in report.probes}
    plain, gated = probes["ungated PE"], probes["clock-gated PE"]
    assert gated.baseline == "ungated PE"
    assert gated.flops - plain.flops == CFG.act_bits
    icg = 5 * NAND2_UM2
    assert gated.analytic_reg_um2 - plain.analytic_reg_um2 == pytest.approx(icg)
    assert gated.analytic_logic_um2 - plain.analytic_logic_um2 == pytest.approx(icg)
    assert gated.area_um2 > plain.area_um2  # the enables cost gates in the generic library
    assert "clock-gated PE - ungated PE" in format_synth_report(report)
