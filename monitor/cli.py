"""Command line: check, validate, run --headless, init, demo (and the dashboard)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from importlib import resources
from pathlib import Path
from typing import Any

from monitor.cli_options import (DEFAULT_REFRESH, DEFAULT_UI_NICE, HEADLESS_STATS_EVERY,
                                 build_parser, refuse_misplaced)
from monitor.config import Config, ConfigError, load_config
from monitor.config.lookup import candidates, find_config

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    refuse_misplaced(parser, args)
    options = vars(args)
    config_arg = options.get("file") or options.get("config")
    command = args.command or "dashboard"
    record = options.get("record")
    try:
        if command == "init":
            return cmd_init(Path(args.path))
        if command == "kinds":
            return cmd_kinds(args.kind)
        if command == "demo":
            return run_async(cmd_demo(args.host, args.port))
        config = load(config_arg)
        if command == "validate":
            count = len(config.targets)
            print(f"{config.path}: ok ({count} target{'s' if count != 1 else ''})")
            return EXIT_OK
        if command == "check":
            return run_async(cmd_check(config, args.json, args.target))
        if command == "run" and args.headless:
            return cmd_run(config, options.get("json", False), record,
                           options.get("stats_every", HEADLESS_STATS_EVERY))
        # The dashboard and its engine start from the app's remembered pauses
        from monitor.appstate import apply_pauses
        config = apply_pauses(config)
        if command == "engine-worker":
            from monitor.engine.worker import serve
            return run_async(serve(config, record=record))
        # `monitor`, `monitor dashboard` and `monitor run` without --headless
        return cmd_dashboard(config, options.get("refresh", DEFAULT_REFRESH), record,
                             options.get("ui_nice", DEFAULT_UI_NICE))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        count = len(exc.problems)
        if count > 1:
            print(f"{count} problems in the config.", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def load(explicit: str | None) -> Config:
    path = find_config(explicit)
    if path is None:
        from monitor.config.load import Problem
        looked = ", ".join(f"{p} ({source})" for source, p in candidates(None))
        raise ConfigError([Problem("monitor", 0, "", f"no config file found; looked for {looked}. "
                                   "Create one with `monitor init` or pass --config FILE.")])
    return load_config(path)


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when installed: it cuts per-probe CPU and tail latency."""
    try:
        import uvloop
        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


async def _with_demo(config: Config, body: Callable[[], Awaitable[int]]) -> int:
    """Run `body` with the config's demo server up: started here, or the one
    already serving that port (a dashboard open on the same config)."""
    if not config.demo.enabled:
        return await body()
    from monitor.demo import start_or_share
    server, note = await start_or_share(config.demo.host, config.demo.port)
    if note is not None:
        _say(f"monitor: {note}")
    try:
        return await body()
    finally:
        if server is not None:
            await server.stop()


async def cmd_check(config: Config, as_json: bool, names: list[str] | None) -> int:
    from monitor.engine.scheduler import Engine
    from monitor.output import json_line, result_table, summary_line, use_colour

    if names:
        known = {t.name for t in config.targets}
        unknown = [n for n in names if n not in known]
        if unknown:
            from monitor.config.fields import did_you_mean
            from monitor.config.load import Problem
            raise ConfigError([Problem(str(config.path), 0, "--target",
                                       f"no target named {n!r}{did_you_mean(n, sorted(known))}")
                               for n in unknown])

    async def body() -> int:
        engine = Engine(config)
        for notice in engine.notices:
            print(f"monitor: {notice}", file=sys.stderr)
        try:
            results = await engine.check_once(names)
        finally:
            await engine.close()
        if as_json:
            for result in results:
                print(json_line(result.to_json()))
        else:
            print(result_table(results, colour=use_colour(sys.stdout)))
            print(summary_line(results))
        return EXIT_OK if all(r.ok for r in results) else EXIT_PROBLEM

    return await _with_demo(config, body)


