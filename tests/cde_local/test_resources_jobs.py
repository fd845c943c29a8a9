"""Local CDE: /info, resources and jobs endpoints over HTTP (manual run mode, no Spark)."""

from __future__ import annotations

import importlib.metadata
import re

from cde_local import LocalCde
from tests.fixtures.cde_local import USER, CdeApi, cde_error, unique

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_info_names_the_virtual_cluster(local_cde_manual: LocalCde, api: CdeApi) -> None:
    reply = api.get("/info")
    assert reply.status_code == 200
    info, config = reply.json(), local_cde_manual.config
    assert info["appName"] == config.vc_name == "local-cde"  # the default name
    assert (info["runMode"], info["sparkMaster"]) == ("manual", config.spark_master)
    assert info["sparkVersion"] == importlib.metadata.version("pyspark")


# -- resources -----------------------------------------------------------------------------------
def test_files_resource_lifecycle(api: CdeApi) -> None:
    name = unique("res")
    created = api.post("/resources", json={"name": name, "type": "files", "retention-policy": "ignored"})
    assert created.status_code == 201 and created.content == b""
    cde_error(api.post("/resources", json={"name": name}), 409)

    described = api.get(f"/resources/{name}").json()
    assert described["name"] == name and described["type"] == "files" and described["status"] == "ready"
    assert described["retentionPolicy"] == "keep_indefinitely"
    for field in ("created", "modified", "lastUsed"):
        assert TIMESTAMP.match(described[field])
    assert "files" not in described
    empty_signature = described["signature"]

    upload = api.put(f"/resources/{name}/code/nested/app.py", files={"file": ("filename", b"print('hi')\n")})
    assert upload.status_code == 201 and upload.content == b""
    api.upload(name, "data.csv", b"a,b\n1,2\n")
    with_files = api.get(f"/resources/{name}", params={"includeFiles": "true"}).json()
    assert with_files["signature"] != empty_signature
    files = {f["path"]: f for f in with_files["files"]}
    assert set(files) == {"code/nested/app.py", "data.csv"}
    assert files["data.csv"]["sizeBytes"] == 8
    assert set(files["data.csv"]) == {"path", "signature", "sizeBytes", "created", "modified"}

    download = api.get(
        f"/resources/{name}/code/nested/app.py", headers={"accept": "application/octet-stream"}
    )
    assert download.status_code == 200 and download.content == b"print('hi')\n"
    # Re-uploading replaces the content.
    api.upload(name, "data.csv", b"x\n")
    assert api.get(f"/resources/{name}/data.csv").content == b"x\n"

    assert api.delete(f"/resources/{name}/data.csv").status_code == 204
    cde_error(api.get(f"/resources/{name}/data.csv"), 404)
    cde_error(api.delete(f"/resources/{name}/data.csv"), 404)
    remaining = api.get(f"/resources/{name}?includeFiles=true").json()["files"]
    assert [f["path"] for f in remaining] == ["code/nested/app.py"]

    assert api.delete(f"/resources/{name}").status_code == 204
    cde_error(api.get(f"/resources/{name}"), 404)
    cde_error(api.delete(f"/resources/{name}"), 404)


def test_resource_errors(api: CdeApi) -> None:
    assert "name" in cde_error(api.post("/resources", json={"type": "files"}), 400)
    cde_error(api.post("/resources", json={"name": "bad/name"}), 400)
    cde_error(api.post("/resources", json={"name": unique("r"), "type": "floppy"}), 400)
    cde_error(api.post("/resources", data="{not json", headers={"Content-Type": "application/json"}), 400)
    cde_error(api.post("/resources", json=["a list"]), 400)
    cde_error(api.get("/resources/missing-resource"), 404)
    cde_error(api.put("/resources/missing-resource/a.py", files={"file": ("f", b"x")}), 404)
    name = unique("res")
    api.create_resource(name)
    cde_error(api.put(f"/resources/{name}/a/%2E%2E/%2E%2E/escape.py", files={"file": ("f", b"x")}), 400)
    cde_error(api.put(f"/resources/{name}/a.py", files={"other": ("f", b"x")}), 400)
    cde_error(api.put(f"/resources/{name}/a.py", data=b"raw bytes"), 400)
    api.upload(name, "dir/a.py", b"x")
    cde_error(api.put(f"/resources/{name}/dir", files={"file": ("f", b"x")}), 400)  # a directory already


