"""How a UI drives the engine: one small API, two implementations.

`InProcessEngine` runs the engine in the caller's event loop (tests, `check`).
`ProcessEngine` runs it in a child process (`monitor engine-worker`): commands
go as JSON lines to its stdin, results come back as frames (`wire`) on its
stdout, so rendering in the UI's loop can never delay a measurement (a thread
would not help: the GIL is shared).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from monitor.config.model import Config
from monitor.engine.result import ProbeResult
from monitor.engine.scheduler import Engine
from monitor.engine.state import Transition
from monitor.engine.wire import (
    MAX_COMMAND,
    FrameReader,
    Message,
    WireError,
    command_line,
    result_from_message,
    transition_from_message,
)

STATS_EVERY = 1.0   # seconds between the engine's statistics: its sign of life
PARENT_ENV = "MONITOR_ENGINE_PARENT"   # the worker's parent pid, for its orphan check


@dataclass(slots=True)
class EngineStats:
    probes_total: int = 0
    skips: int = 0
    lag_ms: float = 0.0
    probes_per_s: float = 0.0
    dropped: int = 0          # results the engine process dropped while the UI was not reading


class Listener(Protocol):
    def on_result(self, result: ProbeResult) -> None: ...
    def on_transition(self, transition: Transition) -> None: ...
    def on_stats(self, stats: EngineStats) -> None: ...
    def on_error(self, message: str) -> None: ...


class EngineClient(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def pause(self, name: str) -> None: ...
    def resume(self, name: str) -> None: ...
    def probe_now(self, name: str) -> None: ...
    def reload(self, config: Config) -> None: ...


class InProcessEngine:
    def __init__(self, config: Config, listener: Listener,
                 stats_every: float = STATS_EVERY) -> None:
        self.listener = listener
        self.engine = Engine(config, on_result=listener.on_result,
                             on_transition=listener.on_transition)
        self._stats_every = stats_every
        self._stats_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.engine.start()
        self._stats_task = asyncio.create_task(self._report_stats())

    async def stop(self) -> None:
        if self._stats_task is not None:
            self._stats_task.cancel()
        await self.engine.stop()

    def pause(self, name: str) -> None:
        self.engine.pause(name)

    def resume(self, name: str) -> None:
        self.engine.resume(name)

    def probe_now(self, name: str) -> None:
        self.engine.probe_now(name)

    def reload(self, config: Config) -> None:
        self.engine.replace_targets(config.targets, config.settings)

    async def _report_stats(self) -> None:
        await report_stats(self.engine, self._stats_every, self.listener.on_stats)


async def report_stats(engine: Engine, every: float,
                       callback: Callable[[EngineStats], None]) -> None:
    """Every `every` seconds: totals, skips, lag and the probe rate since last time."""
    loop = asyncio.get_running_loop()
    last_total, last_at = 0, loop.time()
    while True:
        await asyncio.sleep(every)
        now = loop.time()
        total = engine.probes_total
        rate = (total - last_total) / max(1e-9, now - last_at)
        last_total, last_at = total, now
        callback(EngineStats(total, engine.skips(), engine.lag_ms(), rate))


class ProcessEngine:
    """The engine in a child process; results stream back as JSON lines."""

    def __init__(self, config_path: Path, listener: Listener,
                 python: str = sys.executable, record: str | None = None) -> None:
        self.config_path = config_path
        self.record = record
        self.listener = listener
        self.python = python
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stderr: deque[str] = deque(maxlen=20)
        self._stderr_task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{PARENT_ENV: str(os.getpid())})
        extra = ["--record", self.record] if self.record else []
        self._proc = await asyncio.create_subprocess_exec(
            self.python, "-m", "monitor", "engine-worker", "--config", str(self.config_path),
            *extra,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, limit=16 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())
        self._stderr_task = asyncio.create_task(self._read_stderr())

    async def stop(self) -> None:
        self._stopping = True
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            self._send({"cmd": "stop"})
            try:
                await asyncio.wait_for(proc.wait(), 3.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in (self._reader, self._stderr_task):
            if task is not None:
                task.cancel()

    def pause(self, name: str) -> None:
        self._send({"cmd": "pause", "name": name})

    def resume(self, name: str) -> None:
        self._send({"cmd": "resume", "name": name})

    def probe_now(self, name: str) -> None:
        self._send({"cmd": "probe_now", "name": name})

    def reload(self, config: Config) -> None:
        self._send({"cmd": "reload"})

    def _send(self, message: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return
        line = command_line(message)
        if len(line) > MAX_COMMAND:
            self.listener.on_error(f"{message.get('cmd')} not sent: the command is "
                                   f"{len(line)} bytes, over the {MAX_COMMAND} byte limit")
            return
        try:
            proc.stdin.write(line)
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            pass

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        listener = self.listener
        dispatch: dict[str, Callable[[Message], None]] = {
            "result": lambda m: listener.on_result(result_from_message(m)),
            "transition": lambda m: listener.on_transition(transition_from_message(m)),
            "stats": lambda m: listener.on_stats(EngineStats(*m[1:6])),
            "error": lambda m: listener.on_error(m[1]),
        }
        stdout, frames = self._proc.stdout, FrameReader()
        try:
            while chunk := await stdout.read(1 << 16):
                for message in frames.feed(chunk):
                    handler = dispatch.get(message[0])
                    if handler is not None:
                        handler(message)
        except WireError as exc:
            listener.on_error(f"engine output unreadable, stopped reading it: {exc}")
            return
        code = await self._proc.wait()
        if not self._stopping:
            await asyncio.sleep(0.05)   # let stderr drain
            tail = " | ".join(self._stderr) or "no output"
            listener.on_error(f"engine process exited with status {code}: {tail}")

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        async for line in self._proc.stderr:
            self._stderr.append(line.decode(errors="replace").rstrip())
