"""The board as messages: what a viewer gets first, and again after a gap.

A snapshot is a header (the service, the config text it runs, its
statistics), the targets' views in messages of VIEWS_PER_MESSAGE each (so no
frame grows past `wire.MAX_FRAME` however many targets there are), and an
end mark. It is made in one go on the engine's loop, so nothing comes
between its messages, and everything after it in the stream is news.

A view carries what the service's `TargetView` knows: state and since, the
rolling samples and totals (`stats.SavedStats`), phase sums, the last result
and last failure, recent state changes, and `windows`: uptime over longer
windows from a history store, where the service has one (`WindowsSource`;
empty until then).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice

from monitor.engine.board import Board, TargetView
from monitor.engine.result import ProbeResult
from monitor.engine.state import State, Transition
from monitor.engine.stats import SavedStats
from monitor.engine.wire import (
    EngineStats,
    Message,
    WireError,
    result_from_message,
    result_message,
    stats_from_message,
    stats_message,
    transition_from_message,
    transition_message,
)

PROTOCOL = 1
VIEWS_PER_MESSAGE = 50
SNAPSHOT_KINDS = ("snapshot", "snapshot_views", "snapshot_end")

# name -> {"24h": 99.9, "30d": 99.95, ...}: uptime windows from a history store
WindowsSource = Callable[[str], dict[str, float | None]]


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    pid: int
    started_at: datetime      # UTC
    config_path: str
    version: str

    def label(self, wide: bool = True) -> str:
        """'attached to service (pid 812, up since 14:02)' (a date when not today)."""
        started = self.started_at.astimezone()
        today = datetime.now(started.tzinfo).date() == started.date()
        since = f"{started:%H:%M}" if today else f"{started:%b %d %H:%M}"
        if wide:
            return f"attached to service (pid {self.pid}, up since {since})"
        return f"service pid {self.pid} since {since}"


@dataclass(slots=True)
class ViewSnapshot:
    name: str
    state: State
    since: float                      # monotonic (one clock for every process of a machine)
    stats: SavedStats
    phase_sums: dict[str, list[float]]
    last: ProbeResult | None
    last_failure: ProbeResult | None
    events: list[Transition]
    windows: dict[str, float | None]


@dataclass(slots=True)
class BoardSnapshot:
    service: ServiceInfo
    config_text: str
    stats: EngineStats
    taken_at: datetime
    dropped: int                      # results this viewer missed before it (0 the first time)
    lost: int                         # state changes it missed
    views: dict[str, ViewSnapshot]    # in the config's order
    # results that reached the dashboard after it, before it was applied
    trailing: list[ProbeResult] = field(default_factory=list)


def snapshot_messages(service: ServiceInfo, config_text: str, views: Mapping[str, TargetView],
                      stats: EngineStats, dropped: int = 0, lost: int = 0,
                      windows: WindowsSource | None = None) -> list[Message]:
    messages: list[Message] = [
        ("snapshot", PROTOCOL, service.pid, service.started_at.timestamp(), service.config_path,
         service.version, config_text, stats_message(stats)[1:], len(views), dropped, lost,
         datetime.now(UTC).timestamp())]
    items = iter(views.items())
    while chunk := list(islice(items, VIEWS_PER_MESSAGE)):
        messages.append(("snapshot_views",
                         [_view_message(name, view, windows) for name, view in chunk]))
    messages.append(("snapshot_end",))
    return messages


def _view_message(name: str, view: TargetView, windows: WindowsSource | None) -> tuple:
    stats, phase_sums = view.saved_stats()
    return (name, view.state.value, view.since, tuple(stats), phase_sums,
            None if view.last is None else result_message(view.last),
            None if view.last_failure is None else result_message(view.last_failure),
            [transition_message(t) for t in view.events],
            {} if windows is None else windows(name))


def _view_from_message(m: tuple) -> ViewSnapshot:
    name, state, since, stats, phase_sums, last, failure, events, windows = m
    return ViewSnapshot(name, State(state), since, SavedStats(*stats), phase_sums,
                        None if last is None else result_from_message(last),
                        None if failure is None else result_from_message(failure),
                        [transition_from_message(t) for t in events], windows)


class SnapshotReader:
    """Puts a snapshot together from its messages, as they arrive."""

    def __init__(self) -> None:
        self._building: BoardSnapshot | None = None
        self._expected = 0

    @property
    def reading(self) -> bool:
        return self._building is not None

    def feed(self, message: Message) -> BoardSnapshot | None:
        """Take one snapshot message; the snapshot once its end came. Raises
        WireError for messages out of order or of another protocol."""
        kind = message[0]
        if kind == "snapshot":
            self._begin(message)
            return None
        building = self._building
        if building is None:
            raise WireError(f"{kind} message outside a snapshot")
        if kind == "snapshot_views":
            for item in message[1]:
                view = _view_from_message(item)
                building.views[view.name] = view
            return None
        self._building = None
        if len(building.views) != self._expected:
            raise WireError(f"snapshot of {self._expected} targets ended after "
                            f"{len(building.views)}")
        return building

    def _begin(self, m: Message) -> None:
        if m[1] != PROTOCOL:
            raise WireError(f"the service speaks protocol {m[1]!r}, this monitor {PROTOCOL}: "
                            "restart the service with this version, or use --standalone")
        (_, _, pid, started, path, version, text, stats, count, dropped, lost, taken) = m
        self._expected = count
        self._building = BoardSnapshot(
            ServiceInfo(pid, datetime.fromtimestamp(started, UTC), path, version), text,
            stats_from_message(("stats", *stats)), datetime.fromtimestamp(taken, UTC),
            dropped, lost, {})


def load_snapshot(board: Board, snapshot: BoardSnapshot) -> set[str]:
    """Make `board` what the service knew when it took `snapshot`, then
    apply the results that came after it. The names whose rows changed.
    (Targets the board does not have are skipped: the board follows the
    snapshot's config first.)"""
    touched = set()
    for name, saved in snapshot.views.items():
        view = board.views.get(name)
        if view is None:
            continue
        view.restore(saved.state, saved.since, saved.stats, saved.phase_sums, saved.last,
                     saved.last_failure, saved.events)
        touched.add(name)
    board.events.clear()
    board.events.extend(recent_events(snapshot, board.events.maxlen))
    for result in snapshot.trailing:
        if board.apply_result(result) is not None:
            touched.add(result.name)
    snapshot.trailing.clear()
    return touched


def recent_events(snapshot: BoardSnapshot, count: int | None) -> list[Transition]:
    """The newest `count` state changes over all targets, oldest first."""
    events = sorted((t for v in snapshot.views.values() for t in v.events),
                    key=lambda t: t.monotonic)
    return events if count is None else events[-count:]
