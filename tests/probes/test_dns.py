"""The dns probe and its wire format, against a real responder on loopback."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.config import ConfigError, parse_config
from monitor.config.model import Target
from monitor.engine.result import ProbeResult, Status
from monitor.engine.runner import run_probe
from monitor.probes import dnswire
from monitor.probes.base import ProbeContext
from monitor.probes.dns import DnsProbe, parse_server, system_nameserver
from monitor.probes.dnswire import MalformedMessage, make_query, parse_message
from tests.servers.dns_responder import DnsResponder

ZONE: dict[str, dict[str, list[Any]]] = {
    "example.org": {
        "A": ["192.0.2.1", "192.0.2.2"],
        "AAAA": ["2001:db8::1"],
        "MX": ["10 mail.example.org.", "20 backup.example.net."],
        "TXT": [("v=spf1 ", "-all"), "hello world"],
        "NS": ["ns1.example.org."],
        "SOA": ["ns1.example.org. hostmaster.example.org. 2024010101 7200 900 1209600 300"],
        "CAA": ['0 issue "letsencrypt.org"'],
    },
    "www.example.org": {"CNAME": ["example.org."]},
    "_sip._udp.example.org": {"SRV": ["10 60 5060 sip.example.org."]},
    "1.2.0.192.in-addr.arpa": {"PTR": ["host.example.org."]},
    "empty.example.org": {"TXT": ["only text here"]},
}


def dns_target(server: str, **keys: Any) -> Target:
    fields = {"query_name": "example.org", "server": server, "timeout": "1s", **keys}
    lines = ['[[targets]]', 'name = "d"', 'kind = "dns"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
    return parse_config("\n".join(lines) + "\n").targets[0]


async def probe(server: str, **keys: Any) -> ProbeResult:
    return await run_probe(dns_target(server, **keys), ProbeContext())


@pytest.fixture
async def dns() -> Any:
    responder = DnsResponder(ZONE)
    await responder.start()
    yield responder
    await responder.close()


def free_port() -> int:
    """A loopback port with (very likely) nothing on it, UDP or TCP."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- answers ------------------------------------------------------------------

async def test_a_records_up_with_details(dns: DnsResponder) -> None:
    result = await probe(dns.address)
    assert result.status is Status.UP, result.reason
    assert result.details["answers"] == ["192.0.2.1", "192.0.2.2"]
    assert result.details["rcode"] == "NOERROR"
    assert result.details["server"] == dns.address
    assert result.details["transport"] == "udp"
    assert "aa" in result.details["flags"]
    assert result.latency_ms is not None and result.latency_ms == result.phases_ms["dns"]
    assert result.target == f"example.org A @{dns.address}"
    seen = dns.queries[-1]
    assert seen.flags & 0x0100 and seen.has_opt  # RD set, EDNS0 sent


@pytest.mark.parametrize(("record_type", "name", "answers"), [
    ("AAAA", "example.org", ["2001:db8::1"]),
    ("mx", "example.org", ["10 mail.example.org.", "20 backup.example.net."]),
    ("TXT", "example.org", ["v=spf1 -all", "hello world"]),
    ("CNAME", "www.example.org", ["example.org."]),
    ("NS", "example.org", ["ns1.example.org."]),
    ("SOA", "example.org",
     ["ns1.example.org. hostmaster.example.org. 2024010101 7200 900 1209600 300"]),
    ("SRV", "_sip._udp.example.org", ["10 60 5060 sip.example.org."]),
    ("CAA", "example.org", ['0 issue "letsencrypt.org"']),
    ("PTR", "192.0.2.1", ["host.example.org."]),  # an address becomes its reverse name
])
async def test_record_types(dns: DnsResponder, record_type: str, name: str,
                            answers: list[str]) -> None:
    result = await probe(dns.address, query_name=name, record_type=record_type)
    assert result.status is Status.UP, result.reason
    assert result.details["answers"] == answers


async def test_cname_chain_is_followed_and_reported(dns: DnsResponder) -> None:
    result = await probe(dns.address, query_name="www.example.org",
                         expect_answers=["example.org", "192.0.2.2"])
    assert result.status is Status.UP, result.reason
    assert result.details["answers"] == ["192.0.2.1", "192.0.2.2"]
    assert result.details["cnames"] == ["example.org."]


