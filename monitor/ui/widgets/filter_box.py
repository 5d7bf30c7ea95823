"""The filter box: opened by `/`, closed by Enter (filter kept) or Escape
(filter cleared), and never racing the keys typed after `/`.

A terminal read can hold many keys at once (a paste, or typing over a laggy
SSH link). Textual hands each queued key to the widget focused *when the key
is read*, and `Widget.focus()` only takes effect later: the keys after `/`
went to the table and ran as commands (`/tag:squid` quit). So the box takes
focus at once, from a priority binding handled before the next key is read,
and it closes itself on Enter/Escape while handling its own keys, handing
any keys still queued for it back to the widget it took focus from.

It opens over the key footer (the bottom line, as `/` does in less, vim and
htop), on a layer of its own: showing or hiding it moves nothing else, so the
frame that answers `/` or Enter redraws one line, not the 10,000-row board
laid out again (bench/keypress_bench.py). The keys the footer would show
while it is open are Enter and Escape, which the placeholder names.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input


COVER_LAYER = "cover"   # above the board: what opens there moves nothing


class FilterBox(Input):
    # compact: one line, no border (Input's own rules outrank a plain type rule);
    # the layer is declared by the screen (`COVER_LAYER`)
    DEFAULT_CSS = """
    FilterBox { display: none; dock: bottom; layer: cover; height: 1; background: $panel; }
    FilterBox.-textual-compact { padding: 0 1; }
    FilterBox.shown { display: block; }
    """

    class Closed(Message):
        """The box closed: with its filter kept (Enter) or cleared (Escape)."""

        def __init__(self, kept: bool) -> None:
            super().__init__()
            self.kept = kept

    def __init__(self, on_change: Callable[[str], None] | None = None,
                 **kwargs: object) -> None:
        """`on_change`: called with the new text as it changes, in the same turn
        as the key. (Through the Changed message the board was filtered after
        the box's frame went out, and its rows came a frame later: one more
        frame, 20-50 ms, on every key typed at 10,000 targets.)"""
        super().__init__(compact=True, **kwargs)  # type: ignore[arg-type]
        self._return_to: Widget | None = None
        self._on_change = on_change

    def watch_value(self, value: str) -> None:
        if self._on_change is not None:
            self._on_change(value)

    @property
    def is_open(self) -> bool:
        return self.has_class("shown")

    def open(self) -> None:
        """Show the box and take focus now, not after the queued keys (open
        already, as after a click on the board: take focus back)."""
        screen = self.screen
        if not self.is_open:
            self._return_to = screen.focused
            self.add_class("shown")
        screen.set_focus(self)

    def close(self, keep: bool) -> None:
        """Hide the box and give focus back at once; `keep=False` clears the filter."""
        if not self.is_open:
            return
        self.remove_class("shown")
        if not keep:
            self.value = ""
        self.screen.set_focus(self._return_to)
        self.post_message(self.Closed(keep))

    async def _on_key(self, event: events.Key) -> None:
        if not self.is_open:
            # queued for the box before an Enter or Escape in the same burst
            # closed it: they were meant for the board
            event.stop()
            event.prevent_default()
            target = self._return_to
            if target is not None and target.is_attached:
                target._forward_event(events.Key(event.key, event.character))
            return
        if event.key in ("enter", "escape"):
            event.stop()
            event.prevent_default()
            self.close(keep=event.key == "enter")
