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
