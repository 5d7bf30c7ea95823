"""ICMP on the wire: echo packets, replies and errors, and the sockets that
carry them (an unprivileged datagram socket, else a raw one with kernel
filters), for monitor.probes.icmp.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import sys
from dataclasses import dataclass

from monitor.probes.base import ProbeFailure
from monitor.probes.errors import describe_error

# Linux values the socket module does not export (x86, arm and most others).
_LINUX = sys.platform.startswith("linux")
SO_TIMESTAMP = 29
SO_TIMESTAMPNS = 35
SO_ATTACH_FILTER = 26
SOL_RAW = 255
ICMP_FILTER = 1
ICMP6_FILTER = 1
IP_RECVERR = 11
IPV6_RECVERR = 25
MSG_ERRQUEUE = 0x2000

ICMP_ECHO_REPLY, ICMP_ECHO = 0, 8
ICMP6_ECHO, ICMP6_ECHO_REPLY = 128, 129

# Human text for ICMP errors: {type: (summary, {code: text})}.
_ERRORS4: dict[int, tuple[str, dict[int, str]]] = {
    3: ("destination unreachable", {
        0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
        3: "port unreachable", 4: "fragmentation needed", 5: "source route failed",
        6: "destination network unknown", 7: "destination host unknown",
        9: "network administratively prohibited", 10: "host administratively prohibited",
        13: "communication administratively prohibited"}),
    11: ("TTL exceeded in transit", {1: "fragment reassembly time exceeded"}),
    12: ("parameter problem", {}),
}
_ERRORS6: dict[int, tuple[str, dict[int, str]]] = {
    1: ("destination unreachable", {
        0: "no route to destination", 1: "communication administratively prohibited",
        2: "beyond scope of source address", 3: "address unreachable",
        4: "port unreachable", 5: "source address failed policy", 6: "reject route"}),
    2: ("packet too big", {}),
    3: ("hop limit exceeded in transit", {1: "fragment reassembly time exceeded"}),
    4: ("parameter problem", {}),
}


# ---------------------------------------------------------------- packets

def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071); 0 when run over a packet that has a valid one."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(v6: bool, ident: int, seq: int, payload: bytes) -> bytes:
    kind = ICMP6_ECHO if v6 else ICMP_ECHO
    packet = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + payload
    if v6:
        return packet  # the kernel fills the ICMPv6 checksum (it covers a pseudo-header)
    return packet[:2] + struct.pack("!H", checksum(packet)) + packet[4:]


@dataclass(slots=True)
class Reply:
    """One parsed packet about one of our echoes: a reply or an ICMP error.

    `payload` starts the echo reply's data (where our cookie is); an error
    quotes only the echo's header, so it has none.
    """

    seq: int
    error: str | None = None
    payload: bytes = b""

    def is_for(self, cookie: bytes) -> bool:
        return self.error is not None or self.payload.startswith(cookie)


def error_text(v6: bool, kind: int, code: int) -> str | None:
    entry = (_ERRORS6 if v6 else _ERRORS4).get(kind)
    if entry is None:
        return None
    summary, codes = entry
    return codes.get(code, summary if not code else f"{summary} (code {code})")


def parse_packet(data: bytes, *, v6: bool, raw: bool, ident: int | None) -> Reply | None:
    """Parse what recvmsg returned; None when it is not about our echoes.

    IPv4 raw sockets return the IP header (stripped by IHL) and we verify the
    ICMP checksum ourselves; the kernel verifies ICMPv6 (its checksum needs
    the pseudo-header) and datagram-socket replies. `ident` None: the kernel
    already matched the identifier (datagram sockets rewrite it to the port).
    """
    if raw and not v6:
        if len(data) < 20 or data[0] >> 4 != 4:
            return None
        data = data[(data[0] & 0x0F) * 4:]
        if len(data) < 8 or checksum(data) != 0:
            return None
    if len(data) < 8:
        return None
    kind, code, _, pid, seq = struct.unpack_from("!BBHHH", data)
    if kind == (ICMP6_ECHO_REPLY if v6 else ICMP_ECHO_REPLY):
        if ident is not None and pid != ident:
            return None
        return Reply(seq, payload=data[8:16])
    reason = error_text(v6, kind, code)
    inner = _inner_echo(data[8:], v6)
    if reason is None or inner is None:
        return None
    pid, seq = inner
    if ident is not None and pid != ident:
        return None
    return Reply(seq, reason)


def _inner_echo(quoted: bytes, v6: bool) -> tuple[int, int] | None:
    """(identifier, sequence) of our echo request quoted in an ICMP error."""
    if v6:
        if len(quoted) < 48 or quoted[6] != socket.IPPROTO_ICMPV6:
            return None
        echo = quoted[40:]
    else:
        if len(quoted) < 28 or quoted[9] != socket.IPPROTO_ICMP:
            return None
        echo = quoted[(quoted[0] & 0x0F) * 4:]
    if len(echo) < 8 or echo[0] != (ICMP6_ECHO if v6 else ICMP_ECHO):
        return None
    _, _, _, pid, seq = struct.unpack_from("!BBHHH", echo)
    return pid, seq


def kernel_time_ns(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """CLOCK_REALTIME receive time from SCM_TIMESTAMPNS/SCM_TIMESTAMP, if any."""
    for level, kind, data in ancdata:
        if level != socket.SOL_SOCKET:
            continue
        if kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("@ll", data)
            return sec * 1_000_000_000 + nsec
        if kind == SO_TIMESTAMP and len(data) >= 16:
            sec, usec = struct.unpack_from("@ll", data)
            return sec * 1_000_000_000 + usec * 1000
    return None


# ---------------------------------------------------------------- sockets

def ping_group_range() -> str | None:
    try:
        with open("/proc/sys/net/ipv4/ping_group_range", "rb") as fh:
            return " ".join(fh.read().decode().split())
    except OSError:
        return None


def not_permitted_reason() -> str:
    """Why neither socket kind opened, and the two ways to fix it."""
    python = os.path.realpath(sys.executable)  # setcap needs the real file, not a venv link
    fix = (f"fix: sudo sysctl -w net.ipv4.ping_group_range='0 2147483647' "
           f"or sudo setcap cap_net_raw+ep {python}")
    groups = ping_group_range()
    if groups is None:
        return f"ICMP not permitted: raw sockets need root or CAP_NET_RAW; {fix}"
    try:
        low, high = (int(n) for n in groups.split())
    except ValueError:
        low, high = 1, 0
    if low > high:
        why = f"unprivileged ping is disabled (net.ipv4.ping_group_range = '{groups}')"
    elif any(low <= gid <= high for gid in {os.getegid(), *os.getgroups()}):
        why = "the kernel refused unprivileged ping although ping_group_range allows your group"
    else:
        why = (f"unprivileged ping is not allowed for your group (gid {os.getegid()}; "
               f"net.ipv4.ping_group_range = '{groups}')")
    return f"ICMP not permitted: {why} and raw sockets need root or CAP_NET_RAW; {fix}"


_REFUSED = (errno.EACCES, errno.EPERM)
_UNSUPPORTED = (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT, errno.EINVAL)


def open_socket(family: int) -> tuple[socket.socket, bool]:
    """A non-blocking ICMP socket and whether it is raw: datagram first, raw second."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    refused = False
    for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            if exc.errno in _REFUSED or exc.errno in _UNSUPPORTED:
                refused = refused or exc.errno in _REFUSED
                continue
            if exc.errno == errno.EAFNOSUPPORT:
                label = "IPv6" if family == socket.AF_INET6 else "IPv4"
                raise ProbeFailure(f"{label} is not available on this machine") from None
            raise ProbeFailure(f"cannot open an ICMP socket: {describe_error(exc)}") from None
        sock.setblocking(False)
        return sock, kind == socket.SOCK_RAW
    raise ProbeFailure(not_permitted_reason() if refused else
                       "cannot open an ICMP socket: not supported by this system")


