"""monitor.probes.certs: certificates read through cryptography, host name
rules, expiry verdicts, and certificates that cannot be read."""

from __future__ import annotations

import asyncio
import re
import ssl
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.probes.base import CertFacts
from monitor.probes.certs import (
    CertError, Name, cert_facts, cert_problem, chain_facts, hostname_matches,
    judge_certificates, parse_certificate, presented_chain)
from tests.servers.tls_servers import (
    child_ca, days_from_now, der_of, patched, root_ca, serve, server_context, tls_handler)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
NO_EXPIRY = b"99991231235959Z"   # RFC 5280: "no well-defined expiration date"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA(organization_name="Example Org")


@pytest.fixture(scope="module")
def forever(ca: trustme.CA) -> trustme.LeafCert:
    """A leaf whose notAfter is the GeneralizedTime 99991231235959Z, to patch."""
    return ca.issue_cert("localhost", not_after=datetime(9999, 12, 31, 23, 59, 59))


def leaf_der(leaf: trustme.LeafCert) -> bytes:
    return der_of(leaf.cert_chain_pems[0].bytes())


# --- reading -----------------------------------------------------------------

def test_leaf_fields(ca: trustme.CA):
    leaf = ca.issue_cert("localhost", "*.example.test", "127.0.0.1", "::1",
                         common_name="service.test", organization_name="Service Org",
                         not_before=datetime(2020, 2, 3, 4, 5, 6),
                         not_after=datetime(2049, 12, 31, 23, 59, 59))
    cert = parse_certificate(leaf_der(leaf))
    assert cert.subject == Name("service.test", "Service Org", cert.subject.unit)
    assert str(cert.subject) == "CN=service.test, O=Service Org"
    assert cert.issuer.organization == "Example Org" and cert.issuer.common_name is None
    assert cert.dns_names == ("localhost", "*.example.test")
    assert cert.ip_addresses == ("127.0.0.1", "::1")
    assert cert.not_before == datetime(2020, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert cert.not_after == datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)  # UTCTime
    assert not cert.self_issued


def test_generalized_time_after_2049(ca: trustme.CA):
    leaf = ca.issue_cert("a.test", not_after=datetime(2050, 1, 1, 0, 0, 1))
    assert parse_certificate(leaf_der(leaf)).not_after == datetime(2050, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_no_well_defined_expiry_is_the_last_second_of_9999(forever: trustme.LeafCert):
    cert = parse_certificate(leaf_der(forever))
    assert cert.not_after == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_ca_certificate(ca: trustme.CA):
    cert = parse_certificate(der_of(ca.cert_pem.bytes()))
    assert cert.self_issued
    assert cert.subject == cert.issuer
    assert cert.subject.label.startswith("Testing CA #")  # trustme CAs have no CN


def _system_bundle() -> list[bytes]:
    path = Path(ssl.get_default_verify_paths().cafile or "/nonexistent")
    if not path.is_file():
        return []
    pems = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----",
                      path.read_text(), re.S)
    return [der_of(pem.encode()) for pem in pems]


@pytest.mark.skipif(not _system_bundle(), reason="no system CA bundle")
def test_reads_the_system_bundle_without_warnings():
    """Real-world roots: Teletex/BMP strings, v1 certificates, negative serial
    numbers (which cryptography warns about: that must not reach stderr)."""
    ders = _system_bundle()
    with warnings.catch_warnings(record=True) as caught:
        certs = [parse_certificate(der) for der in ders]
    assert [str(w.message) for w in caught] == []
    assert len(certs) > 50 and all(cert.self_issued for cert in certs)
    assert all(cert.not_before < cert.not_after for cert in certs)


# --- certificates that cannot be read ----------------------------------------

@pytest.mark.parametrize("not_after, reason", [
    # OverflowError once: "-9959" read as a -99:59 zone offset from 9999-12-31
    (b"9999123123-9959", "cannot read notAfter (malformed GeneralizedTime)"),
    (b"99991231235960Z", "cannot read notAfter (malformed GeneralizedTime)"),  # was :59
    (b"20301231235999Z", "cannot read notAfter (malformed GeneralizedTime)"),
    (b"00000101000000Z", "cannot read notAfter (year 0 is out of range)"),
])
def test_absurd_not_after_is_a_clear_cert_error(forever, not_after, reason):
    der = leaf_der(patched(forever, NO_EXPIRY, not_after))
    with pytest.raises(CertError) as caught:
        parse_certificate(der)
    assert str(caught.value) == reason
    with pytest.raises(CertError, match=re.escape(reason)):
        chain_facts([der], False, "localhost")


