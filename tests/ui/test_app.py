"""Every binding and screen, driven by Pilot against a fake engine."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.text import Text
from textual.command import CommandPalette
from textual.widgets import Input

from monitor.engine.client import EngineStats
from monitor.engine.state import State
from monitor.ui.screens.detail import DetailScreen
from monitor.ui.screens.help import HelpScreen
from monitor.ui.themes import saved_theme
from monitor.ui.widgets.event_log import EventLog
from monitor.ui.widgets.targets import GROUP_PREFIX, TargetTable, same_cells
from tests.ui.conftest import make_app, populate, screen_ready


async def show_board(app, pilot) -> None:
    """The populated board, applied and drawn."""
    populate(app)
    app.flush()
    await pilot.pause()


def cell(app, name: str, column: str) -> str:
    return app.query_one(TargetTable).get_cell(name, column).plain


def select(app, name: str) -> None:
    table = app.query_one(TargetTable)
    table.move_cursor(row=table.get_row_index(name))


async def until(pilot, predicate, tries: int = 100) -> None:
    """Pause until `predicate()` holds: under load one pause may not be enough."""
    for _ in range(tries):
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition never held")


def text_of(widget) -> str:
    """What a Static shows, as plain text (Rich tables included)."""
    console = Console(width=120, color_system=None)
    with console.capture() as capture:
        console.print(widget.content)
    return capture.get()


async def test_board_shows_each_target_with_state_and_reason(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(160, 40)) as pilot:   # wide enough for the loss column
        await show_board(app, pilot)
        table = app.query_one(TargetTable)
        # status sort: worst first, paused last
        assert table.order == ["db-primary", "checkout", "api", "gateway", "resolver",
                               "legacy-ftp"]
        assert cell(app, "db-primary", "state") == "✖ DOWN"
        assert cell(app, "db-primary", "error") == "connection refused"
        assert cell(app, "db-primary", "last") == "fail"
        assert "×" in cell(app, "db-primary", "trend")   # failures visible, not zero
        assert cell(app, "checkout", "state") == "▲ DEGR"
        assert cell(app, "legacy-ftp", "state") == "‖ PAUS"
        assert cell(app, "api", "loss") == "0%"
        assert cell(app, "db-primary", "loss") == "40%"
        summary = str(app.query_one("#summary").render())
        assert "3 up" in summary and "1 degraded" in summary and "1 down" in summary
        assert "4.0/s" in summary and "lag 0.80ms" in summary
        log = app.query_one("#event-log", EventLog)
        assert any("db-primary" in line.plain for line in log.lines)
        assert app.engine.started


async def test_updates_are_keyed_diffs_not_rebuilds(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        table = app.query_one(TargetTable)
        before = table.rendered_rows
        app.engine.result("api", latency=55.0, age=0.5)
        app.flush()
        await pilot.pause()
        assert cell(app, "api", "last") == "55.0ms"
        assert table.rendered_rows == before + 1        # only api's row was drawn again
        app.flush()
        await pilot.pause()
        assert table.rendered_rows == before + 1        # nothing changed: nothing drawn


async def test_offscreen_rows_cost_nothing_until_visible(config_file: Path, tmp_path: Path):
    text = '[settings]\ninterval = "10s"\n' + "".join(
        f'[[targets]]\nname = "t{i:03}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {1000 + i}\n'
        for i in range(300))
    app = make_app(config_file, text)
    async with app.run_test(size=(80, 24)) as pilot:
        app.sort_mode = app.sort_mode.NAME
        app._arrange(force=True)
        app.flush()
        await pilot.pause()
        table = app.query_one(TargetTable)
        app.engine.result("t250", latency=7.0)
        app.flush()
        assert "t250" in table.dirty                       # recorded, not rendered
        assert table.get_cell("t250", "last").plain == ""
        table.move_cursor(row=table.get_row_index("t250"))
        await pilot.pause()
        app.flush()
        assert table.get_cell("t250", "last").plain == "7.0ms"


async def test_enter_opens_details_and_escape_returns(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        select(app, "checkout")
        await pilot.press("enter")
        await screen_ready(pilot, DetailScreen)
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.target_name == "checkout"
        title = str(screen.query_one("#title").render())
        assert "checkout" in title and "DEGR" in title
        config_text = text_of(screen.query_one("#config"))
        assert 'max_latency = "250ms"' in config_text
        phases = text_of(screen.query_one("#phases"))
        assert "ttfb" in phases and "tls" in phases
        await pilot.press("r")
        await pilot.press("p")
        await pilot.pause()
        assert ("probe_now", "checkout") in app.engine.commands
        assert ("pause", "checkout") in app.engine.commands
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DetailScreen)


async def test_detail_shows_certificate_facts(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        app.engine.result("api", cert_days=41.5)
        app.flush()
        await pilot.pause()
        select(app, "api")
        await pilot.press("enter")
        await screen_ready(pilot, DetailScreen)
        cert = text_of(app.screen.query_one("#cert"))
        assert "CN=Test CA" in cert and "41.5 days" in cert


async def test_probe_now_and_pause_resume_from_the_board(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        select(app, "db-primary")
        await pilot.press("r")
        assert app.engine.commands[-1] == ("probe_now", "db-primary")
        await pilot.press("p")
        await pilot.pause()
        app.flush()
        assert app.board.views["db-primary"].state is State.PAUSED
        app.query_one(TargetTable).move_cursor(
            row=app.query_one(TargetTable).get_row_index("db-primary"))
        await pilot.press("p")
        app.flush()
        assert app.engine.commands[-1] == ("resume", "db-primary")
        assert app.board.views["db-primary"].state is State.PENDING


async def test_filter_by_text_state_tag_and_group(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"down")
        await pilot.pause()
        assert app.query_one(TargetTable).order == ["db-primary"]
        app.query_one(Input).value = "tag:network"
        await pilot.pause()
        assert app.query_one(TargetTable).order == ["gateway"]
        app.query_one(Input).value = "group:prod"
        await pilot.pause()
        assert set(app.query_one(TargetTable).order) == {"api", "checkout"}
        app.query_one(Input).value = "res"
        await pilot.pause()
        assert app.query_one(TargetTable).order == ["resolver"]
        await pilot.press("enter")          # closes the box, keeps the filter
        await pilot.pause()
        assert app.focused is app.query_one(TargetTable)
        assert "filter “res”" in str(app.query_one("#summary").render())
        await pilot.press("slash")
        app.query_one(Input).value = ""
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.query_one(TargetTable).order) == 6


async def test_sort_cycles_status_name_latency_uptime(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        table = app.query_one(TargetTable)
        await pilot.press("s")
        assert app.sort_mode.value == "name"
        assert table.order == sorted(table.order)
        await pilot.press("s")
        assert app.sort_mode.value == "latency"
        assert table.order[0] == "checkout"                 # slowest first
        await pilot.press("s")
        assert app.sort_mode.value == "uptime"
        await pilot.press("s")
        assert app.sort_mode.value == "status"


async def test_group_toggle_adds_headings(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        await pilot.press("g")
        await pilot.pause()
        order = app.query_one(TargetTable).order
        headings = [k[len(GROUP_PREFIX):] for k in order if k.startswith(GROUP_PREFIX)]
        assert headings == ["database", "infra", "production", ""]
        assert order[order.index(GROUP_PREFIX + "production") + 1:][:2] == ["checkout", "api"]
        assert "1 down" in app.query_one(TargetTable).get_cell(GROUP_PREFIX + "database",
                                                               "error").plain
        select(app, GROUP_PREFIX + "database")
        await pilot.press("enter")          # a heading has no details
        assert not isinstance(app.screen, DetailScreen)
        await pilot.press("g")
        assert not any(k.startswith(GROUP_PREFIX) for k in app.query_one(TargetTable).order)


async def test_theme_cycles_and_persists(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "monitor-dark"
        await pilot.press("t")
        await pilot.pause()
        chosen = app.theme
        assert chosen != "monitor-dark" and chosen in app.theme_names
        assert saved_theme() == chosen
    again = make_app(config_file)
    async with again.run_test(size=(80, 24)):
        assert again.theme == chosen


async def test_help_lists_every_binding_and_closes(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("question_mark")
        await screen_ready(pilot, HelpScreen)
        text = " ".join(text_of(w) for w in app.screen.query("Static"))
        for words in ("Probe the selected target now", "Pause or resume", "Filter by",
                      "Sort by", "Group rows", "next theme", "Quit"):
            assert words in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_keys_can_be_remapped_from_config(config_file: Path):
    text = config_file.read_text() + '\n[keys]\nprobe_now = "f5"\nquit = "ctrl+q"\n'
    app = make_app(config_file, text.replace("[keys]", "[keys]", 1))
    async with app.run_test(size=(100, 30)) as pilot:
        await show_board(app, pilot)
        select(app, "db-primary")
        await pilot.press("r")
        assert ("probe_now", "db-primary") not in app.engine.commands
        await pilot.press("f5")
        assert app.engine.commands[-1] == ("probe_now", "db-primary")
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert app.engine.stopped


async def test_command_palette_lists_actions(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(100, 30)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Details", "Probe", "Pause", "Sort", "Group", "Theme", "Filter", "Quit"):
            assert title in titles
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"sort", "enter")
        await until(pilot, lambda: app.sort_mode.value == "name")   # ran the Sort action


async def test_quit_stops_the_engine(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.engine.stopped


async def test_engine_errors_are_shown(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(100, 30)) as pilot:
        app.inbox.on_error("engine process exited with status 1: boom")
        app.flush()
        await pilot.pause()
        log = app.query_one("#event-log", EventLog)
        assert any("boom" in line.plain for line in log.lines)


async def test_narrow_terminal_keeps_the_essentials(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await show_board(app, pilot)
        keys = [c.key for c in app.query_one(TargetTable).columns_now]
        assert keys == ["state", "name", "last", "trend", "uptime", "error"]
        await pilot.resize_terminal(200, 60)
        await pilot.pause()
        keys = [c.key for c in app.query_one(TargetTable).columns_now]
        assert keys == ["state", "name", "group", "kind", "last", "trend", "p95", "loss",
                        "uptime", "age", "error"]


def test_cells_differing_only_in_style_are_not_the_same():
    # rich's Text equality ignores the base style: a theme change must still redraw
    assert same_cells({"a": Text("x", style="red")}, {"a": Text("x", style="red")})
    assert not same_cells({"a": Text("x", style="red")}, {"a": Text("x", style="blue")})
    assert not same_cells({"a": Text("x", justify="right")}, {"a": Text("x")})
    assert not same_cells({"a": Text("x")}, {"b": Text("x")})


async def test_theme_change_recolours_rows_already_drawn(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        table = app.query_one(TargetTable)
        select(app, "api")   # the cursor's own colours must not be what changes

        def colours() -> set[str]:
            line = table.render_line(table.get_row_index("gateway"))
            return {str(seg.style.color) for seg in line if seg.style and seg.style.color}

        before = colours()
        await pilot.press("t")
        await pilot.pause()
        app.flush()
        await pilot.pause()
        assert app.theme != "monitor-dark"
        assert colours() and colours() != before


async def test_summary_says_when_the_engine_dropped_updates(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        assert "dropped" not in str(app.query_one("#summary").render())
        app.engine.listener.on_stats(EngineStats(probes_total=10, dropped=42))
        app.flush()
        await pilot.pause()
        assert "42 updates dropped" in str(app.query_one("#summary").render())


async def test_summary_warns_when_the_engine_is_behind(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        app.engine.stats(behind_s=0.05, skips_per_min=3)   # jitter, not behind: no warning
        app.flush()
        await pilot.pause()
        assert "behind" not in str(app.query_one("#summary").render())
        app.engine.stats(behind_s=2.34, skips_per_min=140)
        app.flush()
        await pilot.pause()
        line = app.query_one("#summary").render()
        assert "behind 2.3s, 140 skipped/min" in str(line)
        start = str(line).index("behind")
        warned = [span for span in line.spans if span.start <= start < span.end]
        assert warned[-1].style.foreground.rgb == tuple(app.palette.warning.color.triplet)


async def test_detail_config_panel_never_shows_a_password(config_file: Path):
    text = config_file.read_text().replace(
        'url = "https://shop.example.test/checkout"',
        'url = "https://alice:pw-in-url@shop.example.test/checkout"\n'
        'username = "bob"\npassword = "pw-literal"  # kept out of sight')
    app = make_app(config_file, text)
    async with app.run_test(size=(120, 40)) as pilot:
        await show_board(app, pilot)
        select(app, "checkout")
        await pilot.press("enter")
        await screen_ready(pilot, DetailScreen)
        config_text = text_of(app.screen.query_one("#config"))
        assert "alice:***@shop.example.test" in config_text
        assert 'password = "***"  # kept out of sight' in config_text
        assert "pw-in-url" not in config_text and "pw-literal" not in config_text
