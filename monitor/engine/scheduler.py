"""The engine: probes every target on its own schedule.

- Interval is start-to-start; first starts are staggered across the interval.
- A global semaphore caps probes in flight; the latency clock starts only
  after a slot is acquired (inside `run_probe`).
- One task per target, so a target never has two probes at once; a start
  that could not happen on time (or a probe-now while busy) counts as a skip.
- A failure that is not yet confirmed is rechecked at once (after
  `recheck_delay`) rather than at the next interval.
- Probes the kernel times (`Probe.batchable`: ICMP) start on a grid of
  BATCH_SLOT seconds, so those due close together share one wake-up: at 100
  pings a second the engine's CPU per ping fell from 176 to 105 us (bench/),
  as the loop wakes 4 times a second instead of 100 and runs warm. Their
  schedule stays exact on average. At most BATCH_MAX start per grid point (the
  rest at their own time), so a burst never holds the loop for long.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from monitor.config.model import Config, Settings, Target
from monitor.engine.board import TargetView
from monitor.engine.result import ProbeResult
from monitor.engine.fdlimit import OutOfFiles, fit_concurrency
from monitor.engine.runner import make_probe, not_probed, run_probe
from monitor.engine.state import State, Tracker, Transition
from monitor.probes.base import Probe, ProbeContext

log = logging.getLogger(__name__)

BATCH_SLOT = 0.25  # seconds: the grid batchable probes start on
BATCH_MAX = 50     # starts per grid point: ~2.5 ms of work at most
# A probe that found no free descriptor is tried again this many times, this
# much later each time, before its slot is given up (counted as a skip).
FD_RETRIES = 3
FD_RETRY_DELAY = 0.25
NOTICE_EVERY = 60.0   # seconds between repeated notices of the same trouble
ResultCallback = Callable[[ProbeResult], None]
TransitionCallback = Callable[[Transition], None]
NoticeCallback = Callable[[str], None]


class _Wake:
    """A flag a target's task sleeps on until a deadline (probe-now, resume).

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


def on_grid(moment: float, slot: float = BATCH_SLOT) -> float:
    """The first grid point at or after `moment` (loop time)."""
    return math.ceil(moment / slot - 1e-9) * slot


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Runtime:
    __slots__ = ("target", "probe", "tracker", "view", "task", "wake", "busy", "skips", "offset")

    def __init__(self, target: Target, view: TargetView, tracker: Tracker, offset: float) -> None:
        self.target = target
        self.probe: Probe = make_probe(target)
        self.view = view
        self.tracker = tracker
        self.task: asyncio.Task[None] | None = None
        self.wake = _Wake()
        self.busy = False
        self.skips = 0
        self.offset = offset


