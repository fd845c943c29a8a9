"""Regenerates the real Spark log fixtures in this folder from the broken apps in ``apps/``.

Each app runs under ``spark-submit --master local[2]`` from the project's virtual environment, the
way the local CDE runs jobs: ``<name>.stdout`` holds spark-submit's stdout (the Python driver's
output and traceback), ``<name>.stderr`` its stderr (log4j lines). The app is copied to
``<tmp>/app/mount/`` first and that temporary prefix is removed from the captured text, so paths
read ``/app/mount/<name>.py`` as on CDE. Logs over 30 KB keep their head and tail with a marker.

A scenario's failed application run is captured through a temporary local CDE instead (its data
generators run first, as `python -m sample_jobs load` runs them): ``--scenario NAME`` writes
``scenario_<NAME>.stdout|stderr`` from the run's driver logs, its app being ``apps/scenario_<NAME>.py``,
a link to the scenario's application file.

Usage: .venv/bin/python tests/data/logs/capture.py [NAME ...]
       .venv/bin/python tests/data/logs/capture.py --scenario NAME
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MAX_BYTES = 30_000
HEAD_BYTES = 8_000
RUN_TIMEOUT_S = 300


def trim(text: str) -> str:
    data = text.encode()
    if len(data) <= MAX_BYTES:
        return text
    head = data[:HEAD_BYTES].decode(errors="ignore").rsplit("\n", 1)[0]
    tail = data[-(MAX_BYTES - HEAD_BYTES - 200) :].decode(errors="ignore").split("\n", 1)[1]
    cut = len(data) - len(head.encode()) - len(tail.encode())
    return f"{head}\n... [{cut} bytes trimmed by capture.py] ...\n{tail}"


def capture(name: str) -> None:
    import pyspark

    venv_bin = ROOT / ".venv" / "bin"
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(Path(pyspark.__file__).parent),
        SPARK_LOCAL_IP="127.0.0.1",
        PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
        PYSPARK_PYTHON=str(venv_bin / "python"),
    )
    with tempfile.TemporaryDirectory(prefix="healer-logs-") as tmp:
        mount = Path(tmp) / "app" / "mount"
        mount.mkdir(parents=True)
        app = mount / f"{name}.py"
        shutil.copy(HERE / "apps" / f"{name}.py", app)
        cmd = [str(venv_bin / "spark-submit"), "--master", "local[2]", "--conf", "spark.ui.enabled=false", str(app)]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        for suffix, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            text = text.replace(tmp, "")
            (HERE / f"{name}.{suffix}").write_text(trim(text), encoding="utf-8")
    print(f"{name}: exit {proc.returncode}", flush=True)


def capture_scenario(name: str) -> None:
    sys.path.insert(0, str(ROOT))
    from cde_client import CdeClient
    from cde_local import LocalCde, LocalCdeConfig
    from sample_jobs import get_scenario, load_scenario

    scenario = get_scenario(name)
    with tempfile.TemporaryDirectory(prefix="healer-logs-") as tmp:
        config = LocalCdeConfig(data_dir=Path(tmp), port=0, users={"capture": "capture"},
                                pyenv_pip_args=("--no-index",))
        with LocalCde(config) as cde, CdeClient(cde.jobs_api_url, user="capture", password="capture") as client:
            result = load_scenario(client, scenario)
            assert result.app_run_id is not None
            for suffix in ("stdout", "stderr"):
                text = client.get_logs(result.app_run_id, f"driver/{suffix}").replace(tmp, "")
                text = re.sub(r"/runs/\d+/work(?=/app/mount/)", "", text)  # the run's mount root, as on CDE
                (HERE / f"scenario_{name}.{suffix}").write_text(trim(text), encoding="utf-8")
    app = HERE / "apps" / f"scenario_{name}.py"
    if not app.is_symlink():
        app.symlink_to(Path("../../../../sample_jobs") / name / scenario.app_spec["spark"]["file"])
    print(f"{name}: application run {result.status}", flush=True)


def main(args: list[str]) -> None:
    if args[:1] == ["--scenario"]:
        for name in args[1:]:
            capture_scenario(name)
        return
    for name in args or sorted(p.stem for p in (HERE / "apps").glob("*.py") if not p.is_symlink()):
        capture(name)


if __name__ == "__main__":
    main(sys.argv[1:])
