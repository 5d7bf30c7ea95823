"""The tls probe against real TLS servers on loopback (certificates by trustme)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import trustme

from monitor.config import ConfigError
from monitor.engine.result import Status
from monitor.probes.base import ProbeContext
from monitor.probes.net import shared_ssl_context
from monitor.probes.tls import TlsProbe
from tests.servers.tls_servers import (
    child_ca, days_from_now, drain_until_closed, ipv6_available, make_target, probe,
    refused_port, reset, self_signed_context, serve, server_context, tls_handler, write_ca)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    return write_ca(ca, tmp_path)


def tls_server(cert: trustme.LeafCert, **kw: object):
    return serve(tls_handler(server_context(cert, **kw)))


async def probe_tls(port: int, **options: object):
    options.setdefault("server_name", "localhost")
    return await probe("tls", host="127.0.0.1", port=port, **options)


# --- healthy -----------------------------------------------------------------

async def test_trusted_certificate_is_up_with_phases_and_facts(ca, ca_file):
    async with tls_server(ca.issue_cert("localhost")) as port:
        result = await probe_tls(port, ca_file=ca_file)
    assert result.status is Status.UP, result.reason
    assert set(result.phases_ms) == {"connect", "tls"}
    assert result.details["hostname_match"] is True
    assert result.details["earliest"] == "leaf"
    assert result.details["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert result.details["cipher"]
    assert "O=trustme" in result.details["issuer"]
    assert result.cert is not None and result.cert.chain_length == 2  # leaf + root
    assert result.cert.sans == ("localhost",)
    assert result.cert.expires_at.year == 3000
    assert result.target == f"127.0.0.1:{port}"


async def test_host_name_is_resolved_in_its_own_phase(ca, ca_file):
    async with tls_server(ca.issue_cert("localhost")) as port:
        result = await probe("tls", host="localhost", port=port, ca_file=ca_file)
    assert result.status is Status.UP, result.reason
    assert {"dns", "connect", "tls"} <= set(result.phases_ms)


async def test_ip_host_matches_ip_san_without_sni(ca, ca_file):
    async with tls_server(ca.issue_cert("127.0.0.1")) as port:
        result = await probe("tls", host="127.0.0.1", port=port, ca_file=ca_file)
    assert result.status is Status.UP, result.reason
    assert result.cert.hostname_match is True


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
async def test_ipv6_loopback(ca, ca_file):
    async with serve(tls_handler(server_context(ca.issue_cert("::1"))), host="::1") as port:
        result = await probe("tls", host="::1", port=port, ca_file=ca_file)
    assert result.status is Status.UP, result.reason
    assert result.target == f"[::1]:{port}"


async def test_intermediate_expiring_first_is_named(ca, ca_file):
    intermediate = child_ca(ca, common_name="Test Intermediate", not_after=days_from_now(5))
    async with tls_server(intermediate.issue_cert("localhost")) as port:
        result = await probe_tls(port, ca_file=ca_file)
    assert result.status is Status.DEGRADED
    assert result.reason.startswith("intermediate 'Test Intermediate' expires in 5.0 days")
    assert result.reason.endswith("(minimum 14)")
    cert = result.cert
    assert cert.earliest == "Test Intermediate" and cert.chain_length == 3
    assert cert.leaf_expires_at is not None and cert.leaf_expires_at > cert.expires_at
    assert 4.9 < result.cert_days_left < 5.1


# --- expiry ------------------------------------------------------------------

async def test_leaf_close_to_expiry_is_degraded(ca, ca_file):
    async with tls_server(ca.issue_cert("localhost", not_after=days_from_now(5.25))) as port:
        result = await probe_tls(port, ca_file=ca_file)
    assert result.status is Status.DEGRADED
    assert result.reason == "certificate expires in 5.2 days (minimum 14)"


async def test_cert_min_days_zero_turns_the_warning_off(ca, ca_file):
    async with tls_server(ca.issue_cert("localhost", not_after=days_from_now(5))) as port:
        result = await probe_tls(port, ca_file=ca_file, cert_min_days=0)
    assert result.status is Status.UP


async def test_expired_leaf_fails_verification_and_says_when(ca, ca_file):
    async with tls_server(ca.issue_cert("localhost", not_after=days_from_now(-3.5))) as port:
        result = await probe_tls(port, ca_file=ca_file)
    assert result.status is Status.DOWN
    # verification failed on dates: a second, unverified look says how long ago
    assert result.reason == "certificate expired 3 days ago"
    assert result.cert is not None and result.cert_days_left < -3
    assert "tls" not in result.phases_ms  # the measured handshake did not complete


async def test_expired_leaf_without_verification_says_when(ca):
    async with tls_server(ca.issue_cert("localhost", not_after=days_from_now(-3.5))) as port:
        result = await probe_tls(port, verify_tls=False)
    assert result.status is Status.DOWN
    assert result.reason == "certificate expired 3 days ago"
    assert result.cert is not None  # facts are still reported


async def test_expired_intermediate_without_verification_is_named(ca):
    intermediate = child_ca(ca, common_name="Old Intermediate", not_after=days_from_now(-2.5))
    async with tls_server(intermediate.issue_cert("localhost")) as port:
        result = await probe_tls(port, verify_tls=False)
    assert result.status is Status.DOWN
    assert result.reason == "intermediate 'Old Intermediate' expired 2 days ago"


async def test_not_yet_valid_leaf_is_down(ca):
    leaf = ca.issue_cert("localhost", not_before=days_from_now(3), not_after=days_from_now(90))
    async with tls_server(leaf) as port:
        result = await probe_tls(port, verify_tls=False)
    assert result.status is Status.DOWN
    assert result.reason.startswith("certificate not valid until ")
    assert result.reason.endswith("(in 2 days)")


# --- verification failures ---------------------------------------------------

async def test_self_signed_certificate_is_down(ca_file):
    async with serve(tls_handler(self_signed_context("localhost"))) as port:
        result = await probe_tls(port, ca_file=ca_file)
    assert result.status is Status.DOWN
    assert result.reason.startswith("certificate verify failed: self-signed certificate")


async def test_untrusted_ca_is_down_with_a_hint(ca_file):
    stranger = trustme.CA()
    async with tls_server(stranger.issue_cert("localhost")) as port:
        result = await probe_tls(port, ca_file=ca_file)
    assert result.status is Status.DOWN
    assert result.reason.startswith(
        "certificate verify failed: unable to get local issuer certificate")
    assert "ca_file" in result.reason


async def test_wrong_hostname_is_down(ca, ca_file):
    async with tls_server(ca.issue_cert("localhost")) as port:
        result = await probe_tls(port, ca_file=ca_file, server_name="other.test")
    assert result.status is Status.DOWN
    assert result.reason == ("certificate verify failed: hostname mismatch, "
                             "certificate is not valid for 'other.test'")


async def test_without_verification_a_mismatch_is_reported_not_failed(ca):
    async with tls_server(ca.issue_cert("localhost")) as port:
        result = await probe_tls(port, verify_tls=False, server_name="other.test")
    assert result.status is Status.UP
    assert result.details["hostname_match"] is False
    assert result.cert.chain_length == 1  # as sent: the root is not part of it


async def test_without_verification_an_untrusted_chain_still_gives_facts():
    async with serve(tls_handler(self_signed_context("localhost"))) as port:
        result = await probe_tls(port, verify_tls=False)
    assert result.status is Status.UP
    assert result.cert.subject == "CN=localhost"
    assert result.cert.issuer == "CN=localhost"
    assert result.cert.hostname_match is True


# --- broken servers ----------------------------------------------------------

async def test_server_that_never_speaks_tls_times_out_during_tls():
    async with serve(drain_until_closed) as port:
        result = await probe_tls(port, timeout="300ms")
    assert result.status is Status.DOWN
    assert result.reason == "timed out after 300ms during tls"
    assert "connect" in result.phases_ms


async def test_server_that_resets_during_handshake():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the ClientHello has arrived
        reset(writer)
    async with serve(handler) as port:
        result = await probe_tls(port)
    assert result.status is Status.DOWN
    assert result.reason == "TLS handshake failed: connection reset by peer"


async def test_server_that_hangs_up_during_handshake():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()
    async with serve(handler) as port:
        result = await probe_tls(port)
    assert result.status is Status.DOWN
    assert result.reason == "TLS handshake failed: connection closed by peer"


async def test_plain_text_server_on_a_tls_port():
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mail.test ESMTP\r\n")
        await drain_until_closed(reader, writer)
    async with serve(handler) as port:
        result = await probe_tls(port)
    assert result.status is Status.DOWN
    assert result.reason.startswith("TLS handshake failed: ")
    assert "_" not in result.reason


async def test_min_version_the_server_lacks(ca, ca_file):
    leaf = ca.issue_cert("localhost")
    async with tls_server(leaf, max_version=ssl.TLSVersion.TLSv1_2) as port:
        result = await probe_tls(port, ca_file=ca_file, min_version="TLSv1.3")
        assert result.status is Status.DOWN
        assert result.reason.startswith("TLS handshake failed: ")
        ok = await probe_tls(port, ca_file=ca_file, min_version="TLSv1.2")
    assert ok.status is Status.UP and ok.details["tls_version"] == "TLSv1.2"


async def test_connection_refused():
    with refused_port() as port:
        result = await probe_tls(port)
    assert result.status is Status.DOWN
    assert result.reason == "connection refused"
    assert result.latency_ms is None


async def test_timeout_releases_the_connection():
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await drain_until_closed(reader, writer)
        closed.set()
    async with serve(handler) as port:
        result = await probe_tls(port, timeout="200ms")
        assert result.reason == "timed out after 200ms during tls"
        await asyncio.wait_for(closed.wait(), 1.0)


# --- options -----------------------------------------------------------------

def test_defaults_and_describe():
    target = make_target("tls", host="example.org")
    assert (target.options.port, target.options.verify_tls, target.options.cert_min_days) == \
        (443, True, 14.0)
    assert TlsProbe.describe(target.options) == "example.org:443"
    assert make_target("tls", host="[::1]", port=8443).display_target == "[::1]:8443"


@pytest.mark.parametrize("options, problem", [
    ({}, "host: required"),
    ({"host": "example.org:443"}, "put the port in 'port'"),
    ({"host": "https://example.org"}, "expected a host name"),
    ({"host": "bad host"}, "not a valid host name"),
    ({"host": "a.test", "port": 70000}, "port: must be at most 65535"),
    ({"host": "a.test", "min_version": "TLSv1.0"}, "expected one of 'TLSv1.2', 'TLSv1.3'"),
    ({"host": "a.test", "ca_file": "/nonexistent/ca.pem"}, "file not found"),
    ({"host": "a.test", "cert_min_days": -1}, "must be at least 0"),
])
def test_option_problems(options, problem):
    with pytest.raises(ConfigError) as caught:
        make_target("tls", **options)
    assert problem in str(caught.value)


def test_ca_file_without_certificates_is_a_config_error(tmp_path):
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="no PEM certificates"):
        make_target("tls", host="a.test", ca_file=str(bogus))


def test_ssl_contexts_are_shared_per_settings(ca_file):
    ctx = ProbeContext()
    first = shared_ssl_context(ctx, True, ca_file, None)
    assert shared_ssl_context(ctx, True, ca_file, None) is first
    assert shared_ssl_context(ctx, False, ca_file, None) is not first
