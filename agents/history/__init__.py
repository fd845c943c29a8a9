"""The run history: every run of the watched jobs, the incidents and the actions they took, with
their cost, in SQLite (default) or PostgreSQL (`HEAL_HISTORY_URL`).

`schema.py` (the tables), `migrations.py` (numbered migrations, the schema version), `rows.py` (rows
made from CDE runs and incident records, pure), `metrics.py` (MTTR and auto-resolution, pure),
`store.py` (`RunHistory`, the one reader and writer).
"""

from agents.history.metrics import DayMetrics
from agents.history.store import (
                                  ActionRow,
                                  Experience,
                                  IncidentRow,
                                  JobHistory,
                                  RunHistory,
                                  RunRow,
                                  TelemetryRow,
                                  history_url,
                                  vc_of,
)

__all__ = ["ActionRow", "DayMetrics", "Experience", "IncidentRow", "JobHistory", "RunHistory", "RunRow",
           "TelemetryRow", "history_url", "vc_of"]
