"""Prompts stay within the token budget: the failing lines are kept when the code is too long."""

from __future__ import annotations

from agents.budget import code_window, room_for_code
from agents.tokens import estimate_tokens

CODE = "\n".join(f"value_{i} = compute({i})  # step {i}" for i in range(1, 2001))


def test_small_code_is_shown_whole():
    code = "import sys\nprint(sys.argv)\n"
    assert code_window(code, 1000, None) == "1| import sys\n2| print(sys.argv)"


def test_long_code_keeps_the_failing_line_within_budget():
    window = code_window(CODE, 300, focus_line=1500)
    assert estimate_tokens(window) <= 300 + 30  # the two "not shown" markers
    assert "1500| value_1500 = compute(1500)" in window
    assert "1499| " in window and "1501| " in window  # context on both sides
    assert window.startswith("... (") and window.endswith("lines below not shown)")
    assert "   1| " not in window


def test_focus_at_the_edges_and_no_focus():
    assert code_window(CODE, 200, focus_line=None).startswith("   1| value_1")
    last = code_window(CODE, 200, focus_line=2000)
    assert "2000| value_2000" in last and "lines below not shown" not in last


def test_room_for_code_counts_the_rest_of_the_prompt():
    assert room_for_code(1000, "x" * 400) == 900
