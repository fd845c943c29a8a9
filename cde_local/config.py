"""LocalCdeConfig: every option of the local CDE, validated when built (nothing read at import)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import ConfigError
from .faults import FaultSettings

RunMode = Literal["spark", "manual"]


@dataclass
class LocalCdeConfig:
    """Options of one local CDE.

    `run_mode`: "spark" runs every job with spark-submit; "manual" never launches anything: runs
    stay `starting` until a test drives them with `Backend.set_run_status` / `write_run_log`
    (moto style), which keeps API tests that only need run records free of Spark.

    `max_concurrent_runs`, `run_timeout_s` and `kill_grace_s` are read at each launch, so changing
    them on `LocalCde.config` takes effect for runs launched afterwards.
    """

    data_dir: Path = field(default_factory=lambda: Path("data/cde"))
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port
    users: dict[str, str] = field(default_factory=lambda: {"dex-user": "dex-password"})
    token_ttl_s: float = 3600.0  # lifetime of issued tokens (fault switch token_ttl_s overrides)
    vc_name: str = "local-cde"  # `appName` of GET /info
    # Runs
    run_mode: RunMode = "spark"
    max_concurrent_runs: int = 1  # the embedded Derby metastore allows one Spark driver at a time
    run_timeout_s: float = 1800.0  # a run still going after this is killed and marked failed
    kill_grace_s: float = 5.0  # SIGTERM → SIGKILL delay when killing a run's process group
    spark_master: str = "local[2]"
    # Small local jobs are dominated by JVM start-up: C1 only and the serial GC halve a tiny run's time
    # here (measured: 17-21 s -> 9 s under load). User conf's extraJavaOptions come after these.
    driver_jvm_flags: tuple[str, ...] = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
    python_executable: str = field(default_factory=lambda: sys.executable)  # has pyspark installed
    # python-env resources
    pyenv_pip_args: tuple[str, ...] = ()  # extra `pip install` arguments, e.g. ("--no-index",)
    pyenv_build_timeout_s: float = 900.0
    # Faults (also changeable at run time)
    faults: FaultSettings = field(default_factory=FaultSettings)
    fault_seed: int | None = None

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        self.users = dict(self.users)
        self.pyenv_pip_args = tuple(self.pyenv_pip_args)
        self.driver_jvm_flags = tuple(self.driver_jvm_flags)
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {self.port!r}")
        if not self.users:
            raise ConfigError("at least one user is required")
        for name, password in self.users.items():
            if not name or ":" in name or not password:
                raise ConfigError(f"bad user {name!r}: names need no ':' and passwords must not be empty")
        if not self.token_ttl_s > 0:
            raise ConfigError("token_ttl_s must be > 0")
        if self.run_mode not in ("spark", "manual"):
            raise ConfigError(f"run_mode must be 'spark' or 'manual', got {self.run_mode!r}")
        if not isinstance(self.max_concurrent_runs, int) or self.max_concurrent_runs < 1:
            raise ConfigError("max_concurrent_runs must be an integer >= 1")
        if not self.run_timeout_s > 0:
            raise ConfigError("run_timeout_s must be > 0")
        if not self.kill_grace_s >= 0:
            raise ConfigError("kill_grace_s must be >= 0")
        if not self.pyenv_build_timeout_s > 0:
            raise ConfigError("pyenv_build_timeout_s must be > 0")
        try:
            self.faults.validate()
        except ValueError as exc:
            raise ConfigError(f"faults: {exc}") from None
