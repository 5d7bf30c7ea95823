"""DNS on the wire: messages built and read by dnspython at a bounded cost,
sent over our own UDP and TCP sockets (our resend schedule and checks).

A query is built once per probe by dnspython (`Question`); each exchange
stamps a fresh random id on a copy of its bytes, where building the message
again would cost ~65 us, a third of a whole probe.

A reply is read record by record with dnspython's parsers (names and their
compression rules, every record type it knows), but not with
`dns.message.from_wire`: that adds each record to an RRset, which hashes the
record's data through `Name.to_wire`, quadratic in the labels of a name, so
one 64 KB reply of NS records naming a 127-label name took 18.6 s of CPU
(dnspython 2.9.2). dnspython refuses pointer chains longer than 16 hops; on
top of that a reply may hold at most MAX_RECORDS records, and its names may
decompress to at most MAX_LABELS labels, so the worst reply is read or refused
in ~20 ms of CPU here.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.txtbase
import dns.wire

# Far above real replies (tens of records; 1232 bytes of UDP hold at most ~75
# A records) and low enough to bound the cost: ~18 us of CPU per record and
# ~0.9 us per decompressed label, measured here.
MAX_RECORDS = 500
MAX_LABELS = 10_000
# 1232 bytes fits any path MTU without IP fragmentation (DNS flag day 2020).
EDNS_PAYLOAD = 1232
# Resend an unanswered UDP query after this long, then twice as long, and so
# on until the runner's timeout: one lost datagram should not mean DOWN.
RESEND_AFTER = 1.0

_HEADER = struct.Struct("!HHHHHH")
# Record types dnspython knows; data of any other type (or class) is kept as
# generic bytes without asking dnspython, which would try to import a module
# for each new (class, type) pair and cache the outcome forever: a hostile
# server could make that cache grow without end.
_KNOWN_TYPES = frozenset(dns.rdatatype.RdataType) - {dns.rdatatype.OPT}
# dnspython's flag and rcode names as plain ints: its enums cost ~3 us an
# operation, a dozen times a probe.
_FLAGS = tuple((flag.name.lower(), int(flag)) for flag in dns.flags.Flag)
_QR, _TC = int(dns.flags.QR), int(dns.flags.TC)
_RCODE_NAMES = {int(code): code.name for code in dns.rcode.Rcode}


class MalformedReply(ValueError):
    """The bytes are not a well-formed DNS reply (or cost too much to read)."""


class _Problem(dns.exception.FormError):
    """A problem found here, in our words; a FormError, so that dnspython's
    record parsers let it through unchanged."""


# --- the query --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Question:
    """What a probe asks, built once; `wire(qid)` is one query's bytes."""

    name: dns.name.Name
    rdtype: int
    template: bytes

    def wire(self, qid: int) -> bytes:
        return qid.to_bytes(2, "big") + self.template[2:]


def make_question(name: dns.name.Name, rdtype: int, *, edns: bool = True) -> Question:
    """A recursive class IN query for `name`/`rdtype`, EDNS0 when `edns`."""
    query = dns.message.make_query(name, rdtype, use_edns=0 if edns else False,
                                   payload=EDNS_PAYLOAD)
    # dnspython imports a type's parser on first use (~1 ms each): done now,
    # not inside the first measured round trip.
    for answer_type in (rdtype, dns.rdatatype.CNAME):
        dns.rdata.get_rdata_class(dns.rdataclass.IN, answer_type)
    return Question(name=name, rdtype=rdtype, template=query.to_wire())


def parse_name(text: str) -> dns.name.Name:
    """`text` as an absolute DNS name (IDNA for non-ASCII); ValueError saying why not."""
    try:
        return dns.name.from_text(text)
    except dns.name.EmptyLabel:
        raise ValueError(f"empty label in {text!r}") from None
    except dns.name.LabelTooLong:
        raise ValueError(f"a label in {text!r} is longer than 63 bytes") from None
    except dns.name.NameTooLong:
        raise ValueError(f"{text!r} is longer than 255 bytes") from None
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise ValueError(f"cannot use {text!r} as a DNS name: {_sentence(exc)}") from None


# --- the reply --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Answer:
    """One record of the answer section."""

    rdtype: int
    ttl: int
    rdata: dns.rdata.Rdata

    @property
    def text(self) -> str:
        """The record data as `dig` shows it, except TXT: its strings joined,
        as SPF and DKIM readers see them (and as expectations are written)."""
        if isinstance(self.rdata, dns.rdtypes.txtbase.TXTBase):
            return b"".join(self.rdata.strings).decode("utf-8", "replace")
        return self.rdata.to_text().rstrip()  # empty generic data reads "\\# 0 "


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    flags: int
    rcode: int                      # with the EDNS extended bits
    question: tuple[dns.name.Name, int] | None   # name and type; None when absent
    answers: tuple[Answer, ...]

    @property
    def is_response(self) -> bool:
        return bool(self.flags & _QR)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & _TC)

    @property
    def rcode_name(self) -> str:
        return rcode_name(self.rcode)

    @property
    def flag_names(self) -> list[str]:
        return [name for name, bit in _FLAGS if self.flags & bit]


