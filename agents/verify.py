"""verify: follow the fix run to its end; a run that exits 0 is not a heal until its outputs are checked.

Succeeded → the launcher measures the real outputs (a `stats` run of the attempt's pre-flight job:
no application runs) and our code compares them with the last good outputs the pre-flight saw, the
same comparison as on the sandbox; then the job's output check (`<job>-check`, when it exists)
runs. Both pass → healed. Failed, or either check failed → the next attempt starts from this run's
logs, until `max_attempts`; then our code escalates. The model is never asked whether to give up.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END
from langgraph.types import Command

from agents.comparison import Thresholds, compare_report, dropped_by_the_job, failures, schema_may_change
from agents.record import Attempt, ComparisonRow, IncidentRecord
from agents.runs import check_request_id, follow, run_seconds, start_run, stats_request_id
from agents.sandbox.jobs import outputs_conf, sandbox_conf
from agents.sandbox.report import BadSandboxReport, SampleSpec, parse_report
from agents.stage import crash_point, current_attempt, next_attempt
from agents.state import Deps, HealState
from cde_client import JobRun, NotFound


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
    attempt.check_run_duration_s = run_seconds(run)
    return run.status == "succeeded"


def measure_production(deps: Deps, record: IncidentRecord, attempt: Attempt, fix_run: JobRun) -> list[ComparisonRow]:
    """The fix run's real outputs against the last good ones its pre-flight measured (the same
    comparison, unsampled), by a `stats` run of the pre-flight job."""
    client, settings = deps.client, deps.settings
    run_info = attempt.preflight
    if run_info is None or run_info.report is None or not [o for o in run_info.report.outputs
                                                           if not dropped_by_the_job(o)]:
        return [ComparisonRow(output="(production)", metric="written", observed="not measured", ok=False,
                              note="no pre-flight report names the outputs to measure")]
    outputs = [o for o in run_info.report.outputs if not dropped_by_the_job(o)]
    if attempt.production_stats_run_id is None:
        conf = sandbox_conf(mode="stats", database=run_info.database, sample="none", location=None,
                            outputs=outputs_conf(outputs))
        attempt.production_stats_run_id = start_run(
            client, run_info.job, stats_request_id(record.incident_id, attempt.fix_job or "", fix_run.id),
            overrides={"spark": {"conf": conf}})
        deps.records.save(record)
        crash_point(deps, "verify.stats_started")
    run = follow(client, attempt.production_stats_run_id, settings.run_timeout_s, settings.run_poll_s)
    attempt.production_stats_duration_s = run_seconds(run)
    try:
        measured = parse_report(client.get_logs(run.id, "driver/stdout")) if run.status == "succeeded" else None
    except (BadSandboxReport, NotFound):
        measured = None
    if measured is None:
        return [ComparisonRow(output="(production)", metric="written", observed=f"stats run {run.id} {run.status}",
                              ok=False, note=f"the fix run's outputs could not be measured (run {run.id} "
                                             f"ended {run.status} without a report)")]
    seen = {o.name: o for o in outputs}  # what the pre-flight saw: the last good outputs, how the fix writes them
    baselines = {name: o.baseline for name, o in seen.items()}
    measured = measured.model_copy(update={
        "sample": SampleSpec(kind="none", value=None),
        "outputs": [o.model_copy(update={"baseline": baselines.get(o.name),
                                         "operations": seen[o.name].operations if o.name in seen else o.operations})
                    for o in measured.outputs]})
    return compare_report(measured, Thresholds.from_settings(settings),
                          schema_may_change=schema_may_change(attempt.diagnosis), expected=baselines)


def verify(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["log_fetch", "escalate"]]:
    settings = deps.settings
    attempt = current_attempt(record, state["attempt"])
    assert attempt.fix_run_id is not None, "verify runs after redeploy"
    run = follow(deps.client, attempt.fix_run_id, settings.run_timeout_s, settings.run_poll_s)
    attempt.fix_run_status, attempt.fix_run_duration_s = run.status, run_seconds(run)
    if run.status != "succeeded":
        attempt.verdict = f"fix run {run.status}"
        feedback = (f"Attempt {attempt.number}: the patch ({attempt.patch.kind if attempt.patch else '?'}: "
                    f"{attempt.patch.explanation if attempt.patch else ''}) was deployed as {attempt.fix_job}; "
                    f"its run {run.id} ended {run.status}. Its log follows as the evidence.")
        return next_attempt(state, settings, attempt, analyzed_run=run.id, feedback=feedback)
    attempt.production_comparison = measure_production(deps, record, attempt, run)
    if not all(r.ok for r in attempt.production_comparison):
        found = "; ".join(failures(attempt.production_comparison))
        attempt.verdict = f"production comparison failed: {found}"
        feedback = (f"Attempt {attempt.number}: the fix passed its sandbox but its production run {run.id} wrote "
                    f"output unlike the last good output: {found}.")
        return next_attempt(state, settings, attempt, analyzed_run=run.id, feedback=feedback)
    attempt.check_passed = run_output_check(deps, record, attempt)
    if attempt.check_passed is False:
        attempt.verdict = "check-failed"
        feedback = (f"Attempt {attempt.number}: the fix run {run.id} succeeded but the output check "
                    f"{attempt.check_job} (run {attempt.check_run_id}) failed: the output is wrong.")
        return next_attempt(state, settings, attempt, analyzed_run=attempt.check_run_id or run.id, feedback=feedback)
    attempt.verdict = "healed"
    record.state = "healed"
    record.reason = (f"{attempt.fix_job} run {run.id} succeeded; its outputs compare with the last good ones "
                     f"(pre-flight run {attempt.preflight.run_id if attempt.preflight else '?'} and production)"
                     + (" and its output check passed" if attempt.check_passed else "; the job has no output check"))
    return Command(goto=END, update={"outcome": "healed", "reason": record.reason})
