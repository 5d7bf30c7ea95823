"""DNS messages: the query dnspython builds, and replies read under a budget.

The replies here are bytes packed by hand (and by the loopback responder's own
packer), so the reader is checked against an implementation other than the
one it uses.
"""

from __future__ import annotations

import random
import struct

import dns.exception
import dns.message
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.probes.dnswire import (
    MAX_LABELS, MAX_RECORDS, MalformedReply, Reply, check_reply, make_question, parse_name,
    rcode_name, read_reply)
from tests.servers.dns_responder import DnsResponder, long_name_reply, pointer_chain_reply

ZONE = {
    "example.org": {
        "A": ["192.0.2.1", "192.0.2.2"],
        "MX": ["10 mail.example.org.", "20 backup.example.net."],
        "TXT": [("v=spf1 ", "-all"), "hello"],
        "SOA": ["ns1.example.org. hostmaster.example.org. 1 7200 900 1209600 300"],
    },
    "www.example.org": {"CNAME": ["example.org."]},
}
A = dns.rdatatype.A
EXAMPLE = make_question(parse_name("example.org"), A)


def test_query_bytes() -> None:
    question = make_question(parse_name("Example.ORG."), A)
    assert question.wire(0x1234) == (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01"       # id, RD, 1 question, 1 OPT
        b"\x07Example\x03ORG\x00\x00\x01\x00\x01"                   # question, case kept
        b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00")            # OPT: payload 1232
    plain = make_question(parse_name("example.org"), dns.rdatatype.MX, edns=False)
    assert plain.wire(1)[:12] == b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"


def test_names() -> None:
    assert parse_name(".").to_wire() == b"\x00"
    assert parse_name("bücher.example").to_wire() == b"\x0dxn--bcher-kva\x07example\x00"
    with pytest.raises(ValueError, match="longer than 255 bytes"):
        parse_name(".".join(["a" * 60] * 5))


def _reply(body: bytes, *, ancount: int = 1, qdcount: int = 0, flags: int = 0x8180,
           nscount: int = 0, arcount: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 7, flags, qdcount, ancount, nscount, arcount) + body


def _rr(rtype: int, rdata: bytes, owner: bytes = b"\x00", rclass: int = 1,
        ttl: int = 60) -> bytes:
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def test_compressed_answers() -> None:
    question = b"\x03www\x07example\x03org\x00\x00\x0f\x00\x01"   # at 12; example.org at 16
    mx = _rr(15, b"\x00\x0a\x04mail\xc0\x10", owner=b"\xc0\x0c")
    reply = read_reply(_reply(question + mx, qdcount=1))
    assert (reply.id, reply.rcode_name, reply.flag_names) == (7, "NOERROR", ["qr", "rd", "ra"])
    assert reply.question == (parse_name("www.example.org"), 15)
    answer = reply.answers[0]
    assert (answer.rdtype, answer.ttl, answer.text) == (15, 60, "10 mail.example.org.")


@pytest.mark.parametrize(("rtype", "rdata", "text"), [
    (1, b"\xc0\x00\x02\x01", "192.0.2.1"),
    (28, bytes.fromhex("20010db8000000000000000000000001"), "2001:db8::1"),
    (16, b"\x03abc\x00\x02de", "abcde"),                # TXT strings joined
    (16, b"\x04caf\xc3", "caf\ufffd"),
    (99, b"\x07v=spf1 \x04-all", "v=spf1 -all"),         # SPF reads as TXT does
    (257, b"\x80\x05issuewhat", '128 issue "what"'),
    (257, b"\x00\x05issueca\x1b", '0 issue "ca\\027"'),  # dnspython escapes controls
    (65280, b"\x01\x02\xff", "\\# 3 0102ff"),
    (65280, b"", "\\# 0"),
    (5, b"\x03a.b\x00", "a\\.b."),
    (5, b"\x00", "."),
    (33, b"\x00\x0a\x00\x3c\x13\xc4\x03sip\x00", "10 60 5060 sip."),
])
def test_record_data_as_text(rtype: int, rdata: bytes, text: str) -> None:
    assert read_reply(_reply(_rr(rtype, rdata))).answers[0].text == text


@pytest.mark.parametrize(("rtype", "rdata"), [
    (1, b"\x01\x02\x03\x04\x05"),
    (28, b"\x00" * 4),
    (16, b"\x05ab"),
    (15, b"\x00\x0a"),
    (5, b"\x01a\x00\x00"),
])
def test_record_data_that_does_not_fit(rtype: int, rdata: bytes) -> None:
    kind = dns.rdatatype.to_text(rtype)
    with pytest.raises(MalformedReply) as caught:
        read_reply(_reply(_rr(rtype, rdata)))
    assert str(caught.value) == (f"answer record 1 ({kind}, {len(rdata)} bytes of data): "
                                 "the data does not parse as its type")


@pytest.mark.parametrize("body", [
    b"\xc0\x0c",                      # points at itself
    b"\x01a\xc0\x0c",                 # label then back to its own start
    b"\x01a\xc0\x10",                 # forward, past itself
    b"\xc0\x0e\x01a\xc0\x0c",         # 12 -> 14 -> 12: a two-pointer cycle
])
def test_compression_loops(body: bytes) -> None:
    with pytest.raises(MalformedReply, match="^answer record 1: a compression pointer does "
                                             "not point backwards$"):
        read_reply(_reply(body + b"\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00"))


def test_pointer_chain_longer_than_dnspython_allows() -> None:
    start = 12 + 11                          # the first record's data: header, root, RR header
    chain = bytearray(b"\x00")              # a root label, then 17 pointers, each one back
    for hop in range(17):
        chain += struct.pack("!H", 0xC000 | (start if hop == 0 else start + 1 + 2 * (hop - 1)))
    data = _rr(65280, bytes(chain))
    owner = struct.pack("!H", 0xC000 | (start + len(chain) - 2))
    wire = _reply(data + _rr(1, b"\x7f\x00\x00\x01", owner=owner), ancount=2)
    with pytest.raises(MalformedReply, match="^answer record 2: a chain of more than 16 "):
        read_reply(wire)


def test_names_decompressing_past_the_label_budget_are_refused() -> None:
    wire = long_name_reply(EXAMPLE.wire(7), records=400)
    with pytest.raises(MalformedReply, match=f"decompress to more than {MAX_LABELS} labels$"):
        read_reply(wire)
    # The same names in fewer records fit the budget.
    assert len(read_reply(long_name_reply(EXAMPLE.wire(7), records=30)).answers) == 31


def test_records_past_the_cap_are_refused_before_reading() -> None:
    # The header alone: nothing after it is read, or it would be cut short.
    header = _reply(b"", ancount=MAX_RECORDS - 1, nscount=1, arcount=1)
    with pytest.raises(MalformedReply, match=f"^{MAX_RECORDS + 1} records, more than the "):
        read_reply(header)
    with pytest.raises(MalformedReply, match="^3001 records"):
        read_reply(pointer_chain_reply(EXAMPLE.wire(7), records=3000))


def test_many_real_records_are_read() -> None:
    records = b"".join(_rr(1, struct.pack("!I", n), owner=b"\x01a\x07example\x03org\x00")
                       for n in range(MAX_RECORDS))
    assert len(read_reply(_reply(records, ancount=MAX_RECORDS)).answers) == MAX_RECORDS


def test_edns() -> None:
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 1 << 24, 0)
    assert read_reply(_reply(opt, ancount=0, arcount=1)).rcode_name == "BADVERS"
    with pytest.raises(MalformedReply, match="^answer record 1 .*: an EDNS OPT record outside"):
        read_reply(_reply(opt))


