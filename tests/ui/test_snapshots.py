"""Snapshots of the main and detail screens at 80x24 and 120x40, dark and light.

Textual is pinned exactly in pyproject.toml: releases change rendering. The
clock is fixed and the engine is fake, so nothing moves between runs.
Update with: python -m pytest tests/ui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.ui.app import MonitorApp
from monitor.ui.widgets.targets import TargetTable
from tests.ui.conftest import footer_drawn, make_app, populate
from tests.ui.fake_engine import BASE_TIME, NOW, FakeEngine

SIZES = [(80, 24), (120, 40)]
THEMES = ["monitor-dark", "monitor-light"]


@pytest.fixture(autouse=True)
def truecolor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app draws for the colours the terminal has (the cursor row is
    reverse video in 16): the same terminal for every run, wherever it runs."""
    monkeypatch.setenv("COLORTERM", "truecolor")


def prepare(theme: str, detail: str | None = None):
    async def run_before(pilot) -> None:
        app = pilot.app
        app.theme = theme
        populate(app)
        app.flush()
        await pilot.pause()
        if detail is not None:
            table = app.query_one(TargetTable)
            table.move_cursor(row=table.get_row_index(detail))
            await pilot.press("enter")
            await pilot.pause()
        app.clear_notifications()
        await footer_drawn(pilot)
    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("theme", THEMES)
def test_main_screen(snap_compare, config_file: Path, theme: str, size: tuple[int, int]):
    assert snap_compare(make_app(config_file), terminal_size=size, run_before=prepare(theme))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("theme", THEMES)
def test_detail_screen(snap_compare, config_file: Path, theme: str, size: tuple[int, int]):
    assert snap_compare(make_app(config_file), terminal_size=size,
                        run_before=prepare(theme, detail="checkout"))


def test_main_screen_grouped_in_16_colours(snap_compare, config_file: Path):
    async def run_before(pilot) -> None:
        await prepare("terminal-16")(pilot)
        await pilot.press("g")
        await pilot.pause()
    assert snap_compare(make_app(config_file), terminal_size=(100, 30), run_before=run_before)


def test_main_screen_engine_given_up(snap_compare, config_file: Path):
    """The engine died and could not be restarted: a banner, the summary and
    every row say so; no state, count or rate from before is shown as now."""
    config = parse_config(config_file.read_text(), config_file)
    app = MonitorApp(config, FakeEngine, clock=lambda: NOW, wall=BASE_TIME.timestamp,
                     watch_terminal=False)   # "no data since 09:30:00"

    async def run_before(pilot) -> None:
        await prepare("monitor-dark")(pilot)
        pilot.app.engine.die("engine process exited with status 2: monitor.toml:3: "
                             "settings.interval: cannot read \"soon\" as a duration "
                             "(gave up: 5 failures within 60s)", tries=4, retry_in=None)
        pilot.app.flush()
        await pilot.pause()
        pilot.app.clear_notifications()
        await footer_drawn(pilot)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
