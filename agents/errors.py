"""The healer's errors. Callers catch by meaning, never by parsing messages.

::

    HealerError                  anything the healer raises on purpose (raise a subclass: it says what happens next)
    ├── ConfigError              settings missing or invalid at start (lists every problem)
    ├── HistoryError             the run history's database cannot be used as it is (its schema is
    │                            newer than this healer's): the healer does not start
    ├── IncidentBusy             another healer (process or Healer object) is working on the incident
    ├── TryAgainLater            a step cannot finish now; the incident stays open and the next cycle
    │                            resumes it from its checkpoint (CDE and network errors mean this too)
    ├── EndIncident              nothing a retry can change: a stage that raises it escalates the
    │   │                        incident with the message (a name clash on the cluster, a foreign run)
    │   └── InvalidInput         bad input from a caller or a file (a missing template, a bad value);
    │       │                    inside an incident it ends it as "error": the input itself is wrong
    │       ├── UnsupportedJob   a job the healer cannot patch (not Python, no application file)
    │       ├── PromptTooLarge   the code a model must see does not fit the prompt token budget
    │       └── EditsDoNotApply  the model's edits do not apply to the file (lists every problem)
    └── LLMError                 the model could not help
        ├── LLMUnavailable       endpoint down, timed out or refused our credentials (after retries)
        └── LLMBadAnswer         no valid structured answer within the retry limit

Any other exception escaping a stage is a defect of ours, permanent for that incident: the healer
ends the incident as "error" instead of retrying it every cycle (mini-swe-agent's rule: only the
errors known to pass are retried).

Messages never carry secrets (the model endpoint's key is redacted before an error is raised).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class HealerError(Exception):
    """Base of every error the healer raises on purpose."""


class TryAgainLater(HealerError):
    """The step could not finish now (something it depends on is between states); the incident stays open."""


class EndIncident(HealerError):
    """Nothing a retry can change. Raised in a stage, the incident is escalated with this message."""


class InvalidInput(EndIncident, ValueError):
    """Bad input: a value, file or template that cannot be used as given."""


class IncidentBusy(HealerError):
    """Another healer holds the incident's lease; this one leaves the incident alone.

    ``holder`` says who holds it ("pid 1234 since 2025-01-01T12:00:00Z"), when known.
    """

    def __init__(self, incident: str, holder: str = "") -> None:
        self.incident = incident
        self.holder = holder
        super().__init__(f"incident {incident} is being worked on by another healer"
                         + (f" ({holder})" if holder else "") + "; left alone")


class LLMError(HealerError):
    """The model could not give a usable answer; the incident escalates or falls back to rules.

    ``calls`` holds the ``LlmCall`` records of the attempts made before giving up, so the
    incident record shows them too.
    """

    def __init__(self, message: str, calls: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.calls = list(calls)


class LLMUnavailable(LLMError):
    """The endpoint is down, timed out or rejected our credentials, after the client's retries."""


class LLMBadAnswer(LLMError):
    """The model answered, but no answer matched the schema within the structured-output retry limit."""


class ConfigError(HealerError):
    """The settings are missing or invalid; raised once at start with every problem listed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(self.problems))


class HistoryError(HealerError):
    """The run history's database cannot be used as it is (`agents/history`): raised at start."""


class UnsupportedJob(InvalidInput):
    """The job cannot be healed by patching: not a Python job, or its application file is unreachable."""


class PromptTooLarge(InvalidInput):
    """The application file does not fit the prompt token budget, so a model cannot patch it whole."""


class EditsDoNotApply(InvalidInput):
    """The model's edits cannot be applied to the application file; none was applied.

    ``problems`` lists every problem of every edit, so the model can fix them all in one answer.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
