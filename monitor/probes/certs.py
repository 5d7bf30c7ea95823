"""Certificate facts behind a small facade over `cryptography`'s x509.

What an uptime monitor needs from a TLS peer: the earliest expiry in the chain
and which certificate it is, the leaf's names and whether they cover the host,
and verdicts worded for an operator ("certificate expired 3 days ago").
Untrusted DER is parsed by cryptography (DESIGN: well-kept libraries for
untrusted bytes); a certificate it cannot read raises `CertError` with a reason
an operator can act on, which the probes report as "facts unavailable" without
changing their verdict on the connection itself.
"""

from __future__ import annotations

import _ssl  # ssl's C half: ENCODING_DER for the private chain methods
import ipaddress
import re
import ssl
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from monitor.probes.base import CertFacts


class CertError(ValueError):
    """A certificate whose facts cannot be read; the message says why."""


# --- reading one certificate --------------------------------------------------

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
    self_issued: bool = False   # subject == issuer (a root, or a self-signed leaf)

    @property
    def sans(self) -> tuple[str, ...]:
        return self.dns_names + self.ip_addresses


def parse_certificate(der: bytes) -> Certificate:
    """Read one DER X.509 certificate; CertError saying which part when it cannot."""
    # cryptography warns about RFC 5280 slips such as negative serial numbers
    # (in the certificate or its authority key identifier), which several
    # roots in system stores carry. That is the issuer's business, not the
    # operator's, and stderr may be the dashboard's terminal. A local filter
    # (~2 us) because a global one loses to any filter added after it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _read(der)


def _read(der: bytes) -> Certificate:
    # cryptography parses the outer structure when loading, and dates, names
    # and extensions when first asked for them: `part` names the step that failed.
    part = "the certificate"
    try:
        cert = x509.load_der_x509_certificate(der)
        part = "notBefore"
        not_before = cert.not_valid_before_utc
        part = "notAfter"
        not_after = cert.not_valid_after_utc
        part = "subject"
        subject = cert.subject
        part = "issuer"
        issuer = cert.issuer
        part = "extensions"
        dns_names, ips = _alt_names(cert)
    except Exception as exc:  # any refusal of untrusted bytes means "unreadable"
        raise CertError(_unreadable(part, exc)) from None
    return Certificate(subject=_name(subject), issuer=_name(issuer),
                       not_before=not_before, not_after=not_after,
                       dns_names=dns_names, ip_addresses=ips, self_issued=subject == issuer)


# Name attributes kept, in Name's field order.
_NAME_PARTS = {NameOID.COMMON_NAME: 0, NameOID.ORGANIZATION_NAME: 1,
               NameOID.ORGANIZATIONAL_UNIT_NAME: 2}


def _name(name: x509.Name) -> Name:
    """The first CN, O and OU. One pass: get_attributes_for_oid per part
    costs five times as much, and this runs for every certificate of a chain."""
    found: list[str | None] = [None, None, None]
    for attribute in name:
        slot = _NAME_PARTS.get(attribute.oid)
        if slot is not None and found[slot] is None:
            value = attribute.value
            found[slot] = value if isinstance(value, str) else value.decode("utf-8", "replace")
    return Name(*found)


def _alt_names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    return (tuple(san.get_values_for_type(x509.DNSName)),
            tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)))


# cryptography reports DER problems as Rust's debug text: `ParseError { kind:
# InvalidValue, location: ["Certificate::tbs_cert", ..., "Validity::not_after",
# "Time::GeneralizedTime"] }`. The location names the field, which is what an
# operator needs; text that does not look like this is shown as it is.
_KIND = re.compile(r"ParseError \{ kind: (\w+)")
_LOCATION = re.compile(r"location: \[([^\]]*)\]")
_FIELDS = {"not_after": "notAfter", "not_before": "notBefore", "validity": "validity",
           "subject": "subject", "issuer": "issuer", "serial": "serial number",
           "spki": "public key", "raw_extensions": "extensions", "version": "version",
           "signature_alg": "signature algorithm", "signature_value": "signature",
           "subject_alternative_name": "subjectAltName"}
_KINDS = {"ShortData": "truncated", "ExtraData": "bytes after its end",
          "UnexpectedTag": "unexpected field"}
