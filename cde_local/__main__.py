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

from . import base_url_for, bind_socket, http_server
from .backend import Backend
from .config import DEFAULT_ACCESS_KEYS, LocalCdeConfig, default_concurrent_runs
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
    parser.add_argument(
        "--access-key",
        action="append",
        metavar="ID:SECRET",
        help="access key id and private key for the console token route "
        f"(repeatable; default {_default_access_key()})",
    )
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="token lifetime in seconds")
    parser.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=default_concurrent_runs(),
        help=f"Spark runs at once; the others wait (default: one per CPU, {default_concurrent_runs()} here)",
    )
    parser.add_argument(
        "--spark-master",
        default="local[2]",
        metavar="MASTER",
        help="where runs execute, passed to spark-submit unchanged (client deploy mode: the driver runs "
        "here): local[N] (default local[2]), spark://HOST:PORT (a standalone cluster whose workers see "
        "the warehouse path, e.g. on a shared file system), k8s://https://HOST:PORT (needs "
        "spark.kubernetes.container.image and a driver the executor pods can reach), or yarn "
        "(needs HADOOP_CONF_DIR)",
    )
    parser.add_argument("--run-timeout", type=float, default=1800.0, help="seconds before a run is killed")
    parser.add_argument("--vc-name", default="local-cde", help="appName of GET /info")
    parser.add_argument(
        "--pip-arg", action="append", default=[], help="extra pip install argument (repeatable)"
    )
    parser.add_argument(
        "--no-class-data-sharing",
        dest="class_data_sharing",
        action="store_false",
        help="start Spark drivers without the JVM class data sharing archive, and make none (by default "
        "the first run makes one in the background, kept in $XDG_CACHE_HOME/cde-local/cds or "
        "~/.cache/cde-local/cds for every local CDE of this user)",
    )
    args = parser.parse_args(argv)
    users: dict[str, str] = {}
    for entry in args.user or ["dex-user:dex-password"]:
        name, sep, password = entry.partition(":")
        if not sep:
            parser.error(f"--user {entry!r}: expected NAME:PASSWORD")
        users[name] = password
    access_keys: dict[str, str] = {}
    for entry in args.access_key or [_default_access_key()]:
        key_id, sep, private_key = entry.partition(":")
        if not sep:
            parser.error(f"--access-key {entry!r}: expected ID:SECRET")
        access_keys[key_id] = private_key
    try:
        return LocalCdeConfig(
            data_dir=args.data_dir,
            host=args.host,
            port=args.port,
            users=users,
            access_keys=access_keys,
            token_ttl_s=args.token_ttl,
            max_concurrent_runs=args.max_concurrent_runs,
            spark_master=args.spark_master,
            run_timeout_s=args.run_timeout,
            vc_name=args.vc_name,
            pyenv_pip_args=tuple(args.pip_arg),
            class_data_sharing=args.class_data_sharing,
        )
    except ConfigError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits


def _default_access_key() -> str:
    return ", ".join(f"{key_id}:{secret}" for key_id, secret in DEFAULT_ACCESS_KEYS.items())


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
    try:
        server = http_server(create_app(backend), log_level="info")
    except ConfigError as exc:
        backend.close()
        sock.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sock.listen(LISTEN_BACKLOG)  # connections made right after the line below wait for uvicorn
    print(f"JOBS_API_URL={base_url}{API_PREFIX}", flush=True)
    print(
        f"data directory: {config.data_dir}; users: {', '.join(config.users)}; "
        f"access keys: {', '.join(config.access_keys)}",
        flush=True,
    )
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
