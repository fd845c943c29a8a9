"""Spark and JVM sizes to bytes and back."""

from __future__ import annotations

import pytest

from agents.errors import InvalidInput
from agents.sizes import format_size, parse_size


def test_sizes() -> None:
    assert parse_size("512m") == 512 * 1024**2
    assert parse_size("2g") == 2 * 1024**3
    assert parse_size("1024.0 B") == 1024
    assert parse_size("27.1 KiB") == int(27.1 * 1024)
    assert format_size(2 * 1024**3) == "2g" and format_size(1536 * 1024**2) == "1536m" and format_size(1000) == "1k"
    with pytest.raises(InvalidInput):
        parse_size("big")
