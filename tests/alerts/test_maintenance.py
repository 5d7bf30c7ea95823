"""Maintenance windows: one-off and recurring (weekdays, over midnight, in a
timezone across daylight saving), for targets, groups or everything."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.alerts.maintenance import Calendar, in_maintenance
from tests.alerts.conftest import config, targets


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def calendar(windows: str, extra: str = "") -> Calendar:
    cfg = config(targets("api", "db") + targets("web", extra='group = "front"\n') + windows)
    return Calendar.of(cfg)


def test_one_off_window_for_named_targets():
    cal = calendar('[[maintenance]]\nname = "upgrade"\ntargets = ["db"]\n'
                   'start = 2025-06-02T22:00:00Z\nend = 2025-06-02T23:30:00Z\n')
    assert cal.in_maintenance("db", at("2025-06-02T21:59:59+00:00")) is None
    window = cal.in_maintenance("db", at("2025-06-02T22:00:00+00:00"))
    assert window is not None and window.describe() == "upgrade until 23:30 UTC"
    assert cal.in_maintenance("db", at("2025-06-02T23:29:59+00:00")) is not None
    assert cal.in_maintenance("db", at("2025-06-02T23:30:00+00:00")) is None   # end excluded
    assert cal.in_maintenance("api", at("2025-06-02T22:30:00+00:00")) is None


def test_local_datetimes_are_in_the_windows_timezone():
    cal = calendar('[[maintenance]]\nstart = 2025-06-02T22:00:00\nend = 2025-06-02T23:00:00\n'
                   'timezone = "Europe/Paris"\n')   # no targets, no groups: everything
    assert cal.in_maintenance("web", at("2025-06-02T20:30:00+00:00")) is not None   # 22:30 Paris
    assert cal.in_maintenance("web", at("2025-06-02T22:30:00+00:00")) is None


def test_recurring_over_midnight_on_weekdays_in_a_group():
    cal = calendar('[[maintenance]]\nname = "backup"\ngroups = ["front"]\nweekdays = ["fri"]\n'
                   'start = "23:00"\nend = "01:00"\n')
    friday_late = at("2025-06-06T23:30:00+00:00")
    assert cal.in_maintenance("web", friday_late).describe() == "backup until 01:00 UTC"
    assert cal.in_maintenance("web", at("2025-06-07T00:59:00+00:00")) is not None   # Sat, from Fri
    assert cal.in_maintenance("web", at("2025-06-07T23:30:00+00:00")) is None       # Sat evening
    assert cal.in_maintenance("web", at("2025-06-05T23:30:00+00:00")) is None       # Thursday
    assert cal.in_maintenance("api", friday_late) is None                            # not in group


def test_recurring_keeps_local_time_across_daylight_saving():
    cal = calendar('[[maintenance]]\nweekdays = ["sun"]\nstart = "02:00"\nend = "03:00"\n'
                   'timezone = "America/New_York"\n')
    # 02:30 New York is 07:30 UTC in winter (EST) and 06:30 UTC in summer (EDT)
    assert cal.in_maintenance("api", at("2025-01-12T07:30:00+00:00")) is not None
    assert cal.in_maintenance("api", at("2025-01-12T06:30:00+00:00")) is None
    assert cal.in_maintenance("api", at("2025-07-13T06:30:00+00:00")) is not None
    assert cal.in_maintenance("api", at("2025-07-13T07:30:00+00:00")) is None


def test_ranges_of_days_and_whole_days_and_overlaps():
    cal = calendar('[[maintenance]]\nname = "weekend"\nweekdays = ["sat-sun"]\n'
                   'start = "00:00"\nend = "00:00"\n'
                   '[[maintenance]]\nname = "long"\ntargets = ["api"]\n'
                   'start = 2025-06-07T12:00:00Z\nend = 2025-06-09T12:00:00Z\n')
    assert cal.in_maintenance("db", at("2025-06-08T23:59:00+00:00")).name == "weekend"
    assert cal.in_maintenance("db", at("2025-06-09T00:00:00+00:00")) is None
    # both cover api on Sunday: the one that ends last is when alerting resumes
    assert cal.in_maintenance("api", at("2025-06-08T10:00:00+00:00")).name == "long"
    assert in_maintenance(config(targets("api")), "api", at("2025-06-08T10:00:00+00:00")) is None
