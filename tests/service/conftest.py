"""A real service process (`monitor serve`) on loopback targets, and viewers
that record what they are told."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from monitor.engine.client import EngineDown
from monitor.service.paths import socket_name
from monitor.service.snapshot import BoardSnapshot
from tests.engine.conftest import ControlServer, control_server  # noqa: F401  (a fixture)


def hits(server: ControlServer) -> int:
    """Requests the loopback server has answered, all paths."""
    return sum(map(len, server.arrivals.values()))


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A short $XDG_RUNTIME_DIR (socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="msvc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_config(path: Path, urls: list[tuple[str, str]], interval: str = "200ms",
                 extra: str = "", timeout: str = "190ms") -> Path:
    text = (f'[settings]\ninterval = "{interval}"\ntimeout = "{timeout}"\n'
            f'failure_threshold = 1\n{extra}')
    for name, url in urls:
        text += f'\n[[targets]]\nname = "{name}"\nkind = "http"\nurl = "{url}"\n'
    path.write_text(text)
    return path


def service_env(tmp_path: Path, runtime_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MONITOR_CONFIG", "NOTIFY_SOCKET", "RUNTIME_DIRECTORY", "STATE_DIRECTORY")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"),
               XDG_RUNTIME_DIR=str(runtime_dir), NO_COLOR="1")
    env.update(extra)
    return env


@dataclass
class Service:
    proc: asyncio.subprocess.Process
    config: Path
    socket: Path
    stderr: list[str] = field(default_factory=list)

    async def wait_listening(self, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any("listening for dashboards" in line for line in self.stderr):
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"the service never listened; stderr: {self.stderr}")

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), 15)


async def start_service(config: Path, env: dict[str, str], *args: str) -> Service:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "serve", "--config", str(config), *args,
        cwd=config.parent, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    service = Service(proc, config, Path(env["XDG_RUNTIME_DIR"]) / "monitor"
                      / socket_name(config))

    async def read_stderr() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            service.stderr.append(line.decode(errors="replace").rstrip())

    asyncio.get_running_loop().create_task(read_stderr())
    return service


@pytest.fixture
async def services() -> Any:
    """Start services with `services(config, env)`; all are stopped after the test."""
    started: list[Service] = []

    async def start(config: Path, env: dict[str, str], *args: str) -> Service:
        service = await start_service(config, env, *args)
        started.append(service)
        return service

    yield start
    for service in started:
        if service.proc.returncode is None:
            service.proc.kill()
            await service.proc.wait()


class Recorder:
    """A viewer's listener that keeps everything it is told."""

    def __init__(self) -> None:
        self.results: list[Any] = []
        self.transitions: list[Any] = []
        self.stats: list[Any] = []
        self.errors: list[str] = []
        self.ups: list[int] = []
        self.downs: list[EngineDown] = []
        self.reloads: list[Any] = []
        self.rejected: list[Any] = []
        self.snapshots: list[BoardSnapshot] = []
        self.order: list[str] = []

    def on_result(self, result: Any) -> None:
        self.results.append(result)
        self.order.append("result")

    def on_transition(self, transition: Any) -> None:
        self.transitions.append(transition)
        self.order.append("transition")

    def on_stats(self, stats: Any) -> None:
        self.stats.append(stats)

    def on_error(self, message: str) -> None:
        self.errors.append(message)

    def on_engine_up(self, restarts: int) -> None:
        self.ups.append(restarts)
        self.order.append("up")

    def on_engine_down(self, down: EngineDown) -> None:
        self.downs.append(down)
        self.order.append("down")

    def on_reload(self, event: Any) -> None:
        self.reloads.append(event)
        self.order.append("reload")

    def on_config_rejected(self, event: Any) -> None:
        self.rejected.append(event)

    def on_snapshot(self, snapshot: BoardSnapshot) -> None:
        self.snapshots.append(snapshot)
        self.order.append("snapshot")


async def until(predicate: Callable[[], bool], seconds: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")
