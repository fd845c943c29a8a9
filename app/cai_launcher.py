"""Entry point for a Cloudera AI (CAI) Application: put `app/cai_launcher.py` in its "Script" field.

    python app/cai_launcher.py            serve: the healer's watcher and the dashboard, in-process
    python app/cai_launcher.py check      say what is missing (packages, settings) and exit
    python app/cai_launcher.py install    pip install -r requirements-cai.txt (a session or the AMP job)

`serve` is `python -m app serve` run in this process, configured from the environment (the
project's environment variables: JOBS_API_URL, WORKLOAD_USER, WORKLOAD_PASSWORD, ...). The
dashboard listens on 127.0.0.1:$CDSW_APP_PORT, as CAI requires (see `app.dashboard.bind_address`).
Serving installs nothing: when a package is missing it says which and how to install it.
"""

from __future__ import annotations

import importlib.util
import runpy
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What `serve` imports, as import names (the healer, its model client and the dashboard).
REQUIRED_MODULES = ("gradio", "langgraph", "langchain_openai", "pydantic", "requests", "dotenv")
USAGE = "usage: python app/cai_launcher.py [serve|check|install]"


def missing_modules(modules: tuple[str, ...] = REQUIRED_MODULES) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


def _on_path() -> None:
    # CAI runs the script by path, so sys.path starts with app/ instead of the repository root.
    if sys.path and Path(sys.path[0] or ".").resolve() == REPO / "app":
        sys.path[0] = str(REPO)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def check() -> list[str]:
    """Every problem that would stop `serve`, as sentences; empty when it can start."""
    missing = missing_modules()
    if missing:
        return [f"missing packages ({', '.join(missing)}): run `python app/cai_launcher.py install` "
                "in a session of this project"]
    _on_path()
    from agents.config import Settings
    from agents.errors import ConfigError

    try:
        Settings.from_env()
    except ConfigError as exc:
        return exc.problems
    return []


def install() -> int:
    """Installs the requirements into the project's Python (run once, not at application start)."""
    requirements = REPO / "requirements-cai.txt"  # no Spark: the healer talks to CDE over HTTP
    return subprocess.call([sys.executable, "-m", "pip", "install", "--quiet", "-r", str(requirements)])


def serve() -> int:
    problems = check()
    if problems:
        print("cannot start the healer:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        return 2
    if importlib.util.find_spec("app.__main__") is None:
        print(f"{REPO}/app/__main__.py is missing: this checkout has no `python -m app serve`", file=sys.stderr)
        return 2
    sys.argv = ["app", "serve"]
    runpy.run_module("app", run_name="__main__", alter_sys=True)
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if len(argv) > 1 or command not in ("serve", "check", "install"):
        print(USAGE, file=sys.stderr)
        return 2
    if command == "install":
        return install()
    if command == "check":
        problems = check()
        for problem in problems:
            print(f"- {problem}")
        print("ready to serve" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    return serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
