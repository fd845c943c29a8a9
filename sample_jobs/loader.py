"""Loading a scenario into a CDE (real or local), the way the tutorial's CLI steps do it.

    from cde_client import CdeClient
    from sample_jobs import load_scenario
    result = load_scenario(client, "tutorial")          # resources, jobs, data generators, the app
    result.app_run_id, result.status, result.as_expected

Steps: create the resources (an existing one of the same type is reused, and only files whose
content differs are uploaded again, so loading twice works), build the python environment if the
scenario has one (and wait until it is ready), create the jobs, the check job and the baseline job
(an existing job is left as it is), run the data generators one after the other, then the
application, then the baseline job if the scenario has one, waiting for each run. A generator that
does not succeed stops the load (SetupRunFailed); so does a baseline run (BaselineRunFailed).

The baseline job writes the application's last good output (yesterday's run, on data like
today's). It runs right after the application's failed run, not before it: a failing
`df.write.mode("overwrite").saveAsTable(t)` drops `t` before it computes the new rows (Spark's
session catalog replaces a table by drop, then create-as-select), so a baseline written earlier
would be gone after the runtime failures (ansi_cast, divide_by_zero, timestamp_pattern,
udf_null). Loading then leaves what a catalog with an atomic replace (Iceberg) leaves after a
failed run: the last good output, as it stands.

An anomaly scenario (a silent failure) has no failed run: after the generators, the application
runs once per day as a scheduler runs it (its `daily_runs`), the ordinary days first, in day order,
one at a time, then the changed day, which SUCCEEDS too, wrongly (`LoadResult.as_expected` is True
when it succeeded). One at a time, not side by side: the runs' durations are part of what the
anomaly detector learns, and two runs sharing the machine would each take longer than the last run
alone; run ids then follow the days. An ordinary day's run that does not succeed stops the load
(SetupRunFailed: the job's good history could not be made).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from cde_client import CdeClient, Conflict, NotFound

from .errors import BaselineRunFailed, LoadError, SetupRunFailed
from .scenario import Scenario, get_scenario

__all__ = ["LoadResult", "load_scenario", "install_scenario", "run_job_and_wait", "logs_command",
           "RUN_TIMEOUT_S", "ENV_BUILD_TIMEOUT_S", "EVENT_LOG"]

RUN_TIMEOUT_S = 900.0  # one Spark run; a tiny one takes 10-30 s here, generators a little more
RUN_POLL_S = 1.0  # how often a run's status is read while waiting
ENV_BUILD_TIMEOUT_S = 900.0  # one python-env build (pip install of small pure-Python packages)
EVENT_LOG = "driver/event"  # a run's Spark event log: what the anomaly detector reads of a succeeded run
EXPECTED_APP_STATUS = "failed"  # every failing scenario's application fails as loaded
EXPECTED_ANOMALY_STATUS = "succeeded"  # an anomaly scenario's last run succeeds, wrongly

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LoadResult:
    """What load_scenario did. `app_run_id`/`status` are None when the application was not run (run=False,
    fail=False);
    `baseline_run_id` is the run that wrote the last good output (None: not run, or no baseline).
    Anomaly scenarios: `app_run_id` is the anomalous day's run (`app_day`), `history_run_ids` the
    ordinary days' runs before it ({day: run id}, in day order)."""

    scenario: str
    app_job: str
    app_run_id: int | None
    status: str | None
    setup_run_ids: dict[str, int] = field(default_factory=dict)
    baseline_run_id: int | None = None
    expected_status: str = EXPECTED_APP_STATUS
    history_run_ids: dict[int, int] = field(default_factory=dict)
    app_day: int | None = None

    @property
    def as_expected(self) -> bool:
        """True when the application ran and ended as the scenario expects (failed; succeeded for an anomaly)."""
        return self.status == self.expected_status


def _quiet(_message: str) -> None:
    pass


