"""The filter box: keys after `/` reach it however they arrive (one burst
from a paste or a laggy SSH link), Escape clears, the filter stays visible."""

from __future__ import annotations

from pathlib import Path

from textual._xterm_parser import XTermParser

from monitor.engine.state import State
from monitor.ui.widgets.targets import GROUP_PREFIX, TargetTable
from tests.ui.conftest import make_app, populate


def burst(app, data: str) -> None:
    """`data` as the terminal driver delivers one read: parsed into key
    events that are all queued before the app handles the first."""
    for event in XTermParser().feed(data):
        app.post_message(event)


async def board_ready(pilot, app) -> None:
    populate(app)
    app.flush()
    await pilot.pause()


async def settle(pilot, app) -> None:
    for _ in range(5):
        await pilot.pause()
    app.flush()
    await pilot.pause()


async def test_a_burst_after_slash_is_all_filter_text(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await board_ready(pilot, app)
        engine = app.engine
        theme, events_hidden = app.theme, app.events.has_class("hidden")
        burst(app, "/group:infra")
        await settle(pilot, app)
        assert app.is_running
        assert app.filter_box.value == "group:infra"
        assert app.filter.text == "group:infra"
        assert set(app.table.order) == {"resolver", "gateway"}
        assert not app.grouped and app.sort_mode.value == "status"
        assert not any(k.startswith(GROUP_PREFIX) for k in app.table.order)
        assert engine.commands == []                      # nothing paused or probed
        assert app.theme == theme and app.events.has_class("hidden") == events_hidden
        assert all(view.state is not State.PAUSED for name, view in app.board.views.items()
                   if name != "legacy-ftp")


async def test_a_burst_that_would_quit_is_typed_instead(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await board_ready(pilot, app)
        burst(app, "/tag:squid")
        await settle(pilot, app)
        assert app.is_running
        assert app.filter_box.value == "tag:squid"
        assert app.table.order == []


async def test_enter_in_the_burst_closes_the_box_and_later_keys_are_commands(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await board_ready(pilot, app)
        app.table.move_cursor(0)          # db-primary: down, so first in any filter
        burst(app, "/a\rj")               # filter, Enter, then one row down
        await settle(pilot, app)
        assert app.filter.text == "a" and not app.filter_box.is_open
        assert app.focused is app.table
        assert app.filter_box.value == "a" and len(app.table.order) > 2
        assert app.table.cursor_row == 1          # `j` moved the cursor, not the filter


async def test_slash_inside_the_box_is_text(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        burst(app, "/a/b")
        await settle(pilot, app)
        assert app.filter_box.value == "a/b" and app.filter_box.is_open


async def test_escape_clears_the_filter_in_the_box_and_on_the_board(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await board_ready(pilot, app)
        await pilot.press("slash", *"down", "escape")       # typed slowly, then Escape
        await settle(pilot, app)
        assert app.filter.text == "" and len(app.table.order) == 6
        assert not app.filter_box.is_open and app.focused is app.table
        await pilot.press("slash", *"down", "enter")        # kept...
        await settle(pilot, app)
        assert app.table.order == ["db-primary"] and app.focused is app.table
        await pilot.press("escape")                          # ...until Escape on the board
        await settle(pilot, app)
        assert app.filter.text == "" and len(app.table.order) == 6
        assert "filter" not in str(app.summary.render())


async def test_filter_sort_and_grouping_show_at_80_columns(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await board_ready(pilot, app)
        await pilot.press("slash", *"down", "enter", "s", "s", "g")
        await settle(pilot, app)
        summary = str(app.summary.render())
        assert "filter “down” 1/6" in summary
        assert "sort latency" in summary and "grouped" in summary
        assert "✖ 1" in summary                           # the counts stay, if shorter
        await pilot.press("slash", *"a-very-long-name-fragment-nobody-has", "enter")
        await settle(pilot, app)
        summary = str(app.summary.render())
        assert "filter “a-very-" in summary and "…” 0/6" in summary   # cut, not dropped
        assert "sort latency" in summary and "grouped" in summary
        assert len(summary.rstrip()) <= 78


async def test_slash_takes_focus_back_to_an_open_box(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await board_ready(pilot, app)
        await pilot.press("slash", "d")
        app.table.focus()                                   # as a click on the board does
        await pilot.pause()
        burst(app, "/own")
        await settle(pilot, app)
        # the box has the keys again, its text selected as whenever it takes focus
        assert app.focused is app.filter_box and app.filter_box.value == "own"


async def test_a_filter_that_matches_nothing_says_so_on_the_board(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        await board_ready(pilot, app)
        await pilot.press("slash", *"zz", "enter")
        await settle(pilot, app)
        assert app.table.order == []
        first_row = "".join(segment.text for segment in app.table.render_line(0))
        assert "no target matches “zz”" in first_row and "esc clears" in first_row
        assert len(first_row) == app.table.size.width
        await pilot.press("escape")
        await settle(pilot, app)
        assert app.table.empty_note is None and len(app.table.order) == 6


async def test_the_board_is_filtered_in_the_same_turn_as_the_box_changes(config_file: Path):
    """Not after a message round: the box's text and the rows it selects go
    out in one frame."""
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await board_ready(pilot, app)
        app.filter_box.value = "down"                  # as a typed key sets it
        assert app.filter.text == "down" and app.table.order == ["db-primary"]
        assert "filter “down” 1/6" in str(app.summary.render())
