"""`?`: every key, as currently bound (remaps from [keys] included)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from monitor.config.keys import BINDINGS

FILTER_HELP = ("Filter terms (all must match): a name fragment, a state (up, down, degraded, "
               "pending, paused), tag:NAME, group:NAME, kind:KIND. Enter keeps the filter, "
               "escape clears it.")


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
        rows = [(action, default, description)
                for action, (default, _label, description) in BINDINGS.items()]
        rows += [("events", "e", "Show/hide the event log"),
                 ("clear_filter", "escape", "Clear the filter")]
        for action, default, description in rows:
            bound = keymap.get(action, default)
            keys.add_row(bound.replace("question_mark", "?").replace("slash", "/"),
                         description, action)
        keys.add_row("ctrl+p", "Command palette", "")
        path = getattr(getattr(self.app, "config", None), "path", None)
        where = f"the config file ({path})" if path is not None else "the config file"
        # Text, not markup: "[keys]" in markup is a style tag and vanished
        remap = Text.assemble(
            "To remap a key, name its id (right-hand column) in the ", ("[keys]", "bold"),
            f" table of {where}, e.g.\n",
            ('  [keys]\n  probe_now = "f5"\n  quit = "ctrl+q"', "bold"),
            "\nSeveral keys for one action: \"r,f5\".")
        with VerticalScroll(id="help"):
            yield Static(Text("Keys\n", style="bold"))
            yield Static(keys)
            yield Static(Text.assemble("\n", remap))
            yield Static(Text("\n" + FILTER_HELP))
            yield Static(Text("\nDetail screen: r probe now, p pause/resume, escape back."))
