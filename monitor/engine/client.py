"""How a UI drives the engine: one small API, two implementations.

`InProcessEngine` runs the engine in the caller's event loop (tests, `check`).
`ProcessEngine` runs it in a child process (`monitor engine-worker`): commands
go as JSON lines to its stdin, results come back as frames (`wire`) on its
stdout, so rendering in the UI's loop can never delay a measurement (a thread
would not help: the GIL is shared). A worker that dies is restarted, with
backoff, and the listener is told both (`on_engine_down`, `on_engine_up`): a
dead engine must never look like a healthy one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from monitor.config.model import Config
from monitor.engine.result import ProbeResult
from monitor.engine.host import EngineHost
from monitor.engine.scheduler import Engine
from monitor.engine.sinks import ConfigRejected, ConfigReloaded, Sink
from monitor.engine.state import Transition
from monitor.engine.wire import (
    MAX_COMMAND,
    EngineStats,
    FrameReader,
    Message,
    WireError,
    alert_from_message,
    command_line,
    rejected_from_message,
    reload_from_message,
    result_from_message,
    stats_from_message,
    transition_from_message,
)

STATS_EVERY = 1.0   # seconds between the engine's statistics: its sign of life
PARENT_ENV = "MONITOR_ENGINE_PARENT"   # the worker's parent pid, for its orphan check


@dataclass(frozen=True, slots=True)
class EngineDown:
    """The engine stopped without being asked to, or a restart failed."""
    reason: str               # how it ended, with its last words on stderr: for people
    tries: int                # restarts tried since it was last up
    retry_in: float | None    # seconds until the next try; None: given up for good


class Listener(Protocol):
    def on_result(self, result: ProbeResult) -> None: ...
    def on_transition(self, transition: Transition) -> None: ...
    def on_stats(self, stats: EngineStats) -> None: ...
    def on_error(self, message: str) -> None: ...
    def on_engine_up(self, restarts: int) -> None: ...   # 0 the first time
    def on_engine_down(self, down: EngineDown) -> None: ...
    # the engine runs the config in `event.config_text` now (also sent when an
    # engine starts, source "start": a restarted engine reads the file anew)
    def on_reload(self, event: ConfigReloaded) -> None: ...
    def on_config_rejected(self, event: ConfigRejected) -> None: ...


def message_handlers(listener: Listener) -> dict[str, Callable[[Message], None]]:
    """The engine's messages, by kind, to `listener` (a worker's pipe and a
    service's socket speak the same protocol). A listener written before a
    kind of message existed (it lacks the method) is simply not told of it:
    a new message must never break an old consumer's stream."""
    decoders: dict[str, tuple[str, Callable[[Message], object]]] = {
        "result": ("on_result", result_from_message),
        "transition": ("on_transition", transition_from_message),
        "stats": ("on_stats", stats_from_message),
        "error": ("on_error", lambda m: m[1]),
        "reload": ("on_reload", reload_from_message),
        "config_rejected": ("on_config_rejected", rejected_from_message),
        "alert": ("on_alert", alert_from_message),
    }
    handlers: dict[str, Callable[[Message], None]] = {}
    for kind, (method, decode) in decoders.items():
        callback = getattr(listener, method, None)
        if callback is not None:
            handlers[kind] = lambda m, callback=callback, decode=decode: callback(decode(m))
    return handlers


