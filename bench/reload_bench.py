#!/usr/bin/env python3
"""Reload benchmark: what a config edit costs a running engine with 10,000 targets.

The whole path a hot reload takes, in one process as the engine host runs it:
the config file (10,000 http targets against the 20 ms loopback server of
bench/kinds.py, in its own process) is followed by `ConfigWatcher`; an edit is
saved the way editors do (a temporary file renamed over the config); on the
watcher's change the file is read and validated in a thread
(`reload_config`) and the difference applied (`Engine.apply_config`). Two
edits, one after the other:

  one line   one target's URL changes. Measured: time from the save to the
             watcher's change, to the new config read, to it applied (the
             event loop is held for that long), to the edited target's first
             probe of its new URL; and whether the other 9,999 kept their
             schedule: each one's first start after the reload against its
             last before plus one interval (a restarted target would be off by
             up to an interval), beside the same figure one interval earlier,
             when nothing was reloaded (a loaded machine moves starts too).
  settings   `[settings] timeout` changes, which reaches every target: all
             10,000 restart. Measured: the same times, and whether their new
             starts come as a herd: probe starts per 100 ms in the interval
             after the reload against the interval before.

Both print starts per 100 ms (median and maximum) before and after, the worst
stall of the event loop (a 10 ms ticker's lateness) in the steady interval and
around the reload, and the engine's skips.

    python bench/reload_bench.py [--targets 10000] [--interval 60] [--json]

Every wait is bounded; the server child dies with this process (stdin EOF,
PR_SET_PDEATHSIG) and has its own deadline. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

import kinds   # bench/kinds.py, beside this script
from engine_bench import Child, _host_busy, _new_loop, machine_facts

BUCKET = 0.1            # seconds: the herd is counted in starts per 100 ms
OFF_SCHEDULE = 0.05     # seconds: a start this far from its old schedule was moved
TICK = 0.01             # the loop-stall ticker's period
EVENT_WAIT = 10.0       # longest wait for the watcher to report a save


def config_text(targets: int, port: int, interval: float, timeout: str,
                changed: int | None = None) -> str:
    lines = ["[settings]", f'interval = "{interval:g}s"', f'timeout = "{timeout}"', ""]
    for i in range(targets):
        target = kinds.target_lines("http", i, port)
        if i == changed:
            target[-1] = target[-1].replace(f"/t{i}\"", f"/t{i}-edited\"")
        lines += [*target, ""]
    return "\n".join(lines)


def save_like_an_editor(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.saving")
    temp.write_text(text)
    os.replace(temp, path)


class Starts:
    """Every probe's start (perf_counter, the clock results carry) by target."""

    def __init__(self) -> None:
        self.index = array("i")
        self.started = array("d")
        self.edited: list[float] = []   # starts of probes of an edited URL

    def record(self, result: Any) -> None:
        self.index.append(int(result.name[1:]))
        self.started.append(result.started)
        if result.target.endswith("-edited"):
            self.edited.append(result.started)

    def per_bucket(self, low: float, high: float) -> list[int]:
        counts = [0] * max(1, int((high - low) / BUCKET))
        for moment in self.started:
            if low <= moment < high:
                counts[min(len(counts) - 1, int((moment - low) / BUCKET))] += 1
        return counts

    def schedule_moves(self, at: float, interval: float, skip: set[int]) -> list[float]:
        """Per target not in `skip`: its first start after `at` minus (its last
        start before `at` plus one interval), seconds."""
        last: dict[int, float] = {}
        first: dict[int, float] = {}
        for index, moment in zip(self.index, self.started):
            if index in skip:
                continue
            if moment < at:
                if moment > last.get(index, -1.0):
                    last[index] = moment
            elif moment < first.get(index, float("inf")):
                first[index] = moment
        return [first[i] - (last[i] + interval) for i in last if i in first]


