"""lstm-engine config, cycle model (hand counts), inventory, registry and CLI."""

import subprocess
import sys

import numpy as np
import pytest
from hwsim.models import tensor_formats as tf

from hwsim.cost import CostModel
from hwsim.errors import HwsimError
from hwsim.families import get_family
from hwsim.lstm_engine import (
    GATE_LATENCY,
    LstmEngineConfig,
    LstmWorkload,
    ReadoutOp,
    inventory,
    parse_preset,
    predict,
    predict_matvec,
    predict_step,
    read_addresses,
    simulate_matvec,
    stage_descriptors,
    workload,
    workload_table,
)


@pytest.mark.parametrize("kw,msg", [
    ({"pes": 0}, r"^pes=0 is not allowed: expected an integer in \[1, 256\]$"),
    ({"banks": 3}, r"^banks=3 is not allowed: expected a power of two$"),
    ({"data_bits": 16, "acc_bits": 31}, r"^acc_bits=31 is not allowed: expected an integer >= 2 \* data_bits \(32\)"),
    ({"frac_bits": 15}, r"^frac_bits=15 is not allowed: expected an integer in \[1, 14\]$"),
    ({"overflow": "clip"}, r"^overflow='clip' is not allowed: expected one of saturate, wrap$"),
    ({"decomposition": "cp"}, r"^decomposition='cp' is not allowed: expected one of tt, ht$"),
    ({"clock_mhz": 0}, r"^clock_mhz=0 is not allowed: expected a number > 0$"),
])
def test_config_errors(kw, msg):
    with pytest.raises(HwsimError, match=msg):
        LstmEngineConfig(**kw)


def test_presets():
    cfg = parse_preset("lstm-engine-ht-8-int8")
    assert (cfg.decomposition, cfg.pes, cfg.banks, cfg.data_bits) == ("ht", 8, 8, 8)
    assert parse_preset("mac-array-8x8-ws") is None
    assert get_family("lstm-engine").preset("lstm-engine-tt-16").pes == 16


def test_stage_cycles_by_hand():
    # one stage R = 6 rows, K = 3, Q = 2 columns on 4 PEs with 2 banks:
    # tiles of 4 and 2 lanes; writes take ceil(4/2) = 2 and 1 cycles; per column (3+1+2) + (3+1+1) = 11
    cfg = LstmEngineConfig(pes=4, banks=2, data_bits=8, acc_bits=16, frac_bits=5)
    fmt = tf.TTMatrix.random((6,), (3,), (1, 1), rng=0)
    x2 = tf.TTMatrix.random((1, 6), (2, 3), (1, 1, 1), rng=0)  # G2 (m=6, n=3) against Q = 2 columns first
    s = predict_matvec(cfg, fmt)
    assert s.cycles == 1 + (3 + 1 + 2) + (3 + 1 + 1) and s.stall_cycles == 1
    assert s.macs == 18
    s2 = predict_matvec(cfg, x2, order=(1, 0))
    assert s2.detail["stages"][0].cycles == 1 + 2 * 11 and s2.detail["stages"][0].conflict_cycles == 2
    # G1: R = 1, K = 2, Q = 6: 6 groups of (2 + 1 + 1)
    assert s2.detail["stages"][1].cycles == 1 + 6 * 4
    assert s2.actions.get("pe_mult", "mult") == 36 + 12
    assert s2.actions.get("weight_sram", "read") == 2 * 2 * 3 + 6 * 2
    assert s2.actions.get("work_sram", "write") == 6 + 12 + 6  # x loaded, stage 1, stage 2


def test_step_adds_hidden_stage_and_gates():
    cfg = LstmEngineConfig(pes=4, banks=4, data_bits=8, acc_bits=16, frac_bits=5)
    fmt = tf.TTMatrix.random((4, 2), (3, 2), (1, 2, 1), rng=0)  # 4H = 8: H = 2
    mv = predict_matvec(cfg, fmt)
    step = predict_step(cfg, LstmWorkload("w", fmt, hidden=2))
    # hidden stage R = 8, K = 2, Q = 1: 1 + 2 * (2 + 1 + 1); gate phase: 1 hand-over cycle, 4 gather cycles
    # per unit, 2 for the last reads to land and enter, the gate unit's latency
    assert step.cycles == mv.cycles + (1 + 2 * 4) + 1 + 4 * 2 + 2 + GATE_LATENCY


def test_steps_statistics_detail():
    """An LSTM workload of T steps (the protocol's ``predict``): every count T times the step's, the numeric
    details (steps, x load, input-layer cycles) summed over the steps, the stage rows one step's."""
    cfg = LstmEngineConfig(pes=4, banks=4, data_bits=8, acc_bits=16, frac_bits=5, x_load="stream")
    fmt = tf.TTMatrix.random((4, 2), (3, 2), (1, 2, 1), rng=0)  # 4H = 8: H = 2, N = 6
    mv = predict_matvec(cfg, fmt)
    st = predict(cfg, LstmWorkload("w", fmt, hidden=2, steps=3))
    # per step: the matvec (6 load cycles first), the hidden stage 1 + 2 * (2 + 1 + 1), the gate phase
    step_cycles = mv.cycles + (1 + 2 * 4) + 1 + 4 * 2 + 2 + GATE_LATENCY
    assert st.cycles == 3 * step_cycles and st.macs == 3 * (mv.macs + 8 * 2)
    assert st.detail["steps"] == 3 and st.detail["name"] == "w"
    assert st.detail["x_load_cycles"] == 3 * 6 and st.detail["matvec_cycles"] == 3 * mv.cycles
    rows = st.detail["stages"]
    assert [r.name for r in rows] == [r.name for r in mv.detail["stages"]] + ["hidden", "gates"]
    assert sum(r.cycles for r in rows) + 6 == step_cycles  # one step's rows (x load outside the stages)
    # the readout op: its one stage in detail, its name
    ro = predict(cfg, ReadoutOp("out", 3, 2))
    assert ro.detail["name"] == "out" and [(r.R, r.K, r.Q) for r in ro.detail["stages"]] == [(3, 2, 1)]


