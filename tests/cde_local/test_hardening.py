"""Local CDE under hostile input (findings of a security probe): CDE's 4xx answers with its error
body, never a 500, and no request that stalls the server. Real HTTP, no Spark."""

from __future__ import annotations

import base64
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cde_local import LocalCde
from tests.fixtures.cde_local import PASSWORD, USER, CdeApi, cde_error, start_cli, unique

PROMPT_S = 10.0  # a linear-time filter answers in milliseconds; a backtracking one never does


# -- list filters ---------------------------------------------------------------------------------
def test_evil_list_filters_answer_promptly_and_the_server_stays_responsive(tmp_path: Path) -> None:
    # A separate process: a server stuck in a backtracking regex holds the GIL and ignores SIGTERM,
    # which in process would hang the whole test session instead of failing this test.
    server = start_cli(tmp_path / "cde", tmp_path / "server.log")
    try:
        api = server.api()
        name = "a" * 39 + "-"  # job names allow no '!'; any non-matching last character will do
        api.create_job({"name": name, "spark": {"file": "a" * 39 + "!"}})
        expected = {
            "name[rlike]^(a+)+$": [],
            "spark.file[rlike]^(a+)+$": [],
            "name[rlike]^(a+)+-$": [name],
            f"spark.file[like]{'%a' * 12}%b": [],
        }

        def names(condition: str) -> list[str]:
            reply = api.get("/jobs", params={"filter": condition}, timeout=PROMPT_S)
            assert reply.status_code == 200, reply.text
            return [job["name"] for job in reply.json()["jobs"]]

        with ThreadPoolExecutor(len(expected)) as pool:
            answers = {condition: pool.submit(names, condition) for condition in expected}
            health = requests.get(api.base_url + "/local/health", timeout=PROMPT_S)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert {condition: answer.result() for condition, answer in answers.items()} == expected
        assert server.stop() == 0  # SIGTERM: a clean exit
    finally:
        server.stop(signal.SIGKILL)  # nothing left running if the test failed before


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)", "(?<=a)b", "(?P<x>a)(?P=x)", "[", "a{1001}"])
def test_patterns_re2_cannot_run_are_a_400(api: CdeApi, pattern: str) -> None:
    assert "bad regular expression" in cde_error(
        api.get("/jobs", params={"filter": f"name[rlike]{pattern}"}), 400
    )


def test_oversized_filters_are_a_400(api: CdeApi) -> None:
    for operator in ("like", "rlike"):
        assert "at most 1000" in cde_error(
            api.get("/jobs", params={"filter": f"name[{operator}]{'a' * 1001}"}), 400
        )
    assert "at most 1000" in cde_error(api.get("/jobs", params={"filter": "name[in]" + "x," * 1000 + "x"}), 400)
    assert "at most 50" in cde_error(api.get("/jobs", params={"filter": ["name[noteq]x"] * 51}), 400)
    reply = api.get("/jobs", params={"filter": [f"name[like]{'%' * 1000}", f"name[rlike]{'a?' * 500}"]})
    assert reply.status_code == 200, reply.text


def test_like_matches_literally_except_percent_and_underscore(api: CdeApi) -> None:
    tag = unique("like")
    for name in (f"{tag}.v1", f"{tag}Xv1", f"{tag}.v1-b"):
        api.create_job({"name": name, "spark": {"file": "a\nb.py"}})

    def names(condition: str) -> list[str]:
        reply = api.get("/jobs", params={"filter": [f"name[like]{tag}%", condition]})
        assert reply.status_code == 200, reply.text
        return [job["name"] for job in reply.json()["jobs"]]

    assert names(f"name[like]{tag}.v_") == [f"{tag}.v1"]  # '.' is a dot, '_' one character
    assert names(f"name[like]{tag}_v%") == [f"{tag}.v1", f"{tag}.v1-b", f"{tag}Xv1"]
    assert names("spark.file[like]a%b.py") == names("spark.file[like]a_b.py") != []  # across a newline
    assert names("spark.file[rlike]^a.b") == []  # rlike's '.' stops at a newline, as in Python's re


# -- credentials ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "Bearer tökén".encode(),
        "Bearer tökén".encode("latin-1"),
        "Bearer a.b.cö".encode(),
        "Bearer a.b.cö".encode("latin-1"),
    ],
)
def test_non_ascii_bearer_tokens_are_a_401(local_cde_manual: LocalCde, value: bytes) -> None:
    url = local_cde_manual.jobs_api_url + "/info"
    cde_error(requests.get(url, headers={"Authorization": value}, timeout=PROMPT_S), 401)


def test_a_real_token_with_a_non_ascii_signature_is_a_401(local_cde_manual: LocalCde) -> None:
    token = CdeApi(local_cde_manual).token.encode()
    url = local_cde_manual.jobs_api_url + "/info"
    for forged in (token + "é".encode(), token[:-2] + "é".encode("latin-1")):
        cde_error(requests.get(url, headers={"Authorization": b"Bearer " + forged}, timeout=PROMPT_S), 401)


