"""compare: the pre-flight's outputs against the job's last good outputs; only a fix whose data
passes goes on to (approval and) production.

Our code judges (`agents/comparison.py`), never the model: every output the pre-flight wrote is
compared with the production output of the same name as it stands, and the outputs earlier
attempts wrote must still be written. When the job has a user check (`<job>-check`), it runs too,
through the launcher, reading the sandboxed outputs. A failed comparison is the evidence of the
next attempt ("the fix writes 3 rows where the last good run wrote 120"); when attempts are used
up the incident is escalated with it as the reason. A fix none of whose outputs has a last good
output to be compared with is not proven by data: it waits for a person's approval.
"""

from __future__ import annotations

from typing import Literal

from langgraph.types import Command

from agents import candidates
from agents.comparison import Thresholds, compare_report, failures, schema_may_change, unproven
from agents.fixjobs import PREFLIGHT_SUFFIX, earlier_outputs, ensure_same_job, fix_job_spec
from agents.record import Attempt, ComparisonRow, IncidentRecord, Preflight
from agents.runs import follow, preflight_request_id, run_seconds, start_run
from agents.sandbox.jobs import ensure_bundle, outputs_conf, sandbox_conf, sandboxed_spec
from agents.stage import crash_point, current_attempt, next_attempt
from agents.state import Deps, HealState
from cde_client import ApiError, Conflict, NotFound


def compare(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["approval", "log_fetch",
                                                                                   "preflight", "escalate"]]:
    attempt = current_attempt(record, state["attempt"])
    run_info = attempt.preflight
    assert run_info is not None and run_info.run_id is not None, "compare runs after a pre-flight"
    if run_info.report is None:
        rows = [ComparisonRow(output="(pre-flight)", metric="written", observed="no report", ok=False,
                              note="the pre-flight ended without the sandbox's report of its outputs, so nothing "
                                   "shows that the fix writes the right data")]
    else:
        expected = {o.name for o in earlier_outputs(record, attempt.number)}
        rows = compare_report(run_info.report, Thresholds.from_settings(deps.settings),
                              schema_may_change=schema_may_change(attempt.diagnosis), expected=expected)
        if all(r.ok for r in rows):
            rows += user_check_in_sandbox(deps, record, attempt, run_info)
    attempt.comparison = rows
    attempt.comparison_passed = all(r.ok for r in rows)
    if attempt.comparison_passed:
        attempt.unproven = unproven(run_info.report) if run_info.report else ""
        for run_id in candidates.passed(attempt):  # started side by side, no longer needed
            _stop(deps, run_id)
        return Command(goto="approval")
    found = "; ".join(failures(rows))
    attempt.verdict = f"data comparison failed: {found}"
    following = candidates.move_on(state, attempt, attempt.verdict)
    if following is not None:
        return following
    tried = candidates.all_failed(attempt)
    feedback = (f"Attempt {attempt.number}: the fix ran in a sandbox (pre-flight run {run_info.run_id}) and exited 0, "
                f"but its output is not like the job's last good output: {found}. Nothing was deployed.{tried} A fix "
                "must remove the cause and keep the output the job is meant to write.")
    return next_attempt(state, deps.settings, attempt, analyzed_run=run_info.run_id, feedback=feedback,
                        analyzed_in=run_info.environment)


def _stop(deps: Deps, run_id: int) -> None:
    """Stops a candidate's pre-flight that is no longer needed; one that already ended is left be."""
    try:
        deps.cde(deps.proving).kill_run(run_id)
    except (ApiError, Conflict, NotFound):
        pass


def user_check_in_sandbox(deps: Deps, record: IncidentRecord, attempt: Attempt,
                          run_info: Preflight) -> list[ComparisonRow]:
    """The job's own output check (`<job>-check`), run through the launcher so that it reads the
    sandboxed outputs (where the pre-flight ran); no row when the job has none."""
    client, settings = deps.cde(run_info.environment), deps.settings
    check_job = record.job + settings.check_job_suffix
    try:
        check = client.get_job(check_job)
    except NotFound:
        return []
    assert run_info.report is not None and attempt.fix_job is not None
    run_info.check_job = (f"{attempt.fix_job}{candidates.suffix(attempt.candidate)}{settings.check_job_suffix}"
                          f"{PREFLIGHT_SUFFIX}")
    conf = sandbox_conf(database=run_info.database, sample=run_info.sample, location=settings.sandbox_location,
                        outputs=outputs_conf(run_info.report.outputs), clone=False, stats=False)
    spec = sandboxed_spec(fix_job_spec(check.raw, run_info.check_job, check.spark, None), ensure_bundle(client), conf)
    try:
        client.create_job(spec)
    except Conflict:
        ensure_same_job(client, run_info.check_job, spec)
    if run_info.check_run_id is None:
        run_info.check_run_id = start_run(client, run_info.check_job, preflight_request_id(
            record.incident_id, attempt.number, run_info.check_job))
        deps.records.save(record)
        crash_point(deps, "compare.check_started")
    run = follow(client, run_info.check_run_id, settings.run_timeout_s, settings.run_poll_s)
    run_info.check_passed, run_info.check_duration_s = run.status == "succeeded", run_seconds(run)
    return [ComparisonRow(
        output=", ".join(o.name for o in run_info.report.outputs) or "(none)", metric="check",
        last_good=check_job, observed=f"run {run.id} {run.status}", ok=run_info.check_passed,
        note="" if run_info.check_passed else
        f"the job's own output check {check_job} failed on the fix's sandboxed output (run {run.id})")]
