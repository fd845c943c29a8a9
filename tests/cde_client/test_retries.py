"""Client retries and timeouts, driven by the local CDE's fault switches over real HTTP."""

from __future__ import annotations

import logging
import random
import socket
import threading

import pytest
import requests

from cde_client import ApiError, CdeClient, CdeConnectionError, Conflict, NotFound
from cde_client.client import _same_as_sent
from cde_client.transport import MAX_RETRY_AFTER_S, Transport, retry_after_seconds
from cde_local import LocalCde
from tests.fixtures.cde_local import get_faults, set_faults, unique
from tests.fixtures.client import make_client


def _job(name: str) -> dict:
    return {"name": name, "type": "spark", "spark": {"file": "local:/nothing.py"}}


def test_an_error_burst_is_healed_by_retries(cde, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(cde, max_retries=4)
    name = unique("listed")
    client.create_job(_job(name))  # and the token fetched before the faults
    set_faults(cde, error_burst=3, error_status=503)
    with caplog.at_level(logging.INFO, logger="cde_client"):
        assert [j.name for j in client.list_jobs([f"name[eq]{name}"])] == [name]
    assert get_faults(cde)["error_burst"] == 0
    assert sum("after HTTP 503" in r.getMessage() for r in caplog.records) == 3


def test_a_throttle_burst_is_healed_honouring_retry_after(cde, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(cde, max_retries=3)
    expected = client.info()
    set_faults(cde, throttle_burst=2, retry_after_s=1)
    with caplog.at_level(logging.INFO, logger="cde_client"):
        assert client.info() == expected
    waits = [r.getMessage() for r in caplog.records if "after HTTP 429" in r.getMessage()]
    assert len(waits) == 2
    assert all("in 1.00s" in m for m in waits), waits  # Retry-After, not the 0.01 s backoff


def test_after_max_retries_a_5xx_is_an_api_error(cde) -> None:
    client = make_client(cde, max_retries=2)
    client.info()
    set_faults(cde, error_burst=10, error_status=502)
    with pytest.raises(ApiError) as caught:
        client.list_runs()
    assert caught.value.status == 502
    assert "injected fault" in caught.value.message
    assert get_faults(cde)["error_burst"] == 10 - 3  # one attempt and exactly max_retries retries


def test_after_max_retries_a_429_is_an_api_error(cde) -> None:
    client = make_client(cde, max_retries=1)
    client.info()
    set_faults(cde, throttle_burst=5, retry_after_s=0)
    with pytest.raises(ApiError) as caught:
        client.info()
    assert caught.value.status == 429
    assert get_faults(cde)["throttle_burst"] == 5 - 2


def test_max_retries_zero_means_one_attempt(cde) -> None:
    client = make_client(cde, max_retries=0)
    client.info()
    set_faults(cde, error_burst=2)
    with pytest.raises(ApiError):
        client.info()
    assert get_faults(cde)["error_burst"] == 1


def test_a_create_is_retried_through_server_errors(cde) -> None:
    client = make_client(cde, max_retries=3)
    name = unique("retried")
    client.info()
    set_faults(cde, error_burst=2)
    client.create_job(_job(name))
    assert [j.name for j in client.list_jobs([f"name[eq]{name}"])] == [name]
    set_faults(cde, error_burst=2)
    client.create_resource(name)
    set_faults(cde, error_burst=1)
    client.delete_resource(name)
    with pytest.raises(NotFound):
        client.get_resource(name)


def test_run_job_without_request_id_is_not_repeated_after_a_server_error(cde) -> None:
    client = make_client(cde, max_retries=3)
    name = unique("norepeat")
    client.create_job(_job(name))
    set_faults(cde, error_burst=1)
    with pytest.raises(ApiError) as caught:
        client.run_job(name)
    assert caught.value.status == 503
    assert client.list_runs([f"job[eq]{name}"]) == []


def test_run_job_without_request_id_is_repeated_after_a_429(cde) -> None:
    client = make_client(cde, max_retries=3)
    name = unique("throttled")
    client.create_job(_job(name))
    set_faults(cde, throttle_burst=2, retry_after_s=0)
    run_id = client.run_job(name)
    assert [r.id for r in client.list_runs([f"job[eq]{name}"])] == [run_id]


def test_run_job_with_request_id_is_retried_and_idempotent(cde) -> None:
    client = make_client(cde, max_retries=3)
    name = unique("idem")
    client.create_job(_job(name))
    request_id = unique("dag#run#task#1")
    set_faults(cde, error_burst=2)
    first = client.run_job(name, request_id=request_id)
    again = client.run_job(name, request_id=request_id)
    assert again == first
    assert [r.id for r in client.list_runs([f"job[eq]{name}"])] == [first]
    other = client.run_job(name, request_id=unique("other"))
    assert other != first


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_a_connection_error(caplog: pytest.LogCaptureFixture) -> None:
    client = CdeClient(f"http://127.0.0.1:{_closed_port()}/dex/api/v1", token="t", max_retries=2, backoff_s=0.01)
    with caplog.at_level(logging.INFO, logger="cde_client"), pytest.raises(CdeConnectionError) as caught:
        client.list_jobs()
    assert "3 attempt" in str(caught.value) and "refused" in str(caught.value).lower()
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2


def test_an_unreachable_token_endpoint_is_a_connection_error() -> None:
    client = CdeClient(f"http://127.0.0.1:{_closed_port()}/dex/api/v1", user="u", password="p", max_retries=0)
    with pytest.raises(CdeConnectionError):
        client.info()


def test_a_slow_server_times_out_as_a_connection_error(cde) -> None:
    client = make_client(cde, timeout=(5.0, 0.3), max_retries=1)
    client.info()
    set_faults(cde, latency_ms=2000)
    with pytest.raises(CdeConnectionError, match="timed out after 2 attempt"):
        client.info()


def test_backoff_is_full_jitter_capped() -> None:
    transport = Transport(requests.Session(), timeout=1.0, max_retries=5, backoff_s=0.5, max_backoff_s=3.0,
                          rng=random.Random(7))
    for retry_number in range(8):
        ceiling = min(3.0, 0.5 * 2**retry_number)
        delays = [transport.backoff(retry_number) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range, not a fixed step


def test_retry_after_values() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") == 0.0
    assert retry_after_seconds("999999") == MAX_RETRY_AFTER_S
    # An HTTP date 30 s after "now".
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:30 GMT", now=1_792_567_680.0) == pytest.approx(30.0)



def test_a_create_meeting_a_different_object_after_a_lost_attempt_is_a_conflict(
    cde, caplog: pytest.LogCaptureFixture
) -> None:
    """A retried create that gets 409 after an attempt whose fate is unknown (read timeout) reads the
    stored object; one that differs from what we sent is someone else's: Conflict, not success."""
    client = make_client(cde, timeout=(5.0, 1.0), max_retries=3)
    name = unique("taken")
    client.create_job({"name": name, "type": "spark", "spark": {"file": "local:/someone-else.py"}})
    set_faults(cde, latency_ms=2000)  # the first attempt times out on the client
    timer = threading.Timer(0.3, set_faults, args=(cde,), kwargs={"latency_ms": 0})  # the retry goes through
    timer.start()
    try:
        with caplog.at_level(logging.INFO, logger="cde_client"), pytest.raises(Conflict):
            client.create_job(_job(name))
    finally:
        timer.join()
    assert any("retrying POST" in r.getMessage() and "ReadTimeout" in r.getMessage() for r in caplog.records)
    assert client.get_job(name).spark["file"] == "local:/someone-else.py"


def test_a_create_meeting_its_own_lost_attempt_succeeds(cde: LocalCde) -> None:
    """A retried create that gets 409 after an attempt whose fate is unknown (here a 5xx) reads the
    stored object: the fields it sent are stored with the values it sent, so the 409 is its own
    earlier create and counts as success, whatever defaults the server added."""
    client = make_client(cde, max_retries=3)
    resource = unique("mounted")
    client.create_resource(resource)
    sent = {"name": unique("mine"), "type": "spark", "mounts": [{"resourceName": resource}],
            "spark": {"file": "a.py", "conf": {"k": "1"}, "numExecutors": 2}}
    client.create_job(sent)  # what the lost attempt did on the server
    stored = client.get_job(sent["name"]).raw
    assert stored["spark"] != sent["spark"]  # the server added defaults (driverMemory, ...)
    set_faults(cde, error_burst=1)
    client.create_job(sent)  # 503, then 409 on the retry: our own job
    assert client.get_job(sent["name"]).raw == stored
    for changed in ({"spark": {**sent["spark"], "file": "b.py"}}, {"mounts": []}):
        set_faults(cde, error_burst=1)
        with pytest.raises(Conflict):
            client.create_job({**sent, **changed})  # stored, but not as we sent it: someone else's
    with pytest.raises(Conflict):
        client.create_job(sent)  # a 409 at the first attempt is always a conflict


def test_create_conflict_judgement_takes_a_number_and_its_text_as_equal() -> None:
    # The one part of the judgement the local CDE cannot show over HTTP: it refuses numbers sent as
    # text, while a real CDE may store a number we sent as its text (or the reverse).
    sent = {"name": "j", "spark": {"file": "a.py", "numExecutors": 2}}
    assert _same_as_sent(sent, {"name": "j", "spark": {"file": "a.py", "numExecutors": "2"}})
    assert not _same_as_sent(sent, {"name": "j", "spark": {"file": "a.py", "numExecutors": "3"}})
