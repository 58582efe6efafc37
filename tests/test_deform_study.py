"""hwsim study codenet-variants: equal-area selection against an independent area computation, ratio curves
against hand-computed counts and a naive miss count, the variant table against the cycle model, and the same
printed numbers on any thread count."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hwsim.models import deform_unit as ref

from hwsim.cost import CostModel
from hwsim.deform_unit import DeformLayer, DeformUnitConfig, predict_layer, synthetic_offsets
from hwsim.deform_unit_study import (
    LAYERS,
    PAIRS,
    PUBLISHED,
    SMALL_ROWS,
    UNIT,
    Design,
    buffer_area_mm2,
    interval,
    mac_cycles,
    run,
    select_equal_area,
    sweep_cycles,
)
from hwsim.errors import HwsimError
from hwsim.families import find_study
from hwsim.mac_array import predict_gemm

FULL, FULL_SQ = PAIRS["full"]
DW, DW_SQ = PAIRS["depthwise"]


def _buffer_mm2_by_hand(rows: int) -> float:
    """Line buffer (rows x 64 px x 256 ch x 8 bit) + offset buffer (two rows of 64 px x 27 16-bit words), at
    Mistry 2007's 0.346 um^2 6T cell x 2.0 array overhead (45 nm)."""
    m = CostModel()
    per_bit = m.entry("sram.bitcell.area").value * m.entry("sram.array_overhead").value
    assert per_bit == pytest.approx(0.692)
    line = rows * 64 * 256 * 8
    offsets = 2 * 64 * (2 * 9 + 9) * 16
    return (line + offsets) * per_bit * 1e-6


@pytest.fixture(scope="module")
def quick():
    return run(quick=True)


def test_equal_area_selection_against_independent_area():
    layers = (("p7", 16, 7), ("p5", 32, 5))
    heights = [4, 5, 7, 11, 13]
    co = sweep_cycles(DW_SQ, layers, {"line_buffer_rows": heights}, 2, offset_std=3.0)
    orig = sweep_cycles(DW, layers, {"line_buffer_rows": heights}, 2, offset_std=3.0)
    for rep in co + orig:
        for p in rep:
            assert buffer_area_mm2(p) == pytest.approx(_buffer_mm2_by_hand(p["line_buffer_rows"]), rel=1e-12)
    sel = select_equal_area(co, orig)
    # by brute force from the cycles and the hand areas: co-designed fastest (mean over draws), then the
    # original's fastest among heights whose hand area is within that budget
    mean = {name: {h: np.mean([rep[i]["cycles"] for rep in reps]) for i, h in enumerate(heights)}
            for name, reps in (("co", co), ("orig", orig))}
    r_co = min(heights, key=lambda h: (mean["co"][h], h))
    budget = _buffer_mm2_by_hand(r_co)
    r_orig = min((h for h in heights if _buffer_mm2_by_hand(h) <= budget * (1 + 1e-12)),
                 key=lambda h: (mean["orig"][h], h))
    assert (sel["co_rows"], sel["orig_rows"]) == (r_co, r_orig)
    assert sel["budget_mm2"] == pytest.approx(budget, rel=1e-12)
    assert sel["orig_area_mm2"] <= sel["budget_mm2"] * (1 + 1e-12)


def test_study_selection_is_equal_area(quick):
    assert set(quick.selection) == {"full", "depthwise"}
    curve = {r["rows"]: r for r in quick.rows_curve}
    for s in quick.selection.values():
        assert s["co_area_mm2"] == pytest.approx(_buffer_mm2_by_hand(s["co_rows"]), rel=1e-12)
        assert _buffer_mm2_by_hand(s["orig_rows"]) <= s["co_area_mm2"] * (1 + 1e-12)
        assert curve[s["co_rows"]]["buffer_mm2"] == pytest.approx(s["co_area_mm2"], rel=1e-12)


@pytest.mark.parametrize("c", [1, 16])
@pytest.mark.parametrize("w", [1, 7, 11])
def test_one_row_layers_flat_curve_hand_counts(c, w):
    """A 1-row image: every in-image neighbour is in row 0, always inside the window, so no misses at any
    height or latency; per output row 9 w items of 1 cycle + 1, the row fill (w cycles at 16 B/cycle) before,
    the drain (2) after: 10 w + 3 cycles, for free and square offsets, full and depthwise alike."""
    for d in (FULL, FULL_SQ, DW, DW_SQ):
        for rep in _strip_cycles(d, c, w):
            assert [p["cycles"] for p in rep] == [10 * w + 3] * 6