async def test_expect_answers_match_ignores_case_dot_and_ipv6_form(dns: DnsResponder) -> None:
    mx = await probe(dns.address, record_type="MX", expect_answers=["10 MAIL.example.org"])
    assert mx.status is Status.UP, mx.reason
    v6 = await probe(dns.address, record_type="AAAA", expect_answers=["2001:DB8:0:0::1"])
    assert v6.status is Status.UP, v6.reason


async def test_expect_answers_mismatch_is_down_with_what_was_seen(dns: DnsResponder) -> None:
    result = await probe(dns.address, expect_answers=["192.0.2.1", "192.0.2.9"])
    assert result.status is Status.DOWN
    assert result.reason == "expected answer '192.0.2.9' not found (got 192.0.2.1, 192.0.2.2)"
    assert result.latency_ms is not None  # the server answered


async def test_expect_answer_regex(dns: DnsResponder) -> None:
    good = await probe(dns.address, record_type="TXT", expect_answer_regex="^v=spf1 ")
    assert good.status is Status.UP, good.reason
    bad = await probe(dns.address, record_type="TXT", expect_answer_regex="^v=DMARC1")
    assert bad.status is Status.DOWN
    assert bad.reason == "no answer matches /^v=DMARC1/ (got v=spf1 -all, hello world)"


async def test_empty_answer_is_down_unless_allowed(dns: DnsResponder) -> None:
    result = await probe(dns.address, query_name="empty.example.org")
    assert result.status is Status.DOWN
    assert result.reason == "no A records for empty.example.org"
    allowed = await probe(dns.address, query_name="empty.example.org", min_answers=0)
    assert allowed.status is Status.UP
    many = await probe(dns.address, min_answers=3)
    assert many.reason == "2 A records for example.org, expected at least 3"


# --- rcodes -------------------------------------------------------------------

async def test_nxdomain(dns: DnsResponder) -> None:
    result = await probe(dns.address, query_name="nope.example.org")
    assert result.status is Status.DOWN
    assert result.reason == "NXDOMAIN: nope.example.org does not exist"
    assert result.details["rcode"] == "NXDOMAIN"
    assert result.latency_ms is not None


async def test_expected_nxdomain_is_up(dns: DnsResponder) -> None:
    dns.mode = "nxdomain"
    result = await probe(dns.address, expect_rcode="nxdomain")
    assert result.status is Status.UP, result.reason


async def test_servfail(dns: DnsResponder) -> None:
    dns.mode = "servfail"
    result = await probe(dns.address)
    assert result.status is Status.DOWN
    assert result.reason == "expected NOERROR, got SERVFAIL"
    assert result.details["rcode"] == "SERVFAIL"


# --- failures -----------------------------------------------------------------

async def test_silent_server_times_out_during_dns(dns: DnsResponder) -> None:
    dns.mode = "silent"
    started = time.perf_counter()
    result = await probe(dns.address, timeout="300ms")
    assert time.perf_counter() - started < 1.0
    assert result.status is Status.DOWN
    assert result.reason == "timed out after 300ms during dns"
    assert result.latency_ms is None


