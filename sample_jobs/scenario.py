"""The scenario catalogue: one folder per scenario under sample_jobs/, described by its scenario.json.

    from sample_jobs.scenario import list_scenarios, get_scenario
    s = get_scenario("tutorial")
    s.app_job, s.app_resource, s.app_file, s.expected_error
    s.resource_files("failing-pipeline")      # {"datagen.py": Path(...), "sparkApp.py": Path(...)}

scenario.json (every key required unless marked optional):
    name            the folder's name (lower case, digits, "_")
    failure_class   what kind of failure it is (e.g. "unresolved_column", "transient")
    description     one paragraph: the pipeline, and why it fails
    expected        "heal" (a fix exists) | "escalate" (nothing can heal it) | "anomaly" (a silent failure:
                    the application SUCCEEDS every day, and the last day's run does what the good days'
                    runs never did; the anomaly detector, not the failure path, must catch it)
    remedy          "code" | "config" | "rerun" for heal; "none" for escalate and anomaly
    expected_error  text the failed run's driver/stdout contains (its error signature); heal and escalate
                    only: an anomaly scenario's runs succeed, so it has none (absent or "")
    size_option     optional: option appended with N to every setup run's args by `load --size N`
    resources       [{"name", "type": "files"|"python-env", "files": [path, ...]}]; a path is relative to
                    the scenario folder ("../common/x.py" allowed) and is uploaded under its base name;
                    a python-env resource holds exactly one file, requirements.txt
    jobs            CDE job specs (cde-api.md §3.2) of the data generators and the application
    setup_runs      names of jobs run in this order before the application (the data generators)
    app_job         the job that fails (anomaly: the daily job whose last run succeeds wrongly)
    check           {"job": <CDE job spec>}: the output check, named "<app_job>-check"; it exits
                    non-zero when the application's output is wrong or absent (anomaly: the output of
                    the feed's last day, the one the changed day's run wrote)
    baseline        optional, heal scenarios only: {"job": <CDE job spec>}, named "<app_job>-baseline",
                    mounting none of the application's resources (its own, "<app_job>-baseline").
                    It writes the application's last good output: the output table(s) exactly as a
                    correct run of the application writes them on the current inputs (same names from
                    the same args, same columns and types, same rows). It models yesterday's run, on
                    data like today's, so a fix's output can be compared with what the job wrote when
                    it last succeeded. The shared `common/baseline.py` writes what the scenario's
                    check.py returns from `outputs(spark, args)` ({table: DataFrame}); its args are
                    the check job's. `load_scenario` runs it right after the application's failed
                    run (see sample_jobs/loader.py for why after)
    daily_runs      anomaly scenarios only (and required there): how the application runs day after day,
                    as a scheduler runs it, on the day-partitioned feed its generator wrote in one run:
                    {"args": ["--date", "{date}"],   appended to the app job's args for day N; "{day}" is
                                                      N (1-based), "{date}" first_date + N - 1 (ISO);
                                                      at least one of them must appear
                     "first_date": "2024-06-03",      the date of day 1
                     "ordinary_days": 14}             days 1..14 are ordinary (the job's good history);
                                                      day 15 (ordinary_days + 1) is the changed one
                    `load_scenario` runs the generators, the ordinary days in day order (the last
                    `history` of them), then the anomalous day, each run waited for.

Scenarios may share resources and jobs (e.g. one data generator), provided their definitions are
identical; all other names are distinct, so every scenario can be loaded into one CDE.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from .errors import InvalidScenario, ScenarioNotFound

__all__ = ["Scenario", "ResourceDef", "BaselineDef", "DailyRunsDef", "SCENARIOS_DIR", "list_scenarios", "get_scenario",
           "read_scenario"]

SCENARIOS_DIR = Path(__file__).resolve().parent
MOUNT_PREFIX = "/app/mount/"
_SCENARIO_NAME = r"^[a-z][a-z0-9_]*$"
_OBJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # CDE job and resource names used here
DAY_FIELDS = ("day", "date")  # the placeholders of daily_runs.args
MAX_ORDINARY_DAYS = 60  # a history longer than this only makes loading slow: the detector needs 3 to 30


class ResourceDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_OBJECT_NAME.pattern)
    type: Literal["files", "python-env"]
    files: list[str] = Field(min_length=1)

    def upload_name(self, path: str) -> str:
        return Path(path).name


class CheckDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job: dict[str, Any]


class BaselineDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job: dict[str, Any]


class DailyRunsDef(BaseModel):
    """How an anomaly scenario's application runs day after day (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    args: list[str] = Field(min_length=1)
    first_date: datetime.date
    ordinary_days: int = Field(ge=1, le=MAX_ORDINARY_DAYS)

    @property
    def anomalous_day(self) -> int:
        return self.ordinary_days + 1

    def date(self, day: int) -> datetime.date:
        return self.first_date + datetime.timedelta(days=day - 1)

    def args_of(self, day: int) -> list[str]:
        """The template's args filled in for day `day` (1-based)."""
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= self.anomalous_day:
            raise ValueError(f"day must be 1..{self.anomalous_day}, got {day!r}")
        values = {"day": str(day), "date": self.date(day).isoformat()}
        return [arg.format(**values) for arg in self.args]


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_SCENARIO_NAME)
    failure_class: str = Field(pattern=_SCENARIO_NAME)
    description: str = Field(min_length=1)
    expected: Literal["heal", "escalate", "anomaly"]
    remedy: Literal["code", "config", "rerun", "none"]
    expected_error: str = ""  # required (non-empty) unless expected is "anomaly": see _problems
    size_option: str | None = Field(default=None, pattern=r"^--[a-z][a-z0-9-]*$")
    resources: list[ResourceDef] = Field(min_length=1)
    jobs: list[dict[str, Any]] = Field(min_length=1)
    setup_runs: list[str]
    app_job: str
    check: CheckDef
    baseline: BaselineDef | None = None
    daily_runs: DailyRunsDef | None = None
    _directory: Path = PrivateAttr(default=Path("."))

    # -- lookups ------------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The scenario's folder."""
        return self._directory

    def job(self, name: str) -> dict[str, Any]:
        """A deep copy of the job spec `name` (a job of `jobs`, the check or the baseline job)."""
        for spec in self.all_jobs():
            if spec["name"] == name:
                return copy.deepcopy(spec)
        raise KeyError(f"scenario {self.name} has no job {name!r}")

    def all_jobs(self) -> list[dict[str, Any]]:
        """The specs of `jobs`, the check job and the baseline job (if any), in that order."""
        return [*self.jobs, self.check.job, *([self.baseline.job] if self.baseline is not None else [])]

    def resource(self, name: str) -> ResourceDef:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(f"scenario {self.name} has no resource {name!r}")

    @property
    def app_spec(self) -> dict[str, Any]:
        return self.job(self.app_job)

    @property
    def check_job(self) -> str:
        return str(self.check.job["name"])

    @property
    def check_spec(self) -> dict[str, Any]:
        return copy.deepcopy(self.check.job)

    @property
    def baseline_job(self) -> str | None:
        """The job that writes the last good output ("<app_job>-baseline"), or None."""
        return str(self.baseline.job["name"]) if self.baseline is not None else None

    @property
    def baseline_spec(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.baseline.job) if self.baseline is not None else None

    @property
    def app_file(self) -> str:
        """The application file's path inside its resource (e.g. "sparkApp.py")."""
        return _locate(self.app_spec, self)[1]

    @property
    def app_resource(self) -> str:
        """The files resource that holds the application file (e.g. "failing-pipeline")."""
        return _locate(self.app_spec, self)[0]

    def resource_files(self, name: str) -> dict[str, Path]:
        """The files of resource `name`: upload name → local file."""
        resource = self.resource(name)
        return {resource.upload_name(p): (self._directory / p).resolve() for p in resource.files}

    @property
    def is_anomaly(self) -> bool:
        """A silent failure: every run succeeds, the last one wrongly (daily_runs says how they run)."""
        return self.expected == "anomaly"

    def day_args(self, day: int) -> list[str]:
        """The application's args for day `day` of an anomaly scenario: the job's own, then the day's."""
        if self.daily_runs is None:
            raise ValueError(f"scenario {self.name} has no daily runs (it is not an anomaly scenario)")
        return [*self.app_spec["spark"].get("args", []), *self.daily_runs.args_of(day)]

    def history_days(self, count: int | None = None) -> list[int]:
        """The ordinary days run before the anomalous one: the last `count` of them (default: all), in order."""
        if self.daily_runs is None:
            raise ValueError(f"scenario {self.name} has no daily runs (it is not an anomaly scenario)")
        ordinary = self.daily_runs.ordinary_days
        if count is None:
            count = ordinary
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= ordinary:
            raise ValueError(f"history must be 1..{ordinary} days for scenario {self.name}, got {count!r}")
        return list(range(ordinary - count + 1, ordinary + 1))

    def summary(self) -> str:
        if self.is_anomaly:
            return f"{self.name}: {self.failure_class}, an anomaly (its runs succeed, the last wrongly) ({self.app_job})"
        return f"{self.name}: {self.failure_class}, {self.expected} by {self.remedy} ({self.app_job})"


