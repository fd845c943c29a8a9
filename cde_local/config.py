"""LocalCdeConfig: every option of the local CDE, validated when built (nothing read at import)."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import ConfigError
from .faults import FaultSettings

RunMode = Literal["spark", "manual"]
# Masters spark-submit gets as they are (runner.py: the driver always runs here, in client mode).
SPARK_MASTER_FORMS = "local, local[N], local[*], local[N,F], spark://HOST:PORT[,HOST:PORT...], k8s://URL, yarn"
SPARK_MASTER_PATTERN = re.compile(
    r"local(\[(\d+|\*)(,\d+)?\])?|spark://[^\s/,:]+:\d+(,[^\s/,:]+:\d+)*|k8s://\S+|yarn"
)


def default_concurrent_runs() -> int:
    """Runs at once by default: one per CPU of this machine (at least 1)."""
    return max(1, os.cpu_count() or 1)


# The access key every local CDE knows unless told otherwise (`--access-key ID:SECRET` replaces it).
DEFAULT_ACCESS_KEYS = {"local-access-key-id": "local-access-key-secret"}


@dataclass
class LocalCdeConfig:
    """Options of one local CDE.

    `run_mode`: "spark" runs every job with spark-submit; "manual" never launches anything: runs
    stay `starting` until a test drives them with `Backend.set_run_status` / `write_run_log`
    (moto style), which keeps API tests that only need run records free of Spark.

    `max_concurrent_runs`, `run_timeout_s` and `kill_grace_s` are read at each launch, so changing
    them on `LocalCde.config` takes effect for runs launched afterwards. Runs side by side share the
    warehouse and the metastore service (metastore.py).

    `spark_master` is passed to spark-submit (client deploy mode: the driver runs here); with a
    cluster, executors must reach the warehouse path and the job's Python (runner.py).

    `access_keys` (key id -> private key) are exchanged for a token at the console route
    `POST /api/v0/auth/access-keys/token` (Cloudera's Airflow provider, `auth_mode: awc`). A key id
    is its own principal, like a user name: its tokens name it as `sub` and it appears as the
    `user` of what it creates, so a key id must not also be a user name.

    `class_data_sharing` (spark mode): drivers start from a JVM class data sharing archive kept in
    `cds_dir`, made in the background by the first run of a local CDE when none is there (cds.py).
    """

    data_dir: Path = field(default_factory=lambda: Path("data/cde"))
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port
    users: dict[str, str] = field(default_factory=lambda: {"dex-user": "dex-password"})
    access_keys: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ACCESS_KEYS))
    token_ttl_s: float = 3600.0  # lifetime of issued tokens (fault switch token_ttl_s overrides)
    vc_name: str = "local-cde"  # `appName` of GET /info
    # Runs
    run_mode: RunMode = "spark"
    max_concurrent_runs: int = field(default_factory=default_concurrent_runs)  # one per CPU
    run_timeout_s: float = 1800.0  # a run still going after this is killed and marked failed
    kill_grace_s: float = 5.0  # SIGTERM → SIGKILL delay when killing a run's process group
    spark_master: str = "local[2]"  # also spark://HOST:PORT, k8s://..., yarn (SPARK_MASTER_FORMS)
    # Small local jobs are dominated by JVM start-up: C1 only and the serial GC halve a tiny run's time
    # here (measured: 17-21 s -> 9 s under load). User conf's extraJavaOptions come after these.
    driver_jvm_flags: tuple[str, ...] = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
    # Drivers map a class data sharing archive made once per machine user by a warm-up job (cds.py):
    # a tiny run's JVM start-up halves again. `cds_dir`: where it is kept (None: the user's cache,
    # $XDG_CACHE_HOME/cde-local/cds or ~/.cache/cde-local/cds, shared by every local CDE).
    class_data_sharing: bool = True
    cds_dir: Path | None = None
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
        if self.cds_dir is not None:
            self.cds_dir = Path(self.cds_dir).expanduser().resolve()
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {self.port!r}")
        if not self.users:
            raise ConfigError("at least one user is required")
        for name, password in self.users.items():
            if not name or ":" in name or not password:
                raise ConfigError(f"bad user {name!r}: names need no ':' and passwords must not be empty")
        self.access_keys = dict(self.access_keys)
        for key_id, private_key in self.access_keys.items():
            if not key_id or ":" in key_id or not private_key:
                raise ConfigError(
                    f"bad access key {key_id!r}: key ids need no ':' and private keys must not be empty"
                )
            if key_id in self.users:
                raise ConfigError(
                    f"access key id {key_id!r} is also a user name: a principal is one or the other"
                )
        if not self.token_ttl_s > 0:
            raise ConfigError("token_ttl_s must be > 0")
        if self.run_mode not in ("spark", "manual"):
            raise ConfigError(f"run_mode must be 'spark' or 'manual', got {self.run_mode!r}")
        if not isinstance(self.max_concurrent_runs, int) or self.max_concurrent_runs < 1:
            raise ConfigError("max_concurrent_runs must be an integer >= 1")
        if not isinstance(self.spark_master, str) or not SPARK_MASTER_PATTERN.fullmatch(self.spark_master):
            raise ConfigError(f"spark_master must be one of {SPARK_MASTER_FORMS}, got {self.spark_master!r}")
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
