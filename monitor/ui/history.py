"""The board's past, read from the history database at start.

The engine process writes history; the dashboard only reads it (read-only:
it works beside any writer). At start each target's recent samples and
events come back onto the board before the first new probe, so a restart
looks like a continuation; its state stays PENDING until probed again (a
state from before the restart is history, not a claim about now). Uptime
windows (1 h, 24 h, 7 d, 30 d) are read again now and then, in a thread.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from monitor.config.model import Config
from monitor.engine.board import Board
from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Transition
from monitor.store.connect import HistoryError
from monitor.store.history import HistoryStore
from monitor.store.location import history_location
from monitor.store.uptime import Outage
from monitor.store.views import RANGES, WINDOWS, Series, StoredEvent, WindowUptime

SAMPLES_AT_START = 120    # per target: a sparkline and a chart's worth, not the whole window
EVENTS_AT_START = 200     # in all, newest kept: the event log's worth
UPTIME_EVERY = 60.0       # seconds between reads of the board's uptime windows
INCIDENTS_SHOWN = 20      # the detail screen's list: the most recent ones
_STATES = {state.value: state for state in State}


class Seen(NamedTuple):
    """What a view's statistics take from an earlier result (not the last
    one, nor the last failure: those stay whole ProbeResults)."""
    started: float
    latency_ms: float | None
    status: Status
    phases_ms: dict[str, float]
    ok: bool


@dataclass
class Past:
    """What history knew at start."""
    samples: dict[str, list[ProbeResult | Seen]] = field(default_factory=dict)
    events: list[Transition] = field(default_factory=list)
    error: str | None = None     # why nothing could be read (None: read, or no history yet)


def open_reader(config: Config) -> HistoryStore | None:
    """The config's history, read-only; None when history is off or not
    written yet. Raises HistoryError when it cannot be read."""
    where = history_location(config)
    if where is None or where == ":memory:":
        return None
    try:
        return HistoryStore.open(where, read_only=True)
    except HistoryError as exc:
        if "no history yet" in str(exc):
            return None
        raise


def has_history(config: Config) -> bool:
    """Whether the config has a history database to read (a stat, no open):
    a board without one starts at once instead of waiting on a thread."""
    where = history_location(config)
    return where is not None and where != ":memory:" and os.path.exists(where)


def read_past(config: Config, now_mono: float) -> Past:
    """Recent samples and events of the config's targets (in a thread: at
    1,000 targets this reads 120,000 rows). Monotonic times are placed on the
    caller's clock, as if the samples had been taken by this run."""
    try:
        store = open_reader(config)
        if store is None:
            return Past()
        try:
            names = [t.name for t in config.targets]
            stored = store.recent_samples(names, limit=min(SAMPLES_AT_START,
                                                           config.settings.history))
            events = store.events(limit=EVENTS_AT_START)
        finally:
            store.close()
    except HistoryError as exc:
        return Past(error=str(exc))
    offset = now_mono - time.time()   # wall seconds -> this process's monotonic clock
    targets = {t.name: t for t in config.targets}
    samples: dict[str, list[ProbeResult | Seen]] = {}
    for name, rows in stored.items():
        target = targets[name]
        # a whole ProbeResult only where the board keeps one (the last result
        # and the last failure): 120,000 of them took 0.8 s of a 1,000-target start
        whole = {len(rows) - 1}
        failed = [i for i, row in enumerate(rows) if row.status is not Status.UP]
        whole.update(failed[-1:])
        results: list[ProbeResult | Seen] = []
        for index, row in enumerate(rows):
            if index in whole:
                result = row.as_result(target.kind, target.display_target)
                result.started = row.at + offset
                results.append(result)
            else:
                results.append(Seen(row.at + offset, row.latency_ms, row.status, row.phases_ms,
                                    row.status is Status.UP))
        samples[name] = results
    return Past(samples, [t for e in events if (t := _transition(e, offset)) is not None
                          and t.name in targets])


def _transition(event: StoredEvent, offset: float) -> Transition | None:
    before, after = _STATES.get(event.from_state), _STATES.get(event.to_state)
    if before is None or after is None:   # "removed": the target left the config then
        return None
    return Transition(event.name, before, after, event.reason,
                      datetime.fromtimestamp(event.at, UTC), event.at + offset,
                      event.previous_for)


def apply_past(board: Board, past: Past) -> None:
    """Samples and events onto the board; states untouched (PENDING)."""
    for name, results in past.samples.items():
        view = board.views.get(name)
        if view is None:
            continue
        for result in results:
            view.apply_result(result)  # type: ignore[arg-type]  # a Seen reads as one
    for transition in past.events:
        board.events.append(transition)
        view = board.views.get(transition.name)
        if view is not None:
            view.events.append(transition)


def _holes(config: Config, now: float | None = None):  # noqa: ANN202
    """Maintenance windows of the longest uptime window, left out of uptime
    (unless `maintenance_uptime = "include"`)."""
    from datetime import timedelta

    from monitor.alerts.maintenance import uptime_holes
    moment = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return uptime_holes(config, moment, timedelta(seconds=max(WINDOWS)))


def read_uptime(config: Config) -> dict[str, list[WindowUptime]]:
    """Every target's uptime windows now (in a thread); {} without history."""
    try:
        store = open_reader(config)
    except HistoryError:
        return {}
    if store is None:
        return {}
    try:
        return store.uptime([t.name for t in config.targets], holes=_holes(config))
    except HistoryError:
        return {}
    finally:
        store.close()


@dataclass
class TargetHistory:
    """What the detail screen shows of one target's past."""
    name: str
    range: str | None                 # a RANGES key; None: live (no chart from history)
    windows: list[WindowUptime] = field(default_factory=list)
    incidents: list[Outage] = field(default_factory=list)   # newest first, bounded
    incident_count: int = 0           # in the incidents' window, shown or not
    incidents_over: str = "24h"       # the window the incidents are from
    series: Series | None = None
    error: str | None = None          # why nothing could be read
    off: bool = False                 # history is off, or nothing written yet


def read_target(config: Config, name: str, range_: str | None, points: int,
                now: float | None = None) -> TargetHistory:
    """One target's windows, incidents in the chart's range (24 h while the
    chart is live) and, for a range, its chart series (in a thread)."""
    over = range_ or "24h"
    out = TargetHistory(name, range_, incidents_over=over)
    try:
        store = open_reader(config)
    except HistoryError as exc:
        out.error = str(exc)
        return out
    if store is None:
        out.off = True
        return out
    now = time.time() if now is None else now
    try:
        out.windows = store.uptime([name], WINDOWS, now=now,
                                   holes=_holes(config, now)).get(name, [])
        found = store.incidents(name, now - RANGES[over], now=now)
        out.incident_count = len(found)
        out.incidents = sorted(found, key=lambda o: o.start, reverse=True)[:INCIDENTS_SHOWN]
        if range_ is not None:
            out.series = store.series(name, range_, now=now, points=max(1, points))
    except HistoryError as exc:
        out.error = str(exc)
    finally:
        store.close()
    return out
