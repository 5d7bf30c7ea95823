"""The engine-to-UI frame stream: exact round trips, any chunking, clear failure;
and the UI-to-engine command lines."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Transition
from monitor.engine.wire import (
    CommandReader,
    EngineStats,
    FrameReader,
    SkippedLine,
    WireError,
    command_line,
    pack,
    result_from_message,
    result_message,
    stats_from_message,
    transition_from_message,
    transition_message,
)
from monitor.probes.base import CertFacts

AT = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)


def tls_result() -> ProbeResult:
    cert = CertFacts(expires_at=AT + timedelta(days=30), subject="CN=a.test", issuer="CN=CA",
                     earliest="CN=CA", leaf_expires_at=AT + timedelta(days=90),
                     hostname_match=True, sans=("a.test", "b.test"), chain_length=2)
    return ProbeResult(name="site", kind="tls", target="a.test:443", status=Status.DEGRADED,
                       latency_ms=12.5, phases_ms={"connect": 1.25, "tls": 7.0},
                       reason="cert expires in 30 days", checked_at=AT, started=1234.5678,
                       http_status=None, cert=cert, details={"protocol": "TLSv1.3"},
                       recheck=True)


def test_results_and_transitions_survive_the_trip_exactly():
    icmp = ProbeResult(name="h1", kind="icmp", target="127.0.0.1", status=Status.DOWN,
                       latency_ms=None, phases_ms={}, reason="100% packet loss (3 sent)",
                       checked_at=AT, started=99.0,
                       details={"rtts_ms": [None, 0.031, None], "sent": 3})
    move = Transition("h1", State.UP, State.DOWN, "100% packet loss", AT, 99.5, 3600.25)
    messages = FrameReader().feed(pack([result_message(tls_result()), result_message(icmp),
                                        transition_message(move), ("error", "boom")]))
    assert result_from_message(messages[0]) == tls_result()
    assert result_from_message(messages[1]) == icmp
    assert transition_from_message(messages[2]) == move
    assert messages[3] == ("error", "boom")


def test_stats_survive_the_trip_as_the_worker_sends_them():
    from monitor.engine.worker import _stats_message

    stats = EngineStats(probes_total=9876, skips=4321, lag_ms=1.23456, probes_per_s=19.876,
                        behind_s=2.345678, skips_per_min=140.04)
    [message] = FrameReader().feed(pack([_stats_message(stats, dropped=7)]))
    assert stats_from_message(message) == EngineStats(
        probes_total=9876, skips=4321, lag_ms=1.235, probes_per_s=19.88, dropped=7,
        behind_s=2.346, skips_per_min=140.0)


def test_frames_split_anywhere_come_out_whole_and_in_order():
    stream = b"".join(pack([("result", f"t{i}", i * 1.5)]) for i in range(20))
    for step in (1, 2, 5, 7, 64, len(stream)):
        reader, got = FrameReader(), []
        for at in range(0, len(stream), step):
            got += reader.feed(stream[at:at + step])
        assert got == [("result", f"t{i}", i * 1.5) for i in range(20)], step


def test_a_value_marshal_cannot_carry_is_sent_as_text():
    message = ("result", "t", {"when": AT, "ok": True})
    assert FrameReader().feed(pack([message])) == [("result", "t", {"when": str(AT), "ok": True})]


def test_bytes_that_are_not_frames_raise_a_clear_error():
    with pytest.raises(WireError, match="unexpected bytes from the engine: b'hello"):
        FrameReader().feed(b"hello from a stray print\n" + pack([("error", "x")]))
    frame = bytearray(pack([("error", "x")]))
    frame[-3:] = b"\xff\xff\xff"
    with pytest.raises(WireError, match="unreadable frame"):
        FrameReader().feed(bytes(frame))


def test_stray_prints_in_the_worker_go_to_stderr_not_into_the_frames():
    code = ("from monitor.engine.outbox import private_stdout\n"
            "from monitor.engine.wire import pack\n"
            "frames = private_stdout()\n"
            "print('a library talking')\n"
            "frames.write(pack([('error', 'x')])); frames.flush()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert FrameReader().feed(done.stdout) == [("error", "x")]
    assert b"a library talking" in done.stderr


def test_command_lines_in_any_chunking_with_over_long_ones_skipped_whole():
    long = command_line({"cmd": "pause", "name": "x" * 100})
    stream = command_line({"cmd": "stop"}) + long + b"not json\n" + long + command_line({})
    for size in (1, 7, 64, len(stream)):
        reader, got = CommandReader(limit=64), []
        for start in range(0, len(stream), size):
            got += reader.feed(stream[start:start + size])
        assert got == [b'{"cmd":"stop"}\n', SkippedLine(len(long)), b"not json\n",
                       SkippedLine(len(long)), b"{}\n"], size
