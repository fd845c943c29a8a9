"""The CAI Application installs requirements-cai.txt: the served app must need nothing else."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from tests.paths import REPO

ROOT = REPO


def _names(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {re.split(r"[<>=!~\[ ]", line)[0].lower() for line in lines if line and not line.startswith("-")}


def test_cai_requirements_are_a_subset_without_spark():
    cai, full = _names(ROOT / "requirements-cai.txt"), _names(ROOT / "requirements.txt")
    assert cai <= full
    assert "pyspark" not in cai


def test_serving_the_app_imports_no_spark_and_no_local_cde():
    code = ("import sys, app.server, app.dashboard, app.worker, agents.healer; "
            "bad = [m for m in ('pyspark', 'cde_local', 'sample_jobs') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# Imported by code that never runs in the CAI Application: the sandbox launcher runs on the CDE
# cluster inside Spark, and the guard's vocabulary reads pyspark only to regenerate its data file.
RUNS_ELSEWHERE = {("pyspark", "agents/sandbox/launcher.py"), ("pyspark", "agents/guard/vocabulary.py")}
SERVED = ("agents", "app", "cde_client")  # what `python -m app serve` runs: the healer, the dashboard, the client


def _installed_with(names: set[str]) -> set[str]:
    """The distributions installing `names` brings (their requirements, transitively; extras aside)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [re.split(r"[<>=!~\[ ;(]", need)[0] for need in needs if "extra ==" not in need]
    return seen


def test_every_library_the_served_code_imports_is_installed_by_the_cai_requirements():
    """Lazy imports included (a panel's plotting, the anomaly detector's forest, the model registry):
    each top-level module the served packages import is the stdlib's, ours, or comes with a
    distribution requirements-cai.txt installs."""
    ours = {"agents", "app", "cde_client", "cde_local", "sample_jobs", "bench", "tests"}
    imported: dict[str, set[str]] = {}
    for package in SERVED:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = str(path.relative_to(ROOT))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in ours and (top, where) not in RUNS_ELSEWHERE:
                        imported.setdefault(top, set()).add(where)
    installed = _installed_with(_names(ROOT / "requirements-cai.txt"))
    providers = packages_distributions()
    missing = {top: sorted(wheres) for top, wheres in imported.items()
               if not {d.lower().replace("_", "-") for d in providers.get(top, [top])} & installed}
    assert missing == {}, f"imported by the served code, not installed on CAI: {missing}"
