"""SCALE-Sim config/topology import and SCALE-Sim's cycle conventions (hwsim.scalesim).

Expectations come from outside the code under test: a naive re-enactment of how SCALE-Sim builds its demand
matrices (one loop iteration per fold, the prefix/suffix/skew rows of ``systolic_compute_{os,ws,is}.py``
added up one by one, output size by counting window positions), and COMPUTE_REPORT numbers printed by
SCALE-Sim 3.0.0 itself on a small topology.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.scalesim import (
    ScaleSimMemoryParams,
    compare_with_scalesim,
    read_scalesim_config,
    read_scalesim_topology,
    scalesim_memory,
)

#: SCALE-Sim-format files the repository ships (examples/scalesim/README.md: where the shapes come from)
SCALESIM = Path(__file__).resolve().parents[1] / "examples" / "scalesim"
GOOGLE = SCALESIM / "google.cfg"

SMALL_TOPO = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,
L1,10,10,3,3,3,5,1,
L2,12,9,3,2,4,20,2,
L3,7,7,7,7,17,9,1,
"""
SMALL_CFG = """[general]
run_name = t

[architecture_presets]
ArrayHeight:    8
ArrayWidth:     6
IfmapSramSzkB:    64
FilterSramSzkB:   64
OfmapSramSzkB:    32
Dataflow : {df}
Bandwidth : 10
"""
# COMPUTE_REPORT "Total Cycles" (stall cycles were 0) printed by SCALE-Sim 3.0.0 (pip install scalesim) for
# SMALL_TOPO on SMALL_CFG, one run per dataflow.
SCALESIM_3_0_0_SMALL = {"os": [311, 575, 1689], "ws": [335, 599, 4409], "is": [1099, 599, 3044]}


def naive_ofmap(size: int, filt: int, stride: int) -> int:
    """Window starts SCALE-Sim counts: 0, stride, 2*stride, ... below ``size - filt + stride`` (its
    ``ceil((size - filt + stride) / stride)``: a last window that overhangs the edge still counts)."""
    starts = 0
    pos = 0
    while pos <= size - filt + stride - 1:
        starts += 1
        pos += stride
    return starts


def naive_scalesim_cycles(df: str, R: int, C: int, row: list[int]) -> int:
    """Rows of SCALE-Sim's ofmap demand matrix, built fold by fold (no stalls)."""
    ih, iw, fh, fw, ch, nf, s = row
    M = naive_ofmap(ih, fh, s) * naive_ofmap(iw, fw, s)
    K, N = fh * fw * ch, nf
    Sr, Sc, T = {"os": (M, N, K), "ws": (K, N, M), "is": (K, M, N)}[df]
    rows = 0
    for _fc in range(0, Sc, C):
        for _fr in range(0, Sr, R):
            if df == "os":
                fold = (T - 1) + R      # prefix of T-1 null rows, then the R output rows (flipped)
            else:
                fold = (2 * R - 1) + T  # prefix of 2R-1 null rows, then T output rows
            fold += C - 1               # skew: column c is delayed by c rows
            rows += fold
    return rows


def topo_rows(path: Path) -> list[tuple[str, list[int]]]:
    out = []
    for line in path.read_text().splitlines()[1:]:
        f = [x.strip() for x in line.split(",") if x.strip()]
        if f:
            out.append((f[0], [int(v) for v in f[1:8]]))
    return out


@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_small_topology_matches_scalesim_3_0_0(tmp_path, df):
    (tmp_path / "t.csv").write_text(SMALL_TOPO)
    (tmp_path / "t.cfg").write_text(SMALL_CFG.format(df=df))
    cmp = compare_with_scalesim(tmp_path / "t.cfg", tmp_path / "t.csv")
    assert [r.scalesim_report_cycles for r in cmp.layers] == SCALESIM_3_0_0_SMALL[df]


@pytest.mark.parametrize("topology", ["Resnet18", "alexnet"])
@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_every_layer_matches_the_naive_demand_matrices(topology, df):
    path = SCALESIM / f"{topology}.csv"
    cmp = compare_with_scalesim(GOOGLE, path, dataflow=df)
    expected = [naive_scalesim_cycles(df, 256, 256, row) for _, row in topo_rows(path)]
    assert [r.name for r in cmp.layers] == [n for n, _ in topo_rows(path)]
    assert [r.scalesim_cycles for r in cmp.layers] == expected
    assert [r.scalesim_report_cycles for r in cmp.layers] == [e - 1 for e in expected]


