"""The hwsim CLI: outputs, one-line errors with exit status 2, generated Verilog lints clean."""

import json
import re
import subprocess

import pytest
from hwsim.cosim.runner import verilator_env

from hwsim.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("argv", "pattern"), [
    (["generate", "mac-array", "--rows", "0"], r"^hwsim: error: rows=0 is not allowed: expected an integer in \[1, 1024\]$"),
    (["generate", "mac-array", "--weights", "int3"], r"^hwsim: error: weight_format='int3' is not allowed: expected one of"),
    (["generate", "mac-array", "--dataflow", "xs"], r"^hwsim: error: dataflow='xs' is not allowed: expected one of ws, os, is$"),
    (["generate", "mac-array", "--acc-bits", "12"], r"^hwsim: error: acc_bits=12 is not allowed: the accumulator must hold"),
    (["generate", "mac-array", "--weight-sram", "8"], r"^hwsim: error: weight_sram_bytes=8 is too small"),
    (["cosim", "lstm-engine", "--work-sram-bytes", str(1 << 26)], r"^hwsim: error: work_sram_bytes=67108864 has no RTL: "
                                                                    r"expected at most 2\*\*24 words"),
    (["generate", "lstm"], r"^hwsim: error: family='lstm' is not allowed: expected one of mac-array"),
    (["cost", "gpu"], r"^hwsim: error: family='gpu' is not allowed: expected one of mac-array"),
    (["generate", "mac-array", "--colz", "4"], r"^hwsim: error: argument '--colz' is not allowed: expected one of --rows, --cols, "),
    (["synth", "mac-array", "--rows", "four"], r"^hwsim: error: rows='four' is not allowed: expected an integer$"),
    (["generate", "mac-array", "--dram-bw", "x"], r"^hwsim: error: dram_bytes_per_cycle='x' is not allowed: expected a number$"),
    (["simulate", "no-such-model"], r"^hwsim: error: model='no-such-model' is not allowed: expected one of digits-mlp"),
    (["simulate", "--accel", "gpu"], r"^hwsim: error: --accel='gpu' is not allowed: expected a preset like"),
    (["simulate", "--compress", "int9"], r"^hwsim: error: compression spec 'int9' is not allowed"),
    (["simulate", "--accel", "mac-array-8x8-ws-int4"], r"^hwsim: error: layer 'conv1' \(int8 weights, 8-bit activations\) "
                                                        r"is not allowed on int4 PEs"),
    (["cost", "--node", "5"], r"^hwsim: error: node_nm=5 is not allowed: expected one of"),
])
def test_bad_input_one_line_exit_2(capsys, argv, pattern):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(pattern, lines[0]), lines[0]


def test_bad_files(capsys, tmp_path):
    bad_yaml = tmp_path / "a.yaml"
    bad_yaml.write_text("rows: [\n")
    code, _, err = _run(capsys, "simulate", "--accel", str(bad_yaml))
    assert code == 2 and re.match(r"^hwsim: error: --accel='.*a.yaml' is not valid YAML/JSON", err)
    not_model = tmp_path / "m.npz"
    not_model.write_bytes(b"not a model")
    code, _, err = _run(capsys, "simulate", str(not_model))
    assert code == 2 and re.match(r"^hwsim: error: model file '.*m.npz' is not allowed", err)
    unknown_field = tmp_path / "c.json"
    unknown_field.write_text(json.dumps({"rows": 4, "colz": 4}))
    code, _, err = _run(capsys, "generate", "mac-array", "--config", str(unknown_field))
    assert code == 2 and re.match(r"^hwsim: error: mac_array config field 'colz' is not allowed", err)


def test_generate_lints_clean_with_verilator(capsys, tmp_path):
    code, out, _ = _run(capsys, "generate", "mac-array", "--rows", "4", "--cols", "4", "-o", str(tmp_path))
    assert code == 0
    v = tmp_path / "mac_array_ws_int8_4x4.v"
    meta = json.loads((tmp_path / "mac_array_ws_int8_4x4.json").read_text())
    assert meta["config"]["rows"] == 4
    ports = meta["signature"]["interface"]["members"]
    assert ports["i_acts"]["members"]["payload"]["width"] == 4 * 8
    env = {**__import__("os").environ, **verilator_env()}
    res = subprocess.run(["verilator", "--lint-only", str(v)], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_simulate_report_and_json(capsys, tmp_path):
    out_json = tmp_path / "r.json"
    code, out, _ = _run(capsys, "simulate", "digits-cnn", "--accel", "mac-array-8x8-ws", "--json", str(out_json))
    assert code == 0
    assert "simulator == reference            yes" in out
    data = json.loads(out_json.read_text())
    assert data["simulated_equals_reference"] is True
    assert data["accuracy_simulated"] == data["accuracy_reference"]
    assert abs(data["accuracy_reference"] - data["accuracy_float"]) <= 0.01
    assert data["cycles"] == sum(layer["cycles"] for layer in data["layers"])
    assert data["macs"] == 25600


def test_cost_prints_sources(capsys):
    code, out, _ = _run(capsys, "cost")
    assert code == 0
    assert "Horowitz" in out and "45" in out


def test_bad_output_paths_rejected_before_work(capsys, tmp_path):
    """Output paths are checked up front: one line, exit 2, and nothing is built or simulated first."""
    a_file = tmp_path / "f"
    a_file.write_text("")
    cases = [
        (("cosim", "mac-array", "--run-dir", str(a_file)), r"--run-dir='.*f' is not allowed: it exists and is not a directory"),
        (("generate", "mac-array", "-o", str(a_file)), r"--output='.*f' is not allowed: it exists and is not a directory"),
        (("simulate", "--json", str(tmp_path / "no" / "r.json")), r"--json='.*r.json' is not allowed: directory '.*no' does not"),
        (("cost", "--json", str(tmp_path)), r"--json='.*' is not allowed: it is a directory"),
    ]
    for argv, pattern in cases:
        code, out, err = _run(capsys, *argv)
        assert code == 2 and out == "", (argv, out)
        assert re.match(r"^hwsim: error: " + pattern, err) and len(err.strip().splitlines()) == 1, err
