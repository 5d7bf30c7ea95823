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

import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config.diff import ConfigDiff, diff_configs
from monitor.config.model import Config, Settings
from monitor.engine.fdlimit import fit_concurrency
from monitor.engine.state import State

if TYPE_CHECKING:
    from monitor.engine.scheduler import Engine


def apply_config(engine: Engine, config: Config,
                 files_changed: Iterable[str | Path] = ()) -> ConfigDiff:
    files_changed = list(files_changed)
    diff = diff_configs(engine.config, config, files_changed)
    _apply_settings(engine, config.settings)
    if files_changed:
        _forget_built_from(engine, files_changed)
    engine.config = config
    engine._targets = list(config.targets)
    runtimes = engine._runtimes
    if not runtimes:   # not started (or stopped): start() will add them all
        return diff
    new = {t.name: t for t in config.targets}
    for name in diff.removed:
        engine._remove(name)
    for name in (*diff.unchanged, *diff.relabelled):
        rt = runtimes[name]
        rt.target = rt.view.target = rt.probe.target = new[name]
    starting = set(diff.added) | set(diff.restarted)
    phase = random.random()
    total = len(config.targets)
    index = 0
    for target in config.targets:   # in file order, so the spacing follows the file
        if target.name not in starting:
            continue
        offset = target.interval * (phase + index) / total
        index += 1
        rt = runtimes.get(target.name)
        if rt is None:
            engine._add(target, offset=offset)
            continue
        # a pause made at run time survives an edit that did not touch `paused`
        keep_paused = rt.tracker.state is State.PAUSED and rt.target.paused == target.paused
        engine._remove(target.name)
        engine._add(target, offset=offset, view=rt.view, paused=keep_paused)
    # in the file's order, as at start
    engine._runtimes = {name: runtimes[name] for name in new}
    return diff


def _apply_settings(engine: Engine, settings: Settings) -> None:
    old, engine.settings = engine.settings, settings
    engine._ctx.user_agent = settings.user_agent
    if settings.concurrency != old.concurrency:
        budget = fit_concurrency(settings.concurrency)
        engine.concurrency = budget.concurrency
        engine._slots.resize(budget.concurrency)
        if budget.notice:
            engine.notices.append(budget.notice)
            engine._emit(engine._on_notice, budget.notice)


def _forget_built_from(engine: Engine, files: list[str | Path]) -> None:
    """Drop cached resources keyed by a changed file's path (a TLS context
    built from a `ca_file`), so the next probe reads the file again."""
    needles = {str(p) for p in files} | {os.path.normpath(str(p)) for p in files}
    engine._ctx.forget(lambda key: any(needle in key for needle in needles))