def rcode_name(code: int) -> str:
    """"NXDOMAIN"; "RCODE4000" for a code without a name (dnspython says "4000")."""
    return _RCODE_NAMES.get(code) or f"RCODE{code}"


def reply_id(wire: bytes) -> int | None:
    """The id of the message in `wire`, None when it is too short to have one."""
    return int.from_bytes(wire[:2], "big") if len(wire) >= _HEADER.size else None


def read_reply(wire: bytes) -> Reply:
    """Read a whole DNS message; MalformedReply saying where it is wrong."""
    if len(wire) < _HEADER.size:
        raise MalformedReply(f"{len(wire)} bytes is shorter than a DNS header (12)")
    qid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if qdcount > 1:
        raise MalformedReply(f"the header counts {qdcount} questions; a reply holds "
                             "the one asked")
    records = ancount + nscount + arcount
    if records > MAX_RECORDS:
        raise MalformedReply(f"{records} records, more than the {MAX_RECORDS} this probe reads")
    reader = _Reader(wire)
    try:
        question = reader.question() if qdcount else None
        answers = reader.section("answer", ancount)
        reader.section("authority", nscount)
        reader.section("additional", arcount)
    except dns.exception.DNSException as exc:
        raise MalformedReply(f"{reader.where}: {reader.problem(exc)}") from None
    stray = reader.parser.remaining()
    if stray:
        raise MalformedReply(f"{stray} stray byte{'s' if stray > 1 else ''} after the last record")
    rcode = int(dns.rcode.from_flags(flags, reader.edns_flags))
    return Reply(id=qid, flags=flags, rcode=rcode, question=question, answers=tuple(answers))


def check_reply(question: Question, qid: int, wire: bytes) -> Reply:
    """The reply to query `qid` of `question` in `wire`, read and checked:
    MalformedReply when it is not a DNS message, or not the answer to it."""
    got = reply_id(wire)
    if got is not None and got != qid:
        raise MalformedReply(f"the answer has id {got}, not the query's {qid}")
    reply = read_reply(wire)
    if not reply.is_response:
        raise MalformedReply("the QR bit is clear: this is a query, not an answer "
                             "(is the server echoing?)")
    if reply.question is not None:
        name, rdtype = reply.question
        if name != question.name or rdtype != question.rdtype:  # names compare caseless
            raise MalformedReply(
                f"the answer is for {name} {dns.rdatatype.to_text(rdtype)}, not "
                f"{question.name} {dns.rdatatype.to_text(question.rdtype)}")
    return reply


class _LabelCountingParser(dns.wire.Parser):
    """dnspython's parser, counting the labels every name decompresses to
    (names inside record data too: dnspython's record parsers ask here)."""

    def __init__(self, wire: bytes) -> None:
        super().__init__(wire, _HEADER.size)
        self.labels_left = MAX_LABELS
        self.plain_names: dict[int, dns.name.Name] = {}   # offset -> name without pointers

    def get_name(self, origin: dns.name.Name | None = None,
                 decompress: bool = False) -> dns.name.Name:
        at = self.current
        name = self._known_name(at) if decompress and origin is None else None
        if name is None:
            name = super().get_name(origin, decompress)
            if origin is None and self.current - at == sum(len(label) + 1 for label in name):
                self.plain_names[at] = name
        self.labels_left -= len(name)
        if self.labels_left < 0:
            raise _Problem(f"its names decompress to more than {MAX_LABELS} labels")
        return name

    def _known_name(self, at: int) -> dns.name.Name | None:
        """The root, or one pointer to a name read before that holds no
        pointer (an owner pointing at the question, mostly): a Name at hand,
        for none of the ~10 us dnspython takes to read one. That name lies
        wholly before `at`, so the one hop breaks no pointer rule."""
        wire = self.wire
        if at >= self.end:
            return None
        if wire[at] == 0:
            name, size = dns.name.root, 1
        elif wire[at] >= 0xC0 and at + 2 <= self.end:
            name, size = self.plain_names.get(((wire[at] & 0x3F) << 8) | wire[at + 1]), 2
        else:
            return None
        if name is not None:
            self.current = at + size
            self.furthest = max(self.furthest, self.current)
        return name


