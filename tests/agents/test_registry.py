"""The model registry (real MLflow on a real SQLite file): registering is idempotent, aliases name
versions and load what was registered, promotion moves an alias, every problem is one clear
`RegistryError`; a healer configured for `prd` loads the promoted version; and the done-when chain:
a policy trained by `python -m bench fleet` registered to `dev`, promoted to `prd`, loaded by a healer;
the same for the anomaly detector's artefact written by `python -m bench anomaly` (`DETECTOR_MODEL`)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from agents.anomaly import DetectorParameters
from agents.anomaly import artefact as detector_artefact
from agents.config import Settings
from agents.errors import ConfigError
from agents.healer import Healer
from agents.policy import artefact
from agents.policy.learned import LearnedPolicy
from agents.registry import (
    ARTIFACTS_DIR,
    DETECTOR,
    DETECTOR_MODEL,
    POLICY_MODEL,
    REGISTRY_FILE,
    RegistryError,
    check_alias,
    default_uri,
    open_registry,
)
from bench.anomaly import AnomalyOptions, run_anomaly_bench
from bench.fleet import FleetOptions, run_fleet_bench

SHIPPED = artefact.DEFAULT_PATH
NO_CDE = {"JOBS_API_URL": "http://127.0.0.1:9/dex/api/v1", "CDE_TOKEN": "t"}


@pytest.fixture
def data_dir(tmp_path: Path, empty_registry: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A healer's data directory with an empty registry; the working directory is tmp_path."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "healer"
    data.mkdir()
    shutil.copyfile(empty_registry, data / REGISTRY_FILE)
    return data


def altered_artefact(path: Path) -> Path:
    """The shipped artefact with one Q value changed, saved through the artefact's API (another policy_id)."""
    shipped = artefact.load(SHIPPED)
    table = json.loads(json.dumps(shipped.policy.table))
    key = sorted(table)[0]
    action = sorted(table[key])[0]
    table[key][action][0] += 1.0
    p = shipped.policy
    changed = LearnedPolicy(table, learning_rate=p.learning_rate, discount=p.discount, min_visits=p.min_visits,
                            margin=p.margin)
    artefact.save(path, changed, shipped.training)
    return path


def _settings(data_dir: Path, **extra: str) -> Settings:
    return Settings.from_env({**NO_CDE, "HEALER_DATA_DIR": str(data_dir), "HEAL_POLICY": "learned", **extra},
                             dotenv=None)


def test_registering_is_idempotent_and_keeps_the_evaluation(data_dir: Path, tmp_path: Path) -> None:
    registry = open_registry("", data_dir)
    shipped = artefact.load(SHIPPED)
    first = registry.register(SHIPPED)
    assert (first.name, first.version, first.policy_id, first.created) == (
        POLICY_MODEL, 1, shipped.policy_id, shipped.created)
    assert first.aliases == () and first.registered.endswith("Z")
    evaluation = shipped.training["evaluation"]
    assert first.evaluation["learned.mttr_median_min"] == pytest.approx(evaluation["learned"]["mttr_median_min"])
    assert first.evaluation["static.escalated"] == pytest.approx(evaluation["static"]["escalated"])
    assert first.evaluation["done_when.no false heals"] == 1.0
    assert registry.register(SHIPPED) == first  # the same policy_id: the same version
    assert registry.versions() == [first]
    assert list((data_dir / ARTIFACTS_DIR).rglob(artefact.DEFAULT_PATH.name))  # the file where the registry is
    assert not (tmp_path / "mlruns").exists()  # nothing in the working directory


def test_aliases_name_versions_and_load_returns_what_was_registered(data_dir: Path, tmp_path: Path) -> None:
    registry = open_registry("", data_dir)
    other = altered_artefact(tmp_path / "other.json")
    v1, v2 = registry.register(SHIPPED), registry.register(other)
    assert (v1.version, v2.version) == (1, 2) and v1.policy_id != v2.policy_id
    registry.set_alias(POLICY_MODEL, "prd", 1)
    assert registry.set_alias(POLICY_MODEL, "dev", 2).aliases == ("dev",)
    assert registry.version_for(POLICY_MODEL, "prd").version == 1
    assert registry.version_for(POLICY_MODEL, "qa") is None
    prd, dev = registry.load(POLICY_MODEL, "prd"), registry.load(POLICY_MODEL, "dev")
    assert (prd.policy_id, prd.policy.table) == (v1.policy_id, artefact.load(SHIPPED).policy.table)
    assert (dev.policy_id, dev.policy.table) == (v2.policy_id, artefact.load(other).policy.table)
    assert prd.path is None and prd.training == artefact.load(SHIPPED).training
    assert [(v.version, v.aliases) for v in registry.versions()] == [(1, ("prd",)), (2, ("dev",))]


