"""`monitor run --headless` and `--record` against readers that stall, leave or
crash: real subprocesses, real pipes and files, a loopback server that counts
what it was asked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import tty
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web

from monitor.engine.record import RecordReader
from tests.cli.test_cli import clean_env, monitor

PIPE_CAPACITY = 1 << 16


@dataclass
class CountingServer:
    base: str = ""
    arrivals: list[float] = field(default_factory=list)   # wall clock, like checked_at

    def since(self, count: int) -> int:
        return len(self.arrivals) - count


@pytest.fixture
async def server():
    counting = CountingServer()

    async def answer(_: web.Request) -> web.Response:
        counting.arrivals.append(time.time())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{path}", answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    counting.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    yield counting
    await runner.cleanup()


def write_config(path: Path, base: str, count: int, interval: str, padding: int = 0) -> Path:
    """`count` targets; `padding` lengthens each URL (and so each result line)."""
    query = f"?pad={'x' * padding}" if padding else ""
    text = f'[settings]\ninterval = "{interval}"\ntimeout = "40ms"\n'
    for i in range(count):
        text += f'\n[[targets]]\nname = "t{i}"\nkind = "http"\nurl = "{base}/t{i}{query}"\n'
    path.write_text(text)
    return path


async def start(tmp_path: Path, *args: str, stdout: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=tmp_path, env=clean_env(tmp_path),
        stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=asyncio.subprocess.PIPE)


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 10)
    assert proc.stderr is not None
    return code, (await proc.stderr.read()).decode(errors="replace")


def open_channel(kind: str) -> tuple[int, int]:
    """(read end, write end): a pipe, or a terminal (the frozen SSH link)."""
    if kind == "pipe":
        return os.pipe()
    master, slave = os.openpty()
    tty.setraw(slave)   # bytes as written: no newline translation
    return master, slave


class PipeReader:
    """The read end of a real pipe or terminal, read in bounded, non-blocking steps."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = b""
        os.set_blocking(fd, False)

    async def lines(self, until, seconds: float) -> list[bytes]:
        """Read whole lines until `until(lines)` holds or `seconds` pass."""
        got: list[bytes] = []
        deadline = time.monotonic() + seconds
        while not until(got) and time.monotonic() < deadline:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            except OSError:   # EIO: a terminal whose other side closed
                break
            if not chunk:
                break
            *whole, self.pending = (self.pending + chunk).split(b"\n")
            got += whole
        return got

    def close(self) -> None:
        os.close(self.fd)


@pytest.mark.parametrize("kind", ["pipe", "terminal"])
async def test_a_stalled_reader_never_stalls_the_probes_and_is_told_what_was_dropped(
        tmp_path, server, kind):
    # ~7 KB a result line at ~200 results/s: a pipe fills in a fraction of a second
    config = write_config(tmp_path / "m.toml", server.base, count=10, interval="50ms",
                          padding=7000)
    read_fd, write_fd = open_channel(kind)
    # (no stats events: one arriving among the lines read last is not "results flowing")
    proc = await start(tmp_path, "run", "--headless", "--json", "--stats-every", "0",
                       "-c", str(config), stdout=write_fd)
    os.close(write_fd)
    reader = PipeReader(read_fd)
    try:
        first = await reader.lines(lambda got: any(b'"event":"result"' in line for line in got), 15)
        assert first, "no output"
        line_size = len(next(line for line in first if b'"event":"result"' in line)) + 1

        # Read nothing until the monitor has produced far more than the pipe and
        # any sane output buffer hold; old code stopped probing once the pipe was full.
        stalled_from = len(server.arrivals)
        produced_enough = (6 << 20) // line_size
        deadline = time.monotonic() + 20
        while server.since(stalled_from) < produced_enough and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        last_second = len(server.arrivals)
        await asyncio.sleep(1.0)
        assert server.since(stalled_from) >= produced_enough, \
            f"probing stalled with stdout: {server.since(stalled_from)} requests"
        assert server.since(last_second) > 0, "probing stopped while stdout was stalled"

        # Reading again: whole lines, then a count of what could not be kept.
        lines = await reader.lines(
            lambda got: any(b'"event":"dropped"' in line for line in got), 20)
        events = [json.loads(line) for line in lines]
        dropped = [e for e in events if e["event"] == "dropped"]
        assert dropped, f"no dropped event in {len(events)} lines"
        assert dropped[0]["results"] > 0 and dropped[0]["transitions"] == 0
        assert dropped[0]["at"].endswith("Z")
        kept = len(events) - 1 + len(first)
        assert kept * line_size <= 4 * PIPE_CAPACITY + (4 << 20)   # the buffer is bounded
        after = await reader.lines(lambda got: len(got) >= 3, 10)
        assert all(json.loads(line)["event"] == "result" for line in after)   # flowing again
    finally:
        code, err = await stop(proc)   # before the reader leaves, which would end it too
        reader.close()
    assert code == 0 and "Traceback" not in err, err


