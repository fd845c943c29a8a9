"""Spark and JVM memory sizes ("512m", "2g") to bytes and back."""

from __future__ import annotations

import re

from agents.errors import InvalidInput

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.I)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_size(text: str | int) -> int:
    """Bytes in a Spark/JVM size: "512m", "2g", "1024k", "1024.0 B", "27.1 KiB". Plain numbers are bytes."""
    if isinstance(text, bool):
        raise InvalidInput(f"not a size: {text!r}")
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise InvalidInput(f"not a size: {text!r} (expected e.g. 512m, 2g)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size: int) -> str:
    """The shortest whole Spark size string at least ``size`` bytes: 2g, 1536m, 64k."""
    for unit in ("g", "m", "k"):
        factor = _UNITS[unit]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    for unit in ("m", "k"):
        factor = _UNITS[unit]
        if size >= factor:
            return f"{-(-size // factor)}{unit}"
    return f"{-(-size // 1024)}k"
