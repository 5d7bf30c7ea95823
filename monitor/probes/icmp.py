"""ICMP echo probe: `count` pings per check, SmokePing-style loss and jitter.

Accuracy first. Each RTT is the kernel's receive timestamp (SO_TIMESTAMPNS,
read from recvmsg ancillary data) minus a send time taken right before
sendto, so time the reply spends waiting for the event loop is not counted
(icmplib's loop-stamped RTTs read 8-20 ms for a 0.06 ms loopback RTT).

Sockets: an unprivileged ICMP datagram socket when net.ipv4.ping_group_range
allows it (the kernel owns the echo identifier and filters replies), else a
raw socket (root or CAP_NET_RAW) with a random identifier, a kernel type
filter and a BPF identifier filter so that replies to other programs' pings
never wake us.

One socket per address family serves every round of an engine (it lives in
the ProbeContext): opening a socket and attaching its filters cost more CPU
than the echo itself. Replies reach their round by sequence number, which
each round reserves on the socket, and by a random cookie in the payload.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
import re
import socket
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, ClassVar

from monitor.config.durations import format_duration
from monitor.config.fields import (
    in_range, one_of, option, to_duration, to_float, to_int, to_nonempty_str)
from monitor.probes.base import Outcome, PhaseTimer, Probe, ProbeContext, ProbeFailure
from monitor.probes.errors import describe_error
from monitor.probes.icmpwire import (
    Reply, echo_request, kernel_time_ns, open_socket, parse_packet, read_error_queue,
    setup_socket, try_setsockopt)

MAX_ROUND = 60.0            # longest round of pings (spacing x count + wait) we accept
_PAYLOAD_MAX = 65507         # 65535 - 20 (IPv4 header) - 8 (ICMP header)

# Identifiers of this process's raw sockets (one per engine and family): never two alike.
_IDENTS_IN_USE: set[int] = set()


# ---------------------------------------------------------------- options

_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def to_host(value: Any) -> str:
    """An IP literal (brackets allowed) or a host name; no URL, no port."""
    text = to_nonempty_str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if "://" in text or "/" in text:
        raise ValueError(f"expected a host name or IP address, not a URL or path: {text!r}")
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    if ":" in text:
        raise ValueError(f"{text!r} is not an IP address or host name (ICMP has no port)")
    name = text[:-1] if text.endswith(".") else text
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(f"{text!r} is not a valid host name or IP address")
    return text


def _duration_in(low: float, high: float) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        if not low <= value <= high:
            return (f"must be between {format_duration(low)} and {format_duration(high)}, "
                    f"got {format_duration(value)}")
        return None
    return check


@dataclass(frozen=True, kw_only=True)
class IcmpOptions:
    host: str = option(convert=to_host, doc="IP address or host name to ping")
    count: int = option(3, convert=to_int, check=in_range(1, 100),
                        doc="echo requests per check")
    spacing: float = option(0.2, convert=to_duration, check=_duration_in(0.001, 10.0),
                            doc="time between echo requests (sent without waiting for replies)")
    wait: float = option(1.0, convert=to_duration, check=_duration_in(0.001, 30.0),
                         doc="how long each echo waits for its reply before it counts as lost")
    payload_size: int = option(56, convert=to_int, check=in_range(0, _PAYLOAD_MAX),
                               doc="bytes of data after the ICMP header (ping's -s)")
    family: str = option("any", convert=one_of("any", "ipv4", "ipv6"),
                         doc="address family when host is a name; 'any' takes the resolver's first")
    max_loss_pct: float = option(0.0, convert=to_float, check=in_range(0, 100),
                                 doc="packet loss above this percentage marks the target "
                                     "DEGRADED (100% loss is always DOWN)")


def round_seconds(options: IcmpOptions) -> float:
    """How long a round of pings takes at most: sends plus the last echo's wait."""
    return (options.count - 1) * options.spacing + options.wait


# ---------------------------------------------------------------- statistics