def test_lowerings_differ_as_documented():
    cmp = compare_with_scalesim(GOOGLE, SCALESIM / "alexnet.csv", dataflow="ws")
    conv1 = cmp.layers[0]
    # SCALE-Sim: no padding, ceil((224 - 11 + 4) / 4) = 55 -> 55*55 = 3025 pixels, K = 11*11*3
    assert conv1.scalesim_mnk == (3025, 96, 363)
    # hwsim 'same' padding 5: floor((224 + 10 - 11) / 4) + 1 = 56 -> 3136
    assert conv1.hwsim_gemm == (3136, 363, 96)
    # hwsim's own count is its RTL-exact model; it includes DRAM stalls at 10 B/cycle
    assert conv1.hwsim_cycles > conv1.hwsim_stall_cycles > 0


def test_gemm_topology_and_depthwise_rows(tmp_path):
    (tmp_path / "g.csv").write_text("Layer Name, M, N, K,\nTest 1, 256, 128, 256,\n")
    (tmp_path / "c.cfg").write_text(SMALL_CFG.format(df="os"))
    [g] = read_scalesim_topology(tmp_path / "g.csv")
    assert g.mnk == (256, 128, 256) and g.hwsim_layer().gemm_shape == (256, 256, 128)
    cmp = compare_with_scalesim(tmp_path / "c.cfg", tmp_path / "g.csv")
    # os on 8x6: ceil(256/8) * ceil(128/6) folds of 256 + 8 + 6 - 2 cycles
    assert cmp.layers[0].scalesim_cycles == 32 * 22 * 268
    (tmp_path / "dp.csv").write_text(SMALL_TOPO.splitlines()[0] + "\nConvDP,10,10,3,3,4,1,1,\n")
    [dp] = read_scalesim_topology(tmp_path / "dp.csv")
    assert dp.repeats == 4 and dp.mnk == (64, 1, 9)
    layer = dp.hwsim_layer()
    assert layer.groups == 4 and layer.gemm_shape == (100, 9, 1)
    cmp = compare_with_scalesim(tmp_path / "c.cfg", tmp_path / "dp.csv")
    assert cmp.layers[0].scalesim_cycles == 4 * 8 * (9 + 8 + 6 - 2)


def test_config_fields():
    cfg = read_scalesim_config(GOOGLE)
    assert (cfg.rows, cfg.cols, cfg.dataflow, cfg.bandwidth) == (256, 256, "os", 10.0)
    m = cfg.mac_array_config(dataflow="ws")
    assert m.input_sram_bytes == 6144 * 1024 and m.output_sram_bytes == 2048 * 1024 and m.dataflow == "ws"


@pytest.mark.parametrize("text, pattern", [
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
     "L1,10,10,3,3,3,x5,1,\n", r"^.*t\.csv:2: Num Filter='x5' is not allowed: expected an integer >= 1$"),
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n\n"
     "L1,10,10,3,3,3,1,\n", r"^.*t\.csv:3: 7 fields are not allowed: expected 8 \(Layer name, .*\)$"),
    ("Layer, a, b\nL1,1,2\n", r"^.*t\.csv:1: header 'Layer, a, b' is not allowed: expected a SCALE-Sim conv header"),
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
     "L1,3,3,5,5,3,1,1,\n", r"^.*t\.csv:2: filter 5x5 is not allowed: expected at most the IFMAP 3x3"),
    ("", r"^.*t\.csv: an empty file is not allowed"),
])
def test_malformed_topology(tmp_path, text, pattern):
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(HwsimError, match=pattern):
        read_scalesim_topology(tmp_path / "t.csv")


@pytest.mark.parametrize("edit, pattern", [
    (("ArrayWidth:     6", "ArrayWidth: six"), r"^.*c\.cfg:6: ArrayWidth='six' is not allowed: expected an integer$"),
    (("Dataflow : os", "Dataflow : xs"), r"^.*c\.cfg:10: Dataflow='xs' is not allowed: expected one of os, ws, is$"),
    (("Bandwidth : 10", ""), r"^.*c\.cfg: \[architecture_presets\] without Bandwidth is not allowed"),
    (("[general]", "general"), r"^.*c\.cfg:1: 'general' is not allowed: expected '\[section\]' or 'key : value'$"),
])
def test_malformed_config(tmp_path, edit, pattern):
    (tmp_path / "c.cfg").write_text(SMALL_CFG.format(df="os").replace(*edit))
    with pytest.raises(HwsimError, match=pattern):
        read_scalesim_config(tmp_path / "c.cfg")


