"""HTTP attempts with timeouts, bounded retries (exponential backoff, full jitter) and error mapping.

Which failures are retried depends on whether repeating the request is harmless (`Retry`):

* SAFE — GET, DELETE, PUT uploads, PATCH, kill: connection errors, timeouts, 429 and 5xx.
* CREATE — POST /jobs, POST /resources: the same, and the outcome remembers whether an earlier
  attempt may have been carried out by the server (a 5xx, a read timeout, a connection dropped after
  sending). The client uses that to judge a 409 on the retry (see CdeClient._create).
* UNSENT — POST /jobs/{name}/run without a request id: only failures where the server certainly did
  nothing: the connection was never made, or 429 (refused). Never after the request may have run.
"""

from __future__ import annotations

import email.utils
import enum
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.auth
import urllib3.exceptions

from .errors import ApiError, AuthError, CdeConnectionError, CdeError, Conflict, NotFound

_log = logging.getLogger("cde_client")

# Longest Retry-After we honour; a larger value is cut to this (a server bug, not a plan to wait).
MAX_RETRY_AFTER_S = 300.0
# Status codes that never get better by repeating the request, even though they are 5xx.
_NOT_RETRIED_5XX = frozenset({501, 505})
# How much of a non-JSON error body goes into an exception message.
_MAX_MESSAGE_CHARS = 500


class Retry(enum.Enum):
    SAFE = "safe"
    CREATE = "create"
    UNSENT = "unsent"


@dataclass
class Outcome:
    response: requests.Response
    attempts: int
    # True when an earlier attempt may have been carried out although we saw no success for it.
    maybe_done_before: bool


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (connect refused/timed out, DNS)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and not isinstance(exc, requests.exceptions.SSLError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))
    return False


def _retryable_exception(exc: requests.RequestException) -> bool:
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a certificate problem does not heal by waiting
    return isinstance(
        exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError)
    )


def _retryable_status(status: int) -> bool:
    return status == 429 or (status >= 500 and status not in _NOT_RETRIED_5XX)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds to wait: integer seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        current = datetime.now(timezone.utc).timestamp() if now is None else now
        seconds = when.timestamp() - current
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def error_message(response: requests.Response) -> str:
    """The server's explanation: `message` of {"status":"error","message":...}, else the body text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if value:
                return json.dumps(value)[:_MAX_MESSAGE_CHARS]
    text = response.content.decode("utf-8", errors="replace").strip()
    if text:
        return text[:_MAX_MESSAGE_CHARS]
    return response.reason or "no message"


def request_label(method: str, url: str) -> str:
    """ "GET /dex/api/v1/jobs" — for messages: no host credentials, no query string."""
    return f"{method} {urlsplit(url).path}"


def error_for(response: requests.Response, label: str) -> CdeError:
    """The CdeError for an HTTP error reply, chosen by status code."""
    status = response.status_code
    message = error_message(response)
    if status in (401, 403):
        return AuthError(message, status=status, request=label)
    if status == 404:
        return NotFound(message, status=status, request=label)
    if status == 409:
        existing = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("id"), int) and not isinstance(body.get("id"), bool):
            existing = body["id"]
        return Conflict(message, status=status, request=label, existing_id=existing)
    return ApiError(message, status=status, request=label)


class Transport:
    """Sends one logical request as up to `max_retries + 1` HTTP attempts."""

    def __init__(
        self,
        session: requests.Session,
        *,
        timeout: float | tuple[float, float],
        max_retries: int,
        backoff_s: float,
        max_backoff_s: float,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.session = session
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._rng = rng or random.Random()

    def backoff(self, retry_number: int) -> float:
        """Full jitter: uniform in [0, min(max_backoff_s, backoff_s * 2**retry_number)]."""
        ceiling = min(self.max_backoff_s, self.backoff_s * (2 ** min(retry_number, 30)))
        return self._rng.uniform(0.0, ceiling)

    def send(
        self,
        method: str,
        url: str,
        *,
        retry: Retry,
        auth: Callable[[], requests.auth.AuthBase] | None = None,
        **kwargs: Any,
    ) -> Outcome:
        """Attempt the request until it gets a reply that is not worth retrying, or retries run out.

        Returns the last reply, whatever its status (the caller maps errors); raises
        CdeConnectionError when the last attempt got no reply at all. `auth` is called before
        every attempt, so a token that expired during a backoff is replaced.
        """
        label = request_label(method, url)
        maybe_done = False
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self.session.request(
                    method, url, auth=auth() if auth else None, timeout=self.timeout, **kwargs
                )
            except requests.RequestException as exc:
                unsent = _never_sent(exc)
                retry_it = _retryable_exception(exc) and (retry is not Retry.UNSENT or unsent)
                if last or not retry_it:
                    what = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "failed"
                    raise CdeConnectionError(
                        f"{what} after {attempt + 1} attempt(s): {type(exc).__name__}: {_short(exc)}",
                        request=label,
                    ) from None
                maybe_done = maybe_done or not unsent
                delay = self.backoff(attempt)
                _log.info("retrying %s after %s in %.2fs (retry %d of %d)", label, type(exc).__name__, delay,
                          attempt + 1, self.max_retries)
                self._sleep(delay)
                continue
            status = response.status_code
            retry_it = _retryable_status(status) and (retry is not Retry.UNSENT or status == 429)
            if last or not retry_it:
                return Outcome(response, attempt + 1, maybe_done)
            maybe_done = maybe_done or status != 429
            waited = retry_after_seconds(response.headers.get("Retry-After")) if status in (429, 503) else None
            delay = waited if waited is not None else self.backoff(attempt)
            _log.info("retrying %s after HTTP %d in %.2fs (retry %d of %d)", label, status, delay, attempt + 1,
                      self.max_retries)
            self._sleep(delay)
        raise AssertionError("unreachable")  # the loop always returns or raises on its last attempt


def _short(exc: BaseException) -> str:
    """The innermost useful reason of a requests/urllib3 exception, on one line."""
    reason = exc
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, urllib3.exceptions.MaxRetryError) and inner.reason is not None:
        reason = inner.reason
    text = str(reason).replace("\n", " ")
    return text[:_MAX_MESSAGE_CHARS]
