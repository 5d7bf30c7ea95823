#!/usr/bin/env python3
"""Metrics benchmark: what /metrics costs at 10,000 targets, and what a scrape
does to the probes.

scrape   In this process, a `MetricsSink` (the real one, with its HTTP
         server) holding N targets (10,000 http targets, a group and a
         location each, 10 % DOWN), fed real `ProbeResult`s on a running
         loop; nothing is probed. /metrics is fetched over loopback HTTP
         from a thread, as Prometheus would, and timed end to end:
           cold        every target rendered (the first scrape)
           warm 0 %    nothing changed since the last scrape
           warm 25 %   a quarter of the targets have a new result (10,000
                       targets at a 60 s interval, scraped every 15 s)
           warm 100 %  every target changed
           gzip 25 %   as a Prometheus on another machine gets it (one on
                       the same machine gets plain text: server.py)
         with the body's size, and the loop's worst stall while a scrape
         renders (a task that sleeps 1 ms at a time notes how late it wakes:
         rendering shares the GIL with the loop) beside the same watch for as
         long right after, as many results arriving, with no scrape (the
         machine's and the results' own share of it). Also the cost of one result
         on the loop (`on_result`), and, for comparison, prometheus-client's
         own writer given the same samples (`--no-baseline` skips it: ~5 s).
latency  `monitor run --headless --json` (a real process) with metrics on,
         T targets (10,000 at a 30 s interval: 333 probes a second)
         against engine_bench's loopback server (every answer after 20 ms),
         in alternating windows: quiet (nobody scrapes) and scraping (this
         script fetches /metrics every --scrape-every s, as a Prometheus on
         the same machine would: plain text). Latency
         error = latency_ms - 20 per result whose checked_at is in the
         window; p50/p95/p99 per kind of window and the scrapes' own times.

    python bench/metrics_bench.py [--only scrape|latency] [--targets 10000]
                                  [--latency-targets 10000] [--interval 30]
                                  [--window 60] [--pairs 2] [--scrape-every 15]
                                  [--no-baseline] [--json]

Every loop is bounded in count and time; the processes it starts die with it
(PR_SET_PDEATHSIG) and on every exit path. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cli_bench as cb          # beside this script: JSON-line windows, pipe reader
import kinds

eb, db = cb.eb, cb.db

HERE = Path(__file__).resolve().parent
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(port: int, zipped: bool = False) -> tuple[float, int, bytes]:
    """(seconds, bytes on the wire, body) of one GET /metrics."""
    headers = {"Accept-Encoding": "gzip"} if zipped else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    began = time.perf_counter()
    with _NO_PROXY.open(request, timeout=60) as reply:
        raw = reply.read()
    took = time.perf_counter() - began
    body = gzip.decompress(raw) if zipped else raw
    return took, len(raw), body


def fetch_apart(port: int, zipped: bool, workdir: Path) -> tuple[float, int, bytes]:
    """fetch(), from another process when curl is there: a client in this
    process would compete for the GIL with the very loop being watched,
    which Prometheus (another process, another machine) never does."""
    curl = shutil.which("curl")
    if curl is None:
        return fetch(port, zipped)
    out = workdir / "body"
    proc = subprocess.run([curl, "-sS", "--noproxy", "*", "-o", str(out), "-w",
                           "%{time_total} %{size_download}", *(["--compressed"] if zipped else []),
                           f"http://127.0.0.1:{port}/metrics"],
                          capture_output=True, text=True, timeout=60, check=True)
    took, size = proc.stdout.split()
    return float(took), int(size), out.read_bytes()


# --- scrape: the sink in this process ----------------------------------------------------

def _config(count: int, port: int) -> Any:
    from monitor.config import parse_config
    lines = ["[settings]", 'interval = "60s"', f'metrics = "127.0.0.1:{port}"',
             'location = "eu-west-1"', ""]
    for i in range(count):
        lines += ["[[targets]]", f'name = "service-{i:05d}"', 'kind = "http"',
                  f'url = "https://service-{i:05d}.example.org/health"',
                  f'group = "team-{i % 40:02d}"', ""]
    return parse_config("\n".join(lines))


def _result(name: str, down: bool, seq: int) -> Any:
    from monitor.engine.result import ProbeResult, Status
    from monitor.probes.base import CertFacts
    now = datetime.now(UTC)
    jitter = (seq % 97) / 97.0
    return ProbeResult(
        name=name, kind="http", target="", status=Status.DOWN if down else Status.UP,
        latency_ms=None if down else 40.0 + 20 * jitter,
        phases_ms={} if down else {"dns": 2.0 + jitter, "connect": 9.0, "tls": 14.0 + jitter,
                                   "ttfb": 16.0 + 10 * jitter, "transfer": 0.5},
        reason="connection refused" if down else None, checked_at=now,
        http_status=None if down else 200,
        cert=None if down else CertFacts(expires_at=now.replace(year=now.year + 1)))


async def _loop_stalls(stop: asyncio.Event, stalls: list[float]) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(10_000_000):
        if stop.is_set():
            return
        before = loop.time()
        await asyncio.sleep(0.001)
        stalls.append(loop.time() - before - 0.001)


async def bench_scrape(count: int, baseline: bool, workdir: Path) -> dict[str, Any]:
    from monitor.engine.host import EngineHost
    from monitor.engine.sinks import MonitorStarted
    from monitor.engine.state import State, Transition
    from monitor.export import MetricsSink

    port = cb._free_port()
    config = _config(count, port)
    host = EngineHost(config, stop_on=(), settle_heap=False)
    sink = MetricsSink(host)
    sink.on_start(MonitorStarted(datetime.now(UTC), count, None))
    names = [t.name for t in config.targets]
    loop = asyncio.get_running_loop()
    for i, name in enumerate(names):
        down = i % 10 == 0
        sink.on_transition(Transition(name, State.PENDING, State.DOWN if down else State.UP,
                                      None, datetime.now(UTC), loop.time(), 1.0))
        sink.on_result(_result(name, down, i))

    # as the monitor's host does once its engine has started (engine/heap.py):
    # what lives as long as the process leaves the collector's sight
    from monitor.engine.heap import PROBING_YOUNG_THRESHOLD, settle
    settle(PROBING_YOUNG_THRESHOLD)
    seq = [count]

    def touch(share: float) -> None:
        step = max(1, round(1 / share)) if share > 0 else 0
        for i in range(0, count, step) if step else ():
            seq[0] += 1
            sink.on_result(_result(names[i], i % 10 == 0, seq[0]))

    async def timed(share: float, zipped: bool, repeat: int) -> dict[str, Any]:
        times, sizes, renders, stalls, idle = [], [], [], [], []
        body = b""
        for _ in range(repeat):
            touch(share)
            stop, seen = asyncio.Event(), []
            watcher = asyncio.create_task(_loop_stalls(stop, seen))
            await asyncio.sleep(0.01)
            took, size, body = await asyncio.to_thread(fetch_apart, port, zipped, workdir)
            stop.set()
            await watcher
            times.append(took)
            sizes.append(size)
            renders.append(sink.render_seconds)
            stalls.append(max(seen, default=0.0))
            # the same watch as long again, the same results arriving, with no
            # scrape: what the machine's load and the results' own garbage
            # (collected in whichever thread allocates next) do to the loop
            touch(share)
            stop, seen = asyncio.Event(), []
            watcher = asyncio.create_task(_loop_stalls(stop, seen))
            await asyncio.sleep(took + 0.01)
            stop.set()
            await watcher
            idle.append(max(seen, default=0.0))
        return {"scrape_ms": db._r(1000 * statistics.median(times), 1),
                "scrape_max_ms": db._r(1000 * max(times), 1),
                "render_ms": db._r(1000 * statistics.median(renders), 1),
                "bytes": int(statistics.median(sizes)),
                "loop_stall_max_ms": db._r(1000 * max(stalls), 1),
                "loop_stall_idle_max_ms": db._r(1000 * max(idle), 1),
                "samples": sum(1 for line in body.splitlines() if not line.startswith(b"#"))}

    rows = {"cold": await timed(0.0, False, 1)}
    rows["warm 0%"] = await timed(0.0, False, 5)
    rows["warm 25%"] = await timed(0.25, False, 5)
    rows["warm 100%"] = await timed(1.0, False, 3)
    sink._server.compress_loopback = True   # as a Prometheus across a network gets it
    rows["gzip 25%"] = await timed(0.25, True, 5)

    began, results = time.perf_counter(), 200_000
    for i in range(results):
        sink.on_result(_result(names[i % count], False, i))
    # building the results is part of that time: measure it alone and subtract
    built = time.perf_counter()
    for i in range(results):
        _result(names[i % count], False, i)
    per_result_us = ((built - began) - (time.perf_counter() - built)) / results * 1e6

    out: dict[str, Any] = {"targets": count, "rows": rows,
                           "on_result_us": db._r(per_result_us, 2)}
    if baseline:
        out["prometheus_client_writer_s"] = db._r(_baseline(fetch(port)[2]), 2)
    await sink.aclose()
    return out


def _baseline(body: bytes) -> float:
    """Seconds prometheus-client's writer takes for the same samples."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families
    families = list(text_string_to_metric_families(body.decode()))

    class Same:
        def collect(self):   # noqa: ANN202
            return iter(families)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Same())
    began = time.perf_counter()
    generate_latest(registry)
    return time.perf_counter() - began


