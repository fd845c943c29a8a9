"""load_scenario runs the baseline job after the application's failed run, reports its run id, and
fails with BaselineRunFailed when it does not succeed. No Spark: the local CDE in manual run mode,
its runs ended by a driver thread as the test says (setup succeeds, the app fails, the baseline
ends as asked)."""

from __future__ import annotations

import threading
import time

import pytest

from cde_client import CdeClient
from cde_local.errors import RunNotFound
from sample_jobs import BaselineRunFailed, fail_again, get_scenario, load_scenario

USER, PASSWORD = "dex-user", "loader-pw"
DRIVE_LIMIT_S = 60.0  # the driver thread gives up after this
POLL_S = 0.05


class RunDriver(threading.Thread):
    """Ends every new run of the CDE with the status `outcomes` gives its job; records the order."""

    def __init__(self, cde, outcomes: dict[str, str], first: int = 1) -> None:
        super().__init__(daemon=True)
        self.cde, self.outcomes, self.jobs, self.first = cde, outcomes, [], first
        self.done = threading.Event()

    def run(self) -> None:
        run_id, deadline = self.first, time.monotonic() + DRIVE_LIMIT_S
        while not self.done.is_set() and time.monotonic() < deadline:
            try:
                job = self.cde.backend.describe_run(run_id)["job"]
            except RunNotFound:
                time.sleep(POLL_S)
                continue
            self.jobs.append(job)
            self.cde.backend.set_run_status(run_id, self.outcomes[job])
            run_id += 1


@pytest.fixture
def manual_cde(local_cde_factory):
    cde = local_cde_factory(run_mode="manual", users={USER: PASSWORD})
    with CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD) as client:
        yield cde, client


def drive(cde, baseline_status: str, first: int = 1) -> RunDriver:
    s = get_scenario("schema_drift")
    driver = RunDriver(cde, {"retail-datagen": "succeeded", s.app_job: "failed",
                             str(s.baseline_job): baseline_status}, first)
    driver.start()
    return driver


def test_the_baseline_runs_after_the_failed_app_run(manual_cde) -> None:
    cde, client = manual_cde
    s = get_scenario("schema_drift")
    driver = drive(cde, "succeeded")
    try:
        result = load_scenario(client, s, run_timeout_s=30)
    finally:
        driver.done.set()
    assert driver.jobs == ["retail-datagen", s.app_job, s.baseline_job]
    assert result.as_expected and result.setup_run_ids == {"retail-datagen": 1}
    assert (result.app_run_id, result.baseline_run_id) == (2, 3)
    assert client.get_job(str(s.baseline_job)).spark["file"] == "baseline.py"
    assert {f.path for f in client.get_resource(str(s.baseline_job)).files} == {
        "baseline.py", "check.py", "checklib.py"}

    driver = drive(cde, "succeeded", first=4)  # another day's failure: the app, then the last good output again
    try:
        again = fail_again(client, s, run_timeout_s=30)
    finally:
        driver.done.set()
    assert driver.jobs == [s.app_job, s.baseline_job]
    assert (again.app_run_id, again.status, again.baseline_run_id, again.setup_run_ids) == (4, "failed", 5, {})


def test_a_failed_baseline_run_fails_the_load(manual_cde) -> None:
    cde, client = manual_cde
    s = get_scenario("schema_drift")
    driver = drive(cde, "failed")
    try:
        with pytest.raises(BaselineRunFailed) as caught:
            load_scenario(client, s, run_timeout_s=30)
    finally:
        driver.done.set()
    err = caught.value
    assert (err.job, err.run_id, err.status, err.step) == (s.baseline_job, 3, "failed", f"baseline run of {s.baseline_job}")
    assert "no last good output of clickstream-daily-users is loaded" in str(err)
    assert "job-runs/3/logs" in str(err)


def test_no_run_creates_the_baseline_job_but_runs_nothing(manual_cde) -> None:
    _, client = manual_cde
    s = get_scenario("schema_drift")
    result = load_scenario(client, s, run=False)
    assert (result.app_run_id, result.baseline_run_id, result.setup_run_ids) == (None, None, {})
    assert client.get_job(str(s.baseline_job)).name == s.baseline_job
