"""DNS wire format (RFC 1035): build one query, parse one response.

Only what a monitor needs: a single question, and answers decoded to the text
`dig` would show. Every read is bounds-checked, so a garbage or cut-short
packet raises `MalformedMessage` (a ValueError) rather than IndexError, and a
compression pointer loop cannot hang the parser.
"""

from __future__ import annotations

import ipaddress
import secrets
import struct
from dataclasses import dataclass

TYPES: dict[str, int] = {
    "A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
    "AAAA": 28, "SRV": 33, "OPT": 41, "CAA": 257,
}
TYPE_NAMES: dict[int, str] = {code: name for name, code in TYPES.items()}
# What a user may ask for (OPT is EDNS plumbing, not a record to query).
QUERY_TYPES: tuple[str, ...] = tuple(name for name in TYPES if name != "OPT")

RCODES: dict[int, str] = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
    6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 16: "BADVERS",
}
RCODE_VALUES: dict[str, int] = {name: code for code, name in RCODES.items()}

CLASS_IN = 1
FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200
FLAG_RD = 0x0100
FLAG_RA = 0x0080
FLAG_AD = 0x0020
FLAG_CD = 0x0010
_FLAG_NAMES = (("qr", FLAG_QR), ("aa", FLAG_AA), ("tc", FLAG_TC), ("rd", FLAG_RD),
               ("ra", FLAG_RA), ("ad", FLAG_AD), ("cd", FLAG_CD))

# 1232 bytes fits any path MTU without IP fragmentation (DNS flag day 2020).
EDNS_PAYLOAD = 1232
HEADER = struct.Struct("!HHHHHH")
_QUESTION_TAIL = struct.Struct("!HH")
_RECORD_TAIL = struct.Struct("!HHIH")
_OPT_RECORD = b"\x00" + _RECORD_TAIL.pack(TYPES["OPT"], EDNS_PAYLOAD, 0, 0)
# Letters, digits and these print as-is in a label; anything else is escaped.
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*/+=@:")


class MalformedMessage(ValueError):
    """The bytes are not a well-formed DNS message."""


def type_name(code: int) -> str:
    return TYPE_NAMES.get(code, f"TYPE{code}")


def rcode_name(code: int) -> str:
    return RCODES.get(code, f"RCODE{code}")


# --- building a query -------------------------------------------------------

def encode_name(name: str) -> bytes:
    """`name` as wire labels; ValueError saying what is wrong with it.

    Non-ASCII names are IDNA-encoded ("bücher.example" -> xn--bcher-kva.example).
    """
    text = name.strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    if not text:
        return b"\x00"  # the root
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError:
        try:
            raw = text.encode("idna")
        except UnicodeError as exc:
            raise ValueError(f"cannot encode {name!r} as an international name: {exc}") from None
    out = bytearray()
    for label in raw.split(b"."):
        if not label:
            raise ValueError(f"empty label in {name!r}")
        if len(label) > 63:
            raise ValueError(f"label {label[:20].decode()}... in {name!r} is longer than 63 bytes")
        out += bytes([len(label)]) + label
    out += b"\x00"
    if len(out) > 255:
        raise ValueError(f"{name!r} is longer than 255 bytes")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Query:
    id: int
    name: str          # as sent, lower case, with a trailing dot
    qtype: int
    wire: bytes


def make_query(name: str, rtype: str | int, *, qid: int | None = None,
               recursion: bool = True, edns: bool = True) -> Query:
    """A standard query for `name`/`rtype` class IN with a random id."""
    qtype = rtype if isinstance(rtype, int) else TYPES[rtype.upper()]
    qid = secrets.randbits(16) if qid is None else qid
    labels = encode_name(name)
    header = HEADER.pack(qid, FLAG_RD if recursion else 0, 1, 0, 0, 1 if edns else 0)
    wire = header + labels + _QUESTION_TAIL.pack(qtype, CLASS_IN) + (_OPT_RECORD if edns else b"")
    sent_name, _ = read_name(labels, 0)
    return Query(id=qid, name=sent_name.lower(), qtype=qtype, wire=wire)


