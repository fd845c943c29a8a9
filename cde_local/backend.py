"""The local CDE's state rules: one method per API call, plus the run lifecycle (moto style).

Choices where CDE's behaviour is unconfirmed ([I] in cde-api.md):
- `type` of a new job defaults to `spark`; spark jobs need `spark.file`. Airflow jobs are stored
  but cannot run here (400). Schedules are stored, never executed.
- Mounted resources must exist when a job is created or patched (404) and when it runs (404); the
  python-env of `spark.pythonEnvResourceName` is checked only when the job runs (404 when missing,
  400 `cannot use resource '<name>' in status '<status>'` when not ready).
- PATCH /jobs/{name} is a JSON merge patch (objects merge, null deletes, lists replace) and answers
  200 with the whole job; the name and type cannot change. DELETE answers 204. Runs of a deleted
  job stay listed. Schedule pause/unpause answer 201 with an empty body.
- `GET /jobs?latestjob=...` is accepted and ignored; hidden jobs are listed like the others.
  `includeFiles` defaults to false on resources.
- A run's `started` is its creation time; `user` is the run request's `user` or the caller.
  `spark.sparkAppID` is `spark-<32 hex>` made up here, `sparkAppURL` points at this server's
  `/hs/history/<id>/jobs/` (which does not exist: there is no history server locally).
- Kill: 204, empty body. A waiting run is killed at once; a running one gets its process group
  SIGTERM (SIGKILL after `kill_grace_s`) and the call waits (bounded) until the run has ended.
  Killing an ended run is a 400 `cannot kill job run <id> in status '<status>'`.
- Logs: `driver/stdout`, `driver/stderr`, `submitter/stdout` exist (maybe empty) from creation on;
  `driver/event` (Spark's event log, JSON lines; eventlog.py) once Spark has created it, so far
  as written while the run goes. A type the run does not have (yet) is a 404. `follow=true` is
  accepted and answers what is there now.
- A python-env accepts only `requirements.txt` (other paths: 400); uploading it starts a build;
  uploads or deletes while it builds are refused (409).
- Stopping the server fails its unfinished runs (processes killed, reason in `submitter/stdout`);
  a server that died without stopping fails them at its next start, killing leftover processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from . import clock, eventlog, filters, specs
from .auth import TokenIssuer
from .cds import ClassDataSharing
from .config import LocalCdeConfig
from .errors import (
    BadRequest,
    ConfigError,
    Conflict,
    JobNotFound,
    MetastoreError,
    NotFound,
    OAuthError,
    RequestIdConflict,
    ResourceNotFound,
    RunNotFound,
    Unauthorized,
)
from .faults import Faults
from .metastore import MetastoreService
from .paths import LOG_TYPES, DataPaths, clean_relative_path, mount_prefix
from .pyenv import BuildOutcome, PyEnvBuilder
from .runner import (
    RunExecutor,
    SubmitPlan,
    copy_mounts,
    event_log_dir,
    live_group_members,
    log_line,
    plan_submit,
    spark_home,
    terminate_group,
)
from .store import Store

RUN_STATUSES = ("starting", "running", "succeeded", "failed", "killed", "unknown")
ACTIVE_STATUSES = ("starting", "running")
ENDED_STATUSES = ("succeeded", "failed", "killed", "unknown")
KILL_WAIT_EXTRA_S = 5.0  # kill waits kill_grace_s plus this for the run to end
RUN_WAIT_POLL_S = 0.2  # polling period of wait_for_run / kill
SPARK_DEFAULTS = {"driverMemory": "1g", "driverCores": 1, "executorMemory": "1g", "executorCores": 1}


class Backend:
    """All state of one local CDE. Thread-safe: HTTP handlers, run threads and builds share it."""

    def __init__(self, config: LocalCdeConfig) -> None:
        self.config = config
        self.paths = DataPaths(config.data_dir)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_data_dir(self.paths.root)
        for directory in (self.paths.warehouse, self.paths.metastore, self.paths.root / "runs"):
            directory.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.paths.db)
        self.faults = Faults(config.faults, seed=config.fault_seed)
        self.tokens = TokenIssuer(self.store, config.users, config.access_keys)
        self.public_url = ""  # set by the server once it knows its address
        self._lock = threading.RLock()
        self._executor = RunExecutor(config, self) if config.run_mode == "spark" else None
        self._builder = PyEnvBuilder(config, self.paths, self._build_done)
        self._spark_home: Path | None = None
        # Started by the first run that needs it (before_launch), stopped by close().
        self.metastore = MetastoreService(self.paths.metastore, self.paths.warehouse, self._spark_dir)
        # The drivers' class data sharing archive: made in the background by the first run (cds.py).
        self.class_data_sharing = ClassDataSharing(config, self._spark_dir)
        self._closed = False
        self._store_closed = False
        self._recover()

    # == lifecycle ================================================================================
    def close(self) -> None:
        """Stop: fail unfinished runs (killing their process groups), stop builds, close the store."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._executor is not None:
            for run_id in self._executor.shutdown():
                self._end_run(run_id, "failed", "the local CDE stopped before this run was launched")
        for run in self.store.runs_in_status(ACTIVE_STATUSES):  # manual mode, or a race with a launch
            self._end_run(run["id"], "failed", f"the local CDE stopped while this run was {run['status']}")
        self.class_data_sharing.stop()  # a warm-up in progress is killed, its files removed
        self.metastore.stop()  # after the runs: none is using it any more
        self._builder.shutdown()
        with self._lock:
            self._store_closed = True
            self.store.close()
        self._lock_file.close()

    def _recover(self) -> None:
        """After a crash: fail runs left starting/running (ending leftover processes), and builds;
        end the metastore service the crashed local CDE left running."""
        self.metastore.kill_stale()
        for run in self.store.runs_in_status(ACTIVE_STATUSES):
            run_id = run["id"]
            group = self.store.process_group(run_id)
            note = f"the local CDE stopped unexpectedly while this run was {run['status']}; marked failed at startup"
            if group and _group_belongs_to(group, self.paths.run_dir(run_id)):
                terminate_group(group, self.config.kill_grace_s)
                note += f"; leftover process group {group} killed"
            self._end_run(run_id, "failed", note)
        for resource in self.store.list_resources():
            if resource.get("status") == "building":
                resource["status"] = "failed"
                resource["pythonEnvInfo"] = {
                    "statusReason": "Build failed: interrupted by a stop of the local CDE; upload requirements.txt again"
                }
                self.store.update_resource(resource)

    # == auth =====================================================================================
    def issue_token(self, authorization: str | None) -> dict[str, Any]:
        user = self.tokens.check_basic(authorization)
        ttl = self.faults.token_ttl_s or self.config.token_ttl_s
        return self.tokens.issue(user, ttl)

    def issue_access_key_token(self, authorization: str | None, grant_type: str | None) -> dict[str, Any]:
        """The console's OAuth client-credentials answer for an access key: `access_token`,
        `token_type`, `expires_in` (absolute epoch ms, as Knox). The client is checked first."""
        try:
            key_id = self.tokens.check_access_key(authorization)
        except Unauthorized as exc:
            headers = {"WWW-Authenticate": 'Basic realm="cde_local"'}
            raise OAuthError(401, "invalid_client", exc.message, headers=headers) from None
        if grant_type != "client_credentials":
            got = "no single grant_type" if grant_type is None else f"grant_type '{grant_type[:40]}'"
            raise OAuthError(
                400,
                "invalid_request" if grant_type is None else "unsupported_grant_type",
                f"send the form body grant_type=client_credentials "
                f"(application/x-www-form-urlencoded); got {got}",
            )
        reply = self.tokens.issue(key_id, self.faults.token_ttl_s or self.config.token_ttl_s)
        return {name: reply[name] for name in ("access_token", "token_type", "expires_in")}

    def authenticate(self, authorization: str | None) -> str:
        return self.tokens.check_bearer(authorization)

    def info(self) -> dict[str, Any]:
        return {
            "appName": self.config.vc_name,
            "appID": "local-" + hashlib.sha1(str(self.paths.root).encode()).hexdigest()[:8],
            "version": "1.0.0-local",
            "apiVersion": "v1",
            "runtime": "cde_local",
            "sparkVersion": _package_version("pyspark"),
            "sparkMaster": self.config.spark_master,
            "runMode": self.config.run_mode,
        }

    # == resources ================================================================================
    def create_resource(self, body: Any) -> None:
        spec = specs.validate_resource(body)
        name = specs.check_name("resource", spec.get("name"))
        kind = spec.get("type", "files")
        now = clock.now()
        doc: dict[str, Any] = {
            "name": name,
            "type": kind,
            "status": "pending-build" if kind == "python-env" else "ready",
            "signature": _signature([]),
            "created": now,
            "modified": now,
            "lastUsed": now,
            "retentionPolicy": spec.get("retentionPolicy", "keep_indefinitely"),
        }
        if "hidden" in spec:
            doc["hidden"] = spec["hidden"]
        if kind == "python-env":
            doc["pythonEnv"] = {"pythonVersion": "python3", **spec.get("pythonEnv", {}), "type": "python-env"}
        if kind == "custom-runtime-image":
            doc["customRuntimeImage"] = {"engine": "spark3", **spec.get("customRuntimeImage", {})}
        with self._lock:
            if not self.store.insert_resource(doc):
                raise Conflict(f"resource with name '{name}' already exists")
            shutil.rmtree(self.paths.resource_dir(name), ignore_errors=True)  # leftovers of a crash

    def list_resources(self, query: filters.ListQuery, include_files: bool) -> dict[str, Any]:
        page, meta = self.store.list_page(
            "resources", query, view=lambda doc: self._resource_view(doc, include_files)
        )
        return {"resources": page, "meta": meta}

    def describe_resource(self, name: str, include_files: bool) -> dict[str, Any]:
        return self._resource_view(self._resource(name), include_files)

    def delete_resource(self, name: str) -> None:
        with self._lock:
            self._resource(name)
            self.store.delete_resource(name)
            shutil.rmtree(self.paths.resource_dir(name), ignore_errors=True)
        self._builder.discard(name)  # outside the lock: a finishing build reports back under it

    def upload_file(self, name: str, raw_path: str, content: bytes) -> None:
        with self._lock:
            resource = self._resource(name)
            path = clean_relative_path(raw_path, "resource file path")
            kind = resource["type"]
            if kind == "custom-runtime-image":
                raise BadRequest(f"resource '{name}' is of type custom-runtime-image and holds no files")
            if kind == "python-env":
                if path != "requirements.txt":
                    raise BadRequest(
                        f"python-env resource '{name}' accepts only 'requirements.txt', not '{path}'"
                    )
                self._refuse_while_building(resource)
            self._check_path_free(name, path)
            target = self.paths.resource_file(name, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{uuid.uuid4().hex}.part")  # not from the name: a long one fits too
            partial.write_bytes(content)
            partial.replace(target)
            now = clock.now()
            previous = self.store.get_file(name, path)
            self.store.put_file(
                name,
                {
                    "path": path,
                    "signature": hashlib.sha1(content).hexdigest(),
                    "sizeBytes": len(content),
                    "created": previous["created"] if previous else now,
                    "modified": now,
                },
            )
            resource["signature"] = _signature(self.store.list_files(name))
            resource["modified"] = now
            if kind == "python-env":
                resource["status"] = "building"
                resource["pythonEnvInfo"] = {"statusReason": "Building"}
            self.store.update_resource(resource)
            if kind == "python-env":
                self._builder.start(name)

    def download_file(self, name: str, raw_path: str) -> bytes:
        self._resource(name)
        path = clean_relative_path(raw_path, "resource file path")
        if self.store.get_file(name, path) is None:
            raise NotFound(f"file '{path}' not found in resource '{name}'")
        return self.paths.resource_file(name, path).read_bytes()

    def delete_file(self, name: str, raw_path: str) -> None:
        with self._lock:
            resource = self._resource(name)
            path = clean_relative_path(raw_path, "resource file path")
            if resource["type"] == "python-env":
                self._refuse_while_building(resource)
            if not self.store.delete_file(name, path):
                raise NotFound(f"file '{path}' not found in resource '{name}'")
            self.paths.resource_file(name, path).unlink(missing_ok=True)
            resource["signature"] = _signature(self.store.list_files(name))
            resource["modified"] = clock.now()
            if resource["type"] == "python-env":
                resource["status"] = "pending-build"
                resource.pop("pythonEnvInfo", None)
                shutil.rmtree(self.paths.pyenv_venv(name), ignore_errors=True)
            self.store.update_resource(resource)

    def _resource(self, name: str) -> dict[str, Any]:
        doc = self.store.get_resource(name)
        if doc is None:
            raise ResourceNotFound()
        return doc

    def _resource_view(self, doc: dict[str, Any], include_files: bool) -> dict[str, Any]:
        if include_files:
            return {**doc, "files": self.store.list_files(doc["name"])}
        return doc

    def _refuse_while_building(self, resource: dict[str, Any]) -> None:
        if resource["status"] == "building" or self._builder.is_building(resource["name"]):
            raise Conflict(f"resource '{resource['name']}' is building; wait until the build has ended")

    def _check_path_free(self, name: str, path: str) -> None:
        """A file may not sit where a directory of other files is, nor inside another file."""
        for other in self.store.list_files(name):
            existing = other["path"]
            if existing.startswith(path + "/") or path.startswith(existing + "/"):
                raise BadRequest(f"path '{path}' conflicts with file '{existing}' in resource '{name}'")

    def _build_done(self, name: str, outcome: BuildOutcome) -> None:
        with self._lock:
            if self._closed:
                return
            resource = self.store.get_resource(name)
            if resource is None or resource.get("status") != "building":
                return  # deleted (or changed) while building: drop the result
            resource["status"] = "ready" if outcome.ok else "failed"
            resource["pythonEnvInfo"] = outcome.info
            resource["modified"] = clock.now()
            self.store.update_resource(resource)

    # == jobs =====================================================================================
    def create_job(self, body: Any, user: str) -> None:
        spec = specs.validate_job(body)
        name = specs.check_name("job", spec.get("name"))
        now = clock.now()
        doc = self._complete_job({**spec, "name": name}, created=now, modified=now, last_used=now, user=user)
        with self._lock:
            self._check_mounts(doc)
            if not self.store.insert_job(doc):
                raise Conflict(f"job with name '{name}' already exists")

    def list_jobs(self, query: filters.ListQuery, raw: bool = False) -> dict[str, Any]:
        """A page of jobs; `raw`: documents may be stored JSON text (Store.list_page), for orjson."""
        page, meta = self.store.list_page("jobs", query, raw=raw)
        return {"jobs": page, "meta": meta}

    def describe_job(self, name: str) -> dict[str, Any]:
        return self._job(name)

    def update_job(self, name: str, body: Any, user: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("invalid job: the body must be a JSON object")
        with self._lock:
            current = self._job(name)
            if body.get("name") not in (None, name):
                raise BadRequest(
                    f"job name cannot be changed (job '{name}', body names '{body.get('name')}')"
                )
            if body.get("type") not in (None, current["type"]):
                raise BadRequest(f"job type cannot be changed from '{current['type']}'")
            server_fields = {"created", "modified", "lastUsed"}
            merged = specs.deep_merge({k: v for k, v in current.items() if k not in server_fields}, body)
            spec = specs.validate_job({**merged, "name": name})
            doc = self._complete_job(
                spec,
                created=current["created"],
                modified=clock.now(),
                last_used=current["lastUsed"],
                user=user,
            )
            self._check_mounts(doc)
            self.store.update_job(doc)
            return doc

    def delete_job(self, name: str) -> None:
        with self._lock:
            if not self.store.delete_job(name):
                raise JobNotFound()

    def set_schedule_paused(self, name: str, paused: bool) -> None:
        with self._lock:
            job = self._job(name)
            job.setdefault("schedule", {})["paused"] = paused
            job["modified"] = clock.now()
            self.store.update_job(job)

    def _job(self, name: str) -> dict[str, Any]:
        doc = self.store.get_job(name)
        if doc is None:
            raise JobNotFound()
        return doc

    def _complete_job(
        self, spec: dict[str, Any], *, created: str, modified: str, last_used: str, user: str
    ) -> dict[str, Any]:
        """Server-side defaults, as CDE shows them on GET."""
        kind = spec.get("type", "spark")
        doc: dict[str, Any] = {
            "name": spec["name"],
            "type": kind,
            "created": created,
            "modified": modified,
            "lastUsed": last_used,
            "retentionPolicy": "keep_indefinitely",
        }
        doc.update({k: v for k, v in spec.items() if k not in ("name", "type")})
        if kind == "spark":
            spark = doc.get("spark") or {}
            if not spark.get("file"):
                raise BadRequest("invalid job: spark.file (the application file) is required for spark jobs")
            doc["spark"] = {**spark, **{k: v for k, v in SPARK_DEFAULTS.items() if k not in spark}}
        schedule = dict(doc.get("schedule") or {})
        schedule.setdefault("enabled", False)
        schedule.setdefault("user", user)
        doc["schedule"] = schedule
        for mount in doc.get("mounts") or []:
            mount_prefix(mount.get("dirPrefix"))  # validates the prefix
        return doc

    def _check_mounts(self, job: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
        """The mounted resources (doc, dir prefix); 404/400 when one is missing or not `files`."""
        mounted = []
        for mount in job.get("mounts") or []:
            resource = self.store.get_resource(mount["resourceName"])
            if resource is None:
                raise ResourceNotFound(
                    f"could not get resource '{mount['resourceName']}' mounted by job '{job['name']}': "
                    "resource not found"
                )
            if resource["type"] != "files":
                raise BadRequest(
                    f"resource '{resource['name']}' is of type {resource['type']}; only files resources can be "
                    "mounted (a python-env goes in spark.pythonEnvResourceName)"
                )
            mounted.append((resource, mount_prefix(mount.get("dirPrefix"))))
        return mounted

    # == runs =====================================================================================
    def run_job(self, name: str, body: Any, user: str) -> int:
        request = specs.validate_run_request(body if body is not None else {})
        with self._lock:
            job = self._job(name)
            request_id = request.get("requestID")
            if request_id:
                earlier = self.store.run_for_request(request_id)
                if earlier is not None:
                    raise RequestIdConflict(earlier)
            if job["type"] != "spark":
                raise BadRequest(f"job '{name}' is of type {job['type']}; the local CDE runs only spark jobs")
            spec = specs.deep_merge(
                job.get("spark") or {}, (request.get("overrides") or {}).get("spark") or {}
            )
            variables = {**(job.get("defaultVariables") or {}), **(request.get("variables") or {})}
            spec = _substitute_spec(spec, variables)
            mounted = self._check_mounts(job)
            python = self._python_for(job["name"], spec.get("pythonEnvResourceName"))
            now = clock.now()
            app_id = f"spark-{uuid.uuid4().hex}"
            run: dict[str, Any] = {
                "id": 0,
                "job": name,
                "type": "spark",
                "status": "starting",
                "user": request.get("user") or user,
                "started": now,
                "ended": clock.ZERO_TIME,
                "mounts": job.get("mounts") or [],
                "spark": {
                    "sparkAppID": app_id,
                    "sparkAppURL": f"{self.public_url}/hs/history/{app_id}/jobs/",
                    "spec": spec,
                },
                "identity": {"disableRoleProxy": True, "role": "instance"},
            }
            if job.get("runtimeImageResourceName"):
                run["runtimeImageResourceName"] = job["runtimeImageResourceName"]
            run_id = self.store.insert_run(run)
            if request_id:
                self.store.remember_request(request_id, run_id)
            for log_type in LOG_TYPES:
                log_path = self.paths.run_log(run_id, log_type)
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_path.touch()
            submitter = self.paths.run_log(run_id, "submitter/stdout")
            log_line(submitter, f"job run {run_id} of job '{name}' created by {run['user']}")
            log_line(submitter, f"effective spark spec: {json.dumps(spec, sort_keys=True)}")
            job["lastUsed"] = now
            self.store.update_job(job)
            for resource, _prefix in mounted:
                resource["lastUsed"] = now
                self.store.update_resource(resource)
            if self._executor is None:
                log_line(submitter, "manual run mode: not launched (drive it with Backend.set_run_status)")
                return run_id
            try:
                copy_mounts(
                    [
                        (
                            self.paths.resource_dir(r["name"]),
                            prefix,
                            [f["path"] for f in self.store.list_files(r["name"])],
                        )
                        for r, prefix in mounted
                    ],
                    self.paths.run_mount_root(run_id),
                )
                cds = self.class_data_sharing.for_run()  # never waits; may start the warm-up
                if cds.note:
                    log_line(submitter, cds.note)
                plan = plan_submit(
                    run_id=run_id,
                    job_name=name,
                    spec=spec,
                    config=self.config,
                    paths=self.paths,
                    python=python,
                    spark_dir=self._spark_dir(),
                    metastore_uri=self.metastore.uri,
                    cds_flags=cds.flags,
                )
            except (OSError, FileNotFoundError) as exc:
                self._end_run(run_id, "failed", f"could not prepare the run: {exc}")
                return run_id
            if not self._executor.submit(plan):
                log_line(
                    submitter,
                    f"waiting for a free run slot (max_concurrent_runs={self.config.max_concurrent_runs})",
                )
            return run_id

    def list_runs(self, query: filters.ListQuery, raw: bool = False) -> dict[str, Any]:
        """A page of runs; `raw`: documents may be stored JSON text (Store.list_page), for orjson."""
        page, meta = self.store.list_page("runs", query, raw=raw)
        return {"runs": page, "meta": meta}

    def describe_run(self, run_id: int) -> dict[str, Any]:
        run = self.store.get_run(run_id)
        if run is None:
            raise RunNotFound()
        return run

    def log_types(self, run_id: int) -> list[str]:
        run = self.describe_run(run_id)
        logs = self.paths.run_dir(run_id) / "logs"
        found = sorted(str(p.relative_to(logs)) for p in logs.glob("*/*") if p.is_file())
        if eventlog.LOG_TYPE not in found and self._event_log(run) is not None:
            found.append(eventlog.LOG_TYPE)
        return [t for t in LOG_TYPES if t in found] + [t for t in found if t not in LOG_TYPES]

    def run_log(self, run_id: int, log_type: str | None) -> str:
        available = self.log_types(run_id)
        if not log_type:
            raise BadRequest(f"query parameter 'type' is required; available: {', '.join(available)}")
        if log_type not in available:
            raise NotFound(
                f"log type '{log_type}' not found for job run {run_id}; available: {', '.join(available)}"
            )
        path = self.paths.run_log(run_id, log_type)
        if log_type == eventlog.LOG_TYPE and not path.is_file():  # not written by hand: Spark's
            return self._event_log_text(run_id)
        return path.read_text(encoding="utf-8", errors="replace")

    def _event_log(self, run: dict[str, Any]) -> Path | None:
        """Where Spark has written the run's event log so far (eventlog.py), or None."""
        run_id = run["id"]
        folder = event_log_dir((run.get("spark") or {}).get("spec") or {}, self.paths, run_id)
        if folder is None:
            return None
        started = datetime.fromisoformat(run["started"].replace("Z", "+00:00")).timestamp()
        own = folder == self.paths.run_event_log_dir(run_id)
        return eventlog.locate(folder, own, f"{self.paths.run_work(run_id)}/", started)

    def _event_log_text(self, run_id: int) -> str:
        for _attempt in range(2):  # Spark may rename `<app>.inprogress` between locating and reading
            log = self._event_log(self.describe_run(run_id))
            if log is None:
                break
            try:
                return eventlog.read(log)
            except FileNotFoundError:
                continue
        raise NotFound(f"log type '{eventlog.LOG_TYPE}' not found for job run {run_id}")

    def kill_run(self, run_id: int) -> None:
        with self._lock:
            run = self.describe_run(run_id)
            if run["status"] not in ACTIVE_STATUSES:
                raise BadRequest(f"cannot kill job run {run_id} in status '{run['status']}'")
            submitter = self.paths.run_log(run_id, "submitter/stdout")
            log_line(submitter, "kill requested")
            where = self._executor.kill(run_id) if self._executor is not None else None
            if where != "running":
                self._end_run(
                    run_id, "killed", "killed before launch" if where == "queued" else "killed on request"
                )
                return
        self.wait_for_run(run_id, self.config.kill_grace_s + KILL_WAIT_EXTRA_S)

    def wait_for_run(self, run_id: int, timeout_s: float) -> dict[str, Any]:
        """The run once it has ended, or as it is after `timeout_s` (for in-process callers)."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.describe_run(run_id)
            if run["status"] in ENDED_STATUSES or time.monotonic() >= deadline:
                return run
            time.sleep(RUN_WAIT_POLL_S)

    def _python_for(self, job_name: str, env_name: str | None) -> str:
        if not env_name:
            return self.config.python_executable
        env = self.store.get_resource(env_name)
        if env is None:
            raise ResourceNotFound(
                f"could not get python-env resource '{env_name}' of job '{job_name}': resource not found"
            )
        if env["type"] != "python-env":
            raise BadRequest(f"resource '{env_name}' is of type {env['type']}, not python-env")
        if env["status"] != "ready":
            raise BadRequest(f"cannot use resource '{env_name}' in status '{env['status']}'")
        return str(self.paths.pyenv_python(env_name))

    def _spark_dir(self) -> Path:
        if self._spark_home is None:
            self._spark_home = spark_home(self.config.python_executable)
        return self._spark_home

    # == run lifecycle: executor events and manual driving ========================================
    def before_launch(self, plan: SubmitPlan, cancelled: Callable[[], bool]) -> str | None:
        """In the run's thread: start the shared metastore service for a run that uses it (the first
        such run waits for its start-up). None, or why the run fails."""
        if not plan.uses_metastore:
            return None
        if self.metastore.pid is None:
            log_line(plan.submitter, f"starting the shared Hive metastore service ({self.metastore.log_path})")
        try:
            self.metastore.ensure_running(cancelled)
        except MetastoreError as exc:
            return str(exc)
        return None

    def run_launched(self, run_id: int, process_group: int) -> None:
        with self._lock:
            if self._store_closed:
                return
            self.store.set_process_group(run_id, process_group)
            run = self.store.get_run(run_id)
            if run is not None and run["status"] == "starting":
                run["status"] = "running"
                self.store.update_run(run)

    def run_ended(self, run_id: int, status: str, reason: str) -> None:
        self._end_run(run_id, status, reason, note=False)

    def set_run_status(self, run_id: int, status: str, note: str | None = None) -> dict[str, Any]:
        """Drive a run by hand (manual run mode, moto style): starting → running → an end status.

        Raises BadRequest for an unknown status, a run the executor is running, or a run that ended.
        """
        if status not in RUN_STATUSES:
            raise BadRequest(f"unknown run status '{status}'; known: {', '.join(RUN_STATUSES)}")
        with self._lock:
            run = self.describe_run(run_id)
            if self._executor is not None and self._executor.is_active(run_id):
                raise BadRequest(
                    f"job run {run_id} is being run by spark-submit; it cannot be driven by hand"
                )
            if run["status"] not in ACTIVE_STATUSES or status == "starting":
                raise BadRequest(f"cannot move job run {run_id} from '{run['status']}' to '{status}'")
            submitter = self.paths.run_log(run_id, "submitter/stdout")
            log_line(submitter, f"status set to {status} by hand" + (f": {note}" if note else ""))
            if status == "running":
                run["status"] = "running"
                self.store.update_run(run)
                return run
            self._end_run(run_id, status, note or "set by hand", note=False)
            return self.describe_run(run_id)

    def write_run_log(self, run_id: int, log_type: str, text: str, append: bool = True) -> None:
        """Write a run's log by hand (manual run mode), e.g. a driver/stdout with a Spark error."""
        self.describe_run(run_id)
        if log_type.count("/") != 1:
            raise BadRequest(f"invalid log type '{log_type}': expected <source>/<stream>")
        clean_relative_path(log_type, "log type")
        path = self.paths.run_log(run_id, log_type)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if append else "w", encoding="utf-8") as handle:
            handle.write(text)

    def _end_run(self, run_id: int, status: str, reason: str, note: bool = True) -> None:
        """Give a run its end status (once); `note` also writes the reason to submitter/stdout."""
        with self._lock:
            if self._store_closed:
                return
            run = self.store.get_run(run_id)
            if run is None or run["status"] not in ACTIVE_STATUSES:
                return
            if note:
                log_line(self.paths.run_log(run_id, "submitter/stdout"), f"run {status}: {reason}")
            run["status"] = status
            run["ended"] = clock.now()
            self.store.update_run(run)
            self.store.set_process_group(run_id, None)


def _substitute_spec(spec: dict[str, Any], variables: dict[str, str]) -> dict[str, Any]:
    if not variables:
        return spec
    result = dict(spec)
    if "name" in result:
        result["name"] = specs.substitute(result["name"], variables)
    if "args" in result:
        result["args"] = [specs.substitute(a, variables) for a in result["args"]]
    if "conf" in result:
        result["conf"] = {k: specs.substitute(v, variables) for k, v in result["conf"].items()}
    return result


def _signature(files: list[dict[str, Any]]) -> str:
    digest = hashlib.sha1()
    for entry in sorted(files, key=lambda f: f["path"]):
        digest.update(f"{entry['path']}\0{entry['signature']}\n".encode())
    return digest.hexdigest()


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _group_belongs_to(process_group: int, run_dir: Path) -> bool:
    """True when a live process of the group works inside the run's directory (so not a reused pid)."""
    for pid in live_group_members(process_group):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if Path(cwd).is_relative_to(run_dir):
            return True
    return False


def _lock_data_dir(root: Path) -> Any:
    """Hold an exclusive lock on the data directory for the life of the backend."""
    handle = (root / ".lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"data directory {root} is in use by another local CDE") from None
    return handle
