"""What the board learns besides results: its past from history at start,
uptime windows read now and then, and the configs the engine runs.

A part of MonitorApp (a mixin: the methods use the app's board, table, log
and palette), kept apart because each is about following a source other
than the live stream of results.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text

from monitor.config import ConfigError, parse_config
from monitor.engine.query import Arranger
from monitor.engine.sinks import ConfigRejected, ConfigReloaded
from monitor.ui.eventlog import error_line, rejected_lines, reload_line, transition_line
from monitor.ui.history import apply_past, has_history, read_uptime

PAST_WAIT = 5.0   # seconds the board waits for history at start before going on without it
EVENT_LOG_FROM_HISTORY = 50


class BoardFeeds:
    """History, uptime windows and config reloads onto the board (MonitorApp)."""

    # (attributes of the app these use; typed loosely: the app defines them)
    board: Any
    table: Any
    events: Any
    config: Any
    palette: Any
    config_banner: Any
    marks: Any
    arranger: Any
    history_uptime: Any
    _past: Any
    _uptime_read: Any

    def _read_uptime(self) -> None:
        """Start a read of every target's uptime windows, unless one is going
        (at 10,000 targets a read takes seconds: never on this loop)."""
        if self._uptime_read is None and has_history(self.config):
            self._uptime_read = asyncio.get_running_loop().run_in_executor(
                None, read_uptime, self.config)

    def _take_uptime(self) -> bool:
        """A finished read onto the board: every row redrawn, and the history
        columns join (or leave) the layout. True when it changed the rows."""
        future = self._uptime_read
        if future is None or not future.done():
            return False
        self._uptime_read = None
        had = bool(self.history_uptime)
        self.history_uptime = {} if future.cancelled() or future.exception() else future.result()
        if had != bool(self.history_uptime):
            self._relayout()
        self.table.dirty |= set(self.board.views)
        return True

    def _take_past(self, touched: set[str]) -> bool:
        """History's samples and events onto the board, once."""
        future, self._past = self._past, None
        if future is None or not future.done() or future.cancelled():
            self.events.write(error_line("history not shown: still reading it after "
                                         f"{PAST_WAIT:g}s", self.wall_now(), self.palette))
            return False
        error = future.exception()
        past = future.result() if error is None else None
        if past is None or past.error:
            why = past.error if past is not None else f"{type(error).__name__}: {error}"
            self.events.write(error_line(f"history not shown: {why}", self.wall_now(),
                                         self.palette))
            return False
        apply_past(self.board, past)
        for transition in past.events[-EVENT_LOG_FROM_HISTORY:]:
            self.events.write(transition_line(transition, self.palette))
        if past.samples or past.events:
            self.events.write(Text(f"{self.wall_now():%H:%M:%S} monitor started; earlier "
                                   "lines and trends are from history", style=self.palette.muted))
        touched.update(past.samples)
        return True

    def _follow_config(self, event: ConfigReloaded | ConfigRejected, touched: set[str]) -> bool:
        """The engine runs another config (or refused a broken one): make the
        board match it. True when rows came or went."""
        if isinstance(event, ConfigRejected):
            self.config_banner.show(event.problems)
            for line in rejected_lines(event, self.wall_now(), self.palette):
                self.events.write(line)
            return False
        self.config_banner.show(None)
        if event.config_text == self.config.source:
            return False   # an engine (re)started on the config the board shows
        try:
            config = parse_config(event.config_text, self.config.path)
        except ConfigError as exc:   # the engine validated this very text: not expected
            self.events.write(error_line(f"cannot follow the engine's config: {exc}",
                                         self.wall_now(), self.palette))
            return False
        change = self.board.apply_config(config.targets, self.clock())
        self.config = config
        self.marks.follow(config)
        if config.keys:
            self.set_keymap(config.keys)
        self.events.write(reload_line(event, change, self.wall_now(), self.palette))
        if not change:
            return False
        self.arranger = Arranger(self.board.views.values())
        touched.update(change.added, change.changed)
        # (a detail screen of a removed target closes itself and says why)
        return True
