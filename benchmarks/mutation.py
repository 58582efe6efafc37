"""Mutation testing of the cycle models, cost model, references and requantizers (issue 25; docs/testing.md).

    nice python benchmarks/mutation.py             # the whole subset (15-18 min on 2 cores at load 5-6)
    nice python benchmarks/mutation.py --list      # count the mutants of the subset, run nothing
    python benchmarks/mutation.py --report         # the table of the last run, without running
    nice python benchmarks/mutation.py 'hwsim.rf_array.*'   # only the mutants matching a glob

mutmut 3 (pinned in ``.[dev]``) works on a copy of the source. Our modules are installed as one package
whose ``models/``, ``rtl/`` and ``cosim/`` directories are mapped to ``hwsim.models`` etc. (setuptools
``package-dir``); mutmut names a mutant after its file path and would call ``models/quantize.py``
``models.quantize`` while the tests import ``hwsim.models.quantize``, and the editable install would import
the unmutated file. So this script stages the package the way it is imported, under ``build/mutation/``
(git-ignored): ``hwsim/`` with ``models/``, ``rtl/``, ``cosim/`` copied in as ``hwsim/models`` etc., plus
``tests/`` and ``pyproject.toml`` (pytest's options), writes mutmut's configuration there as a
``setup.cfg`` ``[mutmut]`` section (the repository's own ``pyproject.toml`` is left without a ``[tool.mutmut]``
table), and runs ``mutmut run`` in that directory. mutmut puts ``build/mutation/mutants`` first on
``sys.path``, so ``hwsim`` and ``hwsim.models`` resolve to the mutated copies before the editable finder.

The subset (:data:`SUBSET`) names functions per module; every family's cycle model (closed form and the step
or per-fold models it is tested against) and cost inventory, the shared cost model, and the bit-exact
references and requantizers. Each mutant runs only the tests of :data:`TESTS` that call its function (mutmut
records this in one instrumented pass first). Surviving mutants are either killed by a test in
``tests/test_mutants_*.py`` or listed, with the reason, in ``docs/equivalent_mutants.md``; the report counts
a survivor listed there as equivalent.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGE = REPO / "build" / "mutation"
EQUIVALENT_DOC = REPO / "docs" / "equivalent_mutants.md"

#: Staged module file -> functions mutated in it (mutmut keys without the ``x_`` prefix; methods as
#: ``Class.method``). Module files are the staged paths (``hwsim/models/...`` is ``models/...``).
SUBSET: dict[str, list[str]] = {
    # MAC array: fold plan, the per-fold max-plus timing and action counts, the closed form, inventory
    "hwsim/mac_array.py": ["inventory", "fold_plan", "_timing", "_words", "_actions"],
    "hwsim/mac_array_fast.py": ["_cdiv", "_step", "_run", "closed_form_gemm"],
    # LSTM engine: stage timing and actions, matvec and readout predictions, inventory
    "hwsim/lstm_engine.py": ["gate_phase_cycles", "_stage_timing", "_stage_actions", "predict_matvec",
                             "x_load_cycles", "readout_stats", "_readout_actions", "inventory"],
    # deformable unit: sampler cycles, line-buffer row fills, the offset convolution, inventory
    "hwsim/deform_unit.py": ["_sampler_cycles", "_fill_rows", "offset_conv_stats", "inventory"],
    # RF array: emulator stream and tiled GEMM, inventory
    "hwsim/rf_array.py": ["predict_emulator", "_tile_stats", "predict_gemm", "inventory"],
    # the cost model: reference-table interpolation, part lists, pricing of inventory x actions
    "hwsim/cost.py": ["_line", "_adder45", "_mult45", "_sram64_45", "_mac_parts", "_requant_parts",
                      "CostModel.sram_access_energy_pj", "CostModel.action_energy_pj",
                      "CostModel.component_area_um2", "CostModel.energy", "CostModel.area", "_mux2s",
                      "_reg_write_bits"],
    # references and requantizers
    "hwsim/models/quantize.py": ["_units", "_pow2_levels", "_quant_uniform"],
    "hwsim/models/mac_array.py": ["_sequential_saturate", "_accumulate", "_round_shift", "_requantize",
                                  "_rne_shift", "requantize_f32_int"],
    "hwsim/models/lstm_engine.py": ["_clamp", "quantize", "_plan_sigmoid", "_lut_index", "sigmoid_fixed",
                                    "tanh_fixed", "accumulate_dense"],
    "hwsim/models/deform_unit.py": ["acc_bits_needed", "bilinear_weights_fixed", "round_shift", "_tap_samples"],
    "hwsim/models/rf_array.py": ["code_count", "_rs", "emulate"],
}

#: The tests mutmut may run (each mutant: only those that call its function). No co-simulation, no
#: synthesis, no notebooks: the fast unit, property and hand-count tests of the subset's modules.
TESTS = [
    "tests/test_closed_forms.py", "tests/test_cycle_model.py",
    "tests/test_sweep.py::test_closed_form_predict_gemm_equals_the_per_fold_model",
    "tests/test_reference_mac_array.py", "tests/test_cost.py", "tests/test_compress.py",
    "tests/test_lstm_engine.py", "tests/test_lstm_gates.py", "tests/test_lstm_formats.py",
    "tests/test_deform_unit.py", "tests/test_deform_reference.py",
    "tests/test_rf_array.py", "tests/test_rf_layers.py", "tests/test_rf_tt.py", "tests/test_rf_mesh.py",
]

#: Tests of those files that mutmut must not run: each starts ``python -m hwsim.cli`` (a new interpreter that
#: imports the whole package, 1-15 s a mutant under mutmut's trampolines) or runs a whole study. Every
#: function of :data:`SUBSET` they call is also called by a fast test in ``tests/test_mutants_*.py`` or in the
#: files above (``--report`` lists mutants without a covering test under "not run").
DESELECT = [
    "tests/test_lstm_engine.py::test_cli_cost_and_errors",
    "tests/test_lstm_engine.py::test_study_tt_vs_ht",
    "tests/test_deform_unit.py::test_cli_bad_config_exit_2",
    "tests/test_rf_array.py::test_cli_errors_exit_2",
]


#: Written beside the staged tests (never into the repository): Hypothesis without shrinking (a mutant is
#: killed by the first failing example; shrinking would only spend time), derandomized so two runs try the
#: same examples, no example database.
CONFTEST = """import gc

