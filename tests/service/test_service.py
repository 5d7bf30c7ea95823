"""A real `monitor serve` process and real viewers over its Unix socket."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
import time
from pathlib import Path

import pytest

from monitor.engine.state import State
from monitor.engine.wire import FrameReader
from monitor.service.viewer import SocketEngine
from tests.service.conftest import Recorder, hits, service_env, until, write_config

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def attach(service, recorder: Recorder) -> SocketEngine:
    engine = SocketEngine(service.socket, recorder)
    await engine.start()
    return engine


async def test_snapshot_then_stream(tmp_path, runtime_dir, control_server, services):
    control_server.behaviour["bad"].status = 503
    config = write_config(tmp_path / "m.toml", [("good", control_server.url("good")),
                                                ("bad", control_server.url("bad"))])
    service = await services(config, service_env(tmp_path, runtime_dir))
    await service.wait_listening()
    assert stat.S_IMODE(service.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(service.socket.parent.stat().st_mode) == 0o700
    await asyncio.sleep(1.0)   # the service builds some history before anyone looks
    viewer = Recorder()
    engine = await attach(service, viewer)
    try:
        await until(lambda: viewer.snapshots and len(viewer.results) >= 4, what="stream")
        # the config, then the board, then the news
        assert viewer.order[:3] == ["up", "reload", "snapshot"]
        assert viewer.reloads[0].source == "attach"
        snapshot = viewer.snapshots[0]
        assert snapshot.service.pid == service.proc.pid
        assert "good" in snapshot.config_text
        assert list(snapshot.views) == ["good", "bad"]
        good, bad = snapshot.views["good"], snapshot.views["bad"]
        assert good.state is State.UP and bad.state is State.DOWN
        assert len(good.stats.status) >= 3, "history from the first frame"
        assert bad.last_failure is not None and "503" in bad.last_failure.reason
        assert [t.to_state for t in bad.events][-1] is State.DOWN
        newest = max(good.last.started, bad.last.started)
        assert all(r.started > newest for r in viewer.results), "the stream is news only"
        await until(lambda: viewer.stats, what="stats")
    finally:
        await engine.stop()
    await asyncio.sleep(0.3)
    assert service.proc.returncode is None, "a viewer leaving ends nothing"


async def test_two_viewers_see_the_same_and_commands_run_in_the_service(
        tmp_path, runtime_dir, control_server, services):
    config = write_config(tmp_path / "m.toml", [("a", control_server.url("a")),
                                                ("b", control_server.url("b"))])
    service = await services(config, service_env(tmp_path, runtime_dir))
    await service.wait_listening()
    first, second = Recorder(), Recorder()
    engines = [await attach(service, first), await attach(service, second)]
    try:
        await until(lambda: first.snapshots and second.snapshots, what="both attached")
        engines[0].pause("a")
        for viewer in (first, second):
            await until(lambda v=viewer: any(t.name == "a" and t.to_state is State.PAUSED
                                             for t in v.transitions), what="pause seen")
        assert any("pause a (asked by a dashboard" in line for line in service.stderr)
        engines[1].resume("a")
        for viewer in (first, second):
            await until(lambda v=viewer: any(t.name == "a" and t.from_state is State.PAUSED
                                             for t in v.transitions), what="resume seen")
        engines[1].pause("no-such-target")
        await until(lambda: second.errors, what="error for the asker")
        assert "no target named 'no-such-target'" in second.errors[0]
        assert not first.errors, "an error goes to the viewer that asked"
        engines[0]._send({"cmd": "stop"})   # a viewer's stop ends its session only
        await until(lambda: first.downs, what="session ended")
        count = len(second.results)
        await until(lambda: len(second.results) > count + 3, what="service still probing")
    finally:
        for engine in engines:
            await engine.stop()


async def test_a_frozen_viewer_stalls_nothing(tmp_path, runtime_dir, control_server, services):
    # big results (long URLs) fill a frozen viewer's socket in seconds
    pad = "x" * 7000
    targets = [(f"t{i}", control_server.url(f"t{i}?pad={pad}")) for i in range(20)]
    config = write_config(tmp_path / "m.toml", targets, interval="100ms", timeout="90ms")
    service = await services(config, service_env(tmp_path, runtime_dir))
    await service.wait_listening()
    frozen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    frozen.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    frozen.connect(str(service.socket))   # and never reads
    live = Recorder()
    engine = await attach(service, live)
    try:
        await until(lambda: live.snapshots, what="live viewer attached")
        served, results, began = hits(control_server), len(live.results), time.monotonic()
        await until(lambda: live.stats and live.stats[-1].probes_total > 0, what="stats")
        await asyncio.sleep(8.0)
        elapsed = time.monotonic() - began
        expected = 20 * elapsed / 0.1
        # probing went on (the server's own count; a stall would stop it dead
        # once the frozen socket filled, a busy shared machine only slows it)
        # and the live viewer got every result, while the frozen one fell behind
        assert hits(control_server) - served >= 0.6 * expected
        assert len(live.results) - results >= 0.95 * (hits(control_server) - served) - 40
        assert live.stats[-1].dropped == 0
        # the frozen viewer now reads: its stream says what it missed with a fresh board
        frozen.setblocking(False)
        frames, kinds, header = FrameReader(), [], None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and header is None:
            try:
                chunk = frozen.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                continue
            assert chunk, "the service closed a slow viewer instead of catching it up"
            for message in frames.feed(chunk):
                kinds.append(message[0])
                if message[0] == "snapshot" and message[9] > 0:
                    header = message
        assert header is not None, f"no fresh snapshot after the gap; saw {set(kinds)}"
        assert kinds[0] == "snapshot", "its first frame was a snapshot"
        assert header[9] > 0, "the dropped results are counted"
    finally:
        frozen.close()
        await engine.stop()


async def test_service_restart_with_viewers_attached(tmp_path, runtime_dir, control_server,
                                                     services):
    config = write_config(tmp_path / "m.toml", [("a", control_server.url("a"))])
    env = service_env(tmp_path, runtime_dir)
    first = await services(config, env)
    await first.wait_listening()
    viewers = [Recorder(), Recorder()]
    engines = [await attach(first, v) for v in viewers]
    try:
        for viewer in viewers:
            await until(lambda v=viewer: v.snapshots, what="attached")
        assert await first.stop() == 0
        for viewer in viewers:
            await until(lambda v=viewer: v.downs, what="down reported")
            assert "service" in viewer.downs[0].reason and viewer.downs[0].retry_in is not None
        second = await services(config, env)
        await second.wait_listening()
        for viewer in viewers:
            await until(lambda v=viewer: len(v.snapshots) == 2, what="fresh snapshot")
            assert viewer.snapshots[1].service.pid == second.proc.pid != first.proc.pid
            assert viewer.ups == [0, 1]
            # down, then up and a fresh board: never the old one as live
            tail = viewer.order[viewer.order.index("down"):]
            assert tail.index("up") < tail.index("snapshot")
    finally:
        for engine in engines:
            await engine.stop()


async def test_a_second_service_for_the_same_config_is_refused(tmp_path, runtime_dir,
                                                               control_server, services):
    config = write_config(tmp_path / "m.toml", [("a", control_server.url("a"))])
    env = service_env(tmp_path, runtime_dir)
    first = await services(config, env)
    await first.wait_listening()
    second = await services(config, env)
    assert await asyncio.wait_for(second.proc.wait(), 15) == 2
    await until(lambda: second.stderr, what="its message")
    assert f"already running (pid {first.proc.pid}" in " ".join(second.stderr)
    standalone = await services(config, env, "--json")
    # `run --headless --standalone` probes beside it without a socket
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--headless", "--standalone", "--config",
        str(config), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert b"PENDING -> UP" in line
    finally:
        proc.terminate()
        await proc.wait()
    assert await asyncio.wait_for(standalone.proc.wait(), 15) == 2


async def monitor_cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


async def test_status_exit_codes(tmp_path, runtime_dir, control_server, services):
    import json
    env = service_env(tmp_path, runtime_dir, SECRET_TOKEN="hunter2-secret")
    config = write_config(tmp_path / "m.toml", [("a", control_server.url("a?t=${SECRET_TOKEN}"))])
    code, out, err = await monitor_cli("status", "--config", str(config), env=env, cwd=tmp_path)
    assert (code, out) == (3, "") and "no monitor service is running" in err
    service = await services(config, env)
    await service.wait_listening()
    await asyncio.sleep(1.0)
    served, began = hits(control_server), time.monotonic()
    viewer_env = {k: v for k, v in env.items() if k != "SECRET_TOKEN"}   # not the service's secrets
    code, out, err = await monitor_cli("status", "--json", "--config", str(config),
                                       env=viewer_env, cwd=tmp_path)
    assert code == 0, err
    record = json.loads(out)
    assert record["state"] == "up" and record["status"] == "up" and record["name"] == "a"
    assert record["uptime_pct"] == 100.0 and record["since"].endswith("Z")
    assert "hunter2" not in out and "${SECRET_TOKEN}" in record["target"]
    code, out, _ = await monitor_cli("status", "--config", str(config), env=viewer_env,
                                     cwd=tmp_path)
    assert code == 0 and "UP" in out and f"service pid {service.proc.pid}" in out
    # the service's own schedule (one target, every 200 ms) accounts for every request
    assert hits(control_server) - served <= (time.monotonic() - began) / 0.2 + 2, \
        "status probes nothing itself"
    control_server.behaviour["a"].status = 500
    await asyncio.sleep(1.0)
    code, out, _ = await monitor_cli("status", "--config", str(config), env=viewer_env,
                                     cwd=tmp_path)
    assert code == 1 and "DOWN" in out
    await service.stop()
    code, _, err = await monitor_cli("status", "--config", str(config), env=env, cwd=tmp_path)
    assert code == 3 and "no monitor service" in err


def _connect_as(user: int, path: Path) -> str:
    """A forked child, as `user`, connects to `path` and says what it got.
    (Forked, not a new interpreter: ours may lie where `user` may not go.)"""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:   # the child: plain system calls only, then out
        said = b"?"
        try:
            os.setgroups([])
            os.setgid(user)
            os.setuid(user)
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(10)
            try:
                sock.connect(str(path))
            except OSError as exc:
                said = f"connect failed: {exc.strerror}".encode()
            else:
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                said = b"got %d %s %s" % (len(data), b"refused" if b"refused" in data else b"",
                                          b"snapshot" if b"snapshot" in data else b"")
        finally:
            os.write(write_end, said)
            os._exit(0)
    os.close(write_end)
    try:
        os.waitpid(pid, 0)
        return os.read(read_end, 4096).decode()
    finally:
        os.close(read_end)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a child as another uid")
async def test_another_uid_is_refused(tmp_path, runtime_dir, control_server, services):
    nobody = 65534
    config = write_config(tmp_path / "m.toml", [("a", control_server.url("a"))])
    service = await services(config, service_env(tmp_path, runtime_dir))
    await service.wait_listening()
    # the file's mode keeps another user out...
    os.chmod(runtime_dir, 0o755)
    got = await asyncio.to_thread(_connect_as, nobody, service.socket)
    assert "connect failed: Permission denied" in got
    # ...and should it be loosened by mistake, the kernel's word on the peer still does
    os.chmod(service.socket.parent, 0o755)
    os.chmod(service.socket, 0o666)
    got = await asyncio.to_thread(_connect_as, nobody, service.socket)
    assert "refused" in got and "snapshot" not in got
    await until(lambda: any("refused: only uid 0 and root" in line for line in service.stderr),
                what="the refusal logged")
    assert service.proc.returncode is None
