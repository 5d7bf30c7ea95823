"""The engine in its own process, as the dashboard runs it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.engine.sinks import ConfigRejected, ConfigReloaded
from monitor.engine.client import (
    EngineDown, EngineStats, InProcessEngine, ProcessEngine, RestartPolicy)
from monitor.engine.result import ProbeResult
from monitor.engine.state import Transition
from monitor.engine.outbox import Outbox
from monitor.engine.wire import MAX_COMMAND, FrameReader, pack


class Listener:
    def __init__(self) -> None:
        self.results: list[ProbeResult] = []
        self.transitions: list[Transition] = []
        self.stats: list[EngineStats] = []
        self.errors: list[str] = []
        self.ups: list[int] = []
        self.downs: list[EngineDown] = []
        self.reloads: list[ConfigReloaded] = []
        self.rejected: list[ConfigRejected] = []

    def on_result(self, result: ProbeResult) -> None:
        self.results.append(result)

    def on_transition(self, transition: Transition) -> None:
        self.transitions.append(transition)

    def on_stats(self, stats: EngineStats) -> None:
        self.stats.append(stats)

    def on_error(self, message: str) -> None:
        self.errors.append(message)

    def on_engine_up(self, restarts: int) -> None:
        self.ups.append(restarts)

    def on_engine_down(self, down: EngineDown) -> None:
        self.downs.append(down)

    def on_reload(self, event: ConfigReloaded) -> None:
        self.reloads.append(event)

    def on_config_rejected(self, event: ConfigRejected) -> None:
        self.rejected.append(event)


async def wait_for(predicate, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.02)


def write(path: Path, server, paths: list[str], interval: str = "200ms") -> Path:
    text = f'[settings]\ninterval = "{interval}"\ntimeout = "150ms"\nfailure_threshold = 1\n'
    for name in paths:
        text += f'[[targets]]\nname = "{name}"\nkind = "http"\nurl = "{server.url(name)}"\n'
    path.write_text(text)
    return path


async def test_process_engine_streams_results_and_obeys_commands(tmp_path, control_server):
    control_server.behaviour["bad"].status = 500
    path = write(tmp_path / "m.toml", control_server, ["good", "bad"])
    got = Listener()
    engine = ProcessEngine(path, got)
    await engine.start()
    try:
        await wait_for(lambda: {t.name for t in got.transitions} == {"good", "bad"} and got.stats)
        good = next(r for r in got.results if r.name == "good")
        assert good.ok and good.latency_ms is not None and good.phases_ms
        assert {(t.name, str(t.to_state)) for t in got.transitions} == {("good", "up"), ("bad", "down")}
        assert got.stats[-1].probes_total >= 2

        engine.pause("good")
        await wait_for(lambda: str(got.transitions[-1].to_state) == "paused")
        engine.resume("good")
        await wait_for(lambda: str(got.transitions[-1].to_state) == "up")

        # the engine says which config it runs when it starts, and after each reload
        assert [r.source for r in got.reloads] == ["start"]
        assert 'name = "bad"' in got.reloads[0].config_text
        write(path, control_server, ["good", "new"])
        engine.reload()
        await wait_for(lambda: any(r.name == "new" for r in got.results))
        reload = got.reloads[-1]
        assert (reload.added, reload.removed, reload.changed) == (("new",), ("bad",), ())
        assert reload.source == "command" and 'name = "new"' in reload.config_text
        path.write_text("[settings]\ninterval = 'soon'\n")
        engine.reload()   # a broken file: the last good config runs on, the problems are told
        await wait_for(lambda: got.rejected)
        problem, = got.rejected[0].problems
        assert problem.startswith(f"{path}:2: settings.interval:")
        seen = len(got.results)
        await wait_for(lambda: len(got.results) > seen + 2)   # still probing
    finally:
        await engine.stop()
    assert engine._proc is not None and engine._proc.returncode == 0


async def test_worker_exits_when_the_ui_goes_away(tmp_path, control_server):
    path = write(tmp_path / "m.toml", control_server, ["good"], interval="1s")
    got = Listener()
    engine = ProcessEngine(path, got)
    await engine.start()
    await wait_for(lambda: got.results)
    proc = engine._proc
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()   # what a dead UI (or a dropped SSH session) looks like
    assert await asyncio.wait_for(proc.wait(), 5) == 0
    await engine.stop()


async def test_a_killed_worker_is_reported_and_restarted(tmp_path, control_server):
    path = write(tmp_path / "m.toml", control_server, ["good"])
    got = Listener()
    engine = ProcessEngine(path, got)
    await engine.start()
    try:
        await wait_for(lambda: got.results and got.ups == [0])
        first = engine._proc
        assert first is not None
        first.kill()
        await wait_for(lambda: got.downs)
        down = got.downs[0]
        assert down.reason.startswith("engine process killed by SIGKILL")
        assert down.tries == 0 and down.retry_in == 0.5
        await wait_for(lambda: got.ups == [0, 1])
        assert engine._proc is not first
        seen = len(got.results)
        await wait_for(lambda: len(got.results) > seen)        # measuring again
        assert len(got.downs) == 1
    finally:
        await engine.stop()
    assert len(got.downs) == 1                                   # a requested stop is no death


async def test_pauses_are_sent_again_to_a_restarted_worker(tmp_path, control_server):
    path = write(tmp_path / "m.toml", control_server, ["good", "other"])
    got = Listener()
    engine = ProcessEngine(path, got)
    await engine.start()
    try:
        await wait_for(lambda: {r.name for r in got.results} == {"good", "other"})
        engine.pause("good")
        await wait_for(lambda: any(t.name == "good" and str(t.to_state) == "paused"
                                   for t in got.transitions))
        engine._proc.kill()
        await wait_for(lambda: got.ups == [0, 1])
        restarted_at = len(got.results)
        await wait_for(lambda: sum(r.name == "other" for r in got.results[restarted_at:]) >= 3)
        assert not any(r.name == "good" for r in got.results[restarted_at:])
    finally:
        await engine.stop()


def test_restarts_back_off_then_give_up_within_the_window():
    policy, failures = RestartPolicy(first_delay=0.5, max_delay=3.0, max_failures=5,
                                     window=60.0), deque()
    assert [policy.delay(failures, t) for t in (0, 1, 2, 3)] == [0.5, 1.0, 2.0, 3.0]
    assert policy.delay(failures, 4) is None                 # 5 within 60 s
    failures.clear()
    assert [policy.delay(failures, t) for t in (0, 50, 100, 150, 200, 250)] == [
        0.5, 1.0, 1.0, 1.0, 1.0, 1.0]                        # old failures are forgiven


async def test_a_worker_that_cannot_start_is_given_up_on(tmp_path, control_server):
    path = write(tmp_path / "m.toml", control_server, ["good"])
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'Traceback: ModuleNotFoundError: no monitor' >&2\nexit 3\n")
    broken.chmod(0o755)
    got = Listener()
    policy = RestartPolicy(first_delay=0.05, max_delay=0.1, max_failures=3)
    engine = ProcessEngine(path, got, python=str(broken), restart=policy)
    await engine.start()
    try:
        await wait_for(lambda: got.downs and got.downs[-1].retry_in is None)
        assert [(d.tries, d.retry_in) for d in got.downs] == [(0, 0.05), (1, 0.1), (2, None)]
        assert all("exited with status 3: Traceback: ModuleNotFoundError: no monitor" in d.reason
                   for d in got.downs)
        assert "gave up: 3 failures within 60s" in got.downs[-1].reason
        assert got.ups == [] and engine._proc.returncode == 3
        await asyncio.sleep(0.3)
        assert len(got.downs) == 3                               # no more tries
    finally:
        await engine.stop()
    missing = Listener()
    engine = ProcessEngine(path, missing, python=str(tmp_path / "no-such-python"),
                           restart=RestartPolicy(max_failures=1))
    await engine.start()                                         # reported, not raised
    await wait_for(lambda: missing.downs)
    assert "could not start" in missing.downs[0].reason and "no-such-python" in missing.downs[0].reason
    await engine.stop()


async def test_a_failing_listener_ends_in_a_reported_death_not_a_silent_freeze(
        tmp_path, control_server):
    class Failing(Listener):
        def on_result(self, result: ProbeResult) -> None:
            raise RuntimeError("listener bug")

    path = write(tmp_path / "m.toml", control_server, ["good"])
    got = Failing()
    engine = ProcessEngine(path, got)
    await engine.start()
    try:
        await wait_for(lambda: got.downs)
        assert got.downs == [EngineDown("engine supervision failed: RuntimeError: listener bug",
                                        0, None)]
        await asyncio.wait_for(engine._proc.wait(), 5)        # and no engine left probing
    finally:
        await engine.stop()


async def test_in_process_engine_has_the_same_api(tmp_path, control_server):
    path = write(tmp_path / "m.toml", control_server, ["good"])
    got = Listener()
    engine = InProcessEngine(load_config(path), got, stats_every=0.1)
    await engine.start()
    try:
        await wait_for(lambda: got.results and got.stats)
        assert got.ups == [0]
        engine.probe_now("good")
        engine.pause("good")
        await wait_for(lambda: str(got.transitions[-1].to_state) == "paused")
    finally:
        await engine.stop()


async def test_outbox_drops_results_not_probes_when_the_ui_stops_reading():
    """A UI that stops reading fills the pipe; the engine must go on, dropping
    (and counting) results above the limit but still sending state changes."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    outbox = Outbox(pack, limit=16 * 1024)
    transport, _ = await loop.connect_write_pipe(lambda: outbox, os.fdopen(write_fd, "wb"))
    try:
        for i in range(2000):                 # ~200 KB: far more than the pipe holds
            outbox.emit(("result", f"t{i}", f"{i:x>80}"), droppable=True)
            if i % 50 == 0:
                outbox.flush()                # never blocks, whatever the reader does
        outbox.emit(("transition", "t1"))
        outbox.flush()
        assert outbox.dropped > 0
        assert transport.get_write_buffer_size() < 16 * 1024 + 64 * 1024
        with os.fdopen(read_fd, "rb", buffering=0) as reader:
            os.set_blocking(read_fd, False)
            data = b""
            for _ in range(500):              # bounded: drain what was sent
                try:
                    chunk = reader.read(1 << 16)
                except BlockingIOError:
                    chunk = None
                if chunk:
                    data += chunk
                elif not transport.get_write_buffer_size():
                    break
                await asyncio.sleep(0.005)
    finally:
        transport.close()
    messages = FrameReader().feed(data)   # every frame whole
    assert len(messages) == 2000 - outbox.dropped + 1
    assert messages[-1] == ("transition", "t1")


