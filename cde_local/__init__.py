"""The CDE Jobs API v1 on this machine, running jobs on real local Spark.

    from cde_local import LocalCde, LocalCdeConfig
    with LocalCde(LocalCdeConfig(data_dir=tmp, port=0)) as cde:
        cde.jobs_api_url        # http://127.0.0.1:<port>/dex/api/v1
        cde.backend.faults.update(error_burst=2)

Standalone: `python -m cde_local --port 8765 --data-dir ./data/cde`.

Both serve with uvicorn's httptools parser (`http_server`): unlike its pure-Python h11 parser, it
reads the absolute-form request line a client behind an HTTP proxy sends
(`GET http://host:port/dex/api/v1/jobs HTTP/1.1`), which h11 took as the path (404).
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from typing import Any

import uvicorn

from .backend import Backend
from .config import LocalCdeConfig
from .errors import ConfigError, LocalCdeError
from .faults import FaultSettings
from .server import API_PREFIX, TOKEN_PATH, create_app

__all__ = [
    "LocalCde",
    "LocalCdeConfig",
    "FaultSettings",
    "LocalCdeError",
    "Backend",
    "API_PREFIX",
    "TOKEN_PATH",
]

STARTUP_TIMEOUT_S = 20.0  # uvicorn normally starts in well under a second
SHUTDOWN_TIMEOUT_S = 10.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket on (host, port); port 0 picks a free port.

    Made with protocol IPPROTO_TCP, not 0: accepted sockets inherit it, and asyncio sets TCP_NODELAY
    on a connection only when `sock.proto == IPPROTO_TCP`. Without it every answer on a keep-alive
    connection waited for the client's delayed ACK (about 40 ms on Linux)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def http_server(app: Any, **options: Any) -> uvicorn.Server:
    """A uvicorn server for `app` with the httptools parser (see the module docstring); `options`
    go to uvicorn.Config. ConfigError when httptools is not installed."""
    if importlib.util.find_spec("httptools") is None:
        raise ConfigError(
            "the local CDE needs httptools (uvicorn's C HTTP parser): pip install -r requirements.txt"
        )
    return uvicorn.Server(uvicorn.Config(app, http="httptools", lifespan="off", **options))


def serve_in_thread(
    server: uvicorn.Server, sock: socket.socket, name: str, timeout_s: float = STARTUP_TIMEOUT_S
) -> threading.Thread:
    """Serves `sock` with `server` in a daemon thread and waits, at most `timeout_s`, until it
    answers. The caller checks `server.started`: False when it failed or is still starting."""
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started and thread.is_alive() and time.monotonic() < deadline:  # bounded by the deadline
        time.sleep(0.02)
    return thread


def base_url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class LocalCde:
    """A local CDE served by uvicorn in a background thread. Use as a context manager, or
    `start()` / `stop()`. After start: `.base_url`, `.jobs_api_url`, `.token_url`, `.backend`."""

    def __init__(self, config: LocalCdeConfig | None = None, **fields: Any) -> None:
        if config is not None and fields:
            raise TypeError("pass either a LocalCdeConfig or its fields, not both")
        self.config = config if config is not None else LocalCdeConfig(**fields)
        self._backend: Backend | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise LocalCdeError("the local CDE is not started")
        return self._backend

    @property
    def base_url(self) -> str:
        return base_url_for(self.config.host, self.port)

    @property
    def jobs_api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    def start(self) -> LocalCde:
        if self._server is not None:
            raise LocalCdeError("the local CDE is already started")
        backend = Backend(self.config)
        try:
            sock = bind_socket(self.config.host, self.config.port)
        except OSError:
            backend.close()
            raise
        self.port = sock.getsockname()[1]
        backend.public_url = self.base_url
        try:
            server = http_server(create_app(backend), log_level="warning", access_log=False)
        except ConfigError:
            backend.close()
            sock.close()
            raise
        thread = serve_in_thread(server, sock, "cde-local-http")
        self._backend, self._server, self._thread, self._socket = backend, server, thread, sock
        if not server.started:
            self.stop()
            raise LocalCdeError(f"the local CDE did not start within {STARTUP_TIMEOUT_S:g} s")
        return self

    def stop(self) -> None:
        """Stop serving, fail unfinished runs (killing their processes), close the state."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=SHUTDOWN_TIMEOUT_S)
        if self._backend is not None:
            self._backend.close()
        if self._socket is not None:
            self._socket.close()
        self._backend = self._server = self._thread = self._socket = None

    def __enter__(self) -> LocalCde:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
