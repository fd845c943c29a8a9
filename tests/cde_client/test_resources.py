"""Client resource calls: create/list/get/delete, file upload/download with nested paths, errors."""

from __future__ import annotations

import pytest

from cde_client import (
    ApiError,
    CdeClient,
    CdeError,
    Conflict,
    NotFound,
    ResourceBuildFailed,
    ResourceFile,
    WaitTimeout,
)
from tests.fixtures.cde_local import CdeApi, unique


def test_create_get_list_delete_a_files_resource(client: CdeClient, raw_api: CdeApi) -> None:
    name = unique("res")
    client.create_resource(name)
    resource = client.get_resource(name)
    assert (resource.name, resource.type, resource.status, resource.files) == (name, "files", "ready", [])
    assert resource.raw == raw_api.get(f"/resources/{name}", params={"includeFiles": "true"}).json()
    assert name in [r.name for r in client.list_resources()]
    client.delete_resource(name)
    with pytest.raises(NotFound):
        client.get_resource(name)
    assert name not in [r.name for r in client.list_resources()]


def test_a_duplicate_resource_is_a_conflict(client: CdeClient) -> None:
    name = unique("dup")
    client.create_resource(name)
    with pytest.raises(Conflict) as caught:
        client.create_resource(name)
    assert caught.value.status == 409 and caught.value.existing_id is None


def test_upload_download_round_trip_with_nested_paths(client: CdeClient, raw_api: CdeApi) -> None:
    name = unique("files")
    client.create_resource(name)
    binary = bytes(range(256)) * 40
    client.upload_file(name, "app.py", "print('héllo')\n")
    client.upload_file(name, "lib/deep/er/helpers.py", b"X = 1\n")
    client.upload_file(name, "data/blob.bin", binary)
    assert client.download_file(name, "app.py") == "print('héllo')\n".encode()
    assert client.download_file(name, "lib/deep/er/helpers.py") == b"X = 1\n"
    assert client.download_file(name, "data/blob.bin") == binary

    files = {f.path: f for f in client.get_resource(name).files}
    assert set(files) == {"app.py", "lib/deep/er/helpers.py", "data/blob.bin"}
    stored = raw_api.get(f"/resources/{name}", params={"includeFiles": "true"}).json()["files"]
    assert files == {f["path"]: ResourceFile(f["path"], f["signature"], f["sizeBytes"]) for f in stored}
    assert files["data/blob.bin"].size_bytes == len(binary)
    assert client.get_resource(name, include_files=False).files == []

    client.upload_file(name, "app.py", "print('v2')\n")  # replaces
    assert client.download_file(name, "app.py") == b"print('v2')\n"

    client.delete_file(name, "lib/deep/er/helpers.py")
    with pytest.raises(NotFound):
        client.download_file(name, "lib/deep/er/helpers.py")
    assert {f.path for f in client.get_resource(name).files} == {"app.py", "data/blob.bin"}


def test_files_of_a_missing_resource_are_not_found(client: CdeClient) -> None:
    missing = unique("nores")
    with pytest.raises(NotFound):
        client.upload_file(missing, "a.py", b"")
    with pytest.raises(NotFound):
        client.download_file(missing, "a.py")
    with pytest.raises(NotFound):
        client.delete_resource(missing)


@pytest.mark.parametrize("path", ["", "/abs.py", "a//b.py", "../escape.py", "a/./b.py"])
def test_bad_file_paths_are_clear_errors(client: CdeClient, path: str) -> None:
    with pytest.raises(ValueError, match="path"):
        client.upload_file("any", path, b"x")


def test_a_files_resource_is_ready_at_once(client: CdeClient) -> None:
    name = unique("ready")
    client.create_resource(name)
    ready = client.wait_resource_ready(name, timeout_s=30, poll_s=0.2)
    assert (ready.name, ready.status) == (name, "ready")


def test_a_python_env_resource_rejects_other_files(client: CdeClient) -> None:
    name = unique("env")
    client.create_resource(name, type="python-env")
    resource = client.get_resource(name)
    assert resource.type == "python-env"
    assert resource.raw.get("pythonEnv", {}).get("pythonVersion") == "python3"
    with pytest.raises(ApiError) as caught:
        client.upload_file(name, "app.py", b"print(1)\n")
    assert caught.value.status == 400 and "requirements.txt" in caught.value.message


def test_a_python_env_build_is_awaited(client: CdeClient, raw_api: CdeApi) -> None:
    name = unique("env-ok")
    client.create_resource(name, type="python-env")
    assert client.get_resource(name).status == "pending-build"
    client.upload_file(name, "requirements.txt", "# nothing beyond the base environment\n")
    resource = client.wait_resource_ready(name, timeout_s=300, poll_s=0.5)
    assert resource.status == "ready"
    assert resource.python_env_info == raw_api.get(f"/resources/{name}").json()["pythonEnvInfo"]
    assert resource.python_env_info["statusReason"] == "Build completed"


def test_a_failed_python_env_build_is_reported(client: CdeClient) -> None:
    name = unique("env-bad")
    client.create_resource(name, type="python-env")
    client.upload_file(name, "requirements.txt", "no-such-package-for-cde-client-tests==9.9.9\n")
    with pytest.raises(ResourceBuildFailed) as caught:
        client.wait_resource_ready(name, timeout_s=300, poll_s=0.5)
    assert name in str(caught.value) and "no-such-package-for-cde-client-tests" in str(caught.value)  # pip's reason
    assert isinstance(caught.value, CdeError)  # the error tree: callers catch every client error as CdeError


def test_waiting_for_an_env_that_is_never_built_times_out(client: CdeClient) -> None:
    name = unique("env-idle")
    client.create_resource(name, type="python-env")
    with pytest.raises(WaitTimeout) as caught:
        client.wait_resource_ready(name, timeout_s=0.3, poll_s=0.1)
    assert caught.value.last_status == "pending-build"


def test_an_unknown_resource_type_is_a_clear_error(client: CdeClient) -> None:
    with pytest.raises(ValueError, match="type"):
        client.create_resource(unique("x"), type="zip")
