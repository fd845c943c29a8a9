"""The fix's resource and job on CDE: its name, its definition, its copy of the code.

Shared by pre-flight (which creates the fix's resource and runs it in a sandbox first), redeploy
(which creates the fix job itself) and promotion. The original job and resources are never modified.
With environments, the fix is made in the environment where fixes are proven from the original in
the incident's own (`stage_job` copies the job and its resources there when missing), and a fix's
name is free in both.
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
from agents.state import Deps, HealState
from cde_client import CdeClient, Conflict, NotFound, ResourceBuildFailed

PREFLIGHT_SUFFIX = "-preflight"  # `<job>-fix-<n>-preflight` runs the fix in a sandbox first
SERVER_FIELDS = ("created", "modified", "lastUsed", "lastRun", "latestRun")
MAX_FIX_NUMBER = 999  # names <job>-fix-1 .. -999


def next_fix_name(clients: list[CdeClient], job: str, taken: set[str]) -> str:
    """The first `<job>-fix-<n>` that no job (on any of `clients`) and no earlier attempt uses. A number
    is taken by its pre-flight jobs too (`<job>-fix-<n>[-c<k>]-preflight`, left by an incident that never
    deployed): a new incident must never run another's sandbox job, made with that incident's sandbox."""
    pattern = re.compile(re.escape(job) + r"-fix-(\d+)(?:-[\w.-]+)?$")
    used = {int(m.group(1)) for client in clients for j in client.list_jobs(filters=[f"name[like]{job}-fix-%"])
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


def copy_resource_with_fix(source_cde: CdeClient, target_cde: CdeClient, source: str, target: str,
                           fixed_path: str, code: str) -> None:
    """A new files resource `target` on `target_cde`: every file of `source` on `source_cde` (the same
    CDE or another), with `fixed_path` replaced by `code`."""
    try:
        target_cde.create_resource(target, type="files")
    except Conflict:
        pass  # created before a restart; uploads below are idempotent
    for item in source_cde.get_resource(source, include_files=True).files:
        if item.path != fixed_path:
            target_cde.upload_file(target, item.path, source_cde.download_file(source, item.path))
    target_cde.upload_file(target, fixed_path, code.encode("utf-8"))


def ensure_resource(source_cde: CdeClient, target_cde: CdeClient, name: str, timeout_s: float) -> bool:
    """Resource `name` of `source_cde` on `target_cde` too, copied with its files when missing (a
    python environment is built there from its requirements, waited for up to `timeout_s`). True when
    it was copied. One that exists is left as it is: the target's own resource is its owner's."""
    try:
        target_cde.get_resource(name, include_files=False)
        return False
    except NotFound:
        pass
    resource = source_cde.get_resource(name, include_files=True)
    version = (resource.python_env_info or {}).get("pythonVersion") or "python3"
    try:
        target_cde.create_resource(name, type=resource.type, python_version=str(version))
    except Conflict:
        pass  # made by this healer before a restart; the uploads are idempotent
    for item in resource.files:
        target_cde.upload_file(name, item.path, source_cde.download_file(name, item.path))
    if resource.type == "python-env":
        try:
            target_cde.wait_resource_ready(name, timeout_s=timeout_s)
        except ResourceBuildFailed as exc:  # not passing with time: a person must look
            raise EndIncident(f"the python environment {name!r} copied for the fix could not be built there: "
                              f"{exc}") from exc
    return True


def stage_job(source_cde: CdeClient, target_cde: CdeClient, job: dict[str, Any], timeout_s: float) -> list[str]:
    """A job of `source_cde` (its definition) on `target_cde` when missing there, with the resources it
    mounts and its python environment (each copied when missing), its schedule disabled: the
    environment where fixes are proven then runs the job as the failed one does. What it copied, in
    words ("resource r", "job j"); an existing job is left as it is."""
    copied: list[str] = []
    names = [m.get("resourceName") for m in job.get("mounts") or []]
    names.append((job.get("spark") or {}).get("pythonEnvResourceName"))
    for name in dict.fromkeys(n for n in names if n):
        if ensure_resource(source_cde, target_cde, name, timeout_s):
            copied.append(f"resource {name}")
    try:
        target_cde.get_job(job["name"])
    except NotFound:
        try:
            target_cde.create_job(fix_job_spec(job, job["name"], job.get("spark") or {}, None))
        except Conflict:
            pass  # made before a restart
        copied.append(f"job {job['name']}")
    return copied


def resource_of(state: HealState, record: IncidentRecord) -> str | None:
    """For config and rerun patches the code is unchanged: the last deployed code's resource."""
    earlier = [a for a in record.attempts if a.number < state["attempt"] and a.patch and a.patch.kind == "code"]
    return earlier[-1].fix_resource if earlier else (record.original.resource if record.original else None)


