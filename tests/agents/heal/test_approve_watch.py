"""Approval mode (the graph pauses before redeploy, across a restart) and the monitor.

On the played lab (tests/fixtures/heal.py): the tutorial's real failure log, the runs the healer
starts ended by a played cluster. What is tested is the healer's logic around them."""

from __future__ import annotations

import threading

import pytest

from agents.monitor import scan_failures
from agents.record import RecordStore
from tests.fixtures.heal import TUTORIAL_DIAGNOSIS

JOB = "sql-select-fail"


@pytest.fixture(scope="module")
def tutorial_failure(played_lab) -> int:
    return played_lab.fresh_failure("tutorial")


def test_approve_mode_pauses_before_redeploy_and_resumes_after_restart(played_lab, tmp_path, tutorial_failure):
    fix_jobs_before = played_lab.fix_jobs(JOB)
    healer = played_lab.healer(tmp_path, HEAL_MODE="approve")
    try:
        record = healer.heal(JOB, tutorial_failure)
        assert record.state == "awaiting_approval"
        assert record.attempts[0].patch is not None and "account_id" in record.attempts[0].diff
        assert healer.paused(record.incident_id)
        assert played_lab.fix_jobs(JOB) == fix_jobs_before  # nothing deployed before approval
        assert healer.heal(JOB, tutorial_failure).state == "awaiting_approval"  # asking again changes nothing
    finally:
        healer.close()

    restarted = played_lab.healer(tmp_path, HEAL_MODE="approve")
    try:
        record = restarted.resume(record.incident_id, {"approved": True, "by": "alice"})
    finally:
        restarted.close()
    assert record.state == "healed", record.reason
    assert record.attempts[0].verdict in ("healed",)
    assert len(set(played_lab.fix_jobs(JOB)) - set(fix_jobs_before)) == 1


def test_rejected_fix_is_never_deployed(played_lab, tmp_path, tutorial_failure):
    fix_jobs_before = played_lab.fix_jobs(JOB)
    healer = played_lab.healer(tmp_path, HEAL_MODE="approve")
    try:
        record = healer.heal(JOB, tutorial_failure)
        record = healer.resume(record.incident_id, {"approved": False, "by": "bob", "reason": "wrong table"})
    finally:
        healer.close()
    assert record.state == "rejected"
    assert "bob" in record.reason and "wrong table" in record.reason
    assert played_lab.fix_jobs(JOB) == fix_jobs_before


def test_monitor_opens_one_incident_per_new_failure_and_ignores_its_own_jobs(played_lab, tmp_path):
    client = played_lab.client
    client.create_resource("monitor-probe")
    client.upload_file("monitor-probe", "boom.py", b"import sys\nprint('probe failing on purpose')\nsys.exit(3)\n")
    played_lab.play(r"probe(-fix-1|-check)?", "failed", "probe failing on purpose\n")
    for name in ("probe", "probe-fix-1", "probe-check"):
        client.create_job({"name": name, "type": "spark", "mounts": [{"resourceName": "monitor-probe"}],
                           "spark": {"file": "boom.py"}})
    runs = {name: client.wait_run(client.run_job(name), timeout_s=300) for name in ("probe", "probe-fix-1", "probe-check")}
    assert all(run.status == "failed" for run in runs.values())

    settings = played_lab.settings(tmp_path)  # JOB_NAME unset: every job is watched
    records = RecordStore(tmp_path)
    fresh = {run.id for run in scan_failures(client, settings, records).runs}
    assert runs["probe"].id in fresh
    assert runs["probe-fix-1"].id not in fresh and runs["probe-check"].id not in fresh

    healer = played_lab.healer(tmp_path, JOB_NAME="probe", HEAL_POLL_INTERVAL_S="0.2")
    try:
        stop = threading.Event()
        watcher = threading.Thread(target=healer.watch, args=(stop,), daemon=True)
        watcher.start()
        for _ in range(600):  # until two cycles have run (bounded)
            if healer.watch_status.cycles >= 2:
                break
            stop.wait(0.1)
        stop.set()
        watcher.join(60)
    finally:
        healer.close()
    incidents = healer.records.all()
    assert [r.incident_id for r in incidents] == [f"probe--{runs['probe'].id}"]  # once, whatever the cycles
    assert incidents[0].state == "escalated"  # a plain sys.exit: no rule, no model
    assert healer.watch_status.last_error == ""


def test_model_diagnosis_with_an_agreeing_rule_gets_the_rule_fix(played_lab, scripted_llm, tmp_path, tutorial_failure):
    """Where Spark's message names the remedy, the rule's fixer patches; the model only diagnoses."""
    scripted_llm.add(TUTORIAL_DIAGNOSIS)  # no patch answer scripted: a patch request would fail the heal
    healer = played_lab.healer(tmp_path, scripted_llm, HEAL_MODE="approve")
    try:
        record = healer.heal(JOB, tutorial_failure)
    finally:
        healer.close()
    assert record.state == "awaiting_approval", record.reason
    attempt = record.attempts[0]
    assert attempt.diagnosis.source == "model" and attempt.diagnosis.rule == "unresolved-column"
    assert attempt.patch.source == "rule" and "SELECT account_id" in attempt.fixed_code
    assert [c.stage for c in record.llm_calls] == ["diagnose"]
