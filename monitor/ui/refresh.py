"""The dashboard's refresh cycle (MonitorApp): queued engine output onto the
board, then only what changed on screen redrawn.

Results arrive as fast as the engine produces them and are only queued; they
are applied in small blocks between redraws (`_take_results`), and a timer
redraws a few times a second (`--refresh`, `flush`), diff-updating just the
rows on screen, so rendering cost follows what is visible, not probe rate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from monitor.engine.query import SortMode
from monitor.engine.state import State, Transition
from monitor.service.snapshot import BoardSnapshot
from monitor.ui import format as fmt
from monitor.ui.alerts_view import show_alerts
from monitor.ui.attached import take_snapshot
from monitor.ui.eventlog import error_line, transition_line
from monitor.ui.feeds import PAST_WAIT
from monitor.ui.inbox import EngineUp
from monitor.ui.widgets.summary import BoardView
from monitor.ui.widgets.targets import (
    GROUP_PREFIX, age_cells, group_cells, layout, row_cells, stale_cells)

RESORT_EVERY = 1.0   # seconds: re-sorting more often makes rows jump under the cursor
RESULTS_EVERY = 0.1  # seconds: results are applied in blocks this far apart, between redraws
SETTLE_AT_THE_LATEST = 120.0   # seconds: the heap is settled then even with targets pending


class RefreshCycle:
    """Applying the engine's output and redrawing what changed (MonitorApp)."""

    # (attributes and methods of the app these use; typed loosely: the app defines them)
    inbox: Any
    board: Any
    table: Any
    events: Any
    watch: Any
    marks: Any
    arranger: Any
    banner: Any
    summary: Any
    filter_box: Any
    palette: Any
    filter: Any
    sort_mode: Any
    grouped: Any
    clock: Any
    wall: Any
    history_uptime: Any
    screen: Any
    screen_stack: Any
    size: Any
    _past: Any
    _uptime_read: Any
    _settle_heap: Any
    _touched: set[str]
    _born: float
    _last_tick: float
    _last_sort: float
    _ticks: int
    _uptime: float | None
    _group_tally: dict[str, tuple[int, int]]
    _shown_targets: int
    _fitted_for: tuple[int, bool] | None
    _table_rows: int
    _log_least: int
    _log_height: int

    def flush(self) -> None:
        """Apply queued results, then redraw what changed on screen."""
        inbox, board, table = self.inbox, self.board, self.table
        if not table.is_attached:
            return   # shutting down: the screen is being taken apart
        touched: set[str] = set()
        moved = False
        if self._past is not None:
            if not self._past.done() and self.clock() - self._born < PAST_WAIT:
                return   # the engine's first results wait in the inbox: the past goes first
            moved = self._take_past(touched)
        while inbox.configs:   # first: a new target's first result needs its row
            moved |= self._follow_config(inbox.configs.popleft(), touched)
        self._take_results()   # what is still queued, after the rows it may need
        touched |= self._touched   # with what was taken between redraws
        self._touched = set()
        log = self.events
        moved |= bool(inbox.changes)   # a state change re-sorts and re-filters at once
        while inbox.changes:
            change = inbox.changes.popleft()
            if isinstance(change, Transition):
                if board.apply_transition(change) is not None:
                    touched.add(change.name)
                    log.write(transition_line(change, self.palette))
            elif isinstance(change, EngineUp):
                self._engine_came_up(change.restarts)
            elif isinstance(change, BoardSnapshot):
                touched |= take_snapshot(self, change)
            else:
                touched |= self._engine_went_down(change)
        now = self.clock()
        if inbox.heard:
            inbox.heard = False
            self.watch.heard(now)
        while inbox.errors:
            message = inbox.errors.popleft()
            log.write(error_line(message, self.wall_now(), self.palette))
            self.notify(message, title="Engine", severity="error", timeout=8, markup=False)
        show_alerts(self, inbox.alerts)
        touched |= self.marks.refresh(board, datetime.fromtimestamp(self.wall(), UTC))
        if self.watch.judge(now):   # every row says whether it is measured
            touched |= set(board.views)
            self.banner.show(self.watch.given_up())
        table.dirty |= touched
        tick = now - self._last_tick >= 1.0   # ages and uptime move once a second
        with self.batch_update():
            if tick:
                self._last_tick = now
                self._ticks += 1
                # walking 10,000 targets each second costs ~7 % of a core (bench/)
                if len(self.board.views) <= 2000 or self._ticks % 10 == 1:
                    self._uptime = self._overall_uptime(now)
            self._arrange(force=moved)
            self._render_visible(all_visible=tick)
            self._show_summary()
            refresh = getattr(self.screen, "refresh_from_board", None)
            if refresh is not None:
                refresh(touched)
        if self._settle_heap is not None:
            self._settle_once(now)
        if self._uptime_read is not None and self._uptime_read.done():
            with self.batch_update():
                self._take_uptime()
                self._render_visible()

    def _take_results(self) -> None:
        """Apply queued results to the board between redraws, drawing nothing
        (the next flush draws what they changed). At 1,000 results/s a redraw
        applying its ~500 held the loop for 30-60 ms, and a key landing on it
        waited that long; in blocks a fifth the size, a fifth as long. Left to
        the flush while the past or a reloaded config is still to come first."""
        inbox = self.inbox
        if self._past is not None or inbox.configs:
            return
        board, touched, results = self.board, self._touched, inbox.results
        while results:
            result = results.popleft()
            if board.apply_result(result) is not None:
                touched.add(result.name)

    def _settle_once(self, now: float) -> None:
        """Once the board is full (every target has a first result, or a long
        first round is over), its long-lived objects leave the cyclic
        collector's sight: at 10,000 targets a full collection walked ~240,000
        objects, an 80-115 ms stall whenever it fell on a keypress."""
        if self.board.counts()[State.PENDING] and now - self._born < SETTLE_AT_THE_LATEST:
            return
        settle, self._settle_heap = self._settle_heap, None
        if settle is not None:
            settle()

    def _render_visible(self, all_visible: bool = True) -> None:
        table = self.table
        now = self.clock()
        keys = table.visible_keys()
        dirty = {k for k in keys if k in table.dirty}
        if not all_visible:
            keys = [k for k in keys if k in dirty]
        table.dirty.difference_update(keys)
        columns = table.columns_now
        stale = self.watch.stale_note()

        def cells_for(key: str) -> dict[str, Text]:
            if key.startswith(GROUP_PREFIX):
                group = key[len(GROUP_PREFIX):]
                count, down = self._group_tally.get(group, (0, 0))
                return group_cells(group, count, down, columns, self.palette)
            view = self.board.views[key]
            if key not in dirty and table.has_cells(key):
                # only time moved: redo the clock-driven cells, not the statistics
                cells = {**table.cells_of(key), **age_cells(view, columns, now, self.palette)}
            else:
                cells = row_cells(view, columns, now, self.palette,
                                  self.history_uptime.get(key, ()))
            # (fading cells already faded changes nothing: the stored ones may be)
            if stale is not None:
                return stale_cells(cells, stale, self.palette)
            return self.marks.apply(view, cells, widths, self.palette)

        widths = {column.key: column.width for column in columns}

        table.render_rows(keys, cells_for)
        self._show_selection()

    def _arrange(self, force: bool) -> None:
        """Recompute which rows show and in what order (at most once a second
        unless forced, so rows do not jump while being read)."""
        now = self.clock()
        # status and name order change only with a transition (which forces);
        # latency and uptime order drift, so they are re-sorted once a second
        timed = self.sort_mode in (SortMode.LATENCY, SortMode.UPTIME)
        if not force and (not timed or now - self._last_sort < RESORT_EVERY):
            return
        self._last_sort = now
        sections = self.arranger.arrange(self.filter, self.sort_mode, self.grouped)
        if self.grouped:   # states change only with a transition, which arranges again
            self._group_tally = self.arranger.group_tally()
        order: list[str] = []
        for group, views in sections:
            if group is not None:
                order.append(GROUP_PREFIX + group)
            order += [v.target.name for v in views]
        self._shown_targets = len(order) - (len(sections) if self.grouped else 0)
        self._fit_table()
        table = self.table
        table.show(order)
        table.say_when_empty(None if order or not self.filter.text else Text.assemble(
            "  no target matches ", (f"“{fmt.shorten(self.filter.text, 40)}”", "bold"),
            ("   (esc clears the filter)", self.palette.muted)))

    def _relayout(self, width: int | None = None) -> None:
        table = self.table
        table.set_columns(layout(width or table.size.width or self.size.width, self.grouped,
                                 history=bool(self.history_uptime)))

    def _fit(self, height: int) -> None:
        """Short terminals (80x24) give the rows more room than the event log."""
        self._log_least = 5 if height < 30 else 8
        self._fit_log()

    def _fit_table(self) -> None:
        """How many rows the table could ever need (filtered or not, so that
        nothing moves while a filter is typed)."""
        shape = (len(self.board.views), self.grouped)
        if shape == self._fitted_for:
            return
        self._fitted_for = shape
        headings = len(self._group_tally) if self.grouped else 0   # every group's, as arranged
        self._table_rows = len(self.board.views) + headings
        self._fit_log()

    def _fit_log(self) -> None:
        """The event log takes the room the rows leave, never less than its
        least: at 200x50 a short board left 28 blank rows above a 7-line log.
        (Set here, not with fr units and min/max heights: Textual's resolver
        gives a log clamped at its minimum the whole room once the table is
        clamped too.)"""
        table, log = self.table, self.events
        if log.has_class("hidden") or not table.is_attached:
            return
        others = sum(child.outer_size.height for child in self.screen_stack[0].children
                     if child not in (table, log, self.filter_box))   # the box is a cover
        room = self.size.height - others   # for the table and the log
        height = max(self._log_least, room - self._table_rows)
        if room > 0 and height != self._log_height:
            self._log_height = height
            log.styles.height = height

    def _on_table_resized(self, width: int) -> None:
        self._relayout(width)
        self._render_visible()
        self._fit_log()

    def _overall_uptime(self, now: float) -> float | None:
        values = [u for v in self.board.views.values()
                  if (u := v.stats.uptime_pct(now)) is not None]
        return sum(values) / len(values) if values else None

    def _show_summary(self) -> None:
        view = BoardView(self.filter.text, self._shown_targets, len(self.board.views),
                         None if self.sort_mode is SortMode.STATUS else self.sort_mode.value,
                         self.grouped)
        headline = self.watch.headline()
        trouble = None if headline is None else (headline, self.watch.since())
        self.summary.show(self.board.counts(), self._uptime, self.inbox.stats,
                          self.palette, self.size.width, view, trouble, self.inbox.service)
