"""Applying a reloaded config to a running engine: only the difference.
(The engine's reload path, kept out of scheduler.py: `Engine.apply_config`.)

- Unchanged targets keep their task, so their schedule (next due time),
  tracker, view, statistics and events; a target whose block only moved, or
  whose labels (group, tags, description) changed, keeps them too and is only
  given its new `Target`.
- Changed targets restart with their new options and keep their view; a
  pause made at run time survives an edit that did not touch `paused`.
- Removed targets stop (their tasks cancelled) and leave `views`.
- Targets that start (added, and changed ones) are staggered at the spacing
  of the whole schedule: the n-th of them starts n / (all targets) of its
  interval after the reload (plus a random phase). One edited target among
  10,000 probes within milliseconds, so an edit shows at once; all 10,000
  restarted (the default interval changed) spread over a whole interval as
  at start: either way the probe rate at most doubles, never a herd.
- They are (re)started START_BATCH per turn of the event loop: restarting
  10,000 at once held the loop for 0.4-1.7 s (bench/reload_bench.py), and a
  probe in flight meanwhile would have counted that stall as its latency.
  The first batch is made before `apply_config` returns, so a small edit is
  live at once; until its batch comes, a restarted target runs on as it was.
- `[settings]`: the interval, timeout and threshold defaults are resolved
  into each target by the loader, so they arrive as changed targets;
  concurrency resizes the slot cap live (within the open-file limit);
  recheck and recheck_delay are read at each use; user_agent applies to the
  next request; history applies to targets that start from now on (a view
  keeps the window it has).
- A file a target names (`ca_file`) that changed on disk: the resources built
  from it (TLS contexts) are dropped and the targets naming it restart.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config.diff import ConfigDiff, diff_configs
from monitor.config.model import Config, Settings, Target
from monitor.engine.fdlimit import fit_concurrency
from monitor.engine.state import State

if TYPE_CHECKING:
    from monitor.engine.scheduler import Engine

# Targets (re)started per turn of the loop: ~15 ms of work on this machine
START_BATCH = 256


def apply_config(engine: Engine, config: Config,
                 files_changed: Iterable[str | Path] = ()) -> ConfigDiff:
    engine._starter.finish()   # a previous reload's starts first: compare with what runs
    files_changed = list(files_changed)
    diff = diff_configs(engine.config, config, files_changed)
    _apply_settings(engine, config.settings)
    if files_changed:
        _forget_built_from(engine, files_changed)
    engine.config = config
    engine._targets = list(config.targets)
    if not engine._running:   # not started (or stopped): start() adds them all
        return diff
    runtimes = engine._runtimes
    new = {t.name: t for t in config.targets}
    for name in diff.removed:
        engine._remove(name)
    for name in (*diff.unchanged, *diff.relabelled):
        rt = runtimes[name]
        rt.target = rt.view.target = rt.probe.target = new[name]
    starting = set(diff.added) | set(diff.restarted)
    phase = random.random()
    total = len(config.targets)
    # in file order, so the spacing follows the file
    starts = [target for target in config.targets if target.name in starting]
    engine._starter.add([(target, target.interval * (phase + index) / total)
                         for index, target in enumerate(starts)])
    _in_file_order(engine)
    return diff


class Starter:
    """The targets a reload (re)starts, START_BATCH per turn of the loop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pending: deque[tuple[Target, float]] = deque()   # (target, offset)
        self.task: asyncio.Task[None] | None = None

    def add(self, starts: list[tuple[Target, float]]) -> None:
        self.pending.extend(starts)
        self._batch()
        if self.pending and self.task is None:
            self.task = asyncio.create_task(self._run(), name="reload-starts")
            self.engine._retiring.add(self.task)   # stop() ends it
            self.task.add_done_callback(self.engine._retiring.discard)

    def finish(self) -> None:
        """Make every pending start now."""
        if self.task is not None:
            self.task.cancel()
            self.task = None
        while self.pending:
            self._batch()

    async def _run(self) -> None:
        try:
            while self.pending:
                await asyncio.sleep(0)   # a turn of the loop: answers in flight are read
                self._batch()
        finally:
            if self.task is asyncio.current_task():
                self.task = None

    def _batch(self) -> None:
        engine = self.engine
        for _ in range(min(START_BATCH, len(self.pending))):
            target, offset = self.pending.popleft()
            rt = engine._runtimes.get(target.name)
            if rt is None:
                engine._add(target, offset=offset)
                continue
            # a pause made at run time survives an edit that did not touch `paused`
            keep_paused = rt.tracker.state is State.PAUSED and rt.target.paused == target.paused
            engine._remove(target.name)
            engine._add(target, offset=offset, view=rt.view, paused=keep_paused)
        if not self.pending:
            _in_file_order(engine)


def _in_file_order(engine: Engine) -> None:
    """Views in the file's order, as at start (a restart moved its own to the end)."""
    runtimes = engine._runtimes
    engine._runtimes = {t.name: runtimes[t.name] for t in engine._targets if t.name in runtimes}


def _apply_settings(engine: Engine, settings: Settings) -> None:
    old, engine.settings = engine.settings, settings
    engine._ctx.user_agent = settings.user_agent
    if settings.concurrency != old.concurrency:
        budget = fit_concurrency(settings.concurrency)
        engine.concurrency = budget.concurrency
        engine._slots.resize(budget.concurrency)
        if budget.notice:
            engine.notices.append(budget.notice)
            engine.sinks.on_notice(budget.notice)


def _forget_built_from(engine: Engine, files: list[str | Path]) -> None:
    """Drop cached resources keyed by a changed file's path (a TLS context
    built from a `ca_file`), so the next probe reads the file again."""
    needles = {str(p) for p in files} | {os.path.normpath(str(p)) for p in files}
    engine._ctx.forget(lambda key: any(needle in key for needle in needles))
