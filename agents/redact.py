"""Secrets out of everything we show or send: records, the UI, and above all the model.

Two kinds of secret: values we know (the workload password, the LLM token, the CDE token: passed
in) and values that look like secrets (``password=...``, bearer/basic headers, JWTs such as Knox
tokens, cloud keys, private keys, credentials in URLs). ``redact(text, known)`` masks both with
``***`` for records and logs. ``Redactor`` masks them with numbered placeholders for the model and
puts the values back into its answer, so a fix of a file that holds a credential still deploys
with it; the guard refuses a patch that moves such a value onto a new line (``find_secrets``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN_SECRET_CHARS = 4
_KEY_NAMES = r"(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_.-]?key(?:[_.-]?id)?|secret[_.-]?key|" \
             r"client[_-]?secret|credentials?|private[_-]?key|account[_-]?key|sas[_-]?token|auth)"
# Each pattern's group "value" is the secret; the rest of the match stays readable.
SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"(?i)authorization:\s*(?:bearer|basic|token)\s+(?P<value>[A-Za-z0-9._~+/=-]{4,})"),
    re.compile(r"(?i)\b(?:bearer|basic)\s+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)"),
    re.compile(r"(?i)[\"']?\b[\w.-]*" + _KEY_NAMES + r"[\"']?\s*(?:[:=]|=>)\s*[\"']?(?P<value>[^\s\"',;}&()\[\]]{4,})"),
    re.compile(r"(?i)[\"'][\w.-]*" + _KEY_NAMES + r"[\w.-]*[\"']\s*,\s*[\"'](?P<value>[^\"'\s]{4,})[\"']"),  # .option(k, v)
    re.compile(r"(?i)\b(?:" + _KEY_NAMES + r")\s+(?:is|was)\s+[\"']?(?P<value>[^\s\"',;]{6,})"),
    re.compile(r"(?P<value>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"),  # JWTs (Knox tokens)
    re.compile(r"(?P<value>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)"),  # AWS access key ids
    re.compile(r"(?P<value>\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,})"),  # API keys in the OpenAI style
    re.compile(r"(?P<value>\b(?:ghp|gho|ghs|github_pat|xox[abposr])[_-][A-Za-z0-9_-]{16,})"),
    re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?P<value>[^@\s/]{3,})@"),  # user:password@host in URLs
    re.compile(r"(?P<value>-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----)", re.S),
)

# The patterns that find a value by its key name; the others find a value by its own shape.
_GENERIC = frozenset(SECRET_PATTERNS[2:5])
# What follows "password=" in code or logs without being a secret: a name, a reference, a template.
_NOT_A_VALUE = re.compile(r"^(?:\*\*\*|<secret-\d+>|None|True|False|null|true|false|[A-Z][A-Z0-9_]*|[$%{<].*"
                          r"|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)$")


def _spans(text: str, known: Iterable[str]) -> list[tuple[int, int]]:
    spans = []
    for secret in known:
        if secret and len(secret) >= MIN_SECRET_CHARS:
            start = text.find(secret)
            while start >= 0:
                spans.append((start, start + len(secret)))
                start = text.find(secret, start + 1)
    for pattern in SECRET_PATTERNS:
        for match in pattern.finditer(text):
            if pattern not in _GENERIC or not _NOT_A_VALUE.match(match.group("value")):
                spans.append(match.span("value"))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def find_secrets(text: str, known: Iterable[str] = ()) -> set[str]:
    """The secret values in ``text``: the known ones present, and every pattern's value."""
    return {text[start:end] for start, end in _spans(text, known)}


def redact(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every secret value replaced by ``***``."""
    parts, last = [], 0
    for start, end in _spans(text, known):
        parts += [text[last:start], "***"]
        last = end
    return "".join(parts) + text[last:]


class Redactor:
    """Masks secrets with placeholders (``<secret-1>``) and restores them in answers.

    One object per conversation, so a value keeps its placeholder across messages.
    """

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known = tuple(k for k in known if k)
        self._by_value: dict[str, str] = {}

    def redact(self, text: str) -> str:
        parts, last = [], 0
        for start, end in _spans(text, self._known):
            value = text[start:end]
            name = self._by_value.setdefault(value, f"<secret-{len(self._by_value) + 1}>")
            parts += [text[last:start], name]
            last = end
        return "".join(parts) + text[last:]

    def restore(self, text: str) -> str:
        """``text`` with the placeholders put back; values we know to be ours (the healer's own
        credentials) stay masked: the model never saw them and no fix needs them."""
        for value, name in self._by_value.items():
            text = text.replace(name, "***" if value in self._known else value)
        return text

    @property
    def masked(self) -> int:
        """How many distinct values were masked."""
        return len(self._by_value)
