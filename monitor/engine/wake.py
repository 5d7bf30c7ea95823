"""A flag a target's task sleeps on until a deadline (probe-now, resume)."""

from __future__ import annotations

import asyncio


class Wake:
    """Set by probe-now and resume; slept on with a deadline.

    Cheaper than asyncio.timeout around Event.wait: a deadline that passes
    resolves a future instead of cancelling the task, and the cancel path
    was the engine's largest single cost at 100 probes/s.
    """

    __slots__ = ("_flag", "_waiter")

    def __init__(self) -> None:
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._flag = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def sleep_until(self, when: float | None) -> bool:
        """Sleep until loop time `when` (None: until set); True if set. Clears the flag."""
        if not self._flag:
            loop = asyncio.get_running_loop()
            if when is None or when > loop.time():
                waiter = self._waiter = loop.create_future()
                alarm = loop.call_at(when, _expire, waiter) if when is not None else None
                try:
                    await waiter
                finally:
                    self._waiter = None
                    if alarm is not None:
                        alarm.cancel()
        woken, self._flag = self._flag, False
        return woken


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
