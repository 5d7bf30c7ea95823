"""The uptime maths against a table worked out by hand.

Seconds since 0 (the maths works in ms). The monitor ran [0, 1000) and
stopped cleanly, was not running [1000, 1500), ran [1500, 3000) and was
killed (its last write at 3000), was not running [3000, 3600), and runs
from 3600 until now (4000). Target "a":

    run 1:   20 UP, 300 DOWN (refused), 400 UP, 600 PAUSED, 700 PENDING, 750 UP
    run 2: 1600 DEGRADED, 2000 DOWN (timeout)        (killed while down)
    run 3: 3700 UP

    known spans: UP [20,300) [400,600) [750,1000) [3700,4000)  = 280+200+250+300 = 1030
                 DEGRADED [1600,2000) = 400;  DOWN [300,400) [2000,3000) = 100+1000 = 1100
    no data: [0,20) pending, [600,750) paused/pending, both monitor gaps,
             [1500,1600) and [3600,3700) pending after a start
"""

from __future__ import annotations

import pytest

from monitor.engine.state import State
from monitor.store.codec import STATE_CODE
from monitor.store.uptime import (
    REMOVED, Change, Run, outages, tally, timeline, window_tallies)

S = 1000   # ms per second
RUNS = [Run(1, 0, 1000 * S), Run(2, 1500 * S, 3000 * S), Run(3, 3600 * S, 4000 * S, live=True)]


def change(at: float, run: int, state: State | int, reason: str | None = None) -> Change:
    code = state if isinstance(state, int) else STATE_CODE[state]
    return Change(int(at * S), run, code, reason)


A = [change(20, 1, State.UP), change(300, 1, State.DOWN, "refused"), change(400, 1, State.UP),
     change(600, 1, State.PAUSED), change(700, 1, State.PENDING), change(750, 1, State.UP),
     change(1600, 2, State.DEGRADED), change(2000, 2, State.DOWN, "timeout"),
     change(3700, 3, State.UP)]

# window [start, end) in s -> up, degraded, down (s), uptime %, coverage %
TABLE = [
    ((0, 4000), 1030, 400, 1100, 100 * 1430 / 2530, 100 * 2530 / 4000),
    ((900, 2500), 100, 400, 500, 50.0, 62.5),
    ((3500, 4000), 300, 0, 0, 100.0, 60.0),
    ((1000, 1500), 0, 0, 0, None, 0.0),        # the monitor was not running: no data, not up
    ((3000, 3600), 0, 0, 0, None, 0.0),        # after a kill -9: no data either
    ((250, 450), 100, 0, 100, 50.0, 100.0),
    ((600, 750), 0, 0, 0, None, 0.0),          # paused, then pending after resume
]


@pytest.mark.parametrize(("window", "up", "degraded", "down", "uptime", "coverage"), TABLE)
def test_uptime_table(window, up, degraded, down, uptime, coverage):
    spans = timeline(RUNS, A)
    result = tally(spans, window[0] * S, window[1] * S)
    assert (result.up_ms, result.degraded_ms, result.down_ms) == (up * S, degraded * S, down * S)
    if uptime is None:
        assert result.uptime_pct is None
    else:
        assert result.uptime_pct == pytest.approx(uptime)
    assert result.coverage_pct == pytest.approx(coverage)


def test_outages_say_how_they_ended():
    spans = timeline(RUNS, A)
    found = outages(spans, 0, 4000 * S)
    assert [(o.start // S, o.end // S, o.reason, o.ended) for o in found] == [
        (300, 400, "refused", "recovered"), (2000, 3000, "timeout", "monitor stopped")]
    assert [o.within(2500 * S, 4000 * S) for o in found] == [0, 500 * S]
    # a window that only touches the second outage sees it whole
    assert [o.duration_ms for o in outages(spans, 2900 * S, 3100 * S)] == [1000 * S]


def test_an_outage_still_going_is_ongoing_and_a_removed_target_stops_counting():
    changes = [change(3650, 3, State.DOWN, "refused")]
    assert [o.ended for o in outages(timeline(RUNS, changes), 0, 4000 * S)] == ["ongoing"]
    removed = [change(10, 1, State.UP), change(500, 1, REMOVED)]
    result = tally(timeline(RUNS, removed), 0, 1000 * S)
    assert (result.up_ms, result.known_ms) == (490 * S, 490 * S)


def test_changes_of_an_unknown_run_are_ignored_and_stepped_clocks_clamped():
    changes = [change(100, 99, State.DOWN),            # its run was pruned
               change(-50, 1, State.UP),               # the wall clock stepped back: from 0
               change(5000, 1, State.DOWN)]            # stepped forward: at the run's end
    result = tally(timeline(RUNS, changes), 0, 4000 * S)
    assert (result.up_ms, result.down_ms) == (1000 * S, 0)


def test_no_runs_or_no_changes_is_no_data():
    assert tally(timeline([], A), 0, 4000 * S).uptime_pct is None
    assert tally(timeline(RUNS, []), 0, 4000 * S).coverage_pct == 0.0


def test_all_windows_at_once_agree_with_each_window_alone():
    spans = timeline(RUNS, A)
    lengths = [100 * S, 600 * S, 1500 * S, 4000 * S, 9000 * S]
    for (got, down), length in zip(window_tallies(spans, 4000 * S, lengths), lengths):
        assert got == tally(spans, 4000 * S - length, 4000 * S)
        assert down == len(outages(spans, 4000 * S - length, 4000 * S))
