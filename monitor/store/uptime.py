"""Uptime maths, pure: from the monitor's running spans and a target's state
changes to time in each state, uptime over a window, its data coverage and
the outages in it.

Time counts only in a confirmed state (UP, DEGRADED, DOWN) while the monitor
ran. At each start of the monitor a target's state is unknown until the
engine confirms one (the engine starts every target PENDING), so time the
monitor was not running, pending, paused or removed from the config is "no
data", counted neither way: the monitor never counts its own downtime as up
(Uptime Kuma #6475). DEGRADED counts as up, as in the dashboard's live
uptime; its time is reported on its own too.

All times are integer epoch milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.store.codec import STATE_CODE
from monitor.engine.state import State

UP = STATE_CODE[State.UP]
DEGRADED = STATE_CODE[State.DEGRADED]
DOWN = STATE_CODE[State.DOWN]
PAUSED = STATE_CODE[State.PAUSED]
REMOVED = len(STATE_CODE)   # a pseudo-state: the target left the config (a reload)
CONFIRMED = (UP, DEGRADED, DOWN)


@dataclass(frozen=True, slots=True)
class Run:
    """A span the monitor ran: `end` is when it stopped, or the last moment it
    is known to have run (kill -9 leaves no stop); `live`: still running."""
    id: int
    start: int
    end: int
    live: bool = False


@dataclass(frozen=True, slots=True)
class Change:
    at: int
    run: int
    state: int             # a STATE_CODE or REMOVED
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    state: int
    reason: str | None     # why it entered this state
    ended_by: int | None   # the state after it; None: the run ended (or goes on, if live)
    live: bool = False     # the run still goes on: `end` is "now"


@dataclass(frozen=True, slots=True)
class Tally:
    window_ms: int
    up_ms: int
    degraded_ms: int
    down_ms: int

    @property
    def known_ms(self) -> int:
        return self.up_ms + self.degraded_ms + self.down_ms

    @property
    def uptime_pct(self) -> float | None:
        """Time UP or DEGRADED over time in a confirmed state; None: no data."""
        known = self.known_ms
        return 100.0 * (self.up_ms + self.degraded_ms) / known if known else None

    @property
    def coverage_pct(self) -> float:
        """Share of the window with a confirmed state."""
        return 100.0 * self.known_ms / self.window_ms if self.window_ms > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Outage:
    start: int
    end: int                # when it ended, or the last moment known (see `ended`)
    reason: str | None
    ended: str              # "recovered", "paused", "removed", "monitor stopped", "ongoing"

    @property
    def duration_ms(self) -> int:
        return self.end - self.start

    def within(self, start: int, end: int) -> int:
        return max(0, min(self.end, end) - max(self.start, start))


def timeline(runs: Sequence[Run], changes: Iterable[Change]) -> list[Span]:
    """The spans a target spent in each known state, oldest first. Changes are
    in time order; one whose run is unknown (pruned) is ignored, and its time
    is clamped into its run's (a wall clock stepped back or forward)."""
    by_run: dict[int, list[Change]] = {}
    for change in changes:
        by_run.setdefault(change.run, []).append(change)
    spans: list[Span] = []
    for run in runs:
        own = by_run.get(run.id)
        if not own:
            continue
        state: int | None = None
        reason: str | None = None
        since = run.start
        for change in own:
            at = min(max(change.at, since), run.end)
            if state is not None and at > since:
                spans.append(Span(since, at, state, reason, change.state))
            state, reason, since = change.state, change.reason, at
        if state is not None and run.end > since:
            spans.append(Span(since, run.end, state, reason, None, run.live))
    return spans


def tally(spans: Sequence[Span], start: int, end: int) -> Tally:
    """Time in each confirmed state within [start, end)."""
    totals = {UP: 0, DEGRADED: 0, DOWN: 0}
    for span in spans:
        if span.end <= start or span.start >= end or span.state not in totals:
            continue
        totals[span.state] += min(span.end, end) - max(span.start, start)
    return Tally(max(0, end - start), totals[UP], totals[DEGRADED], totals[DOWN])


_ENDED = {UP: "recovered", DEGRADED: "recovered", PAUSED: "paused", REMOVED: "removed"}


def outages(spans: Sequence[Span], start: int, end: int) -> list[Outage]:
    """Every DOWN span that overlaps [start, end), whole (not clipped)."""
    found = []
    for span in spans:
        if span.state != DOWN or span.end <= start or span.start >= end:
            continue
        if span.ended_by is not None:
            ended = _ENDED.get(span.ended_by, "recovered")
        else:
            ended = "ongoing" if span.live else "monitor stopped"
        found.append(Outage(span.start, span.end, span.reason, ended))
    return found
