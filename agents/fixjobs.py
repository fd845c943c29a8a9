"""The fix's resource and job on CDE: its name, its definition, its copy of the code.

Shared by pre-flight (which creates the fix's resource and runs it in a sandbox first) and
redeploy (which creates the fix job itself). The original job and resources are never modified.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from agents import candidates
from agents.errors import EndIncident, TryAgainLater
from agents.record import Attempt, IncidentRecord
from agents.sandbox.report import SandboxOutput
from agents.stage import apply_spark_changes
from agents.state import HealState
from cde_client import CdeClient, Conflict, NotFound

PREFLIGHT_SUFFIX = "-preflight"  # `<job>-fix-<n>-preflight` runs the fix in a sandbox first
SERVER_FIELDS = ("created", "modified", "lastUsed", "lastRun", "latestRun")
MAX_FIX_NUMBER = 999  # names <job>-fix-1 .. -999


def next_fix_name(client: CdeClient, job: str, taken: set[str]) -> str:
    """The first `<job>-fix-<n>` that no job and no earlier attempt uses. A number is taken by its
    pre-flight jobs too (`<job>-fix-<n>[-c<k>]-preflight`, left by an incident that never deployed):
    a new incident must never run another's sandbox job, made with that incident's sandbox."""
    pattern = re.compile(re.escape(job) + r"-fix-(\d+)(?:-[\w.-]+)?$")
    used = {int(m.group(1)) for j in client.list_jobs(filters=[f"name[like]{job}-fix-%"])
            if (m := pattern.match(j.name))}
    for n in range(1, MAX_FIX_NUMBER + 1):
        name = f"{job}-fix-{n}"
        if n not in used and name not in taken:
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


def resource_of(state: HealState, record: IncidentRecord) -> str | None:
    """For config and rerun patches the code is unchanged: the last deployed code's resource."""
    earlier = [a for a in record.attempts if a.number < state["attempt"] and a.patch and a.patch.kind == "code"]
    return earlier[-1].fix_resource if earlier else (record.original.resource if record.original else None)


def choose_fix_name(client: CdeClient, record: IncidentRecord) -> str:
    """The next attempt's fix job name: one no job and no earlier attempt of the incident uses."""
    return next_fix_name(client, record.job, {a.fix_job for a in record.attempts if a.fix_job})


def ensure_same_job(client: CdeClient, name: str, spec: dict[str, Any]) -> None:
    """A job with the fix's name exists: fine if we made it before a restart, an error otherwise."""
    try:
        existing = client.get_job(name)
    except NotFound as exc:  # deleted between our create and this look
        raise TryAgainLater(f"fix job {name!r} vanished while it was being created") from exc
    if existing.spark.get("file") != spec["spark"].get("file"):
        raise EndIncident(f"a job named {name!r} exists and is not this incident's fix; "
                          "rename or delete it")


def prepare_fix(client: CdeClient, state: HealState, record: IncidentRecord,
                attempt: Attempt) -> tuple[str, dict[str, Any], tuple[str, str] | None]:
    """The attempt's fix, once its name is chosen (`choose_fix_name`, kept on the record before
    anything is made): its code's resource (created for a code patch; idempotent), its spark section,
    and the resource swap its job makes. The caller saves the record."""
    original = record.original
    assert original is not None and attempt.patch is not None and attempt.fix_job is not None
    name = attempt.fix_job
    spark = apply_spark_changes(state.get("base_spark") or {}, attempt.patch)
    swap = None
    if attempt.patch.kind == "code":
        code = state.get("fixed_code")  # the record's copy is redacted; the checkpoint's is what we deploy
        assert code is not None
        swap = candidate_resource(client, record, name, attempt.candidate, code)
        attempt.fix_resource = swap[1]
    else:  # config or rerun: the code last tried, whose resource already exists
        attempt.fix_resource = resource_of(state, record)
        if attempt.fix_resource and attempt.fix_resource != original.resource:
            swap = (original.resource or "", attempt.fix_resource)
    return name, spark, swap


def candidate_resource(client: CdeClient, record: IncidentRecord, fix_job: str, candidate: int,
                       code: str) -> tuple[str, str]:
    """A candidate's code in its own copy of the job's resource (idempotent), and the swap of
    resources its jobs make: (the original resource, the copy)."""
    original = record.original
    assert original is not None and original.resource and original.file_path
    resource = fix_resource_name(fix_job, candidate)
    copy_resource_with_fix(client, original.resource, resource, original.file_path, code)
    return original.resource, resource


def fix_resource_name(fix_job: str, candidate: int) -> str:
    """The resource holding a candidate's code: `<job>-fix-<n>`, `<job>-fix-<n>-c2`, ..."""
    return fix_job + candidates.suffix(candidate)


def earlier_outputs(record: IncidentRecord, number: int) -> list[SandboxOutput]:
    """The outputs earlier pre-flights of the incident wrote: a fix may not stop writing them, and
    reads of them must be redirected to the sandbox from the start."""
    return [o for a in record.attempts if a.number < number and a.preflight and a.preflight.report
            for o in a.preflight.report.outputs]
