"""Statistics and state tracking, fed with constructed results."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Tracker
from monitor.engine.stats import RollingStats, percentile


def result(status: str, latency: float | None = 10.0, started: float = 0.0) -> ProbeResult:
    return ProbeResult(name="t", kind="http", target="x", status=Status(status),
                       latency_ms=None if status == "down" else latency, phases_ms={},
                       reason=None if status == "up" else "why", checked_at=datetime.now(UTC),
                       started=started)


def test_percentiles_interpolate():
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    assert percentile(list(map(float, range(101))), 0.95) == pytest.approx(95.0)


def test_summary_latency_jitter_in_time_order_and_loss():
    stats = RollingStats(100)
    for i, latency in enumerate([10, 30, 10, 30]):
        stats.add(result("up", latency, started=i))
    stats.add(result("down", started=5))
    s = stats.summary(now=10)
    assert (s.min_ms, s.max_ms, s.avg_ms) == (10, 30, 20)
    assert s.jitter_ms == pytest.approx(20.0)   # time order: |30-10| each step
    assert s.loss_pct == pytest.approx(20.0)
    assert s.last_ms is None and s.checks == 5 and s.failures == 1


def test_sorted_latencies_have_zero_jitter_only_when_steady():
    stats = RollingStats(100)
    for latency in [10, 10, 10]:
        stats.add(result("up", latency))
    assert stats.summary(0).jitter_ms == 0


def test_window_is_bounded_but_totals_are_not():
    stats = RollingStats(10)
    for i in range(25):
        stats.add(result("up", float(i)))
    s = stats.summary(0)
    assert s.count == 10 and s.checks == 25 and s.min_ms == 15


def test_uptime_is_time_weighted_and_ignores_pending_and_paused():
    stats = RollingStats(10)
    stats.set_state(State.PENDING, 0)
    stats.set_state(State.UP, 10)        # 10 s pending: not counted
    stats.set_state(State.DOWN, 40)      # 30 s up
    stats.set_state(State.PAUSED, 50)    # 10 s down
    stats.set_state(State.DEGRADED, 100) # 50 s paused: not counted
    assert stats.uptime_pct(110) == pytest.approx(100 * 40 / 50)  # degraded counts as up


def test_uptime_unknown_before_any_state():
    assert RollingStats(10).uptime_pct(5) is None


def test_tracker_first_up_out_of_pending_is_immediate():
    tracker = Tracker("t", failure_threshold=3, success_threshold=3, now=0)
    move = tracker.observe(result("up"), 1)
    assert move and (move.from_state, move.to_state) == (State.PENDING, State.UP)


def test_tracker_thresholds_and_confirming():
    tracker = Tracker("t", failure_threshold=2, success_threshold=2, now=0)
    tracker.observe(result("up"), 1)
    assert tracker.observe(result("down"), 2) is None
    assert tracker.confirming_down
    move = tracker.observe(result("down"), 3)
    assert move and move.to_state is State.DOWN and move.previous_for == 2
    assert not tracker.confirming_down
    assert tracker.observe(result("up"), 4) is None
    assert tracker.observe(result("up"), 5).to_state is State.UP


def test_tracker_degraded_and_recovery_from_down():
    tracker = Tracker("t", failure_threshold=2, success_threshold=1, now=0)
    tracker.observe(result("up"), 0)
    assert tracker.observe(result("degraded"), 1) is None
    assert tracker.observe(result("degraded"), 2).to_state is State.DEGRADED
    tracker.observe(result("down"), 3)
    assert tracker.observe(result("down"), 4).to_state is State.DOWN
    assert tracker.observe(result("degraded"), 5).to_state is State.DEGRADED


def test_flapping_never_reaches_down_with_threshold_two():
    tracker = Tracker("t", failure_threshold=2, success_threshold=1, now=0)
    states = set()
    for i in range(20):
        move = tracker.observe(result("down" if i % 2 else "up"), i)
        if move:
            states.add(move.to_state)
    assert states == {State.UP}


def test_pause_ignores_results():
    tracker = Tracker("t", failure_threshold=1, success_threshold=1, now=0)
    assert tracker.set_paused(True, datetime.now(UTC), 1).to_state is State.PAUSED
    assert tracker.observe(result("down"), 2) is None
    assert tracker.set_paused(False, datetime.now(UTC), 3).to_state is State.PENDING
