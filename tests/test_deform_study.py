"""hwsim study codenet-variants: table rows are the cycle model's sums; the speedup direction is CoDeNet's."""

from hwsim.deform_unit import DeformLayer, DeformUnitConfig, predict_layer
from hwsim.deform_unit_study import LAYERS, run
from hwsim.families import find_study
from hwsim.mac_array import predict_gemm


def test_study_rows_and_direction():
    res = run(quick=True)
    by = {r["variant"]: r for r in res.rows}
    assert set(by) == {"regular_3x3", "full", "full_bounded", "full_square", "depthwise", "bounded",
                       "square_depthwise"}
    # the depthwise square row is the sum of its layers: deformable unit + offset conv + pointwise conv
    cfg = DeformUnitConfig(offset_mode="square", offset_bound=8.0, max_width=64, max_channels=256)
    want = 0
    for i, (name, c, h) in enumerate(LAYERS):
        want += predict_layer(cfg, DeformLayer(name, c, h, h, c, depthwise=True, offset_std=2.0, seed=i)).cycles
        want += predict_gemm(cfg.mac_array(), h * h, c, c).cycles
    assert by["square_depthwise"]["cycles"] == want
    assert by["bounded"]["misses"] == by["square_depthwise"]["misses"] == 0
    assert by["depthwise"]["misses"] > 0
    sp = res.speedups
    assert sp["depthwise"]["speedup"] > sp["full"]["speedup"] > 1.0
    text = res.format()
    assert "direction agrees with CoDeNet" in text and "CoDeNet: x9.76" in text
    assert set(res.as_dict()) >= {"rows", "speedups", "published"}


def test_study_registered():
    fam, fn, desc = find_study("codenet-variants")
    assert fam.name == "deform-unit" and "CoDeNet" in desc
