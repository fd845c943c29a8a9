"""Local CDE: the console's access-key token route, called as Cloudera's Airflow provider calls it,
and Knox's cdptkn token path, called as Cloudera's curl recipe does (no Spark)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from cde_local import LocalCde, LocalCdeConfig
from cde_local.__main__ import parse_args
from cde_local.errors import ConfigError
from tests.fixtures.cde_local import (
    HTTP_TIMEOUT_S,
    PASSWORD,
    USER,
    CdeApi,
    cde_error,
    decode_jwt,
    start_cli,
    unique,
)

ACCESS_KEY_ID, ACCESS_KEY_SECRET = "local-access-key-id", "local-access-key-secret"  # the default pair
ACCESS_KEYS_TOKEN_ROUTE = "/api/v0/auth/access-keys/token"  # the provider's AWC_ACCESS_KEYS_TOKEN_ROUTE
CDP_TOKEN_PATH = "/gateway/cdptkn/knoxtoken/api/v1/token"
KNOX_FIELDS = {"access_token", "token_id", "managed", "token_type", "expires_in", "endpoint_public_cert"}
PROVIDER_RENEWAL_MARGIN_S = 300  # the provider renews a token 5 minutes before `expires_in`


def provider_token_request(
    console_url: str, client_id: str, client_secret: str, data: Any = None
) -> requests.Response:
    """The token request of cloudera-airflow-provider 2.4.0 (`auth_mode: awc`):
    `AwcPlatformTokenAuth._submit_token_request` calls cloudera-cde-sdk's `submit_request`, which
    is `requests.request("POST", console_url + route, data={"grant_type": "client_credentials"},
    auth=(client_id, client_secret), verify=..., timeout=30)`: a form body and HTTP Basic."""
    return requests.request(
        "POST",
        f"{console_url.strip().rstrip('/')}{ACCESS_KEYS_TOKEN_ROUTE}",  # normalize_console_url
        data={"grant_type": "client_credentials"} if data is None else data,
        auth=(client_id, client_secret),
        verify=True,
        timeout=30,
    )


def provider_api_call(
    jobs_api_url: str, token: str, method: str, endpoint: str, **kwargs: Any
) -> requests.Response:
    """A Jobs API call as the provider's CdeHook makes it on an external connection: the
    connection's host (the JOBS API URL) plus the endpoint, its `insecure` header, the bearer token."""
    headers = {"insecure": "False", "authorization": f"Bearer {token}"}
    return requests.request(
        method, jobs_api_url + endpoint, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs
    )


def test_the_airflow_provider_gets_a_token_for_an_access_key_and_calls_the_api(
    local_cde_manual: LocalCde,
) -> None:
    before_s = time.time()
    reply = provider_token_request(local_cde_manual.base_url + "/", ACCESS_KEY_ID, ACCESS_KEY_SECRET)
    assert reply.status_code == 200, reply.text
    assert reply.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert reply.request.body == "grant_type=client_credentials"
    body = reply.json()
    assert set(body) == {"access_token", "token_type", "expires_in"} and body["token_type"] == "Bearer"
    # `expires_in` is ABSOLUTE epoch milliseconds (CdeTokenAuthResponse divides it by 1000), in the
    # future by the token lifetime: far enough for the provider to use it rather than renew at once.
    ttl_s = local_cde_manual.config.token_ttl_s
    assert isinstance(body["expires_in"], int)
    assert before_s + ttl_s <= body["expires_in"] / 1000 <= time.time() + ttl_s
    assert body["expires_in"] / 1000 - PROVIDER_RENEWAL_MARGIN_S > time.time()
    _header, claims = decode_jwt(body["access_token"])
    assert claims["sub"] == ACCESS_KEY_ID and body["expires_in"] == round(claims["exp"] * 1000)

    listed = provider_api_call(local_cde_manual.jobs_api_url, body["access_token"], "GET", "/jobs")
    assert listed.status_code == 200, listed.text
    assert "jobs" in listed.json()


def test_an_access_key_acts_as_a_user_named_by_its_key_id(local_cde_manual: LocalCde) -> None:
    token = provider_token_request(local_cde_manual.base_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET).json()
    api = CdeApi(local_cde_manual)
    api.token = token["access_token"]
    job, resource = unique("akjob"), unique("akres")
    api.create_resource(resource, files={"app.py": b"print('x')\n"})
    api.create_job({"name": job, "mounts": [{"resourceName": resource}], "spark": {"file": "app.py"}})
    # The operator's calls: run the job, then read the run.
    run = provider_api_call(local_cde_manual.jobs_api_url, api.token, "POST", f"/jobs/{job}/run", json={})
    assert run.status_code == 201, run.text
    described = provider_api_call(
        local_cde_manual.jobs_api_url, api.token, "GET", f"/job-runs/{run.json()['id']}"
    )
    assert described.status_code == 200 and described.json()["user"] == ACCESS_KEY_ID