class Ticker:
    """A 10 ms sleeper: how late the loop woke it, worst per span."""

    def __init__(self) -> None:
        self.lateness: list[tuple[float, float]] = []   # (when, seconds late)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            now = time.perf_counter()
            self.lateness.append((now, now - before - TICK))

    def worst(self, low: float, high: float) -> float:
        return max((late for when, late in self.lateness if low <= when < high), default=0.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.perf_counter() + seconds
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not within {seconds:.0f}s: {what}")
        await asyncio.sleep(0.05)


async def edit(label: str, path: Path, text: str, engine: Any, watcher: Any, starts: Starts,
               ticker: Ticker, interval: float, changed: set[int]) -> dict[str, Any]:
    from monitor.config.watch import reload_config

    saved = time.perf_counter()
    save_like_an_editor(path, text)
    change = await asyncio.wait_for(anext(watcher), EVENT_WAIT)
    told = time.perf_counter()
    outcome = await asyncio.to_thread(reload_config, path)   # off the loop: 10,000 targets
    read = time.perf_counter()
    if not outcome.ok:
        raise RuntimeError("\n".join(outcome.problems))
    diff = engine.apply_config(outcome.config, change.paths)
    applied = time.perf_counter()
    watcher.follow(outcome.config)
    skips_before = engine.skips()
    first_edited = None
    if label == "one line":
        await wait_until(lambda: starts.edited, interval + 5, "the edited target probed")
        first_edited = starts.edited[0]
    # one whole interval after the reload, and a little for the last answers
    await asyncio.sleep(max(0.0, applied + interval + 1.0 - time.perf_counter()))
    before = starts.per_bucket(saved - interval, saved)
    after = starts.per_bucket(applied, applied + interval)
    moves = [abs(m) for m in starts.schedule_moves(applied, interval, changed)]
    # the same, one interval earlier, with no reload in between: what a loaded
    # machine (and the schedule's slip) does to starts on its own
    control = [abs(m) for m in starts.schedule_moves(saved - interval, interval, changed)]
    row: dict[str, Any] = {
        "edit": label, "summary": diff.summary(),
        "save_to_change_ms": round((told - saved) * 1000, 1),
        "read_validate_ms": round((read - told) * 1000, 1),
        "apply_ms": round((applied - read) * 1000, 1),
        "save_to_applied_ms": round((applied - saved) * 1000, 1),
        "save_to_first_edited_probe_ms": (None if first_edited is None
                                          else round((first_edited - saved) * 1000, 1)),
        "starts_per_100ms_before": {"median": statistics.median(before), "max": max(before)},
        "starts_per_100ms_after": {"median": statistics.median(after), "max": max(after)},
        "max_in_first_second_after": max(after[:int(1 / BUCKET)]),
        "loop_stall_ms_steady": round(ticker.worst(saved - interval, saved) * 1000, 1),
        "loop_stall_ms_reload": round(ticker.worst(told, applied + 1.0) * 1000, 1),
        "skips_after": engine.skips() - skips_before,
    }
    if moves:   # targets the edit left alone: did they keep their schedule?
        row["kept_schedule"] = {"across_reload": moved(moves), "control_no_reload": moved(control)}
    return row


def moved(moves: list[float]) -> dict[str, Any]:
    """How far targets' starts moved from their schedule, seconds in, ms out."""
    ordered = sorted(moves)
    return {"targets": len(ordered),
            "within_ms": int(OFF_SCHEDULE * 1000),
            "kept": sum(1 for m in ordered if m <= OFF_SCHEDULE),
            "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2) if ordered else None,
            "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2) if ordered else None,
            "max_ms": round(ordered[-1] * 1000, 2) if ordered else None}


async def run(args: argparse.Namespace, port: int) -> list[dict[str, Any]]:
    from monitor.config import load_config
    from monitor.config.watch import ConfigWatcher
    from monitor.engine.heap import PROBING_YOUNG_THRESHOLD, settle
    from monitor.engine.scheduler import Engine

    starts = Starts()
    ticker = Ticker()
    with tempfile.TemporaryDirectory(prefix="reload-bench-") as folder:
        path = Path(folder) / "monitor.toml"
        path.write_text(config_text(args.targets, port, args.interval, "2s"))
        config = load_config(path)
        engine = Engine(config, on_result=starts.record, keep_history=False)
        await engine.start()
        settle(PROBING_YOUNG_THRESHOLD)
        ticker.start()
        try:
            async with ConfigWatcher(path, config) as watcher:
                # every target probed once, then one steady interval to compare with
                await wait_until(lambda: len(set(starts.index)) == args.targets,
                                 2 * args.interval + 30, "every target probed")
                await asyncio.sleep(args.interval)
                middle = args.targets // 2
                rows = [await edit("one line", path, config_text(
                    args.targets, port, args.interval, "2s", changed=middle), engine, watcher,
                    starts, ticker, args.interval, changed={middle})]
                await asyncio.sleep(args.interval)   # steady again before the next edit
                rows.append(await edit("settings", path, config_text(
                    args.targets, port, args.interval, "1500ms", changed=middle), engine,
                    watcher, starts, ticker, args.interval, changed=set(range(args.targets))))
        finally:
            await ticker.stop()
            await engine.stop()
    return rows


def markdown(rows: list[dict[str, Any]], facts: dict[str, Any], args: argparse.Namespace) -> str:
    out = [f"{args.targets} http targets every {args.interval:g}s against the 20 ms loopback "
           f"server ({args.targets / args.interval:.0f} probes/s); {facts['date']}, "
           f"{facts['nproc']} cores ({facts['host_busy_pct']} % busy during the run, every "
           f"process), Python {facts['python']}, uvloop {facts['uvloop']}", "",
           "| edit | save→change | read+validate (thread) | apply (loop held) | save→applied "
           "| save→edited probe | starts/100ms before (median/max) | after (median/max) "
           "| max in 1st s after | loop stall steady / reload | kept schedule |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        kept = row.get("kept_schedule")
        kept_text = "-" if kept is None else "; ".join(
            f"{label}: {m['kept']}/{m['targets']} within {m['within_ms']} ms "
            f"(p50 {m['p50_ms']}, p99 {m['p99_ms']}, max {m['max_ms']} ms)"
            for label, m in (("reload", kept["across_reload"]),
                             ("no reload", kept["control_no_reload"])))
        edited = row["save_to_first_edited_probe_ms"]
        out.append(
            f"| {row['edit']} ({row['summary'].removeprefix('config reloaded: ')}) "
            f"| {row['save_to_change_ms']} ms | {row['read_validate_ms']} ms "
            f"| {row['apply_ms']} ms | {row['save_to_applied_ms']} ms "
            f"| {'-' if edited is None else f'{edited} ms'} "
            f"| {row['starts_per_100ms_before']['median']:g}/{row['starts_per_100ms_before']['max']} "
            f"| {row['starts_per_100ms_after']['median']:g}/{row['starts_per_100ms_after']['max']} "
            f"| {row['max_in_first_second_after']} "
            f"| {row['loop_stall_ms_steady']} / {row['loop_stall_ms_reload']} ms | {kept_text} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="What a config edit costs a running engine.")
    parser.add_argument("--targets", type=int, default=10_000, help="targets (10000)")
    parser.add_argument("--interval", type=float, default=60.0,
                        help="seconds between a target's probes (60: 167 probes/s at 10,000)")
    parser.add_argument("--json", action="store_true", help="JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    if args.targets < 2 or args.interval < 2:   # the targets' timeout is 2 s
        parser.error("--targets >= 2 and --interval >= 2")
    deadline = 6 * args.interval + 120
    busy_at_start = _host_busy()
    server = Child([sys.executable, str(Path(__file__).with_name("engine_bench.py")), "_server",
                    "--port", "0", "--deadline", str(deadline), "--kind", "http"])
    try:
        port = server.read(30)["port"]
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            rows = runner.run(asyncio.wait_for(run(args, port), deadline))
    except (TimeoutError, RuntimeError) as exc:
        print(f"reload_bench: {exc}", file=sys.stderr)
        return 2
    finally:
        server.close()
    facts = machine_facts()
    busy, total = (now - then for now, then in zip(_host_busy(), busy_at_start))
    facts["host_busy_pct"] = round(100.0 * busy / max(1, total), 1)   # every process, all cores
    if args.json:
        print(json.dumps({"facts": facts, "rows": rows}, indent=1))
    else:
        print(markdown(rows, facts, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
