"""`make demo`: the local CDE, the tutorial's failing job, the healer and the dashboard, together.

1. start the local CDE on 127.0.0.1 (state under `data/cde`, kept between demos);
2. load the tutorial scenario: resources, python env, jobs, data generator, then the failing
   `sql-select-fail` run;
3. heal that run (through the model when `LLM_*` point at one, on the rules alone otherwise);
4. serve the dashboard with one watcher, and print where everything is.
"""

from __future__ import annotations

import os
from pathlib import Path

from agents.config import Settings
from agents.healer import Healer
from app.console import announce, progress, say, summary

DEMO_SCENARIO = "tutorial"  # the sample_jobs scenario the demo loads
DEMO_JOB = "sql-select-fail"  # its failing job, the one the demo heals and the watcher watches
LOCAL_USER, LOCAL_PASSWORD = "dex-user", "dex-password"


def demo_settings(jobs_api_url: str, data_dir: Path) -> Settings:
    """The user's settings (env, `.env`) for the model; the local CDE for everything CDE."""
    env = dict(os.environ)
    env.update(JOBS_API_URL=jobs_api_url, WORKLOAD_USER=LOCAL_USER, WORKLOAD_PASSWORD=LOCAL_PASSWORD,
               JOB_NAME=DEMO_JOB, HEALER_DATA_DIR=str(data_dir / "healer"))
    env.setdefault("HEAL_POLL_INTERVAL_S", "10")
    return Settings.from_env(env)


def run_demo(port: int, data_dir: Path, ui_port: int, serve_ui: bool = True) -> int:
    from cde_client import CdeClient
    from cde_local import LocalCde, LocalCdeConfig
    from sample_jobs import load_scenario

    cde = LocalCde(LocalCdeConfig(data_dir=data_dir / "cde", port=port,
                                  users={LOCAL_USER: LOCAL_PASSWORD}))
    cde.start()
    try:
        say(f"local CDE running: JOBS_API_URL={cde.jobs_api_url} (user {LOCAL_USER})")
        client = CdeClient(cde.jobs_api_url, user=LOCAL_USER, password=LOCAL_PASSWORD)
        say(f"loading the tutorial scenario {DEMO_SCENARIO!r} (data generator, then {DEMO_JOB})...")
        loaded = load_scenario(client, DEMO_SCENARIO, progress=say)
        run_id = loaded.app_run_id
        say(f"{DEMO_JOB} run {run_id} ended {loaded.status}. Its driver log:\n"
            f"  TOKEN=$(curl -s -u {LOCAL_USER}:{LOCAL_PASSWORD} {cde.base_url}/gateway/authtkn/knoxtoken/api/v1/token"
            " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
            f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{cde.jobs_api_url}/job-runs/{run_id}/logs?type=driver/stdout'")

        settings = demo_settings(cde.jobs_api_url, data_dir)
        announce(settings)
        healer = Healer(settings)
        say(f"healing {DEMO_JOB} run {run_id}:")
        code = summary(healer.heal(DEMO_JOB, run_id, progress=progress), settings)
        healer.close()
        if not serve_ui:
            return code
        from app.server import serve

        say(f"\nlocal CDE: {cde.jobs_api_url}")
        serve(settings, host="127.0.0.1", port=ui_port)  # the dashboard with its one watcher
        return code
    finally:
        cde.stop()
