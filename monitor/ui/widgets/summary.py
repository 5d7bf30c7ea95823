"""The one-line header: counts by state, how far behind (when it is), how
the board is filtered, sorted and grouped, uptime, probe rate, own lag; or,
when the engine is not measuring, that it is not."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from monitor.engine.client import EngineStats
from monitor.engine.pacing import BEHIND_SHOWN
from monitor.engine.state import State
from monitor.output import behind_text
from monitor.service.snapshot import ServiceInfo
from monitor.ui import format as fmt

ESCAPE_HINT = "esc clears"


@dataclass(frozen=True)
class BoardView:
    """How the user has arranged the board: shown at every width, because a
    filtered board looks like a board with fewer targets."""

    filter: str = ""
    shown: int = 0          # targets that pass the filter
    total: int = 0
    sort: str | None = None  # None: the default order (worst first)
    grouped: bool = False

    def words(self, filter_room: int | None = None) -> list[str]:
        """Each setting as the summary says it; the filter text cut to
        `filter_room` characters when given."""
        words = []
        if self.filter:
            text = self.filter if filter_room is None else fmt.shorten(self.filter, filter_room)
            words.append(f"filter “{text}” {self.shown}/{self.total}")
        if self.sort is not None:
            words.append(f"sort {self.sort}")
        if self.grouped:
            words.append("grouped")
        return words


class SummaryBar(Static):
    _shown: Text | None = None

    DEFAULT_CSS = """
    SummaryBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, counts: dict[State, int], uptime: float | None, stats: EngineStats,
             palette: fmt.Palette, width: int, view: BoardView | None = None,
             engine_trouble: tuple[str, str] | None = None,
             service: ServiceInfo | None = None) -> None:
        """`engine_trouble`: (headline, since) when the engine is not measuring;
        then counts, uptime and rates, all from the engine's last word, give
        way to saying so. The board's arrangement (`view`) is always shown;
        the engine's figures only where they fit. `service`: the service this
        dashboard is attached to (first among the extras: whose board this is)."""
        view = view or BoardView()
        room = width - 2   # the bar's padding
        # the view's words need this much at least (the filter cut to 12)
        needed = sum(len(word) + 3 for word in view.words(filter_room=12))
        for labels in ("long" if width >= 100 else "short", "none"):
            text = Text("monitor ", style="bold")
            if engine_trouble is not None:
                headline, since = engine_trouble
                text.append(headline + "  ", style=palette.error + Style(bold=True))
                extras = [f"no data since {since}"]
            else:
                extras = self._counts(text, counts, uptime, stats, palette, labels)
            if len(text) + needed <= room:
                break
        if service is not None:
            extras.insert(0, service.label(wide=width >= 120))
        for word in self._view_words(view, room - len(text)):
            text.append("· ", style=palette.muted)
            text.append(word + " ", style=palette.accent + Style(bold=True))
        for extra in extras:
            if len(text) + len(extra) + 2 <= room:
                text.append("· " + extra + " ", style=palette.muted)
        if view.filter and len(text) + len(ESCAPE_HINT) + 2 <= room:
            text.append("· " + ESCAPE_HINT, style=palette.muted)
        if text != self._shown:
            self._shown = text
            # no layout pass: a one-line bar never changes size, and a layout
            # repaints the table's scrollbar on every line (measured in bench/)
            self.update(text, layout=False)

    @staticmethod
    def _view_words(view: BoardView, room: int) -> list[str]:
        """The view's words, the filter text cut (never below a few
        characters) so that all of them fit in `room`."""
        words = view.words()
        over = sum(len(w) + 3 for w in words) - room
        if over > 0 and view.filter:
            words = view.words(filter_room=max(4, len(view.filter) - over))
        return words

    @staticmethod
    def _counts(text: Text, counts: dict[State, int], uptime: float | None,
                stats: EngineStats, palette: fmt.Palette, labels: str) -> list[str]:
        """Targets by state into `text` (`labels`: "long" words, "short"
        ones, or "none": the glyph alone), and how far behind the schedule
        runs when it does (a warning: intervals are being stretched); uptime,
        rate and lag as extras."""
        for state in (State.UP, State.DEGRADED, State.DOWN, State.PAUSED, State.PENDING):
            if counts.get(state) or state in (State.UP, State.DOWN):
                label = {"long": f" {state.value}", "short": f" {fmt.LABELS[state].lower()}",
                         "none": ""}[labels]
                text.append(f"{fmt.GLYPHS[state]} {counts.get(state, 0)}{label}  ",
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
