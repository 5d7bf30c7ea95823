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


def in_maintenance(config: Config, target: str, at: dt.datetime) -> ActiveWindow | None:
    """One-shot form of `Calendar.in_maintenance`; build a Calendar to ask often."""
    return Calendar.of(config).in_maintenance(target, at)
