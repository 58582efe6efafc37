"""Whole compressed models through the generated RTL under Verilator, through the model-run loop
(``hwsim.run.run_model`` with each unit's ``run`` replaced by its family's ``cosim_run``; default suite: a
few images).

MAC array: the reference for every GEMM is the bit-exact ``reference_gemm`` (with bias); the cycles, stalls
and action counts are the cycle model's; the accuracy from the RTL's logits must equal the reference's.
Quantized ONNX (ONNX Runtime's ``quantize_static``, tests/ort_quant_models.py) on the MAC array's float32
requantizer lanes: the RTL's output integers against ONNX Runtime's own, the float32 and zero-point counts
against hand counts of the output beats.
RF array: every V^H and U mesh pass of digits-mlp's dense layers on the emulator RTL; the expected outputs
are computed here with the spec (``hwsim.models.rf_layers.linear_layer``) and the expected cycles and
activity counts from the emulator's timing formula, independently of the co-simulation's own checks.
"""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from hwsim.cosim.mac_array_model import max_rows
from hwsim.cosim.model_cosim import RtlRun, compare_run, format_model_report, run_model_cosim
from hwsim.models import catalog, rf_layers, zoo

from hwsim import cli, run
from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.families import Accelerator, Unit, resolve_accel
from hwsim.mac_array import fold_plan
from hwsim.stats import ActionCounts
from hwsim.unit import Stats

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("accel", "spec"), [("mac-array-4x4-ws", "int8"), ("mac-array-4x4-os-int4", "int4")])
def test_digits_cnn_through_the_rtl(accel, spec, tmp_path):
    rep = run_model_cosim("digits-cnn", accel, spec, images=4, workdir=tmp_path)
    assert [r["name"] for r in rep.layers] == ["conv1", "conv2", "fc"]
    for r in rep.layers:
        assert r["vectors"] > 0 and r["mismatches"] == 0, r
        assert r["rtl_cycles"] == r["predicted_cycles"] and r["stall_cycles"] == r["predicted_stall_cycles"], r
        assert r["count_mismatches"] == 0, r
    # conv1 batches the 4 images into one GEMM of 4 x 8 x 8 output pixels (3x3 kernel, 8 channels).
    assert rep.layers[0]["shape"] == "256x9x8" and rep.layers[0]["vectors"] == 256 * 8
    assert rep.logits_equal and rep.accuracy_rtl == rep.accuracy_reference and rep.passed
    text = format_model_report(rep)
    assert "RTL logits equal the reference's: yes" in text


