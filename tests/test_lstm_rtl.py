"""The LSTM engine RTL on Amaranth's simulator: whole TT and HT matvecs, bit-exact, cycle-exact and with
every priced action count, per-bank working-SRAM read/write and stall count equal to the cycle model's."""

import os
import subprocess

import numpy as np
import pytest
from hwsim.cosim.lstm_engine_regression import count_diffs, make_job, random_jobs, run_amaranth
from hwsim.cosim.runner import verilator_env
from hwsim.models import tensor_formats as tf

from hwsim.errors import HwsimError
from hwsim.families import write_verilog
from hwsim.lstm_engine import LstmEngineConfig

SMALL = dict(data_bits=8, acc_bits=16, frac_bits=5, work_sram_bytes=512, weight_sram_bytes=1024, addr_levels=4)


@pytest.mark.parametrize("cfg", [
    LstmEngineConfig(pes=4, banks=4, **SMALL),
    LstmEngineConfig(pes=3, banks=8, rounding="half_even", **SMALL),
    LstmEngineConfig(pes=2, banks=2, overflow="wrap", **SMALL),
    LstmEngineConfig(pes=5, banks=2, **SMALL),
], ids=["p4b4", "p3b8-half-even", "p2b2-wrap", "p5b2-conflicts"])
def test_random_matvecs_bit_and_cycle_exact(cfg):
    stalls = 0
    for job in random_jobs(cfg, seed=cfg.pes, count=4):
        y, cycles, counts = run_amaranth(cfg, job)
        assert (y == job["expect"]).all(), job["name"]
        assert cycles == job["predicted_cycles"], job["name"]
        assert count_diffs(counts, job["expect_counts"]) == {}, job["name"]
        stalls += counts["stall_cycles"]
    assert (stalls > 0) == (cfg.banks < cfg.pes)  # fewer banks than lanes: bank-conflict write cycles


def test_bank_conflict_cycles_by_hand():
    """5 lanes over 2 banks: a full group writes in ceil(5 / 2) = 3 cycles (2 of them stalls)."""
    cfg = LstmEngineConfig(pes=5, banks=2, **SMALL)
    fmt = tf.TTMatrix.random((7,), (3,), (1, 1), rng=0)  # one stage: R = 7, K = 3, Q = 1: tiles of 5 and 2 rows
    fmt = fmt.with_factors([np.arange(21).reshape(fmt.factors[0].data.shape) - 10])
    x = np.array([3, -2, 1])
    job = make_job(cfg, fmt, x, [0])
    y, cycles, counts = run_amaranth(cfg, job)
    assert (y == np.clip(tf.to_dense(fmt).astype(np.int64) @ x, -128, 127)).all()
    # 1 setup + tile 0: 3 reads + 1 + 3 writes; tile 1: 3 + 1 + 1
    assert cycles == 1 + (3 + 1 + 3) + (3 + 1 + 1) and counts["stall_cycles"] == 2
    assert counts["actions"]["requant.convert"] == 7 and sum(counts["bank_writes"]) == 3 + 7


