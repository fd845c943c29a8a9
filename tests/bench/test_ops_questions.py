"""`python -m bench ops`: every question of the set is answered right without a model (the ones the
patterns must answer) and through the scripted model (wrong choices included), in process and (a
few) through `python -m app ask`, and the checks are not vacuous: a tool whose windows are off by an
hour gets answers marked wrong."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agents.history import RunHistory
from agents.history.store import vc_of
from agents.ops import ask, tools
from agents.record import RecordStore
from bench import ops_questions as bench
from bench.__main__ import main


def test_every_answer_is_right_in_both_modes(tmp_path, capsys):
    db = tmp_path / "ops.sqlite3"
    assert main(["ops", "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    asked = bench.questions(bench.plan())
    patterns = sum(q.pattern for q in asked)
    assert len(asked) >= 20 and patterns >= 8
    assert f"patterns (no model): {patterns}/{patterns} right (100%)" in printed
    assert f"scripted model: {len(asked)}/{len(asked)} right (100%)" in printed
    assert "scripted wrong choices: 2 fell back to the patterns, 1 named a job not in the history" in printed
    assert "1 corrected after a re-ask" in printed and printed.rstrip().endswith("every answer right")
    assert db.is_file() and (bench.records_dir(db) / "incidents").is_dir()  # kept where asked


def test_the_first_questions_through_the_command_line_are_right(tmp_path, capsys):
    db = tmp_path / "ops.sqlite3"
    assert main(["ops", "--cli", "--limit", "3", "--db", str(db)]) == 0
    printed = capsys.readouterr().out
    assert "asked through `python -m app ask --json`, one process per question" in printed
    assert "patterns (no model): 3/3 right (100%)" in printed and "scripted model: 3/3 right (100%)" in printed
    assert printed.rstrip().endswith("every answer right")


def test_the_command_line_gets_this_history_and_no_setting_of_ours(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_ENDPOINT_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("HEAL_MAX_ATTEMPTS", "7")
    db = tmp_path / "ops.sqlite3"
    env = bench.cli_environment(db, None)
    assert vc_of(env["JOBS_API_URL"]) == bench.VC and env["HEAL_HISTORY_URL"] == f"sqlite:///{db.resolve()}"
    assert not any(name.startswith("LLM_") for name in env) and "HEAL_MAX_ATTEMPTS" not in env


def test_the_windows_at_now_are_the_dates_the_plan_is_written_in():
    found = bench.windows(bench.NOW)
    assert found.today == (bench.at(16, 0), bench.NOW) and found.yesterday == (bench.at(15, 0), bench.at(16, 0))
    assert found.last_night == (bench.at(15, 18), bench.at(16, 8))
    assert found.h24 == (bench.at(15, 9, 30), bench.NOW)
    # the CLI answers seconds to minutes later than the history's now: no moment is near a relative window's start
    p = bench.plan()
    moments = [m for r in p.runs for m in (r.started, r.ended) if m] + \
        [m for i in p.incidents for m in (i.failed_at, i.ended_at) if m]
    for start, _end in (found.h24, found.h48, found.week, found.d14, found.month):
        assert not [m for m in moments if start <= m < start + timedelta(hours=2)]


def test_the_plan_is_deterministic_and_its_facts_are_not_empty():
    first, second = bench.plan(), bench.plan()
    assert first == second
    facts = [q.facts for q in bench.questions(first) if q.tool]
    assert all(facts), "every tool question expects figures"
    counts = [f["total"] for f in facts if "total" in f]
    assert len(counts) >= 6 and sum(counts) > len(counts)  # real numbers, not a row of zeros and ones


def test_answers_off_by_an_hour_are_caught(tmp_path, monkeypatch):
    db = tmp_path / "ops.sqlite3"
    plan = bench.generate(db)
    right = tools.span

    def late(window, now):
        found = right(window, now)
        return tools.Span(found.window, found.start + timedelta(hours=1), found.end + timedelta(hours=1), found.label)

    monkeypatch.setattr(tools, "span", late)
    records = RecordStore(bench.records_dir(db))
    with RunHistory(f"sqlite:///{db}", vc=bench.VC) as history:
        problems = {q.text: bench.check(q, ask(q.text, history=history, records=records, now=bench.NOW), "pattern")
                    for q in bench.questions(plan) if q.pattern}
    wrong = [text for text, found in problems.items() if found]
    assert "How many runs failed today?" in wrong  # the 00:10 failure falls out of "today"
    assert "What was the root cause of last night's failures?" in wrong
    assert "How many runs succeeded yesterday?" in wrong


def test_an_existing_database_is_refused(tmp_path, capsys):
    db = tmp_path / "ops.sqlite3"
    db.write_text("not mine")
    assert main(["ops", "--db", str(db)]) == 2
    assert f"error: {db} exists" in capsys.readouterr().err
    assert db.read_text() == "not mine"


@pytest.mark.parametrize("question", [q for q in bench.questions(bench.plan()) if q.pattern], ids=lambda q: q.text)
def test_the_patterns_map_each_marked_question_to_its_tool(question):
    from agents.ops.patterns import match

    found = match(question.text, bench.plan().jobs)
    assert found.tool == question.tool
    assert {k: v for k, v in found.args.items() if k in question.args} == \
        {k: v for k, v in question.args.items() if k in found.args}
