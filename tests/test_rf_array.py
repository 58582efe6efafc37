"""rf-array family: config, fixed-point reference (vs a naive loop and vs float meshes), cycle models by hand,
inventory and cost, presets, CLI errors."""

import math
import subprocess
import sys

import numpy as np
import pytest
from hwsim.models import rf_array as ref
from hwsim.models import rf_mesh
from hwsim.models.rf_tt import TTLayer
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.cost import CostModel
from hwsim.errors import HwsimError
from hwsim.families import get_family, resolve_accel
from hwsim.rf_array import RfArrayConfig, inventory, parse_preset, predict_emulator, predict_gemm, predict_tt
from hwsim.unit import Stats


def _naive_emulate(cfg, codes, x):
    """Per vector, per MZI, with Python ints and tables from math.cos/sin."""
    f, q = cfg.coef_bits, 1 << cfg.dac_bits
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1

    def tab(k):
        a = 2 * math.pi * k / q
        one = 1 << f
        return (round(math.cos(a) * one), round(math.sin(a) * one), round((math.cos(a) - 1) / 2 * one),
                round(math.sin(a) / 2 * one), round((math.cos(a) + 1) / 2 * one))

    def rs(v):
        return min(max((v + (1 << (f - 1))) >> f, lo), hi)

    def cmul(a, b):  # complex product of integer pairs, exact
        return (a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0])

    mzis = [m for col in ref.mesh_layout(cfg.n, cfg.mesh) for m in col]
    out = []
    for vec in x.tolist():
        v = [tuple(p) for p in vec]
        for i, m in enumerate(mzis):
            t, p = codes[2 * i], codes[2 * i + 1]
            c, s, _, _, _ = tab(p)
            _, _, ar, ai, bi = tab(t)
            u = tuple(rs(z) for z in cmul(v[m], (c, s)))
            a, b = (ar, ai), (-ai, bi)
            ua, yb, ub, ya = cmul(u, a), cmul(v[m + 1], b), cmul(u, b), cmul(v[m + 1], a)
            v[m] = (rs(ua[0] + yb[0]), rs(ua[1] + yb[1]))
            v[m + 1] = (rs(ub[0] - ya[0]), rs(ub[1] - ya[1]))
        for j in range(cfg.n):
            c, s, _, _, _ = tab(codes[2 * len(mzis) + j])
            v[j] = tuple(rs(z) for z in cmul(v[j], (c, s)))
        out.append(v)
    return np.array(out, dtype=np.int64)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), mesh=st.sampled_from(["clements", "reck"]), data_bits=st.integers(4, 18),
       coef_bits=st.integers(2, 14), dac_bits=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_emulate_matches_naive_loop(n, mesh, data_bits, coef_bits, dac_bits, seed):
    cfg = RfArrayConfig(n=n, mesh=mesh, data_bits=data_bits, coef_bits=coef_bits, dac_bits=dac_bits)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 1 << dac_bits, cfg.codes)
    lo, hi = -(1 << (data_bits - 1)), (1 << (data_bits - 1))
    x = rng.integers(lo, hi, (3, n, 2))
    x[0] = lo      # overflow corner: full-scale negative inputs saturate
    x[1] = hi - 1
    assert np.array_equal(ref.emulate(cfg, codes, x), _naive_emulate(cfg, codes.tolist(), x))


@pytest.mark.parametrize("mesh", ["clements", "reck"])
@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_emulate_approximates_float_mesh(mesh, n):
    cfg = RfArrayConfig(n=n, mesh=mesh, data_bits=24, coef_bits=20, dac_bits=10)
    u = rf_mesh.random_unitary(n, n)
    codes = ref.phase_codes(cfg, rf_mesh.decompose(u, mesh))
    want = ref.mesh_from_codes(cfg, codes).matrix()
    assert np.max(np.abs(want - u)) < 0.05 * n          # only DAC quantization between them
    x = np.random.default_rng(1).standard_normal((20, n)) + 1j * np.random.default_rng(2).standard_normal((20, n))
    x *= 2 ** 18 / np.max(np.abs(x))
    xi = np.stack([np.round(x.real), np.round(x.imag)], -1).astype(np.int64)
    y = ref.emulate(cfg, codes, xi)
    got = y[..., 0] + 1j * y[..., 1]
    exact = (xi[..., 0] + 1j * xi[..., 1]) @ want.T
    assert np.max(np.abs(got - exact)) < 4 * (cfg.columns + 1)