@pytest.mark.parametrize("mode", [["--json"], []], ids=["json", "text"])
async def test_a_reader_that_leaves_ends_the_monitor_quietly(tmp_path, server, mode):
    """`monitor run --headless | head -1`: exit 0 once the reader is gone, no
    traceback, even in text mode where nothing more may ever be written."""
    config = write_config(tmp_path / "m.toml", server.base, count=2, interval="200ms")
    read_fd, write_fd = os.pipe()
    proc = await start(tmp_path, "run", "--headless", *mode, "-c", str(config), stdout=write_fd)
    os.close(write_fd)
    reader = PipeReader(read_fd)
    try:
        assert await reader.lines(lambda got: got, 15), "no output"
    finally:
        reader.close()
    try:
        exited = await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        exited = None   # still probing for nobody
    _, err = await stop(proc)
    assert exited == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


async def test_stdout_that_fails_is_a_clear_error(tmp_path, server):
    config = write_config(tmp_path / "m.toml", server.base, count=1, interval="200ms")
    with open("/dev/full", "wb") as full:   # every write: ENOSPC
        proc = await start(tmp_path, "run", "--headless", "--json", "-c", str(config),
                           stdout=full.fileno())
        async with asyncio.timeout(15):
            code = await proc.wait()
        _, err = await stop(proc)
    assert code == 1 and "monitor: cannot write to stdout: No space left on device" in err, err
    assert "Traceback" not in err


def parse_record(path: Path) -> list[dict]:
    """Every line but the last must be a whole JSON object; the last may be torn."""
    lines = path.read_bytes().split(b"\n")
    tail = lines.pop()   # after the last newline: empty unless a write was cut short
    entries = [json.loads(line) for line in lines]
    try:
        entries.append(json.loads(tail))
    except ValueError:
        pass
    return entries


def stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


async def kill_after_results(proc: asyncio.subprocess.Process, server: CountingServer,
                             seconds: float) -> float:
    """SIGKILL `seconds` after the first probe arrived; returns when (wall clock)."""
    async with asyncio.timeout(15):
        while not server.arrivals:
            await asyncio.sleep(0.02)
    await asyncio.sleep(seconds)
    killed_at = time.time()
    proc.kill()
    await asyncio.wait_for(proc.wait(), 10)
    return killed_at


def assert_at_most_the_last_second_lost(entries: list[dict], server: CountingServer,
                                        killed_at: float) -> None:
    cutoff = killed_at - 1.0
    asked = sum(1 for at in server.arrivals if at < cutoff - 0.05)
    kept = sum(1 for e in entries if e["event"] == "result" and stamp(e["checked_at"]) < cutoff)
    assert asked >= 4, asked
    assert kept >= 0.8 * asked, f"{kept} of {asked} results older than 1 s were recorded"


async def test_headless_record_survives_kill_9_and_a_reopen_after_a_torn_line(tmp_path, server):
    # a few short results a second: a stdio buffer would hold seconds of them
    config = write_config(tmp_path / "m.toml", server.base, count=2, interval="500ms")
    record = tmp_path / "record.jsonl"
    with open(os.devnull, "wb") as devnull:
        proc = await start(tmp_path, "run", "--headless", "--record", str(record),
                           "-c", str(config), stdout=devnull.fileno())
        killed_at = await kill_after_results(proc, server, 2.5)
    entries = parse_record(record)
    assert_at_most_the_last_second_lost(entries, server, killed_at)
    assert {e["name"] for e in entries} == {"t0", "t1"}

    # A write cut short by a crash, then a new run appending to the same file:
    # the torn line stays alone on its line and the reader skips it.
    with open(record, "ab") as handle:
        handle.write(b'{"event":"result","name":"t0","kin')
    before = len(entries)
    with open(os.devnull, "wb") as devnull:
        proc = await start(tmp_path, "run", "--headless", "--record", str(record),
                           "-c", str(config), stdout=devnull.fileno())
        asked_before = len(server.arrivals)
        async with asyncio.timeout(15):
            while server.since(asked_before) < 4:
                await asyncio.sleep(0.05)
        code, err = await stop(proc)
    assert code == 0, err
    reader = RecordReader(record)
    entries = list(reader)
    assert reader.torn == 1
    assert len(entries) > before and all(e["event"] == "result" for e in entries)


async def test_engine_worker_record_survives_kill_9(tmp_path, server):
    """The dashboard's engine process, run directly: stdin a pipe kept open (the
    UI), stdout /dev/null."""
    config = write_config(tmp_path / "m.toml", server.base, count=2, interval="500ms")
    record = tmp_path / "record.jsonl"
    with open(os.devnull, "wb") as devnull:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "engine-worker", "--config", str(config),
            "--record", str(record), cwd=tmp_path, env=clean_env(tmp_path),
            stdin=asyncio.subprocess.PIPE, stdout=devnull.fileno(),
            stderr=asyncio.subprocess.PIPE)
        try:
            killed_at = await kill_after_results(proc, server, 2.5)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    entries = parse_record(record)
    assert_at_most_the_last_second_lost(entries, server, killed_at)


