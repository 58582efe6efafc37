"""Weights with zero points in the generated RTL (issue 22): the MAC array top's row-sum unit
(``weight_zero_points``) and the float32 lanes' row term ``-z_w[n] * sum_k a[m, k]``, under Verilator.

Every value is checked against a direct computation independent of the reference and the RTL's algorithm
(``sum_k (a - z_x)(w - z_w) + bias`` in Python integers, then NumPy's float32 requantization), and every
GEMM's cycles and action counts against the cycle model, the row-sum counts also against hand counts.
Corners: zero points at the weight type's ends (int8 -128 and 127; uint8 0 and 255 as the import shifts
them, -128 and 127), per-channel zero points, K over several folds, odd shapes (1xN, Nx1, primes), several
m-tiles (WS) and output-channel tiles (IS), saturation at both ends, on WS, OS and IS.
"""

from __future__ import annotations

import numpy as np
import pytest
from hwsim.cosim.regression import build_mac_array, random_layers
from hwsim.cosim.runner import run_job
from hwsim.models.mac_array import zero_point_correction

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.mac_array import predict_gemm

#: The float-layer regression's top, the same build as the model co-simulation's in tests/test_cosim_model.py.
WZP_CFG = MacArrayConfig(rows=4, cols=4, requantizer="f32", weight_zero_points=True)
#: Small tops whose SRAMs force several tiles: WS m_tile 5 (output SRAM of 5 rows), OS k_chunk 4 (input SRAM),
#: IS 4 output channels per tile (weight SRAM).
CORNER_CFGS = {
    "ws": MacArrayConfig(rows=3, cols=2, requantizer="f32", weight_zero_points=True, output_sram_bytes=40),
    "os": MacArrayConfig(rows=3, cols=2, dataflow="os", requantizer="f32", weight_zero_points=True,
                         input_sram_bytes=24),
    "is": MacArrayConfig(rows=3, cols=2, dataflow="is", requantizer="f32", weight_zero_points=True,
                         weight_sram_bytes=24),
}


def _f32_out(acc: int, scale: np.float32, zp: int, lo: int, hi: int) -> int:
    f = np.float32(np.float32(acc) * scale)
    return min(max(int(np.rint(float(f))) + zp, lo), hi)


def _direct_gemm(a, w, zx, zw, bias, scale, zp, lo, hi) -> tuple[np.ndarray, list[int]]:
    """``sum_k (a - zx)(w - zw[n]) + bias[n]`` in Python integers, requantized in float32; and the raw values."""
    m, k = a.shape
    n = w.shape[1]
    out, raw = np.empty((m, n), dtype=np.int64), []
    for i in range(m):
        for j in range(n):
            acc = int(bias[j]) + sum((int(a[i, t]) - zx) * (int(w[t, j]) - int(zw[j])) for t in range(k))
            out[i, j] = _f32_out(acc, scale[j], zp, lo, hi)
            raw.append(int(np.rint(float(np.float32(np.float32(acc) * scale[j])))) + zp)
    return out, raw


def _direct_conv(layer: dict) -> np.ndarray:
    """A float-scale regression layer (:func:`hwsim.cosim.regression.float_layer`) with weight zero points as a
    direct convolution over the input padded with its zero point: ``sum (x - zx)(w - zw[o]) + bias``."""
    case, spec = layer["f32_case"], layer["requant"]
    x, w, zx, s, zw = np.array(case["x"]), np.array(case["w"]), case["in_zp"], case["stride"], case["w_zp"]
    scale = np.array(spec["scale_bits"], dtype=np.uint32).view(np.float32)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=zx)
    cout, cin = w.shape[:2]
    oh = (xp.shape[1] - 3) // s + 1
    out = np.empty((oh * oh, cout), dtype=np.int64)
    for o in range(cout):
        for y in range(oh):
            for xx in range(oh):
                acc = int(case["bias"][o]) + sum(
                    (int(xp[c, y * s + i, xx * s + j]) - zx) * (int(w[o, c, i, j]) - zw[o])
                    for c in range(cin) for i in range(3) for j in range(3))
                out[y * oh + xx, o] = _f32_out(acc, scale[o], spec["zero_point"], spec["lo"], spec["hi"])
    return out


