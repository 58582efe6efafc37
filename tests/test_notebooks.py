"""Every notebook in notebooks/ runs top to bottom (nbclient) at small sizes, and is committed without large
outputs.

Convention for notebooks (every family's study notebook follows it): one code cell tagged ``parameters``
defines ``SMALL = False``; the test inserts ``SMALL = True`` right after it, so the notebook runs its real
cells on a few points (each notebook must then finish in well under a minute). Notebooks run with
``notebooks/`` as the working directory and must write their outputs to a temporary directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
#: A committed notebook's outputs (images included) may not exceed this many bytes in all.
MAX_COMMITTED_OUTPUT_BYTES = 100_000


def test_there_are_notebooks():
    assert any(p.name == "mac_array_design_space.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_committed_small(path):
    nb = json.loads(path.read_text())
    size = sum(len(json.dumps(c.get("outputs", []))) for c in nb["cells"] if c["cell_type"] == "code")
    assert size <= MAX_COMMITTED_OUTPUT_BYTES, f"{path.name}: {size} bytes of outputs committed"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "SMALL = False" in "".join(tagged[0]["source"]), \
        f"{path.name}: expected one cell tagged 'parameters' defining SMALL = False"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_at_small_size(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's path-migration notice
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's frozen-modules notice
    nb = nbformat.read(path, as_version=4)
    i = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell("SMALL = True  # injected by tests/test_notebooks.py"))
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
