"""Local CDE: jobs run on real local Spark (spark-submit), with mounts, a shared metastore,
python-envs, failures, kill and timeout. Spark runs are few: each costs 10-30 s here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cde_local import LocalCde
from tests.fixtures.cde_local import (
    PROBE_VALUE,
    SLEEPER_APP,
    CdeApi,
    live_processes_in_group,
    process_group_of,
    unique,
)

RESOURCE = unique("spark-apps")
ENV = unique("spark-env")
TABLE = unique("sales").replace("-", "_")  # a table name has no '-'

WRITER = b"""import sys
from pyspark.sql import SparkSession
path, table = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.getOrCreate()
df = spark.read.csv(path, header=True, inferSchema=True)
df.write.mode("overwrite").saveAsTable(table)
print(f"WROTE {spark.table(table).count()} rows to {table}")
spark.stop()
"""

READER = b"""import sys
import cde_local_probe
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print("PYTHON", sys.executable)
print("PROBE", cde_local_probe.VALUE)
print("TOTAL", spark.table(sys.argv[1]).agg({"amount": "sum"}).collect()[0][0])
spark.stop()
"""

FAILING = b"""from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
df = spark.createDataFrame([(1, 10.0)], ["account_id", "amount"])
df.select("customer_id").show()
"""

SALES_CSV = b"account_id,amount\n1,10\n2,20\n3,12\n"

ENV_PROBE = b"""import os
print("WORKLOAD_PASSWORD", os.environ.get("WORKLOAD_PASSWORD"))
print("LLM_API_KEY", os.environ.get("LLM_API_KEY"))
print("SPARK_HOME set", "SPARK_HOME" in os.environ)
"""


@pytest.fixture(scope="module")
def api(local_cde: LocalCde) -> CdeApi:
    api = CdeApi(local_cde)
    api.create_resource(
        RESOURCE,
        files={
            "jobs/writer.py": WRITER,
            "jobs/reader.py": READER,
            "jobs/failing.py": FAILING,
            "jobs/sleeper.py": SLEEPER_APP,
            "jobs/env_probe.py": ENV_PROBE,
            "data/sales.csv": SALES_CSV,
        },
    )
    return api


@pytest.fixture(scope="module")
def writer_run(api: CdeApi) -> dict[str, Any]:
    """One real Spark run: reads a mounted CSV named by a CDE path in its args, writes a table."""
    job = unique("writer")
    api.create_job(
        {
            "name": job,
            "mounts": [{"resourceName": RESOURCE, "dirPrefix": "/"}],
            "spark": {"file": "jobs/writer.py", "args": ["/app/mount/data/sales.csv", "{{{table}}}"]},
        }
    )
    run_id = api.run(job, {"variables": {"table": TABLE}})
    return api.wait_run(run_id)


@pytest.fixture(scope="module")
def ready_env(api: CdeApi) -> str:
    api.create_resource(ENV, type="python-env")
    api.upload(ENV, "requirements.txt", b"cde-local-probe==1.0\n")
    assert api.wait_resource(ENV, ("ready", "failed"))["status"] == "ready"
    return ENV


def test_job_reads_mounted_file_via_args_and_succeeds(
    local_cde: LocalCde, api: CdeApi, writer_run: dict[str, Any]
) -> None:
    run_id = writer_run["id"]
    assert writer_run["status"] == "succeeded", api.log(run_id, "submitter/stdout") + api.log(
        run_id, "driver/stdout"
    )
    assert writer_run["ended"] >= writer_run["started"] and writer_run["ended"] != "0001-01-01T00:00:00Z"
    assert writer_run["spark"]["spec"]["args"] == ["/app/mount/data/sales.csv", TABLE]
    assert f"WROTE 3 rows to {TABLE}" in api.log(run_id, "driver/stdout")
    submitter = api.log(run_id, "submitter/stdout")
    assert "spark-submit" in submitter and "exited with code 0" in submitter
    command = submitter.split("command:", 1)[1].splitlines()[0]
    mount_dir = local_cde.config.data_dir / "runs" / str(run_id) / "work" / "app" / "mount"
    assert f" {mount_dir}/data/sales.csv " in command and " /app/mount/" not in command
    assert f"working directory: {mount_dir}" in submitter
    assert "spark.sql.catalogImplementation=hive" in submitter and "spark.log.level=WARN" in submitter


def test_next_job_reads_the_table_with_its_python_env(
    local_cde: LocalCde, api: CdeApi, writer_run: dict[str, Any], ready_env: str
) -> None:
    assert writer_run["status"] == "succeeded"
    job = unique("reader")
    api.create_job(
        {
            "name": job,
            "mounts": [{"resourceName": RESOURCE}],
            "spark": {"file": "jobs/reader.py", "args": [TABLE], "pythonEnvResourceName": ready_env},
        }
    )
    run = api.wait_run(api.run(job))
    stdout = api.log(run["id"], "driver/stdout")
    assert run["status"] == "succeeded", stdout + api.log(run["id"], "submitter/stdout")
    assert "TOTAL 42" in stdout
    assert f"PROBE {PROBE_VALUE}" in stdout
    python = next(line.split(" ", 1)[1] for line in stdout.splitlines() if line.startswith("PYTHON "))
    assert Path(python).is_relative_to(local_cde.config.data_dir / "pyenvs" / ready_env)


def test_failing_job_ends_failed_with_the_spark_error_in_its_driver_log(api: CdeApi) -> None:
    job = unique("failing")
    api.create_job(
        {
            "name": job,
            "mounts": [{"resourceName": RESOURCE}],
            "spark": {"file": "jobs/failing.py"},
        }
    )
    run = api.wait_run(api.run(job))
    assert run["status"] == "failed"
    stdout = api.log(run["id"], "driver/stdout")
    assert "UNRESOLVED_COLUMN" in stdout and "customer_id" in stdout
    assert "exit code" in api.log(run["id"], "submitter/stdout")
    assert "log4j" in api.log(run["id"], "driver/stderr")  # the JVM's log lines ("Using Spark's default log4j profile")


def test_jobs_never_see_the_secrets_of_the_process_hosting_the_local_cde(
    api: CdeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKLOAD_PASSWORD", "host-secret-1")  # the in-process LocalCde's environment
    monkeypatch.setenv("LLM_API_KEY", "host-secret-2")
    job = unique("env-probe")
    api.create_job(
        {
            "name": job,
            "mounts": [{"resourceName": RESOURCE}],
            "spark": {"file": "jobs/env_probe.py"},
        }
    )
    run = api.wait_run(api.run(job))
    stdout = api.log(run["id"], "driver/stdout")
    assert run["status"] == "succeeded", stdout + api.log(run["id"], "submitter/stdout")
    assert "WORKLOAD_PASSWORD None" in stdout and "LLM_API_KEY None" in stdout
    assert "SPARK_HOME set True" in stdout and "host-secret" not in stdout


def test_kill_ends_the_process_tree_and_waiting_runs_stay_starting(
    local_cde: LocalCde, api: CdeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_cde.config, "max_concurrent_runs", 1)  # one slot: the second run waits
    job = unique("sleeper")
    api.create_job(
        {
            "name": job,
            "mounts": [{"resourceName": RESOURCE}],
            "spark": {"file": "jobs/sleeper.py", "args": ["300"]},
        }
    )
    first = api.run(job)
    api.wait_log(first, "driver/stdout", "SLEEPING")  # the Python driver runs under the JVM
    assert api.describe_run(first)["status"] == "running"
    group = process_group_of(api.log(first, "submitter/stdout"))
    assert len(live_processes_in_group(group)) >= 2  # spark-submit's JVM and the Python driver

    second = api.run(job)  # the one slot is taken: waits
    assert api.describe_run(second)["status"] == "starting"
    assert "waiting for a free run slot" in api.log(second, "submitter/stdout")
    assert api.post(f"/job-runs/{second}/kill").status_code == 204
    assert api.describe_run(second)["status"] == "killed"

    assert api.post(f"/job-runs/{first}/kill").status_code == 204
    run = api.wait_run(first, timeout_s=30)
    assert run["status"] == "killed"
    assert live_processes_in_group(group) == []
    assert "killed" in api.log(first, "submitter/stdout")
    assert "WOKE UP" not in api.log(first, "driver/stdout")


def test_timeout_kills_and_fails_the_run(local_cde_factory) -> None:
    cde = local_cde_factory(run_timeout_s=3, kill_grace_s=2)
    api = CdeApi(cde)
    api.create_resource("apps", files={"sleeper.py": SLEEPER_APP})
    api.create_job(
        {
            "name": "sleepy",
            "mounts": [{"resourceName": "apps"}],
            "spark": {"file": "sleeper.py", "args": ["300"]},
        }
    )
    run = api.wait_run(api.run("sleepy"), timeout_s=120)
    assert run["status"] == "failed"
    submitter = api.log(run["id"], "submitter/stdout")
    assert "timed out after 3 s" in submitter and "exceeded the timeout" in submitter
    assert live_processes_in_group(process_group_of(submitter)) == []


def test_missing_java_fails_the_run_with_a_clear_message(
    local_cde_factory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cde = local_cde_factory()
    api = CdeApi(cde)
    api.create_resource("apps", files={"sleeper.py": SLEEPER_APP})
    api.create_job(
        {
            "name": "nojava",
            "mounts": [{"resourceName": "apps"}],
            "spark": {"file": "sleeper.py", "args": ["1"]},
        }
    )
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no java anywhere
    run = api.wait_run(api.run("nojava"), timeout_s=60)
    assert run["status"] == "failed"
    assert "java not found" in api.log(run["id"], "submitter/stdout")
