"""Typed, read-only views of the CDE API's JSON objects.

Each model keeps the fields callers use, typed, plus `raw`: a private deep copy of the JSON exactly as
the server returned it (the healer copies `Job.raw` when it redeploys). Timestamps are timezone-aware
UTC datetimes; CDE's Go zero time ("0001-01-01T00:00:00Z", a run that has not ended) becomes None.
A reply that lacks a required field (a job without `name`, a run without `id`) raises ApiError.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import ApiError

__all__ = ["Mount", "Job", "JobRun", "ResourceFile", "Resource", "RUN_TERMINAL_STATUSES"]

# The statuses after which a run never changes. `unknown` is terminal as in the Airflow operator,
# which fails the task on it rather than polling on.
RUN_TERMINAL_STATUSES = frozenset({"succeeded", "failed", "killed", "unknown"})


_FRACTION = re.compile(r"\.(\d+)")


def _parse_time(value: Any, what: str) -> datetime | None:
    """RFC 3339 text → aware datetime; None for missing/empty values and for Go's zero time."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(f"unexpected {what} timestamp {value!r} in the reply")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Go writes up to 9 fractional digits; datetime reads exactly 6 (3.10) or at most 6.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(f"unexpected {what} timestamp {value!r} in the reply") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    if parsed.year <= 1:
        return None
    return parsed.astimezone(timezone.utc)


def _require(raw: Any, key: str, kind: str) -> Any:
    if not isinstance(raw, dict):
        raise ApiError(f"expected a {kind} object in the reply, got {type(raw).__name__}")
    if raw.get(key) is None:
        raise ApiError(f"{kind} object in the reply has no {key!r}")
    return raw[key]


def _dict(value: Any) -> dict[str, Any]:
    return copy.deepcopy(value) if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Mount:
    """One `mounts[]` entry of a job: files of `resource_name` appear under /app/mount/<dir_prefix>."""

    resource_name: str
    dir_prefix: str = ""

    @classmethod
    def from_api(cls, raw: Any) -> Mount:
        name = _require(raw, "resourceName", "mount")
        return cls(resource_name=str(name), dir_prefix=str(raw.get("dirPrefix") or ""))


@dataclass(frozen=True)
class Job:
    """A job definition (`GET /jobs/{name}`)."""

    name: str
    type: str
    mounts: list[Mount]
    spark: dict[str, Any]
    created: datetime | None
    modified: datetime | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, raw: Any) -> Job:
        name = _require(raw, "name", "job")
        return cls(
            name=str(name),
            type=str(raw.get("type") or "spark"),
            mounts=[Mount.from_api(m) for m in raw.get("mounts") or []],
            spark=_dict(raw.get("spark")),
            created=_parse_time(raw.get("created"), "created"),
            modified=_parse_time(raw.get("modified"), "modified"),
            raw=copy.deepcopy(raw),
        )


@dataclass(frozen=True)
class JobRun:
    """One run of a job (`GET /job-runs/{id}`). `spec` is the effective Spark spec (`spark.spec`)."""

    id: int
    job: str
    type: str
    status: str
    user: str | None
    started: datetime | None
    ended: datetime | None
    spark_app_id: str | None
    spec: dict[str, Any]
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_terminal(self) -> bool:
        """True once the status can no longer change (succeeded, failed, killed, unknown)."""
        return self.status in RUN_TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @classmethod
    def from_api(cls, raw: Any) -> JobRun:
        run_id = _require(raw, "id", "run")
        try:
            run_id = int(run_id)
        except (TypeError, ValueError):
            raise ApiError(f"run object in the reply has a non-integer id {run_id!r}") from None
        spark = raw.get("spark") if isinstance(raw.get("spark"), dict) else {}
        return cls(
            id=run_id,
            job=str(raw.get("job") or ""),
            type=str(raw.get("type") or "spark"),
            status=str(raw.get("status") or "unknown"),
            user=raw.get("user"),
            started=_parse_time(raw.get("started"), "started"),
            ended=_parse_time(raw.get("ended"), "ended"),
            spark_app_id=spark.get("sparkAppID") or None,
            spec=_dict(spark.get("spec")),
            raw=copy.deepcopy(raw),
        )


@dataclass(frozen=True)
class ResourceFile:
    """One file of a resource (`files[]` with includeFiles=true)."""

    path: str
    signature: str | None
    size_bytes: int | None

    @classmethod
    def from_api(cls, raw: Any) -> ResourceFile:
        path = _require(raw, "path", "resource file")
        size = raw.get("sizeBytes")
        return cls(
            path=str(path),
            signature=raw.get("signature"),
            size_bytes=int(size) if isinstance(size, (int, float)) else None,
        )


@dataclass(frozen=True)
class Resource:
    """A resource (`GET /resources/{name}`). `files` is empty unless fetched with include_files=True."""

    name: str
    type: str
    status: str | None
    files: list[ResourceFile]
    python_env_info: dict[str, Any] | None
    signature: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_api(cls, raw: Any) -> Resource:
        name = _require(raw, "name", "resource")
        info = raw.get("pythonEnvInfo")
        return cls(
            name=str(name),
            type=str(raw.get("type") or "files"),
            status=raw.get("status"),
            files=[ResourceFile.from_api(f) for f in raw.get("files") or []],
            python_env_info=copy.deepcopy(info) if isinstance(info, dict) else None,
            signature=raw.get("signature"),
            raw=copy.deepcopy(raw),
        )
