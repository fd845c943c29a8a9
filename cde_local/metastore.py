"""The Hive metastore every run shares: one Thrift service owns the Derby database.

Embedded Derby admits one JVM at a time, so Spark drivers with embedded metastores cannot run side
by side. Instead one process owns `<data>/metastore/metastore_db`: Hive's metastore from pyspark's own
jars, with `derby.system.home=<data>/metastore` (the database embedded mode used, so existing data
directories keep their tables), and each driver gets
`spark.hadoop.hive.metastore.uris=thrift://127.0.0.1:<port>`.

The service listens on the loopback only. Hive 2.3's `HiveMetaStore` main binds every interface
(it has no bind-host setting) and has no authentication, so it is not run as it is: the launcher
`java/LoopbackMetastore.java` (shipped compiled next to its source: a Java runtime is enough;
`make metastore-launcher` rebuilds it) starts the same handler, processor and Thrift server as
Hive's `startMetaStore`, with the server socket bound to 127.0.0.1.

`MetastoreService`:
- `uri` picks the port (free on every interface) and starts nothing.
- `ensure_running(cancelled)` starts the service unless it is up, and waits until its port accepts
  connections (at most START_TIMEOUT_S). Each run's thread calls it just before spark-submit: the
  first run pays the start-up (measured: 5 s on a quiet machine, 20-30 s while Spark jobs run), and
  a local CDE that runs nothing (manual mode, API-only tests, a demo that is only looked at) never
  starts this JVM. Callers share one start; a service that died is started again by the next run.
- `stop()` ends its process group (`Backend.close`).
- `kill_stale()`, at start: a local CDE that crashed leaves its service running (its own process
  group) and holding the database. `<data>/metastore/service.json` records the pid and port of the
  running service; the next start kills that group when the pid still runs the launcher (or the
  `HiveMetaStore` main earlier versions ran) on this directory (so never a reused pid), and starts
  its own when a run needs it.

The service's output (Hive logs to the console, not to /tmp/<user>/hive.log) goes to
`<data>/metastore/service.log`, after a line naming the command; failures quote its last lines.
Its scratch files stay in `<data>/metastore/tmp`.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import MetastoreError
from .runner import find_java, live_group_members, log_line, parent_environment, terminate_group

MAIN_CLASS = "LoopbackMetastore"  # java/LoopbackMetastore.java: Hive's metastore, on the loopback only
LAUNCHER_DIR = Path(__file__).parent / "java"  # the launcher's source and its shipped LoopbackMetastore.class
BIND_HOST = "127.0.0.1"
# What earlier versions ran (on every interface): a service they left running is also killed at start.
EARLIER_MAIN_CLASS = "org.apache.hadoop.hive.metastore.HiveMetaStore"
START_TIMEOUT_S = 180.0  # start-up takes 5 s on a quiet machine, 20-30 s under load
STOP_GRACE_S = 10.0  # SIGTERM -> SIGKILL: time for Derby to close the database
POLL_S = 0.25  # how often a starting service's port (and exit) is checked
LOG_TAIL_LINES = 25
JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")  # a faster start, as for the drivers


class MetastoreService:
    """The shared Hive metastore service of one data directory (see the module docstring)."""

    def __init__(self, metastore_dir: Path, warehouse_dir: Path, spark_dir: Callable[[], Path]) -> None:
        self.directory = metastore_dir
        self.log_path = metastore_dir / "service.log"
        self.record_path = metastore_dir / "service.json"
        self._warehouse = warehouse_dir
        self._spark_dir = spark_dir  # pyspark's directory, found when the service first starts
        self._lock = threading.Lock()
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._deadline = 0.0
        self._started_at = 0.0
        self._log_offset = 0
        self._ended: tuple[subprocess.Popen[bytes], str] | None = None  # why we ended a process
        self._closed = False

    @property
    def uri(self) -> str:
        """thrift://127.0.0.1:<port>; the port is chosen on first use and kept."""
        with self._lock:
            if self._port is None:
                self._port = free_port()
            return f"thrift://{BIND_HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The service's pid (also its process group) while it runs."""
        with self._lock:
            process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def ensure_running(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Start the service unless it runs, and wait until it accepts connections. True once it
        does; False when `cancelled()` became true first. MetastoreError when it cannot start."""
        with self._lock:
            if self._closed:
                raise MetastoreError("the local CDE is stopping")
            if self._port is None:
                self._port = free_port()
            if self._process is None or self._process.poll() is not None:
                self._start()
            process, port, deadline = self._process, self._port, self._deadline
            if self._ready:
                return True
        assert process is not None and port is not None
        while not _accepts(port):
            if process.poll() is not None:
                raise MetastoreError(self._failure(process, f"it exited with code {process.returncode}"))
            if time.monotonic() >= deadline:
                why = f"its port {port} did not accept connections within {START_TIMEOUT_S:g} s"
                self._end(process, why)
                raise MetastoreError(self._failure(process, why))
            if cancelled():
                return False
            time.sleep(POLL_S)
        with self._lock:
            if self._process is process and not self._ready and process.poll() is None:
                self._ready = True
                elapsed = time.monotonic() - self._started_at
                log_line(self.log_path, f"local CDE: service ready on port {port} after {elapsed:.1f} s")
        return True

    def stop(self) -> None:
        """End the service's process group; later `ensure_running` calls fail."""
        with self._lock:
            self._closed = True
            process = self._process
        if process is not None:
            self._end(process, "the local CDE stopped")
        self.record_path.unlink(missing_ok=True)

    def kill_stale(self) -> str | None:
        """End the service a crashed local CDE left running; a note saying so, or None."""
        record = service_record(self.directory)
        if record is None:
            return None
        self.record_path.unlink(missing_ok=True)
        pid = record.get("pid")
        if not isinstance(pid, int) or not _runs_service_on(pid, self.directory):
            return None
        terminate_group(pid, STOP_GRACE_S)
        note = f"local CDE: killed the metastore service (process group {pid}) left by a local CDE that stopped unexpectedly"
        log_line(self.log_path, note)
        return note

    # -- internals -----------------------------------------------------------------------------
    def _start(self) -> None:
        """Launch the service (the caller holds the lock and has picked the port)."""
        env = parent_environment()
        java = find_java(env)
        if java is None:
            raise MetastoreError(
                "java not found: the metastore service needs a Java runtime (17) on PATH or in JAVA_HOME"
            )
        try:
            jars = self._spark_dir() / "jars"
        except (OSError, FileNotFoundError, subprocess.SubprocessError) as exc:
            raise MetastoreError(f"pyspark's jars not found: {exc}") from None
        if not (LAUNCHER_DIR / "LoopbackMetastore.class").is_file():
            raise MetastoreError(
                f"{LAUNCHER_DIR}/LoopbackMetastore.class is missing: `make metastore-launcher` builds it"
            )
        scratch = self.directory / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        command = [
            java,
            *JVM_FLAGS,
            f"-Djava.io.tmpdir={scratch}",
            "-Dhive.root.logger=console",
            "-Dhive.log.level=WARN",  # INFO logs every call of every run
            "-Dhive.async.log.enabled=false",
            f"-Dderby.system.home={self.directory}",
            f"-Dhive.metastore.warehouse.dir={self._warehouse}",
            "-Ddatanucleus.schema.autoCreateAll=true",
            "-Dhive.metastore.schema.verification=false",
            # Hive 2.3's default pool (BoneCP) is not among pyspark's jars: the transaction handler that
            # every DROP DATABASE notifies would fail (NoClassDefFoundError); commons-dbcp is there
            "-Ddatanucleus.connectionPoolingType=DBCP",
            "-cp",
            f"{LAUNCHER_DIR}:{jars}/*",
            MAIN_CLASS,
            str(self._port),
            BIND_HOST,
        ]
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log_line(self.log_path, f"local CDE: starting the metastore service: {shlex.join(command)}")
        try:
            with self.log_path.open("ab") as out:
                process = subprocess.Popen(
                    command,
                    cwd=self.directory,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # own process group: stop() ends all of it
                )
        except OSError as exc:
            raise MetastoreError(f"could not start {java}: {exc}") from None
        self._process, self._ready = process, False
        self._started_at = time.monotonic()
        self._deadline = self._started_at + START_TIMEOUT_S
        record = {"pid": process.pid, "port": self._port, "started": time.time()}
        self.record_path.write_text(json.dumps(record) + "\n")

    def _end(self, process: subprocess.Popen[bytes], why: str) -> None:
        with self._lock:
            if self._ended is None or self._ended[0] is not process:
                self._ended = (process, why)
            if self._process is process:
                self._ready = False
        if process.poll() is None:
            terminate_group(process.pid, STOP_GRACE_S)
            log_line(self.log_path, f"local CDE: service (process group {process.pid}) stopped: {why}")
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass

    def _failure(self, process: subprocess.Popen[bytes], why: str) -> str:
        with self._lock:
            if self._ended is not None and self._ended[0] is process:
                why = self._ended[1]  # we ended it: say why, not its exit code
            offset = self._log_offset
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(offset)
                text = handle.read().decode("utf-8", errors="replace")
        except OSError:
            text = ""
        tail = "\n".join(line[:400] for line in text.splitlines()[-LOG_TAIL_LINES:])
        return f"the Hive metastore service did not start: {why}. Last lines of {self.log_path}:\n{tail}"


def free_port() -> int:
    """A TCP port free on every interface (the service binds only the loopback's)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((BIND_HOST, port), timeout=1.0):
            return True
    except OSError:
        return False


def _runs_service_on(pid: int, directory: Path) -> bool:
    """True when `pid` is alive, leads its process group and runs the service on `directory`."""
    if pid not in live_group_members(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    runs_service = MAIN_CLASS in args or EARLIER_MAIN_CLASS in args
    return runs_service and f"-Dderby.system.home={directory}" in args


def service_record(metastore_dir: Path) -> dict[str, Any] | None:
    """What service.json says about the running service (pid, port, started), or None."""
    try:
        record = json.loads((metastore_dir / "service.json").read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
