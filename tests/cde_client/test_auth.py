"""Client authentication: token URL derivation, Knox tokens, renewal, bad credentials, no leaks."""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Callable

import pytest

from cde_client import AuthError, CdeClient, NotFound, derive_token_url
from cde_client.auth import TokenSource
from cde_local import LocalCde
from tests.fixtures.cde_local import CdeApi, unique
from tests.fixtures.client import CLIENT_PASSWORD, CLIENT_USER, CLIENT_USERS, make_client

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


def _source(expires_in: object, clock: list[float]) -> TokenSource:
    """A TokenSource on the clock `clock[0]` whose fetches hand out t1, t2, ... expiring at `expires_in`."""
    numbers = itertools.count(1)
    return TokenSource(lambda: {"access_token": f"t{next(numbers)}", "expires_in": expires_in}, None,
                       clock=lambda: clock[0])


def _token_at(source: TokenSource, clock: list[float], moment: float) -> str:
    clock[0] = moment
    return source.current()


def test_renewal_follows_knox_absolute_expiry_in_epoch_ms() -> None:
    now = 1_800_000_000.0
    # One hour of life: kept for most of it, renewed well before it expires (a call in flight and a
    # little clock skew must not meet an expired token).
    clock = [now]
    source = _source((now + 3600) * 1000, clock)
    assert _token_at(source, clock, now) == "t1"
    assert _token_at(source, clock, now + 3500) == "t1"
    assert _token_at(source, clock, now + 3600 - 30) == "t2"
    # Two seconds of life: still renewed before expiry, but not at once (a fixed 60 s margin would
    # renew on every call).
    clock = [now]
    source = _source((now + 2) * 1000, clock)
    assert _token_at(source, clock, now) == "t1"
    assert _token_at(source, clock, now + 1.0) == "t1"
    assert _token_at(source, clock, now + 1.99) == "t2"


@pytest.mark.parametrize("expires_in", [3600, "soon", None], ids=["a-duration", "garbage", "missing"])
def test_a_token_without_a_usable_expiry_is_kept_until_rejected(expires_in: object) -> None:
    clock = [1_800_000_000.0]
    source = _source(expires_in, clock)
    assert _token_at(source, clock, clock[0]) == "t1"
    assert _token_at(source, clock, clock[0] + 10 * 365 * 86400) == "t1"  # no expiry to renew before
    source.reject("t1")
    assert source.current() == "t2"


def test_token_source_fetches_again_when_due() -> None:
    clock = [1_000.0]
    source = _source(1_010_000, clock)  # a token of 10 s
    assert _token_at(source, clock, 1_000.0) == "t1"
    assert _token_at(source, clock, 1_005.0) == "t1"
    assert _token_at(source, clock, 1_009.5) == "t2"  # within the renewal margin
    assert "t2" not in repr(source)


def test_a_call_after_the_token_expired_renews_it_first(
    local_cde_factory: Callable[..., LocalCde], caplog: pytest.LogCaptureFixture
) -> None:
    cde = local_cde_factory(run_mode="manual", users=CLIENT_USERS, token_ttl_s=2)
    with make_client(cde) as client:
        expected = client.info()
        time.sleep(3)  # the first token is now expired on the server
        with caplog.at_level(logging.INFO, logger="cde_client"):
            assert client.info() == expected
        messages = [r.getMessage() for r in caplog.records]
        assert sum("fetching a token" in m for m in messages) == 1
        assert not any("token rejected" in m for m in messages), "renewed only after a 401, not before expiry"


def test_a_rejected_token_is_renewed_once_with_the_credentials(
    cde: LocalCde, raw_api: CdeApi, caplog: pytest.LogCaptureFixture
) -> None:
    expected = raw_api.get("/info").json()
    with make_client(cde, token="stale-token-from-yesterday") as client, caplog.at_level(logging.INFO, "cde_client"):
        assert client.info() == expected
        assert client.info() == expected
    messages = [r.getMessage() for r in caplog.records]
    assert sum("token rejected" in m for m in messages) == 1
    assert sum("fetching a token" in m for m in messages) == 1


def test_a_fixed_token_that_is_rejected_is_an_auth_error(cde: LocalCde) -> None:
    client = CdeClient(cde.jobs_api_url, token="forged-token-value-123", max_retries=0)
    with pytest.raises(AuthError) as caught:
        client.list_jobs()
    assert caught.value.status == 401
    assert "cannot be renewed" in str(caught.value)
    assert "forged-token-value-123" not in str(caught.value) + repr(caught.value) + repr(client)


def test_a_fixed_valid_token_works_without_credentials(cde: LocalCde, raw_api: CdeApi) -> None:
    with CdeClient(cde.jobs_api_url, token=raw_api.token) as fixed:  # a real token, as a user would paste one
        assert fixed.info() == raw_api.get("/info").json()


def test_bad_credentials_are_an_auth_error_without_the_password(cde: LocalCde) -> None:
    wrong_password = "Wr0ng-" + CLIENT_PASSWORD
    client = CdeClient(cde.jobs_api_url, user=CLIENT_USER, password=wrong_password, max_retries=0)
    with pytest.raises(AuthError) as caught:
        client.info()
    text = str(caught.value) + repr(caught.value) + repr(client)
    assert "credentials" in str(caught.value) and CLIENT_USER in str(caught.value)
    assert wrong_password not in text and CLIENT_PASSWORD not in text


def test_unknown_user_is_an_auth_error(cde: LocalCde) -> None:
    nobody = unique("nobody")
    with pytest.raises(AuthError) as caught:
        CdeClient(cde.jobs_api_url, user=nobody, password="x", max_retries=0).list_jobs()
    assert caught.value.status == 401 and nobody in str(caught.value)


def test_a_wrong_token_url_is_an_auth_error_that_says_so(cde: LocalCde) -> None:
    client = make_client(cde, token_url=cde.base_url + "/gateway/nothing/here")
    with pytest.raises(AuthError, match="token endpoint"):
        client.info()


def test_secrets_never_appear_in_reprs_or_errors(cde: LocalCde, raw_api: CdeApi) -> None:
    token = raw_api.token
    client = make_client(cde, token=token)  # a token and a password
    with pytest.raises(NotFound) as caught:
        client.get_job(unique("missing"))
    for text in (repr(client), str(client), str(caught.value), repr(caught.value)):
        assert CLIENT_PASSWORD not in text
        assert token not in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give user and password, or token"),  # no credentials at all
        ({"user": "u"}, "give both user and password"),  # a user without a password
        ({"password": "p"}, "give both user and password"),
        ({"token": ""}, "token must be a non-empty string"),
        ({"token": "t", "timeout": 0}, "timeout must be a positive number"),
        ({"token": "t", "max_retries": -1}, "max_retries must be a non-negative integer"),
        ({"token": "t", "backoff_s": -1}, "backoff_s must be a non-negative number"),
        ({"token": "t", "token_url": "http://h/tok"}, "token_url is used only with user and password"),
        ({"user": "u", "password": "p", "token_url": "h/tok"}, "token_url must be an http"),
    ],
)
def test_bad_constructor_arguments_are_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        CdeClient("http://127.0.0.1:1/dex/api/v1", **kwargs)


def test_a_url_that_is_not_http_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="http"):
        CdeClient("127.0.0.1:8765/dex/api/v1", token="t")
