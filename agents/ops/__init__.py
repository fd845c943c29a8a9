"""Operators' questions in plain language over the run history (`python -m app ask "..."`).

`tools.py` (the SQL query tools and the windows table), `patterns.py` (the questions answered
without a model), `ask.py` (`ask`: a model's or a pattern's tool choice, validated, run, answered).
"""

from agents.ops.ask import Answer, ToolChoice, ask, check_question
from agents.ops.tools import TOOLS, ToolResult, run_tool

__all__ = ["TOOLS", "Answer", "ToolChoice", "ToolResult", "ask", "check_question", "run_tool"]
