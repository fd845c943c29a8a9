"""Named CDE environments from the variables (agents/environments.py): roles, fallbacks, and every
problem listed at once."""

from __future__ import annotations

import pytest

from agents.environments import DEFAULT, Environment, environments_from
from agents.errors import ConfigError

DEV_URL, PRD_URL = "https://dev.cde.example/dex/api/v1", "https://prd.cde.example/dex/api/v1"
TWO = {"CDE_ENVIRONMENTS": "dev,prd", "CDE_DEV_JOBS_API_URL": DEV_URL, "CDE_PRD_JOBS_API_URL": PRD_URL + "/",
       "WORKLOAD_USER": "svc-healer", "WORKLOAD_PASSWORD": "tenant-secret-1"}


def problems(values: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        environments_from(values)
    return caught.value.problems


def test_one_cde_is_the_default_environment_as_before():
    (env,) = environments_from({"JOBS_API_URL": DEV_URL + "/", "WORKLOAD_USER": "u", "WORKLOAD_PASSWORD": "p"})
    assert env == Environment(name=DEFAULT, jobs_api_url=DEV_URL, workload_user="u", workload_password="p")
    assert env.watched and env.verifier == DEFAULT and not env.promotes


def test_prd_proven_in_dev_watches_prd_only():
    dev, prd = environments_from({**TWO, "CDE_PRD_VERIFY_IN": "DEV"})
    assert (dev.name, dev.jobs_api_url, dev.watched, dev.verifier) == ("dev", DEV_URL, False, "dev")
    assert (prd.name, prd.jobs_api_url, prd.watched, prd.verifier) == ("prd", PRD_URL, True, "dev")
    assert prd.promotes and not dev.promotes
    # the tenant-wide workload user serves both, unless an environment has its own
    assert dev.workload_user == prd.workload_user == "svc-healer"


def test_watch_and_credentials_of_their_own():
    dev, prd = environments_from({**TWO, "CDE_WATCH": "dev, prd", "CDE_PRD_TOKEN": "prd-token-9",
                                  "CDE_DEV_WORKLOAD_USER": "dev-user", "CDE_DEV_WORKLOAD_PASSWORD": "dev-pw",
                                  "CDE_PRD_TOKEN_URL": "https://prd.example/gateway/authtkn/knoxtoken/api/v1/token"})
    assert dev.watched and prd.watched
    assert (dev.workload_user, dev.workload_password) == ("dev-user", "dev-pw")
    assert prd.cde_token == "prd-token-9" and prd.token_url.endswith("/token")
    assert not prd.promotes  # no VERIFY_IN: proven where it failed, as with one CDE


def test_an_environment_verified_in_itself_is_not_promoted():
    _, prd = environments_from({**TWO, "CDE_PRD_VERIFY_IN": "prd"})
    assert prd.verify_in == "" and not prd.promotes and prd.watched


def test_every_problem_is_listed_at_once_and_no_secret_is_shown():
    found = problems({"CDE_ENVIRONMENTS": "dev,Prd,dev,9x", "JOBS_API_URL": DEV_URL, "CDE_DEV_JOBS_API_URL": "ftp://x",
                      "CDE_PROD_JOBS_API_URL": PRD_URL, "CDE_PRD_VERIFY_IN": "qa", "CDE_WATCH": "uat",
                      "CDE_DEV_WORKLOAD_PASSWORD": "hidden-password-7"})
    text = "\n".join(found)
    assert "CDE_ENVIRONMENTS names 'dev' twice" in text
    assert "'9x' is not an environment name" in text
    assert "JOBS_API_URL is set beside CDE_ENVIRONMENTS" in text
    assert "CDE_DEV_JOBS_API_URL must be an http(s) URL, got 'ftp://x'" in text
    assert "CDE_PROD_JOBS_API_URL names no environment of CDE_ENVIRONMENTS (dev, prd)" in text  # a typo
    assert "CDE_PRD_JOBS_API_URL is not set (environment prd)" in text
    assert "CDE_PRD_VERIFY_IN names 'qa'" in text and "CDE_WATCH names 'uat'" in text
    assert "environment dev has no credentials" in text and "environment prd has no credentials" in text
    assert "hidden-password-7" not in text
    assert len(found) == 10, found


def test_secrets_stay_out_of_the_repr():
    dev, prd = environments_from({**TWO, "CDE_PRD_TOKEN": "prd-token-9"})
    assert "tenant-secret-1" not in repr(dev) and "prd-token-9" not in repr(prd)
