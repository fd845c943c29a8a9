"""CdeClient: the CDE Jobs API v1 (real or local) as typed Python calls.

Every call has a timeout, retries what is safe to repeat (see transport.py), renews the Knox token
before it expires and once on a 401, pages through lists, and raises the errors of errors.py.

Creates (POST /jobs, POST /resources) are retried on connection errors, 429 and 5xx. If a retry
then gets 409 although an earlier attempt may have been carried out (5xx or a connection lost after
sending), the client reads the stored object: when every field we sent that it also holds has the
value we sent, the 409 is our own create and counts as success; otherwise Conflict is raised. A 409
after only never-sent attempts, or on the first attempt, is always Conflict.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
import requests.auth

from .auth import TokenSource, derive_token_url
from .errors import ApiError, AuthError, Conflict, NotFound, ResourceBuildFailed, RunTimeout, WaitTimeout
from .models import Job, JobRun, Resource
from .transport import Outcome, Retry, Transport, error_for, error_message, request_label

__all__ = ["CdeClient"]

_log = logging.getLogger("cde_client")

T = TypeVar("T")

# Page size asked of list endpoints (what CDE clients use), and the most pages one listing reads.
PAGE_SIZE = 100
MAX_PAGES = 10_000
# How often a call is resent after a 401 with a freshly fetched token.
_AUTH_RENEWALS = 1
_FILTER = re.compile(r"^[A-Za-z0-9_][\w.\-]*\[(eq|noteq|lte|lt|gte|gt|in|notin|like|rlike)\].*$", re.DOTALL)
_RESOURCE_TYPES = ("files", "python-env", "custom-runtime-image")


class _Bearer(requests.auth.AuthBase):
    """Sets `Authorization: Bearer ...` (as an auth object, so a ~/.netrc entry cannot replace it)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "_Bearer(***)"


def _name(value: Any, what: str) -> str:
    """A job/resource name as one URL path segment."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _file_path(value: Any) -> str:
    """A file path inside a resource (nested `a/b/c.py` allowed) as URL path segments."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"file path must be a non-empty string, got {value!r}")
    segments = value.split("/")
    if value.startswith("/") or any(s in ("", ".", "..") for s in segments):
        raise ValueError(f"file path must be relative, without empty, '.' or '..' parts: {value!r}")
    return quote(value, safe="/")


def _filters(filters: Iterable[str] | None) -> list[tuple[str, str]]:
    if filters is None:
        return []
    if isinstance(filters, str):
        raise ValueError("filters must be a list of strings such as ['job[eq]etl'], not one string")
    params = []
    for f in filters:
        if not isinstance(f, str) or not _FILTER.match(f.strip()):
            raise ValueError(
                f"not a CDE filter: {f!r}; expected FIELD[OP]VALUE with OP one of "
                "eq, noteq, lte, lt, gte, gt, in, notin, like, rlike"
            )
        params.append(("filter", f.strip()))
    return params


