"""verify: follow the fix run to its end; a run that exits 0 is not a heal until its outputs are checked.

Succeeded → the launcher measures the real outputs (a `stats` run of the attempt's pre-flight job:
no application runs) and our code compares them with the last good outputs the pre-flight saw, the
same comparison as on the sandbox; then the job's output check (`<job>-check`, when it exists)
runs. Both pass → healed. Failed, or either check failed → the next attempt starts from this run's
logs, until `max_attempts`; then our code escalates. The model is never asked whether to give up.

With environments, verify first follows the fix's run where fixes are proven (the facts go to the
attempt's `proof`), compared there with that environment's last good outputs; passing, the fix goes to
promotion. After promotion it follows the run in the incident's own environment, compared with the
outputs measured there just before it (`Promotion.baseline`).
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END
from langgraph.types import Command

from agents.comparison import Thresholds, compare_report, dropped_by_the_job, failures, schema_may_change
from agents.record import Attempt, ComparisonRow, Deployment, IncidentRecord
from agents.runs import check_request_id, follow, run_seconds, start_run, stats_request_id
from agents.sandbox.jobs import outputs_conf, sandbox_conf
from agents.sandbox.report import BadSandboxReport, SampleSpec, parse_report
from agents.stage import crash_point, current_attempt, deploy_environment, deployment, next_attempt
from agents.state import Deps, HealState
from cde_client import CdeClient, JobRun, NotFound

Target = Attempt | Deployment  # where the run's facts go: the attempt's own fields, or its proof's


def run_output_check(deps: Deps, client: CdeClient, record: IncidentRecord, target: Target) -> bool | None:
    """Runs the job's output check after a successful fix run. None when the job has none."""
    check_job = record.job + deps.settings.check_job_suffix
    try:
        client.get_job(check_job)
    except NotFound:
        return None
    target.check_job = check_job
    if target.check_run_id is None:
        target.check_run_id = start_run(client, check_job, check_request_id(
            record.incident_id, target.fix_job or "", target.fix_run_id or 0))
        deps.records.save(record)
        crash_point(deps, "verify.check_started")
    run = follow(client, target.check_run_id, deps.settings.run_timeout_s, deps.settings.run_poll_s)
    target.check_run_duration_s = run_seconds(run)
    return run.status == "succeeded"


def measure_production(deps: Deps, client: CdeClient, record: IncidentRecord, attempt: Attempt, target: Target,
                       fix_run: JobRun) -> list[ComparisonRow]:
    """The fix run's real outputs against the last good ones (the same comparison, unsampled), by a
    `stats` run: of the pre-flight job, against what the pre-flight saw; after a promotion, of the
    measuring job in the incident's environment, against what it measured before the promoted run."""
    settings = deps.settings
    run_info = attempt.preflight
    promoted = attempt.promotion if target is attempt else None
    if run_info is None or run_info.report is None or not [o for o in run_info.report.outputs
                                                           if not dropped_by_the_job(o)]:
        return [ComparisonRow(output="(production)", metric="written", observed="not measured", ok=False,
                              note="no pre-flight report names the outputs to measure")]
    outputs = [o for o in run_info.report.outputs if not dropped_by_the_job(o)]
    stats_job = promoted.baseline_job if promoted and promoted.baseline_job else run_info.job
    if target.production_stats_run_id is None:
        conf = sandbox_conf(mode="stats", database=run_info.database, sample="none", location=None,
                            outputs=outputs_conf(outputs))
        target.production_stats_run_id = start_run(
            client, stats_job, stats_request_id(record.incident_id, attempt.fix_job or "", fix_run.id),
            overrides={"spark": {"conf": conf}})
        deps.records.save(record)
        crash_point(deps, "verify.stats_started")
    run = follow(client, target.production_stats_run_id, settings.run_timeout_s, settings.run_poll_s)
    target.production_stats_duration_s = run_seconds(run)
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
    if promoted is not None:  # the last good outputs here, measured before the promoted run
        before = {o.name: o.stats for o in promoted.baseline.outputs} if promoted.baseline else {}
        baselines = {name: before.get(name) for name in seen}
    measured = measured.model_copy(update={
        "sample": SampleSpec(kind="none", value=None),
        "outputs": [o.model_copy(update={"baseline": baselines.get(o.name),
                                         "operations": seen[o.name].operations if o.name in seen else o.operations})
                    for o in measured.outputs]})
    return compare_report(measured, Thresholds.from_settings(settings),
                          schema_may_change=schema_may_change(attempt.diagnosis), expected=baselines)


