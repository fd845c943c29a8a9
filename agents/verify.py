"""verify: follow the fix run to its end; a run that exits 0 is not a heal until its output is checked.

Succeeded, and the job's output check (`<job>-check`, when it exists) passes → healed. Failed, or
the check failed → the next attempt starts from this run's logs, until `max_attempts`; then our
code escalates. The model is never asked whether to give up.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END
from langgraph.types import Command

from agents.record import Attempt, IncidentRecord
from agents.runs import check_request_id, follow, start_run
from agents.stage import crash_point, current_attempt
from agents.state import Deps, HealState
from cde_client import NotFound


def run_output_check(deps: Deps, record: IncidentRecord, attempt: Attempt) -> bool | None:
    """Runs the job's output check after a successful fix run. None when the job has none."""
    check_job = record.job + deps.settings.check_job_suffix
    try:
        deps.client.get_job(check_job)
    except NotFound:
        return None
    attempt.check_job = check_job
    if attempt.check_run_id is None:
        attempt.check_run_id = start_run(deps.client, check_job, check_request_id(
            record.incident_id, attempt.fix_job or "", attempt.fix_run_id or 0))
        deps.records.save(record)
        crash_point(deps, "verify.check_started")
    run = follow(deps.client, attempt.check_run_id, deps.settings.run_timeout_s, deps.settings.run_poll_s)
    return run.status == "succeeded"


def verify(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["log_fetch", "escalate"]]:
    settings = deps.settings
    attempt = current_attempt(record, state["attempt"])
    assert attempt.fix_run_id is not None, "verify runs after redeploy"
    run = follow(deps.client, attempt.fix_run_id, settings.run_timeout_s, settings.run_poll_s)
    attempt.fix_run_status = run.status
    if run.status == "succeeded":
        attempt.check_passed = run_output_check(deps, record, attempt)
        if attempt.check_passed is not False:
            attempt.verdict = "healed" if attempt.check_passed else "healed (the job has no output check)"
            record.state = "healed"
            record.reason = (f"{attempt.fix_job} run {run.id} succeeded"
                             + (" and its output check passed" if attempt.check_passed else
                                "; no output check exists for this job"))
            return Command(goto=END, update={"outcome": "healed", "reason": record.reason})
        attempt.verdict = "check-failed"
        feedback = (f"Attempt {attempt.number}: the fix run {run.id} succeeded but the output check "
                    f"{attempt.check_job} (run {attempt.check_run_id}) failed: the output is wrong.")
        next_run = attempt.check_run_id
    else:
        attempt.verdict = f"fix run {run.status}"
        feedback = (f"Attempt {attempt.number}: the patch ({attempt.patch.kind if attempt.patch else '?'}: "
                    f"{attempt.patch.explanation if attempt.patch else ''}) was deployed as {attempt.fix_job}; "
                    f"its run {run.id} ended {run.status}. Its log follows as the evidence.")
        next_run = run.id
    if attempt.number >= settings.max_attempts:
        return Command(goto="escalate", update={
            "reason": f"{settings.max_attempts} attempts used up; the last one: {attempt.verdict}"})
    return Command(goto="log_fetch", update={
        "attempt": attempt.number + 1,
        "analyzed_run_id": next_run,
        "feedback": feedback,
        # the checkpoint's copy of the deployed code (the record's is redacted for display)
        "base_code": state.get("fixed_code") if state.get("fixed_code") is not None else state.get("base_code"),
    })