def ping_stats(rtts_ms: Sequence[float | None]) -> dict[str, Any]:
    """Loss and latency figures from RTTs in send order (None = lost).

    rtts_ms keeps send order with null for a lost echo, so a reader sees which
    one was lost (as SmokePing's per-ping view does). jitter_ms is the mean
    absolute difference of consecutive received RTTs in send order (a lost
    echo is skipped): the packet delay variation of RFC 3393.
    """
    sent = len(rtts_ms)
    got = [r for r in rtts_ms if r is not None]
    stats: dict[str, Any] = {
        "sent": sent, "received": len(got),
        "loss_pct": round(100.0 * (sent - len(got)) / sent, 1) if sent else 0.0,
        "rtts_ms": [None if r is None else round(r, 3) for r in rtts_ms],
        "min_ms": None, "avg_ms": None, "max_ms": None, "median_ms": None, "jitter_ms": None,
    }
    if got:
        stats.update(min_ms=round(min(got), 3), max_ms=round(max(got), 3),
                     avg_ms=round(statistics.fmean(got), 3),
                     median_ms=round(statistics.median(got), 3))
    if len(got) >= 2:
        stats["jitter_ms"] = round(statistics.fmean(abs(b - a) for a, b in pairwise(got)), 3)
    return stats


def loss_verdict(stats: dict[str, Any], max_loss_pct: float) -> str | None:
    """The DEGRADED reason when loss is above the allowed percentage (exact, not
    the rounded loss_pct: 1 of 3 lost is above a limit of 33.3)."""
    lost, sent = stats["sent"] - stats["received"], stats["sent"]
    if not lost or 100.0 * lost / sent <= max_loss_pct:
        return None
    return f"{100.0 * lost / sent:.0f}% packet loss ({lost} of {sent} lost)"


# ---------------------------------------------------------------- the shared socket

