"""Real receivers on loopback and a real engine tracker, for the alert tests.

`Receiver`: an aiohttp server that records every request it gets (JSON,
forms) and answers per path as the test says: a status, or never (hang).
`Feed`: turns "this target answered up/down" into real ProbeResults and the
Transitions the engine's own Tracker makes of them, stamped by a test clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.alerts.policy import Clock
from monitor.config import Config, parse_config
from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import Tracker
from monitor.probes.base import CertFacts

START = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)   # a Monday


class FakeClock(Clock):
    def __init__(self, at: datetime = START) -> None:
        self.now, self.mono = at, 1000.0
        super().__init__(wall=lambda: self.now, monotonic=lambda: self.mono)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.mono += seconds


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, str] | None = None


@dataclass
class Receiver:
    base: str = ""
    got: list[Request] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)   # path -> status (default 200)
    hang: set[str] = field(default_factory=set)            # paths that never answer

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def at(self, path: str) -> list[Request]:
        return [r for r in self.got if r.path == "/" + path]

    def events(self, path: str) -> list[str]:
        return [r.json["event"] for r in self.at(path)]

    async def wait(self, path: str, count: int, timeout: float = 10.0) -> list[Request]:
        for _ in range(int(timeout / 0.02)):
            if len(self.at(path)) >= count:
                return self.at(path)
            await asyncio.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.at(path))} requests, wanted {count}: "
                             f"{[r.body[:120] for r in self.at(path)]}")

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        got = Request(request.path, dict(request.headers), body)
        if request.content_type == "application/json":
            got.json = await request.json()
        elif request.content_type == "application/x-www-form-urlencoded":
            got.form = dict(await request.post())
        self.got.append(got)
        name = request.path.lstrip("/")
        if name in self.hang:
            await asyncio.sleep(3600)
        # the path echoed back: a secret in it must be masked wherever the answer is shown
        return web.Response(status=self.status.get(name, 200), text=f"thanks for {request.path}")


@pytest.fixture
async def receiver():
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", found.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    yield found
    await runner.cleanup()


def config(text: str, environ: dict[str, str] | None = None, path: str = "/x/monitor.toml"
           ) -> Config:
    return parse_config(textwrap.dedent(text), path, environ or {})


def targets(*names: str, interval: str = "10s", threshold: int = 2, extra: str = "") -> str:
    """[[targets]] blocks of tcp targets on a closed loopback port."""
    return "".join(f'\n[[targets]]\nname = "{n}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 9\n'
                   f'interval = "{interval}"\nfailure_threshold = {threshold}\n{extra}'
                   for n in names)


class Feed:
    """Results in, the engine's own transitions out, into a policy or sink."""

    def __init__(self, cfg: Config, into: Any, clock: FakeClock) -> None:
        self.into, self.clock = into, clock
        self.trackers = {t.name: Tracker(t.name, t.failure_threshold, t.success_threshold,
                                         clock.mono) for t in cfg.targets}
        self.kinds = {t.name: (t.kind, t.display_target) for t in cfg.targets}

    def __call__(self, name: str, status: str, reason: str | None = None,
                 cert_days: float | None = None) -> list[Any]:
        kind, shown = self.kinds[name]
        cert = None
        if cert_days is not None:
            cert = CertFacts(expires_at=self.clock.now + timedelta(days=cert_days))
        result = ProbeResult(name, kind, shown, Status(status), 1.5 if status != "down" else None,
                             {"connect": 0.2}, reason if status != "up" else None,
                             self.clock.now, cert=cert)
        out = list(self.into.on_result(result) or [])
        transition = self.trackers[name].observe(result, self.clock.mono)
        if transition is not None:
            out += self.into.on_transition(dataclasses.replace(transition, at=self.clock.now)) or []
        return out


def write_script(path: Path, body: str) -> list[str]:
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]
