"""Pacing: who gets a probe slot, and how the schedule gives way when the
monitor cannot keep up (more targets than the machine or `concurrency` can
probe).

- `SlotQueue` caps probes in flight and hands a freed slot to the waiter whose
  start was due earliest, not to whichever asyncio wakes first.
- `Pace` keeps the schedule's own clock. While starts keep up it reads the
  loop's time; once a start is granted more than SLIP_AFTER after its due
  time, the whole schedule slips by the excess. Every target's due times are
  on that clock, so every target loses the same seconds and so the same share
  of its probes: a 1 s and a 60 s target both stretch by the same factor,
  instead of the short intervals absorbing the whole deficit (what skipping
  each target to "now" does). The slip never winds back, so when the load
  falls the schedule runs on from where it is: what is caught up is at most
  the SLIP_AFTER a start may already have been waiting, never the backlog.
- It also keeps how late starts were against the schedule as it stood when
  each was set (`behind_s`, the 95th percentile over the last window) and how
  many probes were skipped (`skips_per_min`): what "behind" means to a reader.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from array import array

SLIP_AFTER = 0.5       # seconds a start may wait for its slot before the schedule slips
WINDOW = 10.0          # seconds: behind and skip rates are over the last one to two of these
BEHIND_SHOWN = 0.5     # seconds behind before the monitor says so (summary line, stderr)
# Lateness histogram: bin 0 under 1 ms, then bins 10 % wide up to ~10^6 s.
_BINS_PER_E = 1 / math.log(1.1)
_BINS = int(math.log(1e9) * _BINS_PER_E) + 2


class SlotQueue:
    """At most `size` probes in flight; a freed slot goes to the waiter with
    the smallest key (its due time on the schedule's clock).

    asyncio.Semaphore wakes waiters in arrival order: a target whose start
    queued behind a slow one's recheck, or that a late loop woke last, waits
    longest whatever its due time. Invariant: `free > 0` only when no live
    waiter is queued, so the free path is one comparison and no allocation.
    """

    __slots__ = ("size", "free", "_waiters", "_count", "_owed")

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._count = 0   # ties between equal keys go in arrival order
        self._owed = 0    # slots to take back as probes finish (the cap was lowered)

    def resize(self, size: int) -> None:
        """A new cap at run time (a reload): more slots go to waiters at once;
        fewer are taken from the free ones, and the rest from probes in flight
        as they finish, never by stopping one."""
        change, self.size = size - self.size, size
        if change > 0:
            repaid = min(change, self._owed)
            self._owed -= repaid
            for _ in range(change - repaid):
                self.release()
        elif change < 0:
            taken = min(-change, self.free)
            self.free -= taken
            self._owed += -change - taken

    def waiting(self) -> int:
        return sum(1 for _, _, future in self._waiters if not future.done())

    async def acquire(self, key: float) -> None:
        if self.free > 0:
            self.free -= 1
            return
        future = asyncio.get_running_loop().create_future()
        self._count += 1
        heapq.heappush(self._waiters, (key, self._count, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()   # granted as we were cancelled: pass the slot on
            raise

    def release(self) -> None:
        if self._owed:
            self._owed -= 1
            return
        waiters = self._waiters
        while waiters:
            future = heapq.heappop(waiters)[2]
            if not future.done():   # a cancelled waiter left its entry behind
                future.set_result(None)
                return
        self.free += 1


class _Window:
    """Starts' lateness (a histogram) and skips counted since `start`."""

    __slots__ = ("start", "late", "starts", "skips")

    def __init__(self, start: float) -> None:
        self.start = start
        self.late = array("I", bytes(4 * _BINS))
        self.starts = 0
        self.skips = 0


class Pace:
    """The schedule's clock (loop time minus `slip`) and how far behind it runs."""

    def __init__(self, now: float, slip_after: float = SLIP_AFTER,
                 window: float = WINDOW) -> None:
        self.slip = 0.0    # seconds the whole schedule has slipped; only grows
        self.slip_after = slip_after
        self.window = window
        self._current = _Window(now)
        self._previous: _Window | None = None

    def clock(self, now: float) -> float:
        """Loop time `now` on the schedule's clock."""
        return now - self.slip

    def granted(self, due: float, now: float) -> float:
        """A start due at `due` (schedule clock) got its slot at loop time
        `now`: slip the schedule if it waited too long. Its lateness after
        any slip (at most `slip_after`)."""
        late = now - self.slip - due
        if late > self.slip_after:
            self.slip += late - self.slip_after
            late = self.slip_after
        return late

    def started(self, late: float, now: float) -> None:
        """A start `late` seconds after the due time it was given."""
        window = self._roll(now)
        late_ms = late * 1000.0
        window.late[min(_BINS - 1, int(math.log(late_ms) * _BINS_PER_E) + 1)
                    if late_ms >= 1.0 else 0] += 1
        window.starts += 1

    def skipped(self, count: int, now: float) -> None:
        self._roll(now).skips += count

    def behind_s(self, now: float) -> float:
        """95th percentile of starts' lateness over the last window or two,
        in seconds (to within 10 %); 0 with no starts."""
        windows = self._windows(now)
        total = sum(w.starts for w in windows)
        if not total:
            return 0.0
        rank = math.ceil(0.95 * total)
        for index in range(_BINS):
            rank -= sum(w.late[index] for w in windows)
            if rank <= 0:
                # the bin's upper edge: never reports less behind than it is
                return 0.0 if index == 0 else math.exp(index / _BINS_PER_E) / 1000.0
        return math.exp(_BINS / _BINS_PER_E) / 1000.0   # unreachable: the ranks add up

    def skips_per_min(self, now: float) -> float:
        windows = self._windows(now)
        span = max(1.0, now - windows[0].start)
        return 60.0 * sum(w.skips for w in windows) / span

    def _windows(self, now: float) -> list[_Window]:
        current = self._roll(now)
        return [current] if self._previous is None else [self._previous, current]

    def _roll(self, now: float) -> _Window:
        current = self._current
        if now - current.start >= self.window:
            # a window with nothing after it says nothing about now
            self._previous = current if now - current.start < 2 * self.window else None
            current = self._current = _Window(now)
        return current


class BehindWatch:
    """When to say that the monitor fell behind and when it caught up: a
    line each way, with hysteresis (caught up below half the threshold) and
    at most one "behind" every `every` seconds, so a flapping load cannot
    fill a log."""

    def __init__(self, threshold: float = BEHIND_SHOWN, every: float = 60.0) -> None:
        self.threshold = threshold
        self.every = every
        self.behind = False
        self._told_at = -math.inf

    def update(self, behind_s: float, now: float) -> bool | None:
        """True: it has fallen behind; False: it is back on schedule; None: no news."""
        if not self.behind and behind_s >= self.threshold and now - self._told_at >= self.every:
            self.behind, self._told_at = True, now
            return True
        if self.behind and behind_s < self.threshold / 2:
            self.behind = False
            return False
        return None
