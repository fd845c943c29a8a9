"""Fixtures for the client tests (loaded by conftest.py).

The client tests talk HTTP to their own local CDE (`client_cde`), started in "manual" run mode so
runs are records that tests drive, never Spark processes, and so fault switches set by one test
cannot disturb other areas' tests. Fault switches are reset after every test that uses `cde`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from cde_client import CdeClient

CLIENT_USER = "client-test-user"
CLIENT_PASSWORD = "pw-Zq8!client-secret-4471"  # distinctive, so tests can look for leaks


def unique(prefix: str) -> str:
    """A name no other test uses (tests share one server)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def set_faults(cde: Any, **switches: Any) -> dict[str, Any]:
    """Switch faults on the local CDE over HTTP (`PUT /local/faults`)."""
    reply = requests.put(f"{cde.base_url}/local/faults", json=switches, timeout=10)
    reply.raise_for_status()
    return reply.json()


def reset_faults(cde: Any) -> None:
    reply = requests.delete(f"{cde.base_url}/local/faults", timeout=10)
    reply.raise_for_status()


def make_client(cde: Any, **options: Any) -> CdeClient:
    """A client with fast backoff (tests wait for retries, not for realism)."""
    settings: dict[str, Any] = dict(
        user=CLIENT_USER, password=CLIENT_PASSWORD, timeout=15.0, max_retries=4, backoff_s=0.01, max_backoff_s=0.05
    )
    settings.update(options)
    return CdeClient(cde.jobs_api_url, **settings)


def start_local_cde(data_dir: Any, **config: Any) -> Any:
    """A started LocalCde (caller stops it with `.__exit__`/`with`) in manual run mode."""
    from cde_local import LocalCde, LocalCdeConfig

    options: dict[str, Any] = dict(
        data_dir=data_dir,
        port=0,
        users={CLIENT_USER: CLIENT_PASSWORD},
        run_mode="manual",
        pyenv_pip_args=("--no-index",),  # offline: python-env builds never reach a package index
    )
    options.update(config)
    return LocalCde(LocalCdeConfig(**options))


@pytest.fixture(scope="session")
def client_cde(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The client tests' own local CDE, shared by the session."""
    with start_local_cde(tmp_path_factory.mktemp("client-cde")) as cde:
        yield cde


@pytest.fixture
def cde(client_cde: Any) -> Iterator[Any]:
    """`client_cde`, with its fault switches reset after the test."""
    reset_faults(client_cde)
    yield client_cde
    reset_faults(client_cde)


@pytest.fixture
def client(cde: Any) -> Iterator[CdeClient]:
    c = make_client(cde)
    yield c
    c.close()
