"""The command line's grammar: commands, their options, and where options
may go (before the command or after it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor import __version__

DEFAULT_REFRESH = 0.5         # seconds between dashboard redraws
DEFAULT_UI_NICE = 19          # the screen's niceness: rendering yields to measuring
HEADLESS_STATS_EVERY = 10.0   # seconds between `--json` stats events


def build_parser() -> argparse.ArgumentParser:
    """Options go where users put them: `--config` and the dashboard's options
    are accepted before the command and after it (`monitor --record F` and
    `monitor dashboard --record F`). Every option defaults to "not given"
    (SUPPRESS), so one given before the command survives the command's own
    parse, and `main` can tell an option given to a command it does not apply
    to, and say so."""
    parser = argparse.ArgumentParser(
        prog="monitor", description="A terminal uptime monitor.",
        epilog="With no command, opens the dashboard. Options may come before or after "
               "the command.")
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    _config_option(parser)
    _dashboard_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    dashboard = sub.add_parser("dashboard", help="the full-screen dashboard (the default)")
    _config_option(dashboard)
    _dashboard_options(dashboard)

    check = sub.add_parser("check", help="probe every target once and exit 0 if all are up")
    _config_option(check)
    check.add_argument("--json", action="store_true", help="one JSON object per target per line")
    check.add_argument("-t", "--target", action="append", metavar="NAME",
                       help="only this target (repeatable)")

    validate = sub.add_parser("validate", help="check the config file and exit 0 or 2")
    _config_option(validate)
    validate.add_argument("file", nargs="?", metavar="FILE", default=argparse.SUPPRESS,
                          help="the config file (the same as --config)")

    run = sub.add_parser("run", help="probe forever: the dashboard, or with --headless "
                                     "log state changes (for services and pipes)")
    _config_option(run)
    run.add_argument("--headless", action="store_true",
                     help="no dashboard: log state changes (or JSON lines) to stdout")
    run.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                     help="with --headless: JSON lines, every result and every transition")
    run.add_argument("--stats-every", type=float, metavar="SECONDS", default=argparse.SUPPRESS,
                     help="with --headless --json: a stats event this often "
                          f"(default {HEADLESS_STATS_EVERY:g}; 0 = none)")
    _dashboard_options(run)

    serve = sub.add_parser("serve", help="the service: run --headless, which dashboards "
                                         "attach to (`monitor` on the same config)")
    _config_option(serve)
    serve.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="JSON lines: every result and every transition")
    serve.add_argument("--stats-every", type=float, metavar="SECONDS", default=argparse.SUPPRESS,
                       help="with --json: a stats event this often "
                            f"(default {HEADLESS_STATS_EVERY:g}; 0 = none)")
    serve.add_argument("--record", metavar="FILE", default=argparse.SUPPRESS,
                       help="also append every result to FILE as JSON lines")

    status = sub.add_parser("status", help="the running service's board, once: exit 0 all "
                                           "up, 1 any degraded/down, 3 no service")
    _config_option(status)
    status.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="one JSON object per target per line")

    alert = sub.add_parser("alert", help="alert channels: `alert test [CHANNEL ...]` sends a test")
    _config_option(alert)
    alert.add_argument("action", choices=["test"], help="test: send a test notification")
    alert.add_argument("channel", nargs="*", help="only these channels (default: all)")

    init = sub.add_parser("init", help="write a commented starter config")
    init.add_argument("path", nargs="?", default="monitor.toml")

    kinds = sub.add_parser("kinds", help="list probe kinds and their config keys")
    kinds.add_argument("kind", nargs="?", help="only this kind")

    demo = sub.add_parser("demo", help="serve the loopback demo targets")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8917)

    from monitor.store.cli_commands import add_arguments as add_history_commands
    add_history_commands(sub, _config_option)   # history NAME, report

    worker = sub.add_parser("engine-worker")
    # internal (the dashboard's engine process): keep it out of --help
    sub._choices_actions = [a for a in sub._choices_actions if a.dest != "engine-worker"]
    _config_option(worker)
    worker.add_argument("--record", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="config file (default: $MONITOR_CONFIG, ./monitor.toml, then "
                             "config.toml in the user config dir)")


def _dashboard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--refresh", type=float, metavar="SECONDS", default=argparse.SUPPRESS,
                        help="dashboard redraw interval (default 0.5; raise it on slow links)")
    parser.add_argument("--record", metavar="FILE", default=argparse.SUPPRESS,
                        help="also append every result to FILE as JSON lines")
    parser.add_argument("--ui-nice", type=int, metavar="N", default=argparse.SUPPRESS,
                        help="dashboard: scheduling niceness of the screen's process, so "
                             "rendering never delays a measurement (default 19; 0 keeps "
                             "it at the engine's priority)")
    parser.add_argument("--standalone", action="store_true", default=argparse.SUPPRESS,
                        help="its own engine even when a service probes this config "
                             "(the dashboard attaches to it by default; run --headless "
                             "then serves no dashboards)")


# Which commands each option means something to; `run` is the dashboard unless --headless.
_APPLIES = {
    "config": {"dashboard", "check", "validate", "run", "run --headless", "engine-worker",
               "history", "report", "serve", "status", "alert"},
    "record": {"dashboard", "run", "run --headless", "engine-worker", "serve"},
    "standalone": {"dashboard", "run", "run --headless"},
    "refresh": {"dashboard", "run"},
    "ui_nice": {"dashboard", "run"},
    "json": {"check", "run --headless", "serve", "status"},
    "stats_every": {"run --headless", "serve"},
}


def _mode(args: argparse.Namespace) -> str:
    command = args.command or "dashboard"
    return "run --headless" if command == "run" and args.headless else command


def refuse_misplaced(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An option given to a command it means nothing to is an error, not
    silently ignored (`monitor --refresh 1 check`, `monitor run --json`)."""
    mode, given = _mode(args), vars(args)
    if mode == "run" and ("json" in given or "stats_every" in given):
        parser.error("--json and --stats-every need --headless (`monitor run --headless "
                     "--json`); without --headless, `run` opens the dashboard")
    for dest, modes in _APPLIES.items():
        if dest in given and mode not in modes:
            option = "--" + dest.replace("_", "-")
            where = ", ".join(f"`{m}`" for m in sorted(modes) if m != "engine-worker")
            parser.error(f"{option} is not an option of `{mode}` (only of {where})")
    if "file" in given and "config" in given and Path(args.file) != Path(args.config):
        parser.error(f"two config files given: {args.file} and --config {args.config}")
