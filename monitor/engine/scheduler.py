"""The engine: probes every target on its own schedule.

- Interval is start-to-start; first starts are staggered across the interval.
- A global cap on probes in flight, granted earliest-due first; the latency
  clock starts only after a slot is acquired (inside `run_probe`).
- Due times are on the schedule's clock (`pacing.Pace`), which slips when the
  monitor cannot keep up, so every interval stretches by the same factor.
- One task per target, so a target never has two probes at once; a start the
  slip or its own overrunning probe passed over (or a probe-now while busy)
  counts as a skip.
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
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from monitor.config.diff import ConfigDiff
from monitor.config.model import Config, Settings, Target
from monitor.engine.board import TargetView
from monitor.engine.result import ProbeResult
from monitor.engine.fdlimit import OutOfFiles, fit_concurrency
from monitor.engine.pacing import Pace, SlotQueue
from monitor.engine.reload import Starter, apply_config
from monitor.engine.runner import make_probe, not_probed, run_probe
from monitor.engine.sinks import CallbackSink, Fanout, MonitorStarted, MonitorStopped, Sink
from monitor.engine.state import State, Tracker, Transition
from monitor.engine.wake import Wake
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


def on_grid(moment: float, slot: float = BATCH_SLOT) -> float:
    """The first grid point at or after `moment` (loop time)."""
    return math.ceil(moment / slot - 1e-9) * slot


class _Runtime:
    __slots__ = ("target", "probe", "tracker", "view", "task", "wake", "busy", "skips", "offset",
                 "slip_seen", "slip_owed")

    def __init__(self, target: Target, view: TargetView, tracker: Tracker, offset: float) -> None:
        self.target = target
        self.probe: Probe = make_probe(target)
        self.view = view
        self.tracker = tracker
        self.task: asyncio.Task[None] | None = None
        self.wake = Wake()
        self.busy = False
        self.skips = 0
        self.offset = offset
        self.slip_seen = 0.0   # the schedule's slip when this target last set its due time
        self.slip_owed = 0.0   # slip not yet a whole interval: skips still to count


class Engine:
    def __init__(self, config: Config, *, sinks: Iterable[Sink] = (),
                 on_result: ResultCallback | None = None,
                 on_transition: TransitionCallback | None = None,
                 on_notice: NoticeCallback | None = None,
                 keep_history: bool = True) -> None:
        """Every event goes to `sinks` in order (the callbacks are a sink of
        their own, last). `keep_history=False`: the views keep state and the
        last result but only one sample, for an engine whose consumers keep
        their own (the dashboard's UI, the history store)."""
        self.config = config   # as running: the last one applied
        self.settings: Settings = config.settings
        self._config_path = None if config.path is None else str(config.path)
        self._keep_history = keep_history
        self._targets = list(config.targets)
        self.sinks = Fanout(sinks)
        if on_result or on_transition or on_notice:
            self.sinks.add(CallbackSink(on_result, on_transition, on_notice))
        self._runtimes: dict[str, _Runtime] = {}
        # tasks of targets a reload removed, not yet ended, and a reload's gradual start
        self._retiring: set[asyncio.Task[None]] = set()
        self._starter = Starter(self)
        self._ctx = ProbeContext(user_agent=self.settings.user_agent)
        budget = fit_concurrency(self.settings.concurrency)
        self.concurrency = budget.concurrency
        self.notices: list[str] = [budget.notice] if budget.notice else []
        self._slots = SlotQueue(self.concurrency)
        self._pace = Pace(0.0)
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
        """How late the loop woke targets, worst of the recent ones: the monitor's own lag."""
        return max(self._lateness, default=0.0) * 1000.0

    def behind_s(self) -> float:
        """How late starts were against their schedule lately (95th percentile,
        seconds): waiting for a slot, a late loop and the schedule's slip."""
        return self._pace.behind_s(self._now())

    def skips_per_min(self) -> float:
        return self._pace.skips_per_min(self._now())

    async def start(self) -> None:
        self._running = True
        self._pace = Pace(self._now())
        self.sinks.on_start(MonitorStarted(datetime.now(UTC), len(self._targets),
                                           self._config_path))
        for notice in self.notices:
            self.sinks.on_notice(notice)
        count = max(1, len(self._targets))
        for index, target in enumerate(self._targets):
            self._add(target, offset=target.interval * index / count)

    async def stop(self, reason: str = "stopped") -> None:
        was_running, self._running = self._running, False
        tasks = [rt.task for rt in self._runtimes.values() if rt.task is not None]
        tasks += self._retiring
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._ctx.close()
        if was_running:
            self.sinks.on_stop(MonitorStopped(datetime.now(UTC), reason))

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
            self._skip(rt, 1)
            return False
        rt.wake.set()
        return True

    def apply_config(self, config: Config,
                     files_changed: Iterable[str | Path] = ()) -> ConfigDiff:
        """Run on `config` from now on, changing only what differs (see
        `engine/reload.py`); `files_changed`: files the watcher saw change
        (a `ca_file`), whose targets restart. Returns what changed."""
        return apply_config(self, config, files_changed)

    async def check_once(self, names: Iterable[str] | None = None) -> list[ProbeResult]:
        """Probe each target once, concurrently within the cap; no thresholds."""
        wanted = set(names) if names is not None else None
        targets = [t for t in self._targets if wanted is None or t.name in wanted]

        async def one(target: Target) -> ProbeResult:
            for attempt in range(FD_RETRIES):
                await self._slots.acquire(self._now())
                try:
                    return await run_probe(target, self._ctx)
                except OutOfFiles:
                    self.out_of_files += 1
                finally:
                    self._slots.release()
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
        if view.state is not state:   # told, so every mirror of the view follows
            self._publish_view_transition(view, Transition(
                target.name, view.state, state, "config changed", datetime.now(UTC), now,
                now - view.since))
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
            self._retiring.add(rt.task)
            rt.task.add_done_callback(self._retiring.discard)

    async def _run_target(self, rt: _Runtime, first: float) -> None:
        loop = asyncio.get_running_loop()
        pace = self._pace
        due = pace.clock(first)   # due times are on the schedule's clock
        rt.slip_seen = pace.slip
        while True:
            start_due = await self._wait(rt, due)
            woken = start_due is None
            while rt.tracker.state is State.PAUSED:
                rt.wake.clear()
                await rt.wake.sleep_until(None)
                woken = True
            if woken:   # on demand: its schedule starts again from now, owing nothing
                due = pace.clock(loop.time())
                rt.slip_seen = pace.slip
            scheduled = None if woken else start_due
            late = await self._probe(rt, recheck=False, due=scheduled)
            if scheduled is not None:   # late against `due`: a batchable start waits for the grid
                late += scheduled - due
            while self.settings.recheck and rt.tracker.confirming_down:
                await asyncio.sleep(self.settings.recheck_delay)
                if rt.tracker.state is State.PAUSED:
                    break
                await self._probe(rt, recheck=True)
            interval = rt.target.interval
            due += interval
            # starts its own probe (and rechecks) ran over are skipped: no later than this one
            floor = pace.clock(loop.time()) - late
            if due < floor:
                missed = int((floor - due) // interval) + 1
                self._skip(rt, missed)
                due += missed * interval
            self._count_slip(rt, interval)

    def _count_slip(self, rt: _Runtime, interval: float) -> None:
        """The schedule's slip since this target last looked: whole intervals are skips."""
        slip = self._pace.slip
        if slip != rt.slip_seen:
            rt.slip_owed += slip - rt.slip_seen
            rt.slip_seen = slip
            missed = int(rt.slip_owed // interval)
            if missed:
                rt.slip_owed -= missed * interval
                self._skip(rt, missed)

    def _skip(self, rt: _Runtime, count: int) -> None:
        rt.skips += count
        self._pace.skipped(count, self._now())

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

    async def _wait(self, rt: _Runtime, due: float) -> float | None:
        """Sleep until the schedule's clock reaches `due`; when this start is
        due (a batchable one's grid point), or None if woken by probe-now or
        resume. A schedule that slipped meanwhile moved `due` on: sleep again,
        unless within an allowance (each sleep covers only the time left at its
        start, so without one a long interval would wake over and over)."""
        loop = asyncio.get_running_loop()
        pace = self._pace
        allowance = min(pace.slip_after, rt.target.interval / 8)
        batched = rt.probe.batchable
        wake_at = due + pace.slip
        while True:
            planned = wake_at
            if batched:
                wake_at = self._book_grid_point(planned)
            if await rt.wake.sleep_until(wake_at):
                return None
            now = loop.time()
            left = due + pace.slip - now
            if left <= allowance:
                self._lateness.append(max(0.0, now - wake_at))
                return due + (wake_at - planned)   # a batchable start is due at its grid point
            wake_at = now + left

    async def _probe(self, rt: _Runtime, recheck: bool, due: float | None = None) -> float:
        """Probe once, within a slot. `due`: a scheduled start's due time on
        the schedule's clock (None: a recheck or a probe on demand, queued as
        due now). How late the start was, on that clock after any slip."""
        pace = self._pace
        late = 0.0
        for attempt in range(FD_RETRIES):
            scheduled = due is not None and attempt == 0
            await self._slots.acquire(due if scheduled else pace.clock(self._now()))
            if scheduled:
                now = self._now()
                pace.started(now - (due + rt.slip_seen), now)   # against the due time it was given
                late = pace.granted(due, now)
            rt.busy = True
            try:
                result = await run_probe(rt.target, self._ctx, rt.probe)
                break
            except OutOfFiles as exc:
                self._ran_out_of_files(rt, exc)
            finally:
                rt.busy = False
                self._slots.release()
            await asyncio.sleep(FD_RETRY_DELAY * (attempt + 1))
        else:
            self._skip(rt, 1)   # the monitor could not probe it this time: no verdict
            return late
        if rt.tracker.state is State.PAUSED:
            return late   # paused while in flight: the user asked us to stop counting
        result.recheck = recheck
        self.probes_total += 1
        rt.view.apply_result(result)
        transition = rt.tracker.observe(result, self._now())
        self.sinks.on_result(result)
        if transition is not None:
            self._publish_transition(rt, transition)
        return late

    def _ran_out_of_files(self, rt: _Runtime, exc: OutOfFiles) -> None:
        self.out_of_files += 1
        now = self._now()
        if now - self._out_of_files_told >= NOTICE_EVERY:
            self._out_of_files_told = now
            self.sinks.on_notice(f"out of open files ({self.out_of_files} probes so far, "
                                        f"e.g. {rt.target.name}: {exc}); they are retried, "
                                        "not counted as down: raise ulimit -n or lower "
                                        "concurrency")

    def _publish_transition(self, rt: _Runtime, transition: Transition) -> None:
        self._publish_view_transition(rt.view, transition)

    def _publish_view_transition(self, view: TargetView, transition: Transition) -> None:
        view.apply_transition(transition)
        self.sinks.on_transition(transition)
