"""Spark event logs of runs, served as the log type `driver/event` as CDE does.

Every spark run writes its event log (SparkListener events, one JSON object a line, each with an
"Event" field) under CDE-like defaults: `spark.eventLog.enabled=true`, `spark.eventLog.dir=<data>/
runs/<id>/eventlog`, `spark.eventLog.compress=false` and `spark.eventLog.rolling.enabled=false`
(Spark 4 compresses and rolls by default; CDE's Spark 3 writes one plain file). A job's own conf
overrides each of these keys (its choice wins, as over CDE's spark-defaults); the log is still served
when it ends up uncompressed in a local directory (`file:`, an absolute path, or a path relative to
the driver's working directory, the mount directory).

Spark names the file `<app id>.inprogress` while the application runs and `<app id>` once it ended;
with `spark.eventLog.rolling.enabled=true` it is a directory `eventlog_v2_<app id>` of parts
`events_<n>_<app id>`, served joined. A run's own directory holds only its applications (the newest
is served); in another directory (e.g. a shared /tmp/spark-events) the run's log is one written
since the run started whose first events name the run's work directory (the driver's `user.dir`).
What is served ends at the last complete line, so a log still being written parses line by line.

Not served: compressed logs (`.lz4`, `.lzf`, `.snappy`, `.zstd`) and remote directories (hdfs:,
s3a:, ...). Until Spark has created the file, `driver/event` is not listed and asking for it is a
404 like any other type the run does not have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

LOG_TYPE = "driver/event"
ENABLED, DIR, COMPRESS = "spark.eventLog.enabled", "spark.eventLog.dir", "spark.eventLog.compress"
ROLLING = "spark.eventLog.rolling.enabled"
SPARK_DEFAULT_DIR = "/tmp/spark-events"  # Spark's own default for spark.eventLog.dir
HEAD_LINES = 20  # the environment update (with user.dir) is among the first few events
SINCE_SLACK_S = 2.0  # a run's `started` has whole seconds
_CODECS = (".lz4", ".lzf", ".snappy", ".zstd")
_ROLLING_PREFIX = "eventlog_v2_"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def defaults(directory: Path) -> dict[str, str]:
    """The event log conf every run starts from (the job's conf goes on top)."""
    return {ENABLED: "true", DIR: str(directory), COMPRESS: "false", ROLLING: "false"}


def directory(conf: Mapping[str, str], cwd: Path) -> Path | None:
    """The local directory Spark writes the event log to under an effective conf; None when the log
    is off or not local."""
    if conf.get(ENABLED, "false").strip().lower() != "true":
        return None
    raw = conf.get(DIR, SPARK_DEFAULT_DIR).strip()
    if raw.startswith("file:"):
        raw = "/" + raw[len("file:") :].lstrip("/")
    elif _SCHEME.match(raw):
        return None
    return cwd / raw  # an absolute `raw` stays as it is


def locate(folder: Path, own: bool, marker: str, since: float) -> Path | None:
    """The run's event log (a file, or a rolling log's directory) in `folder`, or None.

    `own`: the folder is the run's own (newest log wins); otherwise only logs modified since `since`
    (epoch s) whose first events contain `marker` (the run's work directory, with a trailing '/')."""
    try:
        names = list(folder.iterdir())
    except OSError:  # no such folder (yet)
        return None
    logs = []
    for entry in names:
        try:
            if _parts(entry):
                logs.append((entry.stat().st_mtime, entry))
        except OSError:  # renamed by Spark meanwhile (`.inprogress` dropped): its new name is listed too
            continue
    for mtime, entry in sorted(logs, key=lambda pair: pair[0], reverse=True):
        if own:
            return entry
        if mtime >= since - SINCE_SLACK_S and marker in _head(_parts(entry)[0]):
            return entry
    return None


def read(log: Path) -> str:
    """A located log's text up to its last complete line. Raises FileNotFoundError when Spark renamed
    it meanwhile (the `.inprogress` file at the application's end): locate it again."""
    parts = _parts(log)
    if not parts:
        raise FileNotFoundError(f"event log {log} is gone")
    text = "".join(part.read_text(encoding="utf-8", errors="replace") for part in parts)
    return text[: text.rfind("\n") + 1]


def _compressed(name: str) -> bool:
    return name.removesuffix(".inprogress").endswith(_CODECS)


def _parts(entry: Path) -> list[Path]:
    """The uncompressed files an event log consists of, in order; [] when `entry` is none."""
    if entry.name.startswith(".") or _compressed(entry.name):
        return []
    if entry.is_file():
        return [entry]
    if not entry.name.startswith(_ROLLING_PREFIX) or not entry.is_dir():
        return []
    parts = []
    for part in entry.iterdir():  # events_<n>_<app id>[.inprogress]; appstatus_* marks the state
        fields = part.name.split("_", 2)
        if fields[0] == "events" and len(fields) == 3 and fields[1].isdigit() and not _compressed(part.name):
            parts.append((int(fields[1]), part))
    return [part for _index, part in sorted(parts)]


def _head(path: Path) -> str:
    lines = []
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for _ in range(HEAD_LINES):
                line = handle.readline()
                if not line:
                    break
                lines.append(line)
    except OSError:
        return ""
    return "".join(lines)