@pytest.mark.parametrize(
    "credentials",
    [
        (ACCESS_KEY_ID, "wrong-secret"),
        ("unknown-key-id", ACCESS_KEY_SECRET),
        (USER, PASSWORD),  # a workload user's password is not an access key
    ],
)
def test_bad_access_key_credentials_are_a_401(
    local_cde_manual: LocalCde, credentials: tuple[str, str]
) -> None:
    reply = provider_token_request(local_cde_manual.base_url, *credentials)
    assert "invalid access key" in cde_error(reply, 401)
    assert reply.json()["error"] == "invalid_client"
    assert reply.headers["WWW-Authenticate"].startswith("Basic")


def test_the_access_key_route_needs_basic_credentials(local_cde_manual: LocalCde) -> None:
    url = local_cde_manual.base_url + ACCESS_KEYS_TOKEN_ROUTE
    reply = requests.post(url, data={"grant_type": "client_credentials"}, timeout=HTTP_TIMEOUT_S)
    assert "HTTP Basic" in cde_error(reply, 401)
    # Its own bearer token is no credential for it either.
    token = provider_token_request(local_cde_manual.base_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    reply = requests.post(
        url, data={"grant_type": "client_credentials"}, headers=headers, timeout=HTTP_TIMEOUT_S
    )
    cde_error(reply, 401)


@pytest.mark.parametrize(
    ("send", "error"),
    [
        (
            lambda url, auth: requests.post(url, data={"grant_type": "password"}, auth=auth, timeout=30),
            "unsupported_grant_type",
        ),
        (lambda url, auth: requests.post(url, data={"scope": "x"}, auth=auth, timeout=30), "invalid_request"),
        (lambda url, auth: requests.post(url, auth=auth, timeout=30), "invalid_request"),
        (
            lambda url, auth: requests.post(
                url, data=[("grant_type", "client_credentials")] * 2, auth=auth, timeout=30
            ),
            "invalid_request",
        ),
        (  # the right field, but as JSON: OAuth 2 token requests are forms
            lambda url, auth: requests.post(
                url, json={"grant_type": "client_credentials"}, auth=auth, timeout=30
            ),
            "invalid_request",
        ),
    ],
    ids=["password-grant", "no-grant-type", "no-body", "grant-type-twice", "json-body"],
)
def test_a_wrong_grant_type_is_a_400(
    local_cde_manual: LocalCde, send: Callable[..., requests.Response], error: str
) -> None:
    reply = send(local_cde_manual.base_url + ACCESS_KEYS_TOKEN_ROUTE, (ACCESS_KEY_ID, ACCESS_KEY_SECRET))
    assert "grant_type=client_credentials" in cde_error(reply, 400)
    assert reply.json()["error"] == error and reply.json()["error_description"] == reply.json()["message"]


def test_the_access_key_route_takes_only_post(local_cde_manual: LocalCde) -> None:
    reply = requests.get(
        local_cde_manual.base_url + ACCESS_KEYS_TOKEN_ROUTE,
        auth=(ACCESS_KEY_ID, ACCESS_KEY_SECRET),
        timeout=HTTP_TIMEOUT_S,
    )
    cde_error(reply, 405)


def test_tokens_of_an_access_key_no_longer_configured_are_refused(
    local_cde_factory: Callable[..., LocalCde], tmp_path: Path
) -> None:
    data_dir = tmp_path / "cde"
    first = local_cde_factory(run_mode="manual", data_dir=data_dir, access_keys={"key-a": "secret-a"})
    token = provider_token_request(first.base_url, "key-a", "secret-a").json()["access_token"]
    assert provider_api_call(first.jobs_api_url, token, "GET", "/info").status_code == 200
    first.stop()
    # The same data directory (so the same signing key) without that access key.
    second = local_cde_factory(run_mode="manual", data_dir=data_dir, access_keys={"key-b": "secret-b"})
    assert "unknown user" in cde_error(provider_api_call(second.jobs_api_url, token, "GET", "/info"), 401)
    assert provider_token_request(second.base_url, "key-a", "secret-a").status_code == 401
    assert provider_token_request(second.base_url, "key-b", "secret-b").status_code == 200


# -- Knox's cdptkn path ----------------------------------------------------------------------------
def curl_get(url: str, *options: str) -> tuple[int, dict[str, Any]]:
    """`curl -s [options] URL`, as Cloudera's documentation runs it: the status and the JSON body."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        [curl, "-s", "-w", "\n%{http_code}", *options, url],
        capture_output=True,
        text=True,
        timeout=HTTP_TIMEOUT_S,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


def test_the_cdptkn_path_answers_the_documented_curl_recipe(local_cde_manual: LocalCde) -> None:
    url = local_cde_manual.base_url + CDP_TOKEN_PATH
    status, body = curl_get(url, "-u", f"{USER}:{PASSWORD}")  # curl -u user:pass <base>/gateway/cdptkn/...
    assert status == 200 and set(body) == KNOX_FIELDS
    assert body["managed"] == "false" and body["token_type"] == "Bearer"
    assert decode_jwt(body["access_token"])[1]["sub"] == USER
    assert body["expires_in"] / 1000 > time.time()
    # The same answer as the authtkn route, and a token the API takes.
    knox = requests.get(local_cde_manual.token_url, auth=(USER, PASSWORD), timeout=HTTP_TIMEOUT_S).json()
    assert set(knox) == set(body)
    api = CdeApi(local_cde_manual)
    api.token = body["access_token"]
    assert api.get("/jobs").status_code == 200
    # POST too, as on the authtkn route.
    assert requests.post(url, auth=(USER, PASSWORD), timeout=HTTP_TIMEOUT_S).status_code == 200


def test_the_cdptkn_path_refuses_bad_credentials(local_cde_manual: LocalCde) -> None:
    url = local_cde_manual.base_url + CDP_TOKEN_PATH
    status, body = curl_get(url, "-u", f"{USER}:wrong")
    assert status == 401 and body["status"] == "error" and body["message"]
    reply = requests.get(url, timeout=HTTP_TIMEOUT_S)
    cde_error(reply, 401)
    assert reply.headers["WWW-Authenticate"].startswith("Basic")
    # Access keys belong to the console route, not to Knox.
    cde_error(requests.get(url, auth=(ACCESS_KEY_ID, ACCESS_KEY_SECRET), timeout=HTTP_TIMEOUT_S), 401)


# -- configuration and command line ------------------------------------------------------------------
def test_access_keys_default_to_one_documented_pair(tmp_path: Path) -> None:
    assert LocalCdeConfig(data_dir=tmp_path).access_keys == {ACCESS_KEY_ID: ACCESS_KEY_SECRET}
    assert LocalCdeConfig(data_dir=tmp_path, access_keys={}).access_keys == {}


@pytest.mark.parametrize(
    ("access_keys", "message"),
    [
        ({"": "secret"}, "bad access key"),
        ({"id:x": "secret"}, "bad access key"),
        ({"id": ""}, "bad access key"),
        ({USER: "secret"}, "also a user name"),
    ],
)
def test_bad_access_keys_are_refused(tmp_path: Path, access_keys: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalCdeConfig(data_dir=tmp_path, access_keys=access_keys)


def test_no_access_key_configured_refuses_every_key(local_cde_factory: Callable[..., LocalCde]) -> None:
    cde = local_cde_factory(run_mode="manual", access_keys={})
    cde_error(provider_token_request(cde.base_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET), 401)


def test_the_command_line_takes_repeated_access_keys(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "cde")
    assert parse_args(["--data-dir", data_dir]).access_keys == {ACCESS_KEY_ID: ACCESS_KEY_SECRET}
    config = parse_args(["--data-dir", data_dir, "--access-key", "k1:s:1", "--access-key", "k2:s2"])
    assert config.access_keys == {"k1": "s:1", "k2": "s2"}  # the private key is all after the first ':'


@pytest.mark.parametrize("entry", ["no-colon", "k1:", ":s1", f"{USER}:s1"])
def test_the_command_line_refuses_bad_access_keys(
    tmp_path: Path, entry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--data-dir", str(tmp_path / "cde"), "--access-key", entry])
    assert exited.value.code == 2
    assert re.search("access[- ]key", capsys.readouterr().err)


def test_the_standalone_server_serves_its_access_keys(tmp_path: Path) -> None:
    server = start_cli(tmp_path / "cde", tmp_path / "server.log", "--access-key", "cli-key:cli-secret")
    try:
        base_url = server.url.removesuffix("/dex/api/v1")
        token = provider_token_request(base_url, "cli-key", "cli-secret")
        assert token.status_code == 200, token.text
        assert provider_api_call(server.url, token.json()["access_token"], "GET", "/jobs").status_code == 200
        # --access-key replaces the default pair.
        assert provider_token_request(base_url, ACCESS_KEY_ID, ACCESS_KEY_SECRET).status_code == 401
    finally:
        assert server.stop() == 0
