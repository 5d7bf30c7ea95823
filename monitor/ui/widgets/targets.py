"""The target table: one row per target, updated by keyed per-row diffs.

Only rows on screen are rendered: a result for an off-screen row marks it
dirty and costs nothing until it scrolls into view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from monitor.engine.board import TargetView
from monitor.engine.state import State
from monitor.store.views import DAY, WindowUptime
from monitor.ui import format as fmt

GROUP_PREFIX = "\x00group:"   # row keys of group headings; never a target name
_EMPTY = Text("")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int


# The state, name, latency, trend, uptime and last error always show; the
# others join, most useful first, only while the error column keeps room for
# a whole reason ("expected 2xx, got 503 Service Unavailable" is 41 cells):
# at 100 columns a cut reason cost more than p95, loss and age gave.
COLUMNS = (
    Column("state", "State", 6),
    Column("name", "Target", 16),
    Column("group", "Group", 12),
    Column("kind", "Kind", 4),
    Column("last", "Last", 7),
    Column("trend", "Trend", 10),
    Column("p95", "p95", 7),
    Column("loss", "Loss", 5),
    Column("uptime", "Up", 5),
    Column("up24h", "Up 24h", 6),    # from history (read once a minute)
    Column("up30d", "Up 30d", 6),
    Column("age", "Age", 3),
    Column("error", "Last error", 0),
)
ESSENTIAL = ("state", "name", "last", "trend", "uptime", "error")
# in the order they join; the history windows as a pair (24 h without 30 d
# hides the month an operator asks about)
OPTIONAL = (("p95",), ("loss",), ("up24h", "up30d"), ("age",), ("kind",), ("group",))
HISTORY_COLUMNS = {"up24h": DAY, "up30d": 30 * DAY}   # column -> its window (seconds)
ERROR_ROOM = 40


def layout(screen_width: int, grouped: bool, history: bool = False) -> list[Column]:
    """Columns for this width, with name, trend and error sized to fill it.
    The history columns only while there is history to show."""
    name_width = 16 if screen_width < 120 else 22
    trend_width = 10 if screen_width < 120 else (16 if screen_width < 160 else 30)
    wide = {"name": name_width, "trend": trend_width}

    def sized(keys: set[str]) -> list[Column]:
        return [Column(c.key, c.label, wide.get(c.key, c.width))
                for c in COLUMNS if c.key in keys]

    def error_room(columns: list[Column]) -> int:
        used = sum(c.width + 2 for c in columns if c.key != "error") + 2   # + scrollbar
        return screen_width - used - 2

    keys = set(ESSENTIAL)
    for step in OPTIONAL:
        if grouped and "group" in step or not history and HISTORY_COLUMNS.keys() & set(step):
            continue
        if error_room(sized(keys | set(step))) >= ERROR_ROOM:
            keys.update(step)
    columns = sized(keys)
    columns[-1] = Column("error", "Last error", max(12, error_room(columns)))
    return columns


class TargetHeader(Static):
    """Column labels, laid out like the rows below them."""

    DEFAULT_CSS = """
    TargetHeader { height: 1; background: $panel; text-style: bold; }
    """

    def show(self, columns: list[Column]) -> None:
        self.update(join_cells({c.key: Text(c.label) for c in columns}, columns))


def join_cells(cells: dict[str, Text], columns: list[Column]) -> Text:
    """One line: each cell cut or padded to its column, one space either side."""
    line = Text(no_wrap=True, end="")
    for column in columns:
        cell = cells.get(column.key) or Text("")
        piece = cell.copy()
        piece.truncate(column.width, overflow="ellipsis", pad=False)
        gap = column.width - piece.cell_len
        line.append(" ")
        if cell.justify == "right":
            line.append(" " * gap)
            line.append_text(piece)
        else:
            line.append_text(piece)
            line.append(" " * gap)
        line.append(" ")
    return line


def same_cells(old: dict[str, Text], new: dict[str, Text]) -> bool:
    """Equal text *and* style: rich's Text equality ignores the base style, so
    a theme change (or DOWN -> DEGRADED with the same reason) would not redraw."""
    if old.keys() != new.keys():
        return False
    for key, cell in new.items():
        before = old[key]
        if before is cell:
            continue
        if (before.plain != cell.plain or before.style != cell.style
                or before.justify != cell.justify or before.spans != cell.spans):
            return False
    return True


def cell_parts(cell: Text, width: int, base: Style,
               console: Console) -> tuple[str, list[Segment], str]:
    """One cell cut or padded to its column with a space either side: the
    left padding, the styled content and the right padding."""
    if cell.cell_len > width:
        cell = cell.copy()
        cell.truncate(width, overflow="ellipsis", pad=False)
    gap = width - cell.cell_len
    if cell.spans:
        inner = [Segment(seg.text, base + seg.style if seg.style else base)
                 for seg in cell.render(console)]
    elif cell.plain:
        style = cell.style
        if isinstance(style, str):
            style = console.get_style(style) if style else None
        inner = [Segment(cell.plain, base + style if style else base)]
    else:
        inner = []
    if cell.justify == "right":
        return " " * (gap + 1), inner, " "
    return " ", inner, " " * (gap + 1)


def row_segments(cells: dict[str, Text], columns: list[Column], base: Style,
                 console: Console) -> list[Segment]:
    """A row as few segments as it can be: runs in the base style (padding,
    plain cells) are joined, so every later pass over the line does less."""
    segments: list[Segment] = []
    plain = ""                               # base-styled text not yet emitted
    for column in columns:
        left, inner, right = cell_parts(cells.get(column.key) or _EMPTY, column.width, base,
                                        console)
        plain += left
        for segment in inner:
            if segment.style == base:
                plain += segment.text
                continue
            if plain:
                segments.append(Segment(plain, base))
                plain = ""
            segments.append(segment)
        plain += right
    if plain:
        segments.append(Segment(plain, base))
    return segments


class TargetTable(ScrollView, can_focus=True):
    """Rows keyed by target name, drawn line by line.

    Textual's DataTable repaints every visible cell when any cell changes (its
    caches are keyed by a global update count): with 100 results a second that
    was ~40 % of a core. Here each row is one cached Strip; a changed row is
    re-rendered and only its line is refreshed, so cost follows what changed
    on screen.
    """

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Details", show=False),
    ]
    COMPONENT_CLASSES = {"targettable--cursor"}
    DEFAULT_CSS = """
    TargetTable { height: 1fr; }
    TargetTable > .targettable--cursor { background: $block-cursor-blurred-background; }
    TargetTable:focus > .targettable--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: bold;
    }
    """

    cursor_row: reactive[int] = reactive(0, always_update=False)

    class CursorMoved(Message):
        """Another row is selected (the line under the board follows it)."""

    class Selected(Message):
        """Enter (or a click on the highlighted row)."""

        def __init__(self, table: TargetTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> TargetTable:
            return self.table

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.columns_now: list[Column] = []
        self.order: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, dict[str, Text]] = {}
        self._strips: dict[str, Strip] = {}
        self._base_style: Style | None = None
        self.dirty: set[str] = set()
        self.rendered_rows = 0            # rows turned into strips, for tests and profiling
        self.on_scrolled: Callable[[], None] | None = None
        self.on_resized: Callable[[int], None] | None = None
        self.header: TargetHeader | None = None
        self.empty_note: Text | None = None   # what an empty table says on its first line

    # --- structure ----------------------------------------------------------

    def set_columns(self, columns: list[Column]) -> None:
        if [(c.key, c.width) for c in columns] == [(c.key, c.width) for c in self.columns_now]:
            return
        self.columns_now = columns
        self._strips.clear()
        for cells in self._cells.values():
            cells.clear()                  # every row is re-rendered for the new columns
        self.dirty |= set(self.order)
        if self.header is not None:
            self.header.show(columns)
        self._resize_virtual()
        self.refresh()

    def show(self, order: list[str]) -> None:
        """Make the table hold exactly these row keys, in this order."""
        if order == self.order:
            return
        keep = self.cursor_key()
        for key in order:
            if key not in self._cells:
                self._cells[key] = {}
                self.dirty.add(key)
        wanted = set(order)
        for key in list(self._cells):
            if key not in wanted:
                del self._cells[key]
                self._strips.pop(key, None)
                self.dirty.discard(key)
        self.order = list(order)
        self._index = {key: i for i, key in enumerate(order)}
        self._resize_virtual()
        self.move_to(keep)
        self.refresh()

    def say_when_empty(self, note: Text | None) -> None:
        """The line an empty table shows (a filter that matches nothing says so)."""
        if note != self.empty_note:
            self.empty_note = note
            self.refresh_line(0)

    def _resize_virtual(self) -> None:
        width = sum(c.width + 2 for c in self.columns_now)
        self.virtual_size = Size(width, len(self.order))

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    def has_cells(self, key: str) -> bool:
        return bool(self._cells.get(key))

    def cells_of(self, key: str) -> dict[str, Text]:
        return self._cells[key]

    def get_cell(self, key: str, column: str) -> Text:
        return self._cells[key].get(column, Text(""))

    def cursor_key(self) -> str | None:
        if not self.order or not 0 <= self.cursor_row < len(self.order):
            return None
        return self.order[self.cursor_row]

    def move_to(self, key: str | None) -> None:
        if key is not None and key in self._index:
            self.move_cursor(row=self._index[key], scroll=False)
        elif self.order:
            self.move_cursor(row=min(self.cursor_row, len(self.order) - 1), scroll=False)

    def move_cursor(self, row: int, scroll: bool = True) -> None:
        if not self.order:
            return
        self.cursor_row = max(0, min(row, len(self.order) - 1))
        if scroll:
            self.scroll_to_region(Region(0, self.cursor_row, 1, 1), animate=False,
                                  immediate=True)

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)
        self.post_message(self.CursorMoved())

    # --- content ------------------------------------------------------------

    def visible_keys(self) -> list[str]:
        top = int(self.scroll_y)
        return self.order[top:top + max(1, self.size.height) + 1]

    def render_rows(self, keys: list[str], cells_for: Callable[[str], dict[str, Text]]) -> int:
        """Store new cells; re-render and refresh only rows that changed."""
        changed: list[int] = []
        for key in keys:
            old = self._cells.get(key)
            if old is None:
                continue
            new = cells_for(key)
            if not same_cells(old, new):
                self._cells[key] = new
                self._strips.pop(key, None)
                changed.append(self._index[key])
        if changed:   # one refresh for all: each call clears the widget's caches anew
            top, width = self.scroll_offset.y, max(self.virtual_size.width, self.size.width)
            self.refresh(*(Region(0, row - top, width, 1) for row in changed))
        return len(changed)

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        width = self.size.width
        base = self._base_style
        if base is None:   # rich_style walks every ancestor's styles: once, not per line
            base = self._base_style = self.rich_style
        if index >= len(self.order):
            note = self.empty_note
            if note is not None and index == 0:
                return Strip(list(note.render(self.app.console)), note.cell_len) \
                    .crop_extend(0, width, base).apply_style(base)
            return Strip.blank(width, base)
        key = self.order[index]
        strip = self._strips.get(key)
        if strip is None:
            strip = self._row_strip(self._cells.get(key, {}), base)
            self._strips[key] = strip
            self.rendered_rows += 1
        x = int(self.scroll_x)
        if x != 0 or strip.cell_length != width:
            strip = strip.crop_extend(x, x + width, base)
        if index == self.cursor_row:
            # on top of the cells' own styles (under them, as Strip.apply_style
            # puts it, every cell's background hid the cursor's), to the edge
            strip = Strip(Segment.apply_style(strip, post_style=self._cursor_style()),
                          strip.cell_length)
        return strip

    def _cursor_style(self) -> Style:
        """The selected row's look: the theme's cursor colours, or reverse
        video where colours cannot be trusted to differ from a row's (16
        colours, no colour, themes in the terminal's own palette, whose
        white may be its background)."""
        app = self.app
        if app.console.color_system in (None, "standard", "windows") or app.current_theme.ansi:
            return Style(reverse=True, bold=True) if self.has_focus else Style(underline=True)
        style = self.get_component_rich_style("targettable--cursor")
        if self.has_focus:
            return style
        return Style(bgcolor=style.bgcolor)   # the filter has the keys: cells keep their colours

    def _row_strip(self, cells: dict[str, Text], base: Style) -> Strip:
        columns = self.columns_now
        return Strip(row_segments(cells, columns, base, self.app.console),
                     sum(c.width + 2 for c in columns))

    def notify_style_update(self) -> None:
        """Styles were recomputed: rows are drawn again only if the table's own
        style moved. Focus coming and going (the filter box opening) changes
        only the cursor's look, and re-rendering every visible row for it was
        most of that keypress at 160 columns."""
        super().notify_style_update()
        if self._base_style is not None and self.rich_style == self._base_style:
            return
        self._base_style = None
        self._strips.clear()

    def restyle(self) -> None:
        """The theme changed: every row's colours (and its base style) with it."""
        self._base_style = None
        self._strips.clear()
        self.dirty |= set(self.order)
        self.refresh()

    # --- input --------------------------------------------------------------

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self.size.height - 1))

    def action_jump(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self.order) - 1)

    def action_select(self) -> None:
        key = self.cursor_key()
        if key is not None:
            self.post_message(self.Selected(self, key))

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_y) + event.y
        if 0 <= row < len(self.order):
            if row == self.cursor_row:
                self.action_select()
            else:
                self.move_cursor(row, scroll=False)

    def on_resize(self, event: events.Resize) -> None:
        if self.on_resized is not None:
            self.on_resized(event.size.width)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.on_scrolled is not None and int(old) != int(new):
            self.on_scrolled()


