"""Shapes of request bodies (jobs, resources, run requests), validated like CDE's Go server would.

Known fields are type-checked strictly (a number where CDE wants a string is a 400, as Go's JSON
decoder refuses it); unknown fields are dropped silently, as Go's decoder does, so clients that
send extra keys (cdepy's `retention-policy`) keep working. `validate_*` return plain dicts holding
only the known fields that were given.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import BadRequest

# Names appear in URLs and in file paths under the data directory: keep them to safe characters.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class Mount(_Shape):
    resourceName: str
    dirPrefix: str | None = None


class SparkSpec(_Shape):
    file: str | None = None
    className: str | None = None
    args: list[str] | None = None
    conf: dict[str, str] | None = None
    driverCores: int | None = None
    driverMemory: str | None = None
    executorCores: int | None = None
    executorMemory: str | None = None
    numExecutors: int | None = None
    jars: list[str] | None = None
    pyFiles: list[str] | None = None
    files: list[str] | None = None
    logLevel: str | None = None
    name: str | None = None
    proxyUser: str | None = None
    pythonEnvResourceName: str | None = None


class Schedule(_Shape):
    enabled: bool | None = None
    user: str | None = None
    cronExpression: str | None = None
    start: str | None = None
    end: str | None = None
    catchup: bool | None = None
    dependsOnPast: bool | None = None
    paused: bool | None = None
    pausedUponCreation: bool | None = None
    nextExecution: str | None = None


class JobSpec(_Shape):
    name: str | None = None
    type: Literal["spark", "airflow"] | None = None
    mounts: list[Mount] | None = None
    retentionPolicy: str | None = None
    spark: SparkSpec | None = None
    airflow: dict[str, Any] | None = None
    schedule: Schedule | None = None
    runtimeImageResourceName: str | None = None
    defaultVariables: dict[str, str] | None = None
    hidden: bool | None = None
    dataConnectors: Any = None
    pipeline: dict[str, Any] | None = None
    alerting: dict[str, Any] | None = None
    workloadCredentials: Any = None


class PythonEnv(_Shape):
    model_config = ConfigDict(extra="allow", strict=True)  # pip repository fields are unconfirmed [I]
    pythonVersion: str | None = None


class CustomRuntimeImage(_Shape):
    engine: str | None = None
    image: str | None = None
    credential: str | None = None


class ResourceSpec(_Shape):
    name: str | None = None
    type: Literal["files", "python-env", "custom-runtime-image"] | None = None
    retentionPolicy: str | None = None
    hidden: bool | None = None
    pythonEnv: PythonEnv | None = None
    customRuntimeImage: CustomRuntimeImage | None = None


class RunOverrides(_Shape):
    spark: SparkSpec | None = None
    airflow: dict[str, Any] | None = None


class RunRequest(_Shape):
    variables: dict[str, str] | None = None
    overrides: RunOverrides | None = None
    user: str | None = None
    requestID: str | None = None
    hidden: bool | None = None


def validate_job(body: Any) -> dict[str, Any]:
    return _validate(JobSpec, body, "job")


def validate_resource(body: Any) -> dict[str, Any]:
    return _validate(ResourceSpec, body, "resource")


def validate_run_request(body: Any) -> dict[str, Any]:
    return _validate(RunRequest, body, "run request")


def check_name(kind: str, name: Any) -> str:
    """A job or resource name: required, 1-128 of [A-Za-z0-9._-], starting alphanumeric."""
    if name is None or name == "":
        raise BadRequest(f"{kind} name is required")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise BadRequest(
            f"invalid {kind} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def _validate(shape: type[_Shape], body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"invalid {what}: the body must be a JSON object")
    try:
        model = shape.model_validate(body)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:3]:
            where = ".".join(str(part) for part in error["loc"]) or "(body)"
            problems.append(f"{where}: {error['msg']}")
        raise BadRequest(f"invalid {what}: " + "; ".join(problems)) from None
    return model.model_dump(exclude_none=True, exclude_unset=True)


_VARIABLE = re.compile(r"\{\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}\}")


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge `patch` into a copy of `base`: objects merge key by key, a null deletes the key, and
    anything else (lists included) replaces the old value (JSON merge patch, RFC 7386)."""
    merged = dict(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def substitute(text: str, variables: dict[str, str]) -> str:
    """Replace `{{{name}}}` placeholders by run variables; unknown names stay as they are."""
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), text)
