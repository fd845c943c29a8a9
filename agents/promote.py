"""promote: a fix proven in the environment where fixes are proven goes to the incident's own.

Reached only with environments (`CDE_<NAME>_VERIFY_IN`), after verify passed the fix's run there
(pre-flight, data comparison, its run, the comparison of what it wrote, the output check). With
`HEAL_PROMOTION=approve` the incident waits for a person (the same pause and buttons as an approval:
`Command(resume={"approved": bool, "by": str, "reason": str})`); `auto` goes on at once. Rejected, the
fix stays where it was proven and nothing reaches the incident's environment.

Then, in the incident's environment: the fix's resource (made from the original there, or for a
config change the earlier fix's copied over), a measuring job `<fix>-measure` (the launcher in `stats`
mode: it never runs the application) and one run of it that measures the outputs as they stand, the
last good ones the promoted run is compared with (the proving environment's data are not these).
Then redeploy creates the fix job there and verify follows its run. Idempotent like the other stages:
every name is kept on the record before anything is created, runs start with a requestID.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END
from langgraph.types import Command

from agents.errors import EndIncident
from agents.fixjobs import ensure_resource, ensure_same_job, fix_job_spec, prepare_fix
from agents.record import Attempt, IncidentRecord, Promotion
from agents.runs import baseline_request_id, follow, run_seconds, start_run
from agents.sandbox.jobs import ensure_bundle, outputs_conf, sandbox_conf, sandboxed_spec
from agents.sandbox.report import BadSandboxReport, parse_report
from agents.stage import ask_person, crash_point, current_attempt
from agents.state import Deps, HealState
from agents.times import utc_now
from cde_client import Conflict, NotFound

MEASURE_SUFFIX = "-measure"  # `<job>-fix-<n>-measure`: the launcher measuring outputs, never the application


def promote(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["redeploy", "__end__"]]:
    attempt = current_attempt(record, state["attempt"])
    assert attempt.fix_job is not None and attempt.proof is not None, "promote runs after a proven fix"
    if attempt.promotion is None:
        attempt.promotion = Promotion(source=deps.proving, target=deps.home, mode=deps.settings.promotion)
        deps.records.save(record)
    promotion = attempt.promotion
    if not promotion.decided_by:
        if promotion.mode == "approve":
            ended = _ask(deps, record, attempt, promotion)
            if ended is not None:
                return ended
        else:
            promotion.decided_by = "auto"
        promotion.decided_at = utc_now()
        record.state = "promoting"
        deps.records.save(record)
        crash_point(deps, "promote.decided")
    _measure_before(state, deps, record, attempt, promotion)
    return Command(goto="redeploy", update={"deploy_in": deps.home})


def _ask(deps: Deps, record: IncidentRecord, attempt: Attempt, promotion: Promotion) -> Command | None:
    """The pause for a person's decision; the rejection's end, or None once approved."""
    proof = attempt.proof
    assert proof is not None
    decision = ask_person(deps, record, f"{attempt.fix_job} passed in {promotion.source} (run {proof.fix_run_id}): "
                          f"promote it to {promotion.target}?",
                          {"attempt": attempt.number, "promote_to": promotion.target})
    if decision.approved:
        promotion.decided_by = decision.by
        attempt.verdict = f"proven in {promotion.source}; promotion approved by {decision.by}"
        return None
    attempt.verdict = f"promotion rejected by {decision.by}"
    record.state = "rejected"
    record.reason = (f"the promotion of {attempt.fix_job} from {promotion.source} to {promotion.target} was rejected "
                     f"by {decision.by}: {decision.reason}; the fix stays in {promotion.source}, nothing was deployed "
                     f"to {promotion.target}")
    return Command(goto=END, update={"outcome": "rejected", "reason": record.reason})


def _measure_before(state: HealState, deps: Deps, record: IncidentRecord, attempt: Attempt,
                    promotion: Promotion) -> None:
    """The fix's resource and the measuring job in the incident's environment, and the measurement of
    the outputs there before the promoted run (once: kept on the record)."""
    client, settings = deps.client, deps.settings
    original, run_info = record.original, attempt.preflight
    assert original is not None and attempt.patch is not None and attempt.fix_job is not None
    if run_info is None or run_info.report is None:
        raise EndIncident("the fix has no pre-flight report naming its outputs: they cannot be measured in "
                          f"{promotion.target} before promotion")
    earlier = attempt.fix_resource
    if attempt.patch.kind != "code" and earlier and earlier != original.resource:
        ensure_resource(deps.cde(promotion.source), client, earlier, settings.run_timeout_s)  # an earlier fix's code
    name, spark, swap = prepare_fix(deps, client, state, record, attempt)
    if promotion.baseline_job is None:
        promotion.baseline_job = name + MEASURE_SUFFIX
        deps.records.save(record)
    outputs = outputs_conf(run_info.report.outputs)
    conf = sandbox_conf(mode="stats", database=run_info.database, sample="none", location=None, outputs=outputs)
    spec = sandboxed_spec(fix_job_spec(original.definition, promotion.baseline_job, spark, swap),
                          ensure_bundle(client), conf)
    try:
        client.create_job(spec)
    except Conflict:
        ensure_same_job(client, promotion.baseline_job, spec)
    if promotion.baseline is not None:
        return
    if promotion.baseline_run_id is None:
        promotion.baseline_run_id = start_run(client, promotion.baseline_job,
                                              baseline_request_id(record.incident_id, attempt.number, name))
        deps.records.save(record)
        crash_point(deps, "promote.measure_started")
    run = follow(client, promotion.baseline_run_id, settings.run_timeout_s, settings.run_poll_s)
    promotion.baseline_duration_s = run_seconds(run)
    try:
        promotion.baseline = parse_report(client.get_logs(run.id, "driver/stdout")) if run.status == "succeeded" else None
    except (BadSandboxReport, NotFound):
        promotion.baseline = None
    if promotion.baseline is None:
        raise EndIncident(f"the outputs in {promotion.target} could not be measured before promotion (run {run.id} of "
                          f"{promotion.baseline_job} ended {run.status} without a report): the promoted run could not "
                          f"be compared with them, so {attempt.fix_job} was not deployed to {promotion.target}")