def test_one_by_n_prime_tt():
    cfg = LstmEngineConfig(pes=4, banks=4, **SMALL)
    fmt = tf.TTMatrix.random((1, 1), (7, 13), (1, 3, 1), rng=5)
    fmt = fmt.with_factors([np.full(f.data.shape, 127) for f in fmt.factors])
    job = make_job(cfg, fmt, np.full(91, -128), [7, 9])
    y, cycles, counts = run_amaranth(cfg, job)
    assert (y == job["expect"]).all() and cycles == job["predicted_cycles"]
    # independent expectations: stage 1 (cheapest order) and stage 2 by hand from the shapes
    st = tf.plan_stages(fmt)
    macs = sum(s.Q * s.R * s.K for s in st)
    reads = sum(s.Q * -(-s.R // 4) * s.K for s in st)
    acts = counts["actions"]
    assert acts["pe_mult.mult"] == acts["pe_acc.add"] == acts["pe_acc_reg.write"] == macs
    assert acts["weight_sram.read"] == reads and sum(counts["bank_reads"]) == reads
    assert acts["work_sram.write"] == 91 + sum(s.Q * s.R for s in st) and acts["dram.read"] == 91
    assert counts["stall_cycles"] == 0
    assert count_diffs(counts, job["expect_counts"]) == {}


def test_wrong_expected_count_is_reported():
    cfg = LstmEngineConfig(pes=4, banks=4, **SMALL)
    job = random_jobs(cfg, seed=3, count=1)[0]
    _, _, counts = run_amaranth(cfg, job)
    want = job["expect_counts"]
    bad = {**want, "actions": {**want["actions"], "pe_mult.mult": want["actions"]["pe_mult.mult"] + 1},
           "bank_writes": [*want["bank_writes"][:-1], want["bank_writes"][-1] - 1], "stall_cycles": 1}
    diffs = count_diffs(counts, bad)
    m = want["actions"]["pe_mult.mult"]
    assert diffs == {"pe_mult.mult": [m, m + 1], "bank_writes[3]": [want["bank_writes"][3], want["bank_writes"][3] - 1],
                     "stall_cycles": [0, 1]}


def test_generate_writes_verilog(tmp_path):
    cfg = LstmEngineConfig(pes=4, banks=4, hidden_sram_bytes=256, **SMALL)
    v, j = write_verilog(cfg, tmp_path)
    text = v.read_text()
    # the whole engine: the top (gather, state memories) over the stage engine and the gate unit
    assert "module lstm_engine_p4_b4" in text and "gate_unit" in text and "stage" in text and j.exists()
    assert "cnt_mac" not in text  # the registry's RTL has no simulation-only counters
    env = {**os.environ, **verilator_env()}
    res = subprocess.run(["verilator", "--lint-only", str(v)], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr  # lint-clean with the file's documented waivers
    with pytest.raises(HwsimError, match=r"^work_sram_bytes=67108864 has no RTL: expected at most 2\*\*24 words "
                                         r"\(67108864 words; the load port's address is 24 bits\)$"):
        write_verilog(LstmEngineConfig(pes=4, banks=4, **{**SMALL, "work_sram_bytes": 1 << 26}), tmp_path)


def test_synth_small_config():
    """``hwsim synth lstm-engine`` through the generic flow: the engine's logic is synthesized per block
    (stage engine, gate unit, nonlinearities, top-level gather), its memories are listed with the bits the
    config implies, and the registry groups are compared."""
    from hwsim.synth import synth

    cfg = LstmEngineConfig(pes=2, banks=2, data_bits=8, acc_bits=16, frac_bits=5, work_sram_bytes=64,
                           weight_sram_bytes=64, hidden_sram_bytes=64, addr_levels=2)
    rep = synth(cfg)
    stage = rep.row("stage")
    # at least the two accumulators (acc_bits each) and the descriptor register are flip-flops
    assert stage.flops >= 2 * 16 + rep.config.pes and stage.cells > 0 and rep.logic_area_um2 > 0
    # the gate unit's 6 pipeline stages hold at least the 4 pre-activations, c and h (8 bits each)
    assert rep.row("gate_unit").flops >= 6 * 8 and rep.row(cfg.top_name).flops > 0
    mems = {m.name: m.bits for m in rep.memories}
    # 2 buffers x 2 banks x 32 words x 8 bits; weights and U: 64 bytes = 32 words of 2 x 8 bits each;
    # H <= 4 (U = 4H x H bytes <= 64): h and c 4 x 8 bits, b 16 x 8 bits
    assert sum(v for k, v in mems.items() if k.startswith("buf")) == 2 * 2 * 32 * 8
    assert mems["wmem"] == mems["umem"] == 32 * 16
    assert mems["hmem"] == mems["cmem"] == 4 * 8 and mems["bmem"] == 16 * 8
    assert {label.split(":")[0] for label, _, _ in rep.comparison} >= {"stage engine", "gate unit", "sigmoid/tanh units"}
