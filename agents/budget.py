"""Keeping prompts within `prompt_token_budget` (an offline estimate: no tokenizer downloads)."""

from __future__ import annotations

from agents.prompts import number_lines
from agents.tokens import estimate_tokens


def code_window(code: str, budget_tokens: int, focus_line: int | None) -> str:
    """Numbered code within `budget_tokens`: all of it when it fits, else the lines around the
    failing one (`focus_line`, from the traceback), widened on both sides while they fit."""
    numbered = number_lines(code).splitlines()
    if estimate_tokens("\n".join(numbered)) <= budget_tokens:
        return "\n".join(numbered)
    center = min(max((focus_line or 1) - 1, 0), max(len(numbered) - 1, 0))
    # the "... lines not shown" markers above and below count against the budget too
    used = 2 * (estimate_tokens(f"... ({len(numbered)} lines above not shown)") + 1)
    low, high = center, center
    while low > 0 or high < len(numbered):
        grew = False
        for index in (high, low - 1):  # one line below, then one above
            if 0 <= index < len(numbered) and not (low <= index < high):
                cost = estimate_tokens(numbered[index]) + 1
                if used + cost > budget_tokens:
                    continue
                used += cost
                low, high = min(low, index), max(high, index + 1)
                grew = True
        if not grew:
            break
    shown = numbered[low:high]
    head = [f"... ({low} lines above not shown)"] if low else []
    tail = [f"... ({len(numbered) - high} lines below not shown)"] if high < len(numbered) else []
    return "\n".join(head + shown + tail)


def room_for_code(budget_tokens: int, prompt_without_code: str) -> int:
    """Tokens left for the code once the rest of the prompt is counted."""
    return budget_tokens - estimate_tokens(prompt_without_code)
