"""The family registry: presets, config files naming the family, generated CLI flags, routing, errors."""

import json
import re

import pytest

from hwsim.cli import main
from hwsim.config import MacArrayConfig
from hwsim.cost import COMPONENT_CLASSES, Component, ComponentClass, CostEntry, CostModel, Inventory
from hwsim.errors import HwsimError
from hwsim.families import Accelerator, all_families, get_family, resolve_accel


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_mac_array_is_registered_with_every_view():
    fam = get_family("mac-array")
    assert get_family("mac_array") is fam and fam in all_families()
    assert fam.views() == {"reference": True, "cycle model": True, "RTL": True, "cosim": True, "synth": True,
                           "cost": True}
    for preset in fam.presets:
        assert fam.preset(preset) is not None, preset
    assert fam.preset("mac-array-3x5-is-ternary") == MacArrayConfig(rows=3, cols=5, dataflow="is",
                                                                     weight_format="ternary")
    assert fam.preset("mac-array-3x5") is None


def test_families_command_lists_presets_and_views(capsys, tmp_path):
    out_json = tmp_path / "f.json"
    code, out, _ = _run(capsys, "families", "--json", str(out_json))
    assert code == 0
    assert "mac-array:" in out and "mac-array-8x8-ws" in out and "cosim yes" in out
    data = json.loads(out_json.read_text())["families"]
    mac = next(f for f in data if f["name"] == "mac-array")
    assert mac["views"]["RTL"] and mac["workload_kinds"] == ["conv2d", "linear"]
    assert {f["name"] for f in mac["fields"]} == {f.name for f in MacArrayConfig.cli_fields()}


def test_cli_fields_come_from_the_dataclass_and_its_docstring():
    fields = {f.name: f for f in MacArrayConfig.cli_fields()}
    import dataclasses
    assert list(fields) == [f.name for f in dataclasses.fields(MacArrayConfig)]
    assert fields["dataflow"].choices == ("ws", "os", "is") and fields["dataflow"].type is str
    assert fields["dram_bytes_per_cycle"].type is float and fields["rows"].type is int
    assert fields["act_bits"].optional and fields["act_bits"].default is None
    assert fields["weight_format"].help.startswith("Weight format of the PEs.")
    assert fields["weight_format"].aliases == ("--weights",)
    assert all(f.help for f in fields.values())


def test_generated_flags_and_old_aliases_build_the_same_config(capsys, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["generate", "mac-array", "--rows", "2", "--cols", "3", "--weight-format", "int4",
                 "--dram-bytes-per-cycle", "2.5", "-o", str(a)]) == 0
    assert main(["generate", "mac-array", "--rows", "2", "--cols", "3", "--weights", "int4", "--dram-bw", "2.5",
                 "-o", str(b)]) == 0
    capsys.readouterr()
    top = "mac_array_ws_int4_2x3"
    assert (a / f"{top}.v").read_text() == (b / f"{top}.v").read_text()
    meta = json.loads((a / f"{top}.json").read_text())
    assert meta["config"]["dram_bytes_per_cycle"] == 2.5


@pytest.mark.parametrize("wrap", [None, "mac_array", "mac-array"])
def test_config_file_optionally_under_the_family_key(capsys, tmp_path, wrap):
    fields = {"rows": 2, "cols": 2, "dataflow": "os"}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(fields if wrap is None else {wrap: fields}))
    out = tmp_path / "o"
    code, _, err = _run(capsys, "generate", "mac-array", "--config", str(path), "--cols", "3", "-o", str(out))
    assert code == 0, err
    assert json.loads((out / "mac_array_os_int8_2x3.json").read_text())["config"]["rows"] == 2


def test_accel_file_naming_the_family(tmp_path):
    y = tmp_path / "arr.yaml"
    y.write_text("family: mac-array\nrows: 4\ncols: 2\ndataflow: os\n")
    acc = resolve_accel(str(y))
    assert acc.name == "arr" and acc.units[0].config == MacArrayConfig(rows=4, cols=2, dataflow="os")
    y.write_text("mac_array:\n  rows: 4\n")
    assert resolve_accel(str(y)).units[0].config == MacArrayConfig(rows=4)
    y.write_text("units:\n  - family: mac-array\n    rows: 2\n  - {family: mac-array, rows: 16, cols: 16}\n")
    acc = resolve_accel(str(y))
    assert [u.config.rows for u in acc.units] == [2, 16]
    assert acc.unit_for("conv2d", "c1") is acc.units[0]


@pytest.mark.parametrize(("text", "pattern"), [
    ("family: gpu\nrows: 4\n", r"^family='gpu' is not allowed: expected one of mac-array"),
    ("family: mac-array\ncolz: 4\n", r"^mac_array config field 'colz' is not allowed: expected one of "),
    ("rows: 4\n", r"^--accel='.*a.yaml' is not allowed: expected a mapping with 'family: NAME'"),
    ("units: []\n", r"^--accel='.*a.yaml' units is not allowed: expected a non-empty list"),
])
def test_bad_accel_files(tmp_path, text, pattern):
    y = tmp_path / "a.yaml"
    y.write_text(text)
    with pytest.raises(HwsimError, match=pattern):
        resolve_accel(str(y))


