"""Local CDE: the HTTP server itself: absolute-form request lines (clients behind an HTTP proxy),
TCP_NODELAY on accepted connections, and a clear error without httptools (no Spark)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cde_local import LocalCde, LocalCdeConfig, bind_socket, http_server
from cde_local.__main__ import main
from cde_local.backend import Backend
from cde_local.errors import ConfigError
from cde_local.server import create_app
from tests.fixtures.cde_local import HTTP_TIMEOUT_S, CdeApi, start_cli


def raw_request(host: str, port: int, request_line: str, headers: dict[str, str]) -> tuple[int, Any]:
    """Send one request exactly as written (`Connection: close`): its status and JSON body."""
    lines = [request_line, *(f"{name}: {value}" for name, value in headers.items()), "Connection: close"]
    with socket.create_connection((host, port), timeout=HTTP_TIMEOUT_S) as client:
        client.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_an_absolute_form_request_line_reaches_its_route(local_cde_manual: LocalCde) -> None:
    """What a client behind an HTTP proxy sends (RFC 9112 §3.2.2); h11 took the URL as the path: 404."""
    token = CdeApi(local_cde_manual).token
    host, port = local_cde_manual.config.host, local_cde_manual.port
    headers = {"Host": f"{host}:{port}", "Authorization": f"Bearer {token}"}
    status, body = raw_request(
        host, port, f"GET {local_cde_manual.jobs_api_url}/jobs?limit=3 HTTP/1.1", headers
    )
    assert status == 200, body
    assert body["meta"]["limit"] == 3  # the query of the absolute URL is read too
    # The origin form still works, of course.
    status, body = raw_request(host, port, "GET /dex/api/v1/jobs?limit=4 HTTP/1.1", headers)
    assert status == 200 and body["meta"]["limit"] == 4


def test_the_standalone_server_reads_absolute_form_request_lines(tmp_path: Path) -> None:
    server = start_cli(tmp_path / "cde", tmp_path / "server.log")
    try:
        api = server.api()
        host, port = "127.0.0.1", int(server.url.split(":")[2].split("/")[0])
        headers = {"Host": f"{host}:{port}", "Authorization": f"Bearer {api.token}"}
        status, body = raw_request(host, port, f"GET {server.url}/jobs HTTP/1.1", headers)
        assert status == 200 and "jobs" in body, body
    finally:
        assert server.stop() == 0


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, int, Any]]:
    """The local CDE's app on `bind_socket(host, 0)` through `http_server`, as LocalCde.start and
    `python -m cde_local` serve it: (host, port, the uvicorn server)."""
    host = request.param
    try:
        sock = bind_socket(host, 0)
    except OSError as exc:
        pytest.skip(f"cannot listen on {host}: {exc}")
    backend = Backend(LocalCdeConfig(data_dir=tmp_path / "cde", run_mode="manual"))
    server = http_server(create_app(backend), log_level="warning", access_log=False)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + HTTP_TIMEOUT_S
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert server.started, "the server did not start"
        yield host, sock.getsockname()[1], server
    finally:
        server.should_exit = True
        thread.join(HTTP_TIMEOUT_S)
        backend.close()
        sock.close()


@pytest.mark.parametrize("served", ["127.0.0.1", "::1"], indirect=True)
def test_accepted_connections_have_tcp_nodelay(served: tuple[str, int, Any]) -> None:
    """asyncio sets TCP_NODELAY only on sockets whose `proto` is IPPROTO_TCP, and accepted sockets
    take the listening socket's: with protocol 0 every keep-alive answer waited for a delayed ACK."""
    host, port, server = served
    with socket.create_connection((host, port), timeout=HTTP_TIMEOUT_S) as client:
        client.sendall(f"GET /local/health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert client.recv(65536).startswith(b"HTTP/1.1 200 ")  # answered: the connection is kept
        connections = list(server.server_state.connections)
        assert len(connections) == 1
        accepted = connections[0].transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_without_httptools_the_local_cde_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "httptools", None)  # as if it were not installed
        with pytest.raises(ConfigError, match="httptools"):
            LocalCde(data_dir=tmp_path / "cde", run_mode="manual").start()
    # The failed start closed its backend: the data directory is free again.
    with LocalCde(data_dir=tmp_path / "cde", run_mode="manual") as cde:
        assert CdeApi(cde).get("/info").status_code == 200


def test_without_httptools_the_command_line_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "httptools", None)
    assert main(["--port", "0", "--data-dir", str(tmp_path / "cde")]) == 2
    assert "httptools" in capsys.readouterr().err