_TIME_TYPES = {"UtcTime": "UTCTime", "GeneralizedTime": "GeneralizedTime"}


def _unreadable(part: str, exc: Exception) -> str:
    """"cannot read notAfter (malformed GeneralizedTime)" and the like."""
    text = " ".join(str(exc).split())
    kind = _KIND.search(text)
    if kind is None:
        return f"cannot read {part} ({text[:100] or type(exc).__name__})"
    location = _LOCATION.search(text)
    steps = [step.strip(' "').rpartition("::")[2]
             for step in (location[1].split(",") if location else ())]
    fields = [_FIELDS[step] for step in steps if step in _FIELDS]
    time_type = next((_TIME_TYPES[step] for step in steps if step in _TIME_TYPES), None)
    problem = (f"malformed {time_type}" if time_type
               else _KINDS.get(kind[1]) or re.sub(r"(?<!^)(?=[A-Z])", " ", kind[1]).lower())
    return f"cannot read {fields[-1] if fields else part} ({problem})"


# --- the presented chain -----------------------------------------------------

def presented_chain(ssl_obj: Any) -> tuple[list[bytes], bool]:
    """(DER certificates, verified) from a completed handshake, leaf first.

    The verified chain (up to the trust anchor) when verification was on,
    else the chain as sent. Python 3.13 made the chain methods public; 3.10 to
    3.12 have them only on the private `_ssl` object, and without them the
    earliest expiry in a chain (often an intermediate's) would go unseen, so
    they are used there, with any failure falling back to the leaf alone,
    which `getpeercert` gives on every version.
    """
    verified = ssl_obj.context.verify_mode != ssl.CERT_NONE
    chain = _chain(ssl_obj, "get_verified_chain" if verified else "get_unverified_chain")
    if not chain:
        leaf = ssl_obj.getpeercert(binary_form=True)
        chain = [leaf] if leaf else []
    return chain, verified


def _chain(ssl_obj: Any, method: str) -> list[bytes]:
    """The chain by `method`, or [] when this Python cannot give it."""
    try:
        public = getattr(ssl_obj, method, None)
        if public is not None:          # 3.13+: a list of DER bytes
            return list(public() or [])
        private = getattr(ssl_obj._sslobj, method)() or []
        return [cert.public_bytes(_ssl.ENCODING_DER) for cert in private]
    except Exception:  # a private API may change under us: then the leaf alone
        return []


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
    """Facts about the certificates on a completed TLS connection."""
    return chain_facts(*presented_chain(ssl_obj), hostname)


def chain_facts(ders: list[bytes], verified: bool, hostname: str | None) -> ChainFacts:
    """Facts about a chain of DER certificates, leaf first; CertError when the
    leaf cannot be read.

    `expires_at` is the earliest notAfter across the chain. In a chain that was
    not verified, self-issued certificates other than the leaf are skipped: a
    client never trusts a root because the server sent it (an expired root
    sent along, as with AddTrust in 2020, breaks nothing).
    """
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
        # An extra certificate cryptography cannot read must not hide the
        # leaf's facts; where verification was on, OpenSSL accepted its dates.
        return None


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


@dataclass(frozen=True, slots=True)
class CertVerdict:
    """What a probe reports about the certificates of a completed handshake.

    `facts` None means they could not be read: `unavailable` says why, for the
    result's details, and the connection's own verdict stands. Only with
    `cert_min_days` > 0, where the operator asked to be warned before expiry,
    does an unknown expiry make the target DEGRADED: it cannot be promised.
    """

    facts: ChainFacts | None
    down: str | None = None
    degraded: str | None = None
    unavailable: str | None = None


def judge_certificates(ssl_obj: Any, hostname: str | None, min_days: float) -> CertVerdict:
    try:
        facts = cert_facts(ssl_obj, hostname)
    except CertError as exc:
        unknown = f"certificate expiry unknown: {exc}" if min_days > 0 else None
        return CertVerdict(None, degraded=unknown,
                           unavailable=f"certificate facts unavailable: {exc}")
    down, degraded = cert_problem(facts, datetime.now(UTC), min_days)
    return CertVerdict(facts, down, degraded)
