"""Local CDE: the drivers' JVM class data sharing archive (cde_local/cds.py).

Fast tests check the pure parts and the warm-up's orchestration with a stand-in spark-submit (a
shell script writing a fake archive). The real-Spark tests use a local CDE with a temporary cache
directory: one real warm-up (about a minute), then two short Spark runs: one that must map the
archive (`-Xshare:on` fails the JVM otherwise), one with the archive truncated."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cde_local import LocalCde, LocalCdeConfig
from cde_local.__main__ import parse_args
from cde_local.cds import (
    LOCK_NAME,
    MAX_ATTEMPTS,
    QUIET_FLAGS,
    ArchiveFiles,
    ClassDataSharing,
    archive_key,
    default_cds_dir,
    java_identity,
    key_inputs,
    prune,
    spark_identity,
    use_flags,
)
from cde_local.cds_build import build
from cde_local.paths import DataPaths
from cde_local.runner import find_java, plan_submit, spark_home
from tests.fixtures.cde_local import CdeApi, live_processes_in_group, local_cde_config, poll, unique

REAL_SPARK = True  # its own local CDE runs Spark: scheduled early (tests/conftest.py)

FAKE_WAIT_S = 60.0
WARMUP_WAIT_S = 900.0  # the real warm-up: about a minute alone, several at niceness 19 under load
JAVA = find_java(dict(os.environ))
needs_java = pytest.mark.skipif(JAVA is None, reason="the archive's key names the java executable")

# A stand-in for spark-submit: the file `mode` next to bin/ decides what the warm-up does; the
# `--version` check passes when the archive starts with GOOD. Every call is appended to `calls`.
FAKE_SPARK_SUBMIT = r"""#!/bin/sh
here=$(cd "$(dirname "$0")/.." && pwd)
opts=$(printf '%s\n' "$@" | grep '^spark.driver.extraJavaOptions=')
case " $* " in
  *" --version "*)
    echo "check" >> "$here/calls"
    archive=$(printf '%s\n' "$opts" | sed -n 's/.*-XX:SharedArchiveFile=\([^ ]*\).*/\1/p')
    grep -q '^GOOD' "$archive" ;;
  *)
    echo "warmup $(cat /proc/$$/autogroup 2>/dev/null)" >> "$here/calls"
    tmp=$(printf '%s\n' "$opts" | sed -n 's/.*-XX:ArchiveClassesAtExit=\([^ ]*\).*/\1/p')
    case "$(cat "$here/mode")" in
      ok) echo "GOOD $$" > "$tmp" ;;
      bad) echo "BAD" > "$tmp" ;;
      fail) exit 3 ;;
      hang) echo "partial" > "$tmp"; exec sleep 600 ;;
    esac ;;
