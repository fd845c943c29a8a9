"""The sandbox launcher's files resource: `launcher.py` and a `sqlglot.zip` built from the installed
sqlglot (pure Python), byte for byte the same on every machine with the same versions.

The resource is named after its content (`healer-sandbox-<sha256[:12]>`), so a new launcher or sqlglot
gets a new resource and jobs never see a half-updated one.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import sqlglot

LAUNCHER = "launcher.py"
SQLGLOT_ZIP = "sqlglot.zip"
NAME_PREFIX = "healer-sandbox-"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the archive's bytes depend on content only


@dataclass(frozen=True)
class SandboxBundle:
    name: str
    files: dict[str, bytes]


def sqlglot_zip() -> bytes:
    """The installed sqlglot package as a zip for `sys.path` (no __pycache__, fixed timestamps, sorted)."""
    package = Path(sqlglot.__file__).resolve().parent
    sources = sorted(p for p in package.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sources:
            info = zipfile.ZipInfo(f"sqlglot/{path.relative_to(package).as_posix()}", FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def content_hash(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path}\0{len(files[path])}\0".encode())
        digest.update(files[path])
    return digest.hexdigest()


@functools.cache
def sandbox_bundle() -> SandboxBundle:
    """The bundle (built once per process)."""
    files = {LAUNCHER: (Path(__file__).parent / LAUNCHER).read_bytes(), SQLGLOT_ZIP: sqlglot_zip()}
    return SandboxBundle(name=NAME_PREFIX + content_hash(files)[:12], files=files)
