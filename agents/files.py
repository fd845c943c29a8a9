"""The healer's files are its user's alone: directories 0700, files 0600.

Records, checkpoints and leases hold job code, logs and the model's answers; nobody else on a
shared machine (a CAI session host, a gateway node) needs to read them. Modes are set when a path is
created and tightened when it exists with looser ones (written by an earlier version).
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner may enter (parents it creates get the umask's mode)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """``path`` as an existing file only its owner may read, created empty when missing."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE))
    _tighten(path, FILE_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    if path.stat().st_mode & 0o777 & ~mode:
        os.chmod(path, mode)
