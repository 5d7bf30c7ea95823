"""Plain-text and JSON output for the command line."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from monitor.engine.result import ProbeResult, Status, iso
from monitor.engine.state import State, Transition
from monitor.config.durations import format_duration

_COLOURS = {"up": "32", "degraded": "33", "down": "31", "pending": "36", "paused": "90"}


def silence_stdout() -> None:
    """Point fd 1 at /dev/null: its reader left, and nothing may fail on the
    way out either (Python flushes stdout at exit; the Python docs' advice
    for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def use_colour(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def paint(text: str, status: str, colour: bool) -> str:
    code = _COLOURS.get(status)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def format_latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 10:
        return f"{ms:.2f}ms"
    if ms < 1000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.2f}s"


def result_table(results: Iterable[ProbeResult], colour: bool = False, width: int = 120) -> str:
    rows = [(str(r.status).upper(), r.name, r.kind, format_latency(r.latency_ms), r.target,
             r.reason or "") for r in results]
    header = ("STATUS", "NAME", "KIND", "LATENCY", "TARGET", "REASON")
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    widths[4] = min(widths[4], 48)
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                 row[3].rjust(widths[3]), _cut(row[4], widths[4]).ljust(widths[4]), row[5]]
        line = "  ".join(cells).rstrip()
        if row is not header:
            line = paint(cells[0], row[0].lower(), colour) + line[len(cells[0]):]
        lines.append(line)
    return "\n".join(lines)


def summary_line(results: list[ProbeResult]) -> str:
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    return (f"{len(results)} targets: {counts[Status.UP]} up, {counts[Status.DEGRADED]} degraded, "
            f"{counts[Status.DOWN]} down")


def transition_line(t: Transition, colour: bool = False) -> str:
    was = f" (was {t.from_state} for {format_duration(t.previous_for)})" \
        if t.previous_for is not None and t.from_state is not State.PENDING else ""
    reason = f": {t.reason}" if t.reason else ""
    stamp = t.at.strftime("%Y-%m-%d %H:%M:%S")
    to = paint(str(t.to_state).upper(), str(t.to_state), colour)
    return f"{stamp}  {t.name}  {str(t.from_state).upper()} -> {to}{reason}{was}"


# One encoder for every line: json.dumps with options builds a JSONEncoder per
# call, 1.8 of the 7.2 us that encoding a result took (a result line every
# millisecond at 1,000 probes/s).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def json_line(obj: dict[str, Any]) -> str:
    return _ENCODER.encode(obj)


def result_line(result: ProbeResult) -> str:
    """A result as `run --headless --json` prints it and `--record` keeps it."""
    return json_line({"event": "result", **result.to_json()})


def encode_lines(lines: list[str]) -> bytes:
    """A batch of lines as one write; text the terminal encoding cannot carry
    (a lone surrogate) is replaced, never an exception in the output path."""
    return ("\n".join(lines) + "\n").encode("utf-8", "replace")


def dropped_event(results: int, transitions: int) -> str:
    """Said in the stream, once output flows again, of what a stalled reader missed."""
    return json_line({"event": "dropped", "results": results, "transitions": transitions,
                      "at": iso(datetime.now(UTC))})


def stats_event(stats: Any, tasks: int, dropped: int, out_of_files: int) -> str:
    """`run --headless --json`'s periodic account of the monitor itself: its
    probe rate, how late starts were, how far behind its schedule runs, what it
    skipped or dropped, and its own task count (flat in a healthy soak)."""
    return json_line({"event": "stats", "at": iso(datetime.now(UTC)),
                      "probes_total": stats.probes_total,
                      "probes_per_s": round(stats.probes_per_s, 2),
                      "skips": stats.skips, "skips_per_min": round(stats.skips_per_min, 1),
                      "behind_s": round(stats.behind_s, 3), "lag_ms": round(stats.lag_ms, 3),
                      "dropped_results": dropped, "out_of_files": out_of_files,
                      "tasks": tasks})


def reload_line(event: Any) -> str:
    """A config reload, for people: what changed, by name when it is short."""
    stamp = event.at.strftime("%Y-%m-%d %H:%M:%S")
    named = [f"{sign}{name}" for sign, names in (("+", event.added), ("\u2212", event.removed),
                                                 ("~", event.changed)) for name in names]
    detail = f" ({', '.join(named)})" if named and len(named) <= 5 else ""
    return f"{stamp}  monitor: config reloaded: {event.summary}{detail}"


def behind_text(behind_s: float, skips_per_min: float) -> str:
    """"behind 2.3s, 140 skipped/min": the dashboard's words and the log's."""
    shown = (f"{behind_s:.1f}s" if behind_s < 10 else f"{behind_s:.0f}s" if behind_s < 60
             else format_duration(round(behind_s)))
    return f"behind {shown}, {skips_per_min:.0f} skipped/min"


def behind_line(stats: Any, concurrency: int) -> str:
    """Said once, on stderr, when the monitor falls behind its schedule."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (f"{stamp}  monitor: {behind_text(stats.behind_s, stats.skips_per_min)}: more "
            f"targets than it can probe (concurrency {concurrency}); every target's interval "
            "is stretched alike. Raise concurrency or intervals, or split the targets")


def on_schedule_line() -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp}  monitor: back on schedule"


def dropped_line(results: int, transitions: int) -> str:
    """`dropped_event` for people: text mode writes state changes only."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    lost = ", ".join(f"{count} {what}" for count, what in
                     ((results, "results"), (transitions, "state changes")) if count)
    return f"{stamp}  monitor: output stalled; not written: {lost}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"

