"""Certificate facts without third-party libraries.

A minimal DER reader takes from an X.509 certificate what an uptime monitor
needs: validity, subject and issuer names, subjectAltName DNS names and IP
addresses. The chain comes from the live `ssl` object, so facts are available
with verification off too (where `getpeercert()` returns an empty dict).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.probes.base import CertFacts

try:
    from _ssl import ENCODING_DER
except ImportError:  # pragma: no cover - CPython always has it
    ENCODING_DER = 2


class CertError(ValueError):
    """The bytes are not a certificate this reader understands."""


# --- DER ---------------------------------------------------------------------

SEQUENCE, SET, OID, BOOLEAN, OCTETS = 0x30, 0x31, 0x06, 0x01, 0x04
UTC_TIME, GENERALIZED_TIME = 0x17, 0x18
EXPLICIT_0, EXPLICIT_3 = 0xA0, 0xA3
SAN_DNS, SAN_IP = 0x82, 0x87          # [2] dNSName, [7] iPAddress (implicit)

OID_CN, OID_O, OID_OU = b"\x55\x04\x03", b"\x55\x04\x0a", b"\x55\x04\x0b"
OID_SAN, OID_BASIC_CONSTRAINTS = b"\x55\x1d\x11", b"\x55\x1d\x13"

_STRING_CODECS = {
    0x0C: "utf-8",        # UTF8String
    0x13: "ascii",        # PrintableString
    0x16: "ascii",        # IA5String
    0x1A: "ascii",        # VisibleString
    0x14: "latin-1",      # TeletexString (in practice Latin-1)
    0x1E: "utf-16-be",    # BMPString
    0x1C: "utf-32-be",    # UniversalString
}


def read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, end) of the DER element starting at `pos`."""
    if pos + 2 > len(data):
        raise CertError("truncated DER element")
    tag, length = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise CertError("multi-byte DER tags are not used in certificates")
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4:  # 0 = indefinite length, which DER forbids
            raise CertError("invalid DER length")
        if pos + size > len(data):
            raise CertError("truncated DER length")
        length = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    end = pos + length
    if end > len(data):
        raise CertError("truncated DER element")
    return tag, data[pos:end], end


def children(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) elements that make up a constructed element's content."""
    items: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        tag, content, pos = read_tlv(data, pos)
        items.append((tag, content))
    return items


def _expect(item: tuple[int, bytes], tag: int, what: str) -> bytes:
    if item[0] != tag:
        raise CertError(f"{what}: expected DER tag 0x{tag:02x}, found 0x{item[0]:02x}")
    return item[1]


def decode_string(tag: int, content: bytes) -> str | None:
    codec = _STRING_CODECS.get(tag)
    return content.decode(codec, "replace") if codec else None


_UTC_TIME = re.compile(r"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?(Z|[+-]\d{4})?")
_GEN_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)?(\d\d)?(?:[.,]\d+)?(Z|[+-]\d{4})?")


def parse_time(tag: int, content: bytes) -> datetime:
    """UTCTime or GeneralizedTime as an aware UTC datetime.

    DER demands seconds and "Z"; older BER forms (no seconds, offsets) are
    accepted because real certificates carry them.
    """
    text = content.decode("ascii", "replace")
    pattern = {UTC_TIME: _UTC_TIME, GENERALIZED_TIME: _GEN_TIME}.get(tag)
    match = pattern.fullmatch(text) if pattern else None
    if match is None:
        raise CertError(f"unreadable certificate time {text!r}")
    year = int(match.group(1))
    if tag == UTC_TIME:
        year += 1900 if year >= 50 else 2000  # RFC 5280 4.1.2.5.1
    second = min(int(match.group(6) or 0), 59)  # a leap second becomes :59
    try:
        moment = datetime(year, int(match.group(2)), int(match.group(3)),
                          int(match.group(4)), int(match.group(5) or 0), second, tzinfo=UTC)
    except ValueError as exc:
        raise CertError(f"unreadable certificate time {text!r}: {exc}") from None
    zone = match.group(7)
    if zone and zone != "Z":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        moment = moment - offset if zone[0] == "+" else moment + offset
    return moment


# --- certificates ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Name:
    """The parts of a distinguished name people recognise."""

    common_name: str | None = None
    organization: str | None = None
    unit: str | None = None

    def __str__(self) -> str:
        parts = [f"CN={self.common_name}" if self.common_name else "",
                 f"O={self.organization}" if self.organization else "",
                 f"OU={self.unit}" if self.unit and not self.common_name else ""]
        return ", ".join(p for p in parts if p)

    @property
    def label(self) -> str:
        """A short name for messages: CN, else OU, else O."""
        return self.common_name or self.unit or self.organization or ""


@dataclass(frozen=True, slots=True)
class Certificate:
    subject: Name
    issuer: Name
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    is_ca: bool = False
    self_issued: bool = False   # subject == issuer (a root, or a self-signed leaf)

    @property
    def sans(self) -> tuple[str, ...]:
        return self.dns_names + self.ip_addresses


