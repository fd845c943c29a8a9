"""The second half of the retail scenarios by name, on a real local CDE with real Spark: each fails
with its error and its known fix heals (see `test_scenarios_first_half.py`, which has the first half and
the tutorial, and `tests/fixtures/scenarios.py` for what is checked). Two modules so that
pytest-xdist's `--dist loadfile` can run the halves on two workers.
"""

from __future__ import annotations

import pytest

from cde_client import CdeClient
from cde_local import LocalCde
from tests.fixtures.scenarios import RETAIL_SCENARIOS, fails_and_known_fix_heals

SECOND_HALF = RETAIL_SCENARIOS[len(RETAIL_SCENARIOS) // 2:]


@pytest.mark.parametrize("name", SECOND_HALF)
def test_scenario_fails_and_known_fix_heals(name: str, scenario_cde: LocalCde, scenario_client: CdeClient,
                                            retail_world: int) -> None:
    fails_and_known_fix_heals(scenario_cde, scenario_client, name)
