"""`python -m app ask` as a user runs it: the answer and the SQL it ran, `--json`, a model through the
scripted server, and input it must refuse (exit 2, a clear message, no traceback). No CDE: the
history is the only thing a question reads."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from agents.history import RunHistory
from agents.history.store import HISTORY_FILE
from agents.record import Attempt, Diagnosis
from bench.scripted_llm import ScriptedLLM
from tests.agents.history.records import cde_run, incident
from tests.app.test_cli import run_app

VC = "127.0.0.1"  # the host of test_cli's JOBS_API_URL: the cluster whose rows the CLI reads
QUESTION = "How many runs of sales-daily failed in the last 24 hours?"


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A healer's data directory whose history holds two failed runs of sales-daily in the last day."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    data = tmp_path / "healer"
    with RunHistory(f"sqlite:///{data / HISTORY_FILE}", vc=VC) as history:
        history.record_runs([cde_run("sales-daily", 7, "failed", now - timedelta(hours=5), now - timedelta(hours=4)),
                             cde_run("sales-daily", 8, "failed", now - timedelta(hours=3), now - timedelta(hours=2)),
                             cde_run("sales-daily", 9, "succeeded", now - timedelta(hours=1), now - timedelta(minutes=30)),
                             cde_run("sales-daily", 6, "failed", now - timedelta(days=3), now - timedelta(days=3))])
        cause = Diagnosis(category="code", root_cause="customer_id was renamed", confidence=0.9,
                          condition="UNRESOLVED_COLUMN")
        history.record_incident(incident("sales-daily", 8, state="escalated", failed_at=now - timedelta(hours=2),
                                         ended_at=now - timedelta(hours=1), attempts=[Attempt(number=1, diagnosis=cause)],
                                         reason="attempts used up"))
    with RunHistory(f"sqlite:///{data / HISTORY_FILE}", vc="another-cluster.example.com") as other:
        other.record_runs([cde_run("sales-daily", 7, "failed", now - timedelta(hours=5), now - timedelta(hours=4))])
    return data


def test_the_answer_and_the_query_it_ran(data_dir):
    done = run_app(["ask", QUESTION], data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    text, query = done.stdout.split("\nquery:\n")
    assert text.startswith("2 failed runs of sales-daily in the last 24 hours (")  # not the other cluster's
    assert query.startswith("SELECT runs.status, count(*) AS ") and query.rstrip().endswith(";")
    assert "runs.vc = '127.0.0.1'" in query and "runs.job = 'sales-daily'" in query
    assert "Traceback" not in done.stderr


def test_json(data_dir):
    done = run_app(["ask", "Which jobs were escalated this week and why?", "--json"], data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert set(answer) == {"question", "text", "tool", "args", "sql", "source", "rows"}
    assert (answer["tool"], answer["source"], answer["args"]) == ("escalations", "pattern", {"window": "7d"})
    assert [row["incident_id"] for row in answer["rows"]] == ["sales-daily--8"]
    assert answer["rows"][0]["reason"] == "attempts used up"
    assert answer["rows"][0]["root_cause"] == "customer_id was renamed"  # kept in the row by the history
    assert len(answer["sql"]) == 2 and "attempts used up" in answer["text"]


def test_a_configured_model_chooses_the_tool(data_dir):
    with ScriptedLLM() as llm:
        llm.add({"tool": "count_runs", "job": "sales-daily", "status": "failed", "window": "7d"})
        done = run_app(["ask", "sales-daily failures this week?", "--json"], data_dir,
                       LLM_ENDPOINT_BASE_URL=llm.base_url, LLM_CDP_TOKEN="test-key", LLM_MODEL_ID="scripted")
        assert len(llm.requests) == 1
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert (answer["source"], answer["tool"], answer["rows"]) == ("model", "count_runs", [{"status": "failed", "runs": 3}])


def test_a_question_no_tool_answers_gets_the_examples(data_dir):
    done = run_app(["ask", "what's the weather like?"], data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("I can answer questions about the run history, for example:")
    assert "query:" not in done.stdout


@pytest.mark.parametrize(("question", "message"), [
    ("", "argument question: the question is empty"),
    ("  ", "argument question: the question is empty"),
    ("why " * 200, "argument question: the question is 799 characters long; ask in at most 500"),
])
def test_bad_questions_are_refused_before_anything_opens(tmp_path, question, message):
    data_dir = tmp_path / "healer"
    done = run_app(["ask", question], data_dir)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not data_dir.exists()


def test_a_window_beyond_the_bounds_is_refused(data_dir):
    done = run_app(["ask", "how many runs failed in the last 400 days?"], data_dir)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: the question asks for count_runs with window: a window in days is from 1d to 90d" in done.stderr
    assert "Traceback" not in done.stderr


def test_no_history_yet_is_said_and_nothing_is_created(tmp_path):
    data_dir = tmp_path / "healer"
    done = run_app(["ask", QUESTION], data_dir)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"error: no run history in {data_dir} yet" in done.stderr and "Traceback" not in done.stderr
    assert not data_dir.exists()