def _run(cfg: MacArrayConfig, layers: list[dict], tmp_path) -> tuple[list[dict], dict[int, np.ndarray]]:
    job = {"family": "mac-array", "config": cfg.to_dict(), "layers": layers, "save_outputs": True}
    rows = run_job(build_mac_array(cfg), job, workdir=tmp_path)["layers"]
    for row in rows:
        assert row["mismatches"] == 0 and row["rtl_cycles"] == row["predicted_cycles"], row
        assert row["count_diffs"] == {} and row["actions"] == row["predicted_actions"], row
    with np.load(tmp_path / "outputs.npz") as saved:
        return rows, {int(k): saved[k] for k in saved.files}


def test_float_layers_with_weight_zero_points_in_rtl(tmp_path):
    """The randomized float-layer regression on a top with the row-sum unit: every float layer's weights have
    zero points (per tensor at -128, 127, 0 ...; per channel with both ends), interleaved with power-of-two
    layers on the same build (no row term: no row-sum additions); values against a direct convolution."""
    layers = random_layers(WZP_CFG, seed=22, count=10)
    rows, outs = _run(WZP_CFG, layers, tmp_path)
    f32 = [i for i, la in enumerate(layers) if "requant" in la]
    assert f32 == [1, 3, 5, 7, 9]
    zps = set()
    for i in f32:
        np.testing.assert_array_equal(outs[i], _direct_conv(layers[i]), err_msg=layers[i]["shape"])
        a = rows[i]["actions"]
        m, k = np.shape(layers[i]["a"])
        n = len(layers[i]["requant"]["row_zp"])
        assert a["zp_row_adds"] == m * k and a["zp_row_mults"] == m * n, layers[i]["shape"]
        zps |= set(layers[i]["requant"]["row_zp"])
    assert {-128, 127, 0} <= zps
    assert len(set(layers[3]["requant"]["row_zp"])) > 1  # per channel
    for i in range(0, 10, 2):
        assert rows[i]["actions"]["zp_row_adds"] == rows[i]["actions"]["zp_row_mults"] == 0


