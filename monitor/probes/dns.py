"""The `dns` probe: ask one server one question and check the answer.

UDP first (TCP when the answer comes back truncated, or when asked) over our
own sockets (monitor.probes.dnswire, where dnspython builds the query and reads
the reply), so the rcode, flags and every record type are visible, and the
checks and the timing are ours. The latency is the query's round trip, the
`dns` phase.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dns.rcode
import dns.rdatatype

from monitor.config.fields import (
    did_you_mean, in_range, one_of, option, to_bool, to_int, to_regex, to_str, to_str_list)
from monitor.probes import net
from monitor.probes.base import Outcome, PhaseTimer, Probe, ProbeContext, ProbeFailure
from monitor.probes.dnswire import (
    MalformedReply, Reply, make_question, parse_name, rcode_name, tcp_exchange, udp_exchange)
from monitor.probes.errors import describe_error

if TYPE_CHECKING:
    from monitor.config.model import Target

RESOLV_CONF = Path("/etc/resolv.conf")
_HOSTNAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?\.?$")
_SHOW_ANSWERS = 5
# What record_type may be: every type dnspython knows but the meta-types
# (OPT, ANY, AXFR, ...), which are not records a name holds.
RECORD_TYPES: tuple[str, ...] = tuple(
    kind.name for kind in dns.rdatatype.RdataType if not dns.rdatatype.is_metatype(kind))
COMMON_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "PTR", "CAA")
RCODES: tuple[str, ...] = tuple(code.name for code in dns.rcode.Rcode)


# --- option converters ------------------------------------------------------

def _to_query_name(value: Any) -> str:
    text = to_str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    parse_name(text)  # raises ValueError saying what is wrong
    return text


def _to_record_type(value: Any) -> str:
    """A type name as dnspython spells it ("aaaa" -> "AAAA", "TYPE65280" stays)."""
    text = to_str(value).strip().upper()
    examples = f" (e.g. {', '.join(COMMON_TYPES)})"
    try:
        code = dns.rdatatype.from_text(text)
    except dns.rdatatype.UnknownRdatatype:
        raise ValueError(f"unknown record type {value!r}"
                         f"{did_you_mean(text, RECORD_TYPES) or examples}") from None
    if dns.rdatatype.is_metatype(code):
        raise ValueError(f"{text} is a query meta-type, not a record type{examples}")
    return dns.rdatatype.to_text(code)


def _to_rcode(value: Any) -> str:
    text = to_str(value).strip().upper()
    try:
        return rcode_name(dns.rcode.from_text(text))
    except dns.rcode.UnknownRcode:
        hint = did_you_mean(text, RCODES) or f" (one of {', '.join(RCODES)})"
        raise ValueError(f"unknown rcode {value!r}{hint}") from None


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
    record_type: str = option("A", convert=_to_record_type,
                              doc=", ".join(COMMON_TYPES) + " or any type dnspython knows "
                                  "(HTTPS, TLSA, DS, ...), or TYPEnnn")
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

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.question = make_question(parse_name(self.query_name),
                                      dns.rdatatype.from_text(self.options.record_type),
                                      edns=self.options.edns)

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
        qid = secrets.randbits(16)  # one id for every resend and the TCP retry
        with timer.phase("dns"):
            reply, transport = await self._exchange(host, port, qid, where)
        details = {"server": where, "transport": transport}
        return self._judge(reply, timer.phases["dns"], details)

    async def _exchange(self, host: str, port: int, qid: int,
                        where: str) -> tuple[Reply, str]:
        transport = self.options.transport
        try:
            if transport == "udp":
                reply = await udp_exchange(host, port, self.question, qid)
                if not reply.truncated:
                    return reply, "udp"
                transport = "tcp"  # the full answer needs TCP (RFC 7766)
            return await tcp_exchange(host, port, self.question, qid), transport
        except MalformedReply as exc:
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

    def _judge(self, reply: Reply, latency: float, details: dict[str, Any]) -> Outcome:
        wanted = self.question.rdtype
        answers = [a.text for a in reply.answers if a.rdtype == wanted]
        aliases = [a.text for a in reply.answers
                   if a.rdtype == dns.rdatatype.CNAME and wanted != dns.rdatatype.CNAME]
        details.update(rcode=reply.rcode_name, answers=answers, flags=reply.flag_names,
                       ttl=min((a.ttl for a in reply.answers), default=None))
        if aliases:
            details["cnames"] = aliases
        reason = self._problem(reply, answers, aliases)
        return Outcome(ok=reason is None, reason=reason, latency_ms=latency, details=details)

    def _problem(self, reply: Reply, answers: list[str], aliases: list[str]) -> str | None:
        opts = self.options
        name, rtype = self.query_name, opts.record_type
        if reply.rcode_name != opts.expect_rcode:
            if reply.rcode_name == "NXDOMAIN" and opts.expect_rcode == "NOERROR":
                return f"NXDOMAIN: {name} does not exist"
            return f"expected {opts.expect_rcode}, got {reply.rcode_name}"
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
