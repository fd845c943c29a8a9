"""The healing benchmark: its figures computed from records built here (no Spark), the scripted
model's answers taken from bench/fixes, bad input, and one real run of `python -m bench heal`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from agents.prompts import DiagnosisAnswer, PatchAnswer
from agents.record import (
    Attempt,
    Diagnosis,
    Evidence,
    FailedRun,
    IncidentRecord,
    LlmCall,
    Patch,
    Preflight,
    StageTiming,
)
from bench import scripted
from bench.__main__ import main as bench_main
from bench.errors import BenchUsageError
from bench.figures import ScenarioInfo, error_row, row_from_record, summarize
from bench.heal import HealBenchOptions, run_heal_bench
from bench.report import format_markdown, format_table, write_reports
from sample_jobs import get_scenario
from tests.paths import FIXES_DIR, REPO

ROOT = REPO
HEAL = ScenarioInfo("tutorial", "unresolved_column", "heal")
ESCALATE = ScenarioInfo("missing_input", "missing_input", "escalate")


def _record(state: str = "healed", run_id: int = 7) -> IncidentRecord:
    """Two attempts: the first fix's output check failed, the second passed."""
    def attempt(number: int, fix_run: int, check_run: int, passed: bool) -> Attempt:
        return Attempt(
            number=number,
            diagnosis=Diagnosis(category="code", root_cause="wrong column", confidence=0.9, source="model",
                                rule="unresolved-column" if number == 1 else None),
            patch=Patch(kind="code", code="print(1)\n", source="rule" if number == 1 else "model"),
            fix_job=f"job-fix-{number}", fix_run_id=fix_run, check_run_id=check_run, check_passed=passed,
            preflight=Preflight(job=f"job-fix-{number}-preflight", run_id=100 + number, status="succeeded",
                                check_run_id=200 + number, check_passed=True),
            comparison_passed=True, production_stats_run_id=300 + number,
            verdict="check-failed" if not passed else "healed",
        )

    return IncidentRecord(
        incident_id=f"job--{run_id}", job="job", run_id=run_id, state=state, reason="the reason",
        opened_at="2026-11-21T10:00:00.000000Z",
        failed_run=FailedRun(id=run_id, job="job", status="failed"),
        evidence=Evidence(raw_log_bytes=5000, distilled_tokens=400),
        attempts=[attempt(1, 8, 9, False), attempt(2, 10, 11, True)],
        llm_calls=[LlmCall(stage="diagnose", prompt_tokens=120, estimated_prompt_tokens=150, latency_s=1.5),
                   LlmCall(stage="patch", prompt_tokens=None, estimated_prompt_tokens=300, latency_s=2.25)],
        stages=[StageTiming(stage="monitor", started="2026-11-21T10:00:00.000000Z",
                            ended="2026-11-21T10:00:00.500000Z"),
                StageTiming(stage="verify", attempt=2, started="2026-11-21T10:01:00.000000Z",
                            ended="2026-11-21T10:01:30.250000Z")],
    )


DURATIONS = {7: 30.0, 8: 20.0, 9: 15.0, 10: 22.0, 11: 16.0,
             101: 12.0, 102: 13.0, 201: 5.0, 202: 6.0, 301: 2.0, 302: 2.0}  # pre-flights, sandbox checks, stats
SANDBOX_S = 12 + 13 + 5 + 6 + 2 + 2


def test_row_figures_come_from_the_record_and_the_run_durations():
    row = row_from_record(HEAL, _record(), DURATIONS)
    assert (row.outcome, row.right, row.check, row.attempts) == ("healed", True, "passed", 2)
    assert row.time_s == pytest.approx(30 + 90.25)  # failed run, then opened 10:00:00 → ended 10:01:30.25
    assert row.model_s == pytest.approx(3.75)
    assert (row.failed_run_s, row.fix_runs_s, row.check_runs_s) == (30.0, 42.0, 31.0)
    assert (row.preflight_s, row.sandbox_runs_s, row.compared) == (25.0, 15.0, "passed")
    assert row.floor_s == pytest.approx(30 + 42 + 31 + SANDBOX_S + 3.75)
    assert row.own_s == pytest.approx(30 + 90.25 - (30 + 42 + 31 + SANDBOX_S + 3.75))
    assert not row.deceptive and not row.false_heal
    assert (row.model_calls, row.prompt_tokens, row.estimated_prompt_tokens) == (2, 120, 450)
    assert (row.raw_log_bytes, row.distilled_tokens) == (5000, 400)
    assert (row.diagnosis, row.rule, row.patch) == ("model", "unresolved-column", "model")
    assert row.fix_jobs == ["job-fix-1", "job-fix-2"] and row.incident == "job--7"


def test_a_run_without_a_known_duration_leaves_the_floor_empty():
    row = row_from_record(HEAL, _record(), {**DURATIONS, 10: None})
    assert row.fix_runs_s is None and row.floor_s is None and row.own_s is None
    assert row.time_s == pytest.approx(30 + 90.25)
    assert row_from_record(HEAL, _record(), {**DURATIONS, 7: None}).time_s is None  # failed run unknown