async def test_worker_writes_to_a_file_or_dev_null_too(tmp_path, control_server):
    """stdout that is not a pipe (uvloop aborted on a file or /dev/null as
    one): the same frames, written plainly."""
    path = write(tmp_path / "m.toml", control_server, ["good"], interval="1s")
    out = tmp_path / "out.jsonl"
    for target in (out, Path(os.devnull)):
        with open(target, "wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "monitor", "engine-worker", "--config", str(path),
                stdin=subprocess.PIPE, stdout=sink, stderr=subprocess.PIPE)
            try:
                if target == out:
                    await wait_for(lambda: any(m[0] == "result"
                                               for m in FrameReader().feed(out.read_bytes())))
                else:
                    await asyncio.sleep(1.5)   # a result or two went to /dev/null
            finally:
                assert proc.stdin is not None
                proc.stdin.close()
                code = await asyncio.wait_for(proc.wait(), 5)
            assert code == 0, (target, (await proc.stderr.read())[-500:])
    kinds = {m[0] for m in FrameReader().feed(out.read_bytes())}
    assert "result" in kinds


async def test_output_that_is_not_frames_is_reported_not_fatal(tmp_path, control_server):
    """Something other than the engine on the pipe (a wrapper that prints a
    banner, say) must surface as a clear error in the UI, not a traceback."""
    path = write(tmp_path / "m.toml", control_server, ["good"], interval="1s")
    impostor = tmp_path / "python"
    impostor.write_text("#!/bin/sh\necho 'Welcome to the engine'\nexec head -n 1 >/dev/null\n")
    impostor.chmod(0o755)
    got = Listener()
    engine = ProcessEngine(path, got, python=str(impostor))
    await engine.start()
    try:
        await wait_for(lambda: got.downs)
        assert got.downs[0].reason.startswith("engine output unreadable")
        assert "Welcome to the engine" in got.downs[0].reason
        assert got.downs[0].retry_in is not None                 # and it is tried again
    finally:
        await engine.stop()


