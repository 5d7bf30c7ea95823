"""Rolling statistics per target: latency percentiles, jitter, loss, uptime."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State


class Sample(NamedTuple):
    started: float             # monotonic
    latency_ms: float | None   # None: nothing answered
    status: Status


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    last_ms: float | None
    min_ms: float | None
    avg_ms: float | None
    max_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    jitter_ms: float | None    # mean |difference| of consecutive latencies, in time order
    loss_pct: float | None     # share of probes that got no usable answer (DOWN)
    uptime_pct: float | None   # time UP or DEGRADED over time in a known state
    checks: int                # since start
    failures: int              # since start


def percentile(ordered: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class RollingStats:
    """The last `size` samples, plus totals and time-in-state since start.

    Work happens in `summary()`, on demand, so recording a result stays cheap
    at thousands of probes per second.
    """

    __slots__ = ("samples", "checks", "failures", "_state", "_state_since",
                 "_up_seconds", "_known_seconds", "uptime_pct_cached")

    def __init__(self, size: int = 1000) -> None:
        self.samples: deque[Sample] = deque(maxlen=size)
        self.checks = 0
        self.failures = 0
        self._state: State = State.PENDING
        self._state_since: float | None = None
        self._up_seconds = 0.0
        self._known_seconds = 0.0
        self.uptime_pct_cached: float | None = None   # as of the last uptime_pct() call

    def add(self, result: ProbeResult) -> None:
        self.samples.append(Sample(result.started, result.latency_ms, result.status))
        self.checks += 1
        if result.status is Status.DOWN:
            self.failures += 1

    def set_state(self, state: State, now: float) -> None:
        """Uptime is time-weighted over confirmed states; PENDING and PAUSED
        (and time the monitor was not running) count neither way."""
        self._close_span(now)
        self._state, self._state_since = state, now

    def _close_span(self, now: float) -> None:
        if self._state_since is None:
            return
        span = max(0.0, now - self._state_since)
        if self._state in (State.UP, State.DEGRADED):
            self._up_seconds += span
            self._known_seconds += span
        elif self._state is State.DOWN:
            self._known_seconds += span
        self._state_since = now

    def uptime_pct(self, now: float) -> float | None:
        up, known = self._up_seconds, self._known_seconds
        if self._state_since is not None:
            span = max(0.0, now - self._state_since)
            if self._state in (State.UP, State.DEGRADED):
                up, known = up + span, known + span
            elif self._state is State.DOWN:
                known += span
        self.uptime_pct_cached = 100.0 * up / known if known > 0 else None
        return self.uptime_pct_cached

    def summary(self, now: float) -> Summary:
        samples = list(self.samples)
        latencies = [s.latency_ms for s in samples if s.latency_ms is not None
                     and s.status is not Status.DOWN]
        ordered = sorted(latencies)
        jitter = None
        if len(latencies) >= 2:
            jitter = sum(abs(b - a) for a, b in zip(latencies, latencies[1:])) / (len(latencies) - 1)
        lost = sum(1 for s in samples if s.status is Status.DOWN)
        return Summary(
            count=len(samples),
            last_ms=samples[-1].latency_ms if samples else None,
            min_ms=ordered[0] if ordered else None,
            avg_ms=sum(ordered) / len(ordered) if ordered else None,
            max_ms=ordered[-1] if ordered else None,
            p50_ms=percentile(ordered, 0.50) if ordered else None,
            p95_ms=percentile(ordered, 0.95) if ordered else None,
            jitter_ms=jitter,
            loss_pct=100.0 * lost / len(samples) if samples else None,
            uptime_pct=self.uptime_pct(now),
            checks=self.checks,
            failures=self.failures,
        )
