"""Command line: check, validate, run --headless, init, demo (and the dashboard)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from importlib import resources
from pathlib import Path
from typing import Any

from monitor import __version__
from monitor.config import Config, ConfigError, load_config
from monitor.config.lookup import candidates, find_config

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2


HEADLESS_STATS_EVERY = 10.0   # seconds between `run --headless --json` stats events


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor", description="A terminal uptime monitor.",
        epilog="With no command, opens the dashboard.")
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    parser.add_argument("-c", "--config", help="config file (default: $MONITOR_CONFIG, "
                        "./monitor.toml, then ~/.config/monitor/config.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    parser.add_argument("--refresh", type=float, default=0.5, metavar="SECONDS",
                        help="dashboard redraw interval (default 0.5; raise it on slow links)")
    dashboard = sub.add_parser("dashboard", help="the full-screen dashboard (the default)")
    _config_arg(dashboard)
    dashboard.add_argument("--refresh", type=float, default=None, metavar="SECONDS",
                           dest="sub_refresh", help="redraw interval (default 0.5)")
    parser.add_argument("--record", metavar="FILE",
                        help="dashboard: also append every result to FILE as JSON lines")
    parser.add_argument("--ui-nice", type=int, default=19, metavar="N",
                        help="dashboard: scheduling niceness of the screen's process, so "
                             "rendering never delays a measurement (default 19; 0 keeps "
                             "it at the engine's priority)")

    check = sub.add_parser("check", help="probe every target once and exit 0 if all are up")
    _config_arg(check)
    check.add_argument("--json", action="store_true", help="one JSON object per target per line")
    check.add_argument("-t", "--target", action="append", metavar="NAME",
                       help="only this target (repeatable)")

    validate = sub.add_parser("validate", help="check the config file and exit 0 or 2")
    _config_arg(validate)

    run = sub.add_parser("run", help="probe forever and log state changes")
    _config_arg(run)
    run.add_argument("--headless", action="store_true", help="no dashboard (required)")
    run.add_argument("--json", action="store_true",
                     help="JSON lines: every result and every transition")
    run.add_argument("--stats-every", type=float, default=HEADLESS_STATS_EVERY, metavar="SECONDS",
                     help="with --json: a stats event this often (default 10; 0 = none)")
    run.add_argument("--record", dest="sub_record", metavar="FILE",
                     help="also append every result to FILE as JSON lines")

    alert = sub.add_parser("alert", help="alert channels: `alert test [CHANNEL ...]` sends a test")
    _config_arg(alert)
    alert.add_argument("action", choices=["test"], help="test: send a test notification")
    alert.add_argument("channel", nargs="*", help="only these channels (default: all)")

    init = sub.add_parser("init", help="write a commented starter config")
    init.add_argument("path", nargs="?", default="monitor.toml")

    kinds = sub.add_parser("kinds", help="list probe kinds and their config keys")
    kinds.add_argument("kind", nargs="?", help="only this kind")

    demo = sub.add_parser("demo", help="serve the loopback demo targets")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8917)

    worker = sub.add_parser("engine-worker")
    # internal (the dashboard's engine process): keep it out of --help
    sub._choices_actions = [a for a in sub._choices_actions if a.dest != "engine-worker"]
    _config_arg(worker)
    worker.add_argument("--record", dest="sub_record", help=argparse.SUPPRESS)
    return parser


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", dest="sub_config", metavar="FILE",
                        help="config file")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_arg = getattr(args, "sub_config", None) or args.config
    command = args.command or "dashboard"
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
        if command == "alert":
            from monitor.alerts.cli import cmd_alert_test
            return run_async(cmd_alert_test(config, args.channel))
        if command == "engine-worker":
            from monitor.engine.worker import serve
            return run_async(serve(config, record=args.sub_record))
        if command == "run":
            if not args.headless:
                print("monitor: `run` probes without a screen: add --headless "
                      "(or run `monitor` for the dashboard)", file=sys.stderr)
                return EXIT_CONFIG
            from monitor.headless import cmd_run
            return cmd_run(config, args.json, args.sub_record, args.stats_every)
        refresh = getattr(args, "sub_refresh", None) or args.refresh
        return cmd_dashboard(config, refresh, args.record, args.ui_nice)
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


async def cmd_check(config: Config, as_json: bool, names: list[str] | None) -> int:
    from monitor.engine.host import DemoUnavailable, EngineHost
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

    host = EngineHost(config)
    for notice in host.engine.notices:
        print(f"monitor: {notice}", file=sys.stderr)
    try:
        results = await host.check_once(names)
    except DemoUnavailable as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if as_json:
        for result in results:
            print(json_line(result.to_json()))
    else:
        print(result_table(results, colour=use_colour(sys.stdout)))
        print(summary_line(results))
    return EXIT_OK if all(r.ok for r in results) else EXIT_PROBLEM


def cmd_dashboard(config: Config, refresh: float, record: str | None = None,
                  ui_nice: int = 19) -> int:
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
