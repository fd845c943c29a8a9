"""Broken Spark jobs ("scenarios"), each with its data generator(s), job definitions and an output
check, and the loader that puts one into a CDE.

    python -m sample_jobs list
    python -m sample_jobs load NAME [--size N] [--no-run]

    from sample_jobs import get_scenario, list_scenarios, load_scenario
"""

from .errors import (
    BaselineRunFailed,
    InvalidScenario,
    LoadError,
    ScenarioError,
    ScenarioNotFound,
    SetupRunFailed,
)
from .loader import LoadResult, fail_again, install_scenario, load_scenario, logs_command, run_job_and_wait
from .scenario import SCENARIOS_DIR, ResourceDef, Scenario, get_scenario, list_scenarios, read_scenario

__all__ = [
    "Scenario",
    "ResourceDef",
    "SCENARIOS_DIR",
    "list_scenarios",
    "get_scenario",
    "read_scenario",
    "LoadResult",
    "fail_again",
    "load_scenario",
    "install_scenario",
    "run_job_and_wait",
    "logs_command",
    "ScenarioError",
    "ScenarioNotFound",
    "InvalidScenario",
    "LoadError",
    "SetupRunFailed",
    "BaselineRunFailed",
]
