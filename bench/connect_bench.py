#!/usr/bin/env python3
"""CPU per TCP connect on loopback: the event loop's sock_connect against
monitor's net.connect_socket (connect, then wait until writable), on uvloop
and on asyncio's own loop.

uvloop's sock_connect resolves the (already numeric) address again on libuv's
thread pool: it asks getaddrinfo without a socket type, which misses its
numeric fast path. That is a thread hand-off and an extra loop wake-up per
connect. The figure includes the accept and both closes, all in this process.

    python bench/connect_bench.py [--connects 2000] [--rounds 5]

Bounded: a fixed number of connects per round, all to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
from typing import Any

from monitor.probes.net import connect_socket


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)   # every thread of the process
    return usage.ru_utime + usage.ru_stime


async def _measure(way: str, connects: int, rounds: int) -> list[float]:
    loop = asyncio.get_running_loop()
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    server.setblocking(False)
    address = server.getsockname()

    def accept_all() -> None:
        for _ in range(4096):
            try:
                server.accept()[0].close()
            except BlockingIOError:
                return

    async def once() -> None:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            if way == "sock_connect":
                await loop.sock_connect(sock, address)
            else:
                await connect_socket(sock, address)
        finally:
            sock.close()

    loop.add_reader(server, accept_all)
    try:
        for _ in range(min(300, connects)):   # warm-up (and the thread pool started)
            await once()
        per_connect = []
        for _ in range(rounds):
            begin = _cpu()
            for _ in range(connects):
                await once()
            per_connect.append((_cpu() - begin) / connects * 1e6)
        return per_connect
    finally:
        loop.remove_reader(server)
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connects", type=int, default=2000, help="per round (2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per way and loop (5)")
    args = parser.parse_args()
    loops: dict[str, Any] = {"asyncio": None}
    try:
        import uvloop
        loops = {"uvloop": uvloop.new_event_loop, **loops}
    except ImportError:
        pass
    print("| loop | way | CPU us per connect, median [min-max] |\n|---|---|---:|")
    for name, factory in loops.items():
        for way in ("sock_connect", "connect_socket"):
            with asyncio.Runner(loop_factory=factory) as runner:
                figures = runner.run(_measure(way, args.connects, args.rounds))
            print(f"| {name} | {way} | {statistics.median(figures):.1f} "
                  f"[{min(figures):.1f}-{max(figures):.1f}] |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