async def test_udp_query_is_resent_while_unanswered(dns: DnsResponder,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("monitor.probes.dns.RESEND_AFTER", 0.05)
    dns.mode = "silent"
    await probe(dns.address, timeout="400ms")
    assert len(dns.queries) >= 3  # 0, 50, 150, 350 ms
    assert len({q.id for q in dns.queries}) == 1


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_nothing_listening_is_connection_refused(transport: str) -> None:
    port = free_port()
    result = await probe(f"127.0.0.1:{port}", transport=transport)
    assert result.status is Status.DOWN
    assert result.reason == f"connection refused (no DNS server at 127.0.0.1:{port})"
    assert result.latency_ms is None


async def test_garbage_is_malformed(dns: DnsResponder) -> None:
    dns.mode = "garbage"
    result = await probe(dns.address)
    assert result.status is Status.DOWN
    assert result.reason == "malformed DNS response: unsupported label type 0x64 at byte 12"
    assert result.latency_ms is None


async def test_echoed_query_is_malformed(dns: DnsResponder) -> None:
    dns.mode = "echo"
    result = await probe(dns.address)
    assert result.reason.startswith("malformed DNS response: the QR bit is clear")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_answer_with_wrong_id_is_ignored(dns: DnsResponder, transport: str) -> None:
    dns.mode = "wrong_id"
    result = await probe(dns.address, transport=transport)
    assert result.status is Status.UP, result.reason
    assert result.details["answers"] == ["192.0.2.1", "192.0.2.2"]


async def test_truncated_udp_answer_retries_over_tcp(dns: DnsResponder) -> None:
    dns.mode = "truncated"
    result = await probe(dns.address)
    assert result.status is Status.UP, result.reason
    assert result.details["transport"] == "tcp"
    assert result.details["answers"] == ["192.0.2.1", "192.0.2.2"]
    assert [q.transport for q in dns.queries] == ["udp", "tcp"]
    assert dns.queries[0].id == dns.queries[1].id


async def test_truncated_answer_with_no_tcp_listener() -> None:
    responder = DnsResponder(ZONE, mode="truncated", tcp=False)
    await responder.start()
    try:
        result = await probe(responder.address)
    finally:
        await responder.close()
    assert result.reason == (f"connection refused (no DNS server at {responder.address} over TCP)"
                             " after a truncated UDP answer")


async def test_tcp_hangup_without_answer(dns: DnsResponder) -> None:
    dns.mode = "hangup"
    result = await probe(dns.address, transport="tcp")
    assert result.status is Status.DOWN
    assert result.reason == "DNS server closed the TCP connection without answering"


async def test_tcp_transport(dns: DnsResponder) -> None:
    result = await probe(dns.address, transport="tcp", record_type="TXT")
    assert result.status is Status.UP, result.reason
    assert result.details["transport"] == "tcp"
    assert result.target == f"example.org TXT @{dns.address} (tcp)"
    assert [q.transport for q in dns.queries] == ["tcp"]


async def test_slow_answer_is_degraded_by_max_latency(dns: DnsResponder) -> None:
    dns.mode, dns.delay = "slow", 0.15
    result = await probe(dns.address, max_latency="50ms")
    assert result.status is Status.DEGRADED
    assert result.reason.startswith("slow: ")
    assert result.latency_ms >= 150


async def test_ipv6_server() -> None:
    responder = DnsResponder(ZONE, host="::1")
    try:
        await responder.start()
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        result = await probe(responder.address, record_type="AAAA")
        assert result.status is Status.UP, result.reason
        assert result.details["server"] == responder.address
    finally:
        await responder.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_timeout_closes_the_socket(dns: DnsResponder, transport: str) -> None:
    dns.mode = "silent"
    target = dns_target(dns.address, transport=transport, timeout="100ms")
    await run_probe(target, ProbeContext())  # warm up lazy imports and loop internals
    before = _open_fds()
    for _ in range(5):
        result = await run_probe(target, ProbeContext())
        assert result.reason == "timed out after 100ms during dns"
    await asyncio.sleep(0.05)  # let the server side notice the closed connections
    assert _open_fds() <= before


async def test_timeouts_under_load_leave_no_unretrieved_exception(dns: DnsResponder) -> None:
    """Issue 8 item 14: a probe cancelled while its UDP socket was being made
    left connection_lost setting an exception on a future nobody awaited."""
    dns.mode = "silent"
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    target = dns_target(dns.address, timeout="1ms")  # expires before the socket is ready
    try:
        for _ in range(2):
            results = await asyncio.gather(*(run_probe(target, ProbeContext())
                                             for _ in range(100)))
            assert {r.reason for r in results} == {"timed out after 1ms during dns"}
            await asyncio.sleep(0.01)  # the closed transports' connection_lost runs
            gc.collect()               # a future with an unretrieved exception logs here
    finally:
        loop.set_exception_handler(None)
    assert [context["message"] for context in reported] == []


# --- config -------------------------------------------------------------------

def _config_error(**keys: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        dns_target(**{"server": "127.0.0.1", **keys})
    return str(caught.value)


def test_bad_record_type_names_line_and_suggests() -> None:
    text = ('[[targets]]\nname = "d"\nkind = "dns"\nquery_name = "example.org"\n'
            'record_type = "AAA"\n')
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert str(caught.value) == ("<config>:5: targets[d].record_type: unknown record type 'AAA' "
                                 "(did you mean 'AAAA'?)")


@pytest.mark.parametrize(("keys", "message"), [
    ({"record_type": "BOGUS"}, "unknown record type 'BOGUS' (one of A, NS, CNAME"),
    ({"expect_rcode": "NXDOMIAN"}, "unknown rcode 'NXDOMIAN' (did you mean 'NXDOMAIN'?)"),
    ({"query_name": "a..b"}, "empty label in 'a..b'"),
    ({"query_name": "x" * 64 + ".org"}, "longer than 63 bytes"),
    ({"server": "[::1"}, "cannot read server '[::1'"),
    ({"server": "127.0.0.1:99999"}, "port must be 1-65535"),
    ({"server": "udp://1.1.1.1"}, "cannot read server"),
    ({"server": "127.0.0.1:5353", "port": 5354}, "port: server '127.0.0.1:5353' already names"),
    ({"transport": "quic"}, "expected one of 'udp', 'tcp'"),
    ({"expect_answers": ["10.0.0"]}, "'10.0.0' is not an IPv4 address (record_type is A)"),
    ({"record_type": "AAAA", "expect_answers": ["192.0.2.1"]}, "is not an IPv6 address"),
    ({"expect_rcode": "NXDOMAIN", "expect_answers": ["192.0.2.1"]},
     "expect_answers: cannot expect answers with expect_rcode = 'NXDOMAIN'"),
    ({"expect_answer_regex": "("}, "invalid regular expression"),
])
def test_config_problems(keys: dict[str, Any], message: str) -> None:
    assert message in _config_error(**keys)


def test_missing_query_name() -> None:
    with pytest.raises(ConfigError, match="query_name: required for this kind"):
        parse_config('[[targets]]\nname = "d"\nkind = "dns"\n')


def test_describe_and_defaults() -> None:
    target = dns_target("", record_type="aaaa")
    assert target.options.record_type == "AAAA"
    assert target.display_target == "example.org AAAA"
    assert dns_target("[::1]:5353").display_target == "example.org A @[::1]:5353"
    assert dns_target("9.9.9.9").display_target == "example.org A @9.9.9.9"
    assert dns_target("9.9.9.9", port=5353).display_target == "example.org A @9.9.9.9:5353"


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1", ("127.0.0.1", None)),
    ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("::1", ("::1", None)),
    ("[::1]", ("::1", None)),
    ("[::1]:53", ("::1", 53)),
    ("dns.example.net:53", ("dns.example.net", 53)),
])
def test_parse_server(text: str, parsed: tuple[str, int | None]) -> None:
    assert parse_server(text) == parsed


