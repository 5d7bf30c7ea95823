"""The http probe against real servers on loopback: aiohttp.web for servers that
behave, raw asyncio streams for servers that do not, trustme for HTTPS."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from datetime import UTC, datetime, timedelta
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme
from aiohttp import web

from monitor.config import ConfigError, parse_config
from monitor.engine.result import Status
from monitor.engine.runner import run_probe
from monitor.probes.base import ProbeContext
from tests.servers.tls_servers import self_signed_context
from tests.servers.http_servers import (
    AppServer, app_server, big_then_hang, close_mid_body, close_silently, config_text, drip,
    Reader, Writer, garbage, hang, http_target, never_read, probe, raw_server, read_head,
    refused_port, reset_mid_body)

MiB = 1024 * 1024
DOC = {"status": "UP", "a": {"b": "x", "n": 3, "flag": True},
       "items": [{"id": 1}, {"id": 2, "tags": ["p", "q"]}], "empty": None}


# --- the well-behaved server -------------------------------------------------------

routes = web.RouteTableDef()


@routes.get("/ok")
async def ok(request: web.Request) -> web.Response:
    return web.Response(text="hello world, all systems go",
                        headers={"X-Version": "2.1.0", "Cache-Control": "no-store"})


@routes.get("/json")
async def json_doc(request: web.Request) -> web.Response:
    return web.json_response(DOC)


@routes.get("/notjson")
async def not_json(request: web.Request) -> web.Response:
    return web.Response(text="<html>maintenance</html>", content_type="text/html")


@routes.get("/status/{code}")
async def status(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), text="status page")


@routes.get("/slow/{ms}")
async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(int(request.match_info["ms"]) / 1000)
    return web.Response(text="finally")


@routes.get("/chain/{n}")
async def chain(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    if n == 0:
        return web.Response(text="end of chain")
    raise web.HTTPFound(f"/chain/{n - 1}")


@routes.get("/loop/a")
async def loop_a(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop/b")


@routes.get("/loop/b")
async def loop_b(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop/a")


@routes.get("/self")
async def self_redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/self")


@routes.route("*", "/go")
async def go(request: web.Request) -> web.Response:
    """Redirect to ?to= with ?code= (default 302)."""
    code = int(request.query.get("code", "302"))
    return web.Response(status=code, headers={"Location": request.query["to"]})


@routes.route("*", "/echo")
async def echo(request: web.Request) -> web.Response:
    body = await request.text()
    return web.json_response({"method": request.method, "body": body,
                              "auth": request.headers.get("Authorization")})


@routes.route("*", "/private")
async def private(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != "Basic YWxpY2U6czNjcmV0":   # alice:s3cret
        return web.Response(status=401, text="who are you?",
                            headers={"WWW-Authenticate": 'Basic realm="x"'})
    return web.Response(text="welcome alice")


@routes.get("/big")
async def big(request: web.Request) -> web.Response:
    return web.Response(body=b"a" * (10 * MiB - 3) + b"END", content_type="text/plain")


@routes.get("/chunked/{n}")
async def chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(b"c" * int(request.match_info["n"]))
    await resp.write_eof()
    return resp


@routes.get("/exact")
async def exact(request: web.Request) -> web.Response:
    return web.Response(body=b"b" * 1024, content_type="text/plain")


@pytest.fixture
async def server():
    async with app_server(routes) as srv:
        yield srv


@pytest.fixture
async def other():
    """A second server: another port is another origin."""
    async with app_server(routes) as srv:
        yield srv


def phases(result) -> set[str]:
    return set(result.phases_ms)


# --- up, with assertions --------------------------------------------------------------

async def test_plain_get_is_up_with_phases_and_json_contract(server: AppServer):
    result = await probe(server.url("/ok"))
    assert result.status is Status.UP, result.reason
    assert result.http_status == 200
    assert phases(result) == {"connect", "ttfb", "transfer"}   # IP literal: no dns
    assert result.details["bytes"] == len("hello world, all systems go")
    assert result.details["truncated"] is False
    assert result.details["http_version"] == "1.1"
    assert "redirects" not in result.details
    assert result.latency_ms is not None
    total = sum(result.phases_ms.values())
    assert 0 < total <= result.latency_ms + 0.001
    assert result.latency_ms - total < 100    # only bookkeeping between phases
    doc = result.to_json()
    assert doc["status"] == "up" and doc["ok"] is True and doc["reason"] is None
    assert doc["target"] == server.url("/ok") and doc["kind"] == "http"
    assert doc["http_status"] == 200
    assert doc["cert_days_left"] is None and doc["cert_expires_at"] is None
    assert set(doc["phases_ms"]) == {"connect", "ttfb", "transfer"}
    json.dumps(doc)   # serialisable as it stands
    assert server.requests[0].method == "GET"
    assert server.requests[0].headers["User-Agent"].startswith("monitor/")


async def test_host_name_adds_a_dns_phase(server: AppServer):
    result = await probe(server.url("/ok", host="localhost"))
    assert result.status is Status.UP, result.reason
    assert phases(result) == {"dns", "connect", "ttfb", "transfer"}
    assert result.latency_ms >= sum(result.phases_ms.values()) - 0.001


async def test_expect_body_and_regex(server: AppServer):
    result = await probe(server.url("/ok"), expect_body="all systems go",
                         expect_body_regex=r"^hello \w+,")
    assert result.status is Status.UP, result.reason


async def test_expect_json_nested_paths_and_indexes(server: AppServer):
    result = await probe(server.url("/json"), expect_json={
        "status": "UP", "a.b": "x", "$.a.n": 3.0, "$.a.flag": True,
        "items[1].id": 2, "$.items[1].tags[0]": "p", "items[0]": {"id": 1},
    })
    assert result.status is Status.UP, result.reason


async def test_expect_headers(server: AppServer):
    result = await probe(server.url("/ok"),
                         expect_headers={"X-Version": r"^2\.", "cache-control": "no-store"})
    assert result.status is Status.UP, result.reason


async def test_request_headers_are_sent(server: AppServer):
    result = await probe(server.url("/ok"), headers={"X-Probe": "yes", "Accept": "text/plain"})
    assert result.status is Status.UP, result.reason
    assert server.requests[0].headers["X-Probe"] == "yes"
    assert server.requests[0].headers["Accept"] == "text/plain"


async def test_head_method(server: AppServer):
    result = await probe(server.url("/ok"), method="HEAD")
    assert result.status is Status.UP, result.reason
    assert [r.method for r in server.requests] == ["HEAD"]
    assert result.details["bytes"] == 0


async def test_post_with_body(server: AppServer):
    result = await probe(server.url("/echo"), method="POST", body="ping=1",
                         expect_json={"method": "POST", "body": "ping=1"})
    assert result.status is Status.UP, result.reason


# --- down: the answer is wrong --------------------------------------------------------

async def test_status_mismatch(server: AppServer):
    result = await probe(server.url("/status/503"))
    assert result.status is Status.DOWN
    assert result.reason == "expected 2xx, got 503 Service Unavailable"
    assert result.http_status == 503
    assert result.latency_ms is not None   # something answered
    assert result.to_json()["http_status"] == 503


@pytest.mark.parametrize(("expect", "code", "reason"), [
    ("200-299", 204, None),
    ("200-299", 302, "expected 2xx, got 302 Found"),   # a full hundred reads as Nxx
    ("200-204", 302, "expected 200-204, got 302 Found"),
    ([200, "3xx"], 301, None),
    ([200, "3xx"], 404, "expected 200 or 3xx, got 404 Not Found"),
    ([200, 204], 500, "expected 200 or 204, got 500 Internal Server Error"),
    (404, 404, None),
    ("4xx", 418, None),
])
async def test_status_ranges_and_lists(server: AppServer, expect, code, reason):
    result = await probe(server.url(f"/status/{code}"), expect_status=expect,
                         follow_redirects=False)
    assert result.reason == reason
    assert result.status is (Status.UP if reason is None else Status.DOWN)
    assert result.http_status == code


async def test_body_mismatch(server: AppServer):
    result = await probe(server.url("/ok"), expect_body="all systems down")
    assert result.status is Status.DOWN
    assert result.reason == "body does not contain 'all systems down'"
    assert result.http_status == 200


async def test_body_regex_mismatch(server: AppServer):
    result = await probe(server.url("/ok"), expect_body_regex=r"^\d+$")
    assert result.status is Status.DOWN
    assert result.reason == r"body does not match '^\\d+$'"


async def test_json_value_mismatch(server: AppServer):
    result = await probe(server.url("/json"), expect_json={"items[1].id": 3})
    assert result.status is Status.DOWN
    assert result.reason == "JSON items[1].id: expected 3, got 2"


async def test_json_true_is_not_one(server: AppServer):
    result = await probe(server.url("/json"), expect_json={"a.flag": 1})
    assert result.status is Status.DOWN
    assert result.reason == "JSON a.flag: expected 1, got true"


@pytest.mark.parametrize("path", ["a.c", "items[5].id", "$.status.deeper", "items.id"])
async def test_json_path_missing(server: AppServer, path: str):
    result = await probe(server.url("/json"), expect_json={path: "x"})
    assert result.status is Status.DOWN
    assert result.reason == f"JSON path {path} not found"


async def test_invalid_json(server: AppServer):
    result = await probe(server.url("/notjson"), expect_json={"status": "UP"})
    assert result.status is Status.DOWN
    assert result.reason == "body is not valid JSON"


async def test_header_mismatch_and_missing(server: AppServer):
    result = await probe(server.url("/ok"), expect_headers={"X-Version": r"^3\."})
    assert result.status is Status.DOWN
    assert result.reason == r"response header X-Version: '2.1.0' does not match '^3\\.'"
    result = await probe(server.url("/ok"), expect_headers={"X-Missing": "."})
    assert result.status is Status.DOWN
    assert result.reason == "response header X-Missing missing"


async def test_status_is_checked_before_the_body(server: AppServer):
    result = await probe(server.url("/status/500"), expect_body="nope")
    assert result.reason == "expected 2xx, got 500 Internal Server Error"


# --- down: the network or the server misbehaves ---------------------------------------

async def test_connection_refused():
    with refused_port() as port:
        result = await probe(f"http://127.0.0.1:{port}/")
    assert result.status is Status.DOWN
    assert result.reason == "connection refused"
    assert result.latency_ms is None and result.http_status is None
    assert "ttfb" not in result.phases_ms
    assert result.to_json()["latency_ms"] is None


async def test_hang_before_any_byte_times_out_during_ttfb():
    async with raw_server(hang) as port:
        started = time.perf_counter()
        result = await probe(f"http://127.0.0.1:{port}/", timeout="300ms")
        elapsed = time.perf_counter() - started
    assert result.status is Status.DOWN
    assert result.reason == "timed out after 300ms during ttfb"
    assert result.latency_ms is None
    assert "connect" in result.phases_ms
    assert 0.25 < elapsed < 2.0   # the deadline held (the server never answers); room for a busy CI


async def test_server_that_never_reads_times_out_during_ttfb():
    async with raw_server(never_read) as port:
        result = await probe(f"http://127.0.0.1:{port}/", timeout="300ms")
    assert result.status is Status.DOWN
    assert result.reason == "timed out after 300ms during ttfb"


async def test_server_that_never_reads_a_large_body_times_out():
    async with raw_server(never_read) as port:
        target = http_target(f"http://127.0.0.1:{port}/", timeout="300ms", method="POST",
                             body="z")
        # a body the socket buffers may not hold, set directly (a MiB of TOML parses
        # slowly); aiohttp warns about bodies of 1 MiB and more
        target = replace(target, options=replace(target.options, body="z" * (MiB - 1)))
        ctx = ProbeContext()
        try:
            result = await run_probe(target, ctx)
        finally:
            await ctx.close()
    assert result.status is Status.DOWN
    assert result.reason == "timed out after 300ms during ttfb"


async def test_server_closes_without_answering():
    async with raw_server(close_silently) as port:
        result = await probe(f"http://127.0.0.1:{port}/")
    assert result.status is Status.DOWN
    assert result.reason == "server closed the connection without answering"


async def test_reset_mid_response():
    async with raw_server(reset_mid_body(length=1000, sent=100)) as port:
        result = await probe(f"http://127.0.0.1:{port}/")
    assert result.status is Status.DOWN
    assert result.reason == ("response body broken during transfer: "
                             "connection reset by peer (100 of 1000 bytes)")
    assert result.http_status == 200
    assert "transfer" not in result.phases_ms   # the phase did not finish


async def test_close_mid_response():
    async with raw_server(close_mid_body(length=1000, sent=100)) as port:
        result = await probe(f"http://127.0.0.1:{port}/")
    assert result.status is Status.DOWN
    assert result.reason == ("response body broken during transfer: "
                             "connection closed before the whole body arrived (100 of 1000 bytes)")
    assert result.http_status == 200


async def test_garbage_instead_of_http():
    async with raw_server(garbage()) as port:
        result = await probe(f"http://127.0.0.1:{port}/")
    assert result.status is Status.DOWN
    assert result.reason.startswith("invalid HTTP response")
    assert len(result.reason) < 200


async def test_slow_drip_times_out_during_transfer():
    async with raw_server(drip(every=0.1, count=50)) as port:
        started = time.perf_counter()
        result = await probe(f"http://127.0.0.1:{port}/", timeout="500ms")
        elapsed = time.perf_counter() - started
    assert result.status is Status.DOWN
    assert result.reason == "timed out after 500ms during transfer"
    assert {"connect", "ttfb"} <= phases(result)
    assert elapsed < 2.0   # the deadline held (the drip would take 5 s); room for a busy CI


# --- bodies and the cap ---------------------------------------------------------------

async def test_huge_body_is_capped_at_body_limit(server: AppServer):
    result = await probe(server.url("/big"), expect_body="aaaa")
    assert result.status is Status.UP, result.reason
    assert result.details["truncated"] is True
    assert result.details["bytes"] == 64 * 1024
    assert result.latency_ms < 1000


async def test_huge_body_with_expectation_beyond_the_cap(server: AppServer):
    result = await probe(server.url("/big"), body_limit="1MiB", expect_body="END")
    assert result.status is Status.DOWN
    assert result.reason == f"body does not contain 'END' (in the first {MiB} bytes)"
    assert result.details["truncated"] is True
    assert result.details["bytes"] == MiB


async def test_whole_body_within_a_larger_limit(server: AppServer):
    result = await probe(server.url("/big"), body_limit="16MiB", expect_body="END",
                         timeout="2s")
    assert result.status is Status.UP, result.reason
    assert result.details == {"bytes": 10 * MiB, "truncated": False, "http_version": "1.1"}


async def test_body_exactly_at_the_limit_is_not_truncated(server: AppServer):
    result = await probe(server.url("/exact"), body_limit=1024)
    assert result.status is Status.UP, result.reason
    assert result.details["bytes"] == 1024
    assert result.details["truncated"] is False


@pytest.mark.parametrize(("size", "truncated"), [(1000, False), (1024, False), (4096, True)])
async def test_chunked_body_and_the_limit(server: AppServer, size: int, truncated: bool):
    result = await probe(server.url(f"/chunked/{size}"), body_limit=1024)
    assert result.status is Status.UP, result.reason
    assert result.details["bytes"] == min(size, 1024)
    assert result.details["truncated"] is truncated


async def test_cap_means_the_rest_of_a_stalled_body_is_never_awaited():
    async with raw_server(big_then_hang(length=10 * MiB, sent=256 * 1024)) as port:
        result = await probe(f"http://127.0.0.1:{port}/", timeout="500ms", body_limit="64KiB")
    assert result.status is Status.UP, result.reason
    assert result.details["truncated"] is True
    assert result.details["bytes"] == 64 * 1024


async def test_invalid_json_hints_at_truncation(server: AppServer):
    result = await probe(server.url("/big"), body_limit=100, expect_json={"a": 1})
    assert result.reason == "body is not valid JSON (body was truncated; raise body_limit)"


# --- redirects ---------------------------------------------------------------------------

async def test_redirects_are_followed_and_reported(server: AppServer):
    result = await probe(server.url("/chain/3"), expect_body="end of chain")
    assert result.status is Status.UP, result.reason
    assert result.details["redirects"] == [
        f"302 {server.url('/chain/2')}", f"302 {server.url('/chain/1')}",
        f"302 {server.url('/chain/0')}"]
    assert [r.path for r in server.requests] == ["/chain/3", "/chain/2", "/chain/1", "/chain/0"]


async def test_redirect_loop(server: AppServer):
    result = await probe(server.url("/loop/a"))
    assert result.status is Status.DOWN
    assert result.reason == "redirect loop: /loop/b -> /loop/a"
    assert result.http_status == 302
    assert len(server.requests) == 2


async def test_redirect_to_itself_is_a_loop(server: AppServer):
    result = await probe(server.url("/self"))
    assert result.status is Status.DOWN
    assert result.reason == "redirect loop: /self -> /self"
    assert result.http_status == 301


async def test_too_many_redirects(server: AppServer):
    result = await probe(server.url("/chain/5"), max_redirects=2)
    assert result.status is Status.DOWN
    assert result.reason == "too many redirects (more than 2)"
    assert len(result.details["redirects"]) == 3
    assert len(server.requests) == 3   # the third redirect is not followed


async def test_chain_within_max_redirects(server: AppServer):
    result = await probe(server.url("/chain/2"), max_redirects=2)
    assert result.status is Status.UP, result.reason


async def test_follow_redirects_off_checks_the_3xx(server: AppServer):
    result = await probe(server.url("/chain/1"), follow_redirects=False, expect_status="3xx")
    assert result.status is Status.UP, result.reason
    assert result.http_status == 302
    assert len(server.requests) == 1
    result = await probe(server.url("/chain/1"), follow_redirects=False)
    assert result.reason == "expected 2xx, got 302 Found"


async def test_303_after_post_becomes_get_without_body(server: AppServer):
    result = await probe(server.url("/go?code=303&to=/echo"), method="POST", body="data=1",
                         expect_json={"method": "GET", "body": ""})
    assert result.status is Status.UP, result.reason
    assert [(r.method, r.body) for r in server.requests] == [
        ("POST", b"data=1"), ("GET", b"")]
    assert result.details["redirects"] == [f"303 {server.url('/echo')}"]


async def test_307_after_post_keeps_method_and_body(server: AppServer):
    result = await probe(server.url("/go?code=307&to=/echo"), method="POST", body="data=1",
                         expect_json={"method": "POST", "body": "data=1"})
    assert result.status is Status.UP, result.reason


async def test_relative_and_absolute_redirects_to_another_server(server: AppServer,
                                                                  other: AppServer):
    result = await probe(server.url(f"/go?to={other.url('/ok')}"), expect_body="hello")
    assert result.status is Status.UP, result.reason
    assert result.details["redirects"] == [f"302 {other.url('/ok')}"]
    assert len(other.requests) == 1


async def test_failure_after_a_redirect_names_the_hop(server: AppServer):
    with refused_port() as port:
        dead = f"http://127.0.0.1:{port}/gone"
        result = await probe(server.url(f"/go?to={quote(dead, safe='')}"))
    assert result.status is Status.DOWN
    assert result.reason == f"connection refused (after 1 redirect, at {dead})"
    assert result.details["redirects"] == [f"302 {dead}"]


@pytest.mark.parametrize("location", ["ftp://127.0.0.1/file", "mailto:ops@example.org",
                                      "http://[::1"])
async def test_redirect_to_an_unusable_location(server: AppServer, location: str):
    result = await probe(server.url(f"/go?to={quote(location, safe='')}"))
    assert result.status is Status.DOWN
    assert result.reason == f"redirect to an unusable location {location!r}"
    assert result.http_status == 302
    assert result.details["redirects"] == [f"302 {location}"]


async def test_303_after_head_stays_head(server: AppServer):
    result = await probe(server.url("/go?code=303&to=/echo"), method="HEAD")
    assert result.status is Status.UP, result.reason
    assert [r.method for r in server.requests] == ["HEAD", "HEAD"]


# --- basic auth -----------------------------------------------------------------------

async def test_basic_auth_is_sent(server: AppServer):
    result = await probe(server.url("/private"), username="alice", password="s3cret")
    assert result.status is Status.UP, result.reason
    result = await probe(server.url("/private"), username="alice", password="wrong")
    assert result.reason == "expected 2xx, got 401 Unauthorized"


async def test_basic_auth_kept_on_same_origin_redirect(server: AppServer):
    result = await probe(server.url("/go?to=/private"), username="alice", password="s3cret",
                         expect_body="welcome")
    assert result.status is Status.UP, result.reason


async def test_basic_auth_dropped_on_cross_origin_redirect(server: AppServer, other: AppServer):
    result = await probe(server.url(f"/go?to={other.url('/echo')}"),
                         username="alice", password="s3cret")
    assert result.status is Status.UP, result.reason
    assert server.requests[0].headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in other.requests[0].headers


async def test_authorization_header_dropped_on_cross_origin_redirect(server: AppServer,
                                                                      other: AppServer):
    """A token in `headers` is a credential too (the sample config puts one there)."""
    result = await probe(server.url(f"/go?to={other.url('/echo')}"),
                         headers={"Authorization": "Bearer t0ken", "X-Trace": "1"})
    assert result.status is Status.UP, result.reason
    assert server.requests[0].headers["Authorization"] == "Bearer t0ken"
    assert "Authorization" not in other.requests[0].headers
    assert other.requests[0].headers["X-Trace"] == "1"   # other headers still go


# --- latency and connection reuse -------------------------------------------------------

async def test_max_latency_exceeded_is_degraded(server: AppServer):
    result = await probe(server.url("/slow/150"), max_latency="50ms")
    assert result.status is Status.DEGRADED
    assert result.reason.startswith("slow: ")
    assert result.reason.endswith("ms > max 50ms")
    assert result.to_json()["ok"] is False
    result = await probe(server.url("/ok"), max_latency="900ms")
    assert result.status is Status.UP, result.reason


async def test_keepalive_reuses_the_connection(server: AppServer):
    ctx = ProbeContext()
    try:
        first = await probe(server.url("/ok"), ctx=ctx, keepalive=True)
        second = await probe(server.url("/ok"), ctx=ctx, keepalive=True)
    finally:
        await ctx.close()
    assert first.status is Status.UP and second.status is Status.UP, (first, second)
    assert "connect" in first.phases_ms
    assert "connect" not in second.phases_ms
    assert {"ttfb", "transfer"} <= phases(second)
    assert server.requests[0].client_port == server.requests[1].client_port


def one_answer_per_connection(connections: list[int]):
    """Answer one request with keep-alive; close when the reused connection's next
    request arrives (the race of a server timing out an idle connection)."""
    async def handler(reader: Reader, writer: Writer) -> None:
        connections.append(1)
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                     b"Connection: keep-alive\r\n\r\nok")
        await writer.drain()
        await read_head(reader)
        writer.close()
    return handler


async def test_keepalive_retries_a_get_when_the_reused_connection_was_dropped():
    connections: list[int] = []
    ctx = ProbeContext()
    try:
        async with raw_server(one_answer_per_connection(connections)) as port:
            first = await probe(f"http://127.0.0.1:{port}/", ctx=ctx, keepalive=True)
            second = await probe(f"http://127.0.0.1:{port}/", ctx=ctx, keepalive=True)
    finally:
        await ctx.close()
    assert first.status is Status.UP, first.reason
    assert second.status is Status.UP, second.reason   # aiohttp retried on a new connection
    assert "connect" in second.phases_ms
    assert len(connections) == 2


async def test_keepalive_post_on_a_dropped_connection_is_not_retried():
    connections: list[int] = []
    ctx = ProbeContext()
    try:
        async with raw_server(one_answer_per_connection(connections)) as port:
            url = f"http://127.0.0.1:{port}/"
            first = await probe(url, ctx=ctx, keepalive=True, method="POST", body="x")
            second = await probe(url, ctx=ctx, keepalive=True, method="POST", body="x")
    finally:
        await ctx.close()
    assert first.status is Status.UP, first.reason
    assert second.status is Status.DOWN
    assert second.reason == "server closed the connection without answering"
    assert len(connections) == 1


async def test_keepalive_by_name_resolves_only_once(server: AppServer):
    ctx = ProbeContext()
    try:
        first = await probe(server.url("/ok", host="localhost"), ctx=ctx, keepalive=True)
        second = await probe(server.url("/ok", host="localhost"), ctx=ctx, keepalive=True)
    finally:
        await ctx.close()
    assert {"dns", "connect"} <= phases(first)
    assert phases(second) == {"ttfb", "transfer"}


async def test_without_keepalive_every_probe_connects(server: AppServer):
    ctx = ProbeContext()
    try:
        first = await probe(server.url("/ok"), ctx=ctx)
        second = await probe(server.url("/ok"), ctx=ctx)
    finally:
        await ctx.close()
    assert "connect" in first.phases_ms and "connect" in second.phases_ms
    assert server.requests[0].client_port != server.requests[1].client_port
    assert server.requests[0].headers.get("Connection", "").lower() == "close"


# --- HTTPS ----------------------------------------------------------------------------

def days_from_now(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(tzinfo=None)


def tls_context(cert: trustme.LeafCert) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def https(cert: trustme.LeafCert | ssl.SSLContext):
    context = cert if isinstance(cert, ssl.SSLContext) else tls_context(cert)
    return app_server(routes, ssl_context=context)


async def test_https_trusted_via_ca_file(ca, ca_file):
    async with https(ca.issue_cert("localhost")) as srv:
        result = await probe(srv.url("/ok", host="localhost"), ca_file=ca_file,
                             expect_body="hello")
    assert result.status is Status.UP, result.reason
    assert phases(result) == {"dns", "connect", "tls", "ttfb", "transfer"}
    assert result.cert is not None
    assert result.cert.hostname_match is True
    assert "O=trustme" in result.cert.issuer
    doc = result.to_json()
    assert doc["cert_days_left"] > 300 * 365   # trustme certificates last until 3000
    assert doc["cert_expires_at"].startswith("3000-")
    assert set(doc["phases_ms"]) == {"dns", "connect", "tls", "ttfb", "transfer"}
    assert sum(result.phases_ms.values()) <= result.latency_ms + 0.001


async def test_https_to_an_ip_literal(ca, ca_file):
    async with https(ca.issue_cert("127.0.0.1")) as srv:
        result = await probe(srv.url("/ok"), ca_file=ca_file)
    assert result.status is Status.UP, result.reason
    assert phases(result) == {"connect", "tls", "ttfb", "transfer"}
    assert result.cert.hostname_match is True


async def test_https_untrusted_ca_is_down(ca_file):
    stranger = trustme.CA()
    async with https(stranger.issue_cert("localhost")) as srv:
        result = await probe(srv.url("/ok", host="localhost"), ca_file=ca_file)
    assert result.status is Status.DOWN
    assert result.reason.startswith("certificate verify failed")
    assert "unable to get local issuer certificate" in result.reason
    assert result.http_status is None and result.cert is None


async def test_https_self_signed_is_down():
    async with https(self_signed_context("localhost")) as srv:
        result = await probe(srv.url("/ok", host="localhost"))
    assert result.status is Status.DOWN
    assert result.reason.startswith("certificate verify failed")
    assert "self-signed" in result.reason or "self signed" in result.reason


async def test_https_wrong_hostname_is_down(ca, ca_file):
    async with https(ca.issue_cert("other.example")) as srv:
        result = await probe(srv.url("/ok", host="localhost"), ca_file=ca_file)
    assert result.status is Status.DOWN
    assert result.reason.startswith("certificate verify failed")
    assert "hostname mismatch" in result.reason.lower()
    assert "localhost" in result.reason


async def test_https_expired_certificate_is_down(ca, ca_file):
    cert = ca.issue_cert("localhost", not_before=days_from_now(-30), not_after=days_from_now(-2))
    async with https(cert) as srv:
        result = await probe(srv.url("/ok", host="localhost"), ca_file=ca_file)
    assert result.status is Status.DOWN
    assert result.reason == "certificate expired 2 days ago"   # a second, unverified look says when


async def test_https_expired_certificate_without_verification_is_still_down(ca):
    cert = ca.issue_cert("localhost", not_before=days_from_now(-30),
                         not_after=days_from_now(-2.5))
    async with https(cert) as srv:
        result = await probe(srv.url("/ok", host="localhost"), verify_tls=False)
    assert result.status is Status.DOWN
    assert result.reason == "certificate expired 2 days ago"
    assert result.http_status == 200
    assert result.to_json()["cert_days_left"] < 0


async def test_https_verify_off_accepts_an_untrusted_certificate_with_facts():
    stranger = trustme.CA()
    async with https(stranger.issue_cert("localhost")) as srv:
        result = await probe(srv.url("/ok", host="localhost"), verify_tls=False)
    assert result.status is Status.UP, result.reason
    assert result.cert is not None
    assert result.cert.sans == ("localhost",)
    assert result.cert.hostname_match is True
    assert result.to_json()["cert_days_left"] > 0


async def test_https_verify_off_reports_a_hostname_mismatch_in_facts():
    async with https(trustme.CA().issue_cert("other.example")) as srv:
        result = await probe(srv.url("/ok", host="localhost"), verify_tls=False)
    assert result.status is Status.UP, result.reason
    assert result.cert.hostname_match is False


async def test_https_certificate_expiring_soon_is_degraded(ca, ca_file):
    cert = ca.issue_cert("localhost", not_after=days_from_now(5.04))
    async with https(cert) as srv:
        result = await probe(srv.url("/ok", host="localhost"), ca_file=ca_file,
                             cert_min_days=14)
        relaxed = await probe(srv.url("/ok", host="localhost"), ca_file=ca_file,
                              cert_min_days=2)
    assert result.status is Status.DEGRADED
    assert result.reason == "certificate expires in 5.0 days (minimum 14)"
    assert 5.0 < result.to_json()["cert_days_left"] < 5.05
    assert relaxed.status is Status.UP, relaxed.reason


async def test_https_down_answer_still_wins_over_cert_warning(ca, ca_file):
    cert = ca.issue_cert("localhost", not_after=days_from_now(5))
    async with https(cert) as srv:
        result = await probe(srv.url("/status/500", host="localhost"), ca_file=ca_file)
    assert result.status is Status.DOWN
    assert result.reason == "expected 2xx, got 500 Internal Server Error"


async def test_https_keepalive_skips_connect_and_tls(ca, ca_file):
    ctx = ProbeContext()
    try:
        async with https(ca.issue_cert("localhost")) as srv:
            first = await probe(srv.url("/ok", host="localhost"), ctx=ctx, ca_file=ca_file,
                                keepalive=True)
            second = await probe(srv.url("/ok", host="localhost"), ctx=ctx, ca_file=ca_file,
                                 keepalive=True)
    finally:
        await ctx.close()
    assert first.status is Status.UP and second.status is Status.UP
    assert {"connect", "tls"} <= phases(first)
    assert not {"connect", "tls"} & phases(second)


async def test_https_redirect_from_http(ca, ca_file, server: AppServer):
    async with https(ca.issue_cert("localhost")) as srv:
        result = await probe(server.url(f"/go?to={srv.url('/ok', host='localhost')}"),
                             ca_file=ca_file, username="alice", password="s3cret")
        assert "Authorization" not in srv.requests[0].headers   # scheme change = new origin
    assert result.status is Status.UP, result.reason
    assert "tls" in result.phases_ms and result.cert is not None


# --- config validation ------------------------------------------------------------------

def config_error(url: str, **options: object) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(config_text(url, **options))
    return str(info.value)


# config_text puts [[targets]], name, kind, timeout, url on lines 1-5; options follow.
@pytest.mark.parametrize(("url", "options", "expected"), [
    ("ftp://127.0.0.1/", {}, ":5: targets[web].url: expected an http:// or https:// URL"),
    ("http:///nohost", {}, ":5: targets[web].url: URL has no host"),
    ("http://127.0.0.1:99999/", {}, ":5: targets[web].url: URL has an invalid port"),
    ("http://127.0.0.1/", {"expect_status": "6xx"},
     ":6: targets[web].expect_status: cannot read '6xx' as a status"),
    ("http://127.0.0.1/", {"expect_status": "299-200"},
     ":6: targets[web].expect_status: status range '299-200' is backwards"),
    ("http://127.0.0.1/", {"expect_status": [200, 700]},
     ":6: targets[web].expect_status: status 700 is outside 100-599"),
    ("http://127.0.0.1/", {"expect_body_regex": "(unclosed"},
     ":6: targets[web].expect_body_regex: invalid regular expression"),
    ("http://127.0.0.1/", {"expect_headers": {"X-A": "[bad"}},
     ":6: targets[web].expect_headers: invalid regular expression"),
    ("http://127.0.0.1/", {"body": "x=1"},
     ":6: targets[web].body: a GET request cannot carry a body"),
    ("http://127.0.0.1/", {"method": "HEAD", "body": "x=1"},
     ":7: targets[web].body: a HEAD request cannot carry a body"),
    ("http://127.0.0.1/", {"method": "FETCH"}, ":6: targets[web].method: expected one of GET"),
    ("http://127.0.0.1/", {"username": "alice"},
     ":6: targets[web].username: password is missing: username and password go together"),

    ("http://127.0.0.1/", {"username": "a", "password": "b", "headers": {"authorization": "x"}},
     ":6: targets[web].username: basic auth and an Authorization header: use one"),
    ("http://127.0.0.1/", {"max_redirects": 51}, ":6: targets[web].max_redirects:"),
    ("http://127.0.0.1/", {"expect_json": {}}, ":6: targets[web].expect_json: expected a table"),
    ("http://127.0.0.1/", {"ca_file": "/nonexistent/ca.pem"},
     ":6: targets[web].ca_file: file not found"),
])
def test_config_validation(url: str, options: dict, expected: str):
    assert expected in config_error(url, **options)


def test_password_without_username():
    message = config_error("http://127.0.0.1/", password="x")
    assert ":6: targets[web].password: username is missing: username and password go together" in message


def test_every_problem_is_reported():
    message = config_error("gopher://x/", expect_status="6xx", expect_body_regex="(")
    assert len(message.splitlines()) == 3