class _Reader:
    """Walks the sections, remembering where it is for the error message."""

    def __init__(self, wire: bytes) -> None:
        self.parser = _LabelCountingParser(wire)
        self.section_name = "question"
        self.record: tuple[int, int, int] | None = None   # index, type, data size
        self.in_data = False        # inside a record's data (vs its name or header)
        self.edns_flags = 0

    @property
    def where(self) -> str:
        # Spelled out only for an error: formatting it per record costs ~8 us.
        if self.record is None:
            return self.section_name
        index, rdtype, size = self.record
        if size < 0:
            return f"{self.section_name} record {index}"
        return (f"{self.section_name} record {index} "
                f"({dns.rdatatype.to_text(rdtype)}, {size} bytes of data)")

    def question(self) -> tuple[dns.name.Name, int]:
        name = self.parser.get_name(decompress=True)
        qtype, _ = self.parser.get_struct("!HH")
        return name, qtype

    def section(self, section: str, count: int) -> list[Answer]:
        parser = self.parser
        self.section_name = section
        answers: list[Answer] = []
        for index in range(1, count + 1):
            self.record = (index, 0, -1)
            parser.get_name(decompress=True)
            rdtype, rdclass, ttl, size = parser.get_struct("!HHIH")
            self.record = (index, rdtype, size)
            if size > parser.remaining():
                raise _Problem("the message ends inside the data")
            if rdtype == dns.rdatatype.OPT:
                if section != "additional":
                    raise _Problem("an EDNS OPT record outside the additional section")
                self.edns_flags = ttl     # extended rcode bits, version, DO
                parser.get_bytes(size)    # its options are of no use here
                continue
            self.in_data = True
            with parser.restrict_to(size):
                if rdtype in _KNOWN_TYPES and rdclass == dns.rdataclass.IN:
                    rdata = dns.rdata.from_wire_parser(rdclass, rdtype, parser)
                else:
                    rdata = dns.rdata.GenericRdata(rdclass, rdtype, parser.get_remaining())
            self.in_data = False
            if section == "answer":
                # RFC 2181 8: a TTL with the top bit set is read as zero
                answers.append(Answer(rdtype, ttl if ttl <= 0x7FFFFFFF else 0, rdata))
        self.record = None
        return answers

    def problem(self, exc: dns.exception.DNSException) -> str:
        for kind, text in _PROBLEMS:
            if isinstance(exc, kind):
                return text
        if isinstance(exc, _Problem):
            return str(exc)
        if self.in_data:
            # dnspython's words here vary ("text input is malformed" for an
            # A record of 5 bytes): one plain statement serves better
            return "the data does not parse as its type"
        if type(exc) is dns.exception.FormError and exc.args == (exc.msg,):
            return f"cut short at byte {self.parser.current}"  # a read ran past the end
        return _sentence(exc)


_PROBLEMS: tuple[tuple[type[Exception], str], ...] = (
    (dns.name.BadPointer, "a compression pointer does not point backwards"),
    (dns.name.PointerChainTooLong,
     f"a chain of more than {dns.name.MAX_COMPRESSION_POINTER_CHAIN} compression pointers"),
    (dns.name.BadLabelType, "a name holds an unknown label type"),
    (dns.name.DecompressionForbidden, "a compressed name where this type allows none"),
    (dns.name.NameTooLong, "a name longer than 255 bytes"),
)


def _sentence(exc: BaseException) -> str:
    """dnspython's message ("A DNS label is empty.") as a clause: "a DNS label is empty"."""
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


# --- transports -------------------------------------------------------------

class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self, question: Question, qid: int, answer: asyncio.Future[Reply]) -> None:
        self.question = question
        self.qid = qid
        self.answer = answer

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # Another id is a late answer to an earlier query: ignored, as resolvers
        # do, and before parsing, so a flood of them costs nothing.
        if self.answer.done() or reply_id(data) not in (self.qid, None):
            return
        try:
            self.answer.set_result(check_reply(self.question, self.qid, data))
        except MalformedReply as exc:
            self.answer.set_exception(exc)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable arrives here as ConnectionRefusedError.
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("UDP socket closed"))


async def udp_exchange(host: str, port: int, question: Question, qid: int) -> Reply:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Reply] = loop.create_future()
    # The answer is settled on every way out, a cancel while the endpoint is
    # being made included: asyncio then closes the new transport itself, and
    # its connection_lost must find the answer done, or the exception it sets
    # there is never retrieved (logged under load, issue 8 item 14).
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpClient(question, qid, answer), remote_addr=(host, port))
        try:
            wire = question.wire(qid)
            wait = RESEND_AFTER
            while True:
                transport.sendto(wire)
                done, _ = await asyncio.wait({answer}, timeout=wait)
                if done:
                    return answer.result()
                wait *= 2
        finally:
            transport.close()
    finally:
        _settle(answer)


async def tcp_exchange(host: str, port: int, question: Question, qid: int) -> Reply:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        wire = question.wire(qid)
        writer.write(len(wire).to_bytes(2, "big") + wire)
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        # The connection carries our query alone: another id is the server's fault.
        return check_reply(question, qid, await reader.readexactly(size))
    finally:
        writer.close()


def _settle(future: asyncio.Future[Reply]) -> None:
    """Leave no pending future or unretrieved exception behind."""
    if not future.done():
        future.cancel()
    elif not future.cancelled():
        future.exception()
