"""preflight: the fix runs once in a sandbox before anything of it may touch production.

The fix's resource is made (`agents/fixjobs.py`, the same one redeploy will use), then a pre-flight
job `<job>-fix-<n>-preflight` runs the fixed application through the sandbox launcher
(`agents/sandbox/`): every output goes to the attempt's sandbox database and location, inputs are
read as usual (sampled per `HEAL_PREFLIGHT_SAMPLE`), and the launcher reports what was written with
its statistics and those of the production output of the same name. A pre-flight that fails feeds
the next attempt with its log, exactly as a failed fix run does, and no production run happens.
Idempotent like redeploy: names are kept on the record before anything is created, the run is
started with a requestID of the incident and attempt.

With environments whose fixes are proven elsewhere (`CDE_<NAME>_VERIFY_IN`), all of it happens there:
the job, its resources and its output check are copied there first when missing (`stage_job`), and
the sandbox reads that environment's inputs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

from langgraph.types import Command

from agents import candidates
from agents.fixjobs import (
    PREFLIGHT_SUFFIX,
    candidate_resource,
    choose_fix_name,
    earlier_outputs,
    ensure_same_job,
    fix_job_spec,
    prepare_fix,
    stage_job,
)
from agents.policy.decision import Action
from agents.record import Attempt, IncidentRecord, Preflight
from agents.runs import follow, preflight_request_id, run_seconds, start_run
from agents.sandbox.jobs import ensure_bundle, outputs_conf, sandbox_conf, sandbox_database, sandboxed_spec
from agents.sandbox.report import BadSandboxReport, parse_report
from agents.stage import crash_point, current_attempt, next_attempt
from agents.state import Deps, HealState
from cde_client import CdeClient, Conflict, NotFound

if TYPE_CHECKING:
    from agents.config import Settings

MAX_BACKOFF_S = 600.0  # the longest wait before a re-run, however many came before


def preflight(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["compare", "log_fetch",
                                                                                     "preflight", "escalate"]]:
    client, settings = deps.cde(deps.proving), deps.settings
    attempt = current_attempt(record, state["attempt"])
    original = record.original
    assert original is not None and attempt.patch is not None, "preflight runs after patch"
    if attempt.fix_job is None:  # choose the name once, and keep it before creating anything
        attempt.fix_job = choose_fix_name(deps, record)
        deps.records.save(record)
        crash_point(deps, "preflight.name_chosen")
    if deps.promotes:
        _stage(deps, record)
    name, spark, swap = prepare_fix(deps, client, state, record, attempt)
    _not_taken(client, name, fix_job_spec(original.definition, name, spark, swap))
    if attempt.preflight is None:
        attempt.preflight = _planned(deps, record, attempt.number, attempt.candidate, name)
    run_info = attempt.preflight
    _create_job(client, settings, record, attempt, run_info, spark, swap)
    deps.records.save(record)
    crash_point(deps, "preflight.job_created")
    if run_info.run_id is None and attempt.patch.kind == "rerun":
        time.sleep(rerun_backoff_s(record, attempt.number, settings.rerun_backoff_s))
    if run_info.run_id is None:
        run_info.run_id = start_run(client, run_info.job,
                                    preflight_request_id(record.incident_id, attempt.number, run_info.job))
        deps.records.save(record)
    _start_side_by_side(state, deps, record, attempt, spark)
    run = follow(client, run_info.run_id, settings.run_timeout_s, settings.run_poll_s)
    run_info.status, run_info.duration_s = run.status, run_seconds(run)
    run_info.report = None
    try:
        run_info.report = parse_report(driver_stdout(client, run.id))
    except BadSandboxReport as exc:
        attempt.verdict = f"pre-flight report unreadable: {exc}"
    if run.status == "succeeded":
        return Command(goto="compare", update={"base_spark": spark})
    attempt.verdict = f"pre-flight {run.status}"
    following = candidates.move_on(state, attempt, attempt.verdict)
    if following is not None:
        return following
    patch, tried = attempt.patch, candidates.all_failed(attempt)
    feedback = (f"Attempt {attempt.number}: the patch ({patch.kind}: {patch.explanation}) ran in a sandbox first "
                f"(pre-flight job {run_info.job}, run {run.id}) and ended {run.status}; nothing was deployed.{tried} "
                "Its log follows as the evidence.")
    return next_attempt(state, settings, attempt, analyzed_run=run.id, feedback=feedback, base_spark=spark,
                        analyzed_in=run_info.environment)


def _stage(deps: Deps, record: IncidentRecord) -> None:
    """The failed job and its output check (with their resources) in the environment where fixes are
    proven, copied from the incident's own when missing there; what was copied is kept on the record."""
    assert record.original is not None
    source, target = deps.client, deps.cde(deps.proving)
    jobs = [record.original.definition]
    try:
        jobs.append(source.get_job(record.job + deps.settings.check_job_suffix).raw)
    except NotFound:
        pass
    for job in jobs:
        for what in stage_job(source, target, job, deps.settings.run_timeout_s):
            record.staged.append(f"{what} copied from {deps.home} to {deps.proving}")
            deps.records.save(record)


