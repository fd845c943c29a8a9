"""Where the watcher stopped: the end time of the newest failed run it has dealt with.

Kept in ``<data dir>/watch-cursor.json`` (0600, written atomically) so that a restarted watcher
lists only the failures that ended since, instead of the whole lookback again. The cursor is an end
time, not a run id: a long run started before newer ones and failing after them ends after the
cursor, so it is still listed. It belongs to the set of watched jobs it was taken for: another
`JOB_NAME` starts from the lookback again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agents.times import utc_stamp

log = logging.getLogger("healer.watch")

CURSOR_FILE = "watch-cursor.json"


@dataclass(frozen=True)
class WatchCursor:
    ended: datetime  # the end time (UTC, as CDE reports it) of the newest failed run dealt with
    jobs: tuple[str, ...]  # the watched jobs it was taken for (empty: every job)


def load_cursor(data_dir: Path, jobs: tuple[str, ...]) -> datetime | None:
    """The stored cursor for `jobs`, or None (none yet, unreadable, or taken for other jobs)."""
    path = data_dir / CURSOR_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        ended = datetime.fromisoformat(stored["ended"].replace("Z", "+00:00"))
        taken_for = tuple(stored["jobs"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring the watch cursor %s (%s): listing the lookback again", path, exc)
        return None
    if taken_for != tuple(sorted(jobs)) or ended.tzinfo is None:
        return None
    return ended


def save_cursor(data_dir: Path, cursor: WatchCursor) -> None:
    body = {"ended": utc_stamp(cursor.ended), "jobs": sorted(cursor.jobs)}
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".tmp-cursor-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(body, fh)
    os.replace(tmp, data_dir / CURSOR_FILE)