def parse_name(content: bytes) -> Name:
    """Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }."""
    found: dict[bytes, str] = {}
    for rdn_tag, rdn in children(content):
        if rdn_tag != SET:
            continue
        for _, attribute in children(rdn):
            parts = children(attribute)
            if len(parts) == 2 and parts[0][0] == OID and parts[0][1] not in found:
                text = decode_string(*parts[1])
                if text is not None:
                    found[parts[0][1]] = text
    return Name(found.get(OID_CN), found.get(OID_O), found.get(OID_OU))


def parse_certificate(der: bytes) -> Certificate:
    """Read one DER X.509 certificate; CertError when it cannot."""
    try:
        return _parse_certificate(der)
    except CertError:
        raise
    except (IndexError, ValueError) as exc:  # too few elements, bad address bytes
        raise CertError(f"malformed certificate: {exc}") from None


def _parse_certificate(der: bytes) -> Certificate:
    tag, cert, _ = read_tlv(der)
    _expect((tag, cert), SEQUENCE, "Certificate")
    tbs = children(_expect(children(cert)[0], SEQUENCE, "TBSCertificate"))
    start = 1 if tbs[0][0] == EXPLICIT_0 else 0  # [0] version is optional (v1)
    _serial, _algorithm, issuer, validity, subject = tbs[start:start + 5]
    times = children(_expect(validity, SEQUENCE, "Validity"))
    dns_names: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    is_ca = False
    for ext_id, critical_or_value in _extensions(tbs[start + 6:]):
        if ext_id == OID_SAN:
            dns_names, ips = _parse_san(critical_or_value)
        elif ext_id == OID_BASIC_CONSTRAINTS:
            is_ca = _parse_is_ca(critical_or_value)
    return Certificate(
        subject=parse_name(_expect(subject, SEQUENCE, "subject")),
        issuer=parse_name(_expect(issuer, SEQUENCE, "issuer")),
        not_before=parse_time(*times[0]),
        not_after=parse_time(*times[1]),
        dns_names=dns_names, ip_addresses=ips, is_ca=is_ca,
        self_issued=subject[1] == issuer[1],
    )


def _extensions(rest: list[tuple[int, bytes]]) -> Iterable[tuple[bytes, bytes]]:
    """(OID, extnValue content) for each extension in the [3] field."""
    for tag, content in rest:
        if tag != EXPLICIT_3:
            continue  # [1]/[2] unique identifiers
        for _, extension in children(_expect(children(content)[0], SEQUENCE, "Extensions")):
            parts = children(extension)
            yield _expect(parts[0], OID, "extnID"), _expect(parts[-1], OCTETS, "extnValue")


