"""TLS probe: TCP connect, then the handshake timed on its own, then the
certificate chain judged for expiry and host name."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.config.fields import in_range, option, to_bool, to_float, to_int
from monitor.probes import net
from monitor.probes.base import CertFacts, Outcome, PhaseTimer, Probe, ProbeContext, ProbeFailure
from monitor.probes.certs import CertError, cert_facts, cert_problem, judge_certificates


@dataclass(frozen=True, kw_only=True)
class TlsOptions:
    host: str = option(convert=net.to_host, doc="host name or IP address")
    port: int = option(443, convert=to_int, check=in_range(1, 65535))
    server_name: str | None = option(None, convert=net.to_host,
                                     doc="SNI and the name to verify; default: host")
    verify_tls: bool = option(True, convert=to_bool,
                          doc="verify chain and host name; false still reports both")
    cert_min_days: float = option(14.0, convert=to_float, check=in_range(0),
                                  doc="DEGRADED below this many days left,"
                                      " or when the expiry cannot be read; 0 turns it off")
    ca_file: str | None = option(None, convert=net.to_ca_file, check=net.check_ca_file,
                                 path=True,
                                 doc="PEM file of CAs to trust instead of the system store")
    min_version: str | None = option(None, convert=net.to_tls_version,
                                     doc='"TLSv1.2" or "TLSv1.3"')


class TlsProbe(Probe):
    kind = "tls"
    Options = TlsOptions

    @classmethod
    def describe(cls, options: Any) -> str:
        return net.host_port(options.host, options.port)

    async def run(self, timer: PhaseTimer, ctx: ProbeContext) -> Outcome:
        o: TlsOptions = self.options
        context = net.shared_ssl_context(ctx, o.verify_tls, o.ca_file, o.min_version)
        server_name = o.server_name or o.host
        sock = await net.open_tcp(o.host, o.port, timer)
        writer: asyncio.StreamWriter | None = None
        done = False
        try:
            try:
                _, writer = await net.tls_streams(sock, context, server_name, timer)
            except ProbeFailure as failure:
                found = await explain_dates(failure.__cause__, o.host, o.port, server_name, ctx)
                if found is None:
                    raise
                reason, facts = found
                return Outcome(ok=False, reason=reason, cert=facts)
            outcome = judge_tls(writer, server_name, o.cert_min_days)
            done = True
            return outcome
        finally:
            (net.close_quietly if done else net.abort_quietly)(writer, sock)


# OpenSSL's X509_V_ERR_CERT_NOT_YET_VALID and X509_V_ERR_CERT_HAS_EXPIRED
_DATE_ERRORS = (9, 10)


async def explain_dates(error: BaseException | None, host: str, port: int, server_name: str,
                        ctx: ProbeContext) -> tuple[str, CertFacts] | None:
    """After verification failed on dates, look again without verifying so
    the reason can say "certificate expired 3 days ago" and name which one.

    None when the error was not about dates or the second look failed.
    """
    if not (isinstance(error, ssl.SSLCertVerificationError) and error.verify_code in _DATE_ERRORS):
        return None
    context = net.shared_ssl_context(ctx, False, None, None)
    scratch = PhaseTimer()   # the second look is not part of the measured probe
    sock = None
    writer = None
    try:
        sock = await net.open_tcp(host, port, scratch)
        _, writer = await net.tls_streams(sock, context, server_name, scratch)
        facts = cert_facts(writer.get_extra_info("ssl_object"), server_name)
    except (ProbeFailure, CertError, OSError):
        return None
    finally:
        if sock is not None:
            net.abort_quietly(writer, sock)
    down, _ = cert_problem(facts, datetime.now(UTC), 0)
    return (down, facts) if down else None


def judge_tls(writer: asyncio.StreamWriter, server_name: str, min_days: float) -> Outcome:
    """Outcome of a completed handshake: certificate facts and their verdict.

    Certificates whose facts cannot be read leave the handshake's success
    standing (see `CertVerdict`); the reason is in details["cert_error"].
    Shared with the tcp probe's `tls = true`.
    """
    ssl_obj = writer.get_extra_info("ssl_object")
    verdict = judge_certificates(ssl_obj, server_name, min_days)
    facts = verdict.facts
    cipher = ssl_obj.cipher()
    details = {
        "tls_version": ssl_obj.version(),
        "cipher": cipher[0] if cipher else None,
        "issuer": facts.issuer if facts else None,
        "subject": facts.subject if facts else None,
        "earliest": facts.earliest if facts else None,
        "hostname_match": facts.hostname_match if facts else None,
        "chain_length": facts.chain_length if facts else None,
    }
    if verdict.unavailable:
        details["cert_error"] = verdict.unavailable
    return Outcome(ok=verdict.down is None, reason=verdict.down, degraded=verdict.degraded,
                   cert=facts, details=details)
