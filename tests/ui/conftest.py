"""UI tests: a fixed clock, a fake engine, UTC, and a private config dir."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from monitor.config import parse_config
from monitor.engine.state import State
from monitor.ui.app import MonitorApp
from tests.ui.fake_engine import NOW, FakeEngine

CONFIG = """\
[settings]
interval = "10s"

[[targets]]
name = "api"
kind = "http"
url = "https://api.example.test/health"
group = "production"
tags = ["public"]

[[targets]]
name = "checkout"
kind = "http"
url = "https://shop.example.test/checkout"
group = "production"
max_latency = "250ms"

[[targets]]
name = "db-primary"
kind = "tcp"
host = "10.0.0.5"
port = 5432
group = "database"

[[targets]]
name = "resolver"
kind = "dns"
query_name = "example.test"
server = "127.0.0.1"
group = "infra"

[[targets]]
name = "gateway"
kind = "icmp"
host = "127.0.0.1"
group = "infra"
tags = ["network"]

[[targets]]
name = "legacy-ftp"
kind = "tcp"
host = "127.0.0.1"
port = 21
paused = true
"""


@pytest.fixture(autouse=True)
def private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG)
    return path


def make_app(config_file: Path, text: str | None = None) -> MonitorApp:
    if text is not None:
        config_file.write_text(text)
    config = parse_config(config_file.read_text(), config_file)
    return MonitorApp(config, FakeEngine, clock=lambda: NOW, watch_terminal=False)


def populate(app: MonitorApp) -> FakeEngine:
    """A realistic board: some up, one slow, one down, one paused."""
    engine: FakeEngine = app.engine  # type: ignore[assignment]
    for name, latency in (("api", 42.0), ("resolver", 3.2), ("gateway", 0.05)):
        for i in range(12):
            engine.result(name, latency=latency * (1 + (i % 4) / 10), age=2.0 + i)
        engine.move(name, State.UP)
    for i in range(12):
        engine.result("checkout", "degraded", latency=300 + i * 10,
                      reason=f"slow: {300 + i * 10}ms > max 250ms", age=1.0 + i)
    engine.move("checkout", State.DEGRADED,
                "slow: 410ms > max 250ms", minutes=3)
    for i in range(6):
        engine.result("db-primary", latency=0.9, age=30.0 + i)
    for i in range(4):
        engine.result("db-primary", "down", reason="connection refused", kind="tcp",
                      target="10.0.0.5:5432", age=1.0 + i)
    engine.move("db-primary", State.DOWN,
                "connection refused", minutes=5)
    engine.stats()
    return engine


async def footer_drawn(pilot) -> None:
    """The footer fills in its keys a few messages after a screen is pushed:
    wait for them (bounded), or a snapshot may catch an empty footer."""
    if not pilot.app.screen.query(Footer):
        await pilot.pause()
        return
    for _ in range(250):
        await pilot.pause(0.02)
        keys = pilot.app.screen.query(FooterKey)
        if keys and all(key.region.width for key in keys):
            await pilot.pause()   # laid out; one more for the paint
            return
    raise AssertionError("the footer never showed its keys")


async def screen_ready(pilot, kind: type) -> None:
    """Wait (bounded) until a pushed screen of `kind` is active and drawn."""
    for _ in range(100):
        if isinstance(pilot.app.screen, kind):
            break
        await pilot.pause(0.02)
    else:
        raise AssertionError(f"{kind.__name__} never became the active screen")
    await footer_drawn(pilot)
