"""Durations ("250ms", "30s", "5m", "1h30m", or a number of seconds) and sizes.

Both are refused unless finite and at most a generous ceiling: NaN compares
false with every bound, so it slipped past range checks (`interval = "nan"`
probed a target thousands of times a second), infinity made timers never
fire, and a 400-digit number overflowed the float arithmetic downstream.
Options narrow these ranges further with their own checks."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2,
               "gb": 1000**3, "gib": 1024**3, "tb": 1000**4, "tib": 1024**4}

MAX_DURATION = 365 * 86400.0   # no interval, timeout or delay of a monitor is longer
MAX_SIZE = 1024**4              # 1TiB: far beyond any read limit, still exact in a float
_EXAMPLES = "(use e.g. \"250ms\", \"30s\", \"5m\", \"1h\")"


def parse_duration(value: object, ceiling: float = MAX_DURATION) -> float:
    """Seconds from a TOML value; ValueError with a human message otherwise.
    `ceiling`: the longest accepted (history retention may exceed a year)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"30s\", got a boolean")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            raise ValueError("expected a duration such as \"30s\", got nan")
        if value < 0:
            raise ValueError(f"duration must not be negative, got {show_number(value)}")
        return _at_most_max(value, ceiling)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as \"30s\", got {type(value).__name__}")
    text = value.strip().replace(" ", "")
    if text.startswith("-"):
        raise ValueError(f"duration must not be negative, got \"{value}\"")
    if not text:
        raise ValueError("empty duration")
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isnan(seconds):   # float() reads "nan"; a duration it is not
            raise ValueError(f"cannot read \"{value}\" as a duration {_EXAMPLES}")
        return _at_most_max(seconds, ceiling)
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"cannot read \"{value}\" as a duration {_EXAMPLES}")
    return _at_most_max(total, ceiling)


def _at_most_max(seconds: int | float, ceiling: float = MAX_DURATION) -> float:
    # compared before float(): a 400-digit int does not fit in a float
    if not seconds <= ceiling:
        raise ValueError(f"must be at most {format_duration(ceiling)}")
    return float(seconds)


def format_duration(seconds: float) -> str:
    """Short human form: 250ms, 30s, 5m, 1h30m. Never raises, whatever the
    number: messages about bad values are built with it."""
    if math.isnan(seconds):
        return "nan"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if math.isinf(seconds):
        return "infinity"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds >= 1000 * MAX_DURATION:   # whole days would run to hundreds of digits
        return f"{seconds / 86400:.3g}d"
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
            raise ValueError(f"size must not be negative, got {show_number(value)}")
        return _size_at_most_max(value)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            number = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
            return _size_at_most_max(number)
    raise ValueError(f"cannot read {value!r} as a size (use e.g. 65536 or \"64KiB\")")


def _size_at_most_max(size: int | float) -> int:
    if not size <= MAX_SIZE:   # also infinity: float() of 400 digits
        raise ValueError("must be at most 1TiB")
    return int(size)


def show_number(value: int | float) -> str:
    """A number for a message. A 400-digit one is not worth echoing (and
    int -> str refuses past 4,300 digits); floats in short form."""
    if isinstance(value, int) and abs(value) >= 10**15:
        digits = len(str(abs(value))) if value.bit_length() <= 14_000 else "thousands of"
        return f"a number with {digits} digits"
    return f"{value:g}" if isinstance(value, float) else str(value)
