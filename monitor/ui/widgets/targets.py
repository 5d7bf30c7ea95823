"""The target table: one row per target, updated by keyed per-cell diffs.

Only rows on screen are rendered: a result for an off-screen row marks it
dirty and costs nothing until it scrolls into view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.widgets import DataTable
from textual.widgets._data_table import RowKey
from textual._two_way_dict import TwoWayDict

from monitor.engine.board import TargetView
from monitor.engine.state import State
from monitor.ui import format as fmt

GROUP_PREFIX = "\x00group:"   # row keys of group headings; never a target name


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    min_screen: int        # shown only when the terminal is at least this wide


# Narrow terminals drop the less important columns first; the name, state,
# latency, trend, uptime and last error always stay.
COLUMNS = (
    Column("state", "State", 6, 0),
    Column("name", "Target", 16, 0),
    Column("group", "Group", 12, 150),
    Column("kind", "Kind", 4, 110),
    Column("last", "Last", 7, 0),
    Column("trend", "Trend", 10, 0),
    Column("p95", "p95", 7, 100),
    Column("loss", "Loss", 5, 90),
    Column("uptime", "Up", 5, 0),
    Column("age", "Age", 3, 96),
    Column("error", "Last error", 0, 0),
)


def layout(screen_width: int, grouped: bool) -> list[Column]:
    """Columns for this width, with name, trend and error sized to fill it."""
    chosen = [c for c in COLUMNS if screen_width >= c.min_screen
              and not (grouped and c.key == "group")]
    name_width = 16 if screen_width < 120 else 22
    trend_width = 10 if screen_width < 120 else (16 if screen_width < 160 else 30)
    sized = []
    for column in chosen:
        width = {"name": name_width, "trend": trend_width}.get(column.key, column.width)
        sized.append(Column(column.key, column.label, width, column.min_screen))
    used = sum(c.width + 2 for c in sized if c.key != "error") + 3   # padding, scrollbar
    sized[-1] = Column("error", "Last error", max(12, screen_width - used - 2), 0)
    return sized


class TargetTable(DataTable[Text]):
    """Rows keyed by target name; `show` sets membership and order, `render_rows`
    diff-updates the visible rows."""

    DEFAULT_CSS = """
    TargetTable { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.columns_now: list[Column] = []
        self.order: list[str] = []
        self._cells: dict[str, dict[str, Text]] = {}
        self.dirty: set[str] = set()
        self.on_scrolled: Callable[[], None] | None = None
        self.on_resized: Callable[[int], None] | None = None

    # --- structure ----------------------------------------------------------

    def set_columns(self, columns: list[Column]) -> None:
        if [(c.key, c.width) for c in columns] == [(c.key, c.width) for c in self.columns_now]:
            return
        keep = self.cursor_key()
        self.clear(columns=True)
        self.columns_now = columns
        for column in columns:
            self.add_column(column.label, width=column.width, key=column.key)
        order, self.order = self.order, []
        self._cells.clear()
        self.show(order)
        self.move_to(keep)

    def show(self, order: list[str]) -> None:
        """Make the table hold exactly these row keys, in this order."""
        if order == self.order:
            return
        keep = self.cursor_key()
        wanted = set(order)
        for key in self.order:
            if key not in wanted:
                self.remove_row(key)
                self._cells.pop(key, None)
        present = set(self.order)
        blank = [Text("") for _ in self.columns_now]
        for key in order:
            if key not in present:
                self.add_row(*blank, key=key)
                self._cells[key] = {}
                self.dirty.add(key)
        # set the order directly: re-adding rows would cost ~3x (measured)
        self._row_locations = TwoWayDict({RowKey(k): i for i, k in enumerate(order)})
        self._update_count += 1
        self.order = list(order)
        self.refresh()
        self.move_to(keep)

    def cursor_key(self) -> str | None:
        if not self.order or not 0 <= self.cursor_row < len(self.order):
            return None
        return self.order[self.cursor_row]

    def move_to(self, key: str | None) -> None:
        if key is not None and key in self._cells:
            self.move_cursor(row=self.get_row_index(key), scroll=False)

    # --- content ------------------------------------------------------------

    def visible_keys(self) -> list[str]:
        top = int(self.scroll_y)
        height = max(1, self.scrollable_content_region.height - self.header_height)
        return self.order[top:top + height + 1]

    def render_rows(self, keys: list[str], cells_for: Callable[[str], dict[str, Text]]) -> int:
        """Update only the cells that changed; returns how many changed."""
        changed = 0
        for key in keys:
            old = self._cells.get(key)
            if old is None:
                continue
            for column, value in cells_for(key).items():
                if old.get(column) != value:
                    self.update_cell(key, column, value)
                    old[column] = value
                    changed += 1
        return changed

    def on_resize(self, event: events.Resize) -> None:
        if self.on_resized is not None:
            self.on_resized(event.size.width)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.on_scrolled is not None and int(old) != int(new):
            self.on_scrolled()


def row_cells(view: TargetView, columns: list[Column], now: float,
              palette: fmt.Palette) -> dict[str, Text]:
    """The cells of one target's row, for the columns on screen."""
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
            cells[key] = fmt.sparkline(view.stats.samples.tail(column.width), column.width, palette)
        elif key == "p95":
            cells[key] = Text(fmt.latency(summary.p95_ms), justify="right")
        elif key == "loss":
            loss = summary.loss_pct
            style = palette.error if loss else None
            cells[key] = Text(fmt.percent(loss, 0), style=style, justify="right")
        elif key == "uptime":
            cells[key] = Text(fmt.percent(summary.uptime_pct), justify="right")
        elif key == "age":
            started = last.started if last is not None else None
            cells[key] = Text(fmt.age(None if started is None else now - started),
                              style=palette.muted, justify="right")
        elif key == "error":
            cells[key] = error_cell(view, column.width, now, palette)
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


def group_cells(group: str, count: int, down: int, columns: list[Column],
                palette: fmt.Palette) -> dict[str, Text]:
    cells = {c.key: Text("") for c in columns}
    label = f"▾ {group or '(no group)'}"
    cells["name"] = Text(fmt.shorten(label, columns[1].width), style=palette.accent)
    trailer = f"{count} target{'s' if count != 1 else ''}" + (f", {down} down" if down else "")
    cells["error"] = Text(trailer, style=palette.error if down else palette.muted)
    return cells
