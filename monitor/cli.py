"""Command line: check, validate, run --headless, init, demo (and the dashboard)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
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
        if command == "status":
            from monitor.output import use_colour
            from monitor.service.status import cmd_status
            return run_async(cmd_status(config_path(config_arg), options.get("json", False),
                                        use_colour(sys.stdout)))
        dashboard = command == "dashboard" or (command == "run" and not args.headless)
        if dashboard and not options.get("standalone"):
            attached = attach_dashboard(config_arg, options)
            if attached is not None:
                return attached
        if command in ("serve", "check", "engine-worker") or (command == "run" and args.headless):
            from monitor.engine.heap import collect_as_a_prober
            collect_as_a_prober()   # before the config is read (engine/heap.py)
        if command in ("history", "report"):   # read-only; --db needs no config
            from monitor.store import cli_commands
            history_command = (cli_commands.cmd_history if command == "history"
                               else cli_commands.cmd_report)
            return history_command(args, lambda: load(config_arg))
        config = load(config_arg)
        if command == "validate":
            count = len(config.targets)
            print(f"{config.path}: ok ({count} target{'s' if count != 1 else ''})")
            return EXIT_OK
        if command == "check":
            return run_async(cmd_check(config, args.json, args.target))
        if command == "alert":
            from monitor.alerts.cli import cmd_alert_test
            return run_async(cmd_alert_test(config, args.channel))
        if command == "serve" or (command == "run" and args.headless):
            from monitor.headless import cmd_run
            return cmd_run(config, options.get("json", False), record,
                           options.get("stats_every", HEADLESS_STATS_EVERY),
                           listen=not options.get("standalone"))
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
    except BrokenPipeError:
        # the reader left (`monitor status | head -1`): a quiet end, as `yes | head -1`
        from monitor.output import silence_stdout
        silence_stdout()
        return EXIT_OK


def config_path(explicit: str | None) -> Path:
    """The config file's path, found as `load` finds it. Raises ConfigError."""
    path = find_config(explicit)
    if path is None:
        from monitor.config.load import Problem
        looked = ", ".join(f"{p} ({source})" for source, p in candidates(None))
        raise ConfigError([Problem("monitor", 0, "", f"no config file found; looked for {looked}. "
                                   "Create one with `monitor init` or pass --config FILE.")])
    return path


def load(explicit: str | None) -> Config:
    return load_config(config_path(explicit))


def attach_dashboard(config_arg: str | None, options: dict[str, Any]) -> int | None:
    """The dashboard on the service probing this config, if one answers:
    the exit status; None when there is no service (the caller then runs
    the dashboard on its own engine, as without one)."""
    from monitor.service.status import (NoService, ServiceUnusable, fetch_snapshot,
                                         service_config)
    path = config_path(config_arg)
    try:
        snapshot = run_async(fetch_snapshot(path))   # type: ignore[arg-type]
    except ServiceUnusable as exc:   # never quietly probe a second time beside it
        print(f"monitor: {exc}\nmonitor: run as the service's user or root, or add "
              "--standalone for a dashboard with its own engine", file=sys.stderr)
        return EXIT_CONFIG
    except NoService:
        return None
    if options.get("record"):
        print("monitor: --record needs the dashboard's own engine: add --standalone, or give "
              "the service --record", file=sys.stderr)
        return EXIT_CONFIG
    config = service_config(snapshot)   # what the service runs, not the file as it is now
    from monitor.service.paths import find_socket
    from monitor.service.viewer import SocketEngine
    socket_path = find_socket(path)
    assert socket_path is not None
    return cmd_dashboard(config, options.get("refresh", DEFAULT_REFRESH),
                         ui_nice=options.get("ui_nice", DEFAULT_UI_NICE),
                         engine=lambda listener: SocketEngine(socket_path, listener))


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when installed: it cuts per-probe CPU and tail latency."""
    try:
        import uvloop
        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


async def cmd_check(config: Config, as_json: bool, names: list[str] | None) -> int:
    from monitor.engine.host import EngineHost
    from monitor.engine.sinks import CallbackSink
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

    host = EngineHost(config, [CallbackSink(on_notice=lambda text: print(
        f"monitor: {text}", file=sys.stderr))])
    for notice in host.engine.notices:
        print(f"monitor: {notice}", file=sys.stderr)
    results = await host.check_once(names)
    if as_json:
        for result in results:
            print(json_line(result.to_json()))
    else:
        print(result_table(results, colour=use_colour(sys.stdout)))
        print(summary_line(results))
    return EXIT_OK if all(r.ok for r in results) else EXIT_PROBLEM


def cmd_dashboard(config: Config, refresh: float, record: str | None = None,
                  ui_nice: int = DEFAULT_UI_NICE, engine: Callable[[Any], Any] | None = None) -> int:
    """`engine`: the dashboard's engine client (default: its own engine process)."""
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

    def own_engine(listener: Any) -> Any:
        return ProcessEngine(path, listener, record=str(Path(record).resolve()) if record else None)

    from monitor.engine.heap import settle
    app = MonitorApp(config, engine or own_engine, refresh=refresh, ui_nice=ui_nice,
                     settle_heap=settle)
    code = app.run()
    return _past_stuck_threads(code or EXIT_OK)


def _past_stuck_threads(code: int) -> int:
    """The dashboard has ended; end the process too. Quitting while the
    terminal goes away (q, then the SSH session or tmux closes) can leave
    Textual's input thread spinning on the dead terminal forever, and Python
    waits for it at exit: a process at 75 % of a core, with no screen. What
    is still running a moment after the app ended is not waited for."""
    import threading
    main = threading.main_thread()
    left = [t for t in threading.enumerate() if t is not main and not t.daemon]
    for thread in left:
        thread.join(timeout=1.0)
    if any(thread.is_alive() for thread in left):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    return code


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
