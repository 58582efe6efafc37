"""Deformable unit: the inventory, the offset-conv GEMM shape and the reference's rounding shift against hand
counts and a naive rounding loop (mutation run, docs/testing.md)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hwsim.models import deform_unit as du
from hypothesis import given, settings
from hypothesis import strategies as st
from test_deform_unit import simulate_items  # its per-item scalar timing model (tests/ is on sys.path)

from hwsim.deform_unit import (
    DeformLayer,
    DeformUnitConfig,
    inventory,
    offset_conv_stats,
    predict_layer,
    synthetic_offsets,
)
from hwsim.mac_array import inventory as mac_inventory


def _naive_round(x: int, shift: int, rounding: str) -> int:
    """x / 2**shift to the nearest integer; ties up (half_up) or to the even neighbour (half_even)."""
    q = Fraction(x, 1 << shift)
    lo = q.numerator // q.denominator
    frac = q - lo
    if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and (rounding == "half_up" or lo % 2 == 1)):
        return lo + 1
    return lo


@pytest.mark.parametrize("rounding", ["half_up", "half_even"])
def test_round_shift_equals_naive_rounding(rounding):
    xs = np.arange(-70, 71)
    for shift in range(5):
        got = du.round_shift(xs, shift, rounding)
        assert got.tolist() == [_naive_round(int(x), shift, rounding) for x in xs], (shift, rounding)


def test_round_shift_widens_narrow_inputs():
    # (2**31 - 1 + 1) >> 1 = 2**30: the bias must be added in 64 bits, not in the caller's int32
    x = np.array([2**31 - 1], dtype=np.int32)
    assert du.round_shift(x, 1, "half_up").tolist() == [2**30]


def test_offset_conv_gemm_shape_by_hand():
    # 7x5 input, 3 channels, k = 3, stride 2, padding 1, dilation 2: H_out = (7 + 2 - 4 - 1) // 2 + 1 = 3,
    # W_out = (5 + 2 - 4 - 1) // 2 + 1 = 2 -> m = 6; reduction C k k = 27; channels: 2 k k = 18 free offsets,
    # 1 square dilation, + k k = 9 masks with modulation.
    layer = DeformLayer("d", 3, 7, 5, 4, stride=2, padding=1, dilation=2)
    for mode, bound, mod, n in (("free", None, False, 18), ("free", None, True, 27), ("square", 2.0, False, 1),
                                ("square", 2.0, True, 10)):
        st = offset_conv_stats(DeformUnitConfig(offset_mode=mode, offset_bound=bound, modulation=mod), layer)
        assert [st.detail[d] for d in ("name", "m", "k", "n")] == ["d.offsets", 6, 27, n], (mode, mod)


def _by_name(inv) -> dict:
    return {c.name: (c.cls, dict(c.attrs), c.count) for c in inv.components}


def test_inventory_by_hand():
    # Offset buffer: two rows of 128 px x (2 k k offsets + k k masks = 27) 16-bit words = 13,824 B.
    cfg = DeformUnitConfig(lanes=4, out_lanes=8)
    inv = inventory(cfg)
    got = _by_name(inv)
    assert inv.name == "deform_unit free 4x8"
    assert got["offset_buffer"] == ("sram", {"bytes": 2 * 128 * 27 * 16 // 8, "word_bits": 16}, 1)
    assert got["line_buffer"][2] == 1
    assert got["mac"] == ("mac", {"weight_format": "int8", "act_bits": cfg.sample_bits, "acc_bits": 32,
                                  "gating": "clock"}, 32)  # issue 27: idle slots priced by the gating
    assert got["requant"] == ("requantizer", {"acc_bits": 32, "out_bits": 8}, 8)  # max(lanes, out_lanes)
    assert got["controller"] == ("controller", {"ge": 5000}, 1)
    assert got["dram"] == ("dram", {}, 1)
    assert "mask_mult" not in got
    # the offset-conv MAC array: each of its components but DRAM, prefixed oc_, noted as the array's
    mac = mac_inventory(cfg.mac_array())
    oc = [c for c in inv.components if c.name.startswith("oc_")]
    assert [c.name for c in oc] == [f"oc_{c.name}" for c in mac.components if c.name != "dram"]
    for c, m in zip(oc, [c for c in mac.components if c.name != "dram"], strict=True):
        assert (c.cls, c.attrs, c.count) == (m.cls, m.attrs, m.count)
        assert c.note == (f"offset-conv MAC array: {m.note}" if m.note else "offset-conv MAC array")
    assert not any(c.name.startswith("oc_") for c in inventory(DeformUnitConfig(offset_array=False)).components)


def test_modulation_adds_the_mask_multiplier_after_the_macs():
    # DCN v2: each of the 16 lanes scales its bilinear sum (act_bits + 2 F = 8 + 8 bits) by a mask code
    # (mask_bits + 1 = 9 bits, unsigned 0..2**mask_bits).
    cfg = DeformUnitConfig(modulation=True)
    names = [c.name for c in inventory(cfg).components]
    assert names[:5] == ["line_buffer", "sampler", "mac", "mask_mult", "offset_buffer"]
    assert _by_name(inventory(cfg))["mask_mult"] == ("multiplier", {"a_bits": 16, "b_bits": 9}, 16)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 11), st.integers(2, 11), st.integers(1, 5), st.booleans(), st.integers(1, 3),
       st.integers(2, 3), st.integers(0, 3), st.sampled_from([1, 2, 3, 5]), st.sampled_from([None, 1.5, 3.0]),
       st.sampled_from([2, 3, 4, 7]), st.integers(0, 2**31 - 1))
def test_dilated_layers_match_the_scalar_simulation(h, w, c, dw, stride, dilation, pad, banks, bound, rows, seed):
    # tests/test_deform_unit.py's per-item scalar simulation with dilation 2 and 3 (its own property test runs
    # dilation 1), and line buffers of an even and an odd number of rows (the window is centred on the
    # kernel's middle row: top = y * stride - pad + (k - 1) // 2 * dilation - (rows - 1) // 2)
    k = 3
    if h + 2 * pad - dilation * (k - 1) - 1 < 0 or w + 2 * pad - dilation * (k - 1) - 1 < 0:
        return
    cfg = DeformUnitConfig(kernel=k, offset_bound=bound, banks=banks, lanes=2, out_lanes=2, frac_bits=2,
                           dram_bytes_per_cycle=3.0, miss_cycles=5, line_buffer_rows=rows)
    layer = DeformLayer("l", c, h, w, c if dw else 3, depthwise=dw, stride=stride, padding=pad,
                        dilation=dilation, offset_std=2.0, seed=seed)
    raw = synthetic_offsets(cfg, layer)
    s = predict_layer(cfg, layer, raw, with_offset_conv=False)
    off = du.variant_offsets(cfg.variant(dw), raw, k, k, dilation, frac_bits=2)
    cycles, misses, conflicts, reads = simulate_items(cfg, layer, off)
    assert (s.detail["unit_cycles"], s.detail["misses"], s.detail["conflict_cycles"], s.actions.get("line_buffer", "read")) == \
        (cycles, misses, conflicts, reads)


def test_offset_buffer_has_a_64_byte_floor():
    # 1x1 kernel, 1-pixel rows: two rows x (2 + 1) 16-bit words = 12 B, raised to the buffer's 64-byte minimum
    cfg = DeformUnitConfig(kernel=1, max_width=1)
    assert _by_name(inventory(cfg))["offset_buffer"] == ("sram", {"bytes": 64, "word_bits": 16}, 1)


def test_line_buffer_and_mac_notes_name_their_sizes():
    # Default unit: 3x3 kernel (c = 1), free offsets bounded by 8 px: 2 c + 2 * 8 + 2 = 20 rows for dilation 1
    # (22 for dilation 2: the inventory is the dilation-1 buffer); 128 px x 128 channels in 4 banks. The MAC
    # multiplies a weight by an 8 + 2 * 4 = 16-bit interpolated sample (scale 2**(2F)).
    cfg = DeformUnitConfig()
    notes = {c.name: c.note for c in inventory(cfg).components}
    assert notes["line_buffer"] == "20 rows x 128 px x 128 ch in 4 banks"
    assert notes["mac"] == "lanes x out_lanes MACs (weight x 16-bit sample)"
