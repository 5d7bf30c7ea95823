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
from typing import NamedTuple

from monitor.store.codec import STATE_CODE
from monitor.engine.state import State

UP = STATE_CODE[State.UP]
DEGRADED = STATE_CODE[State.DEGRADED]
DOWN = STATE_CODE[State.DOWN]
PAUSED = STATE_CODE[State.PAUSED]
REMOVED = len(STATE_CODE)   # a pseudo-state: the target left the config (a reload)
CONFIRMED = (UP, DEGRADED, DOWN)


class Run(NamedTuple):
    """A span the monitor ran: `end` is when it stopped, or the last moment it
    is known to have run (kill -9 leaves no stop); `live`: still running."""
    id: int
    start: int
    end: int
    live: bool = False


class Change(NamedTuple):
    at: int
    run: int
    state: int             # a STATE_CODE or REMOVED
    reason: str | None = None


class Span(NamedTuple):
    start: int
    end: int
    state: int
    reason: str | None     # why it entered this state
    ended_by: int | None   # the state after it; None: the run ended (or goes on, if live)
    live: bool = False     # the run still goes on: `end` is "now"


class Tally(NamedTuple):
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


class Outage(NamedTuple):
    start: int
    end: int                # when it ended, or the last moment known (see `ended`)
    reason: str | None
    ended: str              # "recovered", "paused", "removed", "monitor stopped", "ongoing"

    @property
    def duration_ms(self) -> int:
        return self.end - self.start

    def within(self, start: int, end: int) -> int:
        return max(0, min(self.end, end) - max(self.start, start))


def timeline(runs: Sequence[Run], changes: Iterable[tuple[int, int, int, str | None]]) -> list[Span]:
    """The spans a target spent in each known state, oldest first. Changes
    (Change or plain (at, run, state, reason) tuples) are in time order; one
    whose run is unknown (pruned) is ignored, and its time is clamped into its
    run's (a wall clock stepped back or forward)."""
    by_run: dict[int, list[tuple[int, int, int, str | None]]] = {}
    for change in changes:
        by_run.setdefault(change[1], []).append(change)
    spans: list[Span] = []
    for run_id, start, end, live in runs:
        own = by_run.get(run_id)
        if not own:
            continue
        state: int | None = None
        reason: str | None = None
        since = start
        for at, _run, to, why in own:
            at = end if at > end else since if at < since else at
            if state is not None and at > since:
                spans.append(Span(since, at, state, reason, to))
            state, reason, since = to, why, at
        if state is not None and end > since:
            spans.append(Span(since, end, state, reason, None, live))
    return spans


def carve(spans: Sequence[Span], holes: Sequence[tuple[int, int]]) -> list[Span]:
    """`spans` without the time in `holes` (sorted, disjoint [start, end)
    epoch-ms spans: maintenance windows): that time becomes no data, counted
    neither way. A span a hole cuts in two keeps its state on both sides."""
    if not holes:
        return list(spans)
    out: list[Span] = []
    for span in spans:
        start = span.start
        for hole_start, hole_end in holes:
            if hole_end <= start or hole_start >= span.end:
                continue
            if hole_start > start:
                out.append(span._replace(start=start, end=hole_start))
            start = max(start, hole_end)
            if start >= span.end:
                break
        if start < span.end:
            out.append(span._replace(start=start))
    return out


def tally(spans: Sequence[Span], start: int, end: int) -> Tally:
    """Time in each confirmed state within [start, end)."""
    totals = {UP: 0, DEGRADED: 0, DOWN: 0}
    for span in spans:
        if span.end <= start or span.start >= end or span.state not in totals:
            continue
        totals[span.state] += min(span.end, end) - max(span.start, start)
    return Tally(max(0, end - start), totals[UP], totals[DEGRADED], totals[DOWN])


def window_tallies(spans: Sequence[Span], end: int,
                   lengths: Sequence[int]) -> list[tuple[Tally, int]]:
    """(Tally, outages begun or going on) of each window [end - length, end),
    walking the spans newest first and each window only as far back as it
    reaches: the uptime of every window of a thousand targets in one pass."""
    out = []
    for length in lengths:
        start = end - length
        totals = {UP: 0, DEGRADED: 0, DOWN: 0}
        down = 0
        for span in reversed(spans):
            if span.end <= start:
                break
            if span.start >= end or span.state not in totals:
                continue
            totals[span.state] += min(span.end, end) - max(span.start, start)
            down += span.state == DOWN
        out.append((Tally(max(0, length), totals[UP], totals[DEGRADED], totals[DOWN]), down))
    return out


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