def _strip_cycles(d: Design, c: int, w: int):
    """The sampler + MAC cycles of a 1 x w layer through the sweep machinery (the study's layers are square,
    so the strip is a workload row of its own)."""
    from hwsim.sweep import evaluate_task, parse_spec

    out = []
    for seed in (0, 1):
        row = {"name": "strip", "kind": "deform_conv2d", "c": c, "h": 1, "w": w, "c_out": c,
               "depthwise": d.depthwise, "offset_std": 3.0, "seed": seed}
        spec = parse_spec({"family": "deform-unit", "workload": {"layers": [row]},
                           "base": {**UNIT, "offset_mode": d.offset_mode, "offset_bound": d.offset_bound,
                                    "offset_array": False},
                           "axes": {"line_buffer_rows": [4, 5, 32], "miss_cycles": [1, 200]}, "plots": False})
        recs = evaluate_task({"family": "deform-unit", "workload": spec.workload, "values": False, "node": 45,
                              "dram": "lpddr4", "points": [(p.key, p.config, None) for p in spec.points]})
        assert all(r["status"] == "ok" for r in recs)
        out.append([r["metrics"] for r in recs])
    return out


def _naive_misses(d: Design, c: int, h: int, w: int, rows: int, seed: int, std: float) -> int:
    """Misses of a stride-1, padding-1 3x3 layer by a direct loop: every in-image bilinear neighbour whose row
    is outside the window [y - (rows - 1) // 2, + rows) of output row y, once per channel block of 16."""
    cfg = DeformUnitConfig(**UNIT, offset_mode=d.offset_mode, offset_bound=d.offset_bound)
    layer = DeformLayer("l", c, h, w, c, depthwise=d.depthwise, offset_std=std, seed=seed)
    off = ref.variant_offsets(cfg.variant(d.depthwise), synthetic_offsets(cfg, layer), 3, 3, 1,
                              frac_bits=cfg.frac_bits)
    f = cfg.frac_bits
    n = 0
    for y in range(h):
        top = y - (rows - 1) // 2
        for x in range(w):
            for t in range(9):
                i, j = divmod(t, 3)
                y0 = (((y - 1 + i) << f) + int(off[2 * t, y, x])) >> f
                x0 = (((x - 1 + j) << f) + int(off[2 * t + 1, y, x])) >> f
                for yy in (y0, y0 + 1):
                    for xx in (x0, x0 + 1):
                        if 0 <= yy < h and 0 <= xx < w and not top <= yy < top + rows:
                            n += 1
    return n * -(-c // 16)


def test_miss_latency_slope_and_limit_match_naive_miss_count():
    """Depthwise (1 MAC cycle per item, every item at least 1 sampler cycle): each miss adds its latency to
    the critical path, so cycles(m2) - cycles(m1) = (m2 - m1) x misses (counted by the direct loop); the
    original's misses never grow with the height (nested windows), and at a huge latency the speedup tends
    to the ratio of the miss counts."""
    c, h, w, std = 16, 7, 5, 3.0  # primes
    heights, lat = [4, 5, 6, 7, 9], [1, 1000]
    layers = (("p", c, h),)
    assert w != h
    naive = {}
    for d in (DW, DW_SQ):
        reps = sweep_cycles(d, layers, {"line_buffer_rows": heights, "miss_cycles": lat}, 1, offset_std=std)
        pts = {(p["line_buffer_rows"], p["miss_cycles"]): p["cycles"] for p in reps[0]}
        for r in heights:
            naive[d.name, r] = _naive_misses(d, c, h, h, r, 0, std)
            assert pts[r, lat[1]] - pts[r, lat[0]] == (lat[1] - lat[0]) * naive[d.name, r]
        naive[d.name, "cycles"] = pts
    orig = [naive[DW.name, r] for r in heights]
    assert orig == sorted(orig, reverse=True) and orig[0] > 0
    r = 4
    assert naive[DW_SQ.name, r] > 0
    big = naive[DW.name, "cycles"][r, lat[1]] / naive[DW_SQ.name, "cycles"][r, lat[1]]
    assert big == pytest.approx(naive[DW.name, r] / naive[DW_SQ.name, r], rel=0.02)


def test_layer_level_adds_the_offset_conv_of_the_cycle_model():
    """sampler + MAC (the sweep, offset_array false) + offset conv (mac-array family) = predict_layer with its
    own offset conv; the pointwise conv is predict_gemm(h*h, c, c)."""
    layers = (("p", 16, 7), ("q", 32, 5))
    for d in (FULL, FULL_SQ, DW, DW_SQ):
        unit = sweep_cycles(d, layers, {"line_buffer_rows": [6]}, 1)[0][0]["cycles"]
        mc = mac_cycles(d, layers)
        cfg = DeformUnitConfig(**UNIT, offset_mode=d.offset_mode, offset_bound=d.offset_bound, line_buffer_rows=6)
        want = sum(predict_layer(cfg, DeformLayer(n, c, hh, hh, c, depthwise=d.depthwise, seed=i)).cycles
                   for i, (n, c, hh) in enumerate(layers))
        assert unit + mc["offset"] == want
        pw = sum(predict_gemm(cfg.mac_array(), hh * hh, c, c).cycles for _, c, hh in layers)
        assert mc["pointwise"] == (pw if d.depthwise else 0)


def test_interval_student_t():
    m, lo, hi = interval([1.0, 2.0, 3.0])
    # mean 2, s = 1, t(0.975, 2) = 4.302653
    assert m == 2.0 and hi - m == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-6) and m - lo == pytest.approx(hi - m)
    assert interval([5.0]) == (5.0, 5.0, 5.0)


