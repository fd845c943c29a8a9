"""Where the tests find the repository's files: each path written once."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
LOGS_DIR = TESTS / "data" / "logs"      # captured Spark logs and the apps that made them
FIXES_DIR = TESTS / "fixes"              # known-good fixes of the scenarios
ARTIFACTS = TESTS / "artifacts"          # screenshots the browser tests leave for a reader