def test_right_outcome_depends_on_what_the_scenario_expects():
    assert row_from_record(ESCALATE, _record("escalated"), DURATIONS).right
    assert not row_from_record(ESCALATE, _record("healed"), DURATIONS).right
    assert not row_from_record(HEAL, _record("escalated"), DURATIONS).right
    failed = error_row(HEAL, "healing raised CdeConnectionError: down", _record("verifying"), DURATIONS)
    assert (failed.outcome, failed.right, failed.attempts) == ("error", False, 2)
    bare = error_row(ESCALATE, "loading failed: SetupRunFailed: boom")
    assert (bare.outcome, bare.attempts, bare.time_s, bare.check) == ("error", 0, None, "none")


def test_a_wrong_fix_is_a_false_heal_only_when_the_attempt_that_tried_it_healed():
    caught = _record()
    caught.attempts[0].verdict = "data comparison failed: the fix writes 3 rows where the last good run wrote 120"
    row = row_from_record(HEAL, caught, DURATIONS, deceptive=True)
    assert (row.deceptive, row.false_heal, row.right) == (True, False, True)  # healed later, by the right fix
    fooled = _record()
    fooled.attempts = fooled.attempts[1:]  # the wrong fix's own attempt ended healed
    row = row_from_record(HEAL, fooled, DURATIONS, deceptive=True)
    assert (row.false_heal, row.right) == (True, False)
    assert summarize([row]).false_heals == 1 and "false heals 1/1 deceptive" in summarize([row]).line()
    escalated = row_from_record(HEAL, _record("escalated"), DURATIONS, deceptive=True)
    assert (escalated.false_heal, escalated.right) == (False, True)


def test_table_markdown_and_json_show_every_row_and_the_summary(tmp_path):
    rows = [
        row_from_record(HEAL, _record(run_id=7), DURATIONS),
        row_from_record(ScenarioInfo("result_size", "resource_limit", "heal"), _record(run_id=12),
                        {**DURATIONS, 12: 10.0}),
        row_from_record(ScenarioInfo("wrong_args", "wrong_arguments", "heal"), _record("escalated", 7), DURATIONS),
        error_row(ESCALATE, "loading failed: SetupRunFailed: generator failed"),
    ]
    summary = summarize(rows)
    assert (summary.scenarios, summary.healed, summary.expected_heal, summary.right, summary.errors) == (4, 2, 3, 2, 1)
    assert summary.median_time_to_heal_s == pytest.approx(((30 + 90.25) + (10 + 90.25)) / 2)
    assert summary.median_floor_s == pytest.approx(((30 + 76.75 + SANDBOX_S) + (10 + 76.75 + SANDBOX_S)) / 2)
    assert (summary.median_preflight_s, summary.median_fix_run_s, summary.false_heals) == (25.0, 42.0, 0)
    assert (summary.model_calls, summary.prompt_tokens, summary.estimated_prompt_tokens) == (6, 360, 1350)

    table = format_table(rows, summary)
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["scenario", "failure"]
    widths = {len(line) for line in lines[2:6]}
    assert lines[2].startswith("tutorial ") and lines[5].startswith("missing_input ")
    assert max(widths) <= len(lines[1])  # every row fits the ruler: fixed width
    assert summary.line() in table
    assert "wrong_args: escalated: the reason" in table
    assert "missing_input: error: loading failed: SetupRunFailed: generator failed" in table

    meta = {"model": "none: rules only", "scenarios": [r.scenario for r in rows]}
    markdown = format_markdown(rows, summary, meta)
    assert "| tutorial | unresolved_column | heal | healed | yes | passed | passed | - | 2 |" in markdown
    json_path, md_path = write_reports(tmp_path / "out", "heal-test", rows, summary, meta)
    data = json.loads(json_path.read_text())
    assert [r["scenario"] for r in data["rows"]] == ["tutorial", "result_size", "wrong_args", "missing_input"]
    assert data["summary"]["healed"] == 2 and data["model"] == "none: rules only"
    assert md_path.read_text() == markdown


def test_scripted_answers_are_the_known_good_fixes():
    tutorial = get_scenario("tutorial")
    diagnosis, patch = scripted.answers(tutorial)
    assert DiagnosisAnswer.model_validate(diagnosis).category == "code"
    original = tutorial.resource_files(tutorial.app_resource)[tutorial.app_file].read_text()
    answer = PatchAnswer.model_validate(patch)
    assert answer.code is None and answer.edits  # the edits, not the file written back
    assert answer.to_patch(original).code == (FIXES_DIR / "tutorial" / "sparkApp.py").read_text()

    _, config = scripted.answers(get_scenario("result_size"))
    fix = json.loads((FIXES_DIR / "result_size" / "fix.json").read_text())
    assert config["kind"] == "config" and config["conf_changes"] == fix["spark"]["conf"]

    _, rerun = scripted.answers(get_scenario("transient_rerun"))
    assert rerun["kind"] == "rerun" and rerun["code"] is None
    [escalate] = scripted.answers(get_scenario("missing_input"))
    assert escalate["category"] == "data"


