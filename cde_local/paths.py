"""Where the local CDE keeps things under its data directory.

<data_dir>/state.db                        SQLite state (store.py)
<data_dir>/resources/<name>/<path>         files uploaded to resources
<data_dir>/runs/<id>/logs/<source>/<stream>  run logs, e.g. runs/7/logs/driver/stdout
<data_dir>/runs/<id>/work/app/mount/...    the run's working directory with its mounts
<data_dir>/runs/<id>/eventlog/             the run's Spark event log (served as driver/event)
<data_dir>/warehouse/                      spark.sql.warehouse.dir shared by all runs
<data_dir>/metastore/                      the metastore service's Derby home, service.log, service.json
<data_dir>/pyenvs/<name>/venv/             python-env virtual environments
<data_dir>/pyenvs/<name>/build.log         output of the last build
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import BadRequest

# Log types a Spark run has; the files exist from the moment the run is created.
LOG_TYPES = ("driver/stdout", "driver/stderr", "submitter/stdout")
# Relative paths become file names under the data directory: keep each segment within the file
# system's NAME_MAX and the whole well within PATH_MAX (4096, with the data directory in front).
MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 1024


@dataclass(frozen=True)
class DataPaths:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "state.db"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def metastore(self) -> Path:
        return self.root / "metastore"

    def resource_dir(self, name: str) -> Path:
        return self.root / "resources" / name

    def resource_file(self, name: str, path: str) -> Path:
        return self.resource_dir(name) / path

    def run_dir(self, run_id: int) -> Path:
        return self.root / "runs" / str(run_id)

    def run_log(self, run_id: int, log_type: str) -> Path:
        return self.run_dir(run_id) / "logs" / log_type

    def run_work(self, run_id: int) -> Path:
        return self.run_dir(run_id) / "work"

    def run_mount_root(self, run_id: int) -> Path:
        return self.run_work(run_id) / "app" / "mount"

    def run_event_log_dir(self, run_id: int) -> Path:
        return self.run_dir(run_id) / "eventlog"

    def pyenv_dir(self, name: str) -> Path:
        return self.root / "pyenvs" / name

    def pyenv_venv(self, name: str) -> Path:
        return self.pyenv_dir(name) / "venv"

    def pyenv_python(self, name: str) -> Path:
        return self.pyenv_venv(name) / "bin" / "python"

    def pyenv_log(self, name: str) -> Path:
        return self.pyenv_dir(name) / "build.log"


def clean_relative_path(raw: str, what: str = "path") -> str:
    """A relative POSIX path without empty, '.' or '..' segments, of bounded length; BadRequest otherwise."""
    text = raw.strip("/")
    parts = text.split("/") if text else []
    if not parts or any(part in ("", ".", "..") for part in parts) or "\\" in text or "\x00" in text:
        raise BadRequest(f"invalid {what} {raw!r}: use a relative path without '.', '..' or empty segments")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES or any(
        len(part.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES for part in parts
    ):
        raise BadRequest(
            f"invalid {what} {raw[:80]!r}...: at most {MAX_PATH_BYTES} bytes in all and "
            f"{MAX_SEGMENT_BYTES} bytes per segment"
        )
    return str(PurePosixPath(*parts))


def mount_prefix(dir_prefix: str | None) -> str:
    """The directory under /app/mount/ a mount's files go to ('' for the mount root)."""
    if dir_prefix is None or dir_prefix.strip("/") == "":
        return ""
    return clean_relative_path(dir_prefix, "dirPrefix")
