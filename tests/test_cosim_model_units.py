"""The LSTM engine and the deformable unit inside the model co-simulation (``hwsim.cosim.model_cosim`` with
their families' ``cosim_run``: ``hwsim.cosim.lstm_engine_model``, ``hwsim.cosim.deform_unit_model``), on a
few digits images, one Verilator build per unit (the runner's disk cache).

LSTM engine: digits-tt-lstm on a small int8 engine (8 PEs, 4 banks: bank-conflict stalls; a quicker build
than the presets' 256 KiB / 512 KiB SRAMs), both layers (the LSTM's T steps per image, the readout's dense
stage) on the engine's RTL; the logits against the classifier's own fixed-point forward
(``hwsim.models.lstm_models.forward_fixed``), the cycles and stalls against the stage-timing formula by
hand, the key action counts by hand, and every count of both layers equal to the cycle model's (the readout's
10 result writes per image go into a working buffer in both).
Deformable unit (tests/test_deform_behaviour.py's 4-lane config with offset_array false): digits-dcn itself
(its full 8 -> 16 deformable conv with bias: two channel blocks of 4 lanes) and a depthwise variant of it
built here (4 channels); their convs and the readout run on the MAC array's RTL. The counts depend on the
offsets: each image's run is compared with the family's ``run`` on that image; the tests add hand counts of
the data-independent ones. A deliberately wrong expectation is reported as a mismatch for both units, and a
layer the RTL cannot run (stride 2) is refused in one line before any build.
"""

import dataclasses
import json

import numpy as np
import pytest
from hwsim.cosim import deform_unit_model
from hwsim.cosim.model_cosim import format_model_report, run_model_cosim
from hwsim.models import catalog, lstm_models, zoo
from hwsim.models import tensor_formats as tf
from hwsim.models.graph import Layer, Model, save_model

from hwsim import cli, run
from hwsim.deform_unit import DeformUnitConfig
from hwsim.errors import HwsimError
from hwsim.families import Accelerator, Unit, get_family, resolve_accel
from hwsim.lstm_engine import LstmEngineConfig, LstmWorkload
from hwsim.stats import ActionCounts

LSTM_MODEL, LSTM_IMAGES = "digits-tt-lstm", 2
LSTM_CFG = LstmEngineConfig(pes=8, banks=4, data_bits=8, acc_bits=24, frac_bits=5, work_sram_bytes=512,
                            weight_sram_bytes=1024, hidden_sram_bytes=8192, addr_levels=4)
#: The deformable unit: tests/test_deform_behaviour.py's small build, its offsets coming from the MAC array.
DCFG = DeformUnitConfig(lanes=4, dram_bytes_per_cycle=4.0, max_width=16, offset_array=False)
DCN_IMAGES = 3


