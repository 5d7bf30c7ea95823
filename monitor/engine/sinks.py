"""Everything the engine tells the world goes to its sinks, in one order.

A sink is anything that consumes the engine's events: the dashboard's pipe,
the headless printer, the `--record` file, the history store, and later the
alerts and the metrics export. Each overrides only the events it wants. The
engine calls every sink on its own loop, one event at a time, so every sink
sees the same events in the same order: the monitor's start, results,
transitions, config reloads (or the problems that stopped one), notices, and
its stop.

A sink must not block (queue the work, write from a thread or a non-blocking
outbox) and its failures are its own: one that raises is logged and the
others still get the event, and the probe that made it is never delayed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.engine.result import ProbeResult, iso
from monitor.engine.state import Transition

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MonitorStarted:
    at: datetime
    targets: int
    config_path: str | None
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> dict[str, Any]:
        return {"event": "start", "at": iso(self.at), "pid": self.pid,
                "targets": self.targets, "config": self.config_path}


@dataclass(frozen=True, slots=True)
class MonitorStopped:
    at: datetime
    reason: str = "stopped"

    def to_json(self) -> dict[str, Any]:
        return {"event": "stop", "at": iso(self.at), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ConfigReloaded:
    """A new config was applied: which targets came, went, or changed."""
    at: datetime
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()     # names of the [settings] keys that changed
    source: str = "file"               # what asked: "file" (a watched save), "key", "signal", "command"
    # the config text now running (not in the JSON): a receiver in another
    # process builds its targets from exactly this
    config_text: str = field(default="", repr=False)

    @property
    def summary(self) -> str:
        """'+2 −1 ~1' and the settings that changed: what an operator reads."""
        parts = [f"+{len(self.added)} \u2212{len(self.removed)} ~{len(self.changed)}"]
        if self.settings:
            parts.append("settings: " + ", ".join(self.settings))
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"event": "reload", "at": iso(self.at), "added": list(self.added),
                "removed": list(self.removed), "changed": list(self.changed),
                "settings": list(self.settings), "source": self.source,
                "summary": self.summary}


@dataclass(frozen=True, slots=True)
class ConfigRejected:
    """A changed config did not validate: the last good one keeps running."""
    at: datetime
    problems: tuple[str, ...]          # each `FILE:LINE: key: problem`, as `validate` prints
    source: str = "file"

    def to_json(self) -> dict[str, Any]:
        return {"event": "config_error", "at": iso(self.at), "problems": list(self.problems),
                "source": self.source}


class Sink:
    """Override the events you consume; the rest cost nothing (see Fanout)."""

    def on_start(self, event: MonitorStarted) -> None: ...
    def on_result(self, result: ProbeResult) -> None: ...
    def on_transition(self, transition: Transition) -> None: ...
    def on_reload(self, event: ConfigReloaded) -> None: ...
    def on_config_rejected(self, event: ConfigRejected) -> None: ...
    def on_notice(self, text: str) -> None: ...
    def on_stop(self, event: MonitorStopped) -> None: ...

    async def aclose(self) -> None:
        """Flush and let go, after the last event."""


class CallbackSink(Sink):
    """Plain callables as a sink: for tests, benches and small consumers."""

    def __init__(self, on_result: Callable[[ProbeResult], None] | None = None,
                 on_transition: Callable[[Transition], None] | None = None,
                 on_notice: Callable[[str], None] | None = None) -> None:
        # only the ones given become methods, so Fanout skips the others
        if on_result is not None:
            self.on_result = on_result        # type: ignore[method-assign]
        if on_transition is not None:
            self.on_transition = on_transition  # type: ignore[method-assign]
        if on_notice is not None:
            self.on_notice = on_notice        # type: ignore[method-assign]


_EVENTS = ("on_start", "on_result", "on_transition", "on_reload", "on_config_rejected",
           "on_notice", "on_stop")


class Fanout:
    """Hands each event to every sink that consumes it, in the order the sinks
    were given. Per event kind it keeps only the sinks that override it, so a
    result costs one call per sink that wants results and nothing more."""

    def __init__(self, sinks: Iterable[Sink] = ()) -> None:
        self.sinks: list[Sink] = []
        self._callees: dict[str, list[Callable[[Any], None]]] = {event: [] for event in _EVENTS}
        for sink in sinks:
            self.add(sink)

    def add(self, sink: Sink) -> None:
        self.sinks.append(sink)
        for event in _EVENTS:
            method = getattr(sink, event)
            if getattr(method, "__func__", None) is not getattr(Sink, event):
                self._callees[event].append(method)

    def wants(self, event: str) -> bool:
        return bool(self._callees[event])

    def on_start(self, event: MonitorStarted) -> None:
        self._call("on_start", event)

    def on_result(self, result: ProbeResult) -> None:
        for callee in self._callees["on_result"]:
            try:
                callee(result)
            except Exception:   # a consumer's bug must not stop probing
                log.exception("result sink %r failed", callee)

    def on_transition(self, transition: Transition) -> None:
        self._call("on_transition", transition)

    def on_reload(self, event: ConfigReloaded) -> None:
        self._call("on_reload", event)

    def on_config_rejected(self, event: ConfigRejected) -> None:
        self._call("on_config_rejected", event)

    def on_notice(self, text: str) -> None:
        self._call("on_notice", text)

    def on_stop(self, event: MonitorStopped) -> None:
        self._call("on_stop", event)

    async def aclose(self) -> None:
        """Close every sink, each on its own: one that fails to flush does not
        keep the others from flushing."""
        for sink in self.sinks:
            try:
                await sink.aclose()
            except Exception:
                log.exception("closing sink %r failed", sink)

    def _call(self, event: str, item: object) -> None:
        for callee in self._callees[event]:
            try:
                callee(item)
            except Exception:
                log.exception("%s sink %r failed", event, callee)
