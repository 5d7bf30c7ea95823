"""The HTTP server behind /metrics: its own threads, never the probes' loop.

A scrape renders in the thread that took the connection, so the engine's
loop only ever answers a quick question (the engine's own figures, see
`sink.py`). Connections are bounded (a client that opens hundreds cannot
make hundreds of threads) and idle ones time out; nothing is logged per
request.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import zlib
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_CLIENTS = 8           # Prometheus pairs scrape one at a time each; a few spare for people
IDLE_TIMEOUT = 10.0       # seconds a connection may sit without sending its request
# Level 1: most of level 9's saving (repetitive label text: 20 MB to 1.1 MB)
# at a fraction of its CPU, and zlib lets go of the GIL while it works.
GZIP_LEVEL = 1
POLL = 0.2                # seconds: how soon close() returns


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer
    timeout = IDLE_TIMEOUT
    protocol_version = "HTTP/1.1"   # keep-alive: Prometheus reuses its connection
    server_version = "monitor"

    def do_GET(self) -> None:   # noqa: N802 (http.server's naming)
        self._answer(with_body=True)

    def do_HEAD(self) -> None:   # noqa: N802
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body = self.server.render()
            except Exception:   # our bug: say so to the scraper, keep serving
                log.exception("rendering /metrics failed")
                self._send(500, b"rendering the metrics failed; see the monitor's log\n",
                           "text/plain; charset=utf-8", with_body)
                return
            self._send(200, body, CONTENT_TYPE, with_body, compressible=True)
        elif path == "/":
            self._send(200, b'<html><head><title>monitor</title></head><body>'
                            b'<p><a href="/metrics">/metrics</a></p></body></html>\n',
                       "text/html; charset=utf-8", with_body)
        else:
            self._send(404, b"not found: try /metrics\n", "text/plain; charset=utf-8", with_body)

    def _send(self, status: int, body: bytes | Sequence[bytes], content_type: str,
              with_body: bool, compressible: bool = False) -> None:
        parts = [body] if isinstance(body, bytes) else list(body)
        zipped = (compressible and "gzip" in self.headers.get("Accept-Encoding", "")
                  and (self.server.compress_loopback or not self._from_loopback()))
        if zipped:   # part by part: zlib lets go of the GIL while it works on each
            packer = zlib.compressobj(GZIP_LEVEL, wbits=31)   # 31: a gzip stream
            parts = [packer.compress(part) for part in parts] + [packer.flush()]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if zipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(sum(map(len, parts))))
        self.end_headers()
        if with_body:
            for part in parts:
                self.wfile.write(part)

    def _from_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.client_address[0]).is_loopback
        except ValueError:
            return False

    def log_message(self, format: str, *args: object) -> None:   # noqa: A002
        pass   # a line per scrape on the monitor's stderr helps no one


class MetricsServer(ThreadingHTTPServer):
    """Serves `render()` (the body's parts) at /metrics on (host, port). Binds in the
    constructor (OSError if it cannot); `start` serves from a thread."""

    daemon_threads = True
    # Compression is for networks: over loopback it only spends the CPU the
    # probes need (20 MB at level 1: ~60 ms a scrape), so a Prometheus on the
    # same machine gets plain text whatever it accepts.
    compress_loopback = False
    allow_reuse_address = True   # a restarted monitor gets its port back at once
    request_queue_size = 16

    def __init__(self, host: str, port: int,
                 render: Callable[[], Sequence[bytes]]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.render = render
        self._clients = threading.BoundedSemaphore(MAX_CLIENTS)
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}/metrics"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": POLL},
                                        name="metrics-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening; blocks up to POLL seconds (call it off the loop)."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()

    def process_request(self, request: socket.socket, client_address: object) -> None:
        if not self._clients.acquire(blocking=False):   # over the bound: turned away at once
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._clients.release()
