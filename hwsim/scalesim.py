"""SCALE-Sim import and SCALE-Sim's cycle conventions, beside hwsim's own.

SCALE-Sim (v2 and 3.0.0) and hwsim both model a systolic array, but they count differently. This module
reads SCALE-Sim's ``.cfg`` and topology ``.csv`` files as they are (the topology reader is
:func:`hwsim.workloads.read_scalesim_topology`, beside the layers it yields) and reports, per layer:

* SCALE-Sim's view: its conv-to-GEMM lowering (no padding, output size rounded *up*), its spatio-temporal
  mapping per dataflow, its fold count and its per-fold compute cycles, and the "Total Cycles" number its
  ``COMPUTE_REPORT.csv`` prints for a run without stalls;
* hwsim's view: the real layer (padding as in the network by default) run through hwsim's cycle-level MAC
  array model (:func:`hwsim.mac_array.predict_gemm`, the count its RTL matches), with DRAM stalls;
* hwsim's model on SCALE-Sim's lowering, so the two sources of difference (lowering and timing) separate.

SCALE-Sim's compute cycles (no stalls), from ``scalesim/compute/systolic_compute_{os,ws,is}.py``: with an
``R x C`` array and a layer lowered to ``M`` output pixels, ``N`` filters and window ``K``,

====  ======  ======  =====  ==========================
df    S_r     S_c     T      cycles per fold
====  ======  ======  =====  ==========================
os    M       N       K      ``T + R + C - 2``
ws    K       N       M      ``2R + C + T - 2``
is    K       M       N      ``2R + C + T - 2``
====  ======  ======  =====  ==========================

and ``ceil(S_r / R) * ceil(S_c / C)`` folds, run back to back (each fold drains before the next starts).
The report's "Total Cycles" is the index of the last cycle, ``folds * per_fold - 1``, plus stall cycles.
See ``docs/frontends.md`` for every difference between the two conventions.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, field

from hwsim.errors import HwsimError
from hwsim.workloads import ScaleSimLayer, read_scalesim_topology, read_text_file

__all__ = [
    "ScaleSimConfig",
    "ScaleSimLayer",
    "ScaleSimComparison",
    "LayerComparison",
    "scalesim_compute",
    "read_scalesim_config",
    "read_scalesim_topology",
    "compare_with_scalesim",
    "format_comparison",
    "scalesim_memory",
    "scalesim_memory_params",
    "ScaleSimMemory",
    "ScaleSimMemoryParams",
    "CONVENTIONS",
]

_DATAFLOWS = ("os", "ws", "is")
#: ``convention`` values of :func:`compare_with_scalesim` (``--convention``)
CONVENTIONS = ("both", "scalesim")


# ------------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class ScaleSimConfig:
    """The fields of a SCALE-Sim ``.cfg`` that decide cycles.

    Parameters
    ----------
    path : str
        The file read.
    run_name : str
        ``[general] run_name``.
    rows, cols : int
        ``ArrayHeight`` and ``ArrayWidth`` (PEs).
    ifmap_sram_kb, filter_sram_kb, ofmap_sram_kb : int
        SRAM sizes in KiB of SCALE-Sim words (one byte each).
    dataflow : {"os", "ws", "is"}
        ``Dataflow``.
    bandwidth : float
        ``Bandwidth``, SCALE-Sim words (bytes) per cycle.
    """

    path: str
    run_name: str
    rows: int
    cols: int
    ifmap_sram_kb: int
    filter_sram_kb: int
    ofmap_sram_kb: int
    dataflow: str
    bandwidth: float
    #: SCALE-Sim 3 keys its memory system reads (as written in the file, or None when absent); checked only
    #: by ``convention="scalesim"`` (:func:`scalesim_memory_params`).
    ifmap_bank_bandwidth: str | None = None    # [layout] IfmapSRAMBankBandwidth: IFMAP words/cycle from DRAM
    filter_bank_bandwidth: str | None = None   # [layout] FilterSRAMBankBandwidth: filter words/cycle from DRAM
    interface_bandwidth: str | None = None     # [run_presets] InterfaceBandwidth (USER or CALC)
    use_ramulator_trace: str | None = None     # [run_presets] UseRamulatorTrace
    ifmap_custom_layout: str | None = None     # [layout] IfmapCustomLayout
    filter_custom_layout: str | None = None    # [layout] FilterCustomLayout
    sparsity_support: str | None = None        # [sparsity] SparsitySupport

    def mac_array_config(self, **overrides):
        """The :class:`~hwsim.config.MacArrayConfig` of the same array: int8 words, SRAM bytes = KiB * 1024,
        DRAM bytes per cycle = ``Bandwidth``; ``overrides`` replace any field."""
        from hwsim.config import MacArrayConfig

        fields = {"rows": self.rows, "cols": self.cols, "input_sram_bytes": self.ifmap_sram_kb * 1024,
                  "weight_sram_bytes": self.filter_sram_kb * 1024, "output_sram_bytes": self.ofmap_sram_kb * 1024,
                  "dataflow": self.dataflow, "dram_bytes_per_cycle": float(self.bandwidth)}
        fields.update(overrides)
        try:
            return MacArrayConfig(**fields)
        except HwsimError as e:
            raise HwsimError(f"{self.path}: {e}") from None


#: (section, key) -> ScaleSimConfig field of the SCALE-Sim 3 memory-system keys, kept as text.
_MEMORY_KEYS = {("layout", "IfmapSRAMBankBandwidth"): "ifmap_bank_bandwidth",
                ("layout", "FilterSRAMBankBandwidth"): "filter_bank_bandwidth",
                ("run_presets", "InterfaceBandwidth"): "interface_bandwidth",
                ("run_presets", "UseRamulatorTrace"): "use_ramulator_trace",
                ("layout", "IfmapCustomLayout"): "ifmap_custom_layout",
                ("layout", "FilterCustomLayout"): "filter_custom_layout",
                ("sparsity", "SparsitySupport"): "sparsity_support"}

_CFG_KEYS = {"ArrayHeight": ("rows", int), "ArrayWidth": ("cols", int), "IfmapSramSzkB": ("ifmap_sram_kb", int),
             "FilterSramSzkB": ("filter_sram_kb", int), "OfmapSramSzkB": ("ofmap_sram_kb", int),
             "Dataflow": ("dataflow", str), "Bandwidth": ("bandwidth", float)}


def read_scalesim_config(path) -> ScaleSimConfig:
    """Read a SCALE-Sim ``.cfg`` (INI with ``key : value`` lines, e.g. ``google.cfg``).

    Only ``[general] run_name`` and the ``[architecture_presets]`` keys ``ArrayHeight``, ``ArrayWidth``,
    ``IfmapSramSzkB``, ``FilterSramSzkB``, ``OfmapSramSzkB``, ``Dataflow`` and ``Bandwidth`` are used; the
    other sections (layout, sparsity, run presets) are read past.

    Raises
    ------
    HwsimError
        ``<path>:<line>: ...`` for a malformed line or value, ``<path>: ...`` for a missing section or key.
    """
    p, text = read_text_file(path, "--scalesim-config")
    section = None
    found: dict[str, tuple[object, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    memory: dict[str, str] = {}
    run_name = p.stem
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip() if not raw.lstrip().startswith(("#", ";")) else ""
        if not line:
            continue
        m = re.fullmatch(r"\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
            continue
        m = re.fullmatch(r"([^:=]+?)\s*[:=]\s*(.*)", line)
        if m is None:
            raise HwsimError(f"{p}:{lineno}: {line!r} is not allowed: expected '[section]' or 'key : value'")
        key, value = m.group(1).strip(), m.group(2).strip()
        if section is None:
            raise HwsimError(f"{p}:{lineno}: {key!r} is not allowed before a [section] header")
        if (section, key) in seen:
            raise HwsimError(f"{p}:{lineno}: [{section}] {key}={value!r} is not allowed: the key is already set on "
                             f"line {seen[section, key]}; expected each key once")
        seen[section, key] = lineno
        if section == "general" and key == "run_name":
            run_name = value
        elif (section, key) in _MEMORY_KEYS:
            memory[_MEMORY_KEYS[section, key]] = value
        elif section == "architecture_presets" and key in _CFG_KEYS:
            name, typ = _CFG_KEYS[key]
            try:
                v = typ(value)
            except ValueError:
                what = {int: "an integer", float: "a number"}[typ]
                raise HwsimError(f"{p}:{lineno}: {key}={value!r} is not allowed: expected {what}") from None
            if typ is str:
                v = v.lower()
                if v not in _DATAFLOWS:
                    raise HwsimError(f"{p}:{lineno}: {key}={value!r} is not allowed: expected one of os, ws, is")
            elif not (v > 0 and math.isfinite(v)):
                raise HwsimError(f"{p}:{lineno}: {key}={value!r} is not allowed: expected a finite number > 0")
            found[name] = v
    missing = [k for k, (name, _) in _CFG_KEYS.items() if name not in found]
    if missing:
        raise HwsimError(f"{p}: [architecture_presets] without {', '.join(missing)} is not allowed: "
                         "expected every one of " + ", ".join(_CFG_KEYS))
    return ScaleSimConfig(path=str(p), run_name=run_name, **found, **memory)


# ------------------------------------------------------------------------------------------ conventions
@dataclass(frozen=True)
class ScaleSimCompute:
    """SCALE-Sim's stall-free compute timing of one ``M x N x K`` layer on an ``R x C`` array.

    ``sr, sc, t`` are its spatial rows, spatial columns and temporal dimension; ``folds`` is
    ``ceil(sr/R) * ceil(sc/C)``; ``cycles`` = ``folds * per_fold`` (cycles, a count);
    ``report_cycles`` = ``cycles - 1``, the "Total Cycles" SCALE-Sim prints when there are no stalls.
    """

    sr: int
    sc: int
    t: int
    folds: int
    per_fold: int
    cycles: int

    @property
    def report_cycles(self) -> int:
        return self.cycles - 1


def scalesim_compute(dataflow: str, rows: int, cols: int, m: int, n: int, k: int) -> ScaleSimCompute:
    """SCALE-Sim's compute cycles of one layer (``M`` ofmap pixels, ``N`` filters, window ``K``).

    Closed form of the demand matrices of SCALE-Sim's ``systolic_compute_{os,ws,is}``: see the module
    docstring. Units: cycles.
    """
    if dataflow not in _DATAFLOWS:
        raise HwsimError(f"dataflow={dataflow!r} is not allowed: expected one of {', '.join(_DATAFLOWS)}")
    sr, sc, t = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    per = t + rows + cols - 2 if dataflow == "os" else 2 * rows + cols + t - 2
    folds = math.ceil(sr / rows) * math.ceil(sc / cols)
    return ScaleSimCompute(sr, sc, t, folds, per, folds * per)


# ------------------------------------------------------------------------- SCALE-Sim 3's memory system
@dataclass(frozen=True)
class ScaleSimMemoryParams:
    """What SCALE-Sim 3's double-buffered scratchpad (``memory/double_buffered_scratchpad_mem.py``) needs.

    Sizes are SRAM words (one byte each, SCALE-Sim's ``word_size = 1``); bandwidths are words per cycle:
    IFMAP and filter fills run at the ``[layout]`` bank bandwidths (SCALE-Sim 3 in ``InterfaceBandwidth :
    USER`` mode), the OFMAP drain at ``Bandwidth``.
    """

    ifmap_words: int
    filter_words: int
    ofmap_words: int
    ifmap_bw: int
    filter_bw: int
    ofmap_bw: int


def scalesim_memory_params(cfg: ScaleSimConfig) -> ScaleSimMemoryParams:
    """The memory-system parameters of a SCALE-Sim 3 ``.cfg``, or one line naming what SCALE-Sim-convention
    totals cannot reproduce (CALC bandwidth, Ramulator traces, custom layouts, sparsity, a non-integer
    ``Bandwidth``: SCALE-Sim 3 itself reads it with ``int()``)."""
    def need(field_name, section, key):
        v = getattr(cfg, field_name)
        if v is None:
            raise HwsimError(f"{cfg.path}: [{section}] without {key} is not allowed with --convention scalesim: "
                             f"expected {key} (SCALE-Sim 3 reads it)")
        return v

    def words_per_cycle(field_name, key):
        v = need(field_name, "layout", key)
        if not re.fullmatch(r"\s*\d+\s*", v) or int(v) < 1:
            raise HwsimError(f"{cfg.path}: [layout] {key}={v!r} is not allowed: expected an integer >= 1")
        return int(v)

    mode = need("interface_bandwidth", "run_presets", "InterfaceBandwidth")
    if mode != "USER":
        raise HwsimError(f"{cfg.path}: [run_presets] InterfaceBandwidth={mode!r} is not allowed with --convention "
                         "scalesim: expected USER (CALC mode runs another read buffer, read_buffer_estimate_bw, "
                         "which is not reproduced)")
    for field_name, section, key in (("use_ramulator_trace", "run_presets", "UseRamulatorTrace"),
                                     ("ifmap_custom_layout", "layout", "IfmapCustomLayout"),
                                     ("filter_custom_layout", "layout", "FilterCustomLayout"),
                                     ("sparsity_support", "sparsity", "SparsitySupport")):
        v = getattr(cfg, field_name)
        if v is not None and v.strip().lower() not in ("false", "0", "no", "off"):
            raise HwsimError(f"{cfg.path}: [{section}] {key}={v!r} is not allowed with --convention scalesim: "
                             "expected False (only SCALE-Sim's default memory system is reproduced)")
    if cfg.bandwidth != int(cfg.bandwidth):
        raise HwsimError(f"{cfg.path}: Bandwidth={cfg.bandwidth!r} is not allowed with --convention scalesim: "
                         "expected an integer (SCALE-Sim 3 reads it with int())")
    return ScaleSimMemoryParams(
        ifmap_words=cfg.ifmap_sram_kb * 1024, filter_words=cfg.filter_sram_kb * 1024,
        ofmap_words=cfg.ofmap_sram_kb * 1024,
        ifmap_bw=words_per_cycle("ifmap_bank_bandwidth", "IfmapSRAMBankBandwidth"),
        filter_bw=words_per_cycle("filter_bank_bandwidth", "FilterSRAMBankBandwidth"),
        ofmap_bw=int(cfg.bandwidth))


@dataclass(frozen=True)
class ScaleSimMemory:
    """SCALE-Sim 3's report of one layer, reproduced (cycles; DRAM accesses in words).

    ``total_cycles``, ``stall_cycles`` and ``total_incl_prefetch`` are the COMPUTE_REPORT columns "Total
    Cycles", "Stall Cycles" and "Total Cycles (incl. prefetch)"; the ``*_dram_*`` fields are the
    DETAILED_ACCESS_REPORT's DRAM columns (start/stop cycles, reads/writes). ``ofmap_drains`` counts the
    OFMAP drains issued while computing (not the final flush).
    """

    compute_cycles: int
    stall_cycles: int
    total_cycles: int
    total_incl_prefetch: int
    ifmap_dram_start: int
    ifmap_dram_reads: int
    filter_dram_start: int
    filter_dram_reads: int
    ofmap_dram_start: int
    ofmap_dram_stop: int
    ofmap_dram_writes: int
    ofmap_drains: int


def _read_buffer(name: str, valid: int, padded: int, words: int, bw: int) -> tuple[int, int]:
    """SCALE-Sim 3's ``read_buffer`` before the first demand: the lines its ``prefetch_active_buffer`` fetches
    (one ``bw``-word line per cycle, ending the cycle before the array starts) -> (DRAM start cycle, reads).

    Only a buffer whose active half holds the whole operand is reproduced: its hashed buffer (sets of
    ``ceil(words / 100)`` operand words, duplicates counted) then fits the active sets, every demand hits,
    and no later prefetch or stall happens. ``valid``: operand words (the im2col matrix, duplicates
    included); ``padded``: words of the prefetch matrix with SCALE-Sim's -1 fill of partial folds.
    """
    active = math.ceil(words * 0.5)
    per_set = math.ceil(words / 100)
    if valid // per_set + 1 > math.ceil(active / per_set):
        raise HwsimError(
            f"{name} operand of {valid:,} words is not allowed with --convention scalesim: expected at most "
            f"{math.ceil(active / per_set) * per_set - 1:,} (the active half of the {words // 1024} KiB SRAM; "
            "SCALE-Sim's refetch-on-miss timing for a larger operand is not reproduced)")
    lines = min(math.ceil(active / bw), math.ceil(padded / bw))
    return -lines, lines * bw


class _OfmapStream:
    """Where SCALE-Sim's OFMAP demand matrix puts its valid words, fold by fold (closed form per fold).

    Each fold has ``L`` rows: ``P`` empty rows, then rows ``p`` in ``[b0, B)`` of ``cu`` outputs each,
    skewed (column ``j`` one row later per ``j``), so word ``(p, j)`` is written in fold row ``P + p + j``.
    Folds run column fold outer, row fold inner, as ``systolic_compute_{os,ws,is}`` builds them.
    """

    def __init__(self, P: int, B: int, L: int, b0s: list[int], cus: list[int]):
        import numpy as np

        self.np, self.P, self.B, self.L = np, P, B, L
        self.shape = [(b0, cu) for cu in cus for b0 in b0s]
        counts = np.array([(B - b0) * cu for b0, cu in self.shape], dtype=np.int64)
        self.cum_fold = np.concatenate(([0], np.cumsum(counts)))
        self.total = int(self.cum_fold[-1])
        self.rows = L * len(self.shape)
        self._cum_rows: dict[tuple[int, int], object] = {}

    def _rows_of(self, b0: int, cu: int):
        """Valid words in fold rows < x, for x = 0..L."""
        key = (b0, cu)
        if key not in self._cum_rows:
            np = self.np
            y = np.arange(self.L, dtype=np.int64) - self.P
            per_row = np.maximum(0, np.minimum(self.B - 1, y) - np.maximum(b0, y - cu + 1) + 1)
            self._cum_rows[key] = np.concatenate(([0], np.cumsum(per_row)))
        return self._cum_rows[key]

    def words_before_row(self, r: int) -> int:
        if r >= self.rows:
            return self.total
        f, x = divmod(max(r, 0), self.L)
        return int(self.cum_fold[f]) + int(self._rows_of(*self.shape[f])[x])

    def row_of(self, k: int) -> int:
        """Row of the ``k``-th valid word (1-based)."""
        np = self.np
        f = int(np.searchsorted(self.cum_fold, k, side="left")) - 1
        cr = self._rows_of(*self.shape[f])
        return f * self.L + int(np.searchsorted(cr, k - int(self.cum_fold[f]), side="left")) - 1


def scalesim_memory(dataflow: str, rows: int, cols: int, m: int, n: int, k: int,
                    params: ScaleSimMemoryParams) -> ScaleSimMemory:
    """SCALE-Sim 3.0.0's totals of one layer with its memory system, in closed form.

    Reproduces ``double_buffered_scratchpad.service_memory_requests`` (USER bandwidth, no Ramulator, no
    custom layout, no sparsity) without walking its demand matrices:

    * IFMAP and filter ``read_buffer``: before cycle 0 the active half (``ceil(words / 2)``) is filled from
      the prefetch matrix at the ``[layout]`` bank bandwidth, one line per cycle (the lines end at cycle -1);
      with the operand inside the active half every demand hits and costs no stall (see
      :func:`_read_buffer` for the limit).
    * OFMAP ``write_buffer``: every output word the demand matrix writes (ws/is: once per row fold) takes a
      free word; when fewer than ``ceil(words / 2)`` are free and no drain is running, a drain of
      ``ceil(drain_words / Bandwidth)`` lines starts at that cycle (one line per cycle; its words count as
      free at once); a write that finds no free word while a drain runs stalls the array until the drain
      ends. After the last row the rest drains back to back.
    * "Total Cycles" = last demand row + stalls; "Total Cycles (incl. prefetch)" = last OFMAP drain cycle -
      first prefetch cycle.

    The event loop runs once per drain (or stall), not per cycle or word.
    """
    if dataflow not in _DATAFLOWS:
        raise HwsimError(f"dataflow={dataflow!r} is not allowed: expected one of {', '.join(_DATAFLOWS)}")
    R, C = rows, cols
    sr, sc, t = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    n_fr, n_fc = math.ceil(sr / R), math.ceil(sc / C)
    cus = [min(C, sc - i * C) for i in range(n_fc)]
    if dataflow == "os":
        P, B, L = t - 1, R, t + R + C - 2
        b0s = [R - min(R, sr - i * R) for i in range(n_fr)]
        if_padded, f_padded = n_fr * k * R, n_fc * k * C
    else:
        P, B, L = 2 * R - 1, t, 2 * R + C + t - 2
        b0s = [0] * n_fr
        if_padded, f_padded = ((n_fr * m * R, n_fc * k * C) if dataflow == "ws" else (n_fc * k * C, n_fr * n * R))
    if_start, if_reads = _read_buffer("IFMAP", m * k, if_padded, params.ifmap_words, params.ifmap_bw)
    f_start, f_reads = _read_buffer("filter", k * n, f_padded, params.filter_words, params.filter_bw)

    out = _OfmapStream(P, B, L, b0s, cus)
    S, bw = params.ofmap_words, params.ofmap_bw
    A = math.ceil(S * 0.5)                       # active half; a drain starts when fewer words are free
    drain_lines = math.ceil((S - A) / bw)
    segs: list[tuple[int, int, int]] = []        # trace lines cut at each drain: (first line, lines, last line's words)
    lines_total = start_line = forced = 0
    credited = stall = done = drains = writes = 0
    busy_until = 0                               # cycle the running drain ends
    first_drain = last_drain = None

    def cut(upto: int) -> None:                  # SCALE-Sim's append_to_trace_mat(force=True)
        nonlocal lines_total, forced
        w = upto - forced
        if w > 0:
            nl = math.ceil(w / bw)
            segs.append((lines_total, nl, w - (nl - 1) * bw))
            lines_total += nl
        forced = upto

    def drain(cycle: int) -> int:                # empty_drain_buf: one chunk of lines, returns its last cycle
        nonlocal start_line, credited, writes
        nl = min(drain_lines, lines_total - start_line)
        last = start_line + nl - 1
        first, cnt, last_words = next(sg for sg in reversed(segs) if sg[0] <= last)
        words = nl * bw - (bw - (last_words if last == first + cnt - 1 else bw))
        credited += words
        writes += words
        start_line += nl
        return cycle + nl - 1

    while True:
        k_free = max(done + 1, S + credited - A + 1)   # first word after which fewer than A are free
        if k_free > out.total:
            break
        k_idle = max(done + 1, out.words_before_row(busy_until - stall) + 1)  # first word at/after the drain end
        kk = k_free
        if k_free < k_idle:
            k_full = S + credited                      # this word takes the last free one
            if k_full < k_idle and k_full <= out.total:
                stall += busy_until - (out.row_of(k_full) + stall)
                done = k_full
                continue
            kk = k_idle
        if kk > out.total:
            break
        cycle = out.row_of(kk) + stall
        cut(kk)
        end = drain(cycle)
        first_drain = cycle if first_drain is None else first_drain
        last_drain = max(end, last_drain if last_drain is not None else end)
        busy_until, done = end, kk
        drains += 1
    last_row = out.rows - 1 + stall
    cut(out.total)
    cycle = last_row
    while start_line < lines_total:                    # empty_all_buffers: the rest, back to back
        end = drain(cycle)
        first_drain = cycle if first_drain is None else first_drain
        last_drain = max(end, last_drain if last_drain is not None else end)
        cycle = end + 1
    return ScaleSimMemory(
        compute_cycles=out.rows, stall_cycles=stall, total_cycles=last_row,
        total_incl_prefetch=last_drain - min(if_start, f_start), ifmap_dram_start=if_start,
        ifmap_dram_reads=if_reads, filter_dram_start=f_start, filter_dram_reads=f_reads,
        ofmap_dram_start=first_drain, ofmap_dram_stop=last_drain, ofmap_dram_writes=writes, ofmap_drains=drains)


@dataclass
class LayerComparison:
    """One topology row under both conventions (cycles; MACs counted as each side lowers the layer).

    ``scalesim_*`` follow SCALE-Sim (summed over the ``repeats`` per-channel layers of a ``DP`` row);
    ``scalesim_report_cycles`` is what its COMPUTE_REPORT prints as "Total Cycles" with no stalls.
    ``hwsim_*`` are hwsim's cycle model on the real layer (``hwsim_gemm`` per group), stalls included;
    ``hwsim_on_scalesim_gemm_cycles`` is hwsim's model on SCALE-Sim's unpadded GEMM.
    """

    name: str
    scalesim_mnk: tuple[int, int, int]
    repeats: int
    scalesim_folds: int
    scalesim_per_fold: int
    scalesim_cycles: int
    scalesim_report_cycles: int
    scalesim_macs: int
    hwsim_gemm: tuple[int, int, int]
    hwsim_groups: int
    hwsim_folds: int
    hwsim_cycles: int
    hwsim_stall_cycles: int
    hwsim_macs: int
    hwsim_on_scalesim_gemm_cycles: int
    #: SCALE-Sim 3's memory-system report of one of the ``repeats`` layers (``convention="scalesim"`` only)
    scalesim_memory: ScaleSimMemory | None = None

    @property
    def scalesim_total_cycles(self) -> int | None:
        """SCALE-Sim 3's "Total Cycles" (stalls included), summed over the row's ``repeats`` layers."""
        return None if self.scalesim_memory is None else self.scalesim_memory.total_cycles * self.repeats


@dataclass
class ScaleSimComparison:
    """A whole topology under both conventions; see :func:`compare_with_scalesim`."""

    config: ScaleSimConfig
    topology: str
    dataflow: str
    padding: str
    hwsim_config: dict
    layers: list[LayerComparison] = field(default_factory=list)
    wall_seconds: float = 0.0
    convention: str = "both"
    memory: object = None  # hwsim.memory.MemoryPlan of the real layers (raw tensors, global buffer, DRAM timing)

    @property
    def scalesim_cycles(self) -> int:
        return sum(r.scalesim_cycles for r in self.layers)

    @property
    def hwsim_cycles(self) -> int:
        return sum(r.hwsim_cycles for r in self.layers)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["scalesim_cycles"], d["hwsim_cycles"] = self.scalesim_cycles, self.hwsim_cycles
        for row, lc in zip(d["layers"], self.layers, strict=True):
            row["scalesim_total_cycles"] = lc.scalesim_total_cycles
        if self.memory is not None:
            d["memory"]["dram_bytes"] = self.memory.dram_bytes
            d["memory"]["compulsory_bytes"] = self.memory.compulsory_bytes
            d["memory"]["ratio"] = self.memory.ratio
        return d


def compare_with_scalesim(config, topology, dataflow: str | None = None, padding: str = "same",
                          buffer_kib: float | None = None, dram: str = "lpddr4", layout: str = "nhwc",
                          convention: str = "both", **overrides) -> ScaleSimComparison:
    """Every layer of a SCALE-Sim topology under SCALE-Sim's conventions and under hwsim's.

    Parameters
    ----------
    config : str, os.PathLike or ScaleSimConfig
        SCALE-Sim ``.cfg``.
    topology : str or os.PathLike
        SCALE-Sim topology ``.csv`` (conv or GEMM rows).
    dataflow : {"os", "ws", "is"}, optional
        Overrides the config's ``Dataflow``.
    padding : {"same", "none"}
        Padding of the layers hwsim runs (``"same"``: as in the real network; ``"none"``: as SCALE-Sim).
    buffer_kib, dram, layout
        The memory system of :func:`hwsim.memory.plan` on the real layers: a global buffer of ``buffer_kib``
        KiB (default the .cfg's three SRAMs together), DRAM timing of ``dram`` (a part of
        :data:`hwsim.dram.DRAM_SPECS`, a parameter file, or ``fixed``: the .cfg's ``Bandwidth``), raw
        tensors in ``layout``.
    convention : {"both", "scalesim"}
        ``"scalesim"`` also reproduces SCALE-Sim 3's memory system per layer (:func:`scalesim_memory`: its
        "Total Cycles" with stalls and "Total Cycles (incl. prefetch)"); the .cfg then needs SCALE-Sim 3's
        ``[layout]`` and ``[run_presets]`` keys (:func:`scalesim_memory_params`).
    **overrides
        Fields of the hwsim :class:`~hwsim.config.MacArrayConfig` (e.g. ``act_bits``).
    """
    from hwsim import memory
    from hwsim.dram import resolve_dram_spec
    from hwsim.mac_array import predict_gemm

    if padding not in ("same", "none"):
        raise HwsimError(f"padding={padding!r} is not allowed: expected one of same, none")
    if convention not in CONVENTIONS:
        raise HwsimError(f"--convention={convention!r} is not allowed: expected one of {', '.join(CONVENTIONS)}")
    if layout not in memory.LAYOUTS:
        raise HwsimError(f"--layout={layout!r} is not allowed: expected one of {', '.join(memory.LAYOUTS)}")
    if buffer_kib is not None and (isinstance(buffer_kib, bool) or not isinstance(buffer_kib, int | float)
                                   or not 0 < buffer_kib < 1 << 30):
        raise HwsimError(f"--buffer-kib={buffer_kib!r} is not allowed: expected a size in KiB > 0")
    spec = resolve_dram_spec(dram)
    t0 = time.perf_counter()
    scfg = config if isinstance(config, ScaleSimConfig) else read_scalesim_config(config)
    df = (dataflow or scfg.dataflow).lower()
    if df not in _DATAFLOWS:
        raise HwsimError(f"--dataflow={dataflow!r} is not allowed: expected one of {', '.join(_DATAFLOWS)}")
    cfg = scfg.mac_array_config(dataflow=df, **overrides)
    mparams = scalesim_memory_params(scfg) if convention == "scalesim" else None
    rows = read_scalesim_topology(topology)
    out = ScaleSimComparison(config=scfg, topology=str(topology), dataflow=df, padding=padding,
                             hwsim_config=cfg.to_dict(), convention=convention)
    tensors = []
    for row in rows:
        m, n, k = row.mnk
        sc = scalesim_compute(df, cfg.rows, cfg.cols, m, n, k)
        ssm = None
        if mparams is not None:
            try:
                ssm = scalesim_memory(df, cfg.rows, cfg.cols, m, n, k, mparams)
            except HwsimError as e:
                raise HwsimError(f"{topology}:{row.line}: layer {row.name}: {e}") from None
        try:
            layer = row.hwsim_layer(padding)
        except HwsimError as e:
            raise HwsimError(f"{topology}:{row.line}: {e}") from None
        gm, gk, gn = layer.gemm_shape
        tensors.append(memory.LayerTensors.of_workload(layer, cfg.weight_bits, cfg.act_bits, cfg.out_bits))
        st = predict_gemm(cfg, gm, gk, gn, name=row.name, groups=layer.groups)
        on_ss = predict_gemm(cfg, m, k, n, name=row.name, groups=row.repeats)
        out.layers.append(LayerComparison(
            name=row.name, scalesim_mnk=(m, n, k), repeats=row.repeats, scalesim_folds=sc.folds * row.repeats,
            scalesim_per_fold=sc.per_fold, scalesim_cycles=sc.cycles * row.repeats,
            scalesim_report_cycles=(sc.cycles - 1) * row.repeats, scalesim_macs=m * n * k * row.repeats,
            hwsim_gemm=(gm, gk, gn), hwsim_groups=layer.groups, hwsim_folds=st.detail["folds"], hwsim_cycles=st.cycles,
            hwsim_stall_cycles=st.stall_cycles, hwsim_macs=st.macs, hwsim_on_scalesim_gemm_cycles=on_ss.cycles,
            scalesim_memory=ssm))
    kib = buffer_kib if buffer_kib is not None else scfg.ifmap_sram_kb + scfg.filter_sram_kb + scfg.ofmap_sram_kb
    out.memory = memory.plan(tensors, int(kib * 1024), spec, cfg.clock_mhz, layout,
                             fixed_bytes_per_cycle=cfg.dram_bytes_per_cycle,
                             dram_name="fixed" if spec is None else "")
    out.wall_seconds = time.perf_counter() - t0
    return out


def format_scalesim_convention(cmp: ScaleSimComparison) -> str:
    """The table of ``hwsim simulate --scalesim-config CFG --topology CSV --convention scalesim``: SCALE-Sim
    3's COMPUTE_REPORT columns per layer, reproduced, beside hwsim's own (RTL-exact) count."""
    c = cmp.config
    p = scalesim_memory_params(c)
    lines = [
        f"hwsim simulate: SCALE-Sim topology {cmp.topology} on {c.path} ({c.run_name}): "
        f"{c.rows}x{c.cols} array, dataflow {cmp.dataflow}",
        "",
        "SCALE-Sim 3 convention (--convention scalesim): its lowering (no padding, ofmap size rounded up), its "
        "folds, and its memory system:",
        f"  IFMAP / filter SRAM ({c.ifmap_sram_kb} / {c.filter_sram_kb} KiB) filled before cycle 0 at "
        f"{p.ifmap_bw} / {p.filter_bw} words/cycle ([layout] bank bandwidths), every demand then hits;",
        f"  OFMAP SRAM ({c.ofmap_sram_kb} KiB) drained at Bandwidth {p.ofmap_bw} words/cycle in halves, the array "
        "stalls when it is full;",
        "  'Total' = its 'Total Cycles' (last demand row + stalls), 'incl. prefetch' = its 'Total Cycles (incl. "
        "prefetch)'",
        "  (first fill cycle to last OFMAP drain cycle). docs/scalesim_convention.md: how it differs from hwsim's "
        "count.",
        "",
    ]
    hdr = (f"{'layer':<10} {'M x N x K':<18} {'folds':>6} {'compute':>10} {'stalls':>10} {'Total':>10} "
           f"{'incl. prefetch':>14} {'drains':>6} {'hwsim (own)':>12}")
    lines += [hdr, "-" * len(hdr)]
    for r in cmp.layers:
        mm, x = r.scalesim_memory, r.repeats
        mnk = "x".join(map(str, r.scalesim_mnk)) + (f" x{x}" if x > 1 else "")
        lines.append(f"{r.name:<10} {mnk:<18} {r.scalesim_folds:>6} {(mm.compute_cycles - 1) * x:>10,} "
                     f"{mm.stall_cycles * x:>10,} {mm.total_cycles * x:>10,} {mm.total_incl_prefetch * x:>14,} "
                     f"{mm.ofmap_drains * x:>6} {r.hwsim_cycles:>12,}")
    tot = sum(r.scalesim_total_cycles for r in cmp.layers)
    pre = sum(r.scalesim_memory.total_incl_prefetch * r.repeats for r in cmp.layers)
    stalls = sum(r.scalesim_memory.stall_cycles * r.repeats for r in cmp.layers)
    lines += ["", f"total: SCALE-Sim 3 convention {tot:,} cycles ({stalls:,} stalls), {pre:,} incl. prefetch; "
              f"hwsim's own count {cmp.hwsim_cycles:,} cycles (ratio {cmp.hwsim_cycles / tot:.3f})",
              f"(wall time {cmp.wall_seconds:.3f} s)"]
    return "\n".join(lines)


def format_comparison(cmp: ScaleSimComparison) -> str:
    """The table ``hwsim simulate --scalesim-config CFG --topology CSV`` prints (``--convention scalesim``:
    :func:`format_scalesim_convention`)."""
    if cmp.convention == "scalesim":
        return format_scalesim_convention(cmp)
    c = cmp.config
    hc = cmp.hwsim_config
    lines = [
        f"hwsim simulate: SCALE-Sim topology {cmp.topology} on {c.path} ({c.run_name}): "
        f"{c.rows}x{c.cols} array, dataflow {cmp.dataflow}, bandwidth {c.bandwidth:g} words/cycle",
        f"hwsim side: MAC array {hc['rows']}x{hc['cols']} {cmp.dataflow}, int8, SRAM "
        f"{hc['input_sram_bytes']}/{hc['weight_sram_bytes']}/{hc['output_sram_bytes']} B, DRAM "
        f"{hc['dram_bytes_per_cycle']:g} B/cycle; layers padded '{cmp.padding}'",
        "",
        "SCALE-Sim convention: no padding, ofmap = ceil((in - filter + stride) / stride), folds of "
        "(os) K+R+C-2 or (ws/is) 2R+C+T-2 cycles,",
        "  'report' = its COMPUTE_REPORT 'Total Cycles' without stalls (folds x per-fold - 1); its stall and "
        "prefetch accounting: --convention scalesim.",
        "hwsim convention: the real layer (padding, floor output size) on hwsim's RTL-exact model, DRAM stalls "
        "included;",
        "  'hwsim@ss' = hwsim's model on SCALE-Sim's unpadded GEMM.",
        "",
    ]
    hdr = (f"{'layer':<10} {'SCALE-Sim M x N x K':<20} {'folds':>6} {'per fold':>8} {'report':>12} "
           f"{'hwsim m x k x n':<20} {'folds':>6} {'hwsim':>12} {'stalls':>10} {'hwsim@ss':>12} {'hwsim/ss':>8}")
    lines += [hdr, "-" * len(hdr)]
    for r in cmp.layers:
        mnk = "x".join(map(str, r.scalesim_mnk)) + (f" x{r.repeats}" if r.repeats > 1 else "")
        g = "x".join(map(str, r.hwsim_gemm)) + (f" x{r.hwsim_groups}g" if r.hwsim_groups > 1 else "")
        lines.append(f"{r.name:<10} {mnk:<20} {r.scalesim_folds:>6} {r.scalesim_per_fold:>8} "
                     f"{r.scalesim_report_cycles:>12,} {g:<20} {r.hwsim_folds:>6} {r.hwsim_cycles:>12,} "
                     f"{r.hwsim_stall_cycles:>10,} {r.hwsim_on_scalesim_gemm_cycles:>12,} "
                     f"{r.hwsim_cycles / r.scalesim_cycles:>8.3f}")
    ss = cmp.scalesim_cycles
    hw = cmp.hwsim_cycles
    lines += [
        "",
        f"total: SCALE-Sim convention {ss:,} cycles ({sum(r.scalesim_report_cycles for r in cmp.layers):,} as "
        f"reported), hwsim {hw:,} cycles ({sum(r.hwsim_stall_cycles for r in cmp.layers):,} stalls), "
        f"ratio {hw / ss:.3f}",
        f"MACs: SCALE-Sim lowering {sum(r.scalesim_macs for r in cmp.layers):,}, hwsim lowering "
        f"{sum(r.hwsim_macs for r in cmp.layers):,}",
    ]
    if cmp.memory is not None:
        from hwsim.memory import format_plan

        compute = {r.name: r.hwsim_cycles for r in cmp.layers}
        lines += ["", *format_plan(cmp.memory, compute)]
        bound = sum(max(compute[lp.name], lp.dram_cycles) for lp in cmp.memory.layers)
        lines.append(f"latency with DRAM transfers overlapped with compute: {bound:,} cycles "
                     f"(compute alone {hw:,}; per layer the larger of the two)")
    lines.append(f"(wall time {cmp.wall_seconds:.3f} s)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- CLI
#: The ``simulate`` options of the SCALE-Sim mode only (parsed with default None, so that one given with a
#: model is refused rather than ignored): attribute -> (flag, default).
CLI_DEFAULTS = {"dataflow": ("--dataflow", None), "padding": ("--padding", "same"),
                "buffer_kib": ("--buffer-kib", None), "layout": ("--layout", "nhwc"),
                "convention": ("--convention", "both")}


def add_cli_arguments(group) -> None:
    """The SCALE-Sim options of ``hwsim simulate`` (an argparse group): config, topology and overrides."""
    group.add_argument("--scalesim-config", metavar="CFG", help="a SCALE-Sim .cfg file (e.g. google.cfg)")
    group.add_argument("--topology", metavar="CSV",
                       help="a SCALE-Sim topology .csv (conv rows or 'Layer name, M, N, K')")
    group.add_argument("--dataflow", metavar="ws|os|is", help="override the config's Dataflow")
    group.add_argument("--padding", choices=("same", "none"), default=None,
                       help="padding of the layers hwsim runs: 'same' as in the real network (default) or 'none' "
                            "as SCALE-Sim")
    group.add_argument("--buffer-kib", type=float, default=None, metavar="KIB",
                       help="global on-chip buffer of the memory-system plan (default: the .cfg's three SRAMs)")
    group.add_argument("--layout", choices=("nhwc", "nchw"), default=None,
                       help="layout of the raw tensors in DRAM (default nhwc)")
    group.add_argument("--convention", choices=CONVENTIONS, default=None,
                       help="'both' (default): SCALE-Sim's compute cycles beside hwsim's RTL-exact count and the "
                            "memory plan; 'scalesim': SCALE-Sim 3's 'Total Cycles' per layer reproduced with its "
                            "prefetch and stall accounting (docs/scalesim_convention.md)")


def compare_from_cli(args):
    """:func:`compare_with_scalesim` of the options :func:`add_cli_arguments` added (both files required)."""
    if not (args.scalesim_config and args.topology):
        given, missing = ("--topology", "--scalesim-config") if args.topology else ("--scalesim-config", "--topology")
        raise HwsimError(f"{given} without {missing} is not allowed: expected both (a SCALE-Sim .cfg and a "
                         "topology .csv)")
    return compare_with_scalesim(args.scalesim_config, args.topology, dataflow=args.dataflow, padding=args.padding,
                                 buffer_kib=args.buffer_kib, dram=args.dram, layout=args.layout,
                                 convention=args.convention)