from hypothesis import Phase, settings

settings.register_profile("mutation", derandomize=True, database=None, print_blob=False,
                          phases=[Phase.explicit, Phase.generate])
settings.load_profile("mutation")


def pytest_sessionstart(session):
    # mutmut runs one pytest session per mutant in a process forked from one that holds the whole package,
    # NumPy, Hypothesis and the collected tests; pytest's unraisable-exception check ends every session with
    # five gc.collect() calls over that heap (about 1 s a mutant on a loaded core). Objects that exist when the
    # session starts are frozen out of the collector, so it only walks the session's own.
    gc.freeze()
"""


#: Edits to the staged copies of tests (never the repository's) that mutmut's trampolines need: a mutated
#: function is a wrapper defined in mutmut, so ``f.__globals__`` is mutmut's module, not ``f``'s. Applied
#: only while the old text is there.
STAGED_TEST_FIXES = [
    ("tests/test_deform_unit.py", 'predict_layer.__globals__["synthetic_offsets"](cfg, layer)',
     '__import__("hwsim.deform_unit", fromlist=["x"]).synthetic_offsets(cfg, layer)'),
]


def mutant_globs(subset: dict[str, list[str]] = SUBSET) -> list[str]:
    """mutmut mutant-name globs of the subset: ``hwsim.mac_array.x__timing__mutmut_*``,
    ``hwsim.cost.xǁCostModelǁenergy__mutmut_*``."""
    globs = []
    for path, funcs in subset.items():
        module = path[:-3].replace("/", ".")
        for f in funcs:
            if "." in f:
                cls, meth = f.split(".")
                globs.append(f"{module}.x\u01c1{cls}\u01c1{meth}__mutmut_*")
            else:
                globs.append(f"{module}.x_{f}__mutmut_*")
    return globs


def mutant_tests() -> list[str]:
    """The tests written to kill this subset's survivors (``tests/test_mutants_*.py``)."""
    return sorted(f"tests/{p.name}" for p in (STAGE / "tests").glob("test_mutants_*.py"))


