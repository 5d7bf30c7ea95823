"""The `dns` probe: ask one server one question and check the answer.

UDP first (TCP when the answer comes back truncated, or when asked), our own
wire format (monitor.probes.dnswire) so the rcode, flags and every record are
visible. The latency is the query's round trip, the `dns` phase.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config.fields import (
    did_you_mean, in_range, one_of, option, to_bool, to_int, to_regex, to_str, to_str_list)
from monitor.probes import net
from monitor.probes.base import Outcome, PhaseTimer, Probe, ProbeContext, ProbeFailure
from monitor.probes.dnswire import (
    QUERY_TYPES, RCODE_VALUES, TYPES, MalformedMessage, Message, Query, encode_name, make_query,
    parse_message)
from monitor.probes.errors import describe_error

RESOLV_CONF = Path("/etc/resolv.conf")
# Resend an unanswered UDP query after this long, then twice as long, and so
# on until the runner's timeout: one lost datagram should not mean DOWN.
RESEND_AFTER = 1.0
_HOSTNAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?\.?$")
_SHOW_ANSWERS = 5


# --- option converters ------------------------------------------------------

def _to_query_name(value: Any) -> str:
    text = to_str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    encode_name(text)  # raises ValueError saying what is wrong
    return text


def _to_record_type(value: Any) -> str:
    text = to_str(value).strip().upper()
    if text not in QUERY_TYPES:
        raise ValueError(f"unknown record type {value!r}{_hint(text, QUERY_TYPES)}")
    return text


def _to_rcode(value: Any) -> str:
    text = to_str(value).strip().upper()
    if text not in RCODE_VALUES:
        raise ValueError(f"unknown rcode {value!r}{_hint(text, tuple(RCODE_VALUES))}")
    return text


def _hint(word: str, choices: tuple[str, ...]) -> str:
    return did_you_mean(word, choices) or f" (one of {', '.join(choices)})"


def _to_server(value: Any) -> str:
    text = to_str(value).strip()
    if text:
        parse_server(text)
    return text


def _to_transport(value: Any) -> str:
    return one_of("udp", "tcp")(to_str(value).strip().lower())


def parse_server(text: str) -> tuple[str, int | None]:
    """"host", "host:port", "v6", "[v6]" or "[v6]:port" -> (host, port or None)."""
    example = 'use e.g. "127.0.0.1", "127.0.0.1:5353" or "[::1]:53"'
    host, port = text, None
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"cannot read server {text!r} ({example})")
        host, port = inside, (rest[1:] if rest else None)
        _require_ipv6(host, text, example)
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:
        _require_ipv6(text, text, example)
    if port is not None and not port.isdigit():
        raise ValueError(f"cannot read server {text!r} ({example})")
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"server {text!r}: port must be 1-65535")
    if ":" not in host and not _HOSTNAME.match(host):
        raise ValueError(f"server {text!r} is not an IP address or host name ({example})")
    return host, int(port) if port is not None else None


def _require_ipv6(host: str, text: str, example: str) -> None:
    address = net.ip_literal(host)
    if address is None or address.version != 6:
        raise ValueError(f"cannot read server {text!r}: {host!r} is not an IPv6 address "
                         f"({example})")


def system_nameserver(path: Path = RESOLV_CONF) -> str:
    """The first usable `nameserver` in resolv.conf, else a local stub's address."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            if net.ip_literal(words[1]) is not None:
                return words[1]
    # glibc asks 127.0.0.1 when none is listed; systemd-resolved's stub is .53.
    return "127.0.0.53" if Path("/run/systemd/resolve").is_dir() else "127.0.0.1"


# --- the probe --------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class DnsOptions:
    query_name: str = option(convert=_to_query_name, doc="the name to resolve")
    record_type: str = option("A", convert=_to_record_type, doc=", ".join(QUERY_TYPES))
    server: str = option("", convert=_to_server,
                         doc='"host", "host:port" or "[v6]:port"; empty = first nameserver '
                             'in /etc/resolv.conf')
    port: int = option(53, convert=to_int, check=in_range(1, 65535))
    transport: str = option("udp", convert=_to_transport,
                            doc="udp (falls back to tcp on a truncated answer) or tcp")
    edns: bool = option(True, convert=to_bool,
                        doc="send an EDNS0 OPT record (turn off for very old servers)")
    expect_rcode: str = option("NOERROR", convert=_to_rcode)
    expect_answers: tuple[str, ...] = option(
        (), convert=to_str_list,
        doc="each must be among the answers or CNAMEs (case and trailing dot ignored)")
    expect_answer_regex: re.Pattern[str] | None = option(
        None, convert=to_regex, doc="at least one answer must match (re.search)")
    min_answers: int | None = option(
        None, convert=to_int, check=in_range(0),
        doc="records of record_type required; default 1 when expecting NOERROR, else 0")


