"""`monitor engine-worker`: the engine in its own process, for the dashboard.

Reads commands as JSON lines on stdin, writes results, transitions and
engine stats as JSON lines on stdout. Exits when stdin closes, so a UI that
dies (or an SSH session that drops) never leaves a probing orphan behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from typing import Any

from monitor.config import Config, ConfigError, load_config
from monitor.engine.client import EngineStats, report_stats
from monitor.engine.scheduler import Engine
from monitor.engine.wire import result_to_wire, transition_to_wire


class Outbox:
    """JSON lines to the UI that never block the engine.

    Lines are batched into one write per `every` seconds, on a non-blocking
    pipe. A UI that stops reading (its terminal frozen on a stalled SSH link)
    must not stall the probes behind a full pipe: above `limit` bytes waiting,
    results are dropped and counted; transitions, stats and errors still go.
    """

    def __init__(self, transport: asyncio.WriteTransport, limit: int = 4 << 20) -> None:
        self.transport = transport
        self.limit = limit
        self.dropped = 0
        self._lines: list[bytes] = []

    def emit(self, message: dict[str, Any], droppable: bool = False) -> None:
        if droppable and self.transport.get_write_buffer_size() > self.limit:
            self.dropped += 1
            return
        self._lines.append(json.dumps(message, separators=(",", ":"), default=str).encode()
                           + b"\n")

    def flush(self) -> None:
        if self._lines and not self.transport.is_closing():
            self.transport.write(b"".join(self._lines))
        self._lines.clear()

    async def run(self, every: float = 0.05) -> None:
        while True:
            await asyncio.sleep(every)
            self.flush()

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


async def open_outbox() -> Outbox:
    mode = os.fstat(sys.stdout.fileno()).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        # a file, a terminal, /dev/null: uvloop aborts on them as pipes; the UI uses a pipe
        return Outbox(_FileSink(sys.stdout.buffer))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout.buffer)
    return Outbox(transport)


async def serve(config: Config, stats_every: float = 1.0, record: str | None = None) -> int:
    loop = asyncio.get_running_loop()
    out = await open_outbox()
    emit = out.emit
    recording = open(record, "a", encoding="utf-8") if record else None   # noqa: SIM115

    def on_result(result: Any) -> None:
        emit(result_to_wire(result), droppable=True)
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
            emit({"t": "error", "message": str(exc.strerror or exc)})
            demo = None

    engine = Engine(config, on_result=on_result,
                    on_transition=lambda t: emit(transition_to_wire(t)))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    tasks = [asyncio.create_task(_commands(engine, config, emit, stop)),
             asyncio.create_task(report_stats(engine, stats_every,
                                              lambda s: emit(_stats_message(s, out.dropped)))),
             asyncio.create_task(out.run())]
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


def _stats_message(stats: EngineStats, dropped: int) -> dict[str, Any]:
    return {"t": "stats", "probes_total": stats.probes_total, "skips": stats.skips,
            "lag_ms": round(stats.lag_ms, 3), "probes_per_s": round(stats.probes_per_s, 2),
            "dropped": dropped}


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
                    emit({"t": "error", "message": f"config not reloaded: {exc}"})
                    continue
                engine.replace_targets(fresh.targets, fresh.settings)
        except (ValueError, KeyError, AttributeError) as exc:
            emit({"t": "error", "message": f"bad command {line[:80]!r}: {exc}"})
