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
from datetime import UTC, datetime
from typing import Any

from monitor.config import Config
from monitor.engine.client import PARENT_ENV, STATS_EVERY, EngineStats, report_stats
from monitor.engine.host import EngineHost
from monitor.engine.outbox import Outbox, open_stdout
from monitor.engine.record import RecordSink, open_recorder
from monitor.engine.result import ProbeResult
from monitor.engine.sinks import ConfigRejected, ConfigReloaded, Sink
from monitor.engine.state import Transition
from monitor.store.sink import HistoryRefused, open_history
from monitor.engine.wire import (
    CommandReader,
    Message,
    SkippedLine,
    alert_message,
    pack,
    rejected_message,
    reload_message,
    result_message,
    stats_message,
    transition_message,
)
from monitor.export import MetricsSink

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


class WireSink(Sink):
    """The engine's events into the pipe to the UI, as frames (`wire`)."""

    def __init__(self, emit: Any) -> None:
        self.emit = emit

    def on_result(self, result: ProbeResult) -> None:
        self.emit(result_message(result), droppable=True)

    def on_transition(self, transition: Transition) -> None:
        self.emit(transition_message(transition))

    def on_reload(self, event: ConfigReloaded) -> None:
        self.emit(reload_message(event))

    def on_config_rejected(self, event: ConfigRejected) -> None:
        self.emit(rejected_message(event))

    def on_notice(self, text: str) -> None:
        self.emit(("error", text))


async def serve(config: Config, stats_every: float = STATS_EVERY,
                record: str | None = None) -> int:
    parent = die_with_parent()
    if parent is None:
        print("engine-worker: the process that started it has already exited", file=sys.stderr)
        return 1
    # A UI that stops reading (its terminal frozen on a stalled SSH link) must
    # not stall the probes: above 4 MiB waiting, results are dropped and counted.
    out = await open_stdout(Outbox(pack, limit=4 << 20))
    emit = out.emit
    sinks: list[Sink] = [WireSink(emit)]
    if record:
        try:
            sinks.append(RecordSink(await open_recorder(record, lambda text: emit(("error", text)))))
        except OSError as exc:
            emit(("error", f"--record {record}: {exc.strerror or exc}"))
    from monitor.alerts import AlertSink   # DOWN wakes someone; each outcome to the UI
    sinks.append(AlertSink(config, lambda delivery: emit(alert_message(delivery))))
    # the UI keeps the history it shows; a hangup (the terminal closed) stops us
    from monitor.appstate import apply_pauses   # (main applied them to `config` already)
    host = EngineHost(config, sinks, keep_history=False, adjust=apply_pauses, watch=True)
    try:
        history = open_history(config, "monitor (dashboard)", host.sinks.on_notice)
    except HistoryRefused as exc:   # e.g. a service runs this config: the board is live, unkept
        emit(("error", f"history not written: {exc}"))
        history = None
    if history is not None:
        host.sinks.add(history)
    host.sinks.add(MetricsSink(host))   # /metrics, when [settings] metrics asks
    await host.start()
    emit(("ready",))
    # the config this engine runs: a restarted engine read the file anew, and
    # the UI's board must follow what it reads
    emit(reload_message(ConfigReloaded(datetime.now(UTC), source="start",
                                       config_text=config.source)))
    stopped = asyncio.create_task(host.wait())
    # Each of these runs for the worker's whole life: whichever ends first,
    # normally or not, ends the worker (never an engine probing on with no
    # one able to stop it).
    tasks = {
        asyncio.create_task(_commands(host, emit)): "reading commands",
        asyncio.create_task(_watch_parent(parent)): "watching the parent process",
        asyncio.create_task(report_stats(host.engine, stats_every,
                                         lambda s: emit(_stats_message(s, out.dropped)))):
            "reporting statistics",
    }
    try:
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (stopped, *tasks):
            task.cancel()
        await host.close()
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


async def _commands(host: EngineHost, emit: Any) -> None:
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
            elif _obey(host, emit, line):
                return
    # end of input: the UI is gone


def _obey(host: EngineHost, emit: Any, line: bytes) -> bool:
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
            getattr(host.engine, action)(name)
        except (KeyError, TypeError):   # a name no target has (or not a name at all)
            shown = name[:60] + "…" if isinstance(name, str) and len(name) > 60 else name
            emit(("error", f"{action}: no target named {shown!r}"))
    elif action == "reload":   # the answer is a reload or config_rejected message
        host.reload_soon("command")
    else:
        emit(("error", f"unknown command {str(action)[:40]!r}"))
    return False
