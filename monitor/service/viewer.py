"""`SocketEngine`: the dashboard's engine client when a service probes for it.

It connects to the service's socket, takes the snapshot of the board, then
the live stream, exactly as `ProcessEngine` hands a worker's messages to the
same listener; commands go the other way as the same JSON lines, and the
service carries them out. A lost connection is said at once
(`on_engine_down`: the board stops showing states as live) and retried with
backoff for as long as the dashboard runs; each new connection starts with a
fresh snapshot. Quitting the dashboard closes only the connection.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from monitor.engine.client import EngineDown, Listener, message_handlers
from monitor.engine.sinks import ConfigReloaded
from monitor.engine.wire import MAX_COMMAND, FrameReader, Message, WireError, command_line
from monitor.service.paths import peer_of, trusted_service
from monitor.service.snapshot import SNAPSHOT_KINDS, BoardSnapshot, SnapshotReader


@dataclass(frozen=True)
class Reconnect:
    """Try again after 0.25, 0.5, 1 ... seconds, at most `max_delay` apart,
    for as long as the dashboard runs: the service is someone else's to
    restart (systemd's, or the operator's)."""
    first_delay: float = 0.25
    max_delay: float = 5.0

    def delay(self, tries: int) -> float:
        return min(self.max_delay, self.first_delay * 2 ** tries)


class ViewerListener(Listener, Protocol):
    # the service's whole board: on attaching, and again after a gap
    def on_snapshot(self, snapshot: BoardSnapshot) -> None: ...


async def connect(path: Path, limit: int = 1 << 16
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the service at `path`, whose uid the kernel vouches
    for. Raises OSError (ConnectionRefusedError: nothing listens; a
    PermissionError names a service that is not ours)."""
    reader, writer = await asyncio.open_unix_connection(str(path), limit=limit)
    sock: socket.socket = writer.get_extra_info("socket")
    peer = peer_of(sock)
    if not trusted_service(peer):
        writer.close()
        who = "an unknown user" if peer is None else f"uid {peer.uid}"
        raise PermissionError(f"the service at {path} runs as {who}: not attaching to it")
    return reader, writer


async def read_snapshot(reader: asyncio.StreamReader, frames: FrameReader,
                        on_error: Callable[[str], None] | None = None
                        ) -> tuple[BoardSnapshot, list[Message]]:
    """The first snapshot on a fresh connection, and the messages that came
    with it after its end. Raises ConnectionError (with the service's
    words, when it refused us) or WireError."""
    snapshots, said = SnapshotReader(), None
    while chunk := await reader.read(1 << 16):
        messages = frames.feed(chunk)
        for index, message in enumerate(messages):
            if message[0] in SNAPSHOT_KINDS:
                snapshot = snapshots.feed(message)
                if snapshot is not None:
                    return snapshot, messages[index + 1:]
            elif message[0] == "error" and not snapshots.reading:
                said = message[1]
                if on_error is not None:
                    on_error(said)
    raise ConnectionError(said or "the service closed the connection before its snapshot")


class SocketEngine:
    """An `EngineClient` for a service's socket (see the module's docstring)."""

    def __init__(self, socket_path: Path, listener: ViewerListener,
                 reconnect: Reconnect | None = None) -> None:
        self.socket_path = Path(socket_path)
        self.listener = listener
        self.reconnect = reconnect or Reconnect()
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._ups = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_attached())

    async def stop(self) -> None:
        """Detach; the service goes on probing."""
        self._stopping = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def pause(self, name: str) -> None:
        self._send({"cmd": "pause", "name": name})

    def resume(self, name: str) -> None:
        self._send({"cmd": "resume", "name": name})

    def probe_now(self, name: str) -> None:
        self._send({"cmd": "probe_now", "name": name})

    def reload(self) -> None:
        self._send({"cmd": "reload"})

    def _send(self, command: dict[str, Any]) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            return   # not attached: the dashboard says nothing is measured and refuses
        line = command_line(command)
        if len(line) > MAX_COMMAND:
            self.listener.on_error(f"{command.get('cmd')} not sent: the command is "
                                   f"{len(line)} bytes, over the {MAX_COMMAND} byte limit")
            return
        writer.write(line)

    async def _keep_attached(self) -> None:
        tries = 0
        while not self._stopping:
            try:
                reason, attached = await self._attach_once()
            except Exception as exc:   # noqa: BLE001  a bug must not leave a board looking live
                reason, attached = f"viewer failed: {type(exc).__name__}: {exc}", False
            if self._stopping:
                return
            if attached:
                tries = 0
            delay = self.reconnect.delay(tries)
            self.listener.on_engine_down(EngineDown(f"{reason}; reconnecting to the service",
                                                    tries, delay))
            await asyncio.sleep(delay)
            tries += 1

    async def _attach_once(self) -> tuple[str, bool]:
        """One connection, to its end: why it ended, and whether it attached."""
        path = self.socket_path
        try:
            reader, writer = await connect(path, limit=1 << 20)
        except OSError as exc:
            return f"service not reachable at {path}: {exc.strerror or exc}", False
        frames = FrameReader()
        try:
            try:
                snapshot, after = await read_snapshot(reader, frames)
            except (ConnectionError, WireError) as exc:
                return f"service did not attach us: {exc}", False
            self._writer = writer
            self.listener.on_engine_up(self._ups)
            self._ups += 1
            self._deliver(snapshot)
            return await self._follow(reader, frames, after), True
        except OSError as exc:
            return f"connection to the service lost: {exc.strerror or exc}", self._ups > 0
        finally:
            self._writer = None
            writer.close()

    def _deliver(self, snapshot: BoardSnapshot) -> None:
        listener = self.listener
        # the config first: a target new to this dashboard needs its row
        listener.on_reload(ConfigReloaded(snapshot.taken_at, source="attach",
                                          config_text=snapshot.config_text))
        listener.on_snapshot(snapshot)

    async def _follow(self, reader: asyncio.StreamReader, frames: FrameReader,
                      first: list[Message]) -> str:
        handlers = message_handlers(self.listener)
        snapshots = SnapshotReader()

        def hand_on(messages: list[Message]) -> None:
            for message in messages:
                kind = message[0]
                if kind in SNAPSHOT_KINDS:   # a fresh one after a gap in our stream
                    snapshot = snapshots.feed(message)
                    if snapshot is not None:
                        self._deliver(snapshot)
                else:
                    handler = handlers.get(kind)
                    if handler is not None:
                        handler(message)

        try:
            hand_on(first)
            while chunk := await reader.read(1 << 16):
                hand_on(frames.feed(chunk))
        except WireError as exc:
            return f"unreadable data from the service: {exc}"
        return "the service closed the connection (stopped or restarting)"
