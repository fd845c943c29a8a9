"""Building `python-env` resources: a virtual environment per resource, from its requirements.txt.

The environment is `<data>/pyenvs/<name>/venv`, made with `python -m venv --without-pip` from
`config.python_executable`, plus a `.pth` file naming that interpreter's site-packages, so pyspark
(and everything else of the main environment) stays importable while packages installed in the
env come first. The requirements are installed by the main environment's pip
(`pip --python <env python> install -r requirements.txt`, plus `config.pyenv_pip_args`); pip does
not touch packages of the main environment ("outside environment"). A build ends by checking that
the env's interpreter imports pyspark. The whole output goes to `<data>/pyenvs/<name>/build.log`.

Every step runs with the environment jobs get from the parent (`runner.parent_environment`: no
WORKLOAD_PASSWORD, LLM keys or cloud credentials reach a package's setup.py or build backend) plus
the proxy variables of PIP_PASSED_ENV. PIP_* variables are not passed (an index URL may carry a
token): pip's settings go in `config.pyenv_pip_args` (`--pip-arg`) or a pip config file under HOME.

[I] A failed build's resource status is `failed`; `pythonEnvInfo.statusReason` holds pip's error.
`pythonEnv.pythonVersion` is recorded but the env always uses the local interpreter's version.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import LocalCdeConfig
from .paths import DataPaths
from .runner import parent_environment

PTH_NAME = "_cde_local_base.pth"
REASON_MAX_CHARS = 2000  # statusReason keeps pip's error lines up to this length
PROBE_TIMEOUT_S = 120.0  # for the small interpreter probes around the pip call
PIP_PASSED_ENV = frozenset(
    "HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy".split()
)  # besides runner.PASSED_ENV


@dataclass
class BuildOutcome:
    ok: bool
    info: dict[str, Any]  # pythonEnvInfo


BuildDone = Callable[[str, BuildOutcome], None]


class BuildFailed(Exception):
    """A step of the build failed; the message becomes statusReason."""


class PyEnvBuilder:
    def __init__(self, config: LocalCdeConfig, paths: DataPaths, on_done: BuildDone) -> None:
        self._config = config
        self._paths = paths
        self._on_done = on_done
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._processes: dict[str, subprocess.Popen[str]] = {}
        self._closed = False

    def is_building(self, name: str) -> bool:
        with self._lock:
            thread = self._threads.get(name)
            return thread is not None and thread.is_alive()

    def start(self, name: str) -> None:
        """Build in a background thread; the caller checked that no build of `name` is going."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the python-env builder is shut down")
            thread = threading.Thread(target=self._build, args=(name,), name=f"cde-pyenv-{name}", daemon=True)
            self._threads[name] = thread
            thread.start()

    def discard(self, name: str) -> None:
        """Stop a build of a deleted resource (its result is dropped) and remove its files."""
        with self._lock:
            process = self._processes.get(name)
            thread = self._threads.get(name)
        if process is not None:
            _kill(process)
        if thread is not None:
            thread.join(timeout=30)
        shutil.rmtree(self._paths.pyenv_dir(name), ignore_errors=True)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            processes = list(self._processes.values())
            threads = list(self._threads.values())
        for process in processes:
            _kill(process)
        for thread in threads:
            thread.join(timeout=30)

    # -- the build -----------------------------------------------------------------------------
    def _build(self, name: str) -> None:
        started = time.monotonic()
        log_path = self._paths.pyenv_log(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("")
        try:
            packages_before, venv = self._make_venv(name, log_path)
            requirements = self._paths.resource_file(name, "requirements.txt")
            self._step(
                name,
                log_path,
                "pip install",
                [
                    self._config.python_executable,
                    "-m",
                    "pip",
                    "--python",
                    str(self._paths.pyenv_python(name)),
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "-r",
                    str(requirements),
                    *self._config.pyenv_pip_args,
                ],
                self._config.pyenv_build_timeout_s,
            )
            self._step(
                name,
                log_path,
                "import check",
                [str(self._paths.pyenv_python(name)), "-c", "import pyspark"],
                PROBE_TIMEOUT_S,
            )
            files, size = _tree_size(venv)
            outcome = BuildOutcome(
                ok=True,
                info={
                    "statusReason": "Build completed",
                    "sizeMb": round(size / 1_000_000, 2),
                    "buildDurationSeconds": round(time.monotonic() - started),
                    "numberOfFiles": files,
                    "numberOfPackages": _count_packages(venv) - packages_before,
                },
            )
        except BuildFailed as exc:
            outcome = BuildOutcome(
                ok=False,
                info={"statusReason": str(exc), "buildDurationSeconds": round(time.monotonic() - started)},
            )
        except Exception as exc:  # an OS failure must still end the build
            outcome = BuildOutcome(ok=False, info={"statusReason": f"Build failed: local CDE error: {exc!r}"})
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n== {'ready' if outcome.ok else 'failed'}: {outcome.info['statusReason']}\n")
        with self._lock:
            closed = self._closed
        if not closed:
            self._on_done(name, outcome)

    def _make_venv(self, name: str, log_path: Path) -> tuple[int, Path]:
        venv = self._paths.pyenv_venv(name)
        shutil.rmtree(venv, ignore_errors=True)
        python = self._config.python_executable
        self._step(
            name, log_path, "create venv", [python, "-m", "venv", "--without-pip", str(venv)], PROBE_TIMEOUT_S
        )
        base = (
            self._step(
                name,
                log_path,
                "find base site-packages",
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                PROBE_TIMEOUT_S,
            )
            .strip()
            .splitlines()[-1]
        )
        own = (
            self._step(
                name,
                log_path,
                "find env site-packages",
                [
                    str(self._paths.pyenv_python(name)),
                    "-c",
                    "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                ],
                PROBE_TIMEOUT_S,
            )
            .strip()
            .splitlines()[-1]
        )
        Path(own, PTH_NAME).write_text(base + "\n", encoding="utf-8")
        return _count_packages(venv), venv

    def _step(self, name: str, log_path: Path, what: str, argv: list[str], timeout_s: float) -> str:
        """Run one command, appending its output to the build log; BuildFailed unless it exits 0."""
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n== {what}: {' '.join(argv)}\n")
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=build_environment(),
            text=True,
            start_new_session=True,
        )
        with self._lock:
            self._processes[name] = process
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(process)
            output, _ = process.communicate()
            raise BuildFailed(f"Build failed: {what} took longer than {timeout_s:g} s") from None
        finally:
            with self._lock:
                self._processes.pop(name, None)
        with log_path.open("a", encoding="utf-8") as log:
            log.write(output)
        if process.returncode != 0:
            raise BuildFailed(
                f"Build failed: {what} exited with code {process.returncode}: {_error_text(output)}"
            )
        return output


def build_environment() -> dict[str, str]:
    """The environment of every build step (see the module docstring)."""
    return parent_environment(PIP_PASSED_ENV)


def _error_text(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("ERROR")]
    if not lines:
        lines = [line for line in output.splitlines() if line.strip()][-10:]
    text = "\n".join(lines)
    return text[-REASON_MAX_CHARS:]


def _kill(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tree_size(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for filename in names:
            try:
                size += os.lstat(os.path.join(dirpath, filename)).st_size
            except OSError:
                continue
            files += 1
    return files, size


def _count_packages(venv: Path) -> int:
    return sum(1 for _ in venv.glob("lib/python*/site-packages/*.dist-info"))