async def test_a_record_that_fails_is_not_fatal_and_one_that_cannot_open_is_refused(
        tmp_path, server):
    config = write_config(tmp_path / "m.toml", server.base, count=1, interval="200ms")
    read_fd, write_fd = os.pipe()
    proc = await start(tmp_path, "run", "--headless", "--json", "--record", "/dev/full",
                       "-c", str(config), stdout=write_fd)
    os.close(write_fd)
    reader = PipeReader(read_fd)
    try:
        lines = await reader.lines(lambda got: len(got) >= 10, 15)   # probing goes on
    finally:
        code, err = await stop(proc)
        reader.close()
    assert len(lines) >= 10 and code == 0, err
    assert err.count("monitor: --record /dev/full: No space left on device; "
                     "recording stopped") == 1, err
    assert "Traceback" not in err

    code, _, err = await monitor("run", "--headless", "-c", str(config), "--record",
                                 str(tmp_path / "no" / "such" / "dir" / "r.jsonl"),
                                 cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2 and "r.jsonl: No such file or directory" in err, err


async def test_sighup_reloads_the_config_and_a_broken_edit_keeps_the_last_good_one(tmp_path, server):
    """`systemctl reload` sends SIGHUP: the service applies the difference, and a
    config that does not validate is reported (stderr and a JSON event) while
    the last good one keeps probing."""
    path = write_config(tmp_path / "m.toml", server.base, 2, "200ms")
    proc = await start(tmp_path, "run", "--headless", "--json", "-c", str(path),
                       stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    events: list[dict] = []

    async def read_until(predicate) -> dict:
        async with asyncio.timeout(15):
            while True:
                line = await proc.stdout.readline()
                assert line, "run --headless ended early"
                events.append(json.loads(line))
                if predicate(events[-1]):
                    return events[-1]

    try:
        await read_until(lambda e: e["event"] == "result" and e["name"] == "t1")
        write_config(path, server.base, 3, "200ms")   # t2 appended; t0 and t1 unchanged
        proc.send_signal(signal.SIGHUP)
        reload = await read_until(lambda e: e["event"] == "reload")
        assert (reload["added"], reload["removed"], reload["changed"]) == (["t2"], [], [])
        assert reload["source"] == "signal" and reload["summary"] == "+1 \u22120 ~0"
        await read_until(lambda e: e["event"] == "result" and e["name"] == "t2")

        path.write_text(path.read_text() + '\n[[targets]]\nname = "t3"\nkind = "http"\n')
        proc.send_signal(signal.SIGHUP)
        rejected = await read_until(lambda e: e["event"] == "config_error")
        assert rejected["problems"] and all(p.startswith(f"{path}:") for p in rejected["problems"])
        assert any("url" in p for p in rejected["problems"])
        after = len(events)
        await read_until(lambda e: e["event"] == "result" and e["name"] == "t2")
        assert not any(e.get("name") == "t3" for e in events[after:])
    finally:
        code, err = await stop(proc)
    assert code == 0
    assert "config not reloaded (1 problem); still running the last good one:" in err
    assert f"{path}:" in err


async def test_history_survives_a_restart_and_one_config_has_one_writer(tmp_path, server):
    """`run --headless` writes history: after a stop and a start, `monitor
    history` has the first run's results beside the second's; a second
    service on the same config is refused, naming the first."""
    path = write_config(tmp_path / "m.toml", server.base, 1, "100ms")
    env = clean_env(tmp_path)

    async def one_run(results: int) -> None:
        proc = await start(tmp_path, "run", "--headless", "--json", "-c", str(path),
                           stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        seen = 0
        try:
            async with asyncio.timeout(15):
                while seen < results:
                    line = await proc.stdout.readline()
                    assert line, "run --headless ended early"
                    seen += json.loads(line)["event"] == "result"
            if results == 3:   # while the first one runs, a second is refused
                code, out, err = await monitor("run", "--headless", "-c", str(path),
                                               cwd=tmp_path, env=env)
                assert code == 2, (out, err)
                assert f"pid {proc.pid}" in err and "Traceback" not in err
        finally:
            code, err = await stop(proc)
        assert code == 0, err

    await one_run(3)
    await one_run(2)
    code, out, err = await monitor("history", "t0", "--json", "-c", str(path),
                                   cwd=tmp_path, env=env)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    samples = [r for r in rows if "latency_ms" in r]
    # both runs' results, the first run's kept across the restart (their verdicts
    # are the loaded machine's: a 40 ms timeout may be missed)
    assert len(samples) >= 5, rows


async def test_a_saved_config_is_followed_without_a_signal(tmp_path, server):
    path = write_config(tmp_path / "m.toml", server.base, 1, "200ms")
    proc = await start(tmp_path, "run", "--headless", "--json", "-c", str(path),
                       stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            while json.loads(await proc.stdout.readline())["event"] != "result":
                pass
            write_config(path, server.base, 2, "200ms")
            while (event := json.loads(await proc.stdout.readline()))["event"] != "reload":
                pass
        assert event["source"] == "file" and event["added"] == ["t1"]
    finally:
        code, err = await stop(proc)
    assert code == 0, err
