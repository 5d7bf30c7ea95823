"""The dns probe against a real responder on loopback (messages: test_dnswire.py)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.config import ConfigError, parse_config
from monitor.config.model import Target
from monitor.engine.result import ProbeResult, Status
from monitor.engine.runner import run_probe
from monitor.probes.base import ProbeContext
from monitor.probes.dns import DnsProbe, parse_server, system_nameserver
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
    monkeypatch.setattr("monitor.probes.dnswire.RESEND_AFTER", 0.05)
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
    assert result.reason == ("malformed DNS response: the header counts 300 questions; "
                             "a reply holds the one asked")
    assert result.latency_ms is None


async def test_echoed_query_is_malformed(dns: DnsResponder) -> None:
    dns.mode = "echo"
    result = await probe(dns.address)
    assert result.reason.startswith("malformed DNS response: the QR bit is clear")


async def test_udp_answer_with_wrong_id_is_ignored(dns: DnsResponder) -> None:
    dns.mode = "wrong_id"  # a late answer to an earlier query, then ours
    result = await probe(dns.address)
    assert result.status is Status.UP, result.reason
    assert result.details["answers"] == ["192.0.2.1", "192.0.2.2"]


async def test_tcp_answer_with_wrong_id_is_malformed(dns: DnsResponder) -> None:
    dns.mode = "wrong_id"  # the connection carried our query alone
    result = await probe(dns.address, transport="tcp")
    assert result.status is Status.DOWN
    ours = dns.queries[0].id
    assert result.reason == (f"malformed DNS response: the answer has id {ours ^ 0x5A5A}, "
                             f"not the query's {ours}")


async def test_query_ids_are_random(dns: DnsResponder) -> None:
    for _ in range(30):
        await probe(dns.address)
    assert len({q.id for q in dns.queries}) > 25


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
    ({"record_type": "BOGUS"}, "unknown record type 'BOGUS' (e.g. A, AAAA, CNAME, MX"),
    ({"record_type": "ANY"}, "ANY is a query meta-type, not a record type (e.g. A, AAAA"),
    ({"record_type": "AXFR"}, "AXFR is a query meta-type"),
    ({"expect_rcode": "NXDOMIAN"}, "unknown rcode 'NXDOMIAN' (did you mean 'NXDOMAIN'?)"),
    ({"expect_rcode": "ok"}, "unknown rcode 'ok' (one of NOERROR, FORMERR, SERVFAIL"),
    ({"query_name": "a..b"}, "empty label in 'a..b'"),
    ({"query_name": "x" * 64 + ".org"}, "longer than 63 bytes"),
    ({"query_name": ".".join(["a" * 60] * 5)}, "is longer than 255 bytes"),
    ({"query_name": "bad\\"}, "cannot use 'bad\\\\' as a DNS name: an escaped code"),
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


@pytest.mark.parametrize(("given", "kept"), [
    ("aaaa", "AAAA"), ("https", "HTTPS"), ("TYPE65280", "TYPE65280"), ("type1", "A"),
])
def test_record_types_are_every_type_dnspython_knows(given: str, kept: str) -> None:
    assert dns_target("127.0.0.1", record_type=given).options.record_type == kept


def test_rcodes_by_name_or_number() -> None:
    assert dns_target("127.0.0.1", expect_rcode="3").options.expect_rcode == "NXDOMAIN"
    assert dns_target("127.0.0.1", expect_rcode="badsig").options.expect_rcode == "BADVERS"


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
