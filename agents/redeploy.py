"""redeploy: the fix as a new resource and a new job `<job>-fix-<n>`, then one run of it.

The new job copies everything of the original (mounts and their prefixes, every other file of
the resource, args, conf, driver and executor settings, python env, variables) except the change.
The original job and resources are never modified. Every step is idempotent: the fix job's name
is written to the record before anything is created, creating what exists already is accepted,
and the run is started with a requestID derived from the incident and attempt, so a restart or a
retry never creates a second fix job or a second fix run.
"""

from __future__ import annotations

import copy
import re
import time
from typing import Any, Literal

from langgraph.types import Command

from agents.errors import EndIncident, TryAgainLater
from agents.record import IncidentRecord
from agents.runs import fix_request_id, start_run
from agents.stage import apply_spark_changes, crash_point, current_attempt
from agents.state import Deps, HealState
from cde_client import CdeClient, Conflict, NotFound

SERVER_FIELDS = ("created", "modified", "lastUsed", "lastRun", "latestRun")
MAX_FIX_NUMBER = 999  # names <job>-fix-1 .. -999
MAX_BACKOFF_S = 600.0  # the longest wait before a re-run, however many came before


def next_fix_name(client: CdeClient, job: str, taken: set[str]) -> str:
    """The first `<job>-fix-<n>` that no job and no earlier attempt uses."""
    pattern = re.compile(re.escape(job) + r"-fix-(\d+)$")
    existing = {j.name for j in client.list_jobs(filters=[f"name[like]{job}-fix-%"]) if pattern.match(j.name)}
    for n in range(1, MAX_FIX_NUMBER + 1):
        name = f"{job}-fix-{n}"
        if name not in existing and name not in taken:
            return name
    raise EndIncident(f"job {job!r} already has {MAX_FIX_NUMBER} fix jobs; clean up old ones")


def fix_job_spec(original: dict[str, Any], name: str, spark: dict[str, Any],
                 swap_resource: tuple[str, str] | None) -> dict[str, Any]:
    """The original job's definition, renamed, with the new spark section and resource swapped.

    A copied schedule is disabled: a fix job runs when the healer starts it, never on a timer.
    """
    spec = {k: copy.deepcopy(v) for k, v in original.items() if k not in SERVER_FIELDS}
    spec["name"] = name
    spec["spark"] = copy.deepcopy(spark)
    if swap_resource:
        old, new = swap_resource
        spec["mounts"] = [
            {**m, "resourceName": new} if m.get("resourceName") == old else dict(m)
            for m in spec.get("mounts") or []
        ]
    schedule = spec.get("schedule")
    if isinstance(schedule, dict):
        spec["schedule"] = {"enabled": False, **({"user": schedule["user"]} if schedule.get("user") else {})}
    return spec


def copy_resource_with_fix(client: CdeClient, source: str, target: str, fixed_path: str, code: str) -> None:
    """A new files resource: every file of `source`, with `fixed_path` replaced by `code`."""
    try:
        client.create_resource(target, type="files")
    except Conflict:
        pass  # created before a restart; uploads below are idempotent
    for item in client.get_resource(source, include_files=True).files:
        if item.path != fixed_path:
            client.upload_file(target, item.path, client.download_file(source, item.path))
    client.upload_file(target, fixed_path, code.encode("utf-8"))


def redeploy(state: HealState, deps: Deps, record: IncidentRecord) -> Command[Literal["verify"]]:
    client = deps.client
    attempt = current_attempt(record, state["attempt"])
    original = record.original
    assert original is not None and attempt.patch is not None
    if attempt.fix_job is None:  # choose the name once, and keep it before creating anything
        taken = {a.fix_job for a in record.attempts if a.fix_job}
        attempt.fix_job = next_fix_name(client, record.job, taken)
        deps.records.save(record)
        crash_point(deps, "redeploy.name_chosen")
    name = attempt.fix_job
    new_spark = apply_spark_changes(state.get("base_spark") or {}, attempt.patch)
    swap = None
    if attempt.patch.kind == "code":
        code = state.get("fixed_code")  # the record's copy is redacted; the checkpoint's is what we deploy
        assert original.resource and original.file_path and code is not None
        copy_resource_with_fix(client, original.resource, name, original.file_path, code)
        attempt.fix_resource = name
        swap = (original.resource, name)
    else:  # config or rerun: the code last deployed, whose resource already exists
        attempt.fix_resource = _resource_of(state, record)
        if attempt.fix_resource and attempt.fix_resource != original.resource:
            swap = (original.resource or "", attempt.fix_resource)
    spec = fix_job_spec(original.definition, name, new_spark, swap)
    try:
        client.create_job(spec)
    except Conflict:
        _ensure_same_job(client, name, spec)
    deps.records.save(record)
    crash_point(deps, "redeploy.job_created")
    if attempt.fix_run_id is None and attempt.patch.kind == "rerun":
        time.sleep(rerun_backoff_s(record, attempt.number, deps.settings.rerun_backoff_s))
    attempt.fix_run_id = start_run(client, name, fix_request_id(record.incident_id, attempt.number, name))
    return Command(goto="verify", update={"base_spark": new_spark})


def rerun_backoff_s(record: IncidentRecord, attempt: int, base_s: float) -> float:
    """Seconds to wait before this attempt's re-run: none for the first re-run of the incident, then
    `base_s` doubled for each one after it (1×, 2×, 4×, ...), at most MAX_BACKOFF_S."""
    earlier = sum(1 for a in record.attempts if a.number < attempt and a.patch and a.patch.kind == "rerun")
    return 0.0 if earlier == 0 else min(base_s * 2 ** (earlier - 1), MAX_BACKOFF_S)


def _resource_of(state: HealState, record: IncidentRecord) -> str | None:
    """For config and rerun patches the code is unchanged: the last deployed code's resource."""
    earlier = [a for a in record.attempts if a.number < state["attempt"] and a.patch and a.patch.kind == "code"]
    return earlier[-1].fix_resource if earlier else (record.original.resource if record.original else None)


def _ensure_same_job(client: CdeClient, name: str, spec: dict[str, Any]) -> None:
    """A job with the fix's name exists: fine if we made it before a restart, an error otherwise."""
    try:
        existing = client.get_job(name)
    except NotFound as exc:  # deleted between our create and this look
        raise TryAgainLater(f"fix job {name!r} vanished while it was being created") from exc
    if existing.spark.get("file") != spec["spark"].get("file"):
        raise EndIncident(f"a job named {name!r} exists and is not this incident's fix; "
                          "rename or delete it")
