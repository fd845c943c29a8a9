"""Errors of the local CDE, carrying the status codes and messages a real CDE answers with.

Every `ApiError` becomes one HTTP answer: its `status` and the JSON body CDE uses,
`{"status": "error", "message": ...}` (`RequestIdConflict` answers `{"id": <earlier run>}`, as CDE
does for a reused `requestID`). Unknown routes (404), wrong methods (405) and unexpected failures
(500) are answered by the server in the same body shape.

    LocalCdeError                     base of everything raised by cde_local
    ├── ConfigError                   bad LocalCdeConfig / command line (never an HTTP answer)
    ├── MetastoreError                the shared metastore service cannot start (a run fails with it)
    └── ApiError                      one HTTP error answer: .status, .message, .body(), .headers
        ├── BadRequest          400   invalid body, query, filter, state that forbids the call
        ├── Unauthorized        401   missing, malformed, forged or expired token; bad Basic auth
        ├── Forbidden           403   /local admin endpoints called from a non-loopback address
        ├── NotFound            404   unknown job, resource, file, run or log type
        ├── Conflict            409   duplicate job or resource name; resource busy building
        │   └── RequestIdConflict     a run with this requestID exists: body {"id": <run id>}
        ├── Throttled           429   injected throttling (faults), with Retry-After
        ├── InjectedFault       5xx   injected server error (faults)
        └── OAuthError      400/401   the access-key token route; body adds RFC 6749's `error`
"""

from __future__ import annotations

from typing import Any

# Messages real CDE uses, word for word (cde-api.md §3.2, §3.3).
JOB_NOT_FOUND = "could not get job from storage: job not found"
RESOURCE_NOT_FOUND = "could not get resource from storage: resource not found"
RUN_NOT_FOUND = "could not get job run from storage: job run not found"


class LocalCdeError(Exception):
    """Base of every error raised by cde_local."""


class ConfigError(LocalCdeError, ValueError):
    """A LocalCdeConfig field or a command-line option is invalid."""


class MetastoreError(LocalCdeError):
    """The shared Hive metastore service could not start (metastore.py); runs fail with its message."""


class ApiError(LocalCdeError):
    """One HTTP error answer of the emulated API."""

    status: int = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"status": "error", "message": self.message}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class RequestIdConflict(Conflict):
    """The run request's `requestID` was used before; CDE answers 409 with the earlier run's id."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"a job run with this requestID already exists: {run_id}")
        self.run_id = run_id

    def body(self) -> dict[str, Any]:
        return {"id": self.run_id}


class Throttled(ApiError):
    status = 429


class InjectedFault(ApiError):
    """A 5xx answer switched on through the fault switches; `status` is chosen per instance."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class OAuthError(ApiError):
    """An error of the console's access-key token route (an OAuth 2 client-credentials endpoint):
    CDE's body plus RFC 6749's `error` code and `error_description`, which OAuth clients read."""

    def __init__(
        self, status: int, error: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, headers=headers)
        self.status = status
        self.error = error

    def body(self) -> dict[str, Any]:
        return {**super().body(), "error": self.error, "error_description": self.message}


class JobNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__(JOB_NOT_FOUND)


class ResourceNotFound(NotFound):
    def __init__(self, message: str = RESOURCE_NOT_FOUND) -> None:
        super().__init__(message)


class RunNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__(RUN_NOT_FOUND)
