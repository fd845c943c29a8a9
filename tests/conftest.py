"""Shared pytest configuration. Fixtures live in one module per area, loaded here as plugins."""

pytest_plugins = [
    "tests.fixtures.cde_local",
    "tests.fixtures.sandbox_runs",
    "tests.fixtures.client",
    "tests.fixtures.scenarios",
    "tests.fixtures.agents",
    "tests.fixtures.heal",
    "tests.fixtures.app",  # imports heal's tutorial answers: after it, so both are assertion-rewritten
    "tests.fixtures.postgres",
]

# Session fixtures whose local CDE runs real Spark jobs (each test using them takes ~10 s to minutes).
SPARK_FIXTURES = frozenset({"local_cde", "local_cde_factory", "heal_lab", "scenario_cde", "standalone_cluster"})


def pytest_collection_modifyitems(items: list) -> None:
    """Modules with the most real-Spark tests first, the rest in their usual order.

    `make test` runs whole modules on parallel workers (pytest-xdist, `--dist loadfile`) in this
    order: the long modules start first instead of running alone at the end."""
    spark_tests: dict[str, int] = {}
    for item in items:
        # a module with its own Spark fixture says so with `REAL_SPARK = True`
        if SPARK_FIXTURES & set(getattr(item, "fixturenames", ())) or getattr(item.module, "REAL_SPARK", False):
            spark_tests[item.module.__name__] = spark_tests.get(item.module.__name__, 0) + 1
    items.sort(key=lambda item: -spark_tests.get(item.module.__name__, 0))  # stable: ties keep their order