def test_promote_moves_the_alias_and_says_what_it_named_before(data_dir: Path, tmp_path: Path) -> None:
    registry = open_registry("", data_dir)
    registry.set_alias(POLICY_MODEL, "prd", registry.register(SHIPPED).version)
    registry.set_alias(POLICY_MODEL, "dev", registry.register(altered_artefact(tmp_path / "other.json")).version)
    before, after = registry.promote(POLICY_MODEL, "dev", "prd")
    assert (before.version, after.version, after.aliases) == (1, 2, ("dev", "prd"))
    assert registry.load(POLICY_MODEL, "prd").policy_id == after.policy_id
    before, after = registry.promote(POLICY_MODEL, "prd", "qa")  # a new alias: nothing before
    assert before is None and after.aliases == ("dev", "prd", "qa")


def test_unknown_models_aliases_and_versions_are_named_clearly(data_dir: Path) -> None:
    registry = open_registry("", data_dir)
    with pytest.raises(RegistryError, match=f"no model '{POLICY_MODEL}' in the registry .*policy register"):
        registry.load(POLICY_MODEL, "prd")
    assert registry.versions() == []
    registry.register(SHIPPED)
    with pytest.raises(RegistryError, match=r"has no alias 'prd'; it has no aliases yet"):
        registry.load(POLICY_MODEL, "prd")
    registry.set_alias(POLICY_MODEL, "dev", 1)
    with pytest.raises(RegistryError, match=r"has no alias 'prd'; its aliases: dev → v1"):
        registry.promote(POLICY_MODEL, "prd", "qa")
    with pytest.raises(RegistryError, match="to itself"):
        registry.promote(POLICY_MODEL, "dev", "dev")
    with pytest.raises(RegistryError, match=r"setting alias 'prd' .* to v7"):
        registry.set_alias(POLICY_MODEL, "prd", 7)
    for bad in ("", "PRD", "latest", "v2", "a b", "x" * 41):
        with pytest.raises(RegistryError, match="an alias is a lower-case name"):
            check_alias(bad)


def test_a_file_that_is_not_an_artefact_is_not_registered(data_dir: Path, tmp_path: Path) -> None:
    registry = open_registry("", data_dir)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RegistryError, match=r"cannot register .*bad.json: not JSON"):
        registry.register(tmp_path / "bad.json")
    with pytest.raises(RegistryError, match=r"cannot register .*absent.json: no such file"):
        registry.register(tmp_path / "absent.json")
    assert registry.versions() == []


def test_an_artefact_changed_in_the_registry_is_refused(data_dir: Path, tmp_path: Path) -> None:
    registry = open_registry("", data_dir)
    registry.set_alias(POLICY_MODEL, "prd", registry.register(SHIPPED).version)
    [stored] = (data_dir / ARTIFACTS_DIR).rglob(artefact.DEFAULT_PATH.name)
    document = json.loads(stored.read_text())
    first = next(iter(document["q_table"]))
    action = next(iter(document["q_table"][first]))
    document["q_table"][first][action][0] += 1.0  # edited by hand: the policy_id no longer matches
    stored.write_text(json.dumps(document))
    with pytest.raises(RegistryError, match=r"v1 \(alias 'prd'\) .*the file was changed after it was written"):
        registry.load(POLICY_MODEL, "prd")
    shutil.copyfile(altered_artefact(tmp_path / "other.json"), stored)  # a valid artefact, but another policy
    with pytest.raises(RegistryError, match="was registered as sha256:.* but its file holds sha256:"):
        registry.load(POLICY_MODEL, "prd")


