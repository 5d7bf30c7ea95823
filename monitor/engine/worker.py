"""`monitor engine-worker`: the engine in its own process, for the dashboard.

Reads commands as JSON lines on stdin, writes results, transitions and
engine stats as frames (`wire`) on stdout. Exits when stdin closes, so a UI
that dies (or an SSH session that drops) never leaves a probing orphan behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from typing import Any, BinaryIO

from monitor.config import Config, ConfigError, load_config
from monitor.engine.client import EngineStats, report_stats
from monitor.engine.scheduler import Engine
from monitor.engine.wire import Message, pack, result_message, transition_message


class Outbox:
    """Messages to the UI that never block the engine.

    A message waits at most `every` seconds and goes out with the others
    that came meanwhile, as one frame in one write on a non-blocking pipe (a
    burst of results is one write and wakes the UI once; nothing to send, no
    wake-ups at all). A UI that stops reading (its terminal frozen on a
    stalled SSH link) must not stall the probes behind a full pipe: above
    `limit` bytes waiting, results are dropped and counted; transitions,
    stats and errors still go.
    """

    def __init__(self, transport: asyncio.WriteTransport, limit: int = 4 << 20,
                 every: float = 0.05) -> None:
        self.transport = transport
        self.limit = limit
        self.every = every
        self.dropped = 0
        self._messages: list[Message] = []
        self._pending: asyncio.TimerHandle | None = None

    def emit(self, message: Message, droppable: bool = False) -> None:
        if droppable and self.transport.get_write_buffer_size() > self.limit:
            self.dropped += 1
            return
        self._messages.append(message)
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self.every, self.flush)

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._messages and not self.transport.is_closing():
            self.transport.write(pack(self._messages))
        self._messages = []

    async def close(self, wait: float = 2.0) -> None:
        """Send what is left and give the UI a moment to take it."""
        self.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while self.transport.get_write_buffer_size() and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self.transport.close()


class _FileSink:
    """The transport interface over blocking writes, for stdout that is not a
    pipe or socket (a file, a terminal, /dev/null: `monitor engine-worker`
    run by hand). Only the dashboard's pipe needs back-pressure handling."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data)
        self.stream.flush()

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.stream.closed

    def close(self) -> None:
        self.stream.flush()


def private_stdout() -> BinaryIO:
    """Take file descriptor 1 for the frames alone: from here on anything
    printed to stdout (by us or a library) goes to stderr, where the UI keeps
    it for error reports, and cannot break the frame stream."""
    sys.stdout.flush()
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return frames


async def open_outbox() -> Outbox:
    stream = private_stdout()
    mode = os.fstat(stream.fileno()).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        # a file, a terminal, /dev/null: uvloop aborts on them as pipes; the UI uses a pipe
        return Outbox(_FileSink(stream))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, stream)
    return Outbox(transport)


async def serve(config: Config, stats_every: float = 1.0, record: str | None = None) -> int:
    loop = asyncio.get_running_loop()
    out = await open_outbox()
    emit = out.emit
    recording = open(record, "a", encoding="utf-8") if record else None   # noqa: SIM115

    def on_result(result: Any) -> None:
        emit(result_message(result), droppable=True)
        if recording is not None:   # what `monitor run --headless --json` would print
            recording.write(json.dumps({"event": "result", **result.to_json()},
                                       separators=(",", ":"), default=str) + "\n")

    demo = None
    if config.demo.enabled:
        from monitor.demo import DemoServer
        demo = DemoServer(config.demo.host, config.demo.port)
        try:
            await demo.start()
        except OSError as exc:
            emit(("error", str(exc.strerror or exc)))
            demo = None

    engine = Engine(config, on_result=on_result,
                    on_transition=lambda t: emit(transition_message(t)),
                    keep_history=False)   # the UI keeps the history it shows
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    tasks = [asyncio.create_task(_commands(engine, config, emit, stop)),
             asyncio.create_task(report_stats(engine, stats_every,
                                              lambda s: emit(_stats_message(s, out.dropped))))]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await engine.stop()
        if demo is not None:
            await demo.stop()
        if recording is not None:
            recording.close()
        await out.close()
    return 0


def _stats_message(stats: EngineStats, dropped: int) -> Message:
    return ("stats", stats.probes_total, stats.skips, round(stats.lag_ms, 3),
            round(stats.probes_per_s, 2), dropped)


async def _commands(engine: Engine, config: Config, emit: Any, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:   # the UI is gone
            stop.set()
            return
        try:
            command = json.loads(line)
            name = command.get("name")
            action = command.get("cmd")
            if action == "stop":
                stop.set()
                return
            if action == "pause":
                engine.pause(name)
            elif action == "resume":
                engine.resume(name)
            elif action == "probe_now":
                engine.probe_now(name)
            elif action == "reload" and config.path is not None:
                try:
                    fresh = load_config(config.path)
                except ConfigError as exc:
                    emit(("error", f"config not reloaded: {exc}"))
                    continue
                engine.replace_targets(fresh.targets, fresh.settings)
        except (ValueError, KeyError, AttributeError) as exc:
            emit(("error", f"bad command {line[:80]!r}: {exc}"))
