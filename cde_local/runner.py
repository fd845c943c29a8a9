"""Running a job: a `spark-submit` subprocess on local Spark, in its own process group.

`plan_submit` turns a run's effective Spark spec into a `SubmitPlan` (work directory with the
mounted resources, command line, environment). `RunExecutor` runs plans with at most
`config.max_concurrent_runs` at once (the others wait, their runs staying `starting`), enforces
`config.run_timeout_s`, kills whole process groups, and reports through `RunEvents`.

How CDE paths are made to work locally: every mounted resource's files are copied to
`<run work>/app/mount/<dirPrefix>/<path>`; in `spark.file`, `args`, `conf` values, `pyFiles`,
`files` and `jars` the text `/app/mount/` is replaced by that directory (a value of exactly
`/app/mount` too), and relative application/pyFiles/files/jars paths are taken relative to it, as
CDE does. The driver's working directory is that mount directory, so relative paths in job code
resolve to mounted files. Paths written inside the job's code are not rewritten.

One warehouse and one Hive/Derby metastore serve all runs: `spark.sql.catalogImplementation=hive`,
`spark.sql.warehouse.dir=<data>/warehouse` and `-Dderby.system.home=<data>/metastore` in the driver
Java options (appended to the job's own). `spark.log.level=WARN` unless the job sets `logLevel`,
and the Spark UI is off unless the job's conf turns it on.

Jobs get a clean environment, never the secrets of the process hosting the local CDE (the healer's
LLM keys, WORKLOAD_PASSWORD, cloud credentials): of the parent's variables only PASSED_ENV (PATH,
HOME, USER, LOGNAME, LANG, LANGUAGE, TZ, TMPDIR, JAVA_HOME, HADOOP_CONF_DIR) and those starting with
`LC_` are passed on, plus what the runner sets: PATH with the interpreter's directory first,
SPARK_HOME, SPARK_LOCAL_IP, PYSPARK_PYTHON, PYSPARK_DRIVER_PYTHON, PYTHONUNBUFFERED. PYTHONPATH is
not passed: pyspark is installed in the interpreter (python-envs see it through their `.pth`) and
spark-submit puts its own pyspark and py4j on the driver's path.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import clock
from .config import LocalCdeConfig
from .paths import DataPaths

MOUNT_TEXT = "/app/mount"
WAIT_POLL_S = 0.5  # how often a run's waiting thread looks for kill requests and its deadline
SHUTDOWN_JOIN_S = 30.0  # how long stop() waits for run threads after killing their processes

# Parent variables a job may see; everything else of the parent's environment stays out.
PASSED_ENV = frozenset("PATH HOME USER LOGNAME LANG LANGUAGE TZ TMPDIR JAVA_HOME HADOOP_CONF_DIR".split())
PASSED_ENV_PREFIXES = ("LC_",)

_URL_SCHEMES = ("hdfs:", "s3a:", "s3:", "s3n:", "abfs:", "abfss:", "gs:", "http:", "https:", "file:", "wasb:")


class RunEvents(Protocol):
    """What the executor tells the backend."""

    def run_launched(self, run_id: int, process_group: int) -> None: ...

    def run_ended(self, run_id: int, status: str, reason: str) -> None: ...


@dataclass
class SubmitPlan:
    run_id: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    stdout: Path  # driver/stdout
    stderr: Path  # driver/stderr
    submitter: Path  # submitter/stdout


def log_line(path: Path, message: str) -> None:
    """Append one timestamped line to a submitter log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{clock.now()} {message}\n")


