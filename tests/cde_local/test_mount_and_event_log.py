"""Local CDE: `/app/mount` paths written in job code resolve to the run's own mounts (a private mount
namespace per run), and every run's Spark event log is served as `driver/event`. Three Spark runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cde_local import LocalCde, eventlog
from cde_local.runner import MountNamespace, detect_mount_namespace, mount_namespace
from tests.fixtures.cde_local import CdeApi, cde_error, local_cde_config, poll, unique

EVENT_LOG = "driver/event"
RENDEZVOUS_S = 180  # how long each of the concurrent jobs waits for the other one

COUNTER = b"""import sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print("COUNT", spark.range(10).count(), flush=True)
time.sleep(float(sys.argv[1]))  # the test reads the event log while the application runs
spark.stop()
"""

# Reads mounted files only by the paths CDE jobs write in their code; meets its twin run half-way
# (marker files in a directory outside the mounts) so both are provably alive at the same time.
MOUNT_READER = f"""import sys, time
from pathlib import Path
import pandas as pd
from pyspark.sql import SparkSession
rendezvous, me, other = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with open("/app/mount/data/who.txt") as handle:
    print("OPEN", handle.read().strip(), flush=True)
print("PANDAS", ",".join(pd.read_csv("/app/mount/data/table.csv")["name"]), flush=True)
spark = SparkSession.builder.getOrCreate()
print("SPARK", ",".join(sorted(r.value for r in spark.read.text("/app/mount/lines.txt").collect())), flush=True)
rows = spark.sql("SELECT value FROM text.`/app/mount/lines.txt`").collect()
print("SQL", ",".join(sorted(r.value for r in rows)), flush=True)
(rendezvous / me).touch()
deadline = time.monotonic() + {RENDEZVOUS_S}
while not (rendezvous / other).exists():
    if time.monotonic() > deadline:
        sys.exit("the other run never got here")
    time.sleep(0.2)
print("BOTH RUNNING", flush=True)
spark.stop()
""".encode()


REAL_SPARK = True  # its own local CDE runs Spark: scheduled early (tests/conftest.py)


@pytest.fixture(scope="module")
def cde(tmp_path_factory: pytest.TempPathFactory, local_wheels: Path) -> Iterator[LocalCde]:
    config = local_cde_config(tmp_path_factory.mktemp("cde-mounts"), local_wheels, max_concurrent_runs=2)
    with LocalCde(config) as cde:
        yield cde


@pytest.fixture(scope="module")
def api(cde: LocalCde) -> CdeApi:
    return CdeApi(cde)


@pytest.fixture
def namespace() -> MountNamespace:
    """The platform's per-run mount namespace, detected as the product does; skips without one."""
    found = mount_namespace()
    if found.command is None:
        pytest.skip(f"no private mount namespace for runs on this platform: {found.note}")
    return found


def event_lines(text: str) -> list[dict[str, Any]]:
    """Parse an event log as dbt-spark-cde style readers do: a JSON object with "Event" a line."""
    events = [json.loads(line) for line in text.splitlines()]
    assert events and all(isinstance(event, dict) and "Event" in event for event in events)
    return events


def test_event_log_is_served_as_driver_event_while_running_and_after(cde: LocalCde, api: CdeApi) -> None:
    resource, job = unique("eventlog-apps"), unique("counter")
    api.create_resource(resource, files={"counter.py": COUNTER})
    api.create_job(
        {
            "name": job,
            "mounts": [{"resourceName": resource}],
            # in-memory: no Hive, so the run does not wait for the metastore service
            "spark": {"file": "counter.py", "args": ["12"], "conf": {"spark.sql.catalogImplementation": "in-memory"}},
        }
    )
    run_id = api.run(job)
    # Before Spark created the file the type is not listed and reading it is a 404, like any missing type.
    assert EVENT_LOG not in api.get(f"/job-runs/{run_id}/log-types").json()
    assert "log type 'driver/event' not found" in cde_error(
        api.get(f"/job-runs/{run_id}/logs", params={"type": EVENT_LOG}), 404
    )

    api.wait_log(run_id, "driver/stdout", "COUNT 10")
    partial = poll(  # the job ended (flushed); what exists so far is served, cut at a whole line
        lambda: api.log(run_id, EVENT_LOG) if EVENT_LOG in api.get(f"/job-runs/{run_id}/log-types").json() else "",
        lambda text: "SparkListenerJobEnd" in text,
        60,
        lambda text: f"no job end in the event log of run {run_id} so far:\n{text[-2000:]}",
    )
    assert api.describe_run(run_id)["status"] == "running"
    names = [event["Event"] for event in event_lines(partial)]
    assert "SparkListenerApplicationStart" in names and "SparkListenerApplicationEnd" not in names
    folder = cde.backend.paths.run_event_log_dir(run_id)
    assert [p.name.endswith(".inprogress") for p in folder.iterdir()] == [True]  # one plain file

    assert api.wait_run(run_id)["status"] == "succeeded"
    types = api.get(f"/job-runs/{run_id}/log-types").json()
    assert types == ["driver/stdout", "driver/stderr", "submitter/stdout", EVENT_LOG]
    events = event_lines(api.log(run_id, EVENT_LOG))
    names = [event["Event"] for event in events]
    assert names[0] == "SparkListenerLogStart" and names[-1] == "SparkListenerApplicationEnd"
    assert "SparkListenerApplicationStart" in names and "SparkListenerJobEnd" in names
    environment = next(e for e in events if e["Event"] == "SparkListenerEnvironmentUpdate")
    spark_properties = dict(environment["Spark Properties"])
    assert spark_properties["spark.eventLog.dir"] == str(cde.backend.paths.run_event_log_dir(run_id))
    assert spark_properties["spark.eventLog.compress"] == "false"
    assert [p.name.startswith("local-") and p.suffix == "" for p in folder.iterdir()] == [True]


