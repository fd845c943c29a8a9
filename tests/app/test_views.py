"""The dashboard's views, computed from records written and read back with the real RecordStore."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from agents.config import Settings
from agents.record import Candidate, IncidentRecord, Patch, Preflight, RecordStore, StageTiming
from agents.watch_status import WatchStatus
from app import console, views
from app.dashboard import panel_values
from app.service import FailedRunRow, StatusStrip
from tests.fixtures.app import (
    TUTORIAL_EXCEPTION,
    TUTORIAL_FRAME,
    awaiting_record,
    escalated_record,
    in_progress_record,
    sample_records,
    tutorial_record,
)


@pytest.fixture
def stored(app_store: RecordStore) -> dict[str, IncidentRecord]:
    """The sample incidents after a round trip through the store, keyed by job."""
    for record in sample_records():
        app_store.save(record)
    return {r.job: r for r in app_store.all()}


def test_incident_rows_are_newest_first_with_state_attempts_and_verdict(app_store, stored):
    rows = views.incident_rows(app_store.all())
    assert [row[1] for row in rows] == ["nightly-agg", "schema-drift", "sql-select-fail", "ingest-daily"]
    tutorial = rows[2]
    assert tutorial[0] == "healed"
    assert tutorial[2] == "12"
    assert tutorial[3] == views.short_time(stored["sql-select-fail"].opened_at, zone=False)
    assert tutorial[4] == "1"
    assert tutorial[5] == "healed"
    assert rows[0][0] == "verifying"
    assert rows[1][0] == "awaiting approval"
    assert rows[3][5].startswith("escalated: the input data is missing")
    assert all(len(row) == len(views.INCIDENT_HEADERS) for row in rows)


def test_incident_table_styles_the_shown_row_and_maps_rows_back_to_incidents(app_store, stored):
    records = app_store.all()
    table = views.incident_table(records, "sql-select-fail--12")
    assert table["headers"] == views.INCIDENT_HEADERS
    styling = table["metadata"]["styling"]
    shown = [i for i, row in enumerate(styling) if "background" in row[1]]
    assert shown == [2]
    assert views.incident_from_row(table["data"][2]) == "sql-select-fail--12"
    assert views.incident_from_row(["x"]) is None
    assert views.incident_from_row(["healed", "job", "not-a-number"]) is None
    assert views.incident_table([], None)["data"] == []


def test_tutorial_code_views_show_the_original_and_the_fix(stored):
    record = stored["sql-select-fail"]
    assert "SELECT customer_id, balance" in views.original_code(record)
    assert "SELECT account_id, balance" in views.fixed_code(record)
    assert "customer_id" not in views.fixed_code(record)
    diff = views.diff_text(record)
    assert '-report = spark.sql("SELECT customer_id' in diff
    assert '+report = spark.sql("SELECT account_id' in diff
    rendered = views.diff_html(diff)
    assert '<span class="hd-d-del">-report = spark.sql(&quot;SELECT customer_id' in rendered
    assert '<span class="hd-d-add">+report = spark.sql(&quot;SELECT account_id' in rendered


def test_diff_is_computed_when_the_record_has_none_and_config_fixes_list_their_settings(stored):
    awaiting = stored["schema-drift"]
    assert awaiting.attempts[-1].diff == ""
    diff = views.diff_text(awaiting)
    assert '-orders.groupBy("order_date").agg(F.sum(F.col("qty"))' in diff
    assert '+orders.groupBy("order_date").agg(F.sum(F.col("quantity"))' in diff
    assert diff.startswith("--- a/drift.py\n+++ b/drift.py\n")

    config = stored["nightly-agg"]
    assert "+ driverMemory: 2g" in views.diff_text(config)
    assert views.fixed_code(config) == views.original_code(config)  # the same code runs with more memory
    assert views.diff_text(stored["ingest-daily"]) == ""
    assert "No change proposed yet" in views.diff_html("")


def test_header_cards_show_original_and_fixed_jobs(stored):
    record = stored["sql-select-fail"]
    original = views.original_card(record)
    assert (original.name, original.resource, original.run_id, original.status) == (
        "sql-select-fail", "sql-select-fail-files", "12", "failed")
    assert original.last == views.short_time(record.failed_run.ended)
    fixed = views.fixed_card(record)
    assert (fixed.name, fixed.resource, fixed.run_id, fixed.status) == (
        "sql-select-fail-fix-1", "sql-select-fail-fix-1-files", "14", "succeeded")
    assert fixed.last == "healed · check passed"
    assert fixed.tone == "good"
    html = views.card_html(fixed)
    assert "<dd>sql-select-fail-fix-1</dd>" in html and "Fixed job (attempt 1)" in html

    escalated = views.fixed_card(stored["ingest-daily"])
    assert escalated.name == "no fix deployed"
    assert escalated.last.startswith("escalated: the input data is missing")
    assert escalated.tone == "bad"
    assert views.fixed_card(stored["schema-drift"]).name == "awaiting approval"
    running = views.fixed_card(stored["nightly-agg"])
    assert (running.name, running.run_id, running.status) == ("nightly-agg-fix-1", "33", "running")


def test_log_excerpt_marks_the_evidence_lines_and_the_full_log_keeps_every_line(stored):
    record = stored["sql-select-fail"]
    needles = views.evidence_needles(record)
    lines = views.marked_lines(record.driver_log, needles)
    marked = [text for _, text, is_marked in lines if is_marked]
    assert TUTORIAL_EXCEPTION in marked
    assert "  " + TUTORIAL_FRAME in marked
    assert not any("INFO SparkContext: Running Spark" in text for text in marked)

    excerpt = views.log_excerpt_html(record)
    assert "2 evidence lines of 24" in excerpt
    assert excerpt.count('class="hd-ev"') == 2
    assert "Running Spark version" not in excerpt  # far from the evidence: only in the full log
    assert "name `customer_id` cannot be resolved" in excerpt

    full = views.full_log_html(record)
    assert full.count('class="hd-ev"') == 2
    assert full.count('<span class="hd-no">') == len(record.driver_log.splitlines())
    assert "Running Spark version 4.3.0" in full
    assert "&lt;module&gt;" in full and "<module>" not in full


def test_log_excerpt_falls_back_to_the_tail_when_no_line_matches(stored):
    record = stored["sql-select-fail"].model_copy(update={"evidence": None, "attempts": []})
    excerpt = views.log_excerpt_html(record)
    assert "no line matched the evidence" in excerpt
    assert 'class="hd-ev"' not in excerpt
    assert "Shutdown hook called" in excerpt
    empty = record.model_copy(update={"driver_log": ""})
    assert "No driver log fetched yet" in views.log_excerpt_html(empty)


def test_reasoning_trace_tells_the_whole_story(stored):
    text = views.reasoning_markdown(stored["sql-select-fail"])
    assert "`UNRESOLVED_COLUMN.WITH_SUGGESTION`" in text
    assert "**Diagnosis** (model): category **code**, confidence **93%**" in text
    assert "its key is `account_id`" in text
    assert "**Patch** (code, by model)" in text
    assert "✗ **rejected by** `bounded-diff`: the first proposal rewrote 9 of 14 lines" in text
    assert "✓ `not-a-no-op`" in text
    assert "Fix job `sql-select-fail-fix-1` run 14: succeeded" in text
    assert "Output check `sql-select-fail-check`: passed" in text
    assert "**State:** healed — fix run succeeded and the output check passed" in text
    assert "3 calls to `nvidia/llama-3.3-nemotron-super-49b-v1`: 4,544 prompt + 803 completion tokens" in text
    assert "| diagnose | 1 | function_calling | 1204 | 187 | 3.4 s | ok |" in text

    escalated = views.reasoning_markdown(stored["ingest-daily"])
    assert "(rule `path-not-found`): category **data**" in escalated
    assert "**State:** escalated — the input data is missing" in escalated
    assert "None (rules only)." in escalated
    assert "(in progress)" in views.reasoning_markdown(stored["nightly-agg"])
    assert "`driverMemory` → `2g`" in views.reasoning_markdown(stored["nightly-agg"])


def test_markdown_from_records_cannot_inject_markup():
    record = tutorial_record()
    record.attempts[0].diagnosis.root_cause = "<script>alert(1)</script> **bold** `kept_code`"
    record.attempts[0].diagnosis.evidence = ["```", "line with ``` inside"]
    text = views.reasoning_markdown(record)
    assert "<script>" not in text
    assert "\\<script\\>" in text and "\\*\\*bold\\*\\*" in text and "`kept_code`" in text
    block = views.md_code_block("a ``` b\n````")
    assert block.startswith("`````\n") and block.endswith("\n`````")


def test_stage_timeline_shows_durations_and_live_elapsed_time():
    record = in_progress_record(started_ago_s=40.0)
    started = views.parse_time(record.stages[-1].started)
    now = started + timedelta(seconds=12.5)
    rows = views.stage_rows(record, now)
    assert [r.stage for r in rows] == ["monitor", "log-fetch", "diagnose", "patch", "redeploy", "verify"]
    assert rows[4].seconds == pytest.approx(1.6) and not rows[4].running
    assert rows[-1].running and rows[-1].seconds == pytest.approx(12.5)
    html = views.timeline_html(record, now)
    assert "12.5 s so far" in html and "hd-running" in html and ">elapsed<" in html

    later = views.stage_rows(record, now + timedelta(seconds=30))
    assert later[-1].seconds == pytest.approx(42.5)

    # an incident that ended without closing a stage stops counting
    ended = record.model_copy(update={"state": "error"})
    assert views.stage_rows(ended, now)[-1].seconds is None
    assert views.stage_rows(ended, now)[-1].running is False
    assert ">total<" in views.timeline_html(tutorial_record(), now)
    assert "1 min 26 s" in views.timeline_html(tutorial_record(), now)


def test_stage_duration_falls_back_to_timestamps():
    record = escalated_record()
    record.stages = [StageTiming(stage="log-fetch", started="2026-01-01T00:00:00.000000Z",
                                 ended="2026-01-01T00:01:05.000000Z")]
    assert views.stage_rows(record, datetime.now(timezone.utc))[0].seconds == pytest.approx(65.0)
    assert views.format_seconds(65.0) == "1 min 05 s"
    assert views.format_seconds(3725.0) == "1 h 02 min"


def test_status_strip_shows_configuration_and_never_a_secret():
    strip = StatusStrip(
        cde_url="https://alice:hunter2-pass@service.cde.example.com/dex/api/v1?access_token=tok-123456",
        user="alice",
        model="nvidia/llama-3.3-nemotron-super-49b-v1",
        mode="approve",
        watched_jobs=["sql-select-fail", "nightly-agg"],
        watcher=WatchStatus(alive=True, last_poll="2026-01-01T10:00:00.000000Z", cycles=42,
                              last_error="401 from CDE; Authorization: Bearer eyJhbGciOiJIUzI1.eyJzdWIiOiJhbGljZSJ9.abc "
                                         "password=hunter2-pass token: sk-live-998877"),
    )
    html = views.status_html(strip, secrets=("sk-live-998877",))
    for secret in ("hunter2-pass", "tok-123456", "eyJhbGciOiJIUzI1", "sk-live-998877", "access_token"):
        assert secret not in html
    assert "https://***@service.cde.example.com/dex/api/v1?***" in html
    assert "nvidia/llama-3.3-nemotron-super-49b-v1" in html
    assert "sql-select-fail, nightly-agg" in html
    assert "42 cycles" in html and "last error: 401 from CDE" in html

    rules = StatusStrip(cde_url="http://127.0.0.1:8765/dex/api/v1", user="", model="rules only", mode="auto")
    html = views.status_html(rules)
    assert "rules only" in html and "all jobs" in html and "watcher stopped" in html and "Environment" not in html
    promoted = StatusStrip(cde_url="http://127.0.0.1:8766/dex/api/v1", user="u", model="rules only", mode="auto",
                           environment="prd · fixes proven in dev · promotion approve")
    assert "<b>Environment</b> prd · fixes proven in dev · promotion approve" in views.status_html(promoted)
    unavailable = views.status_html(None, secrets=("pw-77",), error="connection refused, password pw-77")
    assert "Healer status unavailable" in unavailable and "connection refused" in unavailable
    assert "pw-77" not in unavailable


def _page(record: IncidentRecord | None, wanted: str | None = None) -> views.Page:
    return views.Page(records=[record] if record else [], record=record, now=datetime.now(timezone.utc),
                      wanted=wanted)


def test_records_views_never_show_secrets_that_slipped_into_a_record():
    record = tutorial_record()
    record.driver_log += "\nspark.hadoop.fs.s3a.secret.key password=S3cr3tValue token: abcdefgh1234\n"
    record.reason = "CDE said: Authorization: Basic ZGV4LXVzZXI6ZGV4LXBhc3N3b3Jk"
    page = " ".join(str(v) for v in panel_values(_page(record)).values())
    assert "S3cr3tValue" not in page and "abcdefgh1234" not in page and "ZGV4LXVzZXI6" not in page
    assert "customer_id" in page  # the rest is still there


def test_html_views_escape_log_and_record_text():
    record = awaiting_record()
    record.driver_log = '<img src=x onerror="alert(1)"> [UNRESOLVED_COLUMN.WITH_SUGGESTION] `qty`\n'
    record.job = "<b>job</b>"
    values = panel_values(_page(record))
    for name in ("log_excerpt", "full_log", "original_card", "heading"):
        assert "<img" not in values[name] and "<b>job" not in values[name], name
    assert "&lt;img src=x" in values["log_excerpt"]


def test_every_panel_for_each_kind_of_incident(stored):
    awaiting = panel_values(_page(stored["schema-drift"]))
    assert awaiting["approval"] == awaiting["approval_for"] == "schema-drift--21"
    assert "incident schema-drift--21 is waiting for your approval" in awaiting["approval_note"]
    assert 'F.col("quantity")' in awaiting["fixed_code"]
    assert "awaiting approval" in awaiting["heading"]
    healed = panel_values(_page(stored["sql-select-fail"]))
    assert healed["approval"] == healed["approval_for"] == healed["approval_note"] == ""
    assert [views.is_live(stored[job]) for job in ("nightly-agg", "ingest-daily")] == [True, False]

    empty = panel_values(_page(None))
    assert (empty["original_code"], empty["fixed_code"], empty["approval"], empty["record_file"]) == (
        "", "", "", None)
    assert views.NO_INCIDENT in empty["heading"] and views.NO_INCIDENT == empty["reasoning"]
    assert "Incident gone--3: no record yet." in panel_values(_page(None, wanted="gone--3"))["heading"]


def test_the_data_comparison_shows_each_metric_last_good_against_observed_and_what_failed():
    healed = views.comparison_html(tutorial_record())
    assert "sql-select-fail-fix-1-preflight run 13" in healed and "healer_sandbox_12_1" in healed
    assert healed.count("<tr class=\"hd-ok\"") == 5 and "hd-bad" not in healed  # 4 pre-flight, 1 production
    assert "<td>rows</td><td>120</td><td>118</td>" in healed

    caught = tutorial_record().model_copy(deep=True)
    attempt = caught.attempts[0]
    attempt.comparison[1] = attempt.comparison[1].model_copy(update={
        "observed": "3", "ok": False,
        "note": "the fix writes 3 rows to default.target where the last good run wrote 120 <b>"})
    attempt.production_comparison = []
    html = views.comparison_html(caught)
    assert html.count('class="hd-bad"') == 1
    assert "the fix writes 3 rows to default.target where the last good run wrote 120 &lt;b&gt;" in html
    assert views.NO_COMPARISON in views.comparison_html(escalated_record())
    assert views.NO_COMPARISON in views.comparison_html(None)


def test_failed_run_choices_round_trip_to_incident_ids():
    rows = [FailedRunRow("sql-select-fail", 12, "2026-01-01T10:00:00.000000Z", True),
            FailedRunRow("etl--daily", 3, None, False)]
    choices = views.failed_run_choices(rows)
    assert choices[0] == ("sql-select-fail · run 12 · failed 2026-01-01 10:00:00 UTC · already has an incident",
                          "sql-select-fail--12")
    assert choices[1][1] == "etl--daily--3"
    assert views.parse_incident_id(choices[1][1]) == ("etl--daily", 3)
    for bad in ("", "no-run", "job--", "job--x1"):
        with pytest.raises(ValueError, match="not an incident id"):
            views.parse_incident_id(bad)


def test_time_helpers():
    assert views.parse_time(None) is None and views.parse_time("yesterday") is None
    assert views.short_time("2026-03-04T05:06:07.123456Z") == "2026-03-04 05:06:07 UTC"
    assert views.short_time("2026-03-04T05:06:07Z", zone=False) == "2026-03-04 05:06:07"
    assert views.short_time(None) == "—"


def test_a_rule_fix_shows_its_applicability_and_a_fix_that_changes_results_is_flagged(stored):
    record = stored["sql-select-fail"]
    attempt = record.attempts[-1]
    safe = attempt.model_copy(update={"patch": attempt.patch.model_copy(update={"source": "rule", "applicability": "safe"})})
    text = views.reasoning_markdown(record.model_copy(update={"attempts": [safe]}))
    assert "**Patch** (code, by rule, safe)" in text and "Changes results" not in text
    changing = attempt.model_copy(update={"patch": attempt.patch.model_copy(
        update={"source": "rule", "applicability": "changes-results"})})
    text = views.reasoning_markdown(record.model_copy(update={"attempts": [changing]}))
    assert "**Patch** (code, by rule, changes-results)" in text and views.CHANGES_RESULTS_NOTE in text


def test_several_candidates_are_listed_with_their_pre_flights_and_verdicts():
    record = tutorial_record().model_copy(deep=True)
    attempt = record.attempts[0]
    assert views.candidates_html(attempt) == ""  # one fix: nothing to list
    first = Preflight(job="sql-select-fail-fix-1-preflight", run_id=13, status="failed")
    attempt.candidates = [
        Candidate(number=1, patch=Patch(kind="code", explanation="Use <account_id>."), accepted=True,
                  preflight=first, verdict="pre-flight failed"),
        Candidate(number=2, patch=Patch(kind="code", explanation="Select the id."), accepted=True,
                  preflight=Preflight(job="sql-select-fail-fix-1-c2-preflight", run_id=14), verdict="passed"),
        Candidate(number=3, patch=Patch(kind="code", explanation="Drop it."), verdict="rejected by the guard: x")]
    html = views.comparison_html(record)
    assert "3 candidate fixes, tried in the sandbox in turn" in html
    assert "Use &lt;account_id&gt;." in html and "sql-select-fail-fix-1-c2-preflight run 14" in html
    assert html.count('class="hd-bad"') == 2 and "<td>passed</td>" in html
    attempt.comparison, attempt.production_comparison = [], []
    assert "3 candidate fixes" in views.comparison_html(record)  # all failed before any comparison: still listed


def test_the_cli_summary_lists_the_candidates(capsys):
    record = tutorial_record().model_copy(deep=True)
    record.attempts[0].candidates = [
        Candidate(number=1, patch=Patch(kind="code", explanation="Use account_id."), verdict="pre-flight failed"),
        Candidate(number=2, patch=Patch(kind="code", explanation="Select the id."), verdict="passed")]
    console.summary(record, Settings(jobs_api_url="http://cde.example/dex/api/v1"))
    out = capsys.readouterr().out
    assert "2 candidate fixes, tried in the sandbox in turn:" in out
    assert "1. Use account_id.: pre-flight failed" in out and "2. Select the id.: passed" in out
