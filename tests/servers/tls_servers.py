"""Loopback servers and certificates for the tcp/tls probe tests.

Every server listens on 127.0.0.1 (or ::1) on a free port, runs in the test's
event loop, and drops all its connections when the `serve` block ends, so no
test waits on a peer that outlived it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from monitor.config import Target, parse_config
from monitor.engine.result import ProbeResult
from monitor.engine.runner import run_probe
from monitor.probes.base import ProbeContext
from tests.servers.http_servers import raw_server as serve, refused_port  # noqa: F401

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
# What a handler may see when the probe hangs up or fails the handshake.
_PEER_GONE = (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError, OSError)


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- handlers ----------------------------------------------------------------

async def drain_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read and discard until the peer closes."""
    while await reader.read(4096):
        pass


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def tls_handler(server_ctx: ssl.SSLContext, then: Handler = drain_until_closed) -> Handler:
    """Handshake as a TLS server, then run `then` over the encrypted stream."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await writer.start_tls(server_ctx)
        await then(reader, writer)
    return handler


def server_context(cert: trustme.LeafCert, *, max_version: ssl.TLSVersion | None = None
                   ) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


def self_signed_context(hostname: str = "localhost") -> ssl.SSLContext:
    """A server presenting a self-signed leaf (SAN = hostname)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .sign(key, hashes.SHA256()))
    leaf = trustme.LeafCert(
        key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()),
        cert.public_bytes(Encoding.PEM), [])
    return server_context(leaf)


# --- certificates ------------------------------------------------------------

def days_from_now(days: float) -> datetime:
    # cryptography takes naive datetimes as UTC
    return (datetime.now(UTC) + timedelta(days=days)).replace(tzinfo=None)


def write_ca(ca: trustme.CA, directory: Path) -> str:
    path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def child_ca(parent: trustme.CA, *, common_name: str, not_before: datetime | None = None,
             not_after: datetime | None = None) -> trustme.CA:
    """An intermediate CA with its own CN and validity."""
    return reissue(parent.create_child_ca(), parent, common_name=common_name,
                   not_before=not_before, not_after=not_after)


def root_ca(*, common_name: str, not_before: datetime | None = None,
            not_after: datetime | None = None) -> trustme.CA:
    """A self-signed root CA with its own CN and validity."""
    return reissue(trustme.CA(), None, common_name=common_name,
                   not_before=not_before, not_after=not_after)


def reissue(ca: trustme.CA, signer: trustme.CA | None, *, common_name: str,
            not_before: datetime | None, not_after: datetime | None) -> trustme.CA:
    """Re-issue `ca`'s certificate (same key and extensions) with a CN and dates.

    trustme's CA constructor takes neither, so this goes through its private
    attributes; `signer` None means self-signed.
    """
    old = ca._certificate
    subject = x509.Name([*old.subject, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = subject if signer is None else signer._certificate.subject
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(old.public_key()).serial_number(old.serial_number)
               .not_valid_before(not_before or old.not_valid_before_utc.replace(tzinfo=None))
               .not_valid_after(not_after or old.not_valid_after_utc.replace(tzinfo=None)))
    for extension in old.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    ca._certificate = builder.sign((signer or ca)._private_key, hashes.SHA256())
    return ca


def der_of(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))


def patched(leaf: trustme.LeafCert, old: bytes, new: bytes) -> trustme.LeafCert:
    """`leaf` (sent alone) with bytes of its DER replaced, for certificates no
    builder would make, such as a notAfter of "9999123123-9959".

    Same length, so the DER structure holds; the signature no longer matches,
    which only a verifying client notices. OpenSSL still loads it to present.
    """
    der = der_of(leaf.cert_chain_pems[0].bytes())
    assert len(old) == len(new) and der.count(old) == 1, (old, new)
    pem = ssl.DER_cert_to_PEM_cert(der.replace(old, new)).encode("ascii")
    return trustme.LeafCert(leaf.private_key_pem.bytes(), pem, [])


# --- targets -----------------------------------------------------------------

def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def config_text(kind: str, timeout: str = "1s", **options: object) -> str:
    lines = ["[[targets]]", 'name = "t"', f'kind = "{kind}"', f'timeout = "{timeout}"']
    lines += [f"{key} = {toml_value(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def make_target(kind: str, timeout: str = "1s", **options: object) -> Target:
    """A target built the way users build them: from TOML through the loader."""
    return parse_config(config_text(kind, timeout, **options)).targets[0]


async def probe(kind: str, timeout: str = "1s", **options: object) -> ProbeResult:
    return await run_probe(make_target(kind, timeout, **options), ProbeContext())
