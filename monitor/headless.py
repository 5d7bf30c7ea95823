"""`monitor run --headless`: the engine with its events written to stdout.

Text mode writes state changes and reloads (a log a person reads, or
journald); `--json` writes every event as a JSON line (results, transitions,
reloads, config problems, stats, the monitor's start and stop). SIGHUP
reloads the config, as `systemctl reload` asks a service to; SIGINT and
SIGTERM stop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from monitor.alerts import AlertSink, Delivery
from monitor.config import Config
from monitor.engine.client import report_stats
from monitor.engine.host import EngineHost
from monitor.engine.outbox import Outbox, open_stdout
from monitor.engine.pacing import BehindWatch
from monitor.engine.record import RecordSink, open_recorder
from monitor.engine.result import ProbeResult
from monitor.engine.sinks import ConfigRejected, ConfigReloaded, MonitorStarted, MonitorStopped, Sink
from monitor.engine.state import Transition
from monitor.store.sink import HistoryRefused, open_history
from monitor.service.server import ServiceBusy, open_service
from monitor.export import MetricsSink
from monitor.output import (behind_line, dropped_event, dropped_line, encode_lines, json_line,
                            on_schedule_line, reload_line, result_line, silence_stdout,
                            stats_event, transition_line, use_colour)

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2
BEHIND_CHECK_EVERY = 2.0      # seconds between text mode's looks at whether it is behind
# A reader that stalls gets this much output held for it, then results are
# dropped (and counted in the stream); about 2 s of results at 1,000 probes/s,
# hours at a typical rate. State changes are held up to HEADLESS_HARD_LIMIT.
HEADLESS_LIMIT = 1 << 20
HEADLESS_HARD_LIMIT = 8 << 20


def say(text: str) -> None:
    """A line on stderr, which may be the same closed pipe as stdout."""
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:
        pass


class HeadlessPrinter(Sink):
    """The engine's events on stdout (`out`), notices and problems on stderr."""

    def __init__(self, out: Outbox[str], as_json: bool, colour: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.colour = colour
        if as_json:   # text mode prints no results: the engine then skips the call
            self.on_result = self._print_result   # type: ignore[method-assign]

    def on_start(self, event: MonitorStarted) -> None:
        if self.as_json:
            self.out.emit(json_line(event.to_json()))
        else:
            say(f"monitor: probing {event.targets} targets from {event.config_path}; "
                "Ctrl-C to stop, SIGHUP to reload the config")

    def _print_result(self, result: ProbeResult) -> None:
        self.out.emit(result_line(result), droppable=True)

    def on_transition(self, transition: Transition) -> None:
        self.out.emit(json_line(transition.to_json()) if self.as_json
                      else transition_line(transition, self.colour))

    def on_reload(self, event: ConfigReloaded) -> None:
        self.out.emit(json_line(event.to_json()) if self.as_json else reload_line(event))

    def on_config_rejected(self, event: ConfigRejected) -> None:
        if self.as_json:
            self.out.emit(json_line(event.to_json()))
        say(f"monitor: config not reloaded ({len(event.problems)} problem"
            f"{'s' if len(event.problems) != 1 else ''}); still running the last good one:")
        for problem in event.problems:
            say(problem)

    def on_notice(self, text: str) -> None:
        say(f"monitor: {text}")

    def on_stop(self, event: MonitorStopped) -> None:
        if self.as_json:
            self.out.emit(json_line(event.to_json()))

    async def aclose(self) -> None:
        await self.out.close()


def cmd_run(config: Config, as_json: bool, record: str | None, stats_every: float,
            listen: bool = True) -> int:
    from monitor.cli import run_async
    if not 0 <= stats_every <= 86400:   # NaN fails this too
        say("monitor: --stats-every must be between 0 (none) and 86400 seconds")
        return EXIT_CONFIG
    try:
        os.fstat(1)
    except OSError:   # checked before the event loop opens files that would take number 1
        say("monitor: stdout is closed; for no output, send it to /dev/null")
        return EXIT_PROBLEM
    return run_async(run_headless(config, as_json, record, stats_every, listen))


async def run_headless(config: Config, as_json: bool, record: str | None,
                       stats_every: float, listen: bool = False) -> int:
    colour = sys.stdout is not None and use_colour(sys.stdout)
    stdout_lost: list[BaseException | None] = []
    host: EngineHost | None = None

    def reader_gone(exc: BaseException | None) -> None:
        stdout_lost.append(exc)
        if host is not None:
            host.stop_soon()

    out: Outbox[str] = Outbox(encode_lines, limit=HEADLESS_LIMIT, hard_limit=HEADLESS_HARD_LIMIT,
                              gap_note=dropped_event if as_json else dropped_line,
                              on_lost=reader_gone)
    try:
        await open_stdout(out)
    except OSError as exc:
        say(f"monitor: cannot write to stdout: {exc.strerror or exc}")
        return EXIT_PROBLEM
    sinks: list[Sink] = [HeadlessPrinter(out, as_json, colour)]
    if record:
        try:
            sinks.append(RecordSink(await open_recorder(record, lambda text: say(f"monitor: {text}"))))
        except OSError as exc:
            say(f"monitor: --record {record}: {exc.strerror or exc}")
            await out.close()
            return EXIT_CONFIG
    try:   # the service: dashboards attach to it (monitor/service/)
        service = open_service(config.path, say) if listen else None
    except ServiceBusy as exc:
        say(f"monitor: {exc}; attach with `monitor --config {config.path}`, "
            "or add --standalone to probe on its own")
        for sink in sinks:
            await sink.aclose()
        return EXIT_CONFIG
    if service is not None:
        sinks.append(service)

    def on_alert(delivery: Delivery) -> None:   # each outcome: stdout with --json, else stderr
        if as_json:
            out.emit(json_line(delivery.to_json()))
        else:
            say(f"monitor: {delivery.text()}")
        if service is not None:
            service.on_alert(delivery)
    sinks.append(AlertSink(config, on_alert))
    # Without viewers nothing headless reads the rolling history ([settings] history
    # samples per target): at 1,000 targets with history = 1000 it holds 25.5 MiB once
    # full, 1.0 MiB without (tracemalloc), for no one.
    host = EngineHost(config, sinks, keep_history=service is not None,
                      stop_on=(signal.SIGINT, signal.SIGTERM), reload_on=(signal.SIGHUP,),
                      watch=True)
    host.sinks.add(MetricsSink(host))   # /metrics, when [settings] metrics asks
    try:
        history = open_history(config, "monitor run --headless", host.sinks.on_notice)
    except HistoryRefused as exc:
        if listen:   # two services on one config would probe everything twice
            say(f"monitor: {exc}")
            await host.sinks.aclose()
            return EXIT_CONFIG
        # --standalone: asked to probe beside the writer; its results are not kept
        say(f"monitor: history not written: {exc}")
        history = None
    if history is not None:
        host.sinks.add(history)
    await host.start()
    if service is not None:
        await service.listen(host)
    try:
        reporter = _start_reporting(host, out, as_json, stats_every)
        try:
            await host.wait()
        finally:
            if reporter is not None:
                reporter.cancel()
    finally:
        await host.close()   # flushes every sink
    return _stdout_gone(stdout_lost[0]) if stdout_lost else EXIT_OK


def _start_reporting(host: EngineHost, out: Outbox[str], as_json: bool,
                     stats_every: float) -> asyncio.Task[None] | None:
    engine = host.engine
    loop = asyncio.get_running_loop()
    if as_json:
        if stats_every <= 0:
            return None

        def on_stats(stats: Any) -> None:
            out.emit(stats_event(stats, len(asyncio.all_tasks()), out.dropped,
                                 engine.out_of_files))
        return asyncio.create_task(report_stats(engine, stats_every, on_stats))
    watch = BehindWatch()

    def on_behind(stats: Any) -> None:   # text mode: a line when it starts and stops
        news = watch.update(stats.behind_s, loop.time())
        if news is not None:
            say(behind_line(stats, engine.concurrency) if news else on_schedule_line())
    return asyncio.create_task(report_stats(engine, BEHIND_CHECK_EVERY, on_behind))


def _stdout_gone(exc: BaseException | None) -> int:
    """How `run --headless` ends when its stdout can take no more."""
    silence_stdout()
    if exc is None or isinstance(exc, (BrokenPipeError, ConnectionResetError)):
        return EXIT_OK   # the reader left, as `head -1` does: a quiet end, like `yes | head -1`
    say(f"monitor: cannot write to stdout: {getattr(exc, 'strerror', None) or exc}")
    return EXIT_PROBLEM
