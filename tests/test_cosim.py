"""Verilator co-simulation of the generated RTL against the reference and the cycle model.

Every weight format x both RTL dataflows, on a non-square 3x2 array with small SRAMs (so layers fold over
M, N and K, and OS chunks K), a DRAM slower than the array (so stalls occur), and narrow accumulators
(so the extreme-data layers saturate or wrap). Builds are cached and shared (``hwsim.cosim.runner``).
"""

import itertools

import numpy as np
import pytest
import pywellen
from hwsim.cosim.regression import random_layers, run_regression

from hwsim.config import WEIGHT_FORMATS, MacArrayConfig
from hwsim.mac_array import predict_gemm

CASES = list(itertools.product(WEIGHT_FORMATS, ("ws", "os")))


def _cfg(fmt: str, dataflow: str) -> MacArrayConfig:
    base = MacArrayConfig(rows=3, cols=2, dataflow=dataflow, weight_format=fmt)
    i = CASES.index((fmt, dataflow))
    return base.replace(
        acc_bits=base.product_bits + 2,
        overflow=("saturate", "wrap")[i % 2],
        rounding=("half_up", "half_even")[(i // 2) % 2],
        input_sram_bytes=12, weight_sram_bytes=12, output_sram_bytes=16,
        dram_bytes_per_cycle=(0.5, 1.0, 3.0)[i % 3],
    )


@pytest.mark.parametrize(("fmt", "dataflow"), CASES, ids=[f"{f}-{d}" for f, d in CASES])
def test_regression_matches_reference_and_cycle_model(fmt, dataflow, tmp_path):
    cfg = _cfg(fmt, dataflow)
    layers = random_layers(cfg, seed=CASES.index((fmt, dataflow)), count=6)
    rep = run_regression(cfg, layers=layers, workdir=tmp_path)
    assert len(rep.layers) == 6
    for row in rep.layers:
        assert row["mismatches"] == 0, row
        assert row["rtl_cycles"] == row["predicted_cycles"], row
        assert row["vectors"] > 0


def test_overflow_corners_exercised(tmp_path):
    """A layer whose exact sums exceed the accumulator: RTL saturates exactly like the reference."""
    cfg = MacArrayConfig(rows=3, cols=2, dataflow="ws", weight_format="int8", acc_bits=16,
                         overflow="saturate", input_sram_bytes=12, weight_sram_bytes=12, output_sram_bytes=16)
    a = np.full((4, 9), 127)
    a[1] = -128
    w = np.full((9, 3), -128)
    w[:, 1] = 127
    exact = a @ w
    assert np.abs(exact).max() > (1 << 15)  # the exact sums overflow 16 bits
    layers = [{"kind": "gemm", "name": "sat", "a": a.tolist(), "w": w.tolist(), "shift": 8, "relu": False,
               "shape": "4x9x3"}]
    rep = run_regression(cfg, layers=layers, workdir=tmp_path)
    assert rep.mismatches == 0 and rep.cycle_mismatches == 0
    assert rep.layers[0]["rtl_cycles"] == predict_gemm(cfg, 4, 9, 3).cycles


def test_checker_flags_wrong_and_missing_beats():
    """The in-order checker counts each wrong lane, ignores padding lanes, and rejects a short stream."""
    from hwsim.cosim.mac_array_tb import check_outputs
    from hwsim.models import mac_array as ref

    from hwsim.mac_array import pack_lanes

    cfg = MacArrayConfig(rows=2, cols=4, dataflow="ws", weight_format="int8")
    rng = np.random.default_rng(0)
    expect = rng.integers(-128, 128, size=(3, 3))  # N = 3 of 4 lanes: lane 3 is padding
    codes = np.zeros((3, 4), dtype=np.uint64)
    codes[:, :3] = ref.encode_acts(expect, 8)
    beats = pack_lanes(codes, 8)
    assert check_outputs(cfg, beats, expect)[0] == 0
    padded = [b | (0xAB << 24) for b in beats]  # garbage in the padding lane only
    assert check_outputs(cfg, padded, expect)[0] == 0
    wrong = list(beats)
    wrong[1] ^= (1 << 3) | (1 << 17)  # lanes 0 and 2 of row 1
    assert check_outputs(cfg, wrong, expect)[0] == 2
    swapped = [beats[1], beats[0], beats[2]]  # out of order
    assert check_outputs(cfg, swapped, expect)[0] == 2 * int(np.count_nonzero(expect[0] != expect[1]))
    assert check_outputs(cfg, beats[:2], expect) == (9, None)


def test_waves_written(tmp_path):
    """``waves=True`` builds with FST tracing and the run leaves a waveform in its work directory."""
    cfg = MacArrayConfig(rows=2, cols=2, dataflow="ws", weight_format="int4")
    a = np.arange(12).reshape(4, 3) % 7 - 3
    w = np.arange(6).reshape(3, 2) % 5 - 2
    layers = [{"kind": "gemm", "name": "g", "a": a.tolist(), "w": w.tolist(), "shift": 1, "relu": False}]
    rep = run_regression(cfg, layers=layers, waves=True, workdir=tmp_path)
    assert rep.passed
    wave = pywellen.Waveform(str(tmp_path / "dump.fst"))
    assert wave.file_format == "FST"
    names = {v.full_name for v in wave.all_vars()}
    # The DUT's internals are traced although only the harness ports are public to VPI.
    assert {"mac_array_tb.done", "mac_array_tb.dut.loader_state", "mac_array_tb.dut.acc.[0]"} <= names
