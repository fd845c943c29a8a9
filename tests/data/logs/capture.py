"""Regenerates the real Spark log fixtures in this folder from the broken apps in ``apps/``.

Each app runs under ``spark-submit --master local[2]`` from the project's virtual environment, the
way the local CDE runs jobs: ``<name>.stdout`` holds spark-submit's stdout (the Python driver's
output and traceback), ``<name>.stderr`` its stderr (log4j lines). The app is copied to
``<tmp>/app/mount/`` first and that temporary prefix is removed from the captured text, so paths
read ``/app/mount/<name>.py`` as on CDE. Logs over 30 KB keep their head and tail with a marker.

Usage: .venv/bin/python tests/data/logs/capture.py [NAME ...]
"""

from __future__ import annotations

import os
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


def main(names: list[str]) -> None:
    for name in names or sorted(p.stem for p in (HERE / "apps").glob("*.py")):
        capture(name)


if __name__ == "__main__":
    main(sys.argv[1:])
