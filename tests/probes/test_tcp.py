"""The tcp probe against real servers on loopback: banners, request/reply,
servers that close, reset, stall or drip."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import trustme

from monitor.config import ConfigError, parse_config
from monitor.engine.result import Status
from monitor.engine.runner import run_probe
from monitor.probes.base import ProbeContext
from monitor.probes.tcp import QUIET, TcpProbe, excerpt
from tests.servers.tls_servers import (
    drain_until_closed, make_target, probe, refused_port, reset, serve, server_context,
    tls_handler, write_ca)

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter


async def probe_tcp(port: int, **options: object):
    return await probe("tcp", host="127.0.0.1", port=port, **options)


def banner(text: bytes):
    async def handler(reader: Reader, writer: Writer) -> None:
        writer.write(text)
        await drain_until_closed(reader, writer)
    return handler


def redis(reply: bytes = b"+PONG\r\n"):
    """Answers each PING line with `reply`, like Redis."""
    async def handler(reader: Reader, writer: Writer) -> None:
        while (line := await reader.readline()):
            if line.strip().upper() == b"PING":
                writer.write(reply)
    return handler


# --- connect only ------------------------------------------------------------

async def test_connect_only_is_up():
    async with serve(drain_until_closed) as port:
        result = await probe_tcp(port)
    assert result.status is Status.UP, result.reason
    assert set(result.phases_ms) == {"connect"}
    assert result.target == f"127.0.0.1:{port}"


async def test_connection_refused():
    with refused_port() as port:
        result = await probe_tcp(port)
    assert result.status is Status.DOWN
    assert result.reason == "connection refused"


async def test_name_resolution_phase():
    async with serve(drain_until_closed) as port:
        result = await probe("tcp", host="localhost", port=port)
    assert result.status is Status.UP, result.reason
    assert {"dns", "connect"} <= set(result.phases_ms)


# --- banners and replies -----------------------------------------------------

async def test_smtp_banner():
    async with serve(banner(b"220 mail.test ESMTP ready\r\n")) as port:
        result = await probe_tcp(port, expect="220")
    assert result.status is Status.UP, result.reason
    assert set(result.phases_ms) == {"connect", "ttfb", "transfer"}
    assert result.details["received"] == "220 mail.test ESMTP ready"


async def test_redis_ping():
    async with serve(redis()) as port:
        result = await probe_tcp(port, send="PING\r\n", expect="+PONG")
    assert result.status is Status.UP, result.reason


def test_toml_escapes_reach_the_option():
    text = '[[targets]]\nname = "t"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 1\n' \
           'send = "PING\\r\\n"\n'
    assert parse_config(text).targets[0].options.send == "PING\r\n"


async def test_wrong_reply_is_reported_after_a_quiet_pause():
    loop = asyncio.get_running_loop()
    async with serve(redis(b"-ERR unknown command 'PING'\r\n")) as port:
        begin = loop.time()
        result = await probe_tcp(port, send="PING\r\n", expect="+PONG", timeout="2s")
        elapsed = loop.time() - begin
    assert result.status is Status.DOWN
    assert result.reason == "expected '+PONG', got '-ERR unknown command 'PING''"
    assert QUIET <= elapsed < 1.5  # judged after the quiet pause, not at the timeout


async def test_expect_regex_for_an_ssh_banner():
    async with serve(banner(b"SSH-2.0-OpenSSH_9.6\r\n")) as port:
        up = await probe_tcp(port, expect_regex=r"^SSH-2\.0-")
        down = await probe_tcp(port, expect_regex=r"^SSH-1\.", timeout="2s")
    assert up.status is Status.UP, up.reason
    assert down.reason == r"expected a match for /^SSH-1\./, got 'SSH-2.0-OpenSSH_9.6'"


async def test_send_without_expect_needs_any_reply():
    async with serve(redis()) as port:
        result = await probe_tcp(port, send="PING\r\n")
    assert result.status is Status.UP, result.reason
    assert "ttfb" in result.phases_ms


async def test_dripping_server_is_read_until_the_answer():
    async def drip(reader: Reader, writer: Writer) -> None:
        await reader.readline()
        for byte in b"+PONG\r\n":
            writer.write(bytes([byte]))
            await asyncio.sleep(0.03)
        await drain_until_closed(reader, writer)
    async with serve(drip) as port:
        result = await probe_tcp(port, send="PING\r\n", expect="+PONG")
    assert result.status is Status.UP, result.reason
    assert result.phases_ms["transfer"] >= 100  # four more bytes, 30 ms apart


async def test_answer_too_slow_names_what_arrived():
    async def stall(reader: Reader, writer: Writer) -> None:
        await reader.readline()
        writer.write(b"+PO")
        await drain_until_closed(reader, writer)
    async with serve(stall) as port:
        result = await probe_tcp(port, send="PING\r\n", expect="+PONG", timeout="300ms")
    assert result.status is Status.DOWN
    assert result.reason == "timed out after 300ms waiting for '+PONG' (got '+PO')"


async def test_silent_server_times_out_during_ttfb():
    async with serve(drain_until_closed) as port:
        result = await probe_tcp(port, expect="220", timeout="300ms")
    assert result.status is Status.DOWN
    assert result.reason == "timed out after 300ms during ttfb"


async def test_read_limit():
    async with serve(banner(b"x" * 3000)) as port:
        result = await probe_tcp(port, expect="NEEDLE", read_limit="1KiB")
    assert result.status is Status.DOWN
    assert result.reason.startswith("expected 'NEEDLE' in the first 1KiB, got 'xxxx")
    assert result.reason.endswith("…'")


# --- servers that go away ----------------------------------------------------

async def test_server_closes_before_the_answer():
    async def early(reader: Reader, writer: Writer) -> None:
        await reader.readline()
        writer.write(b"+PO")
        writer.close()
    async with serve(early) as port:
        result = await probe_tcp(port, send="PING\r\n", expect="+PONG")
    assert result.status is Status.DOWN
    assert result.reason == "connection closed by peer before '+PONG' was received (got '+PO')"


async def test_server_closes_without_a_word():
    async def mute(reader: Reader, writer: Writer) -> None:
        writer.close()
    async with serve(mute) as port:
        result = await probe_tcp(port, expect="220")
    assert result.status is Status.DOWN
    assert result.reason == "connection closed by peer before '220' was received (got nothing)"


async def test_server_resets():
    async def rst(reader: Reader, writer: Writer) -> None:
        await reader.readline()
        reset(writer)
    async with serve(rst) as port:
        result = await probe_tcp(port, send="PING\r\n", expect="+PONG")
    assert result.status is Status.DOWN
    assert result.reason == "connection reset by peer"


async def test_binary_reply_is_shown_printably():
    async with serve(banner(b"\x00\x01bin\xff\r\n")) as port:
        result = await probe_tcp(port, expect="220", timeout="2s")
    assert result.reason == r"expected '220', got '\x00\x01bin�'"


# --- cleanup -----------------------------------------------------------------

async def test_cancellation_closes_the_socket():
    accepted, closed = asyncio.Event(), asyncio.Event()

    async def handler(reader: Reader, writer: Writer) -> None:
        accepted.set()
        await drain_until_closed(reader, writer)
        closed.set()
    async with serve(handler) as port:
        target = make_target("tcp", "5s", host="127.0.0.1", port=port, expect="220")
        task = asyncio.create_task(run_probe(target, ProbeContext()))
        await asyncio.wait_for(accepted.wait(), 1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(closed.wait(), 1.0)


async def test_success_closes_the_socket():
    closed = asyncio.Event()

    async def handler(reader: Reader, writer: Writer) -> None:
        writer.write(b"220 hi\r\n")
        await drain_until_closed(reader, writer)
        closed.set()
    async with serve(handler) as port:
        result = await probe_tcp(port, expect="220")
        assert result.status is Status.UP
        await asyncio.wait_for(closed.wait(), 1.0)


# --- TLS ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_tls_banner(ca: trustme.CA, tmp_path: Path):
    smtps = tls_handler(server_context(ca.issue_cert("localhost")),
                        then=banner(b"220 smtps.test ESMTP\r\n"))
    async with serve(smtps) as port:
        result = await probe_tcp(port, tls=True, server_name="localhost",
                                 ca_file=write_ca(ca, tmp_path), expect="220")
    assert result.status is Status.UP, result.reason
    assert set(result.phases_ms) == {"connect", "tls", "ttfb", "transfer"}
    assert result.cert is not None and result.cert.hostname_match is True
    assert result.details["tls_version"]


async def test_tls_verification_failure(ca: trustme.CA):
    async with serve(tls_handler(server_context(ca.issue_cert("localhost")))) as port:
        result = await probe_tcp(port, tls=True, server_name="localhost")
    assert result.status is Status.DOWN
    assert result.reason.startswith("certificate verify failed: ")


# --- options -----------------------------------------------------------------

def test_describe():
    assert TcpProbe.describe(make_target("tcp", host="db.test", port=5432).options) == \
        "db.test:5432"


@pytest.mark.parametrize("options, problem", [
    ({"host": "a.test"}, "port: required"),
    ({"host": "a.test", "port": 0}, "port: must be at least 1"),
    ({"host": "a.test", "port": 1, "expect": "a", "expect_regex": "b"}, "not both"),
    ({"host": "a.test", "port": 1, "server_name": "b.test"}, "only used with tls = true"),
    ({"host": "a.test", "port": 1, "verify_tls": False}, "verify_tls: only used with tls = true"),
    ({"host": "a.test", "port": 1, "expect_regex": "("}, "invalid regular expression"),
    ({"host": "a.test", "port": 1, "send": ""}, "send: must not be empty"),
    ({"host": "a.test", "port": 1, "read_limit": "lots"}, "cannot read 'lots' as a size"),
])
def test_option_problems(options, problem):
    with pytest.raises(ConfigError) as caught:
        make_target("tcp", **options)
    assert problem in str(caught.value)


def test_read_limit_accepts_sizes():
    assert make_target("tcp", host="a.test", port=1, read_limit="2KiB").options.read_limit == 2048
    assert make_target("tcp", host="a.test", port=1).options.read_limit == 65536


def test_excerpt():
    assert excerpt(b"+OK ready\r\n") == "+OK ready"
    assert excerpt(b"a\r\nb") == r"a\r\nb"
    assert excerpt(b"y" * 100, limit=10) == "yyyyyyyyy…"
    assert excerpt(b"") == ""
    assert QUIET < 1  # tests above rely on the quiet pause being short


# --- a dripping peer costs work in proportion to what it sends ---------------

def dripper(chunks: int, size: int = 1024):
    """Sends `chunks` pieces of `size` bytes, one per loop turn, then closes."""
    async def handler(reader: Reader, writer: Writer) -> None:
        piece = b"x" * (size - 1) + b" "
        for _ in range(chunks):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0)
        writer.close()
    return handler


async def _drip_cpu(chunks: int, **expect: object) -> float:
    import time
    async with serve(dripper(chunks)) as port:
        begin = time.process_time()
        result = await probe_tcp(port, read_limit="16MiB", timeout="20s", **expect)
        spent = time.process_time() - begin
    assert result.status is Status.DOWN
    assert result.reason is not None and result.reason.startswith("connection closed by peer before")
    return spent


@pytest.mark.parametrize("expect", [{"expect": "NEVER"}, {"expect_regex": "NEV(ER)+"}])
async def test_dripping_peer_costs_linear_work(expect: dict[str, object]):
    # Searching the whole buffer again for each chunk makes twice the bytes
    # cost four times the CPU; searching only new bytes, about twice. Best of
    # three runs of each size damps the noise of a shared machine.
    small = min([await _drip_cpu(1500, **expect) for _ in range(3)])
    large = min([await _drip_cpu(3000, **expect) for _ in range(3)])
    assert large / small < 3.0, (small, large)
