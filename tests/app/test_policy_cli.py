"""`python -m app policy register|list|promote` as a user runs them, on a real MLflow registry (the
embedded SQLite store of HEALER_DATA_DIR): versions with their evaluation, a promotion shown then
made (with `--yes`, or confirmed on a terminal), refused without a terminal, and input it must refuse
(exit 2, one clear line, no traceback). No CDE. `--detector`: the same for the anomaly detector's versions.
Also: MLflow is imported only when a registry is used."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agents.anomaly import DetectorParameters
from agents.anomaly import artefact as detector_artefact
from agents.policy import artefact
from agents.registry import DETECTOR_MODEL, POLICY_MODEL, REGISTRY_FILE, open_registry
from app.cli import main
from tests.agents.test_registry import altered_artefact
from tests.app.test_cli import NO_CDE
from tests.paths import REPO

SHIPPED_ID = artefact.load(artefact.DEFAULT_PATH).policy_id


@pytest.fixture
def data_dir(tmp_path: Path, empty_registry: Path) -> Path:
    data = tmp_path / "healer"
    data.mkdir()
    shutil.copyfile(empty_registry, data / REGISTRY_FILE)
    return data


@pytest.fixture
def two_versions(data_dir: Path, tmp_path: Path) -> Path:
    """The shipped policy as v1 named by `prd`, another as v2 named by `dev`."""
    registry = open_registry("", data_dir)
    registry.set_alias(POLICY_MODEL, "prd", registry.register(artefact.DEFAULT_PATH).version)
    registry.set_alias(POLICY_MODEL, "dev", registry.register(altered_artefact(tmp_path / "other.json")).version)
    return data_dir


def _promote(data_dir: Path, stdin: int) -> subprocess.CompletedProcess:
    """`python -m app policy promote --from dev --to prd` (no --yes) with `stdin` as its standard input."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "JOBS_API", "WORKLOAD_", "HEAL", "CDE_"))}
    env.update(JOBS_API_URL=NO_CDE, CDE_TOKEN="t", HEALER_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "app", "policy", "promote", "--from", "dev", "--to", "prd"],
                          cwd=data_dir.parent, env=env, stdin=stdin, capture_output=True, text=True, timeout=120)


