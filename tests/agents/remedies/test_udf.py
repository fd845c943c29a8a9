"""P111 udf-null-input: a Python UDF failing on None returns None for it (real log: udf_null)."""

from __future__ import annotations

import ast
import textwrap

from agents.distill import distill
from agents.guard import accepted, check_patch
from agents.record import Evidence
from agents.remedies import diagnose_by_rules, fix_by_rules
from tests.fixtures.agents import changed_lines, load_spark_log


def _worker_failure(app: str, frames: list[tuple[int, str, str]], error: str) -> Evidence:
    """Evidence distilled from a log shaped like the real udf_null capture, with other frames and error."""
    log = load_spark_log("udf_null")
    trace = "".join(f'  File "/app/mount/{app}", line {n}, in {f}\n    {src}\n' for n, f, src in frames)
    stdout = log.stdout.split("Traceback (most recent call last):")[0] + (
        "Traceback (most recent call last):\n"
        f'  File "/app/mount/{app}", line 99, in <module>\n    df.show()\n'
        "pyspark.errors.exceptions.captured.PythonException: An exception was thrown from the Python worker:\n"
        f"Traceback (most recent call last):\n{trace}{error}\n")
    stderr = ("26/11/21 08:54:18 ERROR Executor: Exception in task 0.0 in stage 1.0 (TID 1)\n"
              "org.apache.spark.api.python.PythonException: [PYTHON_EXCEPTION] An exception was thrown from the "
              f"Python worker: Traceback (most recent call last):\n{trace}{error}\n SQLSTATE: 38000\n")
    return distill(stdout, stderr, app_file_name=app)


def _heal(evidence: Evidence, code: str, app: str) -> str:
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and (diagnosis.rule, diagnosis.category) == ("udf-null-input", "code")
    patch = fix_by_rules(diagnosis, evidence, code, {"file": app})
    assert patch is not None and patch.kind == "code" and patch.code and patch.applicability == "changes-results"
    ast.parse(patch.code)
    assert accepted(check_patch(code, patch, job_spark={}))
    return patch.code


def test_decorated_udf_from_the_real_log_returns_none_for_none() -> None:
    log = load_spark_log("udf_null")
    evidence = distill(log.stdout, log.stderr, app_file_name=log.app_file_name)
    new = _heal(evidence, log.code, log.app_file_name)
    assert changed_lines(log.code, new) == ["+    if name is None:", "+        return None"]
    function = next(n for n in ast.parse(new).body if isinstance(n, ast.FunctionDef))
    function.decorator_list = []  # run the function itself, without Spark
    namespace: dict[str, object] = {}
    exec(compile(ast.Module(body=[function], type_ignores=[]), "udf", "exec"), namespace)
    assert namespace["shout"](None) is None and namespace["shout"]("a") == "A!"  # type: ignore[operator]


def test_wrapped_udf_with_two_parameters_guards_only_the_one_subscripted() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession, functions as F
        from pyspark.sql.types import StringType

        spark = SparkSession.builder.getOrCreate()


        def initials(first, last):
            """First letters of both names."""
            return first[0] + last[0]  # fails on NULL last names


        initials_udf = F.udf(initials, StringType())
        spark.table("people").select(initials_udf("first", "last")).show()
        ''')
    evidence = _worker_failure("people.py", [(9, "initials", "return first[0] + last[0]")],
                               "TypeError: 'NoneType' object is not subscriptable")
    new = _heal(evidence, code, "people.py")
    assert changed_lines(code, new) == ["+    if first is None or last is None:", "+        return None"]
    assert new.index('"""First letters') < new.index("if first is None")  # after the docstring
    assert "# fails on NULL last names" in new


def test_registered_udf_failing_in_a_helper_guards_every_parameter() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()


        def clean(text):
            return text.strip().lower()


        def normalise(city, country):
            return clean(city) + "/" + country


        spark.udf.register("normalise", normalise)
        spark.sql("SELECT normalise(city, country) AS place FROM addresses").show()
        ''')
    evidence = _worker_failure("addresses.py", [(11, "normalise", 'return clean(city) + "/" + country'),
                                                (7, "clean", "return text.strip().lower()")],
                               "AttributeError: 'NoneType' object has no attribute 'strip'")
    new = _heal(evidence, code, "addresses.py")
    assert changed_lines(code, new) == ["+    if city is None or country is None:", "+        return None"]


def test_attribute_error_guards_the_parameter_with_that_attribute() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql.functions import udf


        @udf("string")
        def label(code, fallback):
            return code.upper() if fallback else code.lower()
        ''')
    evidence = _worker_failure("labels.py", [(6, "label", "return code.upper() if fallback else code.lower()")],
                               "AttributeError: 'NoneType' object has no attribute 'upper'")
    assert changed_lines(code, _heal(evidence, code, "labels.py")) == ["+    if code is None:", "+        return None"]


def test_pandas_udf_and_other_errors_are_not_fixed() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql.functions import pandas_udf


        @pandas_udf("string")
        def shout(s):
            return s.str.upper()
        ''')
    evidence = _worker_failure("p.py", [(6, "shout", "return s.str.upper()")],
                               "AttributeError: 'NoneType' object has no attribute 'str'")
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and diagnosis.rule == "udf-null-input"
    assert fix_by_rules(diagnosis, evidence, code, {"file": "p.py"}) is None
    # Not a None input: no finding of this rule.
    other = _worker_failure("p.py", [(6, "shout", "return s.str.upper()")], "ZeroDivisionError: division by zero")
    found = diagnose_by_rules(other, code)
    assert found is None or found.rule != "udf-null-input"


def test_a_udf_already_checking_none_is_not_patched_again() -> None:
    code = textwrap.dedent('''\
        from pyspark.sql.functions import udf


        @udf("string")
        def shout(name):
            if name is None:
                return None
            return name.upper()
        ''')
    evidence = _worker_failure("s.py", [(8, "shout", "return name.upper()")],
                               "AttributeError: 'NoneType' object has no attribute 'upper'")
    diagnosis = diagnose_by_rules(evidence, code)
    assert diagnosis is not None and fix_by_rules(diagnosis, evidence, code, {"file": "s.py"}) is None
