"""The code a prompt shows: centred on the failure, within the code budget, plus what the model asked for."""

import pytest

from agents.budget import context_note, focus_lines, shown_code
from agents.config import Settings
from agents.errors import PromptTooLarge
from agents.record import Evidence
from agents.tokens import estimate_tokens

# a long module: helpers far from the failure, which is deep inside one function
HELPERS = "".join(f"def helper_{i}(df):\n    return df.withColumn('c{i}', df.a + {i})\n\n\n" for i in range(400))
CODE = ("import sys\n\nfrom pyspark.sql import functions as F\n\nRATE_COLUMN = 'rate'\n\n\n" + HELPERS
        + "def kpis(df):\n    ratio = F.col('spend') / F.col(RATE_COLUMN)\n    return df.select(ratio.alias('r'))\n")
FAILING = CODE.splitlines().index("    ratio = F.col('spend') / F.col(RATE_COLUMN)") + 1


def settings(**env: str) -> Settings:
    return Settings(jobs_api_url="http://cde.example/dex/api/v1",
                    **{k: int(v) for k, v in env.items()})


def test_focus_is_the_failing_expression_then_the_frames_innermost_first():
    evidence = Evidence(user_line=30, user_lines=[10, 20, 30, 44])  # 44: where Spark says the expression was built
    assert focus_lines(evidence) == [44, 30]  # the failing expression and the frame it failed in
    assert focus_lines(Evidence(user_line=7)) == [7]
    assert focus_lines(Evidence()) == []


def test_a_large_file_shows_the_failure_and_what_it_uses_within_the_code_budget():
    config = settings(code_token_budget=200)
    context = shown_code(CODE, Evidence(user_lines=[FAILING]), config, "instructions " * 50)
    assert not context.complete and context.tokens <= 200 and len(CODE.splitlines()) > 1500
    assert "ratio = F.col('spend') / F.col(RATE_COLUMN)" in context.text
    assert "RATE_COLUMN = 'rate'" in context.text  # the constant the failing line uses
    assert "def kpis(df):" in context.text
    note = context_note(context)
    assert f"{context.total_lines} lines in all" in note and "need_lines" in note


def test_lines_the_model_asked_for_are_shown_beyond_the_code_budget():
    config = settings(code_token_budget=120)
    plain = shown_code(CODE, Evidence(user_lines=[FAILING]), config, "")
    asked = shown_code(CODE, Evidence(user_lines=[FAILING]), config, "", requested=[(200, 230)])
    assert "helper_49" not in plain.text
    assert "def helper_49(df):" in asked.text and asked.tokens > plain.tokens
    assert any(a <= 200 and b >= 230 for a, b in asked.shown)


def test_a_small_file_is_shown_whole():
    small = "import sys\nprint(sys.argv)\n"
    context = shown_code(small, Evidence(user_line=2), settings(), "x")
    assert context.complete and context.text == "1| import sys\n2| print(sys.argv)"
    assert context_note(context) == "the whole file, 2 lines, numbered"


def test_a_prompt_too_large_for_any_code_is_an_error():
    config = settings(prompt_token_budget=1500, evidence_token_budget=200, code_token_budget=200)
    with pytest.raises(PromptTooLarge, match="HEAL_PROMPT_TOKEN_BUDGET"):
        shown_code(CODE, Evidence(user_line=FAILING), config, "x" * 4 * 1490)
    room = shown_code(CODE, Evidence(user_line=FAILING), config, "x" * 4 * 1400)  # 100 tokens left
    assert room.tokens <= 100 and estimate_tokens(room.text) == room.tokens


def test_the_diagnosis_shows_half_the_code_and_no_way_to_ask_for_more():
    config = settings(code_token_budget=200)
    half = shown_code(CODE, Evidence(user_lines=[FAILING]), config, "x", share=0.5)
    full = shown_code(CODE, Evidence(user_lines=[FAILING]), config, "x")
    assert half.tokens <= 100 < full.tokens
    assert "ratio = F.col('spend') / F.col(RATE_COLUMN)" in half.text
    assert "need_lines" not in context_note(half, can_ask=False) and "need_lines" in context_note(half)


def test_the_failing_frame_s_definitions_come_before_an_outer_caller_s_statement():
    # a caller far away, with a long header, whose frame is the second focus line
    caller = ("def report(\n" + "".join(f"    option_{i}: int = {i},\n" for i in range(12)) + "):\n"
              "    return kpis(spark.table('t')).collect()\n")
    code = CODE + "\n\n" + caller
    outer = code.splitlines().index("    return kpis(spark.table('t')).collect()") + 1
    context = shown_code(code, Evidence(user_lines=[outer, FAILING]), settings(code_token_budget=90), "x")
    assert "RATE_COLUMN = 'rate'" in context.text  # what the failing line uses, before the caller's header
