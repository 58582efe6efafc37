"""benchmarks/vs_zigzag.py without ZigZag: its hwsim side is hwsim's own numbers, and its mapping of hwsim's WS
loop nest onto ZigZag's loops is the hand-derived one. (ZigZag itself runs only in the benchmark.)"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("vs_zigzag", REPO / "benchmarks" / "vs_zigzag.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["vs_zigzag"] = mod  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def test_digits_hwsim_side_equals_simulate_report(bench):
    """Per layer and component, the benchmark's hwsim energies are the ones 'hwsim simulate digits-cnn' prints."""
    from hwsim.simulate import simulate

    net = bench.digits_cnn()
    rep = simulate("digits-cnn", progress=False)
    assert [hw.shape.name for hw in net.layers] == [lr.name for lr in rep.layers]
    for hw, lr in zip(net.layers, rep.layers, strict=True):
        assert hw.shape.macs == lr.macs
        for comp, pj in lr.energy_pj.items():
            assert hw.energy.get(comp, 0.0) == pytest.approx(pj, rel=1e-12, abs=1e-9), (lr.name, comp)


def test_resnet18_hwsim_side_dram_and_macs(bench):
    """ResNet-18 224 on 256x256 WS: DRAM bytes per layer are the plan 'hwsim simulate --scalesim-config google.cfg
    --topology Resnet18.csv --dataflow ws --buffer-kib 256' prints, and MAC actions are the hand count
    M x K x N of real MACs (clock gating, the default: Conv1's 64 channels fill a quarter of the 256 columns;
    the other 192 columns of every streamed beat are idle slots, priced as closed clock gates)."""
    from hwsim.scalesim import compare_with_scalesim

    net = bench.resnet18()
    cmp = compare_with_scalesim(bench.SCALESIM / "google.cfg", bench.SCALESIM / "Resnet18.csv", "ws",
                                buffer_kib=256)
    for hw, lp in zip(net.layers, cmp.memory.layers, strict=True):
        assert hw.actions[("dram", "read")] + hw.actions[("dram", "write")] == lp.dram_bytes, lp.name
        assert hw.energy["dram"] == pytest.approx(64.0 * lp.dram_bytes)  # LPDDR4 8 pJ/bit
    conv1 = net.layers[0]
    assert conv1.shape.gemm == (112 * 112, 7 * 7 * 3, 64)
    assert conv1.actions[("pe_mac", "mac")] == 112 * 112 * 147 * 64
    # every beat passes all 256 x 256 PEs: K = 147 fills one fold of 256 rows
    assert conv1.actions[("pe_mac", "idle")] == 112 * 112 * 256 * 256 - 112 * 112 * 147 * 64
    icg = 5 * 0.03 * 0.798 / 36  # icg.ge x gate.energy_per_ge (int8 add energy per NAND2 area)
    assert math.isclose(conv1.energy["pe_mac"], 0.3 * 112 * 112 * 147 * 64 + icg * (112 * 112 * 256 * 256
                                                                                   - 112 * 112 * 147 * 64))
    total_real = sum(hw.actions[("pe_mac", "mac")] for hw in net.layers)
    assert total_real == sum(math.prod(hw.shape.gemm) for hw in net.layers)  # ResNet-18's 1.81 G MACs
    assert 1.80e9 < total_real < 1.83e9


def test_ws_mapping_of_hand_derived_layers(bench):
    from hwsim.config import MacArrayConfig

    cfg = MacArrayConfig(rows=256, cols=256, input_sram_bytes=6 << 20, weight_sram_bytes=6 << 20,
                         output_sram_bytes=2 << 20)
    assert cfg.fold_steps[0] == 2048  # m-tile: 2 MiB of 256 32-bit psums per row
    conv2 = bench.ConvShape("Conv2_1a", 56, 56, 64, 56, 56, 64, 3, 3, 1, 1)
    mp = bench.ws_mapping(conv2, cfg)
    # rows: 64 channels x 3 filter rows = 192 <= 256; 28 of 56 output rows (1568 px <= 2048) per m-tile
    assert dict(mp.d1) == {"C": 64, "FY": 3} and mp.d2 == (("K", 64),)
    assert mp.temporal == (("OX", 56), ("OY", 28), ("FX", 3), ("OY", 2))
    assert (mp.k_folds, mp.n_tiles, mp.m_tiles) == (3, 1, 2)
    fc = bench.ConvShape("FC", 1, 1, 512, 1, 1, 1000, 1, 1, 1, 0)
    mp = bench.ws_mapping(fc, cfg)
    # 512 channels over 256 rows, 1000 outputs over 256 columns (ZigZag rounds 1000/256 up to 4 n-tiles)
    assert dict(mp.d1) == {"C": 256} and mp.d2 == (("K", 256),)
    assert mp.temporal == (("C", 2), ("K", 4))
    digits_conv1 = bench.ConvShape("conv1", 8, 8, 1, 8, 8, 8, 3, 3, 1, 1)
    mp = bench.ws_mapping(digits_conv1, MacArrayConfig(rows=8, cols=8))
    # 9 reduction steps do not factor into 8 rows: 3 filter rows spatial, 3 filter columns as k-folds
    assert dict(mp.d1) == {"FY": 3} and mp.k_folds == 3
