"""Knox token handling: where to get a token, and when to get a new one.

CDE hands out bearer tokens at the Knox `authtkn` endpoint (HTTP Basic with the workload user and
password). Its reply's `expires_in` is an ABSOLUTE expiry in epoch milliseconds, not a duration.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import AuthError

__all__ = ["derive_token_url"]

_JOBS_API_PATH = "/dex/api/v1"
_TOKEN_PATH = "/gateway/authtkn/knoxtoken/api/v1/token"
# Renew this long before expiry; short-lived tokens use a fraction of their lifetime instead.
_RENEW_MARGIN_S = 60.0
_RENEW_MARGIN_FRACTION = 0.2


def _keeps_host(host: str) -> bool:
    """True for hosts without a `service.` sibling: IP addresses, localhost, single-label names."""
    if host == "localhost" or host.endswith(".localhost") or "." not in host:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def derive_token_url(jobs_api_url: str) -> str:
    """The Knox token URL that belongs to a CDE jobs-API URL.

    `https://<vc>.cde-<svc>.<domain>/dex/api/v1` → `https://service.cde-<svc>.<domain>/gateway/authtkn/
    knoxtoken/api/v1/token`: the first DNS label becomes `service` and the path is replaced. For an IP
    address, `localhost` or a single-label host (the local CDE, a container name) the host and port
    are kept and only the path changes. Raises ValueError for a URL this rule does not fit.
    """
    parts = urlsplit(jobs_api_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) jobs API URL: {jobs_api_url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(_JOBS_API_PATH):
        raise ValueError(
            f"cannot derive the token URL: the jobs API URL {jobs_api_url!r} does not end in "
            f"{_JOBS_API_PATH!r}; pass token_url= explicitly"
        )
    token_path = path[: -len(_JOBS_API_PATH)] + _TOKEN_PATH
    host = parts.hostname
    if _keeps_host(host):
        netloc = parts.netloc.rpartition("@")[2]  # never carry userinfo over
    else:
        service_host = "service." + host.split(".", 1)[1]
        netloc = service_host if parts.port is None else f"{service_host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, token_path, "", ""))


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float | None  # epoch seconds after which we fetch a new one; None: only on a 401

    def __repr__(self) -> str:
        return "_Token(value=***)"


def _renew_time(expires_in: Any, now: float) -> float | None:
    """When to renew, from Knox's absolute `expires_in` (epoch ms); None when it is unusable.

    A missing or non-numeric value, or one already in the past (a duration sent by a non-Knox
    server, or clocks far apart) gives None: the token is then kept until the server rejects it.
    """
    if isinstance(expires_in, str):
        try:
            expires_in = float(expires_in)
        except ValueError:
            return None
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
        return None
    expires_at = expires_in / 1000.0
    lifetime = expires_at - now
    if lifetime <= 0:
        return None
    return expires_at - min(_RENEW_MARGIN_S, lifetime * _RENEW_MARGIN_FRACTION)


class TokenSource:
    """Hands out the current bearer token; fetches a new one when it is due or was rejected.

    `fetch` performs the Knox request and returns its parsed JSON (or raises); it is None when the
    client was given only a fixed token, which then cannot be renewed. Thread-safe.
    """

    def __init__(self, fetch: Callable[[], Any] | None, token: str | None, clock: Callable[[], float] = time.time):
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = _Token(token, None) if token else None

    def __repr__(self) -> str:
        return f"TokenSource(renewable={self.renewable}, token={'***' if self._token else None})"

    @property
    def renewable(self) -> bool:
        return self._fetch is not None

    def current(self) -> str:
        """A token believed valid: the cached one, or a fresh one when it is missing or due."""
        with self._lock:
            token = self._token
            if token is None or (
                self._fetch is not None and token.renew_at is not None and self._clock() >= token.renew_at
            ):
                token = self._token = self._fetch_locked()
            return token.value

    def reject(self, value: str) -> None:
        """The server refused `value` (401): forget it, unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and self._token.value == value and self._fetch is not None:
                self._token = None

    def _fetch_locked(self) -> _Token:
        if self._fetch is None:  # unreachable: a fixed token is never dropped
            raise AuthError("no token and no credentials to obtain one")
        reply = self._fetch()
        value = reply.get("access_token") if isinstance(reply, dict) else None
        if not isinstance(value, str) or not value:
            raise AuthError("the token endpoint's reply has no access_token")
        return _Token(value, _renew_time(reply.get("expires_in"), self._clock()))
