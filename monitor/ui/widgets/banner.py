"""A line across the top that cannot be missed: the engine is dead for good."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class EngineBanner(Static):
    DEFAULT_CSS = """
    EngineBanner { display: none; height: auto; max-height: 4; padding: 0 1;
                   background: $error-muted; color: $foreground; text-style: bold; }
    EngineBanner.shown { display: block; }
    """

    def show(self, given_up: str | None) -> None:
        """`given_up`: why the engine is gone for good; None hides the banner."""
        if given_up is None:
            self.remove_class("shown")
            return
        self.update(Text(f"{given_up[0].upper()}{given_up[1:]}. "
                         "Nothing is being measured; q quits."))
        self.add_class("shown")
