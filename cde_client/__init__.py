"""Typed Python client of the Cloudera Data Engineering (CDE) Jobs REST API v1, on `requests`.

    from cde_client import CdeClient, NotFound
    client = CdeClient(jobs_api_url, user="dex-user", password="...")
    run_id = client.run_job("etl", request_id="etl#2026-11-21")
    run = client.wait_run(run_id, timeout_s=600)

The error tree is drawn in `cde_client.errors`.
"""

from .auth import derive_token_url
from .client import CdeClient
from .errors import (
    ApiError,
    AuthError,
    CdeConnectionError,
    CdeError,
    Conflict,
    NotFound,
    ResourceBuildFailed,
    RunTimeout,
    WaitTimeout,
)
from .models import RUN_TERMINAL_STATUSES, Job, JobRun, Mount, Resource, ResourceFile

__all__ = [
    "CdeClient",
    "Job",
    "JobRun",
    "Resource",
    "ResourceFile",
    "Mount",
    "RUN_TERMINAL_STATUSES",
    "derive_token_url",
    "CdeError",
    "CdeConnectionError",
    "AuthError",
    "NotFound",
    "Conflict",
    "ApiError",
    "ResourceBuildFailed",
    "WaitTimeout",
    "RunTimeout",
]
