"""`python -m cde_local`: serve the local CDE until interrupted.

Prints `JOBS_API_URL=http://HOST:PORT/dex/api/v1` once it listens. Ctrl-C (or SIGTERM) stops it;
unfinished runs are then failed and their processes killed.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from . import base_url_for, bind_socket
from .backend import Backend
from .config import LocalCdeConfig
from .errors import ConfigError
from .server import API_PREFIX, create_app

LISTEN_BACKLOG = 2048


def parse_args(argv: list[str] | None = None) -> LocalCdeConfig:
    parser = argparse.ArgumentParser(
        prog="python -m cde_local", description="The CDE Jobs API v1 on local Spark."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8765, help="port (0 = any free port; default 8765)")
    parser.add_argument("--data-dir", type=Path, default=Path("data/cde"), help="state, logs, warehouse")
    parser.add_argument(
        "--user",
        action="append",
        metavar="NAME:PASSWORD",
        help="workload user (repeatable; default dex-user:dex-password)",
    )
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="token lifetime in seconds")
    parser.add_argument("--max-concurrent-runs", type=int, default=1, help="runs at once (Derby: keep 1)")
    parser.add_argument("--run-timeout", type=float, default=1800.0, help="seconds before a run is killed")
    parser.add_argument("--vc-name", default="local-cde", help="appName of GET /info")
    parser.add_argument(
        "--pip-arg", action="append", default=[], help="extra pip install argument (repeatable)"
    )
    args = parser.parse_args(argv)
    users: dict[str, str] = {}
    for entry in args.user or ["dex-user:dex-password"]:
        name, sep, password = entry.partition(":")
        if not sep:
            parser.error(f"--user {entry!r}: expected NAME:PASSWORD")
        users[name] = password
    try:
        return LocalCdeConfig(
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            users=users,
            token_ttl_s=args.token_ttl,
            max_concurrent_runs=args.max_concurrent_runs,
            run_timeout_s=args.run_timeout,
            vc_name=args.vc_name,
            pyenv_pip_args=tuple(args.pip_arg),
        )
    except ConfigError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        backend = Backend(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind_socket(config.host, config.port)
    except OSError as exc:
        backend.close()
        print(f"error: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 2
    base_url = base_url_for(config.host, sock.getsockname()[1])
    backend.public_url = base_url
    if config.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {config.host}: reachable from other machines", file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(create_app(backend), log_level="info", lifespan="off"))
    sock.listen(LISTEN_BACKLOG)  # connections made right after the line below wait for uvicorn
    print(f"JOBS_API_URL={base_url}{API_PREFIX}", flush=True)
    print(f"data directory: {config.data_dir}; users: {', '.join(config.users)}", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler that
    # was there before it: ours, so the backend is closed (runs failed, processes killed) on the way out.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_stop)
    try:
        server.run(sockets=[sock])
    except _Stop:
        pass
    finally:
        backend.close()
        sock.close()
    return 0


class _Stop(Exception):
    """Raised by the signal handler once uvicorn has shut down."""


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop()


if __name__ == "__main__":
    sys.exit(main())
