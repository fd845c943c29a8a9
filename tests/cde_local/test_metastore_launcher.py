"""Local CDE: the metastore service listens on the loopback only (cde_local/java/LoopbackMetastore.java).

The real listening socket of the service's JVM, read from /proc, is 127.0.0.1 only (and the same
check sees Hive's own main on every interface); the shipped class is what its source compiles to."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cde_local import metastore
from cde_local.metastore import LAUNCHER_DIR, MetastoreService
from cde_local.paths import DataPaths
from cde_local.runner import spark_home

HIVE_MAIN = "org.apache.hadoop.hive.metastore.HiveMetaStore"  # binds every interface
WILDCARDS = {"0.0.0.0", "::"}


def _service(root: Path) -> MetastoreService:
    paths = DataPaths(root)
    paths.metastore.mkdir(parents=True)
    return MetastoreService(paths.metastore, paths.warehouse, lambda: spark_home(sys.executable))


def _proc_address(hex_address: str) -> str:
    """An address as /proc/net/tcp{,6} writes it (32-bit words in host order, little-endian here)."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    mapped = getattr(address, "ipv4_mapped", None)  # Java's sockets are IPv6 ones, ::ffff:127.0.0.1
    return str(mapped or address)


def _listening_addresses(pid: int, port: int) -> set[str]:
    """The local addresses of the sockets of `pid` listening on TCP `port`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port and fields[9] in inodes:  # 0A: LISTEN
                found.add(_proc_address(address))
    return found


def _outward_address() -> str | None:
    """This machine's address toward other hosts (a UDP connect sends nothing), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_the_service_listens_on_the_loopback_only_where_hive_s_main_listens_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loopback = _service(tmp_path / "launcher")
    monkeypatch.setattr(metastore, "MAIN_CLASS", HIVE_MAIN)
    wildcard = _service(tmp_path / "hive")
    try:
        wildcard.ensure_running(cancelled=lambda: True)  # starts it, waits for nothing yet
        monkeypatch.undo()
        assert loopback.ensure_running() and wildcard.ensure_running()
        outward = _outward_address()
        for service, expected_main in ((loopback, "LoopbackMetastore"), (wildcard, HIVE_MAIN)):
            assert service.pid is not None
            args = Path(f"/proc/{service.pid}/cmdline").read_bytes().decode().split("\0")
            assert expected_main in args
        port = int(loopback.uri.rsplit(":", 1)[1])
        assert _listening_addresses(loopback.pid, port) == {"127.0.0.1"}
        assert outward is None or not _connects(outward, port)
        hive_port = int(wildcard.uri.rsplit(":", 1)[1])
        assert _listening_addresses(wildcard.pid, hive_port) & WILDCARDS  # the check sees the difference
        assert outward is None or _connects(outward, hive_port)
    finally:
        loopback.stop()
        wildcard.stop()


def _disassembly(class_dir: Path) -> str:
    return subprocess.run(
        ["javap", "-c", "-p", "-classpath", str(class_dir), "LoopbackMetastore"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_shipped_class_runs_on_java_17() -> None:
    header = (LAUNCHER_DIR / "LoopbackMetastore.class").read_bytes()[:8]
    assert header[:4] == bytes.fromhex("cafebabe") and int.from_bytes(header[6:8], "big") == 61  # 61: Java 17


@pytest.mark.skipif(shutil.which("javac") is None or shutil.which("javap") is None, reason="needs a JDK")
def test_the_shipped_class_is_what_its_source_compiles_to(tmp_path: Path) -> None:
    jars = spark_home(sys.executable) / "jars"
    source = LAUNCHER_DIR / "LoopbackMetastore.java"
    javac = ["javac", "--release", "17", "-Xlint:-path", "-cp", f"{jars}/*", "-d", str(tmp_path), str(source)]
    subprocess.run(javac, capture_output=True, check=True)  # as `make metastore-launcher`
    assert _disassembly(tmp_path) == _disassembly(LAUNCHER_DIR), "run `make metastore-launcher`"
