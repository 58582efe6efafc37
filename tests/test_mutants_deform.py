"""Deformable unit: the inventory, the offset-conv GEMM shape and the reference's rounding shift against hand
counts and a naive rounding loop (mutation run, docs/testing.md)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hwsim.models import deform_unit as du

from hwsim.deform_unit import DeformLayer, DeformUnitConfig, inventory, offset_conv_stats
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
        assert (st.name, st.m, st.k, st.n) == ("d.offsets", 6, 27, n), (mode, mod)


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
    assert got["mac"] == ("mac", {"weight_format": "int8", "act_bits": cfg.sample_bits, "acc_bits": 32}, 32)
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
