"""The healer process: the graph with its checkpointer, healing one run or watching many.

One `Healer` per process. Incidents are healed one at a time on the caller's thread; the
dashboard's commands reach it through `HealerWorker` (app side), never by running stages itself.
Across processes (and `Healer` objects), an incident is worked on under its lease
(`agents/lease.py`): a healer that finds it held raises `IncidentBusy`, and a monitor cycle skips it.

The run history (`agents/history`) is kept here: each monitor cycle records every run it listed, and
every heal or resume step records its incident and the actions of its attempts, whether the step
ended the incident, paused it for approval or left it open. The history never stops healing: when
its database cannot be written, the healer logs it and heals on; the watch cursor then stays where
it was, so the next cycle lists those runs again for the history.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial

from langgraph.types import Command
from sqlalchemy.exc import SQLAlchemyError

from agents import anomalies, experience
from agents.anomaly import DetectorParameters
from agents.checkpoint import open_checkpointer
from agents.choice import state_of
from agents.config import Settings
from agents.environments import Environment
from agents.errors import ConfigError, IncidentBusy, InvalidInput, LLMError, TryAgainLater
from agents.files import private_dir
from agents.graph import build_graph
from agents.history import RunHistory
from agents.history.rows import moment
from agents.ids import check_job_name, check_run_id
from agents.lease import IncidentLease
from agents.llm import llm_from_settings
from agents.monitor import FailureScan, healer_owned, open_incident, scan_failures
from agents.policy import artefact
from agents.policy.decision import Policy, StaticPolicy
from agents.policy.learned import LearnedPolicy
from agents.policy.reward import DEFAULT_WEIGHTS, RewardWeights
from agents.record import ANOMALY_DECISIONS, IncidentRecord, RecordStore, incident_id
from agents.redact import redact
from agents.state import Deps, HealState
from agents.times import utc_stamp
from agents.watch_cursor import WatchCursor, load_cursor, save_cursor
from agents.watch_status import WatchStatus
from cde_client import CdeClient, CdeError, NotFound

log = logging.getLogger("healer")

# Errors that pass with time (CDE or the model unreachable, a database busy, a step between states):
# the incident stays open and the next cycle resumes it from its checkpoint.
RETRIED = (TryAgainLater, LLMError, OSError, sqlite3.Error, CdeError)

ProgressFn = Callable[[str], None]


def make_policy(settings: Settings, history: RunHistory) -> tuple[Policy, RewardWeights]:
    """The recovery policy HEAL_POLICY names, and the reward weights its online updates use. A learned
    policy is its artefact's Q-table brought up to date with the experience the run history holds
    since the artefact was made (so a restart loses nothing it learned online). The artefact is
    HEAL_POLICY_FILE's, or with HEAL_POLICY_ALIAS the version that alias names in the model registry. A
    bad artefact or a registry problem is a configuration error: the healer does not start."""
    if settings.policy == StaticPolicy.name:
        return StaticPolicy(), DEFAULT_WEIGHTS
    if settings.policy_alias:
        from agents import registry  # MLflow is imported when a registry is used, not before

        try:
            store = registry.open_registry(settings.registry_uri, settings.data_dir, create=False)
            found = store.load(registry.POLICY_MODEL, settings.policy_alias)
        except registry.RegistryError as exc:
            raise ConfigError([f"HEAL_POLICY_ALIAS: {exc}"]) from exc
    else:
        try:
            found = artefact.load(settings.policy_file or artefact.DEFAULT_PATH)
        except artefact.PolicyArtefactError as exc:
            raise ConfigError([f"HEAL_POLICY_FILE: {exc}"]) from exc
    weights = _weights(found.training)
    policy = found.policy
    if settings.policy_learn:
        made = moment(found.created)
        for step in history.experiences():
            if made is None or _utc(step.created_at) >= made:
                policy.update(state_of(step.state), step.action, step.reward,
                              None if step.next_state is None else state_of(step.next_state))
    policy.explore(settings.policy_exploration)
    return policy, weights


def make_detector(settings: Settings) -> DetectorParameters:
    """The anomaly detector's parameters: with HEAL_ANOMALY_ALIAS those of the version that alias names
    in the model registry (a registry problem is a configuration error: the healer does not start),
    else the built-in ones with HEAL_ANOMALY_MIN_HISTORY and HEAL_ANOMALY_WINDOW."""
    if not settings.anomaly_alias:
        return anomalies.detector_parameters(settings)
    from agents import registry  # MLflow is imported when a registry is used, not before

    try:
        store = registry.open_registry(settings.registry_uri, settings.data_dir, create=False)
        return store.load(registry.DETECTOR_MODEL, settings.anomaly_alias).parameters
    except registry.RegistryError as exc:
        raise ConfigError([f"HEAL_ANOMALY_ALIAS: {exc}"]) from exc


def _weights(training: dict) -> RewardWeights:
    """The reward weights the policy was trained with (its simulator's parameters), else the defaults."""
    try:
        return RewardWeights.from_dict((training.get("params") or {}).get("reward") or {})
    except (TypeError, ValueError, AttributeError):
        return DEFAULT_WEIGHTS


def _utc(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def make_client(settings: Settings, environment: Environment | None = None) -> CdeClient:
    """The client of `environment` (default: the one the healer watches)."""
    env = environment or settings.home
    return CdeClient(
        env.jobs_api_url,
        user=env.workload_user or None,
        password=env.workload_password or None,
        token=env.cde_token or None,
        token_url=env.token_url,
        timeout=settings.http_timeout_s,
    )


class Healer:
    def __init__(self, settings: Settings, client: CdeClient | None = None) -> None:
        self.settings = settings
        private_dir(settings.data_dir)
        self.history = RunHistory.open(settings)  # first: a database this healer cannot use stops it here
        self.records = RecordStore(settings.data_dir, secrets=settings.secrets)
        self.policy, self._weights = make_policy(settings, self.history)
        self.detector = make_detector(settings)
        home, proving = settings.home, settings.proving
        self.deps = Deps(settings=settings, client=client or make_client(settings), records=self.records,
                         llm=llm_from_settings(settings), history=self.history, policy=self.policy,
                         home=home.name, proving=proving.name,
                         proving_client=make_client(settings, proving) if proving.name != home.name else None)
        self._conn, checkpointer = open_checkpointer(settings.data_dir, settings.secrets)
        self.graph = build_graph(self.deps, checkpointer)
        self._lock = threading.Lock()  # one incident step at a time per Healer
        self._leases = settings.data_dir / "leases"
        self.watch_status = WatchStatus()
        self.cursor = load_cursor(settings.data_dir, settings.watched_jobs)  # None: list the lookback

    @property
    def busy(self) -> bool:
        """True while an incident step runs."""
        return self._lock.locked()

    def close(self) -> None:
        self._conn.close()
        if self.deps.proving_client is not None:
            self.deps.proving_client.close()
        self.history.close()
        if self.deps.llm is not None:
            self.deps.llm.close()

    # --- one incident -------------------------------------------------------------------------

    def latest_failed_run(self, job: str) -> int:
        self.deps.client.get_job(job)  # NotFound for an unknown job, with CDE's message
        runs = self.deps.client.list_runs(filters=[f"job[eq]{job}", "status[eq]failed"],
                                          order_by="ID", ascending=False, limit=1)
        if not runs:
            raise InvalidInput(f"job {job!r} has no failed run to heal")
        return runs[0].id

    def heal(self, job: str, run_id: int | None = None, progress: ProgressFn | None = None) -> IncidentRecord:
        """Heals one failed run to the end (or to an approval pause). Idempotent per run.

        Raises `IncidentBusy` when another healer is working on the run's incident.
        """
        check_job_name(job)
        if healer_owned(job, self.settings.check_job_suffix):
            raise InvalidInput(f"{job!r} is a job the healer created; heal the original job instead")
        run_id = check_run_id(run_id) if run_id is not None else self.latest_failed_run(job)
        incident = incident_id(job, run_id)
        with self._lock, self._lease(incident), self._kept_in_history(incident):
            record = open_incident(self.records, self.deps.client, job, run_id,
                                   mode=self.settings.heal_mode, model=self._model_name())
            return self._continue(record, None, progress)

    def resume(self, incident: str, decision: dict | None = None,
               progress: ProgressFn | None = None) -> IncidentRecord:
        """Continues an incident from its checkpoint; `decision` answers an approval pause.

        Raises `IncidentBusy` when another healer is working on the incident.
        """
        with self._lock, self._lease(incident), self._kept_in_history(incident):
            record = self.records.load(incident)
            if record is None:
                raise InvalidInput(f"no incident {incident!r}")
            return self._continue(record, decision, progress)

    def _continue(self, record: IncidentRecord, decision: dict | None,
                  progress: ProgressFn | None) -> IncidentRecord:
        """Runs an incident from wherever its checkpoint stands: new, interrupted, or paused."""
        if record.is_terminal:
            return record
        incident = record.incident_id
        paused = self.paused(incident)
        if decision is not None and not paused:
            raise InvalidInput(f"incident {incident!r} is not waiting for approval")
        if paused:
            return record if decision is None else self._drive(incident, Command(resume=decision), progress)
        snapshot = self.graph.get_state(self._config(incident))
        if snapshot.next:  # stopped mid-way (crash, CDE unreachable): carry on from the checkpoint
            return self._drive(incident, None, progress)
        return self._drive(incident, {"incident_id": incident, "job": record.job, "run_id": record.run_id},
                           progress)

    def _lease(self, incident: str) -> IncidentLease:
        return IncidentLease(self._leases, incident)

    @contextmanager
    def _kept_in_history(self, incident: str) -> Iterator[None]:
        """After a heal or resume step, however it ended: the incident's record into the run history."""
        try:
            yield
        finally:
            try:
                record = self.records.load(incident)  # as written: redacted, and the truth
                if record is not None:
                    self.history.record_incident(record)
                    self._learn(record)
            except (SQLAlchemyError, OSError, ValueError) as exc:
                log.warning("incident %s: not recorded in the run history (%s): %s", incident, self.history.shown,
                            redact(f"{type(exc).__name__}: {exc}", self.settings.secrets))

    def _learn(self, record: IncidentRecord) -> None:
        """A finished incident's steps, once: into the run history, and into a learned policy's Q-values."""
        if not record.is_terminal or self.history.has_experience(record.incident_id):
            return
        learned = self.settings.policy_learn and isinstance(self.policy, LearnedPolicy)
        for step in experience.steps(record, self._weights):
            self.history.add_experience(record.incident_id, step.attempt, step.state, step.action, step.reward,
                                        step.next_state)
            if learned:
                self.policy.update(state_of(step.state), step.action, step.reward,  # type: ignore[union-attr]
                                   None if step.next_state is None else state_of(step.next_state))

    def _record_runs(self, scan: FailureScan) -> bool:
        """The runs a cycle listed, into the run history; False when its database refused them."""
        try:
            self.history.record_runs(scan.listed, scan.healer_runs)
            return True
        except SQLAlchemyError as exc:
            log.warning("%d runs not recorded in the run history (%s); listed again next cycle: %s",
                        len(scan.listed), self.history.shown, redact(f"{type(exc).__name__}: {exc}",
                                                                     self.settings.secrets))
            return False

    def _judge_succeeded(self, progress: ProgressFn | None) -> list[IncidentRecord]:
        """The recorded succeeded runs without telemetry: their event logs, the detector's verdict,
        anomaly incidents. A database that refuses them is logged; the next cycle takes them again."""
        try:
            found = anomalies.scan_succeeded(self.deps.client, self.settings, self.history, self.records,
                                             self.detector)
        except SQLAlchemyError as exc:
            log.warning("succeeded runs not judged (%s): %s", self.history.shown,
                        redact(f"{type(exc).__name__}: {exc}", self.settings.secrets))
            return []
        for record in found.flagged:
            log.info("anomaly: job %s run %s: %s", record.job, record.run_id, record.reason)
            if progress:
                progress(f"anomaly: job {record.job} run {record.run_id}: {record.reason}")
        return found.flagged

    def paused(self, incident: str) -> bool:
        snapshot = self.graph.get_state(self._config(incident))
        return any(task.interrupts for task in snapshot.tasks)

    def _drive(self, incident: str, graph_input: HealState | Command | None,
               progress: ProgressFn | None) -> IncidentRecord:
        config = self._config(incident)
        try:
            for update in self.graph.stream(graph_input, config, stream_mode="updates", durability="sync"):
                if progress:
                    for node in update:
                        if node != "__interrupt__":
                            progress(node)
        except (InvalidInput, NotFound) as exc:  # the input itself is wrong: end the incident
            return self._end_with_error(incident, str(exc), exc)
        except RETRIED:  # passes with time: the incident stays open for the next cycle
            raise
        except Exception as exc:  # a defect of ours: permanent for this incident, never retried forever
            log.error("incident %s: %s", incident, redact(
                "".join(traceback.format_exception(exc)), self.settings.secrets))
            return self._end_with_error(incident, f"the healer failed ({type(exc).__name__}: {exc}); "
                                                  "see the healer's log", exc)
        record = self.records.load(incident)
        assert record is not None
        return record

    def _end_with_error(self, incident: str, reason: str, exc: Exception) -> IncidentRecord:
        record = self.records.load(incident)
        if record is None:  # the record file was removed under us: nothing to end
            raise exc
        record.state = "error"
        record.reason = reason
        self.records.save(record)
        return record

    def _config(self, incident: str) -> dict:
        return {"configurable": {"thread_id": incident}, "recursion_limit": 20 + 10 * self.settings.max_attempts}

    def _model_name(self) -> str | None:
        return (self.settings.llm_model_id or "default") if self.settings.model_configured else None

    # --- watching -----------------------------------------------------------------------------

    def open_incidents(self) -> list[IncidentRecord]:
        """The incidents not yet ended, newest first (the index names them; only their records are read).
        Flagged anomalies wait for a person, not for the graph: they are not among them."""
        loaded = (self.records.load(incident) for incident in self.records.open_incidents())
        return [r for r in loaded if r is not None and not r.is_terminal and r.state != "flagged"]

    def decide_anomaly(self, incident: str, decision: str, progress: ProgressFn | None = None) -> IncidentRecord:
        """A person's choice on a flagged anomaly (`agents/anomalies.py`): dismiss, expected, or heal
        (which then heals it through the graph, as a failure, to its end or an approval pause)."""
        if decision not in ANOMALY_DECISIONS:
            raise InvalidInput(f"an anomaly is dismissed, marked expected or healed, not {decision!r}")
        with self._lock, self._lease(incident), self._kept_in_history(incident):
            record = anomalies.decide(self.history, self.records, incident, decision)  # type: ignore[arg-type]
            return record if decision != "heal" else self._continue(record, None, progress)

    def cycle(self, progress: ProgressFn | None = None) -> list[IncidentRecord]:
        """One monitor cycle: resume unfinished incidents, record every run listed in the run history,
        heal new failures, then judge the succeeded runs (`agents/anomalies.py`). Incidents another
        healer is working on are left to it. The watch cursor moves on (and is stored) only once every
        failure found has its incident and every run listed is in the history: a cycle that fails
        midway lists them again."""
        done: list[IncidentRecord] = []
        for record in reversed(self.open_incidents()):
            if not self.paused(record.incident_id):
                done += self._unless_busy(partial(self.resume, record.incident_id, progress=progress), progress)
        scan = scan_failures(self.deps.client, self.settings, self.records, self.cursor)
        recorded = self._record_runs(scan)
        for run in scan.runs:
            if progress:
                progress(f"new failure: job {run.job} run {run.id}")
            done += self._unless_busy(partial(self.heal, run.job, run.id, progress=progress), progress)
        if self.settings.anomaly_detection:  # after the failures: a cycle heals first
            done += self._judge_succeeded(progress)
        if recorded and scan.cursor is not None and scan.cursor != self.cursor:
            save_cursor(self.settings.data_dir, WatchCursor(scan.cursor, self.settings.watched_jobs))
            self.cursor = scan.cursor
        return done

    @staticmethod
    def _unless_busy(step: Callable[[], IncidentRecord], progress: ProgressFn | None) -> list[IncidentRecord]:
        try:
            return [step()]
        except IncidentBusy as exc:
            log.info("%s", exc)
            if progress:
                progress(str(exc))
            return []

    def watched_cycle(self, progress: ProgressFn | None = None) -> None:
        """One cycle as the watcher runs it: an error is reported on `watch_status`, never raised."""
        try:
            self.cycle(progress)
            self.watch_status.last_error = ""
        except Exception as exc:  # CDE or model unreachable: keep watching, the next cycle retries
            self.watch_status.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("monitor cycle failed: %s", self.watch_status.last_error)
        self.watch_status.cycles += 1
        self.watch_status.last_poll = utc_stamp()

    def watch(self, stop: threading.Event, progress: ProgressFn | None = None) -> None:
        """Monitors until `stop` is set, one cycle every `poll_interval_s`."""
        self.watch_status.alive = True
        try:
            while not stop.is_set():
                self.watched_cycle(progress)
                stop.wait(self.settings.poll_interval_s)
        finally:
            self.watch_status.alive = False