def test_layouts_by_hand():
    assert ref.mesh_layout(4, "clements") == ((0, 2), (1,), (0, 2), (1,))
    assert ref.mesh_layout(3, "reck") == ((0,), (1,), (0,))   # rows 2 (modes 0, 1) then 1 (mode 0)
    assert ref.mesh_layout(1, "clements") == ()
    assert ref.mesh_layout(2, "reck") == ((0,),)
    for n in (1, 2, 3, 7, 8):
        for mesh in ("clements", "reck"):
            assert sum(map(len, ref.mesh_layout(n, mesh))) == n * (n - 1) // 2
            assert ref.code_count(n, mesh) == n * n


def test_emulator_cycles_by_hand():
    cfg = RfArrayConfig(n=4, dac_update_cycles=3)
    s = predict_emulator(cfg, 10)
    # 16 codes: accepted at cycles 1, 4, ..., 46; 10 vectors in cycles 47..56; 31 pipeline registers: 4 columns
    # of a rotator (3: operands, products, rounded sums) and a mixer (4: operands, products, pair sums, rounded
    # sums), the screen's 3
    assert s.cycles == 46 + 10 + 31
    assert s.actions.get("rotator", "rotate") == 6 * 10 and s.actions.get("mixer", "mix") == 60
    assert s.actions.get("screen", "rotate") == 40 and s.actions.get("code_reg", "write") == 16
    # one port: no MZI column, only the output screen's rotator (3 registers)
    assert predict_emulator(RfArrayConfig(n=1), 1).cycles == 1 + 1 + 3


def test_physical_gemm_by_hand():
    cfg = RfArrayConfig(n=4, clock_mhz=1000.0, rf_stage_ns=0.5, adc_cycles=2, dac_update_cycles=5, gating="none")
    # rf depth = 2 * 4 columns + 1 = 9 stages * 0.5 ns = 4.5 ns -> 5 cycles at 1 ns
    assert cfg.rf_cycles == 5
    s = predict_gemm(cfg, m=7, k=10, n=6)          # k tiles 3, n tiles 2
    assert s.detail["folds"] == 6
    assert s.cycles == 6 * (5 + 5 + 7 * 2 + 1)
    assert s.actions.get("dac", "convert") == 6 * (2 * 16 + 4)
    # real ports: the k tiles hold 4, 4, 2 inputs, the n tiles 4, 2 outputs; 7 vectors through each tile
    assert s.actions.get("signal_dac", "convert") == 2 * (4 + 4 + 2) * 7          # both output blocks
    assert s.actions.get("adc", "convert") == 3 * (4 + 2) * 7                     # every k tile
    assert s.actions.get("post", "add") == 2 * (4 + 2) * 7                        # the 2 k tiles after the first
    # the padding ports (gating none: idle slots at full price): the last k tile's 2 inputs, the last n
    # tile's 2 outputs; 6 tiles of 16 MAC slots, 60 of them real (10 x 6)
    assert cfg.gating == "none"
    assert s.actions.get("signal_dac", "idle") == 2 * 2 * 7
    assert s.actions.get("adc", "idle") == 3 * 2 * 7
    assert s.actions.get("post", "idle") == 2 * 2 * 7
    assert s.detail["idle_slots"] == 7 * (6 * 16 - 60)


def test_tt_on_processor_by_hand():
    cfg = RfArrayConfig(n=8)
    layer = TTLayer((4, 4, 4), (2, 4, 4), (1, 2, 2, 1))
    s = predict_tt(cfg, layer, vectors=3)
    # stages: core 2: 8x4 on 16 vectors; core 1: 8x8 on 16; core 0: 2x8 on 16; each one 8-port tile
    per = cfg.dac_update_cycles + cfg.rf_cycles + 16 * 3 * cfg.adc_cycles + 1
    assert s.cycles == 3 * per and s.detail["folds"] == 3
    assert s.actions.get("dac", "convert") == 3 * (2 * 64 + 8)


