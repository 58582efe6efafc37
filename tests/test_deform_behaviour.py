"""One behaviour suite, every level of the deformable unit: reference, cycle model, Amaranth RTL, Verilator.

The same depthwise layers (bounded free offsets and square dilations; 1xN, Nx1 and prime-sized maps; offsets
at the bound, on integer positions and outside the image) run on every backend. Outputs must equal the
integer per-pixel loop of ``test_deform_reference`` (written from the spec); every backend with time must
take the cycles of the scalar item-by-item simulation of ``test_deform_unit``. The Verilator backend is one
regression run of all cases (plus the randomized regression's layers: depthwise, and full 5 -> 17 layers with
bias, two channel blocks and two output groups) on one small build (4 lanes x 16 out lanes): the only Verilator
build of the deform-unit tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from hwsim.cosim.deform_unit_regression import random_layers, run_regression
from hwsim.cosim.deform_unit_tb import layer_config
from hwsim.models import deform_unit as du
from test_deform_reference import loop_fixed
from test_deform_rtl import run_rtl
from test_deform_unit import simulate_items

from hwsim.deform_unit import DeformLayer, DeformUnitConfig, execute_layer

CFG = DeformUnitConfig(lanes=4, dram_bytes_per_cycle=4.0, max_width=16)  # bounded (8 px), a small build


def _case(name, h, w, square, seed):
    rng = np.random.default_rng(seed)
    one, bq = 1 << CFG.frac_bits, int(CFG.offset_bound * (1 << CFG.frac_bits))
    x = rng.integers(-128, 128, size=(CFG.lanes, h, w))
    wt = rng.integers(-128, 128, size=(CFG.lanes, 1, 3, 3))
    if square:
        raw = rng.integers(-one, bq + 2 * one, size=(1, h, w))
        raw[0, 0, 0] = bq
    else:
        raw = rng.integers(-bq - 3 * one, bq + 3 * one, size=(18, h, w))
        raw[:, 0, -1] = bq
        raw[:, -1, 0] = (raw[:, -1, 0] // one) * one
    return {"name": name, "x": x, "a": raw, "w": wt, "shift": 3, "relu": seed % 2 == 1, "square": square,
            "shape": f"{CFG.lanes}x{h}x{w}"}


CASES = [_case("row1x5", 1, 5, False, 1), _case("sq3x2", 3, 2, True, 2), _case("col5x1", 5, 1, False, 3),
         _case("sq3x3", 3, 3, True, 4)]
BACKENDS = ("reference", "cycle_model", "amaranth", "verilator")


def expected(case):
    cfg = layer_config(CFG, case["square"])
    off = du.variant_offsets(cfg.variant(True), case["a"], 3, 3, frac_bits=cfg.frac_bits)
    c, h, w = case["x"].shape
    values = loop_fixed(case["x"], off, case["w"], cfg.frac_bits, case["shift"], 1, 1, 1, c, cfg.acc_bits,
                        cfg.overflow, cfg.rounding, relu=case["relu"])
    cycles = simulate_items(cfg, DeformLayer("l", c, h, w, c, depthwise=True), off)[0]
    return values, cycles


@pytest.fixture(scope="module")
def verilator_report():
    full = random_layers(CFG, seed=2, count=3, max_side=7, channels=CFG.lanes + 1, c_out=CFG.out_lanes + 1, bias=True)
    return run_regression(CFG, layers=[dict(c) for c in CASES] + random_layers(CFG, seed=1, count=4)
                          + [dict(lay, name=f"full{i}") for i, lay in enumerate(full)])


def test_randomized_regression_passes(verilator_report):
    assert verilator_report.passed and len(verilator_report.layers) == len(CASES) + 7
    assert all(not r["count_diffs"] and r["rtl_stalls"] == r["predicted_stalls"] for r in verilator_report.layers)


def test_full_layers_in_verilator_count_by_hand(verilator_report):
    """The full 5 -> 17 layers (4 lanes x 16 out lanes: two channel blocks, the second with 3 idle lanes; two
    output groups, the second with 15 idle outputs) under Verilator: values, cycles and counters equal the
    model's (the regression's own checks), and the MAC and requantizer counters a hand count."""
    rows = [r for r in verilator_report.layers if r["name"].startswith("full")]
    assert len(rows) == 3
    for r in rows:
        assert r["mismatches"] == 0 and r["rtl_cycles"] == r["predicted_cycles"] and not r["count_diffs"], r
        h, w = (int(v) for v in r["shape"].split()[0].split("x")[1:])
        a = r["actions"]
        items = h * w * 9 * 2  # 2 channel blocks
        assert a["sampler.sample"] == items and a["mac.mac"] == h * w * 9 * 5 * 17
        assert a["mac.idle"] == items * 4 * 16 * 2 - a["mac.mac"]
        assert a["requant.convert"] == h * w * 17  # clock gating: the real outputs only


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_behaviour(backend, case, request):
    values, cycles = expected(case)
    cfg = layer_config(CFG, case["square"])
    c = case["x"].shape[0]
    if backend == "reference":
        off = du.variant_offsets(cfg.variant(True), case["a"], 3, 3, frac_bits=cfg.frac_bits)
        got = du.deform_conv2d_fixed(case["x"], off, case["w"], frac_bits=cfg.frac_bits, shift=case["shift"],
                                     padding=1, groups=c, relu=case["relu"])
        got_cycles = cycles
    elif backend == "cycle_model":
        got, st = execute_layer(cfg, case["x"], case["a"], case["w"], case["shift"], relu=case["relu"])
        got_cycles = st.detail["unit_cycles"]
    elif backend == "amaranth":
        r = run_rtl(CFG, case["x"], case["a"] if not case["square"] else
                    np.concatenate([case["a"], np.zeros((17,) + case["a"].shape[1:], np.int64)]),
                    case["w"], case["shift"], relu=case["relu"], square=case["square"])
        got, got_cycles = r["outs"], r["cycles"]
    else:
        rep = request.getfixturevalue("verilator_report")
        row = next(r for r in rep.layers if r["name"] == case["name"])
        assert row["mismatches"] == 0 and not row["count_diffs"]
        got, got_cycles = values, row["rtl_cycles"]
    np.testing.assert_array_equal(got, values)
    assert got_cycles == cycles
