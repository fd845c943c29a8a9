"""Local CDE in front of a Spark standalone cluster (`spark_master="spark://..."`).

A one-master, one-worker cluster on the loopback, started from pyspark's own classes, runs one job
through the local CDE: the driver stays here (client mode, logs and metastore local), the executor
runs on the worker, the table goes through the shared metastore service. Plus the validation of
`--spark-master`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from cde_local import LocalCde
from cde_local.__main__ import parse_args
from cde_local.metastore import free_port
from cde_local.runner import parent_environment, spark_home, terminate_group
from tests.fixtures.cde_local import CdeApi, poll

CLUSTER_START_S = 120.0  # master and worker JVMs: 5-10 s each on a quiet machine
STOP_GRACE_S = 10.0

APP = b"""import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
sc = spark.sparkContext
print("MASTER", sc.master)
print("APP", sc.applicationId)
spark.range(7).write.mode("overwrite").saveAsTable(sys.argv[1])
print("COUNT", spark.table(sys.argv[1]).count())
spark.stop()
"""


@dataclass
class Cluster:
    master_url: str
    work_dir: Path  # the worker's: one directory per application that got an executor here
    logs: Path


@pytest.fixture
def standalone_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A Spark standalone master and one worker (1 core, 1g) on 127.0.0.1; both process groups are
    ended afterwards."""
    spark_dir = spark_home(sys.executable)
    env = {
        **parent_environment(),
        "SPARK_HOME": str(spark_dir),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_DAEMON_JAVA_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    }
    port, web_port, worker_web_port = free_port(), free_port(), free_port()
    cluster = Cluster(f"spark://127.0.0.1:{port}", tmp_path / "worker-work", tmp_path / "cluster-logs")
    cluster.logs.mkdir()
    spark_class = str(spark_dir / "bin" / "spark-class")
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> None:
        with (cluster.logs / f"{name}.log").open("wb") as log:
            started.append(
                subprocess.Popen(
                    [spark_class, *args], env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            )

    def logs() -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in cluster.logs.iterdir())

    def alive_workers() -> int:
        try:
            state = requests.get(f"http://127.0.0.1:{web_port}/json/", timeout=5).json()
        except (requests.RequestException, ValueError):
            return 0
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")

    try:
        start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
              "--webui-port", str(web_port))
        start("worker", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
              "--memory", "1g", "--webui-port", str(worker_web_port), "--work-dir", str(cluster.work_dir),
              cluster.master_url)
        poll(alive_workers, lambda n: n >= 1, CLUSTER_START_S, lambda n: f"no worker registered:\n{logs()}")
        yield cluster
    finally:
        for process in reversed(started):
            terminate_group(process.pid, STOP_GRACE_S)
            process.wait(timeout=STOP_GRACE_S)


def test_a_job_runs_on_the_standalone_cluster_with_the_shared_metastore(
    local_cde_factory, standalone_cluster: Cluster
) -> None:
    cde: LocalCde = local_cde_factory(spark_master=standalone_cluster.master_url)
    api = CdeApi(cde)
    api.create_resource("apps", files={"app.py": APP})
    api.create_job({"name": "on-cluster", "mounts": [{"resourceName": "apps"}],
                    "spark": {"file": "app.py", "args": ["cluster_table"]}})
    run = api.wait_run(api.run("on-cluster"))
    stdout = api.log(run["id"], "driver/stdout")
    assert run["status"] == "succeeded", api.log(run["id"], "submitter/stdout") + stdout
    assert f"MASTER {standalone_cluster.master_url}" in stdout and "COUNT 7" in stdout
    app_id = next(line.split()[1] for line in stdout.splitlines() if line.startswith("APP "))
    executor_dirs = list((standalone_cluster.work_dir / app_id).iterdir())
    assert executor_dirs, f"the worker ran no executor of {app_id}"  # the worker launched it
    assert (cde.config.data_dir / "warehouse" / "cluster_table").is_dir()  # the executor wrote here
    command = api.log(run["id"], "submitter/stdout")
    assert f"--master {standalone_cluster.master_url} --deploy-mode client" in command
    assert f"spark.hadoop.hive.metastore.uris={cde.backend.metastore.uri}" in command


def test_spark_master_option_takes_cluster_urls_and_refuses_others(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args([]).spark_master == "local[2]"
    for master in ("spark://10.0.0.5:7077", "k8s://https://kube.example:6443", "yarn", "local[*]"):
        assert parse_args(["--spark-master", master]).spark_master == master
    with pytest.raises(SystemExit):
        parse_args(["--spark-master", "mesos://x:5050"])
    assert "spark_master must be one of" in capsys.readouterr().err
