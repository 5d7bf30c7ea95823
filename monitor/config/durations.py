"""Durations ("250ms", "30s", "5m", "1h30m", or a number of seconds) and sizes."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
               "gb": 1000**3, "gib": 1024**3}


def parse_duration(value: object) -> float:
    """Seconds from a TOML value; ValueError with a human message otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"30s\", got a boolean")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as \"30s\", got {type(value).__name__}")
    text = value.strip().replace(" ", "")
    if text.startswith("-"):
        raise ValueError(f"duration must not be negative, got \"{value}\"")
    if not text:
        raise ValueError("empty duration")
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(
            f"cannot read \"{value}\" as a duration (use e.g. \"250ms\", \"30s\", \"5m\", \"1h\")")
    return total


def format_duration(seconds: float) -> str:
    """Short human form: 250ms, 30s, 5m, 1h30m."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{u}" for n, u in parts if n) or "0s"


def parse_size(value: object) -> int:
    """Bytes from 65536 or "64KiB"."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as \"64KiB\", got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size must not be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    raise ValueError(f"cannot read {value!r} as a size (use e.g. 65536 or \"64KiB\")")
