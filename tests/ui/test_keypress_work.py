"""What a keypress costs, counted (never timed): walks of the board, rows
drawn, widgets built, the heap settled once."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from textual.widgets._footer import FooterKey

from monitor.config import parse_config
from monitor.engine.state import State
from monitor.ui import refresh as refresh_module
from monitor.ui.app import MonitorApp
from monitor.ui.refresh import SETTLE_AT_THE_LATEST
from monitor.ui.screens.detail import DetailScreen
from monitor.ui.widgets.footer import SteadyFooter
from monitor.ui.widgets.targets import TargetTable
from tests.ui.conftest import footer_drawn, make_app, populate, screen_ready
from tests.ui.fake_engine import NOW, FakeEngine


class CountedViews(dict):
    """The board's views, counting every walk over all of them."""

    walks = 0

    def values(self):  # type: ignore[override]
        self.walks += 1
        return super().values()

    def items(self):  # type: ignore[override]
        self.walks += 1
        return super().items()

    def __iter__(self):
        self.walks += 1
        return super().__iter__()


def big_config(path: Path, targets: int) -> Path:
    path.write_text('[settings]\ninterval = "60s"\n' + "".join(
        f'[[targets]]\nname = "t{i}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {1 + i % 60000}\n'
        f'group = "g{i % 7}"\n' for i in range(targets)))
    return path


async def test_a_keypress_on_a_big_board_walks_it_at_most_once_and_draws_visible_rows(
        tmp_path: Path, monkeypatch):
    """10,000 targets: sorting, grouping, filtering and scrolling each draw at
    most the rows on screen and walk the whole board at most once (the
    summary's counts), whatever the number of targets."""
    config_path = big_config(tmp_path / "big.toml", 10_000)
    config = parse_config(config_path.read_text(), config_path)
    # refresh=1000: no timed flush lands inside a measured press
    app = MonitorApp(config, FakeEngine, clock=lambda: NOW, watch_terminal=False, refresh=1000)
    cells_built = []
    real_row_cells = refresh_module.row_cells
    monkeypatch.setattr(refresh_module, "row_cells",
                        lambda *a: cells_built.append(a[0]) or real_row_cells(*a))
    async with app.run_test(size=(120, 40)) as pilot:
        engine: FakeEngine = app.engine  # type: ignore[assignment]
        for i in range(0, 10_000, 3):
            engine.result(f"t{i}", latency=float(i % 50), age=1.0)
            engine.move(f"t{i}", State.UP if i % 9 else State.DOWN)
        app.flush()
        await pilot.pause()
        table = app.query_one(TargetTable)
        views = app.board.views = CountedViews(app.board.views)
        visible = table.size.height + 1
        for keys in (["s"], ["s"], ["s"], ["s"], ["g"], ["pagedown"], ["g"], ["slash"], ["t"],
                     ["1"], ["enter"], ["pagedown"], ["down"], ["end"]):
            views.walks, drawn = 0, table.rendered_rows
            cells_built.clear()
            await pilot.press(*keys)
            await pilot.pause()
            assert views.walks <= 1, keys
            assert table.rendered_rows - drawn <= visible, keys
            assert len(cells_built) <= visible, keys


async def test_a_second_visit_to_details_builds_no_widgets(config_file: Path, monkeypatch):
    """The detail screen is kept, and neither footer rebuilds the keys it
    already shows: going back and forth mounts nothing."""
    built: list[object] = []
    real_init = FooterKey.__init__

    def counted_init(self, *args, **kwargs) -> None:
        built.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(FooterKey, "__init__", counted_init)
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        populate(app)
        app.flush()
        await pilot.pause()
        table = app.query_one(TargetTable)
        table.move_cursor(row=table.get_row_index("checkout"))
        await pilot.press("enter")
        await screen_ready(pilot, DetailScreen)
        first = app.screen
        await pilot.press("escape")
        await footer_drawn(pilot)
        built.clear()
        table.move_cursor(row=table.get_row_index("api"))
        await pilot.press("enter")
        await screen_ready(pilot, DetailScreen)
        assert app.screen is first
        assert "api" in str(first.title_line.render())
        assert 'name = "api"' in str(first.boxes["config"].render())
        await pilot.press("escape")
        await footer_drawn(pilot)
        assert isinstance(app.screen.query_one(TargetTable), TargetTable)
        assert built == []


