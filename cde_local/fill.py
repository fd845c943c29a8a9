"""A local CDE data directory filled with many jobs and runs, written straight into its store (for
benchmarks: 1,000 jobs and 10,000 runs take about a second, where the API would take minutes).

    from cde_local.fill import fill_store
    filled = fill_store(Path("/tmp/cde"), jobs=1000, runs=10000, seed=0)
    filled.run_ids, filled.failed          # every run id; (job, run id) of the failed runs
    # then: python -m cde_local --data-dir /tmp/cde (or LocalCde(data_dir=...)) serves them

The documents have the shapes the backend writes (spark jobs with `_complete_job`'s defaults, runs
as `run_job` makes them, ended as `_end_run` leaves them). Every run has ended (about 70% succeeded,
20% failed, 7% killed, 3% unknown): a run left starting or running would be failed by the server's
recovery at its next start. Runs have no log files and jobs mount no resources. The same seed gives
the same names, statuses, sizes and users; the timestamps count back from the time of the call.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import clock
from .paths import DataPaths
from .store import Store

STATUS_WEIGHTS = {"succeeded": 70, "failed": 20, "killed": 7, "unknown": 3}
SPAN = timedelta(days=30)  # the runs' start times spread over the 30 days before the call
OTHER_USERS = ("analyst-1", "analyst-2", "etl-bot")


@dataclass
class Filled:
    """What fill_store wrote, for the caller's requests and checks."""

    jobs: list[str] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)
    failed: list[tuple[str, int]] = field(default_factory=list)  # (job, run id), in id order


def fill_store(
    data_dir: Path,
    *,
    jobs: int = 1000,
    runs: int = 10000,
    seed: int = 0,
    user: str = "dex-user",
    password: str | None = None,
) -> Filled:
    """Write `jobs` spark jobs (`job-0000`, ...) and `runs` ended runs of them into the store of
    `data_dir` (created when missing), in one transaction. `user` owns the jobs and most runs.
    `password` is not used (a store holds no passwords: the server's `--user` does); it is taken so
    callers can pass the pair they start the server with. ValueError when `jobs` < 1 or `runs` < 0,
    or when a job of these names exists; the data directory must not be served meanwhile."""
    del password
    if jobs < 1 or runs < 0:
        raise ValueError(f"need at least 1 job and no negative run count (got {jobs} jobs, {runs} runs)")
    rng = random.Random(seed)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    filled = Filled()
    store = Store(DataPaths(Path(data_dir)).db)
    try:
        with store.transaction():
            specs = []
            for index in range(jobs):
                name, doc = _job(index, rng, now, user)
                if not store.insert_job(doc):
                    raise ValueError(f"job '{name}' already exists in {data_dir}")
                filled.jobs.append(name)
                specs.append(doc)
            starts = sorted(now - SPAN * rng.random() for _ in range(runs))  # ids increase with time
            statuses = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()), k=runs)
            for started, status in zip(starts, statuses, strict=True):
                job = rng.choice(specs)
                run = _run(job, status, started, rng, user)
                run_id = store.insert_run(run)
                filled.run_ids.append(run_id)
                if status == "failed":
                    filled.failed.append((job["name"], run_id))
    finally:
        store.close()
    return filled


def _job(index: int, rng: random.Random, now: datetime, user: str) -> tuple[str, dict[str, Any]]:
    name = f"job-{index:04d}"
    created = clock.rfc3339(now - SPAN - timedelta(hours=rng.randrange(1, 24 * 60)))
    spark = {
        "file": f"job_{index:04d}.py",
        "args": [f"--part={index % 16}"],
        "conf": {"spark.sql.shuffle.partitions": str(rng.choice((8, 16, 64)))},
        "driverMemory": "1g",
        "driverCores": 1,
        "executorMemory": rng.choice(("1g", "2g", "4g")),
        "executorCores": rng.choice((1, 2, 4)),
    }
    doc = {
        "name": name,
        "type": "spark",
        "created": created,
        "modified": created,
        "lastUsed": clock.rfc3339(now),
        "retentionPolicy": "keep_indefinitely",
        "spark": spark,
        "schedule": {"enabled": False, "user": user},
    }
    return name, doc


def _run(
    job: dict[str, Any], status: str, started: datetime, rng: random.Random, user: str
) -> dict[str, Any]:
    app_id = f"spark-{uuid.UUID(int=rng.getrandbits(128)).hex}"
    ended = started + timedelta(seconds=rng.randrange(8, 1800))
    return {
        "id": 0,
        "job": job["name"],
        "type": "spark",
        "status": status,
        "user": user if rng.random() < 0.9 else rng.choice(OTHER_USERS),
        "started": clock.rfc3339(started),
        "ended": clock.rfc3339(ended),
        "mounts": [],
        "spark": {
            "sparkAppID": app_id,
            "sparkAppURL": f"http://127.0.0.1:8765/hs/history/{app_id}/jobs/",
            "spec": dict(job["spark"]),
        },
        "identity": {"disableRoleProxy": True, "role": "instance"},
    }
