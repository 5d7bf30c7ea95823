"""The engine host: one engine and everything a process runs around it.

`monitor check`, `monitor run --headless` and the dashboard's engine process
all need the same things around their engine: the config's demo server, the
sinks that consume its events, signals (stop; reload for a service), and
reloads of the config that apply only the difference. They get them here,
once, so a fix to any of them reaches all three.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import Config, ConfigError, load_config
from monitor.engine.heap import PROBING_YOUNG_THRESHOLD, settle as settle_heap
from monitor.engine.result import ProbeResult
from monitor.engine.scheduler import Engine
from monitor.engine.sinks import ConfigRejected, ConfigReloaded, Sink

if TYPE_CHECKING:
    from monitor.demo import DemoServer

log = logging.getLogger(__name__)


async def start_demo(config: Config, notify: Callable[[str], None]) -> DemoServer | None:
    """The config's demo server, listening (None when the config has none, or
    when ours already serves that port: a dashboard open on the same config).
    A port another program holds is a notice, never an end: the demo targets
    failing is what the monitor is there to show."""
    if not config.demo.enabled:
        return None
    from monitor.demo import start_or_share
    server, note = await start_or_share(config.demo.host, config.demo.port)
    if note is not None:
        notify(note)
    return server


class EngineHost:
    """Runs one engine for a process.

    `stop_on`: signals that end it (a dashboard's engine stops on a hangup);
    `reload_on`: signals that reload the config (SIGHUP for a service, as
    `systemctl reload` sends). `watch`: follow the config file (and the
    files it names) and reload on every save.
    """

    def __init__(self, config: Config, sinks: Iterable[Sink] = (), *,
                 keep_history: bool = False,
                 stop_on: Sequence[signal.Signals] = (signal.SIGINT, signal.SIGTERM,
                                                      signal.SIGHUP),
                 reload_on: Sequence[signal.Signals] = (), settle_heap: bool = True,
                 adjust: Callable[[Config], Config] | None = None,
                 watch: bool = False) -> None:
        self.config = config
        self.engine = Engine(config, sinks=sinks, keep_history=keep_history)
        self.demo: DemoServer | None = None
        self._stop_on = tuple(stop_on)
        self._reload_on = tuple(reload_on)
        # what the process does to every config it reads (the dashboard's
        # engine: the pauses the app remembers), at start and on each reload
        self._adjust = adjust or (lambda config: config)
        self._settle_heap = settle_heap
        self._watch = watch   # a process of its own: freeze what it keeps (heap.py)
        self._stopping = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[object]] = set()
        self._installed: list[signal.Signals] = []

    @property
    def sinks(self):   # noqa: ANN201 (the engine's Fanout)
        return self.engine.sinks

    async def start(self) -> None:
        """Demo server, engine, signals."""
        self.demo = await start_demo(self.config, self.sinks.on_notice)
        await self.engine.start()
        if self._settle_heap:
            settle_heap(PROBING_YOUNG_THRESHOLD)
        loop = asyncio.get_running_loop()
        for sig in self._stop_on:
            loop.add_signal_handler(sig, self._stopping.set)
            self._installed.append(sig)
        for sig in self._reload_on:
            loop.add_signal_handler(sig, self.reload_soon, "signal")
            self._installed.append(sig)
        if self._watch and self.config.path is not None:
            task = loop.create_task(self._follow_the_file(), name="config-follow")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _follow_the_file(self) -> None:
        """Reload on every save of the config (or a file it names); a save
        that does not validate is told, and the last good config runs on."""
        from monitor.config.watch import ConfigWatcher
        assert self.config.path is not None
        async with ConfigWatcher(self.config.path, self.config) as watcher:
            async for change in watcher:
                event = await self.reload("file", change.paths)
                if isinstance(event, ConfigReloaded):
                    watcher.follow(self.config)

    def stop_soon(self) -> None:
        self._stopping.set()

    async def wait(self) -> None:
        """Until a stop signal or `stop_soon`."""
        await self._stopping.wait()

    def reload_soon(self, source: str = "command") -> None:
        task = asyncio.get_running_loop().create_task(self.reload(source))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def reload(self, source: str = "command",
                     files_changed: Iterable[str | Path] = ()) -> ConfigReloaded | ConfigRejected:
        """Read the config file again. Valid: apply the difference (unchanged
        targets keep their schedule, state and history) and tell the sinks
        what changed. Invalid: keep running on the last good config and tell
        the sinks the problems, as `monitor validate` prints them."""
        async with self._reload_lock:
            path = self.config.path
            if path is None:
                event: ConfigReloaded | ConfigRejected = ConfigRejected(
                    datetime.now(UTC), ("the config was not read from a file",), source)
                self.sinks.on_config_rejected(event)
                return event
            try:
                # parsing 10,000 targets takes a while: not on the probes' loop
                fresh = self._adjust(await asyncio.to_thread(load_config, path))
            except ConfigError as exc:
                event = ConfigRejected(datetime.now(UTC), tuple(map(str, exc.problems)), source)
                self.sinks.on_config_rejected(event)
                return event
            diff = self.engine.apply_config(fresh, files_changed)
            self.config = fresh
            event = ConfigReloaded(datetime.now(UTC), diff.added, diff.removed, diff.changed,
                                   diff.settings, source, config_text=fresh.source)
            self.sinks.on_reload(event)
            return event

    async def check_once(self, names: Iterable[str] | None = None) -> list[ProbeResult]:
        """`monitor check`: each target once, with the demo server up if the
        config has one; no schedule, no signals."""
        self.demo = await start_demo(self.config, self.sinks.on_notice)
        try:
            return await self.engine.check_once(names)
        finally:
            await self.engine.close()
            await self._stop_demo()

    async def close(self, reason: str = "stopped") -> None:
        """Stop probing, tell the sinks, flush them, stop the demo server."""
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        try:
            await self.engine.stop(reason)
        finally:
            await self.sinks.aclose()
            await self._stop_demo()

    async def _stop_demo(self) -> None:
        if self.demo is not None:
            demo, self.demo = self.demo, None
            await demo.stop()