def test_a_registry_that_cannot_be_reached_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"no model registry at .*registry.db yet .*policy register"):
        open_registry("", tmp_path / "empty", create=False)
    assert not (tmp_path / "empty").exists()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RegistryError, match="cannot use the model registry"):
        open_registry(f"sqlite:///{tmp_path}/a-file/registry.db", tmp_path)
    with pytest.raises(RegistryError, match="cannot reach the model registry's database") as caught:
        open_registry("postgresql+psycopg://healer:s3cret-pw@127.0.0.1:9/registry", tmp_path)
    assert "s3cret-pw" not in str(caught.value) and "healer:***@127.0.0.1:9" in str(caught.value)
    started = time.monotonic()
    server = open_registry("http://user:s3cret-pw@127.0.0.1:9", tmp_path)  # nobody listens on port 9
    with pytest.raises(RegistryError, match=r"listing the versions of .*127\.0\.0\.1:9") as caught:
        server.versions()
    assert time.monotonic() - started < 30 and "s3cret-pw" not in str(caught.value)
    with pytest.raises(RegistryError, match="http\\(s\\) URL of a tracking server or a database URL"):
        open_registry("ftp://example.com/registry", tmp_path)


def test_the_registry_settings() -> None:
    base = {**NO_CDE, "HEALER_DATA_DIR": "/var/lib/healer"}
    settings = Settings.from_env(base, dotenv=None)
    assert (settings.registry_uri, settings.policy_alias) == ("", "")
    assert default_uri(settings.data_dir) == "sqlite:////var/lib/healer/registry.db"
    server = Settings.from_env({**base, "HEAL_REGISTRY_URI": "https://ml:pw-5@mlflow.example.com/"}, dotenv=None)
    assert server.registry_uri == "https://ml:pw-5@mlflow.example.com" and "pw-5" in server.secrets
    assert "pw-5" not in repr(server)
    database = Settings.from_env({**base, "HEAL_REGISTRY_URI": "postgresql://ml:pw-6@db/registry"}, dotenv=None)
    assert database.registry_uri == "postgresql+psycopg://ml:pw-6@db/registry"
    with pytest.raises(ConfigError, match="HEAL_REGISTRY_URI must be an http\\(s\\) URL or a database URL") as caught:
        Settings.from_env({**base, "HEAL_REGISTRY_URI": "ftp://ml:pw-7@example.com"}, dotenv=None)
    assert "pw-7" not in str(caught.value)


