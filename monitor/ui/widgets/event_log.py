"""The event log under the board: one line per event, newest at the bottom,
each cut to the width with an ellipsis (never silently: a cut reason must
look cut), redrawn for a new width instead of kept as first rendered."""

from __future__ import annotations

from collections import deque

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


class EventLog(ScrollView):
    DEFAULT_CSS = """
    EventLog { height: 8; border-top: solid $panel; background: $surface; overflow-x: hidden; }
    EventLog.hidden { display: none; }
    """

    def __init__(self, max_lines: int = 500, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: deque[Text] = deque(maxlen=max_lines)
        self._dropped = 0                          # lines gone off the top: numbers stay
        self._strips: dict[tuple[int, int], Strip] = {}   # (line number, width)
        self._base: Style | None = None            # rich_style walks every ancestor: once

    @property
    def lines(self) -> list[Text]:
        """What the log holds, oldest first, as written (not cut)."""
        return list(self._lines)

    def write(self, line: Text) -> None:
        """Add a line; follow it when the view was at the newest line."""
        following = self.scroll_y >= self.max_scroll_y
        if "\n" in line.plain:   # one event, one line
            line = Text(" ").join(line.split("\n"))
        if len(self._lines) == self._lines.maxlen:
            self._strips.pop((self._dropped, self.scrollable_content_region.width), None)
            self._dropped += 1
        self._lines.append(line)
        self.virtual_size = Size(0, len(self._lines))   # lines are cut, never scrolled sideways
        if following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self._base
        if base is None:
            base = self._base = self.rich_style
        index = int(self.scroll_y) + y
        if not 0 <= index < len(self._lines):
            return Strip.blank(width, base)
        key = (self._dropped + index, width)
        strip = self._strips.get(key)
        if strip is None:   # a screen switch repaints every line: draw each once
            text = self._lines[index]
            if text.cell_len > width:
                text = text.copy()
                text.truncate(width, overflow="ellipsis")
            segments = [Segment(s.text, base + s.style if s.style else base)
                        for s in text.render(self.app.console)]
            strip = self._strips[key] = Strip(segments).extend_cell_length(width, base)
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base = None      # a new theme: new base colours
        self._strips.clear()

    def on_resize(self) -> None:
        self._strips.clear()
        self.virtual_size = Size(0, len(self._lines))   # lines are cut, never scrolled sideways
        # once laid out at the new size: before, the end is where it was
        self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)
