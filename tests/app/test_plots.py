"""The recovery plots (app/plots.py) and the policy's account per attempt (app/views.py), without a browser."""

from __future__ import annotations

from datetime import date, timedelta

from agents.history import DayMetrics
from agents.record import Attempt, PolicyChoice
from app import plots, views


def _week() -> list[DayMetrics]:
    return [DayMetrics(day=date(2026, 11, 24) + timedelta(days=i), closed=3, healed=2, escalated=1, rejected=0,
                       errors=0, auto_resolution=2 / 3, mttr_median_s=600.0 + 60 * i, mttr_p90_s=1500.0)
            for i in range(7)]


TOTALS = DayMetrics(day=None, closed=21, healed=14, escalated=7, rejected=0, errors=0, auto_resolution=14 / 21,
                    mttr_median_s=780.0, mttr_p90_s=1500.0)


def test_the_plots_say_the_window_and_its_totals_and_draw_both_charts():
    page = plots.outcomes_html(7, _week(), TOTALS)
    assert ("Last 7 days: 21 incidents closed, 14 healed (auto-resolution 67%), 7 escalated; "
            "MTTR median 13.0 min (p90 25.0 min).") in page
    assert page.count("<svg") == 1 and 'width="100%"' in page and "<?xml" not in page
    assert "MTTR per day, minutes (last 7 days)" in page and "Auto-resolution and escalations per day" in page
    assert "11-24" in page and "11-30" in page  # the days on the axis


def test_the_same_metrics_are_drawn_once_and_other_metrics_again():
    first = plots.outcomes_html(7, _week(), TOTALS)
    assert plots.outcomes_html(7, _week(), TOTALS) is first
    worse = [*_week()[:-1], DayMetrics(day=date(2026, 11, 30), closed=1, healed=0, escalated=1, rejected=0, errors=0,
                                        auto_resolution=0.0, mttr_median_s=None, mttr_p90_s=None)]
    assert plots.outcomes_html(7, worse, TOTALS) != first


def test_without_history_the_panel_says_so():
    assert plots.outcomes_html(7, [], None) == plots.NO_HISTORY
    quiet = [DayMetrics(day=date(2026, 11, 30), closed=0, healed=0, escalated=0, rejected=0, errors=0,
                        auto_resolution=None, mttr_median_s=None, mttr_p90_s=None)]
    assert "Last 7 days: no incident closed." in plots.outcomes_html(7, quiet, quiet[0])


def test_the_attempt_says_which_action_the_policy_took_and_why():
    attempt = Attempt(number=1, policy=PolicyChoice(
        action="raise-resources", policy="learned", reason="Q(raise-resources)=+8.1 best of 3",
        q_values={"rule-fix": 1.5, "raise-resources": 8.1, "escalate": -3.0}))
    text = views.policy_markdown(attempt)
    assert text.startswith("**Action** (by the learned policy): `raise-resources` — Q(raise-resources)=+8.1 best")
    assert "Q-values: `raise-resources` +8.10, `rule-fix` +1.50, `escalate` -3.00" in text
    assert "Overridden" not in text

    attempt.policy = PolicyChoice(action="rule-fix", policy="learned", reason="the rule's fix comes first",
                                  overridden="learned policy chose model-patch, not permitted: no model is configured")
    assert "⚠ **Overridden by a safety rule:** learned policy chose model-patch" in views.policy_markdown(attempt)
    assert views.policy_markdown(Attempt(number=2)) == ""
