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
resolve to mounted files.

Paths written inside the job's code (`open("/app/mount/q.sql")`, `spark.read.text("/app/mount/x")`,
SQL on text.`/app/mount/x`) are never rewritten; they resolve because each run has a private
mount namespace where its mount directory is bind-mounted onto `/app/mount`: spark-submit runs as
`unshare --mount --propagation private` (as root) or `unshare --user --map-root-user --mount`
(unprivileged user namespaces) `sh -c 'mount --bind <mount dir> /app/mount; exec spark-submit ...'`.
unshare and sh exec in place, so the launched pid stays the process group leader and kill/timeout
still end the whole tree; the JVM, its Python workers and whatever they start inherit the namespace,
and other runs (and the host) never see it. `mount_namespace()` picks the first variant that works,
by running it once per process on a probe directory. It needs Linux, util-linux's `unshare` and
`mount`, and an existing directory `/app/mount` to mount onto (created when we are root; otherwise
`sudo mkdir -p /app/mount` once). Under a user namespace the job runs as uid 0 of that namespace
(Spark's user is `root`; files it writes belong to the real user). Where no variant works (no
CAP_SYS_ADMIN in a container, user namespaces disabled, not Linux) runs go on without it and each
run's submitter/stdout says why and how to enable it: then only the rewritten fields and relative
paths reach the mounts.

Every run writes Spark's event log to `<data>/runs/<id>/eventlog` unless its conf says otherwise
(eventlog.py: served as the log type `driver/event`).

One warehouse and one Hive metastore serve all runs, also runs side by side:
`spark.sql.catalogImplementation=hive`, `spark.sql.warehouse.dir=<data>/warehouse` and
`spark.hadoop.hive.metastore.uris=thrift://127.0.0.1:<port>`, the metastore service that owns the
Derby database in `<data>/metastore` (metastore.py; embedded Derby would admit one driver at a
time) and listens on the loopback only (Hive 2.3 would bind every interface: metastore.py starts it
through its own launcher). A job whose conf sets `spark.hadoop.hive.metastore.uris` or
`spark.hadoop.javax.jdo.option.ConnectionURL` keeps its own metastore; a run that uses ours
(`SubmitPlan.uses_metastore`) has the service started, or waits for it, in its thread before
spark-submit (`RunEvents.before_launch`), and fails with the service's reason if it cannot start.
`config.driver_jvm_flags`, then the class data sharing archive's flags (cds.py: `-XX:SharedArchiveFile`
once the archive is made), come before the job's own `spark.driver.extraJavaOptions`.
`spark.log.level=WARN` unless the job sets `logLevel`, and the Spark UI is off unless the job's
conf turns it on.

