"""The learned policy as a versioned artefact file (JSON), with its training summary.

The file `HEAL_POLICY=learned` loads by default is `DEFAULT_PATH` (`agents/policy/learned-policy.json`),
written by `python -m bench fleet --write-policy PATH`. Its fields::

    format          "self-healing-spark/recovery-policy"
    format_version  FORMAT_VERSION (this code reads exactly that version)
    key_version     learned.KEY_VERSION of the state key the Q-table was learned with
    policy_id       "sha256:<12 hex>" of the Q-table and learning settings: the policy's version
    created         UTC time, ISO 8601
    learning        {"learning_rate", "discount", "min_visits", "margin"}: how it decides and learns online
    training        free-form summary: episodes, seeds, fleet parameters, reward weights, evaluation
    q_table         {state key: {action: [Q, visits]}}

Errors: every problem loading a file is a `PolicyArtefactError` (its `path` says which file) —
missing, unreadable, not JSON, another format or version, a Q-table that does not match its
`policy_id` (edited by hand), or values of the wrong type. Callers catch that one class.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agents.artefact_file import ArtefactError, read_document, write_atomically
from agents.policy.decision import ACTIONS
from agents.policy.learned import KEY_VERSION, LearnedPolicy, Table

FORMAT = "self-healing-spark/recovery-policy"
FORMAT_VERSION = 1
DEFAULT_PATH = Path(__file__).resolve().with_name("learned-policy.json")
_ACTIONS = {a.value for a in ACTIONS}


class PolicyArtefactError(ArtefactError):
    """A policy artefact that cannot be loaded (or written). `str(err)` says why and which file."""

    kind = "policy artefact"


@dataclass(frozen=True)
class PolicyArtefact:
    policy: LearnedPolicy
    policy_id: str
    created: str
    training: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def policy_id(policy: LearnedPolicy) -> str:
    """The content hash of the Q-table and the learning settings: equal tables, equal ids."""
    content = {"key_version": KEY_VERSION, "learning": _learning(policy), "q_table": policy.table}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"sha256:{digest[:12]}"


def save(path: Path | str, policy: LearnedPolicy, training: dict[str, Any] | None = None,
         created: datetime | None = None) -> PolicyArtefact:
    """Writes the artefact atomically (a temporary file renamed over `path`) and returns what it wrote."""
    path = Path(path)
    table = {key: {action: [round(float(q), 6), int(n)] for action, (q, n) in sorted(entries.items())}
             for key, entries in sorted(policy.table.items())}
    stored = LearnedPolicy(table, learning_rate=policy.learning_rate, discount=policy.discount,
                           min_visits=policy.min_visits, margin=policy.margin)
    stamp = (created or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "key_version": KEY_VERSION,
        "policy_id": policy_id(stored),
        "created": stamp,
        "learning": _learning(stored),
        "training": training or {},
        "q_table": table,
    }
    try:
        text = _render(document)
    except (TypeError, ValueError) as exc:
        raise PolicyArtefactError(path, f"cannot be written as JSON: {exc}") from exc
    write_atomically(path, text, PolicyArtefactError)
    return PolicyArtefact(policy=stored, policy_id=document["policy_id"], created=stamp,
                          training=document["training"], path=path)


def load(path: Path | str = DEFAULT_PATH) -> PolicyArtefact:
    """The artefact at `path`, checked; raises PolicyArtefactError (see the module's docstring)."""
    path = Path(path)
    document = read_document(path, fmt=FORMAT, version=FORMAT_VERSION, what="a recovery-policy artefact",
                             missing=f"train one with `python -m bench fleet --write-policy {path}`",
                             error=PolicyArtefactError)
    if document.get("key_version") != KEY_VERSION:
        raise PolicyArtefactError(path, f"learned with state key version {document.get('key_version')!r}; this "
                                        f"code builds version {KEY_VERSION} (train the policy again)")
    learning = document.get("learning")
    training = document.get("training", {})
    if not isinstance(learning, dict) or not isinstance(training, dict):
        raise PolicyArtefactError(path, "'learning' and 'training' must be objects")
    table = _table(path, document.get("q_table"))
    try:
        policy = LearnedPolicy(table, learning_rate=float(learning["learning_rate"]),
                               discount=float(learning["discount"]), min_visits=int(learning["min_visits"]),
                               margin=float(learning["margin"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyArtefactError(path, f"bad learning settings {learning!r}: {exc}") from exc
    stated = document.get("policy_id")
    if stated != policy_id(policy):
        raise PolicyArtefactError(path, f"policy_id {stated!r} does not match its Q-table ({policy_id(policy)}): "
                                        "the file was changed after it was written")
    return PolicyArtefact(policy=policy, policy_id=stated, created=str(document.get("created", "")),
                          training=training, path=path)


def load_policy(path: Path | str = DEFAULT_PATH) -> LearnedPolicy:
    """The learned policy of the artefact at `path` (exploration off)."""
    return load(path).policy


def _render(document: dict[str, Any]) -> str:
    """JSON with one line per state of the Q-table (readable diffs), the rest indented."""
    head = {k: v for k, v in document.items() if k != "q_table"}
    text = json.dumps(head, indent=1, allow_nan=False)
    rows = [f"  {json.dumps(key)}: {json.dumps(entries, allow_nan=False)}" for key, entries in document["q_table"].items()]
    table = "{\n" + ",\n".join(rows) + "\n }" if rows else "{}"
    return text[: -len("\n}")] + f',\n "q_table": {table}\n}}\n'


def _learning(policy: LearnedPolicy) -> dict[str, Any]:
    return {"learning_rate": policy.learning_rate, "discount": policy.discount, "min_visits": policy.min_visits,
            "margin": policy.margin}


def _table(path: Path, raw: Any) -> Table:
    if not isinstance(raw, dict):
        raise PolicyArtefactError(path, "'q_table' must be an object of state keys")
    table: Table = {}
    for key, entries in raw.items():
        if not isinstance(entries, dict):
            raise PolicyArtefactError(path, f"q_table[{key!r}] must be an object of actions")
        row: dict[str, list[float]] = {}
        for action, pair in entries.items():
            if action not in _ACTIONS:
                raise PolicyArtefactError(path, f"q_table[{key!r}]: unknown action {action!r}")
            if (not isinstance(pair, list) or len(pair) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
                    or not math.isfinite(pair[0]) or pair[1] < 0 or pair[1] != int(pair[1])):
                raise PolicyArtefactError(path, f"q_table[{key!r}][{action!r}] must be [Q, visits], not {pair!r}")
            row[action] = [float(pair[0]), int(pair[1])]
        table[key] = row
    return table
