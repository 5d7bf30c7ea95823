"""What the metrics export keeps per target, fed on the engine's loop.

The engine calls the sink once per result and transition; each call here is a
handful of assignments, so exporting costs the probes almost nothing. A
scrape reads these records from the HTTP server's thread without a lock:
every value a scrape needs whole (the last result, the uptime account, the
buckets) is swapped in by one reference assignment, which the GIL makes
atomic, so a scrape sees each of them before or after an update, never half
of one. Counters may be one probe apart from each other within a scrape; the
next scrape agrees again.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Protocol

from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Transition
from monitor.probes.base import PHASES

# Seconds. Loopback phases take tens of microseconds, far-away TLS handshakes
# hundreds of milliseconds, timeouts seconds: 1-2.5-5 steps cover all three.
PHASE_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# The states uptime counts: time UP or DEGRADED is up, time DOWN is down, and
# time PENDING or PAUSED (or with the monitor stopped) counts neither way, the
# dashboard's rule (engine/stats.py).
_UP_STATES = (State.UP, State.DEGRADED)


class UptimeAccount:
    """Time-weighted uptime since the monitor started, from transitions.

    The engine's own account (`RollingStats.set_state`) lives on the loop and
    changes in several steps per transition; a scrape in another thread
    could read it half-way. This one is an immutable value replaced whole.
    """

    __slots__ = ("up_s", "known_s", "state", "since")

    def __init__(self, state: State, since: float, up_s: float = 0.0,
                 known_s: float = 0.0) -> None:
        self.state, self.since, self.up_s, self.known_s = state, since, up_s, known_s

    def moved(self, state: State, at: float) -> UptimeAccount:
        span = max(0.0, at - self.since)
        up = self.up_s + (span if self.state in _UP_STATES else 0.0)
        known = self.known_s + (span if self.state in _UP_STATES or self.state is State.DOWN
                                else 0.0)
        return UptimeAccount(state, at, up, known)

    def ratio(self, now: float) -> float | None:
        """Share of known time spent up, 0..1; None before any known time."""
        up, known, state = self.up_s, self.known_s, self.state
        if state in _UP_STATES:
            span = max(0.0, now - self.since)
            up, known = up + span, known + span
        elif state is State.DOWN:
            known += max(0.0, now - self.since)
        return up / known if known > 0 else None


class UptimeSource(Protocol):
    """Where `monitor_uptime_ratio{window=...}` comes from.

    `SinceStart` (below) answers from what this process saw. The history
    store can answer longer windows ("24h", "7d", "30d") from its database:
    an object with its own `windows` and `ratio` passed to `MetricsSink`.
    `ratio` runs in the scrape's thread, once per target and window per
    scrape, so it must answer from memory (a cache the store refreshes), not
    query there.
    """

    windows: tuple[str, ...]

    def ratio(self, series: TargetSeries, window: int, now: float) -> float | None:
        """Uptime 0..1 of `series` over `windows[window]`; None: no data."""
        ...


class SinceStart:
    windows: tuple[str, ...] = ("since_start",)

    def ratio(self, series: TargetSeries, window: int, now: float) -> float | None:
        return series.uptime.ratio(now)


class TargetSeries:
    """One target's figures. `labels` is the rendered label set (without
    braces) the exposition writes; `version` changes with every update so
    the exposition re-renders only targets that changed (`cache` and
    `cache_version` are its)."""

    __slots__ = ("name", "kind", "labels", "state", "state_changed_at", "last", "cert_expiry",
                 "probes", "failures", "consecutive_failures", "latency_sum", "latency_count",
                 "uptime", "version", "cache", "cache_version", "_window", "_window_head", "_window_down",
                 "_cert_seen")

    def __init__(self, name: str, kind: str, labels: str, state: State, since: float,
                 changed_at: float, window: int) -> None:
        self.name = name
        self.kind = kind
        self.labels = labels
        self.state = state
        self.state_changed_at = changed_at     # wall clock, Unix seconds
        self.last: ProbeResult | None = None   # None while pending or paused
        self.cert_expiry: float | None = None  # Unix seconds, the last one seen
        self._cert_seen: object = None         # its datetime: converted once, not per probe
        self.probes = 0
        self.failures = 0                      # DOWN results
        self.consecutive_failures = 0
        self.latency_sum = 0.0                 # seconds, over answered probes
        self.latency_count = 0
        self.uptime = UptimeAccount(state, since)
        self.version = 0
        self.cache: tuple[str, ...] = ()
        self.cache_version = -1
        # DOWN (1) or not (0) for the last `window` results: the loss ratio
        # over the same span as the dashboard's loss (`[settings] history`)
        self._window = bytearray(window)
        self._window_head = 0
        self._window_down = 0

    @property
    def loss_ratio(self) -> float | None:
        seen = min(self.probes, len(self._window))
        return self._window_down / seen if seen else None

    def observe(self, result: ProbeResult) -> None:
        down = result.status is Status.DOWN
        self.probes += 1
        if down:
            self.failures += 1
            self.consecutive_failures += 1
        else:
            self.consecutive_failures = 0
        if result.latency_ms is not None:
            self.latency_sum += result.latency_ms / 1000.0
            self.latency_count += 1
        window, head = self._window, self._window_head
        self._window_down += down - window[head]
        window[head] = down
        self._window_head = (head + 1) % len(window)
        cert = result.cert
        if cert is not None and cert.expires_at != self._cert_seen:
            self._cert_seen = cert.expires_at
            self.cert_expiry = cert.expires_at.timestamp()
        if self.state is not State.PAUSED:   # a probe in flight as it was paused
            self.last = result
        self.version += 1

    def move(self, transition: Transition) -> None:
        self.state = transition.to_state
        self.state_changed_at = transition.at.timestamp()
        self.uptime = self.uptime.moved(transition.to_state, transition.monotonic)
        if transition.to_state in (State.PAUSED, State.PENDING):
            # no probe_* series for a target nobody probes: an alert on its
            # last result would fire for as long as it stays paused
            self.last = None
        self.version += 1

    def redefine(self, kind: str, labels: str, definition_changed: bool) -> None:
        """A reload changed its labels or its definition: the figures stay
        (as the engine keeps a changed target's history), but a certificate
        seen under the old definition says nothing about the new one."""
        self.kind, self.labels = kind, labels
        if definition_changed:
            self.cert_expiry = self._cert_seen = None
        self.version += 1


class PhaseHistogram:
    """Every probe's phases across all targets, by kind and phase: how long
    TLS handshakes take from here, say, at a cost that does not grow with
    the number of targets (per target it would be buckets x phases series)."""

    def __init__(self, buckets: tuple[float, ...] = PHASE_BUCKETS) -> None:
        self.buckets = buckets
        self._edges_ms = tuple(edge * 1000.0 for edge in buckets)   # no division per phase
        # kind -> phase -> [count per bucket..., the +Inf bucket's, sum in ms]; a
        # scrape reads copies (snapshot), a new key replaces the dict it is in
        self._kinds: dict[str, dict[str, list[float]]] = {}

    def observe(self, result: ProbeResult) -> None:
        phases = self._kinds.get(result.kind)
        if phases is None:
            phases = {}
            self._kinds = {**self._kinds, result.kind: phases}
        edges = self._edges_ms
        for phase, ms in result.phases_ms.items():
            cell = phases.get(phase)
            if cell is None:
                if phase not in PHASES:
                    continue
                cell = [0] * (len(edges) + 1) + [0.0]
                phases = {**phases, phase: cell}
                self._kinds = {**self._kinds, result.kind: phases}
            if ms >= 0.0:   # NaN fails this: one would poison the sum for good
                cell[bisect_left(edges, ms)] += 1
                cell[-1] += ms

    def snapshot(self) -> list[tuple[str, str, tuple[int, ...], float]]:
        """(kind, phase, counts per bucket, sum in seconds) per key; tuple()
        copies a list whole, so counts and sum agree with each other."""
        out = []
        for kind, phases in sorted(self._kinds.items()):
            for phase, cell in sorted(phases.items()):
                copy = tuple(cell)
                out.append((kind, phase, copy[:-1], copy[-1] / 1000.0))
        return out
