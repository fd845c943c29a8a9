"""Keeping prompts within their budgets (an offline estimate: no tokenizer downloads).

The code a prompt shows is the failure's context (`agents/context.py`: the failing statements, the
definitions they use, the imports) within HEAL_CODE_TOKEN_BUDGET whatever the file's size, plus the
lines the model asked to see, all within what HEAL_PROMPT_TOKEN_BUDGET leaves beside the rest of
the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from agents.context import CodeContext, code_context
from agents.errors import PromptTooLarge
from agents.tokens import estimate_tokens

if TYPE_CHECKING:
    from agents.config import Settings
    from agents.record import Evidence

MIN_CODE_TOKENS = 40  # below this the failing statement itself would not fit: the prompt is too large
# Focus lines given to the context: the failing expression and the frame it failed in. Outer frames
# (main → run_pipeline → build_outputs → ...) would take the budget from the failing function's own
# header and the definitions it uses, which say more; the model can ask for them.
MAX_FOCUS_LINES = 2
# The diagnosis needs the failing lines and what is next to them; the patch also the definitions
# they use. So the diagnosis prompt shows code within this share of HEAL_CODE_TOKEN_BUDGET.
DIAGNOSIS_CODE_SHARE = 0.5


def focus_lines(evidence: Evidence) -> list[int]:
    """Where the code shown is centred, most important first: the line where Spark says the failing
    expression was built, then the traceback's frames in the application file, innermost first
    (MAX_FOCUS_LINES of them)."""
    lines = list(reversed(evidence.user_lines))
    if not lines and evidence.user_line:
        lines = [evidence.user_line]
    return lines[:MAX_FOCUS_LINES]


def shown_code(code: str, evidence: Evidence, settings: Settings, prompt_without_code: str,
               requested: Sequence[tuple[int, int]] = (), *, share: float = 1.0) -> CodeContext:
    """The excerpt of `code` the prompt shows, within `share` of the code budget. Raises
    PromptTooLarge when the rest of the prompt leaves no room for even the failing statement."""
    room = settings.prompt_token_budget - estimate_tokens(prompt_without_code)
    if room < MIN_CODE_TOKENS:
        raise PromptTooLarge(
            f"the prompt without any code is about {estimate_tokens(prompt_without_code)} tokens, over the budget "
            f"of {settings.prompt_token_budget} (HEAL_PROMPT_TOKEN_BUDGET)")
    lines = code.splitlines()
    asked = sum(estimate_tokens("\n".join(lines[max(a, 1) - 1:b])) + 2 * (b - a + 1) for a, b in requested)
    budget = max(MIN_CODE_TOKENS, int(settings.code_token_budget * share))
    return code_context(code, focus_lines(evidence), min(room, budget + asked), requested)


def context_note(context: CodeContext, *, can_ask: bool = True) -> str:
    """What the prompt says about the code it shows (and, where the answer can ask for lines, how)."""
    if context.complete:
        return f"the whole file, {context.total_lines} lines, numbered"
    return (f"{context.total_lines} lines in all; shown, numbered: "
            + ", ".join(f"{a}–{b}" if a != b else str(a) for a, b in context.shown)
            + ("; ask with `need_lines` for others" if can_ask else ""))
