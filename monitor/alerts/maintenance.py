"""Is a target in a maintenance window at a given moment, and until when?

Recurring windows are wall-clock times in their own timezone, so "02:00 to
03:30 Europe/Paris" stays at 02:00 local across daylight-saving changes; the
day a window starts on is what `weekdays` names, and a window whose end is
at or before its start ends the next day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.config.maintenance import Maintenance
from monitor.config.model import Config, Target


def occurrence(window: Maintenance, at: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """(start, end) in UTC of the occurrence of `window` that contains `at`."""
    if not window.recurring:
        assert window.start is not None and window.end is not None
        return (window.start, window.end) if window.start <= at < window.end else None
    assert window.start_time is not None and window.end_time is not None
    zone = window.zone
    local = at.astimezone(zone)
    # the occurrence that started today, or one that started yesterday and runs past midnight
    for days_back in (0, 1):
        day = local.date() - dt.timedelta(days=days_back)
        if window.weekdays and day.weekday() not in window.weekdays:
            continue
        start = _local(day, window.start_time, zone)
        end_day = day if window.end_time > window.start_time else day + dt.timedelta(days=1)
        end = _local(end_day, window.end_time, zone)
        if start <= at < end:
            return start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    return None


def occurrences(window: Maintenance, since: dt.datetime,
                until: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Every occurrence of `window` that overlaps [since, until), in UTC."""
    if not window.recurring:
        assert window.start is not None and window.end is not None
        return [(window.start, window.end)] if window.start < until and window.end > since else []
    assert window.start_time is not None and window.end_time is not None
    zone = window.zone
    found = []
    day = since.astimezone(zone).date() - dt.timedelta(days=1)   # one that ran past midnight
    last = until.astimezone(zone).date()
    while day <= last:
        if not window.weekdays or day.weekday() in window.weekdays:
            start = _local(day, window.start_time, zone)
            end_day = day if window.end_time > window.start_time else day + dt.timedelta(days=1)
            end = _local(end_day, window.end_time, zone)
            if start < until and end > since:
                found.append((start.astimezone(dt.UTC), end.astimezone(dt.UTC)))
        day += dt.timedelta(days=1)
    return found


def _local(day: dt.date, time: dt.time, zone: dt.tzinfo) -> dt.datetime:
    # a time skipped by a DST jump (02:30 on the spring-forward night) is taken
    # as the moment after the jump, fold=0 picks the earlier of a repeated hour
    return dt.datetime.combine(day, time, tzinfo=zone)


@dataclass(frozen=True, slots=True)
class ActiveWindow:
    window: Maintenance
    start: dt.datetime
    end: dt.datetime

    @property
    def name(self) -> str:
        return self.window.name or "maintenance"

    def describe(self) -> str:
        """'nightly backup until 03:30 UTC': for the dashboard and messages."""
        return f"{self.name} until {self.end.strftime('%H:%M')} UTC"


class Calendar:
    """The config's maintenance windows, indexed by target for quick answers."""

    def __init__(self, windows: Iterable[Maintenance], targets: Iterable[Target]) -> None:
        self.windows = tuple(windows)
        self._by_target: dict[str, tuple[Maintenance, ...]] = {}
        for target in targets:
            mine = tuple(w for w in self.windows if w.covers(target))
            if mine:
                self._by_target[target.name] = mine

    @classmethod
    def of(cls, config: Config) -> Calendar:
        return cls(config.maintenance, config.targets)

    def in_maintenance(self, target: str, at: dt.datetime) -> ActiveWindow | None:
        """The window `target` is in at `at` (aware), or None. When several
        overlap, the one that ends last: that is when alerting resumes."""
        found: ActiveWindow | None = None
        for window in self._by_target.get(target, ()):
            span = occurrence(window, at)
            if span is not None and (found is None or span[1] > found.end):
                found = ActiveWindow(window, *span)
        return found

    def __bool__(self) -> bool:
        return bool(self._by_target)

    def holes(self, target: str, since: dt.datetime,
              until: dt.datetime) -> list[tuple[int, int]]:
        """`target`'s maintenance in [since, until) as sorted, merged epoch-ms
        spans: what uptime leaves out when `maintenance_uptime = "exclude"`."""
        spans = sorted((int(start.timestamp() * 1000), int(end.timestamp() * 1000))
                       for window in self._by_target.get(target, ())
                       for start, end in occurrences(window, since, until))
        merged: list[tuple[int, int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


def uptime_holes(config: Config, now: dt.datetime, back: dt.timedelta):  # noqa: ANN201
    """For the history's uptime maths: name -> maintenance spans of the last
    `back` (epoch ms), or None when maintenance counts (`maintenance_uptime =
    "include"`) or there is none."""
    if config.settings.maintenance_uptime != "exclude":
        return None
    calendar = Calendar.of(config)
    if not calendar:
        return None
    since = now - back
    return lambda name: calendar.holes(name, since, now)


def in_maintenance(config: Config, target: str, at: dt.datetime) -> ActiveWindow | None:
    """One-shot form of `Calendar.in_maintenance`; build a Calendar to ask often."""
    return Calendar.of(config).in_maintenance(target, at)