def test_cycle_models_return_the_protocol_stats():
    """The three cycle models return the unit protocol's frozen Stats; what only they have (the GEMM's m, k, n,
    its tiles as folds, a name) is in detail. By hand: 8-port emulator, 5 vectors: 4 real MACs per complex MAC
    of the 8x8 mesh = 4 * 64 * 5 = 1,280; 5 x 13 x 11 on 8 ports: 2 k-tiles x 2 n-tiles = 4 tiles, 715 MACs;
    the TT layer of test_tt_on_processor_by_hand: 3 one-tile cores, 3 * 16 * (8*4 + 8*8 + 2*8) = 5,376 MACs."""
    emu = predict_emulator(RfArrayConfig(target="emulator"), 5)
    gemm = predict_gemm(RfArrayConfig(), 5, 13, 11)
    tt = predict_tt(RfArrayConfig(), TTLayer((4, 4, 4), (2, 4, 4), (1, 2, 2, 1)), 3, name="t")
    for s in (emu, gemm, tt):
        assert type(s) is Stats and s.stall_cycles == 0
        assert (s.sram_bytes, s.dram_bytes) == (0, 0)  # the processor alone: no memory traffic
    assert (emu.macs, dict(emu.detail)) == (1280, {"name": "mesh", "m": 5, "k": 8, "n": 8, "folds": 1})
    # idle_slots: the padding MAC slots, 4 tiles x 64 - 13 x 11 real per vector; the TT cores fill 32, 64 and
    # 16 of their tile's 64 slots on 3 x 16 vectors each
    assert (gemm.macs, dict(gemm.detail)) == (715, {"name": "gemm", "m": 5, "k": 13, "n": 11, "folds": 4,
                                                    "idle_slots": 5 * (4 * 64 - 143)})
    assert (tt.macs, dict(tt.detail)) == (5376, {"name": "t", "m": 3, "k": 64, "n": 32, "folds": 3,
                                                 "idle_slots": 48 * (32 + 0 + 48)})
    assert gemm.utilization(64) == 715 / (64 * gemm.cycles)
    with pytest.raises(AttributeError):
        gemm.cycles = 0  # frozen


def test_inventory_counts_and_energy():
    cfg = RfArrayConfig(n=8)
    inv = inventory(cfg)
    assert inv["mzi"].count == 2 * 28 and inv["phase_shifter"].count == 2 * 64
    assert inv["dac"].count == 128 + 8 and inv["adc"].count == 8 and inv["rf_switch"].count == 20
    model = CostModel()
    s = predict_gemm(cfg, 5, 8, 8)
    e = model.energy(cfg, s.actions, s.cycles)
    want = (s.actions.get("dac", "convert") * 0.01 * 2 ** 8 + s.actions.get("adc", "convert") * 0.0217 * 2 ** 10
            + s.actions.get("signal_dac", "convert") * 0.01 * 2 ** 10 + 128 * 0.1 + 8 * 0.1)
    assert e.total_pj == pytest.approx(want)
    emu = RfArrayConfig(n=4, target="emulator")
    es = predict_emulator(emu, 3)
    assert model.energy(emu, es.actions, es.cycles).total_pj > 0
    assert inventory(emu)["mixer"].count == 6
    assert model.area(cfg).total_mm2 > model.area(emu).total_mm2


def test_presets_and_registry():
    assert parse_preset("rf-array-8") == RfArrayConfig(n=8)
    assert parse_preset("rf-array-5-reck-emulator") == RfArrayConfig(n=5, mesh="reck", target="emulator")
    assert parse_preset("mac-array-8x8-ws") is None
    assert resolve_accel("rf-array-4").units[0].config.n == 4
    fam = get_family("rf-array")
    assert fam.views()["cost"] and fam.views()["cycle model"]


@pytest.mark.parametrize("field,value,msg", [
    ("dac_bits", 0, r"^dac_bits=0 is not allowed: expected an integer in \[1, 12\]$"),
    ("loss_db", -1.0, r"^loss_db=-1.0 is not allowed: expected a number in \[0, 100\]$"),
    ("mesh", "tri", r"^mesh='tri' is not allowed: expected one of clements, reck$"),
    ("n", 0, r"^n=0 is not allowed: expected an integer in \[1, 64\]$"),
    ("clock_mhz", 0.0, r"^clock_mhz=0.0 is not allowed: expected a number in \(0, 100000\]$"),
])
def test_config_errors(field, value, msg):
    with pytest.raises(HwsimError, match=msg):
        RfArrayConfig(**{field: value})


def test_reference_errors():
    cfg = RfArrayConfig(n=3)
    with pytest.raises(HwsimError, match=r"^codes with 4 entries is not allowed: expected 9 phase codes"):
        ref.emulate(cfg, [0] * 4, np.zeros((1, 3, 2)))
    with pytest.raises(HwsimError, match=r"^x is not allowed: expected signed 16-bit parts"):
        ref.emulate(cfg, [0] * 9, np.full((1, 3, 2), 1 << 15))


@pytest.mark.parametrize("args,msg", [
    (["cost", "rf-array", "--dac-bits", "0"], "dac_bits=0 is not allowed"),
    (["cost", "rf-array", "--loss-db", "-1"], "loss_db=-1.0 is not allowed"),
])
def test_cli_errors_exit_2(args, msg):
    r = subprocess.run([sys.executable, "-m", "hwsim.cli", *args], capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0]
