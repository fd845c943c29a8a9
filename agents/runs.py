"""Starting and following CDE runs for an incident, idempotently.

A run is started with a requestID derived from the incident, so a restart or a retry finds the run
it started before instead of starting a second one. CDE deduplicates requestIDs across all jobs,
so the id names the job too, and every run a requestID returns is checked to belong to the job.
"""

from __future__ import annotations

from typing import Any

from agents.errors import EndIncident
from cde_client import CdeClient, JobRun, RunTimeout


def fix_request_id(incident: str, attempt: int, fix_job: str) -> str:
    """The fix run of an attempt: unique per incident, attempt and fix job."""
    return f"healer:{incident}:attempt-{attempt}:{fix_job}"


def preflight_request_id(incident: str, attempt: int, job: str) -> str:
    """The pre-flight run of an attempt (and the user's check run against its sandbox: `job` differs)."""
    return f"healer:{incident}:attempt-{attempt}:{job}"


def stats_request_id(incident: str, fix_job: str, fix_run_id: int) -> str:
    """The measurement of the production outputs that follows one fix run."""
    return f"healer:{incident}:{fix_job}:run-{fix_run_id}:stats"


def baseline_request_id(incident: str, attempt: int, fix_job: str) -> str:
    """The measurement of the outputs in the incident's environment before a promoted fix runs there."""
    return f"healer:{incident}:attempt-{attempt}:{fix_job}:before-promotion"


def check_request_id(incident: str, fix_job: str, fix_run_id: int) -> str:
    """The output check that follows one fix run."""
    return f"healer:{incident}:{fix_job}:run-{fix_run_id}:check"


def start_run(client: CdeClient, job: str, request_id: str, overrides: dict[str, Any] | None = None) -> int:
    """Starts (or finds, on a retry) the run of `job` for `request_id`, and checks it is `job`'s."""
    run_id = client.run_job(job, overrides=overrides, request_id=request_id)
    owner = client.get_run(run_id).job
    if owner != job:  # another healer (or a wiped data dir) used the id: a person must look
        raise EndIncident(f"requestID {request_id!r} answered with run {run_id} of job {owner!r}, not {job!r}")
    return run_id


def run_seconds(run: JobRun) -> float | None:
    """A finished run's time from start to end, as CDE reports it."""
    if run.started is None or run.ended is None or run.ended < run.started:
        return None
    return round((run.ended - run.started).total_seconds(), 1)


def follow(client: CdeClient, run_id: int, timeout_s: float, poll_s: float) -> JobRun:
    """Waits for a run to end; a run still going at the timeout is killed and reported as such."""
    try:
        return client.wait_run(run_id, timeout_s=timeout_s, poll_s=poll_s)
    except RunTimeout:
        client.kill_run(run_id)
        return client.get_run(run_id)