def test_resource_list_envelope_filters_and_pages(api: CdeApi) -> None:
    tag = unique("list")
    names = [f"{tag}-{i}" for i in range(3)]
    for name in names:
        api.create_resource(name)
    api.create_resource(f"{tag}-env", type="python-env")
    reply = api.get("/resources", params={"filter": [f"name[like]{tag}-%", "type[eq]files"], "limit": 2})
    assert reply.status_code == 200
    body = reply.json()
    assert [r["name"] for r in body["resources"]] == names[:2]
    assert body["meta"] == {"hasNext": True, "limit": 2, "offset": 0, "count": 2}
    second = api.get(
        "/resources",
        params={
            "filter": f"name[like]{tag}-%",
            "limit": 2,
            "offset": 2,
            "orderby": "name",
            "orderasc": "false",
        },
    ).json()
    assert [r["name"] for r in second["resources"]] == [names[1], names[0]]
    assert second["meta"] == {"hasNext": False, "limit": 2, "offset": 2, "count": 2}
    with_files = api.get(
        "/resources", params={"filter": f"name[eq]{names[0]}", "includeFiles": "true"}
    ).json()
    assert with_files["resources"][0]["files"] == []


def test_python_env_resource_shape(api: CdeApi) -> None:
    name = unique("env")
    api.create_resource(name, type="python-env", pythonEnv={"pythonVersion": "python3"})
    described = api.get(f"/resources/{name}").json()
    assert described["status"] == "pending-build"
    assert described["pythonEnv"] == {"pythonVersion": "python3", "type": "python-env"}
    message = cde_error(api.put(f"/resources/{name}/setup.py", files={"file": ("f", b"x")}), 400)
    assert "requirements.txt" in message


# -- jobs ----------------------------------------------------------------------------------------
def test_job_create_defaults_and_describe(api: CdeApi) -> None:
    resource, job = unique("res"), unique("job")
    api.create_resource(resource, files={"app.py": b"print(1)\n"})
    reply = api.post(
        "/jobs",
        json={
            "name": job,
            "type": "spark",
            "mounts": [{"resourceName": resource, "dirPrefix": "code/"}],
            "spark": {"file": "/app/mount/code/app.py", "args": ["a"], "conf": {"spark.x": "1"}},
            "fileMounts": [{"unknown": "field"}],
            "unknownTopLevel": True,
        },
    )
    assert reply.status_code == 201 and reply.content == b""
    cde_error(api.post("/jobs", json={"name": job, "spark": {"file": "x.py"}}), 409)
    body = api.get(f"/jobs/{job}").json()
    assert body["name"] == job and body["type"] == "spark"
    assert body["retentionPolicy"] == "keep_indefinitely"
    assert body["schedule"] == {"enabled": False, "user": USER}
    assert body["spark"] == {
        "file": "/app/mount/code/app.py",
        "args": ["a"],
        "conf": {"spark.x": "1"},
        "driverMemory": "1g",
        "driverCores": 1,
        "executorMemory": "1g",
        "executorCores": 1,
    }
    assert body["mounts"] == [{"resourceName": resource, "dirPrefix": "code/"}]
    assert "unknownTopLevel" not in body and "fileMounts" not in body
    for field in ("created", "modified", "lastUsed"):
        assert TIMESTAMP.match(body[field])


def test_job_errors(api: CdeApi) -> None:
    assert "name" in cde_error(api.post("/jobs", json={"spark": {"file": "a.py"}}), 400)
    cde_error(api.post("/jobs", json={"name": unique("job")}), 400)  # a spark job needs spark.file
    cde_error(api.post("/jobs", json={"name": unique("job"), "spark": {"file": "a.py", "conf": {"k": 1}}}), 400)
    cde_error(api.post("/jobs", json={"name": unique("job"), "spark": {"file": "a.py", "driverCores": "2"}}), 400)
    cde_error(api.post("/jobs", json={"name": unique("job"), "type": "pig", "spark": {"file": "a.py"}}), 400)
    cde_error(api.post("/jobs", data=b"", headers={"Content-Type": "application/json"}), 400)
    cde_error(api.post("/jobs", data=b"[]", headers={"Content-Type": "application/json"}), 400)
    missing = api.post(
        "/jobs",
        json={"name": unique("job"), "mounts": [{"resourceName": "nope-x"}], "spark": {"file": "a.py"}},
    )
    assert "nope-x" in cde_error(missing, 404)
    for method in ("GET", "DELETE", "PATCH"):
        reply = api.request(method, "/jobs/no-such-job", json={})
        assert cde_error(reply, 404) == "could not get job from storage: job not found"
    assert (
        cde_error(api.post("/jobs/no-such-job/run", json={}), 404)
        == "could not get job from storage: job not found"
    )