def row_cells(view: TargetView, columns: list[Column], now: float,
              palette: fmt.Palette, windows: Sequence[WindowUptime] = ()) -> dict[str, Text]:
    """The cells of one target's row, for the columns on screen; `windows`:
    its uptime windows from history."""
    summary = view.stats.summary(now)
    last = view.last
    cells: dict[str, Text] = {}
    for column in columns:
        key = column.key
        if key == "state":
            cells[key] = fmt.status_cell(view.state, palette)
        elif key == "name":
            cells[key] = Text(fmt.shorten(view.target.name, column.width))
        elif key == "group":
            cells[key] = Text(fmt.shorten(view.target.group, column.width), style=palette.muted)
        elif key == "kind":
            cells[key] = Text(view.target.kind, style=palette.muted)
        elif key == "last":
            failed = last is not None and last.latency_ms is None
            cells[key] = (Text("fail", style=palette.error, justify="right") if failed
                          else Text(fmt.latency(summary.last_ms), justify="right"))
        elif key == "trend":
            cells[key] = fmt.sparkline(*view.stats.samples.tail_values(column.width), column.width,
                                        palette)
        elif key == "p95":
            cells[key] = Text(fmt.latency(summary.p95_ms), justify="right")
        elif key == "loss":
            loss = summary.loss_pct
            style = palette.error if loss else None
            cells[key] = Text(fmt.percent(loss, 0, round_up=True), style=style, justify="right")
        elif key == "uptime":
            cells[key] = Text(fmt.percent(summary.uptime_pct), justify="right")
        elif key in HISTORY_COLUMNS:
            cells[key] = window_cell(windows, HISTORY_COLUMNS[key], palette)
    cells.update(age_cells(view, columns, now, palette))
    return cells


