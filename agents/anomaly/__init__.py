"""Silent failures of succeeded runs: a per-job anomaly detector over run telemetry
(`agents.telemetry`). `detector.py` holds the method, its thresholds (`DetectorParameters`) and its evidence;
`artefact.py` the detector artefact file (its parameters and evaluation) the model registry versions."""

from agents.anomaly.detector import (
    DEFAULT_PARAMETERS,
    FEATURES,
    LABELS,
    MIN_HISTORY,
    DetectorParameters,
    Finding,
    Judgement,
    derive,
    judge,
)

__all__ = ["DEFAULT_PARAMETERS", "FEATURES", "LABELS", "MIN_HISTORY", "DetectorParameters", "Finding", "Judgement",
           "derive", "judge"]