def test_streamed_x_load_is_timed():
    """x_load="stream": every run starts with N load cycles (one input per cycle) and N address increments;
    values of the counts otherwise unchanged."""
    cfg = LstmEngineConfig(pes=4, banks=4, data_bits=8, acc_bits=16, frac_bits=5)
    fmt = tf.TTMatrix.random((4, 2), (3, 2), (1, 2, 1), rng=0)  # N = 6
    base, st = predict_matvec(cfg, fmt), predict_matvec(cfg.replace(x_load="stream"), fmt)
    assert st.cycles == base.cycles + 6 and st.detail["x_load_cycles"] == 6
    assert st.actions.get("addr_gen", "add") == base.actions.get("addr_gen", "add") + 6
    assert st.actions.get("dram", "read") == base.actions.get("dram", "read") == 6
    w = LstmWorkload("w", fmt, hidden=2, steps=3)
    assert predict(cfg.replace(x_load="stream"), w).cycles == predict(cfg, w).cycles + 3 * 6
    with pytest.raises(HwsimError, match=r"^x_load='dma' is not allowed: expected one of overlapped, stream$"):
        cfg.replace(x_load="dma")


def test_bank_counts_from_addresses():
    cfg = LstmEngineConfig(pes=4, banks=4, data_bits=8, acc_bits=16, frac_bits=5)
    fmt = tf.TTMatrix.random((2, 3), (3, 2), (1, 2, 1), rng=1).with_factors(
        [np.ones((2, 3, 2), dtype=np.int64), np.ones((2, 3, 2), dtype=np.int64)])
    _, s = simulate_matvec(cfg, fmt, np.arange(6) - 3, [0, 0])
    assert sum(s.detail["bank_reads"]) == s.actions.get("work_sram", "read")
    assert sum(s.detail["bank_writes"]) == s.actions.get("work_sram", "write")
    d = stage_descriptors(cfg, fmt)[0]
    addr = read_addresses(d)
    # independent: gather indices from the same transposition the reference uses
    st0 = tf.plan_stages(fmt)[0]
    sizes = fmt.sizes()
    idx = np.arange(6).reshape([sizes[a] for a in st0.t_axes])
    want = idx.transpose([st0.t_axes.index(a) for a in st0.rest + st0.shared]).reshape(st0.Q, st0.K)
    assert (addr == want).all()


def test_capacity_errors():
    cfg = LstmEngineConfig(work_sram_bytes=1024)
    with pytest.raises(HwsimError, match=r"^work_sram_bytes=1024 is not allowed for ucf11-tt-r4: expected >= 115200 bytes"):
        predict_step(cfg, workload("ucf11"))
    with pytest.raises(HwsimError, match=r"^hidden_sram_bytes=16 is not allowed"):
        predict_step(LstmEngineConfig(hidden_sram_bytes=16), workload("ucf11"))


def test_published_workloads_table():
    rows = {(r["workload"], r["format"]): r for r in workload_table()}
    assert rows["ucf11", "tt"]["params"] == 3360 and rows["youtube", "tt"]["params"] == 3392
    assert rows["ucf11", "tt"]["dense_params"] == 57600 * 1024
    assert rows["ucf11", "tt"]["macs"] == sum(s["R"] * s["K"] * s["Q"] for s in rows["ucf11", "tt"]["stages"])
    assert rows["ucf11", "ht"]["params"] == 1584


def test_inventory_prices_every_action():
    cfg = parse_preset("lstm-engine-tt-16")
    s = predict_step(cfg, workload("ucf11"))
    e = CostModel().energy(inventory(cfg), s.actions, s.cycles)
    assert e.total_pj > 0 and e.parts["dram"] == pytest.approx(57600 * 2 * 8 * 8.0)
    lut = CostModel().area(inventory(cfg.replace(nonlinearity="lut")))
    assert lut.parts["sigmoid"] > CostModel().area(inventory(cfg)).parts["sigmoid"]


def test_cli_cost_and_errors():
    r = subprocess.run([sys.executable, "-m", "hwsim.cli", "cost", "lstm-engine", "--pes", "8"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "nonlinearity" in r.stdout
    r = subprocess.run([sys.executable, "-m", "hwsim.cli", "cost", "lstm-engine", "--acc-bits", "20"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "hwsim: error: acc_bits=20 is not allowed: expected an integer >= 2 * data_bits (32), the accumulator "
        "must hold one product"]


def test_study_tt_vs_ht(tmp_path):
    from hwsim.lstm_engine_study import run

    res = run(out_dir=tmp_path, quick=True)
    rows = {r["design"]: r for r in res.rows}
    assert rows["tt-r4"]["params"] == 3360 and rows["ht-r4 rows"]["params"] == 1584
    # frames/s follow the cycles at 1 GHz
    assert rows["tt-r4"]["frames_per_s"] == pytest.approx(1e9 / rows["tt-r4"]["cycles"])
    assert "tt-r4" in res.format() and (tmp_path / "tt_vs_ht.png").exists()
    assert (tmp_path / "tt_vs_ht_sensitivity.png").exists()
    r = subprocess.run([sys.executable, "-m", "hwsim.cli", "study", "tt-vs-ht"], capture_output=True, text=True)
    assert r.returncode == 0 and "youtube" in r.stdout
