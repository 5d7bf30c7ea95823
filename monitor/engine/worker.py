"""`monitor engine-worker`: the engine in its own process, for the dashboard.

Reads commands as JSON lines on stdin, writes results, transitions and
engine stats as frames (`wire`) on stdout. A UI that dies (or an SSH session
that drops) must never leave a probing orphan behind, so the worker ends on
any of: stdin closing, its parent process dying (the kernel's parent-death
signal on Linux, and a check of the parent every second everywhere), or any of
its own tasks ending, the command reader included.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import stat
import sys
import traceback
from dataclasses import replace
from typing import Any

from monitor.config import Config, ConfigError, load_config
from monitor.engine.client import PARENT_ENV, STATS_EVERY, EngineStats, report_stats
from monitor.engine.heap import settle as settle_heap
from monitor.engine.outbox import Outbox, open_stdout
from monitor.engine.record import open_recorder
from monitor.engine.scheduler import Engine
from monitor.engine.wire import (
    CommandReader,
    Message,
    SkippedLine,
    pack,
    result_message,
    stats_message,
    transition_message,
)
from monitor.output import result_line

PR_SET_PDEATHSIG = 1           # <linux/prctl.h>
PARENT_CHECK_EVERY = 1.0       # seconds


def die_with_parent() -> int | None:
    """Ask Linux to send us SIGTERM when our parent dies, and return the
    parent's pid, or None if it has already gone.

    The parent is the one the dashboard names in the environment (it may have
    died before we got here, and we were handed to init or a subreaper), else
    whoever started us. The kernel's signal fires when the thread that started
    us ends: the dashboard starts its engine from its main thread.
    """
    named = os.environ.get(PARENT_ENV, "")
    parent = int(named) if named.isdigit() else os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass   # no libc to ask: the periodic check below still ends us
    return parent if os.getppid() == parent else None


async def _watch_parent(parent: int) -> None:
    """Return when the parent has gone: the fallback for when no signal came
    (not Linux, or the signal was lost to a race at start)."""
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_EVERY)


async def serve(config: Config, stats_every: float = STATS_EVERY,
                record: str | None = None) -> int:
    parent = die_with_parent()
    if parent is None:
        print("engine-worker: the process that started it has already exited", file=sys.stderr)
        return 1
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
                    on_notice=lambda text: emit(("error", text)),
                    keep_history=False)   # the UI keeps the history it shows
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    await engine.start()
    settle_heap()
    emit(("ready",))
    stopped = asyncio.create_task(stop.wait())
    # Each of these runs for the worker's whole life: whichever ends first,
    # normally or not, ends the worker (never an engine probing on with no
    # one able to stop it).
    tasks = {
        asyncio.create_task(_commands(engine, config, emit)): "reading commands",
        asyncio.create_task(_watch_parent(parent)): "watching the parent process",
        asyncio.create_task(report_stats(engine, stats_every,
                                         lambda s: emit(_stats_message(s, out.dropped)))):
            "reporting statistics",
    }
    try:
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (stopped, *tasks):
            task.cancel()
        await engine.stop()
        if demo is not None:
            await demo.stop()
        if recording is not None:
            await recording.close()
        await out.close()
    return _exit_status(done, tasks)


def _exit_status(done: set[asyncio.Task[Any]], tasks: dict[asyncio.Task[Any], str]) -> int:
    """0 for an orderly end; 1, with the failure on stderr (where the UI reads
    the engine's last words), when one of the worker's tasks failed."""
    for task in done:
        error = None if task.cancelled() else task.exception()
        if task in tasks and error is not None:
            traceback.print_exception(error, file=sys.stderr)
            print(f"engine-worker: stopped: {tasks[task]} failed: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
            return 1
    return 0


def _stats_message(stats: EngineStats, dropped: int) -> Message:
    return stats_message(replace(stats, lag_ms=round(stats.lag_ms, 3),
                                 probes_per_s=round(stats.probes_per_s, 2), dropped=dropped,
                                 behind_s=round(stats.behind_s, 3),
                                 skips_per_min=round(stats.skips_per_min, 1)))


async def _commands(engine: Engine, config: Config, emit: Any) -> None:
    """Obey commands until the UI says stop or closes the pipe. A bad command
    (unreadable, unknown, too long) is answered with an error and skipped: it
    never ends the reader."""
    loop = asyncio.get_running_loop()
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        # a regular file: asyncio refuses it as a pipe, and uvloop aborts the process
        raise OSError("stdin is not a pipe: commands come from the dashboard")
    stream = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), sys.stdin)
    lines = CommandReader()
    while chunk := await stream.read(1 << 16):
        for line in lines.feed(chunk):
            if isinstance(line, SkippedLine):
                emit(("error", f"command of {line.size} bytes skipped: over the "
                               f"{lines.limit} byte limit"))
            elif _obey(engine, config, emit, line):
                return
    # end of input: the UI is gone


def _obey(engine: Engine, config: Config, emit: Any, line: bytes) -> bool:
    """Carry out one command line; True when it says stop."""
    try:
        command = json.loads(line)
        action, name = command.get("cmd"), command.get("name")
    except (ValueError, AttributeError) as exc:
        emit(("error", f"bad command {line[:80]!r}: {exc}"))
        return False
    if action == "stop":
        return True
    if action in ("pause", "resume", "probe_now"):
        try:
            getattr(engine, action)(name)
        except (KeyError, TypeError):   # a name no target has (or not a name at all)
            shown = name[:60] + "…" if isinstance(name, str) and len(name) > 60 else name
            emit(("error", f"{action}: no target named {shown!r}"))
    elif action == "reload":
        if config.path is None:
            return False
        try:
            fresh = load_config(config.path)
        except ConfigError as exc:
            emit(("error", f"config not reloaded: {exc}"))
            return False
        engine.replace_targets(fresh.targets, fresh.settings)
    else:
        emit(("error", f"unknown command {str(action)[:40]!r}"))
    return False
