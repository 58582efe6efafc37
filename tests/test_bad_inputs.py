"""The bad-input corpus (tests/bad_inputs/cases.yaml): every case through ``hwsim.cli.main`` in-process must end
with exit status 2 and one stderr line ``hwsim: error: ...`` naming what the case lists, with no traceback,
nothing on stdout and no work started (the commands' work functions are replaced by ones that fail the case,
so a bad input that slipped through is caught before any Verilator build, synthesis or model run)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from hwsim import cli

ROOT = Path(__file__).resolve().parents[1]
CASES = yaml.safe_load((ROOT / "tests" / "bad_inputs" / "cases.yaml").read_text())
LINE = re.compile(r"^hwsim: error: \S.*$")


class WorkStarted(Exception):
    """A bad input was accepted: the command reached its work."""


def _onnx_model(path: Path, classes: int = 10, opset: int = 17, fill=None, one_nan=False, input=(1, 1, 8, 8)):
    """A digits classifier as an ONNX graph: Flatten, MatMul 64 x ``classes``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((int(np.prod(input[1:])), classes)).astype(np.float32) * 0.1
    if fill is not None:
        w[:] = float(fill)
    if one_nan:
        w[3, 1] = np.nan
    g = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, str(path))


def _npz_model(path: Path, classes: int = 10):
    from hwsim.models.graph import INPUT, Layer, Model, save_model

    w = np.random.default_rng(0).standard_normal((classes, 64)).astype(np.float32) * 0.1
    save_model(Model([Layer("flat", "flatten", (INPUT,)),
                      Layer("fc", "linear", ("flat",), weight=w, bias=np.zeros(classes, np.float32))]), path)


@pytest.fixture
def no_work(monkeypatch):
    """Every command's work behind a tripwire: Verilator builds, synthesis, place and route, model runs,
    sweeps and studies."""
    import hwsim.cosim.model_cosim as model_cosim
    import hwsim.cosim.regression as regression
    import hwsim.cosim.runner as runner

    from hwsim import families, fpga, run, sweep, synth

    def stop(*args, **kwargs):
        raise WorkStarted

    def lower_then_stop(acc, compiled, *args, **kwargs):  # the loop's own checks run before its work
        run._lowered(acc, compiled)
        raise WorkStarted

    for mod, name in ((runner, "build"), (regression, "build"), (model_cosim, "build"), (runner, "run_job"),
                      (synth, "synth"), (fpga, "place_and_route"), (sweep, "run_sweep")):
        monkeypatch.setattr(mod, name, stop)
    for name in ("run_model", "predict_model"):
        monkeypatch.setattr(run, name, lower_then_stop)
    find_study = families.find_study
    monkeypatch.setattr(families, "find_study", lambda name: (lambda f, r, d: (f, stop, d))(*find_study(name)))


def test_corpus_is_large_and_covers_every_command():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 200
    commands = {c["argv"][0] for c in CASES if c["argv"]}
    assert {"simulate", "families", "generate", "cosim", "synth", "cost", "sweep", "study"} <= commands


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys, no_work):
    monkeypatch.chdir(tmp_path)
    for name, text in (case.get("files") or {}).items():
        (tmp_path / name).write_text(text)
    for name, opts in (case.get("onnx") or {}).items():
        _onnx_model(tmp_path / name, **opts)
    for name, opts in (case.get("npz") or {}).items():
        _npz_model(tmp_path / name, **opts)
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{repo}", str(ROOT)) for a in case["argv"]]
    try:
        code = cli.main(argv)
    except WorkStarted:
        pytest.fail(f"{argv}: accepted, the command's work started")
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and LINE.match(lines[0]), err
    assert code == case.get("status", 2), (code, err)
    for word in case["words"]:
        assert str(word) in lines[0], (word, lines[0])
    assert out == "", out