def _stage_cycles(R: int, K: int, Q: int, pes: int, banks: int) -> int:
    """One stage by the engine's timing: 1 setup cycle, per column and row tile K reads + 1 MAC + the
    tile's write cycles (ceil(lanes / banks))."""
    tiles = -(-R // pes)
    return 1 + Q * sum(K + 1 + -(-min(pes, R - j * pes) // banks) for j in range(tiles))


def _stage_stalls(R: int, K: int, Q: int, pes: int, banks: int) -> int:
    """The write cycles beyond one per column and row tile (bank conflicts)."""
    return Q * sum(-(-min(pes, R - j * pes) // banks) - 1 for j in range(-(-R // pes)))


# ---------------------------------------------------------------------------------------------- LSTM engine
@pytest.fixture(scope="module")
def lstm_rep(tmp_path_factory):
    return run_model_cosim(LSTM_MODEL, LSTM_CFG, None, images=LSTM_IMAGES,
                           workdir=tmp_path_factory.mktemp("lstm-cosim"))


def test_lstm_classifier_through_the_rtl(lstm_rep):
    rep, n = lstm_rep, LSTM_IMAGES
    cfg = LSTM_CFG
    P, B = cfg.pes, cfg.banks
    x_tr, y_tr, x_te, y_te = zoo.load_digits_split()
    cm, _ = run.compile_model(resolve_accel(cfg), catalog.load(LSTM_MODEL), None, x_tr[:512],
                              train_data=(x_tr, y_tr))
    q = cm.fixed
    H, N = q.lstm.hidden, q.lstm.fmt.shape[1]
    T = lstm_models.quantize_inputs(q, x_te[:1]).shape[1]
    assert (H, N, T) == (32, 8, 8)
    # The values: the classifier's own fixed-point forward, independent of the engine's run and the RTL.
    want = lstm_models.forward_fixed(q, x_te[:n])
    assert np.array_equal(rep.logits_rtl, want) and np.array_equal(rep.logits_reference, want)
    assert rep.accuracy_rtl == rep.accuracy_reference == float(np.mean(want.argmax(axis=1) == y_te[:n]))
    assert [r["name"] for r in rep.layers] == ["lstm", "readout"]
    lstm, readout = rep.layers

    # lstm: one RTL run of T steps per image; per step the input layer's stages, the hidden stage
    # (R = 4H, K = H, Q = 1) and the gate phase (4H + 9 cycles); 8 lanes written through 4 banks.
    stages = [(s.R, s.K, s.Q) for s in tf.plan_stages(q.lstm.fmt, q.lstm.order)] + [(4 * H, H, 1)]
    step = sum(_stage_cycles(*s, P, B) for s in stages) + 4 * H + 9
    stalls = sum(_stage_stalls(*s, P, B) for s in stages)
    assert stalls > 0
    assert lstm["runs"] == n and lstm["vectors"] == n * H and lstm["mismatches"] == 0, lstm
    assert lstm["rtl_cycles"] == lstm["predicted_cycles"] == n * T * step, lstm
    assert lstm["stall_cycles"] == lstm["predicted_stall_cycles"] == n * T * stalls, lstm
    assert lstm["count_mismatches"] == 0 and lstm["count_diffs"] == {}, lstm
    acts = lstm["actions"]
    macs = sum(R * K * Q for R, K, Q in stages)
    assert acts["pe_mult.mult"] == acts["pe_acc.add"] == n * T * macs, acts
    assert acts["hidden_sram.read"] == n * T * -(-4 * H // P) * H, acts
    assert (acts["sigmoid.eval"], acts["tanh.eval"], acts["cell_mult.mult"]) == (n * T * 3 * H, n * T * 2 * H,
                                                                                 n * T * 3 * H), acts
    assert acts["state_sram.write"] == n * T * 2 * H and acts["dram.read"] == n * T * N * cfg.data_bytes, acts
    assert lstm["outside_actions"] == {}

    # readout: V h as one stage (R = 10 outputs, K = H, Q = 1) per image, the bias add on the host.
    assert readout["runs"] == n and readout["vectors"] == n * 10 and readout["mismatches"] == 0, readout
    assert readout["rtl_cycles"] == readout["predicted_cycles"] == n * _stage_cycles(10, H, 1, P, B), readout
    assert readout["stall_cycles"] == readout["predicted_stall_cycles"] == n * _stage_stalls(10, H, 1, P, B) > 0
    acts = readout["actions"]
    assert acts["pe_mult.mult"] == n * 10 * H and acts["requant.convert"] == n * 10, acts
    assert acts["hidden_sram.read"] == n * -(-10 // P) * H and acts["state_sram.read"] == n * -(-10 // P) * H, acts
    # the 10 results per image written into a working buffer (as the hidden stage writes zh), none into the state SRAM
    assert acts["work_sram.write"] == n * 10 and "state_sram.write" not in acts, acts
    assert readout["outside_actions"] == {"gate_add.add": n * 10}
    assert "outside the RTL top (counted by cosim_run, added to the RTL's counts): gate_add.add 20" in \
        format_model_report(rep)


def test_lstm_readout_counts_equal_the_model(lstm_rep):
    readout = lstm_rep.layers[1]
    assert readout["count_diffs"] == {}, readout["count_diffs"]
    assert lstm_rep.passed


def test_lstm_wrong_expectation_is_caught(tmp_path):
    """A predict one cycle and one sigmoid evaluation off per inference is reported, count by count."""
    acc = resolve_accel(LSTM_CFG)
    fam = acc.units[0].family
    real = fam.load("predict")

    def off_by_one(cfg, op):
        st = real(cfg, op)
        if isinstance(op, LstmWorkload):
            return dataclasses.replace(st, cycles=st.cycles + 1, actions=st.actions + ActionCounts({("sigmoid", "eval"): 1}))
        return st

    tampered = Accelerator("tampered", (Unit(dataclasses.replace(fam, predict=off_by_one), acc.units[0].config),))
    rep = run_model_cosim(LSTM_MODEL, tampered, None, images=1, workdir=tmp_path)
    lstm = rep.layers[0]
    c, s = lstm["rtl_cycles"], lstm["actions"]["sigmoid.eval"]
    assert lstm["mismatches"] == 0 and lstm["predicted_cycles"] == c + 1
    assert lstm["count_diffs"] == {"cycles": [c, c + 1], "sigmoid.eval": [s, s + 1]}
    assert rep.cycle_mismatches >= 1 and not rep.passed
    assert f"sigmoid.eval: RTL {s}, model {s + 1}" in format_model_report(rep)


#: LSTM_CFG as ``hwsim cosim lstm-engine`` config flags (the fixture's Verilator build, from the cache).
LSTM_FLAGS = ["--pes", "8", "--banks", "4", "--data-bits", "8", "--acc-bits", "24", "--frac-bits", "5",
              "--work-sram-bytes", "512", "--weight-sram-bytes", "1024", "--hidden-sram-bytes", "8192",
              "--addr-levels", "4"]


def test_cli_lstm_model_option(tmp_path, capsys):
    """``hwsim cosim lstm-engine --model digits-tt-lstm --images 2`` (the config flags' engine: LSTM_CFG) runs
    both layers on the RTL and exits 0; the table's cycles and stalls by the stage-timing formula by hand."""
    n, P, B = 2, 8, 4
    assert LstmEngineConfig.from_dict(dict(zip([f[2:].replace("-", "_") for f in LSTM_FLAGS[::2]],
                                               map(int, LSTM_FLAGS[1::2]), strict=True))) == LSTM_CFG
    out_json = tmp_path / "rep.json"
    assert cli.main(["cosim", "lstm-engine", *LSTM_FLAGS, "--model", "digits-tt-lstm", "--images", str(n),
                     "--run-dir", str(tmp_path / "run"), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("digits-tt-lstm (int8 fixed point (") and \
        " on lstm_engine_p8_b4_d8_a24_saturate_half_up: 2 images through the RTL (" in lines[0], lines[0]
    assert "NO" not in out.split()
    # digits-tt-lstm: H = 32, N = 8, T = 8 (asserted in test_lstm_classifier_through_the_rtl); the input
    # layer's stages from its TT format, then the hidden stage (4H x H) and the gate phase (4H + 9 cycles).
    x_tr, y_tr, _, _ = zoo.load_digits_split()
    cm, _ = run.compile_model(resolve_accel(LSTM_CFG), catalog.load(LSTM_MODEL), None, x_tr[:512],
                              train_data=(x_tr, y_tr))
    H, T = 32, 8
    stages = [(s.R, s.K, s.Q) for s in tf.plan_stages(cm.fixed.lstm.fmt, cm.fixed.lstm.order)] + [(4 * H, H, 1)]
    step = sum(_stage_cycles(*st, P, B) for st in stages) + 4 * H + 9
    stalls = sum(_stage_stalls(*st, P, B) for st in stages)
    ro, ro_st = _stage_cycles(10, H, 1, P, B), _stage_stalls(10, H, 1, P, B)
    # per layer row, after the name and the shape: vectors, mismatches, rtl cyc, pred cyc, stalls, pred st, counts, ok
    rows = {ln.split()[0]: ln.split()[-8:] for ln in lines if ln.split() and ln.split()[0] in ("lstm", "readout")}
    assert rows["lstm"] == [str(v) for v in (n * H, 0, n * T * step, n * T * step, n * T * stalls,
                                                 n * T * stalls)] + ["equal", "yes"], rows
    assert rows["readout"] == [str(v) for v in (n * 10, 0, n * ro, n * ro, n * ro_st, n * ro_st)] + \
        ["equal", "yes"], rows
    assert (f"total: {n * H + n * 10} outputs compared, 0 mismatches, 0 layers with RTL cycles != predicted, "
            f"0 action/stall count differences; {n * (T * step + ro)} RTL cycles") in out
    assert "RTL logits equal the reference's: yes" in out
    data = json.loads(out_json.read_text())
    assert data["passed"] is True and data["images"] == n and [r["name"] for r in data["layers"]] == ["lstm", "readout"]
    assert data["layers"][1]["actions"]["work_sram.write"] == n * 10 and data["layers"][1]["count_diffs"] == {}


def test_cli_lstm_model_option_bad_compress_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path / "cache"))
    assert cli.main(["cosim", "lstm-engine", "--model", "digits-tt-lstm", "--compress", "int4", "--images", "1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == ("hwsim: error: --compress='int4' is not allowed on lstm-engine: expected int16 "
                                    "or no --compress (the engine runs its config's data_bits fixed point)")
    assert not (tmp_path / "cache").exists()


def test_lstm_readout_on_a_stream_x_load_engine_is_refused_before_any_build(tmp_path, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path / "cache"))
    cfg = LSTM_CFG.replace(x_load="stream")
    with pytest.raises(HwsimError, match=r"^x_load='stream' is not allowed for layer 'readout' in the "
                                         r"co-simulation: .* expected x_load='overlapped'$"):
        run_model_cosim(LSTM_MODEL, cfg, None, images=1, workdir=tmp_path / "run")
    assert not (tmp_path / "cache").exists()


# ---------------------------------------------------------------------------------------------- deformable unit
def _depthwise_dcn(path, bias: bool = False, stride: int = 1) -> str:
    """digits-dcn cut to ``DCFG.lanes`` channels with its deformable conv depthwise (no bias unless
    ``bias``): conv1 1->4, relu, maxpool, offsets conv 4->18, deformable 4->4 depthwise, relu, fc 64->10
    (``stride`` 2: the offsets conv and the deformable conv with stride 2, fc 16->10)."""
    base = catalog.load("digits-dcn")
    la = {layer.name: layer for layer in base.layers}
    c = DCFG.lanes
    d = la["dconv2"]
    layers = [Layer("conv1", "conv2d", ("input",), weight=la["conv1"].weight[:c].copy(),
                    bias=la["conv1"].bias[:c].copy(), padding=1), la["relu1"], la["pool1"],
              Layer("off2", "conv2d", ("pool1",), weight=la["off2"].weight[:, :c].copy(), bias=la["off2"].bias.copy(),
                    padding=1, stride=stride),
              Layer("dconv2", "deform_conv2d", ("pool1", "off2"), weight=d.weight[:c, :1].copy(),
                    bias=d.bias[:c].copy() if bias else None, padding=1, groups=c, stride=stride, meta=dict(d.meta)),
              la["relu2"], la["flatten"],
              Layer("fc", "linear", ("flatten",), weight=la["fc"].weight[:, :c * 16 // stride ** 2].copy(),
                    bias=la["fc"].bias.copy())]
    save_model(Model(layers, input_shape=base.input_shape, name="digits-dwdcn"), path)
    return str(path)


def _dcn_accel(deform=None) -> Accelerator:
    mac = resolve_accel("mac-array-4x4-ws").units[0]
    return Accelerator("mac-array-4x4-ws+deform-unit-4", (mac, Unit(deform or get_family("deform-unit"), DCFG)))


@pytest.fixture(scope="module")
def dwdcn(tmp_path_factory):
    return _depthwise_dcn(tmp_path_factory.mktemp("dwdcn") / "digits-dwdcn.npz")


def test_depthwise_dcn_through_the_rtl(dwdcn, tmp_path):
    n = DCN_IMAGES
    acc = _dcn_accel()
    rep = run_model_cosim(dwdcn, acc, "int8", images=n, workdir=tmp_path)
    assert rep.passed, format_model_report(rep)
    assert [r["name"] for r in rep.layers] == ["conv1", "off2", "dconv2", "fc"]
    assert all(r["mismatches"] == 0 and r["count_diffs"] == {} for r in rep.layers), rep.layers
    # The values: the compressed model's own integer forward (no unit's run, no RTL).
    x_tr, y_tr, x_te, _ = zoo.load_digits_split()
    cm, _ = run.compile_model(acc, catalog.load(dwdcn), "int8", x_tr[:512], train_data=(x_tr, y_tr))
    want = cm.forward_int(x_te[:n], cfg=acc.units[0].config)
    assert np.array_equal(rep.logits_rtl, want) and np.array_equal(rep.logits_reference, want)

    # dconv2: 4 channels of 4x4, one run per image. Bound 8 px: a 20-row line buffer holds the whole map,
    # loaded before the first item at one 4-byte word per cycle (16 stall cycles); 4 banks make every
    # bilinear fetch conflict-free, so an output row takes 4 x 9 items + 1 cycles; drain 2.
    d = rep.layers[2]
    c, h, w = DCFG.lanes, 4, 4
    items = h * w * 9
    assert d["runs"] == n and d["vectors"] == n * c * h * w, d
    assert d["rtl_cycles"] == d["predicted_cycles"] == n * (h * w + h * (w * 9 + 1) + 2), d
    assert d["stall_cycles"] == d["predicted_stall_cycles"] == n * h * w, d
    a = d["actions"]
    assert (a["sampler.sample"], a["mac.mac"], a["requant.convert"]) == (n * items, n * items * c, n * c * h * w), a
    assert a["offset_buffer.read"] == n * h * w * 18 and a["line_buffer.write"] == n * h * w, a
    assert 0 < a["line_buffer.read"] <= n * items * 4, a  # in-image neighbours: data-dependent
    assert d["outside_actions"] == {"offset_buffer.write": n * h * w * 18,
                                    "dram.read": n * (h * w * c + c * 9),  # input words and int8 weights
                                    "dram.write": n * c * h * w}


def test_dcn_wrong_expectation_is_caught(dwdcn, tmp_path, monkeypatch):
    """The family's run for each image with one line-buffer read too many is reported per image."""
    real = deform_unit_model.unit_run

    def one_more_read(cfg, layer, inputs):
        values, st = real(cfg, layer, inputs)
        return values, dataclasses.replace(st, actions=st.actions + ActionCounts({("line_buffer", "read"): 1}))

    monkeypatch.setattr(deform_unit_model, "unit_run", one_more_read)
    rep = run_model_cosim(dwdcn, _dcn_accel(), "int8", images=2, workdir=tmp_path)
    d = rep.layers[2]
    reads = d["actions"]["line_buffer.read"]
    assert d["mismatches"] == 0 and d["count_diffs"] == {"line_buffer.read": [reads, reads + 2]}, d
    assert d["count_mismatches"] == 2 and rep.count_mismatches == 2 and not rep.passed
    assert all(r["count_diffs"] == {} for r in rep.layers if r["name"] != "dconv2")


def test_digits_dcn_through_the_rtl(tmp_path):
    """digits-dcn's full 8 -> 16 deformable conv with bias on the 4-lane unit (two channel blocks; 16 outputs
    = one group of 16 out lanes): values, cycles and every count equal, and the cycles and the
    data-independent counts by hand."""
    n = 2
    acc = _dcn_accel()
    rep = run_model_cosim("digits-dcn", acc, "int8", images=n, workdir=tmp_path)
    assert rep.passed, format_model_report(rep)
    assert [r["name"] for r in rep.layers] == ["conv1", "off2", "dconv2", "fc"]
    assert all(r["mismatches"] == 0 and r["count_diffs"] == {} for r in rep.layers), rep.layers
    # The values: the compressed model's own integer forward (no unit's run, no RTL).
    x_tr, y_tr, x_te, _ = zoo.load_digits_split()
    cm, _ = run.compile_model(acc, catalog.load("digits-dcn"), "int8", x_tr[:512], train_data=(x_tr, y_tr))
    assert cm.layer("dconv2").bias is not None and np.any(cm.layer("dconv2").bias != 0)
    want = cm.forward_int(x_te[:n], cfg=acc.units[0].config)
    assert np.array_equal(rep.logits_rtl, want) and np.array_equal(rep.logits_reference, want)

    # dconv2: 8 -> 16 on 4x4, one run per image. The 20-row line buffer holds the whole map: 16 pixels x 2
    # words (channel blocks), one 4-byte word per cycle before the first item (32 stall cycles); 4 banks:
    # conflict-free, every item 1 cycle, and 16 outputs on 16 out lanes: b = 1, so an output row takes
    # 4 x 9 x 2 items + 1 cycles; drain 1 + 1.
    d = rep.layers[2]
    h, w, c, co = 4, 4, 8, 16
    items = h * w * 9 * 2
    assert d["runs"] == n and d["vectors"] == n * co * h * w, d
    assert d["rtl_cycles"] == d["predicted_cycles"] == n * (h * w * 2 + h * (w * 9 * 2 + 1) + 2), d
    assert d["stall_cycles"] == d["predicted_stall_cycles"] == n * h * w * 2, d
    a = d["actions"]
    assert (a["sampler.sample"], a["mac.mac"], a["requant.convert"]) == (n * items, n * h * w * 9 * c * co,
                                                                         n * co * h * w), a
    assert a.get("mac.idle", 0) == 0  # 2 full blocks of 4 lanes x one full group of 16: no idle slot
    assert a["offset_buffer.read"] == n * h * w * 18 and a["line_buffer.write"] == n * h * w * 2, a
    assert d["outside_actions"] == {"offset_buffer.write": n * h * w * 18,
                                    "dram.read": n * (h * w * 2 * 4 + co * c * 9),  # input words, int8 weights
                                    "dram.write": n * co * h * w}


def test_deformable_layer_outside_the_rtl_is_refused_before_any_build(tmp_path, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path / "cache"))
    path = _depthwise_dcn(tmp_path / "s2.npz", stride=2)
    with pytest.raises(HwsimError, match=r"^layer 'dconv2' is not allowed in the co-simulation of "
                                         r"deform_unit_free_b8_k3_l4_f4 \(depthwise 4->4, stride 2, padding 1, "
                                         r"dilation 1\): the RTL runs 3x3 layers, depthwise or full, with stride 1, "
                                         r"padding 1 and dilation 1, c and c_out up to max_channels == 128$"):
        run_model_cosim(path, _dcn_accel(), "int8", images=1, workdir=tmp_path / "run")
    assert not (tmp_path / "cache").exists()


def test_cli_deform_unit_model_option_on_digits_dcn(tmp_path, capsys, monkeypatch):
    """``hwsim cosim deform-unit --model digits-dcn``: with the config flags alone the accelerator is the
    deformable unit, which runs no conv2d (digits-dcn's conv1): one error line, exit 2, before any build. With
    --accel naming a MAC array and an RTL-sized unit, the model runs through both RTLs: 0 mismatches."""
    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path / "cache"))
    assert cli.main(["cosim", "deform-unit", "--model", "digits-dcn"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == ("hwsim: error: layer 'conv1' (kind conv2d) is not allowed on accelerator "
                                    "deform-unit: no unit runs conv2d layers (deform-unit runs deform_conv2d)")
    assert not (tmp_path / "cache").exists()
    monkeypatch.undo()  # the usual cache again: the builds of the tests above
    mac = resolve_accel("mac-array-4x4-ws").units[0].config
    accel = tmp_path / "mac_array_deform_unit.json"
    accel.write_text(json.dumps({"units": [{"family": "mac-array", **mac.to_dict()},
                                           {"family": "deform-unit", **DCFG.to_dict()}]}))
    assert cli.main(["cosim", "deform-unit", "--model", "digits-dcn", "--accel", str(accel), "--images", "1"]) == 0
    out = capsys.readouterr().out
    assert "dconv2     1x 8x4x4 full ->16" in out and "0 mismatches" in out, out


@pytest.mark.slow
def test_cli_digits_dcn_on_the_example_accelerator(capsys):
    """``hwsim cosim deform-unit --model digits-dcn --accel examples/mac_array_deform_unit.yaml``: the unit of
    ``hwsim simulate``'s example (8 x 8 lanes, 16 B/cycle = two input words per cycle) runs dconv2 in
    303 cycles per image, as simulate reports: fill 16 words / 2 = 8 cycles, per output row 1 + 35 x max(1, b)
    + b = 73 with b = ceil(16 / 8) = 2 (4 banks: every item 1 cycle), 4 rows, drain 1 + b = 3."""
    from pathlib import Path

    accel = Path(__file__).resolve().parents[1] / "examples" / "mac_array_deform_unit.yaml"
    assert cli.main(["cosim", "deform-unit", "--model", "digits-dcn", "--accel", str(accel), "--images", "3"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("dconv2"))
    assert row.split()[1:] == ["3x", "8x4x4", "full", "->16", str(3 * 16 * 16), "0", str(3 * 303), str(3 * 303),
                               str(3 * 8), str(3 * 8), "equal", "yes"], row
    assert "0 mismatches, 0 layers with RTL cycles != predicted, 0 action/stall count differences" in out
