"""``hwsim simulate`` of the LSTM classifiers on lstm-engine presets: routing through the registry, values
equal to the fixed-point reference, cycles and MACs against the closed form written out here."""

import dataclasses
import json
import math
import re

import numpy as np
import pytest
from hwsim.models import lstm_models as lm
from hwsim.models import tensor_formats as tf
from hwsim.models import zoo

from hwsim import run as run_loop
from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.families import resolve_accel
from hwsim.lstm_engine import parse_preset
from hwsim.simulate import simulate

#: Correct test images (of 450) of the committed classifiers, as documented (tests/test_lstm_models.py).
FLOAT = {"digits-lstm": 441, "digits-tt-lstm": 436, "digits-ht-lstm": 437}
FIXED = {("digits-tt-lstm", 16): 439, ("digits-ht-lstm", 8): 434, ("digits-lstm", 16): 438}


def _stage_cycles(R, K, Q, pes, banks):
    """Cycles of one stage from the documented formula 1 + Q * sum_j (K + 1 + ceil(L_j / banks))."""
    rows = [min(pes, R - j) for j in range(0, R, pes)]
    return 1 + Q * sum(K + 1 + math.ceil(L / banks) for L in rows)


def _expected(name, cfg):
    m = lm.load(name)
    H, N, T = m.hidden, m.W.shape[1], 8
    if m.fmt is None:
        stages = [(4 * H, N, 1)]
    else:
        stages = [(s.R, s.K, s.Q) for s in tf.plan_stages(m.fmt)]
    step = sum(_stage_cycles(*s, cfg.pes, cfg.banks) for s in stages)
    step += _stage_cycles(4 * H, H, 1, cfg.pes, cfg.banks) + 4 * H + 9  # hidden stage + gate phase (4 gathers/unit)
    step_macs = sum(R * K * Q for R, K, Q in stages) + 4 * H * H
    return {"lstm": (T * step, T * step_macs), "readout": (_stage_cycles(10, H, 1, cfg.pes, cfg.banks), 10 * H)}


@pytest.fixture(scope="module")
def tt_run():
    return simulate("digits-tt-lstm", "lstm-engine-tt-16", progress=False)


def test_tt_lstm_on_engine(tt_run):
    rep = tt_run
    cfg = parse_preset("lstm-engine-tt-16")
    exp = _expected("digits-tt-lstm", cfg)
    assert [lr.name for lr in rep.layers] == ["lstm", "readout"]
    for lr in rep.layers:
        assert (lr.cycles, lr.macs) == exp[lr.name]
        assert lr.stall_cycles == 0  # 16 banks >= 16 PEs: no bank conflicts
        assert lr.utilization == pytest.approx(lr.macs / (16 * lr.cycles))
        assert lr.total_pj > 0 and lr.energy_pj["pe_mult"] > 0
    assert rep.cycles == sum(c for c, _ in exp.values())
    assert rep.latency_us == pytest.approx(rep.cycles / 1000.0)
    assert rep.accuracy_float == pytest.approx(FLOAT["digits-tt-lstm"] / 450)
    assert rep.accuracy_reference == pytest.approx(FIXED[("digits-tt-lstm", 16)] / 450)
    assert rep.accuracy_simulated == rep.accuracy_reference and rep.simulated_equals_reference
    assert rep.compress == "int16 fixed point (tt-r3)"
    assert rep.unit.family.name == "lstm-engine"


def test_bank_conflicts_and_other_models():
    cfg = parse_preset("lstm-engine-ht-16-int8")
    few_banks = dataclasses.replace(cfg, banks=4)
    rep = simulate("digits-ht-lstm", few_banks, progress=False)
    exp = _expected("digits-ht-lstm", few_banks)
    assert {lr.name: (lr.cycles, lr.macs) for lr in rep.layers} == exp
    assert rep.layers[0].stall_cycles > 0  # 16 lanes write through 4 banks
    assert rep.accuracy_simulated == rep.accuracy_reference == pytest.approx(FIXED[("digits-ht-lstm", 8)] / 450)
    assert rep.simulated_equals_reference


def test_simulated_logits_equal_reference_computed_here():
    """The engine's logits on a few images equal the reference run step by step here."""
    from hwsim.models import lstm_engine as ref

    cfg = parse_preset("lstm-engine-tt-16")
    x_tr, _, x_te, _ = zoo.load_digits_split()
    g = lm.load_graph("digits-lstm")
    acc = resolve_accel(cfg)
    compiled, _ = run_loop.compile_model(acc, g, None, x_tr[:256])
    run = run_loop.run_model(acc, compiled, x_te[:12])
    q = lm.quantize(lm.from_graph(g), cfg, x_tr[:256])
    for i in range(12):
        seq = ref.quantize(x_te[i].reshape(8, 8), q.lstm.x_frac, 16)
        h = ref.run_fixed(q.lstm, seq, cfg)[-1]
        assert np.array_equal(run.logits_simulated[i], lm.readout_fixed(q, h)[0])
    assert np.array_equal(run.logits_simulated, run.logits_reference)
    assert run.outputs_compared == 12 * (32 + 10)  # the layers' outputs: last hidden state and logits


def test_cli_simulate_lstm(capsys, tmp_path, tt_run):
    out_json = tmp_path / "r.json"
    assert main(["simulate", "digits-tt-lstm", "--accel", "lstm-engine-tt-16", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "yes, every logit bit-exact" in out and "T8 128x8+128x32" in out
    data = json.loads(out_json.read_text())
    assert data["cycles"] == tt_run.cycles and data["accel"]["units"][0]["family"] == "lstm-engine"


@pytest.mark.parametrize("args, pattern", [
    (["digits-tt-lstm", "--accel", "lstm-engine-ht-16"],
     r"^hwsim: error: decomposition='ht' is not allowed for model 'digits-tt-lstm': its input layer is TT, "
     r"expected an lstm-engine-tt-\* engine$"),
    (["digits-tt-lstm", "--accel", "lstm-engine-tt-16", "--compress", "int4"],
     r"^hwsim: error: --compress='int4' is not allowed on lstm-engine: expected int16 or no --compress"),
    (["digits-tt-lstm", "--accel", "mac-array-8x8-ws"],
     r"^hwsim: error: layer 'lstm' \(kind lstm\) is not allowed on accelerator mac-array-8x8-ws: no unit runs "
     r"lstm layers \(mac-array runs conv2d, linear\)$"),
    (["digits-cnn", "--accel", "lstm-engine-tt-16"],
     r"^hwsim: error: layer 'conv1' \(kind conv2d\) is not allowed on accelerator lstm-engine-tt-16: no unit "
     r"runs conv2d layers \(lstm-engine runs lstm, linear\)$"),
    (["digits-mlp", "--accel", "lstm-engine-tt-16"],
     r"^hwsim: error: model 'digits-mlp' layers=\['flatten', 'linear', .*\] is not allowed: expected "
     r"\['lstm', 'linear'\]$"),
])
def test_cli_errors_one_line(capsys, args, pattern):
    assert main(["simulate", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.match(pattern, err), err


def test_mixed_units_rejected(tmp_path):
    y = tmp_path / "two.yaml"
    y.write_text("units:\n  - {family: mac-array, rows: 8, cols: 8}\n  - {family: lstm-engine}\n")
    acc = resolve_accel(str(y))
    with pytest.raises(HwsimError, match=r"^--accel='two' is not allowed: the model's layers route to 2 units and "
                                         r"lstm-engine compiles whole models only; expected every layer on one unit$"):
        simulate("digits-tt-lstm", acc, progress=False)