class DnsProbe(Probe):
    kind = "dns"
    Options = DnsOptions

    @classmethod
    def check_options(cls, options: DnsOptions) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if options.server:
            _, port = parse_server(options.server)
            if port is not None and options.port != 53 and port != options.port:
                problems.append(("port", f"server {options.server!r} already names port {port}"))
        if options.expect_rcode != "NOERROR":
            for key in ("expect_answers", "expect_answer_regex", "min_answers"):
                if getattr(options, key):
                    problems.append((key, f"cannot expect answers with expect_rcode = "
                                          f"{options.expect_rcode!r}"))
        problems += _check_expected_addresses(options)
        return problems

    @classmethod
    def describe(cls, options: DnsOptions) -> str:
        text = f"{options.query_name} {options.record_type}"
        if options.server:
            host, port = parse_server(options.server)
            port = port or options.port
            text += " @" + (net.host_port(host, port) if port != 53
                            else f"[{host}]" if ":" in host else host)
        elif options.port != 53:
            text += f" @resolv.conf:{options.port}"
        return text + (" (tcp)" if options.transport == "tcp" else "")

    @property
    def query_name(self) -> str:
        """PTR queries accept an IP address and ask for its reverse name."""
        name = self.options.query_name
        if self.options.record_type == "PTR":
            try:
                return ipaddress.ip_address(name).reverse_pointer
            except ValueError:
                pass
        return name

    def server(self) -> tuple[str, int]:
        opts = self.options
        if not opts.server:
            return system_nameserver(), opts.port
        host, port = parse_server(opts.server)
        return host, port or opts.port

    async def run(self, timer: PhaseTimer, ctx: ProbeContext) -> Outcome:
        host, port = self.server()
        where = net.host_port(host, port)
        query = make_query(self.query_name, self.options.record_type, edns=self.options.edns)
        with timer.phase("dns"):
            response, transport = await self._exchange(host, port, query, where)
        details = {"server": where, "transport": transport}
        return self._judge(response, timer.phases["dns"], details)

    async def _exchange(self, host: str, port: int, query: Query,
                        where: str) -> tuple[Message, str]:
        transport = self.options.transport
        try:
            if transport == "udp":
                response = await udp_exchange(host, port, query)
                if not response.truncated:
                    return response, "udp"
                transport = "tcp"  # the full answer needs TCP (RFC 7766)
            return await tcp_exchange(host, port, query), transport
        except MalformedMessage as exc:
            raise ProbeFailure(f"malformed DNS response: {exc}",
                               details={"server": where}) from None
        except asyncio.IncompleteReadError as exc:
            reason = ("DNS server closed the TCP connection without answering" if not exc.partial
                      else f"malformed DNS response: TCP message cut short "
                           f"({len(exc.partial)} of {exc.expected} bytes)")
            raise ProbeFailure(reason, details={"server": where}) from None
        except OSError as exc:
            raise ProbeFailure(_network_reason(exc, where, transport, self.options.transport),
                               details={"server": where}) from None

    def _judge(self, response: Message, latency: float, details: dict[str, Any]) -> Outcome:
        opts = self.options
        wanted = TYPES[opts.record_type]
        answers = [r.data for r in response.answers if r.rtype == wanted]
        aliases = [r.data for r in response.answers
                   if r.rtype == TYPES["CNAME"] and wanted != TYPES["CNAME"]]
        details.update(rcode=response.rcode_name, answers=answers, flags=response.flag_names,
                       ttl=min((r.ttl for r in response.answers), default=None))
        if aliases:
            details["cnames"] = aliases
        reason = self._problem(response, answers, aliases)
        return Outcome(ok=reason is None, reason=reason, latency_ms=latency, details=details)

    def _problem(self, response: Message, answers: list[str], aliases: list[str]) -> str | None:
        opts = self.options
        name, rtype = self.query_name, opts.record_type
        if response.rcode_name != opts.expect_rcode:
            if response.rcode_name == "NXDOMAIN" and opts.expect_rcode == "NOERROR":
                return f"NXDOMAIN: {name} does not exist"
            return f"expected {opts.expect_rcode}, got {response.rcode_name}"
        least = opts.min_answers
        if least is None:
            least = 1 if opts.expect_rcode == "NOERROR" else 0
        if len(answers) < least:
            if not answers:
                return f"no {rtype} records for {name}"
            return f"{len(answers)} {rtype} records for {name}, expected at least {least}"
        seen = answers + aliases
        for expected in opts.expect_answers:
            if not any(_same_answer(expected, got) for got in seen):
                return f"expected answer {expected!r} not found (got {_listing(seen)})"
        pattern = opts.expect_answer_regex
        if pattern is not None and not any(pattern.search(got) for got in seen):
            return f"no answer matches /{pattern.pattern}/ (got {_listing(seen)})"
        return None


