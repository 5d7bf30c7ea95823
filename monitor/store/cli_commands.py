"""`monitor history NAME` and `monitor report`: read the history database
read-only (they work while an engine writes it) and print it as a table,
JSON lines, CSV or Markdown.

Each command is a function of the parsed arguments returning the exit status:
0 done, 1 the history could not be read, 2 a wrong argument or config.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from monitor.config.durations import format_duration, parse_duration
from monitor.config.fields import MAX_RETENTION, did_you_mean
from monitor.config.model import Config
from monitor.output import format_latency, json_line, paint, use_colour
from monitor.probes.text import printable
from monitor.store.connect import HistoryError
from monitor.store.history import HistoryStore
from monitor.store.reader import Holes
from monitor.store.location import MEMORY, history_location
from monitor.store.views import StoredEvent, StoredSample, TargetReport, iso_at

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
PHASE_COLUMNS = ("dns", "connect", "tls", "ttfb", "transfer")


class UsageError(Exception):
    pass


def add_arguments(sub: Any, config_arg: Callable[[Any], None]) -> None:
    """The `history` and `report` subparsers (called by monitor.cli)."""
    history = sub.add_parser("history", help="export one target's results and state changes")
    config_arg(history)
    history.add_argument("name", metavar="NAME", help="the target")
    _window_args(history, "24h")
    _format_args(history, ("json", "csv"))
    report = sub.add_parser("report", help="uptime, incidents and latency of every target "
                                           "over a window (an SLA report)")
    config_arg(report)
    _window_args(report, "30d")
    _format_args(report, ("json", "csv", "markdown"))


def _window_args(parser: Any, default: str) -> None:
    parser.add_argument("--since", default=default, metavar="WHEN",
                        help=f"start: a duration back from now (\"24h\", \"7d\") or a UTC time "
                             f"(\"2026-11-25\", \"2026-11-25T10:00\"); default {default}")
    parser.add_argument("--until", default=None, metavar="WHEN", help="end (default: now)")
    parser.add_argument("--db", metavar="FILE",
                        help="read this history database (default: the config's)")


def _format_args(parser: Any, formats: tuple[str, ...]) -> None:
    group = parser.add_mutually_exclusive_group()
    for name in formats:
        group.add_argument(f"--{name}", dest="format", action="store_const", const=name,
                           help=f"{name.upper() if name != 'markdown' else 'Markdown'} output")


def moment(text: str, now: float) -> float:
    """Epoch seconds from "24h" (back from now) or an ISO 8601 time (UTC unless it says)."""
    try:
        return now - parse_duration(text, ceiling=MAX_RETENTION)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"cannot read {text!r} as a duration (e.g. 24h, 7d) or a UTC time "
                         "(e.g. 2026-11-25 or 2026-11-25T10:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _window(args: Any, now: float) -> tuple[float, float]:
    try:
        since = moment(args.since, now)
    except UsageError as exc:
        raise UsageError(f"--since: {exc}") from None
    try:
        until = now if args.until is None else moment(args.until, now)
    except UsageError as exc:
        raise UsageError(f"--until: {exc}") from None
    if until <= since:
        raise UsageError(f"--until ({iso_at(until)}) must be after --since ({iso_at(since)})")
    return since, until


def _open(args: Any, load_config: Callable[[], Config]) -> HistoryStore:
    path = args.db
    if path is None:
        config = load_config()
        path = history_location(config)
        if path is None:
            raise UsageError(f"history is off for {config.path} ([settings] history_db = "
                             "\"off\", or a config that is not a file)")
        if path == MEMORY:
            raise UsageError(f"{config.path} keeps history in memory only ([settings] "
                             "history_db = \":memory:\"): there is nothing to read")
    return HistoryStore.open(path, read_only=True)


def _maintenance(args: Any, load_config: Callable[[], Config], since: float,
                 until: float) -> Holes | None:
    """The config's maintenance windows, left out of uptime (`maintenance_uptime
    = "exclude"`, the default); none with `--db` and no config to read them from."""
    if args.db is not None and getattr(args, "config", None) is None:
        return None
    from monitor.alerts.maintenance import uptime_holes
    moment = datetime.fromtimestamp(until, UTC)
    return uptime_holes(load_config(), moment, moment - datetime.fromtimestamp(since, UTC))


def _say(text: str) -> None:
    print(f"monitor: {text}", file=sys.stderr)


def _reading(args: Any, load_config: Callable[[], Config], now: float | None,
             read: Callable[[HistoryStore, float, float], Any]) -> tuple[float, float, Any]:
    """(since, until, what `read` got from the store over that window)."""
    since, until = _window(args, time.time() if now is None else now)
    store = _open(args, load_config)
    try:
        return since, until, read(store, since, until)
    finally:
        store.close()


def _run(body: Callable[[], int]) -> int:
    try:
        return body()
    except UsageError as exc:
        _say(str(exc))
        return EXIT_USAGE
    except HistoryError as exc:
        _say(str(exc))
        return EXIT_PROBLEM


# --- history NAME ---------------------------------------------------------------------

def cmd_history(args: Any, load_config: Callable[[], Config], out: TextIO | None = None,
                now: float | None = None) -> int:
    out = out or sys.stdout

    def read(store: HistoryStore, since: float, until: float) -> tuple:
        known = store.targets()
        if args.name not in known:
            hint = did_you_mean(args.name, sorted(known))
            raise UsageError(f"no history of a target named {args.name!r}{hint} in {store.path}")
        return (known[args.name], store.samples(args.name, since, until),
                store.events(args.name, since, until))

    def body() -> int:
        since, until, (info, samples, events) = _reading(args, load_config, now, read)
        entries = sorted([*samples, *events], key=lambda entry: entry.at)
        if args.format == "json":
            extra = {"kind": info.kind, "target": info.display}
            for entry in entries:
                out.write(json_line(_history_json(entry, extra)) + "\n")
        elif args.format == "csv":
            _history_csv(entries, out)
        else:
            colour = use_colour(out)
            out.write(f"{printable(info.name)} ({info.kind}, {printable(info.display)}): "
                      f"{_when(since)} to {_when(until)} UTC, {len(samples)} results, "
                      f"{len(events)} state changes\n")
            for entry in entries:
                out.write(_history_text(entry, colour) + "\n")
        return EXIT_OK

    return _run(body)


def _history_json(entry: StoredSample | StoredEvent, extra: dict[str, Any]) -> dict[str, Any]:
    if isinstance(entry, StoredEvent):
        return entry.to_json()
    data = entry.to_json()
    # the shape of `run --headless --json` results, so the same tools read both
    return {"event": "result", "name": data.pop("name"), **extra, **data, "details": {}}


def _history_csv(entries: Iterable[StoredSample | StoredEvent], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["at", "event", "status", "latency_ms", *(f"{p}_ms" for p in PHASE_COLUMNS),
                     "http_status", "cert_days_left", "recheck", "from", "to", "reason"])
    for entry in entries:
        if isinstance(entry, StoredEvent):
            writer.writerow([iso_at(entry.at), "transition", "", "", *[""] * len(PHASE_COLUMNS),
                             "", "", "", entry.from_state, entry.to_state, entry.reason or ""])
            continue
        days = entry.cert_days_left
        writer.writerow([iso_at(entry.at), "result", str(entry.status), _num(entry.latency_ms),
                         *(_num(entry.phases_ms.get(p)) for p in PHASE_COLUMNS),
                         "" if entry.http_status is None else entry.http_status,
                         "" if days is None else round(days, 2), int(entry.recheck), "", "",
                         entry.reason or ""])


def _history_text(entry: StoredSample | StoredEvent, colour: bool) -> str:
    stamp = _when(entry.at, seconds=True)
    if isinstance(entry, StoredEvent):
        to = paint(entry.to_state.upper(), entry.to_state, colour)
        reason = f": {printable(entry.reason)}" if entry.reason else ""
        return f"{stamp}  -- {entry.from_state.upper()} -> {to}{reason}"
    status = str(entry.status)
    cells = [paint(status.upper().ljust(8), status, colour),
             format_latency(entry.latency_ms).rjust(8),
             "" if entry.http_status is None else str(entry.http_status)]
    line = f"{stamp}  {cells[0]} {cells[1]}  {cells[2]:3}"
    if entry.recheck:
        line += "  (recheck)"
    if entry.reason:
        line += f"  {printable(entry.reason)}"
    return line.rstrip()


# --- report -------------------------------------------------------------------------------

def cmd_report(args: Any, load_config: Callable[[], Config], out: TextIO | None = None,
               now: float | None = None) -> int:
    out = out or sys.stdout

    def body() -> int:
        since, until, reports = _reading(
            args, load_config, now, lambda store, since, until: store.report(
                since, until, now, _maintenance(args, load_config, since, until)))
        reports.sort(key=lambda r: (math.inf if r.tally.uptime_pct is None
                                    else r.tally.uptime_pct, r.target.name))
        if args.format == "json":
            for report in reports:
                out.write(json_line(report.to_json()) + "\n")
        elif args.format == "csv":
            writer = csv.writer(out, lineterminator="\n")
            rows = [report.to_json() for report in reports]
            writer.writerow(list(rows[0]) if rows else ["name"])
            for row in rows:
                writer.writerow(["" if value is None else value for value in row.values()])
        else:
            title = (f"Uptime {_when(since)} to {_when(until)} UTC "
                     f"({format_duration(until - since)}), {len(reports)} targets")
            out.write(_report_table(reports, markdown=args.format == "markdown", title=title))
        return EXIT_OK

    return _run(body)


REPORT_HEADER = ("target", "uptime", "data", "incidents", "longest outage", "downtime",
                 "p50", "p95", "checks")


def _report_row(report: TargetReport) -> list[str]:
    longest = report.longest
    return [printable(report.target.name), percent(report.tally.uptime_pct),
            f"{report.tally.coverage_pct:.0f}%", str(len(report.outages)),
            "-" if longest is None else
            f"{format_duration(report.longest_ms() / 1000)} ({_when(longest.start / 1000)})",
            format_duration(report.tally.down_ms / 1000) if report.tally.down_ms else "-",
            format_latency(report.samples.percentile_ms(0.50)),
            format_latency(report.samples.percentile_ms(0.95)),
            f"{report.samples.count:,}"]


def _report_table(reports: list[TargetReport], markdown: bool, title: str) -> str:
    rows = [_report_row(report) for report in reports]
    right = {1, 2, 3, 5, 6, 7, 8}
    if markdown:
        lines = [f"**{title}**", "", "| " + " | ".join(REPORT_HEADER) + " |",
                 "|" + "|".join("---:" if i in right else "---" for i in range(len(REPORT_HEADER)))
                 + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                  for row in rows]
        lines += ["", "data: share of the window with a known state (the monitor running, the "
                      "target neither pending nor paused); uptime counts only that time."]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(REPORT_HEADER)]
    lines = [title]
    for row in [list(REPORT_HEADER), *rows]:
        lines.append("  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
                               for i, cell in enumerate(row)).rstrip())
    if not rows:
        lines.append("(no history in this window)")
    return "\n".join(lines) + "\n"


def percent(value: float | None) -> str:
    """Rounded down, so 99.996 % never reads as 100 %."""
    if value is None:
        return "no data"
    if value >= 100.0:
        return "100%"
    return f"{math.floor(value * 100) / 100:.2f}%"


def _when(epoch: float, seconds: bool = False) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds
                                                       else "%Y-%m-%d %H:%M")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
