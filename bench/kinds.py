"""Probe kinds for engine_bench.py: for each, the loopback target server, the
engine's config for N targets, and the bare client's one probe.

  http  aiohttp.web answering every path after DELAY (engine_bench's original
        workload); the bare probe is one aiohttp GET on a fresh connection.
        GET /_count answers at once with the requests received so far (itself
        excepted) and the server's clock; /_count?from=T0&to=T1 adds how many
        arrived between two time.time() values (for cli_bench.py).
  dns   a UDP responder answering every A query with 127.0.0.1 after DELAY
        (replies built with dnspython); the bare probe is dnspython's own
        `asyncquery.udp`, the shortest correct client there is.
  tls   a TLS server (a self-signed certificate made at start) that completes
        the handshake and closes; no delay, so the "error" column is the whole
        handshake. The bare probe is asyncio.open_connection(ssl=...) and close.

Each server runs until `stop` is set. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from array import array
from bisect import bisect_left
import os
import socket
import ssl
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

HOST = "127.0.0.1"
QUERY_NAME = "bench.test."
DELAY_S = {"http": 0.020, "dns": 0.020, "tls": 0.0}
COUNT_PATH = "/_count"   # http: {"requests": received so far, "time": the server's time.time()}
COUNT_KEPT = 20_000_000  # arrival times kept for /_count?from=&to= (8 bytes each)


# --- servers ---------------------------------------------------------------------

def _listening_socket(port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((HOST, port))
    sock.setblocking(False)
    return sock


async def serve_http(port: int, ready: Callable[[int], None], stop: asyncio.Event) -> None:
    from aiohttp import web

    seen = 0                  # requests received, /_count itself excepted
    arrivals = array("d")     # time.time() of each (the first COUNT_KEPT), in order

    async def answer(_: web.Request) -> web.Response:
        nonlocal seen
        seen += 1
        if len(arrivals) < COUNT_KEPT:
            arrivals.append(time.time())
        await asyncio.sleep(DELAY_S["http"])
        return web.Response(text="ok")

    async def count(request: web.Request) -> web.Response:
        # the server's own count, at once (cli_bench checks clients' claims against it);
        # ?from=T0&to=T1 (time.time() values) adds the requests that arrived in [T0, T1)
        body: dict[str, Any] = {"requests": seen, "time": time.time(),
                                "complete": seen == len(arrivals)}
        if "from" in request.query and "to" in request.query:
            low, high = float(request.query["from"]), float(request.query["to"])
            body["window"] = bisect_left(arrivals, high) - bisect_left(arrivals, low)
        return web.json_response(body)

    app = web.Application()
    app.router.add_get(COUNT_PATH, count)
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    sock = _listening_socket(port)
    await web.SockSite(runner, sock, backlog=4096).start()
    ready(sock.getsockname()[1])
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


class _DnsResponder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        import dns.message
        import dns.rrset
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        reply = dns.message.make_response(query)
        question = query.question[0]
        reply.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "127.0.0.1"))
        wire = reply.to_wire()
        asyncio.get_running_loop().call_later(DELAY_S["dns"], self._send, wire, addr)

    def _send(self, wire: bytes, addr: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


async def serve_dns(port: int, ready: Callable[[int], None], stop: asyncio.Event) -> None:
    sock = _listening_socket(port, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        _DnsResponder, sock=sock)
    ready(sock.getsockname()[1])
    try:
        await stop.wait()
    finally:
        transport.close()


def _self_signed_context() -> ssl.SSLContext:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("bench.test")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        cert_path, key_path = os.path.join(folder, "c.pem"), os.path.join(folder, "k.pem")
        with open(cert_path, "wb") as out:
            out.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as out:
            out.write(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
        context.load_cert_chain(cert_path, key_path)
    return context


async def serve_tls(port: int, ready: Callable[[int], None], stop: asyncio.Event) -> None:
    async def handshake_then_close(reader: asyncio.StreamReader,
                                   writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.read(1), 5)   # the client closes after the handshake
        except (OSError, TimeoutError, ssl.SSLError):
            pass
        finally:
            writer.transport.abort()

    sock = _listening_socket(port)
    server = await asyncio.start_server(handshake_then_close, sock=sock, backlog=4096,
                                        ssl=_self_signed_context())
    ready(sock.getsockname()[1])
    try:
        await stop.wait()
    finally:
        server.close()


SERVERS: dict[str, Callable[[int, Callable[[int], None], asyncio.Event], Awaitable[None]]] = {
    "http": serve_http, "dns": serve_dns, "tls": serve_tls}


# --- the engine's targets ----------------------------------------------------------------

def target_lines(kind: str, index: int, port: int) -> list[str]:
    head = ["[[targets]]", f'name = "t{index}"', f'kind = "{kind}"']
    if kind == "http":
        return head + [f'url = "http://{HOST}:{port}/t{index}"']
    if kind == "dns":
        return head + [f'query_name = "{QUERY_NAME}"', f'server = "{HOST}"', f"port = {port}"]
    return head + [f'host = "{HOST}"', f"port = {port}", 'server_name = "bench.test"',
                   "verify_tls = false"]


# --- the bare client's probe: True when it answered well ----------------------------------

class BareProbe:
    """One kind's minimal probe; `open` and `close` hold shared resources."""

    def __init__(self, kind: str, port: int) -> None:
        self.kind, self.port = kind, port
        self._session: Any = None
        self._ssl: ssl.SSLContext | None = None

    async def open(self) -> None:
        if self.kind == "http":
            import aiohttp
            connector = aiohttp.TCPConnector(force_close=True, use_dns_cache=False, limit=0)
            self._session = aiohttp.ClientSession(connector=connector)
        elif self.kind == "tls":
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._ssl.check_hostname = False
            self._ssl.verify_mode = ssl.CERT_NONE

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def once(self, index: int) -> bool:
        if self.kind == "http":
            async with self._session.get(f"http://{HOST}:{self.port}/t{index}") as resp:
                await resp.read()
                return 200 <= resp.status < 300
        if self.kind == "dns":
            import dns.asyncquery
            import dns.message
            reply = await dns.asyncquery.udp(dns.message.make_query(QUERY_NAME, "A"),
                                             HOST, port=self.port)
            return reply.rcode() == 0 and bool(reply.answer)
        _, writer = await asyncio.open_connection(HOST, self.port, ssl=self._ssl,
                                                  server_hostname="bench.test")
        writer.transport.abort()
        return True
