"""Local CDE: Knox token endpoint, bearer checks, fault switches and admin endpoints (no Spark)."""

from __future__ import annotations

import base64
import dataclasses
import time

import pytest
import requests

from cde_local import FaultSettings, LocalCde, LocalCdeConfig
from cde_local.errors import ConfigError
from tests.fixtures.cde_local import (
    HTTP_TIMEOUT_S,
    PASSWORD,
    USER,
    CdeApi,
    cde_error,
    decode_jwt,
    get_faults,
    reset_faults,
    set_faults,
    sleep_past_expiry,
)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_token_endpoint_answers_all_knox_fields(local_cde_manual: LocalCde, method: str) -> None:
    before_s = time.time()
    reply = requests.request(method, local_cde_manual.token_url, auth=(USER, PASSWORD), timeout=HTTP_TIMEOUT_S)
    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {
        "access_token",
        "token_id",
        "managed",
        "token_type",
        "expires_in",
        "endpoint_public_cert",
    }
    assert body["managed"] == "false" and body["token_type"] == "Bearer"
    # A JWT that names the user and expires when `expires_in` says: ABSOLUTE epoch ms, an integer.
    header, claims = decode_jwt(body["access_token"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims["sub"] == USER and claims["jti"] == body["token_id"]
    assert int(before_s) <= claims["iat"] <= time.time()
    ttl_s = local_cde_manual.config.token_ttl_s
    assert isinstance(body["expires_in"], int)
    assert before_s + ttl_s <= body["expires_in"] / 1000 <= time.time() + ttl_s
    assert body["expires_in"] == round(claims["exp"] * 1000)
    base64.b64decode(body["endpoint_public_cert"], validate=True)


@pytest.mark.parametrize("auth", [(USER, "wrong"), ("nobody", PASSWORD), None])
def test_token_endpoint_refuses_bad_credentials(
    local_cde_manual: LocalCde, auth: tuple[str, str] | None
) -> None:
    reply = requests.get(local_cde_manual.token_url, auth=auth, timeout=HTTP_TIMEOUT_S)
    cde_error(reply, 401)
    assert reply.headers["WWW-Authenticate"].startswith("Basic")


def test_api_calls_need_a_valid_bearer_token(local_cde_manual: LocalCde) -> None:
    url = local_cde_manual.jobs_api_url + "/info"
    assert "bearer" in cde_error(requests.get(url, timeout=HTTP_TIMEOUT_S), 401).lower()
    cde_error(requests.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=HTTP_TIMEOUT_S), 401)
    token = CdeApi(local_cde_manual).token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    cde_error(requests.get(url, headers={"Authorization": f"Bearer {forged}"}, timeout=HTTP_TIMEOUT_S), 401)
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    cde_error(requests.get(url, headers={"Authorization": f"Basic {basic}"}, timeout=HTTP_TIMEOUT_S), 401)
    # Header name and scheme are case-insensitive; unknown headers and Accept are ignored.
    for headers in (
        {"authorization": f"Bearer {token}"},
        {"AUTHORIZATION": f"bearer {token}", "X-Unknown": "1", "Accept": "application/xml"},
    ):
        reply = requests.get(url, headers=headers, timeout=HTTP_TIMEOUT_S)
        assert reply.status_code == 200, reply.text
        assert reply.json()["appName"] == "local-cde"


def test_token_lifetime_is_configurable_down_to_seconds(local_cde_factory) -> None:
    cde = local_cde_factory(run_mode="manual", token_ttl_s=1.5)
    api = CdeApi(cde)
    token = api.fetch_token()
    assert token["expires_in"] - time.time() * 1000 <= 1500
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(cde.jobs_api_url + "/info", headers=headers, timeout=HTTP_TIMEOUT_S).status_code == 200
    sleep_past_expiry(token)
    message = cde_error(requests.get(cde.jobs_api_url + "/info", headers=headers, timeout=HTTP_TIMEOUT_S), 401)
    assert "expired" in message


def test_token_ttl_fault_switch_shortens_new_tokens(local_cde_factory) -> None:
    cde = local_cde_factory(run_mode="manual")
    long_lived = CdeApi(cde).fetch_token()
    cde.backend.faults.update(token_ttl_s=1)
    short = CdeApi(cde).fetch_token()
    assert short["expires_in"] - time.time() * 1000 <= 1000 < long_lived["expires_in"] - time.time() * 1000
    sleep_past_expiry(short)
    url = cde.jobs_api_url + "/info"
    cde_error(
        requests.get(url, headers={"Authorization": f"Bearer {short['access_token']}"}, timeout=HTTP_TIMEOUT_S), 401
    )
    ok = requests.get(url, headers={"Authorization": f"Bearer {long_lived['access_token']}"}, timeout=HTTP_TIMEOUT_S)
    assert ok.status_code == 200


def test_error_and_throttle_bursts_fail_the_next_calls_then_recover(local_cde_factory) -> None:
    cde = local_cde_factory(run_mode="manual")
    api = CdeApi(cde)
    assert api.get("/info").status_code == 200
    assert set_faults(cde, error_burst=2, error_status=502)["error_burst"] == 2
    assert [api.get("/info").status_code for _ in range(3)] == [502, 502, 200]
    cde.backend.faults.update(throttle_burst=1, retry_after_s=7)
    throttled = api.get("/jobs")
    cde_error(throttled, 429)
    assert throttled.headers["Retry-After"] == "7"
    assert api.get("/jobs").status_code == 200
    # Faults apply only to the Jobs API: the token endpoint and admin endpoints keep working.
    cde.backend.faults.update(error_rate=1.0)
    assert requests.get(cde.token_url, auth=(USER, PASSWORD), timeout=HTTP_TIMEOUT_S).status_code == 200
    cde_error(api.get("/info"), 502)  # error_status set above stays
    assert requests.get(cde.base_url + "/local/health", timeout=HTTP_TIMEOUT_S).json()["status"] == "ok"
    assert reset_faults(cde) == dataclasses.asdict(FaultSettings()) == get_faults(cde)  # all off again
    assert api.get("/info").status_code == 200


def test_rates_follow_the_seed_and_latency_is_accepted(local_cde_factory) -> None:
    cde = local_cde_factory(run_mode="manual", fault_seed=7)
    api = CdeApi(cde)
    cde.backend.faults.update(throttle_rate=0.5, latency_ms=20)
    codes = [api.get("/info").status_code for _ in range(40)]
    assert set(codes) == {200, 429}  # a fair coin, 40 throws: both sides come up (seeded, so stable)
    assert get_faults(cde)["latency_ms"] == 20


@pytest.mark.parametrize(
    "body",
    [
        {"error_rate": 2},
        {"error_status": 404},
        {"latency_ms": -1},
        {"no_such_switch": 1},
        [1],
        {"error_burst": True},
    ],
)
def test_bad_fault_switches_are_refused(local_cde_manual: LocalCde, body: object) -> None:
    before = get_faults(local_cde_manual)
    reply = requests.put(local_cde_manual.base_url + "/local/faults", json=body, timeout=HTTP_TIMEOUT_S)
    cde_error(reply, 400)
    assert get_faults(local_cde_manual) == before


def test_health_names_the_jobs_api_url(local_cde_manual: LocalCde) -> None:
    body = requests.get(local_cde_manual.base_url + "/local/health", timeout=HTTP_TIMEOUT_S).json()
    assert body == {"status": "ok", "runMode": "manual", "jobsApiUrl": local_cde_manual.jobs_api_url}


def test_faults_can_be_set_in_the_config(local_cde_factory) -> None:
    cde = local_cde_factory(run_mode="manual", faults=FaultSettings(error_burst=1, error_status=500))
    api = CdeApi(cde)
    cde_error(api.get("/info"), 500)
    assert api.get("/info").status_code == 200


def test_a_data_directory_serves_one_local_cde_at_a_time(local_cde_factory, tmp_path) -> None:
    cde = local_cde_factory(run_mode="manual", data_dir=tmp_path / "shared")
    with pytest.raises(ConfigError, match="in use"):
        LocalCde(LocalCdeConfig(data_dir=cde.config.data_dir, run_mode="manual")).start()
    assert CdeApi(cde).get("/info").status_code == 200