def test_study_quick_headline_and_table(quick):
    res = quick
    h = res.headline
    # at equal area the sampler + MAC stage hardly differs; the square shape's single offset channel does
    for kind in ("full", "depthwise"):
        assert h[kind]["unit"]["mean"] == pytest.approx(1.0, abs=0.02)
        assert h[kind]["layer"]["lo"] > 1.0
    assert h["depthwise"]["layer"]["mean"] > h["full"]["layer"]["mean"]
    # the previous study's unequal setup (original with 4 rows) is far larger: the area, not the variant
    assert res.unequal["depthwise"]["unit"]["mean"] > 10 * h["depthwise"]["unit"]["mean"]
    by = {r["variant"]: r for r in res.rows}
    rows = res.selection["depthwise"]["co_rows"]
    cfg = DeformUnitConfig(**UNIT, offset_mode="square", offset_bound=8.0, line_buffer_rows=rows)
    want = 0
    for i, (name, c, hh) in enumerate(LAYERS):
        want += predict_layer(cfg, DeformLayer(name, c, hh, hh, c, depthwise=True, offset_std=2.0, seed=i)).cycles
        want += predict_gemm(cfg.mac_array(), hh * hh, c, c).cycles
    assert by["square_depthwise"]["cycles"] == want
    assert by["square_depthwise"]["misses"] == 0 and by["depthwise"]["line_buffer_rows"] == rows
    text = res.format()
    assert "direction agrees with CoDeNet" in text and "x9.76" in text and "x1.36" in text
    assert f"original with {SMALL_ROWS} rows" in text
    assert [r["rows"] for r in res.rows_curve][0] == 4
    assert set(res.as_dict()) >= {"rows", "headline", "selection", "rows_curve", "miss_curve", "published"}
    assert res.speedups["depthwise"]["published"] == PUBLISHED["depthwise"]


def test_study_writes_plot_and_table(tmp_path):
    res = run(out_dir=tmp_path, rows=(4, 18), miss=(20,), replicas=2, layers=(("p", 16, 7),))
    assert res.plot == str(tmp_path / "codenet_variants.png") and (tmp_path / "codenet_variants.png").stat().st_size
    lines = (tmp_path / "codenet_variants_curves.csv").read_text().splitlines()
    assert lines[0].startswith("curve,x,kind,level") and len(lines) == 1 + 2 * 2 * 3 + 1 * 2 * 3


def test_bad_rows_and_replicas():
    with pytest.raises(HwsimError, match=r"^rows=\(8, 16\) is not allowed: expected line-buffer heights including 4$"):
        run(rows=(8, 16))
    with pytest.raises(HwsimError, match=r"^replicas=0 is not allowed: expected an integer >= 1$"):
        run(replicas=0)


def test_printed_numbers_identical_across_thread_counts():
    outs = []
    for threads in ("1", None):
        env = {k: v for k, v in os.environ.items()
               if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        if threads:
            env["OMP_NUM_THREADS"] = threads
        p = subprocess.run([sys.executable, "-m", "hwsim.cli", "study", "codenet-variants", "--quick"], env=env,
                           capture_output=True, text=True, timeout=120, check=True)
        outs.append(p.stdout)
    assert outs[0] == outs[1] and "CoDeNet" in outs[0]


def test_study_registered():
    fam, fn, desc = find_study("codenet-variants")
    assert fam.name == "deform-unit" and "CoDeNet" in desc
