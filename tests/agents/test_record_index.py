"""The incident index (`agents/record_index.py`) against the record files it summarizes.

- `save` writes the row with the file: listing, `exists`, open incidents and the healer's own runs
  answer from the index, and they match the files.
- A record saved by another store, or by another process, is seen at once; a file dropped in by
  hand is picked up (also in the same clock tick as a save of ours), and a removed file drops its row.
- A deleted, corrupt or foreign-version index is rebuilt from the files; a file written while no
  healer ran (a crash between file and row) is indexed by the next process.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from agents.record import (
    Attempt,
    FailedRun,
    IncidentRecord,
    Preflight,
    RecordStore,
    incident_id,
    summarize,
)
from agents.record_index import RACY_NS, SCHEMA_VERSION
from tests.paths import REPO


def record(job: str, run_id: int, state: str = "healed", opened_at: str = "2026-01-01T00:00:00.000000Z",
           **fields) -> IncidentRecord:
    return IncidentRecord(incident_id=incident_id(job, run_id), job=job, run_id=run_id, state=state,
                          opened_at=opened_at, failed_run=FailedRun(id=run_id, job=job, status="failed"), **fields)


def filled(tmp_path: Path, count: int = 5) -> RecordStore:
    store = RecordStore(tmp_path)
    for i in range(count):
        store.save(record(f"job-{i % 2}", 100 + i, state="healed" if i % 2 else "diagnosing",
                          opened_at=f"2026-01-01T00:00:{i:02d}.000000Z"))
    return store


def rows(store: RecordStore) -> list:
    """The index's rows without their sequence numbers."""
    return [replace(row, seq=0) for row in store.summaries()]


def from_files(store: RecordStore) -> list:
    """What the rows must be: every record file, summarized, newest first."""
    records = sorted(store.all(), key=lambda r: (r.opened_at, r.incident_id), reverse=True)
    return [summarize(r) for r in records]


def drop_in(store: RecordStore, rec: IncidentRecord) -> None:
    """A record file written by hand: not through RecordStore."""
    store.path(rec.incident_id).write_text(rec.model_dump_json(), encoding="utf-8")


def test_saved_records_are_answered_from_the_index(tmp_path):
    store = filled(tmp_path)
    fixing = record("job-9", 7, state="verifying", attempts=[Attempt(
        number=1, fix_run_id=71, check_run_id=72, preflight=Preflight(job="job-9-fix-1-preflight", run_id=70))])
    store.save(fixing)
    assert rows(store) == from_files(store)
    assert [row.incident_id for row in store.summaries()][:2] == ["job-0--104", "job-1--103"]
    assert store.exists("job-9--7") and not store.exists("job-9--8")
    assert store.known(["job-9--7", "job-0--100", "nope--1"]) == {"job-9--7", "job-0--100"}
    assert set(store.open_incidents()) == {"job-0--100", "job-0--102", "job-0--104", "job-9--7"}
    assert store.started_by_healer([70, 71, 72, 73, 7]) == {70, 71, 72}
    assert store.index.path.stat().st_mode & 0o777 == 0o600 and store.index.path.is_relative_to(store.dir)


def test_a_rewritten_record_moves_its_row_and_only_the_changed_rows_are_returned(tmp_path):
    store = filled(tmp_path)
    last = max(row.seq for row in store.summaries())
    changed = store.load("job-0--102")
    changed.state = "healed"
    changed.attempts = [Attempt(number=1, verdict="healed")]
    store.save(changed)
    (row,) = store.summaries(since_seq=last)
    assert (row.incident_id, row.state, row.tries, row.verdict) == ("job-0--102", "healed", 1, "healed")
    assert "job-0--102" not in store.open_incidents()


def test_a_record_saved_by_another_store_or_process_is_seen(tmp_path):
    reader = filled(tmp_path)
    assert not reader.exists("late--1")
    RecordStore(tmp_path).save(record("late", 1))  # another store object on the same directory
    assert reader.exists("late--1")
    script = ("import sys; from agents.record import IncidentRecord, FailedRun, RecordStore\n"
              "RecordStore(sys.argv[1]).save(IncidentRecord(incident_id='other--2', job='other', run_id=2,"
              " failed_run=FailedRun(id=2, job='other', status='failed')))\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    assert reader.exists("other--2")
    assert rows(reader) == from_files(reader)


def test_a_record_file_dropped_in_by_hand_is_picked_up_and_a_removed_one_dropped(tmp_path):
    store = filled(tmp_path)
    _, removed = store.index.version()
    drop_in(store, record("by-hand", 5, state="open"))
    assert store.exists("by-hand--5") and "by-hand--5" in store.open_incidents()
    store.path("job-1--101").unlink()
    assert not store.exists("job-1--101")
    assert store.index.version()[1] == removed + 1  # a reader of changed rows knows to start over
    assert rows(store) == from_files(store)


def test_a_file_dropped_in_the_same_clock_tick_as_a_save_is_picked_up_a_moment_later(tmp_path):
    store = filled(tmp_path)
    directory = store.dir
    store.summaries()  # the index has seen the directory as it is
    store.save(record("ours", 1))  # and takes it as seen after its own write
    seen = os.stat(directory).st_mtime_ns
    drop_in(store, record("same-tick", 2))
    os.utime(directory, ns=(seen, seen))  # as a coarse clock leaves it: the directory's mtime unchanged
    deadline = time.monotonic() + 3 * RACY_NS / 1e9
    while not store.exists("same-tick--2"):  # bounded by the deadline
        assert time.monotonic() < deadline, "a file dropped in the same tick as a save was never indexed"
        time.sleep(0.1)


def test_a_deleted_index_is_rebuilt_from_the_files(tmp_path):
    store = filled(tmp_path, 12)
    expected = from_files(store)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store.index.path}{suffix}").unlink(missing_ok=True)
    read_before = store.index.files_read
    assert rows(store) == expected  # the same store object: it notices its file is gone
    assert store.index.files_read - read_before == 12


def test_a_corrupt_or_foreign_index_is_rebuilt_from_the_files(tmp_path):
    store = filled(tmp_path, 7)
    expected = from_files(store)
    store.index.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{store.index.path}{suffix}").unlink(missing_ok=True)
    store.index.path.write_bytes(b"this is not a database" * 100)
    reopened = RecordStore(tmp_path)
    assert rows(reopened) == expected
    assert reopened.index.files_read == 7
    reopened.index.close()

    with sqlite3.connect(reopened.index.path) as db:  # an index written by another version of the healer
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.execute("DELETE FROM incidents")
    db.close()
    again = RecordStore(tmp_path)
    assert rows(again) == expected
    assert again.index.files_read == 7


def test_a_record_written_while_no_healer_ran_is_indexed_by_the_next_process(tmp_path):
    store = filled(tmp_path)
    store.summaries()  # the index has seen the directory as it is
    store.index.close()
    seen = os.stat(store.dir).st_mtime_ns
    drop_in(store, record("crashed", 3))  # as a healer that died between the file and its row
    os.utime(store.dir, ns=(seen, seen))  # and the index's note of the directory still matches
    later = RecordStore(tmp_path)
    assert later.exists("crashed--3")
    assert later.index.files_read == 1  # only the file without a row was read