def test_system_nameserver(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# generated\nsearch example.org\nnameserver bogus\n"
                    "nameserver 10.0.0.53\nnameserver 10.0.0.54\n")
    assert system_nameserver(conf) == "10.0.0.53"
    conf.write_text("options edns0\n")
    assert system_nameserver(conf) in ("127.0.0.53", "127.0.0.1")
    assert system_nameserver(tmp_path / "missing") in ("127.0.0.53", "127.0.0.1")


def test_probe_class_is_registered() -> None:
    from monitor.probes.registry import probe_class
    assert probe_class("dns") is DnsProbe


# --- wire format --------------------------------------------------------------

def test_query_bytes() -> None:
    query = make_query("Example.ORG.", "a", qid=0x1234)
    assert query.wire == (
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01"       # id, RD, 1 question, 1 OPT
        b"\x07Example\x03ORG\x00\x00\x01\x00\x01"                   # question
        b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00")            # OPT: payload 1232
    assert query.name == "example.org."
    plain = make_query("example.org", "MX", qid=1, edns=False, recursion=False)
    assert plain.wire[:12] == b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"


def test_query_ids_are_random() -> None:
    assert len({make_query("example.org", "A").id for _ in range(50)}) > 40


def test_encode_name() -> None:
    assert dnswire.encode_name(".") == b"\x00"
    assert dnswire.encode_name("bücher.example") == b"\x0dxn--bcher-kva\x07example\x00"
    with pytest.raises(ValueError, match="longer than 255"):
        dnswire.encode_name(".".join(["a" * 60] * 5))


def _response(body: bytes, *, ancount: int = 1, qdcount: int = 0, flags: int = 0x8180,
              arcount: int = 0) -> bytes:
    return struct.pack("!HHHHHH", 7, flags, qdcount, ancount, 0, arcount) + body


def _rr(rtype: int, rdata: bytes, owner: bytes = b"\x00") -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata


def test_parse_compressed_answers() -> None:
    question = b"\x03www\x07example\x03org\x00\x00\x0f\x00\x01"   # at 12; example.org at 16
    mx = _rr(15, b"\x00\x0a\x04mail\xc0\x10", owner=b"\xc0\x0c")
    message = parse_message(_response(question + mx, qdcount=1))
    assert message.id == 7 and message.rcode_name == "NOERROR"
    assert message.flag_names == ["qr", "rd", "ra"]
    assert message.questions[0] == dnswire.Question("www.example.org.", 15, 1)
    record = message.answers[0]
    assert (record.name, record.type_name, record.ttl, record.data) == (
        "www.example.org.", "MX", 60, "10 mail.example.org.")


@pytest.mark.parametrize(("rtype", "rdata", "text"), [
    (1, b"\xc0\x00\x02\x01", "192.0.2.1"),
    (28, bytes.fromhex("20010db8000000000000000000000001"), "2001:db8::1"),
    (16, b"\x03abc\x00\x02de", "abcde"),
    (16, b"\x04caf\xc3", "caf\ufffd"),
    (257, b"\x80\x05issuewhat", '128 issue "what"'),
    (99, b"\x01\x02\xff", "\\# 3 0102ff"),
    (99, b"", "\\# 0"),
    (5, b"\x03a.b\x00", "a\\.b."),
    (5, b"\x00", "."),
])
def test_rdata_decoding(rtype: int, rdata: bytes, text: str) -> None:
    assert parse_message(_response(_rr(rtype, rdata))).answers[0].data == text


@pytest.mark.parametrize(("rtype", "rdata", "message"), [
    (1, b"\x01\x02\x03\x04\x05", "1 stray bytes after the data"),
    (28, b"\x00" * 4, "address cut short"),
    (16, b"\x05ab", "string cut short"),
    (15, b"\x00\x0a", "name at byte"),
    (5, b"\x01a\x00\x00", "1 stray bytes"),
])
def test_bad_rdata(rtype: int, rdata: bytes, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        parse_message(_response(_rr(rtype, rdata)))


@pytest.mark.parametrize("body", [
    b"\xc0\x0c",                      # points at itself
    b"\x01a\xc0\x0c",                 # label then back to its own start
    b"\x01a\xc0\x10",                 # forward, past itself
    b"\xc0\x0e\x01a\xc0\x0c",         # 12 -> 14 -> 12: a two-pointer cycle
])
def test_compression_loops_fail_fast(body: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(MalformedMessage, match="does not point backwards"):
        parse_message(_response(body + b"\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00"))
    assert time.perf_counter() - started < 0.1


def test_extended_rcode_from_opt() -> None:
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 1 << 24, 0)
    message = parse_message(_response(opt, ancount=0, arcount=1))
    assert message.rcode_name == "BADVERS"
    assert message.edns_payload == 1232 and message.additional == ()


def test_unknown_rcode_and_type_names() -> None:
    assert dnswire.rcode_name(11) == "RCODE11"
    assert dnswire.type_name(65) == "TYPE65"


def _real_answer() -> bytes:
    query = make_query("www.example.org", "A", qid=99)
    return DnsResponder(ZONE).replies(query.wire, "tcp")[0]


def test_every_cut_short_answer_is_malformed() -> None:
    full = _real_answer()
    assert len(parse_message(full).answers) == 3
    for size in range(len(full)):
        with pytest.raises(MalformedMessage):
            parse_message(full[:size])


def test_random_and_mutated_packets_only_raise_malformed() -> None:
    rng = random.Random(1035)
    full = _real_answer()
    samples = [rng.randbytes(rng.randrange(0, 80)) for _ in range(2000)]
    for _ in range(3000):
        mutated = bytearray(full)
        for _ in range(rng.randrange(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        samples.append(bytes(mutated))
    started = time.perf_counter()
    for sample in samples:
        try:
            parse_message(sample)
        except MalformedMessage:
            pass
    assert time.perf_counter() - started < 1.5
