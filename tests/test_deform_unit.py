"""deform-unit cycle model, config and inventory: hand counts, a scalar item-by-item simulation, errors."""

import math
import subprocess
import sys

import numpy as np
import pytest
from hwsim.models import deform_unit as du
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.cost import CostModel
from hwsim.deform_unit import DeformLayer, DeformUnitConfig, execute_layer, inventory, predict_layer, synthetic_offsets
from hwsim.errors import HwsimError
from hwsim.families import get_family


def test_hand_count_1x5_kernel1_one_bank():
    # kernel 1, zero offsets: item x reads (0, x) and (0, x+1) (row 1 is outside the 1-row image);
    # one bank: a = 2 for x < 4, a = 1 for x = 4; b = 1.
    cfg = DeformUnitConfig(kernel=1, lanes=1, out_lanes=1, banks=1, dram_bytes_per_cycle=16.0)
    layer = DeformLayer("l", 1, 1, 5, 1, padding=0)
    s = predict_layer(cfg, layer, np.zeros((2, 1, 5), dtype=np.int64), with_offset_conv=False)
    comp = 2 + (2 + 2 + 2 + 1) + 1  # a_0 + sum max(a_t, b) + b
    fill0 = math.ceil(5 / 16)  # one 5-byte row
    drain = 2
    assert s.detail["unit_cycles"] == fill0 + comp + drain == 13
    assert s.detail["conflict_cycles"] == 4 and s.detail["misses"] == 0 and s.stall_cycles == 1
    assert s.actions.get("line_buffer", "read") == 9 and s.actions.get("sampler", "sample") == 5
    assert s.actions.get("line_buffer", "write") == 5


def test_hand_count_four_banks_are_conflict_free_and_misses_cost_miss_cycles():
    cfg = DeformUnitConfig(kernel=1, lanes=1, banks=4, miss_cycles=7, offset_bound=None)
    layer = DeformLayer("l", 1, 6, 3, 1, padding=0)
    off = np.zeros((2, 6, 3), dtype=np.int64)
    s = predict_layer(cfg, layer, off, with_offset_conv=False)
    assert s.detail["conflict_cycles"] == 0 and s.detail["misses"] == 0
    # output (0, 0) samples 3 rows down: rows 3, 4 are outside its 2-row window [0, 2): 2 misses (x = 0, 1)
    off[0, 0, 0] = 3 << cfg.frac_bits
    s2 = predict_layer(cfg, layer, off, with_offset_conv=False)
    assert s2.detail["misses"] == 4 and s2.detail["miss_stall_cycles"] == 28
    assert s2.detail["unit_cycles"] - s.detail["unit_cycles"] == 28 + 0  # a: 1 -> 1 + 4 * 7 (the hit count is 0: a_hit = 1)
    assert s2.actions.get("dram", "read") - s.actions.get("dram", "read") == 4


