"""Fixtures for the healing tests: one local CDE on real Spark, scenarios loaded into it once each,
and healers built the way `python -m app` builds them (settings from an environment mapping)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from agents.config import Settings
from agents.healer import Healer
from cde_client import CdeClient
from cde_local import LocalCde, LocalCdeConfig
from sample_jobs import get_scenario, load_scenario, run_job_and_wait

USER, PASSWORD = "heal-user", "heal-password-1234"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class HealLab:
    cde: LocalCde
    client: CdeClient
    tmp: Path
    loaded: set[str] = field(default_factory=set)
    generated: set[str] = field(default_factory=set)

    def env(self, data_dir: Path, **extra: str) -> dict[str, str]:
        """The environment a user would set for this CDE (no model unless given)."""
        env = {
            "JOBS_API_URL": self.cde.jobs_api_url,
            "WORKLOAD_USER": USER,
            "WORKLOAD_PASSWORD": PASSWORD,
            "HEALER_DATA_DIR": str(data_dir),
            "HEAL_RUN_POLL_S": "1",
            "HEAL_RUN_TIMEOUT_S": "600",
        }
        env.update(extra)
        return env

    def settings(self, data_dir: Path, llm=None, **extra: str) -> Settings:
        if llm is not None:
            extra = {"LLM_ENDPOINT_BASE_URL": llm.base_url, "LLM_MODEL_ID": "scripted",
                     "LLM_CDP_TOKEN": "sk-test-secret-token-5678", "LLM_TIMEOUT_S": "10", **extra}
        return Settings.from_env(self.env(data_dir, **extra), dotenv=None)

    def healer(self, data_dir: Path, llm=None, **extra: str) -> Healer:
        return Healer(self.settings(data_dir, llm, **extra))

    def fresh_failure(self, scenario: str) -> int:
        """A new failed run of the scenario's application (loading the scenario the first time)."""
        sc = get_scenario(scenario)
        if scenario not in self.loaded:
            result = load_scenario(self.client, scenario, skip_setup=self.generated)
            self.loaded.add(scenario)
            self.generated.update(sc.setup_runs)
            assert result.status == "failed", f"{scenario} app run ended {result.status}"
            return result.app_run_id  # type: ignore[return-value]
        run_id, status = run_job_and_wait(self.client, sc.app_job)
        assert status == "failed", f"{scenario} app run {run_id} ended {status}"
        return run_id

    def faults(self, **switches: object) -> None:
        requests.put(f"{self.cde.base_url}/local/faults", json=switches, timeout=10).raise_for_status()

    def reset_faults(self) -> None:
        requests.delete(f"{self.cde.base_url}/local/faults", timeout=10).raise_for_status()

    def fix_jobs(self, job: str) -> list[str]:
        return sorted(j.name for j in self.client.list_jobs() if j.name.startswith(f"{job}-fix-"))

    def runs_of(self, job: str) -> list[int]:
        return [r.id for r in self.client.list_runs(filters=[f"job[eq]{job}"])]

    def cli(self, args: list[str], env: dict[str, str], timeout_s: float = 900) -> subprocess.CompletedProcess:
        """`python -m app ...` in a child process, as a user runs it."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "JOBS_API", "WORKLOAD_"))}
        full_env.update(env, PYTHONPATH=str(ROOT))
        return subprocess.run([sys.executable, "-m", "app", *args], cwd=self.tmp, env=full_env,
                              capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture(scope="session")
def heal_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HealLab]:
    tmp = tmp_path_factory.mktemp("heal")
    cde = LocalCde(LocalCdeConfig(data_dir=tmp / "cde", users={USER: PASSWORD})).start()
    client = CdeClient(cde.jobs_api_url, user=USER, password=PASSWORD)
    try:
        yield HealLab(cde=cde, client=client, tmp=tmp)
    finally:
        client.close()
        cde.stop()
