"""The hardware a model's layers need (``Family.fit_model``, ``hwsim.run.fit_units``): a quantized ONNX graph
with float scales runs on float32 requantizer lanes and one with weight zero points on the row-sum unit, so
``hwsim simulate`` on a preset (the user chose neither field) reports the area and inventory of that
hardware and says so; a field the user chose that cannot run the layers is one line naming it."""

from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime.quantization")

import ort_quant_models as oqm  # noqa: E402
import yaml  # noqa: E402
from onnxruntime.quantization import QuantFormat, QuantType  # noqa: E402

from hwsim.config import MacArrayConfig  # noqa: E402
from hwsim.cost import CostModel  # noqa: E402
from hwsim.errors import HwsimError  # noqa: E402
from hwsim.families import get_family  # noqa: E402
from hwsim.mac_array import inventory  # noqa: E402
from hwsim.simulate import format_report, simulate  # noqa: E402


@pytest.fixture(scope="module")
def u8u8(tmp_path_factory):
    return oqm.quantize_as(oqm.residual_cnn(), "u8u8", QuantFormat.QDQ, QuantType.QUInt8, QuantType.QUInt8, False,
                           tmp_path_factory.mktemp("fit"))


def test_a_preset_gets_the_hardware_the_layers_need(u8u8):
    rep = simulate(u8u8, "mac-array-8x8-ws", progress=False)
    preset = get_family("mac-array").preset("mac-array-8x8-ws")
    assert (preset.requantizer, preset.weight_zero_points) == ("shift", False)
    cfg = rep.unit.config
    assert cfg == preset.replace(requantizer="f32", weight_zero_points=True, rounding="half_even")
    notes = [n for n in rep.notes if n.startswith("note: requantizer") or n.startswith("note: weight_zero_points")]
    assert len(notes) == 2 and all(n in format_report(rep) for n in notes)
    assert "conv1, conv2, conv3, fc" in notes[0] and "weights with zero points" in notes[1]
    # the area is that of the hardware that runs the model: more than the preset's (float lanes, row sums)
    want = CostModel().area(inventory(cfg)).total_mm2
    assert rep.area_mm2 == pytest.approx(want) and want > CostModel().area(inventory(preset)).total_mm2


def test_a_chosen_field_that_cannot_run_the_layers_is_one_line(u8u8, tmp_path):
    f = tmp_path / "shift.yaml"
    f.write_text(yaml.safe_dump({"family": "mac-array", "requantizer": "shift"}))
    with pytest.raises(HwsimError, match=r"^requantizer='shift' is not allowed for layer 'conv1': it has float "
                                         r"scales; expected requantizer='f32'$"):
        simulate(u8u8, str(f), progress=False)
    with pytest.raises(HwsimError, match=r"^weight_zero_points=False is not allowed for layer 'conv1'"):
        simulate(u8u8, MacArrayConfig(requantizer="f32"), progress=False)


def test_a_model_that_needs_nothing_leaves_the_preset_alone():
    rep = simulate("digits-cnn", "mac-array-8x8-ws", progress=False)
    assert rep.unit.config == get_family("mac-array").preset("mac-array-8x8-ws")
    assert not [n for n in rep.notes if "requantizer" in n or "weight_zero_points" in n]
