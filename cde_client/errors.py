"""Errors raised by the CDE client. Callers catch by meaning, never by parsing messages.

    CdeError                      base of everything the client raises (besides ValueError for bad arguments)
    ├── CdeConnectionError        the server could not be reached or did not answer in time, after retries
    ├── AuthError                 401/403, bad credentials, or no usable token (renewed once, still rejected)
    ├── NotFound                  404: no such job, run, resource, file or log type
    ├── Conflict                  409: already exists; `.existing_id` when the body names one ({"id": ...})
    ├── ApiError                  any other HTTP error (400, 422, 429 or 5xx after retries, ...), or a reply
    │                             the client cannot read; `.status` and the server's `.message`
    ├── ResourceBuildFailed       a python-env resource build ended in a failure status
    └── WaitTimeout               a wait gave up before the awaited state
        └── RunTimeout            wait_run: the run had not reached a terminal status in time

Every HTTP error carries `.status` (int, or None when there was no reply) and `.message` (the
server's `message` field when it sent one). Messages never contain passwords or tokens.
"""

from __future__ import annotations

__all__ = [
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


class CdeError(Exception):
    """Base class. `str(err)` is a one-line explanation: what was asked, and what went wrong."""

    def __init__(self, message: str, *, status: int | None = None, request: str | None = None) -> None:
        self.message = message
        self.status = status
        self.request = request  # "METHOD /path" of the failed call, without query string or secrets
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [p for p in (self.request, f"HTTP {self.status}" if self.status else None, self.message) if p]
        return ": ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class CdeConnectionError(CdeError):
    """The server was unreachable (refused, DNS, TLS, reset) or timed out, even after retries."""


class AuthError(CdeError):
    """Authentication or authorisation failed: bad credentials, an expired or rejected token, 403."""


class NotFound(CdeError):
    """HTTP 404: the named job, run, resource, file or log type does not exist."""


class Conflict(CdeError):
    """HTTP 409: the object already exists. `existing_id` is set when the reply carries `{"id": ...}`."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 409,
        request: str | None = None,
        existing_id: int | None = None,
    ) -> None:
        self.existing_id = existing_id
        super().__init__(message, status=status, request=request)


class ApiError(CdeError):
    """Any other HTTP error status, or a reply that does not have the documented shape."""


class ResourceBuildFailed(CdeError):
    """A python-env resource build failed; `.message` holds the server's status reason."""


class WaitTimeout(CdeError):
    """A wait gave up. `last_status` is the status seen on the last poll."""

    def __init__(self, message: str, *, last_status: str | None = None) -> None:
        self.last_status = last_status
        super().__init__(message)


class RunTimeout(WaitTimeout):
    """wait_run gave up before the run reached a terminal status. `run_id` names the run."""

    def __init__(self, message: str, *, run_id: int, last_status: str | None = None) -> None:
        self.run_id = run_id
        super().__init__(message, last_status=last_status)
