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


class ConfigBanner(Static):
    """The config file on disk does not validate: the problems stay in sight
    until a save fixes them (the last good config keeps running)."""

    DEFAULT_CSS = """
    ConfigBanner { display: none; height: auto; max-height: 6; padding: 0 1;
                   background: $warning-muted; color: $foreground;
                   text-wrap: nowrap; text-overflow: ellipsis; }
    ConfigBanner.shown { display: block; }
    """

    def show(self, problems: tuple[str, ...] | None) -> None:
        if not problems:
            self.remove_class("shown")
            return
        count = len(problems)
        text = Text(no_wrap=True, overflow="ellipsis")   # one line a problem, cut visibly
        text.append(f"Config not reloaded ({count} problem{'s' if count != 1 else ''}); "
                    "running the last good one until a save fixes it:", style="bold")
        for problem in problems[:4]:
            text.append(f"\n{problem}")
        if count > 4:
            text.append(f"\n… and {count - 4} more (see the event log, or `monitor validate`)")
        self.update(text)
        self.add_class("shown")
