"""The memory system (issue 21): DRAM timing in closed form against a burst-by-burst controller, the
DRAM parameters against the parts' published peak rates, and the whole-model plan's DRAM bytes against
hand counts and naive band walks; ResNet-18 at 224x224 against its compulsory traffic."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.dram import DRAM_SPECS, DramSpec, burst_count, busy_ns, load_dram_spec, refreshes, transfer_ns
from hwsim.errors import HwsimError
from hwsim.memory import LayerTensors, plan
from hwsim.workloads import load_scalesim_topology

REPO = Path(__file__).resolve().parents[1]
RESNET = REPO / "examples" / "scalesim" / "Resnet18.csv"


# ---------------------------------------------------------------------------------------------- DRAM timing
def _controller_ns(spec: DramSpec, runs) -> tuple[float, int]:
    """The documented controller, burst by burst: each run opens its first page (tRP + tRCD + tCL); each
    burst takes the bus t_burst; entering a new page waits until tRP + tRCD after the previous page's first
    burst (its ACT was issued then). Returns (busy ns, bursts)."""
    B, P = spec.burst_bytes * spec.channels, spec.page_bytes * spec.channels
    t, nb = 0.0, 0
    for a, n in runs:
        if n == 0:
            continue
        t += spec.t_rp + spec.t_rcd + spec.t_cl
        page = start = None
        for burst in range(a // B, (a + n - 1) // B + 1):
            pg = burst * B // P
            if page is not None and pg != page:
                t = max(t, start + spec.t_rp + spec.t_rcd)
            if pg != page:
                page, start = pg, t
            t += spec.t_burst
            nb += 1
    return t, nb


def _with_refresh(spec: DramSpec, busy: float) -> float:
    """Time stepped refresh by refresh: the channel stops for t_rfc at every multiple of t_refi."""
    t = done = 0.0
    k = 1
    while True:
        nxt = k * spec.t_refi
        if done + (nxt - t) >= busy:
            return t + (busy - done)
        done += nxt - t
        t = nxt + spec.t_rfc
        k += 1


SPECS = st.builds(
    DramSpec, name=st.just("t"), burst_bytes=st.sampled_from([8, 32, 64]), t_burst=st.sampled_from([1.0, 2.5, 5.0]),
    page_bytes=st.sampled_from([1, 2, 4, 32]).map(lambda k: k * 64), banks=st.sampled_from([1, 8, 16]),
    t_rcd=st.sampled_from([0.0, 7.0, 18.125]), t_rp=st.sampled_from([0.0, 7.0, 16.875]),
    t_cl=st.sampled_from([0.0, 7.0, 20.0]), t_rfc=st.sampled_from([0.0, 160.0, 280.0]),
    t_refi=st.sampled_from([0.0, 3900.0, 7800.0]), channels=st.sampled_from([1, 2]))
RUNS = st.lists(st.tuples(st.integers(0, 20000), st.sampled_from([0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 65, 127, 2047,
                                                                   2048, 2049, 5000, 13331])), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(SPECS, RUNS)
def test_closed_form_equals_burst_by_burst_controller(spec, runs):
    busy, nb = _controller_ns(spec, runs)
    addr, size = zip(*runs, strict=True)
    assert busy_ns(spec, addr, size) == pytest.approx(busy, rel=1e-12, abs=1e-9)
    assert burst_count(spec, addr, size) == nb


@pytest.mark.parametrize("name", sorted(DRAM_SPECS))
@pytest.mark.parametrize("nbytes", [1, 4096, 1 << 20, 10 << 20])
def test_refresh_closed_form_equals_stepped_refresh(name, nbytes):
    spec = DRAM_SPECS[name]
    busy = busy_ns(spec, 0, nbytes)
    assert transfer_ns(spec, 0, nbytes) == pytest.approx(_with_refresh(spec, busy), rel=1e-12)


@pytest.mark.parametrize("busy", [0.0, 3900.0, 3900.5, 7640.0, 7640.01, 1e6])
def test_refresh_count_at_the_boundaries(busy):
    spec = DRAM_SPECS["hbm2"]  # tRFC 160, tREFI 3900: refresh k starts after k*3900 - (k-1)*160 ns of data
    expected = sum(1 for k in range(1, 1000) if k * 3900 - (k - 1) * 160 < busy)
    assert refreshes(spec, busy) == expected


@pytest.mark.parametrize("name, gb_per_s", [("lpddr4", 6.4), ("ddr3", 12.8), ("hbm2", 16.0)])
def test_peak_rates_are_the_parts_published_ones(name, gb_per_s):
    """LPDDR4-3200 x16: 3200 MT/s x 2 B; DDR3-1600 64-bit DIMM: 1600 MT/s x 8 B; HBM2 2 Gbps x 64-bit
    pseudo channel: 16 GB/s."""
    assert DRAM_SPECS[name].peak_bytes_per_ns == pytest.approx(gb_per_s)


def test_long_stream_is_refresh_bound_and_page_misses_hidden():
    """A 1 MiB sequential read on LPDDR4: 32,768 bursts of 5 ns, 2 KiB pages hide tRP + tRCD (64 bursts =
    320 ns > 35 ns), so busy = 35 + 20 + 163,840 ns; refresh adds 280 ns every 3,904 ns."""
    s = DRAM_SPECS["lpddr4"]
    busy = s.t_rp + s.t_rcd + s.t_cl + 32768 * 5.0
    assert busy_ns(s, 0, 1 << 20) == pytest.approx(busy)
    r = math.ceil((busy - 280) / (3904 - 280)) - 1
    assert transfer_ns(s, 0, 1 << 20) == pytest.approx(busy + r * 280)


def test_small_pages_expose_activation():
    """DDR3 with 64 B pages (one burst): every page switch exposes tRP + tRCD - t_burst."""
    s = DramSpec("tiny", burst_bytes=64, t_burst=5.0, page_bytes=64, banks=8, t_rcd=13.75, t_rp=13.75, t_cl=13.75,
                 t_rfc=0.0, t_refi=0.0)
    assert busy_ns(s, 0, 64 * 10) == pytest.approx(3 * 13.75 + 10 * 5.0 + 9 * (27.5 - 5.0))


@pytest.mark.parametrize("text, words", [
    ("burst_bytes: 32\nt_burst: 5\npage_bytes: 2048\nbanks: 8\nt_rcd: 18\nt_rp: 18\nt_cl: 20\nt_rfc: 280\n",
     ["t_refi", "missing"]),
    ("burst_bytes: 32\nt_burst: 5\npage_bytes: 2048\nbanks: 8\nt_rcd: 18\nt_rp: 18\nt_cl: 20\nt_rfc: 5000\n"
     "t_refi: 3900\n", ["t_rfc", "5000", "t_refi"]),
    ("burst_bytes: 48\nt_burst: 5\npage_bytes: 2048\nbanks: 8\nt_rcd: 18\nt_rp: 18\nt_cl: 20\nt_rfc: 280\n"
     "t_refi: 3900\n", ["page_bytes", "burst_bytes"]),
    ("burst_bytes: 32\nt_burst: -5\npage_bytes: 2048\nbanks: 8\nt_rcd: 18\nt_rp: 18\nt_cl: 20\nt_rfc: 280\n"
     "t_refi: 3900\n", ["t_burst", "-5"]),
    ("burst_bytes: 32\nt_burst: 5\npage_bytes: 2048\nbanks: 0\nt_rcd: 18\nt_rp: 18\nt_cl: 20\nt_rfc: 280\n"
     "t_refi: 3900\n", ["banks", "0"]),
    ("burst_bytes: 32\ntburst: 5\n", ["tburst"]),
    ("- 1\n- 2\n", ["mapping"]),
])
def test_bad_dram_file_is_one_line_naming_the_field(tmp_path, text, words):
    f = tmp_path / "part.yaml"
    f.write_text(text)
    with pytest.raises(HwsimError) as e:
        load_dram_spec(f)
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_dram_file_round_trip(tmp_path):
    f = tmp_path / "mypart.yaml"
    f.write_text("burst_bytes: 32\nt_burst: 5\npage_bytes: 2048\nbanks: 8\nt_rcd: 18\nt_rp: 18\nt_cl: 20\n"
                 "t_rfc: 280\nt_refi: 3904\n")
    s = load_dram_spec(f)
    assert s.name == "mypart" and s.peak_bytes_per_ns == pytest.approx(6.4)


# ---------------------------------------------------------------------------------------------- layer tensors
def _naive_rows(la: LayerTensors, b: int) -> int:
    """Input rows read band by band: each band of b output rows reads every input row any of its outputs'
    windows touch (inside the image), counted again in the next band."""
    total = 0
    for start in range(0, la.out_h, b):
        rows = set()
        for oy in range(start, min(start + b, la.out_h)):
            for ky in range(la.kh):
                y = oy * la.stride - la.pad_top + ky
                if 0 <= y < la.in_h:
                    rows.add(y)
        total += len(rows)
    return total


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([1, 2, 3, 5, 7, 11, 13, 28]), st.sampled_from([1, 3, 5, 7]), st.sampled_from([1, 2, 3]),
       st.integers(0, 3), st.integers(1, 30))
def test_band_rows_with_halo_equal_a_naive_walk(in_h, kh, stride, pad, b):
    out_h = (in_h + 2 * pad - kh) // stride + 1
    if out_h < 1:
        return
    la = LayerTensors("c", in_h, 4, 3, out_h, 4, 8, kh, stride, pad, 100)
    assert la.input_rows_read(min(b, out_h)) == _naive_rows(la, min(b, out_h))


def _chain(*shapes, w=64):
    """Layers (in_h, in_c, out_h, out_c) of 1x1 convs over square images, ``w`` weight bytes each."""
    return [LayerTensors(f"l{i}", h, h, c, oh, oh, oc, 1, 1, 0, w) for i, (h, c, oh, oc) in enumerate(shapes)]


def test_everything_fits_is_exactly_compulsory():
    layers = _chain((8, 4, 8, 8), (8, 8, 8, 16), (8, 16, 8, 4))
    mp = plan(layers, 1 << 20, DRAM_SPECS["lpddr4"], 1000.0)
    compulsory = 3 * 64 + 8 * 8 * 4 + 8 * 8 * 4  # weights, the input, the output
    assert mp.compulsory_bytes == compulsory and mp.dram_bytes == compulsory
    assert [lp.output_to for lp in mp.layers] == ["on chip", "on chip", "dram"]


def test_spilled_tensor_is_written_once_and_read_back():
    """l0's 8x8x16 = 1,024 B output does not fit in a 1,100 B buffer beside l0's least working set (1 B of
    weights per output channel, one 32 B input row, one 128 B output row: 1,185 B): l0 writes it and l1
    reads it; nothing else changes. With 1,185 B it stays on chip."""
    layers = _chain((8, 4, 8, 16), (8, 16, 8, 2), w=16)
    assert plan(layers, 1185, None, 1000.0, fixed_bytes_per_cycle=4.0).layers[0].output_to == "on chip"
    mp = plan(layers, 1184, None, 1000.0, fixed_bytes_per_cycle=4.0)
    l0, l1 = mp.layers
    assert l0.output_to == "dram" and l0.output_write_bytes == 1024
    assert l1.input_from.startswith("dram (spilled") and l1.input_read_bytes == 1024
    assert mp.dram_bytes - mp.compulsory_bytes == 2 * 1024
    assert l0.dram_cycles == math.ceil((16 + 256 + 1024) / 4.0)  # fixed model: bytes / bytes per cycle


def test_loop_order_is_the_cheaper_of_weights_outer_and_input_outer():
    """1x1 conv, input 16x16x8 (2,048 B, rows of 128 B) from DRAM, output 16x16x10, buffer 400 B.
    Weights 400 B (40 B per output channel): they do not fit beside a one-row band (528 > 400). Weights
    outer: chunks of (400 - 128) // 40 = 6 channels -> 2 chunks -> input read twice: 400 + 4,096 B. Input
    outer: bands of (400 - 40) // 128 = 2 rows -> 8 bands, all weights per band: 3,200 + 2,048 B. Weights
    outer wins. With 100 B per channel (1,000 B): 5 chunks (1,000 + 10,240) vs 8 bands (8,000 + 2,048):
    input outer wins. A 4x4 input (128 B) fits whole: one band, everything read once."""
    la = LayerTensors("c", 16, 16, 8, 16, 16, 10, 1, 1, 0, 400)
    lp = plan([la], 400, None, 1000.0, fixed_bytes_per_cycle=8.0).layers[0]
    assert lp.schedule == "weights outer (2 chunks)"
    assert (lp.weight_read_bytes, lp.input_read_bytes, lp.output_write_bytes) == (400, 4096, 2560)
    lp = plan([la.__class__(**{**la.__dict__, "weight_bytes": 1000})], 400, None, 1000.0,
              fixed_bytes_per_cycle=8.0).layers[0]
    assert lp.schedule == "input outer (8 bands)"
    assert (lp.weight_read_bytes, lp.input_read_bytes) == (8000, 2048)
    small = LayerTensors("s", 4, 4, 8, 4, 4, 10, 1, 1, 0, 1000)
    lp = plan([small], 400, None, 1000.0, fixed_bytes_per_cycle=8.0).layers[0]
    assert (lp.weight_read_bytes, lp.input_read_bytes) == (1000, 128)


def test_tiny_buffer_fails_naming_the_layer():
    la = LayerTensors("big", 64, 64, 64, 64, 64, 64, 3, 1, 1, 36864)
    with pytest.raises(HwsimError, match="buffer-kib.*big"):
        plan([la], 1024, DRAM_SPECS["ddr3"], 1000.0)


# ---------------------------------------------------------------------------------------------- ResNet-18
def _resnet():
    return [LayerTensors.of_workload(la) for la in load_scalesim_topology(RESNET)]


def test_resnet18_compulsory_is_weights_input_output():
    """Compulsory = every weight once (int8) + the 224x224x3 input + the 1,000 logits, summed from the
    topology rows independently."""
    rows = [r.split(",") for r in RESNET.read_text().splitlines()[1:] if r.strip()]
    weights = sum(int(r[3]) * int(r[4]) * int(r[5]) * int(r[6]) for r in rows)
    assert weights == 11_678_912
    mp = plan(_resnet(), 256 * 1024, DRAM_SPECS["lpddr4"], 1000.0)
    assert mp.compulsory_bytes == weights + 224 * 224 * 3 + 1000


def test_resnet18_with_256_kib_is_within_1p5_of_compulsory_and_explains_the_rest():
    mp = plan(_resnet(), 256 * 1024, DRAM_SPECS["lpddr4"], 1000.0)
    assert 1.0 < mp.ratio <= 1.5
    for lp in mp.layers:  # every byte beyond the compulsory ones has a named cause
        assert (lp.dram_bytes > lp.compulsory_bytes) == bool(lp.causes), lp
    big = plan(_resnet(), 64 << 20, DRAM_SPECS["lpddr4"], 1000.0)
    assert big.ratio == 1.0  # a buffer that holds everything moves exactly the compulsory bytes
    assert plan(_resnet(), 64 * 1024, DRAM_SPECS["lpddr4"], 1000.0).ratio > mp.ratio  # smaller buffer, more traffic


def test_nchw_moves_the_same_bytes_in_more_runs():
    nhwc = plan(_resnet(), 256 * 1024, DRAM_SPECS["ddr3"], 1000.0, layout="nhwc")
    nchw = plan(_resnet(), 256 * 1024, DRAM_SPECS["ddr3"], 1000.0, layout="nchw")
    assert nhwc.dram_bytes == nchw.dram_bytes
    assert sum(lp.dram_ns for lp in nchw.layers) > sum(lp.dram_ns for lp in nhwc.layers)


def test_cli_prints_the_memory_plan_and_ratio():
    out = subprocess.run([sys.executable, "-m", "hwsim.cli", "simulate", "--scalesim-config",
                          str(REPO / "examples/scalesim/google.cfg"), "--topology", str(RESNET), "--dataflow", "ws",
                          "--buffer-kib", "256", "--dram", "hbm2"], capture_output=True, text=True, check=True).stdout
    mp = plan(_resnet(), 256 * 1024, DRAM_SPECS["hbm2"], 1000.0)
    assert f"DRAM traffic {mp.dram_bytes:,} B; compulsory {mp.compulsory_bytes:,} B" in out
    assert f"ratio {mp.ratio:.3f}" in out and "256 KiB global buffer, DRAM hbm2" in out


def test_vectorized_timing_matches_the_controller_on_the_plans_runs():
    """The runs of a banded NCHW read (one per channel plane) through both."""
    s = DRAM_SPECS["lpddr4"]
    addr = [(1 << 40) + c * 56 * 10 for c in range(64)]
    size = [56 * 10] * 64
    assert busy_ns(s, addr, size) == pytest.approx(_controller_ns(s, list(zip(addr, size, strict=True)))[0])
    assert np.isfinite(transfer_ns(s, addr, size))


# ---------------------------------------------------------------------------------------------- in simulate
@pytest.fixture(scope="module")
def digits_cnn_reports():
    """digits-cnn on the 8x8 WS preset with its default 64 KiB global buffer, and with none."""
    from hwsim.families import Accelerator, Unit, resolve_accel
    from hwsim.simulate import simulate

    acc = resolve_accel("mac-array-8x8-ws")
    u = acc.units[0]
    off = Accelerator(acc.name, (Unit(u.family, u.config.replace(global_buffer_bytes=0)),))
    return simulate("digits-cnn", acc, progress=False), simulate("digits-cnn", off, progress=False)


def test_digits_cnn_moves_each_weight_once_and_keeps_activations_on_chip(digits_cnn_reports):
    """Hand count: conv1 reads its 8x1x3x3 int8 weights (72 B) and the 8x8 int8 image (64 B); conv2 its
    16x8x3x3 weights (1,152 B), its input on chip; fc its 10x256 weights (2,560 B) and writes 10 logits."""
    new, old = digits_cnn_reports
    assert [lr.dram_bytes for lr in new.layers] == [72 + 64, 1152, 2560 + 10]
    assert sum(lr.dram_bytes for lr in old.layers) > 2 * sum(lr.dram_bytes for lr in new.layers)
    for lr in new.layers:  # DRAM priced per byte: 8 pJ/bit LPDDR4 (hwsim.cost)
        assert lr.energy_pj["dram"] == pytest.approx(64.0 * lr.dram_bytes)
    # the unit's own cycles are the RTL's, unchanged; DRAM never bounds these small layers
    assert [lr.cycles for lr in new.layers] == [lr.cycles for lr in old.layers]
    assert new.accuracy_simulated == old.accuracy_simulated and new.simulated_equals_reference
    assert new.energy_pj < old.energy_pj
    [(_, mp)] = new.memory
    assert mp.ratio == 1.0 and [lp.output_to for lp in mp.layers] == ["on chip", "on chip", "dram"]


def test_a_batch_reads_digits_cnn_weights_once(digits_cnn_reports):
    """A batch of 16 through the 64 KiB buffer: all 3,784 weight bytes fit beside the activations, so the
    first inference reads them and the other 15 do not. Per inference (the batch's mean, rounded half up):
    conv1 (72 + 16 x 64) / 16 = 68.5 -> 69 B, conv2 1,152 / 16 = 72 B, fc (2,560 + 16 x 10) / 16 = 170 B;
    priced exactly, 64 pJ per byte on the batch's bytes / 16. The array's work (every other component but
    the global buffer, which takes the DRAM fills) and the cycles (no layer is DRAM-bound) do not change."""
    from hwsim.simulate import simulate

    one, _ = digits_cnn_reports
    rep = simulate("digits-cnn", "mac-array-8x8-ws", progress=False, batch=16)
    assert [lr.dram_bytes for lr in rep.layers] == [69, 72, 170]
    batch_bytes = [72 + 16 * 64, 1152, 2560 + 16 * 10]
    for lr, o, b in zip(rep.layers, one.layers, batch_bytes, strict=True):
        assert lr.energy_pj["dram"] == pytest.approx(64.0 * b / 16)
        assert lr.cycles == o.cycles and lr.macs == o.macs
        for comp, pj in o.energy_pj.items():
            if comp not in ("dram", "global_buffer"):
                assert lr.energy_pj[comp] == pytest.approx(pj), comp
        assert lr.energy_pj["global_buffer"] < o.energy_pj["global_buffer"]  # fewer DRAM fills written
    [(_, mp)] = rep.memory
    assert mp.batch == 16 and [lp.pinned_weight_bytes for lp in mp.layers] == [72, 1152, 2560]
    assert mp.dram_bytes == sum(batch_bytes) == mp.compulsory_bytes
    assert rep.accuracy_simulated == one.accuracy_simulated and rep.simulated_equals_reference
    assert rep.energy_pj < one.energy_pj - 64.0 * 15 / 16 * 3784 * 0.99


def test_conv1_dram_cycles_by_hand(digits_cnn_reports):
    """LPDDR4: weights 72 B = 3 bursts, image 64 B = 2 bursts, each run opening its page (tRP + tRCD + tCL =
    (27 + 29 + 32) x 0.625 = 55 ns), 5 ns per burst: 70 + 65 = 135 ns = 67.5 -> 68 cycles at 500 MHz."""
    new, _ = digits_cnn_reports
    assert new.memory[0][1].layers[0].dram_cycles == 68


def test_port_traffic_moves_to_the_global_buffer(digits_cnn_reports):
    """What the array's port streamed from DRAM (old report) it now reads from the global buffer, which also
    takes the DRAM fills: global-buffer bytes = old port bytes + new DRAM bytes, layer by layer."""
    new, old = digits_cnn_reports
    for n, o in zip(new.layers, old.layers, strict=True):
        assert n.sram_bytes == o.sram_bytes + o.dram_bytes + n.dram_bytes


def test_global_buffer_priced_as_an_sram_of_its_size():
    """The 64 KiB global buffer is an SRAM of 64-bit words: 45 nm, 20 pJ at 32 KB and 100 pJ at 1 MB
    (Horowitz 2014), log-interpolated: 20 + (16 - 15) * 80 / 5 = 36 pJ per word; area grows with it."""
    from hwsim.config import MacArrayConfig
    from hwsim.cost import CostModel
    from hwsim.mac_array import inventory
    from hwsim.stats import ActionCounts

    cfg = MacArrayConfig()
    e = CostModel().energy(inventory(cfg), ActionCounts({("global_buffer", "read"): 10,
                                                         ("global_buffer", "write"): 5}), 0).components()
    assert e["global_buffer"] == pytest.approx(15 * 36.0)
    a_on = CostModel().area(inventory(cfg)).total_mm2
    a_off = CostModel().area(inventory(cfg.replace(global_buffer_bytes=0))).total_mm2
    assert a_on > a_off


def test_nm_layers_sit_in_dram_compressed():
    """2:4 digits-cnn: per output channel of reduction length K, 2 * (K // 4) + min(2, K % 4) kept codes of
    8 + 2 index bits. conv1 (K = 9): 8 x 5 x 10 / 8 = 50 B + the 64 B image; conv2 (K = 72): 16 x 36 x 10 / 8
    = 720 B; fc (K = 256): 10 x 128 x 10 / 8 = 1,600 B + 10 logits."""
    from hwsim.simulate import simulate

    rep = simulate("digits-cnn", "mac-array-8x8-ws-2of4", compress="2:4+int8+ft", progress=False)
    assert [lr.dram_bytes for lr in rep.layers] == [50 + 64, 720, 1600 + 10]


def test_zero_tile_bitmap_bytes_are_in_dram_beside_the_weights():
    """With skip_zero_tiles the unit reads each GEMM's block bitmap with its weights, so DRAM holds it: one bit
    per (k-fold, n-tile) block of the 8x8 array, read once. digits-cnn: conv1 K = 9 -> 2 k-folds x 1 n-tile =
    2 blocks = 1 B; conv2 K = 72 -> 9 x 2 = 18 blocks = 3 B; fc K = 256 -> 32 x 2 = 64 blocks = 8 B."""
    from hwsim.config import MacArrayConfig
    from hwsim.simulate import simulate

    plain = simulate("digits-cnn", MacArrayConfig(), "block8x8-50+int8", progress=False)
    skip = simulate("digits-cnn", MacArrayConfig(skip_zero_tiles=True), "block8x8-50+int8", progress=False)
    assert [b.dram_bytes - a.dram_bytes for a, b in zip(plain.layers, skip.layers, strict=True)] == [1, 3, 8]
    (_, mp), = skip.memory
    assert mp.dram_bytes == mp.compulsory_bytes  # the bitmap is compulsory metadata, read once


# --- a batch: weights pinned on chip across the batch's inferences ------------------------------------------


def test_batch_pins_weights_that_fit_and_reads_them_once_per_batch():
    """Everything fits in 1 MiB: with a batch of 5 every layer's weights stay on chip, so the batch reads the
    3 x 64 weight bytes once and each inference its 256 B input and writes its 256 B output:
    192 + 5 x 512 = 2,752 B, exactly the compulsory bytes of the batch."""
    layers = _chain((8, 4, 8, 8), (8, 8, 8, 16), (8, 16, 8, 4))
    mp = plan(layers, 1 << 20, None, 1000.0, fixed_bytes_per_cycle=4.0, batch=5)
    assert [lp.pinned_weight_bytes for lp in mp.layers] == [64, 64, 64]
    assert [lp.weight_read_bytes for lp in mp.layers] == [0, 0, 0]
    assert mp.dram_bytes == 192 + 5 * (256 + 256) == mp.compulsory_bytes
    l0 = mp.layers[0]
    assert l0.dram_cycles == 256 // 4 and l0.first_dram_cycles == (256 + 64) // 4  # the first also reads weights
    assert mp.layers[2].schedule.startswith("weights pinned for the batch")
    one = plan(layers, 1 << 20, None, 1000.0, fixed_bytes_per_cycle=4.0)  # batch 1: nothing pinned
    assert one.batch == 1 and not one.pinned and one.dram_bytes == 192 + 512


def test_batch_pins_only_what_lowers_the_batch_traffic():
    """l0's 8x8x16 output (1,024 B) stays on chip in 1,185 B, its need at l0 being 1,024 + 161 (1 weight byte
    per output channel, one 32 B input row, one 128 B output row) and at l1 1,024 + 152
    (test_spilled_tensor_is_written_once_and_read_back). Pinning either layer's 16 weight bytes takes 16 B
    from the buffer but at most 8 B (l1's channel) from a working set: l0's output would spill, 2 x 1,024 B
    per inference against 16 x (3 - 1) B saved, so a batch of 3 pins nothing. With 16 B more (1,201 B)
    pinning l0 fits (1,185 B left, l0 needs 1,024 + 160); then pinning l1 too leaves 1,169 B and would spill:
    l0 alone is pinned."""
    layers = _chain((8, 4, 8, 16), (8, 16, 8, 2), w=16)
    per_inference = 16 + 256 + 16 + 128  # both layers' weights, l0's input, l1's 8x8x2 output
    mp = plan(layers, 1185, None, 1000.0, fixed_bytes_per_cycle=4.0, batch=3)
    assert not mp.pinned and mp.dram_bytes == 3 * per_inference
    mp = plan(layers, 1201, None, 1000.0, fixed_bytes_per_cycle=4.0, batch=3)
    assert [lp.pinned_weight_bytes for lp in mp.layers] == [16, 0]
    assert [lp.output_to for lp in mp.layers] == ["on chip", "dram"]
    assert mp.dram_bytes == 16 + 3 * (per_inference - 16)
    assert mp.compulsory_bytes == 32 + 3 * (256 + 128)


def test_batch_pins_nothing_when_the_weights_cannot_stay():
    """The loop-order layer of test_loop_order_is_the_cheaper_of_weights_outer_and_input_outer: its 400 B of
    weights fill the 400 B buffer, so pinning them leaves no room for a row: each inference reads them."""
    la = LayerTensors("c", 16, 16, 8, 16, 16, 10, 1, 1, 0, 400)
    mp = plan([la], 400, None, 1000.0, fixed_bytes_per_cycle=8.0, batch=4)
    assert not mp.pinned and mp.dram_bytes == 4 * (400 + 4096 + 2560)


@pytest.mark.parametrize("batch", [0, -1, 1.5, True, "2"])
def test_bad_batch_is_one_line(batch):
    with pytest.raises(HwsimError, match=r"--batch=.* is not allowed: expected a whole number"):
        plan(_chain((8, 4, 8, 8)), 1 << 20, None, 1000.0, fixed_bytes_per_cycle=4.0, batch=batch)


def test_batch_stats_are_the_mean_of_the_first_and_the_other_inferences():
    """One 1x1 layer whose 256 B input and 256 B output go through DRAM at 4 B/cycle (128 cycles) and whose
    64 weight bytes are pinned: the first inference takes (64 + 512) / 4 = 144 DRAM cycles, the others 128;
    the unit's 10 cycles are hidden. Batch of 4: (144 + 3 x 128) / 4 = 132 cycles per inference, 122 of them
    stalls; DRAM read bytes (64 + 4 x 256) / 4 = 272; the actions priced are the batch's sums."""
    from types import SimpleNamespace

    from hwsim import run
    from hwsim.stats import ActionCounts
    from hwsim.unit import Stats

    cfg = SimpleNamespace(global_buffer_bytes=1 << 20, clock_mhz=1000.0, dram_bytes_per_cycle=4.0, sram_word_bits=64)
    la = LayerTensors("l0", 8, 8, 4, 8, 8, 4, 1, 1, 0, 64)
    st = Stats(10, 0, 1024, ActionCounts({("pe", "mac"): 1024}))
    [one], _ = run.memory_stats(cfg, [la], [st], "fixed", batch=1)
    assert (one.cycles, one.dram_read_bytes, one.dram_write_bytes) == (144, 64 + 256, 256)
    [four], mp = run.memory_stats(cfg, [la], [st], "fixed", batch=4)
    assert (four.cycles, four.stall_cycles) == (132, 122)
    assert (four.dram_read_bytes, four.dram_write_bytes) == (272, 256)
    assert four.detail["inputs"] == 4 and four.detail["cycles_total"] == 144 + 3 * 128
    counts = four.actions.counts
    assert counts[("pe", "mac")] == 4 * 1024 and counts[("dram", "read")] == 64 + 4 * 256
    assert mp.layers[0].first_dram_cycles == 144 and mp.layers[0].dram_cycles == 128
