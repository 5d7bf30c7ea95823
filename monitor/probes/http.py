"""HTTP(S) probe: status, body, JSON and header assertions, redirects, TLS facts.

Phases: a connector subclass times DNS, TCP connect and the TLS handshake
separately (aiohttp's own traces lump connect and TLS together, and cost more);
the probe itself times the response headers (ttfb, from the connection being
ready) and the capped body read (transfer).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import json
import re
import ssl
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohappyeyeballs
import aiohttp
from aiohttp.client_exceptions import cert_errors, ssl_errors
from yarl import URL

from monitor.config.fields import (
    did_you_mean, in_range, one_of, option, to_bool, to_float, to_int, to_nonempty_str, to_regex,
    to_size, to_str, to_str_map)
from monitor.probes import net
from monitor.probes.base import Outcome, PhaseTimer, Probe, ProbeContext, ProbeFailure
from monitor.probes.errors import describe_error

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_REDIRECTS = (301, 302, 303, 307, 308)


# --- config converters ---------------------------------------------------------

def to_url(value: Any) -> str:
    text = to_nonempty_str(value).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        hint = did_you_mean(parts.scheme, ("http", "https")).replace("'?)", "://'?)")
        raise ValueError(f"expected an http:// or https:// URL, got {text!r}{hint}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {text!r}")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"URL has an invalid port: {text!r}") from None
    return text


StatusRange = tuple[int, int]


def to_status_ranges(value: Any) -> tuple[StatusRange, ...]:
    """200, "200", "2xx", "200-299", or an array of those."""
    items = value if isinstance(value, list) else [value]
    ranges: list[StatusRange] = []
    for item in items:
        if isinstance(item, bool):
            raise ValueError("expected status codes such as 200, \"2xx\" or \"200-299\"")
        text = str(item).strip().lower()
        if re.fullmatch(r"[1-5]xx", text):
            low = int(text[0]) * 100
            ranges.append((low, low + 99))
        elif re.fullmatch(r"\d{3}", text):
            ranges.append((int(text), int(text)))
        elif match := re.fullmatch(r"(\d{3})\s*-\s*(\d{3})", text):
            low, high = int(match.group(1)), int(match.group(2))
            if low > high:
                raise ValueError(f"status range {text!r} is backwards")
            ranges.append((low, high))
        else:
            raise ValueError(f"cannot read {item!r} as a status (use 200, \"2xx\" or \"200-299\")")
        if not 100 <= ranges[-1][0] <= 599 or not 100 <= ranges[-1][1] <= 599:
            raise ValueError(f"status {item!r} is outside 100-599")
    if not ranges:
        raise ValueError("expected at least one status")
    return tuple(ranges)


def format_status_ranges(ranges: tuple[StatusRange, ...]) -> str:
    def one(low: int, high: int) -> str:
        if low == high:
            return str(low)
        if low % 100 == 0 and high == low + 99:
            return f"{low // 100}xx"
        return f"{low}-{high}"
    return " or ".join(one(*r) for r in ranges)


def to_json_expectations(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a table of JSON paths to values, e.g. { \"status\" = \"UP\" }")
    for path in value:
        _split_json_path(path)
    return dict(value)


def to_header_expectations(value: Any) -> dict[str, re.Pattern[str]]:
    return {name: to_regex(pattern) for name, pattern in to_str_map(value).items()}


def to_method(value: Any) -> str:
    text = to_str(value).upper()
    if text not in METHODS:
        raise ValueError(f"expected one of {', '.join(METHODS)}, got {value!r}")
    return text


@dataclass(frozen=True, kw_only=True)
class HttpOptions:
    url: str = option(convert=to_url,
                      doc="http:// or https:// URL")
    method: str = option("GET", convert=to_method,
                         doc="request method")
    headers: dict[str, str] = option({}, convert=to_str_map,
                                     doc='request headers, e.g. { Authorization = "Bearer ${TOKEN}" }')
    body: str | None = option(None, convert=to_str,
                              doc="request body (not with GET or HEAD)")
    username: str | None = option(None, convert=to_str,
                                  doc="basic auth user (with password)")
    password: str | None = option(None, convert=to_str,
                                  doc="basic auth password; use ${ENV_VAR}")
    expect_status: tuple[StatusRange, ...] = option(((200, 299),), convert=to_status_ranges,
                                                    doc='accepted statuses: 200, "2xx", "200-299" or an array of them')
    expect_body: str | None = option(None, convert=to_str,
                                     doc="body must contain this text")
    expect_body_regex: re.Pattern[str] | None = option(None, convert=to_regex,
                                                       doc="body must match this regular expression")
    expect_json: dict[str, Any] | None = option(None, convert=to_json_expectations,
                                                doc='JSON paths and the values they must equal, e.g. { "checks.db" = "UP" }')
    expect_headers: dict[str, re.Pattern[str]] = option({}, convert=to_header_expectations,
                                                        doc="response headers and the regular expressions they must match")
    follow_redirects: bool = option(True, convert=to_bool,
                                    doc="follow 3xx redirects (each hop is reported)")
    max_redirects: int = option(10, convert=to_int, check=in_range(0, 50),
                                doc="more hops than this is DOWN")
    verify_tls: bool = option(True, convert=to_bool,
                              doc="verify the certificate chain and host name")
    ca_file: str | None = option(None, convert=net.to_ca_file, check=net.check_ca_file,
                                 path=True,
                                 doc="PEM file of extra trusted CAs (a private CA)")
    cert_min_days: float = option(14.0, convert=to_float, check=in_range(0),
                                  doc="fewer days left on any certificate in the chain,"
                                      " or an expiry that cannot be read = DEGRADED (0: off)")
    body_limit: int = option(64 * 1024, convert=to_size, check=in_range(0, 64 * 1024 * 1024),
                             doc="read at most this much of the body")
    keepalive: bool = option(False, convert=to_bool,
                             doc="reuse connections (connect and tls are then not timed every probe)")
    ip_family: str = option("any", convert=one_of("any", "ipv4", "ipv6"),
                            doc="address family: any, ipv4 or ipv6")


# --- timing plumbing -------------------------------------------------------------

@functools.lru_cache(maxsize=4096)   # once per host, not per probe: 1.8 us -> 0.1 us
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(slots=True)
class _Trace:
    timer: PhaseTimer
    sent_at: float | None = None
    ssl_object: ssl.SSLObject | None = None


_current: ContextVar[_Trace | None] = ContextVar("monitor_http_trace", default=None)


class TimedConnector(aiohttp.TCPConnector):
    """Times DNS, TCP connect and the TLS handshake as separate phases.

    aiohttp's TraceConfig would give DNS too, but costs ~25 µs a request
    (measured in bench/): overriding the two steps is cheaper and also splits
    connect from TLS, which the traces lump together.
    """

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> Any:
        trace = _current.get()
        if trace is None or _is_ip(host):
            return await super()._resolve_host(host, port, traces)
        with trace.timer.phase("dns"):
            return await super()._resolve_host(host, port, traces)

    async def _wrap_create_connection(self, *args: Any, addr_infos: Any, req: Any,
                                      timeout: Any, client_error: Any = aiohttp.ClientConnectorError,
                                      **kwargs: Any) -> Any:
        trace = _current.get()
        if trace is None:
            return await super()._wrap_create_connection(
                *args, addr_infos=addr_infos, req=req, timeout=timeout,
                client_error=client_error, **kwargs)
        timer = trace.timer
        try:
            with timer.phase("connect"):
                if len(addr_infos) == 1 and not self._local_addr_infos:
                    # one address, nothing to race: connect without the thread pool
                    # round trip of uvloop's sock_connect (see net.connect_socket)
                    sock = await net.connect_resolved(addr_infos[0], self._socket_factory)
                else:
                    sock = await aiohappyeyeballs.start_connection(
                        addr_infos=addr_infos, local_addr_infos=self._local_addr_infos,
                        happy_eyeballs_delay=self._happy_eyeballs_delay,
                        interleave=self._interleave, loop=self._loop,
                        socket_factory=self._socket_factory)
            if kwargs.get("ssl"):
                with timer.phase("tls"):
                    transport, proto = await self._loop.create_connection(*args, **kwargs, sock=sock)
                trace.ssl_object = transport.get_extra_info("ssl_object")
            else:
                transport, proto = await self._loop.create_connection(*args, **kwargs, sock=sock)
            trace.sent_at = time.perf_counter()   # ttfb runs from here
            timer.current = "ttfb"
            return transport, proto
        except cert_errors as exc:
            raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
        except ssl_errors as exc:
            raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
        except OSError as exc:
            if exc.errno is None and isinstance(exc, asyncio.TimeoutError):
                raise
            raise client_error(req.connection_key, exc) from exc


def _session(ctx: ProbeContext, keepalive: bool, family: str) -> aiohttp.ClientSession:
    def make() -> aiohttp.ClientSession:
        import socket
        families = {"any": 0, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}
        connector = TimedConnector(
            limit=0, force_close=not keepalive, use_dns_cache=keepalive,
            family=families[family], enable_cleanup_closed=False)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None),   # the engine enforces the timeout
            cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True,
            headers={"User-Agent": ctx.user_agent})

    async def close(session: aiohttp.ClientSession) -> None:
        await session.close()

    # the User-Agent is the session's: one set by a reload gets sessions of its own
    return ctx.get(f"http:{'keepalive' if keepalive else 'fresh'}:{family}:{ctx.user_agent}",
                   make, close)


# --- the probe -------------------------------------------------------------------

class HttpProbe(Probe):
    kind = "http"
    Options = HttpOptions

    @classmethod
    def describe(cls, options: HttpOptions) -> str:
        return options.url

    @classmethod
    def check_options(cls, options: HttpOptions) -> list[tuple[str, str]]:
        problems = []
        if (options.username is None) != (options.password is None):
            present, missing = (("username", "password") if options.password is None
                                else ("password", "username"))
            problems.append((present, f"{missing} is missing: username and password go together"))
        if options.username is not None and any(k.lower() == "authorization"
                                                for k in options.headers):
            problems.append(("username", "basic auth and an Authorization header: use one"))
        if options.body is not None and options.method in ("GET", "HEAD"):
            problems.append(("body", f"a {options.method} request cannot carry a body"))
        return problems

    async def run(self, timer: PhaseTimer, ctx: ProbeContext) -> Outcome:
        o: HttpOptions = self.options
        session = _session(ctx, o.keepalive, o.ip_family)
        trace = _Trace(timer)
        token = _current.set(trace)
        try:
            return await self._run(o, session, trace, ctx)
        finally:
            _current.reset(token)

    async def _run(self, o: HttpOptions, session: aiohttp.ClientSession, trace: _Trace,
                   ctx: ProbeContext) -> Outcome:
        timer = trace.timer
        url = URL(o.url, encoded="%" in o.url)
        method, body = o.method, o.body
        headers = dict(o.headers)
        if o.username is not None:   # aiohttp.BasicAuth and auth= are deprecated in 3.14
            token = base64.b64encode(f"{o.username}:{o.password or ''}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        chain: list[str] = []
        seen: set[str] = {str(url)}
        while True:
            try:
                resp = await self._send(session, method, url, headers, body, o, ctx, trace)
            except ProbeFailure as failure:
                if chain:
                    hops = f"{len(chain)} redirect{'s' if len(chain) > 1 else ''}"
                    failure.reason += f" (after {hops}, at {url})"
                    failure.details.setdefault("redirects", chain)
                raise
            try:
                location = resp.headers.get("Location")
                if not (o.follow_redirects and resp.status in _REDIRECTS and location):
                    data, truncated = await self._read_body(resp, o, timer)
                    return self._judge(o, resp, data, truncated, chain, trace)
            finally:
                resp.release()
            try:
                next_url: URL | None = url.join(URL(location))
            except ValueError:   # e.g. "http://[::1"
                next_url = None
            if next_url is None or next_url.scheme not in ("http", "https") or not next_url.host:
                raise ProbeFailure(f"redirect to an unusable location {_short(location)!r}",
                                   http_status=resp.status,
                                   details={"redirects": [*chain, f"{resp.status} {location}"]})
            chain.append(f"{resp.status} {next_url}")
            if len(chain) > o.max_redirects:
                raise ProbeFailure(f"too many redirects (more than {o.max_redirects})",
                                   http_status=resp.status, details={"redirects": chain})
            if str(next_url) in seen:
                raise ProbeFailure(f"redirect loop: {url.path_qs} -> {next_url.path_qs}",
                                   http_status=resp.status, details={"redirects": chain})
            seen.add(str(next_url))
            if next_url.origin() != url.origin():
                # never send credentials (basic auth or a token in `headers`) to another origin
                headers = {k: v for k, v in headers.items()
                           if k.lower() not in ("authorization", "cookie")}
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method, body = ("HEAD" if method == "HEAD" else "GET"), None
            url = next_url

    async def _send(self, session: aiohttp.ClientSession, method: str, url: URL,
                    headers: dict[str, str], body: str | None, o: HttpOptions,
                    ctx: ProbeContext, trace: _Trace) -> aiohttp.ClientResponse:
        ssl_arg = (net.shared_ssl_context(ctx, o.verify_tls, o.ca_file, None)
                   if url.scheme == "https" else None)
        # ttfb runs from the request's start on a kept-alive connection, from
        # the end of connect/TLS on a new one (the connector moves the mark)
        trace.sent_at = time.perf_counter()
        trace.timer.current = "ttfb"
        try:
            resp = await session.request(
                method, url, headers=headers, data=body, allow_redirects=False,
                ssl=ssl_arg if ssl_arg is not None else True)
        except aiohttp.ClientConnectorCertificateError as exc:
            from monitor.probes.tls import explain_dates
            server_name = url.raw_host or ""
            found = await explain_dates(exc.certificate_error, server_name, url.port or 443,
                                        server_name, ctx)
            if found is not None:
                trace.timer.current = None
                raise ProbeFailure(found[0], details={"cert_subject": found[1].subject,
                                                      "cert_earliest": found[1].earliest}) from None
            raise ProbeFailure(_cert_reason(exc)) from None
        except aiohttp.ClientConnectorError as exc:
            cause = exc.__cause__ or exc.os_error
            raise ProbeFailure(describe_error(cause)) from None
        except aiohttp.ServerDisconnectedError:
            raise ProbeFailure("server closed the connection without answering") from None
        except aiohttp.ClientResponseError as exc:   # unparseable status line or headers
            raise ProbeFailure(f"invalid HTTP response: {_short(exc.message)}") from None
        except aiohttp.ClientOSError as exc:
            raise ProbeFailure(describe_error(exc.__cause__ or exc)) from None
        except aiohttp.ClientError as exc:
            raise ProbeFailure(_short(str(exc)) or "HTTP request failed") from None
        if trace.sent_at is not None:
            trace.timer.add("ttfb", trace.sent_at, time.perf_counter())
        trace.timer.current = None
        return resp

    async def _read_body(self, resp: aiohttp.ClientResponse, o: HttpOptions,
                         timer: PhaseTimer) -> tuple[bytes, bool]:
        if resp.method == "HEAD":
            return b"", False
        chunks: list[bytes] = []
        total = 0
        try:
            with timer.phase("transfer"):
                while total < o.body_limit:
                    chunk = await resp.content.read(o.body_limit - total)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
                truncated = total >= o.body_limit and not resp.content.at_eof()
        except aiohttp.ClientPayloadError as exc:
            raise ProbeFailure(f"response body broken during transfer: {_payload_reason(exc)}",
                               http_status=resp.status) from None
        except (aiohttp.ClientOSError, ConnectionError) as exc:
            raise ProbeFailure(f"{describe_error(exc.__cause__ or exc)} during transfer",
                               http_status=resp.status) from None
        return b"".join(chunks), truncated

    def _judge(self, o: HttpOptions, resp: aiohttp.ClientResponse, data: bytes,
               truncated: bool, chain: list[str], trace: _Trace) -> Outcome:
        details: dict[str, Any] = {"bytes": len(data), "truncated": truncated}
        if chain:
            details["redirects"] = chain
        if resp.version is not None:
            details["http_version"] = f"{resp.version.major}.{resp.version.minor}"
        outcome = Outcome(http_status=resp.status, details=details)
        if trace.ssl_object is not None:
            _add_cert(outcome, trace.ssl_object, resp.url.raw_host or "", o)
        problem = self._assert(o, resp, data, truncated)
        if problem:
            outcome.ok, outcome.reason = False, problem
        return outcome

    def _assert(self, o: HttpOptions, resp: aiohttp.ClientResponse, data: bytes,
                truncated: bool) -> str | None:
        if not any(low <= resp.status <= high for low, high in o.expect_status):
            reason = f" {resp.reason}" if resp.reason else ""
            return f"expected {format_status_ranges(o.expect_status)}, got {resp.status}{reason}"
        for name, pattern in o.expect_headers.items():
            value = resp.headers.get(name)
            if value is None:
                return f"response header {name} missing"
            if not pattern.search(value):
                return f"response header {name}: {_short(value)!r} does not match {pattern.pattern!r}"
        if o.expect_body is None and o.expect_body_regex is None and o.expect_json is None:
            return None
        text = data.decode(resp.get_encoding() if resp.charset else "utf-8", errors="replace")
        cut = f" (in the first {len(data)} bytes)" if truncated else ""
        if o.expect_body is not None and o.expect_body not in text:
            return f"body does not contain {o.expect_body!r}{cut}"
        if o.expect_body_regex is not None and not o.expect_body_regex.search(text):
            return f"body does not match {o.expect_body_regex.pattern!r}{cut}"
        if o.expect_json is not None:
            return check_json(text, o.expect_json, truncated)
        return None


# --- helpers ---------------------------------------------------------------------

def _split_json_path(path: str) -> list[str | int]:
    """"data.items[0].id" or "$.data.items[0].id" -> ["data", "items", 0, "id"]."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    parts: list[str | int] = []
    for token in re.finditer(r"([^.\[\]]+)|\[(\d+)\]|(\.)", text):
        if token.group(1) is not None:
            parts.append(token.group(1))
        elif token.group(2) is not None:
            parts.append(int(token.group(2)))
    if not parts and text:
        raise ValueError(f"cannot read JSON path {path!r}")
    return parts