esac
"""


class FakeSpark:
    def __init__(self, root: Path) -> None:
        self.dir = root
        (root / "bin").mkdir(parents=True)
        (root / "jars").mkdir()
        (root / "jars" / "spark-core.jar").write_bytes(b"x" * 10)
        (root / "version.py").write_text('__version__: str = "9.9.9"\n')
        script = root / "bin" / "spark-submit"
        script.write_text(FAKE_SPARK_SUBMIT)
        script.chmod(0o755)
        self.mode("ok")

    def mode(self, mode: str) -> None:
        (self.dir / "mode").write_text(mode)

    def calls(self) -> list[str]:
        path = self.dir / "calls"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def fake_spark(tmp_path: Path) -> FakeSpark:
    return FakeSpark(tmp_path / "spark")


def sharing(tmp_path: Path, fake: FakeSpark, **fields: object) -> ClassDataSharing:
    config = LocalCdeConfig(data_dir=tmp_path / "cde", cds_dir=tmp_path / "cds", **fields)  # type: ignore[arg-type]
    return ClassDataSharing(config, lambda: fake.dir)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp") or p.name.startswith("work."))


# == pure parts ====================================================================================
def test_the_cache_is_the_users_unless_configured(tmp_path: Path) -> None:
    assert default_cds_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/h"}) == Path("/x/cache/cde-local/cds")
    assert default_cds_dir({"XDG_CACHE_HOME": "relative", "HOME": "/h"}) == Path("/h/.cache/cde-local/cds")
    assert default_cds_dir({"HOME": "/h"}) == Path("/h/.cache/cde-local/cds")
    config = LocalCdeConfig(data_dir=tmp_path / "a")
    assert config.class_data_sharing and config.cds_dir is None
    assert ClassDataSharing(config, lambda: tmp_path).directory == default_cds_dir()
    other = LocalCdeConfig(data_dir=tmp_path / "b", cds_dir=tmp_path / "x" / ".." / "cds")
    assert other.cds_dir == (tmp_path / "cds").resolve()
    assert parse_args(["--data-dir", str(tmp_path)]).class_data_sharing is True
    assert parse_args(["--data-dir", str(tmp_path), "--no-class-data-sharing"]).class_data_sharing is False


def test_the_key_changes_with_what_makes_an_archive_valid() -> None:
    java = {"java": "/jdk/bin/java", "libjvm": [["/jdk/lib/server/libjvm.so", 100, 1]], "release": {}}
    spark = {"spark_home": "/s", "pyspark": "4.3.0", "jars": [["a.jar", 10, 1], ["b.jar", 20, 1]]}
    flags = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
    key = archive_key(key_inputs(java, spark, flags, b"warm-up"))
    assert len(key) == 16 and key == archive_key(key_inputs(java, spark, flags, b"warm-up"))
    changed = [
        key_inputs({**java, "libjvm": [["/jdk/lib/server/libjvm.so", 100, 2]]}, spark, flags, b"warm-up"),
        key_inputs({**java, "java": "/other/bin/java"}, spark, flags, b"warm-up"),
        key_inputs(java, {**spark, "pyspark": "4.3.1"}, flags, b"warm-up"),
        key_inputs(java, {**spark, "jars": [["a.jar", 11, 1], ["b.jar", 20, 1]]}, flags, b"warm-up"),
        key_inputs(java, {**spark, "jars": [["a.jar", 10, 1]]}, flags, b"warm-up"),
        key_inputs(java, spark, ("-XX:TieredStopAtLevel=1", "-XX:+UseG1GC"), b"warm-up"),
        key_inputs(java, spark, ("-XX:+UseSerialGC",), b"warm-up"),
        key_inputs(java, spark, flags, b"another warm-up"),
    ]
    assert len({key, *(archive_key(inputs) for inputs in changed)}) == len(changed) + 1
    # Flags that do not shape the archive leave the key alone.
    same = key_inputs(java, spark, (*flags, "-Dfoo=1", "-Xmx2g", "-XX:SharedArchiveFile=/x.jsa"), b"warm-up")
    assert archive_key(same) == key


def test_identities_read_the_install(tmp_path: Path, fake_spark: FakeSpark) -> None:
    spark = spark_identity(fake_spark.dir)
    assert spark["pyspark"] == "9.9.9" and [jar[:2] for jar in spark["jars"]] == [["spark-core.jar", 10]]
    (fake_spark.dir / "jars" / "spark-core.jar").write_bytes(b"x" * 11)
    assert spark_identity(fake_spark.dir) != spark
    if JAVA is not None:
        java = java_identity(JAVA)
        assert Path(java["java"]).is_file() and java["java"] == os.path.realpath(JAVA)


def test_archive_flags_come_after_the_driver_flags_and_before_the_jobs(tmp_path: Path) -> None:
    config = LocalCdeConfig(data_dir=tmp_path / "cde", run_mode="manual")
    archive = Path("/cache dir/spark-0123.jsa")
    plan = plan_submit(
        run_id=1,
        job_name="job",
        spec={"file": "main.py", "conf": {"spark.driver.extraJavaOptions": "-Dx=1"}},
        config=config,
        paths=DataPaths(config.data_dir),
        python="/usr/bin/python3",
        spark_dir=Path("/spark"),
        metastore_uri="thrift://127.0.0.1:9083",
        cds_flags=use_flags(archive),
    )
    confs = dict(plan.argv[i + 1].split("=", 1) for i, arg in enumerate(plan.argv) if arg == "--conf")
    assert confs["spark.driver.extraJavaOptions"] == " ".join(
        [*config.driver_jvm_flags, '"-XX:SharedArchiveFile=/cache dir/spark-0123.jsa"', *QUIET_FLAGS, "-Dx=1"]
    )
    assert use_flags(Path("/c/a.jsa")) == ("-XX:SharedArchiveFile=/c/a.jsa", "-Xshare:auto", "-Xlog:cds*=off")


def test_an_archive_is_used_only_as_its_record_describes_it(tmp_path: Path) -> None:
    files = ArchiveFiles(tmp_path, "0123456789abcdef")
    assert not files.valid()
    tmp = tmp_path / "x.tmp"
    tmp.write_bytes(b"GOOD" * 100)
    files.publish(tmp, {"created": "now"})
    assert files.valid() and not tmp.exists()
    assert json.loads(files.record.read_text())["size"] == 400
    os.truncate(files.archive, 200)  # a truncated archive crashes Java 17 (SIGBUS): never used
    assert not files.valid()
    files.discard()
    assert not files.archive.exists() and not files.record.exists()
    tmp.write_bytes(b"GOOD")
    files.publish(tmp, {})
    files.record.write_text("{not json")
    assert not files.valid()


def test_publishing_keeps_the_newest_other_archive_only(tmp_path: Path) -> None:
    for age, key in enumerate(["new", "old1", "old2"]):
        for suffix in (".jsa", ".json", ".log"):
            path = tmp_path / f"spark-{key}{suffix}"
            path.write_text("x")
            os.utime(path, (1_000_000 - age * 1000, 1_000_000 - age * 1000))
    (tmp_path / "spark-gone.log").write_text("a failed warm-up of a key with no archive")
    (tmp_path / "spark-mine.log").write_text("x")
    removed = prune(tmp_path, "mine", keep_others=1)
    assert sorted(removed) == ["spark-gone.log", "spark-old1.jsa", "spark-old1.json", "spark-old1.log",
                               "spark-old2.jsa", "spark-old2.json", "spark-old2.log"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "spark-mine.log", "spark-new.jsa", "spark-new.json", "spark-new.log"
    ]


def test_off_adds_nothing_and_makes_nothing(tmp_path: Path, fake_spark: FakeSpark) -> None:
    for fields in ({"class_data_sharing": False}, {"run_mode": "manual"}):
        cds = sharing(tmp_path, fake_spark, **fields)
        assert cds.for_run() == ((), "")
        assert not cds.start_warmup() and cds.warmup_pid is None
    assert not (tmp_path / "cds").exists() and fake_spark.calls() == []


# == the warm-up with a stand-in spark-submit =======================================================
@needs_java
def test_one_warmup_makes_the_archive_and_later_local_cdes_use_it(tmp_path: Path, fake_spark: FakeSpark) -> None:
    first = sharing(tmp_path, fake_spark)
    planned = first.for_run()
    assert planned.flags == () and "no archive yet (a warm-up makes it in the background)" in planned.note
    assert first.wait(FAKE_WAIT_S)
    files = first.files()
    assert files is not None and files.valid() and files.archive.read_text().startswith("GOOD")
    assert [call.split()[0] for call in fake_spark.calls()] == ["warmup", "check"]
    if Path("/proc/self/autogroup").exists():  # the warm-up's session is scheduled at niceness 19
        assert fake_spark.calls()[0].endswith("nice 19")
    assert first.for_run() == (use_flags(files.archive), f"class data sharing: {files.archive}")
    assert first.attempts == 1 and leftovers(files.directory) == []
    assert "ready after" in files.log.read_text()

    later = sharing(tmp_path, fake_spark)  # another local CDE of the machine user
    assert later.for_run().flags == use_flags(files.archive)
    assert later.attempts == 0 and later.wait(0) and len(fake_spark.calls()) == 2


@needs_java
def test_a_failed_warmup_is_logged_and_retried_once_per_local_cde(
    tmp_path: Path, fake_spark: FakeSpark, caplog: pytest.LogCaptureFixture
) -> None:
    fake_spark.mode("fail")
    cds = sharing(tmp_path, fake_spark)
    with caplog.at_level(logging.WARNING, logger="cde_local.cds"):
        for _ in range(MAX_ATTEMPTS + 2):
            assert cds.for_run().flags == ()
            assert cds.wait(FAKE_WAIT_S)
    assert cds.attempts == MAX_ATTEMPTS
    assert [call.split()[0] for call in fake_spark.calls()] == ["warmup"] * MAX_ATTEMPTS
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == MAX_ATTEMPTS and "the warm-up job exited with code 3" in warnings[0]
    assert f"this local CDE made its {MAX_ATTEMPTS} warm-ups" in cds.for_run().note
    files = cds.files()
    assert files is not None and "warm-up failed" in files.log.read_text()
    assert leftovers(files.directory) == []

    fake_spark.mode("bad")  # an archive the JVM would not map is never published
    again = sharing(tmp_path, fake_spark)
    again.for_run()
    assert again.wait(FAKE_WAIT_S) and again.attempts == 1
    assert "does not load (-Xshare:on check exited with code 1)" in (again.last_failure or "")
    assert not files.archive.exists() and leftovers(files.directory) == []


@needs_java
def test_a_cache_that_cannot_be_written_costs_two_attempts_at_most(tmp_path: Path, fake_spark: FakeSpark) -> None:
    (tmp_path / "cds").write_text("a file where the cache directory should be")
    cds = sharing(tmp_path, fake_spark)
    for _ in range(MAX_ATTEMPTS + 1):
        assert cds.for_run().flags == ()
        assert cds.wait(FAKE_WAIT_S)
    assert cds.attempts == MAX_ATTEMPTS and "local CDE error" in (cds.last_failure or "")
    assert fake_spark.calls() == []


@needs_java
def test_no_two_warmups_at_once_on_the_machine(tmp_path: Path, fake_spark: FakeSpark) -> None:
    cds = sharing(tmp_path, fake_spark)
    directory = tmp_path / "cds"
    directory.mkdir()
    with (directory / LOCK_NAME).open("a+") as other:  # another local CDE's warm-up holds the lock
        fcntl.flock(other, fcntl.LOCK_EX)
        assert cds.for_run().flags == ()
        assert cds.wait(FAKE_WAIT_S)
        assert cds.attempts == 0 and fake_spark.calls() == []
    cds.for_run()  # a later run: the lock is free now
    assert cds.wait(FAKE_WAIT_S) and cds.attempts == 1 and cds.for_run().flags != ()


@needs_java
def test_a_corrupt_archive_is_not_used_and_is_rebuilt(tmp_path: Path, fake_spark: FakeSpark) -> None:
    cds = sharing(tmp_path, fake_spark)
    cds.for_run()
    assert cds.wait(FAKE_WAIT_S)
    files = cds.files()
    assert files is not None and files.valid()
    files.archive.chmod(0o644)
    with files.archive.open("r+b") as handle:
        handle.truncate(3)
    assert cds.for_run().flags == ()
    assert cds.wait(FAKE_WAIT_S) and files.valid() and cds.attempts == 2
    assert cds.for_run().flags == use_flags(files.archive)


@needs_java
def test_stopping_the_local_cde_kills_its_warmup(tmp_path: Path, fake_spark: FakeSpark) -> None:
    fake_spark.mode("hang")
    cds = sharing(tmp_path, fake_spark)
    cds.for_run()
    directory = tmp_path / "cds"
    group = poll(
        lambda: cds.warmup_pid if any(directory.glob("*.tmp")) else None,
        lambda pid: pid is not None,
        FAKE_WAIT_S,
        lambda _: "the warm-up never started",
    )
    assert group is not None and live_processes_in_group(group)
    cds.stop()
    assert live_processes_in_group(group) == []
    assert leftovers(directory) == [] and not any(directory.glob("*.jsa"))
    assert cds.for_run().flags == () and not cds.start_warmup()  # a stopped local CDE starts none


# == real Spark =====================================================================================
JOB = b"""import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
df = spark.range(100)
print("SUM", df.groupBy((df.id % 3).alias("k")).count().count(), flush=True)
spark.stop()
"""
RESOURCE = unique("cds-apps")
NO_METASTORE = {"spark.sql.catalogImplementation": "in-memory"}  # these runs need no metastore service


@pytest.fixture(scope="module")
def cds_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cds-real")


@pytest.fixture(scope="module")
def cde(cds_root: Path, local_wheels: Path) -> Iterator[LocalCde]:
    config = local_cde_config(cds_root / "cde", local_wheels, cds_dir=cds_root / "cds")
    with LocalCde(config) as cde:
        yield cde


@pytest.fixture(scope="module")
def api(cde: LocalCde) -> CdeApi:
    api = CdeApi(cde)
    api.create_resource(RESOURCE, files={"job.py": JOB})
    return api


@pytest.fixture(scope="module")
def archive(cde: LocalCde) -> ArchiveFiles:
    """The real warm-up, started as a local CDE's first run starts it."""
    cds = cde.backend.class_data_sharing
    assert cds.for_run().flags == ()  # what a first run gets: nothing, and the warm-up starts
    assert cds.wait(WARMUP_WAIT_S), "the warm-up did not end"
    files = cds.files()
    assert files is not None
    assert files.valid(), files.log.read_text()[-3000:]
    return files


