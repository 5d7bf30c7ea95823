"""Rolling statistics per target: latency percentiles, jitter, loss, uptime."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence
from itertools import pairwise
from dataclasses import dataclass
from typing import NamedTuple

from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State


class Sample(NamedTuple):
    started: float             # monotonic
    latency_ms: float | None   # None: nothing answered
    status: Status


_CODES = {Status.UP: 0, Status.DEGRADED: 1, Status.DOWN: 2}
_STATUSES = (Status.UP, Status.DEGRADED, Status.DOWN)
_DOWN = DOWN_CODE = _CODES[Status.DOWN]
DEGRADED_CODE = _CODES[Status.DEGRADED]


class SampleRing:
    """The last `size` samples in flat arrays, not one object each.

    With 1,000 targets x 1,000 samples, tuples cost ~200 MiB and a full GC
    pause of ~140 ms (measured in bench/); arrays hold the same in ~18 MiB
    and the GC never scans them.
    """

    __slots__ = ("size", "started", "latency", "status", "head")

    def __init__(self, size: int) -> None:
        self.size = size
        self.started = array("d")
        self.latency = array("d")   # NaN: nothing answered
        self.status = bytearray()
        self.head = 0               # once full: the oldest sample, overwritten next

    def append(self, started: float, latency_ms: float | None,
               status: Status) -> tuple[float, int] | None:
        """Add a sample; once full, return the (latency, status code) it replaced."""
        latency = math.nan if latency_ms is None else latency_ms
        code = _CODES[status]
        if len(self.status) < self.size:
            self.started.append(started)
            self.latency.append(latency)
            self.status.append(code)
            return None
        i = self.head
        evicted = (self.latency[i], self.status[i])
        self.started[i], self.latency[i], self.status[i] = started, latency, code
        self.head = (i + 1) % self.size
        return evicted

    def __len__(self) -> int:
        return len(self.status)

    def _indices(self, count: int | None = None) -> range | list[int]:
        n = len(self.status)
        count = n if count is None else min(count, n)
        if n < self.size:
            return range(n - count, n)
        start = (self.head - count) % self.size
        return [(start + k) % self.size for k in range(count)]

    def _sample(self, i: int) -> Sample:
        latency = self.latency[i]
        return Sample(self.started[i], None if math.isnan(latency) else latency,
                      _STATUSES[self.status[i]])

    def __iter__(self) -> Iterator[Sample]:
        return (self._sample(i) for i in self._indices())

    def last(self) -> Sample | None:
        return self._sample(self._indices(1)[0]) if self.status else None

    def tail_values(self, count: int) -> tuple[list[float], list[int]]:
        """The newest `count` latencies (NaN: none) and status codes, oldest
        first: what a sparkline needs, without a Sample per point."""
        n = len(self.status)
        count = min(count, n)
        end = n if n < self.size else self.head   # one past the newest
        start = end - count
        latency, status = self.latency, self.status
        if start >= 0:
            return latency[start:end].tolist(), list(status[start:end])
        return (latency[start:].tolist() + latency[:end].tolist(),
                list(status[start:]) + list(status[:end]))

    def oldest_answered(self) -> bool:
        """Whether the oldest sample (the one `append` replaces next) was answered."""
        if not self.status:
            return False
        i = self.head   # 0 until the ring is full
        return self.status[i] != _DOWN and not math.isnan(self.latency[i])

    def answered_after_oldest(self) -> float | None:
        """Once full: the latency of the first answered (not DOWN) sample
        after the oldest one, the one `append` replaces next."""
        latency, status, size = self.latency, self.status, self.size
        for k in range(1, len(status)):
            i = (self.head + k) % size
            if status[i] != _DOWN and not math.isnan(latency[i]):
                return latency[i]
        return None

    def answered_latencies(self) -> list[float]:
        """Latencies of samples that were not DOWN, in time order."""
        latency, status = self.latency, self.status
        return [latency[i] for i in self._indices()
                if status[i] != _DOWN and not math.isnan(latency[i])]


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


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class RollingStats:
    """The last `size` samples, plus totals and time-in-state since start.

    Everything `summary()` reports is kept up to date as samples come and go
    (a sorted window for the percentiles, running sums for the mean and
    jitter, a count of losses), so a summary costs the same with 10 samples
    or 10,000: the dashboard asks for one per changed row every second, and
    sorting the window each time made it 50 % dearer once history filled.
    """

    __slots__ = ("samples", "checks", "failures", "_state", "_state_since",
                 "_up_seconds", "_known_seconds", "uptime_pct_cached", "_ordered", "_sum",
                 "_jitter_sum", "_newest_answered", "_down", "_evictions")

    def __init__(self, size: int = 1000) -> None:
        self.samples = SampleRing(size)
        self.checks = 0
        self.failures = 0
        self._state: State = State.PENDING
        self._state_since: float | None = None
        self._up_seconds = 0.0
        self._known_seconds = 0.0
        self.uptime_pct_cached: float | None = None   # as of the last uptime_pct() call
        self._ordered = array("d")      # answered latencies in the window, ascending
        self._sum = 0.0                 # of _ordered
        self._jitter_sum = 0.0          # of |difference| between consecutive answered latencies
        self._newest_answered = math.nan
        self._down = 0                  # DOWN samples in the window
        self._evictions = 0

    def add(self, result: ProbeResult) -> None:
        samples, ordered = self.samples, self._ordered
        latency, status = result.latency_ms, result.status
        full = len(samples) == samples.size
        # the oldest answered latency's partner in the jitter sum, found before it goes
        partner = samples.answered_after_oldest() if full and samples.oldest_answered() else None
        evicted = samples.append(result.started, latency, status)
        if evicted is not None:
            old_latency, old_code = evicted
            if old_code == _DOWN:
                self._down -= 1
            elif not math.isnan(old_latency):
                del ordered[bisect_left(ordered, old_latency)]
                self._sum -= old_latency
                if partner is not None:
                    self._jitter_sum -= abs(partner - old_latency)
                else:
                    self._newest_answered = math.nan   # it was the only one
            self._evictions += 1
        self.checks += 1
        if status is Status.DOWN:
            self.failures += 1
            self._down += 1
        elif latency is not None and not math.isnan(latency):
            insort(ordered, latency)
            self._sum += latency
            if not math.isnan(self._newest_answered):
                self._jitter_sum += abs(latency - self._newest_answered)
            self._newest_answered = latency
        if self._evictions >= samples.size:
            self._resum()

    def _resum(self) -> None:
        """Recompute the running sums exactly, once per window's worth of
        evictions, so float rounding never accumulates (amortised O(1))."""
        latencies = self.samples.answered_latencies()
        self._sum = math.fsum(latencies)
        self._jitter_sum = math.fsum(abs(b - a) for a, b in pairwise(latencies))
        self._evictions = 0

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
        samples, ordered = self.samples, self._ordered
        answered = len(ordered)
        count = len(samples)
        last = samples.last()
        return Summary(
            count=count,
            last_ms=last.latency_ms if last is not None else None,
            min_ms=ordered[0] if answered else None,
            avg_ms=self._sum / answered if answered else None,
            max_ms=ordered[-1] if answered else None,
            p50_ms=percentile(ordered, 0.50) if answered else None,
            p95_ms=percentile(ordered, 0.95) if answered else None,
            jitter_ms=max(0.0, self._jitter_sum) / (answered - 1) if answered >= 2 else None,
            loss_pct=100.0 * self._down / count if count else None,
            uptime_pct=self.uptime_pct(now),
            checks=self.checks,
            failures=self.failures,
        )


class SavedStats(NamedTuple):
    """A `RollingStats` as plain values, for a process that mirrors it
    (a dashboard attaching to a service): samples oldest first."""
    started: bytes             # array("d") bytes: monotonic starts
    latency: bytes             # array("d") bytes: NaN where nothing answered
    status: bytes              # one status code a sample
    checks: int
    failures: int
    state: str                 # State value
    state_since: float | None
    up_seconds: float
    known_seconds: float


def save_stats(stats: RollingStats) -> SavedStats:
    ring = stats.samples
    order = ring._indices()
    started, latency = array("d", (ring.started[i] for i in order)), \
        array("d", (ring.latency[i] for i in order))
    return SavedStats(started.tobytes(), latency.tobytes(), bytes(ring.status[i] for i in order),
                      stats.checks, stats.failures, stats._state.value, stats._state_since,
                      stats._up_seconds, stats._known_seconds)


def restore_stats(saved: SavedStats, size: int) -> RollingStats:
    """A `RollingStats` of `size` samples holding the newest of `saved`, with
    its totals and time in state, summing as if it had seen them itself."""
    stats = RollingStats(size)
    started, latency = array("d"), array("d")
    started.frombytes(saved.started)
    latency.frombytes(saved.latency)
    keep = min(size, len(saved.status))
    ring = stats.samples
    ring.started, ring.latency = started[len(started) - keep:], latency[len(latency) - keep:]
    ring.status = bytearray(saved.status[len(saved.status) - keep:])
    answered = [latency for latency, code in zip(ring.latency, ring.status)
                if code != _DOWN and not math.isnan(latency)]
    stats._ordered = array("d", sorted(answered))
    stats._newest_answered = answered[-1] if answered else math.nan
    stats._down = ring.status.count(_DOWN)
    stats._resum()
    stats.checks, stats.failures = saved.checks, saved.failures
    stats._state, stats._state_since = State(saved.state), saved.state_since
    stats._up_seconds, stats._known_seconds = saved.up_seconds, saved.known_seconds
    return stats
