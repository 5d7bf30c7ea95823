"""Human reasons for low-level errors, shared by all probe kinds."""

from __future__ import annotations

import errno
import socket
import ssl

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
        return f"certificate verify failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}".replace("_", " ").lower()
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(exc, OSError):
        if exc.errno in _ERRNO:
            return _ERRNO[exc.errno]
        if exc.strerror:
            return exc.strerror[0].lower() + exc.strerror[1:]
    if isinstance(exc, EOFError) or type(exc).__name__ == "IncompleteReadError":
        return "connection closed by peer"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else f"unexpected {type(exc).__name__}"