def test_layer_kind_no_unit_runs_is_one_line():
    acc = resolve_accel("mac-array-8x8-ws")
    with pytest.raises(HwsimError, match=r"^layer 'cell' \(kind lstm\) is not allowed on accelerator "
                                         r"mac-array-8x8-ws: no unit runs lstm layers \(mac-array runs conv2d, "
                                         r"linear\)$"):
        acc.unit_for("lstm", "cell")
    assert isinstance(acc, Accelerator)


def test_cost_family_prices_the_inventory(capsys, tmp_path):
    out_json = tmp_path / "c.json"
    code, out, _ = _run(capsys, "cost", "mac-array", "--rows", "2", "--cols", "3", "--node", "22",
                        "--json", str(out_json))
    assert code == 0 and "pe_mac" in out and "requantizer" in out
    data = json.loads(out_json.read_text())
    rows = {r["name"]: r for r in data["inventory"]}
    model = CostModel(22)
    assert rows["pe_mac"]["count"] == 6 and rows["requant"]["count"] == 3
    # the MAC datapath plus one clock-gating cell (5 GE) on its operand registers (gating="clock", default)
    assert rows["pe_mac"]["area_um2_each"] == pytest.approx(model.mac_area_um2("int8", 8, 32) + 5 * 0.798 * model.area_scale)
    assert rows["pe_mac"]["actions"]["mac"]["pj"] == pytest.approx(model.mac_energy_pj("int8", 8, 32))
    assert rows["input_sram"]["actions"]["read"]["pj"] == pytest.approx(model.sram_access_energy_pj(65536, 64))
    assert data["area"]["total_um2"] == pytest.approx(CostModel(22).area(MacArrayConfig(rows=2, cols=3)).total_um2)


def test_a_new_component_class_prices_through_the_shared_model():
    """A family that needs a new class registers it with cited entries; the inventory then prices it."""
    from hwsim import cost

    entry = CostEntry("testdac.energy", 1.5, "pJ", "test citation (not a real source)", 45, 0.9, 6, "test only")
    cc = ComponentClass("test_dac", "a test-only DAC", ("bits",),
                        {"convert": ("sample", lambda m, a: m.entry("testdac.energy").value)},  # entry() is node-scaled
                        lambda m, a: a["bits"] * 10.0 * m.area_scale)
    cost.register_component_class(cc, [entry], section="Test-only DAC")
    try:
        inv = Inventory("t", (Component("dac", "test_dac", {"bits": 6}, 4),))
        from hwsim.stats import ActionCounts
        e = CostModel(7).energy(inv, ActionCounts({("dac", "convert"): 3}), 10)
        assert e.parts["dac"] == pytest.approx(3 * 1.5 * CostModel(7).energy_scale)
        assert CostModel().area(inv).total_um2 == pytest.approx(4 * 60.0)
        assert any(t == "Test-only DAC" for t, _ in CostModel().sections())
        with pytest.raises(HwsimError, match=r"^action dac.read is not allowed: class test_dac has actions convert$"):
            CostModel().energy(inv, ActionCounts({("dac", "read"): 1}), 0)
        with pytest.raises(HwsimError, match=r"attribute 'bits' is missing"):
            Inventory("t", (Component("dac", "test_dac", {}),))
        with pytest.raises(HwsimError, match=r"class='flux' is not allowed"):
            Inventory("t", (Component("x", "flux", {}),))
    finally:
        COMPONENT_CLASSES.pop("test_dac")
        cost._SECTIONS[:] = [(t, g) for t, g in cost._SECTIONS if t != "Test-only DAC"]
        cost._BASE.pop("testdac.energy")


def test_every_counted_action_is_in_the_inventory():
    """The MAC cycle model's (component, action) pairs all name inventory components and priced actions."""
    from hwsim.mac_array import inventory, predict_gemm

    for df in ("ws", "os", "is"):
        cfg = MacArrayConfig(rows=3, cols=2, dataflow=df)
        inv = inventory(cfg)
        pairs = predict_gemm(cfg, 7, 11, 5).actions.pairs().counts
        for comp, action in pairs:
            assert action in COMPONENT_CLASSES[inv[comp].cls].actions, (comp, action)
        assert all(n >= 0 for n in pairs.values()) and pairs[("pe_mac", "mac")] > 0


def test_unknown_flag_message_lists_fields(capsys):
    code, _, err = _run(capsys, "cost", "mac-array", "--bogus", "1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert re.match(r"^hwsim: error: argument '--bogus' is not allowed: expected one of --rows, --cols", err)


def test_simulate_and_cost_never_import_amaranth_or_cocotb():
    """RTL and co-simulation entry points are import paths, loaded only by generate/cosim/synth."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from hwsim.cli import main\n"
            "assert main(['simulate', 'digits-mlp', '--accel', 'mac-array-4x4-os']) == 0\n"
            "assert main(['cost', 'mac-array']) == 0 and main(['families']) == 0\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('amaranth', 'cocotb', 'cocotb_tools'))\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
