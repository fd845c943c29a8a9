"""Silent failures of succeeded runs: a per-job anomaly detector over run telemetry
(`agents.telemetry`). `detector.py` holds the method, its thresholds and its evidence."""

from agents.anomaly.detector import FEATURES, LABELS, MIN_HISTORY, Finding, Judgement, derive, judge

__all__ = ["FEATURES", "LABELS", "MIN_HISTORY", "Finding", "Judgement", "derive", "judge"]
