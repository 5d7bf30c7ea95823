"""Socket plumbing shared by the tcp and tls probes: host options, resolving
and connecting with separate `dns`/`connect` phases, the TLS handshake as its
own `tls` phase, and human reasons for TLS errors."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from typing import Any

from monitor.config.fields import one_of, to_nonempty_str
from monitor.probes.base import PhaseTimer, ProbeContext, ProbeFailure
from monitor.probes.errors import describe_error

# A graceful TLS close (close_notify) must not keep a socket around for the
# asyncio default of 30 s when the peer never answers it.
SSL_SHUTDOWN_TIMEOUT = 2.0
TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
to_tls_version = one_of(*TLS_VERSIONS)



# --- config converters -------------------------------------------------------

def to_host(value: Any) -> str:
    """A DNS name, IPv4 or IPv6 address (brackets optional); IDN to A-labels."""
    text = to_nonempty_str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if ip_literal(text) is None:
            raise ValueError(f"{value!r} is not an IPv6 address")
        return text
    if ip_literal(text) is not None:
        return text
    if ":" in text or "/" in text:
        raise ValueError(f"expected a host name or IP address, got {text!r} "
                         "(put the port in 'port', and no scheme or path)")
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{text!r} is not a valid host name") from None
    labels = ascii_name.rstrip(".").split(".")
    if len(ascii_name) > 253 or not all(_valid_label(label) for label in labels):
        raise ValueError(f"{text!r} is not a valid host name")
    return ascii_name


def _valid_label(label: str) -> bool:
    # Underscores are not valid in host names but do occur in real DNS names.
    return 0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label) \
        and not label.startswith("-") and not label.endswith("-")


def to_ca_file(value: Any) -> str:
    return os.path.expanduser(to_nonempty_str(value))


def check_ca_file(path: str) -> str | None:
    """Load it now so a bad file is a config error, not a DOWN at 3 a.m."""
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        return f"file not found: {path}"
    except ssl.SSLError:  # before OSError, its base class
        return f"no PEM certificates found in {path}"
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    return None


def ip_literal(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.partition("%")[0])  # drop an IPv6 zone id
    except ValueError:
        return None


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- connecting --------------------------------------------------------------

async def connect_socket(sock: socket.socket, address: Any) -> None:
    """`loop.sock_connect(sock, address)` for an address already resolved.

    uvloop's sock_connect resolves even a numeric address again, on its thread
    pool (it asks without a socket type, which misses its fast path): a thread
    hand-off and an extra loop wake-up for every fresh connection. Connecting
    and waiting until the socket is writable, as both loops do after that,
    cost 70 us of CPU per loopback connect instead of 171 on uvloop; on
    asyncio's own loop both cost 84-108 us (bench/connect_bench.py).
    """
    try:
        sock.connect(address)
        return
    except (BlockingIOError, InterruptedError):
        pass
    loop = asyncio.get_running_loop()
    writable: asyncio.Future[None] = loop.create_future()
    loop.add_writer(sock, _resolve_once, writable)
    try:
        await writable
    finally:
        loop.remove_writer(sock)
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, f"Connect call failed {address}")


def _resolve_once(future: asyncio.Future[None]) -> None:
    if not future.done():   # writable again before the waiter ran
        future.set_result(None)


async def connect_resolved(addr_info: tuple[Any, ...],
                           socket_factory: Any = None) -> socket.socket:
    """A connected non-blocking socket for one resolved address
    (getaddrinfo's 5-tuple); closed again on any failure or cancellation."""
    family, kind, proto, _, address = addr_info
    sock = (socket_factory(addr_info) if socket_factory is not None
            else socket.socket(family, kind, proto))
    try:
        sock.setblocking(False)
        await connect_socket(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def open_tcp(host: str, port: int, timer: PhaseTimer) -> socket.socket:
    """A connected non-blocking socket; `dns` (names only) and `connect` phases.

    Addresses are tried in resolver order; the first error is reported.
    """
    loop = asyncio.get_running_loop()
    if ip_literal(host) is not None:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_NUMERICHOST)
    else:
        with timer.phase("dns"):
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise ProbeFailure(describe_error(exc)) from exc
    errors: list[OSError] = []
    with timer.phase("connect"):
        for family, kind, proto, _, address in infos:
            try:
                sock = socket.socket(family, kind, proto)  # may fail: no IPv6 here
            except OSError as exc:
                errors.append(exc)
                continue
            try:
                sock.setblocking(False)
                await connect_socket(sock, address)
                return sock
            except OSError as exc:
                sock.close()
                errors.append(exc)
            except BaseException:  # cancelled (timeout): do not leak the socket
                sock.close()
                raise
    if not errors:
        raise ProbeFailure(f"DNS lookup failed: no addresses for {host}")
    more = f" ({len(errors)} addresses tried)" if len(errors) > 1 else ""
    raise ProbeFailure(describe_error(errors[0]) + more) from errors[0]


async def plain_streams(sock: socket.socket
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(sock=sock)


async def tls_streams(sock: socket.socket, context: ssl.SSLContext, server_name: str,
                      timer: PhaseTimer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TLS handshake over a connected socket, timed as the `tls` phase.

    On failure asyncio closes the transport (and so the socket) itself.
    """
    with timer.phase("tls"):
        try:
            return await asyncio.open_connection(
                sock=sock, ssl=context, server_hostname=server_name,
                ssl_shutdown_timeout=SSL_SHUTDOWN_TIMEOUT)
        except (ssl.SSLError, OSError, EOFError) as exc:
            raise ProbeFailure(describe_tls_error(exc)) from exc


def close_quietly(writer: asyncio.StreamWriter | None, sock: socket.socket) -> None:
    """Release the connection now, also on cancellation; never raises.

    Plain TCP is aborted (nothing left to say); TLS gets a close_notify,
    bounded by SSL_SHUTDOWN_TIMEOUT.
    """
    try:
        if writer is None:
            sock.close()
        elif writer.get_extra_info("ssl_object") is not None:
            writer.close()
        else:
            writer.transport.abort()
    except Exception:  # already closed or the loop is going away
        pass


def abort_quietly(writer: asyncio.StreamWriter | None, sock: socket.socket) -> None:
    """Drop the connection at once (error paths: the peer is not trusted to answer)."""
    try:
        if writer is None:
            sock.close()
        else:
            writer.transport.abort()
    except Exception:
        pass


# --- TLS ---------------------------------------------------------------------

def make_ssl_context(verify: bool, ca_file: str | None, min_version: str | None
                     ) -> ssl.SSLContext:
    """A client context; `ca_file` replaces the system store (like curl --cacert)."""
    if verify:
        context = ssl.create_default_context(cafile=ca_file)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if min_version is not None:
        context.minimum_version = TLS_VERSIONS[min_version]
    return context


def shared_ssl_context(ctx: ProbeContext, verify: bool, ca_file: str | None,
                       min_version: str | None) -> ssl.SSLContext:
    """One context per settings for the engine's life: loading the system
    store costs milliseconds, too much to repeat on every probe."""
    key = f"ssl-context:{verify}:{min_version}:{ca_file}"
    return ctx.get(key, lambda: make_ssl_context(verify, ca_file, min_version))


def describe_tls_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return describe_error(exc)
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc.strerror or exc).replace("_", " ").lower()
        return f"TLS handshake failed: {reason}"
    if isinstance(exc, EOFError) or (isinstance(exc, ConnectionError) and exc.errno is None):
        # asyncio raises a bare ConnectionResetError (no errno) for a clean
        # EOF mid-handshake; a real RST carries ECONNRESET.
        return "TLS handshake failed: connection closed by peer"
    return f"TLS handshake failed: {describe_error(exc)}"
