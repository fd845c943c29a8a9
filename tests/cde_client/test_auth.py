"""Client authentication: token URL derivation, Knox tokens, renewal, bad credentials, no leaks."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from cde_client import AuthError, CdeClient, NotFound, derive_token_url
from cde_client.auth import TokenSource, _renew_time
from tests.fixtures.client import CLIENT_PASSWORD, CLIENT_USER, make_client, start_local_cde, unique

TOKEN = "/gateway/authtkn/knoxtoken/api/v1/token"


@pytest.mark.parametrize(
    ("jobs_api_url", "token_url"),
    [
        (
            "https://pmjkrgn5.cde-czlmkz4y.na-01.xvp2-7p8o.cloudera.site/dex/api/v1",
            "https://service.cde-czlmkz4y.na-01.xvp2-7p8o.cloudera.site" + TOKEN,
        ),
        (
            "https://wwlblwjc.cde-pppvh92k.apps.ecscloud.iopscloud.cloudera.com/dex/api/v1/",
            "https://service.cde-pppvh92k.apps.ecscloud.iopscloud.cloudera.com" + TOKEN,
        ),
        # The first label only, even when it occurs again later in the host (cdepy replaces all).
        ("https://abc.cde-abc.example.com:8443/dex/api/v1", "https://service.cde-abc.example.com:8443" + TOKEN),
    ],
)
def test_token_url_of_a_real_cde(jobs_api_url: str, token_url: str) -> None:
    assert derive_token_url(jobs_api_url) == token_url


@pytest.mark.parametrize(
    ("jobs_api_url", "token_url"),
    [
        ("http://127.0.0.1:8765/dex/api/v1", "http://127.0.0.1:8765" + TOKEN),
        ("http://localhost:41234/dex/api/v1", "http://localhost:41234" + TOKEN),
        ("http://[::1]:8765/dex/api/v1", "http://[::1]:8765" + TOKEN),
        ("http://10.1.2.3/dex/api/v1", "http://10.1.2.3" + TOKEN),
        ("http://cde-local:8765/dex/api/v1", "http://cde-local:8765" + TOKEN),  # one label: kept
    ],
)
def test_token_url_of_a_local_cde_keeps_host_and_port(jobs_api_url: str, token_url: str) -> None:
    assert derive_token_url(jobs_api_url) == token_url


@pytest.mark.parametrize("url", ["https://vc.cde-x.example.com/api/v1", "ftp://vc.example.com/dex/api/v1", "nonsense"])
def test_token_url_of_an_unfit_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(ValueError, match="jobs API URL|token_url"):
        derive_token_url(url)


def test_token_url_override_wins() -> None:
    client = CdeClient("http://127.0.0.1:1/dex/api/v1", user="u", password="p", token_url="http://h:9/tok")
    assert client.token_url == "http://h:9/tok"


def test_renewal_time_uses_absolute_epoch_ms() -> None:
    now = 1_800_000_000.0
    # One hour of life: renew 60 s early.
    assert _renew_time((now + 3600) * 1000, now) == pytest.approx(now + 3600 - 60)
    # Two seconds of life: renew a fraction of the lifetime early, not 60 s (which would be never).
    renew = _renew_time((now + 2) * 1000, now)
    assert renew is not None and now < renew < now + 2
    # A duration (a non-Knox server) or garbage: unusable, keep the token until a 401.
    assert _renew_time(3600, now) is None
    assert _renew_time("soon", now) is None
    assert _renew_time(None, now) is None


def test_token_source_fetches_again_when_due() -> None:
    clock = [1_000.0]
    replies = iter([{"access_token": "t1", "expires_in": 1_010_000}, {"access_token": "t2", "expires_in": 9e12}])
    source = TokenSource(lambda: next(replies), None, clock=lambda: clock[0])
    assert source.current() == "t1"
    clock[0] = 1_005.0
    assert source.current() == "t1"
    clock[0] = 1_009.5  # within the renewal margin of the 10 s token
    assert source.current() == "t2"
    assert "t2" not in repr(source)


def test_a_call_after_the_token_expired_renews_it_first(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    with start_local_cde(tmp_path, token_ttl_s=2) as cde, make_client(cde) as client:
        assert client.info()["appName"]
        time.sleep(3)  # the first token is now expired on the server
        with caplog.at_level(logging.INFO, logger="cde_client"):
            assert client.info()["appName"]
        messages = [r.getMessage() for r in caplog.records]
        assert any("fetching a token" in m for m in messages)
        assert not any("token rejected" in m for m in messages), "renewed only after a 401, not before expiry"


def test_a_rejected_token_is_renewed_once_with_the_credentials(cde, caplog: pytest.LogCaptureFixture) -> None:
    with make_client(cde, token="stale-token-from-yesterday") as client, caplog.at_level(logging.INFO, "cde_client"):
        assert client.info()["appName"]
        assert client.info()["appName"]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("token rejected" in m for m in messages) == 1


def test_a_fixed_token_that_is_rejected_is_an_auth_error(cde) -> None:
    client = CdeClient(cde.jobs_api_url, token="forged-token-value-123", max_retries=0)
    with pytest.raises(AuthError) as caught:
        client.list_jobs()
    assert caught.value.status == 401
    assert "cannot be renewed" in str(caught.value)
    assert "forged-token-value-123" not in str(caught.value) + repr(caught.value) + repr(client)


def _knox_token(cde) -> str:
    """A real token from the local CDE's Knox endpoint, as a user would paste one."""
    reply = requests.get(derive_token_url(cde.jobs_api_url), auth=(CLIENT_USER, CLIENT_PASSWORD), timeout=10)
    reply.raise_for_status()
    return reply.json()["access_token"]


