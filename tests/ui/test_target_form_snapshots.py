"""Snapshots of the target form at 80x24: editing a target, and a draft the
loader refuses (its message under the field). Textual is pinned exactly.
Update with: python -m pytest tests/ui/test_target_form_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from monitor.ui.screens.target_form import TargetForm
from tests.ui.conftest import make_app
from tests.ui.test_snapshots import prepare as prepare_board


def prepare(keys: tuple[str, ...] = (), theme: str = "monitor-dark"):
    async def run_before(pilot) -> None:
        await prepare_board(theme)(pilot)
        app = pilot.app
        table = app.table
        table.move_cursor(row=table.get_row_index("db-primary"))
        await pilot.press("E")
        for _ in range(250):
            if isinstance(app.screen, TargetForm):
                break
            await pilot.pause(0.02)
        form = app.screen
        for box in form.query(Input):
            box.cursor_blink = False
        if keys:
            form.query_one("#field-port", Input).focus()
            await pilot.press(*keys)
            await pilot.pause(0.3)
        for _ in range(250):
            if not form.pending:
                break
            await pilot.pause(0.02)
        app.clear_notifications()
        await pilot.pause()
    return run_before


@pytest.mark.parametrize("theme", ["monitor-dark", "monitor-light"])
def test_edit_form(snap_compare, config_file: Path, theme: str):
    assert snap_compare(make_app(config_file), terminal_size=(80, 24),
                        run_before=prepare(theme=theme))


def test_edit_form_with_a_problem(snap_compare, config_file: Path):
    assert snap_compare(make_app(config_file), terminal_size=(80, 24),
                        run_before=prepare(keys=("end", "0", "0", "0", "0")))
