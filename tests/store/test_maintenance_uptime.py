"""Maintenance left out of uptime (`maintenance_uptime = "exclude"`, the
default, as Uptime Kuma does): the carving maths by hand, the windows'
occurrences, and a real history file read with and without the windows."""

from __future__ import annotations

import datetime as dt

from monitor.alerts.maintenance import Calendar, occurrences
from monitor.config import parse_config
from monitor.engine.state import State
from monitor.store.history import HistoryStore
from monitor.store.uptime import DOWN, UP, Span, carve, tally
from tests.store import conftest
from tests.store.conftest import Clock

HOUR = 3_600_000


def test_carving_by_hand():
    spans = [Span(0, 10, UP, None, DOWN), Span(10, 20, DOWN, "x", UP), Span(20, 30, UP, None, None)]
    # a hole over the outage, one cutting a span in two, one before everything
    carved = carve(spans, [(-5, -1), (5, 7), (10, 20)])
    assert [(s.start, s.end, s.state) for s in carved] == [(0, 5, UP), (7, 10, UP), (20, 30, UP)]
    assert tally(carved, 0, 30).uptime_pct == 100.0 and tally(carved, 0, 30).known_ms == 18
    assert tally(spans, 0, 30).uptime_pct == 100.0 * 20 / 30
    assert carve(spans, []) == spans
    assert carve(spans, [(0, 30)]) == []


def config_with(window: str, include: bool = False):
    return parse_config(
        f'[settings]\nmaintenance_uptime = "{"include" if include else "exclude"}"\n'
        '[[targets]]\nname = "api"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 1\n'
        '[[targets]]\nname = "other"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 1\n'
        f'[[maintenance]]\nname = "nightly"\ntargets = ["api"]\n{window}\n')


def test_a_nightly_window_occurs_every_night_across_midnight():
    window = config_with('start = "23:00"\nend = "01:00"').maintenance[0]
    since = dt.datetime(2027, 1, 10, 12, tzinfo=dt.UTC)
    found = occurrences(window, since, since + dt.timedelta(days=3))
    assert [(s.day, s.hour, e.day, e.hour) for s, e in found] == [
        (10, 23, 11, 1), (11, 23, 12, 1), (12, 23, 13, 1)]
    config = config_with('start = "23:00"\nend = "01:00"')
    holes = Calendar.of(config).holes("api", since, since + dt.timedelta(days=1))
    assert holes == [(int(found[0][0].timestamp() * 1000), int(found[0][1].timestamp() * 1000))]
    assert Calendar.of(config).holes("other", since, since + dt.timedelta(days=1)) == []


def test_an_outage_inside_maintenance_is_no_data_unless_included(db_path):
    """api goes down for 30 minutes inside a one-off window, otherwise up for
    the two hours: excluded, its uptime is 100 %; included, 75 %."""
    clock = Clock(0)
    store = HistoryStore.open(db_path, clock=clock)
    store.on_start(conftest.T0)
    store.on_transition(conftest.transition("api", 0, State.UP))
    store.on_transition(conftest.transition("api", 1800, State.DOWN, State.UP))
    store.on_transition(conftest.transition("api", 3600, State.UP, State.DOWN))
    store.on_stop(conftest.T0 + 7200)
    store.close(timeout=10)
    clock.set(7200)
    start, end = conftest.at(1800).isoformat(), conftest.at(3600).isoformat()
    window = f'start = "{start}"\nend = "{end}"'
    reader = HistoryStore.open(db_path, read_only=True, clock=clock)
    try:
        from monitor.alerts.maintenance import uptime_holes
        now = conftest.at(7200)
        excluded = reader.uptime(["api"], [7200], now=conftest.T0 + 7200,
                                 holes=uptime_holes(config_with(window), now,
                                                    dt.timedelta(hours=2)))
        included = reader.uptime(["api"], [7200], now=conftest.T0 + 7200,
                                 holes=uptime_holes(config_with(window, include=True), now,
                                                    dt.timedelta(hours=2)))
        report = reader.report(conftest.T0, conftest.T0 + 7200, now=conftest.T0 + 7200,
                               holes=uptime_holes(config_with(window), now,
                                                  dt.timedelta(hours=2)))
    finally:
        reader.close()
    assert excluded["api"][0].uptime_pct == 100.0
    assert excluded["api"][0].incidents == 1          # it happened: still an incident
    assert included["api"][0].uptime_pct == 75.0
    assert report[0].tally.uptime_pct == 100.0 and len(report[0].outages) == 1