def test_a_fixed_valid_token_works_without_credentials(cde) -> None:
    with CdeClient(cde.jobs_api_url, token=_knox_token(cde)) as fixed:
        assert fixed.info()["appName"]


def test_bad_credentials_are_an_auth_error_without_the_password(cde) -> None:
    wrong_password = "Wr0ng-" + CLIENT_PASSWORD
    client = CdeClient(cde.jobs_api_url, user=CLIENT_USER, password=wrong_password, max_retries=0)
    with pytest.raises(AuthError) as caught:
        client.info()
    text = str(caught.value) + repr(caught.value) + repr(client)
    assert "credentials" in str(caught.value) and CLIENT_USER in str(caught.value)
    assert wrong_password not in text and CLIENT_PASSWORD not in text


def test_unknown_user_is_an_auth_error(cde) -> None:
    with pytest.raises(AuthError):
        CdeClient(cde.jobs_api_url, user=unique("nobody"), password="x", max_retries=0).list_jobs()


def test_a_wrong_token_url_is_an_auth_error_that_says_so(cde) -> None:
    client = make_client(cde, token_url=cde.base_url + "/gateway/nothing/here")
    with pytest.raises(AuthError, match="token endpoint"):
        client.info()


def test_secrets_never_appear_in_reprs_or_errors(cde) -> None:
    token = _knox_token(cde)
    client = make_client(cde, token=token)  # a token and a password
    with pytest.raises(NotFound) as caught:
        client.get_job(unique("missing"))
    for text in (repr(client), str(client), str(caught.value), repr(caught.value)):
        assert CLIENT_PASSWORD not in text
        assert token not in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # no credentials at all
        {"user": "u"},  # a user without a password
        {"password": "p"},
        {"token": ""},
        {"token": "t", "timeout": 0},
        {"token": "t", "max_retries": -1},
        {"token": "t", "backoff_s": -1},
        {"token": "t", "token_url": "http://h/tok"},  # a token URL without credentials to use it
        {"user": "u", "password": "p", "token_url": "h/tok"},
    ],
)
def test_bad_constructor_arguments_are_clear_errors(kwargs) -> None:
    with pytest.raises(ValueError):
        CdeClient("http://127.0.0.1:1/dex/api/v1", **kwargs)


def test_a_url_that_is_not_http_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="http"):
        CdeClient("127.0.0.1:8765/dex/api/v1", token="t")