def run_job(api: CdeApi, conf: dict[str, str]) -> tuple[dict, str]:
    job = unique("cds-job")
    api.create_job({"name": job, "mounts": [{"resourceName": RESOURCE}], "spark": {"file": "job.py", "conf": conf}})
    run = api.wait_run(api.run(job))
    submitter = api.log(run["id"], "submitter/stdout")
    assert run["status"] == "succeeded", submitter + api.log(run["id"], "driver/stdout")
    return run, submitter


def test_the_warmup_made_the_archive_once(
    cde: LocalCde, archive: ArchiveFiles, cds_root: Path, local_wheels: Path
) -> None:
    cds = cde.backend.class_data_sharing
    assert cds.attempts == 1 and leftovers(archive.directory) == []
    assert archive.archive.stat().st_size > 10_000_000  # Spark's classes: ~190 MB
    log = archive.log.read_text()
    assert "-XX:ArchiveClassesAtExit=" in log and "CDS WARM-UP DONE" in log and "ready after" in log
    config = local_cde_config(cds_root / "cde-2", local_wheels, cds_dir=cds_root / "cds")
    with LocalCde(config) as second:  # a second local CDE with the archive there makes none
        other = second.backend.class_data_sharing
        assert other.for_run().flags == use_flags(archive.archive)
        assert other.attempts == 0 and other.warmup_pid is None and other.wait(0)


