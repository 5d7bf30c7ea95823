"""TCP probe: connect (optionally TLS), optionally send a line, and check
what comes back, e.g. an SMTP "220" banner or Redis "+PONG"."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from monitor.config.durations import format_duration
from monitor.config.fields import (
    in_range, option, to_bool, to_float, to_int, to_regex, to_size, to_str)
from monitor.probes import net
from monitor.probes.base import Outcome, PhaseTimer, Probe, ProbeContext, ProbeFailure
from monitor.probes.errors import describe_error
from monitor.probes.text import printable
from monitor.probes.tls import judge_tls

# After a complete line has arrived without the expected text, this much
# silence means the peer has said all it will (Nagios check_tcp waits 2 s).
QUIET = 0.5
# Our own read deadline fires this much before the runner's, so a slow
# partial answer can be shown in the reason.
DEADLINE_MARGIN = 0.005
EXCERPT_CHARS = 60
# expect_regex is searched again over the new bytes plus this many before
# them: a match must fit in it (banners and replies are far shorter).
REGEX_OVERLAP = 8 * 1024


def _not_empty(value: str) -> str | None:
    return "must not be empty" if not value else None


@dataclass(frozen=True, kw_only=True)
class TcpOptions:
    host: str = option(convert=net.to_host, doc="host name or IP address")
    port: int = option(convert=to_int, check=in_range(1, 65535))
    tls: bool = option(False, convert=to_bool, doc="TLS handshake after connecting")
    verify_tls: bool = option(True, convert=to_bool, doc="with tls: verify chain and host name")
    server_name: str | None = option(None, convert=net.to_host,
                                     doc="with tls: SNI and the name to verify; default: host")
    ca_file: str | None = option(None, convert=net.to_ca_file, check=net.check_ca_file,
                                 path=True,
                                 doc="with tls: PEM CAs to trust instead of the system store")
    min_version: str | None = option(None, convert=net.to_tls_version,
                                     doc='with tls: "TLSv1.2" or "TLSv1.3"')
    cert_min_days: float = option(14.0, convert=to_float, check=in_range(0),
                                  doc="with tls: DEGRADED below this many days,"
                                      " or when the expiry cannot be read; 0 = off")
    send: str | None = option(None, convert=to_str, check=_not_empty,
                              doc='sent after connecting, e.g. "PING\\r\\n"; a reply is then due')
    expect: str | None = option(None, convert=to_str, check=_not_empty,
                                doc="text to find in what is read (banners need no send)")
    expect_regex: re.Pattern[str] | None = option(
        None, convert=to_regex, doc="regular expression to search for instead (a match fits in 8 KiB)")
    read_limit: int = option(64 * 1024, convert=to_size, check=in_range(1, 16 * 1024 * 1024),
                             doc="read at most this much while looking for expect")


class TcpProbe(Probe):
    kind = "tcp"
    Options = TcpOptions

    @classmethod
    def check_options(cls, options: Any) -> list[tuple[str, str]]:
        problems = []
        if options.expect is not None and options.expect_regex is not None:
            problems.append(("expect_regex", "set either expect or expect_regex, not both"))
        if not options.tls:
            # A TLS setting without tls = true is almost surely a forgotten line.
            tls_only = {"server_name": options.server_name is not None,
                        "ca_file": options.ca_file is not None,
                        "min_version": options.min_version is not None,
                        "verify_tls": options.verify_tls is False}
            problems += [(key, "only used with tls = true") for key, set_ in tls_only.items()
                         if set_]
        return problems

    @classmethod
    def describe(cls, options: Any) -> str:
        return net.host_port(options.host, options.port)

    async def run(self, timer: PhaseTimer, ctx: ProbeContext) -> Outcome:
        o: TcpOptions = self.options
        # The runner's deadline, on the loop's clock (the timer started first).
        deadline = (asyncio.get_running_loop().time() + self.target.timeout
                    - timer.elapsed_ms() / 1000.0 - DEADLINE_MARGIN)
        sock = await net.open_tcp(o.host, o.port, timer)
        writer: asyncio.StreamWriter | None = None
        done = False
        try:
            outcome = Outcome()
            if o.tls:
                context = net.shared_ssl_context(ctx, o.verify_tls, o.ca_file, o.min_version)
                server_name = o.server_name or o.host
                reader, writer = await net.tls_streams(sock, context, server_name, timer)
                outcome = judge_tls(writer, server_name, o.cert_min_days)
            else:
                reader, writer = await net.plain_streams(sock)
            if outcome.ok and (o.send is not None or self._wants_reply()):
                received = await self._exchange(reader, writer, timer, deadline)
                outcome.details["received"] = excerpt(received)
            done = True
            return outcome
        except OSError as exc:  # reset mid-conversation, or a write after the peer left
            # asyncio's own "Connection lost" carries no errno: a FIN, not an RST.
            lost = isinstance(exc, ConnectionError) and exc.errno is None
            raise ProbeFailure("connection closed by peer" if lost else describe_error(exc)) \
                from exc
        finally:
            (net.close_quietly if done else net.abort_quietly)(writer, sock)

    def _wants_reply(self) -> bool:
        return self.options.expect is not None or self.options.expect_regex is not None

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        timer: PhaseTimer, deadline: float) -> bytes:
        """Send, then read until the expected text: `ttfb` and `transfer`."""
        o: TcpOptions = self.options
        with timer.phase("ttfb"):
            if o.send:
                writer.write(o.send.encode("utf-8"))
                await writer.drain()
            data = await reader.read(o.read_limit)
        if not data:
            raise ProbeFailure(f"connection closed by peer before {self._wanted()} "
                               "was received (got nothing)")
        buffer = bytearray(data)
        with timer.phase("transfer"):
            searched = 0
            while not self._found(buffer, searched):
                searched = len(buffer)
                await self._read_more(reader, buffer, deadline)
        return bytes(buffer)

    async def _read_more(self, reader: asyncio.StreamReader, buffer: bytearray,
                         deadline: float) -> None:
        """Append the next chunk, or fail saying what arrived instead."""
        room = self.options.read_limit - len(buffer)
        if room <= 0:
            size = format_size(self.options.read_limit)
            raise ProbeFailure(f"expected {self._wanted()} in the first {size}, "
                               f"got '{excerpt(buffer)}'")
        left = deadline - asyncio.get_running_loop().time()
        # A complete line followed by silence is a finished answer.
        quiet = buffer.endswith(b"\n") and left > QUIET
        try:
            async with asyncio.timeout(QUIET if quiet else max(left, 0.0)):
                chunk = await reader.read(room)
        except TimeoutError:
            got = f"got '{excerpt(buffer)}'"
            if quiet:
                raise ProbeFailure(f"expected {self._wanted()}, {got}") from None
            raise ProbeFailure(f"timed out after {format_duration(self.target.timeout)} "
                               f"waiting for {self._wanted()} ({got})") from None
        if not chunk:
            raise ProbeFailure(f"connection closed by peer before {self._wanted()} "
                               f"was received (got '{excerpt(buffer)}')")
        buffer += chunk

    def _found(self, buffer: bytearray, searched: int) -> bool:
        """Whether what is wanted is in `buffer`, whose first `searched` bytes
        were already searched: only the new bytes (and the overlap a match can
        straddle) are looked at, so a peer dripping a large answer costs work
        in proportion to what it sends, not to its square."""
        o: TcpOptions = self.options
        if o.expect is not None:
            needle = o.expect.encode("utf-8")
            return buffer.find(needle, max(0, searched - len(needle) + 1)) >= 0
        if o.expect_regex is not None:
            start = max(0, searched - REGEX_OVERLAP)
            if start == 0:
                return o.expect_regex.search(buffer.decode("utf-8", "replace")) is not None
            # One byte of context before the window, searched from index 1:
            # `^` and lookbehinds then see the real preceding character.
            text = buffer[start - 1:].decode("utf-8", "replace")
            return o.expect_regex.search(text, 1) is not None
        return True  # `send` alone: any reply will do

    def _wanted(self) -> str:
        o: TcpOptions = self.options
        if o.expect is not None:
            return f"'{printable(o.expect)}'"
        if o.expect_regex is not None:
            return f"a match for /{o.expect_regex.pattern}/"
        return "a reply"


def excerpt(data: bytes | bytearray, limit: int = EXCERPT_CHARS) -> str:
    """A short printable rendering: control characters escaped, long text cut."""
    shown = printable(bytes(data[:limit * 4]).decode("utf-8", "replace").strip())
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def format_size(size: int) -> str:
    for unit, factor in (("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size} bytes"
