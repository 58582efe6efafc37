"""cocotb testbench for the MAC array (runs inside the simulator; launched by ``hwsim.cosim.runner.run_job``
as the test module of :func:`hwsim.cosim.harness.mac_array_harness`).

The job (``job.json``, operands in ``job.npz``; path in ``$HWSIM_JOB``) names the configuration and a
list of GEMM or conv layers with their integer operands (a GEMM may carry a ``bias`` per output channel;
on an N:M array a layer may carry ``mode``: ``"sparse"`` or ``"dense"``, else its weights choose; on a top
with the float32 requantizer a GEMM may carry ``requant``, :func:`float_requant_of`'s fields, and
``zp_correction``, whether its bias holds a zero-point column constant);
with ``save_outputs`` the RTL's GEMM outputs are written to ``outputs.npz`` beside the result (the
whole-model co-simulation, :mod:`hwsim.cosim.model_cosim`, chains layers through them). For every GEMM the testbench
computes the expected outputs with the bit-exact reference (``hwsim.models.mac_array``) and the predicted
cycles, stalls and action counts with the cycle-level model (``hwsim.mac_array.predict_gemm``), loads the
DRAM-side and bias memories of the harness, pulses ``start``, waits for ``done`` with ``free_run`` high
(hwsim's Verilator main then runs the clock without visiting cocotb's callbacks, so no Python runs
meanwhile), and checks every output beat in order, the busy cycles, the
stall cycles and every action count the harness measured.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge, SimTimeoutError, with_timeout
from hwsim.cosim.harness import (
    ACT_FILE,
    BIAS_FILE,
    BLOCK_FILE,
    BUF_COUNTERS,
    COUNTERS,
    F32_COUNTERS,
    OUT_FILE,
    ROW_COUNTERS,
    ROW_ZP_FILE,
    SCALE_FILE,
    SKIP_COUNTERS,
    WEIGHT_FILE,
)
from hwsim.cosim.memfile import lanes_to_words, words_to_lanes
from hwsim.cosim.runner import read_job
from hwsim.cosim.tb_util import dump_bytes, pulse, reset_harness
from hwsim.models import mac_array as ref
from hwsim.models.compressed import reference_gemm

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError
from hwsim.mac_array import (
    MacArrayActions,
    dense_k,
    dram_lanes,
    gemm_mode,
    onnx_actions,
    predict_gemm,
    unpack_outputs,
    zero_tile_bitmap,
)

#: Phases of a GEMM's testbench wall time (``phase_seconds`` of the result): encoding the operands and
#: writing the memory files; the harness copying them in; the GEMM from ``start`` to ``done``; reading the
#: counters, the output dump and decoding its beats; the reference and every comparison.
PHASES = ("prepare", "load", "simulate", "dump", "check")
#: The scale written for a power-of-two layer on a top with float32 lanes (unused there): 1.0.
UNUSED_SCALE_BITS = 0x3F800000


def float_requant_of(spec: dict | None) -> ref.FloatRequant | None:
    """The :class:`~hwsim.models.mac_array.FloatRequant` of a job layer's ``requant`` entry (``scale_bits``:
    IEEE-754 bits per output channel, ``zero_point``, ``lo``, ``hi``, and for weights with zero points
    ``row_zp``, one per output channel; written by :func:`hwsim.cosim.mac_array_model.requant_spec`), None
    without one."""
    if spec is None:
        return None
    bits = np.asarray(spec["scale_bits"], dtype=np.uint32)
    return ref.FloatRequant(bits.view(np.float32), spec["zero_point"], spec["lo"], spec["hi"], spec.get("row_zp"))


def measured_actions(cfg: MacArrayConfig, counters: dict[str, int], widths: dict[str, int],
                     bitmap_bits: int = 0, zp_correction: bool = False) -> MacArrayActions:
    """The action counts of one GEMM as the harness measured them, in the units of :class:`MacArrayActions`.

    ``counters`` are the harness's (:data:`hwsim.cosim.harness.COUNTERS`); ``widths`` the bit widths of a
    weight beat, an activation beat, an output beat and an output-SRAM row (``wbeat``, ``abeat``, ``obeat``,
    ``osram``, read from the harness). Every SRAM access moves one beat-wide row, ``ceil(bits /
    sram_word_bits)`` words, except output-buffer writes and reads, which the harness counts in words and lanes
    (with idle-lane gating an access touches only the words holding the tile's real columns); output beats count
    their valid lanes (``out_lanes``); a pipeline hop is one pipeline update (the PE's activation and psum
    registers, OS: activation, weight and psum, priced together as ``MacArrayConfig.pe_reg_write_bits``).
    ``bitmap_bits`` is the size of the zero-tile bitmap the DRAM side loaded (skip_zero_tiles), read as
    whole bytes. Tops with the float32 requantizer count its lane passes apart (``requant_f32_ops``); the
    zero-point correction adder is the requantizer's bias adder (the column constant rides in the bias), so
    with ``zp_correction`` (the layer's bias holds a zero-point constant) every requantizer lane pass is
    one correction. Tops with ``weight_zero_points`` count the row-sum unit's additions and the row term's
    products (:data:`hwsim.cosim.harness.ROW_COUNTERS`). Tops with idle-lane gating count the input and
    weight buffers' accesses in the word memories they enable and in real lanes
    (:data:`hwsim.cosim.harness.BUF_COUNTERS`): words and bytes are those.
    """
    c, wb = counters, cfg.sram_word_bits
    in_bits, wt_bits, o_bits = widths["abeat"], widths["wbeat"], widths["osram"]

    def words(n, bits):
        return n * -(-bits // wb)

    lane_bits = {"input": cfg.act_bits, "weight": cfg.weight_bits + cfg.index_bits}
    buf = {}
    for name, beat in (("input", in_bits), ("weight", wt_bits)):
        for op in ("read", "write"):
            n = c[f"{name}_sram_{op}s"]
            if f"{name}_sram_{op}_words" in c:  # lane by lane (idle-lane gating)
                buf[f"{name}_sram_{op}s"] = c[f"{name}_sram_{op}_words"]
                buf[f"{name}_sram_{op}_bytes"] = -(-c[f"{name}_sram_{op}_lanes"] * lane_bits[name] // 8)
            else:  # whole beats
                buf[f"{name}_sram_{op}s"] = words(n, beat)
                buf[f"{name}_sram_{op}_bytes"] = math.ceil(n * beat / 8)

    return MacArrayActions(**buf,
        pe_macs=c["pe_macs"], pe_weight_loads=c["pe_weight_loads"], pe_reg_writes=c["pe_hops"],
        pe_idle_macs=c["pe_idle_macs"], pe_idle_regs=c["pe_idle_regs"],
        output_sram_reads=c["output_sram_read_words"],
        output_sram_writes=c["output_sram_write_words"],
        output_sram_read_bytes=-(-c["output_sram_read_lanes"] * (o_bits // cfg.cols) // 8),
        output_sram_write_bytes=-(-c["output_sram_write_lanes"] * (o_bits // cfg.cols) // 8),
        dram_read_beats=c["n_weights"] + c["n_acts"],
        dram_write_beats=c["n_out"],
        dram_read_bytes=math.ceil((c["n_weights"] * wt_bits + c["n_acts"] * in_bits) / 8) + math.ceil(bitmap_bits / 8),
        dram_write_bytes=-(-c["out_lanes"] * (widths["obeat"] // cfg.cols) // 8),
        requant_ops=c["requant_ops"],
        requant_f32_ops=c.get("requant_f32_ops", 0),
        zp_correct_ops=c["requant_ops"] + c.get("requant_f32_ops", 0) if zp_correction else 0,
        # N:M arrays: the index register loads with the weight register (same w_load) and the activation
        # mux selects for every enabled MAC, so these are the PE's load and MAC counters.
        pe_index_loads=c["pe_weight_loads"] if cfg.sparse else 0,
        pe_act_selects=c["pe_macs"] if cfg.sparse else 0,
        # Zero-tile skipping: the harness counts the engines' bitmap reads; the bitmap is written once per GEMM.
        tile_bitmap_reads=c.get("tile_bitmap_reads", 0),
        tile_bitmap_writes=math.ceil(bitmap_bits / 8),
        zp_row_adds=c.get("zp_row_adds", 0),
        zp_row_mults=c.get("zp_row_mults", 0),
    )


def count_diffs(rtl: MacArrayActions, model: MacArrayActions, rtl_stalls: int, model_stalls: int
                ) -> dict[str, list[int]]:
    """Every compared count that differs: ``{field: [rtl, model]}`` (stalls as ``stall_cycles``)."""
    want = model.as_dict()
    diffs = {k: [v, want[k]] for k, v in rtl.as_dict().items() if v != want[k]}
    if rtl_stalls != model_stalls:
        diffs["stall_cycles"] = [rtl_stalls, model_stalls]
    return diffs


class MacArrayTB:
    """Reset, DRAM-side driver (memory preload), output monitor, reference and in-order checker.

    The clock is the Verilator main's (free-running while the GEMM runs). The DRAM and bias memories
    are filled and the captured output beats read back through binary memory files (DPI-C copies in
    the harness, pulsed by ``load`` / ``dump``), so a GEMM costs a few file transfers rather than one
    VPI access per beat or per cycle.
    """

    def __init__(self, dut, cfg: MacArrayConfig):
        self.dut = dut
        self.cfg = cfg
        # Widths and depths come from the DUT, never from constants (read after reset, once the model
        # has evaluated).
        self.mem_depth = 0
        self.widths: dict[str, int] = {}
        self.dim_limit = (1 << len(dut.dim_m)) - 1
        self.bias_bits = cfg.acc_bits
        self.bitmap_bits = 0
        self.f32 = cfg.requantizer == "f32"
        self.rows = cfg.weight_zero_points
        #: Testbench wall seconds by phase, summed over GEMMs (:data:`PHASES`).
        self.phases = dict.fromkeys(PHASES, 0.0)

    def _lap(self, phase: str, t0: float) -> float:
        now = time.perf_counter()
        self.phases[phase] += now - t0
        return now

    async def reset(self):
        d = self.dut
        self.mem_depth = await reset_harness(
            d, (d.free_run, d.start, d.load, d.dump, d.dim_m, d.dim_k, d.dim_n, d.shift, d.relu)
            + ((d.requant_f32, d.zero_point) if self.f32 else ()) + ((d.zp_rows,) if self.rows else ()))
        self.widths = {k: int(getattr(self.dut, f"{k}_bits").value) for k in ("wbeat", "abeat", "obeat", "osram")}
        self.bias_bits = self.widths["osram"] // self.cfg.cols

    def _write_lanes(self, path: Path, lanes: np.ndarray, lane_bits: int, elem_bits: int) -> None:
        """Write beats given as lanes ``[beat, lane]`` as the memory file of a memory of ``elem_bits``-bit
        elements (vectorized: no Python integer per beat)."""
        self._check_depth(len(lanes))
        path.write_bytes(lanes_to_words(lanes, lane_bits, elem_bits))

    def _check_depth(self, beats: int) -> None:
        if beats > self.mem_depth:
            raise AssertionError(f"layer needs {beats} beats, harness memory holds {self.mem_depth}")

    async def _pulse(self, sig) -> None:
        await pulse(self.dut, sig)

    async def wait_done(self, limit_cycles: int | None = None) -> None:
        """Wait for ``done`` with ``free_run`` high: hwsim's Verilator main runs the clock edges without
        visiting cocotb's callbacks until ``done`` rises (or a Timer is due). With ``limit_cycles``, a
        ``done`` that has not risen after that many cycles fails the test instead of hanging it (the
        timeout's Timer stops the free run there)."""
        self.dut.free_run.value = 1
        if limit_cycles is None:
            await RisingEdge(self.dut.done)
        else:
            try:
                await with_timeout(RisingEdge(self.dut.done), 10 * limit_cycles, "ns")
            except SimTimeoutError:
                raise AssertionError(f"done did not rise within {limit_cycles} cycles of start") from None
        self.dut.free_run.value = 0

    async def run_gemm(self, a: np.ndarray, w: np.ndarray, shift: int, relu: bool,
                       bias: np.ndarray | None = None, mode: str | None = None,
                       wait: Callable[[], Awaitable[None]] | None = None, limit_cycles: int | None = None,
                       requant: ref.FloatRequant | None = None) -> tuple[np.ndarray, dict[str, int]]:
        """Drive one GEMM (values) through the RTL; return (output beats as lanes ``[beat, cols]``, harness
        counters).

        On an N:M array ``mode`` is :func:`hwsim.mac_array.gemm_mode`'s; a dense-mode GEMM is driven as its
        expanded N:M layout (``dim_k = dense_k(cfg, k)``, beats from ``dram_beats(..., mode="dense")``).
        ``wait`` is awaited after ``start`` until ``done`` has risen (default :meth:`wait_done` with
        ``limit_cycles``). ``requant`` (float-scale layers; tops with ``requantizer = "f32"`` only) runs the GEMM
        on the float32 lanes: its scales go to the scale memory, its zero point to ``zero_point``; its clamp
        must be the one the lanes apply (signed ``act_bits``, raised to the zero point by ``relu``); its weight
        zero points (``row_zp``) go to the zero-point memory of a top with ``weight_zero_points``.
        """
        cfg, dut = self.cfg, self.dut
        t0 = time.perf_counter()
        m, k = a.shape
        n = w.shape[1]
        mode = gemm_mode(cfg, w, mode=mode)
        k_rtl = dense_k(cfg, k) if mode == "dense" else k
        if max(m, k_rtl, n) > self.dim_limit:
            raise HwsimError(f"GEMM {m}x{k}x{n} ({mode} mode: dim_k={k_rtl}) is not allowed on this build: every "
                             f"dimension must be <= {self.dim_limit} (dim_bits)")
        (w_beats, w_bits), (a_beats, a_bits) = dram_lanes(cfg, ref.encode_acts(a, cfg.act_bits),
                                                          ref.encode_weights(w, cfg.weight_format), mode=mode)
        self._write_lanes(Path(WEIGHT_FILE), w_beats, w_bits, self.widths["wbeat"])
        self._write_lanes(Path(ACT_FILE), a_beats, a_bits, self.widths["abeat"])
        b = np.zeros(n, dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
        lo, hi = -(1 << (self.bias_bits - 1)), (1 << (self.bias_bits - 1)) - 1
        if b.shape != (n,) or (b.size and (b.min() < lo or b.max() > hi)):
            raise HwsimError(f"bias of shape {b.shape} and range [{b.min(initial=0)}, {b.max(initial=0)}] is not "
                             f"allowed: expected ({n},) values in [{lo}, {hi}] (the {self.bias_bits}-bit accumulator)")
        # Always n entries (zeros without bias): a load leaves the rest of the memory as it was.
        codes = (b & ((1 << self.bias_bits) - 1)).astype(np.uint64)[:, None]
        self._write_lanes(Path(BIAS_FILE), codes, self.bias_bits, self.bias_bits)
        if requant is not None and not self.f32:
            raise HwsimError(f"requantizer={cfg.requantizer!r} is not allowed for a float-scale layer: expected 'f32' "
                             "(the top needs the float32 requantizer lanes)")
        if requant is not None:
            lo, hi = ref.act_value_range(cfg.act_bits)
            want = (requant.zero_point if relu else lo, hi)
            if (requant.lo, requant.hi) != want:
                raise HwsimError(f"requant clamp [{requant.lo}, {requant.hi}] is not allowed: expected {list(want)} "
                                 "(signed act_bits, raised to the zero point by relu)")
        row_zp = None if requant is None else requant.row_zp
        if row_zp is not None and not self.rows:
            raise HwsimError("weight_zero_points=False is not allowed for a GEMM with weight zero points: expected a "
                             "top built with weight_zero_points=True (the row-sum unit)")
        if self.rows:
            zlo, zhi = -(1 << (cfg.weight_bits - 1)), (1 << (cfg.weight_bits - 1)) - 1
            z = np.zeros(n, dtype=np.int64) if row_zp is None else np.broadcast_to(np.asarray(row_zp, np.int64), (n,))
            if z.size and (z.min() < zlo or z.max() > zhi):
                raise HwsimError(f"row_zp range [{z.min()}, {z.max()}] is not allowed: expected values in [{zlo}, "
                                 f"{zhi}] (signed {cfg.weight_bits}-bit weight zero points)")
            self._write_lanes(Path(ROW_ZP_FILE), (z & ((1 << cfg.weight_bits) - 1)).astype(np.uint64)[:, None],
                              cfg.weight_bits, cfg.weight_bits)
            dut.zp_rows.value = int(row_zp is not None)
        if self.f32:
            sbits = (np.full(n, UNUSED_SCALE_BITS, dtype=np.uint64) if requant is None else
                     np.ascontiguousarray(requant.scales_for(n), dtype=np.float32).view(np.uint32).astype(np.uint64))
            self._write_lanes(Path(SCALE_FILE), sbits[:, None], 32, 32)
            dut.requant_f32.value = int(requant is not None)
            dut.zero_point.value = 0 if requant is None else requant.zero_point & ((1 << cfg.act_bits) - 1)
        self.bitmap_bits = 0
        if cfg.skip_zero_tiles:
            bitmap = zero_tile_bitmap(cfg, w, mode)
            self._write_lanes(Path(BLOCK_FILE), np.asarray(bitmap, dtype=np.uint64).reshape(-1, 1), 1, 1)
            self.bitmap_bits = len(bitmap)
        t0 = self._lap("prepare", t0)
        await self._pulse(dut.load)
        await RisingEdge(dut.clk)  # the edge that sampled load copied the files in
        t0 = self._lap("load", t0)
        dut.dim_m.value, dut.dim_k.value, dut.dim_n.value = m, k_rtl, n
        dut.shift.value, dut.relu.value = shift, int(relu)
        await self._pulse(dut.start)
        await (wait() if wait else self.wait_done(limit_cycles))
        await RisingEdge(dut.clk)
        t0 = self._lap("simulate", t0)
        names = (COUNTERS + (SKIP_COUNTERS if cfg.skip_zero_tiles else ()) + (F32_COUNTERS if self.f32 else ())
                 + (ROW_COUNTERS if self.rows else ()) + (BUF_COUNTERS if cfg.gating != "none" else ()))
        counters = {name: int(getattr(dut, name).value) for name in names}
        n_out = counters["n_out"]
        assert counters["n_weights"] == len(w_beats), (counters["n_weights"], len(w_beats))
        assert counters["n_acts"] == len(a_beats), (counters["n_acts"], len(a_beats))
        assert n_out <= self.mem_depth, f"{n_out} output beats overflow the harness memory ({self.mem_depth})"
        data = await dump_bytes(dut, Path(OUT_FILE), n_out)
        lanes = words_to_lanes(data, n_out, cfg.cols, cfg.act_bits, self.widths["obeat"])
        self._lap("dump", t0)
        return lanes, counters

    async def check_gemm(self, a: np.ndarray, w: np.ndarray, shift: int, relu: bool,
                         bias: np.ndarray | None = None, mode: str | None = None,
                         requant: ref.FloatRequant | None = None, zp_correction: bool = False) -> dict:
        """Run one GEMM and check it: outputs against the reference, cycles, stalls and action counts
        against the cycle model. Returns the RTL's output codes (None if undecodable; :func:`out_values`
        decodes them) and the tallies. ``requant``: a float-scale GEMM (see :meth:`run_gemm`);
        ``zp_correction``: its bias holds a zero-point column constant (priced as corrections)."""
        cfg = self.cfg
        m, k, n = a.shape[0], a.shape[1], w.shape[1]
        mode = gemm_mode(cfg, w, mode=mode)
        st = predict_gemm(cfg, m, k, n, mode=mode, weight=w)
        if requant is not None or zp_correction:  # the cycle model's float32 / zero-point actions of the op
            rows = requant is not None and requant.row_zp is not None
            st = onnx_actions(st, _OpActions(m, k, n, "f32" if requant is not None else "shift", zp_correction,
                                             rows), cfg)
        # An RTL that runs four times longer than the model predicts has failed; do not wait forever.
        beats, counters = await self.run_gemm(a, w, shift, relu, bias, mode, limit_cycles=4 * st.cycles + 1000,
                                              requant=requant)
        t0 = time.perf_counter()
        expect = reference_gemm(a, w, cfg, shift, relu, bias=bias, requant=requant)
        bad, got = check_outputs(cfg, beats, expect)
        rtl = measured_actions(cfg, counters, self.widths, self.bitmap_bits, zp_correction)
        model = MacArrayActions.of(st)
        diffs = count_diffs(rtl, model, counters["stall_cycles"], st.stall_cycles)
        self._lap("check", t0)
        return {"codes": got,  # decoded (``out_values``) only where a caller needs the values
                "mode": mode, "mismatches": bad, "vectors": m * n, "rtl_cycles": counters["cycles"],
                "predicted_cycles": st.cycles, "stall_cycles": counters["stall_cycles"],
                "predicted_stall_cycles": st.stall_cycles, "actions": rtl, "predicted_actions": model,
                "count_diffs": diffs}


@dataclasses.dataclass(frozen=True)
class _OpActions:
    """What :func:`hwsim.mac_array.onnx_actions` reads of an op: its shape, requantizer and zero-point terms."""

    m: int
    k: int
    n: int
    requant: str
    zp_correction: bool
    row_correction: bool = False


def out_values(cfg: MacArrayConfig, checked: dict) -> np.ndarray | None:
    """The output values of a checked GEMM (:meth:`MacArrayTB.check_gemm`), None if undecodable."""
    got = checked["codes"]
    return None if got is None else ref.decode_acts(got.astype(np.int64), cfg.act_bits)


def tally(results: list[dict]) -> dict:
    """One report row's numbers from the checked GEMMs of a layer (sums; count differences per field)."""
    rtl = sum((r["actions"] for r in results), MacArrayActions())
    model = sum((r["predicted_actions"] for r in results), MacArrayActions())
    diffs: dict[str, list[int]] = {}
    for r in results:
        for key, (x, y) in r["count_diffs"].items():
            d = diffs.setdefault(key, [0, 0])
            d[0] += x
            d[1] += y
    return {
        "vectors": sum(r["vectors"] for r in results),
        "mismatches": sum(r["mismatches"] for r in results),
        "rtl_cycles": sum(r["rtl_cycles"] for r in results),
        "predicted_cycles": sum(r["predicted_cycles"] for r in results),
        "stall_cycles": sum(r["stall_cycles"] for r in results),
        "predicted_stall_cycles": sum(r["predicted_stall_cycles"] for r in results),
        "count_mismatches": sum(len(r["count_diffs"]) for r in results),
        "count_diffs": diffs,
        "modes": sorted({r["mode"] for r in results}),
        "actions": rtl.as_dict(),
        "predicted_actions": model.as_dict(),
    }


def check_outputs(cfg: MacArrayConfig, beats: list[int] | np.ndarray, expect: np.ndarray
                  ) -> tuple[int, np.ndarray | None]:
    """In-order checker: (mismatching outputs, decoded output codes or None if the beat count is wrong).

    Beat ``i`` of the stream holds a fixed (row, column-tile) of the output (``unpack_outputs`` fixes the
    order), so decoding the stream and comparing with the reference codes checks order and values at once;
    lanes beyond N are padding and are not compared.
    """
    m, n = expect.shape
    want = ref.encode_acts(expect, cfg.act_bits)
    try:
        got = unpack_outputs(cfg, beats, m, n)
    except HwsimError:
        return m * n, None
    return int(np.count_nonzero(got != want)), got


def _gemms_of(layer: dict, cfg: MacArrayConfig):
    """(list of (a, w, bias) GEMMs, the reference layer output, function mapping GEMM outputs to it)."""
    shift, relu = layer["shift"], layer["relu"]
    bias = layer.get("bias")
    if layer["kind"] == "gemm":
        a = np.array(layer["a"], dtype=np.int64)
        w = np.array(layer["w"], dtype=np.int64)
        return [(a, w, bias)], None, lambda outs: outs[0]
    if layer.get("requant") is not None:
        raise HwsimError(f"layer {layer.get('name')!r} kind={layer['kind']!r} with requant is not allowed: expected "
                         "a gemm (a conv's im2col with zero-point padding is the DRAM side's)")
    x = np.array(layer["x"], dtype=np.int64)
    w = np.array(layer["w"], dtype=np.int64)
    conv = {key: layer[key] for key in ("stride", "padding", "dilation", "groups")}
    gemms = ref.conv2d_as_gemms(x, w, **conv)
    expect = ref.conv2d(x, w, cfg, shift=shift, relu=relu, **conv)

    def assemble(outs):
        # outs[g] is [oh*ow, o/g]; the layer output is (o, oh, ow).
        return np.concatenate([o.T for o in outs], axis=0).reshape(expect.shape)

    return [(a, wg, None) for a, wg in gemms], expect, assemble


@cocotb.test()
async def mac_array_regression(dut):
    job = read_job(Path(os.environ["HWSIM_JOB"]))
    cfg = MacArrayConfig.from_dict(job["config"])
    tb = MacArrayTB(dut, cfg)
    await tb.reset()
    results, saved = [], {}
    t_start = time.perf_counter()
    total_cycles = 0
    for idx, layer in enumerate(job["layers"]):
        t_layer = time.perf_counter()
        gemms, expect, assemble = _gemms_of(layer, cfg)
        mode = layer.get("mode")  # N:M arrays: "sparse" (declared), "dense", or absent (by the weights)
        fq = float_requant_of(layer.get("requant"))
        zpc = bool(layer.get("zp_correction", False))
        checked = [await tb.check_gemm(a, w, layer["shift"], layer["relu"], b, mode, fq, zpc) for a, w, b in gemms]
        row = tally(checked)
        if expect is not None and row["mismatches"] == 0:
            got = assemble([out_values(cfg, r) for r in checked])
            if not np.array_equal(got, expect):
                row["mismatches"] += int(np.count_nonzero(got != expect))
        if job.get("save_outputs") and row["mismatches"] == 0 and expect is None:
            saved[str(idx)] = out_values(cfg, checked[0])  # the RTL's values, for a caller chaining layers
        total_cycles += row["rtl_cycles"]
        shape = layer.get("shape")
        if cfg.sparse:  # which mode(s) the layer's GEMMs ran in
            shape = f"{shape or ''} {'+'.join(row['modes'])}".strip()
        results.append({"index": idx, "name": layer.get("name", f"layer{idx}"), "kind": layer["kind"],
                        "shape": shape, **row, "wall_seconds": time.perf_counter() - t_layer})
        dut._log.info("layer %d: %d outputs, %d mismatches, RTL %d cycles, predicted %d, count diffs %s",
                      idx, row["vectors"], row["mismatches"], row["rtl_cycles"], row["predicted_cycles"],
                      row["count_diffs"])
    wall = time.perf_counter() - t_start
    if job.get("save_outputs"):
        np.savez(Path(os.environ["HWSIM_RESULT"]).with_name("outputs.npz"), **saved)
    with open(os.environ["HWSIM_RESULT"], "w") as f:
        json.dump({"layers": results, "wall_seconds": wall, "rtl_cycles": total_cycles, "phase_seconds": tb.phases}, f)
    assert all(r["mismatches"] == 0 for r in results), "output mismatches"
    assert all(r["rtl_cycles"] == r["predicted_cycles"] for r in results), "cycle count mismatches"
    assert all(r["count_mismatches"] == 0 for r in results), "stall or action count mismatches"
