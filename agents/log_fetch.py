"""log-fetch: gather the evidence of the run being analysed.

Driver stdout and stderr (under spark-submit the Python traceback is on stdout), the job
definition, the application file read from its resource, and the run's effective spec. For an
anomaly a person chose to heal (the run succeeded), the detector's findings head the evidence.
"""

from __future__ import annotations

import posixpath
from typing import Any

from langgraph.types import Command

from agents.anomalies import evidence_text
from agents.distill import distill
from agents.errors import UnsupportedJob
from agents.record import IncidentRecord, OriginalJob
from agents.sandbox.report import REPORT_MARKER
from agents.stage import current_attempt
from agents.state import Deps, HealState
from cde_client import CdeClient, Job, NotFound

MOUNT_ROOT = "/app/mount/"
DRIVER_LOGS = ("driver/stdout", "driver/stderr")
SUBMITTER_LOG = "submitter/stdout"  # read when the driver left nothing: the run may never have started
DISPLAY_LOG_CHARS = 200_000  # the tail of the driver log kept in the record for the dashboard
REMOTE_SCHEMES = ("s3a://", "s3://", "hdfs://", "abfs://", "gs://", "http://", "https://", "local:")


def resolve_application_file(job: Job, client: CdeClient, hint_resource: str | None = None) -> tuple[str, str]:
    """(resource name, path inside it) of a job's application file, resolved as CDE mounts do.

    A mount with dirPrefix P shows its files under /app/mount/P; a path without that prefix
    is relative to the mount root.
    """
    file = str(job.spark.get("file") or "")
    if not file:
        raise UnsupportedJob(f"job {job.name!r} has no application file (spark.file is empty)")
    if file.startswith(REMOTE_SCHEMES):
        raise UnsupportedJob(f"job {job.name!r} runs {file!r}, which is not in a CDE resource")
    if not file.endswith(".py"):
        kind = "a JVM job" if file.endswith(".jar") or job.spark.get("className") else "not a Python job"
        raise UnsupportedJob(f"job {job.name!r} is {kind} (application file {file!r}); "
                             "the healer patches PySpark jobs only")
    path = file[len(MOUNT_ROOT):] if file.startswith(MOUNT_ROOT) else file.lstrip("/")
    candidates: list[tuple[str, str]] = []
    for mount in job.mounts:
        prefix = (mount.dir_prefix or "").strip("/")
        if not prefix:
            candidates.append((mount.resource_name, path))
        elif path.startswith(prefix + "/"):
            candidates.append((mount.resource_name, path[len(prefix) + 1:]))
    if not candidates:
        raise UnsupportedJob(f"job {job.name!r}: no mounted resource holds {file!r}")
    if len(candidates) > 1:  # several mounts at the root: the one that has the file
        found = [c for c in candidates if _has_file(client, *c)]
        preferred = [c for c in found if c[0] == hint_resource]
        candidates = preferred or found or candidates
    return candidates[0]


def _has_file(client: CdeClient, resource: str, path: str) -> bool:
    try:
        return any(f.path == path for f in client.get_resource(resource, include_files=True).files)
    except NotFound:
        return False


def read_logs(client: CdeClient, run_id: int) -> tuple[str, str, list[str]]:
    """Driver stdout and stderr of a run, and the log types it has. A missing log is empty."""
    try:
        types = client.log_types(run_id)
    except NotFound:
        types = []
    logs = []
    for log_type in DRIVER_LOGS:
        if types and log_type not in types:
            logs.append("")
            continue
        try:
            logs.append(client.get_logs(run_id, log_type))
        except NotFound:
            logs.append("")
    if not (logs[0].strip() or logs[1].strip()) and (not types or SUBMITTER_LOG in types):
        try:
            logs[1] = client.get_logs(run_id, SUBMITTER_LOG)
        except NotFound:
            pass
    return logs[0], logs[1], types


def without_sandbox_report(log: str) -> str:
    """A pre-flight's log without the launcher's report line: our data, not the run's evidence (it
    would spend the evidence budget, and carries values from the tables)."""
    if REPORT_MARKER not in log:
        return log
    return "".join(line for line in log.splitlines(keepends=True) if not line.startswith(REPORT_MARKER))


def log_fetch(state: HealState, deps: Deps, record: IncidentRecord) -> Command:
    client, settings = deps.client, deps.settings
    run_id = state["analyzed_run_id"]
    update: dict[str, Any] = {}
    base_code: str | None = None
    if record.original is None or record.original.code is None or state.get("base_code") is None:
        # The record's copy is redacted for display; the code we patch always comes from the CDE.
        job = client.get_job(state["job"])
        resource, path = resolve_application_file(job, client, settings.resource_name)
        raw = client.download_file(resource, path)
        try:
            code = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsupportedJob(f"{resource}/{path} is not UTF-8 text: {exc}") from exc
        record.original = OriginalJob(
            name=job.name, resource=resource, file_path=path, code=code,
            definition=job.raw, effective_spec=client.get_run(state["run_id"]).spec,
        )
        base_code = code
    if state.get("base_code") is None:  # first attempt, or this stage re-run after a crash
        update.update(base_code=base_code, base_spark=dict(record.original.definition.get("spark") or {}))
    stdout, stderr, types = read_logs(deps.cde(state.get("analyzed_in")), run_id)
    stdout = without_sandbox_report(stdout)
    evidence = distill(stdout, stderr, token_budget=settings.evidence_token_budget,
                       app_file_name=posixpath.basename(record.original.file_path or ""))
    evidence.log_types = types
    if run_id == record.run_id and record.anomaly is not None:  # a flagged success a person chose to heal
        found = evidence_text(record)
        evidence.distilled = found + ("\n\n" + evidence.distilled if evidence.distilled else "")
        evidence.key_lines = [found.splitlines()[0], *evidence.key_lines]
    if run_id == record.run_id:
        record.evidence = evidence
        record.driver_log = (stdout + ("\n" + stderr if stderr else ""))[-DISPLAY_LOG_CHARS:]
    else:
        current_attempt(record, state["attempt"]).evidence = evidence
    return Command(goto="diagnose", update=update)
