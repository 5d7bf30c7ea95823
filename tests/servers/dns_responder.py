"""A tiny authoritative DNS responder on loopback, UDP and TCP on one port.

Written independently of the probe's parser (dnspython): its own packing, its
own name compression, so the probe is tested against a second implementation.

    responder = DnsResponder({"example.org": {"A": ["192.0.2.1"]}})
    await responder.start()          # responder.address == "127.0.0.1:PORT"
    responder.mode = "servfail"
    await responder.close()

Modes: normal, nxdomain, servfail, refused, silent (never answers), garbage
(bytes that are not DNS), wrong_id (a well-formed answer with another id, then
the right one), truncated (UDP answers carry TC and no records; TCP answers
fully), slow (answers after `delay` seconds), echo (sends the query back),
hangup (TCP closes the connection without answering; UDP stays silent),
trailing (a good answer with junk bytes after it).
Hostile modes answer with `hostile_records` records built to make a parser
burn CPU: pointer_chains (~64 KB; names at the end of a long chain of backward
compression pointers), long_names (names within every pointer rule that all
decompress to 127 labels), truncated_pointer_chains (UDP answers carry TC,
TCP answers are pointer_chains).
With tcp=False only UDP is served, so TCP finds nothing listening.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass, field

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
          "AAAA": 28, "SRV": 33, "CAA": 257}
MODES = ("normal", "nxdomain", "servfail", "refused", "silent", "garbage", "wrong_id",
         "truncated", "slow", "echo", "hangup", "trailing", "pointer_chains", "long_names",
         "truncated_pointer_chains")
# Zone: {"name": {"TYPE": [rdata text, ...]}}; a TXT value may be a tuple of strings.
Zone = dict[str, dict[str, list]]


@dataclass
class Seen:
    """One query as the responder received it."""

    transport: str
    id: int
    flags: int
    name: str
    qtype: int
    has_opt: bool


@dataclass
class DnsResponder:
    zone: Zone
    host: str = "127.0.0.1"
    mode: str = "normal"
    delay: float = 0.5
    port: int = 0
    tcp: bool = True
    hostile_records: int = 400   # records in a hostile mode's answer
    queries: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: dict[asyncio.StreamWriter, asyncio.Task] = {}

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # the free UDP port may be taken for TCP: try another
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpServer(self), local_addr=(self.host, 0))
            self.port = self._udp.get_extra_info("sockname")[1]
            if not self.tcp:
                return
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port)
                return
            except OSError:
                self._udp.close()
        raise RuntimeError("no port free for both UDP and TCP")

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        # A closed connection ends its handler; cancelling it instead would have
        # asyncio (3.11) log the CancelledError when the test's loop closes.
        for writer in list(self._writers):
            writer.close()
        if self._writers:
            await asyncio.wait(set(self._writers.values()), timeout=2.0)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- answering ------------------------------------------------------------

    def replies(self, query: bytes, transport: str) -> list[bytes]:
        """What to send back for `query` (possibly nothing)."""
        seen = _parse_query(query, transport)
        if seen is None:
            return []
        self.queries.append(seen)
        if self.mode in ("silent", "hangup"):
            return []
        if self.mode == "echo":
            return [query]
        if self.mode == "garbage":
            # our id, then a header promising 300 questions that are not there
            return [query[:2] + b"\x81\x80\x01\x2c\x00\x00" + b"not dns at all"]
        if self.mode == "pointer_chains" or (
                self.mode == "truncated_pointer_chains" and transport == "tcp"):
            return [pointer_chain_reply(query, records=self.hostile_records)]
        if self.mode == "long_names":
            return [long_name_reply(query, records=self.hostile_records)]
        answer = self.answer(query, seen, transport)
        if self.mode == "wrong_id":
            return [struct.pack("!H", seen.id ^ 0x5A5A) + answer[2:], answer]
        if self.mode == "trailing":
            return [answer + b"junk"]
        return [answer]

    def answer(self, query: bytes, seen: Seen, transport: str) -> bytes:
        question = query[12:_question_end(query)]
        rcode = {"nxdomain": 3, "servfail": 2, "refused": 5}.get(self.mode, 0)
        records: list[tuple[str, str, object]] = []
        if rcode == 0:
            records, rcode = self.lookup(seen.name, seen.qtype)
        truncated = self.mode in ("truncated", "truncated_pointer_chains") and transport == "udp"
        if truncated:
            records = []
        # QR, AA, RD copied, RA, rcode, and TC when truncating
        flags = 0x8000 | 0x0400 | (seen.flags & 0x0100) | 0x0080 | rcode
        flags |= 0x0200 if truncated else 0
        writer = _NameWriter(seen.name, offset=12)
        body = bytearray(question)
        for owner, rtype, value in records:
            body += writer.name(owner, 12 + len(body))
            rdata = _rdata(rtype, value, writer, 12 + len(body) + 10)
            body += struct.pack("!HHIH", QTYPES[rtype], 1, 300, len(rdata)) + rdata
        opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0) if seen.has_opt else b""
        header = struct.pack("!HHHHHH", seen.id, flags, 1, len(records), 0, 1 if opt else 0)
        return header + bytes(body) + opt

    def lookup(self, name: str, qtype: int) -> tuple[list[tuple[str, str, object]], int]:
        """Records for name/qtype, following CNAMEs; rcode 3 for unknown names."""
        records: list[tuple[str, str, object]] = []
        for _ in range(8):
            entry = self.zone.get(name.rstrip(".").lower())
            if entry is None:
                return records, 0 if records else 3
            wanted = [t for t in entry if QTYPES[t] == qtype]
            if wanted or "CNAME" not in entry:
                records += [(name, t, v) for t in wanted for v in entry[t]]
                return records, 0
            target = entry["CNAME"][0]
            records.append((name, "CNAME", target))
            name = target
        return records, 0

    # --- transports -----------------------------------------------------------

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers[writer] = asyncio.current_task()  # type: ignore[assignment]
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                query = await reader.readexactly(size)
                if self.mode == "slow":
                    await asyncio.sleep(self.delay)
                replies = self.replies(query, "tcp")
                if self.mode == "hangup":
                    break
                for reply in replies:
                    writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.pop(writer, None)
            writer.close()

    def send_later(self, transport: asyncio.DatagramTransport, query: bytes, addr: object) -> None:
        async def later() -> None:
            await asyncio.sleep(self.delay)
            for reply in self.replies(query, "udp"):
                transport.sendto(reply, addr)
        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, responder: DnsResponder) -> None:
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: object) -> None:
        assert self.transport is not None
        if self.responder.mode == "slow":
            self.responder.send_later(self.transport, data, addr)
            return
        for reply in self.responder.replies(data, "udp"):
            self.transport.sendto(reply, addr)


# --- wire helpers (deliberately separate from the code under test) ------------

def _question_end(query: bytes) -> int:
    pos = 12
    while query[pos]:
        pos += 1 + query[pos]
    return pos + 1 + 4


def _parse_query(query: bytes, transport: str) -> Seen | None:
    try:
        qid, flags, qdcount, _, _, arcount = struct.unpack("!HHHHHH", query[:12])
        end = _question_end(query)
    except (struct.error, IndexError):
        return None
    if qdcount != 1:
        return None
    labels, pos = [], 12
    while query[pos]:
        labels.append(query[pos + 1:pos + 1 + query[pos]].decode("ascii"))
        pos += 1 + query[pos]
    qtype = struct.unpack("!H", query[end - 4:end - 2])[0]
    return Seen(transport, qid, flags, ".".join(labels).lower(), qtype, arcount > 0)


# --- hostile answers -----------------------------------------------------------

def pointer_chain_reply(query: bytes, size: int = 65_000, records: int = 400) -> bytes:
    """About `size` bytes answering `query`: first a record of an unknown type
    whose data is a chain of compression pointers, each pointing at the one
    before it and the first at a root label, filling the first 16 KB (as far
    as a pointer reaches); then `records` TXT records whose owner names point
    at the chain's far end, padded to `size`. Every pointer points backwards,
    so only a cap on a chain's length saves a parser from walking the whole
    chain for every record."""
    question = query[12:_question_end(query)]
    body = bytearray(question)
    body += b"\x00" + struct.pack("!HHIH", 0xFF00, 1, 300, 0)  # data length set below
    length_at = len(body) - 2
    chain_start = 12 + len(body)
    chain = bytearray(b"\x00")
    while chain_start + len(chain) + 2 <= 0x3FFF:
        previous = chain_start + (len(chain) - 2 if len(chain) > 1 else 0)
        chain += struct.pack("!H", 0xC000 | previous)
    far_end = chain_start + len(chain) - 2
    body[length_at:length_at + 2] = struct.pack("!H", len(chain))
    body += chain
    text_size = min(255, max(1, (size - 12 - len(body)) // records - 13))
    for _ in range(records):
        body += struct.pack("!HHHIHB", 0xC000 | far_end, 16, 1, 300, text_size + 1, text_size)
        body += b"x" * text_size
    header = struct.pack("!HHHHHH", int.from_bytes(query[:2], "big"), 0x8180, 1, 1 + records,
                         0, 0)
    return header + bytes(body)


def long_name_reply(query: bytes, records: int = 400) -> bytes:
    """`query` answered with `records` NS records whose owner and data both
    point at one name of 127 one-letter labels: every pointer rule holds, but
    the names decompress to ~100,000 labels."""
    question = query[12:_question_end(query)]
    body = bytearray(question)
    name = b"\x01a" * 126 + b"\x00"
    body += b"\x00" + struct.pack("!HHIH", 0xFF00, 1, 300, len(name))
    pointer = struct.pack("!H", 0xC000 | (12 + len(body)))
    body += name
    for _ in range(records):
        body += pointer + struct.pack("!HHIH", 2, 1, 300, 2) + pointer
    header = struct.pack("!HHHHHH", int.from_bytes(query[:2], "big"), 0x8180, 1, 1 + records,
                         0, 0)
    return header + bytes(body)


class _NameWriter:
    """Name compression: reuse any suffix already written (pointer 0xC000|offset)."""

    def __init__(self, question_name: str, offset: int) -> None:
        self.offsets: dict[str, int] = {}
        self.name(question_name, offset)

    def name(self, name: str, offset: int) -> bytes:
        labels = [label for label in name.rstrip(".").split(".") if label]
        out = bytearray()
        for i, label in enumerate(labels):
            suffix = ".".join(labels[i:]).lower()
            if suffix in self.offsets:
                return bytes(out) + struct.pack("!H", 0xC000 | self.offsets[suffix])
            self.offsets[suffix] = offset + len(out)
            out += bytes([len(label)]) + label.encode("ascii")
        return bytes(out) + b"\x00"


def _rdata(rtype: str, value: object, names: _NameWriter, offset: int) -> bytes:
    if rtype == "A":
        return socket.inet_pton(socket.AF_INET, str(value))
    if rtype == "AAAA":
        return socket.inet_pton(socket.AF_INET6, str(value))
    if rtype in ("CNAME", "NS", "PTR"):
        return names.name(str(value), offset)
    if rtype == "TXT":
        parts = value if isinstance(value, tuple) else (value,)
        out = b""
        for part in parts:
            raw = part.encode("utf-8")
            out += bytes([len(raw)]) + raw
        return out
    words = str(value).split()
    if rtype == "MX":
        return struct.pack("!H", int(words[0])) + names.name(words[1], offset + 2)
    if rtype == "SRV":
        head = struct.pack("!HHH", *map(int, words[:3]))
        return head + names.name(words[3], offset + 6)
    if rtype == "SOA":
        mname = names.name(words[0], offset)
        rname = names.name(words[1], offset + len(mname))
        return mname + rname + struct.pack("!IIIII", *map(int, words[2:7]))
    if rtype == "CAA":
        flags, tag, text = str(value).split(" ", 2)
        return bytes([int(flags), len(tag)]) + tag.encode() + text.strip('"').encode()
    raise ValueError(f"responder cannot encode {rtype}")