def _planned(deps: Deps, record: IncidentRecord, attempt: int, candidate: int, fix_job: str) -> Preflight:
    """A candidate's pre-flight, named before anything is created: `<fix>[-c<k>]-preflight` writing to
    the attempt's (and candidate's) sandbox database, in the environment where fixes are proven."""
    settings = deps.settings
    return Preflight(job=fix_job + candidates.suffix(candidate) + PREFLIGHT_SUFFIX, sample=settings.preflight_sample,
                     database=sandbox_database(settings.sandbox_database, record.run_id, attempt, candidate),
                     environment=deps.proving if deps.promotes else "")


def _create_job(client: CdeClient, settings: Settings, record: IncidentRecord, attempt: Attempt,
                run_info: Preflight, spark: dict, swap: tuple[str, str] | None) -> None:
    assert record.original is not None
    conf = sandbox_conf(database=run_info.database, sample=run_info.sample, location=settings.sandbox_location,
                        outputs=outputs_conf(earlier_outputs(record, attempt.number)))
    spec = sandboxed_spec(fix_job_spec(record.original.definition, run_info.job, spark, swap),
                          ensure_bundle(client), conf)
    try:
        client.create_job(spec)
    except Conflict:
        ensure_same_job(client, run_info.job, spec)


def _start_side_by_side(state: HealState, deps: Deps, record: IncidentRecord, attempt: Attempt, spark: dict) -> None:
    """With HEAL_PARALLEL_PREFLIGHTS > 1, the next candidates' pre-flights start now too (each run id
    kept on its candidate before the next starts), so a CDE that runs jobs side by side judges them
    together; compare stops those no longer needed once one passes."""
    client, settings = deps.cde(deps.proving), deps.settings
    assert attempt.fix_job
    codes = state.get("candidate_codes") or {}
    for entry in candidates.waiting(attempt)[:settings.parallel_preflights - 1]:
        code = codes.get(str(entry.number))
        if code is None or (entry.preflight and entry.preflight.run_id is not None):
            continue
        swap = candidate_resource(deps.client, client, record, attempt.fix_job, entry.number, code)
        if entry.preflight is None:
            entry.preflight = _planned(deps, record, attempt.number, entry.number, attempt.fix_job)
        _create_job(client, settings, record, attempt, entry.preflight, spark, swap)
        entry.preflight.run_id = start_run(client, entry.preflight.job, preflight_request_id(
            record.incident_id, attempt.number, entry.preflight.job))
        deps.records.save(record)


def _not_taken(client: CdeClient, name: str, spec: dict) -> None:
    """The fix's name must still be free (or ours, after a restart) before its pre-flight runs."""
    try:
        client.get_job(name)
    except NotFound:
        return
    ensure_same_job(client, name, spec)


def driver_stdout(client: CdeClient, run_id: int) -> str:
    try:
        return client.get_logs(run_id, "driver/stdout")
    except NotFound:
        return ""


def rerun_backoff_s(record: IncidentRecord, attempt: int, base_s: float) -> float:
    """Seconds to wait before this attempt's re-run (its pre-flight comes first): none for the first
    re-run of the incident, then `base_s` doubled for each one after it, at most MAX_BACKOFF_S. A
    recovery policy's choice says it instead: `rerun` at once, `rerun-backoff` after `base_s` doubled
    for each earlier re-run."""
    earlier = sum(1 for a in record.attempts if a.number < attempt and a.patch and a.patch.kind == "rerun")
    chosen = next((a.policy.action for a in record.attempts if a.number == attempt and a.policy), None)
    if chosen == Action.RERUN:
        return 0.0
    if chosen == Action.RERUN_BACKOFF:
        return min(base_s * 2 ** earlier, MAX_BACKOFF_S)
    return 0.0 if earlier == 0 else min(base_s * 2 ** (earlier - 1), MAX_BACKOFF_S)