def setup_socket(sock: socket.socket, raw: bool, v6: bool, ident: int) -> str:
    """Options that make replies cheap and precise; returns the stamp source."""
    if raw:
        _kernel_filters(sock, v6, ident)
    elif _LINUX:  # errors for datagram sockets arrive on the error queue
        level = socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP
        try_setsockopt(sock, level, IPV6_RECVERR if v6 else IP_RECVERR, 1)
    if _LINUX:
        for opt in (SO_TIMESTAMPNS, SO_TIMESTAMP):
            if try_setsockopt(sock, socket.SOL_SOCKET, opt, 1):
                return "kernel"
    return "userspace"


def try_setsockopt(sock: socket.socket, level: int, opt: int, value: int | bytes) -> bool:
    try:
        sock.setsockopt(level, opt, value)
        return True
    except OSError:
        return False


def _kernel_filters(sock: socket.socket, v6: bool, ident: int) -> None:
    """Let only echo replies with our identifier and ICMP errors through (best effort:
    parse_packet checks everything again)."""
    if not _LINUX:
        return
    wanted = (ICMP6_ECHO_REPLY, *_ERRORS6) if v6 else (ICMP_ECHO_REPLY, *_ERRORS4)
    if v6:  # icmp6_filter: 256 bits, a set bit blocks that type
        blocked = bytearray(b"\xff" * 32)
        for kind in wanted:
            blocked[kind >> 3] &= ~(1 << (kind & 7)) & 0xFF
        try_setsockopt(sock, socket.IPPROTO_ICMPV6, ICMP6_FILTER,
                        _bits_to_words(bytes(blocked)))
    else:  # ICMP_FILTER: 32-bit mask, a set bit blocks that type
        mask = 0xFFFFFFFF
        for kind in wanted:
            mask &= ~(1 << kind)
        try_setsockopt(sock, SOL_RAW, ICMP_FILTER, struct.pack("@I", mask))
    _attach_bpf(sock, _ident_filter(v6, ident))


