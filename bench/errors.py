"""Errors of the benchmarks. Callers catch by meaning.

::

    BenchError              anything the benchmarks raise on purpose
    ├── BenchUsageError     bad command-line input or environment (unknown scenario, --cde env without
    │                       JOBS_API_URL); the CLI exits 2 with the message
    └── ScenarioSkipped     one scenario cannot be benchmarked (its app run did not fail, no known fix
                            for the scripted model); it becomes a row with the error, the run goes on

Errors of the CDE client, the scenario loader and the healer pass through to the scenario's row.
"""

from __future__ import annotations


class BenchError(Exception):
    """Base class. `str(err)` is a one-line explanation."""


class BenchUsageError(BenchError):
    """The benchmark cannot start as asked."""


class ScenarioSkipped(BenchError):
    """One scenario cannot be benchmarked; the others still run."""


class NoKnownFix(ScenarioSkipped):
    """The scripted model has no known-good fix to answer with for this scenario."""