The master is `config.spark_master`, passed to spark-submit as it is (`local[...]`, `spark://`,
`k8s://`, `yarn`), always with `--deploy-mode client`: the driver runs here, so its logs, its mounts
and the metastore (which only the driver talks to) stay local. Executors elsewhere must reach what
tasks read and write by path: the warehouse (`spark.sql.warehouse.dir`: the same path on every
worker, e.g. a shared file system, or an `s3a://`/`hdfs://` URL given in the job's conf), the
rewritten mount paths and `spark.local.dir`, and the job's Python (`PYSPARK_PYTHON`, also a
python-env's venv under the data directory). A cluster's executors are not in the run's mount
namespace: `/app/mount` paths in job code resolve in the driver only.
With a master not on this machine's loopback, SPARK_LOCAL_IP is not set, so the driver binds an
address the executors can reach (`spark.driver.host` in the job's conf chooses another).

Jobs get a clean environment, never the secrets of the process hosting the local CDE (the healer's
LLM keys, WORKLOAD_PASSWORD, cloud credentials): of the parent's variables only PASSED_ENV (PATH,
HOME, USER, LOGNAME, LANG, LANGUAGE, TZ, TMPDIR, JAVA_HOME, HADOOP_CONF_DIR) and those starting with
`LC_` are passed on, plus what the runner sets: PATH with the interpreter's directory first,
SPARK_HOME, SPARK_LOCAL_IP (loopback masters only), PYSPARK_PYTHON, PYSPARK_DRIVER_PYTHON, PYTHONUNBUFFERED. PYTHONPATH is
not passed: pyspark is installed in the interpreter (python-envs see it through their `.pth`) and
spark-submit puts its own pyspark and py4j on the driver's path.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import clock, eventlog
from .config import LocalCdeConfig
from .paths import DataPaths

MOUNT_TEXT = "/app/mount"
NAMESPACE_PROBE_TIMEOUT_S = 20.0  # one `unshare ... test -f` run; milliseconds normally
WAIT_POLL_S = 0.5  # how often a run's waiting thread looks for kill requests and its deadline
SHUTDOWN_JOIN_S = 30.0  # how long stop() waits for run threads after killing their processes

# Parent variables a job may see; everything else of the parent's environment stays out.
PASSED_ENV = frozenset("PATH HOME USER LOGNAME LANG LANGUAGE TZ TMPDIR JAVA_HOME HADOOP_CONF_DIR".split())
PASSED_ENV_PREFIXES = ("LC_",)

# A job whose conf names either of these brings its own metastore: it does not get (or wait for) ours.
OWN_METASTORE_CONF = ("spark.hadoop.hive.metastore.uris", "spark.hadoop.javax.jdo.option.ConnectionURL")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

_URL_SCHEMES = ("hdfs:", "s3a:", "s3:", "s3n:", "abfs:", "abfss:", "gs:", "http:", "https:", "file:", "wasb:")


class RunEvents(Protocol):
    """What the executor tells the backend."""

    def run_launched(self, run_id: int, process_group: int) -> None: ...

    def run_ended(self, run_id: int, status: str, reason: str) -> None: ...

    def before_launch(self, plan: SubmitPlan, cancelled: Callable[[], bool]) -> str | None:
        """Make ready what the run needs (the metastore service), in the run's thread; None, or the
        reason the run fails. May wait; returns early once `cancelled()` is true."""
        ...


@dataclass
class SubmitPlan:
    run_id: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    stdout: Path  # driver/stdout
    stderr: Path  # driver/stderr
    submitter: Path  # submitter/stdout
    mount_root: Path  # bound onto /app/mount in the run's mount namespace
    event_log_dir: Path  # the run's own event log directory (created at launch)
    uses_metastore: bool = False  # the run talks to the shared metastore service (started before launch)


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
    metastore_uri: str,
    cds_flags: Sequence[str] = (),
) -> SubmitPlan:
    """Build the spark-submit command line for an effective spec (mounts must already be copied).
    `metastore_uri`: the shared metastore service (thrift://...), unless the job's conf names its own.
    `cds_flags`: the class data sharing archive's driver flags (cds.py), after config.driver_jvm_flags."""
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
    conf.update(eventlog.defaults(paths.run_event_log_dir(run_id)))  # the job's conf may override
    if "numExecutors" in spec:
        conf["spark.executor.instances"] = str(spec["numExecutors"])
    user_conf = {k: localize(v, mount_root) for k, v in (spec.get("conf") or {}).items()}
    if not any(key in user_conf for key in OWN_METASTORE_CONF):
        conf["spark.hadoop.hive.metastore.uris"] = metastore_uri
    user_java = user_conf.pop("spark.driver.extraJavaOptions", "")
    conf.update(user_conf)
    java_options = " ".join([*config.driver_jvm_flags, *cds_flags, user_java]).strip()
    if java_options:
        conf["spark.driver.extraJavaOptions"] = java_options
    uses_metastore = (
        conf["spark.sql.catalogImplementation"] == "hive"
        and conf.get("spark.hadoop.hive.metastore.uris") == metastore_uri
    )

    argv = [
        str(spark_dir / "bin" / "spark-submit"),
        "--master",
        config.spark_master,
        "--deploy-mode",
        "client",  # the driver runs here, whatever the job's conf says: its logs and mounts are here
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
        mount_root=mount_root,
        event_log_dir=paths.run_event_log_dir(run_id),
        uses_metastore=uses_metastore,
    )


def event_log_dir(spec: dict[str, Any], paths: DataPaths, run_id: int) -> Path | None:
    """The local directory a run of `spec` has Spark write its event log to, as plan_submit sets it
    (eventlog.defaults with the job's conf on top); None when the log is off or not local."""
    mount_root = paths.run_mount_root(run_id)
    conf = eventlog.defaults(paths.run_event_log_dir(run_id))
    conf.update({k: localize(v, mount_root) for k, v in (spec.get("conf") or {}).items()})
    return eventlog.directory(conf, mount_root)


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
    if not master_on_loopback(config.spark_master):
        del env["SPARK_LOCAL_IP"]  # executors elsewhere must reach the driver: Spark picks a routable address
    return env


def master_on_loopback(master: str) -> bool:
    """True for local[...] and for spark:// masters on this machine's loopback address."""
    if master.startswith("local"):
        return True
    if not master.startswith("spark://"):
        return False
    hosts = [entry.rsplit(":", 1)[0] for entry in master[len("spark://") :].split(",")]
    return all(host in LOOPBACK_HOSTS for host in hosts)


@dataclass(frozen=True)
class MountNamespace:
    """How runs see their own mounts at /app/mount (module docstring). `command` + [mount dir, argv...]
    runs argv in a private mount namespace with the mount dir bound onto /app/mount; None when the
    platform does not allow it. `note` says which, and why, in each run's submitter/stdout."""

    command: tuple[str, ...] | None
    note: str


