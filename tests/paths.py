"""Where the tests find the repository's files: each path written once."""

from pathlib import Path

from bench.scripted import FIXES_DIR as FIXES_DIR  # the scenarios' known-good fixes ship with bench

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
LOGS_DIR = TESTS / "data" / "logs"      # captured Spark logs and the apps that made them
ARTIFACTS = TESTS / "artifacts"          # screenshots the browser tests leave for a reader
