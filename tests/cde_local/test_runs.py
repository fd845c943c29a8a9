"""Local CDE: run endpoints, filters, logs, kill and the hand-driven lifecycle (manual mode, no Spark)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cde_local import LocalCde
from cde_local.errors import BadRequest
from tests.fixtures.cde_local import USER, CdeApi, cde_error, unique


@pytest.fixture
def job(api: CdeApi) -> str:
    name = unique("runjob")
    resource = unique("runres")
    api.create_resource(resource, files={"app.py": b"print('x')\n"})
    api.create_job(
        {
            "name": name,
            "mounts": [{"resourceName": resource}],
            "defaultVariables": {"env": "dev", "day": "2020-01-01"},
            "spark": {
                "file": "app.py",
                "name": "app-{{{env}}}",
                "args": ["--day", "{{{day}}}", "{{{unknown}}}"],
                "conf": {"spark.myapp.env": "{{{env}}}"},
                "executorMemory": "1g",
            },
        }
    )
    return name


def test_run_applies_overrides_and_variables_to_the_spec(api: CdeApi, job: str) -> None:
    reply = api.post(
        f"/jobs/{job}/run",
        json={
            "variables": {"day": "2024-05-06"},
            "overrides": {"spark": {"executorMemory": "4g", "conf": {"spark.extra": "1"}}},
            "user": "someone-else",
            "hidden": False,
            "unknown": "ignored",
        },
    )
    assert reply.status_code == 201
    run_id = reply.json()["id"]
    assert set(reply.json()) == {"id"}
    assert [r["id"] for r in api.get("/job-runs", params={"filter": f"job[eq]{job}"}).json()["runs"]] == [run_id]
    run = api.describe_run(run_id)
    assert run["id"] == run_id and run["job"] == job and run["type"] == "spark"
    assert run["status"] == "starting" and run["user"] == "someone-else"
    assert run["ended"] == "0001-01-01T00:00:00Z"
    spec = run["spark"]["spec"]
    assert spec["executorMemory"] == "4g" and spec["file"] == "app.py"
    assert spec["name"] == "app-dev"
    assert spec["args"] == ["--day", "2024-05-06", "{{{unknown}}}"]
    assert spec["conf"] == {"spark.myapp.env": "dev", "spark.extra": "1"}
    assert run["spark"]["sparkAppID"].startswith("spark-")
    assert run["mounts"] == api.get(f"/jobs/{job}").json()["mounts"]
    # The job itself is unchanged by the overrides.
    assert api.get(f"/jobs/{job}").json()["spark"]["executorMemory"] == "1g"


def test_empty_or_missing_body_runs_and_bad_bodies_do_not(api: CdeApi, job: str) -> None:
    assert api.post(f"/jobs/{job}/run").status_code == 201
    assert (
        api.post(f"/jobs/{job}/run", data=b"{}", headers={"Content-Type": "application/json"}).status_code
        == 201
    )
    cde_error(api.post(f"/jobs/{job}/run", json={"variables": {"a": 1}}), 400)
    cde_error(api.post(f"/jobs/{job}/run", json={"overrides": {"spark": {"args": "not-a-list"}}}), 400)
    cde_error(api.post(f"/jobs/{job}/run", data=b"{oops", headers={"Content-Type": "application/json"}), 400)


def test_request_id_makes_run_requests_idempotent(api: CdeApi, job: str) -> None:
    request_id = unique("dag#run#task#1")
    first = api.post(f"/jobs/{job}/run", json={"requestID": request_id})
    assert first.status_code == 201
    again = api.post(f"/jobs/{job}/run", json={"requestID": request_id, "variables": {"x": "y"}})
    assert again.status_code == 409
    assert again.json() == {"id": first.json()["id"]}
    other = api.post(f"/jobs/{job}/run", json={"requestID": request_id + "-2"})
    assert other.status_code == 201 and other.json()["id"] > first.json()["id"]


def test_runs_need_existing_mounts(api: CdeApi) -> None:
    resource, name = unique("gone"), unique("orphanjob")
    api.create_resource(resource)
    api.create_job({"name": name, "mounts": [{"resourceName": resource}], "spark": {"file": "a.py"}})
    assert api.delete(f"/resources/{resource}").status_code == 204
    message = cde_error(api.post(f"/jobs/{name}/run", json={}), 404)
    assert resource in message and "not found" in message


def test_logs_and_log_types(local_cde_manual: LocalCde, api: CdeApi, job: str) -> None:
    run_id = api.run(job)
    types = api.get(f"/job-runs/{run_id}/log-types")
    assert types.status_code == 200
    assert types.json() == ["driver/stdout", "driver/stderr", "submitter/stdout"]
    local_cde_manual.backend.write_run_log(run_id, "driver/stdout", "line one\nAnalysisException: boom\n")
    raw = api.get(f"/job-runs/{run_id}/logs?type=driver/stdout", headers={"accept": "application/json"})
    encoded = api.get(f"/job-runs/{run_id}/logs?type=driver%2Fstdout&follow=true")
    for reply in (raw, encoded):
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain")
        assert reply.text == "line one\nAnalysisException: boom\n"
    assert f"job run {run_id} of job '{job}'" in api.log(run_id, "submitter/stdout")
    assert "log type" in cde_error(api.get(f"/job-runs/{run_id}/logs", params={"type": "executor_9/stdout"}), 404)
    cde_error(api.get(f"/job-runs/{run_id}/logs"), 400)
    cde_error(api.get("/job-runs/999999/logs", params={"type": "driver/stdout"}), 404)
    cde_error(api.get("/job-runs/999999/log-types"), 404)
    cde_error(api.get("/job-runs/not-a-number"), 400)
    assert cde_error(api.get("/job-runs/999999"), 404) == "could not get job run from storage: job run not found"


def test_kill_ends_a_run_once(api: CdeApi, job: str) -> None:
    run_id = api.run(job)
    reply = api.post(f"/job-runs/{run_id}/kill")
    assert reply.status_code == 204 and reply.content == b""
    run = api.describe_run(run_id)
    assert run["status"] == "killed" and run["ended"] != "0001-01-01T00:00:00Z"
    assert "killed" in cde_error(api.post(f"/job-runs/{run_id}/kill", json={}), 400)
    cde_error(api.post("/job-runs/999999/kill"), 404)


def test_hand_driven_lifecycle(local_cde_manual: LocalCde, api: CdeApi, job: str) -> None:
    backend = local_cde_manual.backend
    run_id = api.run(job)
    backend.set_run_status(run_id, "running")
    assert api.describe_run(run_id)["status"] == "running"
    backend.set_run_status(run_id, "failed", note="driver exited with code 1")
    run = api.describe_run(run_id)
    assert run["status"] == "failed" and run["ended"] >= run["started"]
    assert "driver exited with code 1" in api.log(run_id, "submitter/stdout")
    with pytest.raises(BadRequest):
        backend.set_run_status(run_id, "running")
    with pytest.raises(BadRequest):
        backend.set_run_status(run_id, "exploded")


def test_run_list_filters_every_operator(local_cde_manual: LocalCde, api: CdeApi) -> None:
    backend = local_cde_manual.backend
    tag = unique("flt")
    jobs = [f"{tag}-a", f"{tag}-b"]
    for name in jobs:
        api.create_job({"name": name, "spark": {"file": "a.py"}})
    ids = [api.run(jobs[0]), api.run(jobs[0]), api.run(jobs[1]), api.run(jobs[1], {"user": "other"})]
    backend.set_run_status(ids[0], "succeeded")
    backend.set_run_status(ids[1], "failed")
    backend.set_run_status(ids[2], "running")  # ids[3] stays starting
    mine = f"job[like]{tag}-%"

    def found(*filters: str, **params: object) -> list[int]:
        reply = api.get("/job-runs", params={"filter": [mine, *filters], "limit": 100, **params})
        assert reply.status_code == 200, reply.text
        return [run["id"] for run in reply.json()["runs"]]

    assert found() == ids
    assert found(f"job[eq]{jobs[0]}") == ids[:2]
    assert found(f"job[noteq]{jobs[0]}") == ids[2:]
    assert found("status[in]failed,running") == [ids[1], ids[2]]
    assert found("status[notin]failed,running") == [ids[0], ids[3]]
    assert found(f"id[lt]{ids[1]}") == [ids[0]]
    assert found(f"id[lte]{ids[1]}") == ids[:2]
    assert found(f"id[gt]{ids[2]}") == [ids[3]]
    assert found(f"id[gte]{ids[2]}") == ids[2:]
    assert found("job[rlike]-b$") == ids[2:]
    assert found("user[eq]other") == [ids[3]]
    assert found(f"user[eq]{USER}", "type[eq]spark") == ids[:3]
    assert found(f"job[eq]{jobs[1]} AND status[eq]starting") == [ids[3]]
    assert found("spark.spec.file[eq]a.py") == ids
    # Dates: prefixes of the RFC 3339 timestamps, compared in UTC.
    today = datetime.now(timezone.utc)
    tomorrow = (today + timedelta(days=1)).strftime("%Y-%m-%d")
    yesterday = (today - timedelta(days=1)).strftime("%Y-%m-%d")
    started_day = api.describe_run(ids[0])["started"][:10]
    assert found(f"started[eq]{started_day}") == ids
    assert found(f"started[gte]{yesterday}") == ids
    assert found(f"started[gte]{tomorrow}") == []
    assert found(f"started[lt]{started_day}") == []
    assert found(f"started[lte]{started_day}") == ids
    assert found(f"ended[gt]{yesterday}") == ids[:2]  # the others show the zero time
    # Ordering and pages.
    assert found(orderby="ID", orderasc="false") == ids[::-1]
    assert found(orderby="job", orderasc="false") == [ids[2], ids[3], ids[0], ids[1]]  # ties keep id order
    page = api.get("/job-runs", params={"filter": mine, "limit": 3, "offset": 0, "orderby": "ID"}).json()
    assert [r["id"] for r in page["runs"]] == ids[:3]
    assert page["meta"] == {"hasNext": True, "limit": 3, "offset": 0, "count": 3}
    last = api.get("/job-runs", params={"filter": mine, "limit": 3, "offset": 3}).json()
    assert [r["id"] for r in last["runs"]] == ids[3:]
    assert last["meta"] == {"hasNext": False, "limit": 3, "offset": 3, "count": 1}
    cde_error(api.get("/job-runs", params={"filter": "id[lt]abc"}), 400)
    cde_error(api.get("/job-runs", params={"filter": "job[rlike]("}), 400)


def test_cdepy_style_query_strings(api: CdeApi) -> None:
    reply = api.get(
        "/job-runs?filter=type%5Beq%5Dspark&limit=100&offset=0&orderby=ID&orderasc=false",
        headers={"accept": "application/json"},
    )
    assert reply.status_code == 200
    ids = [run["id"] for run in reply.json()["runs"]]
    assert ids == sorted(ids, reverse=True)
    jobs = api.get("/jobs?latestjob=false&limit=100&offset=0&orderby=name&orderasc=true")
    names = [j["name"] for j in jobs.json()["jobs"]]
    assert jobs.status_code == 200 and names == sorted(names)