def test_cli_prints_both_conventions(capsys):
    rc = main(["simulate", "--scalesim-config", str(GOOGLE), "--topology",
               str(SCALESIM / "Resnet18.csv"), "--dataflow", "ws"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "SCALE-Sim convention" in out and "hwsim convention" in out
    conv1 = next(line for line in out.splitlines() if line.startswith("Conv1 "))
    # SCALE-Sim: M = ceil((224-7+2)/2)^2 = 110^2, K = 147, one fold of 2*256 + 256 + 12100 - 2 cycles
    assert re.search(r"12100x64x147\s+1\s+12866\s+12,865\s+12544x147x64", conv1)


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("Layer name, M, N, K,\nA,1,2,-3,\n")
    (tmp_path / "c.cfg").write_text(SMALL_CFG.format(df="ws"))
    assert main(["simulate", "--scalesim-config", str(tmp_path / "c.cfg"), "--topology", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"hwsim: error: .*t\.csv:2: K='-3' is not allowed: expected an integer >= 1\n", err)
    assert main(["simulate", "--topology", str(tmp_path / "t.csv")]) == 2
    assert re.fullmatch(r"hwsim: error: --topology without --scalesim-config is not allowed.*\n", capsys.readouterr().err)


# ------------------------------------------------------------------ SCALE-Sim 3 convention (its memory system)
#: COMPUTE_REPORT.csv and DETAILED_ACCESS_REPORT.csv written by SCALE-Sim 3.0.0 itself (tests/data/scalesim3/
#: README.md: how): one directory per run, named <topology>_<config>_<dataflow>.
SCALESIM3 = Path(__file__).resolve().parent / "data" / "scalesim3"
CONFIGS = {"google": GOOGLE, "small": SCALESIM / "small_sram_64x64.cfg"}
RUNS = sorted(p.name for p in SCALESIM3.iterdir() if (p / "COMPUTE_REPORT.csv").is_file())


def report_rows(path: Path) -> list[list[int]]:
    rows = [[x.strip() for x in line.split(",") if x.strip()] for line in path.read_text().splitlines()[1:]]
    return [[int(float(v)) for v in r] for r in rows if r]


def test_every_shared_run_is_stored():
    # the must-show: ResNet-18 and AlexNet on google.cfg for os, ws and is, plus the small-SRAM runs with stalls
    for topo in ("Resnet18", "alexnet"):
        for df in ("os", "ws", "is"):
            assert f"{topo}_google_{df}" in RUNS
    assert {f"tail_layers_small_{df}" for df in ("os", "ws", "is")} <= set(RUNS)


@pytest.mark.parametrize("run", RUNS)
def test_convention_equals_scalesim_3_reports(run):
    topo, cfg, df = run.rsplit("_", 2)
    cmp = compare_with_scalesim(CONFIGS[cfg], SCALESIM / f"{topo}.csv", dataflow=df, convention="scalesim")
    compute = report_rows(SCALESIM3 / run / "COMPUTE_REPORT.csv")
    detail = report_rows(SCALESIM3 / run / "DETAILED_ACCESS_REPORT.csv")
    assert len(compute) == len(detail) == len(cmp.layers)
    for lc, c, d in zip(cmp.layers, compute, detail, strict=True):
        mm = lc.scalesim_memory
        # COMPUTE_REPORT: LayerID, Total Cycles (incl. prefetch), Total Cycles, Stall Cycles, ...
        assert (mm.total_incl_prefetch, mm.total_cycles, mm.stall_cycles) == tuple(c[1:4]), lc.name
        # DETAILED_ACCESS_REPORT: DRAM IFMAP start/stop/reads, filter, OFMAP (columns 10..18)
        assert (mm.ifmap_dram_start, -1, mm.ifmap_dram_reads, mm.filter_dram_start, -1, mm.filter_dram_reads,
                mm.ofmap_dram_start, mm.ofmap_dram_stop, mm.ofmap_dram_writes) == tuple(d[10:19]), lc.name
        assert lc.scalesim_total_cycles == c[2]
        # compute cycles (no stalls) are the demand rows SCALE-Sim walks, as before
        assert mm.compute_cycles == lc.scalesim_cycles


def test_small_sram_runs_stall_and_drain():
    # the stored small-SRAM ws run has stalls on every layer but the FC (a check that the data exercises them)
    compute = report_rows(SCALESIM3 / "tail_layers_small_ws" / "COMPUTE_REPORT.csv")
    assert [r[3] > 0 for r in compute] == [True, True, True, True, False, True, False]


def _cfg_text(**edits) -> str:
    text = GOOGLE.read_text()
    for old, new in edits.values():
        assert old in text
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("edit, pattern", [
    (("InterfaceBandwidth : USER", "InterfaceBandwidth : CALC"),
     r"^.*c\.cfg: \[run_presets\] InterfaceBandwidth='CALC' is not allowed with --convention scalesim: expected USER"),
    (("UseRamulatorTrace : False", "UseRamulatorTrace : True"),
     r"^.*c\.cfg: \[run_presets\] UseRamulatorTrace='True' is not allowed with --convention scalesim: expected False"),
    (("IfmapSRAMBankBandwidth : 10\n", ""),
     r"^.*c\.cfg: \[layout\] without IfmapSRAMBankBandwidth is not allowed with --convention scalesim"),
    (("FilterSRAMBankBandwidth : 10", "FilterSRAMBankBandwidth : ten"),
     r"^.*c\.cfg: \[layout\] FilterSRAMBankBandwidth='ten' is not allowed: expected an integer >= 1$"),
    (("Bandwidth : 10\n", "Bandwidth : 10.5\n"),
     r"^.*c\.cfg: Bandwidth=10\.5 is not allowed with --convention scalesim: expected an integer"),
    # AlexNet Conv2's IFMAP im2col matrix (529 x 2400 words) does not fit the active half of 2200 KiB (Conv1's
    # 3025 x 363 does: 1,098,075 <= 50 sets of ceil(2,252,800 / 100) words)
    (("IfmapSramSzkB : 6144", "IfmapSramSzkB : 2200"),
     r"^.*alexnet\.csv:3: layer Conv2: IFMAP operand of 1,269,600 words is not allowed with --convention scalesim"),
])
def test_convention_refusals(tmp_path, edit, pattern):
    (tmp_path / "c.cfg").write_text(_cfg_text(e=edit))
    with pytest.raises(HwsimError, match=pattern):
        compare_with_scalesim(tmp_path / "c.cfg", SCALESIM / "alexnet.csv", dataflow="ws", convention="scalesim")
    # the default convention does not need SCALE-Sim 3's memory keys
    if "alexnet" not in pattern:
        assert len(compare_with_scalesim(tmp_path / "c.cfg", SCALESIM / "alexnet.csv", dataflow="ws").layers) == 5


def test_cli_convention_scalesim(capsys):
    rc = main(["simulate", "--scalesim-config", str(GOOGLE), "--topology", str(SCALESIM / "alexnet.csv"),
               "--dataflow", "ws", "--convention", "scalesim"])
    out = capsys.readouterr().out
    assert rc == 0 and "SCALE-Sim 3 convention" in out
    # SCALE-Sim 3.0.0 printed Total Cycles 12949, Stall Cycles 0, Total Cycles (incl. prefetch) 250377 for
    # Conv2; its 1,354,240 output words (10 row folds) overflow half the 2 MiB OFMAP SRAM once: one drain
    conv2 = next(line for line in out.splitlines() if line.startswith("Conv2 "))
    assert re.search(r"529x256x2400\s+10\s+12,949\s+0\s+12,949\s+250,377\s+1\s", conv2)
    assert main(["simulate", "--convention", "scalesim"]) == 2
    assert re.fullmatch(r"hwsim: error: --convention='scalesim' is not allowed with a model.*\n",
                        capsys.readouterr().err)


def naive_ofmap_words_per_row(df: str, R: int, C: int, m: int, n: int, k: int) -> list[int]:
    """Valid words in each row of SCALE-Sim's OFMAP demand matrix, built fold by fold as
    ``systolic_compute_{os,ws,is}.create_ofmap_demand_mat`` does (prefix rows, the output block with its
    null padding, the os flip, then the skew that delays column j by j rows)."""
    Sr, Sc, T = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[df]
    rows: list[int] = []
    for c0 in range(0, Sc, C):
        cu = min(C, Sc - c0)
        for r0 in range(0, Sr, R):
            if df == "os":
                prefix, block = T - 1, [[j < cu for j in range(C)] for _ in range(R - min(R, Sr - r0))] \
                    + [[j < cu for j in range(C)] for _ in range(min(R, Sr - r0))]
                block = [[v and i >= R - min(R, Sr - r0) for v in row] for i, row in enumerate(block)]
            else:
                prefix, block = 2 * R - 1, [[j < cu for j in range(C)] for _ in range(T)]
            fold = [0] * (prefix + len(block) + C - 1)
            for i, row in enumerate(block):
                for j, valid in enumerate(row):
                    fold[prefix + i + j] += valid
            rows += fold
    return rows


def naive_write_buffer(words_per_row: list[int], size: int, bw: int) -> dict:
    """SCALE-Sim 3.0.0's ``write_buffer`` word by word (``service_writes``, ``store_to_trace_mat_cache``,
    ``empty_drain_buf``, ``empty_all_buffers``) under ``double_buffered_scratchpad``'s row loop, reads
    never stalling."""
    active = math.ceil(size * 0.5)
    drain_lines = math.ceil((size - active) / bw)
    free, lines, cur, start, drain_end, stall = size, [], 0, 0, 0, 0
    starts, ends, writes = [], [], 0

    def force():
        nonlocal cur
        if cur:
            lines.append(cur)
            cur = 0

    def drain(cycle):
        nonlocal start, free, writes
        chunk = lines[start:min(start + drain_lines, len(lines))]
        words = len(chunk) * bw - (bw - chunk[-1])  # only the last line's -1 entries are subtracted
        free += words
        writes += words
        start += len(chunk)
        starts.append(cycle)
        ends.append(cycle + len(chunk) - 1)
        return cycle + len(chunk) - 1

    out = 0
    for i, count in enumerate(words_per_row):
        cycle = i + stall
        c = cycle
        for _ in range(count):
            cur += 1
            free -= 1
            if cur == bw:
                lines.append(bw)
                cur = 0
            if c < drain_end:
                if not free > 0:
                    c = drain_end
            elif free < active:
                force()
                drain_end = drain(c)
        stall += c - cycle
        out = c
    drains = len(starts)
    force()
    c = out
    while start < len(lines):
        c = drain(c) + 1
    return {"total": out, "stall": stall, "start": min(starts), "stop": max(ends), "writes": writes,
            "drains": drains}


@settings(max_examples=80, deadline=None, derandomize=True)
# stall-heavy cases (1,729 / 589 / 193 stall cycles; the is case writes 2,251 words for 2,250 outputs:
# a drain chunk with an earlier partial line inside is credited a whole line)
@example(df="ws", R=4, C=8, m=30, n=16, k=20, size=16, bw=1)
@example(df="is", R=3, C=8, m=25, n=30, k=7, size=20, bw=2)
@example(df="os", R=2, C=8, m=30, n=30, k=3, size=10, bw=1)
@given(df=st.sampled_from(["os", "ws", "is"]), R=st.integers(1, 6), C=st.integers(1, 8),
       m=st.integers(1, 30), n=st.integers(1, 30), k=st.integers(1, 30), size=st.integers(2, 200),
       bw=st.integers(1, 5))
def test_ofmap_drains_and_stalls_equal_a_word_by_word_replay(df, R, C, m, n, k, size, bw):
    big = 1 << 20  # IFMAP and filter fit their active halves: reads never stall
    p = ScaleSimMemoryParams(ifmap_words=big, filter_words=big, ofmap_words=size, ifmap_bw=3, filter_bw=5,
                             ofmap_bw=bw)
    mm = scalesim_memory(df, R, C, m, n, k, p)
    rows = naive_ofmap_words_per_row(df, R, C, m, n, k)
    ref = naive_write_buffer(rows, size, bw)
    assert mm.compute_cycles == len(rows)
    assert (mm.total_cycles, mm.stall_cycles, mm.ofmap_dram_start, mm.ofmap_dram_stop, mm.ofmap_dram_writes,
            mm.ofmap_drains) == (ref["total"], ref["stall"], ref["start"], ref["stop"], ref["writes"],
                                 ref["drains"])
