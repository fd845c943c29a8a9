"""A total deadline for the model's HTTP requests: an answer arrives whole within N seconds, or not at all.

httpx has no total timeout: its timeouts bound each socket operation, so a server that sends one byte
every few seconds never trips them and holds a heal forever. ``deadline_http_client(timeout_s)`` is
the HTTP client ``agents.llm`` gives the openai client; ``with call_deadline(timeout_s):`` around a
model call sets the moment by which every request of the call (the openai client's retries too) must
have ended. Each request through the client's transport then

1. gets at most the time left for each socket operation (connect, write, read, pool);
2. has a watchdog timer that, at the deadline, shuts its connection's socket down, so a read blocked
   on a silent or trickling server returns at once (connections are not kept alive between requests,
   so every request opens its own, whose socket the transport learns from httpcore's ``trace``
   extension as it connects);
3. fails with ``DeadlineExceeded`` once the deadline has passed: an ``openai.APITimeoutError``, which
   the openai client passes on without retrying.

No thread outlives its request: the watchdog is cancelled when the response closes and ends by
itself at the deadline otherwise. What is not bounded: a retry pause the openai client began before
the deadline runs to its end (under 10 s; up to 60 s when the server asked for it with Retry-After),
after which the retry fails at once; and a DNS lookup, which no socket timeout covers.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import openai

# The HTTP library the installed openai client speaks: httpx, or its fork httpx2 (openai>=3); same API.
http = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.partition(".")[0])

TIMEOUT_KEYS = ("connect", "read", "write", "pool")
SLACK_S = 0.05  # a socket timeout ending this close to the deadline is the deadline
_deadline: ContextVar[float | None] = ContextVar("model_call_deadline", default=None)


class DeadlineExceeded(openai.APITimeoutError):
    """The model call's deadline passed before its answer was complete (not retried by openai)."""


def ran_out_of_time(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised from, a ``DeadlineExceeded`` (langchain-openai re-raises the
    openai client's errors as its own, ``from`` the original)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DeadlineExceeded):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def call_deadline(seconds: float) -> Iterator[None]:
    """Requests made inside (on this thread, or threads started with a copy of its context) must
    end within ``seconds`` from now, all together."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline_http_client(timeout_s: float, base_url: str = "") -> Any:
    """An openai-ready HTTP client whose requests obey ``call_deadline`` (or ``timeout_s`` each, outside
    one). It honours the proxy the environment sets for ``base_url``, as httpx does by default."""
    inner = http.HTTPTransport(limits=http.Limits(max_keepalive_connections=0), proxy=_env_proxy(base_url))
    return openai.DefaultHttpxClient(transport=DeadlineTransport(inner, timeout_s))


def _env_proxy(url: str) -> str | None:
    """The proxy HTTPS_PROXY / HTTP_PROXY / ALL_PROXY name for ``url``, unless NO_PROXY exempts it.
    (A client given its own transport no longer reads these itself.)"""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    if not proxies or not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")


class _Watchdog:
    """Shuts a request's socket down at the deadline; a timer thread that lives no longer than that."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.fired = False
        self._timer = threading.Timer(deadline - time.monotonic(), self._fire)
        self._timer.name = "model-call-deadline"
        self._timer.daemon = True
        self._timer.start()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: remembers the socket of the connection as it opens (TCP, then TLS)."""
        if not event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            return
        stream = info.get("return_value")
        with self._lock:
            self._socket = stream.get_extra_info("socket") if stream is not None else None
            if self.fired:  # connected just as the deadline passed
                self._shutdown()

    def cancel(self) -> None:
        self._timer.cancel()

    def expired(self) -> bool:
        """The deadline has passed (a socket timeout may end a moment before the timer fires)."""
        return self.fired or time.monotonic() >= self._deadline - SLACK_S

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._socket is None:
            return
        try:  # the OS socket under any TLS layer: the blocked reader then sees the connection end
            socket.socket.shutdown(self._socket, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


class DeadlineTransport(http.BaseTransport):
    """Ends every request by its model call's deadline (see the module docstring)."""

    def __init__(self, inner: Any, timeout_s: float) -> None:
        self._inner = inner
        self._timeout_s = timeout_s

    def handle_request(self, request: Any) -> Any:
        deadline = _deadline.get() or time.monotonic() + self._timeout_s
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(request=request)
        given = request.extensions.get("timeout") or {}
        request.extensions["timeout"] = {
            key: left if given.get(key) is None else min(given[key], left) for key in TIMEOUT_KEYS
        }
        watchdog = _Watchdog(deadline)
        request.extensions["trace"] = _chain(watchdog.trace, request.extensions.get("trace"))
        try:
            response = self._inner.handle_request(request)
        except Exception as exc:
            watchdog.cancel()
            if watchdog.expired():
                raise DeadlineExceeded(request=request) from exc
            raise
        return http.Response(status_code=response.status_code, headers=response.headers,
                             stream=_DeadlineStream(response.stream, watchdog, request),
                             extensions=response.extensions)

    def close(self) -> None:
        self._inner.close()


class _DeadlineStream(http.SyncByteStream):
    """A response body whose reads fail as ``DeadlineExceeded`` once the watchdog has cut them off."""

    def __init__(self, inner: Any, watchdog: _Watchdog, request: Any) -> None:
        self._inner = inner
        self._watchdog = watchdog
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        except Exception as exc:
            if self._watchdog.expired():
                raise DeadlineExceeded(request=self._request) from exc
            raise

    def close(self) -> None:
        self._watchdog.cancel()
        self._inner.close()


def _chain(first: Any, second: Any) -> Any:
    if second is None:
        return first

    def both(event: str, info: dict[str, Any]) -> None:
        first(event, info)
        second(event, info)

    return both
