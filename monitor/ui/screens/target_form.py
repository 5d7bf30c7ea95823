"""`a` add, `E` edit, `c` duplicate: a form holding every option of the
target's kind, checked by the real loader as it is typed, probed once on
request ("test now"), and saved into the user's file changing only its
block. The fields, checks and probe are monitor.config.draft's; this is
the screen around them.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import DescendantFocus
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static

from monitor.config.draft import (
    FieldSpec, TestRun, Verdict, check_draft, draft_fields, field_specs, kinds, probe_draft, show)
from monitor.config.edit import (
    EditError, add_target, blocks, delete_target, render_block, replace_target, target_block)
from monitor.config.model import Settings
from monitor.config.save import Conflict, InvalidEdit, SaveError, Snapshot, read_snapshot, save
from monitor.probes.base import PHASES
from monitor.ui.screens.confirm import ConfirmDelete, UnsavedDraft, escape_markup

if TYPE_CHECKING:
    from monitor.ui.app import MonitorApp

CHECK_AFTER = 0.25      # seconds of quiet typing before the loader checks the draft
DISCARD_WITHIN = 3.0    # a second Escape within this drops typed changes
# keys a target inherits from [settings] when it leaves them out
INHERITED = {f.name for f in dataclasses.fields(Settings)}


ACTIONS = {"add": "Add a target", "edit": "Edit", "duplicate": "Duplicate", "delete": "Delete"}


def start_editing(app: MonitorApp, mode: str) -> None:
    """The dashboard's a / E / c / D: the form, or the delete question, for
    the target on the detail screen or the selected row."""
    from monitor.ui.screens.detail import DetailScreen
    screen = app.screen
    if screen is not app.screen_stack[0] and not isinstance(screen, DetailScreen):
        return   # a form or dialog is open
    what = ACTIONS[mode]
    path = app.config.path
    name = screen.target_name if isinstance(screen, DetailScreen) else app.selected_name()
    if path is None or (mode != "add" and name is None):
        app.notify("no config file to edit" if path is None else "select a target first",
                   title=what, severity="warning", timeout=3)
        return
    try:
        if mode == "delete":
            snapshot = read_snapshot(path)
            target_block(snapshot.text, name)
            app.push_screen(ConfirmDelete(name, str(path)),
                            partial(_delete, app, path, name, snapshot))
        else:
            app.push_screen(open_form(path, mode, name))
    except (SaveError, EditError) as exc:
        app.notify(escape_markup(str(exc)), title=what, severity="error", timeout=6)


def _delete(app: App[Any], path: Path, name: str, snapshot: Snapshot, yes: bool | None) -> None:
    if not yes:
        return
    try:
        save(path, delete_target(snapshot.text, name), snapshot)
    except InvalidEdit as exc:
        app.notify(escape_markup(str(exc)), title="Not deleted: the file would not load",
                   severity="error", timeout=10)
    except Conflict:
        app.notify(f"{path} changed on disk since you pressed delete; nothing deleted (try "
                   "again)", title="Not deleted", severity="warning", timeout=6, markup=False)
    except (SaveError, EditError) as exc:
        app.notify(escape_markup(str(exc)), title="Not deleted", severity="error", timeout=8)
    else:
        app.notify(f"deleted {name} from {path} (the previous file is {path.name}~)",
                   title="Config saved", timeout=4, markup=False)


def open_form(path: Path, mode: str, name: str | None = None) -> TargetForm:
    """The form for `mode` "add", "edit" or "duplicate" (of target `name`).
    SaveError or EditError when the file cannot be read or has no such target."""
    snapshot = read_snapshot(path)
    if mode == "add":
        return TargetForm(path, snapshot, None, {"kind": "http"}, "Add a target")
    block = target_block(snapshot.text, name or "")
    if mode == "edit":
        return TargetForm(path, snapshot, name, block.data, f"Edit {name}")
    taken = {b.name for b in blocks(snapshot.text)}
    copy = next(n for i in range(1, len(taken) + 2)
                if (n := f"{name} copy" + (f" {i}" if i > 1 else "")) not in taken)
    return TargetForm(path, snapshot, None, dict(block.data, name=copy), f"Duplicate {name}")


class TargetForm(ModalScreen[str | None]):
    """Dismissed with the saved target's name, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="form_cancel"),
                Binding("ctrl+s", "save", "Save", id="form_save"),
                Binding("ctrl+t", "test", "Test now", id="form_test")]
    DEFAULT_CSS = """
    TargetForm { align: center middle; }
    #form { width: 100%; max-width: 100; height: 100%; border: round $primary;
            border-title-color: $primary; background: $surface; padding: 0 1; }
    TargetForm .row { height: 1; }
    TargetForm .key { width: 21; color: $text-muted; }
    TargetForm .row Input { width: 1fr; }
    TargetForm #kind { width: 20; }
    TargetForm .problem { display: none; height: auto; color: $error; padding-left: 21; }
    TargetForm .problem.shown { display: block; }
    #fields { height: 1fr; margin-top: 1; }
    #verdict, #test-result { height: auto; }
    #hint { height: 1; color: $text-muted; }
    #buttons { height: 1; align-horizontal: right; }
    #buttons Button { margin-left: 2; }
    """

    def __init__(self, path: Path, snapshot: Snapshot, editing: str | None,
                 original: dict[str, Any], title: str) -> None:
        super().__init__()
        self.path, self.snapshot, self.editing = path, snapshot, editing
        self.original = original
        self.title_text = title
        self.kind = original.get("kind") if original.get("kind") in kinds() else kinds()[0]
        # the text of every box ever shown, by key: kept when the kind changes
        self.texts: dict[str, str] = {}
        for kind in kinds():
            for spec in field_specs(kind):
                if spec.key in original and spec.key not in self.texts:
                    self.texts[spec.key] = show(spec, original[spec.key])
        self.verdict: Verdict | None = None
        self.pending = True          # a check of the latest draft is under way
        self.test_run: TestRun | None = None
        self._generation = 0
        self._timer: Timer | None = None
        self._saving = False
        self._escaped_at = float("-inf")
        self._dirty = False

    # --- building -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="form") as form:
            form.border_title = escape_markup(self.title_text)
            form.border_subtitle = escape_markup(self.path.name)
            with Horizontal(classes="row"):
                yield Label("kind", classes="key")
                yield Select([(k, k) for k in kinds()], value=self.kind, allow_blank=False,
                             compact=True, id="kind")
            fields = VerticalScroll(*self._rows(), id="fields")
            fields.can_focus = False   # Tab goes from box to box; focus scrolls them into view
            yield fields
            yield Static(id="verdict")
            yield Static(id="test-result")
            yield Static(id="hint")
            with Horizontal(id="buttons"):
                yield Button("Save (enter)", variant="primary", id="save", compact=True)
                yield Button("Test now (^t)", id="test", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def _specs(self) -> list[FieldSpec]:
        return [s for s in field_specs(self.kind) if s.key != "kind"]

    def _rows(self) -> list[Widget]:
        rows: list[Widget] = []
        for spec in self._specs():
            placeholder = _placeholder(spec)
            rows.append(Horizontal(
                Label(spec.key + (" *" if spec.required else ""), classes="key"),
                Input(self.texts.get(spec.key, ""), placeholder=placeholder, compact=True,
                      id=f"field-{spec.key}", tooltip=spec.doc or None, select_on_focus=False),
                classes="row"))
            rows.append(Static(id=f"problem-{spec.key}", classes="problem"))
        return rows

    def on_mount(self) -> None:
        first = "field-name" if self.editing is None else "field-" + self._specs()[1].key
        self.query_one(f"#{first}", Input).focus()
        self._check()

    # --- the draft and its checks -------------------------------------------------

    def fields(self) -> dict[str, Any]:
        return draft_fields(self.kind, self.texts, self.original)

    @on(Select.Changed, "#kind")
    async def _kind_changed(self, event: Select.Changed) -> None:
        if event.value == self.kind or event.value is Select.NULL:
            return
        self.kind, self._dirty = str(event.value), True
        box = self.query_one("#fields", VerticalScroll)
        await box.remove_children()
        await box.mount_all(self._rows())
        self._check()

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        key = (event.input.id or "").removeprefix("field-")
        if self.texts.get(key, "") == event.value:
            return
        self.texts[key], self._dirty = event.value, True
        self.pending = True
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(CHECK_AFTER, self._check)

    def _check(self) -> None:
        """Run the real loader on the file with the draft in it, off the UI's thread."""
        self._generation += 1
        self.pending = True
        self.run_worker(partial(self._check_in_thread, self._generation, self.fields(),
                                self.snapshot.text, self.editing), thread=True, group="check")

    def _check_in_thread(self, generation: int, fields: dict[str, Any], text: str,
                         editing: str | None) -> None:
        verdict = check_draft(self.path, text, editing, fields)
        try:
            self.app.call_from_thread(self._show_verdict, generation, verdict)
        except RuntimeError:   # the app is closing
            pass

    def _show_verdict(self, generation: int, verdict: Verdict) -> None:
        if generation != self._generation or not self.is_attached:
            return   # a newer draft is being checked
        self.verdict, self.pending = verdict, False
        for spec in self._specs():
            messages = verdict.by_field.get(spec.key, [])
            box = self.query_one(f"#problem-{spec.key}", Static)
            box.update(escape_markup("\n".join(messages)))
            box.set_class(bool(messages), "shown")
        lines = [f"[$error]✖[/] {escape_markup(m)}" for m in verdict.draft + verdict.elsewhere]
        if verdict.ok:
            lines = ["[$success]✓[/] the file loads with this target"]
        elif not lines:
            count = verdict.count()
            lines = [f"[$error]✖ {count} problem{'s' if count > 1 else ''}[/] (shown under "
                     "the fields)"]
        self.query_one("#verdict", Static).update("\n".join(lines))

    @on(DescendantFocus)
    def _focused(self, event: DescendantFocus) -> None:
        key = (event.widget.id or "").removeprefix("field-")
        spec = next((s for s in self._specs() if s.key == key), None)
        hint = f"{spec.key}: {spec.doc}" if spec and spec.doc else ""
        self.query_one("#hint", Static).update(escape_markup(hint))

    # --- test now -------------------------------------------------------------------

    def action_test(self) -> None:
        self.query_one("#test-result", Static).update(
            "testing… (one probe, in a separate process)")
        self.run_worker(self._test(self.fields()), exclusive=True, group="test-now")

    async def _test(self, fields: dict[str, Any]) -> None:
        run = await probe_draft(self.path, self.snapshot.text, fields)
        self.test_run = run
        if self.is_attached:
            self.query_one("#test-result", Static).update(describe_run(run))

    # --- save, cancel ---------------------------------------------------------------

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        {"save": self.action_save, "test": self.action_test,
         "cancel": partial(self.dismiss, None)}[event.button.id or "cancel"]()

    def action_cancel(self) -> None:
        now = time.monotonic()
        if self._dirty and now - self._escaped_at > DISCARD_WITHIN:
            self._escaped_at = now
            self.query_one("#hint", Static).update(
                "[$warning]Escape again to drop your changes[/] (ctrl+s saves them)")
            return
        self.dismiss(None)

    def action_save(self) -> None:
        if self._saving:
            return
        self._saving = True
        self.run_worker(partial(self._save_in_thread, self.fields(), self.snapshot),
                        thread=True, group="save")

    def _save_in_thread(self, fields: dict[str, Any], snapshot: Snapshot) -> None:
        """Splice, validate, write (fsyncs): off the UI's thread."""
        try:
            text = snapshot.text
            new = replace_target(text, self.editing, fields) if self.editing \
                else add_target(text, fields)
            if new == text:
                outcome: tuple[str, str] = ("unchanged", "")
            else:
                save(self.path, new, snapshot)
                outcome = ("saved", "")
        except InvalidEdit as exc:
            outcome = ("invalid", f"not saved: the file would not load ({len(exc.problems)} "
                                  "problem(s), shown in the form)")
        except Conflict as exc:
            outcome = ("conflict", str(exc))
        except (SaveError, EditError) as exc:
            outcome = ("failed", str(exc))
        try:
            self.app.call_from_thread(self._saved, outcome, fields)
        except RuntimeError:
            pass

    def _saved(self, outcome: tuple[str, str], fields: dict[str, Any]) -> None:
        self._saving = False
        what, message = outcome
        if what == "unchanged":
            self.app.notify("nothing changed; the file was not written", timeout=3)
            self.dismiss(None)
        elif what == "saved":
            self.app.notify(f"saved {fields['name']} to {self.path} (the previous file is "
                            f"{self.path.name}~)", title="Config saved", timeout=4, markup=False)
            self.dismiss(str(fields["name"]))
        elif what == "invalid":
            self.notify(message, severity="error", timeout=5, markup=False)
            self._check()
        else:
            self.app.push_screen(UnsavedDraft(message, _toml_of(fields), reload=what == "conflict"),
                                 self._after_unsaved)

    def _after_unsaved(self, answer: str | None) -> None:
        if answer == "reload":
            self.reload()

    def reload(self) -> None:
        """Start again from the file as it is now, keeping what was typed."""
        try:
            self.snapshot = read_snapshot(self.path)
        except SaveError as exc:
            self.notify(str(exc), severity="error", timeout=6, markup=False)
            return
        if self.editing is not None:
            try:
                target_block(self.snapshot.text, self.editing)
            except EditError:
                self.notify(f"{self.editing} is no longer in the file: saving adds it",
                            severity="warning", timeout=6, markup=False)
                self.editing = None
        self._check()


def _placeholder(spec: FieldSpec) -> str:
    if spec.required:
        return "required"
    if spec.default == "-":
        return "default: from [settings]" if spec.key in INHERITED else "default: none"
    if spec.plain and spec.default == '""':
        return "default: empty"
    return "default: " + (spec.default.strip('"') if spec.plain else spec.default)


def _toml_of(fields: dict[str, Any]) -> str:
    try:
        return render_block(fields)
    except EditError:   # no name yet: still every value typed
        return "\n".join(f"{key} = {value!r}" for key, value in fields.items()) + "\n"


def describe_run(run: TestRun) -> str:
    """One or two lines: state, latency, phases, reason (markup)."""
    if run.result is None:
        return f"[$error]✖ could not test:[/] {escape_markup(run.problem or 'no result')}"
    result = run.result
    status = str(result.get("status", "?"))
    colour = {"up": "$success", "degraded": "$warning"}.get(status, "$error")
    latency = result.get("latency_ms")
    head = f"[{colour}]{status.upper()}[/]" + (f" {latency:.1f}ms" if latency is not None else "")
    phases = result.get("phases_ms") or {}
    parts = [f"{p} {phases[p]:.1f}" for p in PHASES if p in phases]
    line = head + (f" · {' · '.join(parts)} ms" if parts else "")
    reason = result.get("reason")
    return line + (f"\n{escape_markup(str(reason))}" if reason else "")