def _same_as_sent(sent: Any, stored: Any) -> bool:
    """True when every value we sent that the server also stores is equal (servers add defaults)."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        return all(_same_as_sent(v, stored[k]) for k, v in sent.items() if k in stored)
    if isinstance(sent, list) and isinstance(stored, list):
        return len(sent) == len(stored) and all(_same_as_sent(a, b) for a, b in zip(sent, stored, strict=True))
    return sent == stored or (sent is not None and stored is not None and str(sent) == str(stored))


def _positive(value: Any, what: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{what} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")
    return float(value)


class CdeClient:
    """A client of one CDE virtual cluster's Jobs API v1.

    Authenticate with `user` and `password` (a Knox token is fetched from `token_url`, by default
    derived from `jobs_api_url`, and renewed as needed), or with a ready `token` (used until the
    server rejects it; renewed then only when user and password are given too).

    `timeout` is seconds for connect and for read (a float, or a (connect, read) pair) on every HTTP
    attempt; `max_retries` is how many times a failed attempt is repeated; backoff between attempts is
    uniform in [0, min(max_backoff_s, backoff_s * 2**n)], or the server's Retry-After.
    """

    def __init__(
        self,
        jobs_api_url: str,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        token_url: str | None = None,
        timeout: float | tuple[float, float] = 30.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        if not isinstance(jobs_api_url, str):
            raise ValueError(f"jobs_api_url must be a string, got {type(jobs_api_url).__name__}")
        parts = urlsplit(jobs_api_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"jobs_api_url must be an http(s) URL, got {jobs_api_url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"jobs_api_url must not have a query or fragment: {jobs_api_url!r}")
        if (user is None) != (password is None):
            raise ValueError("give both user and password, or neither")
        if user is not None and (not isinstance(user, str) or not user or not isinstance(password, str)):
            raise ValueError("user must be a non-empty string and password a string")
        if token is not None and (not isinstance(token, str) or not token):
            raise ValueError("token must be a non-empty string")
        if user is None and token is None:
            raise ValueError("give user and password, or token")
        if isinstance(timeout, tuple):
            if len(timeout) != 2:
                raise ValueError(f"timeout must be seconds or a (connect, read) pair, got {timeout!r}")
            timeout = (_positive(timeout[0], "connect timeout"), _positive(timeout[1], "read timeout"))
        else:
            timeout = _positive(timeout, "timeout")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")

        self.jobs_api_url = jobs_api_url.strip().rstrip("/")
        self.user = user
        if token_url is not None:
            if user is None:
                raise ValueError("token_url is used only with user and password; give them too")
            token_parts = urlsplit(token_url) if isinstance(token_url, str) else None
            if token_parts is None or token_parts.scheme not in ("http", "https") or not token_parts.hostname:
                raise ValueError(f"token_url must be an http(s) URL, got {token_url!r}")
        self.token_url: str | None = None
        if user is not None:
            self.token_url = token_url if token_url is not None else derive_token_url(self.jobs_api_url)
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "cde-client/0.1 (+python-requests)"
        self._transport = Transport(
            self._session,
            timeout=timeout,
            max_retries=max_retries,
            backoff_s=_positive(backoff_s, "backoff_s", allow_zero=True),
            max_backoff_s=_positive(max_backoff_s, "max_backoff_s", allow_zero=True),
        )
        fetch = None
        if user is not None:
            basic = requests.auth.HTTPBasicAuth(user, password)  # the password lives only in here
            fetch = lambda: self._fetch_token(basic)  # noqa: E731
        self._tokens = TokenSource(fetch, token)

    def __repr__(self) -> str:
        auth = "password" if self.user is not None else "token"
        return f"CdeClient(jobs_api_url={self.jobs_api_url!r}, user={self.user!r}, auth={auth}, secrets=***)"

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._session.close()

    def __enter__(self) -> CdeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------------

    def _fetch_token(self, basic: requests.auth.HTTPBasicAuth) -> Any:
        assert self.token_url is not None
        _log.info("fetching a token from %s", self.token_url)
        outcome = self._transport.send("GET", self.token_url, retry=Retry.SAFE, auth=lambda: basic)
        response = outcome.response
        label = request_label("GET", self.token_url)
        if response.status_code in (401, 403):
            raise AuthError(
                f"the token endpoint rejected the credentials of user {self.user!r} "
                f"({error_message(response)})",
                status=response.status_code,
                request=label,
            )
        if response.status_code == 404:
            raise AuthError(
                f"no Knox token endpoint at {self.token_url}; check the jobs API URL or pass token_url=",
                status=404,
                request=label,
            )
        if response.status_code >= 400:
            raise error_for(response, label)
        try:
            return response.json()
        except ValueError:
            raise AuthError("the token endpoint's reply is not JSON", status=response.status_code,
                            request=label) from None

    def _send(
        self, method: str, path: str, *, retry: Retry = Retry.SAFE, check: bool = True, **kwargs: Any
    ) -> Outcome:
        """One API call: bearer token, retries, one token renewal on 401; raises mapped errors if `check`."""
        url = self.jobs_api_url + path
        used: list[str] = []

        def bearer() -> _Bearer:
            used.append(self._tokens.current())
            return _Bearer(used[-1])

        maybe_done = False
        for renewal in range(_AUTH_RENEWALS + 1):
            outcome = self._transport.send(method, url, retry=retry, auth=bearer, **kwargs)
            maybe_done = maybe_done or outcome.maybe_done_before
            if outcome.response.status_code != 401 or not self._tokens.renewable or renewal == _AUTH_RENEWALS:
                break
            _log.info("%s: token rejected (HTTP 401); renewing it once", request_label(method, url))
            self._tokens.reject(used[-1])
        outcome.maybe_done_before = maybe_done
        response = outcome.response
        if response.status_code == 401:
            hint = ("the token was renewed and still rejected" if self._tokens.renewable
                    else "a fixed token cannot be renewed; give user and password")
            raise AuthError(f"{error_message(response)} ({hint})", status=401,
                            request=request_label(method, url))
        if check and response.status_code >= 400:
            raise error_for(response, request_label(method, url))
        return outcome

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs).response
        try:
            return response.json()
        except ValueError:
            raise ApiError("the reply is not JSON", status=response.status_code,
                           request=request_label(method, self.jobs_api_url + path)) from None

    def _create(self, path: str, body: dict[str, Any], existing: Callable[[], dict[str, Any]]) -> None:
        outcome = self._send("POST", path, retry=Retry.CREATE, check=False, json=body)
        response = outcome.response
        if response.status_code < 400:
            return
        error = error_for(response, request_label("POST", self.jobs_api_url + path))
        if isinstance(error, Conflict) and outcome.maybe_done_before:
            try:
                stored = existing()
            except NotFound:
                raise error from None
            if _same_as_sent(body, stored):
                return  # our own earlier attempt created it (see the module docstring)
        raise error

    def _list(
        self,
        path: str,
        key: str,
        params: list[tuple[str, str]],
        parse: Callable[[Any], T],
        ident: Callable[[T], object],
        limit: int | None = None,
    ) -> list[T]:
        """All items of a paged list (limit/offset, meta.hasNext), at most `limit` of them.

        Guards against servers that ignore offset: a page that adds nothing new ends the listing,
        as does an empty page; more than MAX_PAGES pages is an error.
        """
        items: list[T] = []
        seen: set[object] = set()
        offset = 0
        for _page in range(MAX_PAGES):
            if limit is not None and len(items) >= limit:
                return items
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(items))
            body = self._json("GET", path, params=[*params, ("limit", str(size)), ("offset", str(offset))])
            page = body.get(key) if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise ApiError(f"the reply has no list {key!r}", request=f"GET {path}")
            added = 0
            for raw in page:
                item = parse(raw)
                if ident(item) in seen:
                    continue
                seen.add(ident(item))
                items.append(item)
                added += 1
                if limit is not None and len(items) >= limit:
                    return items
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            has_next = meta.get("hasNext")
            if not page or added == 0 or has_next is False or (has_next is None and len(page) < size):
                return items
            offset += len(page)
        raise ApiError(f"listing {path} did not end after {MAX_PAGES} pages of {PAGE_SIZE}", request=f"GET {path}")

    # -- virtual cluster ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """`GET /info`: facts about the virtual cluster (at least `appName`)."""
        body = self._json("GET", "/info")
        if not isinstance(body, dict):
            raise ApiError("the /info reply is not a JSON object", request="GET /info")
        return body

    # -- resources ---------------------------------------------------------------------------------

    def create_resource(self, name: str, type: str = "files", python_version: str = "python3") -> None:
        """Create a resource; Conflict if one of that name exists."""
        _name(name, "resource name")
        if type not in _RESOURCE_TYPES:
            raise ValueError(f"resource type must be one of {', '.join(_RESOURCE_TYPES)}, got {type!r}")
        body: dict[str, Any] = {"name": name, "type": type, "retentionPolicy": "keep_indefinitely"}
        if type == "python-env":
            body["pythonEnv"] = {"pythonVersion": python_version}
        self._create("/resources", body, lambda: self.get_resource(name, include_files=False).raw)

    def list_resources(self, filters: list[str] | None = None) -> list[Resource]:
        """All resources (their `files` are not fetched: empty lists)."""
        params = [("includeFiles", "false"), ("orderby", "name"), ("orderasc", "true"), *_filters(filters)]
        return self._list("/resources", "resources", params, Resource.from_api, lambda r: r.name)

    def get_resource(self, name: str, include_files: bool = True) -> Resource:
        body = self._json("GET", f"/resources/{_name(name, 'resource name')}",
                          params={"includeFiles": "true" if include_files else "false"})
        return Resource.from_api(body)

    def delete_resource(self, name: str) -> None:
        self._send("DELETE", f"/resources/{_name(name, 'resource name')}")

    def upload_file(self, resource: str, path: str, data: bytes | str) -> None:
        """Put one file into a resource at `path` (nested directories allowed); replaces an existing one."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError(f"data must be bytes or str, got {type(data).__name__}")
        url_path = f"/resources/{_name(resource, 'resource name')}/{_file_path(path)}"
        filename = path.rsplit("/", 1)[-1]
        self._send("PUT", url_path, files={"file": (filename, bytes(data), "application/octet-stream")})

    def download_file(self, resource: str, path: str) -> bytes:
        url_path = f"/resources/{_name(resource, 'resource name')}/{_file_path(path)}"
        return self._send("GET", url_path, headers={"Accept": "application/octet-stream"}).response.content

    def delete_file(self, resource: str, path: str) -> None:
        self._send("DELETE", f"/resources/{_name(resource, 'resource name')}/{_file_path(path)}")

    def wait_resource_ready(self, name: str, timeout_s: float = 600, poll_s: float = 2) -> Resource:
        """Poll until the resource is `ready` (python-env builds). ResourceBuildFailed when the status
        says the build failed (contains "fail" or "error"), WaitTimeout after `timeout_s`."""
        _positive(timeout_s, "timeout_s", allow_zero=True)
        _positive(poll_s, "poll_s")
        deadline = time.monotonic() + timeout_s
        while True:  # bounded by timeout_s
            resource = self.get_resource(name, include_files=False)
            status = resource.status or ("ready" if resource.type == "files" else "")
            if status == "ready":
                return resource
            if "fail" in status or "error" in status:
                reason = (resource.python_env_info or {}).get("statusReason") or status
                raise ResourceBuildFailed(f"resource {name!r} build failed: {reason}", request=f"resource {name}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"resource {name!r} not ready after {timeout_s}s (status {status!r})",
                                  last_status=status)
            time.sleep(min(poll_s, remaining))

    # -- jobs --------------------------------------------------------------------------------------

    def create_job(self, spec: dict[str, Any]) -> None:
        """Create a job from a CDE job spec (`{"name", "type", "mounts", "spark": {...}, ...}`);
        Conflict if a job of that name exists."""
        if not isinstance(spec, dict):
            raise ValueError(f"job spec must be a dict, got {type(spec).__name__}")
        name = spec.get("name")
        _name(name, "job spec 'name'")
        self._create("/jobs", spec, lambda: self.get_job(name).raw)

    def list_jobs(self, filters: list[str] | None = None) -> list[Job]:
        """All jobs (every page), ordered by name; `filters` are CDE filters such as "name[like]etl%"."""
        params = [("orderby", "name"), ("orderasc", "true"), *_filters(filters)]
        return self._list("/jobs", "jobs", params, Job.from_api, lambda j: j.name)

    def get_job(self, name: str) -> Job:
        return Job.from_api(self._json("GET", f"/jobs/{_name(name, 'job name')}"))

    def update_job(self, name: str, changes: dict[str, Any]) -> None:
        """PATCH the job with `changes` (a partial job spec; the server merges it)."""
        if not isinstance(changes, dict):
            raise ValueError(f"changes must be a dict, got {type(changes).__name__}")
        self._send("PATCH", f"/jobs/{_name(name, 'job name')}", json=changes)

    def delete_job(self, name: str) -> None:
        self._send("DELETE", f"/jobs/{_name(name, 'job name')}")

    # -- runs --------------------------------------------------------------------------------------

    def run_job(
        self,
        name: str,
        overrides: dict[str, Any] | None = None,
        variables: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> int:
        """Start a run; returns its id. `overrides` is `{"spark": {...}}`.

        With a `request_id` the call is retried like any safe call: a repeat with the same id gets
        409 `{"id": <earlier>}`, and that earlier id is returned. Without one it is retried only when
        the server certainly did not start a run (connection never made, 429).
        """
        path = f"/jobs/{_name(name, 'job name')}/run"
        body: dict[str, Any] = {}
        if overrides is not None:
            body["overrides"] = overrides
        if variables is not None:
            body["variables"] = variables
        if request_id is not None:
            if not isinstance(request_id, str) or not request_id:
                raise ValueError(f"request_id must be a non-empty string, got {request_id!r}")
            body["requestID"] = request_id
        retry = Retry.SAFE if request_id is not None else Retry.UNSENT
        response = self._send("POST", path, retry=retry, check=False, json=body).response
        label = request_label("POST", self.jobs_api_url + path)
        if response.status_code >= 400:
            error = error_for(response, label)
            if isinstance(error, Conflict) and error.existing_id is not None:
                return error.existing_id
            raise error
        try:
            run_id = response.json()["id"]
        except (ValueError, KeyError, TypeError):
            raise ApiError("the run reply has no 'id'", status=response.status_code, request=label) from None
        if isinstance(run_id, bool) or not isinstance(run_id, int):
            raise ApiError(f"the run reply has a non-integer id {run_id!r}", request=label)
        return run_id

    def list_runs(
        self,
        filters: list[str] | None = None,
        order_by: str = "ID",
        ascending: bool = False,
        limit: int | None = None,
    ) -> list[JobRun]:
        """Runs matching all `filters` (e.g. "job[eq]etl", "status[in]failed,killed"), newest first by
        default; every page, or the first `limit` runs."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
        if not isinstance(order_by, str) or not order_by:
            raise ValueError(f"order_by must be a field name, got {order_by!r}")
        params = [("orderby", order_by), ("orderasc", "true" if ascending else "false"), *_filters(filters)]
        return self._list("/job-runs", "runs", params, JobRun.from_api, lambda r: r.id, limit=limit)

    def get_run(self, run_id: int) -> JobRun:
        return JobRun.from_api(self._json("GET", f"/job-runs/{_run_id(run_id)}"))

    def get_logs(self, run_id: int, log_type: str = "driver/stdout") -> str:
        """The text of one log of a run (NotFound for an unknown run or log type)."""
        if not isinstance(log_type, str) or not log_type:
            raise ValueError(f"log_type must be a non-empty string such as 'driver/stdout', got {log_type!r}")
        response = self._send("GET", f"/job-runs/{_run_id(run_id)}/logs", params={"type": log_type}).response
        return response.content.decode("utf-8", errors="replace")

    def log_types(self, run_id: int) -> list[str]:
        """The log types a run has, e.g. ["driver/stdout", "driver/stderr", ...]."""
        body = self._json("GET", f"/job-runs/{_run_id(run_id)}/log-types")
        if not isinstance(body, list):
            raise ApiError("the log-types reply is not a list", request=f"GET /job-runs/{run_id}/log-types")
        types = []
        for item in body:  # strings, or objects with "type" (sources disagree)
            value = item.get("type") if isinstance(item, dict) else item
            if not isinstance(value, str):
                raise ApiError(f"unexpected log-types entry {item!r}", request=f"GET /job-runs/{run_id}/log-types")
            types.append(value)
        return types

    def kill_run(self, run_id: int) -> None:
        """Ask the server to kill a run (safe to repeat: retried like a GET)."""
        self._send("POST", f"/job-runs/{_run_id(run_id)}/kill")

    def wait_run(self, run_id: int, timeout_s: float, poll_s: float = 2.0) -> JobRun:
        """Poll until the run reaches a terminal status and return it; RunTimeout after `timeout_s`."""
        _run_id(run_id)
        _positive(timeout_s, "timeout_s", allow_zero=True)
        _positive(poll_s, "poll_s")
        deadline = time.monotonic() + timeout_s
        while True:  # bounded by timeout_s
            run = self.get_run(run_id)
            if run.is_terminal:
                return run
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RunTimeout(f"run {run_id} still {run.status!r} after {timeout_s}s", run_id=run_id,
                                 last_status=run.status)
            time.sleep(min(poll_s, remaining))


def _run_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"run id must be a non-negative integer, got {value!r}")
    return value

