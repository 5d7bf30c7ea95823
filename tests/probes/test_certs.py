"""The DER reader, host name rules and expiry verdicts of monitor.probes.certs.

`cryptography` (a test-only dependency, via trustme) is the reference the
reader is checked against.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import NameOID

from monitor.probes.base import CertFacts
from monitor.probes.certs import (
    GENERALIZED_TIME, UTC_TIME, CertError, Name, cert_facts, cert_problem,
    chain_from_ssl_object, hostname_matches, parse_certificate, parse_time, read_tlv)
from tests.servers.tls_servers import (
    child_ca, days_from_now, der_of, root_ca, serve, server_context, tls_handler)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="Example Org")


# --- parsing -----------------------------------------------------------------

def test_leaf_fields(ca: trustme.CA):
    leaf = ca.issue_cert("localhost", "*.example.test", "127.0.0.1", "::1",
                         common_name="service.test", organization_name="Service Org",
                         not_before=datetime(2020, 2, 3, 4, 5, 6),
                         not_after=datetime(2049, 12, 31, 23, 59, 59))
    cert = parse_certificate(der_of(leaf.cert_chain_pems[0].bytes()))
    assert cert.subject == Name("service.test", "Service Org", cert.subject.unit)
    assert str(cert.subject) == "CN=service.test, O=Service Org"
    assert cert.issuer.organization == "Example Org" and cert.issuer.common_name is None
    assert cert.dns_names == ("localhost", "*.example.test")
    assert cert.ip_addresses == ("127.0.0.1", "::1")
    assert cert.not_before == datetime(2020, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert cert.not_after == datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)  # UTCTime
    assert not cert.is_ca and not cert.self_issued


def test_generalized_time_after_2049(ca: trustme.CA):
    leaf = ca.issue_cert("a.test", not_after=datetime(2050, 1, 1, 0, 0, 1))
    cert = parse_certificate(der_of(leaf.cert_chain_pems[0].bytes()))
    assert cert.not_after == datetime(2050, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_ca_certificate(ca: trustme.CA):
    cert = parse_certificate(der_of(ca.cert_pem.bytes()))
    assert cert.is_ca and cert.self_issued
    assert cert.subject == cert.issuer
    assert cert.subject.label.startswith("Testing CA #")  # trustme CAs have no CN


def _system_bundle() -> list[bytes]:
    path = Path(ssl.get_default_verify_paths().cafile or "/nonexistent")
    if not path.is_file():
        return []
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                      path.read_text(), re.S)
    return [der_of(pem.encode()) for pem in pems]


def _first(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    found = name.get_attributes_for_oid(oid)
    return str(found[0].value) if found else None


@pytest.mark.skipif(not _system_bundle(), reason="no system CA bundle")
@pytest.mark.filterwarnings("ignore:Parsed a serial number")  # an old root, not our concern
def test_agrees_with_cryptography_on_the_system_bundle():
    """Real-world certificates: Teletex/BMP strings, v1 certificates, odd dates."""
    ders = _system_bundle()
    for der in ders:
        ours, ref = parse_certificate(der), x509.load_der_x509_certificate(der)
        assert ours.not_before == ref.not_valid_before_utc
        assert ours.not_after == ref.not_valid_after_utc
        assert ours.subject.common_name == _first(ref.subject, NameOID.COMMON_NAME)
        assert ours.subject.organization == _first(ref.subject, NameOID.ORGANIZATION_NAME)
        assert ours.issuer.common_name == _first(ref.issuer, NameOID.COMMON_NAME)
        assert ours.self_issued == (ref.subject == ref.issuer)
    assert len(ders) > 50


@pytest.mark.parametrize("tag, text, expected", [
    (UTC_TIME, "491231235959Z", datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)),
    (UTC_TIME, "500101000000Z", datetime(1950, 1, 1, tzinfo=UTC)),
    (UTC_TIME, "2501021304Z", datetime(2025, 1, 2, 13, 4, tzinfo=UTC)),  # BER: no seconds
    (UTC_TIME, "250102130405+0200", datetime(2025, 1, 2, 11, 4, 5, tzinfo=UTC)),
    (GENERALIZED_TIME, "99991231235959Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
    (GENERALIZED_TIME, "20300615120000.123Z", datetime(2030, 6, 15, 12, tzinfo=UTC)),
    (GENERALIZED_TIME, "20161231235960Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
])
def test_parse_time(tag, text, expected):
    assert parse_time(tag, text.encode()) == expected


@pytest.mark.parametrize("tag, text", [
    (UTC_TIME, "20250101000000Z"), (GENERALIZED_TIME, "2025"), (UTC_TIME, "251332000000Z"),
    (0x04, "250101000000Z"),
])
def test_parse_time_rejects(tag, text):
    with pytest.raises(CertError):
        parse_time(tag, text.encode())


def test_read_tlv_long_form_and_errors():
    assert read_tlv(b"\x04\x81\x03abc") == (0x04, b"abc", 6)
    for bad in (b"", b"\x30", b"\x30\x05abc", b"\x30\x80\x00\x00", b"\x1f\x01\x00"):
        with pytest.raises(CertError):
            read_tlv(bad)


def test_malformed_certificates_raise_cert_error(ca: trustme.CA):
    der = der_of(ca.cert_pem.bytes())
    for bad in (b"", b"garbage", der[:len(der) // 2], b"\x30\x03\x02\x01\x00",
                b"\x30\x02\x30\x00"):
        with pytest.raises(CertError):
            parse_certificate(bad)


# --- host names --------------------------------------------------------------

@pytest.mark.parametrize("host, sans, cn, expected", [
    ("example.test", ["example.test"], None, True),
    ("EXAMPLE.test.", ["example.TEST"], None, True),
    ("www.example.test", ["example.test"], None, False),
    ("www.example.test", ["*.example.test"], None, True),
    ("a.b.example.test", ["*.example.test"], None, False),   # one label only
    ("example.test", ["*.example.test"], None, False),       # not the apex
    ("example.test", ["*.test"], None, False),               # too broad
    ("www.example.test", ["w*.example.test"], None, False),  # no partial wildcards
    ("www.example.test", ["www.*.test"], None, False),       # left-most label only
    ("127.0.0.1", ["127.0.0.1"], None, True),
    ("127.0.0.1", ["localhost"], "127.0.0.1", False),        # IPs never use the CN
    ("::1", ["0:0::1"], None, True),
    ("[::1]", ["::1"], None, True),
    ("10.0.0.1", ["*.0.0.1"], None, False),
    ("legacy.test", [], "legacy.test", True),                # CN without DNS SANs
    ("legacy.test", ["other.test"], "legacy.test", False),   # CN ignored with SANs
    ("legacy.test", ["10.0.0.1"], "legacy.test", True),      # an IP SAN is no DNS SAN
    ("café.test", ["xn--caf-dma.test"], None, True),
])
def test_hostname_matches(host, sans, cn, expected):
    assert hostname_matches(host, sans, cn) is expected


# --- verdicts ----------------------------------------------------------------

def facts(expires_in: timedelta, **kw) -> CertFacts:
    return CertFacts(expires_at=NOW + expires_in, **kw)


@pytest.mark.parametrize("expires_in, min_days, verdict", [
    (timedelta(days=-3.5), 14, ("certificate expired 3 days ago", None)),
    (timedelta(hours=-5), 14, ("certificate expired 5 hours ago", None)),
    (timedelta(minutes=-1), 14, ("certificate expired 1 minute ago", None)),
    (timedelta(0), 14, ("certificate expired 0 seconds ago", None)),
    (timedelta(days=5.2), 14, (None, "certificate expires in 5.2 days (minimum 14)")),
    (timedelta(hours=6), 14, (None, "certificate expires in 6.0 hours (minimum 14)")),
    (timedelta(days=5.2), 0, (None, None)),
    (timedelta(days=30), 14, (None, None)),
    (timedelta(days=3), 2.5, (None, None)),
])
def test_cert_problem(expires_in, min_days, verdict):
    assert cert_problem(facts(expires_in), NOW, min_days) == verdict


def test_cert_problem_names_a_chain_member():
    plain = facts(timedelta(days=-2), earliest="R3")
    assert cert_problem(plain, NOW, 14) == ("intermediate 'R3' expired 2 days ago", None)


# --- live chains -------------------------------------------------------------

async def _handshake(port: int, verify: bool, ca: trustme.CA | None):
    context = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(context)
    if not verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                              server_hostname="localhost")
    return writer


async def test_chains_verified_and_as_sent(ca: trustme.CA):
    intermediate = child_ca(ca, common_name="Mid", not_after=days_from_now(20))
    leaf = intermediate.issue_cert("localhost", not_after=days_from_now(400))
    async with serve(tls_handler(server_context(leaf))) as port:
        for verify, length in ((True, 3), (False, 2)):
            writer = await _handshake(port, verify, ca)
            try:
                ssl_obj = writer.get_extra_info("ssl_object")
                chain = chain_from_ssl_object(ssl_obj)
                found = cert_facts(ssl_obj, "localhost")
            finally:
                writer.transport.abort()
            assert len(chain) == length
            assert chain[0] == der_of(leaf.cert_chain_pems[0].bytes())
            assert found.chain_length == length and found.earliest == "Mid"
            assert found.earliest_label == "intermediate 'Mid'"
            assert found.leaf_expires_at > found.expires_at
            assert found.hostname_match is True


async def test_sent_roots_do_not_count_when_unverified(ca: trustme.CA):
    """A client never trusts a root because the server sent it, so an expired
    root sent along breaks nothing (AddTrust, 2020) and must not count."""
    leaf = ca.issue_cert("localhost", not_after=days_from_now(400))
    old_root = root_ca(common_name="Old Root", not_after=days_from_now(-9))
    sent = trustme.LeafCert(leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes(),
                            [ca.cert_pem.bytes(), old_root.cert_pem.bytes()])
    async with serve(tls_handler(server_context(sent))) as port:
        writer = await _handshake(port, False, None)
        try:
            found = cert_facts(writer.get_extra_info("ssl_object"), "localhost")
        finally:
            writer.transport.abort()
    assert found.chain_length == 3
    assert found.earliest == "leaf"
    assert cert_problem(found, datetime.now(UTC), 14) == (None, None)


async def test_a_leaf_not_yet_valid_is_named_by_start(ca: trustme.CA):
    leaf = ca.issue_cert("localhost", not_before=days_from_now(2.5), not_after=days_from_now(90))
    async with serve(tls_handler(server_context(leaf))) as port:
        writer = await _handshake(port, False, None)
        try:
            found = cert_facts(writer.get_extra_info("ssl_object"), "localhost")
        finally:
            writer.transport.abort()
    down, degraded = cert_problem(found, datetime.now(UTC), 14)
    assert down is not None and down.startswith("certificate not valid until ")
    assert down.endswith("(in 2 days)") and degraded is None


class _LeafOnly:
    """An ssl object from a Python without the chain methods."""

    def __init__(self, der: bytes | None) -> None:
        self.der = der
        self.context = ssl.create_default_context()

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        return self.der


def test_chain_falls_back_to_the_leaf(ca: trustme.CA):
    der = der_of(ca.issue_cert("localhost").cert_chain_pems[0].bytes())
    assert chain_from_ssl_object(_LeafOnly(der)) == [der]
    found = cert_facts(_LeafOnly(der), "localhost")
    assert found.chain_length == 1 and found.earliest == "leaf" and found.hostname_match
    with pytest.raises(CertError, match="no certificate"):
        cert_facts(_LeafOnly(None), "localhost")
