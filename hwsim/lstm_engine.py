"""The tensor-decomposed LSTM engine family (``lstm-engine``): config, cycle-level model, inventory, registry.

The engine (TIE-style, Deng et al. ISCA 2019; the same datapath runs FDHT-style HT schedules) runs the
input layer ``W x`` of a TT- or HT-LSTM as a sequence of contraction *stages*
(:func:`hwsim.models.tensor_formats.plan_stages`), then the dense hidden-to-hidden product as one more
stage, then the gate unit. Every stage is a GEMM ``out[q, p] = sum_k T[q, k] F[p, k]`` with ``R`` rows
``p`` (the factor's new axes), reduction ``K`` and ``Q`` columns ``q`` (the intermediate's other axes).

Datapath (the RTL's, :mod:`hwsim.rtl.lstm_engine`)
--------------------------------------------------
* ``pes`` lanes, parallel over ``p``: lane ``i`` of group ``(q, j)`` computes row ``p = j*pes + i``.
  The weight SRAM delivers one word of ``pes`` factor entries per cycle (``F[j*pes .. j*pes+pes-1, k]``);
  the working SRAM delivers one intermediate element ``T[q, k]`` per cycle, broadcast to every lane.
* Two working SRAMs (ping-pong), each ``banks`` banks interleaved by address (bank = address mod banks).
  A stage reads its input from one and writes its result to the other in the layout ``rest + new``
  (row-major), so the re-layout between stages is the read address generator's mixed-radix walk over
  ``T``'s strides, never a data move. A group's ``L = min(pes, R - j*pes)`` results go to ``L``
  consecutive addresses: ``ceil(L / banks)`` write cycles (one when ``banks >= pes``: conflict-free;
  otherwise the extra cycles are bank-conflict stalls).
* Idle lanes (``gating``, docs/idle_lanes.md): in a group whose row tile is partial (``L < pes``: the last
  tile of a stage whose ``R`` is not a multiple of ``pes``, or ``R < pes``) lanes ``L .. pes-1`` are idle
  for the group's ``K`` MAC cycles: ``groups * K * pes - macs`` idle slots per stage (:func:`idle_slots`),
  counted apart from the real MACs (``pe_mult.idle``). ``"none"``: an idle lane multiplies the padding, adds
  (``pe_acc.idle``) and writes its accumulator; ``"operand"``: its multiplier inputs are forced to zero (priced
  as one closed clock gate), the accumulator is still written; ``"clock"`` (default): also the accumulator
  holds (``pe_acc_reg.idle``, one closed gate). Only the tile's ``L`` lanes are requantized and written (the
  working SRAMs are one element per word and bank, so a partial group writes only its real elements); with
  ``"none"`` the idle lanes' requantizers see live accumulators, one conversion each per group.

Timing, exact to the RTL clock (``cycles`` counts the cycles ``busy`` is high)
---------------------------------------------------------------------------
* per stage: 1 setup cycle (descriptor latched, counters cleared);
* per group ``(q, j)``: ``K`` read-issue cycles (the MAC of element ``k`` happens the cycle after its
  read), 1 cycle for the last MAC, ``ceil(L / banks)`` requantize-and-write cycles; groups run ``q``
  outer, ``j`` inner, without overlap;
* so ``stage cycles = 1 + Q * sum_j (K + 1 + ceil(L_j / banks))``, and a matvec is the sum over stages.
* an LSTM step (the RTL's :class:`hwsim.rtl.lstm_step.LstmStepEngine`) adds the hidden stage
  (``R = 4H``, ``K = H``, ``Q = 1``; operand ``h`` and weights ``U`` from the state and hidden SRAMs,
  result ``zh`` into the working buffer ``zx`` is not in) and the gate phase
  (:func:`gate_phase_cycles`, ``4H + 3 + GATE_LATENCY``): one hand-over cycle, then per hidden unit four
  gather cycles (one per gate: ``zx`` from its working buffer at the address of its row in the last
  stage's layout, ``zh`` from the other buffer, ``b`` and, with the last gate, ``c`` from the state SRAM),
  one cycle for the reads to land, and the gate unit's ``GATE_LATENCY``-deep pipeline; ``h'``, ``c'`` are
  written back to the state SRAM as they leave it. Loading ``x`` from DRAM into a working SRAM is counted
  (bytes, writes); with ``x_load="overlapped"`` (default) it is not timed: it is assumed to overlap the
  previous frame (double-buffered DMA), as in TIE; with ``x_load="stream"`` every run starts with ``N``
  load cycles, one element per cycle (:func:`x_load_cycles`).

Packed schedule (``schedule="packed"``; cycle model only, the RTL implements only ``"rows"``)
-----------------------------------------------------------------------------------------------
A stage with ``R <= pes // 2`` output rows (an HT transfer stage at small rank) leaves most lanes idle
under ``"rows"``. Packed, it runs ``g = min(pes // R, Q)`` consecutive columns ``q`` side by side: lane
``s*R + p`` computes ``out[q0 + s, p]``. Per cycle the weight SRAM still delivers one word (entries
``F[0..R-1, k]``, fanned out to the ``g`` lane groups), and the working SRAM delivers the ``g`` elements
``T[q0 + s, k]``, one per lane group, from its ``banks`` banks: a ``k`` step takes as many cycles as the
most-used bank has reads among them (bank conflicts, counted as stalls). The group's ``g * R`` results are
consecutive in the output layout (``rest + new``), so the write takes ``ceil(g * R / banks)`` cycles. So
``stage cycles = 1 + sum over groups (sum_k c_k + 1 + ceil(L / banks))`` with ``L`` the group's results;
stages with ``R > pes // 2`` (g = 1) are timed exactly as under ``"rows"``. The extra hardware (a
``banks``:1 operand multiplexer and a weight-entry multiplexer per lane, ``pes - 1`` address offset adders)
is in the inventory (``pack_*`` components) and its selects and adds are counted.

Decomposed hidden matrix (``LstmWorkload.hidden_fmt``; cycle model only)
-----------------------------------------------------------------------
FDHT-LSTM decomposes the hidden-to-hidden matrix ``U`` too. With ``hidden_fmt`` (a TT/HT format of shape
``(4H, H)``) the dense hidden stage is replaced by that format's stages on the same lanes: its factors sit
in the weight SRAM beside ``W``'s, ``h'`` is written into a working SRAM as it leaves the gate unit (one
extra write per unit, beside the state-SRAM write), the stages ping-pong above ``zx``, and the gather
reads ``zh`` where the last stage left it (a second set of walkers, counted as address adds). The hidden
SRAM is then not read (it stays in the inventory: the same buffers for every format).

Values are those of the bit-exact reference (:mod:`hwsim.models.lstm_engine`).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from hwsim.config import GATING_MODES, FamilyConfig, check_choice, check_int
from hwsim.errors import HwsimError
from hwsim.families import Family, model_cosim_options
from hwsim.models import lstm_engine as ref
from hwsim.models import tensor_formats as tf
from hwsim.stats import ActionCounts
from hwsim.unit import Stats

__all__ = [
    "FAMILY",
    "GATE_LATENCY",
    "LstmEngineConfig",
    "LstmWorkload",
    "StageStats",
    "check_rtl",
    "gate_phase_cycles",
    "inventory",
    "parse_preset",
    "predict",
    "predict_classifier",
    "predict_matvec",
    "predict_step",
    "simulate_matvec",
    "simulate_step",
    "step_bank_counts",
    "compile_classifier",
    "lower",
    "run",
    "reference",
    "stage_descriptors",
    "workload",
    "workload_table",
    "WorkloadLayer",
    "WorkloadModel",
    "x_load_cycles",
]

OVERFLOW_MODES = ("saturate", "wrap")
ROUNDING_MODES = ("half_up", "half_even")
NONLINEARITIES = ("pwl", "lut")
DECOMPOSITIONS = ("tt", "ht")
X_LOADS = ("overlapped", "stream")
SCHEDULES = ("rows", "packed")
#: Pipeline depth of the gate unit (zx + zh + b, nonlinearities, c update, tanh(c), h): a hidden unit
#: accepted in cycle t leaves in cycle t + GATE_LATENCY.
GATE_LATENCY = 6
#: Gather cycles per hidden unit in the gate phase: one working-SRAM read per gate (one read port per buffer).
GATE_READS = 4


def gate_phase_cycles(hidden: int) -> int:
    """Cycles of the gate phase of one step (``busy`` high), exact to the RTL: 1 hand-over cycle (the
    gather walkers load), ``GATE_READS * H`` gather cycles, 1 cycle for the last reads to land, 1 for the
    last unit's operand register, then ``GATE_LATENCY`` cycles through the gate unit."""
    return 1 + GATE_READS * hidden + 2 + GATE_LATENCY


