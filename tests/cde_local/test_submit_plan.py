"""Local CDE: the spark-submit command line built from a job's effective spec (no process started)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cde_local import LocalCdeConfig
from cde_local.paths import DataPaths
from cde_local.runner import PASSED_ENV, plan_submit

METASTORE_URI = "thrift://127.0.0.1:9083"


def test_spec_fields_become_spark_submit_options_with_local_paths(tmp_path: Path) -> None:
    config = LocalCdeConfig(data_dir=tmp_path / "cde", run_mode="manual")
    paths = DataPaths(config.data_dir)
    spec = {
        "file": "/app/mount/jobs/main.py",
        "name": "my-app",
        "args": ["--input", "/app/mount/data/in.csv", "--plain", "text", "/app/mount"],
        "conf": {"spark.myapp.dir": "/app/mount/conf/", "spark.driver.extraJavaOptions": "-Dx=1"},
        "pyFiles": ["libs/helpers.py", "local:/app/mount/libs/more.zip"],
        "files": ["/app/mount/lookup.json"],
        "jars": ["s3a://bucket/lib.jar"],
        "className": "com.example.Main",
        "driverMemory": "2g",
        "driverCores": 2,
        "executorMemory": "3g",
        "executorCores": 3,
        "numExecutors": 4,
        "logLevel": "INFO",
    }
    plan = plan_submit(
        run_id=7,
        job_name="job",
        spec=spec,
        config=config,
        paths=paths,
        python="/envs/x/bin/python",
        spark_dir=Path("/spark"),
        metastore_uri=METASTORE_URI,
    )
    mount = config.data_dir / "runs" / "7" / "work" / "app" / "mount"
    argv = plan.argv
    assert argv[0] == "/spark/bin/spark-submit"

    def option(name: str) -> str:
        return argv[argv.index(name) + 1]

    confs = dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "--conf")
    assert option("--master") == "local[2]" and option("--name") == "my-app"
    assert option("--driver-memory") == "2g" and option("--class") == "com.example.Main"
    assert option("--py-files") == f"{mount}/libs/helpers.py,{mount}/libs/more.zip"
    assert option("--files") == f"{mount}/lookup.json"
    assert option("--jars") == "s3a://bucket/lib.jar"
    assert confs["spark.log.level"] == "INFO"
    assert confs["spark.sql.catalogImplementation"] == "hive"
    assert confs["spark.sql.warehouse.dir"] == str(config.data_dir / "warehouse")
    assert confs["spark.hadoop.hive.metastore.uris"] == METASTORE_URI and plan.uses_metastore
    assert confs["spark.driver.extraJavaOptions"] == f"{' '.join(config.driver_jvm_flags)} -Dx=1"
    assert option("--deploy-mode") == "client"
    assert confs["spark.myapp.dir"] == f"{mount}/conf/"
    assert confs["spark.executor.memory"] == "3g" and confs["spark.executor.cores"] == "3"
    assert confs["spark.executor.instances"] == "4" and confs["spark.driver.cores"] == "2"
    tail = argv[argv.index(f"{mount}/jobs/main.py") :]
    assert tail == [f"{mount}/jobs/main.py", "--input", f"{mount}/data/in.csv", "--plain", "text", str(mount)]
    assert plan.cwd == mount
    assert plan.env["PYSPARK_PYTHON"] == plan.env["PYSPARK_DRIVER_PYTHON"] == "/envs/x/bin/python"
    assert plan.env["SPARK_HOME"] == "/spark" and plan.env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert plan.env["PATH"].startswith(str(Path(config.python_executable).parent))


def test_defaults_keep_spark_quiet_and_relative_files_in_the_mount(tmp_path: Path) -> None:
    config = LocalCdeConfig(data_dir=tmp_path / "cde", run_mode="manual")
    plan = plan_submit(
        run_id=1,
        job_name="job-name",
        spec={"file": "app.py"},
        config=config,
        paths=DataPaths(config.data_dir),
        python="python3",
        spark_dir=Path("/spark"),
        metastore_uri=METASTORE_URI,
    )
    mount = config.data_dir / "runs" / "1" / "work" / "app" / "mount"
    assert plan.argv[-1] == f"{mount}/app.py"
    assert "spark.log.level=WARN" in plan.argv and "spark.ui.enabled=false" in plan.argv
    assert plan.argv[plan.argv.index("--name") + 1] == "job-name"
    assert plan.argv[plan.argv.index("--driver-memory") + 1] == "1g"


def test_jobs_get_only_allowlisted_variables_of_the_parent_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):  # the allowlisted variables are exactly what this test sets (the
        if name in PASSED_ENV or name.startswith("LC_"):  # rest stays: other threads may start processes)
            monkeypatch.delenv(name)
    secrets = {
        "WORKLOAD_PASSWORD": "workload-secret",
        "LLM_CDP_TOKEN": "cdp-token",
        "LLM_API_KEY": "llm-key",
        "CDE_TOKEN": "cde-token",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "PYSPARK_GATEWAY_SECRET": "py4j-secret",  # would also hand the job the host's gateway
        "PYSPARK_SUBMIT_ARGS": "--master yarn",
        "PYTHONPATH": "/somewhere/else",  # pyspark comes from the interpreter, not from here
        "SOME_TOOL_SETTING": "x",  # not a secret, but not on the allowlist either
    }
    kept = {"JAVA_HOME": "/opt/java-17", "HOME": "/home/me", "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    for name, value in {**secrets, **kept, "PATH": "/usr/local/bin:/usr/bin"}.items():
        monkeypatch.setenv(name, value)
    config = LocalCdeConfig(data_dir=tmp_path / "cde", run_mode="manual")
    plan = plan_submit(
        run_id=3,
        job_name="job",
        spec={"file": "app.py"},
        config=config,
        paths=DataPaths(config.data_dir),
        python="/envs/x/bin/python",
        spark_dir=Path("/spark"),
        metastore_uri=METASTORE_URI,
    )
    assert plan.env == {
        **kept,
        "PATH": f"{Path(config.python_executable).parent}:/usr/local/bin:/usr/bin",  # the interpreter's first
        "SPARK_HOME": "/spark",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": "/envs/x/bin/python",
        "PYSPARK_DRIVER_PYTHON": "/envs/x/bin/python",
        "PYTHONUNBUFFERED": "1",
    }