async def test_the_heap_is_settled_once_when_every_target_has_a_first_result(
        config_file: Path):
    settled: list[float] = []
    clock = [NOW]
    config = parse_config(config_file.read_text(), config_file)
    app = MonitorApp(config, FakeEngine, clock=lambda: clock[0], watch_terminal=False,
                     refresh=1000, settle_heap=lambda: settled.append(clock[0]))
    async with app.run_test(size=(120, 40)) as pilot:
        app.flush()
        assert settled == []                 # every target still pending
        populate(app)
        clock[0] += 1
        app.flush()
        await pilot.pause()
        assert settled == [NOW + 1]
        app.engine.move("api", State.PENDING)
        app.flush()
        clock[0] += 1
        app.flush()
        assert settled == [NOW + 1]          # once only


async def test_the_heap_is_settled_anyway_after_a_long_first_round(config_file: Path):
    settled: list[float] = []
    clock = [NOW]
    config = parse_config(config_file.read_text(), config_file)
    app = MonitorApp(config, FakeEngine, clock=lambda: clock[0], watch_terminal=False,
                     refresh=1000, settle_heap=lambda: settled.append(clock[0]))
    async with app.run_test(size=(120, 40)):
        clock[0] += SETTLE_AT_THE_LATEST - 1
        app.flush()
        assert settled == []
        clock[0] += 1
        app.flush()
        assert settled == [NOW + SETTLE_AT_THE_LATEST]


async def test_the_filter_box_opens_over_the_footer_and_moves_nothing(config_file: Path,
                                                                      monkeypatch):
    """`/` and Enter redraw one line: the box covers the footer (the bottom
    line), no other widget moves or resizes, and the footer's keys are not
    rebuilt for the box's focus and back."""
    built: list[object] = []
    real_init = FooterKey.__init__
    monkeypatch.setattr(FooterKey, "__init__",
                        lambda self, *a, **k: built.append(self) or real_init(self, *a, **k))
    app = make_app(config_file)
    async with app.run_test(size=(100, 30)) as pilot:
        populate(app)
        app.flush()
        await footer_drawn(pilot)
        widgets = (app.summary, app.header, app.table, app.selection, app.events)
        regions = [w.region for w in widgets]
        built.clear()
        await pilot.press("slash")
        await pilot.pause()
        assert app.filter_box.is_open and app.focused is app.filter_box
        assert app.filter_box.region.y == app.size.height - 1 and app.filter_box.region.height == 1
        assert [w.region for w in widgets] == regions
        await pilot.press("c", "h", "enter")
        await footer_drawn(pilot)
        assert not app.filter_box.is_open and app.filter.text == "ch"
        assert [w.region for w in widgets] == regions
        assert built == []
        footer = app.screen.query_one(SteadyFooter)
        assert footer.region.y == app.size.height - 1 and "Filter" in str(
            [key.description for key in footer.query(FooterKey)])


async def test_results_are_taken_between_redraws_and_drawn_by_the_next(config_file: Path):
    """At 1,000 results/s a redraw applying half a second of them held the
    loop for tens of milliseconds: they are applied in small blocks between
    redraws (nothing drawn then), and the next redraw draws what they changed."""
    config = parse_config(config_file.read_text(), config_file)
    app = MonitorApp(config, FakeEngine, clock=lambda: NOW, watch_terminal=False, refresh=10.0)
    async with app.run_test(size=(120, 40)) as pilot:
        populate(app)
        app.flush()
        await pilot.pause()
        engine: FakeEngine = app.engine  # type: ignore[assignment]
        table = app.query_one(TargetTable)
        before = app.board.views["api"].last
        engine.result("api", latency=777.0, age=0.0)
        for _ in range(100):                 # bounded: the 0.1 s block comes
            if app.board.views["api"].last is not before:
                break
            await pilot.pause(0.02)
        assert app.board.views["api"].last.latency_ms == 777.0
        assert app.inbox.results == deque()
        app.flush()   # (a timed one may have come first on a slow machine: either draws it)
        assert "777" in table.get_cell("api", "last").plain