def test_a_healer_configured_for_prd_loads_the_promoted_version(data_dir: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{data_dir / REGISTRY_FILE}"
    registry = open_registry(uri, data_dir)
    registry.set_alias(POLICY_MODEL, "prd", registry.register(SHIPPED).version)
    other = altered_artefact(tmp_path / "other.json")
    registry.set_alias(POLICY_MODEL, "dev", registry.register(other).version)
    registry.promote(POLICY_MODEL, "dev", "prd")
    healer = Healer(_settings(tmp_path / "prd-healer", HEAL_POLICY_ALIAS="prd", HEAL_REGISTRY_URI=uri))
    try:
        assert isinstance(healer.policy, LearnedPolicy)
        assert healer.policy.table == artefact.load(other).policy.table  # the promoted one, not the shipped
        assert artefact.policy_id(healer.policy) == artefact.load(other).policy_id
    finally:
        healer.close()


def test_a_registry_problem_stops_the_healer_at_start(data_dir: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{data_dir / REGISTRY_FILE}"
    open_registry(uri, data_dir).register(SHIPPED)
    with pytest.raises(ConfigError, match="HEAL_POLICY_ALIAS: .* has no alias 'prd'; it has no aliases yet"):
        Healer(_settings(tmp_path / "h1", HEAL_POLICY_ALIAS="prd", HEAL_REGISTRY_URI=uri)).close()
    with pytest.raises(ConfigError, match="HEAL_POLICY_ALIAS: no model registry at .* yet"):
        Healer(_settings(tmp_path / "h2", HEAL_POLICY_ALIAS="prd")).close()  # the default: none in h2
    with pytest.raises(ConfigError, match="HEAL_POLICY_FILE and HEAL_POLICY_ALIAS both name"):
        Healer(_settings(tmp_path / "h3", HEAL_POLICY_ALIAS="prd", HEAL_POLICY_FILE=str(SHIPPED))).close()


def test_done_when_a_fleet_trained_policy_goes_from_dev_to_prd_and_a_prd_healer_loads_it(
        data_dir: Path, tmp_path: Path) -> None:
    """`python -m bench fleet --quick --write-policy` (smaller still), registered to dev on the default
    registry of HEALER_DATA_DIR, promoted to prd over the shipped policy, loaded by a healer for prd."""
    trained = tmp_path / "trained.json"
    run_fleet_bench(FleetOptions(out_dir=tmp_path / "reports", jobs=20, days=2, episodes=2, quick=True,
                                 write_policy=trained), progress=lambda _: None)
    written = artefact.load(trained)
    registry = open_registry("", data_dir)
    registry.set_alias(POLICY_MODEL, "prd", registry.register(SHIPPED).version)
    dev = registry.set_alias(POLICY_MODEL, "dev", registry.register(trained).version)
    assert dev.policy_id == written.policy_id and "learned.mttr_median_min" in dev.evaluation
    before, after = registry.promote(POLICY_MODEL, "dev", "prd")
    assert (before.policy_id, after.policy_id) == (artefact.load(SHIPPED).policy_id, written.policy_id)
    healer = Healer(_settings(data_dir, HEAL_POLICY_ALIAS="prd"))
    try:
        assert artefact.policy_id(healer.policy) == written.policy_id  # type: ignore[arg-type]
    finally:
        healer.close()


def test_done_when_a_benchmarked_detector_goes_from_dev_to_prd_and_a_prd_healer_loads_it(
        data_dir: Path, tmp_path: Path) -> None:
    """`python -m bench anomaly --write-detector` on a small fleet, registered to dev (as the second
    registered model, beside the policy), promoted to prd over a tuned detector, loaded by a healer for
    prd; a healer without HEAL_ANOMALY_ALIAS keeps the built-in parameters with its settings."""
    written_path = tmp_path / "detector.json"
    result = run_anomaly_bench(AnomalyOptions(out_dir=tmp_path / "reports", jobs=6, days=30, seed=5, rate=0.1,
                                              window=20, write_detector=written_path), progress=lambda _: None)
    written = detector_artefact.load(written_path)
    assert written.parameters == DetectorParameters(window=20)
    assert written.evaluation["precision"] == result.figures.precision and f"({written.detector_id})" in result.text
    tuned = detector_artefact.save(tmp_path / "tuned.json", DetectorParameters(guard_z=4.0, min_history=12))

    registry = open_registry("", data_dir)
    registry.set_alias(POLICY_MODEL, "prd", registry.register(SHIPPED).version)
    registry.set_alias(DETECTOR_MODEL, "prd", registry.register(tuned.path, kind=DETECTOR).version)
    dev = registry.set_alias(DETECTOR_MODEL, "dev", registry.register(written_path, name=DETECTOR_MODEL).version)
    assert (dev.name, dev.version, dev.artefact_id) == (DETECTOR_MODEL, 2, written.detector_id)
    assert dev.evaluation["recall"] == result.figures.recall and "false_alarms_per_1000" in dev.evaluation
    assert registry.register(written_path, kind=DETECTOR) == registry.versions(DETECTOR_MODEL)[1]  # idempotent
    assert [v.artefact_id for v in registry.versions(POLICY_MODEL)] == [artefact.load(SHIPPED).policy_id]
    with pytest.raises(RegistryError, match="cannot register .*: not a recovery-policy artefact"):
        registry.register(written_path)  # the policy's model takes policies only
    before, after = registry.promote(DETECTOR_MODEL, "dev", "prd")
    assert (before.artefact_id, after.artefact_id) == (tuned.detector_id, written.detector_id)
    assert registry.load(DETECTOR_MODEL, "prd").parameters == written.parameters

    healer = Healer(_settings(data_dir, HEAL_POLICY_ALIAS="prd", HEAL_ANOMALY_ALIAS="prd"))
    try:
        assert healer.detector == written.parameters and healer.detector.window == 20
        assert artefact.policy_id(healer.policy) == artefact.load(SHIPPED).policy_id  # type: ignore[arg-type]
    finally:
        healer.close()
    plain = Healer(_settings(tmp_path / "plain", HEAL_ANOMALY_MIN_HISTORY="15"))
    try:
        assert plain.detector == DetectorParameters(min_history=15, window=30)
    finally:
        plain.close()
    with pytest.raises(ConfigError, match="HEAL_ANOMALY_ALIAS: .*'healer-anomaly-detector' .* has no alias 'qa'; "
                                          "its aliases: dev → v2, prd → v2"):
        Healer(_settings(data_dir, HEAL_ANOMALY_ALIAS="qa")).close()
