"""`python -m cde_local.cds_build`: the Spark drivers' class data sharing archive (cds.py), made now
in the foreground unless a valid one exists (`make test` runs it first, so that the suite's first
Spark runs already start from it). Prints the archive's path; exit 1 when none could be made (runs
then load their classes from the jars, as without it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .cds import CHECK_TIMEOUT_S, WARMUP_TIMEOUT_S, ArchiveFiles, ClassDataSharing
from .config import LocalCdeConfig
from .runner import spark_home


def build(config: LocalCdeConfig | None = None, spark_dir: Callable[[], Path] | None = None,
          timeout_s: float = WARMUP_TIMEOUT_S + CHECK_TIMEOUT_S) -> ArchiveFiles | None:
    """Makes the archive of `config`'s Java, pyspark (`spark_dir`, default the interpreter's) and
    flags in the foreground unless a valid one exists; the valid archive's files, or None (the
    warm-up's log says why)."""
    config = config or LocalCdeConfig()
    sharing = ClassDataSharing(config, spark_dir or (lambda: spark_home(config.python_executable)))
    files = sharing.files()
    if files is None or files.valid():
        return files
    sharing.start_warmup()
    sharing.wait(timeout_s)
    sharing.stop()  # a warm-up past the timeout is killed, its files removed
    return files if files.valid() else None


def main() -> int:
    files = build()
    if files is None or not files.valid():
        print("class data sharing: no archive made" + (f"; see {files.log}" if files else ""))
        return 1
    print(f"class data sharing: {files.archive}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