def test_job_patch_deep_merges_and_delete(api: CdeApi) -> None:
    job = unique("job")
    api.create_job(
        {
            "name": job,
            "spark": {"file": "a.py", "conf": {"k1": "v1", "k2": "v2"}, "args": ["x"]},
            "schedule": {},
        }
    )
    before = api.get(f"/jobs/{job}").json()
    reply = api.patch(
        f"/jobs/{job}",
        json={"spark": {"conf": {"k2": "changed", "k3": "new"}, "args": ["y", "z"], "driverMemory": "2g"}},
    )
    assert reply.status_code == 200, reply.text
    after = api.get(f"/jobs/{job}").json()
    assert reply.json() == after
    assert after["spark"]["conf"] == {"k1": "v1", "k2": "changed", "k3": "new"}
    assert after["spark"]["args"] == ["y", "z"]
    assert after["spark"]["driverMemory"] == "2g" and after["spark"]["file"] == "a.py"
    assert after["created"] == before["created"]
    patched = api.patch(f"/jobs/{job}", json={"spark": {"conf": {"k1": None}}}).json()
    assert patched["spark"]["conf"] == {"k2": "changed", "k3": "new"}
    cde_error(api.patch(f"/jobs/{job}", json={"name": "other-name"}), 400)
    cde_error(api.patch(f"/jobs/{job}", json={"spark": {"executorCores": "many"}}), 400)
    assert api.post(f"/jobs/{job}/schedule/pause").status_code == 201
    assert api.get(f"/jobs/{job}").json()["schedule"]["paused"] is True
    assert api.delete(f"/jobs/{job}").status_code == 204
    cde_error(api.get(f"/jobs/{job}"), 404)


def test_job_list_filters_orders_and_pages(api: CdeApi) -> None:
    tag = unique("jl")
    for i, cores in enumerate([1, 4, 2]):
        api.create_job({"name": f"{tag}-{i}", "spark": {"file": f"f{i}.py", "executorCores": cores}})
    base = {"filter": f"name[like]{tag}-%"}

    def names(**params: object) -> list[str]:
        reply = api.get("/jobs", params={**base, **params})
        assert reply.status_code == 200, reply.text
        return [job["name"] for job in reply.json()["jobs"]]

    assert names() == [f"{tag}-0", f"{tag}-1", f"{tag}-2"]
    assert names(orderby="spark.executorCores", orderasc="false") == [
        f"{tag}-1",
        f"{tag}-2",
        f"{tag}-0",
    ]
    both = api.get("/jobs", params={"filter": [base["filter"], "spark.executorCores[gte]2"]}).json()
    assert sorted(j["name"] for j in both["jobs"]) == [f"{tag}-1", f"{tag}-2"]
    assert names(filter=f"name[like]{tag}-% AND spark.file[eq]f2.py") == [f"{tag}-2"]
    page = api.get("/jobs", params={**base, "limit": 1, "offset": 1}).json()
    assert [j["name"] for j in page["jobs"]] == [f"{tag}-1"]
    assert page["meta"] == {"hasNext": True, "limit": 1, "offset": 1, "count": 1}
    cde_error(api.get("/jobs", params={"filter": "name[bogus]x"}), 400)
    cde_error(api.get("/jobs", params={"filter": "no-brackets"}), 400)
    cde_error(api.get("/jobs", params={"limit": "many"}), 400)
    cde_error(api.get("/jobs", params={"offset": "-1"}), 400)
    cde_error(api.get("/jobs", params={"orderasc": "maybe"}), 400)


def test_unknown_routes_answer_cde_errors(api: CdeApi) -> None:
    assert cde_error(api.get("/no-such-endpoint"), 404) == "Not Found"
    assert cde_error(api.request("PUT", "/jobs"), 405) == "Method Not Allowed"