def _corner_layers(cfg: MacArrayConfig) -> tuple[list[dict], list[tuple]]:
    """GEMM layers at the corners (and the data of their direct computation)."""
    rng = np.random.default_rng(2207)
    R = cfg.rows
    shapes = [(1, 3 * R + 2, 7), (11, 3 * R + 2, 1), (13, 17, 5), (1, 1, 1), (7, 1, 3), (17, 29, 3), (2, 23, 9)]
    zw_cases = ["lo", "hi", "pc", "u8-0", "u8-255", "pc", "pc"]
    zx_cases = [-128, 127, 0, 5, -128, 127, -1]
    layers, direct = [], []
    for i, ((m, k, n), zwc, zx) in enumerate(zip(shapes, zw_cases, zx_cases, strict=True)):
        extreme = i % 2 == 0
        a = rng.choice([-128, 127], (m, k)) if extreme else rng.integers(-128, 128, (m, k))
        w = rng.choice([-128, 127], (k, n)) if extreme else rng.integers(-128, 128, (k, n))
        if zwc == "pc":
            zw = rng.integers(-128, 128, n)
            zw[:2] = [-128, 127][:n]
        else:  # int8 ends; uint8 0 and 255 shifted by -128 as the ONNX import shifts uint8 weights
            zw = np.full(n, {"lo": -128, "hi": 127, "u8-0": 0 - 128, "u8-255": 255 - 128}[zwc])
        bias = rng.integers(-(1 << 14), 1 << 14, n)
        scale = (2.0 ** rng.uniform(-22, -8, n)).astype(np.float32)
        scale[::2] = np.float32(2.0 ** 4)  # saturates at both ends
        zp, relu = int(rng.choice([-128, 0, 127])), bool(i % 3 == 1)
        lo, hi = (max(-128, zp) if relu else -128), 127
        spec = {"scale_bits": [int(v) for v in scale.view(np.uint32)], "zero_point": zp, "lo": lo, "hi": hi,
                "row_zp": [int(z) for z in zw]}
        layers.append({"kind": "gemm", "name": f"wzp{i}", "a": a.tolist(), "w": w.tolist(),
                       "bias": (bias + zero_point_correction(w, zx, zw)).tolist(), "shift": 0, "relu": relu,
                       "requant": spec, "zp_correction": True, "shape": f"{m}x{k}x{n} zw {zwc} zx {zx}"})
        direct.append((a, w, zx, zw, bias, scale, zp, lo, hi))
    # a float layer without weight zero points on the same top: the row-sum unit idles
    a, w = rng.integers(-128, 128, (5, 7)), rng.integers(-128, 128, (7, 3))
    scale = np.full(3, 2.0 ** -8, dtype=np.float32)
    layers.append({"kind": "gemm", "name": "symmetric", "a": a.tolist(), "w": w.tolist(), "shift": 0, "relu": False,
                   "requant": {"scale_bits": [int(v) for v in scale.view(np.uint32)], "zero_point": 0, "lo": -128,
                               "hi": 127}, "shape": "5x7x3 symmetric"})
    direct.append((a, w, 0, np.zeros(3, np.int64), np.zeros(3, np.int64), scale, 0, -128, 127))
    return layers, direct


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_weight_zero_point_corners_in_rtl(dataflow, tmp_path):
    """Corner GEMMs on WS, OS and IS tops whose small SRAMs force several tiles: values against the direct
    computation, cycles and counts against the model, and the row-sum counts by hand (IS sums each output
    channel tile's stationary activations again: m x k per tile of ``is_m_tile`` channels)."""
    cfg = CORNER_CFGS[dataflow]
    m_step, k_step = cfg.fold_steps
    assert (m_step, k_step) == {"ws": (5, 3), "os": (3, 4), "is": (4, 3)}[dataflow]
    layers, direct = _corner_layers(cfg)
    rows, outs = _run(cfg, layers, tmp_path)
    raw = []
    for i, (la, d) in enumerate(zip(layers, direct, strict=True)):
        want, r = _direct_gemm(*d)
        raw += r
        np.testing.assert_array_equal(outs[i], want, err_msg=la["shape"])
        m, k = np.shape(la["a"])
        n = np.shape(la["w"])[1]
        a = rows[i]["actions"]
        tiles = -(-n // 4) if dataflow == "is" else 1
        rowed = "row_zp" in la["requant"]
        assert a["zp_row_adds"] == (m * k * tiles if rowed else 0), la["shape"]
        assert a["zp_row_mults"] == (m * n if rowed else 0), la["shape"]
        # the row-sum unit costs no cycle: the same GEMM's cycles on a top without it
        plain = cfg.replace(weight_zero_points=False)
        assert rows[i]["rtl_cycles"] == predict_gemm(plain, m, k, n).cycles
    assert min(raw) < -128 and max(raw) > 127  # outputs saturate at both ends


@pytest.mark.parametrize(("changes", "message"), [
    ({}, r"^weight_zero_points=True is not allowed with requantizer='shift': expected 'f32' \(the row term is a "
         r"float32 lane's correction\)$"),
    ({"requantizer": "f32", "sparsity": "2:4"}, r"^weight_zero_points=True is not allowed with sparsity='2:4': "
                                                r"expected 'dense' .*$"),
    ({"requantizer": "f32", "skip_zero_tiles": True}, r"^weight_zero_points=True is not allowed with "
                                                      r"skip_zero_tiles=True: expected False .*$"),
    ({"requantizer": "f32", "weight_format": "ternary"}, r"^weight_zero_points=True is not allowed with "
                                                         r"weight_format='ternary': expected 'int8' or 'int4' or "
                                                         r"'int2' .*$"),
])
def test_weight_zero_points_config_errors(changes, message):
    with pytest.raises(HwsimError, match=message):
        MacArrayConfig(weight_zero_points=True, **changes)
    with pytest.raises(HwsimError, match=r"^weight_zero_points='yes' is not allowed: expected true or false$"):
        MacArrayConfig(weight_zero_points="yes")


def test_default_config_dict_has_no_weight_zero_points_field():
    """The default top's metadata (and the co-simulation build keys derived from it) are those of before the
    field existed; a top with the row-sum unit names it and round-trips."""
    assert "weight_zero_points" not in MacArrayConfig().to_dict()
    cfg = MacArrayConfig(requantizer="f32", weight_zero_points=True)
    assert cfg.to_dict()["weight_zero_points"] is True
    assert MacArrayConfig.from_dict(cfg.to_dict()) == cfg and cfg.top_name.endswith("_f32_wzp")


def test_cost_inventory_prices_the_row_sum_unit():
    """The inventory of a top with the row-sum unit adds its parts, sized by hand from the RTL: the row-sum
    adders (WS/OS: one per PE row, IS: one per lane), the row sums' storage (WS: m_tile sums of act_bits +
    dim_bits bits; OS: one register per row), per output lane a 24 x 8-bit multiplier and an acc_bits
    subtraction; a default top's inventory is unchanged by the field."""
    from hwsim.cost import CostModel
    from hwsim.mac_array import inventory, synth_groups
    from hwsim.synth import SynthProbe

    base = MacArrayConfig(rows=4, cols=4, requantizer="f32")
    cfg = base.replace(weight_zero_points=True)
    inv, plain = inventory(cfg), inventory(base)
    assert inv.names() == [*plain.names()[:-1], "row_sum_adder", "row_sum_store", "row_zp_mult", "row_zp_sub",
                           "controller"]
    assert (inv["row_sum_adder"].count, inv["row_sum_adder"].attrs["bits"]) == (4, 8 + 16)
    assert inv["row_sum_store"].attrs == {"bytes": cfg.m_tile * 24 // 8, "word_bits": 24}
    assert (inv["row_zp_mult"].count, inv["row_zp_mult"].attrs) == (4, {"a_bits": 24, "b_bits": 8})
    assert (inv["row_zp_sub"].count, inv["row_zp_sub"].attrs["bits"]) == (4, 32)
    os_inv = inventory(MacArrayConfig(rows=3, cols=5, dataflow="os", requantizer="f32", weight_zero_points=True))
    assert (os_inv["row_sum_store"].cls, os_inv["row_sum_store"].count) == ("register", 3)
    # synth: two float32 lanes alone, with and without the row term; the difference's analytic area is the
    # inventory's multiplier and subtraction of one lane
    probes = {p.label: p for p in synth_groups(cfg) if isinstance(p, SynthProbe)}
    assert probes["f32 lane + row term"].baseline == "f32 lane"
    model = CostModel()
    extra = probes["f32 lane + row term"].analytic(model)[1] - probes["f32 lane"].analytic(model)[1]
    assert extra == pytest.approx(model.component_area_um2(inv["row_zp_mult"])
                                  + model.component_area_um2(inv["row_zp_sub"]))
    assert not any(isinstance(p, SynthProbe) and "f32 lane" in p.label for p in synth_groups(base))


def test_weight_zero_points_with_a_wrapping_narrow_accumulator(tmp_path):
    """A 20-bit wrapping accumulator (OS): every step wraps, so the corrected accumulator is the true
    ``sum_k (a - zx)(w - zw) + bias`` modulo 2**20 whatever the order of the products, the bias and the row
    term; the direct computation wraps it once. Some accumulators leave the 20-bit range."""
    cfg = MacArrayConfig(rows=3, cols=2, dataflow="os", requantizer="f32", weight_zero_points=True, acc_bits=20,
                         overflow="wrap")
    layers, direct = _corner_layers(cfg)
    rows, outs = _run(cfg, layers, tmp_path)
    outside = 0
    for i, (la, (a, w, zx, zw, bias, scale, zp, lo, hi)) in enumerate(zip(layers, direct, strict=True)):
        m, n = a.shape[0], w.shape[1]
        want = np.empty((m, n), dtype=np.int64)
        for r in range(m):
            for c in range(n):
                acc = int(bias[c]) + sum((int(a[r, t]) - zx) * (int(w[t, c]) - int(zw[c])) for t in range(a.shape[1]))
                outside += not -(1 << 19) <= acc < 1 << 19
                want[r, c] = _f32_out(((acc + (1 << 19)) % (1 << 20)) - (1 << 19), scale[c], zp, lo, hi)
        np.testing.assert_array_equal(outs[i], want, err_msg=la["shape"])
    assert outside > 0