BEHIND_CHECK_EVERY = 2.0      # seconds between text mode's looks at whether it is behind
# A reader that stalls gets this much output held for it, then results are
# dropped (and counted in the stream); about 2 s of results at 1,000 probes/s,
# hours at a typical rate. State changes are held up to HEADLESS_HARD_LIMIT.
HEADLESS_LIMIT = 1 << 20
HEADLESS_HARD_LIMIT = 8 << 20


def cmd_run(config: Config, as_json: bool, record: str | None = None,
            stats_every: float = HEADLESS_STATS_EVERY) -> int:
    if not 0 <= stats_every <= 86400:   # NaN fails this too
        _say("monitor: --stats-every must be between 0 (none) and 86400 seconds")
        return EXIT_CONFIG
    try:
        os.fstat(1)
    except OSError:   # checked before the event loop opens files that would take number 1
        _say("monitor: stdout is closed; for no output, send it to /dev/null")
        return EXIT_PROBLEM
    return run_async(_run_headless(config, as_json, record, stats_every))


async def _run_headless(config: Config, as_json: bool, record: str | None,
                        stats_every: float) -> int:
    from monitor.engine.outbox import Outbox, open_stdout
    from monitor.engine.record import open_recorder
    from monitor.engine.scheduler import Engine
    from monitor.engine.client import report_stats
    from monitor.engine.heap import settle as settle_heap
    from monitor.engine.pacing import BehindWatch
    from monitor.output import (behind_line, dropped_event, dropped_line, encode_lines,
                                json_line, on_schedule_line, result_line, stats_event,
                                transition_line, use_colour)

    colour = sys.stdout is not None and use_colour(sys.stdout)
    stop = asyncio.Event()
    stdout_lost: list[BaseException | None] = []

    def reader_gone(exc: BaseException | None) -> None:
        stdout_lost.append(exc)
        stop.set()

    out: Outbox[str] = Outbox(encode_lines, limit=HEADLESS_LIMIT, hard_limit=HEADLESS_HARD_LIMIT,
                              gap_note=dropped_event if as_json else dropped_line,
                              on_lost=reader_gone)
    try:
        await open_stdout(out)
    except OSError as exc:
        _say(f"monitor: cannot write to stdout: {exc.strerror or exc}")
        return EXIT_PROBLEM
    recording: Outbox[str] | None = None
    if record:
        try:
            recording = await open_recorder(record, lambda text: _say(f"monitor: {text}"))
        except OSError as exc:
            _say(f"monitor: --record {record}: {exc.strerror or exc}")
            await out.close()
            return EXIT_CONFIG

    def on_result(result: Any) -> None:
        line = result_line(result)
        if as_json:
            out.emit(line, droppable=True)
        if recording is not None:
            recording.emit(line, droppable=True)

    def on_transition(transition: Any) -> None:
        out.emit(json_line(transition.to_json()) if as_json
                 else transition_line(transition, colour))

    async def body() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        wants_results = as_json or recording is not None
        # Nothing headless reads the rolling history ([settings] history samples per
        # target): at 1,000 targets with history = 1000 it holds 25.5 MiB once full,
        # 1.0 MiB without (tracemalloc), for no one.
        engine = Engine(config, on_result=on_result if wants_results else None,
                        on_transition=on_transition,
                        on_notice=lambda text: _say(f"monitor: {text}"), keep_history=False)
        if not as_json:
            _say(f"monitor: probing {len(config.targets)} targets from {config.path}; "
                 "Ctrl-C to stop")
        await engine.start()
        settle_heap()
        watch = BehindWatch()

        def on_stats(stats: Any) -> None:
            out.emit(stats_event(stats, len(asyncio.all_tasks()), out.dropped,
                                 engine.out_of_files))

        def on_behind(stats: Any) -> None:   # text mode: a line when it starts and stops
            news = watch.update(stats.behind_s, loop.time())
            if news is not None:
                _say(behind_line(stats, engine.concurrency) if news else on_schedule_line())

        if as_json:
            reporter = (asyncio.create_task(report_stats(engine, stats_every, on_stats))
                        if stats_every > 0 else None)
        else:
            reporter = asyncio.create_task(report_stats(engine, BEHIND_CHECK_EVERY, on_behind))
        try:
            await stop.wait()
        finally:
            if reporter is not None:
                reporter.cancel()
            await engine.stop()
        return EXIT_OK

    try:
        code = await _with_demo(config, body)
    finally:
        if recording is not None:
            await recording.close()
        await out.close()
    return _stdout_gone(stdout_lost[0]) if stdout_lost else code


