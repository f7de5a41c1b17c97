"""The package layout holds: each package imports (at module level or lazily, inside a
function) only the packages its `__init__` allows, and no two modules import each other."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

SIMD = REPO / "simd"
GROUND = {"simd", "simd.errors", "simd.clock", "simd.loading", "simd._version"}

# package -> the simd packages its modules may import at module level (docs/architecture.md)
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "log": {"model"},
    "plan": {"model", "log"},
    "transports": {"model", "plan", "log", "transports"},
    "runtime": {"model", "plan", "log", "transports", "runtime"},
    "results": {"model", "plan", "log", "results"},
    "report": {"model", "results", "report"},
    "ops": {"model", "plan", "log", "transports", "runtime", "results", "report", "ops"},
    "cli": {"model", "plan", "log", "transports", "runtime", "results", "report", "ops", "cli"},
}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def _top_level_imports(path: Path, lazy: bool = False) -> set[str]:
    """simd modules imported at module level (and with `lazy`, inside functions too)."""
    out = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree) if lazy else tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("simd"):
            for alias in node.names:  # `from simd.cli import run`: the submodule simd.cli.run
                sub = REPO.joinpath(*node.module.split("."), alias.name)
                is_module = sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file()
                out.add(f"{node.module}.{alias.name}" if is_module else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("simd")}
    return out


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else None


def test_packages_import_only_what_they_may() -> None:
    """An import of a package not allowed for its own package fails here, lazy ones too (an
    upward import inside a function is still an upward import)."""
    wrong = []
    for path in SIMD.rglob("*.py"):
        mod = _module(path)
        pkg = _package(mod)
        if pkg is None or pkg not in ALLOWED:
            continue
        for imp in _top_level_imports(path, lazy=True):
            target = _package(imp)
            if imp in GROUND or target is None or target == pkg or target in ALLOWED[pkg]:
                continue
            wrong.append(f"{mod} imports {imp}")
    assert wrong == []


def test_every_package_says_what_it_may_import() -> None:
    """Each package's __init__ has a docstring naming what it may import."""
    for pkg in ALLOWED:
        doc = ast.get_docstring(ast.parse((SIMD / pkg / "__init__.py").read_text())) or ""
        assert "import" in doc, pkg


def test_no_import_cycles() -> None:
    """No cycle among the imports between simd modules, lazy ones included."""
    graph: dict[str, set[str]] = {}
    for path in SIMD.rglob("*.py"):
        graph[_module(path)] = {i for i in _top_level_imports(path, lazy=True) if i not in GROUND}
    seen: set[str] = set()
    stack: list[str] = []

    def visit(m: str) -> None:
        if m in stack:
            raise AssertionError(" -> ".join([*stack[stack.index(m) :], m]))
        if m in seen:
            return
        stack.append(m)
        for n in graph.get(m, ()):
            visit(n)
        stack.pop()
        seen.add(m)

    for m in sorted(graph):
        visit(m)