_FALLBACK_NOTE = (
    "/app/mount paths written in the job's code will NOT resolve ({why}). Paths in spark.file, args, "
    "conf, pyFiles, files and jars are still rewritten to the run's mounts, and relative paths resolve "
    "from the working directory (the mount directory). To enable it: {fix}, then restart the local CDE."
)
_ENABLE = (
    "run the local CDE as root or with unprivileged user namespaces enabled "
    "(`sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=15000`); in a container, "
    "allow `unshare` (e.g. `--cap-add SYS_ADMIN` or a seccomp profile that permits it)"
)


def _without(why: str, fix: str) -> MountNamespace:
    return MountNamespace(None, _FALLBACK_NOTE.format(why=why, fix=fix))


def detect_mount_namespace(
    mount_point: Path = Path(MOUNT_TEXT), search_path: str | None = None
) -> MountNamespace:
    """Find how to give runs a private `mount_point`, by trying it: `unshare --mount` (root), then
    `unshare --user --map-root-user --mount`. `search_path` is the PATH for unshare, mount and sh.
    Use `mount_namespace()`, which does this once per process."""
    if not sys.platform.startswith("linux"):
        return _without("mount namespaces need Linux", "run on Linux")
    tools = {name: shutil.which(name, path=search_path) for name in ("unshare", "mount", "sh")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        return _without(f"{' and '.join(missing)} not found on PATH", "install util-linux")
    root = os.geteuid() == 0
    if not mount_point.is_dir():
        if not root:
            why = f"{mount_point} does not exist to mount onto, and only root can create it"
            return _without(why, f"run `sudo mkdir -p {mount_point}` once")
        try:
            mount_point.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return _without(f"could not create {mount_point}: {exc.strerror or exc}", f"create {mount_point}")
    target = shlex.quote(str(mount_point))
    prelude = (  # $1: the run's mount directory; then the command, exec'd in place
        f'{shlex.quote(tools["mount"] or "")} --bind "$1" {target} || '
        f'{{ echo "local CDE: could not bind $1 onto {target}" >&2; exit 125; }}; shift; exec "$@"'
    )
    variants = [["--user", "--map-root-user", "--mount", "--propagation", "private"]]
    if root:
        variants.insert(0, ["--mount", "--propagation", "private"])
    failures = []
    for options in variants:
        command = (tools["unshare"] or "", *options, tools["sh"] or "", "-c", prelude, "cde-mount")
        with tempfile.TemporaryDirectory(prefix="cde-mount-probe-") as probe:
            Path(probe, "probe").touch()
            try:
                done = subprocess.run(
                    [*command, probe, "test", "-f", f"{mount_point}/probe"],
                    capture_output=True,
                    text=True,
                    timeout=NAMESPACE_PROBE_TIMEOUT_S,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                failures.append(f"`unshare {' '.join(options)}`: {exc}")
                continue
        if done.returncode == 0:
            note = (
                f"/app/mount in the job's code: the run's mount directory is bound onto {mount_point} in a "
                f"private mount namespace (`unshare {' '.join(options)}`); other runs do not see it"
            )
            return MountNamespace(command, note)
        detail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        failures.append(f"`unshare {' '.join(options)}`: {detail}")
    return _without("mount namespaces are not allowed here: " + "; ".join(failures), _ENABLE)


_NAMESPACE_LOCK = threading.Lock()


@functools.cache
def _detected_mount_namespace() -> MountNamespace:
    return detect_mount_namespace()


def mount_namespace() -> MountNamespace:
    """detect_mount_namespace() for /app/mount, probed on first use and kept for the process."""
    with _NAMESPACE_LOCK:
        return _detected_mount_namespace()


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
        problem = self._events.before_launch(plan, lambda: handle.stop_reason is not None)
        if problem:
            log_line(plan.submitter, problem)
            return "failed", problem
        with self._lock:
            if handle.stop_reason is not None:  # killed between dequeue and launch (or while preparing)
                log_line(plan.submitter, f"run stopped ({handle.stop_reason}) before launch")
                return ("killed" if handle.stop_reason == "kill" else "failed"), "stopped before launch"
        plan.stdout.parent.mkdir(parents=True, exist_ok=True)
        plan.event_log_dir.mkdir(parents=True, exist_ok=True)  # Spark fails when its log dir is missing
        namespace = mount_namespace()
        log_line(plan.submitter, namespace.note)
        argv = plan.argv
        if namespace.command is not None:
            argv = [*namespace.command, str(plan.mount_root), *plan.argv]
        with plan.stdout.open("ab") as out, plan.stderr.open("ab") as err:
            process = subprocess.Popen(
                argv,
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
