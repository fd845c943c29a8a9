"""The remedy catalog on evidence distilled from real Spark logs (tests/data/logs)."""

from __future__ import annotations

import re

import pytest

from agents.distill import distill
from agents.guard import accepted, check_patch
from agents.record import Diagnosis, Evidence
from agents.remedies import CATALOG, MARKERS, diagnose_by_rules, fix_by_rules, rule_by_code
from agents.remedies.registry import Rule
from tests.fixtures.agents import evidence_of, load_spark_log

# --- configuration -------------------------------------------------------------------------------


def test_max_result_size_raises_the_limit_and_driver_memory() -> None:
    log = load_spark_log("max_result_size")
    evidence = evidence_of(log)
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None and (diagnosis.rule, diagnosis.category) == ("max-result-size", "config")
    spark = {"driverMemory": "1g"}
    patch = fix_by_rules(diagnosis, evidence, log.code, spark)
    assert patch is not None and patch.kind == "config"
    # The job allowed only 1024 B (Spark's message says so): back to at least Spark's default of 1g.
    assert patch.conf_changes == {"spark.driver.maxResultSize": "1g"}
    assert patch.spark_changes == {}  # 1g with a 1g driver is Spark's own default
    assert accepted(check_patch(log.code, patch, job_spark=spark))

    # From a configured value: doubled; the driver grows when the limit would exceed its memory.
    spark = {"driverMemory": "1g", "conf": {"spark.driver.maxResultSize": "1g"}}
    patch = fix_by_rules(diagnosis, evidence, log.code, spark)
    assert patch is not None
    assert patch.conf_changes == {"spark.driver.maxResultSize": "2g"} and patch.spark_changes == {"driverMemory": "2g"}
    spark = {"driverMemory": "8g", "conf": {"spark.driver.maxResultSize": "2g"}}
    patch = fix_by_rules(diagnosis, evidence, log.code, spark)
    assert patch is not None
    assert patch.conf_changes == {"spark.driver.maxResultSize": "4g"} and patch.spark_changes == {}
    # At the cap: no deterministic fix.
    assert fix_by_rules(diagnosis, evidence, log.code, {"conf": {"spark.driver.maxResultSize": "8g"}}) is None


@pytest.mark.parametrize(("current", "doubled"), [(None, "2g"), ("1g", "2g"), ("768m", "1536m"), ("12g", "16g")])
def test_driver_out_of_memory_doubles_driver_memory(current: str | None, doubled: str) -> None:
    log = load_spark_log("driver_oom")
    evidence = evidence_of(log)
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None and (diagnosis.rule, diagnosis.category) == ("driver-out-of-memory", "config")
    spark = {"driverMemory": current} if current else {}
    patch = fix_by_rules(diagnosis, evidence, log.code, spark)
    assert patch is not None and patch.spark_changes == {"driverMemory": doubled} and patch.conf_changes == {}
    assert accepted(check_patch(log.code, patch, job_spark=spark))


def test_driver_memory_at_the_cap_has_no_fix() -> None:
    log = load_spark_log("driver_oom")
    evidence = evidence_of(log)
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None
    assert fix_by_rules(diagnosis, evidence, log.code, {"driverMemory": "16g"}) is None


def test_executor_memory_signature() -> None:
    # A line as YARN/Kubernetes deployments of Spark print it (not reproducible on local Spark).
    evidence = Evidence(
        exception="org.apache.spark.SparkException: Job aborted due to stage failure",
        key_lines=[
            "24/05/01 10:00:09 ERROR TaskSchedulerImpl: Lost executor 3 on host-3: Container killed by YARN "
            "for exceeding memory limits. 5.5 GB of 5.5 GB physical memory used."
        ],
    )
    diagnosis = diagnose_by_rules(evidence)
    assert diagnosis is not None and diagnosis.rule == "executor-out-of-memory"
    patch = fix_by_rules(diagnosis, evidence, "", {"executorMemory": "4g"})
    assert patch is not None and patch.spark_changes == {"executorMemory": "8g"}


