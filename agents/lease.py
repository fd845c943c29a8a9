"""One healer per incident at a time: an exclusive ``flock`` on ``<data dir>/leases/<incident>.lock``.

Two healers on one incident (a watcher and ``python -m app heal``, the dashboard and the CLI, two
``Healer`` objects in one process) would run its stages twice, interleave their record writes and
trip over each other's checkpoints. ``with IncidentLease(directory, incident):`` takes the lease
without waiting: a heal takes minutes, so the loser gets ``IncidentBusy`` and leaves the incident to
the holder. The kernel drops a flock when the holder's file is closed, which happens however the
holder ends (return, exception, crash, kill -9), so a lease never outlives its holder and needs no
expiry. flock locks belong to the open file, not the process, so two opens in one process exclude
each other too. Lock files stay (removing one would race with its next holder); each holds the
last holder's pid and start time, for the loser's message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from agents.errors import IncidentBusy, InvalidInput
from agents.files import FILE_MODE, private_dir
from agents.times import utc_now

MAX_HOLDER_CHARS = 200


class IncidentLease:
    """The exclusive right to work on one incident, held from ``acquire`` (or ``with``) to ``release``."""

    def __init__(self, directory: Path, incident: str) -> None:
        if not incident or "/" in incident or "\0" in incident or incident.startswith("."):
            raise InvalidInput(f"not an incident id: {incident!r}")
        self.incident = incident
        self.path = directory / f"{incident}.lock"
        self._fd: int | None = None

    def acquire(self) -> IncidentLease:
        """Takes the lease now, or raises ``IncidentBusy`` naming the holder."""
        if self._fd is not None:
            raise InvalidInput(f"the lease of {self.incident} is held already by this object")
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, MAX_HOLDER_CHARS, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise IncidentBusy(self.incident, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {utc_now()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file drops the lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> IncidentLease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