def _stdout_gone(exc: BaseException | None) -> int:
    """How `run --headless` ends when its stdout can take no more."""
    # Nothing may fail on the way out either: Python flushes stdout at exit
    # (the Python docs' advice for SIGPIPE).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    if exc is None or isinstance(exc, (BrokenPipeError, ConnectionResetError)):
        return EXIT_OK   # the reader left, as `head -1` does: a quiet end, like `yes | head -1`
    _say(f"monitor: cannot write to stdout: {getattr(exc, 'strerror', None) or exc}")
    return EXIT_PROBLEM


def _say(text: str) -> None:
    """A line on stderr, which may be the same closed pipe as stdout."""
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:
        pass


def cmd_dashboard(config: Config, refresh: float, record: str | None = None,
                  ui_nice: int = DEFAULT_UI_NICE) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("monitor: the dashboard needs a terminal; for logs or pipes use "
              "`monitor run --headless [--json]`", file=sys.stderr)
        return EXIT_CONFIG
    if not 0.05 <= refresh <= 10:
        print("monitor: --refresh must be between 0.05 and 10 seconds", file=sys.stderr)
        return EXIT_CONFIG
    if not 0 <= ui_nice <= 19:
        print("monitor: --ui-nice must be between 0 and 19", file=sys.stderr)
        return EXIT_CONFIG
    from monitor.engine.client import ProcessEngine
    from monitor.ui.app import MonitorApp
    assert config.path is not None
    path = config.path

    def engine(listener: Any) -> Any:
        return ProcessEngine(path, listener, record=str(Path(record).resolve()) if record else None)

    from monitor.engine.heap import settle
    app = MonitorApp(config, engine, refresh=refresh, ui_nice=ui_nice, settle_heap=settle)
    code = app.run()
    return code or EXIT_OK


def cmd_kinds(only: str | None) -> int:
    from monitor.config.fields import describe_options
    from monitor.config.fields import did_you_mean
    from monitor.config.model import DemoSettings, Settings, TargetCommon
    from monitor.probes.registry import kinds, probe_class

    if only is not None and only not in kinds():
        print(f"monitor: unknown kind {only!r}{did_you_mean(only, kinds())}; "
              f"kinds: {', '.join(kinds())}", file=sys.stderr)
        return EXIT_CONFIG
    sections = [("[settings]", Settings), ("[demo]", DemoSettings),
                ("[[targets]] (every kind)", TargetCommon)] if only is None else []
    sections += [(f"kind = \"{k}\"", probe_class(k).Options) for k in kinds()
                 if only is None or k == only]
    for title, cls in sections:
        print(title)
        for name, default, doc in describe_options(cls):
            print(f"  {name:20} {default:14} {doc}".rstrip())
        print()
    return EXIT_OK


def cmd_init(path: Path) -> int:
    if path.exists():
        print(f"monitor: {path} already exists; not overwriting it", file=sys.stderr)
        return EXIT_CONFIG
    text = resources.files("monitor").joinpath("starter.toml").read_text(encoding="utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        print(f"monitor: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"wrote {path}; edit it, then run: monitor --config {path}")
    return EXIT_OK


async def cmd_demo(host: str, port: int) -> int:
    from monitor.demo import ENDPOINTS, DemoServer
    server = DemoServer(host, port)
    try:
        await server.start()
    except OSError as exc:
        print(f"monitor: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"demo server on http://{host}:{server.port}/ (Ctrl-C to stop)")
    for path, what in ENDPOINTS.items():
        print(f"  {path:10} {what}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return EXIT_OK
