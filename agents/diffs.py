"""The unified diffs a reviewer reads: code as the file changed, configuration as the job's JSON."""

from __future__ import annotations

import difflib
import json
from typing import Any


def unified_diff(before: str, after: str, path: str) -> str:
    return "".join(difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile=f"a/{path}", tofile=f"b/{path}",
    ))


def config_diff(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The job's spark section before and after, as sorted JSON."""
    return unified_diff(json.dumps(before, indent=2, sort_keys=True) + "\n",
                        json.dumps(after, indent=2, sort_keys=True) + "\n", "job.spark.json")
