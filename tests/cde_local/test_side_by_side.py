"""Local CDE: runs side by side on one shared Hive metastore service (cde_local/metastore.py).

Two real Spark runs at once that see each other's tables, the service's stop on close and the
clean-up of one a crashed local CDE left behind; without Spark: a service that cannot start fails
the run with its reason, a job's own metastore settings win, and the default concurrency."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cde_local import LocalCde, LocalCdeConfig
from cde_local.metastore import MetastoreService, service_record
from cde_local.paths import DataPaths
from cde_local.runner import SubmitPlan, plan_submit, spark_home
from tests.fixtures.cde_local import CdeApi, live_processes_in_group

# Writes its table, then waits (while running) until the other run's table appears.
SIDE_BY_SIDE = b"""import sys, time
from pyspark.sql import SparkSession
mine, other = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.getOrCreate()
spark.range(int(sys.argv[3])).write.mode("overwrite").saveAsTable(mine)
print("WROTE", mine, flush=True)
deadline = time.monotonic() + 180
while not spark.catalog.tableExists(other):
    if time.monotonic() > deadline:
        raise SystemExit(f"never saw table {other}")
    time.sleep(0.5)
print("SAW", other, spark.table(other).count(), flush=True)
spark.stop()
"""

COUNTS = b"""import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
for table in sys.argv[1:]:
    print("COUNT", table, spark.table(table).count())
spark.sql("CREATE DATABASE scratch")
spark.range(2).write.saveAsTable("scratch.s")
spark.sql("DROP DATABASE scratch CASCADE")  # the service notifies its transaction handler of a drop
print("DROPPED", not spark.catalog.databaseExists("scratch"))
spark.stop()
"""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def test_two_runs_at_once_share_tables_and_the_service_stops_on_close(local_cde_factory) -> None:
    cde: LocalCde = local_cde_factory(max_concurrent_runs=2)
    api = CdeApi(cde)
    api.create_resource("apps", files={"side.py": SIDE_BY_SIDE, "counts.py": COUNTS})
    for name, app in (("side", "side.py"), ("counts", "counts.py")):
        api.create_job({"name": name, "mounts": [{"resourceName": "apps"}], "spark": {"file": app}})

    run_a = api.run("side", {"overrides": {"spark": {"args": ["t", "u", "3"]}}})
    api.wait_log(run_a, "driver/stdout", "WROTE t")  # A is running, and now waits for u
    run_b = api.run("side", {"overrides": {"spark": {"args": ["u", "t", "5"]}}})
    a, b = api.wait_run(run_a), api.wait_run(run_b)
    for run in (a, b):
        assert run["status"] == "succeeded", api.log(run["id"], "submitter/stdout") + api.log(
            run["id"], "driver/stdout"
        )
    assert "SAW u 5" in api.log(run_a, "driver/stdout")  # A saw B's table while it ran
    assert "SAW t 3" in api.log(run_b, "driver/stdout")
    assert a["started"] < b["ended"] and b["started"] < a["ended"]  # the intervals overlap
    assert "waiting for a free run slot" not in api.log(run_b, "submitter/stdout")

    third = api.wait_run(api.run("counts", {"overrides": {"spark": {"args": ["t", "u"]}}}))
    stdout = api.log(third["id"], "driver/stdout")
    assert third["status"] == "succeeded", stdout
    assert "COUNT t 3" in stdout and "COUNT u 5" in stdout and "DROPPED True" in stdout
    submitter = api.log(run_a, "submitter/stdout")
    assert f"spark.hadoop.hive.metastore.uris={cde.backend.metastore.uri}" in submitter
    assert "derby.system.home" not in submitter

    metastore = cde.config.data_dir / "metastore"
    record = service_record(metastore)
    assert record is not None and record["pid"] == cde.backend.metastore.pid
    assert "service ready on port" in (metastore / "service.log").read_text()
    cde.stop()
    assert live_processes_in_group(record["pid"]) == []
    assert not _accepts(record["port"]) and service_record(metastore) is None


def test_a_service_left_by_a_crash_is_killed_at_the_next_start(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "cde")
    paths.metastore.mkdir(parents=True)
    orphan = MetastoreService(paths.metastore, paths.warehouse, lambda: spark_home(sys.executable))
    bystander = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        assert orphan.ensure_running()  # then never stopped: what a crashed local CDE leaves
        pid = orphan.pid
        assert pid is not None and live_processes_in_group(pid)
        with LocalCde(LocalCdeConfig(data_dir=paths.root, run_mode="manual")):
            assert live_processes_in_group(pid) == []
            assert service_record(paths.metastore) is None
            assert "left by a local CDE that stopped unexpectedly" in (paths.metastore / "service.log").read_text()
        # A record naming a process that is not our service (a reused pid) kills nothing.
        (paths.metastore / "service.json").write_text(json.dumps({"pid": bystander.pid, "port": 1}))
        with LocalCde(LocalCdeConfig(data_dir=paths.root, run_mode="manual")):
            assert bystander.poll() is None and service_record(paths.metastore) is None
    finally:
        orphan.stop()
        bystander.kill()
        bystander.wait()


def test_a_run_fails_with_the_reason_when_the_service_cannot_start(
    local_cde_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    java_home = tmp_path / "broken-java"
    (java_home / "bin").mkdir(parents=True)
    java = java_home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'Error: could not reserve enough space for object heap' >&2\nexit 1\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(java_home))  # the service and spark-submit would both use it
    cde = local_cde_factory()
    api = CdeApi(cde)
    api.create_resource("apps", files={"counts.py": COUNTS})
    api.create_job({"name": "counts", "mounts": [{"resourceName": "apps"}], "spark": {"file": "counts.py"}})
    run = api.wait_run(api.run("counts"), timeout_s=60)
    assert run["status"] == "failed"
    submitter = api.log(run["id"], "submitter/stdout")
    assert "the Hive metastore service did not start: it exited with code 1" in submitter
    assert "could not reserve enough space" in submitter  # the tail of service.log, quoted
    assert "spark-submit started" not in submitter


def test_a_job_with_its_own_metastore_keeps_it_and_needs_no_service(tmp_path: Path) -> None:
    config = LocalCdeConfig(data_dir=tmp_path / "cde", run_mode="manual")

    def plan(conf: dict[str, str]) -> SubmitPlan:
        return plan_submit(
            run_id=1,
            job_name="job",
            spec={"file": "app.py", "conf": conf},
            config=config,
            paths=DataPaths(config.data_dir),
            python="python3",
            spark_dir=Path("/spark"),
            metastore_uri="thrift://127.0.0.1:9083",
        )

    own = plan({"spark.hadoop.hive.metastore.uris": "thrift://metastore.example:9083"})
    assert "spark.hadoop.hive.metastore.uris=thrift://metastore.example:9083" in own.argv
    assert not own.uses_metastore
    jdo = plan({"spark.hadoop.javax.jdo.option.ConnectionURL": "jdbc:derby:;databaseName=/x/db;create=true"})
    assert not any(arg.startswith("spark.hadoop.hive.metastore.uris=") for arg in jdo.argv)
    assert not jdo.uses_metastore
    assert not plan({"spark.sql.catalogImplementation": "in-memory"}).uses_metastore
    assert plan({}).uses_metastore


def test_runs_at_once_default_to_the_cpu_count() -> None:
    config = LocalCdeConfig(run_mode="manual")
    assert config.max_concurrent_runs == max(1, os.cpu_count() or 1)

