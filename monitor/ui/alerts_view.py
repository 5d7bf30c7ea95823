"""Alerts on the dashboard: each delivery's outcome in the event log (a toast
when one failed, the bell and a notification for a `bell` channel), and the
marks on rows a maintenance window or a DOWN parent keeps from alerting.

Maintenance is worked out here from the config (the same calendar the
engine's alert policy reads), and "unreachable via" from the board's own
parent states: neither needs a message from the engine.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text

from monitor.alerts.maintenance import Calendar
from monitor.alerts.sink import Delivery
from monitor.config.model import Config
from monitor.engine.board import Board, TargetView
from monitor.engine.state import State
from monitor.ui import format as fmt
from monitor.ui.eventlog import alert_line

if TYPE_CHECKING:
    from monitor.ui.app import MonitorApp

TOASTS_PER_FLUSH = 3   # a burst of failures is one look at the log, not a wall of toasts
MAINTENANCE_GLYPH = "⚒"
UNREACHABLE_GLYPH = "⤳"
# a child that answers is not cut off, whatever its parent says
_SHOWS_UNREACHABLE = (State.DOWN, State.DEGRADED, State.PENDING)


def show_alerts(app: MonitorApp, deliveries: deque[Delivery]) -> None:
    """Drain `deliveries` into the log, toasts and the bell."""
    toasts: list[tuple[str, str, str]] = []   # (message, title, severity)
    while deliveries:
        delivery = deliveries.popleft()
        app.events.write(alert_line(delivery, app.palette))
        toast = _toast(delivery)
        if toast is not None:
            toasts.append(toast)
        if delivery.outcome == "bell":
            app.bell()
    for message, title, severity in toasts[:TOASTS_PER_FLUSH]:
        # the text is the network's and the config's (a reason phrase, a name):
        # shown as it is, never read as markup ("[/x]" raised MarkupError)
        app.notify(message, title=title, severity=severity,   # type: ignore[arg-type]
                   timeout=10 if severity == "error" else 6, markup=False)
    if len(toasts) > TOASTS_PER_FLUSH:
        app.notify(f"{len(toasts) - TOASTS_PER_FLUSH} more: see the event log (e)",
                   title="Alerts", severity="warning", timeout=6, markup=False)


def _toast(delivery: Delivery) -> tuple[str, str, str] | None:
    what = delivery.alert.summary() if delivery.alert is not None else ""
    where = f"{delivery.channel} ({delivery.channel_kind})"
    if delivery.outcome == "bell":
        event = delivery.alert.event if delivery.alert is not None else ""
        severity = {"down": "error", "up": "information"}.get(event, "warning")
        return what, "Alert", severity
    if delivery.outcome == "failed":
        return f"{what}\n{delivery.detail}", f"Alert not delivered: {where}", "error"
    if delivery.outcome == "dropped":
        return f"{what}\n{delivery.detail}", f"Alert dropped: {where}", "warning"
    if delivery.outcome == "notice":
        return delivery.detail, "Alerts", "warning"
    return None   # sent, retrying, held: the log says so


# ---------------------------------------------------------------- row marks

@dataclass(frozen=True, slots=True)
class Mark:
    glyph: str
    words: str    # "maintenance: nightly until 03:30 UTC" / "unreachable via gateway"


class Marks:
    """Which targets are in a maintenance window or cut off by a DOWN parent,
    brought up to date on each refresh. Only targets that have a window or a
    parent are looked at, so a board without either costs nothing."""

    def __init__(self, config: Config) -> None:
        self.marks: dict[str, Mark] = {}
        self.follow(config)

    def follow(self, config: Config) -> None:
        self.calendar = Calendar.of(config)
        self.parents = {t.name: t.depends_on for t in config.targets if t.depends_on}
        self.watched = [t.name for t in config.targets
                        if t.depends_on or any(w.covers(t) for w in config.maintenance)]

    def get(self, name: str) -> Mark | None:
        return self.marks.get(name)

    def refresh(self, board: Board, at: datetime) -> set[str]:
        """Recompute; the names whose mark came, went or changed."""
        fresh: dict[str, Mark] = {}
        views = board.views
        for name in self.watched:
            mark = self._mark(name, views, at)
            if mark is not None:
                fresh[name] = mark
        changed = {n for n in fresh.keys() | self.marks.keys()
                   if fresh.get(n) != self.marks.get(n)}
        self.marks = fresh
        return changed

    def _mark(self, name: str, views: dict[str, TargetView], at: datetime) -> Mark | None:
        window = self.calendar.in_maintenance(name, at)
        if window is not None:
            return Mark(MAINTENANCE_GLYPH, f"maintenance: {window.name} until "
                                           f"{until(window.end, at)}")
        view = views.get(name)
        if view is None or view.state not in _SHOWS_UNREACHABLE:
            return None
        for parent in self.parents.get(name, ()):
            seen = views.get(parent)
            if seen is not None and seen.state is State.DOWN:
                return Mark(UNREACHABLE_GLYPH, f"unreachable via {parent}")
        return None

    def apply(self, view: TargetView, cells: dict[str, Text], widths: dict[str, int],
              palette: fmt.Palette) -> dict[str, Text]:
        """A marked row: the glyph in its state cell, the words before its
        error. Built from the view, so marking marked cells changes nothing."""
        mark = self.marks.get(view.target.name)
        if mark is None:
            return cells
        cells = dict(cells)
        if "state" in cells:
            cells["state"] = Text(f"{mark.glyph} {fmt.LABELS[view.state]}",
                                  style=palette.states[view.state])
        if "error" in cells:
            error = cells["error"]
            if not error.plain.startswith(mark.words):
                marked = Text(mark.words, style=palette.accent)
                if error.plain:
                    marked.append(" · ")
                    marked.append_text(error)
                marked.truncate(widths.get("error", marked.cell_len), overflow="ellipsis")
                cells["error"] = marked
        return cells


def until(end: datetime, now: datetime) -> str:
    """'03:30 UTC' today, 'Jun 14 03:30 UTC' another day."""
    end, now = end.astimezone(UTC), now.astimezone(UTC)
    return end.strftime("%H:%M UTC" if end.date() == now.date() else "%b %d %H:%M UTC")


def mark_text(mark: Mark | None, palette: fmt.Palette) -> Text:
    """The mark's words for a line that names one target (selection, detail)."""
    return Text("") if mark is None else Text(f"{mark.glyph} {mark.words}  ", style=palette.accent)

