"""JVM class data sharing (AppCDS) for the Spark drivers: a dynamic archive of the classes Spark
loads, mapped by every run's driver JVM instead of loading and verifying those classes from the
jars again (measured on 2 cores: a small job through the local CDE, 17 s of CPU and wall without it,
11 s with it; the warm-up that makes it takes 60-90 s once).

Where: one archive per machine user, shared by every local CDE (tests start dozens, each with its
own data directory): `config.cds_dir`, by default `$XDG_CACHE_HOME/cde-local/cds` or
`~/.cache/cde-local/cds`. `spark-<key>.jsa` is the archive, `spark-<key>.json` the record written
once it was checked, `spark-<key>.log` the warm-up's output, `warmup.lock` the machine-wide lock.
The key hashes what makes an archive valid (`key_inputs`): the java executable (its real path and
the size and mtime of its libjvm and of the JDK's base archive), the pyspark directory, version
and jars (name, size, mtime: a reinstall with the same sizes would otherwise leave an archive every
JVM rejects), the warm-up script and the `-XX:` driver flags (GC, tiered compilation).

When it is made: the first run of a spark-mode local CDE with no valid archive starts the warm-up
in a background thread and goes on without (a run never waits for it; nor does a local CDE that runs
nothing make one). The thread takes `warmup.lock` with a non-blocking `fcntl.flock`: when another
local CDE holds it, it does nothing (a later run looks again). Holding it, it runs `cds_warmup.py`
through the same spark-submit and clean environment as jobs (`runner.job_environment`), with
`-XX:ArchiveClassesAtExit=<tmp file>`, at the lowest priority (`nice -n 19`, and the same for its
session's scheduler autogroup, which otherwise gives each session an equal share whatever its
niceness), output to the log. Then `spark-submit --version` with `-XX:SharedArchiveFile=<tmp>
-Xshare:on` must succeed (the JVM refuses to start when the archive does not map), the tmp file is
renamed into place and the record (size, mtime) written. A failure is logged as a warning and
retried by a later run, at most once per local CDE. Publishing removes other keys' archives but
the newest other one (another JDK or pyspark in use on the machine). Stopping the local CDE kills a
warm-up in progress (its process group) and removes its files.

When it is used: a run whose archive and record match (size, mtime) gets `-XX:SharedArchiveFile=`
plus `-Xshare:auto -Xlog:cds*=off` after `config.driver_jvm_flags` (the job's own
`spark.driver.extraJavaOptions` still come last). A JVM that cannot use the archive falls back to
loading classes from the jars; without `-Xlog:cds*=off` Java 17 prints, to the driver's stdout,
`[warning][cds,dynamic] Unable to use shared archive. The top archive failed to load: <file>`, e.g.
for a job with `spark.driver.extraClassPath` (its class path no longer starts with the archived one;
`--jars` are loaded by Spark's own class loader and change nothing). Not every bad file falls back:
a truncated archive crashes Java 17 with SIGBUS while mapping it, so a run uses an archive only
when its record (written after the `-Xshare:on` check) still matches its size and mtime; any other
file there is rebuilt by the next run's warm-up.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from . import clock
from .config import LocalCdeConfig
from .runner import find_java, job_environment, log_line, terminate_group

log = logging.getLogger(__name__)

FORMAT = 1  # part of every key: bump it when archives made before must not be used any more
ARCHIVE_PREFIX = "spark-"
LOCK_NAME = "warmup.lock"
WARMUP_SCRIPT = Path(__file__).with_name("cds_warmup.py")
WARMUP_MASTER = "local[2]"
WARMUP_DRIVER_MEMORY = "1g"  # as runs by default: -Xmx decides compressed pointers, part of the archive
WARMUP_TIMEOUT_S = 1800.0  # the warm-up takes 45-90 s on 2 cores; at niceness 19 it may wait long
CHECK_TIMEOUT_S = 300.0  # `spark-submit --version` with the new archive: about a second
WARMUP_NICENESS = 19
MAX_ATTEMPTS = 2  # warm-ups per local CDE: one and a retry
KEEP_OTHER_ARCHIVES = 1  # archives of other keys kept when a new one is published
POLL_S = 0.5
MAX_LOG_BYTES = 1_000_000  # a warm-up log past this is started afresh by the next warm-up
STOP_JOIN_S = 30.0
# A run's flags besides the archive: -Xshare:auto falls back to the jars when the archive does not
# fit, -Xlog:cds*=off keeps the JVM from saying so on the driver's stdout (the healer reads it).
QUIET_FLAGS = ("-Xshare:auto", "-Xlog:cds*=off")
# The warm-up's JVM: its [cds] warnings (thousands of "Skipping ...: Signed JAR" lines) stay out of the log.
DUMP_LOG_FLAGS = ("-Xlog:cds=error",)
CDS_FLAG = re.compile(
    r"-XX:(SharedArchiveFile|ArchiveClassesAtExit|SharedClassListFile|DumpLoadedClassList)="
)
VERSION_LINE = re.compile(r"__version__\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)")


# == pure parts ====================================================================================
def default_cds_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_CACHE_HOME/cde-local/cds, or ~/.cache/cde-local/cds (an XDG_CACHE_HOME that is not an
    absolute path is ignored, as the XDG specification says)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "")
    if not base or not os.path.isabs(base):
        home = env.get("HOME") or str(Path.home())
        base = os.path.join(home, ".cache")
    return Path(base) / "cde-local" / "cds"


def cds_dir(config: LocalCdeConfig) -> Path:
    return config.cds_dir if config.cds_dir is not None else default_cds_dir()


def relevant_flags(flags: Iterable[str]) -> list[str]:
    """The driver flags an archive depends on: the `-XX:` options (GC, tiered compilation, pointer
    compression), without the class data sharing ones themselves."""
    return [flag for flag in flags if flag.startswith("-XX:") and not CDS_FLAG.match(flag)]


def _stat(path: Path) -> list[Any] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [str(path), st.st_size, st.st_mtime_ns]


def java_identity(java: str) -> dict[str, Any]:
    """What identifies a JVM build without running it: the executable's real path, its libjvm and
    the JDK's base CDS archive (size, mtime: a package update changes them) and the release file."""
    real = Path(os.path.realpath(java))
    home = real.parent.parent
    libjvm = sorted(home.glob("lib/*/libjvm.so")) + sorted(home.glob("lib/*/libjvm.dylib"))
    base = sorted(home.glob("lib/*/classes*.jsa"))
    release = {}
    try:
        for line in (home / "release").read_text(encoding="utf-8", errors="replace").splitlines():
            name, sep, value = line.partition("=")
            if sep and name in ("JAVA_VERSION", "JAVA_RUNTIME_VERSION", "IMPLEMENTOR"):
                release[name] = value.strip().strip('"')
    except OSError:
        pass
    return {
        "java": str(real),
        "libjvm": [_stat(p) for p in libjvm],
        "base_archives": [_stat(p) for p in base],
        "release": release,
    }


