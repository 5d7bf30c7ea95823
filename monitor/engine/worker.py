"""`monitor engine-worker`: the engine in its own process, for the dashboard.

Reads commands as JSON lines on stdin, writes results, transitions and
engine stats as frames (`wire`) on stdout. Exits when stdin closes, so a UI
that dies (or an SSH session that drops) never leaves a probing orphan behind.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

from monitor.config import Config, ConfigError, load_config
from monitor.engine.client import EngineStats, report_stats
from monitor.engine.outbox import Outbox, open_stdout
from monitor.engine.record import open_recorder
from monitor.engine.scheduler import Engine
from monitor.engine.wire import Message, pack, result_message, transition_message
from monitor.output import result_line


async def serve(config: Config, stats_every: float = 1.0, record: str | None = None) -> int:
    loop = asyncio.get_running_loop()
    # A UI that stops reading (its terminal frozen on a stalled SSH link) must
    # not stall the probes: above 4 MiB waiting, results are dropped and counted.
    out = await open_stdout(Outbox(pack, limit=4 << 20))
    emit = out.emit
    recording = None
    if record:
        try:
            recording = await open_recorder(record, lambda text: emit(("error", text)))
        except OSError as exc:
            emit(("error", f"--record {record}: {exc.strerror or exc}"))

    def on_result(result: Any) -> None:
        emit(result_message(result), droppable=True)
        if recording is not None:   # what `monitor run --headless --json` would print
            recording.emit(result_line(result), droppable=True)

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
            await recording.close()
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
