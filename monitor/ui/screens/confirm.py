"""Small modals of target editing: "delete this?" and "here is your edit,
which could not be saved"."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static, TextArea


class ConfirmDelete(ModalScreen[bool]):
    """Names the target and the file; `y` deletes, `n` or Escape keeps it.
    The focus starts on Keep, so a stray Enter deletes nothing."""

    BINDINGS = [Binding("y", "answer(True)", "Delete", id="confirm_yes"),
                Binding("n,escape", "answer(False)", "Keep", id="confirm_no")]
    DEFAULT_CSS = """
    ConfirmDelete { align: center middle; }
    #confirm { width: 64; max-width: 100%; height: auto; border: round $error;
               background: $surface; padding: 1 2; }
    #confirm Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    #confirm Button { margin-left: 2; }
    """

    def __init__(self, name: str, file: str) -> None:
        super().__init__()
        self.target_name, self.file = name, file

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(f"Delete target [b]{escape_markup(self.target_name)}[/b]?\n\nIts [[targets]] "
                         f"block is removed from {escape_markup(self.file)}; the file as it was is "
                         f"kept as {escape_markup(self.file)}~.", id="confirm-text")
            with Horizontal():
                yield Button("Delete (y)", variant="error", id="yes", compact=True)
                yield Button("Keep (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class UnsavedDraft(ModalScreen[str | None]):
    """Why the edit was not written, and the edit itself as TOML to copy.
    With `reload`, "Reload" returns "reload": the form reads the file again
    and keeps what was typed."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Back to the form", id="draft_back"),
                Binding("ctrl+y", "copy", "Copy the TOML", id="draft_copy")]
    DEFAULT_CSS = """
    UnsavedDraft { align: center middle; }
    #unsaved { width: 90%; max-width: 100; height: 90%; border: round $warning;
               background: $surface; padding: 0 1; }
    #unsaved-why { height: auto; margin-bottom: 1; }
    #unsaved TextArea { height: 1fr; }
    #unsaved Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    #unsaved Button { margin-left: 2; }
    """

    def __init__(self, why: str, toml: str, reload: bool) -> None:
        super().__init__()
        self.why, self.toml, self.reload = why, toml, reload

    def compose(self) -> ComposeResult:
        with Vertical(id="unsaved") as box:
            box.border_title = "Not saved: your edit is below"
            advice = ("Reload to edit on top of the file as it is now: what you typed stays in "
                      "the form." if self.reload else
                      "Copy the block into the file yourself, or make it writable and save again.")
            yield Static(f"{escape_markup(self.why)}\n[dim]{advice}[/]", id="unsaved-why")
            yield TextArea(self.toml, read_only=True, id="unsaved-toml", soft_wrap=False,
                           compact=True)
            with Horizontal():
                if self.reload:
                    yield Button("Reload the file, keep my edit", variant="primary", id="reload",
                                 compact=True)
                yield Button("Copy (ctrl+y)", id="copy", compact=True)
                yield Button("Back (esc)", id="back", compact=True)

    def on_mount(self) -> None:
        self.query_one("#reload" if self.reload else "#unsaved-toml").focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "copy":
            self.action_copy()
        else:
            self.dismiss("reload" if event.button.id == "reload" else None)

    def action_copy(self) -> None:
        # OSC 52: most terminals, and tmux with set-clipboard on
        self.app.copy_to_clipboard(self.toml)
        self.notify("copied the TOML to the clipboard (if the terminal allows it)", timeout=3)


def escape_markup(text: str) -> str:
    """Names and messages shown as they are, not as markup."""
    return text.replace("[", r"\[")
