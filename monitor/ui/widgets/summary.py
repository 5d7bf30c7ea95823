"""The one-line header: counts by state, how far behind (when it is), uptime,
probe rate, own lag; or, when the engine is not measuring, that it is not."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from monitor.engine.client import EngineStats
from monitor.engine.pacing import BEHIND_SHOWN
from monitor.engine.state import State
from monitor.output import behind_text
from monitor.service.snapshot import ServiceInfo
from monitor.ui import format as fmt


class SummaryBar(Static):
    _shown: Text | None = None

    DEFAULT_CSS = """
    SummaryBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, counts: dict[State, int], uptime: float | None, stats: EngineStats,
             palette: fmt.Palette, width: int, extra: list[str] | None = None,
             engine_trouble: tuple[str, str] | None = None,
             service: ServiceInfo | None = None) -> None:
        """`engine_trouble`: (headline, since) when the engine is not measuring;
        then counts, uptime and rates, all from the engine's last word, give
        way to saying so. `service`: the service this dashboard is attached
        to (said first among the extras: whose board this is)."""
        text = Text("monitor ", style="bold")
        if engine_trouble is not None:
            headline, since = engine_trouble
            text.append(headline + "  ", style=palette.error + Style(bold=True))
            extras = [f"no data since {since}"]
        else:
            extras = self._counts(text, counts, uptime, stats, palette, width)
        if service is not None:
            extras.insert(0, service.label(wide=width >= 120))
        extras += extra or []
        for extra in extras:
            if len(text) + len(extra) + 2 <= width - 2:
                text.append("· " + extra + " ", style=palette.muted)
        if text != self._shown:
            self._shown = text
            # no layout pass: a one-line bar never changes size, and a layout
            # repaints the table's scrollbar on every line (measured in bench/)
            self.update(text, layout=False)

    @staticmethod
    def _counts(text: Text, counts: dict[State, int], uptime: float | None,
                stats: EngineStats, palette: fmt.Palette, width: int) -> list[str]:
        """Targets by state into `text`, and how far behind the schedule
        runs when it does (a warning: intervals are being stretched); uptime,
        rate and lag as extras."""
        for state in (State.UP, State.DEGRADED, State.DOWN, State.PAUSED, State.PENDING):
            if counts.get(state) or state in (State.UP, State.DOWN):
                label = state.value if width >= 100 else fmt.LABELS[state].lower()
                text.append(f"{fmt.GLYPHS[state]} {counts.get(state, 0)} {label}  ",
                            style=palette.states[state])
        behind = stats.behind_s >= BEHIND_SHOWN
        if behind:
            text.append(behind_text(stats.behind_s, stats.skips_per_min) + "  ",
                        style=palette.warning)
        extras = [f"uptime {fmt.percent(uptime, 2)}", f"{stats.probes_per_s:.1f}/s",
                  f"lag {fmt.latency(stats.lag_ms)}"]
        if stats.skips and not behind:
            extras.append(f"{stats.skips} skipped")
        if stats.dropped:
            extras.insert(0, f"{stats.dropped} updates dropped: screen too slow")
        return extras
