"""`ask`: the patterns without a model, the model's tool choice through the scripted server, the fall
back to the patterns when the model fails or chooses wrongly, jobs the history does not know, and
questions that cannot be asked."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, select

from agents.errors import InvalidInput
from agents.history import RunHistory
from agents.history.schema import metadata
from agents.llm import HealerLLM
from agents.ops import TOOLS, ask, check_question
from agents.ops.ask import ToolName
from agents.ops.patterns import help_text, match, named_job, window_in
from agents.record import Attempt, Diagnosis, RecordStore
from tests.agents.history.records import cde_run, incident

VC = "vc-a.cde.example.com"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
JOBS = ["clickstream-daily-users", "inventory-sync", "sales-daily"]


def h(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


@pytest.fixture
def history(tmp_path):
    with RunHistory(f"sqlite:///{tmp_path / 'history.sqlite3'}", vc=VC) as opened:
        opened.record_runs([cde_run("sales-daily", 1, "failed", h(3), h(2)), cde_run("sales-daily", 2, "succeeded", h(1), h(0.5)),
                            cde_run("inventory-sync", 3, "failed", h(30), h(29)),
                            cde_run("clickstream-daily-users", 4, "succeeded", h(5), h(4))])
        diagnosis = Diagnosis(category="code", root_cause="a renamed column", confidence=0.9, condition="UNRESOLVED_COLUMN")
        opened.record_incident(incident("sales-daily", 1, state="healed", failed_at=h(2), ended_at=h(1.5),
                                        attempts=[Attempt(number=1, diagnosis=diagnosis)]))
        yield opened


@pytest.fixture
def records(tmp_path):
    return RecordStore(tmp_path / "healer")


@pytest.fixture
def model(scripted_llm):
    llm = HealerLLM(base_url=scripted_llm.base_url, api_key="test-key", model="scripted", timeout_s=10, max_retries=0)
    try:
        yield llm
    finally:
        llm.close()


def choice(tool: str, **args) -> dict:
    return {"tool": tool, **args}


# --- patterns ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "tool", "args"), [
    ("How many runs of sales-daily failed in the last 24 hours?", "count_runs",
     {"job": "sales-daily", "status": "failed", "window": "24h"}),
    ("how many runs failed today?", "count_runs", {"status": "failed", "window": "today"}),
    ("How many config failures were there in the past 14 days?", "count_runs",
     {"category": "config", "status": "failed", "window": "14d"}),
    ("How many runs of inventory-sync were killed this month?", "count_runs",
     {"job": "inventory-sync", "status": "killed", "window": "30d"}),
    ("What was the root cause of last night's failures?", "failures_root_causes", {"window": "last-night"}),
    ("Why did sales-daily fail yesterday?", "failures_root_causes", {"job": "sales-daily", "window": "yesterday"}),
    ("Which jobs were escalated this week and why?", "escalations", {"window": "7d"}),
    ("What is the MTTR over the last 7 days?", "mttr", {"window": "7d"}),
    ("mean time to recover for sales-daily over the past 2 weeks", "mttr", {"job": "sales-daily", "window": "14d"}),
    ("Top failing jobs this month", "top_failing_jobs", {"window": "30d"}),
    ("top 3 failing jobs in the last 48 hours", "top_failing_jobs", {"window": "48h", "limit": 3}),
    ("Which jobs fail the most?", "top_failing_jobs", {}),
    ("Any anomalies this week?", "anomalies", {"window": "7d"}),
    ("What happened in sales-daily--1?", "incident", {"incident_id": "sales-daily--1"}),
    ("What went wrong in the latest incident of inventory-sync?", "incident", {"job": "inventory-sync"}),
    ("Show the last 5 runs of clickstream-daily-users", "list_runs", {"job": "clickstream-daily-users", "limit": 5}),
    ("Is anything running right now?", "list_runs", {"status": "running"}),
    ("What's the weather like?", None, {}),
])
def test_patterns_map_questions_to_tool_calls(question, tool, args):
    found = match(question, JOBS)
    assert (found.tool, found.args) == (tool, args)


def test_a_job_is_the_known_name_else_a_word_that_looks_like_one():
    assert named_job("failures of SALES-DAILY today", JOBS) == "sales-daily"  # the history's spelling
    assert named_job("failures of clickstream-daily-users", ["clickstream-daily", *JOBS]) == "clickstream-daily-users"
    assert named_job("how many runs of sales-dialy failed?", JOBS) == "sales-dialy"  # unknown, reported as such
    assert named_job("the root cause of last night's failures", JOBS) is None
    assert named_job("failures for the job nightly", JOBS) == "nightly"
    assert named_job("failures for 24h", JOBS) is None
    assert window_in("in the past 3 weeks") == "21d" and window_in("since forever") is None


def test_without_a_model_the_patterns_answer(history, records):
    answer = ask("How many runs of sales-daily failed in the last 24 hours?", history=history, records=records, now=NOW)
    assert (answer.source, answer.tool, answer.args) == ("pattern", "count_runs",
                                                          {"job": "sales-daily", "status": "failed", "window": "24h"})
    assert answer.rows == [{"status": "failed", "runs": 1}]
    assert answer.text.startswith("1 failed run of sales-daily in the last 24 hours")
    assert len(answer.sql) == 1 and "runs.job = 'sales-daily'" in answer.sql[0]
    assert json.loads(json.dumps(answer.as_dict()))["rows"] == answer.rows  # JSON all through


def test_a_question_no_pattern_knows_gets_the_help_answer(history, records):
    answer = ask("What's the weather like?", history=history, records=records, now=NOW)
    assert (answer.source, answer.tool, answer.sql) == ("help", None, [])
    assert answer.text == help_text(JOBS)
    assert "How many runs of clickstream-daily-users failed in the last 24 hours?" in answer.text  # a job of its own


def test_an_unknown_job_is_reported_with_the_close_names(history, records):
    answer = ask("How many runs of sales-dialy failed today?", history=history, records=records, now=NOW)
    assert answer.source == "pattern" and answer.tool == "count_runs"
    assert answer.text == "There is no job 'sales-dialy' in the run history. Close names: sales-daily."
    assert answer.rows == [{"unknown_job": "sales-dialy", "close_names": ["sales-daily"]}]
    (sql,) = answer.sql
    assert "'sales-dialy'" in sql and f"'{VC}'" in sql
    far = ask("how many runs of job zzz failed today?", history=history, records=records, now=NOW)
    assert far.text == ("There is no job 'zzz' in the run history. No name is close; its jobs include "
                        "clickstream-daily-users, inventory-sync, sales-daily.")


@pytest.mark.parametrize(("question", "message"), [
    ("", "the question is empty"),
    ("   \n ", "the question is empty"),
    ("x" * 501, "the question is 501 characters long; ask in at most 500"),
    ("how many\x00 runs", "control characters"),
])
def test_questions_that_cannot_be_asked(history, records, question, message):
    with pytest.raises(InvalidInput, match=message):
        ask(question, history=history, records=records, now=NOW)
    with pytest.raises(InvalidInput, match=message):
        check_question(question)


def test_a_window_beyond_the_bounds_is_bad_input(history, records):
    with pytest.raises(InvalidInput, match="a window in days is from 1d to 90d, not '400d'"):
        ask("how many runs failed in the last 400 days?", history=history, records=records, now=NOW)


# --- the model -----------------------------------------------------------------------------------


def test_the_model_chooses_and_our_tool_answers(history, records, model, scripted_llm):
    scripted_llm.add(choice("mttr", window="24h", job=None, status=None, category=None, limit=None, incident_id=None))
    answer = ask("how fast do we recover these days?", history=history, records=records, llm=model, now=NOW)
    assert (answer.source, answer.tool, answer.args) == ("model", "mttr", {"window": "24h"})
    assert answer.rows[0]["mttr_median_s"] == 1800.0  # failed 2 h ago, healed 30 min later
    assert answer.text.startswith("MTTR in the last 24 hours") and "median 30 min (1800 s)" in answer.text
    (request,) = scripted_llm.requests
    system, user = request.body["messages"]
    assert user == {"role": "user", "content": "how fast do we recover these days?"}
    assert "2026-03-10 12:00 UTC (Tuesday)" in system["content"]
    assert "clickstream-daily-users\ninventory-sync\nsales-daily" in system["content"]  # the known jobs, as data
    assert '<untrusted kind="jobs"' in system["content"]
    for name in TOOLS:
        assert f"- {name}(" in system["content"]
    assert "last-night   yesterday 18:00" in system["content"]  # the windows table
    schema = request.body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["tool"]["enum"] == [*TOOLS, "none"]


def test_the_tool_names_of_the_schema_are_the_registry_s():
    assert list(ToolName.__args__) == [*TOOLS, "none"]


def test_a_model_that_cannot_be_reached_falls_back_to_the_patterns(history, records, model, scripted_llm):
    scripted_llm.down = "503"
    answer = ask("Top failing jobs this month", history=history, records=records, llm=model, now=NOW)
    assert (answer.source, answer.tool, answer.args) == ("pattern", "top_failing_jobs", {"window": "30d", "limit": 5})
    first, *rest = answer.text.splitlines()
    assert first.startswith("(The model could not answer: the model endpoint failed: HTTP 503") \
        and first.endswith("Answered by pattern matching.)")
    assert rest[1:] == ["1. inventory-sync: 1 failed of 1 run (100%)", "2. sales-daily: 1 failed of 2 runs (50%)"]


def test_an_unknown_tool_is_asked_again_then_the_patterns_answer(history, records, model, scripted_llm):
    for _ in range(model.max_structured_retries + 1):
        scripted_llm.add(choice("count_failures", job="sales-daily"))
    answer = ask("how many runs of sales-daily failed in the last 24 hours?", history=history, records=records,
                 llm=model, now=NOW)
    assert len(scripted_llm.requests) == 3  # the schema's enum refused it; re-asked twice
    assert answer.source == "pattern" and answer.rows == [{"status": "failed", "runs": 1}]
    assert answer.text.startswith("(The model could not answer: no valid ToolChoice from the model after 3 answers")


def test_a_re_asked_model_that_corrects_itself_answers(history, records, model, scripted_llm):
    scripted_llm.add(choice("count_failures")).add(choice("count_runs", status="failed", window="today"))
    answer = ask("failures so far today?", history=history, records=records, llm=model, now=NOW)
    assert (answer.source, answer.tool, answer.rows) == ("model", "count_runs", [{"status": "failed", "runs": 1}])


@pytest.mark.parametrize(("scripted", "problem"), [
    (choice("top_failing_jobs", window="fortnight-ish"), "top_failing_jobs window: a window is Nh"),
    (choice("top_failing_jobs", window="7d", limit=500), "top_failing_jobs limit: Input should be less than or equal to 50"),
    (choice("top_failing_jobs", window="7d", job="sales-daily"), "top_failing_jobs job: Extra inputs are not permitted"),
    (choice("top_failing_jobs", window="7d", status="exploded"), "status"),
])
def test_an_invalid_choice_falls_back_to_the_patterns(history, records, model, scripted_llm, scripted, problem):
    scripted_llm.add(scripted)
    answer = ask("Top failing jobs this week", history=history, records=records, llm=model, now=NOW)
    assert (answer.source, answer.tool, answer.args) == ("pattern", "top_failing_jobs", {"window": "7d", "limit": 5})
    note = answer.text.splitlines()[0]
    assert note.startswith("(The model's choice was not valid: ") and problem in note
    assert note.endswith("Answered by pattern matching.)")


def test_a_job_the_model_names_must_be_in_the_history(history, records, model, scripted_llm):
    scripted_llm.add(choice("count_runs", job="sales-dialy", status="failed", window="today"))
    answer = ask("how many runs of sales-dialy failed today?", history=history, records=records, llm=model, now=NOW)
    assert (answer.source, answer.tool) == ("model", "count_runs")
    assert answer.text == "There is no job 'sales-dialy' in the run history. Close names: sales-daily."


def test_no_tool_from_the_model_tries_the_patterns_then_helps(history, records, model, scripted_llm):
    scripted_llm.add(choice("none")).add(choice("none"))
    helped = ask("what's the weather?", history=history, records=records, llm=model, now=NOW)
    assert helped.source == "help" and helped.text.startswith("(The model found no tool for this question")
    assert help_text(JOBS) in helped.text
    found = ask("What is the MTTR over the last 7 days?", history=history, records=records, llm=model, now=NOW)
    assert (found.source, found.tool) == ("pattern", "mttr")


def test_asking_writes_nothing(history, records, tmp_path):
    def everything() -> dict[str, list]:
        engine = create_engine(f"sqlite:///{tmp_path / 'history.sqlite3'}")
        try:
            with engine.connect() as conn:
                return {table.name: sorted(map(tuple, conn.execute(select(table)))) for table in metadata.sorted_tables}
        finally:
            engine.dispose()

    before = everything()
    for question in ("top failing jobs this month", "MTTR this week", "escalations today", "anomalies",
                     "what happened in sales-daily--1?", "root cause of last night's failures", "list the runs"):
        ask(question, history=history, records=records, now=NOW)
    assert everything() == before and before["runs"] and before["incidents"]
