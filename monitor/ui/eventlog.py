"""Lines of the event log: state changes, alert deliveries, engine errors,
and the engine's own deaths and restarts."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from monitor.alerts.sink import Delivery
from monitor.config.durations import format_duration
from monitor.engine.board import BoardChange
from monitor.engine.client import EngineDown
from monitor.engine.sinks import ConfigRejected, ConfigReloaded
from monitor.engine.state import State, Transition
from monitor.ui import format as fmt


def transition_line(t: Transition, palette: fmt.Palette) -> Text:
    line = Text(f"{t.at.astimezone():%H:%M:%S} ")
    line.append(f"{fmt.GLYPHS[t.to_state]} {t.name} ", style=palette.states[t.to_state])
    line.append(f"{t.from_state.value} → {t.to_state.value}")
    if t.previous_for is not None and t.from_state not in (State.PENDING,):
        line.append(f" after {format_duration(round(t.previous_for))}", style=palette.muted)
    if t.reason:
        line.append(f"  {t.reason}")
    return line


def error_line(message: str, at: datetime, palette: fmt.Palette) -> Text:
    return Text(f"{at:%H:%M:%S} engine: {message}", style=palette.error)


def engine_down_line(down: EngineDown, at: datetime, palette: fmt.Palette) -> Text:
    # what happens next first: the reason can be long, and the log does not wrap
    what = "stopped" if down.tries == 0 else f"restart {down.tries} failed"
    if down.retry_in is None:
        then = "not restarting it again, nothing is being measured"
    else:
        then = f"restarting in {down.retry_in:g}s (try {down.tries + 1})"
    return error_line(f"{what}, {then}: {down.reason}", at, palette)


def engine_up_line(restarts: int, at: datetime, palette: fmt.Palette) -> Text:
    return Text(f"{at:%H:%M:%S} engine: running again (restart {restarts}); "
                f"targets pending until checked anew", style=palette.states[State.UP])


def reload_line(event: ConfigReloaded, change: BoardChange, at: datetime,
                palette: fmt.Palette) -> Text:
    """"config reloaded: +2 −1 ~1 (+web, −old, ~api)": what the board did."""
    named = [f"{sign}{name}" for sign, names in (("+", change.added), ("\u2212", change.removed),
                                                 ("~", change.changed)) for name in names]
    shown = ", ".join(named[:6]) + (f", +{len(named) - 6} more" if len(named) > 6 else "")
    counts = f"+{len(change.added)} \u2212{len(change.removed)} ~{len(change.changed)}"
    settings = f", settings: {', '.join(event.settings)}" if event.settings else ""
    by = {"signal": " (SIGHUP)", "command": " (asked)", "file": ""}.get(event.source, "")
    return Text(f"{at:%H:%M:%S} config reloaded{by}: {counts}{settings}"
                + (f" ({shown})" if shown else ""), style=palette.states[State.UP])


def rejected_lines(event: ConfigRejected, at: datetime, palette: fmt.Palette) -> list[Text]:
    count = len(event.problems)
    head = Text(f"{at:%H:%M:%S} config not reloaded ({count} problem{'s' if count != 1 else ''}); "
                "the last good config keeps running", style=palette.error)
    return [head, *(Text(f"  {problem}", style=palette.error) for problem in event.problems)]


def alert_line(delivery: Delivery, palette: fmt.Palette) -> Text:
    """'10:42:03 alert ops (webhook) sent: DOWN api (...) [HTTP 200]', in the
    colour of how it went: a failed delivery must not read like a sent one."""
    style = {"sent": palette.states[State.UP], "bell": palette.accent,
             "retrying": palette.warning, "notice": palette.warning, "held": palette.muted,
             }.get(delivery.outcome, palette.error)
    return Text(f"{delivery.at.astimezone():%H:%M:%S} {delivery.text()}", style=style)
