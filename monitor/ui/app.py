"""The dashboard app: a board of targets fed by the engine in another process.

Setup, actions and the engine's health here; the refresh cycle (results
onto the board, only what changed redrawn) in refresh.py, history and
reloads in feeds.py, themes and the remembered layout in looks.py.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from monitor import appstate
from monitor.config.keys import BINDINGS, EDITING
from monitor.config.model import Config
from monitor.engine.board import Board
from monitor.engine.client import EngineClient, EngineDown, Listener, ProcessEngine
from monitor.engine.query import Arranger, Filter, SortMode
from monitor.engine.state import State
from monitor.ui import format as fmt
from monitor.ui import themes
from monitor.ui.alerts_view import Marks
from monitor.ui.eventlog import engine_down_line, engine_up_line
from monitor.store.views import WindowUptime
from monitor.ui.feeds import BoardFeeds
from monitor.ui.history import UPTIME_EVERY, Past, has_history, read_past
from monitor.ui.looks import LooksAndLayout
from monitor.ui.collector import KeyHold
from monitor.ui.inbox import EngineWatch, Inbox, Liveness, forget_states
from monitor.ui.process import terminal_gone, yield_cpu_to_engine
from monitor.ui.refresh import RESULTS_EVERY, RefreshCycle
from monitor.ui.widgets.banner import ConfigBanner, EngineBanner
from monitor.ui.widgets.event_log import EventLog
from monitor.ui.widgets.filter_box import COVER_LAYER, FilterBox
from monitor.ui.widgets.footer import SteadyFooter
from monitor.ui.widgets.selection import SelectionLine
from monitor.ui.widgets.summary import SummaryBar
from monitor.ui.widgets.targets import GROUP_PREFIX, TargetHeader, TargetTable

if TYPE_CHECKING:
    from monitor.ui.screens.detail import DetailScreen

EngineFactory = Callable[[Listener], EngineClient]
RARE_KEYS = {"reload"}


class MonitorApp(RefreshCycle, BoardFeeds, LooksAndLayout, App[int]):
    TITLE = "monitor"
    CSS = f"Screen {{ layers: default {COVER_LAYER}; }}"
    # rare ones stay out of the footer (80 columns hold the daily keys); `?`
    # and the palette list them all. `/` is a priority binding: handled as it
    # is read, so the filter box has focus before the keys after it are
    # handed out (see FilterBox)
    BINDINGS = [Binding(keys, action, label, id=action, tooltip=description,
                        show=action not in RARE_KEYS and action not in EDITING,
                        priority=action == "filter")
                for action, (keys, label, description) in BINDINGS.items()]
    BINDINGS += [Binding("e", "toggle_events", "Events", show=False, id="events"),
                 Binding("escape", "clear_filter", "Clear filter", show=False,
                         id="clear_filter")]

    def __init__(self, config: Config, engine_factory: EngineFactory | None = None, *,
                 refresh: float = 0.5, clock: Callable[[], float] = time.perf_counter,
                 wall: Callable[[], float] = time.time, theme_dirs: list | None = None,
                 watch_terminal: bool = True, ui_nice: int = 0,
                 settle_heap: Callable[[], None] | None = None) -> None:
        """`settle_heap`: called once, when every target has a first result
        (the process's host passes `monitor.engine.heap.settle`)."""
        super().__init__()
        self._settle_heap = settle_heap
        self.ui_nice = ui_nice
        self.config = config
        self.inbox = Inbox()
        factory = engine_factory or self._process_engine
        self.engine: EngineClient = factory(self.inbox)
        self.refresh_every = refresh
        self.clock = clock
        self.board = Board(config.targets, config.settings.history, clock())
        self.marks = Marks(config)   # maintenance windows, "unreachable via" a DOWN parent
        self.arranger = Arranger(self.board.views.values())
        self._group_tally: dict[str, tuple[int, int]] = {}   # as of the last arrange
        self._shown_targets = 0                              # as of the last arrange
        self._fitted_for: tuple[int, bool] | None = None     # (targets, grouped)
        self._table_rows = 0                                 # as many as it may need
        self._log_least = 8                                  # the event log's least height
        self._log_height = 0                                 # as last set
        self.filter = Filter()
        self.sort_mode = SortMode.STATUS
        self.grouped = False
        self.palette = fmt.Palette.from_variables({})
        self._theme_dirs = theme_dirs
        self._watch_terminal = watch_terminal
        self._last_sort = float("-inf")
        self._last_tick = float("-inf")
        self._ticks = 0
        self._uptime: float | None = None
        self._engine_started = False
        self._detail: DetailScreen | None = None
        self._past: asyncio.Future[Past] | None = None
        # uptime windows from history, read in a thread once a minute
        self.history_uptime: dict[str, list[WindowUptime]] = {}
        self._uptime_read: asyncio.Future[dict[str, list[WindowUptime]]] | None = None
        self._born = clock()
        self.wall = wall   # time of day, for what people read; `clock` measures
        self.watch = EngineWatch(clock(), wall=wall)
        self.collector = KeyHold(self.set_timer)
        self._touched: set[str] = set()   # targets whose results were taken since the flush

    def _process_engine(self, listener: Listener) -> EngineClient:
        assert self.config.path is not None, "the engine process reads the config file"
        return ProcessEngine(self.config.path, listener)

    # --- setup ----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Kept as attributes: the refresh cycle runs several times a second and
        # must not depend on the DOM (a query during shutdown finds nothing).
        self.summary = SummaryBar(id="summary")
        self.filter_box = FilterBox(
            on_change=self._filter_changed, id="filter",
            placeholder="filter: name, down, tag:x, group:x, kind:http   (enter keeps, esc clears)")
        self.header = TargetHeader(id="header")
        self.table = TargetTable(id="targets")
        self.table.header = self.header
        self.selection = SelectionLine(id="selection")
        self.events = EventLog(id="event-log", max_lines=500)
        self.banner = EngineBanner(id="banner")
        self.config_banner = ConfigBanner(id="config-problems")
        # first: the compositor numbers widgets from the last one placed, so
        # the box coming and going renumbers nothing and redraws nothing else
        yield self.filter_box
        yield self.summary
        yield self.banner
        yield self.config_banner
        yield self.header
        yield self.table
        yield self.selection
        yield self.events
        yield SteadyFooter(compact=True, show_command_palette=False, covered_by=self.filter_box)

    async def on_mount(self) -> None:
        loaded, problems = themes.load_themes(self._theme_dirs)
        for theme in loaded:
            self.register_theme(theme)
        self.theme_names = [t.name for t in loaded]
        saved = themes.saved_theme()
        self.theme = saved if saved in self.theme_names else themes.DEFAULT_THEME
        self.theme_changed_signal.subscribe(self, self._on_theme_changed)
        self._set_palette()
        if problems:
            self.notify("\n".join(problems), title="Theme files skipped", severity="warning",
                        timeout=10, markup=False)
        if self.config.keys:
            self.set_keymap(self.config.keys)
        self._restore_layout()
        table = self.table
        table.on_scrolled = self._render_visible
        table.on_resized = self._on_table_resized
        self._fit(self.size.height)
        self._relayout()
        self._arrange(force=True)
        table.focus()
        # the board's past, read while the engine starts; results wait for it
        if has_history(self.config):
            self._past = asyncio.get_running_loop().run_in_executor(
                None, read_past, self.config, self.clock())
        self.set_interval(self.refresh_every, self.flush)
        if self.refresh_every > RESULTS_EVERY:
            self.set_interval(RESULTS_EVERY, self._take_results)
        self._read_uptime()
        self.set_interval(UPTIME_EVERY, self._read_uptime)
        if self._watch_terminal:
            self._install_hangup_guards()
            self.run_worker(self._follow_theme_files(), exit_on_error=False, group="themes")
        await self.engine.start()
        self._engine_started = True
        yield_cpu_to_engine(self.ui_nice)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.collector.key()   # no collection inside the frame this key makes
        await super().on_event(event)

    async def on_unmount(self) -> None:
        self.collector.release()
        if self._engine_started:
            self._engine_started = False
            await self.engine.stop()

    def _install_hangup_guards(self) -> None:
        """A dropped SSH session must not leave us spinning (Textual #6690)."""
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)
        except (NotImplementedError, RuntimeError):
            pass
        self.set_interval(2.0, self._check_terminal)

    def _check_terminal(self) -> None:
        if terminal_gone():
            self.exit(0)

    # --- the refresh cycle is in refresh.py; these two answer Textual -------------

    @on(TargetTable.CursorMoved)
    def _show_selection(self) -> None:
        """The selected row's whole reason, under the board."""
        name = self.selected_name()
        view = None if name is None else self.board.views.get(name)
        self.selection.show(view, self.clock(), self.palette, self.size.width,
                            self.watch.stale_note(), None if name is None else self.marks.get(name))

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.height)

    # --- the engine's own health -------------------------------------------------

    def wall_now(self) -> datetime:
        return datetime.fromtimestamp(self.wall())

    def _engine_went_down(self, down: EngineDown) -> set[str]:
        """Say so (log, toast, banner when final); on the first death of an
        outage the board forgets the states the dead engine confirmed."""
        forgotten = forget_states(self.board, self.clock()) if self.watch.went_down(down) else set()
        self.events.write(engine_down_line(down, self.wall_now(), self.palette))
        if down.retry_in is None or down.tries == 0:   # not each failed try: the log has those
            final = down.retry_in is None
            self.notify(down.reason, severity="error", timeout=30 if final else 8, markup=False,
                        title="Engine could not be restarted" if final else "Engine stopped")
        return forgotten

    def _engine_came_up(self, restarts: int) -> None:
        self.watch.came_up(self.clock())
        if restarts:
            self.events.write(engine_up_line(restarts, self.wall_now(), self.palette))
            self.notify("measuring again", title="Engine restarted", timeout=4)

    def _engine_refuses(self, what: str) -> bool:
        """True (and said) when there is no engine to send `what` to."""
        refusal = self.watch.refusal()
        if refusal is not None:
            self.notify(refusal, title=what, severity="warning", timeout=3, markup=False)
        return refusal is not None

    async def action_quit(self) -> None:
        """Quit; with status 1, and the reason on stderr once the screen has
        closed, when the engine died for good."""
        reason = self.watch.given_up()
        if reason is None:
            self.exit(0)
        else:
            self.exit(1, return_code=1, message=f"monitor: {reason}")

    # --- actions ----------------------------------------------------------------

    def selected_name(self) -> str | None:
        key = self.table.cursor_key()
        return None if key is None or key.startswith(GROUP_PREFIX) else key

    def action_details(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        detail = self._detail
        if detail is None:
            from monitor.ui.screens.detail import DetailScreen
            detail = self._detail = DetailScreen(name)
            self.install_screen(detail, "detail")   # installed: kept when popped
        else:
            detail.show_target(name)
        self.push_screen(detail)

    @on(TargetTable.Selected, "#targets")
    def _row_selected(self) -> None:
        self.action_details()

    def action_probe_now(self, name: str | None = None) -> None:
        name = name or self.selected_name()
        if name is not None and not self._engine_refuses(f"probe {fmt.shorten(name, 30)}"):
            self.engine.probe_now(name)
            stalled = " (but the engine is not responding)" \
                if self.watch.liveness is Liveness.STALLED else ""
            self.notify(f"probing {name}{stalled}", timeout=1.5, markup=False)

    def action_pause(self, name: str | None = None) -> None:
        name = name or self.selected_name()
        if name is None or self._engine_refuses(f"pause {fmt.shorten(name, 30)}"):
            return
        view = self.board.views[name]
        pausing = view.state is not State.PAUSED
        if pausing:
            self.engine.pause(name)
        else:
            self.engine.resume(name)
        # kept in the app's state file: the next start begins with it paused
        problem = appstate.record_pause(self.config, name, pausing)
        if problem is not None:
            self.notify(problem, title="Pause not remembered", severity="warning", timeout=5,
                        markup=False)

    def action_filter(self) -> None:
        self.filter_box.open()

    def action_clear_filter(self) -> None:
        """Escape on the board: the filter goes (the box says so as it closes)."""
        if self.filter_box.is_open:
            self.filter_box.close(keep=False)
        elif self.filter_box.value:
            self.filter_box.value = ""

    def _filter_changed(self, text: str) -> None:
        self.filter = Filter(text)
        self._arrange(force=True)
        self._render_visible()
        self._show_summary()

    def action_sort(self) -> None:
        self.sort_mode = self.sort_mode.next()
        self._remember_layout()
        self._arrange(force=True)
        self._render_visible()
        self._show_summary()
        self.notify(f"sorted by {self.sort_mode.value}", timeout=1.5, markup=False)

    def action_group(self) -> None:
        self.grouped = not self.grouped
        self._remember_layout()
        self._relayout()
        self._arrange(force=True)
        self._render_visible()
        self._show_summary()

    def action_theme(self) -> None:
        names = self.theme_names
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"theme: {self.theme}", timeout=1.5, markup=False)

    def action_reload(self) -> None:
        if not self._engine_refuses("reload the config"):
            self.engine.reload()
            self.notify(f"reloading {self.config.path}", timeout=1.5, markup=False)

    def action_toggle_events(self) -> None:
        self.events.toggle_class("hidden")
        self._remember_layout()
        self._log_height = 0   # shown again: fitted anew once laid out

    def action_help(self) -> None:
        from monitor.ui.screens.help import HelpScreen
        self.push_screen(HelpScreen())

    # --- editing targets in the config file (screens/target_form.py) ------------------

    def action_add_target(self) -> None:
        from monitor.ui.screens.target_form import start_editing
        start_editing(self, "add")

    def action_edit_target(self) -> None:
        from monitor.ui.screens.target_form import start_editing
        start_editing(self, "edit")

    def action_duplicate_target(self) -> None:
        from monitor.ui.screens.target_form import start_editing
        start_editing(self, "duplicate")

    def action_delete_target(self) -> None:
        from monitor.ui.screens.target_form import start_editing
        start_editing(self, "delete")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Main-screen actions are hidden (and off) on the detail and help screens."""
        if action in ("filter", "clear_filter", "sort", "group", "details", "toggle_events") \
                and self.screen is not self.screen_stack[0]:
            return False
        if action == "filter" and self.focused is self.filter_box:
            return False   # `/` typed into the box is text
        if action == "clear_filter" and not self.filter.text:
            return False   # nothing to clear: Escape falls through
        return True

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for action, (_keys, label, description) in BINDINGS.items():
            yield SystemCommand(label, f"{description} (key id: {action})",
                                getattr(self, f"action_{action}"))

