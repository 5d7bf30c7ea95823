"""ICMP probe tests.

Pure parts (packets, statistics, config) run anywhere. Real echoes go only to
127.0.0.0/8 and ::1: raw sockets as root on this host, and datagram ("ping")
sockets, silent hosts and unreachable routes inside a private network
namespace (`unshare -n`), whose loopback nothing else shares. Loss and ICMP
errors are made real by dropping an echo before it is sent or by sending a
forged "unreachable" over loopback in its place.

The file doubles as the child program for the subprocess tests:
`python test_icmp.py '<json>'` runs one probe and prints the result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.config.load import ConfigError, parse_config
from monitor.config.model import Target
from monitor.engine.result import Status
from monitor.engine.runner import run_probe
from monitor.probes import icmp, icmpwire
from monitor.probes.base import ProbeContext
from monitor.probes.icmp import IcmpOptions, IcmpProbe
from monitor.probes.icmpwire import Reply

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def root(test: Any) -> Any:
    """Needs raw sockets (and, for some tests, namespaces): root only."""
    test = pytest.mark.skipif(not IS_ROOT, reason="needs root for raw ICMP sockets")(test)
    return pytest.mark.root(test)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def make_target(host: str = "127.0.0.1", timeout: float = 5.0, **options: Any) -> Target:
    options.setdefault("spacing", 0.01)
    return Target(name="ping", kind="icmp", options=IcmpOptions(host=host, **options),
                  interval=30.0, timeout=timeout, failure_threshold=1, success_threshold=1)


async def probe(host: str = "127.0.0.1", **options: Any):
    ctx = ProbeContext()
    try:
        return await run_probe(make_target(host, **options), ctx)
    finally:
        await ctx.close()


# ------------------------------------------------------------ loss and errors on demand

def forge_unreachable(echoes: icmp._Round, packet: bytes, address: tuple[Any, ...]) -> None:
    """Instead of sending `packet`, send loopback an ICMP error quoting it, as a
    router would: "host unreachable" (IPv4) / "address unreachable" (IPv6)."""
    if not echoes.raw:  # the kernel put the socket's port in the identifier
        packet = packet[:4] + struct.pack("!H", echoes.sock.getsockname()[1]) + packet[6:]
    if echoes.v6:
        inner = struct.pack("!IHBB", 6 << 28, len(packet), socket.IPPROTO_ICMPV6, 64)
        inner += socket.inet_pton(socket.AF_INET6, "::1")
        inner += socket.inet_pton(socket.AF_INET6, address[0])
        error = struct.pack("!BBHI", 1, 3, 0, 0) + inner + packet  # kernel sums ICMPv6
        family, proto, to = socket.AF_INET6, socket.IPPROTO_ICMPV6, ("::1", 0)
    else:
        inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(packet), 0, 0, 64,
                            socket.IPPROTO_ICMP, 0, socket.inet_aton("127.0.0.1"),
                            socket.inet_aton(address[0]))
        inner = inner[:10] + struct.pack("!H", icmpwire.checksum(inner)) + inner[12:]
        error = struct.pack("!BBHI", 3, 1, 0, 0) + inner + packet[:8]
        error = error[:2] + struct.pack("!H", icmpwire.checksum(error)) + error[4:]
        family, proto, to = socket.AF_INET, socket.IPPROTO_ICMP, ("127.0.0.1", 0)
    with socket.socket(family, socket.SOCK_RAW, proto) as sock:
        sock.sendto(error, to)


def patch_transmit(setattr_: Any, drop: set[int] = frozenset(),
                   forge: set[int] = frozenset()) -> None:
    """Drop (never send) or replace with an ICMP error the echoes at these indexes."""
    original = icmp._Round.transmit

    def transmit(self: icmp._Round, packet: bytes, address: tuple[Any, ...]) -> None:
        index = (struct.unpack_from("!H", packet, 6)[0] - self.first_seq) & 0xFFFF
        if index in drop:
            return
        if index in forge:
            forge_unreachable(self, packet, address)
            return
        original(self, packet, address)

    setattr_(icmp._Round, "transmit", transmit)


# ------------------------------------------------------------ pure: packets

def test_checksum_matches_rfc1071_example() -> None:
    assert icmpwire.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert icmpwire.checksum(bytes.fromhex("0001f203f4f5f6")) == icmpwire.checksum(
        bytes.fromhex("0001f203f4f5f600"))
    packet = icmpwire.echo_request(False, 0x1234, 7, b"hello")
    assert icmpwire.checksum(packet) == 0


def ipv4(payload: bytes, ihl: int = 5, src: str = "127.0.0.1") -> bytes:
    options = b"\x01" * (ihl * 4 - 20)  # NOPs: tests stripping by IHL, not by 20
    return (struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), 0, 0, 64,
                        1, 0, socket.inet_aton(src), socket.inet_aton("127.0.0.1"))
            + options + payload)


def echo_reply(v6: bool, ident: int, seq: int, payload: bytes) -> bytes:
    packet = struct.pack("!BBHHH", 129 if v6 else 0, 0, 0, ident, seq) + payload
    return packet if v6 else packet[:2] + struct.pack("!H", icmpwire.checksum(packet)) + packet[4:]


def ipv4_error(kind: int, code: int, quoted_echo: bytes) -> bytes:
    inner = ipv4(quoted_echo[:8])
    error = struct.pack("!BBHI", kind, code, 0, 0) + inner
    return error[:2] + struct.pack("!H", icmpwire.checksum(error)) + error[4:]


COOKIE = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def parse(data: bytes, v6: bool = False, raw: bool = True,
          ident: int | None = 77) -> Reply | None:
    """parse_packet, then the cookie check the shared socket makes per round."""
    reply = icmpwire.parse_packet(data, v6=v6, raw=raw, ident=ident)
    if reply is None or not reply.is_for(COOKIE):
        return None
    return Reply(reply.seq, reply.error)


@pytest.mark.parametrize("ihl", [5, 6])
def test_parse_ipv4_raw_reply_strips_header_by_ihl(ihl: int) -> None:
    data = ipv4(echo_reply(False, 77, 9, COOKIE + b"pad"), ihl=ihl)
    assert parse(data) == Reply(9)


def test_parse_ignores_what_is_not_ours() -> None:
    mine = echo_reply(False, 77, 9, COOKIE)
    other_id = ipv4(echo_reply(False, 78, 9, COOKIE))
    other_cookie = ipv4(echo_reply(False, 77, 9, b"someone!"))
    corrupt = bytearray(ipv4(mine))
    corrupt[-1] ^= 0xFF
    own_request = ipv4(icmpwire.echo_request(False, 77, 9, COOKIE))  # loopback shows it too
    for data in (other_id, other_cookie, bytes(corrupt), own_request, b"", ipv4(b"\0" * 4)):
        assert parse(data) is None


def test_parse_icmp_errors_about_our_echo() -> None:
    echo = icmpwire.echo_request(False, 77, 12, COOKIE)
    data = ipv4(ipv4_error(3, 1, echo), src="192.0.2.1")
    assert parse(data) == Reply(
        12, "host unreachable")
    ttl = ipv4(ipv4_error(11, 0, echo))
    assert parse(ttl).error == (
        "TTL exceeded in transit")
    others = ipv4(ipv4_error(3, 1, icmpwire.echo_request(False, 78, 12, COOKIE)))
    assert parse(others) is None


def test_parse_ipv6_and_datagram_packets() -> None:
    reply = echo_reply(True, 77, 3, COOKIE)
    assert parse(reply, v6=True) == Reply(3)
    echo = icmpwire.echo_request(True, 77, 4, COOKIE)
    inner = struct.pack("!IHBB", 6 << 28, len(echo), 58, 64) + bytes(32) + echo
    error = struct.pack("!BBHI", 1, 4, 0, 0) + inner
    assert parse(error, v6=True) == Reply(
        4, "port unreachable")
    # datagram sockets: no IP header, the kernel already matched the identifier
    plain = echo_reply(False, 5555, 8, COOKIE)
    assert parse(plain, raw=False, ident=None) == Reply(8)


def test_kernel_timestamp_from_ancillary_data() -> None:
    stamp = struct.pack("@ll", 1_700_000_000, 123_456_789)
    assert icmpwire.kernel_time_ns([(socket.SOL_SOCKET, icmpwire.SO_TIMESTAMPNS, stamp)]) == (
        1_700_000_000_123_456_789)
    micro = struct.pack("@ll", 1_700_000_000, 5)
    assert icmpwire.kernel_time_ns([(socket.SOL_SOCKET, icmpwire.SO_TIMESTAMP, micro)]) == (
        1_700_000_000_000_005_000)
    assert icmpwire.kernel_time_ns([]) is None


def test_reason_when_icmp_is_not_permitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(icmpwire, "ping_group_range", lambda: "1 0")
    reason = icmpwire.not_permitted_reason()
    assert reason.startswith("ICMP not permitted: unprivileged ping is disabled "
                             "(net.ipv4.ping_group_range = '1 0') and raw sockets need root "
                             "or CAP_NET_RAW; fix: sudo sysctl -w net.ipv4.ping_group_range=")
    assert f"setcap cap_net_raw+ep {os.path.realpath(sys.executable)}" in reason
    monkeypatch.setattr(icmpwire, "ping_group_range", lambda: "100000 100001")
    assert "not allowed for your group" in icmpwire.not_permitted_reason()


# ------------------------------------------------------------ pure: statistics

def test_stats_in_send_order_with_loss_and_jitter() -> None:
    stats = icmp.ping_stats([1.0, None, 3.0, 2.0])
    assert stats == {"sent": 4, "received": 3, "loss_pct": 25.0,
                     "rtts_ms": [1.0, None, 3.0, 2.0],
                     "min_ms": 1.0, "avg_ms": 2.0, "max_ms": 3.0, "median_ms": 2.0,
                     "jitter_ms": 1.5}  # (|3-1| + |2-3|) / 2: the lost echo is skipped


def test_stats_all_lost_and_single_reply() -> None:
    lost = icmp.ping_stats([None, None, None])
    assert (lost["received"], lost["loss_pct"], lost["median_ms"], lost["jitter_ms"]) == (
        0, 100.0, None, None)
    one = icmp.ping_stats([0.25])
    assert (one["loss_pct"], one["median_ms"], one["jitter_ms"]) == (0.0, 0.25, None)


def test_loss_verdict_against_max_loss_pct() -> None:
    third = icmp.ping_stats([1.0, None, 1.0])
    assert icmp.loss_verdict(third, 0) == "33% packet loss (1 of 3 lost)"
    assert icmp.loss_verdict(third, 33.3) == "33% packet loss (1 of 3 lost)"
    assert icmp.loss_verdict(third, 34) is None
    assert icmp.loss_verdict(icmp.ping_stats([1.0, 1.0]), 0) is None


# ------------------------------------------------------------ config

def load(body: str) -> Any:
    return parse_config('[[targets]]\nname = "p"\nkind = "icmp"\n' + body)


def problems(body: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(body)
    return [str(p) for p in caught.value.problems]


def test_defaults_and_describe() -> None:
    target = load('host = "example.com"\n').targets[0]
    opts = target.options
    assert (opts.count, opts.spacing, opts.wait, opts.payload_size, opts.family,
            opts.max_loss_pct) == (3, 0.2, 1.0, 56, "any", 0.0)
    assert target.display_target == IcmpProbe.describe(opts) == "example.com"
    assert IcmpProbe.kind == "icmp"
    assert load('host = "[::1]"\nspacing = "50ms"\n').targets[0].options.host == "::1"


def test_count_zero_is_reported_with_its_line() -> None:
    assert problems('host = "127.0.0.1"\ncount = 0\n') == [
        "<config>:5: targets[p].count: must be at least 1, got 0"]


@pytest.mark.parametrize(("body", "expected"), [
    ('host = "http://example.com/"', "targets[p].host: expected a host name or IP address, "
                                     "not a URL"),
    ('host = "127.0.0.1:80"', "(ICMP has no port)"),
    ('host = "bad host"', "'bad host' is not a valid host name or IP address"),
    ('host = "-x.example"', "not a valid host name"),
    ('host = "127.0.0.1"\nfamily = "ipv6"', "targets[p].family: host 127.0.0.1 is an IPv4 "
                                            "address but family is 'ipv6'"),
    ('host = "::1"\nfamily = "ip6"', "expected one of 'any', 'ipv4', 'ipv6'"),
    ('host = "h"\ncount = 101', "must be at most 100, got 101"),
    ('host = "h"\nspacing = "0"', "spacing: must be between 1ms and 10s, got 0ms"),
    ('host = "h"\ncount = 100\nspacing = "1s"', "targets[p].count: a round takes up to 1m40s"),
    ('host = "h"\npayload_size = 70000', "must be at most 65507"),
    ('host = "h"\nmax_loss_pct = 101', "must be at most 100"),
])
def test_bad_options(body: str, expected: str) -> None:
    found = problems(body + "\n")
    assert any(expected in p for p in found), found


async def test_unresolvable_name_has_a_human_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_such_name(*args: Any, **kwargs: Any) -> Any:   # no query leaves the machine
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
    result = await probe("nonexistent.invalid")
    assert (result.status, result.reason) == (Status.DOWN, "DNS lookup failed: name not found")


async def test_echoes_that_cannot_fit_the_timeout_are_a_clear_failure() -> None:
    result = await probe(count=10, spacing=0.5, timeout=2.0)
    assert result.status is Status.DOWN
    assert result.reason == ("10 echoes 500ms apart do not fit in the timeout of 2s: "
                             "lower count or spacing, or raise timeout")


def test_echoes_that_cannot_fit_the_timeout_are_a_config_error() -> None:
    text = ('[[targets]]\nname = "p"\nkind = "icmp"\nhost = "127.0.0.1"\n'
            'count = 10\nspacing = "500ms"\ntimeout = "2s"\n')
    with pytest.raises(ConfigError) as info:
        parse_config(text, "m.toml")
    assert str(info.value) == ("m.toml:5: targets[p].count: 10 echoes 500ms apart do not fit in "
                               "the timeout of 2s: lower count or spacing, or raise timeout")


# ------------------------------------------------------------ real echoes on loopback

DETAIL_KEYS = {"rtts_ms", "sent", "received", "loss_pct", "min_ms", "avg_ms", "max_ms",
               "median_ms", "jitter_ms", "socket", "address", "timestamps"}


def assert_clean_round(result: Any, count: int, address: str) -> None:
    assert result.status is Status.UP, result.reason
    details = result.details
    assert DETAIL_KEYS <= details.keys()
    assert (details["sent"], details["received"], details["loss_pct"]) == (count, count, 0.0)
    assert len(details["rtts_ms"]) == count
    assert all(0 < rtt < 1000 for rtt in details["rtts_ms"])  # speed is for benchmarks
    assert details["min_ms"] <= details["median_ms"] <= details["max_ms"]
    assert result.latency_ms == details["median_ms"]
    assert details["address"] == address
    assert details["timestamps"] in ("kernel", "mixed", "userspace")


@root
async def test_ping_ipv4_loopback() -> None:
    result = await probe("127.0.0.1", count=5, spacing=0.2)
    assert_clean_round(result, 5, "127.0.0.1")
    assert result.details["socket"] in ("raw", "dgram")
    assert "dns" not in result.phases_ms
    print("127.0.0.1 RTTs (ms):", result.details["rtts_ms"], result.details["timestamps"])


@root
@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback (::1) here")
async def test_ping_ipv6_loopback() -> None:
    result = await probe("::1", count=5)
    assert_clean_round(result, 5, "::1")
    print("::1 RTTs (ms):", result.details["rtts_ms"], result.details["timestamps"])


@root
async def test_any_address_in_127_slash_8_answers() -> None:
    assert_clean_round(await probe("127.7.8.9", count=2), 2, "127.7.8.9")


@root
async def test_name_is_resolved_in_a_dns_phase() -> None:
    result = await probe("localhost", count=2)
    assert result.status is Status.UP, result.reason
    assert "dns" in result.phases_ms
    assert result.details["address"] in ("127.0.0.1", "::1")


@root
async def test_concurrent_probes_do_not_take_each_others_replies() -> None:
    results = await asyncio.gather(*(probe("127.0.0.1", count=4) for _ in range(20)))
    for result in results:
        assert_clean_round(result, 4, "127.0.0.1")
    assert not icmp._IDENTS_IN_USE


@root
async def test_partial_loss_is_degraded(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_transmit(monkeypatch.setattr, drop={1})
    result = await probe(count=5, wait=0.3)
    assert result.status is Status.DEGRADED
    assert result.reason == "20% packet loss (1 of 5 lost)"
    assert (result.details["sent"], result.details["received"]) == (5, 4)
    rtts = result.details["rtts_ms"]
    assert len(rtts) == 5 and rtts[1] is None and None not in rtts[:1] + rtts[2:]
    assert result.details["jitter_ms"] is not None


@root
async def test_loss_up_to_max_loss_pct_stays_up(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_transmit(monkeypatch.setattr, drop={0})
    result = await probe(count=5, wait=0.3, max_loss_pct=20)
    assert (result.status, result.details["loss_pct"]) == (Status.UP, 20.0)


@root
async def test_total_loss_is_down_before_the_runner_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    patch_transmit(monkeypatch.setattr, drop={0, 1, 2})
    began = time.perf_counter()
    result = await probe(count=3, wait=5.0, timeout=1.0)  # wait cut to fit the timeout
    assert time.perf_counter() - began < 1.0
    assert (result.status, result.reason) == (Status.DOWN, "100% packet loss (3 sent)")
    assert result.latency_ms is None
    assert result.details["loss_pct"] == 100.0


@root
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_icmp_unreachable_is_a_human_reason(
        monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    if host == "::1" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) here")
    patch_transmit(monkeypatch.setattr, forge={1})
    result = await probe(host, count=3)
    expected = ("address unreachable (from ::1)" if ":" in host
                else "host unreachable (from 127.0.0.1)")
    assert result.status is Status.DEGRADED
    assert result.reason == f"33% packet loss (1 of 3 lost): {expected}"
    assert result.details["errors"] == [expected]


def count_sockets(monkeypatch: pytest.MonkeyPatch) -> list[socket.socket]:
    opened: list[socket.socket] = []
    original = icmp.open_socket

    def spy(family: int) -> tuple[socket.socket, bool]:
        sock, raw = original(family)
        opened.append(sock)
        return sock, raw

    monkeypatch.setattr(icmp, "open_socket", spy)
    return opened


@root
async def test_one_socket_serves_every_round_of_an_engine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    opened = count_sockets(monkeypatch)
    ctx = ProbeContext()
    hosts = [f"127.0.0.{i}" for i in range(1, 31)]
    try:
        for _ in range(2):   # a second wave reuses the socket
            results = await asyncio.gather(*(
                run_probe(make_target(host, count=3), ctx) for host in hosts))
            for host, result in zip(hosts, results, strict=True):
                assert_clean_round(result, 3, host)
        assert len(opened) == 1 and opened[0].fileno() != -1
        assert not icmp.echo_sockets(ctx).get(socket.AF_INET).pending
    finally:
        await ctx.close()
    assert opened[0].fileno() == -1
    assert not icmp._IDENTS_IN_USE


@root
async def test_cancellation_releases_the_round_and_close_the_socket(
        monkeypatch: pytest.MonkeyPatch) -> None:
    opened = count_sockets(monkeypatch)
    patch_transmit(monkeypatch.setattr, drop={0, 1, 2})
    ctx = ProbeContext()
    try:
        task = asyncio.create_task(run_probe(make_target(count=3, wait=2.0), ctx))
        await asyncio.sleep(0.1)
        channel = icmp.echo_sockets(ctx).get(socket.AF_INET)
        assert len(channel.pending) == 3
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not channel.pending and opened[0].fileno() != -1
    finally:
        await ctx.close()
    assert opened[0].fileno() == -1
    assert not icmp._IDENTS_IN_USE


@root
async def test_closing_the_context_ends_rounds_in_flight(
        monkeypatch: pytest.MonkeyPatch) -> None:
    patch_transmit(monkeypatch.setattr, drop={0})
    ctx = ProbeContext()
    task = asyncio.create_task(run_probe(make_target(count=1, wait=5.0), ctx))
    await asyncio.sleep(0.1)
    began = time.perf_counter()
    await ctx.close()
    result = await asyncio.wait_for(task, 2.0)
    assert time.perf_counter() - began < 2.0
    assert (result.status, result.reason) == (Status.DOWN, "100% packet loss (1 sent)")


@root
async def test_sequences_never_overlap_a_pending_round_and_run_out_cleanly() -> None:
    ctx = ProbeContext()
    try:
        channel = icmp.echo_sockets(ctx).get(socket.AF_INET)

        def round_of(count: int) -> icmp._Round:
            return icmp._Round(channel=channel, cookie=COOKIE, payload=COOKIE, wait=1.0,
                               count=count)

        held = round_of(100)
        channel.reserve(held)
        mine = {held.seq(i) for i in range(100)}
        channel._next_seq = (held.first_seq + 50) & 0xFFFF   # as if the counter wrapped
        other = round_of(10)
        channel.reserve(other)
        assert not mine & {other.seq(i) for i in range(10)}
        channel.release(other)
        rounds = [held]
        with pytest.raises(icmp.ProbeFailure, match="too many ICMP echoes in flight"):
            for _ in range(700):
                rounds.append(round_of(100))
                channel.reserve(rounds[-1])
        assert len(channel.pending) == 65500   # every 100-run that fits, none shared
        for echoes in rounds:
            channel.release(echoes)
        assert not channel.pending
    finally:
        await ctx.close()


# ------------------------------------------------------------ subprocesses

def run_child(args: dict[str, Any], netns_setup: str | None = None) -> dict[str, Any]:
    """Run one probe in a fresh interpreter, optionally in a new network namespace."""
    command = [sys.executable, str(Path(__file__).resolve()), json.dumps(args)]
    if netns_setup is not None:
        command = ["unshare", "--net", "sh", "-ec",
                   f'{netns_setup}\nexec "$@"', "sh", *command]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def netns_available() -> bool:
    if not IS_ROOT or shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    done = subprocess.run(["unshare", "--net", "ip", "link", "set", "lo", "up"],
                          capture_output=True)
    return done.returncode == 0


needs_netns = pytest.mark.skipif(not IS_ROOT or not netns_available(),
                                 reason="needs root and network namespaces (unshare -n)")

LO_UP = "ip link set lo up"
PING_OPEN = f"{LO_UP}\nsysctl -qw net.ipv4.ping_group_range='0 2147483647'"


@root
def test_unprivileged_user_gets_a_clear_reason() -> None:
    groups = icmpwire.ping_group_range()
    if groups is None:
        pytest.skip("no /proc/sys/net/ipv4/ping_group_range")
    low, high = (int(n) for n in groups.split())
    if low <= NOBODY <= high:
        pytest.skip(f"ping_group_range '{groups}' lets gid {NOBODY} ping unprivileged")
    result = run_child({"host": "127.0.0.1", "drop_to": NOBODY})
    assert result["status"] == "down"
    assert result["reason"].startswith(
        f"ICMP not permitted: unprivileged ping is disabled (net.ipv4.ping_group_range = "
        f"'{groups}') and raw sockets need root or CAP_NET_RAW; fix: sudo sysctl -w "
        f"net.ipv4.ping_group_range='0 2147483647' or sudo setcap cap_net_raw+ep ")


@root
@needs_netns
def test_datagram_socket_when_ping_group_range_allows_it() -> None:
    result = run_child({"host": "127.0.0.1", "count": 4}, PING_OPEN)
    assert (result["status"], result["details"]["socket"]) == ("up", "dgram"), result
    assert result["details"]["received"] == 4
    assert all(0 < rtt < 1000 for rtt in result["details"]["rtts_ms"])


@root
@needs_netns
def test_datagram_socket_reads_icmp_errors_from_the_error_queue() -> None:
    result = run_child({"host": "127.0.0.1", "count": 3, "forge": [1]}, PING_OPEN)
    assert result["details"]["socket"] == "dgram"
    assert result["status"] == "degraded"
    assert result["reason"] == "33% packet loss (1 of 3 lost): host unreachable (from 127.0.0.1)"


@root
@needs_netns
@pytest.mark.parametrize("setup", [LO_UP, PING_OPEN], ids=["raw", "dgram"])
def test_silent_host_is_total_loss(setup: str) -> None:
    # Without the local 127/8 route, 127.0.0.5 is delivered over lo but never
    # answered (the reply would need a source address the namespace lacks).
    silent = (f"{setup}\nip route del local 127.0.0.0/8 dev lo table local\n"
              "ip route add 127.0.0.0/8 dev lo")
    result = run_child({"host": "127.0.0.5", "count": 3, "wait": 0.3}, silent)
    assert (result["status"], result["reason"]) == ("down", "100% packet loss (3 sent)")
    assert result["details"]["sent"] == 3


@root
@needs_netns
def test_unreachable_route_fails_the_send() -> None:
    result = run_child({"host": "127.0.0.9", "count": 2},
                       f"{LO_UP}\nip route del local 127.0.0.0/8 dev lo table local\n"
                       "ip route add unreachable 127.0.0.9")
    assert result["status"] == "down"
    assert result["reason"] == "host unreachable; 100% packet loss (2 sent)"


def child_main(args: dict[str, Any]) -> None:
    """Child side of run_child: one probe, result as JSON on the last line."""
    host = args.pop("host")
    drop_to = args.pop("drop_to", None)
    forge = set(args.pop("forge", ()))
    if forge:
        patch_transmit(setattr, forge=forge)
    if drop_to is not None:   # import first (the stdlib may be under /root), then lose
        import concurrent.futures.thread  # noqa: F401   root and CAP_NET_RAW
        os.setgroups([])
        os.setgid(drop_to)
        os.setuid(drop_to)
    result = asyncio.run(run_probe(make_target(host, **args), ProbeContext()))
    print(json.dumps({"status": str(result.status), "reason": result.reason,
                      "details": result.details, "phases": result.phases_ms}))


if __name__ == "__main__":
    child_main(json.loads(sys.argv[1]))