def test_app_mount_in_code_resolves_to_each_concurrent_runs_own_mounts(
    namespace: MountNamespace, api: CdeApi, tmp_path: Path
) -> None:
    runs = {}
    for side in ("left", "right"):
        resource, job = unique(f"mounts-{side}"), unique(f"mount-reader-{side}")
        api.create_resource(
            resource,
            files={
                "reader.py": MOUNT_READER,
                "data/who.txt": f"I am {side}\n".encode(),
                "data/table.csv": f"name\n{side}-1\n{side}-2\n".encode(),
                "lines.txt": f"{side}-a\n{side}-b\n".encode(),
            },
        )
        other = "right" if side == "left" else "left"
        api.create_job(
            {
                "name": job,
                "mounts": [{"resourceName": resource}],
                "spark": {
                    "file": "/app/mount/reader.py",
                    "args": [str(tmp_path), side, other],
                    # no Hive: the runs need nothing shared but the machine
                    "conf": {"spark.sql.catalogImplementation": "in-memory"},
                },
            }
        )
        runs[side] = api.run(job)  # max_concurrent_runs=2: both launch at once

    for side, run_id in runs.items():
        run = api.wait_run(run_id)
        stdout = api.log(run_id, "driver/stdout")
        assert run["status"] == "succeeded", stdout + api.log(run_id, "driver/stderr")[-3000:]
        assert f"OPEN I am {side}\n" in stdout
        assert f"PANDAS {side}-1,{side}-2\n" in stdout
        assert f"SPARK {side}-a,{side}-b\n" in stdout and f"SQL {side}-a,{side}-b\n" in stdout
        assert "BOTH RUNNING" in stdout
        assert namespace.note in api.log(run_id, "submitter/stdout")
    assert not any(Path("/app/mount").iterdir()), "a run's mounts leaked into the host's /app/mount"


def test_without_namespace_tools_runs_are_told_why_and_how(tmp_path: Path) -> None:
    found = detect_mount_namespace(search_path=str(tmp_path))  # an empty PATH: no unshare, mount, sh
    assert found.command is None
    assert "will NOT resolve (unshare and mount and sh not found on PATH)" in found.note
    assert "still rewritten" in found.note and "install util-linux" in found.note


def test_event_logs_the_jobs_conf_redirects_are_found_when_local(tmp_path: Path) -> None:
    mount = tmp_path / "runs" / "7" / "work" / "app" / "mount"
    ours = eventlog.defaults(tmp_path / "own")
    assert eventlog.directory(ours, mount) == tmp_path / "own"
    assert eventlog.directory({**ours, eventlog.ENABLED: "false"}, mount) is None
    assert eventlog.directory({**ours, eventlog.DIR: "s3a://bucket/events"}, mount) is None
    assert eventlog.directory({**ours, eventlog.DIR: "file:///tmp/spark-events"}, mount) == Path("/tmp/spark-events")
    assert eventlog.directory({**ours, eventlog.DIR: "events"}, mount) == mount / "events"

    # A shared directory: the run's log is the one whose first events name its work directory; a
    # rolling log is served joined, up to its last complete line.
    shared = tmp_path / "spark-events"
    other = shared / "local-1.inprogress"
    rolling = shared / "eventlog_v2_local-2"
    rolling.mkdir(parents=True)
    other.write_text('{"Event":"SparkListenerEnvironmentUpdate","user.dir":"/elsewhere/runs/77/work/app"}\n')
    (rolling / "appstatus_local-2.inprogress").touch()
    (rolling / "events_1_local-2").write_text(f'{{"Event":"SparkListenerLogStart"}}\n{{"user.dir":"{mount}"}}\n')
    (rolling / "events_2_local-2").write_text('{"Event":"SparkListenerJobEnd"}\n{"Event":"Spark')
    marker = f"{tmp_path / 'runs' / '7' / 'work'}/"
    assert eventlog.locate(shared, own=False, marker=marker, since=0) == rolling
    assert eventlog.read(rolling).splitlines() == [
        '{"Event":"SparkListenerLogStart"}', f'{{"user.dir":"{mount}"}}', '{"Event":"SparkListenerJobEnd"}'
    ]
    assert eventlog.locate(shared, own=False, marker=marker.replace("/7/", "/77/"), since=0) is None
    assert eventlog.locate(shared, own=False, marker=marker, since=other.stat().st_mtime + 60) is None
    assert eventlog.locate(tmp_path / "missing", own=True, marker=marker, since=0) is None