# --- transient and missing data ----------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "Caused by: org.apache.spark.shuffle.FetchFailedException: Failed to connect to host-7/10.0.0.7:7337",
        "24/05/01 10:00:09 WARN TaskSetManager: Lost task 3.0 in stage 4.0: ExecutorLostFailure (executor 2 exited "
        "caused by one of the running tasks) Reason: Remote RPC client disassociated",
        "Caused by: java.io.IOException: Connection reset by peer",
        "Caused by: java.net.ConnectException: Connection refused: host-2/10.0.0.2:7337",
        "org.apache.hadoop.fs.s3a.AWSClientIOException: transient network failure while reading s3a://bucket/x",
    ],
)
def test_transient_signatures_get_a_rerun(line: str) -> None:
    evidence = distill("py4j.protocol.Py4JJavaError: An error occurred while calling o91.save.\n", line + "\n")
    diagnosis = diagnose_by_rules(evidence, "print(1)\n")
    assert diagnosis is not None and (diagnosis.rule, diagnosis.category) == ("transient", "transient")
    patch = fix_by_rules(diagnosis, evidence, "print(1)\n", {})
    assert patch is not None and patch.kind == "rerun" and not patch.spark_changes and patch.code is None
    assert accepted(check_patch("print(1)\n", patch))


@pytest.mark.parametrize("name", ["path_not_found", "table_not_found"])
def test_missing_input_is_data_and_has_no_patch(name: str) -> None:
    log = load_spark_log(name)
    evidence = evidence_of(log)
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None
    assert (diagnosis.rule, diagnosis.category, diagnosis.source) == ("missing-input", "data", "rule")
    assert diagnosis.evidence
    assert fix_by_rules(diagnosis, evidence, log.code, {}) is None


def test_missing_table_the_job_writes_itself_is_not_missing_input() -> None:
    log = load_spark_log("table_not_found")
    code = log.code + 'report.write.saveAsTable("sales_raw")\n'
    diagnosis = diagnose_by_rules(evidence_of(log), code)
    assert diagnosis is None or diagnosis.rule != "missing-input"


@pytest.mark.parametrize("name", ["python_keyerror"])
def test_failures_without_a_rule_are_left_to_the_model(name: str) -> None:
    log = load_spark_log(name)
    assert diagnose_by_rules(evidence_of(log), log.code) is None


def test_fix_needs_a_rule_diagnosis() -> None:
    log = load_spark_log("driver_oom")
    model_diagnosis = Diagnosis(category="config", root_cause="OOM", confidence=0.9, source="model")
    assert fix_by_rules(model_diagnosis, evidence_of(log), log.code, {}) is None
    named = model_diagnosis.model_copy(update={"rule": "driver-out-of-memory"})  # a model naming a rule
    assert fix_by_rules(named, evidence_of(log), log.code, {}) is None
    as_rule = model_diagnosis.model_copy(update={"rule": "driver-out-of-memory", "source": "rule"})
    assert fix_by_rules(as_rule, evidence_of(log), log.code, {}).spark_changes == {"driverMemory": "2g"}


def test_the_catalog_is_one_registry_with_unique_codes_and_documented_rules() -> None:
    assert len({r.code for r in CATALOG}) == len({r.name for r in CATALOG}) == len(CATALOG)
    for rule in CATALOG:
        assert re.fullmatch(r"[A-Z]\d{3}", rule.code) and re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name), rule
        assert rule.summary and "\n" not in rule.summary and len(rule.explanation) > len(rule.summary), rule.code
        assert rule_by_code(rule.code.lower()) is rule
        assert set(rule.markers) <= set(MARKERS)  # distillation keeps every line a rule matches on
    unknown = Diagnosis(category="config", root_cause="?", confidence=0.9, source="rule", rule="no-such-rule")
    assert fix_by_rules(unknown, Evidence(), "", {}) is None


def test_a_rule_must_match_something_and_a_fix_needs_its_applicability() -> None:
    with pytest.raises(ValueError, match="matches nothing"):
        Rule(code="X999", name="nothing", summary="s", explanation="e", diagnose=lambda e, c: None)
    with pytest.raises(ValueError, match="applicability"):
        Rule(code="X999", name="fixer", summary="s", explanation="e", diagnose=lambda e, c: None,
             conditions=("X",), fix=lambda e, c, s, j: None)


def test_a_rule_fix_carries_its_applicability() -> None:
    log = load_spark_log("driver_oom")
    found = diagnose_by_rules(evidence_of(log), log.code)
    assert found is not None and found.rule == "driver-out-of-memory"
    patch = fix_by_rules(found, evidence_of(log), log.code, {})
    assert patch is not None and patch.applicability == "safe"


def test_a_union_by_name_missing_a_column_reaches_the_union_rule_not_the_column_rule() -> None:
    """UNRESOLVED_COLUMN_AMONG_FIELD_NAMES starts like UNRESOLVED_COLUMN: the prefixes keep them apart."""
    log = load_spark_log("grouping_union_by_name")
    found = diagnose_by_rules(evidence_of(log), log.code)
    assert found is not None and found.rule == "union-by-name", found
