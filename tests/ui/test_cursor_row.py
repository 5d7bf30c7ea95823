"""The selected row stands out in every theme and colour system: `r`, `p`
and Enter act on it, so it must never look like the rows around it."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.color import Color, ColorSystem
from rich.segment import Segment
from rich.style import Style

from tests.ui.conftest import make_app, populate

SYSTEMS = {"truecolor": ColorSystem.TRUECOLOR, "256": ColorSystem.EIGHT_BIT,
           "16": ColorSystem.STANDARD}
THEMES = ["monitor-dark", "monitor-light", "high-contrast", "terminal-16"]


def looks(segments: list[Segment], system: ColorSystem) -> tuple[set[str], set[str]]:
    """The backgrounds a terminal with `system` shows behind a row's text,
    and the (foreground, background) pairs of its visible characters."""
    def name(color: Color | None, default: str) -> str:
        return default if color is None or color.is_default else color.downgrade(system).name

    backgrounds, pairs = set(), set()
    for segment in segments:
        style = segment.style or Style()
        fg, bg = name(style.color, "default fg"), name(style.bgcolor, "default bg")
        if style.reverse:
            fg, bg = bg, fg
        backgrounds.add(bg)
        if segment.text.strip():
            pairs.add((fg, bg))
    return backgrounds, pairs


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("theme", THEMES)
async def test_the_cursor_row_looks_unlike_every_other_row(config_file: Path, theme: str,
                                                          system: str):
    app = make_app(config_file)
    async with app.run_test(size=(120, 30)) as pilot:
        app.console._color_system = SYSTEMS[system]    # as TEXTUAL_COLOR_SYSTEM would
        app.theme = theme
        populate(app)
        app.flush()
        await pilot.pause()
        table = app.table
        for cursor in (0, 2):
            table.move_cursor(cursor)
            await pilot.pause()
            assert app.focused is table
            rows = {y: looks(list(table.render_line(y)), SYSTEMS[system])
                    for y in range(len(table.order))}
            cursor_backgrounds, cursor_pairs = rows.pop(cursor)
            others = set().union(*(backgrounds for backgrounds, _ in rows.values()))
            assert cursor_backgrounds.isdisjoint(others), (theme, system, cursor_backgrounds)
            assert all(fg != bg for fg, bg in cursor_pairs)   # and its text still reads
