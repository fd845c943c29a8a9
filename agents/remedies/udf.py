"""(being written)"""

from __future__ import annotations

from agents.remedies.registry import Rule

RULES: tuple[Rule, ...] = ()