def _parse_san(value: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names: list[str] = []
    ips: list[str] = []
    outer, general_names, _ = read_tlv(value)
    for tag, content in children(_expect((outer, general_names), SEQUENCE, "subjectAltName")):
        if tag == SAN_DNS:
            names.append(content.decode("ascii", "replace"))
        elif tag == SAN_IP and len(content) in (4, 16):
            ips.append(str(ipaddress.ip_address(content)))
    return tuple(names), tuple(ips)


def _parse_is_ca(value: bytes) -> bool:
    outer, content, _ = read_tlv(value)
    items = children(_expect((outer, content), SEQUENCE, "basicConstraints"))
    return bool(items) and items[0][0] == BOOLEAN and items[0][1] not in (b"", b"\x00")


# --- the presented chain -----------------------------------------------------

def chain_from_ssl_object(ssl_obj: Any) -> list[bytes]:
    """DER certificates the peer presented, leaf first."""
    return _presented_chain(ssl_obj)[0]


def _presented_chain(ssl_obj: Any) -> tuple[list[bytes], bool]:
    """(chain, verified). The verified chain (up to the trust anchor) when
    verification was on, else the chain as sent; the leaf alone if this Python
    lacks the chain methods (they are private before 3.13)."""
    context = getattr(ssl_obj, "context", None)
    verified = getattr(context, "verify_mode", ssl.CERT_NONE) != ssl.CERT_NONE
    method_name = "get_verified_chain" if verified else "get_unverified_chain"
    for owner in (getattr(ssl_obj, "_sslobj", None), ssl_obj):
        method = getattr(owner, method_name, None)
        if method is None:
            continue
        try:
            certs = method()
        except (AttributeError, ValueError, ssl.SSLError):
            continue
        if certs:
            return [_der(cert) for cert in certs], verified
    leaf = ssl_obj.getpeercert(binary_form=True)
    return ([leaf] if leaf else []), verified


def _der(cert: Any) -> bytes:
    if isinstance(cert, (bytes, bytearray)):
        return bytes(cert)
    return cert.public_bytes(ENCODING_DER)


# --- host names --------------------------------------------------------------

def hostname_matches(hostname: str, sans: Iterable[str], cn: str | None = None) -> bool:
    """Does a certificate with these SANs (DNS names and IP addresses) and
    subject CN cover `hostname`? Rules as OpenSSL applies them for Python:
    IP hosts match IP SANs only; the CN counts only without DNS SANs; a
    wildcard is a whole left-most label, matches one label, and needs two
    labels after it."""
    sans = list(sans)
    address = _ip(hostname.strip("[]"))
    if address is not None:
        return any(_ip(san) == address for san in sans)
    host = _a_label(hostname.rstrip(".").lower())
    patterns = [san for san in sans if _ip(san) is None]
    if not patterns and cn:
        patterns = [cn]
    return any(_dns_matches(host, pattern) for pattern in patterns)


def _dns_matches(host: str, pattern: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    if not pattern.startswith("*."):
        return "*" not in pattern and host == pattern
    suffix = pattern[1:]
    if "*" in suffix or suffix.count(".") < 2:  # no "*.com", no second wildcard
        return False
    label, dot, rest = host.partition(".")
    return bool(label and dot) and "." + rest == suffix


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


def _a_label(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


# --- facts and verdicts ------------------------------------------------------

@dataclass(slots=True)
class ChainFacts(CertFacts):
    """CertFacts plus what `cert_problem` needs about start dates and roles.

    base.CertFacts has no notBefore; these extra fields keep a not-yet-valid
    certificate detectable until it has one.
    """

    starts_at: datetime | None = None      # the latest notBefore in the chain
    starts_label: str = "certificate"      # which one, as messages name it
    earliest_label: str = "certificate"    # "certificate", "intermediate 'X'", "root 'X'"


def cert_facts(ssl_obj: Any, hostname: str | None) -> ChainFacts:
    """Facts about the certificates on a completed TLS connection.

    `expires_at` is the earliest notAfter across the chain. In a chain that was
    not verified, self-issued certificates other than the leaf are skipped: a
    client never trusts a root because the server sent it (an expired root
    sent along, as with AddTrust in 2020, breaks nothing).
    """
    ders, verified = _presented_chain(ssl_obj)
    if not ders:
        raise CertError("the server presented no certificate")
    leaf = parse_certificate(ders[0])
    chain = [leaf] + [cert for cert in map(_parse_or_none, ders[1:])
                      if cert is not None and (verified or not cert.self_issued)]
    first_expiry = min(range(len(chain)), key=lambda i: chain[i].not_after)
    last_start = max(range(len(chain)), key=lambda i: chain[i].not_before)
    match = hostname_matches(hostname, leaf.sans, leaf.subject.common_name) if hostname else None
    return ChainFacts(
        expires_at=chain[first_expiry].not_after,
        subject=str(leaf.subject), issuer=str(leaf.issuer),
        earliest="leaf" if first_expiry == 0 else _short_name(chain, first_expiry),
        leaf_expires_at=leaf.not_after, hostname_match=match, sans=leaf.sans,
        chain_length=len(ders),
        starts_at=chain[last_start].not_before,
        starts_label=_role(chain, last_start), earliest_label=_role(chain, first_expiry),
    )


def _parse_or_none(der: bytes) -> Certificate | None:
    try:
        return parse_certificate(der)
    except CertError:
        return None  # an odd extra certificate must not hide the leaf's facts


def _short_name(chain: list[Certificate], index: int) -> str:
    return chain[index].subject.label or f"certificate #{index + 1} in the chain"


def _role(chain: list[Certificate], index: int) -> str:
    if index == 0:
        return "certificate"
    kind = "root" if chain[index].self_issued else "intermediate"
    return f"{kind} '{_short_name(chain, index)}'"


def cert_problem(facts: CertFacts, now: datetime, min_days: float
                 ) -> tuple[str | None, str | None]:
    """(down_reason, degraded_reason) for the chain's validity at `now`.

    Expired or not yet valid is DOWN; fewer than `min_days` left is DEGRADED
    (min_days 0 turns that off).
    """
    starts_at = getattr(facts, "starts_at", None)
    if starts_at is not None and now < starts_at:
        who = getattr(facts, "starts_label", "certificate")
        return (f"{who} not valid until {starts_at:%Y-%m-%d %H:%M} UTC "
                f"(in {_span(starts_at - now)})"), None
    who = getattr(facts, "earliest_label", None) or (
        "certificate" if facts.earliest == "leaf" else f"intermediate '{facts.earliest}'")
    left = facts.expires_at - now
    if left <= timedelta(0):
        return f"{who} expired {_span(-left)} ago", None
    days = left.total_seconds() / 86400.0
    if min_days > 0 and days < min_days:
        amount = f"{days:.1f} days" if days >= 1 else f"{days * 24:.1f} hours"
        return None, f"{who} expires in {amount} (minimum {min_days:g})"
    return None, None


def _span(delta: timedelta) -> str:
    """Whole units, rounded down: "3 days", "5 hours", "1 minute"."""
    seconds = delta.total_seconds()
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size * (2 if unit == "day" else 1):
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = int(seconds)
    return f"{count} second{'s' if count != 1 else ''}"
