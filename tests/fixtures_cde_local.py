"""Fixtures for the cde_local tests (loaded by conftest.py).

- `local_cde` (session): a LocalCde running jobs on real Spark, on a free port, with a temporary
  data directory. python-env builds use `pip --no-index --find-links <local_wheels>` so they
  never reach the network; `local_wheels` holds the tiny `cde-local-probe` wheel.
- `local_cde_manual` (session): the same in manual run mode (nothing launched; tests drive runs
  with `cde.backend.set_run_status` / `write_run_log`), for API tests that need no Spark.
- `local_cde_factory` (function): `local_cde_factory(run_mode="manual", run_timeout_s=5, ...)`
  starts a fresh LocalCde (own data directory unless `data_dir` is given); all are stopped after
  the test.
- `cde_api` (function): a `CdeApi` for `local_cde`. `CdeApi(cde)` works for any server: it gets a
  token once and sends authorized requests with `requests`.
- `start_cli(data_dir, log)`: a `python -m cde_local` process (user `alice:secret`), for tests that
  crash or signal the server, or that must survive it hanging; `.process`, `.url`, `.close()`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import requests

from cde_local import API_PREFIX, TOKEN_PATH, LocalCde, LocalCdeConfig

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "dex-user", "dex-password"
HTTP_TIMEOUT_S = 60.0
RUN_WAIT_S = 240.0  # a tiny Spark job takes 10-30 s here; generous for a loaded machine
PROBE_WHEEL = "cde_local_probe-1.0-py3-none-any.whl"
PROBE_VALUE = "probe-ok"


class CdeApi:
    """Authorized calls to one local CDE's Jobs API, through `requests`."""

    def __init__(self, cde: LocalCde | str, user: str = USER, password: str = PASSWORD) -> None:
        """`cde`: a LocalCde, or the JOBS API URL of any local CDE (e.g. one started by the CLI)."""
        self.url = cde if isinstance(cde, str) else cde.jobs_api_url
        self.base_url = self.url.removesuffix(API_PREFIX)
        self.token_url = self.base_url + TOKEN_PATH
        self.cde = cde if isinstance(cde, LocalCde) else None
        self.user = user
        self.password = password
        self._token: str | None = None

    def fetch_token(self) -> dict[str, Any]:
        reply = requests.get(self.token_url, auth=(self.user, self.password), timeout=HTTP_TIMEOUT_S)
        reply.raise_for_status()
        return reply.json()

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = self.fetch_token()["access_token"]
        return self._token

    @token.setter
    def token(self, value: str) -> None:
        self._token = value

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=HTTP_TIMEOUT_S, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    # -- conveniences ---------------------------------------------------------------------------
    def create_resource(self, name: str, files: dict[str, bytes] | None = None, **body: Any) -> None:
        reply = self.post("/resources", json={"name": name, **body})
        assert reply.status_code == 201, reply.text
        for path, content in (files or {}).items():
            self.upload(name, path, content)

    def upload(self, resource: str, path: str, content: bytes) -> requests.Response:
        reply = self.put(f"/resources/{resource}/{path}", files={"file": ("filename", content)})
        assert reply.status_code == 201, reply.text
        return reply

    def create_job(self, spec: dict[str, Any]) -> None:
        reply = self.post("/jobs", json=spec)
        assert reply.status_code == 201, reply.text

    def run(self, job: str, body: dict[str, Any] | None = None) -> int:
        reply = self.post(f"/jobs/{job}/run", json=body or {})
        assert reply.status_code == 201, reply.text
        return int(reply.json()["id"])

    def describe_run(self, run_id: int) -> dict[str, Any]:
        reply = self.get(f"/job-runs/{run_id}")
        assert reply.status_code == 200, reply.text
        return reply.json()

    def log(self, run_id: int, log_type: str) -> str:
        reply = self.get(f"/job-runs/{run_id}/logs", params={"type": log_type})
        assert reply.status_code == 200, reply.text
        return reply.text

    def wait_run(
        self, run_id: int, timeout_s: float = RUN_WAIT_S, until: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Poll until the run has ended (or reached a status in `until`); fail the test on timeout."""
        wanted = until or ("succeeded", "failed", "killed", "unknown")
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.describe_run(run_id)
            if run["status"] in wanted:
                return run
            if time.monotonic() > deadline:
                pytest.fail(f"run {run_id} still {run['status']} after {timeout_s:g} s")
            time.sleep(0.5)

    def wait_log(self, run_id: int, log_type: str, text: str, timeout_s: float = RUN_WAIT_S) -> str:
        """Poll a log until it contains `text` (the run must not end first)."""
        deadline = time.monotonic() + timeout_s
        while True:
            log = self.log(run_id, log_type)
            if text in log:
                return log
            status = self.describe_run(run_id)["status"]
            if status not in ("starting", "running") or time.monotonic() > deadline:
                pytest.fail(f"run {run_id} ({status}) never wrote {text!r} to {log_type}:\n{log}")
            time.sleep(0.5)

    def wait_resource(self, name: str, statuses: tuple[str, ...], timeout_s: float = 300.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            resource = self.get(f"/resources/{name}").json()
            if resource["status"] in statuses:
                return resource
            if time.monotonic() > deadline:
                pytest.fail(f"resource {name} still {resource['status']} after {timeout_s:g} s")
            time.sleep(0.3)


def build_probe_wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel (`import cde_local_probe`), made by hand: no build backend needed."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "cde_local_probe/__init__.py": f'VALUE = "{PROBE_VALUE}"\n'.encode(),
        "cde_local_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: cde-local-probe\nVersion: 1.0\n",
        "cde_local_probe-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(content)}")
    record.append("cde_local_probe-1.0.dist-info/RECORD,,")
    files["cde_local_probe-1.0.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = directory / PROBE_WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return wheel


@pytest.fixture(scope="session")
def local_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("wheels")
    build_probe_wheel(directory)
    return directory


def offline_pip_args(wheels: Path) -> tuple[str, ...]:
    return ("--no-index", "--find-links", str(wheels))


@pytest.fixture(scope="session")
def local_cde(tmp_path_factory: pytest.TempPathFactory, local_wheels: Path) -> Iterator[LocalCde]:
    config = LocalCdeConfig(
        data_dir=tmp_path_factory.mktemp("cde-session"),
        port=0,
        pyenv_pip_args=offline_pip_args(local_wheels),
    )
    with LocalCde(config) as cde:
        yield cde


@pytest.fixture(scope="session")
def local_cde_manual(tmp_path_factory: pytest.TempPathFactory, local_wheels: Path) -> Iterator[LocalCde]:
    """A LocalCde in manual run mode: runs stay `starting` until driven by `backend.set_run_status`."""
    config = LocalCdeConfig(
        data_dir=tmp_path_factory.mktemp("cde-manual"),
        port=0,
        run_mode="manual",
        pyenv_pip_args=offline_pip_args(local_wheels),
    )
    with LocalCde(config) as cde:
        yield cde


@pytest.fixture
def local_cde_factory(tmp_path: Path, local_wheels: Path) -> Iterator[Callable[..., LocalCde]]:
    started: list[LocalCde] = []
    counter = itertools.count(1)

    def make(**fields: Any) -> LocalCde:
        fields.setdefault("data_dir", tmp_path / f"cde-{next(counter)}")
        fields.setdefault("port", 0)
        fields.setdefault("pyenv_pip_args", offline_pip_args(local_wheels))
        cde = LocalCde(LocalCdeConfig(**fields)).start()
        started.append(cde)
        return cde

    yield make
    for cde in reversed(started):
        cde.stop()


@pytest.fixture
def cde_api(local_cde: LocalCde) -> CdeApi:
    return CdeApi(local_cde)


def live_processes_in_group(process_group: int) -> list[int]:
    """Pids of non-zombie processes in a process group, read from /proc (independent of cde_local)."""
    pids = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rfind(")") + 2 :].split()[:3]
        if state != "Z" and int(group) == process_group:
            pids.append(int(stat_file.parent.name))
    return pids


def process_group_of(submitter_log: str) -> int:
    """The process group the runner reported in a run's submitter/stdout."""
    for line in submitter_log.splitlines():
        if "process group" in line and "started" in line:
            return int(line.rsplit("process group", 1)[1].strip())
    raise AssertionError(f"no process group in submitter log:\n{submitter_log}")


SLEEPER_APP = b"""import sys, time
print("SLEEPING", flush=True)
time.sleep(float(sys.argv[1]))
print("WOKE UP")
"""


class CliServer:
    def __init__(self, process: subprocess.Popen[str], url: str, log: IO[str]) -> None:
        self.process = process
        self.url = url
        self.log = log

    def close(self) -> None:
        self.log.close()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_cli(data_dir: Path, log: Path) -> CliServer:
    """`python -m cde_local` on a free port with the user alice:secret; its stderr goes to `log`."""
    log_handle = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cde_local",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--user",
            "alice:secret",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log_handle,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()  # the first line, printed once the server listens
    if not line.startswith("JOBS_API_URL=http://127.0.0.1:"):
        process.kill()
        process.wait()
        log_handle.close()
        pytest.fail(f"unexpected first line {line!r}; server log:\n{log.read_text()}")
    return CliServer(process, line.split("=", 1)[1], log_handle)


def cde_error(reply: requests.Response, status: int) -> str:
    """The message of a CDE error answer with ``status`` (its body: status "error" and a message)."""
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["status"] == "error" and isinstance(body["message"], str) and body["message"]
    return body["message"]


def unique(prefix: str) -> str:
    """A name no other test uses (tests share one server)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def api(local_cde_manual: LocalCde) -> CdeApi:
    """Raw HTTP to the shared manual-mode local CDE (a module may define its own ``api``)."""
    return CdeApi(local_cde_manual)


def deploy_failed_run(cde: LocalCde, client: Any, job: str, files: dict[str, str], log: str,
                      args: list[str]) -> int:
    """A job (its files in resource ``<job>-files``, the first file its application) and one failed
    run of it whose driver log is ``log``, on a manual-mode local CDE. Returns the run id."""
    resource = f"{job}-files"
    client.create_resource(resource)
    for path, text in files.items():
        client.upload_file(resource, path, text)
    client.create_job({"name": job, "type": "spark", "mounts": [{"resourceName": resource}],
                       "spark": {"file": next(iter(files)), "args": args}})
    run_id = client.run_job(job)
    cde.backend.write_run_log(run_id, "driver/stdout", log)
    cde.backend.set_run_status(run_id, "running")
    cde.backend.set_run_status(run_id, "failed")
    return run_id
