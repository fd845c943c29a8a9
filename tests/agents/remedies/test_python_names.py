"""P101 python-name-suggestion and P102 missing-import: real Spark logs (tests/data/logs/python_names_*),
and code shapes with evidence built from Python's own messages (each message below is what Python
3.11 printed for that code, run for real)."""

from __future__ import annotations

import ast
import textwrap

import pytest

from agents.guard import accepted, check_patch
from agents.guard import vocabulary as vocab
from agents.record import Evidence, Patch
from agents.remedies import diagnose_by_rules, fix_by_rules
from agents.remedies.python_names import IMPORTS, edit_distance, name_failure
from tests.fixtures.agents import changed_lines, evidence_of, load_spark_log


def _error(message: str, line: int, function: str = "<module>", file: str = "job.py") -> Evidence:
    """Evidence as distillation makes it from a driver traceback ending in ``message``."""
    return Evidence(exception=message, user_frame=f'File "/app/mount/{file}", line {line}, in {function}',
                    user_line=line, key_lines=[f'File "/app/mount/{file}", line {line}, in {function}', message])


def _heal(evidence: Evidence, code: str, rule: str, file: str = "job.py") -> Patch:
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and (diagnosis.rule, diagnosis.category, diagnosis.source) == (rule, "code", "rule")
    assert diagnosis.confidence >= 0.9
    patch = fix_by_rules(diagnosis, evidence, code, {"file": file})
    assert patch is not None and patch.kind == "code" and patch.code and patch.applicability == "safe"
    ast.parse(patch.code)
    verdicts = check_patch(code, patch, job_spark={})
    assert accepted(verdicts), [v for v in verdicts if not v.ok]
    return patch


def _line_of(code: str, text: str) -> int:
    return next(i for i, line in enumerate(code.splitlines(), start=1) if text in line)


# --- reading Python's messages -----------------------------------------------------------------------


def test_name_failure_reads_python_messages() -> None:
    found = name_failure(Evidence(exception="NameError: name 'jsn' is not defined. Did you mean: 'json'?"))
    assert found is not None and (found.kind, found.name, found.suggestion) == ("name", "jsn", "json")
    found = name_failure(Evidence(exception="NameError: name 'json' is not defined. Did you forget to import 'json'?"))
    assert found is not None and (found.name, found.suggestion) == ("json", "json")  # Python 3.12+
    found = name_failure(Evidence(exception="AttributeError: module 'pyspark.sql.functions' has no attribute "
                                            "'to_dat'. Did you mean: 'to_date'?"))
    assert found is not None and (found.owner_module, found.name, found.suggestion) == (
        "pyspark.sql.functions", "to_dat", "to_date")
    found = name_failure(Evidence(exception="AttributeError: 'DataFrameWriter' object has no attribute "
                                            "'saveAsTabel'. Did you mean: 'saveAsTable'?"))
    assert found is not None and (found.owner_type, found.suggestion) == ("DataFrameWriter", "saveAsTable")
    # In a Python worker's traceback (a UDF) the line is among the key lines, after the Java wrapper.
    found = name_failure(Evidence(
        exception="pyspark.errors.exceptions.captured.PythonException: An exception was thrown from the Python worker:",
        key_lines=["NameError: name 're' is not defined"]))
    assert found is not None and found.name == "re" and found.suggestion is None
    assert name_failure(Evidence(exception="KeyError: 'revenue'")) is None
    assert edit_distance("avgg", "agg") == edit_distance("avgg", "avg") == 1


# --- P101 on real Spark logs ------------------------------------------------------------------------


def test_misspelt_variable_is_renamed_in_the_function_and_the_f_string() -> None:
    log = load_spark_log("python_names_misspelt")
    evidence = evidence_of(log)
    assert evidence.user_line == 16
    patch = _heal(evidence, log.code, "python-name-suggestion", file="python_names_misspelt.py")
    # The same missing global, read twice: in the function that failed and in an f-string's SQL.
    assert changed_lines(log.code, patch.code or "") == [
        '-    kept = df.where(F.col("quantity") >= minimum_quantiy)',
        '+    kept = df.where(F.col("quantity") >= minimum_quantity)',
        '-spark.sql(f"SELECT method, quantity FROM payments WHERE quantity >= {minimum_quantiy}").show()',
        '+spark.sql(f"SELECT method, quantity FROM payments WHERE quantity >= {minimum_quantity}").show()',
    ]