def test_rcode_names() -> None:
    assert rcode_name(3) == "NXDOMAIN"
    assert rcode_name(4000) == "RCODE4000"


def test_ttl_with_the_top_bit_set_reads_as_zero() -> None:
    assert read_reply(_reply(_rr(1, b"\x7f\x00\x00\x01", ttl=0x80000000))).answers[0].ttl == 0


def test_other_classes_and_unknown_types_are_generic_and_cached_nowhere() -> None:
    # dnspython caches a parser per (class, type) pair it meets: fed by a
    # server, that table would grow without end.
    before = len(dns.rdata._rdata_classes)
    records = b"".join(_rr(1000 + n, b"\x01", rclass=2 + n) for n in range(200))
    reply = read_reply(_reply(records + _rr(1, b"\x7f\x00\x00\x01", rclass=3), ancount=201))
    assert reply.answers[0].text == "\\# 1 01"
    assert reply.answers[-1].text == "\\# 4 7f000001"   # a CH A record is not an IN address
    assert len(dns.rdata._rdata_classes) == before


def test_trailing_bytes() -> None:
    with pytest.raises(MalformedReply, match="^3 stray bytes after the last record$"):
        read_reply(_reply(_rr(1, b"\x7f\x00\x00\x01") + b"abc"))
    with pytest.raises(MalformedReply, match="^1 stray byte after the last record$"):
        read_reply(_reply(_rr(1, b"\x7f\x00\x00\x01") + b"a"))