class Engine:
    def __init__(self, config: Config, *, on_result: ResultCallback | None = None,
                 on_transition: TransitionCallback | None = None,
                 on_notice: NoticeCallback | None = None,
                 keep_history: bool = True) -> None:
        """`keep_history=False`: the views keep state and the last result but
        only one sample, for an engine whose consumer keeps its own (the
        dashboard's engine process; its UI has the full history)."""
        self.settings: Settings = config.settings
        self._keep_history = keep_history
        self._targets = list(config.targets)
        self._on_result = on_result
        self._on_transition = on_transition
        self._on_notice = on_notice
        self._runtimes: dict[str, _Runtime] = {}
        self._ctx = ProbeContext(user_agent=self.settings.user_agent)
        budget = fit_concurrency(self.settings.concurrency)
        self.concurrency = budget.concurrency
        self.notices: list[str] = [budget.notice] if budget.notice else []
        self._slots = asyncio.Semaphore(self.concurrency)
        self.out_of_files = 0      # probes that found no free descriptor (retried)
        self._out_of_files_told = -NOTICE_EVERY
        self._lateness: deque[float] = deque(maxlen=512)
        self._grid_load: dict[float, int] = {}   # grid point -> batchable starts booked
        self._grid_prune_at = 1024
        self.probes_total = 0
        self._running = False

    # --- public API ---------------------------------------------------------

    @property
    def views(self) -> dict[str, TargetView]:
        return {name: rt.view for name, rt in self._runtimes.items()}

    def skips(self, name: str | None = None) -> int:
        if name is not None:
            return self._runtimes[name].skips
        return sum(rt.skips for rt in self._runtimes.values())

    def lag_ms(self) -> float:
        """How late probes started, worst of the recent ones: the monitor's own lag."""
        return max(self._lateness, default=0.0) * 1000.0

    async def start(self) -> None:
        self._running = True
        for notice in self.notices:
            self._emit(self._on_notice, notice)
        count = max(1, len(self._targets))
        for index, target in enumerate(self._targets):
            self._add(target, offset=target.interval * index / count)

    async def stop(self) -> None:
        self._running = False
        tasks = [rt.task for rt in self._runtimes.values() if rt.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._ctx.close()

    def pause(self, name: str) -> bool:
        rt = self._runtimes[name]
        transition = rt.tracker.set_paused(True, datetime.now(UTC), self._now())
        if transition is None:
            return False
        self._publish_transition(rt, transition)
        return True

    def resume(self, name: str) -> bool:
        rt = self._runtimes[name]
        transition = rt.tracker.set_paused(False, datetime.now(UTC), self._now())
        if transition is None:
            return False
        self._publish_transition(rt, transition)
        rt.wake.set()
        return True

    def probe_now(self, name: str) -> bool:
        """Probe at once; False (and a skip counted) if one is in flight or paused."""
        rt = self._runtimes[name]
        if rt.busy or rt.tracker.state is State.PAUSED:
            rt.skips += 1
            return False
        rt.wake.set()
        return True

    def replace_targets(self, targets: Iterable[Target], settings: Settings | None = None) -> None:
        """Apply a new target set: unchanged targets keep their schedule and
        history; changed ones restart with their history kept; new ones start
        at a random point of their interval."""
        if settings is not None:
            self.settings = settings
        new = {t.name: t for t in targets}
        for name in list(self._runtimes):
            if name not in new:
                self._remove(name)
        for name, target in new.items():
            rt = self._runtimes.get(name)
            if rt is not None and rt.target == target:
                continue
            view = rt.view if rt is not None else None
            # a pause made at run time survives an edit that did not touch `paused`
            keep_paused = (rt is not None and rt.tracker.state is State.PAUSED
                           and rt.target.paused == target.paused)
            if rt is not None:
                self._remove(name)
            self._add(target, offset=random.uniform(0, target.interval), view=view,
                      paused=keep_paused)
        self._targets = list(new.values())

    async def check_once(self, names: Iterable[str] | None = None) -> list[ProbeResult]:
        """Probe each target once, concurrently within the cap; no thresholds."""
        wanted = set(names) if names is not None else None
        targets = [t for t in self._targets if wanted is None or t.name in wanted]

        async def one(target: Target) -> ProbeResult:
            for attempt in range(FD_RETRIES):
                async with self._slots:
                    try:
                        return await run_probe(target, self._ctx)
                    except OutOfFiles:
                        self.out_of_files += 1
                await asyncio.sleep(FD_RETRY_DELAY * (attempt + 1))
            return not_probed(target, "not probed: the monitor ran out of open files "
                                      "(raise ulimit -n or lower concurrency)")

        return list(await asyncio.gather(*(one(t) for t in targets)))

    async def close(self) -> None:
        await self._ctx.close()

    # --- internals -------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _add(self, target: Target, offset: float, view: TargetView | None = None,
             paused: bool = False) -> None:
        now = self._now()
        if view is None:
            view = TargetView(target, self.settings.history if self._keep_history else 1, now)
        view.target = target
        if target.paused or paused:
            state = State.PAUSED
        elif view.last is not None and view.state is not State.PAUSED:
            state = view.state
        else:
            state = State.PENDING
        if view.state is not state:
            view.apply_transition(Transition(target.name, view.state, state, "config changed",
                                             datetime.now(UTC), now, now - view.since))
        tracker = Tracker(target.name, target.failure_threshold, target.success_threshold,
                          now, state=state)
        rt = _Runtime(target, view, tracker, offset)
        self._runtimes[target.name] = rt
        if self._running:
            rt.task = asyncio.create_task(self._run_target(rt, now + offset),
                                          name=f"probe:{target.name}")

    def _remove(self, name: str) -> None:
        rt = self._runtimes.pop(name)
        if rt.task is not None:
            rt.task.cancel()

    async def _run_target(self, rt: _Runtime, first: float) -> None:
        loop = asyncio.get_running_loop()
        batched = rt.probe.batchable
        due = first
        while True:
            wake_at = self._book_grid_point(due) if batched else due
            woken = await self._wait(rt, wake_at)
            while rt.tracker.state is State.PAUSED:
                rt.wake.clear()
                await rt.wake.sleep_until(None)
                woken = True
            start = loop.time()
            if not woken:
                self._lateness.append(max(0.0, start - wake_at))
            await self._probe(rt, recheck=False)
            while self.settings.recheck and rt.tracker.confirming_down:
                await asyncio.sleep(self.settings.recheck_delay)
                if rt.tracker.state is State.PAUSED:
                    break
                await self._probe(rt, recheck=True)
            interval = rt.target.interval
            now = loop.time()
            due = start + interval if woken else due + interval
            if due <= now:
                missed = int((now - due) // interval) + 1
                rt.skips += missed
                due += missed * interval

    def _book_grid_point(self, due: float) -> float:
        """When a batchable probe due at `due` starts: the grid point after it,
        unless that one is full."""
        point = on_grid(due)
        load = self._grid_load.get(point, 0)
        if load >= BATCH_MAX:
            return due
        self._grid_load[point] = load + 1
        if len(self._grid_load) > self._grid_prune_at:   # forget the past now and then
            now = self._now()
            for old in [p for p in self._grid_load if p < now]:
                del self._grid_load[old]
            # long intervals book far ahead: prune again only once it has doubled
            self._grid_prune_at = max(1024, 2 * len(self._grid_load))
        return point

    async def _wait(self, rt: _Runtime, due: float) -> bool:
        """Sleep until `due`; True if woken early by probe-now or resume."""
        return await rt.wake.sleep_until(due)

    async def _probe(self, rt: _Runtime, recheck: bool) -> None:
        for attempt in range(FD_RETRIES):
            async with self._slots:
                rt.busy = True
                try:
                    result = await run_probe(rt.target, self._ctx, rt.probe)
                    break
                except OutOfFiles as exc:
                    self._ran_out_of_files(rt, exc)
                finally:
                    rt.busy = False
            await asyncio.sleep(FD_RETRY_DELAY * (attempt + 1))
        else:
            rt.skips += 1   # the monitor could not probe it this time: no verdict
            return
        if rt.tracker.state is State.PAUSED:
            return   # paused while in flight: the user asked us to stop counting
        result.recheck = recheck
        self.probes_total += 1
        rt.view.apply_result(result)
        transition = rt.tracker.observe(result, self._now())
        self._emit(self._on_result, result)
        if transition is not None:
            self._publish_transition(rt, transition)

    def _ran_out_of_files(self, rt: _Runtime, exc: OutOfFiles) -> None:
        self.out_of_files += 1
        now = self._now()
        if now - self._out_of_files_told >= NOTICE_EVERY:
            self._out_of_files_told = now
            self._emit(self._on_notice, f"out of open files ({self.out_of_files} probes so far, "
                                        f"e.g. {rt.target.name}: {exc}); they are retried, "
                                        "not counted as down: raise ulimit -n or lower "
                                        "concurrency")

    def _publish_transition(self, rt: _Runtime, transition: Transition) -> None:
        rt.view.apply_transition(transition)
        self._emit(self._on_transition, transition)

    @staticmethod
    def _emit(callback: Callable[[object], None] | None, item: object) -> None:
        if callback is None:
            return
        try:
            callback(item)
        except Exception:   # a consumer's bug must not stop probing
            log.exception("result consumer failed")