class EchoSocket:
    """One ICMP socket of one address family, shared by every round of an engine.

    Rounds reserve a run of sequence numbers; the reader hands each reply to
    the round that reserved its sequence, if the payload carries that round's
    cookie (sequences are only 16 bits and wrap).
    """

    def __init__(self, family: int) -> None:
        self.v6 = family == socket.AF_INET6
        self.sock, self.raw = open_socket(family)
        self.ident = _claim_ident() if self.raw else 0   # datagram sockets: the kernel's port
        self.pending: dict[int, _Round] = {}
        self._next_seq = random.getrandbits(16)
        # one buffer for every read: a reply is at most an IP packet
        self._view = memoryview(bytearray(65536))
        self._loop: asyncio.AbstractEventLoop | None = None
        try:
            self.stamps = setup_socket(self.sock, self.raw, self.v6, self.ident)
            # many rounds' replies can land between two reads: room for thousands
            try_setsockopt(self.sock, socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self.sock.fileno(), self.readable)
        except BaseException:
            self.close()
            raise

    def reserve(self, echoes: _Round) -> None:
        """Give `echoes` `count` consecutive sequences no pending round holds."""
        count = echoes.count
        for _ in range(65536 // count + 1):
            first = self._next_seq
            self._next_seq = (first + count) & 0xFFFF
            seqs = [(first + i) & 0xFFFF for i in range(count)]
            if not any(seq in self.pending for seq in seqs):
                echoes.first_seq = first
                for seq in seqs:
                    self.pending[seq] = echoes
                return
        raise ProbeFailure(f"too many ICMP echoes in flight ({len(self.pending)}): "
                           "lower count or wait, or spread the targets' intervals")

    def release(self, echoes: _Round) -> None:
        for index in range(echoes.count):
            seq = echoes.seq(index)
            if self.pending.get(seq) is echoes:
                del self.pending[seq]

    def readable(self) -> None:
        """Drain the socket and route each reply; called by the event loop."""
        if not self.raw:
            self.drain_errors()
        sock, view = self.sock, self._view
        while True:
            try:
                size, ancdata, _, source = sock.recvmsg_into([view], 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:   # an ICMP error reported once; its details are queued
                if self.raw:
                    return
                self.drain_errors()
                continue
            now_mono = time.perf_counter_ns()
            reply = parse_packet(bytes(view[:size]), v6=self.v6, raw=self.raw,
                                 ident=self.ident if self.raw else None)
            if reply is None:
                continue
            echoes = self.pending.get(reply.seq)
            if echoes is None or not reply.is_for(echoes.cookie):
                continue   # late (its round is over) or not ours
            if reply.error and source:
                reply.error += f" (from {source[0]})"
            echoes.record(reply, kernel_time_ns(ancdata), now_mono)

    def drain_errors(self) -> None:
        """Empty the error queue: a non-empty one keeps the socket readable."""
        while (replies := read_error_queue(self.sock, self.v6, len(self._view))) is not None:
            for reply in replies:
                echoes = self.pending.get(reply.seq)
                if echoes is not None:
                    echoes.record(reply, None, time.perf_counter_ns())

    def close(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed() and self.sock.fileno() != -1:
            loop.remove_reader(self.sock.fileno())
        for echoes in set(self.pending.values()):
            echoes.settle()
        self.pending.clear()
        if self.raw:
            _IDENTS_IN_USE.discard(self.ident)
        self.sock.close()


class EchoSockets:
    """The shared sockets of one ProbeContext, opened on first use."""

    def __init__(self) -> None:
        self.by_family: dict[int, EchoSocket] = {}

    def get(self, family: int) -> EchoSocket:
        channel = self.by_family.get(family)
        if channel is None:
            channel = self.by_family[family] = EchoSocket(family)
        return channel

    async def close(self) -> None:
        for channel in self.by_family.values():
            channel.close()
        self.by_family.clear()


def echo_sockets(ctx: ProbeContext) -> EchoSockets:
    return ctx.get("icmp.sockets", EchoSockets, EchoSockets.close)


# ---------------------------------------------------------------- one round

@dataclass(eq=False)   # hashed by identity: the socket keeps a set of them
class _Round:
    """State of one round of echoes on a shared socket."""

    channel: EchoSocket
    cookie: bytes
    payload: bytes
    wait: float
    count: int
    first_seq: int = 0
    sent_mono: dict[int, int] = field(default_factory=dict)
    sent_real: dict[int, int] = field(default_factory=dict)
    rtts: dict[int, float] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    stamps: dict[str, int] = field(default_factory=lambda: {"kernel": 0, "userspace": 0})
    done: asyncio.Future[None] | None = None

    @property
    def sock(self) -> socket.socket:
        return self.channel.sock

    @property
    def raw(self) -> bool:
        return self.channel.raw

    @property
    def v6(self) -> bool:
        return self.channel.v6

    def seq(self, index: int) -> int:
        return (self.first_seq + index) & 0xFFFF

    def send(self, index: int, address: tuple[Any, ...]) -> None:
        seq = self.seq(index)
        packet = echo_request(self.v6, self.channel.ident, seq, self.payload)
        # Both stamps as late as possible: the monotonic one bounds the RTT, and
        # the realtime one is in the same clock domain as the kernel's receive
        # stamp (SO_TIMESTAMPNS is CLOCK_REALTIME), the one place we need it.
        self.sent_mono[seq] = time.perf_counter_ns()
        self.sent_real[seq] = time.time_ns()
        try:
            self.transmit(packet, address)
        except OSError as exc:
            self.errors[seq] = describe_error(exc)
            self.check_done()

    def transmit(self, packet: bytes, address: tuple[Any, ...]) -> None:
        self.channel.sock.sendto(packet, address)

    def record(self, reply: Reply, kernel_ns: int | None, now_mono: int) -> None:
        seq = reply.seq
        if seq not in self.sent_mono or seq in self.rtts or seq in self.errors:
            return   # not sent yet, a duplicate, or already settled
        if reply.error:
            self.errors[seq] = reply.error
        else:
            rtt_ns, source = self.rtt_ns(seq, kernel_ns, now_mono - self.sent_mono[seq])
            if rtt_ns <= self.wait * 1e9:   # later than `wait` counts as lost, as in fping
                self.rtts[seq] = rtt_ns / 1e6
                self.stamps[source] += 1
        self.check_done()

    def rtt_ns(self, seq: int, kernel_ns: int | None, upper_ns: int) -> tuple[int, str]:
        """Kernel-stamped RTT, unless the wall clock stepped (NTP, settimeofday)
        between send and receive: then the monotonic one, an upper bound that
        includes the time the reply waited for the event loop."""
        if kernel_ns is not None:
            rtt = kernel_ns - self.sent_real[seq]
            # the kernel stamp precedes our read: allow only clock slew (<0.1%)
            if 0 < rtt <= upper_ns * 1.001 + 1000:
                return rtt, "kernel"
        return upper_ns, "userspace"

    def check_done(self) -> None:
        if len(self.rtts) + len(self.errors) >= self.count:
            self.settle()

    def settle(self) -> None:
        """End the wait: every echo is answered, time is up, or the socket closed."""
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    def rtts_in_order(self) -> list[float | None]:
        return [self.rtts.get(self.seq(i)) for i in range(self.count)]

    def stamp_source(self) -> str:
        kernel, user = self.stamps["kernel"], self.stamps["userspace"]
        return "mixed" if kernel and user else ("userspace" if user else "kernel")


# ---------------------------------------------------------------- the probe

def _budget_for(opts: IcmpOptions, timeout: float) -> float:
    return min(round_seconds(opts), timeout - min(0.25, timeout * 0.1))


def _fit_problem(opts: IcmpOptions, timeout: float) -> str | None:
    if (opts.count - 1) * opts.spacing >= _budget_for(opts, timeout):
        return (f"{opts.count} echoes {format_duration(opts.spacing)} apart do not fit in the "
                f"timeout of {format_duration(timeout)}: lower count or spacing, or raise timeout")
    return None


class IcmpProbe(Probe):
    kind: ClassVar[str] = "icmp"
    Options: ClassVar[type] = IcmpOptions
    batchable: ClassVar[bool] = True   # RTTs come from kernel receive stamps
    _literal: tuple[int, tuple[Any, ...]] | None = None   # host is an IP: resolved once

    @classmethod
    def check_options(cls, options: IcmpOptions) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        try:
            literal = ipaddress.ip_address(options.host.strip("[]"))
        except ValueError:
            literal = None
        wanted = {"ipv4": 4, "ipv6": 6}.get(options.family)
        if literal is not None and wanted and literal.version != wanted:
            problems.append(("family", f"host {options.host} is an IPv{literal.version} "
                                       f"address but family is '{options.family}'"))
        total = round_seconds(options)
        if total > MAX_ROUND:
            problems.append(("count", f"a round takes up to {format_duration(total)} "
                                      f"((count - 1) x spacing + wait); keep it under "
                                      f"{format_duration(MAX_ROUND)}"))
        return problems

    @classmethod
    def describe(cls, options: IcmpOptions) -> str:
        return options.host

    async def run(self, timer: PhaseTimer, ctx: ProbeContext) -> Outcome:
        loop = asyncio.get_running_loop()
        budget_end = loop.time() + self._budget()
        family, address = await self._resolve(timer)
        channel = echo_sockets(ctx).get(family)
        echoes = self._round(channel)
        channel.reserve(echoes)
        try:
            await self._exchange(loop, echoes, address, budget_end)
        finally:
            channel.release(echoes)
        return self._outcome(echoes, address)

    @classmethod
    def check_timing(cls, options: IcmpOptions, timeout: float) -> list[tuple[str, str]]:
        problem = _fit_problem(options, timeout)
        return [("count", problem)] if problem else []

    def _budget(self) -> float:
        """Seconds this round may take: its own length, cut to end before the
        runner's hard timeout so that a lost echo reads as loss, not as a timeout."""
        opts: IcmpOptions = self.options
        problem = _fit_problem(opts, self.target.timeout)
        if problem:
            raise ProbeFailure(problem)
        return _budget_for(opts, self.target.timeout)

    async def _resolve(self, timer: PhaseTimer) -> tuple[int, tuple[Any, ...]]:
        if self._literal is not None:
            return self._literal
        opts: IcmpOptions = self.options
        host = opts.host.strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            family = {"ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}.get(
                opts.family, socket.AF_UNSPEC)
            with timer.phase("dns"):
                infos = await self._lookup(asyncio.get_running_loop(), host, family)
            infos = [i for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
            if not infos:
                raise ProbeFailure(f"DNS lookup failed: no address for {host}") from None
            return infos[0][0], infos[0][4]
        self._literal = _literal_address(host)
        return self._literal

    async def _lookup(self, loop: asyncio.AbstractEventLoop, host: str,
                      family: int) -> list[Any]:
        try:
            return await loop.getaddrinfo(host, None, family=family, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            if family != socket.AF_UNSPEC and exc.errno in (
                    getattr(socket, "EAI_ADDRFAMILY", -9), getattr(socket, "EAI_NODATA", -5)):
                label = "IPv6" if family == socket.AF_INET6 else "IPv4"
                raise ProbeFailure(f"DNS lookup failed: no {label} address for {host}") from None
            raise ProbeFailure(describe_error(exc)) from None

    def _round(self, channel: EchoSocket) -> _Round:
        opts: IcmpOptions = self.options
        # A random cookie leads the payload, so a reply is matched by identifier,
        # sequence and content (identifiers and sequences are only 16 bits).
        cookie = random.randbytes(min(8, opts.payload_size))
        return _Round(channel=channel, cookie=cookie, payload=cookie + self._padding,
                      wait=opts.wait, count=opts.count)

    @functools.cached_property
    def _padding(self) -> bytes:
        size = self.options.payload_size
        return bytes(i & 0xFF for i in range(size - min(8, size)))

    async def _exchange(self, loop: asyncio.AbstractEventLoop, echoes: _Round,
                        address: tuple[Any, ...], budget_end: float) -> None:
        """Send the echoes on a fixed schedule and collect replies until each has
        arrived or run out of wait (or the budget ends)."""
        opts: IcmpOptions = self.options
        echoes.done = loop.create_future()
        try:
            start = loop.time()
            for index in range(opts.count):
                delay = start + index * opts.spacing - loop.time()
                if delay > 0:   # an absolute schedule: a late wake-up does not add up
                    await asyncio.sleep(delay)
                echoes.send(index, address)
            deadline = min(loop.time() + opts.wait, budget_end)
            if not echoes.done.done() and deadline > loop.time():
                timer = loop.call_at(deadline, echoes.settle)
                try:
                    await echoes.done
                finally:
                    timer.cancel()
            if len(echoes.rtts) + len(echoes.errors) < echoes.count:
                echoes.channel.readable()   # replies the loop has not dispatched yet count
        finally:
            if not echoes.done.done():
                echoes.done.cancel()

    def _outcome(self, echoes: _Round, address: tuple[Any, ...]) -> Outcome:
        opts: IcmpOptions = self.options
        details = ping_stats(echoes.rtts_in_order())
        details.update(address=address[0], socket="raw" if echoes.raw else "dgram",
                       timestamps=echoes.stamp_source() if echoes.rtts
                       else echoes.channel.stamps)
        errors = sorted(set(echoes.errors.values()))
        if errors:
            details["errors"] = errors
        if not details["received"]:
            reason = f"100% packet loss ({details['sent']} sent)"
            raise ProbeFailure(f"{'; '.join(errors)}; {reason}" if errors else reason,
                               details=details)
        degraded = loss_verdict(details, opts.max_loss_pct)
        if degraded and errors:
            degraded += f": {'; '.join(errors)}"
        # median, as SmokePing draws it: one slow echo in a round does not move it
        return Outcome(latency_ms=details["median_ms"], degraded=degraded, details=details)


def _literal_address(host: str) -> tuple[int, tuple[Any, ...]]:
    literal = ipaddress.ip_address(host)
    if literal.version == 4:
        return socket.AF_INET, (str(literal), 0)
    return socket.AF_INET6, (str(literal), 0, 0, _scope_id(literal))


def _scope_id(address: ipaddress.IPv6Address) -> int:
    """The interface index of a zone such as fe80::1%eth0 (0 when none)."""
    zone = address.scope_id
    if not zone:
        return 0
    if zone.isdigit():
        return int(zone)
    try:
        return socket.if_nametoindex(zone)
    except OSError:
        raise ProbeFailure(f"unknown network interface {zone!r} in {address}") from None


def _claim_ident() -> int:
    """A random echo identifier no other raw-socket probe in this process uses."""
    while True:
        ident = random.getrandbits(16)
        if ident not in _IDENTS_IN_USE:
            _IDENTS_IN_USE.add(ident)
            return ident
