"""sd_notify: a real service tells a test datagram socket (as NOTIFY_SOCKET)
that it is ready, reloading, ready again, and stopping."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path

from monitor.service.notify import Notifier
from tests.service.conftest import service_env, write_config


def notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    return sock


async def messages_until(sock: socket.socket, wanted: str, seconds: float = 20) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except BlockingIOError:
            await asyncio.sleep(0.02)
            continue
        if wanted in got[-1]:
            return got
    raise AssertionError(f"never got {wanted!r}; got {got}")


async def test_ready_reloading_status_stopping(tmp_path, runtime_dir, control_server, services):
    sock = notify_socket(runtime_dir / "notify")
    config = write_config(tmp_path / "m.toml", [("a", control_server.url("a"))])
    env = service_env(tmp_path, runtime_dir, NOTIFY_SOCKET=str(runtime_dir / "notify"))
    service = await services(config, env)
    try:
        got = await messages_until(sock, "READY=1")
        ready = got[-1].split("\n")
        assert f"MAINPID={service.proc.pid}" in ready
        assert any(line.startswith("STATUS=probing 1 targets") for line in ready)
        assert service.socket.exists(), "ready means listening"
        status = await messages_until(sock, "1 up")   # a STATUS= update as states settle
        assert status[-1].startswith("STATUS=probing 1 targets: 1 up; 0 dashboards attached")
        service.proc.send_signal(signal.SIGHUP)
        got = await messages_until(sock, "RELOADING=1")
        fields = dict(line.split("=", 1) for line in got[-1].split("\n"))
        assert int(fields["MONOTONIC_USEC"]) > 0
        await messages_until(sock, "READY=1")      # the reload is done
        assert await service.stop() == 0
        got = await messages_until(sock, "STOPPING=1")
    finally:
        sock.close()


def test_no_notify_socket_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled and not notifier.send("READY=1")


def test_abstract_address_and_a_dead_socket(tmp_path):
    assert Notifier("@sd-test").address == "\0sd-test"
    assert Notifier("vsock:2:1").address is None
    # nobody listens there: the service is not stopped by systemd's absence
    assert Notifier(str(tmp_path / "gone")).send("READY=1") is False