def spark_identity(spark_dir: Path) -> dict[str, Any]:
    """pyspark's directory, version and jars (name, size, mtime in seconds, which the JVM checks)."""
    version = ""
    try:
        found = VERSION_LINE.search((spark_dir / "version.py").read_text(encoding="utf-8"))
        version = found.group(1) if found else ""
    except OSError:
        pass
    jars = []
    for jar in sorted((spark_dir / "jars").glob("*.jar")):
        try:
            st = jar.stat()
        except OSError:
            continue
        jars.append([jar.name, st.st_size, int(st.st_mtime)])
    return {"spark_home": str(spark_dir), "pyspark": version, "jars": jars}


def key_inputs(java: Mapping[str, Any], spark: Mapping[str, Any], driver_flags: Iterable[str],
               warmup_script: bytes) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "java": dict(java),
        "spark": dict(spark),
        "flags": relevant_flags(driver_flags),
        "warmup": hashlib.sha256(warmup_script).hexdigest(),
    }


def archive_key(inputs: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the inputs (canonical JSON)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def java_option(arg: str) -> str:
    """`arg` as one word of `spark.driver.extraJavaOptions` (Spark splits it like a shell would)."""
    if arg and not re.search(r"[\s'\"\\]", arg):
        return arg
    return '"' + re.sub(r'(["\\])', r"\\\1", arg) + '"'


def use_flags(archive: Path) -> tuple[str, ...]:
    """A run's driver flags for the archive (module docstring)."""
    return (java_option(f"-XX:SharedArchiveFile={archive}"), *QUIET_FLAGS)


@dataclass(frozen=True)
class ArchiveFiles:
    """The files of one key in the cache directory."""

    directory: Path
    key: str

    @property
    def stem(self) -> str:
        return f"{ARCHIVE_PREFIX}{self.key}"

    @property
    def archive(self) -> Path:
        return self.directory / f"{self.stem}.jsa"

    @property
    def record(self) -> Path:
        return self.directory / f"{self.stem}.json"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.stem}.log"

    @property
    def lock(self) -> Path:
        return self.directory / LOCK_NAME

    def tmp(self) -> Path:
        return self.directory / f"{self.stem}.{os.getpid()}.tmp"  # one writer: the lock holder

    def valid(self) -> bool:
        """The archive is there and is the file its record describes (same size and mtime)."""
        try:
            st = self.archive.stat()
            record = json.loads(self.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return (
            isinstance(record, dict)
            and record.get("key") == self.key
            and record.get("size") == st.st_size
            and record.get("mtime_ns") == st.st_mtime_ns
            and st.st_size > 0
        )

    def publish(self, tmp: Path, details: Mapping[str, Any]) -> None:
        """Rename the checked tmp file into place, then write its record (tmp + rename as well)."""
        os.replace(tmp, self.archive)
        st = self.archive.stat()
        record = {"key": self.key, "size": st.st_size, "mtime_ns": st.st_mtime_ns, **details}
        partial = self.record.with_name(self.record.name + f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, self.record)

    def discard(self) -> None:
        """Remove an archive that is not valid, and its record."""
        self.record.unlink(missing_ok=True)
        self.archive.unlink(missing_ok=True)


def remove_leftovers(directory: Path) -> list[str]:
    """Tmp files and scratch directories of warm-ups that were killed; call with the lock held."""
    removed = []
    for path in directory.glob("*.tmp"):
        path.unlink(missing_ok=True)
        removed.append(path.name)
    for path in directory.glob("work.*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


def prune(directory: Path, keep_key: str, keep_others: int = KEEP_OTHER_ARCHIVES) -> list[str]:
    """Delete the archives of other keys but the `keep_others` newest, and every record and log
    left without its archive (except `keep_key`'s). A JVM that has an archive mapped keeps it;
    a run planned with a deleted one starts without it, silently. The names removed."""
    others = [p for p in directory.glob(f"{ARCHIVE_PREFIX}*.jsa") if p.stem != f"{ARCHIVE_PREFIX}{keep_key}"]

    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    others.sort(key=mtime, reverse=True)
    removed = []
    for path in others[keep_others:]:
        path.unlink(missing_ok=True)
        removed.append(path.name)
    kept = {p.stem for p in others[:keep_others]} | {f"{ARCHIVE_PREFIX}{keep_key}"}
    for pattern in (f"{ARCHIVE_PREFIX}*.json", f"{ARCHIVE_PREFIX}*.log"):
        for path in directory.glob(pattern):
            if path.stem not in kept:
                path.unlink(missing_ok=True)
                removed.append(path.name)
    return removed


def warmup_command(spark_dir: Path, driver_flags: Iterable[str], archive_tmp: Path, work: Path) -> list[str]:
    """spark-submit running cds_warmup.py, its driver dumping its classes to `archive_tmp` at exit."""
    java_options = [*driver_flags, java_option(f"-XX:ArchiveClassesAtExit={archive_tmp}"), *DUMP_LOG_FLAGS]
    conf = {
        "spark.ui.enabled": "false",
        "spark.sql.catalogImplementation": "in-memory",  # no Hive metastore
        "spark.sql.warehouse.dir": str(work / "warehouse"),
        "spark.local.dir": str(work / "local"),
        "spark.log.level": "WARN",
        "spark.eventLog.enabled": "false",
        "spark.driver.extraJavaOptions": " ".join(java_options),
    }
    argv = [str(spark_dir / "bin" / "spark-submit"), "--master", WARMUP_MASTER, "--deploy-mode", "client",
            "--name", "cde-local-cds-warmup", "--driver-memory", WARMUP_DRIVER_MEMORY]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, str(WARMUP_SCRIPT), str(work / "data")]


def check_command(spark_dir: Path, driver_flags: Iterable[str], archive: Path, work: Path) -> list[str]:
    """`spark-submit --version` through the driver's JVM with `-Xshare:on`: it exits non-zero unless
    the archive maps (a truncated one crashes it; no core dump, its hs_err file in `work`)."""
    java_options = [
        *driver_flags,
        java_option(f"-XX:SharedArchiveFile={archive}"),
        "-Xshare:on",
        "-XX:-CreateCoredumpOnCrash",
        java_option(f"-XX:ErrorFile={work / 'hs_err_pid%p.log'}"),
    ]
    return [
        str(spark_dir / "bin" / "spark-submit"),
        "--master",
        WARMUP_MASTER,
        "--driver-memory",
        WARMUP_DRIVER_MEMORY,
        "--conf",
        f"spark.driver.extraJavaOptions={' '.join(java_options)}",
        "--version",
    ]


def lower_priority(pid: int, niceness: int = WARMUP_NICENESS) -> None:
    """Lowest CPU priority for a process that leads its own session: nice(1) sets the niceness of
    what it runs; Linux's autogroup scheduling shares the CPU between sessions first, so the
    session's autogroup gets the niceness too (best effort: not every kernel has it)."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(f"{niceness}\n")
    except OSError:
        pass


class CdsForRun(NamedTuple):
    flags: tuple[str, ...]  # driver JVM flags for the run (empty: no archive)
    note: str  # for the run's submitter/stdout


# == the archive of one local CDE ==================================================================
class ClassDataSharing:
    """The archive runs of one local CDE use, and the warm-up that makes it (module docstring)."""

    def __init__(self, config: LocalCdeConfig, spark_dir: Callable[[], Path]) -> None:
        self._config = config
        self._spark_dir = spark_dir
        self.directory = cds_dir(config)
        self._lock = threading.Lock()
        self._files: ArchiveFiles | None = None
        self._problem: str | None = None  # why there is no archive for this local CDE
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False
        self.attempts = 0  # warm-ups this local CDE ran (at most MAX_ATTEMPTS)
        self.last_failure: str | None = None

    @property
    def enabled(self) -> bool:
        return self._config.class_data_sharing and self._config.run_mode == "spark"

    def files(self) -> ArchiveFiles | None:
        """The archive files of this local CDE's Java, pyspark and flags (the key is computed once:
        a few hundred stat calls), or None when there can be none (`problem` says why)."""
        with self._lock:
            if self._files is not None or self._problem is not None:
                return self._files
        try:
            spark_dir = self._spark_dir()
            env = job_environment(self._config, self._config.python_executable, spark_dir)
            java = find_java(env)
            if java is None:
                raise FileNotFoundError("java not found")
            inputs = key_inputs(java_identity(java), spark_identity(spark_dir), self._config.driver_jvm_flags,
                                WARMUP_SCRIPT.read_bytes())
            files, problem = ArchiveFiles(self.directory, archive_key(inputs)), None
        except OSError as exc:
            files, problem = None, str(exc)
        with self._lock:
            self._files, self._problem = files, problem
        return files

    def for_run(self) -> CdsForRun:
        """The flags for a run about to be planned: the archive's when it is valid; otherwise none,
        and a warm-up starts in the background when this local CDE may still make one. Never waits."""
        if not self.enabled:
            return CdsForRun((), "")
        files = self.files()
        if files is None:
            return CdsForRun((), f"class data sharing: off ({self._problem})")
        if files.valid():
            return CdsForRun(use_flags(files.archive), f"class data sharing: {files.archive}")
        started = self.start_warmup()
        state = "a warm-up makes it in the background" if started else "not made here"
        if not started and self.attempts >= MAX_ATTEMPTS:
            state = f"this local CDE made its {self.attempts} warm-ups; see {files.log}"
        return CdsForRun((), f"class data sharing: no archive yet ({state})")

    def start_warmup(self) -> bool:
        """Start the warm-up thread unless one runs, this local CDE stops or used its attempts.
        True when a thread was started (it may still find the lock taken and do nothing)."""
        if not self.enabled or self.files() is None:
            return False
        with self._lock:
            if self._closed or self.attempts >= MAX_ATTEMPTS:
                return False
            if self._thread is not None and self._thread.is_alive():
                return True
            self._thread = threading.Thread(target=self._warm_up, name="cde-cds-warmup", daemon=True)
            self._thread.start()
        return True

    def wait(self, timeout_s: float) -> bool:
        """Wait for the warm-up thread (tests); True when none runs any more."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    @property
    def warmup_pid(self) -> int | None:
        """The process (group) of the warm-up step going on, if any."""
        with self._lock:
            process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def stop(self) -> None:
        """Kill a warm-up in progress (its process group); its thread removes its files."""
        with self._lock:
            self._closed = True
            process, thread = self._process, self._thread
        if process is not None and process.poll() is None:
            terminate_group(process.pid, 0.0)  # nothing to keep: SIGKILL at once, no dump at exit
        if thread is not None:
            thread.join(STOP_JOIN_S)

    # -- the warm-up thread ------------------------------------------------------------------------
    def _warm_up(self) -> None:
        files = self.files()
        if files is None:
            return
        counted = False
        try:
            files.directory.mkdir(parents=True, exist_ok=True)
            with files.lock.open("a+") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another local CDE makes an archive; a later run looks again
                if files.valid():
                    return  # made by another local CDE meanwhile
                with self._lock:
                    if self._closed or self.attempts >= MAX_ATTEMPTS:
                        return
                    self.attempts += 1
                counted = True
                self._make(files)
        except Exception as exc:  # noqa: BLE001 - a bug or an OS failure must not reach the runs
            if not counted:  # e.g. a cache directory that cannot be written: an attempt all the same
                with self._lock:
                    self.attempts += 1
            self._failed(files, f"local CDE error: {exc!r}")

    def _make(self, files: ArchiveFiles) -> None:
        """The warm-up, the check and the publication, with the lock held."""
        remove_leftovers(files.directory)
        if files.log.exists() and files.log.stat().st_size > MAX_LOG_BYTES:
            files.log.unlink()  # the log keeps the last attempts' output, not every one's
        files.discard()
        tmp = files.tmp()
        work = Path(tempfile.mkdtemp(prefix="work.", dir=files.directory))
        started = time.monotonic()
        try:
            spark_dir = self._spark_dir()
            env = job_environment(self._config, self._config.python_executable, spark_dir)
            flags = self._config.driver_jvm_flags
            log_line(files.log, f"local CDE: warm-up for {files.archive.name} (pid {os.getpid()})")
            if not self._step(files, "warm-up", warmup_command(spark_dir, flags, tmp, work), env, work,
                              WARMUP_TIMEOUT_S, "the warm-up job exited with code {}"):
                return
            if not tmp.is_file() or tmp.stat().st_size == 0:
                self._failed(files, "the warm-up job wrote no archive")
                return
            dumped = time.monotonic() - started
            size = tmp.stat().st_size
            log_line(files.log, f"local CDE: archive written ({size} bytes) after {dumped:.1f} s; check")
            if not self._step(files, "check", check_command(spark_dir, flags, tmp, work), env, work, CHECK_TIMEOUT_S,
                              "the new archive does not load (-Xshare:on check exited with code {})"):
                return
            elapsed = time.monotonic() - started
            details = {"created": clock.now(), "warmup_s": round(elapsed, 1), "spark_home": str(spark_dir)}
            files.publish(tmp, details)
            removed = prune(files.directory, files.key)
            log_line(files.log, f"local CDE: {files.archive} ready after {elapsed:.1f} s"
                     + (f"; removed {', '.join(removed)}" if removed else ""))
            log.info("class data sharing: %s made in %.0f s", files.archive, elapsed)
        finally:
            tmp.unlink(missing_ok=True)
            shutil.rmtree(work, ignore_errors=True)

    def _run(
        self, argv: list[str], env: dict[str, str], cwd: Path, log_path: Path, timeout_s: float
    ) -> int | None:
        """Run one step at the lowest priority in its own process group, output appended to the
        log; its exit code, or None when the local CDE stopped (the group is killed)."""
        nice = shutil.which("nice", path=env.get("PATH"))
        command = [nice, "-n", str(WARMUP_NICENESS), *argv] if nice else argv
        log_line(log_path, f"local CDE: command: {' '.join(command)}")
        with self._lock:
            if self._closed:
                return None
            with log_path.open("ab") as out:
                process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            self._process = process
        lower_priority(process.pid)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    code = process.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if self._closed:
                    terminate_group(process.pid, 0.0)
                    process.wait()
                    return None
                if time.monotonic() >= deadline:
                    log_line(log_path, f"local CDE: still running after {timeout_s:g} s; killed")
                    terminate_group(process.pid, 0.0)
                    process.wait()
                    return -9
            terminate_group(process.pid, 0.0)  # leftovers (the job's python workers)
            return None if self._closed else code
        finally:
            with self._lock:
                self._process = None

    def _step(self, files: ArchiveFiles, name: str, command: list[str], env: dict[str, str], work: Path,
              timeout_s: float, failure: str) -> bool:
        """Runs one step of the warm-up; True when it exited 0. A stop of the local CDE is logged, a
        failure reported (`failure` formatted with the exit code)."""
        outcome = self._run(command, env, work, files.log, timeout_s)
        if outcome is None:
            log_line(files.log, f"local CDE: {name} stopped (the local CDE stopped)")
            return False
        if outcome != 0:
            self._failed(files, failure.format(outcome))
            return False
        return True

    def _failed(self, files: ArchiveFiles, why: str) -> None:
        self.last_failure = why
        try:
            log_line(files.log, f"local CDE: warm-up failed: {why}")
        except OSError:
            pass
        retry = "a later run retries" if self.attempts < MAX_ATTEMPTS else "not retried by this local CDE"
        log.warning("class data sharing: no archive: %s (%s; log: %s)", why, retry, files.log)