def test_cli_model_option(tmp_path, capsys):
    """The CLI runs the same (cached builds) and exits 0; a bad image count is one line, exit 2."""
    assert cli.main(["cosim", "mac-array", "--rows", "4", "--cols", "4", "--model", "digits-cnn", "--images", "2",
                     "--run-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "digits-cnn (int8) on mac_array_ws_int8_4x4: 2 images" in out and "NO" not in out
    assert cli.main(["cosim", "mac-array", "--model", "digits-cnn", "--images", "0"]) == 2
    assert capsys.readouterr().err.strip() == "hwsim: error: images=0 is not allowed: expected an integer in [1, 450]"


def test_max_rows_fits_the_harness_memory():
    cfg = MacArrayConfig(rows=4, cols=4)
    rows = max_rows(cfg, 10_000, 9, 8, mem_depth=1000)
    plan = fold_plan(cfg, rows, 9, 8)
    assert max(plan.na.sum(), plan.nw.sum(), plan.rows_out.sum()) <= 1000
    plan = fold_plan(cfg, rows + 1, 9, 8)
    assert max(plan.na.sum(), plan.nw.sum(), plan.rows_out.sum()) > 1000
    with pytest.raises(HwsimError, match=r"^layer k=9 n=8 is not allowed in the co-simulation"):
        max_rows(cfg, 10, 9, 8, mem_depth=1)


def test_digits_mlp_on_the_rf_emulator_rtl(tmp_path):
    """rf-array-4 (4-port Clements emulator, one Verilator build): digits-mlp's 64-64-32-10 dense layers,
    256 + 128 + 24 SVD tiles, each tile a V^H and a U pass over the batch on the RTL."""
    images = 3
    rep = run_model_cosim("digits-mlp", "rf-array-4", "int8", images=images, workdir=tmp_path)
    assert rep.passed, format_model_report(rep)
    assert len(rep.builds) == 1 and rep.builds[0].startswith("rf_mesh_clements_4_")

    # The values, independently: the compiled model with every dense layer on the spec.
    acc = resolve_accel("rf-array-4")
    cfg = acc.units[0].config
    x_tr, y_tr, x_te, y_te = zoo.load_digits_split()
    cm, _ = run.compile_model(acc, catalog.load("digits-mlp"), "int8", x_tr[:512], train_data=(x_tr, y_tr))
    x = x_te[:images]
    want = cm.run_int(cm.quantize_input(x), layer_fn=lambda la, ins: rf_layers.linear_layer(cfg, la, ins[0]))
    assert np.array_equal(rep.logits_rtl, want) and np.array_equal(rep.logits_reference, want)
    assert rep.accuracy_rtl == float(np.mean(want.argmax(axis=1) == y_te[:images]))

    # The counts, independently: n = 4 ports, Clements (n columns), n(n-1)/2 MZIs, 2 codes per MZI plus n
    # output-screen codes, one code per cycle; per pass 1 + (C - 1) + V + L busy cycles, L = 7 registers per
    # column (a rotator's 3 and a 2x2 mixer's 4) + 3 (the output screen's rotator).
    n, mzis = 4, 4 * 3 // 2
    codes = 2 * mzis + n
    per_pass = 1 + (codes - 1) + images + 7 * n + 3
    shapes = {"fc1": (64, 64), "fc2": (64, 32), "fc3": (32, 10)}
    assert [r["name"] for r in rep.layers] == list(shapes)
    for r in rep.layers:
        i, o = shapes[r["name"]]
        passes = 2 * -(-i // n) * -(-o // n)
        assert r["runs"] == passes and r["vectors"] == images * o and r["mismatches"] == 0, r
        assert r["rtl_cycles"] == r["predicted_cycles"] == passes * per_pass, r
        assert r["stall_cycles"] == r["predicted_stall_cycles"] == 0, r
        assert r["actions"] == {"code_reg.write": passes * codes, "rotator.rotate": passes * mzis * images,
                                "mixer.mix": passes * mzis * images, "screen.rotate": passes * n * images}, r
        assert r["count_mismatches"] == 0 and r["count_diffs"] == {}, r


def test_cli_rf_array_model_option(tmp_path, capsys):
    """``hwsim cosim rf-array --model`` (the config flags' 4-port emulator: the cached build) exits 0."""
    assert cli.main(["cosim", "rf-array", "--n", "4", "--model", "digits-mlp", "--images", "2",
                     "--run-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "digits-mlp (int8) on rf_mesh_clements_4_" in out and "2 images" in out and "NO" not in out
    assert "0 mismatches, 0 layers with RTL cycles != predicted, 0 action/stall count differences" in out


def test_family_without_cosim_run_is_one_line():
    acc = resolve_accel("mac-array-4x4-ws")
    fam = dataclasses.replace(acc.units[0].family, cosim_run=None)
    bare = Accelerator("bare", (Unit(fam, acc.units[0].config),))
    with pytest.raises(HwsimError, match=r"^--accel='bare' is not allowed for the model co-simulation: mac-array "
                                         r"has no cosim_run entry point"):
        run_model_cosim("digits-cnn", bare, "int8", images=1)


def test_generic_model_cosim_names_no_family():
    words = re.compile(r"mac[-_]array|lstm|deform|\brf[-_]|mzi|systolic|dataflow|\bpe_|interferometer", re.I)
    path = ROOT / "cosim" / "model_cosim.py"
    hits = [f"{i}: {line}" for i, line in enumerate(path.read_text().splitlines(), 1) if words.search(line)]
    assert not hits, "\n".join(hits)


def test_compare_run_reports_every_difference():
    """A run whose measured cycles, stalls or any action count differ from predict's is reported field by
    field (a missing pair counts as 0); fields the run does not declare measured are not compared."""
    want = Stats(100, 2, 8, ActionCounts({("a", "x"): 5, ("b", "y"): 3}), sram_read_bytes=7)
    got = Stats(101, 2, 0, ActionCounts({("a", "x"): 5, ("c", "z"): 1}), sram_read_bytes=9)
    _, diffs = compare_run(lambda cfg, op: want, RtlRun("op", None, got, diffs={"beats": [1, 2]}))
    assert diffs == {"cycles": [101, 100], "b.y": [0, 3], "c.z": [1, 0], "tb:beats": [1, 2]}
    _, diffs = compare_run(lambda cfg, op: want, RtlRun("op", None, got, compared=("sram_read_bytes",)))
    assert diffs == {"sram_read_bytes": [9, 7]}
    assert compare_run(lambda cfg, op: want, RtlRun("op", None, want))[1] == {}


# ---------------------------------------------------------------------------------------------- quantized ONNX
#: The float32-requantizer top (``--rows 4 --cols 4 --requantizer f32``), the build the corner regression in
#: tests/test_cosim.py shares.
F32_ACCEL = MacArrayConfig(rows=4, cols=4, requantizer="f32")


@pytest.fixture(scope="module")
def ort_model(tmp_path_factory):
    """``ort_model(net, form)``: the path of a ``quantize_static`` model (made once per module)."""
    pytest.importorskip("onnxruntime.quantization")
    import ort_quant_models as oqm

    made, d = {}, tmp_path_factory.mktemp("ortq")

    def get(net: str, form: str) -> str:
        if (net, form) not in made:
            build = {"residual": oqm.residual_cnn, "gap": oqm.gap_cnn}[net]
            made[net, form] = oqm.quantize(build(), form, d)
        return made[net, form]

    return get


def _check_onnx_cosim(path: str, images: int, tmp_path, accel=F32_ACCEL):
    """The model through the RTL: passed; its output integers ONNX Runtime's; per layer, float32
    requantizations = output rows x real lanes (clock gating; ungated: m x ceil(n / cols) beats of cols lanes), each a zero-point
    correction when the layer's input zero point is not 0, and no power-of-two requantization."""
    import ort_quant_models as oqm
    from hwsim.models.onnx_import import load_onnx, to_compressed

    rep = run_model_cosim(path, accel, "onnx", images=images, workdir=tmp_path)
    assert rep.passed, format_model_report(rep)
    cm = to_compressed(load_onnx(path))
    x = zoo.load_digits_split()[2][:images]
    want = oqm.ort_codes(path, x)
    np.testing.assert_array_equal(rep.logits_rtl + cm.layers[-1].meta.get("offset", 0), want)
    layers = {la.name: la for la in cm.compute_layers()}
    assert [r["name"] for r in rep.layers] == list(layers)
    for r in rep.layers:
        la = layers[r["name"]]
        n = la.weight.shape[0]
        m = images * (int(np.prod(la.out_shape[1:])) if la.kind == "conv2d" else 1)  # out_shape (C, H, W)
        # idle-lane gating (clock, the default): only the n real lanes of each output row are requantized
        lanes = m * (n if accel.gating != "none" else -(-n // accel.cols) * accel.cols)
        assert r["actions"]["requant.convert_f32"] == lanes, r
        assert r["actions"].get("requant.zp_add", 0) == (lanes if la.in_zp or la.weight_zp is not None else 0), r
        assert r["actions"].get("requant.convert", 0) == 0, r
    return rep, cm


def test_quantize_static_model_through_the_f32_rtl(ort_model, tmp_path):
    """The residual digits CNN, U8S8 QDQ per channel (uint8 activations shifted into int8, every zero point
    non-zero): 0 mismatches in values, cycles and counts, and the RTL's integers are ONNX Runtime's."""
    _, cm = _check_onnx_cosim(ort_model("residual", "qdq-u8s8-pc"), 1, tmp_path)
    assert all(la.in_zp != 0 and la.requant == "f32" for la in cm.compute_layers())


@pytest.mark.slow
@pytest.mark.parametrize(("net", "form"), [("residual", "qdq-s8s8-pc"), ("residual", "qop-u8s8"),
                                           ("gap", "qdq-u8s8"), ("gap", "qop-s8s8-pc")])
def test_more_quantize_static_models_through_the_f32_rtl(ort_model, net, form, tmp_path):
    _check_onnx_cosim(ort_model(net, form), 3, tmp_path)


def test_float_scale_model_needs_the_f32_top(ort_model):
    """On a top without float32 lanes, or with weight zero points on a top without the row-sum unit, the model
    is refused in one line before any build."""
    path = ort_model("gap", "qdq-u8s8")
    with pytest.raises(HwsimError, match=r"^requantizer='shift' is not allowed for layer 'conv1' \(float32 "
                                         r"scales, ONNX Runtime's requantizer\) in the co-simulation: .*"
                                         r"expected --requantizer f32"):
        run_model_cosim(path, "mac-array-4x4-ws", "onnx", images=1)
    from hwsim.cosim.mac_array_model import check
    from hwsim.models.onnx_import import load_onnx, to_compressed

    la = to_compressed(load_onnx(path)).compute_layers()[0]
    check(F32_ACCEL, la)
    with_wzp = dataclasses.replace(la, weight_zp=np.ones(la.weight.shape[0], dtype=np.int64))
    with pytest.raises(HwsimError, match=r"^weight_zero_points=False is not allowed for layer 'conv1' \(weights "
                                         r"with zero points\) in the co-simulation: .* expected --weight-zero-points"):
        check(F32_ACCEL, with_wzp)
    check(F32_WZP_ACCEL, with_wzp)


#: The float32-requantizer top with the row-sum unit (``--rows 4 --cols 4 --requantizer f32
#: --weight-zero-points``), the build tests/test_weight_zero_points_rtl.py shares.
F32_WZP_ACCEL = MacArrayConfig(rows=4, cols=4, requantizer="f32", weight_zero_points=True)


def _check_row_counts(rep, cm, images: int) -> None:
    """Per layer, by hand: the row-sum unit adds every activation of every output row once (m x k; WS sums a
    row while its first n-tile streams) and the row term multiplies once per real output (m x n)."""
    layers = {la.name: la for la in cm.compute_layers()}
    for r in rep.layers:
        la = layers[r["name"]]
        n, k = la.weight.shape[0], int(np.prod(la.weight.shape[1:]))
        m = images * (int(np.prod(la.out_shape[1:])) if la.kind == "conv2d" else 1)
        assert r["actions"]["requant.zp_row_add"] == m * k, r
        assert r["actions"]["requant.zp_row_mult"] == m * n, r


@pytest.mark.parametrize(("net", "form"), [("residual", "qdq-u8u8"), ("gap", "qop-u8u8")])
def test_uint8_weights_with_zero_points_through_the_rtl(ort_model, net, form, tmp_path):
    """U8U8 (uint8 weights, per tensor: ONNX Runtime gives them zero points) through the row-sum unit: 0
    mismatches in values, cycles and counts, the RTL's integers ONNX Runtime's, the row counts by hand."""
    path = ort_model(net, form)
    rep, cm = _check_onnx_cosim(path, 2, tmp_path, accel=F32_WZP_ACCEL)
    assert all(la.weight_zp is not None and np.any(la.weight_zp != 0) for la in cm.compute_layers())
    _check_row_counts(rep, cm, 2)


def test_cli_cosim_model_with_weight_zero_points(ort_model, tmp_path, capsys):
    """``hwsim cosim mac-array --requantizer f32 --weight-zero-points --model M.onnx`` exits 0 (the cached
    build); without ``--weight-zero-points`` it is one line, exit 2."""
    path = ort_model("gap", "qdq-u8u8")
    flags = ["cosim", "mac-array", "--rows", "4", "--cols", "4", "--requantizer", "f32"]
    assert cli.main([*flags, "--weight-zero-points", "--model", path, "--images", "1",
                     "--run-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "on mac_array_ws_int8_4x4_f32_wzp: 1 images" in out and "0 mismatches" in out and "NO" not in out
    assert cli.main([*flags, "--model", path, "--images", "1"]) == 2
    assert capsys.readouterr().err.startswith("hwsim: error: weight_zero_points=False is not allowed for layer "
                                              "'conv1' (weights with zero points) in the co-simulation")
