"""`?`: every key, as currently bound (remaps from [keys] included)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from monitor.config.keys import BINDINGS

FILTER_HELP = ("Filter terms (all must match): a name fragment, a state (up, down, degraded, "
               "pending, paused), tag:NAME, group:NAME, kind:KIND.")


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    #help { width: 72; max-width: 100%; height: auto; max-height: 90%;
            border: round $primary; background: $surface; padding: 1 2; }
    """

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold")
        keys.add_column()
        keys.add_column(style="dim")
        keymap = self.app._keymap if hasattr(self.app, "_keymap") else {}
        for action, (default, _label, description) in BINDINGS.items():
            bound = keymap.get(action, default)
            keys.add_row(bound.replace("question_mark", "?").replace("slash", "/"),
                         description, action)
        keys.add_row("e", "Show/hide the event log", "events")
        keys.add_row("ctrl+p", "Command palette", "")
        with VerticalScroll(id="help"):
            yield Static("[b]Keys[/b]  (remap in the config: [keys] probe_now = \"ctrl+r\")\n")
            yield Static(keys)
            yield Static("\n" + FILTER_HELP)
            yield Static("\nDetail screen: r probe now, p pause/resume, escape back.")