def simulate_items(cfg, layer, off_q):
    """Scalar reference of the timing in the module docstring, one item at a time (offsets after the variant)."""
    k, F = cfg.kernel, cfg.frac_bits
    ho = (layer.h + 2 * layer.padding - layer.dilation * (k - 1) - 1) // layer.stride + 1
    wo = (layer.w + 2 * layer.padding - layer.dilation * (k - 1) - 1) // layer.stride + 1
    R = cfg.rows_for(layer.dilation)
    nb = -(-layer.c // cfg.lanes)
    b = 1 if layer.depthwise else -(-layer.c_out // cfg.out_lanes)
    row_bytes = layer.w * nb * cfg.lanes * cfg.act_bits // 8
    loaded = set()
    fills, comps = [], []
    misses = conflicts = reads = 0
    for y in range(ho):
        top = y * layer.stride - layer.padding + (k - 1) // 2 * layer.dilation - (R - 1) // 2
        new = [r for r in range(top, top + R) if 0 <= r < layer.h and r not in loaded]
        loaded.update(new)
        fills.append(math.ceil(len(new) * row_bytes / cfg.dram_bytes_per_cycle))
        a_list = []
        for x in range(wo):
            for t in range(k * k):
                i, j = divmod(t, k)
                qy = ((y * layer.stride - layer.padding + i * layer.dilation) << F) + int(off_q[2 * t, y, x])
                qx = ((x * layer.stride - layer.padding + j * layer.dilation) << F) + int(off_q[2 * t + 1, y, x])
                y0, x0 = qy >> F, qx >> F
                per_bank, miss = {}, 0
                for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
                    if 0 <= yy < layer.h and 0 <= xx < layer.w:
                        if top <= yy < top + R:
                            bk = (xx + 2 * yy) % cfg.banks
                            per_bank[bk] = per_bank.get(bk, 0) + 1
                        else:
                            miss += 1
                hit_cycles = max([1, *per_bank.values()])
                for _ in range(nb):
                    a_list.append(hit_cycles + miss * cfg.miss_cycles)
                    misses += miss
                    conflicts += hit_cycles - 1
                    reads += sum(per_bank.values())
        t = a_list[0]
        for a in a_list[1:]:
            t += max(a, b)
        comps.append(t + b)
    total = fills[0]
    for y in range(ho):
        total += max(comps[y], fills[y + 1] if y + 1 < ho else 0)
    drain = 1 + (1 if layer.depthwise else -(-layer.c_out // cfg.out_lanes))
    return total + drain, misses, conflicts, reads


layers = st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 5), st.booleans(), st.integers(1, 2),
                   st.integers(0, 2), st.integers(0, 2**31 - 1))
configs = st.tuples(st.sampled_from([1, 3]), st.sampled_from([None, 0.0, 1.5, 3.0]), st.sampled_from(["free", "square"]),
                    st.sampled_from([1, 2, 3, 4, 5]), st.sampled_from([1, 2, 4]), st.sampled_from([0, 2, 4]),
                    st.sampled_from([1.0, 3.0, 64.0]))


@settings(max_examples=60, deadline=None)
@given(layers, configs)
def test_vectorized_model_matches_scalar_simulation(lay, conf):
    h, w, c, dw, stride, pad, seed = lay
    k, bound, mode, banks, lanes, F, bw = conf
    if mode == "square" and bound is None:
        bound = 2.0
    if (h + 2 * pad - (k - 1) - 1) < 0 or (w + 2 * pad - (k - 1) - 1) < 0:
        return
    cfg = DeformUnitConfig(kernel=k, offset_mode=mode, offset_bound=bound, banks=banks, lanes=lanes, out_lanes=2,
                           frac_bits=F, dram_bytes_per_cycle=bw, miss_cycles=5)
    layer = DeformLayer("l", c, h, w, c if dw else 3, depthwise=dw, stride=stride, padding=pad, offset_std=2.5,
                        seed=seed)
    raw = synthetic_offsets(cfg, layer)
    s = predict_layer(cfg, layer, raw, with_offset_conv=False)
    off = du.variant_offsets(cfg.variant(dw), raw, k, k, 1, frac_bits=F)
    cycles, misses, conflicts, reads = simulate_items(cfg, layer, off)
    assert (s.detail["unit_cycles"], s.detail["misses"], s.detail["conflict_cycles"], s.actions.get("line_buffer", "read")) == \
        (cycles, misses, conflicts, reads)
    if bound is not None and cfg.line_buffer_rows is None:
        assert s.detail["misses"] == 0  # the derived line buffer holds every bounded sample


def test_bounded_and_square_never_miss_at_the_bound():
    for mode in ("free", "square"):
        cfg = DeformUnitConfig(offset_mode=mode, offset_bound=3.0, frac_bits=3)
        layer = DeformLayer("l", 4, 11, 7, 4, depthwise=True, offset_std=50.0, seed=1)
        s = predict_layer(cfg, layer, with_offset_conv=False)
        assert s.detail["misses"] == 0 and s.detail["line_buffer_rows"] == (10 if mode == "free" else 8)  # 2c + 2B + 2 vs 2cB + 2


def test_offset_conv_runs_on_the_mac_array():
    from hwsim.mac_array import predict_gemm

    cfg = DeformUnitConfig(offset_bound=8.0)
    layer = DeformLayer("l", 8, 9, 13, 8, depthwise=True)
    s = predict_layer(cfg, layer)
    oc = predict_gemm(cfg.mac_array(), 9 * 13, 8 * 9, 18)
    assert s.detail["offset_cycles"] == oc.cycles and s.cycles == oc.cycles + s.detail["unit_cycles"]
    assert s.actions.get("oc_pe_mac", "mac") == oc.actions.get("pe_mac", "mac") == 9 * 13 * 8 * 9 * 18


def test_execute_layer_values_and_stats():
    cfg = DeformUnitConfig(offset_mode="square", offset_bound=2.0, frac_bits=3)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(5, 7, 11))
    wt = rng.integers(-128, 128, size=(5, 1, 3, 3))
    dil = rng.integers(0, 4 << 3, size=(1, 7, 11))
    vals, st_ = execute_layer(cfg, x, dil, wt, shift=4)
    want = du.deform_conv2d_fixed(x, du.variant_offsets(cfg.variant(True), dil, 3, 3, frac_bits=3), wt,
                                  frac_bits=3, shift=4, padding=1, groups=5)
    np.testing.assert_array_equal(vals, want)
    assert st_ == predict_layer(cfg, du_layer(x, wt), dil, with_offset_conv=False)


def du_layer(x, wt):
    return DeformLayer("deform", x.shape[0], x.shape[1], x.shape[2], wt.shape[0], depthwise=True)


def test_inventory_prices_every_action():
    for cfg in (DeformUnitConfig(), DeformUnitConfig(modulation=True, mask_bits=4),
                DeformUnitConfig(offset_mode="square", offset_bound=8.0, weight_format="int4")):
        s = predict_layer(cfg, DeformLayer("l", 16, 9, 9, 16))
        e = CostModel().energy(inventory(cfg), s.actions, s.cycles)
        assert e.total_pj > 0 and e.parts["sampler"] > 0 and e.parts["dram"] > 0
        assert CostModel().area(inventory(cfg)).total_um2 > 0


@pytest.mark.parametrize("kwargs, msg", [
    ({"offset_bound": -1.0}, r"^offset_bound=-1.0 is not allowed: expected a number in \[0, 64\]$"),
    ({"frac_bits": 10}, r"^frac_bits=10 is not allowed with acc_bits=32: one product needs 36 bits"),
    ({"kernel": 4}, r"^kernel=4 is not allowed: expected an odd integer in \[1, 15\]$"),
    ({"offset_mode": "square", "offset_bound": None}, r"^offset_bound=None is not allowed with offset_mode='square'"),
    ({"banks": 0}, r"^banks=0 is not allowed: expected an integer in \[1, 64\]$"),
])
def test_config_errors(kwargs, msg):
    with pytest.raises(HwsimError, match=msg):
        DeformUnitConfig(**kwargs)


def test_offsets_not_matching_the_kernel_rejected():
    cfg = DeformUnitConfig()
    with pytest.raises(HwsimError, match=r"^offset channels=8 is not allowed: expected a multiple of 2 \* 3 \* 3"):
        predict_layer(cfg, DeformLayer("l", 2, 4, 4, 2), np.zeros((8, 4, 4), dtype=np.int64))


def test_cli_bad_config_exit_2():
    r = subprocess.run([sys.executable, "-m", "hwsim.cli", "cost", "deform-unit", "--offset-bound", "-1"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["hwsim: error: offset_bound=-1.0 is not allowed: expected a number in "
                                             "[0, 64]"]


def test_registry_and_preset():
    fam = get_family("deform-unit")
    cfg = fam.preset("deform-unit-8x4-square-b4")
    assert (cfg.lanes, cfg.out_lanes, cfg.offset_mode, cfg.offset_bound) == (8, 4, "square", 4.0)
    assert fam.preset("mac-array-8x8-ws") is None
    assert fam.preset("deform-unit-unbounded").offset_bound is None and fam.preset("deform-unit").offset_bound == 8.0
