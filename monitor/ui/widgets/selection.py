"""The line under the board about the selected row: its whole reason, which
the table's error column may have had to cut, at any width."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from monitor.engine.board import TargetView
from monitor.engine.state import State
from monitor.ui import format as fmt
from monitor.ui.alerts_view import Mark, mark_text


class SelectionLine(Static):
    DEFAULT_CSS = """
    SelectionLine { height: 1; background: $panel; padding: 0 1; }
    """
    _shown: Text | None = None

    def show(self, view: TargetView | None, now: float, palette: fmt.Palette,
             width: int, stale: str | None = None, mark: Mark | None = None) -> None:
        """`stale`: what to say instead of a state while the engine is not measuring;
        `mark`: a maintenance window or a DOWN parent that keeps it from alerting."""
        text = selection_text(view, now, palette, stale)
        if mark is not None and stale is None:   # after the name, before the reason
            name_end = len(" ".join(view.target.name.split())) + 4 if view else 0
            text = text[:name_end] + mark_text(mark, palette) + text[name_end:]
        room = max(1, width - 2)   # the padding
        if text.cell_len > room:
            text.truncate(room, overflow="ellipsis")
        if text != self._shown:   # plain text and spans
            self._shown = text
            self.update(text, layout=False)   # one line: its size never changes


def selection_text(view: TargetView | None, now: float, palette: fmt.Palette,
                   stale: str | None = None) -> Text:
    """`name  reason`: the current problem in its state's colour; else the
    last failure and how long ago; else what is probed and that all is well."""
    if view is None:
        return Text("")
    text = Text(no_wrap=True, end="")
    if stale is None:
        text.append(f"{fmt.GLYPHS[view.state]} ", style=palette.states[view.state])
    text.append(" ".join(view.target.name.split()), style=Style(bold=True))
    text.append("  ")
    if stale is not None:
        text.append(stale, style=palette.warning)
    elif view.state is State.PAUSED:
        text.append("paused", style=palette.muted)
    elif reason := reason_text(view, now, palette):
        text.append_text(reason)
    elif view.last is not None:
        text.append(f"{view.last.target} · no failures seen", style=palette.muted)
    else:
        text.append("not checked yet", style=palette.muted)
    return text


def reason_text(view: TargetView, now: float, palette: fmt.Palette) -> Text:
    """The current problem in its state's colour; else the last failure and
    how long ago; else nothing. On one line (whitespace runs as one space)."""
    last, failure = view.last, view.last_failure
    if last is not None and last.reason:
        style = palette.error if last.status == "down" else palette.warning
        return Text(" ".join(last.reason.split()), style=style)
    if failure is not None and failure.reason:
        ago = fmt.age(now - failure.started)
        return Text(f"last failure {ago} ago: {' '.join(failure.reason.split())}",
                    style=palette.muted)
    return Text("")
