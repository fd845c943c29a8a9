"""Log distillation on real Spark 4.3 logs (tests/data/logs, captured by capture.py) and on texts
written the way Spark 3.5 writes them, on a 100 MB log, and on bad input."""

from __future__ import annotations

import json

import pytest

from agents.distill import MAX_LINE_CHARS, distill, is_library_path, summary
from agents.errors import InvalidInput
from agents.tokens import estimate_tokens
from tests.fixtures.agents import evidence_of, load_spark_log

# name -> (error class, user line, text in the exception line)
EXPECTED = {
    "unresolved_column": ("UNRESOLVED_COLUMN.WITH_SUGGESTION", 12, "AnalysisException"),
    "unresolved_column_df": ("UNRESOLVED_COLUMN.WITH_SUGGESTION", 14, "`qty` cannot be resolved"),
    "divide_by_zero": ("DIVIDE_BY_ZERO", 10, "ArithmeticException: [DIVIDE_BY_ZERO]"),
    "cast_invalid_input": ("CAST_INVALID_INPUT", 10, "NumberFormatException"),
    "ambiguous_reference": ("AMBIGUOUS_REFERENCE", 11, "is ambiguous"),
    "python_keyerror": (None, 22, "KeyError: 'output_dir'"),
    "udf_null": ("PYTHON_EXCEPTION", 13, "AttributeError: 'NoneType' object has no attribute 'upper'"),
    "max_result_size": (None, 8, "bigger than spark.driver.maxResultSize"),
    "driver_oom": (None, 8, "java.lang.OutOfMemoryError: Java heap space"),
    "path_not_found": ("PATH_NOT_FOUND", 6, "Path does not exist"),
    "table_not_found": ("TABLE_OR_VIEW_NOT_FOUND", 6, "`sales_raw` cannot be found"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_logs_give_class_frame_and_exception(name: str) -> None:
    log = load_spark_log(name)
    error_class, line, exception_text = EXPECTED[name]
    evidence = distill(log.stdout, log.stderr, app_file_name=log.app_file_name)
    assert evidence.error_class == error_class
    assert evidence.user_line == line
    assert evidence.user_frame == f'File "/app/mount/{name}.py", line {line}, in ' + evidence.user_frame.rsplit(" ", 1)[1]
    assert evidence.exception is not None and exception_text in evidence.exception
    assert evidence.distilled_tokens == estimate_tokens(evidence.distilled) <= 2000
    assert evidence.raw_log_bytes == len(log.stdout.encode()) + len(log.stderr.encode())
    assert evidence.log_types == ["driver/stdout", "driver/stderr"]
    # The summary leads the distilled text, with the user's code line under its frame.
    assert evidence.distilled.startswith(f"error class: {error_class or 'none found'}")
    code_line = log.code.splitlines()[line - 1].strip()
    assert code_line in evidence.distilled


def test_unresolved_column_parameters_and_suggestions() -> None:
    log = load_spark_log("unresolved_column")
    evidence = distill(log.stdout, log.stderr)
    assert evidence.message_parameters["objectName"] == "`customer_id`"
    assert evidence.suggestions == ["account_id", "balance", "account_name"]
    assert "spark suggests: account_id, balance, account_name" in evidence.distilled
    assert any("UNRESOLVED_COLUMN" in line for line in evidence.key_lines)


def test_message_parameters_of_other_classes() -> None:
    cast = distill(*_logs("cast_invalid_input"))
    assert cast.message_parameters == {"expression": "'n/a'", "sourceType": "STRING", "targetType": "DECIMAL(10,2)"}
    ambiguous = distill(*_logs("ambiguous_reference"))
    assert ambiguous.message_parameters["name"] == "`account_id`"
    assert ambiguous.suggestions == []
    table = distill(*_logs("table_not_found"))
    assert table.message_parameters == {"relationName": "`sales_raw`"}
    path = distill(*_logs("path_not_found"))
    assert path.message_parameters == {"path": "file:/tmp/healer-missing-input/events/2024-06-01"}


def test_udf_failure_points_at_the_udf_line_not_the_call() -> None:
    evidence = distill(*_logs("udf_null"), app_file_name="udf_null.py")
    assert evidence.user_frame == 'File "/app/mount/udf_null.py", line 13, in shout'
    assert 'return name.upper() + "!"' in evidence.distilled


def test_stderr_alone_still_gives_the_class() -> None:
    log = load_spark_log("divide_by_zero")
    evidence = distill("", log.stderr)
    assert evidence.error_class == "DIVIDE_BY_ZERO"
    assert evidence.log_types == ["driver/stderr"]
    assert "SparkArithmeticException" in (evidence.exception or "")


@pytest.mark.parametrize("budget", [16, 60, 200, 700])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_distilled_text_never_exceeds_the_budget(name: str, budget: int) -> None:
    evidence = distill(*_logs(name), token_budget=budget)
    assert estimate_tokens(evidence.distilled) <= budget
    assert evidence.distilled  # something is always said


def test_small_budget_keeps_the_summary_first() -> None:
    evidence = distill(*_logs("unresolved_column"), token_budget=150)
    assert evidence.distilled.startswith("error class: UNRESOLVED_COLUMN.WITH_SUGGESTION")
    assert "spark suggests: account_id" in evidence.distilled
    assert "== start of stderr ==" not in evidence.distilled  # no room for the least useful part


def test_spark_35_text_without_sqlstate_or_json_record() -> None:
    # Written the way Spark 3.5 prints it (no SQLSTATE, no JSON log record, "Caused by" chains).
    stdout = "\n".join(
        [
            "Traceback (most recent call last):",
            '  File "/app/mount/sparkApp.py", line 21, in <module>',
            '    df = spark.sql("SELECT customer_id, amount FROM sales")',
            '  File "/opt/spark/python/lib/pyspark.zip/pyspark/sql/session.py", line 1631, in sql',
            '  File "/opt/spark/python/lib/py4j-0.10.9.7-src.zip/py4j/java_gateway.py", line 1322, in __call__',
            "pyspark.errors.exceptions.captured.AnalysisException: [UNRESOLVED_COLUMN.WITH_SUGGESTION] A column or "
            "function parameter with name `customer_id` cannot be resolved. Did you mean one of the following? "
            "[`spark_catalog`.`default`.`sales`.`account_id`, `spark_catalog`.`default`.`sales`.`amount`].; line 1 pos 7;",
            "'Project ['customer_id, 'amount]",
        ]
    )
    stderr = "\n".join(
        [
            "24/05/01 10:00:01 INFO SparkContext: Running Spark version 3.5.1",
            "24/05/01 10:00:09 ERROR Executor: Exception in task 0.0 in stage 2.0 (TID 5)",
            "org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 2.0 failed 4 times",
            "\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2844)",
            "Caused by: java.io.IOException: Connection reset by peer",
            "\tat sun.nio.ch.FileDispatcherImpl.read0(Native Method)",
            "Caused by: org.apache.spark.shuffle.FetchFailedException: Failed to connect to host-7/10.0.0.7:7337",
            "\tat org.apache.spark.storage.ShuffleBlockFetcherIterator.throwFetchFailedException(ShuffleBlockFetcherIterator.scala:1239)",
            "\t... 25 more",
        ]
    )
    evidence = distill(stdout, stderr, app_file_name="sparkApp.py")
    assert evidence.error_class == "UNRESOLVED_COLUMN.WITH_SUGGESTION"
    assert evidence.suggestions == ["spark_catalog.default.sales.account_id", "spark_catalog.default.sales.amount"]
    assert evidence.message_parameters["objectName"] == "`customer_id`"
    assert evidence.user_line == 21
    assert evidence.caused_by == (
        "Caused by: org.apache.spark.shuffle.FetchFailedException: Failed to connect to host-7/10.0.0.7:7337"
    )
    assert "DAGScheduler.scala" not in evidence.distilled  # Java frames are noise


def test_json_record_message_parameters_are_used_when_present() -> None:
    record = {
        "ts": "2025-01-01 00:00:00.000",
        "level": "ERROR",
        "msg": "[DIVIDE_BY_ZERO] Division by zero. SQLSTATE: 22012",
        "context": {"errorClass": "DIVIDE_BY_ZERO", "messageParameters": {"config": '"spark.sql.ansi.enabled"'}},
        "exception": {"class": "Py4JJavaError", "msg": "x" * 50_000},
    }
    evidence = distill(json.dumps(record) + "\nValueError: boom\n")
    assert evidence.error_class == "DIVIDE_BY_ZERO"
    assert evidence.message_parameters == {"config": '"spark.sql.ansi.enabled"'}
    assert "x" * 1000 not in evidence.distilled  # the record's huge stack is not pasted


def test_app_file_frame_wins_over_other_user_files() -> None:
    stdout = "\n".join(
        [
            "Traceback (most recent call last):",
            '  File "/app/mount/sparkApp.py", line 40, in <module>',
            "    run()",
            '  File "/app/mount/sparkApp.py", line 33, in run',
            "    helpers.load(spark)",
            '  File "/app/mount/helpers.py", line 9, in load',
            '    return spark.read.csv(path)["x"]',
            "TypeError: 'DataFrame' object is not subscriptable",
        ]
    )
    assert distill(stdout).user_line == 9
    assert distill(stdout, app_file_name="sparkApp.py").user_line == 33


def test_empty_logs_give_empty_evidence() -> None:
    evidence = distill("", "")
    assert evidence.error_class is None and evidence.exception is None and evidence.user_frame is None
    assert evidence.distilled == "error class: none found"
    assert evidence.log_types == []


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="str"):
        distill(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="token_budget"):
        distill("x", token_budget=3)


def test_library_paths() -> None:
    assert is_library_path("/opt/spark/python/lib/pyspark.zip/pyspark/sql/session.py")
    assert is_library_path("/usr/lib/python3.11/json/decoder.py")
    assert not is_library_path("/app/mount/sparkApp.py")


def test_a_100_mb_log_stays_within_budget() -> None:
    log = load_spark_log("unresolved_column")
    chatter = "26/11/21 08:53:33 INFO BlockManager: Removed broadcast_7_piece0 on localhost:34031 in memory [x]\n"
    pathological = "Error: [" * 100_000 + "\n" + "`a`." * 200_000 + "\n" + "File \"" * 100_000 + "\n"
    one_long_line = "y" * 5_000_000 + "\n"
    stdout = chatter * (100_000_000 // len(chatter)) + pathological + one_long_line + log.stdout
    assert len(stdout) > 100_000_000
    evidence = distill(stdout, log.stderr, token_budget=1500, app_file_name="unresolved_column.py")
    assert evidence.error_class == "UNRESOLVED_COLUMN.WITH_SUGGESTION"
    assert evidence.suggestions == ["account_id", "balance", "account_name"]
    assert evidence.user_line == 12
    assert estimate_tokens(evidence.distilled) <= 1500
    assert evidence.raw_log_bytes > 100_000_000
    assert all(len(line) <= MAX_LINE_CHARS for line in evidence.key_lines)


def _logs(name: str) -> tuple[str, str]:
    log = load_spark_log(name)
    return log.stdout, log.stderr


def test_the_distilled_text_leaves_out_what_every_driver_prints():
    for name in ("unresolved_column", "python_keyerror", "ansi_divide_df"):
        text = evidence_of(load_spark_log(name)).distilled
        lines = [line.split("| ", 1)[-1] for line in text.splitlines()]
        assert not any(set(line.strip()) <= set("^~") and line.strip() for line in lines), name  # caret lines
        assert "Traceback (most recent call last):" not in lines, name
        assert not any("site-packages" in line and line.lstrip().startswith("File ") for line in lines), name
        assert "Using Spark's default log4j profile" not in text and "INFO SparkContext: Running Spark" not in text, name
        assert all("[" in line for line in lines if " INFO " in line), name  # INFO lines only where they name the error
        assert "== start of" not in text, name  # the error is known: how the log began says nothing


def test_lines_the_summary_already_quotes_are_not_repeated():
    evidence = evidence_of(load_spark_log("unresolved_column"))
    excerpts = evidence.distilled.split("\n== ", 1)[1]
    assert "cannot be resolved" not in excerpts  # the exception and its JSON record: in the summary only
    assert "'Project ['customer_id" in excerpts  # the plan, which the summary does not say


def test_the_summary_names_where_the_failing_expression_was_built():
    evidence = evidence_of(load_spark_log("ansi_divide_df"))
    assert 'failing expression: "__truediv__" was called from /app/mount/ansi_divide_df.py:11' in evidence.distilled
    assert summary(evidence.distilled).endswith("ansi_divide_df.py:11")
    assert "\n== " not in summary(evidence.distilled) and "== key lines" in evidence.distilled


def test_a_log_without_an_exception_still_shows_how_it_began():
    stderr = "\n".join(["Using Spark's default log4j profile: org/apache/spark/log4j2-defaults.properties",
                        "26/11/21 08:53:58 INFO SparkContext: Running Spark version 4.0.0",
                        "26/11/21 08:53:59 WARN Utils: Service 'sparkDriver' could not bind on port 7077",
                        *(f"loading partition {i}" for i in range(80)),  # beyond the tail's reach
                        "26/11/21 08:54:00 INFO BlockManager: Initialized BlockManager",
                        "26/11/21 08:54:01 ERROR SparkContext: Error initializing SparkContext.",
                        "the driver exited with code 137"])
    text = distill("", stderr, token_budget=2000).distilled
    assert "== start of stderr ==" in text and "could not bind on port 7077" in text
    assert "Error initializing SparkContext" in text
    assert "log4j profile" not in text and "Running Spark version" not in text
    assert "Initialized BlockManager" not in text  # INFO chatter, not even as the line before a key line
