"""Shared pytest configuration. Fixtures live in one module per area, loaded here as plugins."""

pytest_plugins = [
    "tests.fixtures_cde_local",
    "tests.fixtures_client",
    "tests.fixtures_scenarios",
    "tests.fixtures_agents",
    "tests.fixtures_app",
    "tests.fixtures_heal",
]