# -- reading -----------------------------------------------------------------------------------------


def read_scenario(path: Path) -> Scenario:
    """Read and validate one scenario.json (InvalidScenario says what is wrong, and where)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidScenario(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidScenario(f"{path}: not readable JSON: {exc}") from None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidScenario(f"{path}: {problems}") from None
    scenario._directory = path.resolve().parent
    problems = _problems(scenario)
    if problems:
        raise InvalidScenario(f"{path}: " + "; ".join(problems))
    return scenario


def list_scenarios(root: Path | None = None) -> list[Scenario]:
    """Every scenario under `root` (default: this package's folder), by name, validated together."""
    root = Path(root) if root is not None else SCENARIOS_DIR
    scenarios = [read_scenario(p) for p in sorted(root.glob("*/scenario.json"))]
    problems = _catalogue_problems(scenarios)
    if problems:
        raise InvalidScenario(f"scenario catalogue {root}: " + "; ".join(problems))
    return scenarios


def get_scenario(name: str, root: Path | None = None) -> Scenario:
    """The scenario `name` (ScenarioNotFound lists the others)."""
    if not isinstance(name, str):
        raise ValueError(f"scenario name must be a string, got {name!r}")
    scenarios = list_scenarios(root)
    for scenario in scenarios:
        if scenario.name == name:
            return scenario
    raise ScenarioNotFound(name, [s.name for s in scenarios])


# -- validation --------------------------------------------------------------------------------------


def _locate(spec: dict[str, Any], scenario: Scenario) -> tuple[str, str]:
    """(resource, path inside it) of a job's spark.file, through the job's mounts."""
    file = str(spec["spark"]["file"])
    relative = file[len(MOUNT_PREFIX):] if file.startswith(MOUNT_PREFIX) else file.lstrip("/")
    for mount in spec.get("mounts") or []:
        prefix = str(mount.get("dirPrefix") or "").strip("/")
        inside = relative[len(prefix) + 1:] if prefix and relative.startswith(prefix + "/") else relative
        if prefix and inside == relative:
            continue
        try:
            resource = scenario.resource(mount["resourceName"])
        except KeyError:
            continue
        if resource.type == "files" and inside in {resource.upload_name(p) for p in resource.files}:
            return resource.name, inside
    raise KeyError(f"job {spec['name']}: spark.file {file!r} is in none of its mounted resources")


def _job_problems(spec: Any, scenario: Scenario) -> list[str]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        return [f"job spec without a name: {spec!r}"]
    name = spec["name"]
    problems = []
    if not _OBJECT_NAME.match(name):
        problems.append(f"job name {name!r} must be lower case letters, digits and '-'")
    if spec.get("type", "spark") != "spark":
        problems.append(f"job {name}: type must be 'spark'")
    spark = spec.get("spark")
    if not isinstance(spark, dict) or not isinstance(spark.get("file"), str) or not spark["file"]:
        return [*problems, f"job {name}: spark.file is required"]
    args = spark.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        problems.append(f"job {name}: spark.args must be a list of strings")
    conf = spark.get("conf", {})
    if not isinstance(conf, dict) or not all(isinstance(v, str) for v in conf.values()):
        problems.append(f"job {name}: spark.conf values must be strings")
    mounts = spec.get("mounts") or []
    if not isinstance(mounts, list) or not all(isinstance(m, dict) and "resourceName" in m for m in mounts):
        return [*problems, f"job {name}: mounts must be a list of {{resourceName, dirPrefix}}"]
    for mount in mounts:
        try:
            if scenario.resource(mount["resourceName"]).type != "files":
                problems.append(f"job {name}: mounts the python-env resource {mount['resourceName']!r}")
        except KeyError:
            problems.append(f"job {name}: mounts {mount['resourceName']!r}, not a resource of the scenario")
    env = spark.get("pythonEnvResourceName")
    if env is not None:
        try:
            if scenario.resource(env).type != "python-env":
                problems.append(f"job {name}: pythonEnvResourceName {env!r} is not a python-env resource")
        except KeyError:
            problems.append(f"job {name}: pythonEnvResourceName {env!r} is not a resource of the scenario")
    try:
        _locate(spec, scenario)
    except KeyError as exc:
        problems.append(str(exc.args[0]))
    return problems


def _problems(s: Scenario) -> list[str]:
    problems = []
    if s.name != s.directory.name:
        problems.append(f"name {s.name!r} differs from the folder's name {s.directory.name!r}")
    if (s.expected in ("escalate", "anomaly")) != (s.remedy == "none"):
        problems.append("remedy must be 'none' exactly when expected is 'escalate' or 'anomaly'")
    problems += _kind_problems(s)
    seen_resources = set()
    for resource in s.resources:
        if resource.name in seen_resources:
            problems.append(f"resource {resource.name!r} is defined twice")
        seen_resources.add(resource.name)
        names = [resource.upload_name(p) for p in resource.files]
        if len(set(names)) != len(names):
            problems.append(f"resource {resource.name}: two files with one name in {resource.files}")
        if resource.type == "python-env" and names != ["requirements.txt"]:
            problems.append(f"python-env resource {resource.name} must hold exactly requirements.txt")
        for p in resource.files:
            local = (s.directory / p).resolve()
            if Path(p).is_absolute() or not local.is_relative_to(s.directory.parent):
                problems.append(f"resource {resource.name}: {p!r} is outside the scenarios folder")
            elif not local.is_file():
                problems.append(f"resource {resource.name}: no file {p!r}")
    job_names = [spec.get("name") if isinstance(spec, dict) else None for spec in s.jobs]
    for spec in s.all_jobs():
        problems += _job_problems(spec, s)
    if len(set(job_names)) != len(job_names):
        problems.append(f"job names repeat: {job_names}")
    if s.app_job not in job_names:
        problems.append(f"app_job {s.app_job!r} is not one of the jobs {job_names}")
    for name in s.setup_runs:
        if name not in job_names or name == s.app_job:
            problems.append(f"setup run {name!r} must name a job other than the app job")
    if s.check.job.get("name") != f"{s.app_job}-check":
        problems.append(f"the check job must be named {s.app_job + '-check'!r}")
    if s.check.job.get("name") in job_names:
        problems.append("the check job must not also be listed in jobs")
    if s.baseline is not None:
        problems += _baseline_problems(s, job_names)
    return problems


def _kind_problems(s: Scenario) -> list[str]:
    """A failing scenario has an error signature; an anomaly scenario has daily runs instead."""
    if not s.is_anomaly:
        problems = [] if s.expected_error else ["expected_error: Field required (the failed run's error signature)"]
        if s.daily_runs is not None:
            problems.append("daily_runs is for anomaly scenarios only (expected 'anomaly')")
        return problems
    problems = []
    if s.expected_error:
        problems.append("an anomaly scenario's runs succeed: it has no expected_error (leave it out or empty)")
    if s.daily_runs is None:
        problems.append("daily_runs: Field required for an anomaly scenario (how its application runs each day)")
        return problems
    used = set()
    for arg in s.daily_runs.args:
        try:
            parts = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(arg) if f is not None]
        except ValueError as exc:
            problems.append(f"daily_runs.args: {arg!r} is not a valid template ({exc})")
            continue
        if any(f not in DAY_FIELDS or spec or conv for f, spec, conv in parts):
            problems.append(f"daily_runs.args: {arg!r} may use only {{day}} and {{date}} (no format spec)")
        used.update(f for f, _, _ in parts)
    if not used & set(DAY_FIELDS):
        problems.append("daily_runs.args must use {day} or {date}: otherwise every day's run is the same")
    return problems


