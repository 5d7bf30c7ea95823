"""Certificates no CA should issue, presented by real loopback servers to the
tls, tcp (tls = true) and https probes: dates cryptography refuses, the
largest date it accepts, and names carrying terminal control characters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from aiohttp import web

from monitor.engine.result import Status
from monitor.engine.wire import result_from_message, result_message
from tests.servers.http_servers import app_server, probe as probe_http
from tests.servers.tls_servers import (
    child_ca, days_from_now, patched, probe, serve, server_context, tls_handler, write_ca)

NO_EXPIRY = b"99991231235959Z"   # RFC 5280: "no well-defined expiration date"
LAST_SECOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
UNREADABLE = "cannot read notAfter (malformed GeneralizedTime)"
CONTROLS = "\x1b[2J\x1b]0;owned\x07"   # clear screen, set the window title


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    return write_ca(ca, tmp_path)


@pytest.fixture(scope="module")
def forever(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", not_after=LAST_SECOND.replace(tzinfo=None))


def tls_server(cert: trustme.LeafCert):
    return serve(tls_handler(server_context(cert)))


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


def https_server(cert: trustme.LeafCert):
    return app_server([web.get("/", hello)], ssl_context=server_context(cert))


def shown_anywhere(result) -> str:
    """Everything a result would print: its JSON, cert facts included."""
    cert = result.cert
    facts = [cert.subject, cert.issuer, cert.earliest, *cert.sans] if cert else []
    return json.dumps(result.to_json(), ensure_ascii=False) + "".join(facts)


# --- dates cryptography refuses: facts unavailable, the verdict stands --------

MALFORMED = [
    pytest.param(b"9999123123-9959", id="zone-offset-overflow"),   # OverflowError once
    pytest.param(b"99991231235960Z", id="leap-second"),             # silently :59 once
    pytest.param(b"20301231235999Z", id="second-99"),
]


@pytest.mark.parametrize("not_after", MALFORMED)
async def test_tls_handshake_that_succeeded_stays_up_to_its_cert_min_days(forever, not_after):
    async with tls_server(patched(forever, NO_EXPIRY, not_after)) as port:
        warned = await probe("tls", host="127.0.0.1", port=port, verify_tls=False)
        quiet = await probe("tls", host="127.0.0.1", port=port, verify_tls=False,
                            cert_min_days=0)
    assert warned.status is Status.DEGRADED
    assert warned.reason == f"certificate expiry unknown: {UNREADABLE}"
    assert quiet.status is Status.UP, quiet.reason
    for result in (warned, quiet):
        assert result.cert is None and result.cert_days_left is None
        assert result.details["cert_error"] == f"certificate facts unavailable: {UNREADABLE}"
        assert result.details["tls_version"] and result.details["subject"] is None
        assert "tls" in result.phases_ms


async def test_tls_with_verification_is_refused_by_openssl(forever, ca_file):
    async with tls_server(patched(forever, NO_EXPIRY, b"9999123123-9959")) as port:
        result = await probe("tls", host="127.0.0.1", port=port, server_name="localhost",
                             ca_file=ca_file)
    assert result.status is Status.DOWN
    assert result.reason.startswith("certificate verify failed: ")
    assert "Overflow" not in result.reason


async def test_tcp_tls_still_talks_to_the_service(forever):
    async def banner(reader, writer) -> None:
        writer.write(b"220 ready\r\n")
        await writer.drain()
        await reader.read(100)

    cert = patched(forever, NO_EXPIRY, b"9999123123-9959")
    async with serve(tls_handler(server_context(cert), banner)) as port:
        result = await probe("tcp", host="127.0.0.1", port=port, tls=True, verify_tls=False,
                             expect="220")
    assert result.status is Status.DEGRADED
    assert result.reason == f"certificate expiry unknown: {UNREADABLE}"
    assert result.details["received"].startswith("220 ready")
    assert result.details["cert_error"] == f"certificate facts unavailable: {UNREADABLE}"


@pytest.mark.parametrize("not_after", MALFORMED)
async def test_https_reports_unavailable_facts_instead_of_dropping_them(forever, not_after):
    async with https_server(patched(forever, NO_EXPIRY, not_after)) as srv:
        warned = await probe_http(srv.url("/", host="localhost"), verify_tls=False)
        quiet = await probe_http(srv.url("/", host="localhost"), verify_tls=False,
                                 cert_min_days=0)
    assert warned.status is Status.DEGRADED
    assert warned.reason == f"certificate expiry unknown: {UNREADABLE}"
    assert quiet.status is Status.UP, quiet.reason
    for result in (warned, quiet):
        assert result.http_status == 200 and result.cert is None
        assert result.details["cert_error"] == f"certificate facts unavailable: {UNREADABLE}"


async def test_https_failed_check_still_wins(forever):
    async with https_server(patched(forever, NO_EXPIRY, b"9999123123-9959")) as srv:
        result = await probe_http(srv.url("/", host="localhost"), verify_tls=False,
                                  expect_body="goodbye")
    assert result.status is Status.DOWN
    assert result.reason == "body does not contain 'goodbye'"
    assert result.details["cert_error"] == f"certificate facts unavailable: {UNREADABLE}"


# --- the largest date there is ------------------------------------------------

async def test_tls_no_expiry_is_accepted_by_openssl(forever, ca_file):
    async with tls_server(forever) as port:
        result = await probe("tls", host="127.0.0.1", port=port, server_name="localhost",
                             ca_file=ca_file)
    assert result.status is Status.UP, result.reason
    assert result.cert.leaf_expires_at == LAST_SECOND
    assert result.cert.earliest != "leaf"   # trustme's root expires in the year 3000


async def test_tls_no_expiry_travels_to_json_and_the_dashboard(forever):
    async with tls_server(forever) as port:   # unverified: the leaf as sent is the chain
        result = await probe("tls", host="127.0.0.1", port=port, verify_tls=False)
    assert result.status is Status.UP, result.reason
    assert result.cert.expires_at == LAST_SECOND
    doc = result.to_json()
    assert doc["cert_expires_at"] == "9999-12-31T23:59:59.000Z"
    assert doc["cert_days_left"] > 2_900_000
    assert result_from_message(result_message(result)).cert.expires_at == LAST_SECOND


async def test_https_no_expiry(forever, ca_file):
    async with https_server(forever) as srv:
        result = await probe_http(srv.url("/", host="localhost"), ca_file=ca_file)
    assert result.status is Status.UP, result.reason
    assert result.cert.leaf_expires_at == LAST_SECOND


# --- names with control characters ---------------------------------------------

async def test_tls_names_reach_the_result_printable(ca, ca_file):
    intermediate = child_ca(ca, common_name=f"Mid{CONTROLS}", not_after=days_from_now(5))
    leaf = intermediate.issue_cert("localhost", common_name=f"evil{CONTROLS}",
                                   organization_name=f"Org{CONTROLS}")
    async with tls_server(leaf) as port:
        result = await probe("tls", host="127.0.0.1", port=port, server_name="localhost",
                             ca_file=ca_file)
    assert result.status is Status.DEGRADED
    assert result.reason.startswith("intermediate 'Mid\\e[2J\\e]0;owned\\x07' expires in ")
    assert result.cert.subject == "CN=evil\\e[2J\\e]0;owned\\x07, O=Org\\e[2J\\e]0;owned\\x07"
    assert result.details["subject"] == result.cert.subject
    assert result.cert.earliest == "Mid\\e[2J\\e]0;owned\\x07"
    assert result.cert.issuer.startswith("CN=Mid\\e[2J")
    assert shown_anywhere(result).isprintable()


async def test_https_names_reach_the_result_printable():
    stranger = trustme.CA()
    leaf = stranger.issue_cert("localhost", common_name=f"evil{CONTROLS}")
    async with https_server(leaf) as srv:
        result = await probe_http(srv.url("/", host="localhost"), verify_tls=False)
    assert result.status is Status.UP, result.reason
    assert result.cert.subject.startswith("CN=evil\\e[2J\\e]0;owned\\x07")
    assert shown_anywhere(result).isprintable()
