"""A model with a deformable layer (digits-dcn) in the graph, the integer pipeline and ``hwsim simulate`` on
an accelerator with a MAC array and a deformable unit (issue 11)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hwsim.models import deform_models, zoo
from hwsim.models.compress import compress
from hwsim.models.compressed import Arith
from hwsim.models.graph import Layer, Model
from hwsim.models.graph import load_model as load_model_path
from test_deform_reference import loop_fixed, loop_float

from hwsim.errors import HwsimError
from hwsim.simulate import format_report, simulate

TWO_UNITS = Path(__file__).resolve().parent.parent / "examples" / "mac_array_deform_unit.yaml"


@pytest.fixture(scope="module")
def split():
    return zoo.load_digits_split()


@pytest.fixture(scope="module")
def dcn():
    return deform_models.load("digits-dcn")


@pytest.fixture(scope="module")
def cm(dcn, split):
    return compress(dcn, "int8", split[0][:512])


# ------------------------------------------------------------------------------------------ graph (float)
def test_graph_deform_layer_matches_direct_loop():
    rng = np.random.default_rng(3)
    layers = [
        Layer("off", "conv2d", ("input",), rng.normal(0, 0.8, (18, 3, 3, 3)), rng.normal(0, 0.5, 18), padding=1),
        Layer("d", "deform_conv2d", ("input", "off"), rng.normal(0, 1, (4, 3, 3, 3)), rng.normal(0, 1, 4),
              padding=1, meta={"offset_bound": 1.5}),
    ]
    m = Model(layers, (3, 5, 6), "toy")
    x = rng.normal(0, 1, (2, 3, 5, 6))
    acts = m.forward_float(x, return_all=True)
    assert m.shapes()["d"] == (4, 5, 6) and m.macs()["d"] == 4 * 27 * 30
    for i in range(2):
        off = np.clip(acts["off"][i], -1.5, 1.5)
        assert np.abs(acts["off"][i]).max() > 1.5  # the bound clamps something
        want = loop_float(x[i], off, layers[1].weight, layers[1].bias, 1, 1, 1, 1, None)
        np.testing.assert_allclose(acts["d"][i], want, rtol=1e-12, atol=1e-12)


def test_graph_rejects_bad_deform_layers():
    w = np.zeros((4, 3, 3, 3))
    with pytest.raises(HwsimError, match=r"^layer 'd': inputs=\['input'\] is not allowed: deform_conv2d takes 2"):
        Layer("d", "deform_conv2d", ("input",), w)
    with pytest.raises(HwsimError, match=r"^layer 'd': meta\['offset_bound'\]=-1 is not allowed: expected a number"):
        Layer("d", "deform_conv2d", ("input", "input"), w, meta={"offset_bound": -1})
    off = Layer("off", "conv2d", ("input",), np.zeros((16, 3, 3, 3)), padding=1)
    with pytest.raises(HwsimError, match=r"^layer 'd': offset shape \(16, 5, 5\) is not allowed: expected "
                                         r"\(2 \* G \* 3 \* 3, 5, 5\)"):
        Model([off, Layer("d", "deform_conv2d", ("input", "off"), w, padding=1)], (3, 5, 5))


# ------------------------------------------------------------------------------------------ zoo model
def test_digits_dcn_accuracy_documented(dcn, split):
    _, _, x_te, y_te = split
    acc = dcn.accuracy(x_te, y_te)
    assert acc == pytest.approx(deform_models.DOCUMENTED_ACCURACY["digits-dcn"], abs=1e-12)
    assert acc == pytest.approx(dcn.meta["test_accuracy"], abs=1e-6) and acc >= 0.97
    assert [la.kind for la in dcn.layers] == ["conv2d", "relu", "maxpool", "conv2d", "deform_conv2d", "relu",
                                              "flatten", "linear"]
    assert dcn.macs() == {"conv1": 8 * 9 * 64, "off2": 18 * 72 * 16, "dconv2": 16 * 72 * 16, "fc": 2560}


def test_training_forward_and_gradients(dcn, split):
    """The training script's batched forward equals the graph's; its backward equals finite differences."""
    from hwsim.models.zoo import train_dcn_digits as T

    x = split[0][:4]
    np.testing.assert_allclose(T.forward(dcn, x), dcn.forward_float(x), rtol=1e-10, atol=1e-10)
    rng = np.random.default_rng(0)
    m = T.build(rng)
    L = {la.name: la for la in m.layers}
    L["off2"].weight = rng.normal(0, 0.5, L["off2"].weight.shape)  # offsets of about a pixel
    y = np.arange(4)

    def loss():
        z = T.forward(m, x)
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(4), y] - np.log(np.exp(z).sum(axis=1))).sum())

    logits, cache = T.forward(m, x, cache=True)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(4), y] -= 1
    grads = T._grads(m, cache, p)
    for name in ("conv1", "off2", "dconv2"):
        w = L[name].weight
        for idx in [tuple(rng.integers(0, s) for s in w.shape) for _ in range(3)]:
            old = w[idx]
            w[idx] = old + 1e-6
            up = loss()
            w[idx] = old - 1e-6
            down = loss()
            w[idx] = old
            assert grads[name][0][idx] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-7)


@pytest.mark.slow
def test_training_reproduces_committed_weights(dcn, split):
    from hwsim.models.zoo import train_dcn_digits as T

    fresh = T.train(split[0], split[1])
    for a, b in zip(fresh.layers, dcn.layers, strict=True):
        if a.weight is not None:
            np.testing.assert_allclose(a.weight, b.weight, rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------ integer layer
def test_int8_offsets_are_q4_and_int_equals_fakequant(cm, dcn, split):
    _, _, x_te, y_te = split
    assert cm.layer("off2").out_exp == -4 and cm.layer("dconv2").meta["frac_bits"] == 4
    assert cm.layer("dconv2").relu and "relu2" not in [q.name for q in cm.layers]
    np.testing.assert_array_equal(cm.forward_int(x_te) * 2.0 ** cm.output_exp, cm.forward_fakequant(x_te))
    assert abs(cm.accuracy(x_te, y_te) - dcn.accuracy(x_te, y_te)) <= 0.01


@pytest.mark.parametrize("arith", [Arith(), Arith(acc_bits=24, overflow="wrap", rounding="half_even")])
def test_integer_deform_layer_matches_per_pixel_loop(cm, split, arith):
    acts = cm.forward_int(split[2][:3], cfg=arith, return_all=True)
    q = cm.layer("dconv2")
    assert np.abs(acts["off2"]).max() > 4  # offsets of a quarter pixel and more reach the layer
    for i in range(3):
        want = loop_fixed(acts["pool1"][i], acts["off2"][i], q.weight, 4, int(q.shift[0]), 1, 1, 1, 1,
                          arith.acc_bits, arith.overflow, arith.rounding, bias=q.bias, relu=True)
        np.testing.assert_array_equal(acts["dconv2"][i], want)


def test_compress_rejects_unsupported_specs(dcn, split):
    with pytest.raises(HwsimError, match=r"^compress='prune50\+int8' is not allowed for model 'digits-dcn' \(it has "
                                         r"deform_conv2d layers\): expected int8 or int4 \(optionally -pc\)$"):
        compress(dcn, "prune50+int8", split[0][:64])


# ------------------------------------------------------------------------------------------ simulate
@pytest.fixture(scope="module")
def report():
    return simulate("digits-dcn", str(TWO_UNITS), progress=False)


def test_simulate_on_mac_array_and_deform_unit(report, cm, split):
    rep = report
    assert rep.simulated_equals_reference and rep.accuracy_simulated == rep.accuracy_reference
    assert rep.accuracy_reference == pytest.approx(cm.accuracy(split[2], split[3]), abs=1e-12)
    assert [(lr.name, lr.unit) for lr in rep.layers] == [("conv1", "mac-array"), ("off2", "mac-array"),
                                                         ("dconv2", "deform-unit"), ("fc", "mac-array")]
    assert [lr.macs for lr in rep.layers] == [8 * 9 * 64, 18 * 72 * 16, 16 * 72 * 16, 2560]
    d = rep.layers[2]
    # Hand count from the unit's timing model: 8 channels fit one 8-lane word, so every item (pixel, tap) is one
    # conflict-free sample (4 banks) and the full conv's MAC stage takes ceil(16 / 8 out lanes) = 2 cycles:
    # a row is 1 + 35 * 2 + 2 = 73 cycles, 4 rows; the 20-row window holds the whole 4x4x8 map, loaded first
    # in ceil(4 rows * 32 B / 16 B per cycle) = 8 cycles; drain 1 + 2.
    assert (d.cycles, d.stall_cycles) == (8 + 4 * 73 + 3, 8)
    # per-unit rows add up to the whole
    mac, dfm = rep.units
    assert (mac.unit, dfm.unit, dfm.layers) == ("mac-array", "deform-unit", ["dconv2"])
    assert mac.cycles + dfm.cycles == rep.cycles == sum(lr.cycles for lr in rep.layers)
    assert mac.macs + dfm.macs == rep.macs == 46336
    assert math.isclose(mac.energy_pj + dfm.energy_pj, rep.energy_pj, rel_tol=1e-12)
    assert dfm.energy_pj == pytest.approx(d.total_pj, rel=1e-12) and dfm.energy_pj > 0
    assert math.isclose(mac.area_mm2 + dfm.area_mm2, rep.area_mm2, rel_tol=1e-12)
    assert rep.latency_us == pytest.approx(rep.cycles * 2e-3)  # both units at 500 MHz
    # the GEMM layers cost what they cost on the single-unit array (conv1 is digits-cnn's conv1), except that
    # here the deformable unit reads conv1's 8x8x8 output too: written to DRAM for it (512 B x 64 pJ/B,
    # LPDDR4) out of the global buffer (64 words of 64 bits x 36 pJ at 64 KiB)
    single = simulate("digits-cnn", "mac-array-8x8-ws", progress=False)
    assert rep.layers[0].cycles == single.layers[0].cycles
    assert rep.layers[0].dram_bytes == single.layers[0].dram_bytes + 512
    assert rep.layers[0].total_pj == pytest.approx(single.layers[0].total_pj + 512 * 64.0 + 64 * 36.0, rel=1e-12)
    text = format_report(rep)
    assert "Per unit, one inference:" in text and "deform-unit" in text and "Per unit" not in format_report(single)


def test_deformable_layer_needs_a_deformable_unit():
    with pytest.raises(HwsimError, match=r"^layer 'dconv2' \(kind deform_conv2d\) is not allowed on accelerator "
                                         r"mac-array-8x8-ws: no unit runs deform_conv2d layers \(mac-array runs "
                                         r"conv2d, linear\)$"):
        simulate("digits-dcn", "mac-array-8x8-ws", progress=False)


def test_cli_routing_error_exits_2(capsys):
    from hwsim.cli import main

    assert main(["simulate", "digits-dcn", "--accel", "mac-array-8x8-ws"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwsim: error: layer 'dconv2' (kind deform_conv2d)") and "\n" not in err


@pytest.mark.parametrize("change, msg", [
    ("frac_bits: 6", r"its offsets are Q\.4, the unit has frac_bits=6"),
    ("offset_mode: square", r"offset_mode='square' \(the layer has free \(dy, dx\) offsets per tap; expected 'free'\)"),
    ("offset_bound: 2", r"offset_bound=2(\.0)? clamps its offsets differently from the layer, which has no bound "
                        r"\(offsets are 8-bit Q\.4 codes\)"),
    ("kernel: 5", r"its 3x3 kernel does not match kernel=5"),
])
def test_deform_unit_mismatch_is_one_line(tmp_path, change, msg):
    key = change.split(":")[0]
    lines = [ln for ln in TWO_UNITS.read_text().splitlines() if not ln.strip().startswith(key + ":")]
    lines.append(f"    {change}")
    p = tmp_path / "accel.yaml"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(HwsimError, match=rf"^layer 'dconv2' is not allowed on deform-unit: {msg}$"):
        simulate("digits-dcn", str(p), progress=False)


def test_unit_without_offset_array():
    from hwsim.deform_unit import DeformLayer, DeformUnitConfig, inventory, predict_layer

    own, shared = DeformUnitConfig(), DeformUnitConfig(offset_array=False)
    names_own = {c.name for c in inventory(own).components}
    names_shared = {c.name for c in inventory(shared).components}
    assert {n for n in names_own if n.startswith("oc_")} and names_own - names_shared == {
        n for n in names_own if n.startswith("oc_")}
    layer = DeformLayer("l", 8, 6, 6, 8, depthwise=True)
    a, b = predict_layer(own, layer), predict_layer(shared, layer)
    assert a.detail["offset_cycles"] > 0 and b.detail["offset_cycles"] == 0 and a.detail["unit_cycles"] == b.detail["unit_cycles"] == b.cycles
    with pytest.raises(HwsimError, match=r"^with_offset_conv=True is not allowed with offset_array=False"):
        predict_layer(shared, layer, with_offset_conv=True)


def test_depthwise_deform_model_with_large_offsets(tmp_path):
    """A depthwise deformable layer whose offsets reach the bound and leave the map: bit-exact on the unit."""
    from hwsim.models.graph import save_model

    rng = np.random.default_rng(5)
    layers = [
        Layer("conv1", "conv2d", ("input",), rng.normal(0, 0.5, (8, 1, 3, 3)), rng.normal(0, 0.1, 8), padding=1),
        Layer("relu1", "relu", ("conv1",)),
        Layer("off", "conv2d", ("relu1",), rng.normal(0, 1.5, (18, 8, 3, 3)), rng.normal(0, 1, 18), padding=1),
        Layer("dw", "deform_conv2d", ("relu1", "off"), rng.normal(0, 0.5, (8, 1, 3, 3)), rng.normal(0, 0.1, 8),
              padding=1, groups=8, meta={"offset_bound": 6.0}),
        Layer("flatten", "flatten", ("dw",)),
        Layer("fc", "linear", ("flatten",), rng.normal(0, 0.1, (10, 512)), np.zeros(10)),
    ]
    path = tmp_path / "dw.npz"
    save_model(Model(layers, (1, 8, 8), "dw"), path)
    yaml = TWO_UNITS.read_text().replace("offset_bound: 8", "offset_bound: 6")
    accel = tmp_path / "two.yaml"
    accel.write_text(yaml)
    rep = simulate(str(path), str(accel), progress=False)
    assert rep.simulated_equals_reference and [lr.unit for lr in rep.layers] == [
        "mac-array", "mac-array", "deform-unit", "mac-array"]
    assert rep.layers[2].macs == 8 * 9 * 64
    cm = compress(load_model_path(path), "int8", zoo.load_digits_split()[0][:512])
    offs = cm.forward_int(zoo.load_digits_split()[2][:20], return_all=True)["off"]
    assert np.abs(offs).max() >= 6 * 16  # some offsets reach the bound of 6 pixels (clamped)