def verify(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["log_fetch", "escalate",
                                                                                  "promote"]]:
    settings = deps.settings
    environment = deploy_environment(state, deps)
    client = deps.cde(environment)
    attempt = current_attempt(record, state["attempt"])
    target = deployment(attempt, environment, deps)
    assert target.fix_run_id is not None, "verify runs after redeploy"
    where = f" in {environment}" if deps.promotes else ""
    run = follow(client, target.fix_run_id, settings.run_timeout_s, settings.run_poll_s)
    target.fix_run_status, target.fix_run_duration_s = run.status, run_seconds(run)
    analyzed_in = "" if environment == deps.home else environment
    if run.status != "succeeded":
        attempt.verdict = f"fix run{where} {run.status}"
        feedback = (f"Attempt {attempt.number}: the patch ({attempt.patch.kind if attempt.patch else '?'}: "
                    f"{attempt.patch.explanation if attempt.patch else ''}) was deployed{where} as {attempt.fix_job}; "
                    f"its run {run.id} ended {run.status}. Its log follows as the evidence.")
        return next_attempt(state, settings, attempt, analyzed_run=run.id, feedback=feedback, analyzed_in=analyzed_in)
    target.production_comparison = measure_production(deps, client, record, attempt, target, run)
    if not all(r.ok for r in target.production_comparison):
        found = "; ".join(failures(target.production_comparison))
        attempt.verdict = f"production comparison{where} failed: {found}"
        feedback = (f"Attempt {attempt.number}: the fix passed its sandbox but its run {run.id}{where} wrote "
                    f"output unlike the last good output: {found}.")
        return next_attempt(state, settings, attempt, analyzed_run=run.id, feedback=feedback, analyzed_in=analyzed_in)
    target.check_passed = run_output_check(deps, client, record, target)
    if target.check_passed is False:
        attempt.verdict = f"check-failed{where}"
        feedback = (f"Attempt {attempt.number}: the fix run {run.id}{where} succeeded but the output check "
                    f"{target.check_job} (run {target.check_run_id}) failed: the output is wrong.")
        return next_attempt(state, settings, attempt, analyzed_run=target.check_run_id or run.id, feedback=feedback,
                            analyzed_in=analyzed_in)
    checked = " and its output check passed" if target.check_passed else "; the job has no output check"
    if environment != deps.home:
        attempt.verdict = f"proven in {environment}"
        record.reason = (f"{attempt.fix_job} run {run.id} in {environment} succeeded; its outputs compare with the "
                         f"last good ones there{checked}")
        return Command(goto="promote")
    attempt.verdict = "healed"
    record.state = "healed"
    if attempt.promotion is not None and attempt.proof is not None:
        proof = attempt.proof
        record.reason = (f"{attempt.fix_job} was proven in {proof.environment} (pre-flight run "
                         f"{attempt.preflight.run_id if attempt.preflight else '?'}, fix run {proof.fix_run_id}), "
                         f"promoted to {environment} ({attempt.promotion.decided_by}); its run {run.id} there "
                         f"succeeded and its outputs compare with the last good ones{checked}")
    else:
        record.reason = (f"{attempt.fix_job} run {run.id} succeeded; its outputs compare with the last good ones "
                         f"(pre-flight run {attempt.preflight.run_id if attempt.preflight else '?'} and production)"
                         + checked)
    return Command(goto=END, update={"outcome": "healed", "reason": record.reason})