def _setup_cfg() -> str:
    def lines(items):
        return "".join(f"\n    {x}" for x in items)

    return (
        "# written by benchmarks/mutation.py; edit SUBSET/TESTS there\n[mutmut]\n"
        "source_paths = hwsim\n"
        f"only_mutate ={lines(sorted(SUBSET))}\n"
        f"pytest_add_cli_args_test_selection ={lines(TESTS + mutant_tests() + [f'--deselect={t}' for t in DESELECT])}"
        "\n"
        # deselect slow tests; no cache provider writes; warnings stay errors (pyproject's filterwarnings); plain
        # asserts (a mutant is killed or not; rewriting's messages cost a scan of the installed packages per run)
        "pytest_add_cli_args =\n    -m\n    not slow\n    -p\n    no:cacheprovider\n    --assert=plain\n"
        # error messages are the bad-input corpus's (tests/bad_inputs/cases.yaml), not this run's
        "do_not_mutate_patterns =\n    raise HwsimError\\(\n"
        "also_copy =\n    conftest.py\n    docs\n"
        "use_git_change_detection = false\n"
        "use_setproctitle = false\n"
    )


PRAGMA = "# pragma: no mutate block"


def only_subset(source: str, funcs: list[str]) -> str:
    """``source`` with mutmut's ``# pragma: no mutate block`` on the header line of every top-level function and
    class that :data:`SUBSET` does not name (a class with named methods: on its other methods), so mutmut
    generates mutants and trampolines for the subset's functions only. Comments only: the staged module runs
    as the committed one, and the subset's mutants keep their names and numbers (mutmut numbers them per
    function). Without this mutmut mutates every function of the file (15,000 mutants for the ~4,500 run)."""
    import ast
    import io
    import tokenize

    tree = ast.parse(source)
    want = set(funcs)
    headers = []  # line numbers of the def/class keywords to mark
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name not in want:
            headers.append(node.lineno)
        elif isinstance(node, ast.ClassDef):
            methods = [m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
            if not any(f"{node.name}.{m.name}" in want for m in methods):
                headers.append(node.lineno)
            else:
                headers += [m.lineno for m in methods if f"{node.name}.{m.name}" not in want]
    # the colon that ends each header (the signature may span lines): the first ':' at bracket depth 0 after
    # the keyword; the pragma goes at the end of that physical line (after any comment already there: mutmut
    # looks for "# pragma:" and "no mutate" anywhere in the comment)
    ends, todo, depth, armed = set(), set(headers), 0, False
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if not armed and tok.type == tokenize.NAME and tok.string in ("def", "class") and tok.start[0] in todo:
            armed, depth = True, 0
            todo.discard(tok.start[0])
        elif armed and tok.type == tokenize.OP:
            if tok.string in "([{":
                depth += 1
            elif tok.string in ")]}":
                depth -= 1
            elif tok.string == ":" and depth == 0:
                ends.add(tok.start[0])
                armed = False
    lines = source.splitlines(keepends=True)
    for n in ends:
        lines[n - 1] = lines[n - 1].rstrip("\r\n") + "  " + PRAGMA + "\n"
    return "".join(lines)


def stage(fresh: bool, rev: str = "HEAD") -> list[str]:
    """Copy the package as it is imported, the tests and the pytest options of commit ``rev`` into
    :data:`STAGE` (a commit, not the working tree: other uncommitted work in the checkout stays out of the
    run, and the run names the commit it measured). A file whose content changed since the last staging gets a
    new mtime, so mutmut generates its mutants again; unchanged files keep their generated mutants."""
    if fresh and STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True, exist_ok=True)
    changed = []
    tmp = STAGE.parent / "mutation-src"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    archive = subprocess.run(["git", "archive", rev, "hwsim", "models", "rtl", "cosim", "tests", "docs",
                              "pyproject.toml"],
                             cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    for src, dst in (("hwsim", "hwsim"), ("models", "hwsim/models"), ("rtl", "hwsim/rtl"),
                     ("cosim", "hwsim/cosim"), ("tests", "tests"), ("docs", "docs"),
                     ("pyproject.toml", "pyproject.toml")):
        root = tmp / src
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for p in files:
            rel = p.relative_to(tmp / src) if root.is_dir() else Path()
            if dst == "hwsim" and rel.parts and rel.parts[0] in ("models", "rtl", "cosim"):
                continue
            q = STAGE / dst / rel if root.is_dir() else STAGE / dst
            data = p.read_bytes()
            rel_q = str(q.relative_to(STAGE))
            if rel_q in SUBSET:
                data = only_subset(data.decode(), SUBSET[rel_q]).encode()
            if q.exists() and q.read_bytes() == data:
                continue
            q.parent.mkdir(parents=True, exist_ok=True)
            q.write_bytes(data)
            changed.append(rel_q)
    shutil.rmtree(tmp)
    for rel, old, new in STAGED_TEST_FIXES:
        f = STAGE / rel
        text = f.read_text()
        if old in text:
            f.write_text(text.replace(old, new))
    (STAGE / "setup.cfg").write_text(_setup_cfg())
    (STAGE / "conftest.py").write_text(CONFTEST)
    (STAGE / "REVISION").write_text(subprocess.run(["git", "rev-parse", rev], cwd=REPO, check=True,
                                                   capture_output=True, text=True).stdout)
    return changed


REKILL = STAGE / "rekill.json"
REKILL_DIR = STAGE.parent / "mutation-rekill"
PENDING = STAGE / "pending.json"


#: Which tests/test_mutants_*.py files a mutant of a module is run against in --rekill (by module prefix;
#: first match). Restricting can only leave a killable mutant alive, never kill a survivor wrongly.
REKILL_TESTS = [
    ("hwsim.cost.", ["test_mutants_cost.py", "test_mutants_text.py"]),
    ("hwsim.mac_array", ["test_mutants_mac_array.py", "test_mutants_inventory.py", "test_mutants_records.py",
                       "test_mutants_text.py", "test_mutants_gating.py"]),
    ("hwsim.deform_unit.", ["test_mutants_deform.py", "test_mutants_text.py"]),
    ("hwsim.models.deform_unit.", ["test_mutants_deform.py", "test_mutants_references.py"]),
    ("hwsim.rf_array.", ["test_mutants_inventory.py", "test_mutants_references.py", "test_mutants_records.py",
                       "test_mutants_text.py", "test_mutants_gating.py"]),
    ("hwsim.lstm_engine.", ["test_mutants_lstm.py", "test_mutants_inventory.py", "test_mutants_records.py",
                          "test_mutants_text.py", "test_mutants_gating.py"]),
    ("hwsim.models.lstm_engine.", ["test_mutants_lstm.py", "test_mutants_references.py"]),
    ("hwsim.models.mac_array.", ["test_mutants_references.py"]),
]


def _tests_for(name: str, tests: list[str]) -> list[str]:
    for prefix, files in REKILL_TESTS:
        if name.startswith(prefix):
            return [t for t in tests if t.split("/")[-1] in files]
    return tests


def rekill(names: list[str], workers: int, timeout_s: float = 300.0, store: Path = REKILL,
           tests_of=None, workdir: Path = REKILL_DIR) -> dict[str, str]:
    """Run the survivors ``names`` of the last mutmut run against ``tests/test_mutants_*.py`` alone (the tests
    written after it; every other selected test already let them through), one forked pytest per mutant
    with ``MUTANT_UNDER_TEST`` set, as mutmut's own workers do. Returns and stores mutant -> "killed",
    "survived" or "timeout" in ``build/mutation/rekill.json``; the report counts these verdicts."""
    if not names:
        return {}
    mutants = workdir  # a copy of mutmut's mutants/ (a mutmut run may still be using that one)
    tests = [f"tests/{p.name}" for p in sorted((mutants / "tests").glob("test_mutants_*.py"))]
    os.chdir(mutants)
    sys.path.insert(0, str(mutants))
    os.environ.update(PY_IGNORE_IMPORTMISMATCH="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    import pytest  # imported once; each mutant's pytest runs in a fork

    # Import the tests and everything they import once, here: the forks inherit them (the trampolines read
    # MUTANT_UNDER_TEST at call time, so importing the mutated modules unmutated-active is harmless).
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        pytest.main(["--rootdir=.", "--collect-only", "-q", "-p", "no:cacheprovider", *tests])

    # The tests must pass on the unmutated sources of the last run, or every "kill" below could be a test
    # that fails anyway (e.g. a test written for a later version of the code).
    used = sorted({t for name in names for t in (tests_of(name) if tests_of else _tests_for(name, tests))})
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.environ.pop("MUTANT_UNDER_TEST", None)
        os._exit(int(pytest.main(["--rootdir=.", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                                  "--assert=plain", "-m", "not slow", *used])))
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) not in (0, 5):
        raise SystemExit(f"--rekill is not allowed: the tests ({', '.join(used)}) fail on the unmutated sources "
                         "of the last mutmut run, so a kill would not be real; re-run the full mutation run")

    old = json.loads(store.read_text()) if store.exists() else {}
    verdict, running, queue = {}, {}, list(names)
    while queue or running:
        while queue and len(running) < workers:
            name = queue.pop(0)
            pid = os.fork()
            if pid == 0:  # child: no output, the mutant active, the new tests only
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                os.environ["MUTANT_UNDER_TEST"] = name
                code = pytest.main(["--rootdir=.", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                                    "--assert=plain", "-m", "not slow",
                                    *(tests_of(name) if tests_of else _tests_for(name, tests))])
                os._exit(int(code))
            running[pid] = (name, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            for p, (_name, t0) in list(running.items()):
                if time.monotonic() - t0 > timeout_s:
                    os.kill(p, 9)
            time.sleep(0.05)
            continue
        name, _ = running.pop(pid)
        if os.WIFSIGNALED(status):
            verdict[name] = "timeout"
        else:
            code = os.WEXITSTATUS(status)
            verdict[name] = "survived" if code in (0, 5) else "killed"
        print(f"{len(verdict)}/{len(names)} {verdict[name]:8s} {name}", flush=True)
        if len(verdict) % 20 == 0:
            store.write_text(json.dumps({**old, **verdict}, indent=1, sort_keys=True))
    old.update(verdict)
    store.write_text(json.dumps(old, indent=1, sort_keys=True))
    return verdict


_STRING = re.compile(r"""[rRbB]?("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")


def mutant_diffs(names: list[str]) -> dict[str, str]:
    """mutmut's diff of each mutant (cached in ``build/mutation/diffs.json``)."""
    cache_file = STAGE / "diffs.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    todo = [n for n in names if n not in cache]
    if todo:
        cwd = os.getcwd()
        os.chdir(STAGE)
        try:
            from mutmut.mutation.diff_apply import get_diff_for_mutant

            paths = {path[:-3].replace("/", "."): path for path in SUBSET}
            for n in todo:
                module = n.split(".x_")[0].split(".x\u01c1")[0]
                cache[n] = get_diff_for_mutant(n, path=paths[module])
        finally:
            os.chdir(cwd)
        cache_file.write_text(json.dumps(cache))
    return {n: cache[n] for n in names}


def text_only(diff: str) -> bool:
    """True when the mutant only rewords, blanks or drops prose: a string literal with a space in it (a
    component note, a part description, an explanation rule), never a name or a key (no spaces) and never
    code. Such mutants change what ``hwsim cost`` prints beside a number, not the number."""
    minus = "".join(ln[1:] for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---"))
    plus = "".join(ln[1:] for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++"))

    def prose(m):
        return " " in m.group(1)

    if not any(prose(m) for m in _STRING.finditer(minus)):
        return False
    same_shape = _STRING.sub("S", minus) == _STRING.sub("S", plus)
    changed = [(a.group(1), b.group(1)) for a, b in zip(_STRING.finditer(minus), _STRING.finditer(plus),
                                                        strict=False) if a.group(1) != b.group(1)]
    if same_shape and changed and all(" " in a for a, _ in changed):
        return True
    strip_m = re.sub(r"\s", "", _STRING.sub(lambda m: "" if prose(m) else m.group(0), minus))
    strip_p = re.sub(r"\s", "", re.sub(r"\bNone\b", "", _STRING.sub(lambda m: "" if prose(m) else m.group(0),
                                                                       plus)))
    return strip_m == strip_p and "None" not in minus


def fingerprint(name: str, diff: str) -> tuple[str, str]:
    """What identifies a mutant across runs: its function (the id without mutmut's number, which shifts
    whenever the function changes) and its changed lines, stripped of indentation."""
    func = re.sub(r"__mutmut_\d+$", "", name)
    lines = [ln[0] + " " + ln[1:].strip() for ln in diff.splitlines()
             if ln[:1] in "+-" and not ln.startswith(("---", "+++"))]
    return func, "\n".join(lines)


_ENTRY = re.compile(r"^### `([^`]+__mutmut_\d+)`\n```diff\n(.*?)\n```", flags=re.M | re.S)


def equivalent_entries() -> dict[tuple[str, str], str]:
    """The mutants docs/equivalent_mutants.md lists: :func:`fingerprint` -> the id it was listed under. Each
    entry is a heading ``### `<id>` `` followed by a ``diff`` block of its changed lines; a survivor is
    equivalent when its function and changed lines are an entry's, whatever its number is now."""
    if not EQUIVALENT_DOC.exists():
        return {}
    out = {}
    for name, body in _ENTRY.findall(EQUIVALENT_DOC.read_text()):
        out[fingerprint(name, body)] = name
    return out


def equivalent_ids(names: list[str]) -> set[str]:
    """Those of ``names`` (mutants of the last run) whose fingerprint an entry of the list has."""
    entries = equivalent_entries()
    diffs = mutant_diffs(names)
    return {n for n in names if fingerprint(n, diffs[n]) in entries}


def load_results() -> dict[str, dict[str, int | None]]:
    """Exit code per mutant, per staged module, from mutmut's ``.meta`` files."""
    out = {}
    for path in sorted(SUBSET):
        meta = STAGE / "mutants" / (path + ".meta")
        if meta.exists():
            out[path] = json.loads(meta.read_text())["exit_code_by_key"]
    return out


def _status(code) -> str:
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def report(globs: list[str]) -> tuple[str, dict]:
    """A Markdown table per module: mutants tried, killed, equivalent, surviving (and of those, text-only:
    :func:`text_only`), not run; and the totals."""
    again = json.loads(REKILL.read_text()) if REKILL.exists() else {}
    pending = json.loads(PENDING.read_text()) if PENDING.exists() else {}
    results = load_results()
    for codes in results.values():
        for n, c in codes.items():
            if c is None and n in pending:
                codes[n] = {"killed": 1, "timeout": 36, "survived": 0}[pending[n]]
    surv_names = [n for codes in results.values() for n, c in codes.items()
                  if _status(c) == "survived" and again.get(n) not in ("killed", "timeout")
                  and any(fnmatch.fnmatch(n, g) for g in globs)]
    diffs = mutant_diffs(surv_names)
    entries = equivalent_entries()
    eq = {n for n in surv_names if fingerprint(n, diffs[n]) in entries}
    keys = ("tried", "killed", "equivalent", "surviving", "text", "other")
    rows, tot = [], dict.fromkeys(keys, 0)
    survivors, others = [], []
    for path, codes in results.items():
        r = dict.fromkeys(keys, 0)
        for name, code in codes.items():
            if not any(fnmatch.fnmatch(name, g) for g in globs):
                continue
            s = _status(code)
            if s == "survived" and again.get(name) in ("killed", "timeout"):
                s = "killed"
            r["tried"] += 1
            if s in ("killed", "timeout", "caught by type check"):
                r["killed"] += 1
            elif s == "survived" and name in eq:
                r["equivalent"] += 1
            elif s == "survived":
                r["surviving"] += 1
                if text_only(diffs[name]):
                    r["text"] += 1
                else:
                    survivors.append(name)
            else:  # not checked, no tests, suspicious, segfault
                r["other"] += 1
                others.append((name, s))
        if r["tried"]:
            rows.append((path, r))
            for key in tot:
                tot[key] += r[key]
    lines = ["| module | tried | killed | equivalent | surviving | of which text-only | not run |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for path, r in rows + [("**total**", tot)]:
        lines.append(f"| {path} | {r['tried']} | {r['killed']} | {r['equivalent']} | {r['surviving']} | "
                     f"{r['text']} | {r['other']} |")
    nonequiv = tot["killed"] + tot["surviving"]  # run to a verdict and not listed as equivalent
    share = 100 * tot["surviving"] / nonequiv if nonequiv else 0.0
    numbers = tot["surviving"] - tot["text"]
    share_numbers = 100 * numbers / (nonequiv - tot["text"]) if nonequiv > tot["text"] else 0.0
    lines.append("")
    lines.append(f"surviving: {tot['surviving']} of {nonequiv} non-equivalent mutants run to a verdict = "
                 f"{share:.1f} % ({tot['other']} not run)")
    lines.append(f"surviving, text-only ones set aside: {numbers} of {nonequiv - tot['text']} = "
                 f"{share_numbers:.1f} %")
    if survivors:
        lines += ["", "surviving, not text-only (neither killed nor listed in docs/equivalent_mutants.md):"]
        lines += [f"  {s}" for s in sorted(survivors)]
    if others:
        lines += ["", f"not run to a verdict: {len(others)} (no covering test, not checked, suspicious)"]
    matched = {fingerprint(n, diffs[n]) for n in eq}
    # only functions whose mutants ran to a verdict in this run (a run of a few globs says nothing of the rest)
    ran = {re.sub(r"__mutmut_\d+$", "", n) for codes in results.values() for n, c in codes.items()
           if _status(c) in ("killed", "survived", "timeout") and any(fnmatch.fnmatch(n, g) for g in globs)}
    stale = sorted(name for fp, name in entries.items() if fp not in matched and fp[0] in ran)
    if stale:
        lines += ["", "listed as equivalent but no surviving mutant has that diff (the code changed, or a test now "
                      "kills it: check the entry):"]
        lines += [f"  {s}" for s in stale]
    return "\n".join(lines), dict(tot, share=share, share_numbers=share_numbers, survivors=survivors)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("only", nargs="*", help="mutant-name globs within the subset (default: the whole subset)")
    ap.add_argument("--list", action="store_true", help="generate the mutants and count them; run no test")
    ap.add_argument("--report", action="store_true", help="print the last run's table; run nothing")
    ap.add_argument("--keep", action="store_true",
                    help="reuse build/mutation (mutmut's recorded test coverage); default: stage afresh")
    ap.add_argument("--rev", default="HEAD", help="the commit to test (default HEAD; not the working tree)")
    ap.add_argument("--survivors", action="store_true",
                    help="with --keep: run again only the mutants that survived the last run (after adding tests)")
    ap.add_argument("--rekill", action="store_true",
                    help="run the last run's survivors against tests/test_mutants_*.py alone (fast; after adding "
                         "tests; the sources must be those of the last run)")
    ap.add_argument("--pending", action="store_true",
                    help="run the mutants the last mutmut run left unchecked (stopped early), each against the tests "
                         "mutmut recorded for its function, as mutmut would; with --rekill's machinery")
    ap.add_argument("--show", action="store_true", help="print the diff of every surviving mutant")
    ap.add_argument("--max-children", type=int, default=2, help="parallel mutant workers (default 2)")
    args = ap.parse_args(argv)

    globs = mutant_globs()
    selected = args.only or globs
    if args.survivors:
        if not args.keep:
            ap.error("--survivors needs --keep (the last run's results)")
        selected = sorted(n for codes in load_results().values() for n, c in codes.items()
                          if c == 0 and any(fnmatch.fnmatch(n, g) for g in selected))
        if not selected:
            print("no survivors in the last run")
            return 0
    if args.report:
        text, _ = report(globs)
        print(text)
        return 0

    if args.rekill or args.pending:
        # the mutants stay those of the last run (its commit's sources); the tests/test_mutants_*.py come from
        # --rev (default HEAD), where they were added after that run
        archive = subprocess.run(["git", "archive", args.rev, "tests", "docs"], cwd=REPO, check=True,
                                 capture_output=True).stdout
        tmp = STAGE.parent / "mutation-tests"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        work = STAGE.parent / ("mutation-pending" if args.pending else "mutation-rekill")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.meta", "*.spans", ".hypothesis")
        for sub in ("hwsim", "tests"):
            shutil.copytree(STAGE / "mutants" / sub, work / sub, ignore=ignore)
        for f in ("pyproject.toml", "conftest.py"):
            shutil.copy2(STAGE / f, work / f)
        for p in (tmp / "tests").glob("test_mutants_*.py"):
            shutil.copyfile(p, work / "tests" / p.name)
        shutil.copytree(tmp / "docs", work / "docs")  # user reference pages some of those tests read
        shutil.rmtree(tmp)
        print(f"mutants of {(STAGE / 'REVISION').read_text().strip()[:10]}, tests/test_mutants_*.py of {args.rev}")
        t0 = time.monotonic()
        if args.pending:
            done = json.loads(PENDING.read_text()) if PENDING.exists() else {}
            names = sorted(n for codes in load_results().values() for n, c in codes.items()
                           if c is None and n not in done and any(fnmatch.fnmatch(n, g) for g in selected)
                           and any(fnmatch.fnmatch(n, g) for g in globs))
            stats = json.loads((STAGE / "mutants" / "mutmut-stats.json").read_text())
            by_fn, dur = stats["tests_by_mangled_function_name"], stats["duration_by_test"]

            def tests_of(name):
                tests = by_fn.get(name.partition("__mutmut_")[0], [])
                return sorted(tests, key=lambda t: dur.get(t, 0.0))

            names = [n for n in names if tests_of(n)]
            v = rekill(names, args.max_children, store=PENDING, tests_of=tests_of, workdir=work)
        else:
            done = {n for n, v in (json.loads(REKILL.read_text()) if REKILL.exists() else {}).items()
                    if v != "survived"}  # survivors are tried again (tests may have been added since)
            names = sorted(n for codes in load_results().values() for n, c in codes.items()
                           if c == 0 and n not in done and any(fnmatch.fnmatch(n, g) for g in selected))
            eqs = equivalent_ids(names)
            names = [n for n in names if n not in eqs]
            # text-only survivors too: tests/test_mutants_text.py checks the notes against docs/cost_inventories.md
            v = rekill(names, args.max_children, workdir=work)
        print(f"killed {sum(x != 'survived' for x in v.values())} of {len(v)} survivors "
              f"in {(time.monotonic() - t0) / 60:.1f} min")
        os.chdir(REPO)
        text, _ = report(globs)
        print(text)
        return 0
    stage(fresh=not args.keep, rev=args.rev)
    REKILL.unlink(missing_ok=True)  # a mutmut run runs every test, the new ones included
    PENDING.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONWARNINGS=os.environ.get("PYTHONWARNINGS", ""), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    mutmut = [sys.executable, "-m", "mutmut"]
    t0 = time.monotonic()
    if args.list:
        # `mutmut print-time-estimates` needs the stats; generating alone: a run with no matching glob fails,
        # so count from the generated files' meta instead after a generation-only step.
        subprocess.run(mutmut + ["run", "--max-children", str(args.max_children), "nothing_matches_this"],
                       cwd=STAGE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        counts = {}
        for path, codes in load_results().items():
            counts[path] = sum(any(fnmatch.fnmatch(n, g) for g in globs) for n in codes)
        for path, c in counts.items():
            print(f"{c:5d}  {path}")
        print(f"{sum(counts.values()):5d}  total")
        return 0

    proc = subprocess.run(mutmut + ["run", "--max-children", str(args.max_children), *selected], cwd=STAGE,
                          env=env)
    elapsed = time.monotonic() - t0
    text, tot = report(globs)
    print()
    print(text)
    print(f"\ncommit: {(STAGE / 'REVISION').read_text().strip()}")
    print(f"wall time: {elapsed / 60:.1f} min ({args.max_children} workers)")
    if args.show:
        for name in tot["survivors"]:
            subprocess.run(mutmut + ["show", name], cwd=STAGE, env=env)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
