"""`[[maintenance]]` windows: their schema and checks. One-off windows
(`start`/`end` date-times) and recurring ones (times of day on `weekdays`, in
an IANA `timezone`), for some targets, groups, or everything. The calendar
maths (is a target in a window now?) lives in `monitor.alerts.maintenance`."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from monitor.config.fields import (
    build_options, did_you_mean, option, option_names, to_labels, to_name, to_nonempty_str,
    to_str_list)

if TYPE_CHECKING:
    from monitor.config.model import Target

Report = Callable[[tuple[Any, ...], str, str], None]   # (key path, shown key, problem)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {**{short: i for i, short in enumerate(WEEKDAYS)},
              **{full: i for i, full in enumerate(("monday", "tuesday", "wednesday", "thursday",
                                                  "friday", "saturday", "sunday"))}}


@dataclass(frozen=True, kw_only=True)
class MaintenanceKeys:
    """Keys of a `[[maintenance]]` window."""

    name: str = option("", convert=to_name, doc="shown in the dashboard")
    targets: tuple[str, ...] = option((), convert=to_labels, doc="target names it covers")
    groups: tuple[str, ...] = option((), convert=to_labels, doc="groups it covers")
    start: Any = option(convert=lambda v: _moment(v), doc="date-time (one-off) or time of day")
    end: Any = option(convert=lambda v: _moment(v), doc="same form as start")
    weekdays: tuple[int, ...] = option((), convert=lambda v: _weekdays(v),
                                       doc='recurring: days it starts on, e.g. ["sat", "sun"]')
    timezone: str = option("UTC", convert=lambda v: _timezone(v),
                           doc="IANA zone of times without an offset, e.g. Europe/Paris")


@dataclass(frozen=True, kw_only=True)
class Maintenance:
    """A window in which nothing alerts. One-off: `start`/`end` (aware UTC).
    Recurring: `start_time`/`end_time` local to `timezone` on `weekdays`
    (0 = Monday; empty = every day); an end at or before the start ends the
    next day (22:00-02:00), equal ones make a whole day."""

    name: str
    targets: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()     # neither targets nor groups: everything
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    weekdays: frozenset[int] = frozenset()
    start_time: dt.time | None = None
    end_time: dt.time | None = None
    timezone: str = "UTC"
    line: int = field(default=0, compare=False)

    @property
    def recurring(self) -> bool:
        return self.start_time is not None

    @property
    def zone(self) -> dt.tzinfo:
        return _zone(self.timezone)

    def covers(self, target: Target) -> bool:
        if not self.targets and not self.groups:
            return True
        return target.name in self.targets or (bool(target.group) and target.group in self.groups)


def _moment(value: Any) -> dt.datetime | dt.date | dt.time:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        if isinstance(value, dt.time) and value.tzinfo is not None:
            raise ValueError("a time of day takes no offset: set `timezone` instead")
        return value
    if isinstance(value, str):
        text = value.strip()
        for parse in (dt.time.fromisoformat, dt.datetime.fromisoformat):
            try:
                return _moment(parse(text))
            except ValueError:
                continue
    raise ValueError('expected a date-time (2025-06-01T22:00:00Z, or without an offset in '
                     '`timezone`) or a time of day ("02:00")')


def _weekdays(value: Any) -> tuple[int, ...]:
    days: set[int] = set()
    for item in to_str_list(value):
        first, _, last = item.strip().lower().partition("-")
        span = [_weekday(first)] if not last else _day_range(_weekday(first), _weekday(last))
        days.update(span)
    return tuple(sorted(days))


def _weekday(text: str) -> int:
    day = _DAY_NAMES.get(text)
    if day is None:
        raise ValueError(f"unknown weekday {text!r}{did_you_mean(text, WEEKDAYS)} "
                         '(mon, tue, ... sun, or a range such as "mon-fri")')
    return day


def _day_range(first: int, last: int) -> list[int]:
    return [(first + i) % 7 for i in range((last - first) % 7 + 1)]


def _timezone(value: Any) -> str:
    name = to_nonempty_str(value).strip()
    try:
        _zone(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(name, sorted(_zone_names()))
        raise ValueError(f"unknown timezone {name!r}{hint} (an IANA name such as "
                         "\"Europe/Paris\" or \"UTC\")") from None
    return name


@cache
def _zone(name: str) -> dt.tzinfo:
    return dt.UTC if name == "UTC" else zoneinfo.ZoneInfo(name)


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def read_maintenance(raw: Any, report: Report, lines: Callable[[tuple[Any, ...]], int],
                     targets: Iterable[str], groups: Iterable[str]) -> tuple[Maintenance, ...]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        report(("maintenance",), "maintenance", "expected [[maintenance]] tables")
        return ()
    targets, groups = sorted(set(targets)), sorted(set(groups))
    windows = []
    known = option_names(MaintenanceKeys)
    for index, item in enumerate(raw):
        label = f"maintenance[#{index + 1}]"
        failed = False

        def problem(key: str, message: str, index: int = index, label: str = label) -> None:
            nonlocal failed
            failed = True
            report(("maintenance", index, key), f"{label}.{key}", message)
        for key in item:
            if key not in known:
                problem(key, "unknown key" + did_you_mean(key, known))
        keys = build_options(MaintenanceKeys, {k: v for k, v in item.items() if k in known}, problem)
        if keys is None:
            continue
        for name in keys.targets:
            if name not in targets:
                problem("targets", f"no target named {name!r}{did_you_mean(name, targets)}")
        for name in keys.groups:
            if name not in groups:
                problem("groups", f"no target is in group {name!r}{did_you_mean(name, groups)}")
        window = _window(keys, lines(("maintenance", index)), problem)
        if window is not None and not failed:
            windows.append(window)
    return tuple(windows)


def _window(keys: MaintenanceKeys, line: int,
            problem: Callable[[str, str], None]) -> Maintenance | None:
    common = dict(name=keys.name, targets=frozenset(keys.targets), groups=frozenset(keys.groups),
                  timezone=keys.timezone, line=line)
    start, end = keys.start, keys.end
    if isinstance(start, dt.time) and isinstance(end, dt.time):
        return Maintenance(weekdays=frozenset(keys.weekdays), start_time=start, end_time=end,
                           **common)
    if isinstance(start, dt.time) or isinstance(end, dt.time):
        problem("end" if isinstance(start, dt.time) else "start",
                "start and end must both be date-times (a one-off window) or both times "
                "of day (a recurring one)")
        return None
    if keys.weekdays:
        problem("weekdays", "only for a recurring window (start and end as times of day, "
                            'e.g. "02:00")')
        return None
    zone = _zone(keys.timezone)
    first, last = _aware(start, zone), _aware(end, zone)
    if last <= first:
        problem("end", f"must be after start ({first.isoformat()})")
        return None
    return Maintenance(start=first, end=last, **common)


def _aware(moment: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """A TOML date or date-time as an aware UTC datetime; without an offset
    it is a wall-clock moment in the window's timezone."""
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.combine(moment, dt.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)
