"""Statistics and state tracking, fed with constructed results."""

from __future__ import annotations

import math
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


def naive_summary(samples: list[tuple[float | None, str]]) -> dict[str, float | None]:
    """What the summary must say, recomputed from scratch."""
    answered = [lat for lat, status in samples if status != "down" and lat is not None]
    ordered = sorted(answered)
    jitter = (sum(abs(b - a) for a, b in zip(answered, answered[1:])) / (len(answered) - 1)
              if len(answered) >= 2 else None)
    return {"min_ms": ordered[0] if ordered else None,
            "max_ms": ordered[-1] if ordered else None,
            "avg_ms": sum(ordered) / len(ordered) if ordered else None,
            "p50_ms": percentile(ordered, 0.5) if ordered else None,
            "p95_ms": percentile(ordered, 0.95) if ordered else None,
            "jitter_ms": jitter,
            "loss_pct": 100 * sum(s == "down" for _, s in samples) / len(samples)}


@pytest.mark.parametrize("size", [1, 2, 7, 50])
def test_incremental_summary_matches_a_recount_as_the_window_slides(size: int):
    import random
    rng = random.Random(size)
    stats = RollingStats(size)
    window: list[tuple[float | None, str]] = []
    for i in range(size * 12):
        status = rng.choices(["up", "degraded", "down"], [6, 1, 3])[0]
        latency = None if status == "down" else round(rng.uniform(0.01, 500), 3)
        if status == "up" and rng.random() < 0.05:
            latency = None   # answered without a latency: counted nowhere
        stats.add(ProbeResult(name="t", kind="icmp", target="x", status=Status(status),
                              latency_ms=latency, phases_ms={}, reason=None,
                              checked_at=datetime.now(UTC), started=float(i)))
        window = (window + [(latency, status)])[-size:]
        got, want = stats.summary(0), naive_summary(window)
        for key, value in want.items():
            assert getattr(got, key) == pytest.approx(value, abs=1e-9), (i, key)
        assert got.count == len(window) and got.checks == i + 1


def test_running_sums_do_not_drift_over_a_long_run():
    stats = RollingStats(10)
    for i in range(100_000):
        stats.add(result("up", 1e6 if i % 2 else 1e-3, started=i))
    s = stats.summary(0)
    assert s.avg_ms == pytest.approx((1e6 + 1e-3) / 2, rel=1e-12)
    assert s.jitter_ms == pytest.approx(1e6 - 1e-3, rel=1e-12)


def test_tail_values_follow_the_ring_across_its_wrap():
    stats = RollingStats(5)
    for i in range(8):
        stats.add(result("down" if i == 6 else "up", float(i), started=i))
    latencies, codes = stats.samples.tail_values(4)
    assert latencies[:2] == [4.0, 5.0] and math.isnan(latencies[2]) and latencies[3] == 7.0
    assert codes == [0, 0, 2, 0]
    assert stats.samples.tail_values(99)[0][0] == 3.0          # no more than the window
    assert [s.latency_ms for s in list(stats.samples)[-2:]] == [None, 7.0]