async def test_a_100_kib_target_name_can_be_paused(tmp_path, control_server):
    """asyncio's readline gives up on lines over 64 KiB: the worker's command
    reader once died on such a pause, which was then silently ignored."""
    long_name = "n" * (100 * 1024)
    path = tmp_path / "m.toml"
    path.write_text(f'[settings]\ninterval = "200ms"\ntimeout = "150ms"\n'
                    f'[[targets]]\nname = "{long_name}"\nkind = "http"\n'
                    f'url = "{control_server.url("long")}"\n'
                    f'[[targets]]\nname = "short"\nkind = "http"\n'
                    f'url = "{control_server.url("short")}"\n')
    got = Listener()
    engine = ProcessEngine(path, got)
    await engine.start()
    try:
        await wait_for(lambda: {r.name for r in got.results} == {long_name, "short"})
        engine.pause(long_name)
        await wait_for(lambda: any(t.name == long_name and str(t.to_state) == "paused"
                                   for t in got.transitions))
        paused_at = len(got.results)
        await wait_for(lambda: sum(r.name == "short" for r in got.results[paused_at:]) >= 3)
        assert not any(r.name == long_name for r in got.results[paused_at:])
        engine.probe_now("no such target")
        await wait_for(lambda: got.errors)
        assert got.errors == ["probe_now: no target named 'no such target'"]
    finally:
        await engine.stop()
    assert engine._proc.returncode == 0


