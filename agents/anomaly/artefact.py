"""The anomaly detector's configuration as a versioned artefact file (JSON), with its evaluation.

Written by `python -m bench anomaly --write-detector PATH`, versioned by the model registry
(`agents/registry.py`, `DETECTOR_MODEL`), loaded by a healer with HEAL_ANOMALY_ALIAS. Fields::

    format          "self-healing-spark/anomaly-detector"
    format_version  FORMAT_VERSION (this code reads exactly that version)
    detector_id     "sha256:<12 hex>" of the parameters: the detector's version
    created         UTC time, ISO 8601
    parameters      `DetectorParameters.to_dict()`: every field, nothing else
    evaluation      the benchmark's figures: precision, recall, false_alarms_per_1000, recall_by_kind
                    {kind: recall} (a figure is null when it cannot be computed, e.g. nothing flagged)
    evaluated_on    the benchmark's settings (jobs, days, seed, rate, window, ...)

Errors: every problem loading (or writing) a file is a `DetectorArtefactError` (its `path` says which
file) — missing, unreadable, not JSON, another format or version, parameters that do not match the
`detector_id` (edited by hand) or are invalid, figures of the wrong type. Callers catch that one class.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agents.anomaly.detector import DetectorParameters
from agents.artefact_file import ArtefactError, read_document, write_atomically

FORMAT = "self-healing-spark/anomaly-detector"
FORMAT_VERSION = 1


class DetectorArtefactError(ArtefactError):
    """A detector artefact that cannot be loaded (or written). `str(err)` says why and which file."""

    kind = "detector artefact"


@dataclass(frozen=True)
class DetectorArtefact:
    parameters: DetectorParameters
    detector_id: str
    created: str
    evaluation: dict[str, Any] = field(default_factory=dict)
    evaluated_on: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def detector_id(parameters: DetectorParameters) -> str:
    """The content hash of the parameters: equal parameters, equal ids."""
    text = json.dumps(parameters.to_dict(), sort_keys=True, separators=(",", ":"))
    return f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def save(path: Path | str, parameters: DetectorParameters, evaluation: dict[str, Any] | None = None,
         evaluated_on: dict[str, Any] | None = None, created: datetime | None = None) -> DetectorArtefact:
    """Writes the artefact atomically (a temporary file renamed over `path`) and returns what it wrote."""
    path = Path(path)
    stamp = (created or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "detector_id": detector_id(parameters),
                "created": stamp, "parameters": parameters.to_dict(), "evaluation": evaluation or {},
                "evaluated_on": evaluated_on or {}}
    try:
        _check_figures(path, document["evaluation"])
        text = json.dumps(document, indent=1, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise DetectorArtefactError(path, f"cannot be written as JSON: {exc}") from exc
    write_atomically(path, text, DetectorArtefactError)
    return DetectorArtefact(parameters=parameters, detector_id=document["detector_id"], created=stamp,
                            evaluation=document["evaluation"], evaluated_on=document["evaluated_on"], path=path)


def load(path: Path | str) -> DetectorArtefact:
    """The artefact at `path`, checked; raises DetectorArtefactError (see the module's docstring)."""
    path = Path(path)
    document = read_document(path, fmt=FORMAT, version=FORMAT_VERSION, what="an anomaly-detector artefact",
                             missing=f"write one with `python -m bench anomaly --write-detector {path}`",
                             error=DetectorArtefactError)
    raw, evaluation = document.get("parameters"), document.get("evaluation", {})
    evaluated_on = document.get("evaluated_on", {})
    if not all(isinstance(part, dict) for part in (raw, evaluation, evaluated_on)):
        raise DetectorArtefactError(path, "'parameters', 'evaluation' and 'evaluated_on' must be objects")
    try:
        parameters = DetectorParameters.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise DetectorArtefactError(path, f"bad parameters: {exc}") from exc
    _check_figures(path, evaluation)
    stated = document.get("detector_id")
    if stated != detector_id(parameters):
        raise DetectorArtefactError(path, f"detector_id {stated!r} does not match its parameters "
                                          f"({detector_id(parameters)}): the file was changed after it was written")
    return DetectorArtefact(parameters=parameters, detector_id=stated, created=str(document.get("created", "")),
                            evaluation=evaluation, evaluated_on=evaluated_on, path=path)


def figures(evaluation: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    """The evaluation's numbers, flattened: ("precision", 0.97), ("recall_by_kind.slow", 0.9), ..."""
    found: list[tuple[str, float]] = []
    for key, value in evaluation.items():
        if isinstance(value, dict):
            found += figures(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            found.append((f"{prefix}{key}", float(value)))
    return found


def _check_figures(path: Path, evaluation: dict[str, Any], where: str = "evaluation") -> None:
    """Numbers (finite), nulls, or objects of them."""
    for key, value in evaluation.items():
        if isinstance(value, dict):
            _check_figures(path, value, f"{where}.{key}")
        elif value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                    or not math.isfinite(value)):
            raise DetectorArtefactError(path, f"{where}.{key} must be a number or null, not {value!r}")