def check_json(text: str, expected: dict[str, Any], truncated: bool) -> str | None:
    try:
        document = json.loads(text)
    except ValueError:
        hint = " (body was truncated; raise body_limit)" if truncated else ""
        return f"body is not valid JSON{hint}"
    for path, want in expected.items():
        node: Any = document
        for part in _split_json_path(path):
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                node = node[part]
            elif isinstance(part, str) and isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return f"JSON path {path} not found"
        if not _json_equal(node, want):
            return f"JSON {path}: expected {json.dumps(want)}, got {_short(json.dumps(node))}"
    return None


def _json_equal(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return float(got) == float(want)
    if isinstance(want, datetime):
        return str(got) == want.isoformat()
    return bool(got == want)


def _add_cert(outcome: Outcome, ssl_object: ssl.SSLObject, host: str, o: HttpOptions) -> None:
    from monitor.probes.certs import judge_certificates
    verdict = judge_certificates(ssl_object, host, o.cert_min_days)
    outcome.cert = verdict.facts
    if verdict.unavailable:
        outcome.details["cert_error"] = verdict.unavailable
    if verdict.down and outcome.ok:
        outcome.ok, outcome.reason = False, verdict.down
    elif verdict.degraded:
        outcome.degraded = verdict.degraded


def _cert_reason(exc: aiohttp.ClientConnectorCertificateError) -> str:
    cert_error = exc.certificate_error
    if isinstance(cert_error, ssl.SSLCertVerificationError):
        return describe_error(cert_error)
    return f"certificate verify failed: {_short(str(cert_error))}"


def _payload_reason(exc: aiohttp.ClientPayloadError) -> str:
    # aiohttp chains a ContentLengthError (not an OSError) and names a reset only in the text
    cause = exc.__cause__ or (exc.args[1] if len(exc.args) > 1 else None)
    if isinstance(cause, OSError):
        return describe_error(cause)
    text = str(exc.args[0]) if exc.args else str(exc)
    counts = re.search(r"received (\d+) of (\d+) bytes", text)
    got = f" ({counts.group(1)} of {counts.group(2)} bytes)" if counts else ""
    if "ConnectionResetError" in text:
        return f"connection reset by peer{got}"
    if "not completed" in text or "ContentLengthError" in text or "Not enough data" in text:
        return f"connection closed before the whole body arrived{got}"
    return _short(text)


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
