"""Fixtures for the agents tests (loaded by conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.scripted_llm import ScriptedLLM

LOGS_DIR = Path(__file__).resolve().parent / "data" / "logs"


@dataclass(frozen=True)
class SparkLog:
    """A real failed run's driver logs (tests/data/logs) and the app that produced them."""

    name: str
    stdout: str
    stderr: str
    code: str

    @property
    def app_file_name(self) -> str:
        return f"{self.name}.py"


def load_spark_log(name: str) -> SparkLog:
    stdout = LOGS_DIR / f"{name}.stdout"
    if not stdout.is_file():
        raise FileNotFoundError(f"no log fixture {name!r} in {LOGS_DIR} (regenerate with capture.py)")
    return SparkLog(
        name=name,
        stdout=stdout.read_text(encoding="utf-8"),
        stderr=(LOGS_DIR / f"{name}.stderr").read_text(encoding="utf-8"),
        code=(LOGS_DIR / "apps" / f"{name}.py").read_text(encoding="utf-8"),
    )


@pytest.fixture
def spark_log() -> Callable[[str], SparkLog]:
    """Loads a captured Spark log fixture by name: ``spark_log("unresolved_column")``."""
    return load_spark_log


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLLM]:
    """A started scripted OpenAI-compatible server; stopped after the test."""
    server = ScriptedLLM().start()
    try:
        yield server
    finally:
        server.stop()
