#!/usr/bin/env python3
"""Keypress to frame on a big board: every key the dashboard answers, timed in tmux.

The dashboard (`monitor --config F`, 160x50, tmux as in dashboard_bench.py) with
10,000 http targets (`--targets`), under three conditions (`--condition`):

  live     interval 60s against the loopback target server of engine_bench.py
           (answers after 20 ms): ~167 results/s, every target UP.
  failing  interval 60s against a closed loopback port: every target DOWN,
           "connection refused" in every row.
  busy     interval 10s against the target server: ~1,000 results/s arriving
           while the keys are pressed.

After every target has its first result and a settling pause, each key is
pressed at least `--presses` times, a random 0.2-0.5 s apart (never in step
with the 0.5 s refresh), and timed from `send-keys` until `capture-pane` shows
the frame that key must produce, polled every 2 ms over a tmux control client:

  s          the summary names the next sort mode, with rows under the header
  g          the summary says "grouped", or no longer does
  / (open)   the filter box is on screen, holding the filter text
  type       a character typed into the box: the summary shows the new filter
             and every row's name contains it ("t", then "t1")
  enter      (closing the filter) the box is gone, the filter kept
  clear      backspace in the reopened box (its text selected): no filter in
             the summary, every target back
             (a round: open, type, type, enter; open, clear, enter)
  pagedown   the row that was last on screen is now the first (the cursor sits
             on the last row, so a page moves the view by one screen less one)
  down       the second row is now the first
  details    enter: the detail screen of a target that was on screen, with its
             statistics and config block drawn
  back       backspace (every other visit): the board again, rows under the header
  back (esc) escape (the other visits), the same frame: Escape alone is only
             known to be one when no more bytes follow, and Textual's input
             thread looks every 100 ms (ESCDELAY cannot shorten that)

A press whose frame does not come within `--key-timeout` is a miss (counted,
not timed). Reported per condition and key: presses, misses, p50, p95, max.

    python bench/keypress_bench.py [--condition live failing busy] [--targets 10000]
                                   [--only sort filter scroll details]
                                   [--presses 50] [--ui-nice N] [--profile DIR] [--json]
                                   [--save FILE]

`--profile DIR` runs the UI process under cProfile (DIR/keys-CONDITION.pstats,
written when it quits): slower, for finding where time goes, not for figures.
Traffic goes to 127.0.0.0/8 only; every exit path kills the private tmux server
and every process started here (dashboard_bench.py's Bench).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shlex
import signal
import socket
import sys
import tempfile
import time
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dashboard_bench as db  # noqa: E402

CONDITIONS = {"live": "60s", "failing": "60s", "busy": "10s"}
KEYS = ("s", "g", "/ (open)", "type", "enter", "clear", "pagedown", "down", "details", "back",
        "back (esc)")
FILTER_TEXT = "t1"            # typed a character at a time; cleared with one backspace
FOOTER = re.compile(r"\bSort\b.*\bGroup\b")   # the key footer's line, never filter text
ROW = re.compile(r"^ [●▲✖…‖] (?:UP|DEGR|DOWN|PEND|PAUS|STALE)\s+(\S+)")
Screen = Callable[[str], bool]


# --- what is on the screen ---------------------------------------------------------------

def row_names(screen: str) -> list[str]:
    """The target rows on the board, top to bottom (group headings not counted)."""
    return [m.group(1) for line in screen.split("\n") if (m := ROW.match(line))]


def header_index(screen: str) -> int | None:
    for i, line in enumerate(screen.split("\n")[:5]):
        words = line.split()
        if "State" in words and "Target" in words:
            return i
    return None


def filter_box(screen: str) -> str | None:
    """The text in the filter box ('' for its placeholder); None when it is hidden.
    The box opens over the key footer, on the bottom line."""
    if header_index(screen) is None:
        return None
    text = screen.rstrip("\n").rsplit("\n", 1)[-1].strip()
    if text.startswith("filter: name"):
        return ""
    return None if FOOTER.search(text) else text


def summary_filter(screen: str) -> str | None:
    match = re.search(r"filter “([^”]*)”", screen.split("\n", 1)[0])
    return match.group(1) if match else None


def detail_of(screen: str) -> str | None:
    """The target a fully drawn detail screen shows; None when it is not that."""
    if "╭─ Statistics" not in screen or "╭─ Config" not in screen \
            or " checks " not in screen or 'name = "' not in screen:
        return None
    words = screen.split("\n", 1)[0].split()
    return words[2] if len(words) > 2 else None


def board_frame(screen: str) -> bool:
    return db._has_rows(screen) and "╭─ Statistics" not in screen


# --- the run ----------------------------------------------------------------------------

class KeyBench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.bench = db.Bench(argparse.Namespace(py_spy=None, json=args.json), workdir)
        # one condition's session closes before the next opens: without this the
        # emptied server exits under the next new-session ("server exited unexpectedly")
        with open(self.bench.tmux.conf, "a") as conf:
            conf.write("set -s exit-empty off\n")
        self.rng = random.Random(13)
        self.times: dict[str, list[float]] = {}
        self.misses: dict[str, int] = {}
        self.control: db.Control | None = None

    def config(self, condition: str, port: int) -> Path:
        bench = self.bench
        saved, bench.port = bench.port, port
        try:
            return bench.http_config(self.args.targets, CONDITIONS[condition],
                                     f"{condition}.toml")
        finally:
            bench.port = saved

    def run(self, condition: str) -> dict[str, Any]:
        bench, args = self.bench, self.args
        port = closed_port() if condition == "failing" else bench.port
        config = self.config(condition, port)
        profile = None if args.profile is None else Path(args.profile) / f"keys-{condition}.pstats"
        startup = 60.0 + args.targets / 200.0
        options = () if args.ui_nice is None else ("--ui-nice", str(args.ui_nice))
        name, control, ui, worker = bench.open_dashboard(f"keys-{condition}", config, None,
                                                         startup, profile, options)
        self.control = control
        self.times = {key: [] for key in KEYS}
        self.misses = {key: 0 for key in KEYS}
        try:
            began = time.monotonic()
            db.wait_for(control, lambda s: "pending" not in s.split("\n", 1)[0],
                        float(CONDITIONS[condition].rstrip("s")) * 1.5 + 30,
                        f"all {args.targets} targets to leave PENDING")
            first_round_s = time.monotonic() - began
            time.sleep(args.settle)
            sampler = db.Sampler({"ui": ui, "engine": worker,
                                  "tmux": bench.tmux.server_pid(), "server": bench.server_pid})
            sampler.begin()
            for part in args.only:
                PARTS[part](self)
            window = sampler.end()
        finally:
            bench.close_pane(name, control, "q", [ui, worker])
            self.control = None
        rows = []
        for key in KEYS:
            times = self.times[key]
            rows.append({"condition": condition, "key": key, "presses": len(times),
                         "misses": self.misses[key],
                         "p50_ms": db._r(db._percentile(times, 0.5), 1),
                         "p95_ms": db._r(db._percentile(times, 0.95), 1),
                         "max_ms": db._r(max(times) if times else None, 1),
                         "all_ms": [round(t, 1) for t in times]})
        return {"condition": condition, "interval": CONDITIONS[condition],
                "first_round_s": round(first_round_s, 1), "window": window, "keys": rows}

    # -- one press

    def press(self, label: str, keys: list[str], done: Screen) -> str | None:
        """Send keys, time until `done` holds for the screen; the screen, or None (a miss)."""
        control = self.control
        assert control is not None
        poll = self.args.poll_ms / 1000.0
        start = time.perf_counter()
        control.keys(*keys)
        limit = start + self.args.key_timeout
        screen = ""
        while True:
            screen = control.capture()
            if done(screen):
                self.times[label].append((time.perf_counter() - start) * 1000.0)
                break
            if time.perf_counter() > limit:
                control.check_alive()
                self.misses[label] += 1
                return None
            time.sleep(poll)
        time.sleep(self.rng.uniform(0.2, 0.5))
        return screen

    def screen(self) -> str:
        assert self.control is not None
        return self.control.capture()

    # -- the keys

    def sort_and_group(self) -> None:
        # a whole number of cycles: each ends where it began (status sort, ungrouped)
        for _ in range(4 * math.ceil(self.args.presses / 4)):
            want = db.SORT_CYCLE[(db.SORT_CYCLE.index(db._sort_mode(self.screen())) + 1)
                                 % len(db.SORT_CYCLE)]
            self.press("s", ["s"], lambda s, w=want: db._sort_mode(s) == w and db._has_rows(s))
        for _ in range(2 * math.ceil(self.args.presses / 2)):
            grouped = db._grouped(self.screen())
            self.press("g", ["g"], lambda s, g=grouped: db._grouped(s) is (not g)
                       and db._has_rows(s))

    def filter_rounds(self) -> None:
        """Open, type FILTER_TEXT a character at a time, close (the filter kept);
        open again (the box selects its text) and clear it with one backspace, close."""
        for _ in range(self.args.presses):
            self.press("/ (open)", ["/"], lambda s: filter_box(s) == "")
            for n in range(1, len(FILTER_TEXT) + 1):
                text = FILTER_TEXT[:n]
                self.press("type", [text[-1]], lambda s, t=text: self._filtered(s, t))
            self.press("enter", ["Enter"], lambda s: filter_box(s) is None
                       and summary_filter(s) == FILTER_TEXT and board_frame(s))
            self.press("/ (open)", ["/"], lambda s: filter_box(s) == FILTER_TEXT)
            self.press("clear", ["BSpace"], lambda s: self._filtered(s, ""))
            self.press("enter", ["Enter"], lambda s: filter_box(s) is None
                       and summary_filter(s) is None and board_frame(s))

    @staticmethod
    def _filtered(screen: str, text: str) -> bool:
        names = row_names(screen)
        if filter_box(screen) != text or len(names) < 5:
            return False
        if not text:
            return summary_filter(screen) is None
        return summary_filter(screen) == text and all(text in n for n in names)

    def scroll(self) -> None:
        # put the cursor on the last row first: from there every page scrolls the view
        assert self.control is not None
        self.control.keys("PageDown")
        time.sleep(0.5)
        for _ in range(self.args.presses):
            names = row_names(self.screen())
            self.press("pagedown", ["PageDown"],
                       lambda s, last=names[-1]: (r := row_names(s)) != [] and r[0] == last
                       and len(r) == len(names))
        for _ in range(self.args.presses):
            names = row_names(self.screen())
            self.press("down", ["Down"],
                       lambda s, second=names[1]: (r := row_names(s)) != [] and r[0] == second
                       and len(r) == len(names))

    def details(self) -> None:
        for visit in range(2 * self.args.presses):
            names = set(row_names(self.screen()))
            self.press("details", ["Enter"], lambda s, n=names: detail_of(s) in n)
            # Backspace: Escape is held back by Textual's input thread, which
            # polls every 100 ms (a lone ESC may begin a key's sequence), and
            # that wait is timed apart, as `back (esc)`
            key, label = ("Escape", "back (esc)") if visit % 2 else ("BSpace", "back")
            self.press(label, [key], board_frame)


PARTS = {"sort": KeyBench.sort_and_group, "filter": KeyBench.filter_rounds,
         "scroll": KeyBench.scroll, "details": KeyBench.details}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connection refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- report -----------------------------------------------------------------------------

def markdown(result: dict[str, Any]) -> str:
    targets = result["settings"]["targets"]
    out = [f"### Keypress to frame, {targets:,} http targets, tmux 160x50", "",
           "| condition | key | presses | p50 ms | p95 ms | max ms |",
           "|---|---|---:|---:|---:|---:|"]
    for run in result["runs"]:
        label = f"{run['condition']} ({run['interval']})"
        for row in run["keys"]:
            miss = f" (+{row['misses']} missed)" if row["misses"] else ""
            out.append(f"| {label} | `{row['key']}` | {row['presses']}{miss} "
                       f"| {db._f(row['p50_ms'])} | {db._f(row['p95_ms'])} "
                       f"| {db._f(row['max_ms'])} |")
    out += ["", "| condition | first round s | seconds | UI CPU % | engine CPU % "
            "| server CPU % | tmux CPU % | other CPU % |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for run in result["runs"]:
        w = run["window"]
        out.append(f"| {run['condition']} | {run['first_round_s']} | {db._f(w['window_s'])} "
                   f"| {db._f(w.get('ui_cpu_pct'))} | {db._f(w.get('engine_cpu_pct'))} "
                   f"| {db._f(w.get('server_cpu_pct'))} | {db._f(w.get('tmux_cpu_pct'))} "
                   f"| {db._f(w.get('other_cpu_pct'))} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--condition", nargs="+", choices=list(CONDITIONS),
                        default=list(CONDITIONS), help="live failing busy (all three)")
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--only", nargs="+", choices=list(PARTS), default=list(PARTS),
                        help="which keys: sort (s, g), filter, scroll, details (all)")
    parser.add_argument("--presses", type=int, default=50, help="at least this many of each key")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds after every target's first result, before the keys (5)")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="screen poll interval (2)")
    parser.add_argument("--key-timeout", type=float, default=5.0,
                        help="a press whose frame has not come by then is a miss (5)")
    parser.add_argument("--profile", metavar="DIR", help="cProfile the UI process into DIR")
    parser.add_argument("--ui-nice", type=int, metavar="N",
                        help="the dashboard's --ui-nice (default: the dashboard's, 19)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    parser.add_argument("--save", metavar="FILE", help="also write the JSON result to FILE")
    args = parser.parse_args(argv)
    if args.targets < 5 or args.presses < 1 or args.poll_ms <= 0:
        parser.error("--targets >= 5, --presses >= 1, --poll-ms > 0")
    if not shutil.which("tmux"):
        print("keypress_bench: needs tmux", file=sys.stderr)
        return 2
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    per_condition = 120 + args.targets / 100 + 2 * 60 * 1.5 \
        + 15 * args.presses * (args.key_timeout / 4 + 0.5)
    limit = 60 + per_condition * len(args.condition)
    result: dict[str, Any] = {"facts": db.facts(), "command": shlex.join(
        ["python", "bench/keypress_bench.py", *sys.argv[1:]]),
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "save")},
        "runs": []}

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise db.Overtime(f"benchmark exceeded its overall limit of {limit:.0f}s")

    workdir = Path(tempfile.mkdtemp(prefix="keypress-bench-"))
    keys = KeyBench(args, workdir)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: on_alarm(0, None))
    signal.alarm(math.ceil(limit))
    try:
        keys.bench.start_server(limit + 30.0)
        for condition in args.condition:
            if not args.json:
                print(f"… {condition}", file=sys.stderr, flush=True)
            result["runs"].append(keys.run(condition))
    except (db.Overtime, RuntimeError, TimeoutError) as exc:
        print(f"keypress_bench: {exc}", file=sys.stderr)
        result["problem"] = str(exc)   # the conditions measured so far are still reported
    finally:
        signal.alarm(0)
        keys.bench.cleanup()
        if args.keep:
            print(f"keypress_bench: files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(markdown(result))
        print(f"\nCommand: `{result['command']}`")
    return 2 if "problem" in result else 0


if __name__ == "__main__":
    sys.exit(main())