class EngineClient(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def pause(self, name: str) -> None: ...
    def resume(self, name: str) -> None: ...
    def probe_now(self, name: str) -> None: ...
    def reload(self) -> None: ...   # read the config file again; answered by on_reload / on_config_rejected


class ListenerSink(Sink):
    """The engine's events straight to a listener in the same process."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.on_result = listener.on_result            # type: ignore[method-assign]
        self.on_transition = listener.on_transition    # type: ignore[method-assign]
        self.on_reload = listener.on_reload            # type: ignore[method-assign]
        self.on_config_rejected = listener.on_config_rejected  # type: ignore[method-assign]
        self.on_notice = listener.on_error             # type: ignore[method-assign]


class InProcessEngine:
    """The engine host in the caller's loop, telling `listener` directly."""

    def __init__(self, config: Config, listener: Listener,
                 stats_every: float = STATS_EVERY) -> None:
        self.listener = listener
        self.host = EngineHost(config, [ListenerSink(listener)], keep_history=True,
                               stop_on=(), settle_heap=False)
        self.engine = self.host.engine
        self._stats_every = stats_every
        self._stats_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.host.start()
        self.listener.on_engine_up(0)
        self._stats_task = asyncio.create_task(self._report_stats())

    async def stop(self) -> None:
        if self._stats_task is not None:
            self._stats_task.cancel()
        await self.host.close()

    def pause(self, name: str) -> None:
        self.engine.pause(name)

    def resume(self, name: str) -> None:
        self.engine.resume(name)

    def probe_now(self, name: str) -> None:
        self.engine.probe_now(name)

    def reload(self) -> None:
        self.host.reload_soon("command")

    async def _report_stats(self) -> None:
        await report_stats(self.engine, self._stats_every, self.listener.on_stats)


async def report_stats(engine: Engine, every: float,
                       callback: Callable[[EngineStats], None]) -> None:
    """Every `every` seconds: totals, skips, lag, how far behind, and the
    probe rate since last time."""
    loop = asyncio.get_running_loop()
    last_total, last_at = 0, loop.time()
    while True:
        await asyncio.sleep(every)
        now = loop.time()
        total = engine.probes_total
        rate = (total - last_total) / max(1e-9, now - last_at)
        last_total, last_at = total, now
        callback(EngineStats(total, engine.skips(), engine.lag_ms(), rate,
                             behind_s=engine.behind_s(), skips_per_min=engine.skips_per_min()))


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a dead engine after 0.5, 1, 2, 4 ... seconds (capped); give up
    at `max_failures` failures within `window` seconds, when restarting is
    clearly not helping (a broken config file, a broken install)."""
    first_delay: float = 0.5
    max_delay: float = 8.0
    max_failures: int = 5
    window: float = 60.0

    def delay(self, failures: deque[float], now: float) -> float | None:
        """Count a failure at `now` into `failures` (their times): the delay
        before the next try, or None to give up."""
        failures.append(now)
        while now - failures[0] > self.window:
            failures.popleft()
        if len(failures) >= self.max_failures:
            return None
        return min(self.max_delay, self.first_delay * 2 ** (len(failures) - 1))


class ProcessEngine:
    """The engine in a child process, restarted when it dies.

    A supervisor task follows each worker until it ends; an end that `stop()`
    did not ask for is reported (`on_engine_down`) and, within the restart
    policy, a new worker is started after a pause. The first message of each
    worker reports it up (`on_engine_up`). Pauses and resumes asked for are
    sent again to each new worker, which starts from the config file.
    """

    def __init__(self, config_path: Path, listener: Listener, python: str = sys.executable,
                 record: str | None = None, restart: RestartPolicy | None = None) -> None:
        self.config_path = config_path
        self.record = record
        self.listener = listener
        self.python = python
        self.restart = restart or RestartPolicy()
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stderr: deque[str] = deque(maxlen=20)
        self._stopping = False
        self._ups = 0
        self._failures: deque[float] = deque()   # when workers died, within the policy's window
        self._paused: dict[str, bool] = {}   # name -> paused, as last asked

    async def start(self) -> None:
        """Start the worker and watch it; a worker that cannot start is
        reported and retried like one that died, never raised."""
        failure = await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(failure))

    async def stop(self) -> None:
        self._stopping = True
        await self._end_worker()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        await self._end_worker()   # one the supervisor was starting as we stopped

    def pause(self, name: str) -> None:
        self._paused[name] = True
        self._send({"cmd": "pause", "name": name})

    def resume(self, name: str) -> None:
        self._paused[name] = False
        self._send({"cmd": "resume", "name": name})

    def probe_now(self, name: str) -> None:
        self._send({"cmd": "probe_now", "name": name})

    def reload(self) -> None:
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
            pass   # it is dying: the supervisor reports it

    # --- the worker's life ----------------------------------------------------------

    async def _spawn(self) -> str | None:
        """Start a worker: None when it started, else why it could not."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{PARENT_ENV: str(os.getpid())})
        extra = ["--record", self.record] if self.record else []
        self._stderr.clear()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.python, "-m", "monitor", "engine-worker", "--config",
                str(self.config_path), *extra,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, limit=16 * 1024 * 1024)
        except OSError as exc:
            self._proc = None
            return f"engine process could not start ({self.python}): {exc.strerror or exc}"
        for name, paused in self._paused.items():   # the new worker knows only the file
            self._send({"cmd": "pause" if paused else "resume", "name": name})
        return None

    async def _supervise(self, failure: str | None) -> None:
        try:
            await self._keep_running(failure)
        except Exception as exc:   # noqa: BLE001
            # a bug here (a listener that raised, a message we cannot decode)
            # must not leave a dashboard frozen on its last state, looking live
            if self._proc is not None and self._proc.returncode is None:
                self._proc.kill()
            self.listener.on_engine_down(EngineDown(
                f"engine supervision failed: {type(exc).__name__}: {exc}", 0, None))

    async def _keep_running(self, failure: str | None) -> None:
        loop = asyncio.get_running_loop()
        tries = 0
        while True:
            if failure is None:
                failure, spoke = await self._follow()
                if spoke:
                    tries = 0
            if self._stopping:
                return
            delay = self.restart.delay(self._failures, loop.time())
            if delay is None:
                failure += (f" (gave up: {len(self._failures)} failures within "
                            f"{self.restart.window:g}s)")
            self.listener.on_engine_down(EngineDown(failure, tries, delay))
            if delay is None:
                return
            await asyncio.sleep(delay)
            tries += 1
            failure = await self._spawn()

    async def _follow(self) -> tuple[str, bool]:
        """Hand the worker's messages to the listener until it ends: why it
        ended, and whether it ever spoke."""
        proc = self._proc
        assert proc is not None
        stderr = asyncio.create_task(self._read_stderr(proc))
        try:
            ending, spoke = await self._dispatch(proc)
            try:
                code = await asyncio.wait_for(proc.wait(), 3.0)
            except TimeoutError:   # it closed its output but lives on: of no use to us
                ending = ending or "engine process closed its output"
                proc.kill()
                code = await proc.wait()
            if self._stopping:
                return "stopped", spoke
            await asyncio.wait([stderr], timeout=1.0)   # its last words
        finally:
            stderr.cancel()
        return f"{ending or _how_it_ended(code)}: {self._last_words()}", spoke

    async def _dispatch(self, proc: asyncio.subprocess.Process) -> tuple[str | None, bool]:
        """Messages to the listener until the worker's output ends: what was
        wrong with it, if anything, and whether the worker ever spoke."""
        assert proc.stdout is not None
        listener = self.listener
        dispatch = message_handlers(listener)
        stdout, frames, spoke = proc.stdout, FrameReader(), False
        try:
            while chunk := await stdout.read(1 << 16):
                messages = frames.feed(chunk)
                if messages and not spoke:
                    spoke = True
                    listener.on_engine_up(self._ups)
                    self._ups += 1
                for message in messages:
                    handler = dispatch.get(message[0])
                    if handler is not None:
                        handler(message)
        except WireError as exc:
            proc.kill()
            return f"engine output unreadable: {exc}", spoke
        return None, spoke

    async def _end_worker(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self._send({"cmd": "stop"})
        try:
            await asyncio.wait_for(proc.wait(), 3.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            self._stderr.append(line.decode(errors="replace").rstrip())

    def _last_words(self) -> str:
        """The end of the worker's stderr: a traceback's last lines say what broke."""
        lines = [line for line in self._stderr if line.strip()][-3:]
        text = " | ".join(line.strip() for line in lines) or "no error output"
        return text if len(text) <= 400 else "…" + text[-399:]


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"engine process killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"engine process killed by signal {-code}"
    if code == 0:
        return "engine process exited unexpectedly"
    return f"engine process exited with status {code}"
