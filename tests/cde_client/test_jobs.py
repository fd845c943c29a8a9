"""Client job calls: create/get/update/delete, pagination over many jobs, filters, error mapping."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cde_client import ApiError, CdeClient, Conflict, Mount, NotFound
from tests.fixtures.cde_local import CdeApi, unique


def _spec(name: str, resource: str | None = None, **spark) -> dict:
    spec = {"name": name, "type": "spark",
            "spark": {"file": "/app/mount/app/main.py", "args": ["--day", "2026-11-21"], **spark}}
    if resource:
        spec["mounts"] = [{"resourceName": resource, "dirPrefix": "app/"}]
    return spec


@pytest.fixture
def code(client: CdeClient) -> str:
    """A files resource for jobs to mount (the server checks mounts exist)."""
    name = unique("code")
    client.create_resource(name)
    return name


def test_create_get_update_delete_a_job(client: CdeClient, code: str) -> None:
    name = unique("job")
    sent = _spec(name, code, conf={"spark.sql.shuffle.partitions": "4"})
    before = datetime.now(timezone.utc).replace(microsecond=0)  # the server keeps whole seconds
    client.create_job(sent)
    job = client.get_job(name)
    assert (job.name, job.type) == (name, "spark")
    assert job.mounts == [Mount(resource_name=code, dir_prefix="app/")]
    assert {key: job.spark[key] for key in sent["spark"]} == sent["spark"]  # the server adds defaults
    assert job.created is not None and before <= job.created <= datetime.now(timezone.utc)
    assert job.modified == job.created
    assert job.raw["name"] == name and job.raw["spark"]["args"] == ["--day", "2026-11-21"]

    client.update_job(name, {"spark": {"executorMemory": "2g"}})
    updated = client.get_job(name)
    assert updated.spark == {**job.spark, "executorMemory": "2g"}  # a merge, not a replacement
    assert updated.created == job.created and updated.modified is not None and updated.modified >= job.modified

    client.delete_job(name)
    with pytest.raises(NotFound) as caught:
        client.get_job(name)
    assert caught.value.status == 404
    assert caught.value.message == "could not get job from storage: job not found"
    assert "could not get job from storage" in str(caught.value)


def test_a_job_raw_can_be_copied_into_a_new_job(client: CdeClient, code: str) -> None:
    original = unique("orig")
    client.create_job(_spec(original, code))
    copy = dict(client.get_job(original).raw, name=unique("copy"))
    client.create_job(copy)
    assert client.get_job(copy["name"]).spark["args"] == ["--day", "2026-11-21"]


def test_a_duplicate_job_is_a_conflict(client: CdeClient) -> None:
    name = unique("dupjob")
    client.create_job(_spec(name))
    with pytest.raises(Conflict):
        client.create_job(_spec(name))


def test_missing_jobs_are_not_found(client: CdeClient) -> None:
    missing = unique("nojob")
    for call in (client.get_job, client.delete_job, client.run_job):
        with pytest.raises(NotFound):
            call(missing)
    with pytest.raises(NotFound):
        client.update_job(missing, {"spark": {"executorMemory": "2g"}})


def test_an_invalid_job_is_an_api_error_with_the_server_message(client: CdeClient) -> None:
    with pytest.raises(ApiError) as caught:
        client.create_job({"name": unique("bad"), "type": "not-a-type"})
    assert caught.value.status == 400
    assert "type" in caught.value.message
    assert caught.value.message in str(caught.value)


def test_mounting_a_missing_resource_is_not_found(client: CdeClient) -> None:
    with pytest.raises(NotFound, match="resource"):
        client.create_job(_spec(unique("nomount"), unique("absent")))


def test_list_jobs_returns_every_page(client: CdeClient) -> None:
    prefix = unique("many")
    names = {f"{prefix}-{i:03d}" for i in range(150)}
    for name in sorted(names):
        client.create_job(_spec(name))
    listed = client.list_jobs([f"name[like]{prefix}-%"])
    assert len(listed) == 150
    assert {j.name for j in listed} == names
    assert names <= {j.name for j in client.list_jobs()}  # unfiltered: every page of all jobs


def test_job_filters(client: CdeClient, code: str) -> None:
    prefix = unique("flt")
    client.create_job(_spec(f"{prefix}-a", code, executorCores=2))
    client.create_job(_spec(f"{prefix}-b", executorCores=4))
    client.create_job(_spec(f"{prefix}-c", code, executorCores=4))
    assert [j.name for j in client.list_jobs([f"name[eq]{prefix}-b"])] == [f"{prefix}-b"]
    four = client.list_jobs([f"name[like]{prefix}%", "spark.executorCores[eq]4"])
    assert sorted(j.name for j in four) == [f"{prefix}-b", f"{prefix}-c"]
    for listed in (f"{prefix}-a,{prefix}-c,{prefix}-zz", f"{prefix}-a,{prefix}-c"):  # a missing name is no error
        assert sorted(j.name for j in client.list_jobs([f"name[in]{listed}"])) == [f"{prefix}-a", f"{prefix}-c"]


@pytest.mark.parametrize("bad", ["name=x", "name[is]x", "[eq]x", ""])
def test_malformed_filters_are_clear_errors(client: CdeClient, bad: str) -> None:
    with pytest.raises(ValueError, match="filter"):
        client.list_jobs([bad])


def test_a_single_string_instead_of_a_filter_list_is_a_clear_error(client: CdeClient) -> None:
    with pytest.raises(ValueError, match="list"):
        client.list_jobs("name[eq]x")  # type: ignore[arg-type]


def test_a_spec_without_a_name_is_a_clear_error(client: CdeClient) -> None:
    with pytest.raises(ValueError, match="name"):
        client.create_job({"type": "spark"})


def test_info_is_what_the_virtual_cluster_answers(client: CdeClient, raw_api: CdeApi) -> None:
    info = client.info()
    assert info == raw_api.get("/info").json()
    assert info["appName"] == "local-cde"
