"""A loopback HTTP server whose behaviour per path the test controls."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from aiohttp import web


@dataclass
class Behaviour:
    status: int = 200
    delay: float = 0.0


@dataclass
class ControlServer:
    port: int = 0
    behaviour: dict[str, Behaviour] = field(default_factory=lambda: defaultdict(Behaviour))
    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total_in_flight: int = 0
    max_total_in_flight: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.arrivals[path].append(time.perf_counter())
        self.in_flight[path] += 1
        self.total_in_flight += 1
        self.max_in_flight[path] = max(self.max_in_flight[path], self.in_flight[path])
        self.max_total_in_flight = max(self.max_total_in_flight, self.total_in_flight)
        try:
            behaviour = self.behaviour[path]
            if behaviour.delay:
                await asyncio.sleep(behaviour.delay)
            return web.Response(status=behaviour.status, text="ok")
        finally:
            self.in_flight[path] -= 1
            self.total_in_flight -= 1


@pytest.fixture
async def control_server():
    server = ControlServer()
    app = web.Application()
    app.router.add_get("/{path}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = site._server.sockets[0].getsockname()[1]
    yield server
    await runner.cleanup()
