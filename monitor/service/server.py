"""The service's listener: a sink of the engine that serves viewers on a
Unix socket, one session each.

A session speaks the dashboard worker's protocol (`engine/wire.py`): frames
of messages out, command lines in, obeyed as the worker obeys them, except
that "stop" ends only that session. It starts with a snapshot of the board
(`snapshot.py`), then the live stream.

Each session has its own `Outbox`, so a viewer that stops reading (a frozen
SSH link) never stalls probing or the other viewers: past its limit its
results are dropped and counted, and once it reads again it gets a fresh
snapshot in place of what it missed, then the stream. The limit grows with
the board, so a snapshot alone never counts as falling behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from monitor import __version__
from monitor.engine.client import STATS_EVERY, report_stats
from monitor.engine.host import EngineHost
from monitor.engine.outbox import Outbox
from monitor.engine.result import ProbeResult
from monitor.engine.sinks import ConfigRejected, ConfigReloaded, MonitorStarted, MonitorStopped, Sink
from monitor.engine.state import State, Transition
from monitor.alerts.sink import Delivery
from monitor.engine.wire import (
    CommandReader,
    EngineStats,
    Message,
    alert_message,
    SkippedLine,
    pack,
    rejected_message,
    reload_message,
    result_message,
    stats_message,
    transition_message,
)
# the worker's own command handling: one protocol, obeyed the same way
from monitor.engine.worker import _obey as obey_command
from monitor.probes.text import printable
from monitor.service.notify import Notifier
from monitor.service.paths import NoPlace, Peer, ServiceLock, listen_path, peer_of, trusted_viewer
from monitor.service.snapshot import ServiceInfo, WindowsSource, snapshot_messages

SESSION_LIMIT = 4 << 20        # bytes waiting for a viewer before its results are dropped
MESSAGES_PER_FRAME = 256       # frames stay small whatever a batch holds (snapshots are big)
RESYNC = "resync"              # a session's marker: a fresh snapshot goes here


class ServiceBusy(Exception):
    """Another service already serves this config."""

    def __init__(self, pid: int, path: Path) -> None:
        super().__init__(f"a service for this config is already running (pid {pid or '?'}, "
                         f"socket {path})")
        self.pid, self.path = pid, path


def bind_private(path: Path) -> socket.socket:
    """A Unix socket bound at `path`, mode 0600 from its first moment."""
    path.unlink(missing_ok=True)   # the caller holds the lock: a socket file here is stale
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
        os.chmod(path, 0o600)
    except OSError:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    return sock


def encode_frames(messages: list[Message]) -> bytes:
    return b"".join(pack(messages[i:i + MESSAGES_PER_FRAME])
                    for i in range(0, len(messages), MESSAGES_PER_FRAME))


class Session(asyncio.Protocol):
    """One viewer."""

    def __init__(self, service: ServiceSink) -> None:
        self.service = service
        self.peer: Peer | None = None
        self.outbox: Outbox[Message] = Outbox(self._encode, limit=SESSION_LIMIT,
                                              hard_limit=4 * SESSION_LIMIT,
                                              gap_note=self._resync_marker)
        self.commands = CommandReader()
        self._resync = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.peer = peer_of(transport.get_extra_info("socket"))
        if not trusted_viewer(self.peer):
            self.service.refuse(transport, self.peer)   # type: ignore[arg-type]
            return
        self.outbox.connection_made(transport)
        self.service.sessions.add(self)
        self.emit(self._resync_marker(0, 0))   # the snapshot is taken when it is sent

    def connection_lost(self, exc: Exception | None) -> None:
        self.service.sessions.discard(self)
        self.outbox.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.peer is None or self not in self.service.sessions:
            return
        for line in self.commands.feed(data):
            if isinstance(line, SkippedLine):
                self.emit(("error", f"command of {line.size} bytes skipped: over the "
                                    f"{self.commands.limit} byte limit"))
            elif self.service.obey(self, line):
                self.close()
                return

    def emit(self, message: Message, droppable: bool = False) -> None:
        self.outbox.emit(message, droppable)

    def close(self) -> None:
        self.service.sessions.discard(self)
        asyncio.get_running_loop().create_task(self.outbox.close(wait=0.5))

    def _resync_marker(self, dropped: int, lost: int) -> Message:
        self._resync = True
        return (RESYNC, dropped, lost)

    def _encode(self, messages: list[Message]) -> bytes:
        """Frames of `messages`; a resync marker and all after it become a
        snapshot taken now (which holds all of that) and the errors."""
        at = None
        if self._resync:
            self._resync = False
            at = max((i for i, m in enumerate(messages) if m[0] == RESYNC), default=None)
        if at is not None:
            _, dropped, lost = messages[at]
            snapshot = self.service.snapshot(dropped, lost)
            data = encode_frames(messages[:at] + snapshot
                                 + [m for m in messages[at + 1:] if m[0] == "error"])
            self.outbox.limit = max(SESSION_LIMIT, 2 * len(data))
            self.outbox.hard_limit = 4 * self.outbox.limit
            return data
        return encode_frames(messages)


class ServiceSink(Sink):
    """Serves the engine's board and events to viewers on the config's socket."""

    def __init__(self, config_path: Path, say: Callable[[str], None],
                 notifier: Notifier | None = None, windows: WindowsSource | None = None) -> None:
        self.config_path = Path(config_path).resolve()
        self.say = say
        self.notifier = notifier or Notifier()
        self.windows = windows
        self.sessions: set[Session] = set()
        self.refused = 0
        self.socket_path: Path | None = None
        self.info = ServiceInfo(os.getpid(), datetime.now(UTC), str(self.config_path),
                                __version__)
        self._host: EngineHost | None = None
        self._server: asyncio.AbstractServer | None = None
        self._lock: ServiceLock | None = None
        self._stats = EngineStats()
        self._stats_task: asyncio.Task[None] | None = None

    # --- life ------------------------------------------------------------------------

    def claim(self) -> Path:
        """Make sure no other service serves this config, before probing
        starts: the socket path. Raises ServiceBusy, NoPlace, OSError."""
        path = listen_path(self.config_path)
        lock = ServiceLock(path)
        holder = lock.acquire()
        if holder is not None:
            raise ServiceBusy(holder, path)
        self._lock, self.socket_path = lock, path
        return path

    async def listen(self, host: EngineHost) -> None:
        """Serve viewers of `host` (started) on the claimed socket, take over
        SIGHUP to tell systemd about reloads, and tell it we are ready."""
        assert self.socket_path is not None, "claim() first"
        self._host = host
        path = self.socket_path
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_unix_server(lambda: Session(self),
                                                         sock=bind_private(path))
        except OSError as exc:   # probing goes on without viewers
            self.say(f"monitor: not listening for dashboards: {path}: {exc.strerror or exc}")
            self.notifier.ready(self._status_line())
            return
        loop.add_signal_handler(signal.SIGHUP, self._reload_signal)   # host.close removes it
        self._stats_task = asyncio.create_task(
            report_stats(host.engine, STATS_EVERY, self._broadcast_stats))
        self.say(f"monitor: listening for dashboards on {path}")
        self.notifier.ready(self._status_line())

    async def aclose(self) -> None:
        if self._stats_task is not None:
            self._stats_task.cancel()
        if self._server is not None:
            self._server.close()
            self._server = None
            if self.socket_path is not None:
                self.socket_path.unlink(missing_ok=True)
        closing = [session.outbox.close(wait=0.5) for session in list(self.sessions)]
        self.sessions.clear()
        await asyncio.gather(*closing, return_exceptions=True)
        if self._lock is not None:
            self._lock.release()

    def _reload_signal(self) -> None:
        self.notifier.reloading()
        if self._host is not None:
            self._host.reload_soon("signal")

    # --- what sessions ask ---------------------------------------------------------------

    def snapshot(self, dropped: int = 0, lost: int = 0) -> list[Message]:
        host = self._host
        assert host is not None
        return snapshot_messages(self.info, host.config.source, host.engine.views, self._stats,
                                 dropped, lost, self.windows)

    def obey(self, session: Session, line: bytes) -> bool:
        """Carry out a viewer's command; True when it said stop (its session
        ends, the service goes on)."""
        assert self._host is not None
        try:
            command = json.loads(line)
            what = f"{command.get('cmd')} {command.get('name') or ''}".strip()
        except (ValueError, AttributeError):
            what = None
        if what is not None and not what.startswith("stop"):   # who paused what, for the log
            pid = session.peer.pid if session.peer else "?"
            self.say(f"monitor: {printable(what[:120])} (asked by a dashboard, pid {pid})")
        return obey_command(self._host, session.emit, line)

    def refuse(self, transport: asyncio.Transport, peer: Peer | None) -> None:
        self.refused += 1
        who = "an unknown peer" if peer is None else f"uid {peer.uid} (pid {peer.pid})"
        text = (f"refused: only uid {os.geteuid()} and root may attach to this service; "
                f"this is {who}")
        self.say(f"monitor: {text}")
        transport.write(pack([("error", text)]))
        transport.close()

    # --- the engine's events to every viewer --------------------------------------------------

    def on_start(self, event: MonitorStarted) -> None:
        self.info = replace(self.info, started_at=event.at)

    def on_result(self, result: ProbeResult) -> None:
        if self.sessions:
            message = result_message(result)
            for session in self.sessions:
                session.emit(message, droppable=True)

    def on_transition(self, transition: Transition) -> None:
        self._broadcast(transition_message(transition))

    def on_reload(self, event: ConfigReloaded) -> None:
        self._broadcast(reload_message(event))
        self.notifier.ready(self._status_line())

    def on_config_rejected(self, event: ConfigRejected) -> None:
        self._broadcast(rejected_message(event))
        self.notifier.ready(f"config not reloaded ({len(event.problems)} problems); "
                            + self._status_line())

    def on_notice(self, text: str) -> None:
        self._broadcast(("error", text))

    def on_alert(self, delivery: Delivery) -> None:
        """An alert sink's outcome, passed on by whoever runs both (headless)."""
        self._broadcast(alert_message(delivery))

    def on_stop(self, event: MonitorStopped) -> None:
        self.notifier.stopping(f"stopping: {event.reason}")

    def _broadcast(self, message: Message) -> None:
        for session in self.sessions:
            session.emit(message)

    def _broadcast_stats(self, stats: EngineStats) -> None:
        self._stats = stats = replace(stats, lag_ms=round(stats.lag_ms, 3),
                                      probes_per_s=round(stats.probes_per_s, 2))
        for session in self.sessions:
            session.emit(stats_message(replace(stats, dropped=session.outbox.dropped)))
        self.notifier.status(self._status_line())

    def _status_line(self) -> str:
        """For `systemctl status`: how many targets, in which states, who watches."""
        host = self._host
        if host is None:
            return "starting"
        counts = {state: 0 for state in State}
        for view in host.engine.views.values():
            counts[view.state] += 1
        parts = [f"{counts[s]} {s.value}" for s in State if counts[s]]
        viewers = len(self.sessions)
        return (f"probing {sum(counts.values())} targets: {', '.join(parts) or 'none'}; "
                f"{viewers} dashboard{'s' if viewers != 1 else ''} attached")


def open_service(config_path: Path | None, say: Callable[[str], None]) -> ServiceSink | None:
    """The service sink for `run --headless`/`serve`, its socket claimed;
    None (and said why) when it cannot listen: probing matters more than
    viewers. Raises ServiceBusy when another service serves this config."""
    if config_path is None:
        return None
    service = ServiceSink(config_path, say)
    try:
        service.claim()
    except (NoPlace, OSError) as exc:
        say(f"monitor: not listening for dashboards: {exc}")
        return None
    return service
