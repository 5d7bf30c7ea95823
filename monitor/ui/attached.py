"""A dashboard attached to a service: taking the service's board.

The snapshot comes in line with the engine's ups and downs (`Inbox.changes`),
so a connection lost and made again within one refresh is applied in order:
the board forgets the lost connection's states, then takes the new snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from monitor.engine.state import State
from monitor.service.snapshot import BoardSnapshot, load_snapshot, recent_events
from monitor.ui.eventlog import transition_line

if TYPE_CHECKING:
    from monitor.ui.app import MonitorApp

EVENTS_SHOWN = 20   # on attaching, the newest state changes go to the event log


def take_snapshot(app: MonitorApp, snapshot: BoardSnapshot) -> set[str]:
    """Make the board the service's; the names whose rows changed."""
    first = not any(True for _ in app.board.events)
    touched = load_snapshot(app.board, snapshot)
    if app.inbox.loading is snapshot:
        app.inbox.loading = None
    log, at = app.events, app.wall_now()
    style = app.palette.states[State.UP]
    if snapshot.dropped or snapshot.lost:
        log.write(Text(f"{at:%H:%M:%S} service: {snapshot.dropped} updates dropped while this "
                       "screen fell behind; board taken afresh", style=app.palette.warning))
    else:
        log.write(Text(f"{at:%H:%M:%S} {snapshot.service.label()}: board as of "
                       f"{snapshot.taken_at.astimezone():%H:%M:%S}", style=style))
    if first:
        for transition in recent_events(snapshot, EVENTS_SHOWN):
            log.write(transition_line(transition, app.palette))
    return touched
