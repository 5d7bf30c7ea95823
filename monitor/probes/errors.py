"""Human reasons for low-level errors, shared by all probe kinds."""

from __future__ import annotations

import errno
import socket
import ssl

# verify_code -> hint; codes are OpenSSL's X509_V_ERR_* values.
VERIFY_HINTS = {
    18: " (set ca_file to trust it, or verify_tls = false)",   # self-signed leaf
    19: " (set ca_file to trust that root, or verify_tls = false)",   # self-signed root in chain
    20: " (issuer not trusted: set ca_file for a private CA)",   # unable to get local issuer
}

_ERRNO = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.ECONNABORTED: "connection aborted",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection closed by peer (broken pipe)",
    errno.EADDRNOTAVAIL: "address not available",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def describe_error(exc: BaseException) -> str:
    """A short reason an operator understands; never a bare exception name."""
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return "DNS lookup failed: name not found"
        return f"DNS lookup failed: {exc.strerror or exc}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = str(exc.verify_message or exc.reason or exc).strip().rstrip(".")
        message = message[:1].lower() + message[1:]
        return f"certificate verify failed: {message}{VERIFY_HINTS.get(exc.verify_code, '')}"
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc.strerror or exc).replace("_", " ").lower()
        return f"TLS error: {reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        # asyncio raises one without errno for a clean EOF (e.g. mid-handshake);
        # a real RST carries ECONNRESET.
        return "connection reset by peer" if exc.errno else "connection closed by peer"
    if isinstance(exc, OSError):
        if exc.errno in _ERRNO:
            return _ERRNO[exc.errno]
        if exc.strerror:
            return exc.strerror[0].lower() + exc.strerror[1:]
    if isinstance(exc, EOFError) or type(exc).__name__ == "IncompleteReadError":
        return "connection closed by peer"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else f"unexpected {type(exc).__name__}"
