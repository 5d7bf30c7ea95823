"""What the engine tells the dashboard, and what the dashboard may say about
the engine itself.

The engine's messages are only queued here; the app applies them on its next
refresh. An engine's deaths and restarts queue in the same line as state
changes: a dead worker's last transitions must land before the board forgets
its states, and a new worker's first ones after.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from monitor.alerts.sink import Delivery
from monitor.engine.board import Board
from monitor.engine.client import STATS_EVERY, EngineDown, EngineStats
from monitor.engine.result import ProbeResult
from monitor.engine.sinks import ConfigRejected, ConfigReloaded
from monitor.engine.state import State, Transition
from monitor.service.snapshot import BoardSnapshot, ServiceInfo

# A live engine reports its statistics every STATS_EVERY seconds; this much
# silence means it is stuck (or the pipe is), however alive its process looks.
SILENT_AFTER = 5 * STATS_EVERY


@dataclass(frozen=True, slots=True)
class EngineUp:
    restarts: int   # 0 for the first start


class Inbox:
    """The engine's listener: queues everything for the next refresh."""

    def __init__(self) -> None:
        self.results: deque[ProbeResult] = deque()
        self.changes: deque[Transition | EngineDown | EngineUp] = deque()
        self.errors: deque[str] = deque()
        self.alerts: deque[Delivery] = deque()   # alert outcomes: log lines, toasts, the bell
        # config reloads (or the problems that stopped one): applied before
        # results, so a new target's first result finds its row
        self.configs: deque[ConfigReloaded | ConfigRejected] = deque()
        self.stats = EngineStats()
        self.heard = False   # the engine said something since the last refresh
        self.service: ServiceInfo | None = None   # attached to a service: which
        self.loading: BoardSnapshot | None = None   # a service's board, not applied yet

    def on_result(self, result: ProbeResult) -> None:
        # after a snapshot not yet applied: applied after it, not before
        (self.results if self.loading is None else self.loading.trailing).append(result)
        self.heard = True

    def on_snapshot(self, snapshot: BoardSnapshot) -> None:
        """A service's whole board (see monitor/ui/attached.py), in line with
        the engine's ups and downs."""
        self.changes.append(snapshot)   # type: ignore[arg-type]
        self.service, self.loading = snapshot.service, snapshot
        self.stats = snapshot.stats
        self.heard = True

    def on_transition(self, transition: Transition) -> None:
        self.changes.append(transition)
        self.heard = True

    def on_stats(self, stats: EngineStats) -> None:
        self.stats = stats
        self.heard = True

    def on_error(self, message: str) -> None:
        self.errors.append(message)

    def on_alert(self, delivery: Delivery) -> None:
        self.alerts.append(delivery)

    def on_engine_up(self, restarts: int) -> None:
        self.stats = EngineStats()   # rates and counts of a dead engine are not this one's
        self.changes.append(EngineUp(restarts))

    def on_engine_down(self, down: EngineDown) -> None:
        self.changes.append(down)

    def on_reload(self, event: ConfigReloaded) -> None:
        self.configs.append(event)

    def on_config_rejected(self, event: ConfigRejected) -> None:
        self.configs.append(event)


class Liveness(Enum):
    LIVE = "live"
    STALLED = "stalled"         # its process may be running, but nothing comes from it
    RESTARTING = "restarting"   # it died; another is about to be started
    GAVE_UP = "gave up"         # it died and could not be restarted: nothing measures


class EngineWatch:
    """Whether the engine is measuring, fed in the order the inbox received
    things, on the app's clock, and what to say when it is not. Anything but
    LIVE means the board shows the past, and must say so."""

    def __init__(self, now: float, silent_after: float = SILENT_AFTER,
                 wall: Callable[[], float] = time.time) -> None:
        self.silent_after = silent_after
        self.down: EngineDown | None = None
        self.started = False            # an engine has been up at least once
        self.liveness = Liveness.LIVE   # as judged by the last `judge`
        self._wall = wall
        self.heard_at = now
        self.heard_wall = wall()

    def heard(self, now: float) -> None:
        if self.down is None:
            self.heard_at = now
            self.heard_wall = self._wall()

    def went_down(self, down: EngineDown) -> bool:
        """A death or a failed restart; True for the first of an outage."""
        first = self.down is None
        self.down = down
        return first

    def came_up(self, now: float) -> None:
        self.down = None
        self.started = True
        self.heard(now)

    def judge(self, now: float) -> bool:
        """Bring `liveness` up to date; True when it changed."""
        if self.down is not None:
            liveness = Liveness.GAVE_UP if self.down.retry_in is None else Liveness.RESTARTING
        elif now - self.heard_at > self.silent_after:
            liveness = Liveness.STALLED
        else:
            liveness = Liveness.LIVE
        changed, self.liveness = liveness is not self.liveness, liveness
        return changed

    def since(self) -> str:
        """When the engine last spoke, as a wall clock reads."""
        return f"{datetime.fromtimestamp(self.heard_wall):%H:%M:%S}"

    def headline(self) -> str | None:
        """What the summary line says instead of counts and rates; None when live."""
        if self.liveness is Liveness.STALLED:
            what = "STALLED" if self.started else "SLOW TO START"
            return f"ENGINE {what}: silent since {self.since()}"
        if self.liveness is Liveness.RESTARTING and self.down is not None:
            return f"ENGINE DOWN: restarting (try {self.down.tries + 1})"
        if self.liveness is Liveness.GAVE_UP:
            return "ENGINE DOWN: could not be restarted"
        return None

    def stale_note(self) -> str | None:
        """What every row says while nothing is measured; None while live."""
        return None if self.liveness is Liveness.LIVE else f"no data since {self.since()}"

    def refusal(self) -> str | None:
        """Why a command cannot be sent now (no engine to take it), if so."""
        if self.liveness in (Liveness.RESTARTING, Liveness.GAVE_UP):
            return f"not sent: {self.headline()}"
        return None

    def given_up(self) -> str | None:
        """The reason, once the engine is dead for good."""
        if self.liveness is Liveness.GAVE_UP and self.down is not None:
            return f"the engine stopped and could not be restarted: {self.down.reason}"
        return None


def forget_states(board: Board, now: float) -> set[str]:
    """The engine that confirmed these states is gone: every target not
    paused goes back to PENDING (no confirmed state), as the next engine will
    start it, so the board claims nothing and the outage counts as neither up
    nor down time. The names that moved."""
    at = datetime.now(UTC)
    moved = set()
    for name, view in board.views.items():
        if view.state not in (State.PENDING, State.PAUSED):
            board.apply_transition(Transition(name, view.state, State.PENDING,
                                              "engine down: no data", at, now, now - view.since))
            moved.add(name)
    return moved
