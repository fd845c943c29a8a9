"""Token estimates for prompt budgets, offline: no tokenizer (tiktoken downloads its files at run time)."""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 4  # about four characters a token, for the English and code of our prompts


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def chars_for(tokens: int) -> int:
    """How many characters fit in `tokens`."""
    return tokens * CHARS_PER_TOKEN
