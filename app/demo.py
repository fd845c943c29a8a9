"""`make demo`: the local CDE, the tutorial's failing job, the healer and the dashboard, together.

1. start the local CDE on 127.0.0.1 (state under `data/cde`, kept between demos);
2. load the tutorial scenario: resources, python env, jobs, data generator, then the failing
   `sql-select-fail` run;
3. heal that run (through the model when `LLM_*` point at one, on the rules alone otherwise);
4. serve the dashboard with one watcher, and print where everything is.

`python -m app demo --environments dev,prd` does the same with two local CDEs (state under
`data/cde-dev` and `data/cde-prd`, the healer's under `data/healer-prd`): the scenario is loaded into
both (DEV gets the job, its data and its last good output; PRD fails), the healer watches PRD,
proves the fix in DEV and promotes it to PRD (`HEAL_PROMOTION`, `auto` in the demo unless set).
"""

from __future__ import annotations

import os
from pathlib import Path

from agents.config import Settings, load_environment
from agents.healer import Healer
from app.console import announce, progress, say, summary

DEMO_SCENARIO = "tutorial"  # the sample_jobs scenario the demo loads
DEMO_JOB = "sql-select-fail"  # its failing job, the one the demo heals and the watcher watches
LOCAL_USER, LOCAL_PASSWORD = "dex-user", "dex-password"
CDE_VARIABLES = ("JOBS_API_URL", "WORKLOAD_USER", "WORKLOAD_PASSWORD", "CDE_TOKEN", "CDE_TOKEN_URL", "CDE_WATCH")


def demo_settings(jobs_api_url: str, data_dir: Path) -> Settings:
    """The user's settings (env, `.env`) for the model; the local CDE for everything CDE."""
    env = dict(os.environ)
    env.update(JOBS_API_URL=jobs_api_url, WORKLOAD_USER=LOCAL_USER, WORKLOAD_PASSWORD=LOCAL_PASSWORD,
               JOB_NAME=DEMO_JOB, HEALER_DATA_DIR=str(data_dir / "healer"))
    env.setdefault("HEAL_POLL_INTERVAL_S", "10")
    return Settings.from_env(env)


def environments_settings(urls: dict[str, str], data_dir: Path) -> Settings:
    """The user's settings for the model; two local CDEs as named environments, the last one watched,
    its fixes proven in the first. The user's own CDE variables (a real CDE's) are left out."""
    proving, home = list(urls)
    env = {k: v for k, v in load_environment().items() if k not in CDE_VARIABLES and not k.startswith("CDE_")}
    env.update({"CDE_ENVIRONMENTS": f"{proving},{home}", f"CDE_{home.upper()}_VERIFY_IN": proving,
                "WORKLOAD_USER": LOCAL_USER, "WORKLOAD_PASSWORD": LOCAL_PASSWORD, "JOB_NAME": DEMO_JOB,
                "HEALER_DATA_DIR": str(data_dir / f"healer-{home}")})
    env.update({f"CDE_{name.upper()}_JOBS_API_URL": url for name, url in urls.items()})
    env.setdefault("HEAL_POLL_INTERVAL_S", "10")
    env.setdefault("HEAL_PROMOTION", "auto")
    return Settings.from_env(env, dotenv=None)


def run_demo(port: int, data_dir: Path, ui_port: int, serve_ui: bool = True,
             environments: tuple[str, str] | None = None) -> int:
    from cde_client import CdeClient
    from cde_local import LocalCde, LocalCdeConfig
    from sample_jobs import load_scenario

    names = environments or ("",)
    cdes = {name: LocalCde(LocalCdeConfig(data_dir=data_dir / (f"cde-{name}" if name else "cde"), port=port + i,
                                          users={LOCAL_USER: LOCAL_PASSWORD}))
            for i, name in enumerate(names)}
    try:
        clients = {}
        for name, cde in cdes.items():
            cde.start()
            say(f"local CDE{' ' + name if name else ''} running: {cde.jobs_api_url} (user {LOCAL_USER})")
            clients[name] = CdeClient(cde.jobs_api_url, user=LOCAL_USER, password=LOCAL_PASSWORD)
        *others, home = names
        for name in others:
            say(f"loading the tutorial scenario {DEMO_SCENARIO!r} into {name}: its jobs, data and last good output")
            load_scenario(clients[name], DEMO_SCENARIO, progress=say, fail=False)
        where = f" into {home}" if home else ""
        say(f"loading the tutorial scenario {DEMO_SCENARIO!r}{where} (data generator, then {DEMO_JOB})...")
        loaded = load_scenario(clients[home], DEMO_SCENARIO, progress=say)
        run_id, cde = loaded.app_run_id, cdes[home]
        say(f"{DEMO_JOB} run {run_id} ended {loaded.status}. Its driver log:\n"
            f"  TOKEN=$(curl -s -u {LOCAL_USER}:{LOCAL_PASSWORD} {cde.base_url}/gateway/authtkn/knoxtoken/api/v1/token"
            " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
            f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{cde.jobs_api_url}/job-runs/{run_id}/logs?type=driver/stdout'")

        settings = (environments_settings({n: c.jobs_api_url for n, c in cdes.items()}, data_dir) if environments
                    else demo_settings(cde.jobs_api_url, data_dir))
        announce(settings)
        healer = Healer(settings)
        say(f"healing {DEMO_JOB} run {run_id}{' in ' + home if home else ''}:")
        code = summary(healer.heal(DEMO_JOB, run_id, progress=progress), settings)
        healer.close()
        if not serve_ui:
            return code
        from app.server import serve

        for name, other in cdes.items():
            say(f"\nlocal CDE{' ' + name if name else ''}: {other.jobs_api_url}")
        serve(settings, host="127.0.0.1", port=ui_port)  # the dashboard with its one watcher
        return code
    finally:
        for cde in cdes.values():
            cde.stop()
