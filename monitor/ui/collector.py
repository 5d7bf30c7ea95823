"""The cyclic garbage collector waits while a keypress's frame is made.

At 10,000 targets the dashboard allocates steadily (results arriving, rows
and Rich segments drawn), and Python's collector runs whenever enough
allocations pile up: young collections of 2-8 ms, and now and then a full one
of 30-45 ms over what the board gathered since its heap was settled
(monitor/engine/heap.py). Landing inside the frame a key asked for, they were
the slow tail of opening a target's details (bench/keypress_bench.py, timed
in the UI process). So a key holds the collector off for a moment; what was
allocated meanwhile is collected right after, when nobody is waiting.

Reference counting frees almost everything at once anyway; the collector is
only for cycles, which can wait a fifth of a second.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

HOLD_FOR = 0.2   # seconds: the slowest frame a key makes (details) fits within it


class KeyHold:
    """Holds the collector off for `seconds` from a key; never keeps holding
    past that (a held-down key does not starve it), and leaves a collector
    that someone else turned off alone."""

    def __init__(self, set_timer: Callable[[float, Callable[[], None]], Any],
                 seconds: float = HOLD_FOR) -> None:
        self._set_timer = set_timer
        self.seconds = seconds
        self.held = False

    def key(self) -> None:
        if self.held or not gc.isenabled():
            return
        gc.disable()
        self.held = True
        self._set_timer(self.seconds, self.release)

    def release(self) -> None:
        if self.held:
            self.held = False
            gc.enable()