# --- parsing a response -----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Question:
    name: str
    qtype: int
    qclass: int


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    rtype: int
    rclass: int
    ttl: int
    data: str          # presentation form: "192.0.2.1", "10 mail.example.org."

    @property
    def type_name(self) -> str:
        return type_name(self.rtype)


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    flags: int
    rcode: int         # including the EDNS extended bits
    questions: tuple[Question, ...]
    answers: tuple[Record, ...]
    authority: tuple[Record, ...]
    additional: tuple[Record, ...]   # without the OPT pseudo-record
    edns_payload: int | None = None  # None when the response had no OPT

    @property
    def is_response(self) -> bool:
        return bool(self.flags & FLAG_QR)

    @property
    def truncated(self) -> bool:
        return bool(self.flags & FLAG_TC)

    @property
    def rcode_name(self) -> str:
        return rcode_name(self.rcode)

    @property
    def flag_names(self) -> list[str]:
        return [name for name, bit in _FLAG_NAMES if self.flags & bit]


class _Reader:
    """Bounds-checked cursor over the whole message (names may point anywhere)."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def take(self, size: int, what: str) -> bytes:
        end = self.pos + size
        if end > len(self.buf):
            left = len(self.buf) - self.pos
            raise MalformedMessage(
                f"{what} cut short at byte {self.pos} (needs {size} bytes, {left} left)")
        chunk = self.buf[self.pos:end]
        self.pos = end
        return chunk

    def unpack(self, layout: struct.Struct, what: str) -> tuple[int, ...]:
        return layout.unpack(self.take(layout.size, what))

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")

    def name(self) -> str:
        text, self.pos = read_name(self.buf, self.pos)
        return text


def read_name(buf: bytes, pos: int) -> tuple[str, int]:
    """The (possibly compressed) name at `pos` and the offset just after it.

    A pointer must point before the start of the run of labels holding it.
    Real compression always does (it points at an earlier copy), and it makes
    every jump go strictly backwards, so a pointer loop cannot exist.
    """
    labels: list[str] = []
    after: int | None = None   # where the caller continues: after the first pointer
    segment = pos              # start of the current run of labels
    wire_length = 1
    while True:
        if pos >= len(buf):
            raise MalformedMessage(f"name at byte {segment} runs past the end of the packet")
        size = buf[pos]
        kind = size & 0xC0
        if kind == 0xC0:
            if pos + 1 >= len(buf):
                raise MalformedMessage(f"compression pointer at byte {pos} cut short")
            target = ((size & 0x3F) << 8) | buf[pos + 1]
            if target >= segment:
                raise MalformedMessage(
                    f"compression pointer at byte {pos} to byte {target} "
                    "does not point backwards (loop)")
            if after is None:
                after = pos + 2
            pos = segment = target
            continue
        if kind:
            raise MalformedMessage(f"unsupported label type 0x{size:02x} at byte {pos}")
        if size == 0:
            pos += 1
            break
        label = buf[pos + 1:pos + 1 + size]
        if len(label) < size:
            raise MalformedMessage(f"label at byte {pos} runs past the end of the packet")
        wire_length += size + 1
        if wire_length > 255:
            raise MalformedMessage(f"name at byte {segment} is longer than 255 bytes")
        labels.append(_label_text(label))
        pos += 1 + size
    text = ".".join(labels) + "." if labels else "."
    return text, (after if after is not None else pos)


def _label_text(label: bytes) -> str:
    # Zone-file escaping: other printable bytes as \X, the rest as \DDD.
    return "".join(chr(b) if b in _PLAIN else (f"\\{chr(b)}" if 0x20 < b < 0x7F else f"\\{b:03d}")
                   for b in label)


def parse_message(data: bytes) -> Message:
    """Parse a whole DNS message; MalformedMessage if it is not one."""
    if len(data) < HEADER.size:
        raise MalformedMessage(f"{len(data)} bytes is shorter than a DNS header (12)")
    reader = _Reader(data)
    qid, flags, qdcount, ancount, nscount, arcount = reader.unpack(HEADER, "header")
    questions = tuple(_read_question(reader, i) for i in range(qdcount))
    answers = tuple(_read_record(reader, "answer", i) for i in range(ancount))
    authority = tuple(_read_record(reader, "authority", i) for i in range(nscount))
    additional = tuple(_read_record(reader, "additional", i) for i in range(arcount))
    rcode = flags & 0x000F
    payload = None
    opts = [r for r in additional if r.rtype == TYPES["OPT"]]
    if opts:
        # The OPT TTL carries the upper 8 bits of a 12-bit rcode (RFC 6891).
        rcode |= (opts[0].ttl >> 24) << 4
        payload = opts[0].rclass
    return Message(id=qid, flags=flags, rcode=rcode, questions=questions, answers=answers,
                   authority=authority,
                   additional=tuple(r for r in additional if r.rtype != TYPES["OPT"]),
                   edns_payload=payload)


def _read_question(reader: _Reader, index: int) -> Question:
    name = reader.name()
    qtype, qclass = reader.unpack(_QUESTION_TAIL, f"question {index + 1}")
    return Question(name, qtype, qclass)


def _read_record(reader: _Reader, section: str, index: int) -> Record:
    what = f"{section} record {index + 1}"
    name = reader.name()
    rtype, rclass, ttl, rdlength = reader.unpack(_RECORD_TAIL, what)
    start = reader.pos
    reader.take(rdlength, f"{what} data")
    try:
        data = "" if rtype == TYPES["OPT"] else decode_rdata(reader.buf, start, rdlength, rtype)
    except MalformedMessage as exc:
        raise MalformedMessage(f"{what} ({type_name(rtype)}): {exc}") from None
    return Record(name, rtype, rclass, ttl, data)


# --- record data ------------------------------------------------------------

def decode_rdata(buf: bytes, start: int, length: int, rtype: int) -> str:
    """The presentation text of one record's data at buf[start:start+length].

    Names inside the data may point anywhere earlier in the message, so this
    needs the whole buffer, but must not read past the record's own end.
    """
    reader = _Reader(buf[:start + length], start)
    decoder = _DECODERS.get(rtype, _unknown)
    text = decoder(reader)
    if reader.pos != start + length:
        raise MalformedMessage(f"{start + length - reader.pos} stray bytes after the data")
    return text


def _a(reader: _Reader) -> str:
    return str(ipaddress.IPv4Address(reader.take(4, "address")))


def _aaaa(reader: _Reader) -> str:
    return str(ipaddress.IPv6Address(reader.take(16, "address")))


def _name(reader: _Reader) -> str:
    return reader.name()


def _mx(reader: _Reader) -> str:
    preference = reader.u16("preference")
    return f"{preference} {reader.name()}"


def _txt(reader: _Reader) -> str:
    # A TXT record is several <length><bytes> strings; consumers (SPF, DKIM)
    # read them concatenated, so that is what we compare against.
    parts: list[bytes] = []
    end = len(reader.buf)
    while reader.pos < end:
        size = reader.u8("string length")
        parts.append(reader.take(size, "string"))
    return b"".join(parts).decode("utf-8", "replace")


def _srv(reader: _Reader) -> str:
    priority, weight, port = reader.u16("priority"), reader.u16("weight"), reader.u16("port")
    return f"{priority} {weight} {port} {reader.name()}"


def _soa(reader: _Reader) -> str:
    mname, rname = reader.name(), reader.name()
    numbers = [reader.u32(what) for what in ("serial", "refresh", "retry", "expire", "minimum")]
    return " ".join([mname, rname, *map(str, numbers)])


def _caa(reader: _Reader) -> str:
    flags = reader.u8("flags")
    tag = reader.take(reader.u8("tag length"), "tag").decode("ascii", "replace")
    value = reader.take(len(reader.buf) - reader.pos, "value").decode("utf-8", "replace")
    return f'{flags} {tag} "{value}"'


def _unknown(reader: _Reader) -> str:
    # RFC 3597 generic form: \# <length> <hex>
    data = reader.take(len(reader.buf) - reader.pos, "data")
    return f"\\# {len(data)} {data.hex()}".rstrip()


_DECODERS = {
    TYPES["A"]: _a, TYPES["AAAA"]: _aaaa, TYPES["CNAME"]: _name, TYPES["NS"]: _name,
    TYPES["PTR"]: _name, TYPES["MX"]: _mx, TYPES["TXT"]: _txt, TYPES["SRV"]: _srv,
    TYPES["SOA"]: _soa, TYPES["CAA"]: _caa,
}