def test_a_run_maps_the_archive_and_java_stays_quiet_when_it_cannot(
    api: CdeApi, archive: ArchiveFiles, tmp_path: Path
) -> None:
    classes = tmp_path / "classes.log"
    # The job's own options come last: -Xshare:on makes the JVM fail unless the archive maps.
    own = f"-Xshare:on -Xlog:class+load=info:file={classes}"
    run, submitter = run_job(api, {**NO_METASTORE, "spark.driver.extraJavaOptions": own})
    command = submitter.split("command: ", 1)[1].splitlines()[0]
    options = f"-XX:SharedArchiveFile={archive.archive} -Xshare:auto -Xlog:cds*=off {own}"
    assert options in command
    assert f"class data sharing: {archive.archive}" in submitter
    loaded = classes.read_text()
    assert "org.apache.spark.SparkContext source: shared objects file (top)" in loaded
    assert "SUM 3" in api.log(run["id"], "driver/stdout")

    # A driver class path that no longer starts with the archived one (spark.driver.extraClassPath):
    # Java 17 prints a warning to stdout unless -Xlog:cds*=off, and starts without the archive.
    assert JAVA is not None
    spark_jars = spark_home(sys.executable) / "jars" / "*"
    base = [JAVA, "-cp", f"{tmp_path}:{spark_jars}", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    loud = subprocess.run([*base, f"-XX:SharedArchiveFile={archive.archive}", "-version"],
                          capture_output=True, text=True, timeout=120)
    assert "Unable to use shared archive" in loud.stdout
    quiet = subprocess.run([*base, *use_flags(archive.archive), "-version"], capture_output=True, text=True,
                           timeout=120)
    assert quiet.returncode == 0 and quiet.stdout == "" and "cds" not in quiet.stderr


def test_a_truncated_archive_leaves_runs_working_and_is_rebuilt(
    cde: LocalCde, api: CdeApi, archive: ArchiveFiles
) -> None:
    archive.archive.chmod(0o644)
    os.truncate(archive.archive, 1_000_000)  # mapped as it is, it would crash the JVM (SIGBUS)
    run, submitter = run_job(api, NO_METASTORE)
    command = submitter.split("command: ", 1)[1].splitlines()[0]
    assert "SharedArchiveFile" not in command and "class data sharing: no archive yet" in submitter
    assert "SUM 3" in api.log(run["id"], "driver/stdout")
    cds = cde.backend.class_data_sharing
    assert cds.attempts == 2  # that run started the rebuild, the CDE's second warm-up
    # The rebuild discards the bad file, then the warm-up runs: stopping the CDE kills it.
    group = poll(
        lambda: (cds.warmup_pid, archive.archive.exists() and not archive.valid()),
        lambda seen: seen[0] is not None and not seen[1] or archive.valid(),
        WARMUP_WAIT_S,
        lambda seen: f"no rebuild going on: {seen}",
    )[0]
    cde.stop()
    if group is not None:
        assert live_processes_in_group(group) == []
    assert leftovers(archive.directory) == []
    assert archive.valid() or not archive.archive.exists()  # rebuilt, or the rebuild was stopped


@needs_java
def test_the_build_command_makes_the_archive_in_the_foreground_once(tmp_path: Path, fake_spark: FakeSpark) -> None:
    config = LocalCdeConfig(data_dir=tmp_path / "cde", cds_dir=tmp_path / "cds")
    files = build(config, lambda: fake_spark.dir)
    assert files is not None and files.valid() and files.archive.read_text().startswith("GOOD")
    assert [call.split()[0] for call in fake_spark.calls()] == ["warmup", "check"]
    assert build(config, lambda: fake_spark.dir) == files and len(fake_spark.calls()) == 2  # made once
    fake_spark.mode("fail")
    other = LocalCdeConfig(data_dir=tmp_path / "cde", cds_dir=tmp_path / "other-cds")
    assert build(other, lambda: fake_spark.dir) is None
