"""A dashboard poll reads only what changed: the incident list from the index's rows written since
the last poll, the full record only for the incident shown and only when its file changed.

The records are written by the healer's own store (another `RecordStore` than the service's, as
another process would) in the real `AppLab`; `DashboardService.loads` and `.rows_read` count what
the service read.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from agents.record import summarize
from app import dashboard, views
from tests.fixtures.app import AppLab

NEWEST = "nightly-agg--31"
HEALED = "sql-select-fail--12"


def page(lab: AppLab, selected: str | None) -> dashboard.PageState:
    return dashboard.compute_page(lab.service, selected, datetime.now(timezone.utc))


def files_newest_first(lab: AppLab) -> list:
    records = sorted(lab.store.all(), key=lambda r: (r.opened_at, r.incident_id), reverse=True)
    return [summarize(r) for r in records]


def test_the_incident_list_is_the_index_rows_and_a_poll_fetches_only_the_changed_ones(app_lab: AppLab):
    service = app_lab.service
    listed = service.incidents()
    assert [replace(row, seq=0) for row in listed] == files_newest_first(app_lab)
    assert service.rows_read == len(listed)
    assert service.incidents() is listed and service.rows_read == len(listed)  # nothing changed: nothing read

    record = app_lab.store.load(HEALED)
    record.reason = "healed after one attempt"
    app_lab.store.save(record)  # the healer's store, not the service's
    again = service.incidents()
    assert service.rows_read == len(listed) + 1
    assert [row.incident_id for row in again] == [row.incident_id for row in listed]
    assert next(row for row in again if row.incident_id == HEALED).reason == "healed after one attempt"


def test_a_poll_loads_only_the_shown_record_and_only_when_its_file_changed(app_lab: AppLab):
    service = app_lab.service
    first = page(app_lab, None)
    assert first.shown == NEWEST and service.loads == 1
    page(app_lab, None)
    dashboard.refresh(service, None, None)
    assert service.loads == 1  # polls of an unchanged incident read no record
    picked = page(app_lab, HEALED)
    assert service.loads == 2 and "SELECT account_id" in picked.values["fixed_code"]
    page(app_lab, NEWEST)
    assert service.loads == 2  # both kept

    record = app_lab.store.load(NEWEST)
    record.reason = "waiting for the fix run"
    app_lab.store.save(record)
    changed = page(app_lab, NEWEST)
    assert service.loads == 3
    assert "waiting for the fix run" in changed.values["heading"]


def test_the_table_follows_records_added_and_removed_behind_the_service(app_lab: AppLab):
    service = app_lab.service
    page(app_lab, None)
    newer = app_lab.store.load(HEALED).model_copy(update={
        "incident_id": "late-job--99", "job": "late-job", "run_id": 99, "opened_at": "2099-01-01T00:00:00.000000Z"})
    app_lab.store.path(newer.incident_id).write_text(newer.model_dump_json())  # by hand, not through a store
    shown = page(app_lab, None)
    assert shown.shown == "late-job--99"
    assert shown.values["table"]["data"] == views.incident_rows(files_newest_first(app_lab))

    app_lab.store.path(HEALED).unlink()
    after = page(app_lab, None)
    assert HEALED not in [row.incident_id for row in service.incidents()]
    assert after.values["table"]["data"] == views.incident_rows(files_newest_first(app_lab))
