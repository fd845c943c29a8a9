"""The silent-failure scenarios (expected "anomaly"): their catalogue entries and validation, the
generators' calendar and volumes, the loader's day-by-day runs and the CLI, without Spark (the
loader on a local CDE in manual run mode); then one scenario, silent_empty_join, on real Spark with
a short history, read through the runs' event logs, and judged by a real healer's monitor cycle:
an anomaly incident for the changed day, none for the ordinary ones.

The explosion and null-column scenarios are not run on Spark here (a load is a generator run and
a run per day: minutes of suite time); `python -m bench silent` runs all three through the watcher.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import random
import threading
import time
from pathlib import Path

import pytest

from agents.config import Settings
from agents.healer import Healer
from agents.telemetry import parse_event_log
from cde_client import CdeClient
from cde_local import LocalCde
from cde_local.errors import RunNotFound
from sample_jobs import (
    InvalidScenario,
    SetupRunFailed,
    fail_again,
    get_scenario,
    list_scenarios,
    load_scenario,
)
from sample_jobs.loader import EVENT_LOG
from sample_jobs.scenario import SCENARIOS_DIR, read_scenario
from tests.fixtures.scenarios import SCENARIO_PASSWORD, SCENARIO_USER, log_tail
from tests.sample_jobs.test_catalogue import copy_catalogue, edit, run_cli

SILENT = ["silent_empty_join", "silent_explosion", "silent_null_column"]
USER, PASSWORD = "dex-user", "silent-pw"


def load_daily_feed():
    """sample_jobs/common/daily_feed.py, a plain module (jobs import it from their resource folder)."""
    spec = importlib.util.spec_from_file_location("daily_feed", SCENARIOS_DIR / "common" / "daily_feed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


daily_feed = load_daily_feed()


# -- the catalogue -----------------------------------------------------------------------------------


def test_the_silent_scenarios_are_the_anomaly_scenarios() -> None:
    assert sorted(s.name for s in list_scenarios() if s.is_anomaly) == SILENT


@pytest.mark.parametrize("name", SILENT)
def test_a_silent_scenario_runs_its_app_once_a_day(name: str) -> None:
    s = get_scenario(name)
    assert (s.expected, s.remedy, s.expected_error, s.baseline) == ("anomaly", "none", "", None)
    days = s.daily_runs
    assert days is not None and days.ordinary_days == 14 and days.anomalous_day == 15
    app_args = s.app_spec["spark"]["args"]
    assert s.day_args(1) == [*app_args, "--date", days.first_date.isoformat()]
    assert s.day_args(15) == [*app_args, "--date", (days.first_date + datetime.timedelta(days=14)).isoformat()]
    assert s.history_days() == list(range(1, 15)) and s.history_days(3) == [12, 13, 14]
    # The generator writes exactly the days the app runs, the last one changed.
    generator = s.job(s.setup_runs[0])["spark"]["args"]
    assert generator[generator.index("--days") + 1] == str(days.anomalous_day)
    assert generator[generator.index("--first-date") + 1] == days.first_date.isoformat()
    assert s.check_spec["spark"]["args"] == app_args, "the check reads what the app reads and writes"
    assert "anomaly" in s.summary()
    with pytest.raises(ValueError, match="history must be 1..14"):
        s.history_days(15)
    with pytest.raises(ValueError, match="day must be 1..15"):
        s.day_args(16)


def test_a_failing_scenario_has_no_daily_runs() -> None:
    s = get_scenario("schema_drift")
    assert not s.is_anomaly and s.daily_runs is None
    with pytest.raises(ValueError, match="not an anomaly scenario"):
        s.day_args(1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(expected_error="Boom"), "an anomaly scenario's runs succeed: it has no expected_error"),
        (lambda r: r.pop("daily_runs"), "daily_runs: Field required for an anomaly scenario"),
        (lambda r: r.update(remedy="code"), "remedy must be 'none' exactly when expected is 'escalate' or 'anomaly'"),
        (lambda r: r["daily_runs"].update(args=["--date", "{when}"]), "may use only {day} and {date}"),
        (lambda r: r["daily_runs"].update(args=["--date", "{date:%Y}"]), "may use only {day} and {date}"),
        (lambda r: r["daily_runs"].update(args=["--date", "{date"]), "is not a valid template"),
        (lambda r: r["daily_runs"].update(args=["--date", "2024-06-03"]), "must use {day} or {date}"),
        (lambda r: r["daily_runs"].update(args=[]), "daily_runs.args: List should have at least 1 item"),
        (lambda r: r["daily_runs"].update(ordinary_days=0), "daily_runs.ordinary_days: Input should be greater"),
        (lambda r: r["daily_runs"].update(first_date="June"), "daily_runs.first_date: Input should be a valid date"),
        (lambda r: r["daily_runs"].update(when="daily"), "daily_runs.when: Extra inputs are not permitted"),
        (lambda r: r.update(baseline={"job": {**r["check"]["job"], "name": "shop-orders-enrich-daily-baseline"}}),
         "only heal scenarios have a baseline"),
    ],
)
def test_invalid_anomaly_scenarios_are_rejected_with_the_reason(tmp_path: Path, change, message: str) -> None:
    root = copy_catalogue(tmp_path, "silent_empty_join")
    path = root / "silent_empty_join" / "scenario.json"
    edit(path, change)
    with pytest.raises(InvalidScenario) as caught:
        read_scenario(path)
    assert message in str(caught.value) and "silent_empty_join/scenario.json" in str(caught.value)


def test_daily_runs_belong_to_anomaly_scenarios_only(tmp_path: Path) -> None:
    daily = json.loads((SCENARIOS_DIR / "silent_empty_join" / "scenario.json").read_text())["daily_runs"]
    root = copy_catalogue(tmp_path, "schema_drift")
    edit(root / "schema_drift" / "scenario.json", lambda r: r.update(daily_runs=daily))
    with pytest.raises(InvalidScenario, match="daily_runs is for anomaly scenarios only"):
        read_scenario(root / "schema_drift" / "scenario.json")


def test_the_day_placeholders_are_filled_in(tmp_path: Path) -> None:
    root = copy_catalogue(tmp_path, "silent_empty_join")
    path = root / "silent_empty_join" / "scenario.json"
    edit(path, lambda r: r["daily_runs"].update(args=["--day", "{day}", "--at={date}T00:00", "{{literal}}"]))
    s = read_scenario(path)
    assert s.daily_runs is not None and s.daily_runs.args_of(2) == ["--day", "2", "--at=2024-06-04T00:00",
                                                                     "{literal}"]


# -- the generators' calendar and volumes (pure Python) --------------------------------------------------


def test_daily_volumes_vary_within_the_noise_and_repeat_for_a_seed() -> None:
    volumes = daily_feed.daily_volumes(4000, 15, random.Random(7))
    assert len(volumes) == 15 and all(3520 <= v <= 4480 for v in volumes)
    assert len(set(volumes)) > 10, "the days differ, so a detector learns a band"
    assert volumes == daily_feed.daily_volumes(4000, 15, random.Random(7))
    assert daily_feed.daily_volumes(4000, 15, random.Random(8)) != volumes
    with pytest.raises(ValueError):
        daily_feed.daily_volumes(0, 15, random.Random(1))


def test_days_are_consecutive_and_ids_run_on_across_them() -> None:
    dates = daily_feed.feed_dates("2024-06-29", 3)
    assert dates == [datetime.date(2024, 6, 29), datetime.date(2024, 6, 30), datetime.date(2024, 7, 1)]
    assert daily_feed.day_bounds([3, 2, 4]) == [(1, 4), (4, 6), (6, 10)]
    with pytest.raises(ValueError):
        daily_feed.feed_dates("2024-06-29", 0)


# -- the loader, without Spark ---------------------------------------------------------------------------


class RunDriver(threading.Thread):
    """Ends every new run from run `first` on with the status `outcome(job, n)` gives (n: the job's n-th run
    seen by this driver); records (run id, job, args) of each."""

    def __init__(self, cde: LocalCde, outcome, first: int = 1, limit_s: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.cde, self.outcome, self.first, self.limit_s = cde, outcome, first, limit_s
        self.runs: list[tuple[int, str, list[str]]] = []
        self.done = threading.Event()

    def run(self) -> None:
        run_id, deadline, counts = self.first, time.monotonic() + self.limit_s, {}
        while not self.done.is_set() and time.monotonic() < deadline:
            try:
                run = self.cde.backend.describe_run(run_id)
            except RunNotFound:
                time.sleep(0.05)
                continue
            counts[run["job"]] = counts.get(run["job"], 0) + 1
            self.runs.append((run_id, run["job"], list(run["spark"]["spec"].get("args", []))))
            self.cde.backend.set_run_status(run_id, self.outcome(run["job"], counts[run["job"]]))
            run_id += 1


@pytest.fixture
def manual_cde(local_cde_factory):
    cde = local_cde_factory(run_mode="manual", users={USER: PASSWORD})
    with CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD) as client:
        yield cde, client


def drive(cde: LocalCde, outcome, first: int = 1) -> RunDriver:
    driver = RunDriver(cde, outcome, first)
    driver.start()
    return driver


def test_the_history_runs_day_by_day_then_the_changed_day(manual_cde) -> None:
    cde, client = manual_cde
    s = get_scenario("silent_explosion")
    driver = drive(cde, lambda job, n: "succeeded")
    try:
        result = load_scenario(client, s, history=3, run_timeout_s=30)
    finally:
        driver.done.set()
    generator = s.setup_runs[0]
    assert [job for _, job, _ in driver.runs] == [generator] + [s.app_job] * 4
    assert [args for _, _, args in driver.runs[1:]] == [s.day_args(day) for day in (12, 13, 14, 15)]
    assert result.setup_run_ids == {generator: 1}
    assert result.history_run_ids == {12: 2, 13: 3, 14: 4}
    assert (result.app_run_id, result.app_day, result.status) == (5, 15, "succeeded")
    assert result.as_expected and result.expected_status == "succeeded" and result.baseline_run_id is None
    with pytest.raises(ValueError, match="does not fail"):
        fail_again(client, s)


def test_a_failed_ordinary_day_stops_the_load_and_a_failed_last_day_is_not_as_expected(manual_cde) -> None:
    cde, client = manual_cde
    s = get_scenario("silent_null_column")
    driver = drive(cde, lambda job, n: "failed" if job == s.app_job and n == 2 else "succeeded")
    try:
        with pytest.raises(SetupRunFailed, match="for the ordinary day 14 ended failed") as caught:
            load_scenario(client, s, history=2, run_timeout_s=30)
    finally:
        driver.done.set()
    assert (caught.value.job, caught.value.run_id, caught.value.status) == (s.app_job, 3, "failed")

    # Loaded again (the generator's data in place): days 13 and 14 succeed, the changed day fails.
    driver = drive(cde, lambda job, n: "failed" if n == 3 else "succeeded", first=4)
    try:
        result = load_scenario(client, s, history=2, skip_setup=set(s.setup_runs), run_timeout_s=30)
    finally:
        driver.done.set()
    assert [job for _, job, _ in driver.runs] == [s.app_job] * 3
    assert result.history_run_ids == {13: 4, 14: 5} and (result.app_run_id, result.status) == (6, "failed")
    assert not result.as_expected


def test_history_is_refused_before_any_call_when_it_cannot_apply() -> None:
    client = CdeClient("http://127.0.0.1:9/dex/api/v1", user="u", password="p", max_retries=0)
    with pytest.raises(ValueError, match="history is for anomaly scenarios"):
        load_scenario(client, "schema_drift", history=3)
    with pytest.raises(ValueError, match="history must be 1..14"):
        load_scenario(client, "silent_empty_join", history=0)


# -- the CLI ---------------------------------------------------------------------------------------------


def test_cli_refuses_a_history_it_cannot_run(tmp_path: Path) -> None:
    env = {"JOBS_API_URL": "http://127.0.0.1:9/dex/api/v1", "WORKLOAD_USER": "u", "WORKLOAD_PASSWORD": "p"}
    done = run_cli("load", "schema_drift", "--history", "3", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "--history is for anomaly scenarios" in done.stdout
    done = run_cli("load", "silent_explosion", "--history", "20", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "--history must be 1..14" in done.stdout
    done = run_cli("list", cwd=tmp_path)
    assert done.returncode == 0
    for name in SILENT:
        line = next(li for li in done.stdout.splitlines() if li.startswith(name))
        assert "anomaly" in line and "every run succeeds; day 15 wrongly" in line


# -- real Spark ------------------------------------------------------------------------------------------


def test_silent_empty_join_succeeds_wrongly_on_real_spark(scenario_cde: LocalCde, scenario_client: CdeClient,
                                                          tmp_path: Path) -> None:
    """Three ordinary days write thousands of rows; the changed day succeeds and writes none. The
    watcher's cycle (a real healer) reads the four event logs and flags that day only."""
    s = get_scenario("silent_empty_join")
    result = load_scenario(scenario_client, s, size=1000, history=3)
    assert list(result.history_run_ids) == [12, 13, 14]
    assert list(result.history_run_ids.values()) == sorted(result.history_run_ids.values())
    assert result.app_run_id is not None and result.app_run_id > max(result.history_run_ids.values())
    assert result.status == "succeeded", log_tail(scenario_client, result.app_run_id)
    table = s.app_spec["spark"]["args"][-1]
    for day, run_id in result.history_run_ids.items():
        seen = parse_event_log(scenario_client.get_logs(run_id, EVENT_LOG).splitlines())
        assert seen.complete and seen.failed_jobs == 0
        assert 800 <= seen.rows_written <= 1200, f"day {day}: {seen}"  # the day's orders (1000 +-12 %), all matched
        assert table in seen.tables_written
    last = parse_event_log(scenario_client.get_logs(result.app_run_id, EVENT_LOG).splitlines())
    assert last.complete and last.failed_jobs == 0
    assert last.rows_read > 800 and last.rows_written == 0, last

    settings = Settings.from_env({"JOBS_API_URL": scenario_cde.jobs_api_url, "WORKLOAD_USER": SCENARIO_USER,
                                  "WORKLOAD_PASSWORD": SCENARIO_PASSWORD, "HEALER_DATA_DIR": str(tmp_path / "healer"),
                                  "JOB_NAME": s.app_job}, dotenv=None)
    healer = Healer(settings)
    try:
        flagged = healer.cycle()
        judged = {row.run_id: row.anomalous for row in healer.history.job_telemetry(s.app_job)}
    finally:
        healer.close()
    assert [(r.run_id, r.kind, r.state) for r in flagged] == [(result.app_run_id, "anomaly", "flagged")]
    assert "rows written 0" in flagged[0].reason
    assert judged == {**dict.fromkeys(result.history_run_ids.values(), False), result.app_run_id: True}