@pytest.mark.parametrize(
    "value",
    [
        "Basic tökén".encode(),
        "Basic tökén".encode("latin-1"),
        b"Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()) + "é".encode(),
        b"Basic " + base64.b64encode(b"\xff\xfe:\xff"),  # decodes to bytes that are not UTF-8
    ],
)
def test_non_ascii_basic_credentials_are_a_401(local_cde_manual: LocalCde, value: bytes) -> None:
    reply = requests.get(local_cde_manual.token_url, headers={"Authorization": value}, timeout=PROMPT_S)
    cde_error(reply, 401)
    assert reply.headers["WWW-Authenticate"].startswith("Basic")


# -- paths and ids --------------------------------------------------------------------------------
def test_overlong_file_paths_are_a_400_and_the_longest_allowed_work(api: CdeApi) -> None:
    resource = unique("res")
    api.create_resource(resource)
    for path in ("a" * 300, "a" * 256, "é" * 128, "/".join(["d" * 200] * 6)):
        reply = api.put(f"/resources/{resource}/{path}", files={"file": ("f", b"x")})
        assert "at most 1024 bytes" in cde_error(reply, 400)
    for path in ("b" * 255, "/".join(["c" * 250] * 4)):  # a segment of NAME_MAX; 1003 bytes in all
        api.upload(resource, path, b"content")
        assert api.get(f"/resources/{resource}/{path}").content == b"content"
    job = {"name": unique("job"), "spark": {"file": "a.py"}}
    mount = {"resourceName": resource, "dirPrefix": "p" * 300}
    assert "dirPrefix" in cde_error(api.post("/jobs", json={**job, "mounts": [mount]}), 400)


@pytest.mark.parametrize("run_id", ["99999999999999999999999", "-99999999999999999999999", str(2**63)])
def test_run_ids_beyond_64_bits_are_not_found(api: CdeApi, run_id: str) -> None:
    not_found = cde_error(api.get("/job-runs/999999999"), 404)  # an ordinary id no run has
    for method, path in (
        ("GET", ""),
        ("GET", "/log-types"),
        ("GET", "/logs?type=driver/stdout"),
        ("POST", "/kill"),
    ):
        assert cde_error(api.request(method, f"/job-runs/{run_id}{path}"), 404) == not_found


def test_list_paging_beyond_64_bits_is_a_400(api: CdeApi) -> None:
    for params in ({"limit": "9" * 30}, {"offset": "9" * 30}, {"limit": str(2**63)}, {"offset": "1_0"}):
        assert "64-bit" in cde_error(api.get("/jobs", params=params), 400)
    largest = str(2**63 - 1)
    reply = api.get("/jobs", params={"limit": largest, "offset": largest})
    assert reply.status_code == 200 and reply.json()["jobs"] == []


# -- JSON bodies ----------------------------------------------------------------------------------
def _job_with(name: str, airflow_value: bytes) -> bytes:
    return b'{"name": "%s", "spark": {"file": "a.py"}, "airflow": {"x": %s}}' % (name.encode(), airflow_value)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        _job_with("deep", b"[" * 63 + b"]" * 63),  # 65 levels: parses, but too deep to keep
        _job_with("nan", b"NaN"),
        _job_with("inf", b"-Infinity"),
        _job_with("huge", b"1e400"),
        _job_with("surrogate", b'"\\ud800"'),
    ],
    ids=["array-100000", "object-100000", "depth-65", "nan", "infinity", "1e400", "lone-surrogate"],
)
def test_json_bodies_that_cannot_be_kept_are_a_400(
    local_cde_manual: LocalCde, api: CdeApi, body: bytes
) -> None:
    job = unique("job")
    api.create_job({"name": job, "spark": {"file": "a.py"}})
    for method, path in (
        ("POST", "/jobs"),
        ("PATCH", f"/jobs/{job}"),
        ("POST", f"/jobs/{job}/run"),
        ("POST", "/resources"),
    ):
        assert "invalid JSON body" in cde_error(api.request(method, path, data=body), 400)
    faults = requests.put(local_cde_manual.base_url + "/local/faults", data=body, timeout=PROMPT_S)
    cde_error(faults, 400)
    assert api.get("/jobs", params={"limit": 1000}).status_code == 200


def test_json_bodies_nested_64_levels_are_kept(api: CdeApi) -> None:
    name = unique("job")
    reply = api.post("/jobs", data=_job_with(name, b"[" * 62 + b"]" * 62))
    assert reply.status_code == 201, reply.text
    assert api.get(f"/jobs/{name}").status_code == 200
    assert api.get("/jobs", params={"filter": f"name[eq]{name}"}).json()["meta"]["count"] == 1


# -- our own failures -----------------------------------------------------------------------------
def test_an_internal_error_answers_a_generic_500_and_logs_the_traceback(
    local_cde_factory: Callable[..., LocalCde], caplog: pytest.LogCaptureFixture
) -> None:
    cde = local_cde_factory(run_mode="manual")
    api = CdeApi(cde)
    api.create_resource("res", {"broken.txt": b"content"})
    stored = cde.config.data_dir / "resources" / "res" / "broken.txt"
    stored.unlink()
    stored.mkdir()  # the data directory broken under the server: reading the file raises
    with caplog.at_level(logging.ERROR, logger="cde_local"):
        reply = api.get("/resources/res/broken.txt")
    assert cde_error(reply, 500) == "internal error; see the local CDE's log"
    assert "IsADirectoryError" not in reply.text and str(stored) not in reply.text
    [record] = [r for r in caplog.records if r.name.startswith("cde_local")]
    assert "GET /dex/api/v1/resources/res/broken.txt" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], IsADirectoryError)
