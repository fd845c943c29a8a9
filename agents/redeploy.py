"""redeploy: the fix, proven on its pre-flight, as a new job `<job>-fix-<n>`, then one run of it.

The new job copies everything of the original (mounts and their prefixes, every other file of
the resource, args, conf, driver and executor settings, python env, variables) except the change
(`agents/fixjobs.py`; pre-flight made its resource). The original job and resources are never
modified. Every step is idempotent: the fix job's name is on the record before anything is created,
creating what exists already is accepted, and the run is started with a requestID derived from the
incident and attempt, so a restart or a retry never creates a second fix job or a second fix run.

With environments, redeploy acts where fixes are proven first (and verify goes on to promotion), then,
once promoted, in the incident's own environment (`agents/promote.py`).
"""

from __future__ import annotations

from typing import Literal

from langgraph.types import Command

from agents.fixjobs import choose_fix_name, ensure_same_job, fix_job_spec, prepare_fix
from agents.record import IncidentRecord
from agents.runs import fix_request_id, start_run
from agents.stage import crash_point, current_attempt, deploy_environment, deployment
from agents.state import Deps, HealState
from cde_client import Conflict


def redeploy(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["verify"]]:
    environment = deploy_environment(state, deps)
    client = deps.cde(environment)
    attempt = current_attempt(record, state["attempt"])
    original = record.original
    assert original is not None and attempt.patch is not None
    if attempt.fix_job is None:  # pre-flight chose it; kept for incidents checkpointed before it existed
        attempt.fix_job = choose_fix_name(deps, record)
        deps.records.save(record)
        crash_point(deps, "redeploy.name_chosen")
    target = deployment(attempt, environment, deps)
    target.fix_job = attempt.fix_job
    name, new_spark, swap = prepare_fix(deps, client, state, record, attempt)
    spec = fix_job_spec(original.definition, name, new_spark, swap)
    try:
        client.create_job(spec)
    except Conflict:
        ensure_same_job(client, name, spec)
    deps.records.save(record)
    crash_point(deps, "redeploy.job_created")
    target.fix_run_id = start_run(client, name, fix_request_id(record.incident_id, attempt.number, name))
    return Command(goto="verify", update={"base_spark": new_spark, "deploy_in": environment})