@dataclass(frozen=True)
class LstmEngineConfig(FamilyConfig):
    """A tensor-decomposed LSTM engine (family ``lstm-engine``).

    Parameters
    ----------
    decomposition : {"tt", "ht"}
        Format of the input layer the controller schedules: tensor-train (TIE-style stages, one core
        each) or hierarchical Tucker (FDHT-style, leaves and transfer tensors of the dimension tree).
    pes : int
        Processing elements (MAC lanes), parallel over the rows of a stage's factor.
    banks : int
        Banks of each working SRAM (a power of two), interleaved by address; fewer banks than PEs
        makes a group's write take ceil(lanes / banks) cycles (model and RTL).
    data_bits : int
        Signed width of data, factor entries, intermediates and states (two's complement).
    acc_bits : int
        Signed accumulator width; must hold one product (at least 2 * data_bits).
    frac_bits : int
        Fractional bits of the gate domain (pre-activations, c, h), at most data_bits - 2.
    overflow : {"saturate", "wrap"}
        What the accumulator does after every addition that leaves its range.
    rounding : {"half_up", "half_even"}
        Rounding of every power-of-two requantization shift (ties towards +inf, or to even).
    nonlinearity : {"pwl", "lut"}
        Sigmoid/tanh implementation: PLAN piecewise-linear (shift slopes) or a lookup table.
    lut_bits : int
        Address bits of each lookup table (2**lut_bits entries), at most data_bits.
    weight_sram_bytes : int
        Factor (TT core / HT leaf and transfer) SRAM capacity in bytes; all factors stay on chip.
    hidden_sram_bytes : int
        Capacity in bytes of the SRAM holding the dense hidden-to-hidden matrix (4H x H entries).
    work_sram_bytes : int
        Capacity of each of the two working (ping-pong) SRAMs in bytes, all banks together.
    addr_levels : int
        Loop levels of each read address generator (axes of an intermediate it can walk).
    clock_mhz : float
        Clock frequency, for converting cycles to time.
    x_load : {"overlapped", "stream"}
        How ``x`` reaches working buffer 0: "overlapped" assumes a double-buffered DMA hides it behind
        the previous frame (counted, not timed; the RTL is loaded while idle), "stream" times it: every
        run starts with ``N`` cycles taking one element per cycle from the engine's ``i_x`` stream.
    schedule : {"rows", "packed"}
        How a stage's work maps onto the lanes. "rows" (default, the RTL's): lanes over the output rows
        ``p`` only, so a stage with fewer rows than PEs leaves lanes idle. "packed" (cycle model only, no
        RTL): a stage with ``R <= pes // 2`` runs ``pes // R`` columns ``q`` side by side (see the module
        docstring); other stages are timed as under "rows".
    gating : {"clock", "operand", "none"}
        What an idle lane does in a MAC cycle (a lane past the rows of a group's partial row tile: an
        *idle slot*; docs/idle_lanes.md). "none": nothing gated, the lane multiplies the broadcast operand
        by its weight word's padding entry, adds and writes its accumulator (priced as a multiply, an add
        and a register write). "operand": operand isolation, the lane's multiplier inputs are forced to
        zero (its multiplier and adder see constant inputs; priced as one closed clock gate, ``icg.energy``),
        the accumulator is still clocked (a register write). "clock" (default): also the accumulator
        register holds (its enable is off: a clock gate, one closed gate per idle slot). Values and cycles
        are the same under every choice.
    """

    decomposition: str = "tt"
    pes: int = 16
    banks: int = 16
    data_bits: int = 16
    acc_bits: int = 32
    frac_bits: int = 12
    overflow: str = "saturate"
    rounding: str = "half_up"
    nonlinearity: str = "pwl"
    lut_bits: int = 8
    weight_sram_bytes: int = 16384
    hidden_sram_bytes: int = 524288
    work_sram_bytes: int = 262144
    addr_levels: int = 6
    clock_mhz: float = 1000.0
    x_load: str = "overlapped"
    schedule: str = "rows"
    gating: str = "clock"

    FAMILY: ClassVar[str] = "lstm-engine"

    def __post_init__(self):
        check_choice("decomposition", self.decomposition, DECOMPOSITIONS)
        check_int("pes", self.pes, 1, 256)
        check_int("banks", self.banks, 1, 256)
        if self.banks & (self.banks - 1):
            raise HwsimError(f"banks={self.banks} is not allowed: expected a power of two")
        check_int("data_bits", self.data_bits, 4, 16)
        check_int("acc_bits", self.acc_bits, 8, 48)
        if self.acc_bits < 2 * self.data_bits:
            raise HwsimError(f"acc_bits={self.acc_bits} is not allowed: expected an integer >= 2 * data_bits "
                             f"({2 * self.data_bits}), the accumulator must hold one product")
        check_int("frac_bits", self.frac_bits, 1, self.data_bits - 2)
        check_choice("overflow", self.overflow, OVERFLOW_MODES)
        check_choice("rounding", self.rounding, ROUNDING_MODES)
        check_choice("nonlinearity", self.nonlinearity, NONLINEARITIES)
        check_int("lut_bits", self.lut_bits, 1, self.data_bits)
        check_int("weight_sram_bytes", self.weight_sram_bytes, 16)
        check_int("hidden_sram_bytes", self.hidden_sram_bytes, 16)
        check_int("work_sram_bytes", self.work_sram_bytes, 16)
        check_int("addr_levels", self.addr_levels, 1, 12)
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, int | float) or not self.clock_mhz > 0:
            raise HwsimError(f"clock_mhz={self.clock_mhz!r} is not allowed: expected a number > 0")
        check_choice("x_load", self.x_load, X_LOADS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("gating", self.gating, GATING_MODES)

    def to_dict(self) -> dict:
        """The fields as a mapping; ``schedule`` only when it is not the default "rows", so the RTL's
        metadata (and the co-simulation build keys derived from it) are those of before the field existed
        for the schedule the RTL implements."""
        d = super().to_dict()
        if d["schedule"] == "rows":
            del d["schedule"]
        return d

    @property
    def top_name(self) -> str:
        return (f"lstm_engine_p{self.pes}_b{self.banks}_d{self.data_bits}_a{self.acc_bits}_"
                f"{self.overflow}_{self.rounding}" + ("_xstream" if self.x_load == "stream" else "")
                + {"clock": "", "operand": "_og", "none": "_ng"}[self.gating])

    @property
    def ns_per_cycle(self) -> float:
        return 1000.0 / self.clock_mhz

    @property
    def peak_macs_per_cycle(self) -> int:
        return self.pes

    @property
    def data_bytes(self) -> int:
        return (self.data_bits + 7) // 8

    @property
    def work_words(self) -> int:
        """Elements one working SRAM holds."""
        return self.work_sram_bytes // self.data_bytes

    @property
    def bank_depth(self) -> int:
        return -(-self.work_words // self.banks)

    @property
    def weight_words(self) -> int:
        """Words (``pes`` entries each) the weight SRAM holds."""
        return self.weight_sram_bytes * 8 // (self.pes * self.data_bits)

    def describe(self) -> str:
        return (f"lstm-engine {self.decomposition.upper()} {self.pes} PEs, {self.banks} banks, "
                f"int{self.data_bits} data, {self.acc_bits}-bit {self.overflow} acc, "
                f"{self.nonlinearity} gates, {self.clock_mhz:g} MHz"
                + (", packed schedule" if self.schedule == "packed" else "")
                + {"clock": "", "operand": ", idle lanes operand-isolated",
                   "none": ", idle lanes ungated"}[self.gating])


_PRESET_RE = re.compile(r"^lstm-engine-(tt|ht)-(\d+)(?:-int(8|16))?$")


def parse_preset(name: str) -> LstmEngineConfig | None:
    """``lstm-engine-tt|ht-PES[-int8|-int16]`` (int16 by default) as a config; None for other names."""
    m = _PRESET_RE.match(str(name))
    if not m:
        return None
    bits = int(m[3] or 16)
    pes = int(m[2])
    return LstmEngineConfig(decomposition=m[1], pes=pes, banks=1 << max(0, (pes - 1).bit_length()),
                            data_bits=bits, acc_bits=2 * bits if bits == 16 else 24,
                            frac_bits=12 if bits == 16 else 5)


def check_rtl(cfg: LstmEngineConfig) -> None:
    """Raise if ``cfg`` has no RTL: the engine's load port addresses words with 24 bits, so a working SRAM,
    the weight SRAM and the hidden SRAM hold at most ``2**24`` words each, and the RTL runs only the
    ``"rows"`` schedule. (Fewer banks than PEs is RTL too: a group's write then takes ``ceil(lanes / banks)``
    cycles, the extra ones counted as stalls.)"""
    if cfg.schedule != "rows":
        raise HwsimError(f"schedule={cfg.schedule!r} has no RTL: expected 'rows' (the packed schedule is modelled "
                         "in the cycle model only)")
    for name, words in (("work_sram_bytes", cfg.work_words), ("weight_sram_bytes", cfg.weight_words),
                        ("hidden_sram_bytes", cfg.hidden_sram_bytes * 8 // (cfg.pes * cfg.data_bits))):
        if words > 1 << 24:
            raise HwsimError(f"{name}={getattr(cfg, name)} has no RTL: expected at most 2**24 words "
                             f"({words} words; the load port's address is 24 bits)")


# ---------------------------------------------------------------------------------------------- workloads
@dataclass(frozen=True)
class LstmWorkload:
    """An LSTM input layer to run: a TT/HT format (shapes matter, values need not), a stage order, the
    hidden size ``H`` (4H outputs) and the sequence length. ``hidden_fmt``: the hidden-to-hidden matrix as
    a TT/HT format of shape ``(4H, H)`` (FDHT-style, run as stages on the lanes; cycle model only), or None
    for the dense ``U`` in the hidden SRAM (the RTL's)."""

    name: str
    fmt: object
    hidden: int
    steps: int = 1
    order: tuple[int, ...] | None = None
    hidden_fmt: object = None

    @property
    def stages(self) -> list[tf.Stage]:
        return tf.plan_stages(self.fmt, self.order)


#: The published workloads: Yang et al., ICML 2017 (TT-LSTM on UCF11 and Youtube Celebrities faces).
#: Input modes per dataset, output modes [4, 4, 4, 4] with the first x4 for the gates, TT ranks 4.
PUBLISHED = {
    "ucf11": ((16, 4, 4, 4), (8, 20, 20, 18)),
    "youtube": ((16, 4, 4, 4), (4, 20, 20, 36)),
}


#: Modes of the hidden-to-hidden matrix U (4H x H, H = 256) when it is decomposed: output modes as the
#: input layer's (the first x4 for the gates), input modes 4 x 4 x 4 x 4 (an hwsim choice; FDHT-LSTM
#: decomposes U but its mode split is not reproduced here).
HIDDEN_MODES = ((16, 4, 4, 4), (4, 4, 4, 4))


def _random_format(decomposition: str, m, n, rank: int):
    if decomposition == "tt":
        return tf.TTMatrix.random(m, n, (1,) + (rank,) * (len(m) - 1) + (1,), rng=0, scale=0.1)
    return tf.HTMatrix.random(m, n, rank, rng=0, scale=0.1)


def workload(name: str, decomposition: str = "tt", rank: int = 4, steps: int = 1,
             hidden: str | None = None) -> LstmWorkload:
    """``ucf11`` or ``youtube`` as a TT (ranks [1, r, r, r, 1]) or HT (every node rank r, balanced
    tree) input layer with H = 256; factor values are random (shapes are what the engine sees).
    ``hidden`` None keeps ``U`` dense (the RTL's hidden stage); "tt" or "ht" decomposes it too, at the
    same rank, over :data:`HIDDEN_MODES` (``LstmWorkload.hidden_fmt``; FDHT-LSTM decomposes it as HT)."""
    if name not in PUBLISHED:
        raise HwsimError(f"workload={name!r} is not allowed: expected one of {', '.join(PUBLISHED)}")
    check_choice("decomposition", decomposition, DECOMPOSITIONS)
    if hidden is not None:
        check_choice("hidden", hidden, DECOMPOSITIONS)
    m, n = PUBLISHED[name]
    fmt = _random_format(decomposition, m, n, rank)
    hfmt = None if hidden is None else _random_format(hidden, *HIDDEN_MODES, rank)
    return LstmWorkload(f"{name}-{decomposition}-r{rank}" + (f"-u{hidden}" if hidden else ""), fmt, hidden=256,
                        steps=steps, hidden_fmt=hfmt)


def workload_table(names=("ucf11", "youtube"), rank: int = 4) -> list[dict]:
    """Parameters and MACs per stage of the published workloads in TT and HT form."""
    rows = []
    for name in names:
        for dec in DECOMPOSITIONS:
            w = workload(name, dec, rank)
            rows.append({"workload": name, "format": dec, "rank": rank, "params": w.fmt.params,
                         "dense_params": w.fmt.dense_params,
                         "compression": w.fmt.dense_params / w.fmt.params,
                         "stages": [{"factor": s.name, "R": s.R, "K": s.K, "Q": s.Q, "macs": s.macs}
                                    for s in w.stages],
                         "macs": sum(s.macs for s in w.stages), "dense_macs": w.fmt.dense_params})
    return rows


# ---------------------------------------------------------------------------------------------- cycle model
@dataclass(frozen=True)
class StageStats:
    """One stage's timing and counts: ``groups = Q * ceil(R / pes)`` (packed: ``ceil(Q / g)``);
    ``conflict_cycles`` are the write cycles beyond one per group (banks < lanes) and, packed, the read
    cycles beyond one per ``k`` step (bank conflicts among a group's reads). ``pack`` is ``g``, the columns
    run side by side (1 under ``"rows"``)."""

    name: str
    R: int
    K: int
    Q: int
    macs: int
    groups: int
    cycles: int
    conflict_cycles: int
    pack: int = 1


#: The SRAMs whose traffic is the ``sram_*_bytes`` of the family's Stats.
_SRAMS = ("weight_sram", "hidden_sram", "work_sram", "state_sram")


def _sram_bytes(cfg: LstmEngineConfig, acts: ActionCounts, action: str) -> int:
    """Bytes of the SRAM ``action`` s (read/write) in ``acts``: a weight/hidden SRAM word is ``pes``
    entries, a work/state SRAM word one."""
    word = {"weight_sram": cfg.pes * cfg.data_bytes, "hidden_sram": cfg.pes * cfg.data_bytes}
    return sum(v * word.get(c, cfg.data_bytes) for (c, a), v in acts.counts.items() if c in _SRAMS and a == action)


def _stats(cfg: LstmEngineConfig, cycles: int, stalls: int, macs: int, acts: ActionCounts, detail=None) -> Stats:
    """The family's :class:`hwsim.unit.Stats`: traffic from the SRAM and DRAM actions, ``detail`` as given
    (:data:`STATS_DETAIL`) plus ``idle_slots``, the idle lane slots (``pe_mult.idle``)."""
    return Stats(cycles, stalls, macs, acts, sram_read_bytes=_sram_bytes(cfg, acts, "read"),
                 sram_write_bytes=_sram_bytes(cfg, acts, "write"), dram_read_bytes=acts.get("dram", "read"),
                 dram_write_bytes=acts.get("dram", "write"),
                 detail={**(detail or {}), "idle_slots": acts.get("pe_mult", "idle")})


#: What the LSTM engine puts in :attr:`hwsim.unit.Stats.detail` (every function of this module that returns
#: statistics returns a ``Stats``). Numbers add up when Stats are summed (``hwsim.unit.total``) and scale
#: with :meth:`~hwsim.unit.Stats.scaled`; the other entries describe ONE pass (one matvec, one time step, the
#: readout): they are kept when the summed Stats ran the same pass and become None otherwise, and T steps
#: (``predict`` of an ``LstmWorkload`` with ``steps=T``) keep one step's.
STATS_DETAIL = {
    "name": "the workload's or op's name (a matvec: ``name``, default 'matvec')",
    "stages": "tuple of StageStats, one row per stage of one pass (input-layer stages, hidden stage(s), "
              "'gates'; the readout's one row); per pass, not summed",
    "steps": "LSTM time steps (workloads only)",
    "x_load_cycles": "cycles of streaming x in (x_load='stream'; 0 overlapped)",
    "matvec_cycles": "cycles of the input layer's stages, x load included (steps only)",
    "hidden_cycles": "cycles of a decomposed U's stages (hidden_fmt only)",
    "idle_slots": "idle lane slots (pe_mult.idle)",
    "bank_reads": "per-bank working-SRAM reads of one pass, both buffers (simulate_matvec / simulate_step "
                  "only); per pass, not summed",
    "bank_writes": "per-bank working-SRAM writes of one pass, as bank_reads",
}


def _with_banks(stats: Stats, reads, writes) -> Stats:
    return dataclasses.replace(stats, detail={**stats.detail, "bank_reads": tuple(int(v) for v in reads),
                                              "bank_writes": tuple(int(v) for v in writes)})


def _stage_timing(cfg: LstmEngineConfig, name: str, R: int, K: int, Q: int) -> StageStats:
    tiles = -(-R // cfg.pes)
    last = R - (tiles - 1) * cfg.pes
    wc_full = -(-cfg.pes // cfg.banks)
    wc_last = -(-last // cfg.banks)
    per_q = (tiles - 1) * (K + 1 + wc_full) + (K + 1 + wc_last)
    conflicts = Q * ((tiles - 1) * (wc_full - 1) + (wc_last - 1))
    return StageStats(name, R, K, Q, Q * R * K, Q * tiles, 1 + Q * per_q, conflicts)


def pack_factor(cfg: LstmEngineConfig, R: int, Q: int) -> int:
    """Columns ``g`` a stage of ``R`` rows and ``Q`` columns runs side by side: ``min(pes // R, Q)`` under the
    packed schedule when ``R <= pes // 2``, else 1."""
    if cfg.schedule != "packed" or 2 * R > cfg.pes:
        return 1
    return max(1, min(cfg.pes // R, Q))


def _packed_stage_timing(cfg: LstmEngineConfig, name: str, R: int, K: int, Q: int, addrs) -> StageStats:
    """Packed timing of a stage whose ``(Q, K)`` read-address table is ``addrs`` (element addresses in the
    working SRAM, :func:`read_addresses`); ``g = 1`` is :func:`_stage_timing`."""
    g = pack_factor(cfg, R, Q)
    if g == 1:
        return _stage_timing(cfg, name, R, K, Q)
    groups = -(-Q // g)
    bank = np.full((groups * g, K), -1, dtype=np.int64)
    bank[:Q] = np.asarray(addrs, dtype=np.int64) % cfg.banks
    bank = bank.reshape(groups, g, K)
    worst = np.zeros((groups, K), dtype=np.int64)  # reads of the most-used bank per (group, k)
    for b in np.unique(bank[bank >= 0]):
        np.maximum(worst, (bank == b).sum(axis=1), out=worst)
    read_cycles = int(worst.sum())
    last = Q - (groups - 1) * g
    write_cycles = (groups - 1) * -(-(g * R) // cfg.banks) + -(-(last * R) // cfg.banks)
    return StageStats(name, R, K, Q, Q * R * K, groups, 1 + read_cycles + groups + write_cycles,
                      (read_cycles - groups * K) + (write_cycles - groups), g)


def idle_slots(cfg: LstmEngineConfig, st: StageStats) -> int:
    """Idle MAC slots of a stage: per group and reduction step every lane without a real row, i.e.
    ``groups * K * pes - macs`` (under ``"rows"``: ``Q * K * (ceil(R / pes) * pes - R)``, the padding lanes of
    each column's last row tile)."""
    return st.groups * st.K * cfg.pes - st.macs


def _lane_actions(cfg: LstmEngineConfig, st: StageStats) -> dict:
    """The PE lanes' actions of a stage under ``cfg.gating``: real MACs (a multiply, an add, an accumulator
    write each) and idle slots (:func:`idle_slots`): ``pe_mult.idle`` every idle slot (priced by the
    multiplier's ``gating``: a multiply, or a closed gate); ``pe_acc.idle`` (an add on padding) only without
    operand isolation; the accumulator register is written every slot unless ``gating="clock"`` holds it
    (``pe_acc_reg.idle``: a closed clock gate)."""
    idle = idle_slots(cfg, st)
    out = {("pe_mult", "mult"): st.macs, ("pe_acc", "add"): st.macs,
           ("pe_acc_reg", "write"): st.macs + (0 if cfg.gating == "clock" else idle)}
    if idle:
        out[("pe_mult", "idle")] = idle
        if cfg.gating == "none":
            out[("pe_acc", "idle")] = idle
        if cfg.gating == "clock":
            out[("pe_acc_reg", "idle")] = idle
    return out


def _requants(cfg: LstmEngineConfig, st: StageStats) -> int:
    """Requantizations of a stage: its ``Q * R`` outputs; with ``gating="none"`` also, once per group, every
    idle lane (its accumulator runs, so its requantizer sees a live input): ``groups * pes`` in all."""
    return st.groups * cfg.pes if cfg.gating == "none" else st.Q * st.R


def _stage_actions(cfg: LstmEngineConfig, st: StageStats) -> dict:
    if st.pack > 1:
        # one weight word per k step; every intermediate element read once; one operand select per MAC
        # (the lane's banks:1 multiplexer); address: one walker add per k step and group, one offset add
        # per further column
        steps = st.groups * st.K
        return {**_lane_actions(cfg, st),
                ("weight_sram", "read"): steps, ("work_sram", "read"): st.Q * st.K,
                ("work_sram", "write"): st.Q * st.R, ("requant", "convert"): _requants(cfg, st),
                ("addr_gen", "add"): steps + st.groups, ("pack_addr", "add"): st.Q * st.K - steps,
                ("pack_operand", "select"): st.macs}
    reads = st.groups * st.K
    return {**_lane_actions(cfg, st),
            ("weight_sram", "read"): reads, ("work_sram", "read"): reads, ("work_sram", "write"): st.Q * st.R,
            ("requant", "convert"): _requants(cfg, st), ("addr_gen", "add"): reads + st.groups}


def _check_fits(cfg: LstmEngineConfig, stages, name: str, hidden: int = 0) -> None:
    biggest = max(max(s.in_size, s.out_size) for s in stages)
    if biggest > cfg.work_words:
        raise HwsimError(f"work_sram_bytes={cfg.work_sram_bytes} is not allowed for {name}: expected >= "
                         f"{biggest * cfg.data_bytes} bytes (largest intermediate: {biggest} elements)")
    if 4 * hidden * hidden * cfg.data_bytes > cfg.hidden_sram_bytes:
        raise HwsimError(f"hidden_sram_bytes={cfg.hidden_sram_bytes} is not allowed for {name}: expected >= "
                         f"{4 * hidden * hidden * cfg.data_bytes} bytes (4H x H = {4 * hidden * hidden} entries)")
    words = sum(-(-s.R // cfg.pes) * s.K for s in stages)
    if words > cfg.weight_words:
        raise HwsimError(f"weight_sram_bytes={cfg.weight_sram_bytes} is not allowed for {name}: expected >= "
                         f"{-(-words * cfg.pes * cfg.data_bits // 8)} bytes ({words} words of {cfg.pes} entries)")
    for s in stages:
        if max(len(s.rest), len(s.shared)) > cfg.addr_levels:
            raise HwsimError(f"addr_levels={cfg.addr_levels} is not allowed for {name}: expected >= "
                             f"{max(len(s.rest), len(s.shared))} (stage {s.name} walks that many axes)")


def predict_matvec(cfg: LstmEngineConfig, fmt, order=None, name: str = "matvec") -> Stats:
    """Counts-only statistics of one ``W x`` on the engine (closed form per stage); ``detail``: ``name``,
    ``stages``, ``x_load_cycles`` (:data:`STATS_DETAIL`)."""
    stages = tf.plan_stages(fmt, order)
    _check_fits(cfg, stages, name)
    rows = _stage_rows(cfg, fmt, order)
    acts = ActionCounts({})
    for r in rows:
        acts = acts + ActionCounts(_stage_actions(cfg, r))
    N = fmt.shape[1]
    acts = acts + ActionCounts({("dram", "read"): N * cfg.data_bytes, ("work_sram", "write"): N})
    x_cycles = x_load_cycles(cfg, N)
    if x_cycles:  # the x stream's write-address counter: one increment per element
        acts = acts + ActionCounts({("addr_gen", "add"): N})
    return _stats(cfg, x_cycles + sum(r.cycles for r in rows), sum(r.conflict_cycles for r in rows),
                  sum(r.macs for r in rows), acts, {"name": name, "stages": rows, "x_load_cycles": x_cycles})


def _stage_rows(cfg: LstmEngineConfig, fmt, order=None, prefix: str = "") -> tuple[StageStats, ...]:
    """Timing of every stage of ``fmt``'s matvec under ``cfg.schedule``."""
    if cfg.schedule == "rows":
        return tuple(_stage_timing(cfg, prefix + s.name, s.R, s.K, s.Q) for s in tf.plan_stages(fmt, order))
    return tuple(_packed_stage_timing(cfg, prefix + d["name"], d["R"], d["K"], d["Q"], read_addresses(d))
                 if pack_factor(cfg, d["R"], d["Q"]) > 1 else _stage_timing(cfg, prefix + d["name"], d["R"], d["K"],
                                                                            d["Q"])
                 for d in stage_descriptors(cfg, fmt, order))


def _hidden_decomposed(cfg: LstmEngineConfig, w: LstmWorkload) -> tuple[tuple[StageStats, ...], ActionCounts]:
    """The stages of a decomposed ``U`` (``w.hidden_fmt``) on the lanes and their actions (see the module
    docstring): the input is ``h``, written into a working SRAM by the gate unit, the output ``zh``."""
    H = w.hidden
    hf = w.hidden_fmt
    if tuple(hf.shape) != (4 * H, H):
        raise HwsimError(f"hidden_fmt shape={tuple(hf.shape)} is not allowed for {w.name}: expected (4H, H) = "
                         f"{(4 * H, H)}")
    hstages = tf.plan_stages(hf)
    biggest = max(max(s.in_size, s.out_size) for s in hstages) + 4 * H  # zx stays in a working buffer
    if biggest > cfg.work_words:
        raise HwsimError(f"work_sram_bytes={cfg.work_sram_bytes} is not allowed for {w.name}: expected >= "
                         f"{biggest * cfg.data_bytes} bytes (zx and the hidden matrix's largest intermediate)")
    words = sum(-(-s.R // cfg.pes) * s.K for s in list(w.stages) + hstages)
    if words > cfg.weight_words:
        raise HwsimError(f"weight_sram_bytes={cfg.weight_sram_bytes} is not allowed for {w.name}: expected >= "
                         f"{-(-words * cfg.pes * cfg.data_bits // 8)} bytes ({words} words of {cfg.pes} entries: "
                         "the input and hidden matrices' factors)")
    for s in hstages:
        if max(len(s.rest), len(s.shared)) > cfg.addr_levels:
            raise HwsimError(f"addr_levels={cfg.addr_levels} is not allowed for {w.name}: expected >= "
                             f"{max(len(s.rest), len(s.shared))} (hidden stage {s.name} walks that many axes)")
    rows = _stage_rows(cfg, hf, None, "hidden.")
    acts = ActionCounts({("work_sram", "write"): H, ("addr_gen", "add"): GATE_READS * H})
    for r in rows:
        acts = acts + ActionCounts(_stage_actions(cfg, r))
    return rows, acts


def x_load_cycles(cfg: LstmEngineConfig, n: int) -> int:
    """Cycles of loading ``n`` inputs at the start of a run: ``n`` with ``x_load="stream"`` (one element
    per cycle into working buffer 0), 0 with ``"overlapped"`` (hidden by double-buffered DMA)."""
    return n if cfg.x_load == "stream" else 0


def predict_step(cfg: LstmEngineConfig, w: LstmWorkload) -> Stats:
    """One LSTM time step (one frame): the input layer's stages, the hidden stage and the gate unit;
    ``detail``: ``name``, ``steps`` (1), ``stages``, ``x_load_cycles``, ``matvec_cycles`` and, with a decomposed
    ``U``, ``hidden_cycles`` (:data:`STATS_DETAIL`)."""
    mv = predict_matvec(cfg, w.fmt, w.order, w.name)
    H = w.hidden
    if w.hidden_fmt is not None:
        return _step_with_hidden_fmt(cfg, w, mv)
    _check_fits(cfg, w.stages, w.name, w.hidden)
    hid = _stage_timing(cfg, "hidden", 4 * H, H, 1)
    gate_cycles = gate_phase_cycles(H)
    gate_acts = _gate_actions(H)
    # the hidden stage: weights from the hidden SRAM, operand h from the state SRAM, zh into a working SRAM
    hid_acts = {(("hidden_sram" if c == "weight_sram" else "state_sram" if (c, a) == ("work_sram", "read") else c),
                 a): v for (c, a), v in _stage_actions(cfg, hid).items()}
    acts = mv.actions + ActionCounts(hid_acts) + ActionCounts(gate_acts)
    cycles = mv.cycles + hid.cycles + gate_cycles
    return _stats(cfg, cycles, mv.stall_cycles + hid.conflict_cycles, mv.macs + hid.macs, acts,
                  _step_detail(w, mv, (hid, _gates_row(H, gate_cycles))))


def _gates_row(H: int, gate_cycles: int) -> StageStats:
    """The gate phase as a stage row (4 gates per unit, ``H`` units, no MACs)."""
    return StageStats("gates", 4, 1, H, 0, H, gate_cycles, 0)


def _step_detail(w: LstmWorkload, mv: Stats, rows: tuple[StageStats, ...], **more) -> dict:
    return {"name": w.name, "steps": 1, "stages": mv.detail["stages"] + rows,
            "x_load_cycles": mv.detail["x_load_cycles"], "matvec_cycles": mv.cycles, **more}


def _gate_actions(H: int) -> dict:
    # gate unit per unit: 8 adds (zx + zh + b), 3 sigmoids, 2 tanh, 3 products, 1 add, 2 requantizations;
    # gather: 4 zx + 4 zh working-SRAM reads, 4 b + 1 c state-SRAM reads, h' and c' written back, address
    # adders 2 per gather cycle (zx walker, row index) + 1 per unit written
    return {("gate_add", "add"): 2 * 4 * H, ("sigmoid", "eval"): 3 * H, ("tanh", "eval"): 2 * H,
            ("cell_mult", "mult"): 3 * H, ("cell_add", "add"): H, ("requant", "convert"): 2 * H,
            ("work_sram", "read"): 2 * GATE_READS * H, ("state_sram", "read"): 4 * H + H,
            ("state_sram", "write"): 2 * H, ("addr_gen", "add"): 2 * GATE_READS * H + H}


def _step_with_hidden_fmt(cfg: LstmEngineConfig, w: LstmWorkload, mv: Stats) -> Stats:
    """:func:`predict_step` with a decomposed ``U`` (``w.hidden_fmt``): its stages replace the hidden stage."""
    H = w.hidden
    hrows, hacts = _hidden_decomposed(cfg, w)
    gate_cycles = gate_phase_cycles(H)
    acts = mv.actions + hacts + ActionCounts(_gate_actions(H))
    hidden_cycles = sum(r.cycles for r in hrows)
    return _stats(cfg, mv.cycles + hidden_cycles + gate_cycles, mv.stall_cycles + sum(r.conflict_cycles for r in hrows),
                  mv.macs + sum(r.macs for r in hrows), acts,
                  _step_detail(w, mv, hrows + (_gates_row(H, gate_cycles),), hidden_cycles=hidden_cycles))


def predict(cfg: LstmEngineConfig, op) -> Stats:
    """Unit protocol (the registry's ``predict``): an :class:`LstmWorkload` (all its steps: one step's
    :func:`predict_step` scaled, ``detail['stages']`` one step's rows), the :class:`ReadoutOp` (one stage, its
    row in ``detail['stages']``), or a TT/HT format (one matvec, :func:`predict_matvec`)."""
    if isinstance(op, LstmWorkload):
        return predict_step(cfg, op).scaled(op.steps)
    if isinstance(op, ReadoutOp):
        ro = readout_stats(cfg, op.outputs, op.hidden)
        return _stats(cfg, ro.cycles, ro.conflict_cycles, ro.macs, _readout_actions(cfg, ro),
                      {"name": op.layer, "stages": (ro,)})
    return predict_matvec(cfg, op)


# ---------------------------------------------------------------------------------------------- value path
def stage_descriptors(cfg: LstmEngineConfig, fmt, order=None) -> list[dict]:
    """Per stage, what the controller is programmed with: sizes, the read walk (counts and strides of
    the intermediate's ``rest`` axes, then its ``shared`` axes in the factor's order, innermost last) and
    the weight base word. Strides are in elements of the row-major intermediate."""
    stages = tf.plan_stages(fmt, order)
    sizes = fmt.sizes()
    out, wbase = [], 0
    for s in stages:
        dims = [sizes[a] for a in s.t_axes]
        strides = {a: int(np.prod(dims[i + 1:], dtype=np.int64)) for i, a in enumerate(s.t_axes)}
        out.append({"name": s.name, "R": s.R, "K": s.K, "Q": s.Q, "wbase": wbase,
                    "q_counts": [sizes[a] for a in s.rest], "q_strides": [strides[a] for a in s.rest],
                    "k_counts": [sizes[a] for a in s.shared], "k_strides": [strides[a] for a in s.shared]})
        wbase += -(-s.R // cfg.pes) * s.K
    return out


def read_addresses(desc: dict) -> np.ndarray:
    """Element addresses the stage reads, in issue order (q outer, p-tile, k inner): a (Q, K) table
    (the same for every p-tile)."""
    def walk(counts, strides):
        a = np.zeros(1, dtype=np.int64)
        for c, s in zip(counts, strides, strict=True):
            a = (a[:, None] + np.arange(c, dtype=np.int64)[None, :] * s).reshape(-1)
        return a
    return walk(desc["q_counts"], desc["q_strides"])[:, None] + walk(desc["k_counts"], desc["k_strides"])[None, :]


def simulate_matvec(cfg: LstmEngineConfig, fmt, x, shifts, order=None, bank_counts: bool = True):
    """Bit-exact ``W x`` on the engine (integer factors ``fmt``, int ``x``) and its :class:`~hwsim.unit.Stats`,
    with per-bank read/write counts of the working SRAMs (``bank_counts``: ``detail['bank_reads']``,
    ``detail['bank_writes']``)."""
    y = tf.matvec_fixed(fmt, x, shifts, data_bits=cfg.data_bits, acc_bits=cfg.acc_bits, overflow=cfg.overflow,
                        rounding=cfg.rounding, order=order)
    stats = predict_matvec(cfg, fmt, order)
    if bank_counts:
        reads, writes = _matvec_bank_counts(cfg, fmt, order)
        stats = _with_banks(stats, reads, writes)
    return y, stats


def _matvec_bank_counts(cfg: LstmEngineConfig, fmt, order=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-bank working-SRAM reads and writes of one ``W x`` (the x load included), both buffers summed."""
    reads = np.zeros(cfg.banks, dtype=np.int64)
    writes = np.bincount(np.arange(fmt.shape[1]) % cfg.banks, minlength=cfg.banks).astype(np.int64)
    for d in stage_descriptors(cfg, fmt, order):
        tiles = -(-d["R"] // cfg.pes)
        reads += tiles * np.bincount((read_addresses(d) % cfg.banks).reshape(-1), minlength=cfg.banks)
        writes += np.bincount(np.arange(d["Q"] * d["R"]) % cfg.banks, minlength=cfg.banks)
    return reads, writes


def step_bank_counts(cfg: LstmEngineConfig, fmt, order, hidden: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-bank working-SRAM reads and writes of one LSTM step: the input layer's (x load included), the
    hidden stage's ``zh`` writes (rows 0..4H-1) and the gather's reads (every ``zx`` row once, at a
    permutation of 0..4H-1, and every ``zh`` row once), both buffers summed."""
    reads, writes = _matvec_bank_counts(cfg, fmt, order)
    rows = np.bincount(np.arange(4 * hidden) % cfg.banks, minlength=cfg.banks)
    return tuple(int(v) for v in reads + 2 * rows), tuple(int(v) for v in writes + rows)


def simulate_step(cfg: LstmEngineConfig, q: ref.FixedLstm, x, h, c, hidden_name: str = "lstm"):
    """One bit-exact LSTM step on the engine: ``(h', c')`` and the step's :class:`~hwsim.unit.Stats`, with
    per-bank working-SRAM counts (:func:`step_bank_counts`) in ``detail['bank_reads'/'bank_writes']``."""
    zx = ref.wx_fixed(q, x, cfg)
    h2, c2 = ref.cell_fixed(zx, q.U, q.b, h, c, q.e_u, cfg)
    stats = predict_step(cfg, LstmWorkload(hidden_name, q.fmt, q.hidden, 1, q.order))
    reads, writes = step_bank_counts(cfg, q.fmt, q.order, q.hidden)
    return h2, c2, _with_banks(stats, reads, writes)


# ---------------------------------------------------------------------------------------------- whole models


def readout_stats(cfg: LstmEngineConfig, outputs: int, hidden: int) -> StageStats:
    """Timing of a dense readout ``outputs x hidden`` on the engine: one stage (R = outputs, K = hidden,
    Q = 1) with its weights in the hidden SRAM beside ``U`` and ``h`` read from the state SRAM."""
    return _stage_timing(cfg, "readout", outputs, hidden, 1)


def _readout_actions(cfg: LstmEngineConfig, st: StageStats) -> ActionCounts:
    # V in the hidden SRAM, h read from the state SRAM; the results are written into a working buffer, as
    # the step's hidden stage writes its own.
    acts = {(("hidden_sram" if c == "weight_sram" else "state_sram" if (c, a) == ("work_sram", "read") else c), a): v
            for (c, a), v in _stage_actions(cfg, st).items()}
    acts[("gate_add", "add")] = st.R  # + bias
    return ActionCounts(acts)


# ---------------------------------------------------------------------------------------------- unit protocol
@dataclass(frozen=True)
class ClassifierLayer:
    """One layer of a compiled LSTM classifier: ``lstm`` (the input layer's stage sequence, the hidden stage
    and the gate unit, ``steps`` time steps; in: int64 sequences ``(B, T, N)``, out: the last hidden state
    ``(B, H)``) or ``readout`` (kind ``linear``: one dense stage; in: ``h``, out: the logits)."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    fixed: object = field(compare=False, repr=False)
    """The :class:`hwsim.models.lstm_models.FixedClassifier` it belongs to."""
    model: object = field(compare=False, repr=False)
    """The float :class:`hwsim.models.lstm_models.LstmClassifier` (shapes, description)."""
    steps: int = 8


@dataclass(frozen=True)
class ReadoutOp:
    """The readout stage: ``outputs x hidden`` dense, weights in the hidden SRAM beside ``U``."""

    layer: str
    outputs: int
    hidden: int


class CompiledClassifier:
    """An LSTM classifier quantized for one engine, as the run loop (:mod:`hwsim.run`) drives it: two unit
    layers (``lstm``, ``readout``), no host layers."""

    def __init__(self, fixed, model, steps: int):
        self.fixed, self.model = fixed, model
        self.layers = (ClassifierLayer("lstm", "lstm", ("input",), fixed, model, steps),
                       ClassifierLayer("readout", "linear", ("lstm",), fixed, model, steps))

    def unit_layers(self) -> tuple[ClassifierLayer, ...]:
        return self.layers

    def quantize_input(self, x, rounding=None) -> np.ndarray:
        from hwsim.models import lstm_models as lm

        return lm.quantize_inputs(self.fixed, x)

    def run_int(self, x_int, cfg=None, layer_fn=None) -> np.ndarray:
        h = layer_fn(self.layers[0], [x_int])
        return np.asarray(layer_fn(self.layers[1], [np.asarray(h, dtype=np.int64)]), dtype=np.int64)


def compile_classifier(cfg: LstmEngineConfig, model, compress: str | None = None, calib=None, train_data=None):
    """Registry entry ``compile``: an LSTM classifier (an ``lstm`` layer then a ``linear`` readout,
    :mod:`hwsim.models.lstm_models`) quantized for ``cfg`` (:func:`hwsim.models.lstm_models.quantize`,
    calibrated on ``calib``, or the first 256 training images). ``compress`` must be None or
    ``int<data_bits>``: the number format is the engine config's. A dense input layer runs as a one-core
    TT-matrix (a single stage) on either decomposition; a TT/HT layer needs the engine of its decomposition.
    Returns ``(CompiledClassifier, label)``."""
    from hwsim.models import lstm_models as lm
    from hwsim.models import zoo

    fmt_name = f"int{cfg.data_bits}"
    if compress not in (None, fmt_name):
        raise HwsimError(f"--compress={compress!r} is not allowed on lstm-engine: expected {fmt_name} or no "
                         "--compress (the engine runs its config's data_bits fixed point)")
    m = lm.from_graph(model)
    if m.fmt is not None and m.fmt.kind != cfg.decomposition:
        raise HwsimError(f"decomposition={cfg.decomposition!r} is not allowed for model {model.name!r}: its input "
                         f"layer is {m.fmt.kind.upper()}, expected an lstm-engine-{m.fmt.kind}-* engine")
    H = m.hidden
    if (4 * H + m.V.shape[0]) * H * cfg.data_bytes > cfg.hidden_sram_bytes:
        raise HwsimError(f"hidden_sram_bytes={cfg.hidden_sram_bytes} is not allowed for {model.name}: expected >= "
                         f"{(4 * H + m.V.shape[0]) * H * cfg.data_bytes} bytes (U and the readout)")
    if calib is None:
        calib = zoo.load_digits_split()[0][:256]
    q = lm.quantize(m, cfg, calib[:256])
    steps = lm.quantize_inputs(q, calib[:1]).shape[1]
    return CompiledClassifier(q, m, steps), f"{fmt_name} fixed point ({m.describe()})"


def _input_format(m):
    H, N = m.hidden, m.W.shape[1]
    return m.fmt if m.fmt is not None else tf.TTMatrix((4 * H,), (N,), (tf.Factor("G1", ("m1", "n1"), m.W),))


@dataclass(frozen=True)
class WorkloadLayer:
    """A shape-only ``lstm`` layer: an :class:`LstmWorkload` (a study's UCF11 / Youtube input layer with random
    factors, a decomposed ``U`` or not, ``steps`` frames) as a unit layer of a :class:`WorkloadModel`, which
    :func:`lower` turns into that workload. Counts only: it has no values to run."""

    name: str
    workload: LstmWorkload
    kind: str = "lstm"
    inputs: tuple[str, ...] = ("input",)


class WorkloadModel:
    """LSTM workloads as a model the counts-only run loop drives (:func:`hwsim.run.predict_model`, then
    :func:`hwsim.run.price`): one :class:`WorkloadLayer` per workload, no host layers. Shapes only, so not for
    :func:`hwsim.run.run_model` (the unit's ``run`` refuses its layers)."""

    def __init__(self, *workloads: LstmWorkload):
        self.layers = tuple(WorkloadLayer(w.name, w) for w in workloads)

    def unit_layers(self) -> tuple[WorkloadLayer, ...]:
        return self.layers


def _no_values(layer: WorkloadLayer) -> HwsimError:
    return HwsimError(f"layer {layer.name!r} is not allowed on the value path: a WorkloadLayer has shapes only "
                      "(counts: hwsim.run.predict_model)")


def lower(cfg: LstmEngineConfig, layer) -> tuple:
    """Unit protocol: the ``lstm`` layer as one :class:`LstmWorkload` (its ``steps`` time steps), the
    ``readout`` as one :class:`ReadoutOp`; a :class:`WorkloadLayer` as its workload."""
    if isinstance(layer, WorkloadLayer):
        return (layer.workload,)
    if not isinstance(layer, ClassifierLayer):
        raise HwsimError(f"layer {getattr(layer, 'name', layer)!r} is not allowed on lstm-engine: expected a layer "
                         "of an LSTM classifier compiled for the engine (hwsim.lstm_engine.compile_classifier)")
    m = layer.model
    if layer.kind == "lstm":
        return (LstmWorkload("lstm", _input_format(m), m.hidden, layer.steps, layer.fixed.lstm.order),)
    return (ReadoutOp(layer.name, m.V.shape[0], m.hidden),)


def predict_classifier(cfg: LstmEngineConfig, m, steps: int = 8, order=None) -> tuple[Stats, Stats]:
    """Counts-only :class:`hwsim.unit.Stats` of one inference of the LSTM classifier ``m``
    (:class:`hwsim.models.lstm_models.LstmClassifier`, only its shapes matter) over ``steps`` time steps:
    the ``lstm`` layer and the ``readout`` stage."""
    return (predict(cfg, LstmWorkload("lstm", _input_format(m), m.hidden, steps, order)),
            predict(cfg, ReadoutOp("readout", m.V.shape[0], m.hidden)))


def run(cfg: LstmEngineConfig, layer, inputs) -> tuple[np.ndarray, Stats]:
    """Unit protocol, value path: the ``lstm`` layer step by step on the engine (per step the input
    layer's stage sequence, :func:`simulate_matvec`'s arithmetic, then the hidden stage and the gate unit),
    or the readout stage; counts do not depend on the data."""
    from hwsim.models import lstm_models as lm

    if isinstance(layer, WorkloadLayer):
        raise _no_values(layer)
    (op,) = lower(cfg, layer)
    q = layer.fixed
    if layer.kind == "lstm":
        fq, H = q.lstm, layer.model.hidden
        hs = []
        for seq in np.asarray(inputs[0], dtype=np.int64):
            h = np.zeros(H, dtype=np.int64)
            c = np.zeros(H, dtype=np.int64)
            for xt in seq:
                zx = tf.matvec_fixed(fq.fmt, xt, fq.shifts, data_bits=cfg.data_bits, acc_bits=cfg.acc_bits,
                                     overflow=cfg.overflow, rounding=cfg.rounding, order=fq.order)
                h, c = ref.cell_fixed(zx, fq.U, fq.b, h, c, fq.e_u, cfg)
            hs.append(h)
        values = np.stack(hs)
    else:
        values = lm.readout_fixed(q, inputs[0])
    return values, predict(cfg, op)


def reference(cfg: LstmEngineConfig, layer, inputs) -> np.ndarray:
    """Unit protocol: the layer through the engine's bit-exact reference
    (:func:`hwsim.models.lstm_engine.run_fixed`, :func:`hwsim.models.lstm_models.readout_fixed`)."""
    from hwsim.models import lstm_models as lm

    if isinstance(layer, WorkloadLayer):
        raise _no_values(layer)
    q = layer.fixed
    if layer.kind == "lstm":
        return np.stack([ref.run_fixed(q.lstm, seq, q.cfg)[-1] for seq in np.asarray(inputs[0], dtype=np.int64)])
    return lm.readout_fixed(q, inputs[0])


def describe_layer(cfg: LstmEngineConfig, layer, ops) -> tuple[str, str]:
    if isinstance(layer, WorkloadLayer):
        w = layer.workload
        H, N = w.hidden, w.fmt.shape[1]
        u = "dense U" if w.hidden_fmt is None else f"{w.hidden_fmt.kind.upper()} U"
        return f"T{w.steps} {4 * H}x{N}+{4 * H}x{H}", f"{w.fmt.kind.upper()} input layer, {u} (shapes only)"
    m = layer.model
    H, N = m.hidden, m.W.shape[1]
    if layer.kind == "lstm":
        return f"T{layer.steps} {4 * H}x{N}+{4 * H}x{H}", m.describe()
    return f"{m.V.shape[0]}x{H}", "dense"


# ---------------------------------------------------------------------------------------------- cost
def _register_classes() -> None:
    from hwsim.cost import (
        COMPONENT_CLASSES,
        HWSIM_ASSUMPTION,
        HWSIM_DERIVED,
        ComponentClass,
        CostEntry,
        register_component_class,
    )

    if "nonlinearity" in COMPONENT_CLASSES:
        return
    entries = [
        CostEntry("pwl.adders", 5.0, "x", HWSIM_ASSUMPTION, node_nm=45, voltage_v=0.9, bits=1, note=
                  "PLAN sigmoid/tanh unit = 5 adders of data_bits (|x|, 3 segment comparators, offset add) + "
                  "pwl.mux_levels levels of data_bits MUX2 (segment select, sign fold); no primary source"),
        CostEntry("pwl.mux_levels", 3.0, "x", HWSIM_ASSUMPTION, node_nm=45, voltage_v=0.9, bits=1, note=
                  "MUX2 levels of the PLAN unit (4-way segment select = 2, sign fold = 1)"),
        CostEntry("lut.bit", 1.0, "x", HWSIM_DERIVED, node_nm=45, voltage_v=0.9, bits=1, note=
                  "LUT of 2**lut_bits x data_bits built from flip-flops (register.bit entries): area per "
                  "bit = one DFF; a read costs data_bits register-bit energies plus lut_bits MUX2 levels"),
    ]

    def energy(m, a):
        mux = m.entry("mux2.energy").value
        if a["kind"] == "lut":
            return a["bits"] * (m.register_bit_energy_pj() + a["lut_bits"] * mux)
        return 5.0 * m.add_energy_pj(a["bits"]) + 3.0 * a["bits"] * mux

    def area(m, a):
        mux = m.entry("mux2.area").value
        if a["kind"] == "lut":
            entries = 1 << a["lut_bits"]
            return entries * a["bits"] * m.register_bit_area_um2() + a["bits"] * (entries - 1) * mux
        return 5.0 * m.add_area_um2(a["bits"]) + 3.0 * a["bits"] * mux

    register_component_class(ComponentClass(
        "nonlinearity", "sigmoid/tanh unit of `bits`: PLAN piecewise-linear (`kind` pwl) or a flip-flop LUT of "
        "2**`lut_bits` entries (`kind` lut)", ("kind", "bits", "lut_bits"), {"eval": ("operation", energy)}, area,
        defaults={"lut_bits": 8}), entries=entries, section="Component class nonlinearity (lstm-engine)")


_register_classes()


def inventory(cfg: LstmEngineConfig):
    """The priced components of ``cfg`` (named as in the cycle model's action counts)."""
    from hwsim.cost import Component, Inventory

    P, B, b = cfg.pes, cfg.banks, cfg.data_bits
    addr_bits = max(1, (cfg.work_words - 1).bit_length())
    nl = {"kind": cfg.nonlinearity, "bits": b, "lut_bits": cfg.lut_bits}
    packed = () if cfg.schedule == "rows" else (
        Component("pack_operand", "mux", {"inputs": max(2, B), "bits": b}, P,
                  "packed schedule: each lane picks its column's intermediate element from the banks"),
        Component("pack_weight", "mux", {"inputs": max(2, P), "bits": b}, P,
                  "packed schedule: each lane picks entry (lane mod R) of the weight word (static per stage)"),
        Component("pack_addr", "adder", {"bits": addr_bits}, max(1, P - 1),
                  "packed schedule: the further columns' read addresses (one offset add each)"),
    )
    return Inventory(cfg.describe(), (
        Component("pe_mult", "multiplier", {"a_bits": b, "b_bits": b, "gating": cfg.gating}, P,
                  {"none": "idle lanes (a partial row tile's padding) priced as multiplies: nothing is gated",
                   "operand": "operand isolation: an idle lane's multiplier inputs are forced to zero (one gate)",
                   "clock": "operand isolation of idle lanes (one gate)"}[cfg.gating]),
        Component("pe_acc", "adder", {"bits": cfg.acc_bits}, P),
        Component("pe_acc_reg", "register", {"bits": cfg.acc_bits, "clock_gate": cfg.gating == "clock"}, P,
                  "clock-gated while the lane is idle" if cfg.gating == "clock" else ""),
        Component("weight_sram", "sram", {"bytes": cfg.weight_sram_bytes, "word_bits": P * b}, 1,
                  f"one {P}-entry word per MAC cycle"),
        Component("hidden_sram", "sram", {"bytes": cfg.hidden_sram_bytes, "word_bits": P * b}, 1,
                  "dense hidden-to-hidden matrix, one word per MAC cycle of the hidden stage"),
        Component("work_sram", "sram", {"bytes": max(1, cfg.work_sram_bytes // B), "word_bits": b}, 2 * B,
                  f"2 ping-pong buffers x {B} banks; priced per bank"),
        Component("state_sram", "sram", {"bytes": max(16, 6 * 1024 * cfg.data_bytes), "word_bits": b}, 1,
                  "h, c and the 4H biases (sized for H <= 1024); h is the hidden stage's input"),
        Component("dram", "dram", {}),
        Component("requant", "requantizer", {"acc_bits": cfg.acc_bits, "out_bits": b}, P),
        Component("addr_gen", "adder", {"bits": addr_bits}, 4,
                  "mixed-radix read/write address adders of the stage engine (2) and the gate gather (2)"),
        Component("gate_add", "adder", {"bits": b}, 2, "zx + zh + b"),
        Component("sigmoid", "nonlinearity", nl, 3),
        Component("tanh", "nonlinearity", nl, 2),
        Component("cell_mult", "multiplier", {"a_bits": b, "b_bits": b}, 3, "f*c, i*g, o*tanh(c)"),
        Component("cell_add", "adder", {"bits": 2 * b + 1}, 1),
        Component("controller", "controller", {"ge": 5000}, 1, "descriptor sequencer + counters, rough 5k GE"),
    ) + packed)


FAMILY = Family(
    name="lstm-engine",
    config_cls=LstmEngineConfig,
    description="tensor-decomposed LSTM engine: TT (TIE-style) / HT (FDHT-style) stage contractions, PWL/LUT gates",
    presets=("lstm-engine-tt-16", "lstm-engine-ht-16", "lstm-engine-tt-16-int8"),
    preset_pattern="lstm-engine-tt|ht-PES[-int8|-int16]",
    parse_preset=parse_preset,
    workload_kinds=("lstm", "linear"),  # linear: the dense readout of an LSTM classifier
    reference="hwsim.models.lstm_engine",
    cycle_model="hwsim.lstm_engine",
    inventory=inventory,
    lower=lower,
    predict=predict,
    run=run,
    run_reference=reference,
    describe_layer=describe_layer,
    compile=compile_classifier,
    rtl="hwsim.rtl.lstm_step:generate_verilog",
    rtl_check=check_rtl,
    cosim="hwsim.cosim.lstm_engine_regression:run_regression",
    cosim_run="hwsim.cosim.lstm_engine_model:cosim_run",
    synth_groups=(
        ("stage engine: PE lanes, requantizers, address generator, controller", ("stage",),
         ("pe_mult", "pe_acc", "pe_acc_reg", "requant", "addr_gen", "controller")),
        ("gate unit: adders, cell products and requantizers", ("gate_unit",), ("gate_add", "cell_mult", "cell_add")),
        ("sigmoid/tanh units", ("nl0", "nl1", "nl2", "nl3", "nl_c"), ("sigmoid", "tanh")),
        ("step sequencer and gather (top-level logic)", ("top",), ()),
    ),
    studies=(("tt-vs-ht", "hwsim.lstm_engine_study:run",
              "TT (TIE-style) vs HT (FDHT-style) engines of equal PE count on UCF11 and Youtube"),),
    cli_options=model_cosim_options("co-simulate a whole LSTM classifier of the zoo (e.g. digits-tt-lstm: its "
                                    "LSTM layer's steps and its readout on the engine's RTL) instead of random runs",
                                    "compression spec (default and only choice: int<data_bits>, the engine's "
                                    "fixed point)"),
)
