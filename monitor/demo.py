"""A loopback demo server, so the sample config shows a lively board offline.

Endpoints: /fast, /slow, /jitter, /flaky, /failing, /hang, /json, /redirect,
/big. Started by `[demo] enabled = true` in the config or `monitor demo`.
Several monitors on one config share one demo server: whoever finds the port
taken by ours uses it (`start_or_share`).
"""

from __future__ import annotations

import asyncio
import random

import aiohttp
from aiohttp import web

from monitor import __version__

# Every answer of ours carries it, so a monitor finding the port taken can
# tell our demo server (use it) from another program (say so).
IDENTITY_HEADER = "X-Monitor-Demo"

ENDPOINTS = {
    "/fast": "answers at once",
    "/slow": "answers after 300-700 ms",
    "/jitter": "answers after 5-80 ms",
    "/flaky": "fails (500) about one time in four",
    "/failing": "always 503",
    "/hang": "never answers",
    "/json": "a JSON health document",
    "/redirect": "302 to /fast",
    "/big": "a 1 MiB body",
}


async def _fast(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _slow(_: web.Request) -> web.Response:
    await asyncio.sleep(random.uniform(0.3, 0.7))
    return web.Response(text="ok, eventually\n")


async def _jitter(_: web.Request) -> web.Response:
    await asyncio.sleep(random.uniform(0.005, 0.08))
    return web.Response(text="ok\n")


async def _flaky(_: web.Request) -> web.Response:
    if random.random() < 0.25:
        return web.Response(status=500, text="internal error (flaky by design)\n")
    return web.Response(text="ok\n")


async def _failing(_: web.Request) -> web.Response:
    return web.Response(status=503, text="service unavailable (by design)\n")


async def _hang(request: web.Request) -> web.Response:
    await asyncio.sleep(3600)   # the client's timeout ends this
    return web.Response(text="too late\n")


async def _json(_: web.Request) -> web.Response:
    return web.json_response({"status": "UP", "version": "1.4.2",
                              "checks": {"db": "UP", "queue": "UP"}})


async def _redirect(_: web.Request) -> web.Response:
    raise web.HTTPFound("/fast")


async def _big(_: web.Request) -> web.Response:
    return web.Response(body=b"x" * (1024 * 1024), content_type="text/plain")


async def _index(_: web.Request) -> web.Response:
    lines = [f"{path:10} {what}" for path, what in ENDPOINTS.items()]
    return web.Response(text="monitor demo server\n\n" + "\n".join(lines) + "\n")


async def _identify(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[IDENTITY_HEADER] = __version__


def make_app() -> web.Application:
    app = web.Application()
    app.on_response_prepare.append(_identify)
    handlers = {"/fast": _fast, "/slow": _slow, "/jitter": _jitter, "/flaky": _flaky,
                "/failing": _failing, "/hang": _hang, "/json": _json,
                "/redirect": _redirect, "/big": _big, "/": _index}
    for path, handler in handlers.items():
        app.router.add_route("*", path, handler)
    return app


class DemoServer:
    """Runs the demo app on host:port until `stop()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8917) -> None:
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(make_app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(exc.errno, f"demo server cannot listen on {self.host}:{self.port}: "
                                     f"{exc.strerror}") from None
        if self.port == 0:
            server = site._server
            if server is not None and server.sockets:
                self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def is_demo_server(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when what listens on host:port answers as this demo server."""
    address = f"[{host}]" if ":" in host else host
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(f"http://{address}:{port}/", allow_redirects=False) as response:
                return IDENTITY_HEADER in response.headers
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
        return False


async def start_or_share(host: str, port: int) -> tuple[DemoServer | None, str | None]:
    """Start the demo server, or use ours already running there (a dashboard
    open on the same config): (the server started here, to stop when done, or
    None; a note for the user, or None). Never raises: the demo targets
    failing is what the monitor is there to show."""
    server = DemoServer(host, port)
    try:
        await server.start()
    except OSError as exc:
        if await is_demo_server(host, port):
            return None, f"using the demo server already running on {host}:{port}"
        return None, (f"{exc.strerror or exc} (another program has it); "
                      "the demo targets will fail")
    return server, None
