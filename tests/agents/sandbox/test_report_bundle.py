"""The report's models and parser, the sample setting, and the launcher's bundle (no Spark)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from agents.sandbox import launcher
from agents.sandbox.bundle import LAUNCHER, SQLGLOT_ZIP, content_hash, sandbox_bundle, sqlglot_zip
from agents.sandbox.report import REPORT_MARKER, BadSandboxReport, SampleSpec, parse_report, sample_spec

STATS = {"rows": 3, "columns": [{"name": "id", "type": "int", "nulls": 0, "distinct": 3, "min": "1", "max": "3",
                                 "mean": 2.0}]}


def report(**fields: Any) -> dict[str, Any]:
    body = {"healer_sandbox": 1, "mode": "preflight", "database": "healer_sandbox_12_1",
            "sample": {"kind": "rows", "value": 100}, "app_exit": 0, "app_error": None,
            "outputs": [{"kind": "table", "name": "mart.t", "sandbox": "healer_sandbox_12_1.mart__t",
                         "operations": ["saveAsTable mode=overwrite"], "format": None, "stats": STATS,
                         "baseline": None, "error": None}],
            "reads": [{"kind": "table", "name": "mart.src", "redirected": False, "sampled": True}],
            "seconds": {"app": 1.5, "stats": 0.5}}
    return body | fields


def line(body: dict[str, Any]) -> str:
    return REPORT_MARKER + json.dumps(body)


def test_parse_report_takes_the_last_report_line() -> None:
    log = "\n".join(["starting", line(report(app_exit=3)), "noise", line(report()), "Traceback ..."])
    parsed = parse_report(log)
    assert parsed is not None and parsed.app_exit == 0
    out = parsed.output("table", "mart.t")
    assert out is not None and out.stats is not None and out.stats.columns[0].mean == 2.0 and out.baseline is None
    assert parsed.reads[0].sampled and parsed.sample == SampleSpec(kind="rows", value=100)


def test_parse_report_without_a_line_is_none() -> None:
    assert parse_report("a log\nwithout the marker\n") is None
    assert parse_report("") is None


@pytest.mark.parametrize(("text", "message"), [
    (REPORT_MARKER + "{not json", "not JSON"),
    (line(report(mode="other")), "mode"),
    (line({k: v for k, v in report().items() if k != "outputs"}), "outputs"),
    (line(report(outputs=[{"kind": "table", "name": "t", "stats": {"rows": -1, "columns": []}}])), "rows"),
])
def test_malformed_report_lines_raise(text: str, message: str) -> None:
    with pytest.raises(BadSandboxReport, match=message):
        parse_report("before\n" + text)


def test_launcher_and_report_share_the_marker() -> None:
    assert launcher.REPORT_MARKER == REPORT_MARKER


@pytest.mark.parametrize(("text", "kind", "value", "conf"), [
    ("none", "none", None, "none"), ("rows:1000", "rows", 1000, "rows:1000"),
    (" fraction:0.1 ", "fraction", 0.1, "fraction:0.1"),
])
def test_sample_spec(text: str, kind: str, value: float | None, conf: str) -> None:
    spec = sample_spec(text)
    assert (spec.kind, spec.value, spec.conf_value()) == (kind, value, conf)
    assert launcher.parse_sample(spec.conf_value()).kind == kind  # the launcher accepts what we send


@pytest.mark.parametrize("text", ["", "all", "none:1", "rows", "rows:0", "rows:-5", "rows:1.5", "fraction:1",
                                  "fraction:0", "fraction:abc", "fraction:nan"])
def test_bad_sample_spec(text: str) -> None:
    with pytest.raises(ValueError, match="expected none, rows:N"):
        sample_spec(text)


def test_bundle_is_deterministic_and_named_by_content() -> None:
    bundle = sandbox_bundle()
    assert set(bundle.files) == {LAUNCHER, SQLGLOT_ZIP} and sandbox_bundle() is bundle
    assert bundle.name == "healer-sandbox-" + content_hash(bundle.files)[:12]
    assert sqlglot_zip() == bundle.files[SQLGLOT_ZIP]  # rebuilt: the same bytes
    names = zipfile.ZipFile(io.BytesIO(bundle.files[SQLGLOT_ZIP])).namelist()
    assert "sqlglot/__init__.py" in names and "sqlglot/dialects/spark.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert content_hash({**bundle.files, LAUNCHER: b"changed"}) != content_hash(bundle.files)


def run_isolated(directory: Path, code: str) -> str:
    """`code` in a Python without site-packages (-S): only the standard library and `directory`."""
    result = subprocess.run([sys.executable, "-S", "-c", code], cwd=directory, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_launcher_uses_the_bundled_sqlglot(tmp_path: Path) -> None:
    for name, data in sandbox_bundle().files.items():
        (tmp_path / name).write_bytes(data)
    out = run_isolated(tmp_path, "import launcher; r = launcher.rewrite_sql('INSERT INTO a.t SELECT 1', "
                                 "lambda parts, writing: ('sbx', 'a__t'), str); "
                                 "import sqlglot; print(sqlglot.__file__); print(r.sql)")
    assert out.splitlines() == [str(tmp_path / SQLGLOT_ZIP / "sqlglot" / "__init__.py"),
                                "INSERT INTO `spark_catalog`.`sbx`.`a__t` SELECT 1"]


def test_without_sqlglot_writing_sql_fails_and_reads_pass(tmp_path: Path) -> None:
    (tmp_path / LAUNCHER).write_bytes(sandbox_bundle().files[LAUNCHER])
    out = run_isolated(tmp_path, "import launcher\n"
                                 "print(launcher.rewrite_sql('SELECT 1', None, str).sql)\n"
                                 "try:\n launcher.rewrite_sql('INSERT INTO t SELECT 1', None, str)\n"
                                 "except launcher.HealerSandboxError as e:\n print(e)")
    assert out.splitlines() == ["SELECT 1", "sqlglot is not available to redirect this SQL: 'INSERT INTO t SELECT 1'"]
