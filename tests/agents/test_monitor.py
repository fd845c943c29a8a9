"""Which jobs' runs the monitor leaves alone: the healer's own (fix jobs, their sandbox runs, checks)."""

from __future__ import annotations

import pytest

from agents.monitor import healer_owned


@pytest.mark.parametrize(("job", "owned"), [
    ("sales-daily", False),
    ("sales-daily-fix-3", True),
    ("sales-daily-fix-3-preflight", True),  # the fix's pre-flight in the sandbox
    ("sales-daily-fix-3-check-preflight", True),  # the user's check on the sandbox
    ("sales-daily-check", True),
    ("sales-preflight", False),  # a user's own job that happens to end so
    ("sales-daily-fix-x", False),
    ("sales-daily-fix-3-retry", False),
    ("sales-daily-fix-3b", False),
])
def test_the_healers_own_jobs_are_known_by_name(job, owned):
    assert healer_owned(job, "-check") is owned