def window_cell(windows: Sequence[WindowUptime], window: float, palette: fmt.Palette) -> Text:
    """Uptime over a window, cut (never rounded up to 100); "—" without data.
    Below 99 % it is an error, below 100 % a warning: a glance finds the
    targets that were down this month."""
    found = next((w for w in windows if w.window == window), None)
    value = None if found is None else found.uptime_pct
    if value is None:
        return Text("—", style=palette.muted, justify="right")
    style = palette.error if value < 99 else palette.warning if value < 100 else None
    return Text(fmt.percent(value), style=style, justify="right")


def age_cells(view: TargetView, columns: list[Column], now: float,
              palette: fmt.Palette) -> dict[str, Text]:
    """The cells that change with the clock alone: age, and "5m ago" errors."""
    cells: dict[str, Text] = {}
    for column in columns:
        if column.key == "age":
            started = view.last.started if view.last is not None else None
            cells["age"] = Text(fmt.age(None if started is None else now - started),
                                style=palette.muted, justify="right")
        elif column.key == "error":
            cells["error"] = error_cell(view, column.width, now, palette)
    return cells


def error_cell(view: TargetView, width: int, now: float, palette: fmt.Palette) -> Text:
    last, failure = view.last, view.last_failure
    if last is not None and last.reason and view.state is not State.PAUSED:
        style = palette.error if last.status == "down" else palette.warning
        return Text(fmt.shorten(last.reason, width), style=style)
    if failure is not None and failure.reason:
        ago = fmt.age(now - failure.started)
        return Text(fmt.shorten(f"{ago} ago: {failure.reason}", width), style=palette.muted)
    return Text("")


def stale_cells(cells: dict[str, Text], note: str, palette: fmt.Palette) -> dict[str, Text]:
    """A row while the engine is not measuring: its state and error columns
    say so, never the last state seen; the rest is dimmed (history, not now).
    Fading faded cells gives the same cells."""
    faded = {key: Text(cell.plain, style=palette.muted, justify=cell.justify)
             for key, cell in cells.items()}
    faded["state"] = Text("STALE", style=palette.warning + Style(bold=True))
    if "error" in cells:
        faded["error"] = Text(note, style=palette.warning)
    return faded


def group_cells(group: str, count: int, down: int, columns: list[Column],
                palette: fmt.Palette) -> dict[str, Text]:
    cells = {c.key: Text("") for c in columns}
    label = f"▾ {group or '(no group)'}"
    cells["name"] = Text(fmt.shorten(label, columns[1].width), style=palette.accent)
    trailer = f"{count} target{'s' if count != 1 else ''}" + (f", {down} down" if down else "")
    cells["error"] = Text(trailer, style=palette.error if down else palette.muted)
    return cells
