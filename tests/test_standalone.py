"""A fresh clone stands on its own (issue 26): nothing the repository tracks reads files from beside it.

A user's clone has no ``../shared`` folder next to it. The SCALE-Sim-format files the tests, notebooks,
examples and benchmarks use are shipped in ``examples/scalesim/`` (see its README for where the layer
shapes come from). This test greps every tracked file of the package, the tests, notebooks, examples,
benchmarks and docs for a path into such a folder, and names each file and line it finds.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from hwsim.scalesim import read_scalesim_config, read_scalesim_topology
from hwsim.sweep import load_spec

REPO = Path(__file__).resolve().parents[1]
SCALESIM = REPO / "examples" / "scalesim"

#: Top-level folders and files that must not point outside the clone (the package's four source trees,
#: tests, notebooks, examples, benchmarks, docs and the README).
SCOPE = ("hwsim", "rtl", "models", "cosim", "tests", "notebooks", "examples", "benchmarks", "docs", "README.md")

#: ``../shared`` in any spelling of a relative path, ``/shared/scalesim``, and the pathlib forms the tests
#: used before (``... / "shared" / "scalesim"``, ``REPO.parent / "shared"``). Built from pieces so that
#: this file does not match itself.
_SHARED = "shar" + "ed"
FORBIDDEN = re.compile(
    r"\.\.[/\\]+" + _SHARED + r"\b"                           # ../shared, ..\shared
    + r"|[/\\]" + _SHARED + r"[/\\]+scalesim"                 # /shared/scalesim
    + r"|[\"']" + _SHARED + r"[\"']\s*/\s*[\"']scalesim"      # "shared" / "scalesim"
    + r"|\.parents?(\[\d+\])?\s*/\s*[\"']" + _SHARED + r"[\"']"  # REPO.parent / "shared"
)


def tracked_files() -> list[Path]:
    """The files git tracks under SCOPE (the clone as a user gets it)."""
    out = subprocess.run(["git", "ls-files", "-z", "--", *SCOPE], cwd=REPO, capture_output=True, check=True)
    files = [REPO / name for name in out.stdout.decode().split("\0") if name]
    return [p for p in files if p.is_file()]


def offending_lines(paths: list[Path], root: Path = REPO) -> list[str]:
    """``<file>:<line>: <text>`` for every line of ``paths`` (named relative to ``root``) that matches."""
    hits = []
    for p in paths:
        if p.resolve() == Path(__file__).resolve():
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (zoo weights); they hold no paths
        for lineno, line in enumerate(text.splitlines(), start=1):
            if FORBIDDEN.search(line):
                hits.append(f"{p.relative_to(root).as_posix()}:{lineno}: {line.strip()}")
    return hits


def test_no_tracked_file_reads_beside_the_clone():
    files = tracked_files()
    # the scan really covers the trees that used to point at ../shared
    names = {p.relative_to(REPO).as_posix() for p in files}
    assert {"tests/test_scalesim.py", "notebooks/mac_array_design_space.ipynb", "benchmarks/vs_scalesim.py",
            "examples/resnet18_counts.yaml", "hwsim/scalesim.py", "README.md"} <= names
    hits = offending_lines(files)
    assert not hits, "paths outside the clone (ship the file in the repository instead):\n" + "\n".join(hits)


@pytest.mark.parametrize("line", [
    'SCALESIM = Path(__file__).resolve().parents[2] / "shared" / "scalesim"',
    'RESNET = REPO.parent / "shared" / "scalesim" / "topologies" / "Resnet18.csv"',
    "  topology: ../../shared/scalesim/topologies/Resnet18.csv   # relative to this file",
    '"TOPOLOGY = next(p for p in (Path(\\"../shared\\"),))',
    "hwsim simulate --scalesim-config ../shared/scalesim/configs/google.cfg",
    "see /work/shared/scalesim/topologies",
])
def test_the_grep_finds_the_old_references(tmp_path, line):
    """Every form the tree used before issue 26 is caught, with its file and line."""
    (tmp_path / "sub").mkdir()
    p = tmp_path / "sub" / "probe.txt"
    p.write_text("first line\n" + line + "\n")
    assert offending_lines([p], root=tmp_path) == [f"sub/probe.txt:2: {line.strip()}"]


@pytest.mark.parametrize("line", [
    "shared = [a for a in factor.axes if a in t_axes]",
    "own, shared = DeformUnitConfig(), DeformUnitConfig(offset_array=False)",
    "(a shared 2-core VM here)",
    'SCALESIM = REPO / "examples" / "scalesim"',
])
def test_the_grep_leaves_other_uses_of_the_word_alone(tmp_path, line):
    p = tmp_path / "probe.py"
    p.write_text(line + "\n")
    assert offending_lines([p], root=tmp_path) == []


def test_the_shipped_scalesim_files_are_tracked_and_read():
    names = {p.relative_to(REPO).as_posix() for p in tracked_files()}
    shipped = {"examples/scalesim/Resnet18.csv", "examples/scalesim/alexnet.csv", "examples/scalesim/google.cfg",
               "examples/scalesim/no_layout.csv", "examples/scalesim/README.md"}
    assert shipped <= names, f"not tracked by git: {sorted(shipped - names)}"
    cfg = read_scalesim_config(SCALESIM / "google.cfg")
    assert (cfg.rows, cfg.cols, cfg.ifmap_sram_kb, cfg.filter_sram_kb, cfg.ofmap_sram_kb, cfg.bandwidth) == (
        256, 256, 6144, 6144, 2048, 10.0)
    # He et al. 2016, Table 1, 18-layer column: conv1, 8 basic blocks of two 3x3 convs, 3 projection
    # shortcuts (1x1, stride 2, where the width doubles), the 1000-way FC; conv1 and each conv3_1 / conv4_1 /
    # conv5_1 and shortcut halve the map.
    resnet = read_scalesim_topology(SCALESIM / "Resnet18.csv")
    assert len(resnet) == 1 + 16 + 3 + 1
    assert [r.name for r in resnet if r.stride == 2] == ["Conv1", "Conv3_1a", "Conv3_s", "Conv4_1a", "Conv4_s",
                                                         "Conv5_1a", "Conv5_s"]
    assert [r.num_filt for r in resnet if r.name.endswith("b")] == [64, 64, 128, 128, 256, 256, 512, 512]
    # Krizhevsky et al. 2012, Sec. 3.5: 96 11x11 kernels at stride 4, then 256 5x5, 384 / 384 / 256 3x3
    alex = read_scalesim_topology(SCALESIM / "alexnet.csv")
    assert [(r.filt_h, r.num_filt, r.stride) for r in alex] == [(11, 96, 4), (5, 256, 1), (3, 384, 1),
                                                                 (3, 384, 1), (3, 256, 1)]


def test_example_sweep_spec_finds_its_topology_in_the_repository():
    spec = load_spec(REPO / "examples" / "resnet18_counts.yaml")
    # the 20 conv layers of the shipped ResNet-18 (FC excluded), however the spec was reached
    assert len(spec.workload["layers"]) == 20