def spark_home(python_executable: str) -> Path:
    """The pyspark package directory of `python_executable` (it holds bin/spark-submit)."""
    if Path(python_executable).absolute() == Path(sys.executable).absolute():
        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"pyspark is not installed for {python_executable}")
        return Path(list(spec.submodule_search_locations)[0])
    probe = "import importlib.util as u; print(list(u.find_spec('pyspark').submodule_search_locations)[0])"
    out = subprocess.run([python_executable, "-c", probe], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise FileNotFoundError(f"pyspark is not installed for {python_executable}: {out.stderr.strip()}")
    return Path(out.stdout.strip())


def find_java(env: dict[str, str]) -> str | None:
    java_home = env.get("JAVA_HOME")
    if java_home and Path(java_home, "bin", "java").is_file():
        return str(Path(java_home, "bin", "java"))
    return shutil.which("java", path=env.get("PATH", ""))


def localize(value: str, mount_root: Path) -> str:
    """Rewrite CDE's /app/mount paths inside a string to the run's mount directory."""
    if value == MOUNT_TEXT:
        return str(mount_root)
    return value.replace(MOUNT_TEXT + "/", f"{mount_root}/")


def localize_file(value: str, mount_root: Path) -> str:
    """An application/pyFiles/files/jars entry: like `localize`, and relative paths are mount paths."""
    if value.startswith("local:"):
        value = value[len("local:") :]
    if value.startswith(_URL_SCHEMES):
        return localize(value, mount_root)
    if value.startswith("/"):
        return localize(value, mount_root)
    return str(mount_root / value)


def copy_mounts(mounts: list[tuple[Path, str, list[str]]], mount_root: Path) -> None:
    """Copy each mounted resource's files (source dir, dir prefix, relative paths) under mount_root."""
    mount_root.mkdir(parents=True, exist_ok=True)
    for source_dir, prefix, files in mounts:
        target_dir = mount_root / prefix if prefix else mount_root
        for rel in files:
            target = target_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source_dir / rel, target)


def plan_submit(
    *,
    run_id: int,
    job_name: str,
    spec: dict[str, Any],
    config: LocalCdeConfig,
    paths: DataPaths,
    python: str,
    spark_dir: Path,
) -> SubmitPlan:
    """Build the spark-submit command line for an effective spec (mounts must already be copied)."""
    mount_root = paths.run_mount_root(run_id)
    scratch = paths.run_work(run_id) / "tmp"  # Spark and Hive scratch files stay with the run, not in /tmp
    conf: dict[str, str] = {
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(paths.warehouse),
        "spark.local.dir": str(scratch / "spark"),
        "spark.hadoop.hive.downloaded.resources.dir": str(scratch / "hive-resources"),
        "spark.hadoop.hive.exec.local.scratchdir": str(scratch / "hive"),
        "spark.ui.enabled": "false",
        "spark.log.level": spec.get("logLevel") or "WARN",
        "spark.driver.cores": str(spec.get("driverCores", 1)),
        "spark.executor.cores": str(spec.get("executorCores", 1)),
        "spark.executor.memory": str(spec.get("executorMemory", "1g")),
    }
    if "numExecutors" in spec:
        conf["spark.executor.instances"] = str(spec["numExecutors"])
    user_conf = {k: localize(v, mount_root) for k, v in (spec.get("conf") or {}).items()}
    derby = " ".join([f"-Dderby.system.home={paths.metastore}", *config.driver_jvm_flags])
    user_java = user_conf.pop("spark.driver.extraJavaOptions", "")
    conf.update(user_conf)
    conf["spark.driver.extraJavaOptions"] = f"{derby} {user_java}".strip()

    argv = [
        str(spark_dir / "bin" / "spark-submit"),
        "--master",
        config.spark_master,
        "--name",
        spec.get("name") or job_name,
        "--driver-memory",
        str(spec.get("driverMemory", "1g")),
    ]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    for option, key in (("--py-files", "pyFiles"), ("--files", "files"), ("--jars", "jars")):
        if spec.get(key):
            argv += [option, ",".join(localize_file(v, mount_root) for v in spec[key])]
    if spec.get("className"):
        argv += ["--class", spec["className"]]
    argv.append(localize_file(spec["file"], mount_root))
    argv += [localize(arg, mount_root) for arg in spec.get("args") or []]

    return SubmitPlan(
        run_id=run_id,
        argv=argv,
        env=job_environment(config, python, spark_dir),
        cwd=mount_root,
        stdout=paths.run_log(run_id, "driver/stdout"),
        stderr=paths.run_log(run_id, "driver/stderr"),
        submitter=paths.run_log(run_id, "submitter/stdout"),
    )