# --- latency: a real headless monitor, scraped and not -----------------------------------

class Latency:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.server: Any = None
        self.proc: subprocess.Popen[bytes] | None = None

    def run(self) -> dict[str, Any]:
        args = self.args
        life = args.window * 2 * args.pairs + args.interval * 3 + 120
        self.server = eb.Child([sys.executable, str(HERE / "engine_bench.py"), "_server",
                                "--kind", "http", "--port", "0", "--deadline", str(life)])
        port = self.server.read(30.0)["port"]
        metrics_port = cb._free_port()
        path = self.workdir / "latency.toml"
        lines = ["[settings]", f'interval = "{args.interval:g}s"', 'timeout = "900ms"',
                 "concurrency = 2048", f'metrics = "127.0.0.1:{metrics_port}"', ""]
        for i in range(args.latency_targets):
            lines += [*kinds.target_lines("http", i, port), f'group = "team-{i % 40:02d}"', ""]
        path.write_text("\n".join(lines))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--headless", "--json", "--stats-every", "0",
             "--config", str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, cwd=self.workdir, preexec_fn=db._pdeathsig)
        assert self.proc.stdout is not None
        reader = cb.PipeReader(self.proc.stdout.fileno(), time.monotonic() + life)
        reader.start()
        time.sleep(args.interval + 3)   # every target started once, the schedule settled
        windows = []
        for pair in range(args.pairs):
            order = ("quiet", "scraping") if pair % 2 == 0 else ("scraping", "quiet")
            for kind in order:
                windows.append(self._window(kind, metrics_port))
        self.cleanup()
        reader.join(10)
        lines_out = reader.lines()
        rows = []
        for window in windows:
            row = cb.window_results(lines_out, window["t0"], window["t1"])
            row.update({k: v for k, v in window.items() if k not in ("t0", "t1")})
            rows.append(row)
        return {"targets": args.latency_targets, "interval_s": args.interval,
                "scrape_every_s": args.scrape_every, "rows": rows,
                "summary": _latency_summary(rows)}

    def _window(self, kind: str, port: int) -> dict[str, Any]:
        args = self.args
        t0 = time.time()
        end = time.monotonic() + args.window
        times: list[float] = []
        sizes: list[int] = []
        for _ in range(int(args.window / max(args.scrape_every, 0.05)) + 2):
            if time.monotonic() >= end:
                break
            began = time.monotonic()
            if kind == "scraping":
                took, size, _ = fetch(port)
                times.append(took)
                sizes.append(size)
            time.sleep(max(0.0, min(end, began + args.scrape_every) - time.monotonic()))
        row: dict[str, Any] = {"window": kind, "t0": t0, "t1": time.time()}
        if times:
            row.update(scrapes=len(times), scrape_p50_ms=db._r(1000 * statistics.median(times), 1),
                       scrape_max_ms=db._r(1000 * max(times), 1),
                       body_bytes=int(statistics.median(sizes)))
        return row

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.server is not None:
            self.server.close()


