"""Room for what matters: whole failure reasons, the event log's lines and
height, at every width."""

from __future__ import annotations

from pathlib import Path

from monitor.ui.widgets.targets import layout
from tests.ui.conftest import make_app, populate

LONG_REASON = "expected 2xx, got 503 Service Unavailable from https://shop.example.test/checkout"


async def board(pilot, app) -> None:
    populate(app)
    app.flush()
    await pilot.pause()


def test_the_reason_column_keeps_room_for_a_whole_reason():
    for width in range(100, 201, 5):
        columns = layout(width, grouped=False)
        assert columns[-1].key == "error" and columns[-1].width >= 40, width
    at_100 = [c.key for c in layout(100, grouped=False)]
    assert at_100 == ["state", "name", "last", "trend", "uptime", "error"]
    # the optional columns join as room allows, and never push the reason below 40
    assert {"p95", "loss", "age"} <= {c.key for c in layout(150, grouped=False)}


async def test_the_selected_rows_whole_reason_is_under_the_board(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await board(pilot, app)
        app.engine.result("db-primary", "down", reason=LONG_REASON, kind="tcp", age=0.5)
        app.flush()
        app.table.move_cursor(app.table.get_row_index("db-primary"))
        await pilot.pause()
        assert app.table.get_cell("db-primary", "error").plain.endswith("…")
        line = str(app.selection.render())
        assert "db-primary" in line and "expected 2xx, got 503 Service Unavailable" in line
        await pilot.resize_terminal(120, 30)
        await pilot.pause()
        app.flush()
        await pilot.pause()
        assert LONG_REASON in str(app.selection.render())
        app.table.move_cursor(app.table.get_row_index("checkout"))   # follows the cursor
        await pilot.pause()
        assert "checkout" in (line := str(app.selection.render()))
        assert "slow: 410ms > max 250ms" in line
        app.table.move_cursor(app.table.get_row_index("api"))
        await pilot.pause()
        assert "no failures seen" in str(app.selection.render())


async def test_event_log_lines_cut_with_an_ellipsis_and_whole_when_wide(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await board(pilot, app)
        app.engine.move("db-primary", app.board.views["db-primary"].state.UP)
        app.engine.move("db-primary", app.board.views["api"].state.DOWN, LONG_REASON, minutes=9)
        app.flush()
        await pilot.pause()
        log = app.events
        shown = [log.render_line(y).text.rstrip() for y in range(log.size.height)]
        cut = [line for line in shown if "db-primary" in line and "expected 2xx" in line]
        assert cut and cut[-1].endswith("…") and len(cut[-1]) <= 80
        await pilot.resize_terminal(200, 50)
        await pilot.pause()
        shown = [log.render_line(y).text.rstrip() for y in range(log.size.height)]
        assert any(line.endswith(LONG_REASON) for line in shown)


async def test_the_event_log_takes_the_room_the_rows_leave(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(200, 50)) as pilot:
        await board(pilot, app)
        await pilot.pause()
        assert app.table.size.height == 6                  # six targets, six rows
        assert app.events.size.height >= 30                # the rest is the log's
        shown = [app.events.render_line(y).text for y in range(app.events.size.height)]
        assert sum(1 for line in shown if "→" in line) == len(app.events.lines) == 5
        await pilot.press("g")                              # headings need rows too
        await pilot.pause()
        assert app.table.size.height == 6 + 4
    many = '[settings]\ninterval = "10s"\n' + "".join(
        f'[[targets]]\nname = "t{i:03}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {1000 + i}\n'
        for i in range(300))
    app = make_app(config_file, many)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.events.outer_size.height == 5           # a full board leaves the log its least
        assert app.table.size.height >= 12


async def test_a_smaller_terminal_shrinks_the_log_not_the_rows(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(200, 50)) as pilot:
        await board(pilot, app)
        await pilot.resize_terminal(80, 24)
        for _ in range(3):
            await pilot.pause()
        assert app.table.size.height == 6                  # every row still shows
        assert app.screen.virtual_size.height <= 24       # and nothing spills off screen
        assert app.events.size.height >= 4


async def test_the_filter_box_is_one_line(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await board(pilot, app)
        await pilot.press("slash", "a")
        await pilot.pause()
        assert app.filter_box.outer_size.height == 1
        assert app.table.size.height == 6


async def test_the_log_shows_the_newest_lines_after_a_resize(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(200, 50)) as pilot:
        await board(pilot, app)
        for minute in range(20):
            app.engine.move("api", app.board.views["api"].state.DOWN if minute % 2
                            else app.board.views["api"].state.UP, minutes=10 + minute)
        app.flush()
        await pilot.pause()
        await pilot.resize_terminal(80, 24)
        for _ in range(3):
            await pilot.pause()
        log = app.events
        bottom = log.render_line(log.size.height - 1).text
        assert "09:59:00" in bottom                         # the newest, at the bottom
