"""Errors of the sample_jobs package. Callers catch by meaning.

    ScenarioError              base of everything sample_jobs raises (besides ValueError for bad arguments)
    ├── ScenarioNotFound       no scenario of that name; `.available` lists the known names
    ├── InvalidScenario        a scenario.json (or the catalogue as a whole) breaks the schema or its rules
    └── LoadError              loading a scenario into a CDE failed at some step; `.step` names it
        ├── SetupRunFailed     a data-generator run did not succeed; `.run_id`, `.status`
        └── BaselineRunFailed  the run writing the last good output did not succeed; `.run_id`, `.status`

Errors of the CDE client (cde_client.CdeError and subclasses) pass through unchanged.
"""

from __future__ import annotations

__all__ = ["ScenarioError", "ScenarioNotFound", "InvalidScenario", "LoadError", "SetupRunFailed",
           "BaselineRunFailed"]


class ScenarioError(Exception):
    """Base class. `str(err)` is a one-line explanation."""


class ScenarioNotFound(ScenarioError):
    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        super().__init__(f"no scenario named {name!r}; available: {', '.join(available) or '(none)'}")


class InvalidScenario(ScenarioError):
    """A scenario definition is wrong; the message names the file and what is wrong."""


class LoadError(ScenarioError):
    def __init__(self, message: str, *, step: str) -> None:
        self.step = step
        super().__init__(message)


class SetupRunFailed(LoadError):
    """A data generator's run, or an anomaly scenario's ordinary day, did not succeed."""

    def __init__(self, message: str, *, job: str, run_id: int, status: str) -> None:
        self.job = job
        self.run_id = run_id
        self.status = status
        super().__init__(message, step=f"setup run of {job}")


class BaselineRunFailed(LoadError):
    def __init__(self, message: str, *, job: str, run_id: int, status: str) -> None:
        self.job = job
        self.run_id = run_id
        self.status = status
        super().__init__(message, step=f"baseline run of {job}")
