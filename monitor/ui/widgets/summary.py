"""The one-line header: counts by state, uptime, probe rate, own lag."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from monitor.engine.client import EngineStats
from monitor.engine.state import State
from monitor.ui import format as fmt


class SummaryBar(Static):
    _shown: Text | None = None

    DEFAULT_CSS = """
    SummaryBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, counts: dict[State, int], uptime: float | None, stats: EngineStats,
             palette: fmt.Palette, width: int, extra: list[str] | None = None) -> None:
        text = Text("monitor ", style="bold")
        for state in (State.UP, State.DEGRADED, State.DOWN, State.PAUSED, State.PENDING):
            if counts.get(state) or state in (State.UP, State.DOWN):
                label = state.value if width >= 100 else fmt.LABELS[state].lower()
                text.append(f"{fmt.GLYPHS[state]} {counts.get(state, 0)} {label}  ",
                            style=palette.states[state])
        extras = [f"uptime {fmt.percent(uptime, 2)}", f"{stats.probes_per_s:.1f}/s",
                  f"lag {fmt.latency(stats.lag_ms)}"]
        if stats.skips:
            extras.append(f"{stats.skips} skipped")
        if stats.dropped:
            extras.insert(0, f"{stats.dropped} updates dropped: screen too slow")
        extras += extra or []
        for extra in extras:
            if len(text) + len(extra) + 2 <= width - 2:
                text.append("· " + extra + " ", style=palette.muted)
        if text != self._shown:
            self._shown = text
            # no layout pass: a one-line bar never changes size, and a layout
            # repaints the table's scrollbar on every line (measured in bench/)
            self.update(text, layout=False)
