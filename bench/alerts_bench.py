#!/usr/bin/env python3
"""Alerts under flapping: every alert delivered once, probing undisturbed.

N http targets (100 by default), probed every second, flap: a loopback server
(its own process, so its CPU is not ours) answers each target 200 or 503 in
turns of `--flap` seconds, each target at its own phase. The same engine runs
twice in this process, one after the other, for `--seconds` each:

  (a) without alerts: the engine and a sink that only records latencies
  (b) with alerts: the same, plus the AlertSink sending every DOWN and UP
      to a webhook receiver in a process of its own (failure_threshold 1,
      recheck off, so every flip is a transition and an alert)

in `--rounds` alternating blocks (a b, b a, ...) that share the machine's
noise: on a busy machine two back-to-back runs of (a) alone differ in p99
by up to 2x, so a ratio from one block each would mostly measure the noise.

It reports the transitions (b) saw and the alerts they should make (each
DOWN, each UP out of DOWN), what the receiver got (unique ids), lost and
duplicated alerts, the sink's outcomes, and probe latency p50/p99 with and
without alerts (ratio b/a): the alerting work must not show in measurements.

    python bench/alerts_bench.py [--targets 100] [--seconds 60] [--rounds 6] [--flap 4] [--json]

Traffic goes to 127.0.0.1 only; the server process dies with the parent and
has its own deadline; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = r"""
import asyncio, json, os, sys, time
from aiohttp import web
flap, deadline = float(sys.argv[1]), time.monotonic() + float(sys.argv[2])
ids = []
async def target(request):
    phase = int(request.match_info["n"]) * 0.37
    up = int((time.monotonic() + phase) // flap) % 2 == 0
    return web.Response(status=200 if up else 503, text="ok" if up else "flapping")
async def hook(request):
    ids.append((await request.json())["id"])
    return web.Response(text="ok")
async def got(request):
    return web.json_response(ids)
async def main():
    app = web.Application()
    app.router.add_get("/t/{n}", target)
    app.router.add_post("/hook", hook)
    app.router.add_get("/ids", got)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(site._server.sockets[0].getsockname()[1], flush=True)
    while time.monotonic() < deadline and sys.stdin.readable():
        await asyncio.sleep(0.5)
asyncio.run(main())
"""


def config_text(port: int, hook_port: int, targets: int, alerts: bool) -> str:
    text = ('[settings]\ninterval = "1s"\ntimeout = "900ms"\nfailure_threshold = 1\n'
            'recheck = false\n')
    for i in range(targets):
        text += f'\n[[targets]]\nname = "t{i}"\nkind = "http"\nurl = "http://127.0.0.1:{port}/t/{i}"\n'
    if alerts:
        text += (f'\n[[alerts]]\nname = "hook"\nkind = "webhook"\n'
                 f'url = "http://127.0.0.1:{hook_port}/hook"\ntimeout = "5s"\n')
    return text


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def run(port: int, hook_port: int, targets: int, seconds: float, alerts: bool,
              state: Path) -> dict[str, Any]:
    from monitor.alerts.sink import AlertSink
    from monitor.config import parse_config
    from monitor.engine.host import EngineHost
    from monitor.engine.sinks import CallbackSink
    from monitor.engine.state import State

    config = parse_config(config_text(port, hook_port, targets, alerts), state.parent / "bench.toml")
    latencies: list[float] = []
    expected = {"down": 0, "up": 0}

    def on_transition(t: Any) -> None:
        if t.to_state is State.DOWN:
            expected["down"] += 1
        elif t.from_state is State.DOWN and t.to_state is State.UP:
            expected["up"] += 1

    sinks: list[Any] = [CallbackSink(
        on_result=lambda r: latencies.append(r.latency_ms) if r.latency_ms is not None else None,
        on_transition=on_transition)]
    alert_sink = AlertSink(config, state=state) if alerts else None
    if alert_sink is not None:
        sinks.append(alert_sink)
    host = EngineHost(config, sinks, stop_on=(), settle_heap=False)
    await host.start()
    await asyncio.sleep(seconds)
    await host.close()   # flushes the alert sink: queued deliveries finish
    out: dict[str, Any] = {"latencies": latencies}
    if alert_sink is not None:
        out.update(expected=expected["down"] + expected["up"], expected_down=expected["down"],
                   expected_up=expected["up"], outcomes=dict(alert_sink.counts))
    return out


def merge(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [v for b in blocks for v in b["latencies"]]
    out: dict[str, Any] = {"probes": len(latencies), "p50_ms": percentile(latencies, 0.5),
                           "p99_ms": percentile(latencies, 0.99),
                           "p99_per_block_ms": [round(percentile(b["latencies"], 0.99), 2)
                                                for b in blocks]}
    if "expected" in blocks[0]:
        for key in ("expected", "expected_down", "expected_up"):
            out[key] = sum(b[key] for b in blocks)
        out["outcomes"] = {}
        for b in blocks:
            for outcome, count in b["outcomes"].items():
                out["outcomes"][outcome] = out["outcomes"].get(outcome, 0) + count
    return out


async def fetch_ids(port: int) -> list[str]:
    import aiohttp
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/ids") as response:
            return await response.json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--flap", type=float, default=4.0, help="seconds between flips")
    parser.add_argument("--rounds", type=int, default=6, help="alternating blocks per condition")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # targets and the webhook receiver in two processes of their own: the
    # receiver's work must not slow the targets' answers in condition (b)
    servers = [subprocess.Popen([sys.executable, "-c", SERVER, str(args.flap),
                                 str(args.seconds * 2 + 120)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        port, hook_port = (int(server.stdout.readline()) for server in servers)  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory() as temp:
            state = Path(temp) / "alerts.json"
            try:
                import uvloop
                runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
            except ImportError:
                runner = asyncio.Runner()
            block = args.seconds / args.rounds
            runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
            with runner:
                started = time.monotonic()
                for round_ in range(args.rounds):
                    for alerts in ((False, True) if round_ % 2 == 0 else (True, False)):
                        # a fresh state file per block: each block's alerts stand alone
                        runs[alerts].append(runner.run(run(
                            port, hook_port, args.targets, block, alerts,
                            state.with_name(f"alerts-{round_}.json"))))
                ids = runner.run(fetch_ids(hook_port))
                wall = time.monotonic() - started
            bare, alerting = merge(runs[False]), merge(runs[True])
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
    unique = len(set(ids))
    report = {
        "targets": args.targets, "seconds": args.seconds, "rounds": args.rounds,
        "flap_s": args.flap,
        "python": sys.version.split()[0], "wall_s": round(wall, 1),
        "without_alerts": bare, "with_alerts": alerting,
        "received": len(ids), "unique": unique, "duplicated": len(ids) - unique,
        "lost": alerting["expected"] - unique,
        "p99_ratio": round(alerting["p99_ms"] / bare["p99_ms"], 3),
        "p50_ratio": round(alerting["p50_ms"] / bare["p50_ms"], 3),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.targets} targets flapping every {args.flap:g}s, {args.seconds:g}s per condition "
          f"in {args.rounds} blocks "
          f"(Python {report['python']}, pid {os.getpid()})\n")
    print("| condition | probes | p50 ms | p99 ms (per block) |\n|---|---|---|---|")
    for name, row in (("without alerts", bare), ("with alerts", alerting)):
        print(f"| {name} | {row['probes']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
              f"({', '.join(map(str, row['p99_per_block_ms']))}) |")
    print(f"\np99 with/without: {report['p99_ratio']}x, p50: {report['p50_ratio']}x")
    print(f"alerts expected {alerting['expected']} ({alerting['expected_down']} down, "
          f"{alerting['expected_up']} up), received {len(ids)}, unique {unique}, "
          f"lost {report['lost']}, duplicated {report['duplicated']}; "
          f"sink outcomes {alerting['outcomes']}")
    return 0 if report["lost"] == 0 and report["duplicated"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