def test_no_known_fix_is_a_clear_error(tmp_path):
    with pytest.raises(scripted.NoKnownFix, match="no known fix of the application file sparkApp.py"):
        scripted.answers(get_scenario("tutorial"), fixes_dir=tmp_path)
    (tmp_path / "result_size").mkdir()
    (tmp_path / "result_size" / "fix.json").write_text("{not json")
    with pytest.raises(scripted.NoKnownFix, match="not valid JSON"):
        scripted.answers(get_scenario("result_size"), fixes_dir=tmp_path)


def test_unknown_scenario_is_refused_before_any_work(capsys, tmp_path):
    assert bench_main(["heal", "--scenarios", "result_size,no_such_one", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario(s) no_such_one" in err and "result_size" in err
    assert not list(tmp_path.iterdir())


def test_bad_settings_are_refused_before_any_work(tmp_path):
    options = HealBenchOptions(scenarios=("result_size",), out_dir=tmp_path / "out")
    with pytest.raises(BenchUsageError, match="HEAL_MAX_ATTEMPTS must be a whole number"):
        run_heal_bench(options, environ={"HEAL_MAX_ATTEMPTS": "many"}, dotenv=None)
    with pytest.raises(BenchUsageError, match="--cde env needs JOBS_API_URL"):
        run_heal_bench(replace(options, cde="env"), environ={}, dotenv=None)
    dotenv = tmp_path / ".env"  # read as the healer reads it: an empty exported value does not hide it
    dotenv.write_text("HEAL_MAX_PATCH_TRIES=0\n")
    with pytest.raises(BenchUsageError, match="HEAL_MAX_PATCH_TRIES must be at least 1"):
        run_heal_bench(options, environ={"HEAL_MAX_PATCH_TRIES": ""}, dotenv=dotenv)
    assert not (tmp_path / "out").exists()


def test_bench_heal_runs_result_size_end_to_end(tmp_path):
    """One real run: local CDE, real Spark (generator, failing app, fix, check), rules only. It is
    also the real-Spark test of a configuration remedy: the rule raises spark.driver.maxResultSize."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "JOBS_API", "WORKLOAD_", "HEAL"))}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "heal", "--scenarios", "result_size", "--model", "none",
         "--out", str(out), "--run-timeout", "600", "--keep-data", str(tmp_path / "kept")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=850,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("scenario ")
    row_line = next(line for line in lines if line.startswith("result_size "))
    assert row_line.split()[:8] == ["result_size", "resource_limit", "heal", "healed", "yes", "passed", "passed", "-"]
    assert lines[[i for i, line in enumerate(lines) if line.startswith("healed ")][0]].startswith("healed 1/1")

    [json_path] = out.glob("heal-*.json")
    [md_path] = out.glob("heal-*.md")
    data = json.loads(json_path.read_text())
    [row] = data["rows"]
    assert (row["scenario"], row["outcome"], row["right"], row["attempts"], row["check"]) == (
        "result_size", "healed", True, 1, "passed")
    assert (row["diagnosis"], row["rule"], row["patch"], row["model_calls"]) == ("rule", "max-result-size", "rule", 0)
    assert row["raw_log_bytes"] > 0 and row["distilled_tokens"] > 0
    assert row["time_s"] > 0 and row["failed_run_s"] > 0 and row["fix_runs_s"] > 0 and row["check_runs_s"] > 0
    assert row["preflight_s"] > 0 and row["sandbox_runs_s"] > 0 and row["compared"] == "passed"
    assert row["floor_s"] == pytest.approx(row["failed_run_s"] + row["fix_runs_s"] + row["check_runs_s"]
                                           + row["preflight_s"] + row["sandbox_runs_s"])
    assert data["summary"]["healed"] == 1 and data["model"] == "none: rules only"
    assert "| result_size | resource_limit | heal | healed | yes | passed | passed | - | 1 |" in md_path.read_text()

    # the configuration remedy, from the healer's record: the job's settings changed, not its code
    [record_path] = (tmp_path / "kept").rglob("incidents/*.json")
    record = IncidentRecord.model_validate_json(record_path.read_text())
    attempt = record.attempts[0]
    assert attempt.diagnosis.rule == "max-result-size" and attempt.patch.kind == "config"
    assert attempt.fixed_code == record.original.code
    raised = attempt.patch.conf_changes["spark.driver.maxResultSize"]
    assert raised != record.original.definition["spark"]["conf"]["spark.driver.maxResultSize"]
    assert "spark.driver.maxResultSize" in attempt.diff and attempt.check_passed is True
