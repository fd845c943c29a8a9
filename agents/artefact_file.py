"""An artefact file's JSON, read and written one way for every kind (the learned policy, the anomaly
detector): read with its format and version checked, written atomically. Each kind has its own
error class, an `ArtefactError` naming the kind, so its callers keep catching that one class."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


class ArtefactError(Exception):
    """An artefact file that cannot be loaded (or written): `str(err)` says why and which file. A kind
    subclasses it with its `kind` ("policy artefact")."""

    kind = "artefact"

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{self.kind} {path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def read_document(path: Path, *, fmt: str, version: int, what: str, missing: str, error: type[ArtefactError]) -> dict[str, Any]:
    """The JSON object at `path`, of format `fmt` and version `version`. `what` names the kind in a
    message ("a recovery-policy artefact"), `missing` says how to make one when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(path, f"no such file ({missing})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(path, f"cannot be read: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(path, f"not JSON (corrupt or truncated?): {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != fmt:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise error(path, f"not {what} (format {found!r}, expected {fmt!r})")
    if document.get("format_version") != version:
        raise error(path, f"format version {document.get('format_version')!r}; this code reads version {version}")
    return document


def write_atomically(path: Path, text: str, error: type[ArtefactError]) -> None:
    """`text` at `path` through a temporary file renamed over it: a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False,
                                         encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(handle.name, 0o644)  # a file to ship and read, not a secret
        os.replace(handle.name, path)
    except OSError as exc:
        raise error(path, f"cannot be written: {exc}") from exc