class Done:
    """What `python -m app ...` run in this process returned and printed (argparse's exit included)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def app_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """`run_app` in this process (`python -m app`'s `main`), which saves a child interpreter's start per
    call: the environment a user would set, this process's healer settings left out."""

    def run(args: list[str], data_dir: Path, **env: str) -> Done:
        for key in [k for k in os.environ if k.startswith(("LLM_", "JOBS_API", "WORKLOAD_", "HEAL", "CDE_", "DEMO_"))]:
            monkeypatch.delenv(key)
        for key, value in {"JOBS_API_URL": NO_CDE, "WORKLOAD_USER": "cli-user", "WORKLOAD_PASSWORD": "cli-password",
                           "HEALER_DATA_DIR": str(data_dir), **env}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(data_dir.parent)  # no .env of the repository's
        capsys.readouterr()
        try:
            code = main(args)
        except SystemExit as exc:  # argparse's refusals
            code = exc.code if isinstance(exc.code, int) else 2
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return run


def _aliases(data_dir: Path) -> dict[str, int]:
    registry = open_registry("", data_dir, create=False)
    return {alias: v.version for v in registry.versions() for alias in v.aliases}


def test_register_list_and_promote(data_dir: Path, tmp_path: Path, app_cli) -> None:
    run = app_cli
    done = run(["policy", "register", "--alias", "prd"], data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"{POLICY_MODEL} v1: policy {SHIPPED_ID}, trained ") and "alias prd → v1" in done.stdout
    other = altered_artefact(tmp_path / "other.json")
    done = run(["policy", "register", str(other), "--alias", "dev"], data_dir)
    assert done.returncode == 0 and "v2: policy sha256:" in done.stdout and "alias dev → v2" in done.stdout

    done = run(["policy", "list"], data_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{POLICY_MODEL} in sqlite:///{data_dir.resolve() / REGISTRY_FILE}: 2 version(s)"
    assert lines[1].split()[:4] == ["v2", "dev", "policy", artefact.load(other).policy_id]  # newest first
    assert lines[3].split()[:4] == ["v1", "prd", "policy", SHIPPED_ID]
    assert "MTTR median (min) 23.0 (25.3)" in lines[4] and "done-when 6/6 met" in lines[4]  # the shipped figures

    done = run(["policy", "promote", "--from", "dev", "--to", "prd", "--yes"], data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"{POLICY_MODEL}: prd v1 → v2 (the version dev names)")
    table = done.stdout.splitlines()[1:]
    assert table[0].split() == ["learned", "(static)", "prd", "now", "(v1)", "dev", "(v2)"]
    assert any(line.startswith("MTTR p90 (min)") and "150.5 (162.5)" in line for line in table)
    assert "promoted: prd → v2" in done.stdout and "was v1" in done.stdout
    assert _aliases(data_dir) == {"dev": 2, "prd": 2}


def test_the_detector_is_registered_listed_and_promoted(data_dir: Path, tmp_path: Path, app_cli) -> None:
    """`--detector`: a tuned detector is `prd` (registered through the API), the benchmark's (here: its
    figures written by hand) is registered as `dev` on the command line, listed, promoted to prd."""
    run = app_cli
    figures = {"precision": 0.98, "recall": 1.0, "false_alarms_per_1000": 0.54,
               "recall_by_kind": {"zero_rows": 1.0, "slow": 0.875}}
    made = detector_artefact.save(tmp_path / "detector.json", DetectorParameters(), figures)
    tuned = detector_artefact.save(tmp_path / "tuned.json", DetectorParameters(guard_z=4.0), {"precision": 0.9})
    registry = open_registry("", data_dir)
    registry.set_alias(DETECTOR_MODEL, "prd", registry.register(tuned.path, name=DETECTOR_MODEL).version)

    done = run(["policy", "register", "--detector", str(made.path), "--alias", "dev"], data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"{DETECTOR_MODEL} v2: detector {made.detector_id}, made ") and "dev → v2" in done.stdout
    done = run(["policy", "list", "--detector"], data_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{DETECTOR_MODEL} in sqlite:///") and lines[0].endswith(": 2 version(s)")
    assert lines[1].split()[:4] == ["v2", "dev", "detector", made.detector_id]
    assert lines[2].strip() == ("evaluation: precision 98.0% · recall 100.0% · false alarms per 1,000 runs 0.54 · "
                                "recall slow 87.5% · recall zero_rows 100.0%")
    assert "recall –" in lines[4] and "precision 90.0%" in lines[4]  # v1: only its precision
    done = run(["policy", "promote", "--detector", "--from", "dev", "--to", "prd", "--yes"], data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout.splitlines()[1:]
    assert table[0].split() == ["evaluation", "prd", "now", "(v1)", "dev", "(v2)"]
    assert table[1].split() == ["detector", tuned.detector_id, made.detector_id]
    assert any(line.split() == ["recall", "slow", "–", "87.5%"] for line in table)
    assert "promoted: prd → v2" in done.stdout and "HEAL_ANOMALY_ALIAS=prd" in done.stdout
    assert {alias: v.version for v in open_registry("", data_dir).versions(DETECTOR_MODEL) for alias in v.aliases} == {
        "dev": 2, "prd": 2}
    assert _aliases(data_dir) == {}  # the policy's model: untouched


def test_registering_a_detector_needs_its_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "register", "--detector", "--alias", "dev"]) == 2
    assert "register --detector needs the artefact FILE" in capsys.readouterr().err


def test_promote_without_a_terminal_shows_then_refuses(two_versions: Path) -> None:
    done = _promote(two_versions, subprocess.DEVNULL)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "prd v1 → v2" in done.stdout and "MTTR median (min)" in done.stdout  # shown first
    assert done.stderr.strip() == ("error: promote asks for confirmation on a terminal; add --yes to promote "
                                   "without asking")
    assert _aliases(two_versions) == {"prd": 1, "dev": 2}


@pytest.mark.parametrize(("answer", "code", "prd"), [("y\n", 0, 2), ("\n", 1, 1)])
def test_promote_on_a_terminal_asks_first(two_versions: Path, answer: str, code: int, prd: int) -> None:
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode())  # typed ahead: the terminal holds the line until it is read
        done = _promote(two_versions, follower)
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == code, done.stdout + done.stderr
    assert "point prd at v2? [y/N]" in done.stdout
    assert ("promoted: prd → v2" if code == 0 else "not promoted: prd still names v1") in done.stdout
    assert _aliases(two_versions)["prd"] == prd


@pytest.mark.parametrize(("args", "env", "message"), [
    pytest.param(["policy", "register", "--alias", "V1"], {}, "argument --alias: an alias is a lower-case name",
                 id="alias case"),
    pytest.param(["policy", "promote", "--from", "dev", "--to", "latest"], {}, "argument --to: an alias is",
                 id="reserved alias"),
    pytest.param(["policy", "promote", "--from", "dev"], {}, "the following arguments are required: --to",
                 id="no --to"),
    pytest.param(["policy", "promote", "--from", "dev", "--to", "dev"], {}, "--from and --to are both 'dev'",
                 id="same alias"),
    pytest.param(["policy"], {}, "the following arguments are required: action", id="no action"),
    pytest.param(["policy", "register", "/nonexistent/policy.json"], {},
                 "error: policy artefact /nonexistent/policy.json: no such file", id="no file"),
    pytest.param(["policy", "list"], {}, "error: no model registry at ", id="no registry yet"),
    pytest.param(["policy", "promote", "--from", "dev", "--to", "prd", "--yes"], {}, "error: no model registry at ",
                 id="promote no registry"),
    pytest.param(["policy", "list"], {"HEAL_REGISTRY_URI": "ftp://ml:pw-8@example.com"},
                 "HEAL_REGISTRY_URI must be an http(s) URL or a database URL", id="bad uri"),
])
def test_bad_input_is_refused_clearly(tmp_path: Path, args: list[str], env: dict[str, str], message: str,
                                      app_cli) -> None:
    data_dir = tmp_path / "healer"
    done = app_cli(args, data_dir, **env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr and "pw-8" not in done.stderr
    assert not (data_dir / REGISTRY_FILE).exists()  # nothing was made


def test_mlflow_is_imported_only_when_a_registry_is_used(tmp_path: Path) -> None:
    """`python -m app` start-up and a healer with HEAL_POLICY=static (or a learned policy from its file)
    never import MLflow."""
    code = ("import sys; from agents.config import Settings; from agents.healer import Healer; import app.cli, "
            "app.server, agents.registry\n"
            "assert app.cli.main(['rules']) == 0\n"
            "for policy in ('static', 'learned'):\n"
            "    env = {'JOBS_API_URL': 'http://127.0.0.1:9/dex/api/v1', 'CDE_TOKEN': 't', 'HEAL_POLICY': policy,\n"
            f"           'HEALER_DATA_DIR': {str(tmp_path / 'healer')!r} + policy}}\n"
            "    Healer(Settings.from_env(env, dotenv=None)).close()\n"
            "sys.exit(3 if 'mlflow' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
