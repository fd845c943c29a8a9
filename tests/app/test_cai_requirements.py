"""The CAI Application installs requirements-cai.txt: the served app must need nothing else."""

from __future__ import annotations

import re
import subprocess
import sys
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