# --- transports -------------------------------------------------------------

def accept(query: Query, data: bytes) -> Message | None:
    """The response to `query` in `data`; None for someone else's answer.

    Unparseable bytes fail at once (the server is not speaking DNS), but a
    well-formed message with another id is a late answer to an earlier query
    and is ignored, as resolvers do.
    """
    response = parse_message(data)
    if response.id != query.id:
        return None
    if not response.is_response:
        raise MalformedMessage("the QR bit is clear: this is a query, not an answer "
                               "(is the server echoing?)")
    if response.questions:
        asked = response.questions[0]
        if asked.name.lower() != query.name or asked.qtype != query.qtype:
            raise MalformedMessage(f"the answer is for {asked.name} type {asked.qtype}, "
                                   f"not {query.name} type {query.qtype}")
    return response


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self, query: Query, answer: asyncio.Future[Message]) -> None:
        self.query = query
        self.answer = answer

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.answer.done():
            return
        try:
            response = accept(self.query, data)
        except MalformedMessage as exc:
            self.answer.set_exception(exc)
            return
        if response is not None:
            self.answer.set_result(response)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable arrives here as ConnectionRefusedError.
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("UDP socket closed"))


async def udp_exchange(host: str, port: int, query: Query) -> Message:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Message] = loop.create_future()
    # The answer is settled on every way out, a cancel while the endpoint is
    # being made included: asyncio then closes the new transport itself, and
    # its connection_lost must find the answer done, or the exception it sets
    # there is never retrieved (logged under load, issue 8 item 14).
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpClient(query, answer), remote_addr=(host, port))
        try:
            wait = RESEND_AFTER
            while True:
                transport.sendto(query.wire)
                done, _ = await asyncio.wait({answer}, timeout=wait)
                if done:
                    return answer.result()
                wait *= 2
        finally:
            transport.close()
    finally:
        _settle(answer)


async def tcp_exchange(host: str, port: int, query: Query) -> Message:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(len(query.wire).to_bytes(2, "big") + query.wire)
        await writer.drain()
        while True:  # a well-formed answer with another id is skipped, as over UDP
            size = int.from_bytes(await reader.readexactly(2), "big")
            response = accept(query, await reader.readexactly(size))
            if response is not None:
                return response
    finally:
        writer.close()


def _settle(future: asyncio.Future[Message]) -> None:
    """Leave no pending future or unretrieved exception behind."""
    if not future.done():
        future.cancel()
    elif not future.cancelled():
        future.exception()


# --- helpers ----------------------------------------------------------------

def _network_reason(exc: OSError, where: str, used: str, configured: str) -> str:
    over = " after a truncated UDP answer" if used != configured else ""
    if isinstance(exc, ConnectionRefusedError):
        transport = f" over {used.upper()}" if over else ""
        return f"connection refused (no DNS server at {where}{transport}){over}"
    return f"{describe_error(exc)} ({where}){over}"


def _normalize(text: str) -> str:
    return text.strip().rstrip(".").casefold()


def _same_answer(expected: str, got: str) -> bool:
    try:  # "2001:DB8::1" and "2001:db8:0::1" are the same address
        return ipaddress.ip_address(expected.strip()) == ipaddress.ip_address(got)
    except ValueError:
        return _normalize(expected) == _normalize(got)


def _listing(values: list[str]) -> str:
    if not values:
        return "no answers"
    shown = ", ".join(values[:_SHOW_ANSWERS])
    more = len(values) - _SHOW_ANSWERS
    return shown + (f" and {more} more" if more > 0 else "")


def _check_expected_addresses(options: DnsOptions) -> list[tuple[str, str]]:
    """Catch expect_answers = ["10.0.0"] for an A query at load time.

    Names stay allowed: an A query may expect the CNAME it passes through.
    """
    version = {"A": 4, "AAAA": 6}.get(options.record_type)
    if version is None:
        return []
    return [("expect_answers", f"{value!r} is not an IPv{version} address "
                               f"(record_type is {options.record_type})")
            for value in options.expect_answers if _wrong_address(value.strip(), version)]


def _wrong_address(value: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(value).version != version
    except ValueError:  # not an address: fine if it is a name, wrong if it looks numeric
        return ":" in value or bool(re.fullmatch(r"[\d.]+", value))