def test_unreadable_parts_are_named(ca: trustme.CA):
    leaf = ca.issue_cert("localhost", common_name="ZZZZ")
    der = leaf_der(leaf)
    bad_name = der.replace(b"ZZZZ", b"\xff\xfe\xfd\xfc")   # not UTF-8 in a UTF8String
    cases = {
        bad_name: "cannot read subject (invalid value)",
        der[:len(der) // 2]: "cannot read the certificate (truncated)",
        der + b"\x00": "cannot read the certificate (bytes after its end)",
        b"garbage": "cannot read the certificate (truncated)",
        b"": "cannot read the certificate (truncated)",
    }
    for bad, reason in cases.items():
        with pytest.raises(CertError) as caught:
            parse_certificate(bad)
        assert str(caught.value) == reason


def test_a_malformed_extension_is_named(ca: trustme.CA):
    der = leaf_der(ca.issue_cert("localhost"))
    at = der.index(b"localhost")   # the dNSName's length byte precedes it: claim more
    with pytest.raises(CertError, match=r"^cannot read subjectAltName \(truncated\)$"):
        parse_certificate(der[:at - 1] + b"\x20" + der[at:])


def test_an_unreadable_chain_member_does_not_hide_the_leaf(ca: trustme.CA, forever):
    leaf = leaf_der(ca.issue_cert("localhost"))
    broken = leaf_der(patched(forever, NO_EXPIRY, b"9999123123-9959"))
    found = chain_facts([leaf, broken], True, "localhost")
    assert found.earliest == "leaf" and found.chain_length == 2
    with pytest.raises(CertError, match="no certificate"):
        chain_facts([], False, "localhost")


def _judged_or_refused(der: bytes) -> None:
    """A chain of `der` yields facts and a verdict, or CertError: nothing else."""
    try:
        found = chain_facts([der], False, "localhost")
    except CertError as exc:
        assert str(exc).startswith("cannot read "), exc
        return
    cert_problem(found, NOW, 14)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_certificates_are_read_or_refused(forever, data):
    """Half the changes land in the validity, as digits and time punctuation."""
    der = bytearray(leaf_der(forever))
    dates = der.index(NO_EXPIRY) - 17      # notBefore (UTCTime) then notAfter
    anywhere = st.tuples(st.integers(0, len(der) - 1), st.integers(0, 255))
    in_dates = st.tuples(st.integers(dates, dates + 33), st.sampled_from(b"0123456789Z+-.,"))
    for at, value in data.draw(st.lists(st.one_of(anywhere, in_dates), min_size=1, max_size=4)):
        der[at] = value
    _judged_or_refused(bytes(der))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_refused(data):
    _judged_or_refused(data)


class _LeafOnly:
    """An ssl object as a Python without any chain method has it (the leaf
    DER alone), since this Python has the chain one way or the other."""

    def __init__(self, der: bytes | None) -> None:
        self.der = der
        self.context = ssl.create_default_context()

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        return self.der


def test_chain_falls_back_to_the_leaf(ca: trustme.CA):
    der = leaf_der(ca.issue_cert("localhost"))
    assert presented_chain(_LeafOnly(der)) == ([der], True)
    found = cert_facts(_LeafOnly(der), "localhost")
    assert found.chain_length == 1 and found.earliest == "leaf" and found.hostname_match
    with pytest.raises(CertError, match="no certificate"):
        cert_facts(_LeafOnly(None), "localhost")


@pytest.mark.parametrize("min_days, degraded", [
    (14, "certificate expiry unknown: cannot read notAfter (malformed GeneralizedTime)"),
    (0, None),
])
def test_unreadable_facts_are_a_verdict_not_an_exception(forever, min_days, degraded):
    der = leaf_der(patched(forever, NO_EXPIRY, b"9999123123-9959"))
    verdict = judge_certificates(_LeafOnly(der), "localhost", min_days)
    assert verdict.facts is None and verdict.down is None
    assert verdict.degraded == degraded
    assert verdict.unavailable == ("certificate facts unavailable: "
                                   "cannot read notAfter (malformed GeneralizedTime)")


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
    (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - NOW, 14, (None, None)),
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
    # Every Python this project supports gives the whole chain: publicly from
    # 3.13, through the private _ssl object before (test_chain_falls_back_to_
    # the_leaf covers a Python that gives neither).
    intermediate = child_ca(ca, common_name="Mid", not_after=days_from_now(20))
    leaf = intermediate.issue_cert("localhost", not_after=days_from_now(400))
    async with serve(tls_handler(server_context(leaf))) as port:
        for verify, length in ((True, 3), (False, 2)):
            writer = await _handshake(port, verify, ca)
            try:
                ssl_obj = writer.get_extra_info("ssl_object")
                chain, _ = presented_chain(ssl_obj)
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
