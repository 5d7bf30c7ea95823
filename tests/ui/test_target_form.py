"""a / E / ctrl+e / c / D: the target form and the delete question, with the
keyboard alone at 80x24, writing a real file through the real loader."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, Select, Static, TextArea

from monitor.config.edit import add_target, delete_target, replace_target, target_block
from monitor.ui.screens.confirm import ConfirmDelete, UnsavedDraft
from monitor.ui.screens.detail import DetailScreen
from monitor.ui.screens.target_form import TargetForm
from tests.ui.conftest import CONFIG, make_app, populate
from tests.ui.test_app import until

SIZE = (80, 24)


async def board(app, pilot, name: str | None = None) -> None:
    populate(app)
    app.flush()
    await pilot.pause()
    if name is not None:
        table = app.table
        table.move_cursor(row=table.get_row_index(name))
        await pilot.pause()


async def form_open(app, pilot) -> TargetForm:
    await until(pilot, lambda: isinstance(app.screen, TargetForm))
    form = app.screen
    await until(pilot, lambda: not form.pending)
    return form


async def opened(app, pilot, key: str, name: str | None = None) -> TargetForm:
    """The board drawn, `name` selected, `key` pressed: the form, checked once."""
    await board(app, pilot, name)
    await pilot.press(key)
    return await form_open(app, pilot)


async def closed(app, pilot) -> None:
    await until(pilot, lambda: not isinstance(app.screen, TargetForm))


async def checked(form, pilot) -> None:
    """The loader has judged what was typed (the check waits for a pause in typing)."""
    await pilot.pause(0.3)
    await until(pilot, lambda: not form.pending)


async def typed(pilot, text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text])


def static(form, selector: str) -> str:
    return str(form.query_one(selector, Static).render())


async def test_a_adds_a_target_with_the_keyboard_alone(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        form = await opened(app, pilot, "a")
        assert app.focused.id == "field-name"
        await typed(pilot, "new-api")
        await pilot.press("tab")
        await typed(pilot, "http://127.0.0.1:8080/health")
        await checked(form, pilot)
        assert "the file loads with this target" in static(form, "#verdict")
        await pilot.press("enter")
        await closed(app, pilot)
    expected = add_target(CONFIG, {"name": "new-api", "kind": "http",
                                   "url": "http://127.0.0.1:8080/health"})
    assert config_file.read_text() == expected
    assert config_file.with_name("monitor.toml~").read_text() == CONFIG


async def test_a_name_with_brackets_is_saved_and_said_as_written(config_file: Path):
    """Names are the user's text: the "saved" toast shows "[/x] api" as it
    is (read as markup it ended the app with MarkupError)."""
    from textual.widgets._toast import Toast   # the drawn toasts (pinned Textual)
    app = make_app(config_file)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        form = await opened(app, pilot, "a")
        form.query_one("#field-name", Input).value = "[/x] api"
        await pilot.press("tab")
        await typed(pilot, "http://127.0.0.1:8080/health")
        await checked(form, pilot)
        await pilot.press("enter")
        await closed(app, pilot)
        await until(pilot, lambda: any("[/x] api" in str(toast.render())
                                       for toast in app.screen.query(Toast)))
    assert 'name = "[/x] api"' in config_file.read_text()


@pytest.mark.parametrize("key", ["E", "ctrl+e"])
async def test_edit_changes_only_the_selected_block(config_file: Path, key: str):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        form = await opened(app, pilot, key, "db-primary")
        assert form.title_text == "Edit db-primary"
        port = form.query_one("#field-port", Input)
        assert port.value == "5432"
        port.focus()
        await pilot.press("end", "backspace", "3")
        await checked(form, pilot)
        await pilot.press("ctrl+s")
        await closed(app, pilot)
    fields = dict(target_block(CONFIG, "db-primary").data, port=5433)
    assert config_file.read_text() == replace_target(CONFIG, "db-primary", fields)


async def test_the_loaders_own_message_shows_under_the_field_and_nothing_is_saved(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        form = await opened(app, pilot, "E", "db-primary")
        form.query_one("#field-port", Input).focus()
        await pilot.press("end", *"00000")
        await checked(form, pilot)
        assert static(form, "#problem-port") == "must be at most 65535, got 543200000"
        assert "1 problem" in static(form, "#verdict")
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, TargetForm)   # still open, the edit kept
        assert form.query_one("#field-port", Input).value == "543200000"
    assert config_file.read_text() == CONFIG


async def test_changing_the_kind_shows_that_kinds_fields_and_keeps_the_rest(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        form = await opened(app, pilot, "a")
        await typed(pilot, "cache")
        await pilot.press("shift+tab")
        assert isinstance(app.focused, Select)
        await pilot.press("enter", "down", "enter")   # http -> tcp
        await until(pilot, lambda: form.kind == "tcp")
        await until(pilot, lambda: form.query("#field-port"))
        assert not form.query("#field-url")
        assert form.query_one("#field-name", Input).value == "cache"
        await checked(form, pilot)
        assert static(form, "#problem-host") == "required for this kind but missing"
        assert static(form, "#problem-port") == "required for this kind but missing"


async def test_duplicate_adds_a_copy_under_a_new_name(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        form = await opened(app, pilot, "c", "checkout")
        assert form.query_one("#field-name", Input).value == "checkout copy"
        assert form.query_one("#field-max_latency", Input).value == "250ms"
        await pilot.press("enter")
        await closed(app, pilot)
    copy = dict(target_block(CONFIG, "checkout").data, name="checkout copy")
    assert config_file.read_text() == add_target(CONFIG, copy)


async def test_delete_asks_first_and_names_the_target(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        await board(app, pilot, "resolver")
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete))
        assert "Delete target resolver?" in str(app.screen.query_one("#confirm-text").render())
        await pilot.press("enter")   # the focus is on Keep
        await until(pilot, lambda: not isinstance(app.screen, ConfirmDelete))
        assert config_file.read_text() == CONFIG
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete))
        await pilot.press("y")
        await until(pilot, lambda: config_file.read_text() != CONFIG)
    assert config_file.read_text() == delete_target(CONFIG, "resolver")


async def test_a_change_on_disk_is_a_conflict_and_reload_keeps_the_typing(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        form = await opened(app, pilot, "E", "gateway")
        form.query_one("#field-description", Input).focus()
        await typed(pilot, "core router")
        theirs = CONFIG.replace('interval = "10s"', 'interval = "20s"  # edited meanwhile')
        config_file.write_text(theirs)
        await checked(form, pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, UnsavedDraft))
        draft = app.screen
        assert "changed on disk since the form opened" in str(draft.query_one("#unsaved-why").render())
        assert 'description = "core router"' in draft.query_one(TextArea).text
        assert config_file.read_text() == theirs   # not overwritten
        await pilot.press("enter")   # "Reload the file, keep my edit" has the focus
        await until(pilot, lambda: app.screen is form)
        assert form.query_one("#field-description", Input).value == "core router"
        await checked(form, pilot)
        await pilot.press("ctrl+s")
        await closed(app, pilot)
    fields = dict(target_block(CONFIG, "gateway").data, description="core router")
    assert config_file.read_text() == replace_target(theirs, "gateway", fields)


async def test_a_read_only_file_is_said_and_the_edit_offered_to_copy(config_file: Path):
    app = make_app(config_file)
    os.chmod(config_file, 0o444)
    async with app.run_test(size=SIZE) as pilot:
        form = await opened(app, pilot, "E", "api")
        form.query_one("#field-group", Input).focus()
        await pilot.press("end", *"-2")
        await checked(form, pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, UnsavedDraft))
        why = str(app.screen.query_one("#unsaved-why").render())
        assert "is read-only (-r--r--r--): not saved" in why
        assert 'group = "production-2"' in app.screen.query_one(TextArea).text
        assert not app.screen.query("#reload")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is form)   # back, nothing lost
        assert form.query_one("#field-group", Input).value == "production-2"
    assert config_file.read_text() == CONFIG


async def test_escape_closes_a_clean_form_and_asks_again_for_a_changed_one(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        form = await opened(app, pilot, "E", "api")
        await pilot.press("escape")
        await closed(app, pilot)
        await pilot.press("E")
        form = await form_open(app, pilot)
        await pilot.press("x")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is form
        assert "Escape again to drop your changes" in static(form, "#hint")
        await pilot.press("escape")
        await closed(app, pilot)
    assert config_file.read_text() == CONFIG


async def test_edit_from_the_detail_screen_edits_that_target(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        await board(app, pilot, "resolver")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.press("E")
        form = await form_open(app, pilot)
        assert form.editing == "resolver"
        assert form.query_one("#field-query_name", Input).value == "example.test"


async def test_no_second_form_opens_over_a_form(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=SIZE) as pilot:
        form = await opened(app, pilot, "E", "api")
        form.query_one("#save").focus()
        await pilot.press("a")
        await pilot.pause()
        assert app.screen is form and len(app.screen_stack) == 2


async def test_editing_keys_have_ids_palette_entries_and_can_be_remapped(config_file: Path):
    ids = {b.id for b in make_app(config_file).BINDINGS}
    assert {"add_target", "edit_target", "duplicate_target", "delete_target"} <= ids
    app = make_app(config_file, CONFIG.replace("[settings]", '[keys]\nadd_target = "n"\n\n[settings]'))
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Add", "Edit", "Duplicate", "Delete"} <= set(titles)
        await board(app, pilot)
        await pilot.press("n")
        await form_open(app, pilot)
        await pilot.press("escape")
        await closed(app, pilot)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"duplicate", "enter")
        await form_open(app, pilot)


async def test_test_now_probes_the_draft_in_another_process(config_file: Path):
    served = asyncio.Event()

    async def answer(reader, writer):
        served.set()
        writer.close()
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = make_app(config_file)
    try:
        async with app.run_test(size=SIZE) as pilot:
            form = await opened(app, pilot, "E", "db-primary")
            form.query_one("#field-host", Input).value = "127.0.0.1"
            form.query_one("#field-port", Input).value = str(port)
            await checked(form, pilot)
            await pilot.press("ctrl+t")
            assert "testing…" in static(form, "#test-result")
            await until(pilot, lambda: form.test_run is not None, tries=1000)
            shown = static(form, "#test-result")
            assert shown.startswith("UP ") and "connect" in shown, shown
            assert served.is_set()
            await pilot.press("ctrl+s")
            await closed(app, pilot)
    finally:
        server.close()
        await server.wait_closed()
    assert f"port = {port}" in config_file.read_text()
