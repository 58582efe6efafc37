"""The fair TT-vs-HT baseline (issue 23): the packed schedule's cycles against a naive per-group count and
hand-computed counts, the decomposed U's parameters and MACs against counts derived by hand from the mode
sizes, the study's verdict rows against those, and the same printed numbers on any thread count."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hwsim.models import tensor_formats as tf

from hwsim.errors import HwsimError
from hwsim.lstm_engine import (
    GATE_LATENCY,
    LstmEngineConfig,
    LstmWorkload,
    check_rtl,
    predict_matvec,
    predict_step,
    simulate_matvec,
    workload,
)


def _cfg(pes, banks, schedule="packed"):
    return LstmEngineConfig(pes=pes, banks=banks, schedule=schedule, work_sram_bytes=1 << 16,
                            weight_sram_bytes=1 << 16, hidden_sram_bytes=1 << 20, addr_levels=8)


def _engine(schedule="packed"):
    """The study's engine: 16 PEs, 16 banks, default SRAMs."""
    return LstmEngineConfig(schedule=schedule)


def _naive_stage(stage, sizes, pes, banks, packed=True):
    """Cycles and stall cycles of one stage, counted group by group and read by read from the documented
    schedule: the read addresses are the row-major intermediate's, walked over ``rest`` (q) then ``shared`` (k)."""
    R, K, Q = stage.R, stage.K, stage.Q
    dims = [sizes[a] for a in stage.t_axes]
    perm = [stage.t_axes.index(a) for a in stage.rest + stage.shared]
    addr = np.arange(math.prod(dims)).reshape(dims).transpose(perm).reshape(Q, K)
    g = min(pes // R, Q) if packed and 2 * R <= pes else 1
    cycles, stalls = 1, 0
    if g == 1:  # lanes over rows, tiles of pes rows, one broadcast read per cycle
        for q in range(Q):
            for j0 in range(0, R, pes):
                lanes = min(pes, R - j0)
                per_bank = [0] * banks
                for i in range(lanes):
                    per_bank[(q * R + j0 + i) % banks] += 1
                cycles += K + 1 + max(per_bank)
                stalls += max(per_bank) - 1
        return cycles, stalls
    for q0 in range(0, Q, g):
        cols = range(q0, min(q0 + g, Q))
        for k in range(K):
            per_bank = [0] * banks
            for q in cols:
                per_bank[int(addr[q, k]) % banks] += 1
            cycles += max(per_bank)
            stalls += max(per_bank) - 1
        per_bank = [0] * banks
        for a in range(q0 * R, (cols[-1] + 1) * R):  # the group's results, consecutive in the output layout
            per_bank[a % banks] += 1
        cycles += 1 + max(per_bank)
        stalls += max(per_bank) - 1
    return cycles, stalls


FORMATS = [
    tf.HTMatrix.random((1, 3), (5, 2), 2, rng=0),
    tf.HTMatrix.random((1, 3, 2, 5), (7, 1, 2, 3), 2, rng=1),
    tf.HTMatrix.random((2, 3, 1, 2), (3, 5, 2, 1), 3, rng=2),
    tf.HTMatrix.random((4, 4, 4, 4), (4, 4, 4, 4), 4, rng=3),
    tf.TTMatrix.random((2, 1, 3), (5, 3, 1), (1, 2, 3, 1), rng=4),
    tf.TTMatrix.random((1, 7), (3, 2), (1, 1, 1), rng=5),
]


@pytest.mark.parametrize("pes,banks", [(1, 1), (3, 2), (4, 1), (4, 4), (8, 2), (16, 16), (16, 4)])
@pytest.mark.parametrize("fi", range(len(FORMATS)))
def test_packed_cycles_equal_naive_count(fi, pes, banks):
    fmt = FORMATS[fi]
    st = predict_matvec(_cfg(pes, banks), fmt)
    stages = tf.plan_stages(fmt)
    want = [_naive_stage(s, fmt.sizes(), pes, banks) for s in stages]
    assert [(r.cycles, r.conflict_cycles) for r in st.detail["stages"]] == want
    assert st.cycles == sum(c for c, _ in want) and st.stall_cycles == sum(s for _, s in want)
    assert st.macs == sum(s.Q * s.R * s.K for s in stages)
    rows = predict_matvec(_cfg(pes, banks, "rows"), fmt)
    assert [(r.cycles, r.conflict_cycles) for r in rows.detail["stages"]] == [
        _naive_stage(s, fmt.sizes(), pes, banks, packed=False) for s in stages]
    # packing never costs cycles here, and stages of more than pes/2 rows are timed as before
    for p, r, s in zip(st.detail["stages"], rows.detail["stages"], stages, strict=True):
        assert p.cycles <= r.cycles
        if 2 * s.R > pes:
            assert (p.cycles, p.conflict_cycles, p.pack) == (r.cycles, r.conflict_cycles, 1)


@pytest.mark.parametrize("banks,stages,stalls", [
    # HT (1,3)x(5,2) rank 2 on 4 PEs. U1: R=2, K=5, Q=2, both columns at once (g=2), reads 2k and 2k+1;
    # B1_2: R=2, K=2, Q=2 (g=2), reads k and 2+k; U2: R=3 > 4/2, one column, rows schedule.
    (4, [1 + 5 + 1 + 1, 1 + 2 + 1 + 1, 1 + (4 + 1 + 1)], 0),
    # 2 banks: U1's reads 2k, 2k+1 in different banks, its 4 results 2 per bank; B1_2's reads k, 2+k clash
    (2, [1 + 5 + 1 + 2, 1 + 2 * 2 + 1 + 2, 1 + (4 + 1 + 2)], 1 + 2 + 1 + 1),
    # 1 bank: every read and write of a cycle clashes
    (1, [1 + 2 * 5 + 1 + 4, 1 + 2 * 2 + 1 + 4, 1 + (4 + 1 + 3)], (5 + 3) + (2 + 3) + 2),
])
def test_packed_cycles_by_hand(banks, stages, stalls):
    st = predict_matvec(_cfg(4, banks), FORMATS[0])
    assert [r.cycles for r in st.detail["stages"]] == stages
    assert st.cycles == sum(stages) and st.stall_cycles == stalls
    assert [r.pack for r in st.detail["stages"]] == [2, 2, 1]
    # rows schedule of the same: 1 + Q * (K + 1 + ceil(R / banks)) per stage
    rows = predict_matvec(_cfg(4, banks, "rows"), FORMATS[0])
    wc = -(-2 // banks)
    assert [r.cycles for r in rows.detail["stages"]] == [1 + 2 * (5 + 1 + wc), 1 + 2 * (2 + 1 + wc), 1 + (4 + 1 + -(-3 // banks))]


def test_packed_keeps_values_and_bank_counts():
    fmt = tf.HTMatrix.random((1, 3, 2, 5), (7, 1, 2, 3), 2, rng=1)
    ints = fmt.with_factors([np.round(f.data * 20).astype(np.int64) for f in fmt.factors])
    x = np.arange(fmt.shape[1], dtype=np.int64) % 7 - 3
    shifts = [2] * len(fmt.factors)
    y_rows, s_rows = simulate_matvec(_cfg(4, 2, "rows"), ints, x, shifts)
    y_pack, s_pack = simulate_matvec(_cfg(4, 2), ints, x, shifts)
    assert np.array_equal(y_rows, y_pack) and np.any(y_rows != 0)
    assert s_rows.detail["bank_reads"] == s_pack.detail["bank_reads"] and s_rows.detail["bank_writes"] == s_pack.detail["bank_writes"]
    assert s_pack.actions.get("pack_operand", "select") == s_pack.macs - sum(
        r.macs for r in s_pack.detail["stages"] if r.pack == 1)


def test_schedule_field_is_additive():
    assert "schedule" not in LstmEngineConfig().to_dict()  # the RTL's metadata and build keys as before
    assert LstmEngineConfig(schedule="packed").to_dict()["schedule"] == "packed"
    with pytest.raises(HwsimError, match=r"^schedule='diagonal' is not allowed: expected one of rows, packed"):
        LstmEngineConfig(schedule="diagonal")
    with pytest.raises(HwsimError, match=r"^schedule='packed' has no RTL: expected 'rows'"):
        check_rtl(LstmEngineConfig(schedule="packed"))
    check_rtl(LstmEngineConfig())


# ------------------------------------------------------------------------------------------- decomposed U
def _ht_u_by_hand(r=4):
    """FDHT's U (4H x H, H = 256) as HT over out modes (16, 4, 4, 4), in modes (4, 4, 4, 4), balanced tree,
    every rank r: parameters (leaves m_k n_k r, transfer nodes r^3, root r^2) and the MACs of the stages the
    engine runs (contract n3, n4, the (3,4) node, the root, n2, the (1,2) node, n1), written out."""
    m, n = (16, 4, 4, 4), (4, 4, 4, 4)
    params = sum(mk * nk * r for mk, nk in zip(m, n, strict=True)) + 2 * r ** 3 + r * r
    macs = [n[0] * n[1] * n[3] * (m[2] * r) * n[2],           # U3: Q = n1 n2 n4, R = m3 r, K = n3
            n[0] * n[1] * m[2] * r * (m[3] * r) * n[3],       # U4: Q = n1 n2 m3 r3, R = m4 r, K = n4
            n[0] * n[1] * m[2] * m[3] * r * (r * r),          # B3_4: R = r, K = r3 r4
            n[0] * n[1] * m[2] * m[3] * r * r,                # root: R = r12, K = r34
            n[0] * m[2] * m[3] * r * (m[1] * r) * n[1],       # U2: Q = n1 m3 m4 r12, R = m2 r2, K = n2
            n[0] * m[1] * m[2] * m[3] * r * (r * r),          # B1_2: R = r1, K = r2 r12
            m[1] * m[2] * m[3] * m[0] * (n[0] * r)]           # U1: Q = m2 m3 m4, R = m1, K = n1 r1
    return params, macs


def test_decomposed_u_params_and_macs():
    params, macs = _ht_u_by_hand()
    assert params == 592 and sum(macs) == 90_112  # vs 262,144 of the dense U
    w = workload("ucf11", "ht", 4, hidden="ht")
    assert w.hidden_fmt.params == params
    assert w.hidden_fmt.shape == (1024, 256)
    st = predict_step(_engine("rows"), w)
    hid = [s for s in st.detail["stages"] if s.name.startswith("hidden.")]
    assert sorted(s.macs for s in hid) == sorted(macs)
    assert st.macs == sum(s.macs for s in w.stages) + sum(macs)
    # TT U, ranks (1, 4, 4, 4, 1): 1*16*4*4 + 4*4*4*4 * 2 + 4*4*4*1
    assert workload("ucf11", "tt", 4, hidden="tt").hidden_fmt.params == 256 + 512 + 64
    # dense-U steps are unchanged by the new field
    dense = predict_step(_engine("rows"), workload("ucf11", "ht", 4))
    assert [s.name for s in dense.detail["stages"]][-2:] == ["hidden", "gates"]
    assert dense.macs == sum(s.macs for s in w.stages) + 1024 * 256


def test_decomposed_u_step_counts():
    """Frame = input-layer stages + the U stages (naive count) + the gate phase 1 + 4H + 2 + GATE_LATENCY; the
    U stages read their weights from the weight SRAM, never the hidden SRAM; h' goes into a working SRAM."""
    cfg = _engine()
    w = workload("ucf11", "ht", 4, hidden="ht")
    st = predict_step(cfg, w)
    naive_in = [_naive_stage(s, w.fmt.sizes(), 16, 16) for s in w.stages]
    naive_u = [_naive_stage(s, w.hidden_fmt.sizes(), 16, 16) for s in tf.plan_stages(w.hidden_fmt)]
    gates = 1 + 4 * 256 + 2 + GATE_LATENCY
    assert st.cycles == sum(c for c, _ in naive_in + naive_u) + gates
    assert st.stall_cycles == sum(s for _, s in naive_in + naive_u)
    assert st.actions.get("hidden_sram", "read") == 0
    dense = predict_step(cfg, workload("ucf11", "ht", 4))
    assert dense.actions.get("hidden_sram", "read") == 1024 * 256 // 16
    bad = LstmWorkload("bad", w.fmt, 256, hidden_fmt=tf.HTMatrix.random((4, 4), (4, 4), 2, rng=0))
    with pytest.raises(HwsimError, match=r"^hidden_fmt shape=\(16, 16\) is not allowed for bad: expected \(4H, H\)"):
        predict_step(cfg, bad)


def test_workload_model_through_the_run_loop():
    """Shape-only workloads as a model (WorkloadModel) through the counts-only run loop: one layer per
    workload, lowered to the workload itself, its Stats the hand count of TIE's TT r4 UCF11 frame times the
    steps; no value path."""
    from hwsim.families import Accelerator, Unit
    from hwsim.lstm_engine import FAMILY, WorkloadModel
    from hwsim.run import predict_model

    cfg = _engine("rows")
    tt, ht = workload("ucf11", "tt", 4, steps=2), workload("ucf11", "ht", 4, hidden="ht")
    mr = predict_model(Accelerator("a", (Unit(FAMILY, cfg),)), WorkloadModel(tt, ht))
    assert [(lr.name, lr.kind, lr.unit) for lr in mr.layers] == [(tt.name, "lstm", 0), (ht.name, "lstm", 0)]
    # every TT stage has R = 16 = pes = banks: 1 + Q (K + 2); the dense hidden stage 64 tiles over K = 256;
    # the gate phase 1 + 4H + 2 + GATE_LATENCY; two frames
    frame = (sum(1 + s.Q * (s.K + 2) for s in tt.stages) + (1 + 64 * (256 + 2))
             + (1 + 4 * 256 + 2 + GATE_LATENCY))
    st = mr.layers[0].stats
    assert st.cycles == 2 * frame and st.stall_cycles == 0 and st.detail["steps"] == 2
    assert st.macs == 2 * (sum(s.macs for s in tt.stages) + 1024 * 256)
    assert (mr.layers[0].shape, mr.layers[1].weight_format) == ("T2 1024x57600+1024x256",
                                                                "HT input layer, HT U (shapes only)")
    with pytest.raises(HwsimError, match=r"^layer 'ucf11-tt-r4' is not allowed on the value path: a WorkloadLayer "
                                         r"has shapes only \(counts: hwsim.run.predict_model\)$"):
        FAMILY.load("run")(cfg, WorkloadModel(tt).unit_layers()[0], [np.zeros((1, 2, 57600), dtype=np.int64)])


# ------------------------------------------------------------------------------------------- the study
@pytest.fixture(scope="module")
def study():
    from hwsim.lstm_engine_study import run

    return run(quick=True)


def test_study_rows_follow_the_counts(study):
    rows = {r["design"]: r for r in study.rows}
    tt, fair = rows["tt-r4"], rows["ht-r4 packed+U"]
    # TIE's TT r4 on UCF11: every stage has R = 16 = pes = banks: 1 + Q (K + 2) cycles per stage
    tt_stages = tf.plan_stages(workload("ucf11", "tt", 4).fmt)
    assert tt["matvec_cycles"] == sum(1 + s.Q * (s.K + 2) for s in tt_stages)
    # the dense hidden stage: 64 tiles of 16 rows over K = 256; the gate phase 4H + 9
    assert tt["cycles"] == tt["matvec_cycles"] + (1 + (1024 // 16) * (256 + 2)) + (1 + 4 * 256 + 2 + GATE_LATENCY)
    w = workload("ucf11", "ht", 4, hidden="ht")
    naive_in = sum(_naive_stage(s, w.fmt.sizes(), 16, 16)[0] for s in w.stages)
    naive_u = sum(_naive_stage(s, w.hidden_fmt.sizes(), 16, 16)[0] for s in tf.plan_stages(w.hidden_fmt))
    assert fair["matvec_cycles"] == naive_in
    assert fair["cycles"] == naive_in + naive_u + 1 + 4 * 256 + 2 + GATE_LATENCY
    assert fair["u_params"] == 592 and fair["params"] == 1584
    # the x fetch: 57,600 int16 from LPDDR4 at 8 pJ/bit, the same for every design
    for r in study.rows:
        assert r["dram_uj"] == pytest.approx(57_600 * 2 * 8 * 8 * 1e-6, rel=1e-12)
        assert r["energy_uj"] == pytest.approx(r["energy_no_dram_uj"] + r["dram_uj"], rel=1e-12)
    head = {h["comparison"].split(":")[0]: h for h in study.headline}
    assert head["fair"]["throughput"] == pytest.approx(tt["cycles"] / fair["cycles"], rel=1e-12)
    assert head["fair"]["throughput_matvec"] == pytest.approx(tt["matvec_cycles"] / fair["matvec_cycles"], rel=1e-12)
    assert head["fair"]["energy_eff"] == pytest.approx(tt["energy_uj"] / fair["energy_uj"], rel=1e-12)
    assert head["fair"]["energy_eff_no_dram"] == pytest.approx(tt["energy_no_dram_uj"] / fair["energy_no_dram_uj"],
                                                               rel=1e-12)
    old = rows["ht-r4 rows"]
    assert head["old"]["throughput"] == pytest.approx(tt["cycles"] / old["cycles"], rel=1e-12)
    # packing only removes idle-lane cycles of the narrow (4-row) stages: the 16-row leaves keep their cycles
    packed = rows["ht-r4 packed"]
    for a, b in zip(old["stages"], packed["stages"], strict=True):
        assert a["factor"] == b["factor"]
        if a["factor"] != "gates":
            assert (b["cycles"] < a["cycles"]) == (a["R"] == 4)
    # the sensitivity grid at the default point (16 KiB, LPDDR4) is the headline
    s16 = next(s for s in study.sensitivity if s["weight_kib"] == 16 and s["dram"] == "lpddr4")
    assert s16["energy_eff"] == pytest.approx(head["fair"]["energy_eff"], rel=1e-12)
    assert s16["throughput"] == pytest.approx(head["fair"]["throughput"], rel=1e-12)
    # the printed verdict lines carry those ratios and the paper's figures beside them
    text = study.format()
    assert f"{head['fair']['energy_eff']:.2f}" in text and "higher, higher (no figure in the abstract)" in text  # UCF11


def test_study_prints_the_same_on_any_thread_count():
    env1 = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env_default = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    outs = [subprocess.run([sys.executable, "-m", "hwsim.cli", "study", "tt-vs-ht", "--quick"], env=env,
                           capture_output=True, text=True, check=True).stdout for env in (env1, env_default)]
    assert outs[0] == outs[1] and "fair: ht-r4 packed+U vs tt-r4" in outs[0]
