"""The history store as one of the engine's sinks.

The engine process (headless or the dashboard's worker) writes history; the
store's writer thread does the SQLite work, so the calls here only queue.
Its health (a full disk, a locked or damaged file, writing again) reaches
the other sinks as notices: the dashboard's event log, the service's log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from monitor.config.model import Config
from monitor.engine.sinks import ConfigReloaded, MonitorStarted, MonitorStopped, Sink
from monitor.store.history import HistoryRefused, HistoryStore
from monitor.store.writer import Health


class HistorySink(Sink):
    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        # bound once: the hot path is one call into the writer's queue
        self.on_result = store.on_result          # type: ignore[method-assign]
        self.on_transition = store.on_transition  # type: ignore[method-assign]

    def on_start(self, event: MonitorStarted) -> None:
        self.store.on_start(event.at)

    def on_reload(self, event: ConfigReloaded) -> None:
        summary = event.to_json()
        summary["at"] = event.at
        self.store.on_reload(summary)

    def on_stop(self, event: MonitorStopped) -> None:
        self.store.on_stop(event.at)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.store.close)


def open_history(config: Config, owner: str,
                 notify: Callable[[str], None]) -> HistorySink | None:
    """The history sink for `config`, or None when history is off.

    `notify` hears the store's health changes (from any thread: they are
    passed to the caller's loop) and why history cannot be written at all.
    Raises HistoryRefused when another engine writes this database.
    """
    loop = asyncio.get_running_loop()

    def on_health(health: Health) -> None:
        if health.message:
            loop.call_soon_threadsafe(notify, health.message)

    store = HistoryStore.for_config(config, owner_info=owner, on_health=on_health,
                                    own_process=True)
    if not store.enabled:
        return None
    if not store.health.ok and store.health.message:
        notify(store.health.message)
    return HistorySink(store)


__all__ = ["HistoryRefused", "HistorySink", "open_history"]