async def test_a_command_over_the_limit_is_refused_and_the_next_one_obeyed(tmp_path,
                                                                          control_server):
    path = write(tmp_path / "m.toml", control_server, ["good"])
    got = Listener()
    engine = ProcessEngine(path, got)
    await engine.start()
    try:
        await wait_for(lambda: got.results)
        engine.pause("x" * MAX_COMMAND)                          # refused before sending
        assert got.errors and "over the" in got.errors[0] and "not sent" in got.errors[0]
        engine._proc.stdin.write(b'{"cmd": "pause", "name": "' + b"y" * MAX_COMMAND + b'"}\n')
        engine.pause("good")
        await wait_for(lambda: len(got.errors) == 2 and got.transitions
                       and str(got.transitions[-1].to_state) == "paused")
        assert f"skipped: over the {MAX_COMMAND} byte limit" in got.errors[1]
        assert got.downs == []
    finally:
        await engine.stop()


def worker_exited(pid: int) -> bool:
    """Gone, or a zombie waiting for a reaper that is not us."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


async def poll_exit(pid: int, seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if worker_exited(pid):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_a_worker_whose_commands_cannot_be_read_stops(tmp_path, control_server):
    """stdin that is a regular file cannot be read as a pipe: the command
    reader fails at once. The engine must stop with the reason, not probe on
    with no one able to stop it."""
    path = write(tmp_path / "m.toml", control_server, ["good"], interval="1s")
    commands = tmp_path / "commands"
    commands.write_bytes(b'{"cmd": "probe_now", "name": "good"}\n')
    with open(commands, "rb") as stdin:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "engine-worker", "--config", str(path),
            stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        code = await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 1
    assert b"stopped: reading commands failed" in await proc.stderr.read()


# The worker's parent: starts it with the given stdin, says its pid, then
# (when asked) writes a 100 KiB command line, and waits to be killed.
PARENT = """
import subprocess, sys, time
stdin = int(sys.argv[2]) if sys.argv[2] != "pipe" else subprocess.PIPE
worker = subprocess.Popen([sys.executable, "-m", "monitor", "engine-worker", "--config",
                           sys.argv[1]], stdin=stdin, stdout=open(sys.argv[3], "wb"),
                          pass_fds=[stdin] if stdin != subprocess.PIPE else [])
print(worker.pid, flush=True)
if worker.stdin is not None:
    worker.stdin.write(b'{"cmd": "pause", "name": "' + b"z" * 100 * 1024 + b'"}\\n')
    worker.stdin.flush()
time.sleep(60)
"""


@pytest.mark.parametrize("stdin", ["held-open-elsewhere", "after-a-100-kib-command"])
async def test_the_worker_exits_when_its_parent_is_killed(tmp_path, control_server, stdin):
    """Whatever else failed: its stdin still open in another process (no EOF
    to see), or its command reader once killed by an over-long line."""
    path = write(tmp_path / "m.toml", control_server, ["good"])
    frames = tmp_path / "frames"
    read_end, write_end = os.pipe()
    held = stdin == "held-open-elsewhere"
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PARENT, str(path), str(read_end) if held else "pipe", str(frames),
        stdout=subprocess.PIPE, pass_fds=[read_end])
    os.close(read_end)
    try:
        worker = int(await asyncio.wait_for(parent.stdout.readline(), 10))
        await wait_for(lambda: frames.exists()
                       and any(m[0] == "result" for m in FrameReader().feed(frames.read_bytes())))
        parent.kill()
        await parent.wait()
        assert await poll_exit(worker), "the worker outlived its parent"
    finally:
        os.close(write_end)
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        if "worker" in locals() and not worker_exited(worker):
            os.kill(worker, 9)
