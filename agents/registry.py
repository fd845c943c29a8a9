"""The model registry of what the healer learns (MLflow): versions of the learned policy and of the
anomaly detector's configuration, an alias per environment.

Each version of the registered model `POLICY_MODEL` is one policy artefact file (`artefact.py`),
logged in an MLflow run of the experiment `EXPERIMENT`: the run's metrics are the training
summary's evaluation figures (`learned.mttr_median_min`, `static.escalated`, `done_when.<check>`
as 1/0, ...), its params the summary's other scalars (episodes, seeds, fleet sizes), and the
version's tags its `policy_id` and `created`. Registering a policy whose `policy_id` is already a
version returns that version. An alias per environment (`dev`, `prd`) names the version a healer
with `HEAL_POLICY_ALIAS` loads at start; `promote` moves one alias to the version another names.
`load` downloads the version's file and reads it with `artefact.load`, so every check of the file
applies, and the file must still hold the policy the version was registered with.

A second registered model, `DETECTOR_MODEL`, versions anomaly-detector artefacts
(`agents/anomaly/artefact.py`) the same way: tag `detector_id`, the evaluation's figures (precision,
recall, `recall_by_kind.<kind>`, false_alarms_per_1000) as the run's metrics, `evaluated_on` as its
params; a healer with HEAL_ANOMALY_ALIAS loads one. What differs between the two is a `Kind`
(`POLICY`, `DETECTOR`): `register`, `load` and the rest pick it from the model's name, or take it.

Where: `open_registry(uri, data_dir)`. An empty `uri` is the embedded store, `sqlite:///<data_dir>/
registry.db` with the files under `<data_dir>/registry-artifacts`; otherwise a team's MLflow
tracking server (`https://...`: the server keeps the files) or a database URL (the files under
`<data_dir>/registry-artifacts` of the healer that registered first: use a server to share them).

Errors: every problem is a `RegistryError` (`str(err)` says what and where, a URL's password
masked) — no registry there yet, unreachable, an unknown model or alias (the message lists the
aliases that exist), a bad alias name, an artefact that cannot be registered or loaded.

MLflow is imported on first use only (a healer without a registry never loads it), with its usage
telemetry off, its logging left to the process (its loggers at WARNING), no progress bars, and a
server that does not answer given up after two retries; an `MLFLOW_*` variable already set wins.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from agents.anomaly import artefact as detector_artefact
from agents.policy import artefact
from agents.policy.artefact import PolicyArtefactError
from agents.urls import masked_url

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

POLICY_MODEL = "healer-recovery-policy"
DETECTOR_MODEL = "healer-anomaly-detector"
EXPERIMENT = "self-healing-spark"
REGISTRY_FILE = "registry.db"
ARTIFACTS_DIR = "registry-artifacts"
ARTEFACT_DIR, ARTEFACT_NAME = "policy", "learned-policy.json"  # where a policy version's file sits in its run
ALIAS = re.compile(r"[a-z][a-z0-9_-]{0,39}\Z")
_RESERVED_ALIAS = re.compile(r"(latest|v\d+)\Z")  # MLflow's own names for versions
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\-/ ]")
_MAX_PARAMS = 100  # MLflow's batch limit
_MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_CONFIGURE_LOGGING": "false",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class RegistryError(Exception):
    """The model registry cannot do what was asked; `str(err)` says why (passwords masked)."""


@dataclass(frozen=True)
class Kind:
    """What the versions of a registered model hold: the artefact's loader (its errors are `error`,
    with a `problem`), its id field (also the version's tag), its figures (the run's metrics) and
    facts (the run's params), where its file sits in the run, and how to register one (for messages)."""

    model: str  # the registered model's default name
    what: str  # "policy", "detector"
    id_field: str
    load: Callable[[Path], Any]
    error: type[Exception]
    figures: Callable[[Any], list[tuple[str, float]]]
    facts: Callable[[Any], list[tuple[str, str]]]
    directory: str
    file: str
    register_hint: str
    description: str


@dataclass(frozen=True)
class RegisteredVersion:
    name: str  # the registered model
    version: int
    artefact_id: str  # of the artefact file it holds: its policy_id or detector_id
    created: str  # when the artefact was made (its `created`)
    registered: str  # when this version was registered, UTC ISO 8601
    aliases: tuple[str, ...]
    run_id: str
    evaluation: dict[str, float] = field(default_factory=dict)  # the run's metrics: the evaluation figures

    @property
    def label(self) -> str:
        return f"v{self.version}"

    @property
    def policy_id(self) -> str:  # the name before detectors were registered too
        return self.artefact_id


POLICY = Kind(
    POLICY_MODEL, "policy", "policy_id", artefact.load, PolicyArtefactError,
    figures=lambda found: _figures(found.training), facts=lambda found: _facts(found.training),
    directory=ARTEFACT_DIR, file=ARTEFACT_NAME, register_hint="python -m app policy register",
    description="the healer's learned recovery policy (agents/policy/artefact.py)")
DETECTOR = Kind(
    DETECTOR_MODEL, "detector", "detector_id", detector_artefact.load, detector_artefact.DetectorArtefactError,
    figures=lambda found: detector_artefact.figures(found.evaluation),
    facts=lambda found: [(key, str(value)[:500]) for key, value in _leaves(found.evaluated_on, "")],
    directory="detector", file="anomaly-detector.json", register_hint="python -m app policy register --detector FILE",
    description="the healer's anomaly detector configuration (agents/anomaly/artefact.py)")
KINDS = {kind.model: kind for kind in (POLICY, DETECTOR)}


def kind_of(name: str) -> Kind:
    """The kind of the registered model `name` (another name than the two: a policy's)."""
    return KINDS.get(name, POLICY)


def default_uri(data_dir: Path) -> str:
    """The embedded store under `data_dir` (HEALER_DATA_DIR)."""
    return f"sqlite:///{(Path(data_dir) / REGISTRY_FILE).resolve()}"


def open_registry(uri: str, data_dir: Path, *, create: bool = True) -> PolicyRegistry:
    """The registry `uri` names (empty: the embedded store under `data_dir`). With `create=False` an
    embedded store that does not exist yet is a RegistryError instead of a new, empty registry."""
    uri = uri or default_uri(data_dir)
    web = urlsplit(uri).scheme.lower() in ("http", "https")
    return PolicyRegistry(uri, artifacts=None if web else Path(data_dir) / ARTIFACTS_DIR, create=create)


def check_alias(alias: str) -> str:
    """`alias` if it can name an environment's version, else RegistryError."""
    if not ALIAS.match(alias) or _RESERVED_ALIAS.match(alias):
        raise RegistryError(f"an alias is a lower-case name such as `dev` or `prd` (letters, digits, '-', '_'; "
                            f"not `latest` or `v<number>`), not {alias!r}")
    return alias


class PolicyRegistry:
    """A typed wrapper over `mlflow.MlflowClient` for the learned artefacts (see the module docstring)."""

    def __init__(self, uri: str, *, artifacts: Path | None = None, create: bool = True) -> None:
        self.uri = uri
        self.shown = masked_url(uri)
        self._secrets = _passwords(uri)
        self._artifacts = artifacts
        self._experiment: str | None = None
        self._check_reachable(create)
        with self._errors("opening the model registry"):
            self._client: MlflowClient = _mlflow().MlflowClient(tracking_uri=uri, registry_uri=uri)

    # --- writing ----------------------------------------------------------------------------------

    def register(self, artefact_path: Path | str, *, name: str | None = None,
                 kind: Kind | None = None) -> RegisteredVersion:
        """A version of `name` (default: the kind's model) holding the artefact at `artefact_path`
        (checked by the kind's loader first); the existing version when one already holds its id.
        `kind`: default the kind of `name`, else the policy's."""
        kind = kind or kind_of(name or POLICY_MODEL)
        name = name or kind.model
        _check_name(name)
        source = Path(artefact_path)
        with tempfile.TemporaryDirectory(prefix=f"healer-{kind.what}-") as tmp:
            copy = Path(tmp) / kind.file  # what is checked is what is logged, under one name
            try:
                shutil.copyfile(source, copy)
                found = kind.load(copy)
            except FileNotFoundError:
                raise RegistryError(f"cannot register {source}: no such file") from None
            except (OSError, kind.error) as exc:
                problem = getattr(exc, "problem", None) or str(exc)
                raise RegistryError(f"cannot register {source}: {problem}") from exc
            existing = self._holding(name, getattr(found, kind.id_field))
            if existing is not None:
                return existing
            with self._errors(f"registering {source} as {name!r}"):
                version = self._log(name, source, copy, found, kind)
        return self._described(version)

    def set_alias(self, name: str, alias: str, version: int) -> RegisteredVersion:
        """Points `alias` at `version` of `name` (moving it from any other version)."""
        _check_name(name)
        check_alias(alias)
        with self._errors(f"setting alias {alias!r} of {name!r} to v{version}"):
            self._model_aliases(name)  # an unknown model: the registry's message, not MLflow's
            self._client.get_model_version(name, str(version))
            self._client.set_registered_model_alias(name, alias, str(version))
            return self._described(self._client.get_model_version(name, str(version)))

    def promote(self, name: str, from_alias: str, to_alias: str) -> tuple[RegisteredVersion | None, RegisteredVersion]:
        """Points `to_alias` at the version `from_alias` names: (the version `to_alias` named before or
        None, the version it names now)."""
        if check_alias(from_alias) == check_alias(to_alias):
            raise RegistryError(f"promoting {from_alias!r} to itself changes nothing: name two aliases")
        source = self.required(name, from_alias)
        before = self.version_for(name, to_alias)
        return before, self.set_alias(name, to_alias, source.version)

    # --- reading ----------------------------------------------------------------------------------

    def versions(self, name: str = POLICY_MODEL) -> list[RegisteredVersion]:
        """Every version of `name`, oldest first (none: an empty list)."""
        _check_name(name)
        with self._errors(f"listing the versions of {name!r}"):
            found = self._client.search_model_versions(f"name = '{name}'")
            aliases = self._model_aliases(name, missing_ok=True)
            return [self._described(v, aliases) for v in sorted(found, key=lambda v: int(v.version))]

    def version_for(self, name: str, alias: str) -> RegisteredVersion | None:
        """The version `alias` names, or None (no such alias). An unknown model is a RegistryError."""
        _check_name(name)
        check_alias(alias)
        with self._errors(f"looking up alias {alias!r} of {name!r}"):
            aliases = self._model_aliases(name)
            if alias not in aliases:
                return None
            return self._described(self._client.get_model_version(name, str(aliases[alias])), aliases)

    def load(self, name: str, alias: str, kind: Kind | None = None) -> Any:
        """The artefact (a `PolicyArtefact`, a `DetectorArtefact`: the kind's, default `name`'s) of the
        version `alias` names, checked as the kind's loader checks a file, and holding what that version
        was registered with. Its `path` is None (a registry's file)."""
        kind = kind or kind_of(name)
        version = self.required(name, alias)
        where = f"{name} {version.label} (alias {alias!r}) in {self.shown}"
        with tempfile.TemporaryDirectory(prefix=f"healer-{kind.what}-") as tmp:
            with self._errors(f"downloading {where}"):
                local = self._client.download_artifacts(version.run_id, f"{kind.directory}/{kind.file}", tmp)
            try:
                found = kind.load(Path(local))
            except kind.error as exc:
                raise RegistryError(f"{where}: {getattr(exc, 'problem', exc)}") from exc
        held = getattr(found, kind.id_field)
        if held != version.artefact_id:
            raise RegistryError(f"{where} was registered as {version.artefact_id} but its file holds "
                                f"{held}: the file was replaced in the registry's store")
        return replace(found, path=None)

    # --- inside -------------------------------------------------------------------------------------

    def required(self, name: str, alias: str) -> RegisteredVersion:
        """The version `alias` names; none: a RegistryError listing the aliases there are."""
        found = self.version_for(name, alias)
        if found is None:
            with self._errors(f"looking up alias {alias!r} of {name!r}"):
                aliases = self._model_aliases(name)
            known = ", ".join(f"{a} → v{v}" for a, v in sorted(aliases.items()))
            raise RegistryError(f"{name!r} in {self.shown} has no alias {alias!r}; "
                                + (f"its aliases: {known}" if known else
                                   f"it has no aliases yet (`{kind_of(name).register_hint} --alias dev`)"))
        return found

    def _model_aliases(self, name: str, *, missing_ok: bool = False) -> dict[str, int]:
        """{alias: version} of the registered model `name`; an unknown model: RegistryError (or {})."""
        from mlflow.exceptions import MlflowException

        try:
            model = self._client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            if missing_ok:
                return {}
            kind = kind_of(name)
            raise RegistryError(f"no model {name!r} in the registry {self.shown} yet "
                                f"(`{kind.register_hint}` registers the {kind.what})") from None
        return {alias: int(version) for alias, version in (model.aliases or {}).items()}

    def _holding(self, name: str, artefact_id: str) -> RegisteredVersion | None:
        return next((v for v in self.versions(name) if v.artefact_id == artefact_id), None)

    def _log(self, name: str, source: Path, copy: Path, found: Any, kind: Kind) -> ModelVersion:
        """One run with the file, its figures and facts; then a new version of `name` pointing at it."""
        from mlflow.entities import Metric, Param
        from mlflow.exceptions import MlflowException

        client = self._client
        found_id = getattr(found, kind.id_field)
        tags = {kind.id_field: found_id, "created": found.created}
        run = client.create_run(self._experiment_id(), run_name=f"{kind.what} {found_id}",
                                tags={**tags, "file": source.name})
        run_id = run.info.run_id
        stamp = _millis(datetime.now(timezone.utc))
        metrics = [Metric(key, value, stamp, 0) for key, value in kind.figures(found)]
        params = [Param(key, value) for key, value in kind.facts(found)][:_MAX_PARAMS]
        client.log_batch(run_id, metrics=metrics, params=params)
        client.log_artifact(run_id, str(copy), kind.directory)
        client.set_terminated(run_id)
        try:
            client.create_registered_model(name, description=kind.description)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        return client.create_model_version(name, f"{run.info.artifact_uri}/{kind.directory}", run_id=run_id,
                                           tags=tags, description=f"{'trained' if kind is POLICY else 'made'} {found.created}")

    def _experiment_id(self) -> str:
        if self._experiment is None:
            found = self._client.get_experiment_by_name(EXPERIMENT)
            if found is not None:
                self._experiment = found.experiment_id
            else:  # never MLflow's default `./mlruns`: the files go where the registry says
                location = self._artifacts.resolve().as_uri() if self._artifacts is not None else None
                self._experiment = self._client.create_experiment(EXPERIMENT, artifact_location=location)
        return self._experiment

    def _described(self, version: ModelVersion, aliases: dict[str, int] | None = None) -> RegisteredVersion:
        if aliases is None:
            aliases = self._model_aliases(version.name, missing_ok=True)
        number = int(version.version)
        tags = version.tags or {}
        metrics = self._client.get_run(version.run_id).data.metrics if version.run_id else {}
        found_id = next((tags[k.id_field] for k in (kind_of(version.name), *KINDS.values()) if k.id_field in tags), "")
        return RegisteredVersion(
            name=version.name, version=number, artefact_id=found_id, created=tags.get("created", ""),
            registered=_stamp(version.creation_timestamp), run_id=version.run_id or "",
            aliases=tuple(sorted(a for a, v in aliases.items() if v == number)), evaluation=dict(metrics))

    def _check_reachable(self, create: bool) -> None:
        """Fails fast and clearly where MLflow would retry for minutes or create an empty store."""
        parts = urlsplit(self.uri)
        scheme = parts.scheme.lower()
        if scheme == "sqlite":
            path = Path(unquote(parts.path)[1:]) if parts.path.startswith("/") else Path(parts.path)
            if not create and not path.is_file():
                raise RegistryError(f"no model registry at {path} yet (`python -m app policy register` "
                                    "creates it)")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RegistryError(f"cannot use the model registry {self.shown}: {exc}") from exc
        elif scheme.startswith(("postgresql", "mysql", "mssql")):
            import sqlalchemy

            connect = {"connect_timeout": 10} if scheme.startswith("postgresql") else {}
            engine = sqlalchemy.create_engine(self.uri, connect_args=connect)
            try:
                with engine.connect():
                    pass
            except sqlalchemy.exc.SQLAlchemyError as exc:
                raise RegistryError(f"cannot reach the model registry's database {self.shown}: "
                                    f"{self._clean(exc)}") from exc
            finally:
                engine.dispose()
        elif scheme not in ("http", "https"):
            raise RegistryError(f"the model registry must be an http(s) URL of a tracking server or a database "
                                f"URL, not {self.shown!r}")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """MLflow's, the database's and the network's errors as one RegistryError saying what failed."""
        import requests
        import sqlalchemy

        failures = (_mlflow().exceptions.MlflowException, sqlalchemy.exc.SQLAlchemyError, requests.RequestException,
                    OSError)
        try:
            yield
        except failures as exc:
            raise RegistryError(f"{doing} ({self.shown}): {self._clean(exc)}") from exc

    def _clean(self, exc: BaseException) -> str:
        """The first line of an error's message, without the URI's password, at most 400 characters."""
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return first if len(first) <= 400 else first[:399] + "…"


def _mlflow() -> Any:
    """The mlflow package, set up quietly the first time (see the module docstring)."""
    for key, value in _MLFLOW_ENV.items():
        os.environ.setdefault(key, value)
    import mlflow
    import mlflow.exceptions

    for logger in ("mlflow", "alembic"):
        if logging.getLogger(logger).level < logging.WARNING:
            logging.getLogger(logger).setLevel(logging.WARNING)
    return mlflow


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise RegistryError(f"a registered model's name is letters, digits, '.', '-' and '_', not {name!r}")


def _figures(training: dict[str, Any]) -> list[tuple[str, float]]:
    """The evaluation figures of a training summary, flattened: ("learned.mttr_median_min", 22.9), ..."""
    return [(key, float(value)) for key, value in _leaves(training.get("evaluation"), "")
            if isinstance(value, (int, float)) and math.isfinite(float(value))]


def _facts(training: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary's other scalars (not the evaluation, not the whole parameter set), as params."""
    rest = {k: v for k, v in training.items() if k not in ("evaluation", "params")}
    return [(key, str(value)[:500]) for key, value in _leaves(rest, "")]


def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """The scalar leaves of nested dicts as (dotted key, value); lists are left out."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, f"{prefix}{_KEY_CHARS.sub('_', str(key))}.")
    elif isinstance(value, (bool, int, float, str)) and prefix:
        yield prefix[:-1][:250], value


def _passwords(uri: str) -> list[str]:
    try:
        password = urlsplit(uri).password
    except ValueError:
        return []
    return [p for p in dict.fromkeys((password, unquote(password or ""))) if p]


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _stamp(millis: int | None) -> str:
    if not millis:
        return ""
    return datetime.fromtimestamp(millis / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