def parent_environment(extra: Collection[str] = ()) -> dict[str, str]:
    """The parent's variables a child process may see: PASSED_ENV, `LC_*`, and the names in `extra`.
    Also used for the python-env builds (pyenv.py)."""
    return {
        name: value
        for name, value in os.environ.items()
        if name in PASSED_ENV or name.startswith(PASSED_ENV_PREFIXES) or name in extra
    }


def job_environment(config: LocalCdeConfig, python: str, spark_dir: Path) -> dict[str, str]:
    """spark-submit's environment: the allowlisted parent variables (see the module docstring) and ours."""
    env = parent_environment()
    env.update(
        {
            "PATH": f"{Path(config.python_executable).parent}{os.pathsep}{env.get('PATH') or os.defpath}",
            "SPARK_HOME": str(spark_dir),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "PYSPARK_PYTHON": python,
            "PYSPARK_DRIVER_PYTHON": python,
            "PYTHONUNBUFFERED": "1",  # driver output reaches driver/stdout while the run goes
        }
    )
    return env


def live_group_members(process_group: int) -> list[int]:
    """Pids of the group's processes that are not zombies (reads /proc; Linux)."""
    members = []
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: best effort
        try:
            os.killpg(process_group, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [process_group]
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == process_group:
            members.append(int(entry.name))
    return members


def terminate_group(process_group: int, grace_s: float) -> None:
    """SIGTERM the whole group, then SIGKILL what is left after `grace_s`."""
    _signal_group(process_group, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while live_group_members(process_group) and time.monotonic() < deadline:
        time.sleep(0.1)
    if live_group_members(process_group):
        _signal_group(process_group, signal.SIGKILL)


def _signal_group(process_group: int, sig: signal.Signals) -> None:
    try:
        os.killpg(process_group, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class _Handle:
    plan: SubmitPlan
    process: subprocess.Popen[bytes] | None = None
    stop_reason: str | None = None  # "kill" | "timeout" | "shutdown"
    stop_requested_at: float = 0.0
    thread: threading.Thread | None = None


class RunExecutor:
    """Runs SubmitPlans: a waiting queue, bounded slots, one thread per running run."""

    def __init__(self, config: LocalCdeConfig, events: RunEvents) -> None:
        self._config = config
        self._events = events
        self._lock = threading.Lock()
        self._queue: deque[SubmitPlan] = deque()
        self._running: dict[int, _Handle] = {}
        self._closed = False

    def submit(self, plan: SubmitPlan) -> bool:
        """Queue a plan; True when it was launched at once, False when it waits for a slot."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the run executor is shut down")
            self._queue.append(plan)
        self._pump()
        with self._lock:
            return plan.run_id in self._running

    def kill(self, run_id: int) -> str | None:
        """'queued' (removed before launch), 'running' (group signalled) or None (not ours)."""
        with self._lock:
            for plan in list(self._queue):
                if plan.run_id == run_id:
                    self._queue.remove(plan)
                    return "queued"
            handle = self._running.get(run_id)
            if handle is None:
                return None
            self._request_stop(handle, "kill")
        return "running"

    def is_active(self, run_id: int) -> bool:
        with self._lock:
            return run_id in self._running or any(p.run_id == run_id for p in self._queue)

    def shutdown(self) -> list[int]:
        """Kill every running process group, wait for the run threads; return ids still queued."""
        with self._lock:
            self._closed = True
            queued = [plan.run_id for plan in self._queue]
            self._queue.clear()
            handles = list(self._running.values())
            for handle in handles:
                self._request_stop(handle, "shutdown")
        for handle in handles:
            if handle.thread is not None:
                handle.thread.join(timeout=SHUTDOWN_JOIN_S)
        return queued

    # -- internals -----------------------------------------------------------------------------
    def _pump(self) -> None:
        with self._lock:
            while not self._closed and self._queue and len(self._running) < self._config.max_concurrent_runs:
                plan = self._queue.popleft()
                handle = _Handle(plan)
                self._running[plan.run_id] = handle
                handle.thread = threading.Thread(
                    target=self._work, args=(handle,), name=f"cde-run-{plan.run_id}", daemon=True
                )
                handle.thread.start()

    def _request_stop(self, handle: _Handle, reason: str) -> None:
        """Caller holds the lock. The first reason wins; SIGTERM now, SIGKILL later by the worker."""
        if handle.stop_reason is None:
            handle.stop_reason = reason
            handle.stop_requested_at = time.monotonic()
        if handle.process is not None:
            _signal_group(handle.process.pid, signal.SIGTERM)

    def _work(self, handle: _Handle) -> None:
        plan = handle.plan
        try:
            status, reason = self._execute(handle)
        except Exception as exc:  # a bug or an OS failure must still end the run
            status, reason = "failed", f"local CDE error while running the job: {exc!r}"
            log_line(plan.submitter, reason)
        finally:
            with self._lock:
                self._running.pop(plan.run_id, None)
        self._events.run_ended(plan.run_id, status, reason)
        self._pump()

    def _execute(self, handle: _Handle) -> tuple[str, str]:
        plan = handle.plan
        log_line(plan.submitter, f"command: {shlex.join(plan.argv)}")
        log_line(plan.submitter, f"working directory: {plan.cwd}")
        if find_java(plan.env) is None:
            reason = (
                "java not found: Spark needs a Java runtime (17) on PATH or in JAVA_HOME; "
                "install one (e.g. `apt-get install openjdk-17-jre-headless`) and run the job again"
            )
            log_line(plan.submitter, reason)
            return "failed", reason
        with self._lock:
            if handle.stop_reason is not None:  # killed between dequeue and launch
                log_line(plan.submitter, f"run stopped ({handle.stop_reason}) before launch")
                return ("killed" if handle.stop_reason == "kill" else "failed"), "stopped before launch"
        plan.stdout.parent.mkdir(parents=True, exist_ok=True)
        with plan.stdout.open("ab") as out, plan.stderr.open("ab") as err:
            process = subprocess.Popen(
                plan.argv,
                cwd=plan.cwd,
                env=plan.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # own process group: kill/timeout end the whole tree
            )
        with self._lock:
            handle.process = process
            if handle.stop_reason is not None:
                _signal_group(process.pid, signal.SIGTERM)
        log_line(plan.submitter, f"spark-submit started: pid {process.pid}, process group {process.pid}")
        self._events.run_launched(plan.run_id, process.pid)
        started = time.monotonic()
        exit_code = self._wait(handle, process, started)
        terminate_group(process.pid, self._config.kill_grace_s)  # leftovers (python driver, daemons)
        elapsed = time.monotonic() - started
        log_line(plan.submitter, f"spark-submit exited with code {exit_code} after {elapsed:.1f} s")
        return self._outcome(handle, exit_code)

    def _wait(self, handle: _Handle, process: subprocess.Popen[bytes], started: float) -> int:
        plan = handle.plan
        while True:
            try:
                return process.wait(timeout=WAIT_POLL_S)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            with self._lock:
                timeout_s = self._config.run_timeout_s
                if handle.stop_reason is None and now - started >= timeout_s:
                    log_line(
                        plan.submitter,
                        f"run timed out after {timeout_s:g} s (run_timeout_s); killing process group {process.pid}",
                    )
                    self._request_stop(handle, "timeout")
                elif (
                    handle.stop_reason is not None
                    and now - handle.stop_requested_at >= self._config.kill_grace_s
                ):
                    _signal_group(process.pid, signal.SIGKILL)

    def _outcome(self, handle: _Handle, exit_code: int) -> tuple[str, str]:
        plan = handle.plan
        reason = handle.stop_reason
        if reason == "kill":
            log_line(plan.submitter, "run killed on request; process group ended")
            return "killed", "killed on request"
        if reason == "timeout":
            message = f"run exceeded the timeout of {self._config.run_timeout_s:g} s and was killed"
            log_line(plan.submitter, message)
            return "failed", message
        if reason == "shutdown":
            message = "the local CDE stopped while this run was running; its process group was killed"
            log_line(plan.submitter, message)
            return "failed", message
        if exit_code == 0:
            log_line(plan.submitter, "run succeeded")
            return "succeeded", "exit code 0"
        log_line(plan.submitter, f"run failed: spark-submit exit code {exit_code}")
        return "failed", f"exit code {exit_code}"
