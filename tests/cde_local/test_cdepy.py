"""Local CDE driven by a real CDE client: cdepy 0.1.20 (cde-api.md §4.1)."""

from __future__ import annotations

import json
from pathlib import Path

from cdepy import cdeconnection, cdejob, cdemanager, cderesource

from cde_local import LocalCde
from tests.fixtures.cde_local import PASSWORD, USER, CdeApi, unique

HELLO = b"""import sys
print("hello from cdepy", *sys.argv[1:])
"""


def test_cdepy_creates_uploads_runs_lists_and_reads_logs(local_cde: LocalCde, tmp_path: Path) -> None:
    api = CdeApi(local_cde)
    resource, job = unique("cdepy-res"), unique("cdepy-job")
    # cdepy derives a broken token URL from 127.0.0.1, so hand it a token (cde-api.md §4.1).
    connection = cdeconnection.CdeConnection(local_cde.jobs_api_url, USER, PASSWORD, TOKEN=api.token)
    manager = cdemanager.CdeClusterManager(connection)

    assert manager.listVcMeta()["appName"] == "local-cde"
    manager.createResource(cderesource.CdeFilesResource(resource).createResourceDefinition())
    (tmp_path / "hello.py").write_bytes(HELLO)
    manager.uploadFileToResource(resource, str(tmp_path), "hello.py")
    described_resource = json.loads(manager.describeResource(resource))
    assert [f["path"] for f in described_resource["files"]] == ["hello.py"]
    assert manager.downloadFileFromResource(resource, "hello.py") == HELLO.decode()

    definition = cdejob.CdeSparkJob(connection).createJobDefinition(
        job, resource, "hello.py", executorMemory="1g", executorCores=1, args=["arg-one"]
    )
    manager.createJob(definition)
    described_job = json.loads(manager.describeJob(job))
    assert described_job["spark"]["file"] == "hello.py"
    assert described_job["spark"]["logLevel"] == "INFO"
    assert described_job["mounts"] == [{"resourceName": resource}]

    manager.runJob(job, SPARK_OVERRIDES={"spark": {"args": ["arg-two"]}})
    runs = [run for run in json.loads(manager.listJobRuns())["runs"] if run["job"] == job]
    assert len(runs) == 1
    run = api.wait_run(runs[0]["id"])
    assert run["status"] == "succeeded", api.log(run["id"], "submitter/stdout")
    spark_runs = json.loads(manager.listJobRuns(jobType="spark"))["runs"]
    assert any(r["id"] == run["id"] for r in spark_runs)

    assert "driver/stdout" in json.loads(manager.showAvailableLogTypes(str(run["id"])))
    assert "hello from cdepy arg-two" in manager.downloadJobRunLogs(str(run["id"]), "driver/stdout")
    assert job in [j["name"] for j in json.loads(manager.listJobs())["jobs"]]

    manager.deleteJob(job)
    manager.deleteResource(resource)
    assert api.get(f"/jobs/{job}").status_code == 404
    assert api.get(f"/resources/{resource}").status_code == 404
