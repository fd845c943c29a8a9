"""The one healer thread of a dashboard process: watches, and carries out the page's commands.

Commands (heal now, approve, reject, an anomaly's heal / dismiss / expected) are queued and run on
this thread, one at a time, so a page load or a refresh never does healing work, and two clicks never
heal the same run twice. Questions are answered on the page's thread: they only read.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from agents.healer import Healer
from agents.monitor import healer_owned
from agents.record import ANOMALY_DECISIONS, incident_id
from agents.times import utc_stamp
from app.service import FailedRunRow, StatusStrip

if TYPE_CHECKING:
    from agents.config import Settings
    from agents.ops import Answer

log = logging.getLogger("healer.worker")
FAILED_RUNS_CACHE_S = 10.0  # the "Heal now" list is read from CDE at most this often
MAX_FAILED_RUNS_LISTED = 50


@dataclass(frozen=True)
class _Command:
    label: str
    action: Callable[[], object]


class HealerWorker:
    """Implements `app.service.HealerCommands` on top of one `Healer`."""

    def __init__(self, healer: Healer, *, watch: bool = True) -> None:
        self.healer = healer
        self.settings = healer.settings
        self._watch = watch
        self._queue: queue.Queue[_Command] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="healer-worker", daemon=True)
        self._failed_cache: tuple[float, list[FailedRunRow]] = (0.0, [])
        self._idle = threading.Condition()  # notified whenever a queued command has run
        self._pending = 0  # commands queued and not yet run to the end

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> HealerWorker:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        status = self.healer.watch_status
        status.alive = True
        next_cycle = time.monotonic()
        try:
            while not self._stop.is_set():
                wait = max(0.0, next_cycle - time.monotonic()) if self._watch else 0.5
                try:
                    command = self._queue.get(timeout=wait)
                except queue.Empty:
                    command = None
                if command is not None:
                    try:
                        self._execute(command)
                    finally:
                        with self._idle:
                            self._pending -= 1
                            self._idle.notify_all()
                    continue
                if self._watch and time.monotonic() >= next_cycle:
                    self.healer.watched_cycle()
                    next_cycle = time.monotonic() + self.settings.poll_interval_s
        finally:
            status.alive = False

    def _execute(self, command: _Command) -> None:
        try:
            command.action()
            self.healer.watch_status.last_error = ""
        except Exception as exc:  # reported on the status strip; the worker keeps going
            self.healer.watch_status.last_error = f"{command.label}: {type(exc).__name__}: {exc}"
            log.warning("%s failed: %s", command.label, exc)

    def drain(self, timeout_s: float = 600.0) -> bool:
        """Waits until every command queued so far has run; False when `timeout_s` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_s)

    def _enqueue(self, command: _Command) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(command)

    # --- HealerCommands -----------------------------------------------------------------------

    def heal_now(self, job: str, run_id: int | None = None) -> str:
        if healer_owned(job, self.settings.check_job_suffix):
            return f"{job} was created by the healer; pick the original job's failed run"
        self._enqueue(_Command(f"heal {job}", lambda: self.healer.heal(job, run_id)))
        return f"queued: heal {job}" + (f" run {run_id}" if run_id is not None else " (latest failed run)")

    def approve(self, incident: str, by: str = "dashboard") -> str:
        return self._decide(incident, {"approved": True, "by": by})

    def reject(self, incident: str, reason: str = "", by: str = "dashboard") -> str:
        return self._decide(incident, {"approved": False, "by": by, "reason": reason or "rejected"})

    def _decide(self, incident: str, decision: dict) -> str:
        record = self.healer.records.load(incident)
        if record is None:
            return f"no incident {incident}"
        if record.state != "awaiting_approval":
            return f"{incident} is {record.state}, not waiting for approval"
        verb = "approved" if decision["approved"] else "rejected"
        self._enqueue(_Command(f"{verb} {incident}", lambda: self.healer.resume(incident, decision)))
        return f"{verb}: {incident}" + ("; deploying the fix" if decision["approved"] else "")

    def decide_anomaly(self, incident: str, decision: str) -> str:
        record = self.healer.records.load(incident)
        if record is None:
            return f"no incident {incident}"
        if record.state != "flagged":
            return f"{incident} is {record.state}, not a flagged anomaly"
        if decision not in ANOMALY_DECISIONS:
            return f"an anomaly is healed, dismissed or marked expected, not {decision!r}"
        self._enqueue(_Command(f"{decision} {incident}", lambda: self.healer.decide_anomaly(incident, decision)))
        return {"heal": f"healing {incident} as a failure", "dismiss": f"dismissed: {incident}",
                "expected": f"marked as expected: {incident}; its figures are the new normal"}[decision]

    def ask(self, question: str) -> Answer:
        """Answered on the caller's thread: a question reads the history and records, never the queue."""
        from agents.ops import ask  # the question tools load with the first question

        return ask(question, history=self.healer.history, records=self.healer.records, llm=self.healer.deps.llm)

    def failed_runs(self) -> list[FailedRunRow]:
        fetched_at, rows = self._failed_cache
        if time.monotonic() - fetched_at < FAILED_RUNS_CACHE_S:
            return rows
        filters = ["status[eq]failed"]
        if self.settings.watched_jobs:
            filters.append("job[in]" + ",".join(self.settings.watched_jobs))
        runs = self.healer.deps.client.list_runs(filters=filters, order_by="ID", ascending=False,
                                                 limit=MAX_FAILED_RUNS_LISTED)
        runs = [r for r in runs if not healer_owned(r.job, self.settings.check_job_suffix)]
        known = self.healer.records.known(incident_id(r.job, r.id) for r in runs)  # one index query
        rows = [
            FailedRunRow(job=r.job, run_id=r.id, ended=utc_stamp(r.ended) if r.ended else None,
                         has_incident=incident_id(r.job, r.id) in known)
            for r in runs
        ]
        self._failed_cache = (time.monotonic(), rows)
        return rows

    def status(self) -> StatusStrip:
        watching = self.healer.watch_status
        return StatusStrip(
            cde_url=self.settings.jobs_api_url, user=self.settings.workload_user,
            model=self.settings.model_label, mode=self.settings.heal_mode,
            watched_jobs=list(self.settings.watched_jobs), environment=environment_label(self.settings),
            # a copy: the worker thread goes on changing the healer's own
            watcher=replace(watching, alive=watching.alive and self._thread.is_alive()),
        )


def environment_label(settings: Settings) -> str:
    """The status strip's environment: "prd · fixes proven in dev · promotion approve"; "" with one CDE."""
    home, proving = settings.home, settings.proving
    if home.name == proving.name:
        return ""
    return f"{home.name} · fixes proven in {proving.name} · promotion {settings.promotion}"
