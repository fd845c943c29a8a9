"""The model's patch as edits: search/replace and line ranges, applied all-or-nothing."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from agents.edits import MAX_EDITS, Edit, apply_edits, edits_from_files
from agents.errors import EditsDoNotApply, InvalidInput
from agents.prompts import number_lines
from tests.paths import FIXES_DIR, REPO

JOB = '''\
from pyspark.sql import SparkSession, functions as F


def load(spark, path):
    df = spark.read.parquet(path)
    return df


def totals(df):
    for name in ["a", "b"]:
        if name in df.columns:
            df = df.withColumn(name, F.col(name) / F.col("n"))
    return df


def main():
    spark = SparkSession.builder.getOrCreate()
    df = load(spark, "in")
    totals(df).write.mode("overwrite").saveAsTable("out")
    return df


if __name__ == "__main__":
    main()
'''


def problems(code: str, edits: list[Edit]) -> list[str]:
    with pytest.raises(EditsDoNotApply) as caught:
        apply_edits(code, edits)
    return caught.value.problems


def numbered(code: str, first: int, last: int) -> str:
    """Lines first..last of the numbered view the prompt shows, as a model copies them."""
    return "\n".join(number_lines(code).splitlines()[first - 1:last]) + "\n"


# --- original: search/replace ------------------------------------------------------------------


def test_an_original_is_replaced_in_place() -> None:
    out = apply_edits(JOB, [Edit(original='    df = spark.read.parquet(path)\n',
                                 replacement='    df = spark.read.parquet(path).dropna()\n')])
    assert out == JOB.replace("read.parquet(path)\n", "read.parquet(path).dropna()\n")


def test_a_multi_line_original_in_a_nested_block() -> None:
    original = '''\
        if name in df.columns:
            df = df.withColumn(name, F.col(name) / F.col("n"))
'''
    replacement = '''\
        if name in df.columns:
            df = df.withColumn(name, F.try_divide(F.col(name), F.col("n")))
'''
    assert apply_edits(JOB, [Edit(original=original, replacement=replacement)]) == JOB.replace(original, replacement)


def test_line_number_prefixes_are_stripped_from_original_and_replacement() -> None:
    original = numbered(JOB, 5, 6)
    assert original.startswith(" 5|     df")
    replacement = " 5|     df = spark.read.parquet(path)\n 6|     return df.dropna()\n"
    out = apply_edits(JOB, [Edit(original=original, replacement=replacement)])
    assert out == JOB.replace("    return df\n\n\ndef totals", "    return df.dropna()\n\n\ndef totals")


def test_line_number_prefixes_also_pick_the_occurrence() -> None:
    # "    return df" is on lines 6, 13 and 20; the copied numbers say which one is meant
    assert JOB.count("    return df\n") == 3
    out = apply_edits(JOB, [Edit(original=numbered(JOB, 20, 20), replacement="    return None\n")])
    assert out.splitlines()[19] == "    return None"
    assert out.count("    return df\n") == 2


def test_a_replacement_keeps_text_that_only_looks_numbered_when_not_every_line_is() -> None:
    out = apply_edits(JOB, [Edit(original="    return df\n\n\ndef totals(df):\n",
                                 replacement="    return df\n\n\n1| table = 1\ndef totals(df):\n")])
    assert "\n1| table = 1\ndef totals" in out


def test_trailing_whitespace_and_final_newline_differences_are_tolerated() -> None:
    original = '    spark = SparkSession.builder.getOrCreate()   \n    df = load(spark, "in")'  # no final newline
    out = apply_edits(JOB, [Edit(original=original, replacement='    spark = SparkSession.builder.getOrCreate()\n'
                                                                   '    df = load(spark, "input")\n\n')])
    assert out == JOB.replace('load(spark, "in")\n', 'load(spark, "input")\n\n')


def test_blank_lines_around_an_original_are_dropped_around_the_replacement_too() -> None:
    # the file has one blank line between these two; the model wrapped its block in blank lines
    code = "x = 1\ny = 2\n\nz = 3\n"
    out = apply_edits(code, [Edit(original="\n\ny = 2\n\n\n", replacement="\n\ny = 20\n\n\n")])
    assert out == "x = 1\ny = 20\n\nz = 3\n"


def test_blank_lines_of_an_original_that_are_in_the_file_are_replaced_with_it() -> None:
    out = apply_edits(JOB, [Edit(original="    return df\n\n\ndef totals(df):\n",
                                 replacement="    return df\n\ndef totals(df):\n")])
    assert out == JOB.replace("    return df\n\n\ndef totals", "    return df\n\ndef totals")


def test_an_original_indented_less_than_the_file_is_found_and_the_replacement_reindented() -> None:
    out = apply_edits(JOB, [Edit(original='if name in df.columns:\n    df = df.withColumn(name, F.col(name) / F.col("n"))\n',
                                 replacement='if name in df.columns:\n    df = df.withColumn(name, F.col(name))\n'
                                             'else:\n    pass\n')])
    assert ('        if name in df.columns:\n            df = df.withColumn(name, F.col(name))\n'
            '        else:\n            pass\n') in out


def test_an_original_indented_more_than_the_file_is_found_and_the_replacement_dedented() -> None:
    code = "def f():\n    return 1\n\nx = f()\n"
    out = apply_edits(code, [Edit(original="    x = f()\n", replacement="    x = f() + 1\n    y = x\n")])
    assert out == "def f():\n    return 1\n\nx = f() + 1\ny = x\n"


def test_a_replacement_that_cannot_be_dedented_like_its_original_is_an_error() -> None:
    code = "def f():\n    return 1\n\nx = f()\n"
    [problem] = problems(code, [Edit(original="    x = f()\n", replacement="x = f() + 1\n")])
    assert problem.startswith("edit 1: its original lines are indented 4 more")


def test_an_indentation_difference_that_is_not_uniform_is_not_found() -> None:
    [problem] = problems(JOB, [Edit(original='if name in df.columns:\n  df = df.withColumn(name, F.col(name) / F.col("n"))\n',
                                    replacement="pass\n")])
    assert problem.endswith("not in the file (first line: 'if name in df.columns:'); "
                            "lines 11-12 differ from them only in indentation; copy them exactly from the file")


def test_an_original_not_in_the_file_names_the_nearest_lines() -> None:
    [problem] = problems(JOB, [Edit(original='    df = spark.read.parquet(path)\n    return df.cache()\n',
                                    replacement="    pass\n")])
    assert problem.startswith("edit 1: its original lines are not in the file "
                              "(first line: 'df = spark.read.parquet(path)')")
    assert "the nearest are lines 5-6, where line 6 reads 'return df'" in problem


def test_an_original_with_nothing_near_says_so_without_a_guess() -> None:
    [problem] = problems(JOB, [Edit(original="import numpy as np\n", replacement="")])
    assert "not in the file (first line: 'import numpy as np')" in problem
    assert "nearest" not in problem


def test_an_original_found_several_times_names_the_lines() -> None:
    [problem] = problems(JOB, [Edit(original="    return df\n", replacement="    return None\n")])
    assert problem == ("edit 1: its original lines occur 3 times (at lines 6, 13, 20); "
                       "give start_line/end_line or more lines around the change")


def test_an_original_must_match_whole_lines() -> None:
    [problem] = problems(JOB, [Edit(original="spark.read.parquet", replacement="spark.read.csv")])
    assert "not in the file" in problem


# --- line ranges -------------------------------------------------------------------------------


def test_a_range_alone_replaces_those_lines() -> None:
    out = apply_edits(JOB, [Edit(start_line=5, end_line=6, replacement="    return spark.read.parquet(path)\n")])
    assert "    return spark.read.parquet(path)\n\n\ndef totals" in out
    assert "df = spark.read.parquet" not in out


def test_end_line_defaults_to_start_line() -> None:
    out = apply_edits(JOB, [Edit(start_line=1, replacement="from pyspark.sql import SparkSession\n"
                                                            "from pyspark.sql import functions as F\n")])
    assert out.splitlines()[:3] == ["from pyspark.sql import SparkSession", "from pyspark.sql import functions as F", ""]
    assert out.count("\n") == JOB.count("\n") + 1


def test_inserting_repeats_the_anchor_line() -> None:
    out = apply_edits(JOB, [Edit(start_line=16, replacement="def main():\n    \"\"\"Entry point.\"\"\"\n")])
    assert 'def main():\n    """Entry point."""\n    spark = ' in out


def test_an_empty_replacement_deletes() -> None:
    out = apply_edits(JOB, [Edit(start_line=20, end_line=20, replacement="")])
    assert out == JOB.replace('    totals(df).write.mode("overwrite").saveAsTable("out")\n    return df\n',
                              '    totals(df).write.mode("overwrite").saveAsTable("out")\n')


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (0, 2, "edit 1: lines 0-2 are outside the file (lines 1-24); give 1 <= start_line <= end_line <= 24"),
        (24, 25, "edit 1: lines 24-25 are outside the file (lines 1-24)"),
        (30, None, "edit 1: line 30 is outside the file (lines 1-24)"),
        (7, 5, "edit 1: start_line 7 is after end_line 5"),
        (None, 5, "edit 1: end_line without start_line; give start_line too"),
    ],
)
def test_a_bad_range_is_an_error(start: int | None, end: int | None, message: str) -> None:
    assert JOB.count("\n") == 24
    [problem] = problems(JOB, [Edit(start_line=start, end_line=end, replacement="x\n")])
    assert problem.startswith(message)


def test_a_range_picks_which_occurrence_of_the_original() -> None:
    out = apply_edits(JOB, [Edit(original="    return df\n", start_line=20, replacement="    return None\n")])
    assert out.splitlines()[19] == "    return None"
    assert out.count("    return df\n") == 2


def test_a_range_off_by_a_line_still_finds_the_original_it_covers() -> None:
    out = apply_edits(JOB, [Edit(original="    return df\n", start_line=19, end_line=20, replacement="    return None\n")])
    assert out.splitlines()[18:20] == ['    totals(df).write.mode("overwrite").saveAsTable("out")', "    return None"]


def test_a_range_that_does_not_hold_the_original_names_what_is_there() -> None:
    [problem] = problems(JOB, [Edit(original="    return df\n", start_line=10, end_line=11, replacement="")])
    assert problem == ("edit 1: its original lines are not at lines 10-11 (line 10 reads "
                       "'for name in [\"a\", \"b\"]:'; they are at line 6, 13, 20); fix start_line/end_line or the original")


def test_an_edit_with_neither_original_nor_range_is_an_error() -> None:
    assert problems(JOB, [Edit(original="\n  \n", replacement="x = 1\n")]) == [
        "edit 1: give its original lines (copied from the file) or start_line/end_line"]


# --- several edits -----------------------------------------------------------------------------


def test_edits_use_the_original_line_numbers_and_apply_bottom_up() -> None:
    out = apply_edits(JOB, [
        Edit(start_line=1, replacement="import sys\nfrom pyspark.sql import SparkSession, functions as F\n"),
        Edit(start_line=23, end_line=24, replacement='if __name__ == "__main__":\n    sys.exit(main())\n'),
        Edit(original='    df = load(spark, "in")\n', replacement='    df = load(spark, sys.argv[1])\n'),
    ])
    lines = out.splitlines()
    assert lines[0] == "import sys"
    assert lines[18] == "    df = load(spark, sys.argv[1])"
    assert lines[-1] == "    sys.exit(main())"
    assert len(lines) == 25


def test_overlapping_edits_are_an_error_naming_both() -> None:
    found = problems(JOB, [
        Edit(start_line=9, end_line=12, replacement="def totals(df):\n"),
        Edit(start_line=3, replacement="\n"),
        Edit(original='            df = df.withColumn(name, F.col(name) / F.col("n"))\n', replacement="            pass\n"),
    ])
    assert found == ["edits 1 and 3 overlap (lines 9-12 and line 12); merge them into one edit"]


def test_adjacent_edits_do_not_overlap() -> None:
    out = apply_edits(JOB, [Edit(start_line=5, replacement="    df = spark.table(path)\n"),
                            Edit(start_line=6, replacement="    return df.dropna()\n")])
    assert "    df = spark.table(path)\n    return df.dropna()\n" in out


def test_every_problem_of_every_edit_is_raised_together_and_nothing_applies() -> None:
    with pytest.raises(EditsDoNotApply) as caught:
        apply_edits(JOB, [
            Edit(start_line=1, replacement="import sys\n"),  # fine on its own
            Edit(original="    return df\n", replacement=""),
            Edit(start_line=99, replacement=""),
            Edit(replacement="x\n"),
        ])
    error = caught.value
    assert [p.split(":")[0] for p in error.problems] == ["edit 2", "edit 3", "edit 4"]
    assert str(error) == "\n".join(error.problems)
    assert isinstance(error, InvalidInput)


def test_no_edits_and_too_many_edits_are_errors() -> None:
    assert problems(JOB, []) == ["no edits given; give at least one"]
    lines = [Edit(start_line=i, replacement=f"# line {i}\n") for i in range(1, MAX_EDITS + 2)]
    assert problems(JOB, lines) == [f"{MAX_EDITS + 1} edits; at most {MAX_EDITS}: merge neighbouring ones"]
    assert apply_edits(JOB, lines[:MAX_EDITS]).startswith("# line 1\n")


def test_edits_that_change_nothing_are_an_error() -> None:
    assert problems(JOB, [Edit(original="def load(spark, path):\n", replacement="def load(spark, path):\n"),
                          Edit(start_line=1, replacement=JOB.splitlines()[0])]) == [
        "the edits change nothing; the replacement must differ from the original lines"]


# --- line endings ------------------------------------------------------------------------------


def test_a_crlf_file_keeps_crlf_on_new_and_old_lines() -> None:
    code = JOB.replace("\n", "\r\n")
    out = apply_edits(code, [Edit(original="    df = spark.read.parquet(path)\n    return df\n",
                                  replacement="    df = spark.read.parquet(path)\n    df = df.dropna()\n    return df\n")])
    assert out == code.replace("    return df\r\n\r\n\r\ndef totals",
                               "    df = df.dropna()\r\n    return df\r\n\r\n\r\ndef totals")
    assert "\n" not in out.replace("\r\n", "")


def test_a_file_without_final_newline_keeps_none() -> None:
    code = "a = 1\nb = 2"
    assert apply_edits(code, [Edit(original="b = 2\n", replacement="b = 3\nc = 4\n")]) == "a = 1\nb = 3\nc = 4"
    assert apply_edits(code, [Edit(start_line=2, replacement="")]) == "a = 1"
    assert apply_edits(code, [Edit(start_line=1, replacement="a = 0")]) == "a = 0\nb = 2"


def test_a_file_with_final_newline_keeps_it_whatever_the_replacement_ends_with() -> None:
    assert apply_edits("a = 1\nb = 2\n", [Edit(start_line=2, replacement="b = 3")]) == "a = 1\nb = 3\n"


def test_a_form_feed_inside_a_line_does_not_split_it() -> None:
    code = 'SEP = "\x0c"\nx = 1\n'
    assert apply_edits(code, [Edit(start_line=2, replacement="x = 2\n")]) == 'SEP = "\x0c"\nx = 2\n'


# --- what the model sees -----------------------------------------------------------------------


def test_every_field_is_described_briefly_in_the_schema() -> None:
    schema = Edit.model_json_schema()
    assert schema["required"] == ["replacement"]
    for name in ("original", "start_line", "end_line", "replacement"):
        description = schema["properties"][name]["description"]
        assert 10 < len(description) <= 100, name


# --- edits from two files ----------------------------------------------------------------------


def fix_pairs() -> list[tuple[Path, Path]]:
    pairs = [(REPO / "sample_jobs" / fixed.parent.name / fixed.name, fixed) for fixed in sorted(FIXES_DIR.glob("*/*.py"))]
    return [(broken, fixed) for broken, fixed in pairs if broken.is_file()]


def test_the_repository_has_fix_pairs() -> None:
    assert len(fix_pairs()) >= 10


@pytest.mark.parametrize(("broken", "fixed"), fix_pairs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_edits_from_files_round_trip_every_known_fix(broken: Path, fixed: Path) -> None:
    before, after = broken.read_text(encoding="utf-8"), fixed.read_text(encoding="utf-8")
    edits = edits_from_files(before, after)
    assert edits
    assert apply_edits(before, edits) == after
    for edit in edits:
        assert before.count(edit.original) == 1
        assert edit.start_line is None and edit.end_line is None


def test_edits_from_files_are_small_and_widened_until_unique() -> None:
    before = "x = 1\nprint(x)\nx = 1\nprint(x)\ny = 2\n"
    after = "x = 1\nprint(x)\nx = 1\nprint(x + 1)\ny = 2\n"
    [edit] = edits_from_files(before, after, context=0)
    assert edit.original == "print(x)\ny = 2\n"  # "print(x)" alone occurs twice
    assert edit.replacement == "print(x + 1)\ny = 2\n"
    [edit] = edits_from_files(before, after, context=1)
    assert edit.original == "x = 1\nprint(x)\ny = 2\n"
    assert apply_edits(before, [edit]) == after


def test_edits_from_files_merges_changes_whose_context_would_overlap() -> None:
    before = "a\nb\nc\nd\ne\nf\ng\n"
    edits = edits_from_files(before, "a\nB\nc\nD\ne\nf\ng\n", context=1)
    assert [e.original for e in edits] == ["a\nb\nc\nd\ne\n"]
    edits = edits_from_files(before, "A\nb\nc\nd\ne\nf\nG\n", context=1)
    assert [e.original for e in edits] == ["a\nb\n", "f\ng\n"]


def test_edits_from_files_of_equal_files_is_empty_and_an_empty_file_cannot_be_edited() -> None:
    assert edits_from_files(JOB, JOB) == []
    with pytest.raises(InvalidInput):
        edits_from_files("", "x = 1\n")
    with pytest.raises(InvalidInput):
        edits_from_files(JOB, JOB + "x = 1\n", context=-1)


def mutate(lines: list[str], rng: random.Random) -> list[str]:
    """A few changed lines, as a fix makes them: rewritten, deleted, inserted (often copies), moved."""
    out = list(lines)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(out))
        kind = rng.choice(["rewrite", "delete", "insert", "copy", "blank", "move"])
        if kind == "rewrite":
            out[i] = out[i] + "  # changed" if out[i].strip() else "    pass"
        elif kind == "delete" and len(out) > 1:
            del out[i]
        elif kind == "insert":
            out.insert(i, _indent(out[i]) + f"value_{rng.randrange(1000)} = None")
        elif kind == "copy":
            out.insert(i, rng.choice(out))  # a line that already occurs: ")" or a blank line, often
        elif kind == "blank":
            out.insert(i, "")
        elif kind == "move" and len(out) > 1:
            out.insert(rng.randrange(len(out)), out.pop(i))
    return out


def _indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip())]


SAMPLE_JOBS = sorted((REPO / "sample_jobs").glob("*/*.py"))


def test_edits_from_files_round_trip_random_changes_of_real_jobs() -> None:
    assert len(SAMPLE_JOBS) >= 20
    rng = random.Random(20250611)
    checked = 0
    for trial in range(300):
        path = SAMPLE_JOBS[trial % len(SAMPLE_JOBS)]
        before = path.read_text(encoding="utf-8")
        after = "\n".join(mutate(before.splitlines(), rng)) + "\n"
        if trial % 5 == 0:  # CRLF files round-trip too
            before, after = before.replace("\n", "\r\n"), after.replace("\n", "\r\n")
        if after == before:
            continue
        context = trial % 3
        edits = edits_from_files(before, after, context=context)
        assert apply_edits(before, edits) == after, (path.name, trial, context)
        checked += 1
    assert checked > 250
