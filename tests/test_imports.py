"""The import structure, read from the source with `ast`: layers point one way, stages stand side
by side, and no module imports itself back through others (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agents.graph import STAGES
from tests.paths import REPO

PACKAGES = ("agents", "app", "bench", "cde_client", "cde_local", "sample_jobs", "tests")

# What each package may import of ours. The product never imports the tests; the benchmark ships
# its own test double; the CDE packages know nothing of the healer.
MAY_IMPORT = {
    "cde_client": set(),
    "cde_local": set(),
    "sample_jobs": {"cde_client", "agents"},  # agents: the one .env loader and settings names
    "agents": {"cde_client"},
    "app": {"agents", "cde_client", "sample_jobs", "cde_local"},  # the demo starts a local CDE
    "bench": {"agents", "cde_client", "cde_local", "sample_jobs"},
    "tests": set(PACKAGES),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "data" not in path.relative_to(REPO).parts:
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The first-party modules `name` imports (the submodule when `from package import submodule`)."""
    is_package = path.name == "__init__.py"
    result: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import agents.guard.code` → the deepest module of ours
                target = target.rpartition(".")[0]
            if target and target != name:
                result.add(target)
    return result


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_walk_sees_the_imports_it_must() -> None:
    """Guards the walker itself: relative imports, `from package import module`, nested imports."""
    assert "sample_jobs.loader" in GRAPH["sample_jobs"]  # from .loader import ...
    assert "agents.prompts" in GRAPH["agents.diagnose"]  # from agents import prompts
    assert "agents.guard.vocabulary" in GRAPH["agents.guard.code"]  # from agents.guard import vocabulary
    assert "agents.llm" in GRAPH["agents.healer"]  # imported inside a function


def test_no_stage_imports_another_stage() -> None:
    stages = {fn.__module__ for _, fn, _ in STAGES}
    assert len(stages) >= 7, stages
    crossing = {s: sorted(GRAPH[s] & (stages - {s})) for s in stages if GRAPH[s] & (stages - {s})}
    assert crossing == {}


@pytest.mark.parametrize("package", [p for p in PACKAGES if p != "tests"])
def test_layers_point_one_way(package: str) -> None:
    allowed = MAY_IMPORT[package] | {package}
    wrong = {m: sorted(t for t in GRAPH[m] if t.split(".")[0] not in allowed)
             for m in GRAPH if m.split(".")[0] == package}
    assert {m: t for m, t in wrong.items() if t} == {}


def _cycle() -> list[str] | None:
    """One import cycle among our modules, or None (depth-first search, three colours)."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        colour[module] = 1
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if colour.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in colour:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        colour[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in colour:
            found = visit(module)
            if found:
                return found
    return None


def test_no_import_circle_anywhere() -> None:
    cycle = _cycle()
    assert cycle is None, " → ".join(cycle or [])


def test_errors_are_raised_by_meaning_never_as_the_bare_base() -> None:
    """`HealerError` alone says nothing of what happens next (retry or end the incident): raise a subclass."""
    bare = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if called == "HealerError":
                    bare.append(f"{name}:{node.lineno}")
    assert bare == []
