"""Shared pytest configuration. Fixtures live in one module per area, loaded here as plugins."""

pytest_plugins = [
    "tests.fixtures.cde_local",
    "tests.fixtures.client",
    "tests.fixtures.scenarios",
    "tests.fixtures.agents",
    "tests.fixtures.heal",
    "tests.fixtures.app",  # imports heal's tutorial answers: after it, so both are assertion-rewritten
]
