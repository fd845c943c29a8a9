"""Spark's error conditions and their categories: the installed jar, the shipped extract, real logs."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agents.distill import distill
from agents.errors import InvalidInput
from agents.remedies import conditions as cond
from agents.remedies.conditions import (
    CATEGORIES,
    EXTRACT,
    JSON_IN_JAR,
    category_of,
    classify,
    condition,
    find_jar,
    load_extract,
    load_jar,
)
from tests.fixtures.agents import load_spark_log


@pytest.fixture(scope="module")
def jar() -> Path:
    found = find_jar()
    if found is None:
        pytest.skip("pyspark is not installed: no Spark jar to read")
    return found


@pytest.fixture(scope="module")
def raw_conditions(jar: Path) -> dict:
    with zipfile.ZipFile(jar) as archive:  # read here independently of the module's loader
        return json.loads(archive.read(JSON_IN_JAR))


def test_every_condition_in_the_installed_jar_gets_a_category(raw_conditions: dict) -> None:
    assert len(raw_conditions) > 1000
    names = [*raw_conditions, *(f"{n}.{s}" for n, e in raw_conditions.items() for s in e.get("subClass", {}))]
    counts = {c: 0 for c in CATEGORIES}
    for name in names:
        verdict = classify(name)
        assert verdict.category in CATEGORIES and verdict.reason, name
        counts[verdict.category] += 1
    assert all(counts.values()), counts  # every category is used; no catch-all swallows the catalogue
    assert counts["code"] > counts["unknown"]


def test_the_loader_reads_the_installed_jar(jar: Path, raw_conditions: dict) -> None:
    assert jar.name in cond.source() and "installed pyspark" in cond.source()
    assert set(cond.conditions()) == set(raw_conditions)
    found = condition("DIVIDE_BY_ZERO")
    assert found is not None and found.sql_state == raw_conditions["DIVIDE_BY_ZERO"]["sqlState"] == "22012"
    assert any("try_divide" in line for line in found.message)  # templates come with the jar


@pytest.mark.parametrize(("name", "category"), [
    ("UNRESOLVED_COLUMN", "code"),
    ("UNRESOLVED_COLUMN.WITH_SUGGESTION", "code"),
    ("AMBIGUOUS_REFERENCE", "code"),
    ("MISSING_AGGREGATION", "code"),
    ("NUM_COLUMNS_MISMATCH", "code"),
    ("TABLE_OR_VIEW_ALREADY_EXISTS", "code"),  # overwrite the job's own table
    ("PATH_ALREADY_EXISTS", "code"),
    ("DIVIDE_BY_ZERO", "code"),  # try_divide: a data exception the code can tolerate
    ("CAST_INVALID_INPUT", "code"),  # try_cast
    ("CANNOT_PARSE_TIMESTAMP", "code"),
    ("ARITHMETIC_OVERFLOW", "code"),
    ("MALFORMED_RECORD_IN_PARSING", "code"),
    ("PYTHON_EXCEPTION", "code"),
    ("UNSUPPORTED_FEATURE", "code"),
    ("TABLE_OR_VIEW_NOT_FOUND", "data"),  # missing input: escalate
    ("PATH_NOT_FOUND", "data"),
    ("SCHEMA_NOT_FOUND", "data"),
    ("FAILED_READ_FILE.FILE_NOT_EXIST", "data"),
    ("USER_RAISED_EXCEPTION", "data"),  # the job's own assert_true/raise_error rejected the data
    ("CHECK_CONSTRAINT_VIOLATION", "data"),
    ("UNABLE_TO_ACQUIRE_MEMORY", "config"),
    ("AGGREGATE_OUT_OF_MEMORY", "config"),
    ("KRYO_BUFFER_OVERFLOW", "config"),
    ("DATA_SOURCE_NOT_FOUND", "config"),
    ("INVALID_EXECUTOR_MEMORY.CONFIG_MEMORY", "config"),
    ("INVALID_HANDLE.SESSION_CLOSED", "transient"),  # its own SQLSTATE 08003
    ("FAILED_JDBC.CONNECTION", "transient"),
    ("SPARK_JOB_CANCELLED", "transient"),
    ("INTERNAL_ERROR", "unknown"),
    ("TASK_WRITE_FAILED", "unknown"),  # a wrapper: its cause decides
    ("FAILED_READ_FILE.NO_HINT", "unknown"),
    ("_LEGACY_ERROR_TEMP_0035", "code"),  # a parser error
    ("_LEGACY_ERROR_TEMP_1246", "code"),  # an analysis error
])
def test_known_conditions(jar: Path, name: str, category: str) -> None:
    assert condition(name) is not None, f"{name} is not in Spark's catalogue any more"
    assert category_of(name) == category, classify(name).reason


def test_sub_conditions_take_the_main_sql_state_unless_they_have_their_own(raw_conditions: dict) -> None:
    sub = condition("UNRESOLVED_COLUMN.WITH_SUGGESTION")
    assert sub is not None and sub.sql_state == raw_conditions["UNRESOLVED_COLUMN"]["sqlState"] == "42703"
    assert any("Did you mean" in line for line in sub.message)
    assert "WITH_SUGGESTION" in condition("UNRESOLVED_COLUMN").sub_conditions  # type: ignore[union-attr]
    own = condition("INVALID_HANDLE.SESSION_CLOSED")
    assert own is not None and own.sql_state == "08003" != condition("INVALID_HANDLE").sql_state  # type: ignore[union-attr]
    assert condition("[unresolved_column.with_suggestion]") == sub  # as a log prints it, any case
    assert condition("UNRESOLVED_COLUMN.NO_SUCH_SUB") is None
    assert condition("NO_SUCH_CONDITION") is None and condition(None) is None and condition("") is None


def test_every_override_names_a_real_condition_or_sql_state(raw_conditions: dict) -> None:
    states = {e.get("sqlState") for e in raw_conditions.values()}
    states |= {s.get("sqlState") for e in raw_conditions.values() for s in e.get("subClass", {}).values()}
    for name in cond._BY_NAME:  # a typo in a table would silently classify nothing
        assert condition(name) is not None, name
    for state in cond._BY_STATE:
        assert state in states, state
    for klass in cond._BY_CLASS:
        assert any(s and s.startswith(klass) for s in states), klass


# --- the message, for legacy and unknown conditions ---------------------------------------------------

@pytest.mark.parametrize(("error_class", "message", "category"), [
    (None, "java.lang.OutOfMemoryError: Java heap space", "config"),
    (None, "Total size of serialized results of 3 tasks (1100.0 KiB) is bigger than "
           "spark.driver.maxResultSize (1024.0 KiB)", "config"),
    (None, "java.net.ConnectException: Connection refused", "transient"),
    (None, "org.apache.spark.shuffle.FetchFailedException: Failed to connect", "transient"),
    (None, "java.io.FileNotFoundException: /data/in.csv (No such file or directory)", "data"),
    (None, "NameError: name 'minimum_quantiy' is not defined", "code"),
    (None, "something odd happened", "unknown"),
    (None, "", "unknown"),
    ("_LEGACY_ERROR_TEMP_2097", "Could not execute broadcast in 300 secs. You can increase the timeout", "config"),
    ("_LEGACY_ERROR_TEMP_2097", "", "unknown"),  # an execution error: only its message can tell
    ("SOME_FUTURE_CONDITION", "Connection reset by peer", "transient"),
    ("SOME_FUTURE_CONDITION", "", "unknown"),
    ("INTERNAL_ERROR", "java.lang.OutOfMemoryError: Java heap space", "config"),  # unknown, the message tells
    ("DIVIDE_BY_ZERO", "Connection timed out", "code"),  # a named condition is not overruled by words
    ("TABLE_OR_VIEW_NOT_FOUND", "cannot resolve", "data"),
])
def test_the_message_decides_only_what_the_condition_does_not(error_class: str | None, message: str,
                                                              category: str) -> None:
    assert category_of(error_class, message) == category, classify(error_class, message).reason


# --- real Spark logs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("log_name", "category"), [
    ("unresolved_column", "code"),
    ("divide_by_zero", "code"),
    ("cast_invalid_input", "code"),
    ("ansi_timestamp", "code"),
    ("udf_null", "code"),
    ("tables_exists_df", "code"),
    ("path_not_found", "data"),
    ("table_not_found", "data"),
    ("driver_oom", "config"),  # no condition: the JVM's OutOfMemoryError
    ("python_names_misspelt", "code"),  # no condition: a Python NameError
])
def test_categories_of_real_failures(log_name: str, category: str) -> None:
    log = load_spark_log(log_name)
    evidence = distill(log.stdout, log.stderr, app_file_name=log.app_file_name)
    assert category_of(evidence.error_class, evidence.exception or "") == category


# --- the extract shipped for hosts without pyspark ----------------------------------------------------

def test_the_shipped_extract_matches_the_installed_jar(jar: Path) -> None:
    installed, shipped = load_jar(jar), load_extract(EXTRACT)
    assert shipped.sha256 == installed.sha256, (
        "agents/remedies/error_conditions.json is stale; regenerate it: python -m agents.remedies.conditions --extract")
    assert shipped.spark_version == installed.spark_version and jar.name in shipped.source
    assert set(shipped.conditions) == set(installed.conditions)
    assert set(shipped.sub_conditions) == set(installed.sub_conditions)
    for name in [*installed.conditions, *installed.sub_conditions]:
        assert shipped.lookup(name).sql_state == installed.lookup(name).sql_state, name  # type: ignore[union-attr]
        assert classify(name, catalogue=shipped) == classify(name, catalogue=installed), name


def test_the_extract_is_regenerated_from_the_jar(jar: Path, tmp_path: Path) -> None:
    written = cond.write_extract(jar, tmp_path / "extract.json")
    shipped = json.loads(EXTRACT.read_text(encoding="utf-8"))
    assert written["conditions"] == shipped["conditions"]
    for key in ("spark_version", "jar", "sha256", "generated", "generator"):
        assert written["provenance"][key], key
    again = load_extract(tmp_path / "extract.json")
    assert "pyspark is not installed" in again.source and again.sha256 == load_jar(jar).sha256


def test_bad_sources_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text('{"format": 0, "conditions": {}}', encoding="utf-8")
    with pytest.raises(InvalidInput, match="regenerate it"):
        load_extract(tmp_path / "old.json")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInput, match="cannot read the error-condition extract"):
        load_extract(tmp_path / "broken.json")
    with pytest.raises(InvalidInput, match="cannot read"):
        load_extract(tmp_path / "absent.json")
    (tmp_path / "not-a.jar").write_bytes(b"plain bytes")
    with pytest.raises(InvalidInput, match="cannot read error/error-conditions.json"):
        load_jar(tmp_path / "not-a.jar")
    with zipfile.ZipFile(tmp_path / "empty.jar", "w") as archive:
        archive.writestr(JSON_IN_JAR, "{}")
    with pytest.raises(InvalidInput, match="no error conditions"):
        load_jar(tmp_path / "empty.jar")


def test_the_command_line_names_the_source_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert cond.main([]) == 0
    listing = capsys.readouterr().out
    assert cond.source() in listing and all(f"  {c}" in listing for c in CATEGORIES)
    assert cond.main(["unresolved_column.with_suggestion"]) == 0
    assert capsys.readouterr().out.startswith("unresolved_column.with_suggestion: code (")


def test_without_pyspark_the_shipped_extract_is_used() -> None:
    # A fresh interpreter where pyspark cannot be imported (sys.modules[name] = None is Python's own
    # marker for an unavailable module), as on Cloudera AI: the extract answers, and says so.
    script = ("import sys; sys.modules['pyspark'] = None\n"
              "from agents.remedies import conditions as c\n"
              "print(c.source()); print(len(c.conditions()))\n"
              "print(c.category_of('UNRESOLVED_COLUMN.WITH_SUGGESTION'), c.category_of('TABLE_OR_VIEW_NOT_FOUND'))\n"
              "print(c.condition('INVALID_HANDLE.SESSION_CLOSED').sql_state)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr
    source, count, categories, state = done.stdout.splitlines()
    assert source.startswith("error_conditions.json (extract of Spark") and "pyspark is not installed" in source
    assert int(count) == len(json.loads(EXTRACT.read_text(encoding="utf-8"))["conditions"])
    assert categories == "code data" and state == "08003"
