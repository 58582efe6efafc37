"""Layering of the package (the design's "Layout and who may import whom"), checked on the source.

The sources of hwsim/, rtl/, models/ and cosim/ (installed as ``hwsim``, ``hwsim.rtl``, ``hwsim.models``,
``hwsim.cosim``) are parsed, not imported, and every import statement is resolved to a module of the package:

(a) no import cycle among the package's modules (imports executed at module level: the top of the file, and
    ``if``/``try``/``with`` blocks and class bodies there; imports inside functions are lazy and left out);
(b) no module imports another module's private (``_name``) names;
(c) ``hwsim.rtl`` imports only ``hwsim.rtl``, configs (``hwsim.config`` or a family's config module), the
    errors and the constants module ``hwsim.models.tables``: no cycle model, no algorithm of ``hwsim.models``;
(d) ``hwsim.models`` never imports ``hwsim.rtl`` or ``hwsim.cosim``.

Violations that remain in files being reworked are listed below by name, each with the file that fixes it;
delete an entry when its fix lands (the test also fails on an entry that no longer occurs). Any violation
not listed fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> package it is installed as (pyproject.toml, [tool.setuptools] package-dir)
PACKAGES = {"hwsim": "hwsim", "rtl": "hwsim.rtl", "models": "hwsim.models", "cosim": "hwsim.cosim"}

#: (a) module-level import cycles still present, as the sorted modules of the cycle.
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {}

#: (b) ``(importing module, imported module, name)`` private imports still present.
ALLOWED_PRIVATE: dict[tuple[str, str, str], str] = {}

#: (c) ``(rtl module, imported module)`` imports outside the allowed set still present.
ALLOWED_RTL: dict[tuple[str, str], str] = {}

#: (d) ``(models module, imported module)`` imports of rtl/cosim still present.
ALLOWED_MODELS: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [PACKAGES[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1].removesuffix(".py")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    out = {}
    for folder in PACKAGES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            out[_module_name(path)] = path
    return out


SOURCES = _sources()


class _Import:
    def __init__(self, target: str, names: tuple[str, ...], module_level: bool, line: int):
        self.target, self.names, self.module_level, self.line = target, names, module_level, line


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path) -> list[_Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out: list[_Import] = []

    def visit(node, module_level: bool):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    out.append(_Import(alias.name, (), module_level, child.lineno))
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(module, is_package, child)
                out.append(_Import(target, tuple(a.name for a in child.names), module_level, child.lineno))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                visit(child, False)  # typing-only imports are not executed
            else:
                visit(child, module_level)

    visit(tree, True)
    return out


def _is_type_checking(test) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


IMPORTS = {m: _imports(m, p) for m, p in SOURCES.items()}


def _package_module(name: str) -> str | None:
    """The module of the package that ``name`` (a module or ``module.attribute``) lives in, if any."""
    while name:
        if name in SOURCES:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(imp: _Import) -> list[tuple[str, str | None]]:
    """``(package module, imported name or None)`` pairs of one import statement."""
    out = []
    if not imp.names:
        mod = _package_module(imp.target)
        return [(mod, None)] if mod else []
    for name in imp.names:
        sub = f"{imp.target}.{name}"
        if sub in SOURCES:  # from package import submodule
            out.append((sub, None))
        else:
            mod = _package_module(imp.target)
            if mod:
                out.append((mod, name))
    return out


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in SOURCES}
    for m, imps in IMPORTS.items():
        for imp in imps:
            if module_level_only and not imp.module_level:
                continue
            for target, _ in _targets(imp):
                if target != m and not m.startswith(target + "."):  # a package's __init__ runs before its modules
                    graph[m].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan), as sorted tuples."""
    index, low, stack, on, out = {}, {}, [], set(), set()
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.add(tuple(sorted(comp)))

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for v in sorted(graph):
            if v not in index:
                strong(v)
    finally:
        sys.setrecursionlimit(limit)
    return out


def _check(found: set, allowed: dict, what: str) -> None:
    new = sorted(found - set(allowed))
    fixed = sorted(set(allowed) - found)
    assert not new, f"new {what}: " + "; ".join(map(str, new))
    assert not fixed, f"{what} fixed, delete from the allow-list in tests/test_layering.py: " + \
        "; ".join(map(str, fixed))


def test_sources_found():
    assert {"hwsim.config", "hwsim.rtl.mac_array", "hwsim.models.spec", "hwsim.cosim.runner"} <= set(SOURCES)


def test_no_module_level_import_cycle():
    _check(_cycles(_graph(module_level_only=True)), ALLOWED_CYCLES, "module-level import cycles")


def test_no_private_names_imported_across_modules():
    found = set()
    for m, imps in IMPORTS.items():
        for imp in imps:
            for target, name in _targets(imp):
                if name and name.startswith("_") and not name.startswith("__") and target != m:
                    found.add((m, target, name))
    _check(found, ALLOWED_PRIVATE, "private imports")


def _rtl_may_import(target: str) -> bool:
    last = target.rsplit(".", 1)[-1]
    return (target.startswith("hwsim.rtl.") or target == "hwsim.rtl" or last == "config" or last.endswith("_config")
            or target in ("hwsim.errors", "hwsim.models.errors", "hwsim.models.tables"))


def test_rtl_imports_only_configs_constants_and_rtl():
    found = set()
    for m, imps in IMPORTS.items():
        if not (m == "hwsim.rtl" or m.startswith("hwsim.rtl.")):
            continue
        for imp in imps:
            for target, _ in _targets(imp):
                if not _rtl_may_import(target):
                    found.add((m, target))
    _check(found, ALLOWED_RTL, "rtl imports of cycle models or algorithms")


def test_models_never_import_rtl_or_cosim():
    found = set()
    for m, imps in IMPORTS.items():
        if not (m == "hwsim.models" or m.startswith("hwsim.models.")):
            continue
        for imp in imps:
            for target, _ in _targets(imp):
                if target.startswith(("hwsim.rtl", "hwsim.cosim")):
                    found.add((m, target))
    _check(found, ALLOWED_MODELS, "models imports of rtl/cosim")


@pytest.mark.parametrize("allowed", [ALLOWED_CYCLES, ALLOWED_PRIVATE, ALLOWED_RTL, ALLOWED_MODELS])
def test_allow_list_entries_name_their_fix(allowed):
    for key, why in allowed.items():
        assert why.startswith("remaining: to be fixed in "), (key, why)


def test_the_checks_catch_what_they_should(tmp_path):
    """The AST helpers on a synthetic package: a cycle, a private import, relative imports."""
    a = ast.parse("from .b import _x\nimport hwsim.c\ndef f():\n    from hwsim.d import y\n")
    mods = []
    for node in ast.walk(a):
        if isinstance(node, ast.ImportFrom):
            mods.append(_resolve("hwsim.a", False, node))
    assert mods == ["hwsim.b", "hwsim.d"]
    g = {"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": {"x"}}
    assert _cycles(g) == {("x", "y", "z")}