def _bits_to_words(bits: bytes) -> bytes:
    """Byte-wise bit set -> the kernel's array of native 32-bit words (bit n of word n/32)."""
    words = [0] * 8
    for index, byte in enumerate(bits):
        words[index // 4] |= byte << (8 * (index % 4))
    return struct.pack("@8I", *words)


def _ident_filter(v6: bool, ident: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF (as iputils ping): drop echo replies carrying another identifier.

    IPv4 raw packets start with the IP header (skip it by IHL), ICMPv6 ones do not.
    """
    reply = ICMP6_ECHO_REPLY if v6 else ICMP_ECHO_REPLY
    accept, drop = (0x06, 0, 0, 0xFFFFFFFF), (0x06, 0, 0, 0)
    if v6:
        load_id, load_type = [(0x28, 0, 0, 4)], (0x30, 0, 0, 0)     # ldh [4] / ldb [0]
    else:
        load_id = [(0xB1, 0, 0, 0), (0x48, 0, 0, 4)]                  # ldxb 4*([0]&0xf); ldh [x+4]
        load_type = (0x50, 0, 0, 0)                                   # ldb [x+0]
    return [*load_id, (0x15, 0, 1, ident), accept,                    # ours: pass
            load_type, (0x15, 1, 0, reply), accept, drop]             # other errors pass


def _attach_bpf(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    code = ctypes.create_string_buffer(b"".join(struct.pack("@HBBI", *i) for i in program))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(code))
    try_setsockopt(sock, socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def read_error_queue(sock: socket.socket, v6: bool, bufsize: int) -> list[Reply] | None:
    """ICMP errors queued for a datagram socket (IP_RECVERR); None once the queue is empty.

    The data is our echo request as sent (sequence at offset 6); the control
    message is a sock_extended_err followed by the reporting address.
    """
    try:
        data, ancdata, _, _ = sock.recvmsg(bufsize, 512, MSG_ERRQUEUE)
    except OSError:
        return None
    replies = []
    for _level, _kind, info in ancdata:
        if len(info) < 16 or len(data) < 8:
            continue
        _errno, origin, kind, code = struct.unpack_from("@IBBB", info)
        reason = error_text(v6, kind, code) if origin in (2, 3) else None  # ..._ORIGIN_ICMP(6)
        if reason:
            source = _offender(info[16:])
            replies.append(Reply(struct.unpack_from("!H", data, 6)[0],
                                 f"{reason} (from {source})" if source else reason))
    return replies


def _offender(addr: bytes) -> str | None:
    if len(addr) >= 8 and struct.unpack_from("@H", addr)[0] == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, addr[4:8])
    if len(addr) >= 24 and struct.unpack_from("@H", addr)[0] == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, addr[8:24])
    return None