def choose_fix_name(deps: Deps, record: IncidentRecord) -> str:
    """The next attempt's fix job name: one no job (in either environment, with promotion) and no
    earlier attempt of the incident uses."""
    clients = [deps.client] + ([deps.cde(deps.proving)] if deps.promotes else [])
    return next_fix_name(clients, record.job, {a.fix_job for a in record.attempts if a.fix_job})


def ensure_same_job(client: CdeClient, name: str, spec: dict[str, Any]) -> None:
    """A job with the fix's name exists: fine if we made it before a restart, an error otherwise."""
    try:
        existing = client.get_job(name)
    except NotFound as exc:  # deleted between our create and this look
        raise TryAgainLater(f"fix job {name!r} vanished while it was being created") from exc
    if existing.spark.get("file") != spec["spark"].get("file"):
        raise EndIncident(f"a job named {name!r} exists and is not this incident's fix; "
                          "rename or delete it")


def prepare_fix(deps: Deps, client: CdeClient, state: HealState, record: IncidentRecord,
                attempt: Attempt) -> tuple[str, dict[str, Any], tuple[str, str] | None]:
    """The attempt's fix on `client` (the incident's CDE or where fixes are proven), once its name is
    chosen (`choose_fix_name`, kept on the record before anything is made): its code's resource (made
    from the original's on the incident's CDE; idempotent), its spark section, and the resource swap
    its job makes. The caller saves the record."""
    original = record.original
    assert original is not None and attempt.patch is not None and attempt.fix_job is not None
    name = attempt.fix_job
    spark = apply_spark_changes(state.get("base_spark") or {}, attempt.patch)
    swap = None
    if attempt.patch.kind == "code":
        code = state.get("fixed_code")  # the record's copy is redacted; the checkpoint's is what we deploy
        assert code is not None
        swap = candidate_resource(deps.client, client, record, name, attempt.candidate, code)
        attempt.fix_resource = swap[1]
    else:  # config or rerun: the code last tried, whose resource already exists
        attempt.fix_resource = resource_of(state, record)
        if attempt.fix_resource and attempt.fix_resource != original.resource:
            swap = (original.resource or "", attempt.fix_resource)
    return name, spark, swap


def candidate_resource(source_cde: CdeClient, target_cde: CdeClient, record: IncidentRecord, fix_job: str,
                       candidate: int, code: str) -> tuple[str, str]:
    """A candidate's code in its own copy (on `target_cde`) of the job's resource (on `source_cde`, the
    incident's CDE; idempotent), and the swap of resources its jobs make: (the original resource, the copy)."""
    original = record.original
    assert original is not None and original.resource and original.file_path
    resource = fix_resource_name(fix_job, candidate)
    copy_resource_with_fix(source_cde, target_cde, original.resource, resource, original.file_path, code)
    return original.resource, resource


def fix_resource_name(fix_job: str, candidate: int) -> str:
    """The resource holding a candidate's code: `<job>-fix-<n>`, `<job>-fix-<n>-c2`, ..."""
    return fix_job + candidates.suffix(candidate)


def earlier_outputs(record: IncidentRecord, number: int) -> list[SandboxOutput]:
    """The outputs earlier pre-flights of the incident wrote: a fix may not stop writing them, and
    reads of them must be redirected to the sandbox from the start."""
    return [o for a in record.attempts if a.number < number and a.preflight and a.preflight.report
            for o in a.preflight.report.outputs]