def logs_command(client: CdeClient, run_id: int, log_type: str = "driver/stdout") -> str:
    """Shell commands that print a run's log with curl (credentials from the environment)."""
    url = f"{client.jobs_api_url}/job-runs/{run_id}/logs?type={log_type}"
    if client.token_url is None:
        return f'curl -s -H "Authorization: Bearer $CDE_TOKEN" "{url}"'
    token = (f'CDE_TOKEN=$(curl -s -u "$WORKLOAD_USER:$WORKLOAD_PASSWORD" "{client.token_url}" '
             "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
    return f'{token}\ncurl -s -H "Authorization: Bearer $CDE_TOKEN" "{url}"'


def _ensure_resource(client: CdeClient, scenario: Scenario, name: str, progress: Progress,
                     env_timeout_s: float) -> None:
    resource = scenario.resource(name)
    try:
        client.create_resource(name, type=resource.type)
        progress(f"created resource {name} ({resource.type})")
        existing = None
    except Conflict:
        existing = client.get_resource(name, include_files=False)
        if existing.type != resource.type:
            raise LoadError(f"resource {name} exists with type {existing.type!r}, the scenario needs "
                            f"{resource.type!r}; delete it or load into another CDE",
                            step=f"resource {name}") from None
        progress(f"resource {name} exists: reusing it")
    uploaded = 0
    for path, local in scenario.resource_files(name).items():
        data = local.read_bytes()
        if existing is not None:
            try:
                if client.download_file(name, path) == data and not _build_failed(existing.status):
                    continue
            except NotFound:
                pass
        client.upload_file(name, path, data)
        uploaded += 1
    progress(f"  {uploaded} file(s) uploaded to {name}" if uploaded else f"  files of {name} unchanged")
    if resource.type == "python-env":
        progress(f"waiting for the python environment {name} to be built")
        ready = client.wait_resource_ready(name, timeout_s=env_timeout_s)
        progress(f"  {name} is {ready.status}")


def _build_failed(status: str | None) -> bool:
    return status is not None and ("fail" in status or "error" in status)


def _ensure_job(client: CdeClient, spec: dict[str, Any], progress: Progress) -> None:
    try:
        client.create_job(spec)
        progress(f"created job {spec['name']}")
    except Conflict:
        progress(f"job {spec['name']} exists: left as it is")


def install_scenario(client: CdeClient, scenario: Scenario | str, *, progress: Progress | None = None,
                     env_timeout_s: float = ENV_BUILD_TIMEOUT_S) -> Scenario:
    """Create the scenario's resources (with their files), python env, jobs, check and baseline job."""
    progress = progress or _quiet
    if isinstance(scenario, str):
        scenario = get_scenario(scenario)
    # python-env resources first: jobs that name them may not run before the build is ready
    for resource in sorted(scenario.resources, key=lambda r: r.type != "python-env"):
        _ensure_resource(client, scenario, resource.name, progress, env_timeout_s)
    for spec in scenario.all_jobs():
        _ensure_job(client, spec, progress)
    return scenario


def run_job_and_wait(client: CdeClient, job: str, *, overrides: dict[str, Any] | None = None,
                     timeout_s: float = RUN_TIMEOUT_S, progress: Progress | None = None) -> tuple[int, str]:
    """Run `job`, wait for its end; (run id, final status)."""
    progress = progress or _quiet
    run_id = client.run_job(job, overrides=overrides)
    progress(f"run {run_id} of {job} started; waiting for it to end")
    run = client.wait_run(run_id, timeout_s=timeout_s, poll_s=RUN_POLL_S)
    progress(f"  run {run_id} of {job}: {run.status}")
    return run_id, run.status


def load_scenario(
    client: CdeClient,
    name: str | Scenario,
    size: int | None = None,
    run: bool = True,
    *,
    skip_setup: Collection[str] = (),
    progress: Progress | None = None,
    run_timeout_s: float = RUN_TIMEOUT_S,
    env_timeout_s: float = ENV_BUILD_TIMEOUT_S,
    history: int | None = None,
    fail: bool = True,
) -> LoadResult:
    """Load scenario `name` into the CDE of `client` and (unless run=False) run it.

    `fail=False` runs the generators and the baseline job but not the application: the CDE then has
    the job, its data and its last good output, not its failure (another environment, such as the
    DEV where PRD's fixes are proven).

    `size` is passed to every data generator as `<size_option> N` (the scenario must define
    size_option). `skip_setup` names generator jobs not to run again (their data is already
    loaded in this CDE, e.g. a generator shared by several scenarios). `history` (anomaly
    scenarios only) is how many ordinary days run before the anomalous one: the last ones before
    it (default: every ordinary day of its daily_runs).
    """
    progress = progress or _quiet
    scenario = name if isinstance(name, Scenario) else get_scenario(name)
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if scenario.size_option is None:
            raise ValueError(f"scenario {scenario.name} has no size option")
    if history is not None and not scenario.is_anomaly:
        raise ValueError(f"scenario {scenario.name} has no daily history (history is for anomaly scenarios)")
    days = scenario.history_days(history) if scenario.is_anomaly else []  # ValueError before any call
    progress(f"loading scenario {scenario.summary()}")
    install_scenario(client, scenario, progress=progress, env_timeout_s=env_timeout_s)
    if not run:
        return LoadResult(scenario.name, scenario.app_job, None, None)

    setup_run_ids: dict[str, int] = {}
    for job in scenario.setup_runs:
        if job in skip_setup:
            progress(f"setup job {job}: already run, skipped")
            continue
        overrides = None
        if size is not None:
            args = [*scenario.job(job)["spark"].get("args", []), str(scenario.size_option), str(size)]
            overrides = {"spark": {"args": args}}
        run_id, status = run_job_and_wait(client, job, overrides=overrides, timeout_s=run_timeout_s,
                                          progress=progress)
        setup_run_ids[job] = run_id
        if status != "succeeded":
            raise SetupRunFailed(f"data generator {job} ended {status} (run {run_id}); read its log with:\n"
                                 f"{logs_command(client, run_id)}", job=job, run_id=run_id, status=status)
    if scenario.is_anomaly:
        return _run_days(client, scenario, days, setup_run_ids, run_timeout_s, progress)
    run_id, status, baseline_run_id = _run_app_then_baseline(client, scenario, run_timeout_s, progress, app=fail)
    return LoadResult(scenario.name, scenario.app_job, run_id, status, setup_run_ids, baseline_run_id)


def _run_days(client: CdeClient, scenario: Scenario, days: list[int], setup_run_ids: dict[str, int],
              run_timeout_s: float, progress: Progress) -> LoadResult:
    """The ordinary days' runs (each must succeed), then the anomalous day's: see the module docstring."""
    assert scenario.daily_runs is not None
    history: dict[int, int] = {}
    for day in days:
        run_id, status = _run_day(client, scenario, day, run_timeout_s, progress)
        if status != "succeeded":
            raise SetupRunFailed(f"the run of {scenario.app_job} for the ordinary day {day} ended {status} (run "
                                 f"{run_id}): the job's good history is incomplete. Read its log with:\n"
                                 f"{logs_command(client, run_id)}", job=scenario.app_job, run_id=run_id, status=status)
        history[day] = run_id
    day = scenario.daily_runs.anomalous_day
    run_id, status = _run_day(client, scenario, day, run_timeout_s, progress)
    return LoadResult(scenario.name, scenario.app_job, run_id, status, setup_run_ids,
                      expected_status=EXPECTED_ANOMALY_STATUS, history_run_ids=history, app_day=day)


def _run_day(client: CdeClient, scenario: Scenario, day: int, run_timeout_s: float,
             progress: Progress) -> tuple[int, str]:
    """The application's run for `day`, as a scheduler starts it: the job with that day's args."""
    assert scenario.daily_runs is not None
    what = "the changed day" if day == scenario.daily_runs.anomalous_day else "an ordinary day"
    progress(f"day {day} ({scenario.daily_runs.date(day)}), {what}: {scenario.app_job} "
             f"{' '.join(scenario.daily_runs.args_of(day))}")
    return run_job_and_wait(client, scenario.app_job, overrides={"spark": {"args": scenario.day_args(day)}},
                            timeout_s=run_timeout_s, progress=progress)


def fail_again(client: CdeClient, name: str | Scenario, *, progress: Progress | None = None,
               run_timeout_s: float = RUN_TIMEOUT_S) -> LoadResult:
    """One more run of a loaded scenario's application, then its baseline job again (the failed run may
    have dropped the last good output: see the module docstring), as a new day's failure would leave it."""
    scenario = name if isinstance(name, Scenario) else get_scenario(name)
    if scenario.is_anomaly:
        raise ValueError(f"scenario {scenario.name} does not fail: its runs succeed (an anomaly scenario)")
    run_id, status, baseline_run_id = _run_app_then_baseline(client, scenario, run_timeout_s, progress or _quiet)
    return LoadResult(scenario.name, scenario.app_job, run_id, status, {}, baseline_run_id)


def _run_app_then_baseline(client: CdeClient, scenario: Scenario, run_timeout_s: float,
                           progress: Progress, app: bool = True) -> tuple[int | None, str | None, int | None]:
    run_id, status = (run_job_and_wait(client, scenario.app_job, timeout_s=run_timeout_s, progress=progress)
                      if app else (None, None))
    baseline_run_id = None
    if scenario.baseline_job is not None:
        # After the app's run: see the module docstring (a failed overwrite drops the table).
        progress(f"writing the last good output of {scenario.app_job} with {scenario.baseline_job}")
        baseline_run_id, baseline_status = run_job_and_wait(client, scenario.baseline_job, timeout_s=run_timeout_s,
                                                            progress=progress)
        if baseline_status != "succeeded":
            raise BaselineRunFailed(
                f"the baseline job {scenario.baseline_job} ended {baseline_status} (run {baseline_run_id}; the "
                f"application's run {run_id} ended {status}); no last good output of {scenario.app_job} is "
                f"loaded. Read its log with:\n{logs_command(client, baseline_run_id)}",
                job=scenario.baseline_job, run_id=baseline_run_id, status=baseline_status)
    return run_id, status, baseline_run_id
