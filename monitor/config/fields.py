"""Declarative config fields: each probe kind declares its options as a
dataclass whose fields carry a converter, so the loader can validate every kind
the same way (types, ranges, unknown keys) and report all problems at once."""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import ipaddress
import math
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.config.durations import format_duration, parse_duration, parse_size, show_number

Converter = Callable[[Any], Any]
Check = Callable[[Any], "str | None"]
REQUIRED: Any = dataclasses.MISSING

# No count or number of monitor's options goes near a billion; the bound keeps
# a 400-digit integer (valid TOML) away from float conversions and messages.
MAX_NUMBER = 10**9


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table", datetime.datetime: "a date-time",
             datetime.date: "a date", datetime.time: "a time"}
    return names.get(type(value), type(value).__name__)


def to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_type_name(value)}")
    return value


def to_nonempty_str(value: Any) -> str:
    text = to_str(value)
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {_type_name(value)}")
    return _within_max(value)


def to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {_type_name(value)}")
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("expected a number, got nan")
    return float(_within_max(value))


def _within_max(value: int | float) -> Any:
    if value > MAX_NUMBER:
        raise ValueError(f"must be at most {MAX_NUMBER}, got {show_number(value)}")
    if value < -MAX_NUMBER:
        raise ValueError(f"must be at least -{MAX_NUMBER}, got {show_number(value)}")
    return value


def to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_type_name(value)}")
    return value


def to_duration(value: Any) -> float:
    return parse_duration(value)


# History may be kept longer than any interval or timeout: ten years
MAX_RETENTION = 3650 * 86400.0


def to_retention(value: Any) -> float:
    return parse_duration(value, ceiling=MAX_RETENTION)


def to_size(value: Any) -> int:
    return parse_size(value)


def to_str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected an array of strings, got {_type_name(value)}")
    return tuple(value)


def to_name(value: Any) -> str:
    """A non-empty name shown in the dashboard and logs."""
    return _printable(to_nonempty_str(value))


def to_label(value: Any) -> str:
    """Text shown in the dashboard and logs (a group)."""
    return _printable(to_str(value))


def to_labels(value: Any) -> tuple[str, ...]:
    """Labels shown in the dashboard and logs (tags)."""
    return tuple(_printable(text) for text in to_str_list(value))


def _printable(text: str) -> str:
    # TOML escapes let "\u001b[2J" into a string: a name that would repaint the
    # operator's terminal wherever it is shown. Spaces of any width are fine.
    for char in text:
        if not char.isprintable() and unicodedata.category(char) != "Zs":
            raise ValueError(f"must not contain control characters, found {ascii(char)} "
                             "(names, groups and tags are shown on terminals)")
    return text


def to_history_db(value: Any) -> str:
    """A path, "off" or ":memory:" ("" means the default place)."""
    text = to_str(value).strip()
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    if text.lower() in ("off", "none", "false"):
        return "off"
    return text


def parse_listen_address(text: str) -> tuple[str, int]:
    """("127.0.0.1", 9115) from "127.0.0.1:9115", "[::1]:9115", "localhost:9115"
    or a bare "9115" (loopback: serving beyond this machine is asked for by
    name, e.g. "0.0.0.0:9115")."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, e.g. \"[::1]:9115\", got {text!r}")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"expected an IP address and port such as \"127.0.0.1:9115\" "
                         f"(\"0.0.0.0:9115\": every interface), got {text!r}") from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"expected a port from 1 to 65535 after the address, got {text!r}")
    return host, int(port_text)


def to_listen_address(value: Any) -> str:
    """Where a server listens, as "host:port" ("[v6]:port"); "" (or false,
    "off") for not at all; true for the loopback default."""
    if value is True:
        return "127.0.0.1:9115"
    if value is False:
        return ""
    text = to_str(value)
    if text.strip().lower() in ("", "off"):
        return ""
    host, port = parse_listen_address(text)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def to_str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table such as {{ Name = \"value\" }}, got {_type_name(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise ValueError(f"{key}: expected a string, got {_type_name(item)}")
    return dict(value)


def to_regex(value: Any) -> re.Pattern[str]:
    text = to_str(value)
    try:
        return re.compile(text)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


def one_of(*choices: str) -> Converter:
    def convert(value: Any) -> str:
        text = to_str(value)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(repr(c) for c in choices)}, got {text!r}")
        return text
    return convert


def in_range(low: float | None = None, high: float | None = None) -> Check:
    # `not value >= low`, not `value < low`: NaN fails every comparison
    def check(value: Any) -> str | None:
        if low is not None and not value >= low:
            return f"must be at least {show_number(low)}, got {show_number(value)}"
        if high is not None and not value <= high:
            return f"must be at most {show_number(high)}, got {show_number(value)}"
        return None
    return check


def duration_in(low: float, high: float) -> Check:
    """A range check for durations, with the bounds written as durations."""
    def check(value: float) -> str | None:
        if not low <= value <= high:
            return (f"must be between {format_duration(low)} and {format_duration(high)}, "
                    f"got {format_duration(value)}")
        return None
    return check


def option(default: Any = REQUIRED, *, convert: Converter, check: Check | None = None,
           doc: str = "", path: bool = False) -> Any:
    """A dataclass field carrying its converter and check. `path=True`: a
    relative file path is taken relative to the config file, not the cwd."""
    metadata = {"convert": convert, "check": check, "doc": doc, "path": path}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def build_options(cls: type, raw: dict[str, Any], report: Callable[[str, str], None],
                  base_dir: Path | None = None) -> Any | None:
    """Convert `raw` into `cls`; call report(key, problem) for each problem.

    Unknown keys are the loader's business (it knows the common keys too).
    Returns None when any field was bad.
    """
    values: dict[str, Any] = {}
    failed = False
    for spec in dataclasses.fields(cls):
        if spec.name not in raw:
            required = (spec.default is dataclasses.MISSING
                        and spec.default_factory is dataclasses.MISSING)
            if required:
                report(spec.name, "required for this kind but missing")
                failed = True
            continue
        given = raw[spec.name]
        if spec.metadata.get("path") and base_dir is not None and isinstance(given, str) \
                and given and not given.startswith("~") and not Path(given).is_absolute():
            given = str(base_dir / given)
        try:
            value = spec.metadata["convert"](given)
        except ValueError as exc:
            report(spec.name, str(exc))
            failed = True
            continue
        check = spec.metadata.get("check")
        problem = check(value) if check and value is not None else None
        if problem:
            report(spec.name, problem)
            failed = True
            continue
        values[spec.name] = value
    if failed:
        return None
    return cls(**values)


def describe_options(cls: type) -> list[tuple[str, str, str]]:
    """(name, default, doc) per field, for `monitor kinds`."""
    rows = []
    for spec in dataclasses.fields(cls):
        convert = spec.metadata.get("convert")
        if spec.default is not dataclasses.MISSING and spec.default is not None \
                and convert in (to_duration, to_retention):
            default = format_duration(spec.default)
        elif spec.default is not dataclasses.MISSING and convert is to_size:
            default = f"{spec.default // 1024}KiB" if spec.default % 1024 == 0 else str(spec.default)
        elif spec.default is not dataclasses.MISSING:
            default = _show_default(spec.default)
        elif spec.default_factory is not dataclasses.MISSING:
            default = _show_default(spec.default_factory())
        else:
            default = "required"
        rows.append((spec.name, default, spec.metadata.get("doc", "")))
    return rows


def _show_default(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if value in ({}, (), []):
        return "-"
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):   # status ranges
        return " ".join(f"{lo}-{hi}" for lo, hi in value)
    return str(value)
