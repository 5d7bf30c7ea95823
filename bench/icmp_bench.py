#!/usr/bin/env python3
"""The ICMP engine's CPU per probe against the floor: a minimal asyncio pinger.

All run on uvloop (when installed), one process each, one after the other
(`--repeat` rounds, the order reversed every other round), on the same
workload: N hosts 127.0.0.1..N, one echo each per second (`count = 1`,
56-byte payload).

  engine  monitor's Engine with N `kind = "icmp"` targets, results consumed
          by a callback that drops them (no UI, no JSON).
  floor   the least an asyncio program can do: one raw socket, one task per
          host that sends an echo, waits for its reply on a future resolved
          by the socket's reader, and sleeps out the second. No statistics,
          no timeouts beyond the wait, no results. Starts spread evenly.
  floor-grid
          the same, with starts on the engine's grid (BATCH_SLOT, 250 ms):
          the floor for what the engine does since it batches ICMP starts.

CPU is getrusage(RUSAGE_SELF) user+sys over the window after a warm-up, per
echo and in percent of one core. sys includes the kernel's loopback echo
handling, which runs in the sender's system call. Needs root for raw sockets
(the engine can use unprivileged datagram sockets, the floor cannot).
Traffic goes to 127.0.0.0/8 only; each run is bounded by its window.

    sudo python bench/icmp_bench.py [--hosts 100] [--seconds 15] [--warmup 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = 0.25                    # monitor.engine.scheduler.BATCH_SLOT
CHILDREN = ("engine", "floor", "floor-grid")


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _run(main: object) -> None:
    try:
        import uvloop
        uvloop.run(main)  # type: ignore[arg-type]
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]


async def _measure(count: list[int], warmup: float, seconds: float) -> dict[str, float]:
    await asyncio.sleep(warmup)
    done0, (user0, sys0), wall0 = count[0], _cpu(), time.perf_counter()
    await asyncio.sleep(seconds)
    done1, (user1, sys1), wall1 = count[0], _cpu(), time.perf_counter()
    echoes = max(1, done1 - done0)
    return {"echoes": echoes, "user_us": 1e6 * (user1 - user0) / echoes,
            "sys_us": 1e6 * (sys1 - sys0) / echoes,
            "cpu_pct": 100 * ((user1 - user0) + (sys1 - sys0)) / (wall1 - wall0)}


def engine_child(hosts: int, warmup: float, seconds: float) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from monitor.config import parse_config
    from monitor.engine.scheduler import Engine

    lines = ["[settings]", 'interval = "1s"', 'timeout = "900ms"', ""]
    for i in range(1, hosts + 1):
        lines += ["[[targets]]", f'name = "h{i}"', 'kind = "icmp"', f'host = "127.0.0.{i}"',
                  "count = 1", 'wait = "800ms"', ""]
    config = parse_config("\n".join(lines), Path("icmp-bench.toml"))
    out: dict[str, float] = {}

    async def main() -> None:
        count = [0]

        def on_result(_: object) -> None:
            count[0] += 1

        engine = Engine(config, on_result=on_result)
        await engine.start()
        try:
            out.update(await _measure(count, warmup, seconds))
        finally:
            await engine.stop()

    _run(main())
    return out


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def floor_child(hosts: int, warmup: float, seconds: float,
                grid: float | None = None) -> dict[str, float]:
    out: dict[str, float] = {}
    ident = os.getpid() & 0xFFFF

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        sock.setblocking(False)
        pending: dict[int, asyncio.Future[None]] = {}
        count, seq = [0], [0]

        def readable() -> None:
            while True:
                try:
                    data = sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    return
                kind, _, _, pid, number = struct.unpack_from("!BBHHH", data, 20)
                if kind == 0 and pid == ident:
                    waiter = pending.pop(number, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)

        start = loop.time()

        async def host(index: int) -> None:
            offset = index / hosts
            if grid:   # hosts in the same slot share the exact same deadlines
                offset = math.ceil(offset / grid - 1e-9) * grid
            due = start + offset
            while True:
                await asyncio.sleep(max(0.0, due - loop.time()))
                seq[0] = number = (seq[0] + 1) & 0xFFFF
                packet = struct.pack("!BBHHH", 8, 0, 0, ident, number) + bytes(56)
                packet = packet[:2] + struct.pack("!H", _checksum(packet)) + packet[4:]
                waiter = pending[number] = loop.create_future()
                sock.sendto(packet, (f"127.0.0.{index + 1}", 0))
                try:   # not wait_for: on 3.11 it can swallow the final cancel
                    async with asyncio.timeout(0.8):
                        await waiter
                except TimeoutError:
                    pending.pop(number, None)
                count[0] += 1
                due += 1.0

        loop.add_reader(sock.fileno(), readable)
        tasks = [asyncio.create_task(host(i)) for i in range(hosts)]
        try:
            out.update(await _measure(count, warmup, seconds))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.remove_reader(sock.fileno())
            sock.close()

    _run(main())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=100, help="hosts 127.0.0.1..N (100)")
    parser.add_argument("--seconds", type=float, default=15.0, help="window (15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up (3)")
    parser.add_argument("--repeat", type=int, default=3, help="pairs (3)")
    parser.add_argument("--child", choices=("engine", "floor", "floor-grid"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.hosts <= 254:
        parser.error("--hosts must be 1..254 (addresses 127.0.0.1..N)")
    if args.child == "engine":
        print(json.dumps(engine_child(args.hosts, args.warmup, args.seconds)))
        return 0
    if args.child:
        grid = GRID if args.child == "floor-grid" else None
        print(json.dumps(floor_child(args.hosts, args.warmup, args.seconds, grid)))
        return 0
    if os.geteuid() != 0:
        print("icmp_bench: the floor pinger needs a raw ICMP socket: run as root",
              file=sys.stderr)
        return 2
    rows: list[tuple[str, dict[str, float]]] = []
    for pair in range(args.repeat):
        order = CHILDREN if pair % 2 == 0 else CHILDREN[::-1]
        for child in order:
            done = subprocess.run(
                [sys.executable, __file__, "--child", child, "--hosts", str(args.hosts),
                 "--seconds", str(args.seconds), "--warmup", str(args.warmup)],
                capture_output=True, text=True, timeout=args.seconds + args.warmup + 60)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            rows.append((child, json.loads(done.stdout.strip().splitlines()[-1])))
    print(f"{args.hosts} loopback hosts, one echo each per second, window {args.seconds:g} s\n")
    print("| run | echoes | user µs/echo | sys µs/echo | CPU % of a core |")
    print("|---|---:|---:|---:|---:|")
    for child, row in rows:
        print(f"| {child} | {row['echoes']:.0f} | {row['user_us']:.0f} | {row['sys_us']:.0f} "
              f"| {row['cpu_pct']:.2f} |")
    print()
    for child in CHILDREN:
        cpu = [row["cpu_pct"] for name, row in rows if name == child]
        print(f"{child}: median {statistics.median(cpu):.2f} % of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
