"""Loopback HTTP servers for the http probe tests.

Two kinds, both on 127.0.0.1 with a free port, both torn down when their
`async with` block ends:

* `app_server`: a well-behaved aiohttp.web application that records every
  request it sees (method, path, headers, body, client port);
* `raw_server`: an asyncio stream server running a hand-written handler for
  servers that misbehave (hang, drip, reset, speak garbage). Its handler tasks
  are cancelled and its connections aborted on exit, so no test waits on a
  peer that outlived it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from monitor.config import Target, parse_config
from monitor.engine.result import ProbeResult
from monitor.engine.runner import run_probe
from monitor.probes.base import ProbeContext

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
Handler = Callable[[Reader, Writer], Awaitable[None]]
_PEER_GONE = (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError,
              asyncio.LimitOverrunError, OSError)
MAX_LOOPS = 100   # every server-side loop is bounded


# --- well-behaved: aiohttp.web -----------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


@dataclass
class AppServer:
    port: int
    scheme: str = "http"
    host: str = "127.0.0.1"
    requests: list[Seen] = field(default_factory=list)

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    @property
    def origin(self) -> str:
        return self.url("")


def recording(requests: list[Seen]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        requests.append(Seen(request.method, request.path_qs, dict(request.headers), body,
                             peer[1] if peer else 0))
        return await handler(request)
    return middleware


@asynccontextmanager
async def app_server(routes: list[web.RouteDef], *, ssl_context: ssl.SSLContext | None = None,
                     host: str = "127.0.0.1") -> AsyncIterator[AppServer]:
    """Serve `routes`; yields an AppServer with the port and the request log."""
    requests: list[Seen] = []
    app = web.Application(middlewares=[recording(requests)])
    app.add_routes(routes)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        yield AppServer(port, "https" if ssl_context else "http", host, requests)
    finally:
        await runner.cleanup()


# --- misbehaving: raw asyncio streams ----------------------------------------------

@asynccontextmanager
async def raw_server(handler: Handler, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """Run `handler` for each connection; yields the port."""
    writers: set[Writer] = set()
    tasks: set[asyncio.Task[Any]] = set()

    async def connection(reader: Reader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        writers.add(writer)
        tasks.add(task)
        try:
            await handler(reader, writer)
        except _PEER_GONE:
            pass
        finally:
            writers.discard(writer)
            tasks.discard(task)
            writer.transport.abort()

    server = await asyncio.start_server(connection, host, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that was bound but never listens: connecting is refused. It stays
    bound for the block, so no other process can start listening on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


async def read_head(reader: Reader) -> bytes:
    """The request line and headers (the probe's requests carry no body here)."""
    return await reader.readuntil(b"\r\n\r\n")


def reset(writer: Writer) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def hang(reader: Reader, writer: Writer) -> None:
    """Read the request, then never answer."""
    await read_head(reader)
    await asyncio.sleep(30)


async def never_read(reader: Reader, writer: Writer) -> None:
    """Accept, then neither read nor write."""
    await asyncio.sleep(30)


async def close_silently(reader: Reader, writer: Writer) -> None:
    """Read the request and close with a FIN, no answer."""
    await read_head(reader)
    writer.close()


def garbage(text: bytes = b"SSH-2.0-OpenSSH_9.6\r\n") -> Handler:
    """Answer with something that is not HTTP (an SSH banner by default)."""
    async def handler(reader: Reader, writer: Writer) -> None:
        await read_head(reader)
        writer.write(text)
        await writer.drain()
        await asyncio.sleep(30)
    return handler


def reset_mid_body(length: int = 1000, sent: int = 100) -> Handler:
    """Promise `length` bytes, send `sent`, then reset the connection."""
    async def handler(reader: Reader, writer: Writer) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\n\r\n" % length + b"x" * sent)
        await writer.drain()
        await asyncio.sleep(0.05)   # let the client read headers and the first bytes
        reset(writer)
    return handler


def close_mid_body(length: int = 1000, sent: int = 100) -> Handler:
    """Promise `length` bytes, send `sent`, then close cleanly (FIN)."""
    async def handler(reader: Reader, writer: Writer) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length + b"x" * sent)
        await writer.drain()
        writer.close()
    return handler


def drip(every: float = 0.1, count: int = 50) -> Handler:
    """Send headers for a long body, then one byte every `every` seconds."""
    async def handler(reader: Reader, writer: Writer) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % count)
        for _ in range(min(count, MAX_LOOPS)):
            await writer.drain()
            await asyncio.sleep(every)
            writer.write(b".")
        await writer.drain()
    return handler


def big_then_hang(length: int, sent: int) -> Handler:
    """Promise `length` bytes, send `sent` quickly, then stall forever."""
    async def handler(reader: Reader, writer: Writer) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
        writer.write(b"y" * sent)
        await writer.drain()
        await asyncio.sleep(30)
    return handler


# --- targets -----------------------------------------------------------------------

def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}"
                                for k, v in value.items()) + " }"
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def config_text(url: str, timeout: str = "1s", **options: object) -> str:
    lines = ["[[targets]]", 'name = "web"', 'kind = "http"', f'timeout = "{timeout}"',
             f"url = {toml_value(url)}"]
    lines += [f"{key} = {toml_value(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def http_target(url: str, timeout: str = "1s", **options: object) -> Target:
    """A target built the way users build them: from TOML through the loader."""
    return parse_config(config_text(url, timeout, **options)).targets[0]


async def probe(url: str, timeout: str = "1s", *, ctx: ProbeContext | None = None,
                **options: object) -> ProbeResult:
    """Probe once; a context made here is closed here."""
    own = ctx is None
    ctx = ctx or ProbeContext()
    try:
        return await run_probe(http_target(url, timeout, **options), ctx)
    finally:
        if own:
            await ctx.close()