def test_ambiguous_suggestion_is_diagnosed_but_not_fixed() -> None:
    # Python suggests `agg` for `.avgg`, but `avg` is as close (and was meant): no safe answer.
    log = load_spark_log("python_names_attribute")
    evidence = evidence_of(log)
    diagnosis = diagnose_by_rules(evidence, log.code)
    assert diagnosis is not None and diagnosis.rule == "python-name-suggestion"
    assert diagnosis.confidence < 0.75 and "`avg`" in diagnosis.root_cause
    assert fix_by_rules(diagnosis, evidence, log.code, {"file": "python_names_attribute.py"}) is None


def test_key_error_is_not_a_name_rule() -> None:
    log = load_spark_log("python_keyerror")
    assert name_failure(evidence_of(log)) is None


# --- P101 on other code shapes ---------------------------------------------------------------------


def test_module_attribute_is_renamed_wherever_the_same_import_is_used() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import functions as F
        from pyspark.sql import functions as G

        events = spark.table("raw.events")
        daily = (
            events.withColumn("day", F.to_dat("event_ts"))  # the day of the event
            .groupBy("day")
            .count()
        )
        late = events.where(F.to_dat("event_ts") > F.lit("2024-01-01"))
        other = events.select(G.to_dat("event_ts"))
        ''')
    message = "AttributeError: module 'pyspark.sql.functions' has no attribute 'to_dat'. Did you mean: 'to_date'?"
    patch = _heal(_error(message, 6), code, "python-name-suggestion")
    assert changed_lines(code, patch.code or "") == [
        '-    events.withColumn("day", F.to_dat("event_ts"))  # the day of the event',
        '+    events.withColumn("day", F.to_date("event_ts"))  # the day of the event',
        '-late = events.where(F.to_dat("event_ts") > F.lit("2024-01-01"))',
        '+late = events.where(F.to_date("event_ts") > F.lit("2024-01-01"))',
    ]  # G is another import: its run would say so itself


def test_method_on_a_pyspark_object_in_a_chain() -> None:
    code = textwrap.dedent('''\
        def publish(report, table):
            (
                report.write.mode("overwrite")
                .partitionby("day")
                .saveAsTable(table)
            )
            report.write.partitionby("day").saveAsTable(table + "_copy")
        ''')
    message = "AttributeError: 'DataFrameWriter' object has no attribute 'partitionby'. Did you mean: 'partitionBy'?"
    patch = _heal(_error(message, 4, "publish"), code, "python-name-suggestion")
    # Only the failing line: the other object's type is not known without running the code.
    assert changed_lines(code, patch.code or "") == ['-        .partitionby("day")', '+        .partitionBy("day")']


def test_python_object_method_and_misspelt_module_alias() -> None:
    code = 'import json\n\n\ndef label(row):\n    return json.dumps({"name": row.name.uper()})\n'
    message = "AttributeError: 'str' object has no attribute 'uper'. Did you mean: 'upper'?"
    patch = _heal(_error(message, 5, "label"), code, "python-name-suggestion")
    assert "row.name.upper()" in (patch.code or "")

    code = 'import json\n\nrows = [{"a": 1}]\nprint(jsn.dumps(rows))\n'
    patch = _heal(_error("NameError: name 'jsn' is not defined. Did you mean: 'json'?", 4), code,
                  "python-name-suggestion")
    assert changed_lines(code, patch.code or "") == ["-print(jsn.dumps(rows))", "+print(json.dumps(rows))"]


def test_name_rename_keeps_other_bindings_of_the_same_spelling() -> None:
    code = textwrap.dedent('''\
        def revenue(df):
            total = df.agg({"amount": "sum"}).first()[0]
            return round(totl, 2)


        def other(values):
            totl = sum(values)  # a local of its own: not the missing name
            return totl


        print(totl)
        ''')
    message = "NameError: name 'totl' is not defined. Did you mean: 'total'?"
    patch = _heal(_error(message, 3, "revenue"), code, "python-name-suggestion")
    # Only the read where `total` is visible; the other function's local and the module-level read stay.
    assert changed_lines(code, patch.code or "") == ["-    return round(totl, 2)", "+    return round(total, 2)"]


@pytest.mark.parametrize(("code", "message", "line"), [
    # the suggestion is an attribute of the user's own class, outside the vocabulary a fix may use
    ("class Settings:\n    output = 'x'\n\n\ns = Settings()\nprint(s.ouput)\n",
     "AttributeError: 'Settings' object has no attribute 'ouput'. Did you mean: 'output'?", 6),
    # the module has no such member (a message from another version of the module)
    ("from pyspark.sql import functions as F\nx = F.colum('a')\n",
     "AttributeError: module 'pyspark.sql.functions' has no attribute 'colum'. Did you mean: 'colum_x'?", 2),
    # the suggested name is not bound in this file
    ("print(totl)\n", "NameError: name 'totl' is not defined. Did you mean: 'total'?", 1),
])
def test_suggestion_that_does_not_exist_is_not_applied(code: str, message: str, line: int) -> None:
    evidence = _error(message, line)
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == "python-name-suggestion" and diagnosis.confidence < 0.75
    assert fix_by_rules(diagnosis, evidence, code, {"file": "job.py"}) is None


def test_no_fix_without_the_failing_reference_in_the_application_file() -> None:
    code = "w = spark.range(3).write\nw.saveAsTabel('a'); w.saveAsTabel('b')\n"
    message = "AttributeError: 'DataFrameWriter' object has no attribute 'saveAsTabel'. Did you mean: 'saveAsTable'?"
    evidence = _error(message, 2)
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == "python-name-suggestion"
    assert fix_by_rules(diagnosis, evidence, code, {"file": "job.py"}) is None  # two on the line: which one?
    code = "w = spark.range(3).write\nw.saveAsTabel('a')\n"
    assert fix_by_rules(diagnosis, evidence, code, {"file": "job.py"}) is not None
    # The traceback's frame is in another file (a helper module): its line says nothing here.
    elsewhere = _error(message, 2, file="helpers.py")
    assert fix_by_rules(diagnosis, elsewhere, code, {"file": "job.py"}) is None


# --- P102 on a real Spark log -------------------------------------------------------------------------


def test_missing_function_import_joins_the_existing_from_import() -> None:
    log = load_spark_log("python_names_missing_import")
    evidence = evidence_of(log)
    patch = _heal(evidence, log.code, "missing-import", file="python_names_missing_import.py")
    assert changed_lines(log.code, patch.code or "") == [
        "-from pyspark.sql.functions import lit", "+from pyspark.sql.functions import lit, col"]


# --- P102 on other code shapes ----------------------------------------------------------------------


def test_functions_alias_in_the_files_import_style() -> None:
    code = textwrap.dedent('''\
        """Nightly stock levels."""
        import sys

        import pyspark.sql.types as T
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        schema = T.StructType([T.StructField("sku", T.StringType())])
        stock = spark.createDataFrame([("a",)], schema).withColumn("day", F.current_date())
        stock.where(F.col("sku").isNotNull()).write.saveAsTable(sys.argv[1])
        ''')
    patch = _heal(_error("NameError: name 'F' is not defined", 9), code, "missing-import")
    assert changed_lines(code, patch.code or "") == ["+import pyspark.sql.functions as F"]
    assert patch.code.index("import pyspark.sql.functions as F") > patch.code.index("from pyspark.sql import SparkSession")

    plain = code.replace("import pyspark.sql.types as T\n", "from pyspark.sql import types as T\n")
    patch = _heal(_error("NameError: name 'F' is not defined", 9), plain, "missing-import")
    assert changed_lines(plain, patch.code or "") == ["+from pyspark.sql import functions as F"]


def test_missing_module_in_a_udf_goes_after_the_docstring_when_there_are_no_imports() -> None:
    code = textwrap.dedent('''\
        """Clean phone numbers."""
        # (spark comes from the notebook's session)


        @udf("string")
        def digits(phone):
            return re.sub(r"\\D", "", phone or "")


        spark.table("crm.contacts").select(digits("phone")).show()
        ''')
    evidence = Evidence(
        exception="pyspark.errors.exceptions.captured.PythonException: An exception was thrown from the Python worker:",
        user_frame='File "/app/mount/job.py", line 7, in digits', user_line=7,
        key_lines=['File "/app/mount/job.py", line 7, in digits', "NameError: name 're' is not defined"])
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == "missing-import"
    patch = fix_by_rules(diagnosis, evidence, code, {"file": "job.py"})
    assert patch is not None and patch.code is not None
    assert patch.code.splitlines()[:2] == ['"""Clean phone numbers."""', "import re"]


@pytest.mark.parametrize(("uses", "statement"), [
    ("stamp = datetime.now().isoformat()\nlater = datetime.strptime('2024-01-01', '%Y-%m-%d')\n",
     "from datetime import datetime"),
    ("start = datetime.date(2024, 1, 1)\nend = start + datetime.timedelta(days=7)\n", "import datetime"),
])
def test_datetime_as_module_or_class_follows_its_uses(uses: str, statement: str) -> None:
    code = "import sys\n\n" + uses
    patch = _heal(_error("NameError: name 'datetime' is not defined", 3), code, "missing-import")
    assert changed_lines(code, patch.code or "") == [f"+{statement}"]


def test_missing_import_wins_over_a_suggestion_of_another_name() -> None:
    # Python suggests the local `f`, but the uses are members of pyspark.sql.functions.
    code = "from pyspark.sql import SparkSession\n\nf = open\ndf = spark.range(3).select(F.col('id'))\n"
    patch = _heal(_error("NameError: name 'F' is not defined. Did you mean: 'f'?", 4), code, "missing-import")
    assert changed_lines(code, patch.code or "") == ["+from pyspark.sql import functions as F"]


@pytest.mark.parametrize(("code", "message"), [
    # F used with something pyspark.sql.functions does not have: not that F
    ("x = F.not_a_function('a')\n", "NameError: name 'F' is not defined"),
    # a function of pyspark.sql.functions used as a value: perhaps a variable of the same name
    ("print(count + 1)\n", "NameError: name 'count' is not defined"),
    # datetime used both ways
    ("a = datetime.now()\nb = datetime.timedelta(days=1)\n", "NameError: name 'datetime' is not defined"),
    # not in the table: never guessed
    ("df = spark.range(3)\n", "NameError: name 'spark' is not defined"),
])
def test_names_whose_import_is_not_certain_are_left_alone(code: str, message: str) -> None:
    evidence = _error(message, 1)
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is None or diagnosis.rule != "missing-import"
    assert diagnosis is None or fix_by_rules(diagnosis, evidence, code, {"file": "job.py"}) is None


def test_the_import_table_names_only_what_a_fix_may_import() -> None:
    for name, entry in IMPORTS.items():
        assert vocab.module_import_allowed(entry.module), name
        if entry.member is not None:
            assert vocab.module_member_allowed(f"{entry.module}.{entry.member}"), name
        assert entry.kind in ("module", "callable", "class")
    import builtins

    assert not set(IMPORTS) & set(dir(builtins))  # a builtin never raises NameError


def test_a_name_joins_a_parenthesised_import_one_name_a_line() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql.functions import (
            lit,
            to_date,
        )

        df = spark.table("raw.visits").select(to_date("ts").alias("day"), lit(1).alias("n"))
        df.groupBy("day").agg(count("n")).show()
        ''')
    patch = _heal(_error("NameError: name 'count' is not defined", 7), code, "missing-import")
    assert (patch.code or "").startswith("from pyspark.sql.functions import (\n    lit,\n    to_date,\n    count,\n)\n")


def test_classes_are_imported_for_calls_attributes_and_annotations_only() -> None:
    code = "from pyspark.sql import SparkSession\n\n\ndef clean(df: DataFrame) -> DataFrame:\n    return df\n"
    patch = _heal(_error("NameError: name 'DataFrame' is not defined", 4), code, "missing-import")
    assert changed_lines(code, patch.code or "") == ["-from pyspark.sql import SparkSession",
                                                "+from pyspark.sql import SparkSession, DataFrame"]
    # A bare `date` may be a variable the code forgot to set, not datetime.date.
    code = "import sys\n\nfor day in sys.argv[1:]:\n    print(date)\n"
    evidence = _error("NameError: name 'date' is not defined", 4)
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is None or fix_by_rules(diagnosis, evidence, code, {"file": "job.py"}) is None
