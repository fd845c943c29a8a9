"""The sandbox launcher on real Spark, through the local CDE: one plain job makes "production", then
the launcher runs a job that writes through every API (preflight), a failing job (sampled, a later
attempt), and measures production (stats mode). Production must come out of it untouched."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.sandbox.bundle import LAUNCHER, sandbox_bundle
from agents.sandbox.report import SandboxReport, parse_report
from cde_local import LocalCde
from tests.fixtures.cde_local import CdeApi
from tests.paths import TESTS

APPS = TESTS / "agents" / "sandbox" / "apps"
BUNDLE_PREFIX = "healer-sandbox"


@dataclass
class Production:
    api: CdeApi
    warehouse: Path
    database: str
    parquet: Path
    csv: Path
    text: Path
    apps: str      # the apps' resource
    bundle: str    # the launcher's resource
    incident: str  # sandbox database prefix: `<incident>_<n>` per attempt


@dataclass
class Run:
    status: str
    stdout: str
    report: SandboxReport | None


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots`: size and modification time (a rewrite changes one of them)."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for root in roots if root.exists() for p in sorted(root.rglob("*")) if p.is_file()}


def run_job(prod: Production, name: str, spark: dict[str, Any], bundle: bool) -> Run:
    mounts = [{"resourceName": prod.apps, "dirPrefix": "apps"}]
    if bundle:
        mounts.append({"resourceName": prod.bundle, "dirPrefix": BUNDLE_PREFIX})
    job = f"{name}-{uuid.uuid4().hex[:6]}"
    prod.api.create_job({"name": job, "type": "spark", "mounts": mounts, "spark": spark})
    run_id = prod.api.run(job)
    status = prod.api.wait_run(run_id)["status"]
    stdout = prod.api.log(run_id, "driver/stdout")
    return Run(status, stdout, parse_report(stdout))


def sandboxed(prod: Production, name: str, app: str, args: list[str], **conf: str) -> Run:
    spark = {"file": f"/app/mount/{BUNDLE_PREFIX}/{LAUNCHER}", "args": args,
             "conf": {"spark.healer.sandbox.app": f"apps/{app}",
                      **{f"spark.healer.sandbox.{k}": v for k, v in conf.items()}}}
    return run_job(prod, name, spark, bundle=True)


@pytest.fixture(scope="module")
def production(local_cde: LocalCde, tmp_path_factory: pytest.TempPathFactory) -> Production:
    api = CdeApi(local_cde)
    tag = uuid.uuid4().hex[:8]
    files = tmp_path_factory.mktemp("production")
    bundle = sandbox_bundle()
    if api.get(f"/resources/{bundle.name}").status_code == 404:  # other tests may have made it (same content)
        api.create_resource(bundle.name, bundle.files, type="files")
    apps = f"sandbox-apps-{tag}"
    api.create_resource(apps, {p.name: p.read_bytes() for p in APPS.glob("*.py")}, type="files")
    prod = Production(api, local_cde.config.data_dir / "warehouse", f"mart_{tag}", files / "out_parquet",
                      files / "out_csv", files / "out_text", apps, bundle.name, f"sbx{tag}_77")
    run = run_job(prod, "production", {"file": "apps/production.py",
                                       "args": [prod.database, str(prod.parquet), str(prod.csv)]}, bundle=False)
    assert run.status == "succeeded" and "PRODUCTION READY" in run.stdout, run.stdout
    return prod


def production_files(prod: Production) -> dict[str, tuple[int, int]]:
    return snapshot(prod.warehouse / f"{prod.database}.db", prod.parquet, prod.csv, prod.text)


@dataclass
class Preflight:
    run: Run
    before: dict[str, tuple[int, int]]
    after: dict[str, tuple[int, int]]
    sandbox_dir: Path


@pytest.fixture(scope="module")
def preflight(production: Production) -> Preflight:
    prod = production
    before = production_files(prod)
    outputs = json.dumps([{"kind": "table", "name": f"{prod.database}.events"}])
    run = sandboxed(prod, "every-write", "every_write.py",
                    [prod.database, str(prod.parquet), str(prod.csv), str(prod.text)],
                    database=f"{prod.incident}_1", outputs=outputs)
    return Preflight(run, before, production_files(prod), prod.warehouse / f"{prod.incident}_1.db")


def test_preflight_leaves_production_untouched(production: Production, preflight: Preflight) -> None:
    assert preflight.run.status == "succeeded", preflight.run.stdout
    assert preflight.before and preflight.after == preflight.before  # no file added, removed or rewritten
    assert not production.text.exists()
    header, *rows = production.csv.glob("part-*.csv").__next__().read_text().splitlines()
    assert header == "id,customer" and len(rows) == 2


def test_preflight_writes_go_to_the_sandbox(production: Production, preflight: Preflight) -> None:
    db, sandbox = production.database, preflight.sandbox_dir
    for table in ("daily", "events", "v2_orders", "summary", "ctas_nulls"):
        assert any((sandbox / f"{db}__{table}").rglob("part-*")), table  # events: in partition dirs
    files = sandbox / "_files" / "file"
    for path in (production.parquet, production.csv, production.text):
        assert any((files / str(path).lstrip("/")).glob("part-*")), path
    checks = dict(line[len("CHECK "):].split("=", 1) for line in preflight.run.stdout.splitlines()
                  if line.startswith("CHECK "))
    assert checks == {"daily_rows": "7", "daily_sql_rows": "7", "parquet_rows": "10", "view_rows": "7",
                      "temp_rows": "2", "global_temp": "healer_global_temp"}


def test_preflight_report(production: Production, preflight: Preflight) -> None:
    report = preflight.run.report
    assert report is not None, preflight.run.stdout
    db, sdb = production.database, f"{production.incident}_1"
    assert (report.mode, report.database, report.app_exit, report.app_error) == ("preflight", sdb, 0, None)
    assert report.sample.kind == "none"

    def out(kind: str, name: str) -> Any:
        found = report.output(kind, name)
        assert found is not None and found.error is None, (name, found, [o.name for o in report.outputs])
        return found

    def shape(stats: Any) -> tuple[int, dict[str, int]]:
        return stats.rows, {c.name: c.nulls for c in stats.columns}

    daily = out("table", f"{db}.daily")
    assert daily.sandbox == f"{sdb}.{db}__daily" and daily.operations == ["saveAsTable mode=overwrite"]
    assert shape(daily.stats) == (7, {"id": 0, "customer": 2, "amount": 0})
    assert shape(daily.baseline) == (3, {"id": 0, "customer": 0, "amount": 0})
    amount = next(c for c in daily.stats.columns if c.name == "amount")
    assert (amount.min, amount.max, amount.mean, amount.distinct, amount.type) == ("30.0", "90.0", 60.0, 7, "double")
    events = out("table", f"{db}.events")
    assert events.operations == ["insertInto mode=append"]
    assert shape(events.stats) == (4, {"id": 0, "customer": 1, "amount": 1, "day": 0})
    assert shape(events.baseline) == (2, {"id": 0, "customer": 1, "amount": 0, "day": 0})
    day = next(c for c in events.stats.columns if c.name == "day")
    assert (day.min, day.max, day.distinct) == ("d1", "d2", 2)  # the cloned partition and the new one
    summary = out("table", f"{db}.summary")
    assert (summary.operations, summary.stats.rows, summary.baseline.rows) == (["sql INSERT"], 2, 1)
    assert next(c for c in summary.stats.columns if c.name == "n").max == "99"
    v2 = out("table", f"{db}.v2_orders")
    assert (v2.operations, v2.stats.rows, v2.baseline) == (["writeTo create"], 10, None)
    ctas = out("table", f"{db}.ctas_nulls")
    assert (ctas.operations, shape(ctas.stats), ctas.baseline) == (
        ["sql CREATE TABLE AS SELECT"], (1, {"id": 0, "amount": 1}), None)
    view = out("table", f"{db}.v_daily")
    assert (view.operations, shape(view.stats), view.baseline) == (["sql CREATE VIEW"], (7, {"customer": 2}), None)

    parquet = out("path", f"file:{production.parquet}")
    assert (parquet.format, parquet.operations) == ("parquet", ["parquet mode=overwrite"])
    assert (parquet.stats.rows, parquet.baseline.rows) == (10, 4)
    csv = out("path", f"file:{production.csv}")
    assert [c.name for c in csv.stats.columns] == ["id", "customer"]  # read back with its header option
    assert (shape(csv.stats), csv.baseline.rows) == ((10, {"id": 0, "customer": 2}), 2)
    text = out("path", f"file:{production.text}")
    assert (text.operations, text.stats.rows, text.baseline) == (["saveAsTextFile"], 3, None)
    assert len(report.outputs) == 9  # no temp view among them
    orders = [r for r in report.reads if r.name == f"{db}.orders"]
    assert orders and not any(r.redirected or r.sampled for r in orders)
    assert any(r.name == f"{db}.daily" and r.redirected for r in report.reads)
    assert not [r for r in report.reads if "tmp_" in r.name]  # temp views are neither redirected nor inputs


def test_failing_app_is_reported_and_keeps_its_traceback(production: Production, preflight: Preflight) -> None:
    db, sdb = production.database, f"{production.incident}_2"
    run = sandboxed(production, "fails", "fails.py", [db, str(production.parquet)], database=sdb, sample="rows:3")
    assert run.status == "failed"
    assert "Traceback (most recent call last)" in run.stdout and "ValueError: deliberate failure" in run.stdout
    refused = [line for line in run.stdout.splitlines() if line.startswith("REFUSED ")]
    assert len(refused) == 3 and all(line.startswith("REFUSED HealerSandboxError: ") for line in refused), refused
    assert "INSERT into temp view 'prod_files'" in refused[0] and "LOAD DATA" in refused[1] and "jdbc" in refused[2]
    report = run.report
    assert report is not None, run.stdout
    assert (report.app_exit, report.app_error) == (1, "ValueError: deliberate failure")
    assert (report.sample.kind, report.sample.value) == ("rows", 3)
    daily = report.output("table", f"{db}.daily")
    assert daily is not None and (daily.stats.rows, daily.baseline.rows) == (3, 3)  # baseline: production as it stands
    events = report.output("table", f"{db}.events")
    assert events is not None and (events.stats.rows, events.baseline.rows) == (5, 2)  # production's 2 + 3 sampled
    assert any(r.name == f"{db}.orders" and r.sampled for r in report.reads)
    assert not preflight.sandbox_dir.exists()  # the earlier attempt's sandbox was dropped
    assert production_files(production) == preflight.before


def test_stats_mode_measures_production(production: Production, preflight: Preflight) -> None:
    db = production.database
    outputs = [{"kind": "table", "name": f"{db}.daily"}, {"kind": "table", "name": f"{db}.v_daily"},
               {"kind": "path", "name": str(production.csv), "format": "csv", "options": {"header": "true"}}]
    run = sandboxed(production, "stats", "missing_app.py", [], mode="stats", outputs=json.dumps(outputs))
    assert run.status == "succeeded", run.stdout
    report = run.report
    assert report is not None and (report.mode, report.app_exit) == ("stats", None)
    daily, view, csv = report.outputs
    assert (daily.name, daily.sandbox, daily.stats.rows, daily.baseline) == (f"{db}.daily", None, 3, None)
    assert view.stats is None and view.error == "absent"  # the sandboxed CREATE VIEW never reached production
    assert csv.name == f"file:{production.csv}" and [c.name for c in csv.stats.columns] == ["id", "customer"]
    assert csv.stats.rows == 2