def _baseline_problems(s: Scenario, job_names: list[Any]) -> list[str]:
    assert s.baseline is not None
    spec = s.baseline.job
    problems = []
    if s.expected != "heal":
        problems.append("only heal scenarios have a baseline (an escalated job has no good output to compare)")
    if spec.get("name") != f"{s.app_job}-baseline":
        problems.append(f"the baseline job must be named {s.app_job + '-baseline'!r}")
    if spec.get("name") in job_names:
        problems.append("the baseline job must not also be listed in jobs")
    app_spec = s.app_spec if s.app_job in job_names else {}
    app_resources = {m.get("resourceName") for m in app_spec.get("mounts") or [] if isinstance(m, dict)}
    shared = sorted(str(m.get("resourceName")) for m in spec.get("mounts") or []
                    if isinstance(m, dict) and m.get("resourceName") in app_resources)
    if shared:
        problems.append(f"the baseline job mounts the application's resource(s) {shared}; it needs its own")
    return problems


def _catalogue_problems(scenarios: Iterable[Scenario]) -> list[str]:
    """Names shared by two scenarios must have identical definitions (shared generators)."""
    problems = []
    seen: dict[tuple[str, str], tuple[str, Any]] = {}
    for s in scenarios:
        objects: list[tuple[str, str, Any]] = [
            ("resource", r.name, {"type": r.type, "files": s.resource_files(r.name)}) for r in s.resources
        ]
        objects += [("job", spec["name"], spec) for spec in s.all_jobs()]
        for kind, name, definition in objects:
            earlier = seen.setdefault((kind, name), (s.name, definition))
            if earlier[1] != definition:
                problems.append(f"{kind} {name!r} is defined differently in {earlier[0]} and {s.name}")
    return problems