def _latency_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("quiet", "scraping"):
        mine = [row for row in rows if row["window"] == kind]
        out[kind] = {key: db._r(statistics.median(row[key] for row in mine), 2)
                     for key in ("error_p50_ms", "error_p95_ms", "error_p99_ms")
                     if all(row.get(key) is not None for row in mine)}
        out[kind]["probes"] = sum(row["probes"] for row in mine)
    quiet, busy = out["quiet"].get("error_p99_ms"), out["scraping"].get("error_p99_ms")
    out["p99_ratio"] = db._r(busy / quiet, 2) if quiet and busy else None
    return out


# --- report ------------------------------------------------------------------------------

def markdown(result: dict[str, Any]) -> str:
    out = [f"metrics_bench, {result['when']}, {result['machine']}", ""]
    scrape = result.get("scrape")
    if scrape:
        out += [f"/metrics with {scrape['targets']:,} targets (in-process sink, loopback HTTP):",
                "", "| scrape | time (median) | max | render | body | samples | loop stall max |",
                "|---|---|---|---|---|---|---|"]
        for name, row in scrape["rows"].items():
            out.append(f"| {name} | {row['scrape_ms']} ms | {row['scrape_max_ms']} ms | "
                       f"{row['render_ms']} ms | {row['bytes'] / 1e6:.2f} MB | "
                       f"{row['samples']:,} | {row['loop_stall_max_ms']} ms "
                       f"({row['loop_stall_idle_max_ms']} ms) |")
        out += ["", f"on_result on the loop: {scrape['on_result_us']} us per result; "
                    f"RSS {scrape['rss_mib']} MiB; the machine was "
                    f"{scrape['machine_busy_pct']} % busy (all cores, everyone)"]
        if "prometheus_client_writer_s" in scrape:
            out.append(f"prometheus-client's writer for the same samples: "
                       f"{scrape['prometheus_client_writer_s']} s")
        out.append("")
    latency = result.get("latency")
    if latency:
        out += [f"`run --headless` with {latency['targets']:,} targets at "
                f"{latency['interval_s']:g} s, /metrics fetched every "
                f"{latency['scrape_every_s']:g} s in the scraping windows:", "",
                "| window | probes | error p50 | p95 | p99 | scrapes | scrape p50 | max | body |",
                "|---|---|---|---|---|---|---|---|---|"]
        for row in latency["rows"]:
            out.append(f"| {row['window']} | {row['probes']:,} | {row['error_p50_ms']} | "
                       f"{row['error_p95_ms']} | {row['error_p99_ms']} | "
                       f"{row.get('scrapes', '-')} | {row.get('scrape_p50_ms', '-')} | "
                       f"{row.get('scrape_max_ms', '-')} | {row.get('body_bytes', '-')} |")
        out += ["", f"error p99, scraping / quiet (medians over windows): "
                    f"{latency['summary']['p99_ratio']}; the machine was "
                    f"{latency['machine_busy_pct']} % busy (all cores, everyone)"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("scrape", "latency"))
    parser.add_argument("--targets", type=int, default=10_000, help="scrape: targets (10000)")
    parser.add_argument("--latency-targets", type=int, default=10_000,
                        help="latency: targets of the headless monitor (10000)")
    parser.add_argument("--interval", type=float, default=30.0,
                        help="latency: their interval in seconds (30: 333 probes/s)")
    parser.add_argument("--window", type=float, default=60.0, help="latency: window seconds (60)")
    parser.add_argument("--pairs", type=int, default=2, help="latency: quiet/scraping pairs (2)")
    parser.add_argument("--scrape-every", type=float, default=15.0,
                        help="latency: seconds between scrapes while scraping (15, "
                             "Prometheus' usual; 1 for a stress)")
    parser.add_argument("--no-baseline", action="store_true",
                        help="scrape: skip prometheus-client's writer for comparison")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    limit = 600 + (0 if args.only == "scrape" else
                   args.window * 2 * args.pairs + args.interval * 3 + 120)
    signal.alarm(int(limit))   # an overall limit: nothing here runs forever
    result: dict[str, Any] = {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                              "machine": f"{os.cpu_count()} cores, Python "
                                         f"{platform.python_version()}"}
    def busy_since(before: tuple[float, float]) -> float | None:
        after = eb._host_busy()
        total = after[1] - before[1]
        return db._r(100.0 * (after[0] - before[0]) / total, 1) if total else None

    if args.only in (None, "scrape"):
        before = eb._host_busy()
        try:
            import uvloop
            run = uvloop.run
        except ImportError:
            run = asyncio.run
        with tempfile.TemporaryDirectory(prefix="metrics-bench-") as workdir:
            result["scrape"] = run(bench_scrape(args.targets, not args.no_baseline,
                                                Path(workdir)))
        result["scrape"]["rss_mib"] = db._r(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        result["scrape"]["machine_busy_pct"] = busy_since(before)
    if args.only in (None, "latency"):
        before = eb._host_busy()
        with tempfile.TemporaryDirectory(prefix="metrics-bench-") as workdir:
            latency = Latency(args, Path(workdir))
            try:
                result["latency"] = latency.run()
            finally:
                latency.cleanup()
        result["latency"]["machine_busy_pct"] = busy_since(before)
    print(json.dumps(result, indent=1) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