def test_data_past_the_end_of_the_message() -> None:
    with pytest.raises(MalformedReply, match=r"^answer record 1 \(A, 4 bytes of data\): "
                                             "the message ends inside the data$"):
        read_reply(_reply(_rr(1, b"\x7f\x00\x00\x01")[:-2]))
    with pytest.raises(MalformedReply, match="^answer record 1: cut short at byte 13$"):
        read_reply(_reply(b"\x00\x00\x01"))


def _real_answer(name: str = "www.example.org", rdtype: int = A) -> bytes:
    query = make_question(parse_name(name), rdtype).wire(99)
    return DnsResponder(ZONE).replies(query, "tcp")[0]


def test_check_reply() -> None:
    www = make_question(parse_name("WWW.example.ORG"), A)  # names compare caseless
    assert len(check_reply(www, 99, _real_answer()).answers) == 3
    with pytest.raises(MalformedReply, match="^the answer has id 99, not the query's 98$"):
        check_reply(www, 98, _real_answer())
    with pytest.raises(MalformedReply, match="^the answer is for www.example.org. A, "
                                             "not example.org. A$"):
        check_reply(EXAMPLE, 99, _real_answer())
    query = EXAMPLE.wire(5)
    with pytest.raises(MalformedReply, match="^the QR bit is clear"):
        check_reply(EXAMPLE, 5, query)


def test_every_cut_short_answer_is_malformed() -> None:
    full = _real_answer()
    assert len(read_reply(full).answers) == 3
    for size in range(len(full)):
        with pytest.raises(MalformedReply):
            read_reply(full[:size])


def _read_or_refuse(wire: bytes) -> None:
    try:
        assert isinstance(read_reply(wire), Reply)
    except MalformedReply as exc:
        assert str(exc)


def test_random_and_mutated_packets_only_raise_malformed() -> None:
    rng = random.Random(1035)
    full = _real_answer()
    for _ in range(2000):
        _read_or_refuse(rng.randbytes(rng.randrange(0, 80)))
    for _ in range(3000):
        mutated = bytearray(full)
        for _ in range(rng.randrange(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        _read_or_refuse(bytes(mutated))


def test_reads_what_dnspython_reads_to_the_same_answers() -> None:
    """The walk over dnspython's parsers, with its shortcut for names met
    before, reads every reply dns.message.from_wire reads (records of class
    IN: others are kept as generic data here)."""
    rng = random.Random(6891)
    answers = [_real_answer(), *(_real_answer("example.org", getattr(dns.rdatatype, kind))
                                 for kind in ("MX", "TXT", "SOA"))]
    compared = 0
    for _ in range(4000):
        mutated = bytearray(rng.choice(answers))
        for _ in range(rng.randrange(1, 3)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            theirs = dns.message.from_wire(bytes(mutated), one_rr_per_rrset=True)
        except dns.exception.DNSException:
            continue
        if any(rrset.rdclass != dns.rdataclass.IN for rrset in theirs.answer):
            continue
        ours = read_reply(bytes(mutated))
        assert ours.rcode == theirs.rcode()
        assert sorted(answer.rdata.to_wire() for answer in ours.answers) == sorted(
            rdata.to_wire() for rrset in theirs.answer for rdata in rrset)
        compared += 1
    assert compared > 1000


@given(st.binary(min_size=12, max_size=300))
def test_any_bytes_only_raise_malformed(wire: bytes) -> None:
    _read_or_refuse(wire)
