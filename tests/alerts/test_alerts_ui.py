"""Alerts on the dashboard and in the headless log: a real engine worker
delivering to a loopback webhook receiver (one path answering 500) and a
bell channel under Pilot; `run --headless` writing alert events; rows marked
by a maintenance window covering now and by a DOWN parent."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.widgets._toast import Toast   # the drawn toasts (pinned Textual)

from monitor.alerts.message import Alert
from monitor.alerts.sink import Delivery
from monitor.config import parse_config
from monitor.engine.client import ProcessEngine, message_handlers
from monitor.engine.state import State
from monitor.engine.wire import FrameReader, alert_message, pack
from monitor.ui.app import MonitorApp
from monitor.ui.screens.detail import DetailScreen
from monitor.ui.widgets.event_log import EventLog
from tests.alerts.conftest import Receiver
from tests.alerts.test_sink import closed_port
from tests.ui.fake_engine import NOW, FakeEngine
from tests.ui.test_engine_faults import until


def log_text(app: MonitorApp) -> str:
    return "\n".join(line.plain for line in app.query_one("#event-log", EventLog).lines)


def toasts(app: MonitorApp) -> list[tuple[str, str]]:
    """(title, message) of the toasts shown (Textual has no public accessor; it is pinned)."""
    return [(n.title, str(n.message)) for n in app._notifications]


def dead_target_config(path: Path, port: int, receiver: Receiver) -> Path:
    path.write_text(textwrap.dedent(f"""\
        [settings]
        interval = "200ms"
        timeout = "150ms"
        alerts = ["desk", "ops", "broken"]

        [[targets]]
        name = "dead"
        kind = "tcp"
        host = "127.0.0.1"
        port = {port}
        failure_threshold = 1

        [[alerts]]
        name = "desk"
        kind = "bell"

        [[alerts]]
        name = "ops"
        kind = "webhook"
        url = "{receiver.url('ops')}"

        [[alerts]]
        name = "broken"
        kind = "webhook"
        url = "{receiver.url('broken')}"
        retries = 0
        """))
    return path


async def test_deliveries_reach_the_dashboard_as_alerts_not_engine_errors(
        tmp_path: Path, receiver: Receiver):
    receiver.status["broken"] = 500
    port = closed_port()
    path = dead_target_config(tmp_path / "monitor.toml", port, receiver)
    config = parse_config(path.read_text(), path)
    app = MonitorApp(config, lambda listener: ProcessEngine(path, listener), refresh=0.1,
                     watch_terminal=False)
    rings: list[int] = []
    app.bell = lambda: rings.append(1)   # type: ignore[method-assign]  # counted, not rung
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: "alert ops (webhook) sent: DOWN dead" in log_text(app)
                    and "alert broken (webhook) failed" in log_text(app) and rings)
        await receiver.wait("ops", 1)
        log = log_text(app)
        assert f"alert desk (bell) bell: DOWN dead (127.0.0.1:{port})" in log
        assert "HTTP 500" in log.split("alert broken (webhook) failed")[1].splitlines()[0]
        assert "engine:" not in log   # a delivery is not an engine error
        # notify() posts a message: the toasts land a moment after the log lines
        await until(pilot, lambda: any(title == "Alert not delivered: broken (webhook)"
                                       for title, _ in toasts(app)))
        shown = toasts(app)
        assert any(title == "Alert" and message.startswith(f"DOWN dead (127.0.0.1:{port})")
                   for title, message in shown), shown
        assert any(title == "Alert not delivered: broken (webhook)" for title, _ in shown), shown
        assert not any(title == "Engine" for title, _ in shown), shown
        assert len(rings) == 1                # one outage, one ring
    assert receiver.at("ops")[0].json["event"] == "down"


async def test_headless_json_writes_alert_events_and_text_mode_stderr_lines(tmp_path: Path):
    refused = closed_port()
    text = textwrap.dedent(f"""\
        [settings]
        interval = "200ms"
        timeout = "150ms"
        alerts = ["desk", "gone"]

        [[targets]]
        name = "dead"
        kind = "tcp"
        host = "127.0.0.1"
        port = {closed_port()}
        failure_threshold = 1

        [[alerts]]
        name = "desk"
        kind = "bell"

        [[alerts]]
        name = "gone"
        kind = "webhook"
        url = "http://127.0.0.1:{refused}/hook"
        retries = 0
        """)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("MONITOR_CONFIG", None)
    for as_json in (True, False):
        args = ["--json"] if as_json else []
        # a config of its own each: alert state survives a restart (no second DOWN)
        path = tmp_path / ("json" if as_json else "text") / "monitor.toml"
        path.parent.mkdir()
        path.write_text(text)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "run", "--headless", "--standalone", *args,
            "-c", str(path), cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        stream = proc.stdout if as_json else proc.stderr
        assert stream is not None
        lines: list[str] = []
        try:
            async with asyncio.timeout(20):
                while sum("failed" in line and "gone" in line for line in lines) < 1 \
                        or not any("bell" in line and "desk" in line for line in lines):
                    line = (await stream.readline()).decode()
                    assert line, (await proc.stderr.read()).decode()   # type: ignore[union-attr]
                    lines.append(line)
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.communicate(), 10)
        if as_json:
            alerts = [e for e in map(json.loads, lines) if e["event"] == "alert"]
            by_outcome = {e["outcome"]: e for e in alerts}
            bell, failed = by_outcome["bell"], by_outcome["failed"]
            assert bell["channel"] == "desk" and bell["alert"]["event"] == "down"
            assert bell["alert"]["name"] == "dead" and bell["at"].endswith("Z")
            assert failed["channel"] == "gone" and failed["channel_kind"] == "webhook"
            assert failed["detail"].startswith("cannot deliver")
        else:
            said = "".join(lines)
            assert "monitor: alert desk (bell) bell: DOWN dead" in said
            assert "monitor: alert gone (webhook) failed: DOWN dead" in said


def test_an_alert_crosses_the_wire_whole():
    at = datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)
    alert = Alert("down", "api", "http", "https://api.test/", "web", "down", "up",
                  "expected 2xx, got 503", at - timedelta(minutes=5), at, 300.0, None,
                  {"connect": 0.5}, 503, 12.5, at + timedelta(days=12), None, "api/1/down/1")
    sent = [Delivery(at, "failed", "ops", "webhook", alert, "HTTP 500", 2),
            Delivery(at, "notice", "", "", None, "another process is already alerting")]
    got = FrameReader().feed(pack([alert_message(d) for d in sent]))
    heard: list[Delivery] = []

    class Listener:
        on_alert = staticmethod(heard.append)

    handlers = message_handlers(Listener())   # type: ignore[arg-type]
    for message in got:
        handlers[message[0]](message)
    assert heard == sent
    assert "alert" not in message_handlers(object())   # type: ignore[arg-type]  # an older listener


MARKED = """\
[[targets]]
name = "api"
kind = "tcp"
host = "127.0.0.1"
port = 9

[[targets]]
name = "gw"
kind = "tcp"
host = "127.0.0.1"
port = 9

[[targets]]
name = "web"
kind = "tcp"
host = "127.0.0.1"
port = 9
depends_on = ["gw"]

[[maintenance]]
name = "upgrade"
targets = ["api"]
start = {start}
end = {end}
"""


async def test_rows_say_maintenance_and_unreachable_via_a_down_parent(tmp_path: Path):
    now = [datetime(2026, 11, 25, 9, 30, tzinfo=UTC)]
    path = tmp_path / "monitor.toml"
    path.write_text(MARKED.format(start="2026-11-25T09:00:00Z", end="2026-11-25T11:15:00Z"))
    config = parse_config(path.read_text(), path)
    app = MonitorApp(config, FakeEngine, clock=lambda: NOW, wall=lambda: now[0].timestamp(),
                     watch_terminal=False, refresh=0.05)
    async with app.run_test(size=(120, 30)) as pilot:
        engine: FakeEngine = app.engine   # type: ignore[assignment]
        table = app.table

        def cell(name: str, column: str) -> str:
            return table.get_cell(name, column).plain

        for name in ("api", "gw", "web"):
            engine.result(name, latency=1.0, kind="tcp", target="127.0.0.1:9")
            engine.move(name, State.UP)
        await until(pilot, lambda: cell("api", "state").startswith("⚒"))
        assert cell("api", "state") == "⚒ UP"
        assert cell("api", "error").startswith("maintenance: upgrade until 11:15 UTC")
        assert cell("gw", "state") == "● UP" and cell("web", "state") == "● UP"
        engine.result("gw", "down", reason="connection refused", kind="tcp")
        engine.move("gw", State.DOWN, "connection refused")
        await pilot.pause(0.2)
        assert cell("web", "state") == "● UP"   # an answering child is not cut off
        engine.result("web", "down", reason="timed out", kind="tcp")
        engine.move("web", State.DOWN, "timed out")
        await until(pilot, lambda: cell("web", "state") == "⤳ DOWN")
        assert cell("web", "error").startswith("unreachable via gw · timed out")
        table.move_cursor(row=table.get_row_index("web"))
        await pilot.pause(0.1)
        assert "⤳ unreachable via gw  timed out" in str(app.selection.render())
        table.move_cursor(row=table.get_row_index("api"))
        await pilot.press("enter")
        for _ in range(100):
            if isinstance(app.screen, DetailScreen):
                break
            await pilot.pause(0.02)
        await pilot.pause(0.2)
        reason = str(app.screen.query_one("#reason").render())
        assert "maintenance: upgrade until 11:15 UTC" in reason
        await pilot.press("escape")
        # the window ends, the parent recovers: the marks go
        now[0] = datetime(2026, 11, 25, 11, 16, tzinfo=UTC)
        engine.move("gw", State.UP)
        await until(pilot, lambda: cell("api", "state") == "● UP"
                    and cell("web", "state") == "✖ DOWN")
        assert not cell("api", "error").startswith("maintenance")
        assert cell("web", "error") == "timed out"


async def test_toasts_show_network_text_as_it_is(tmp_path: Path):
    """A reason phrase is the server's text: in a toast it is shown as sent,
    not read as markup ("[/x]" raised MarkupError while the toast was drawn;
    "[b]" vanished). The engine's own reasons and target names likewise."""
    path = tmp_path / "monitor.toml"
    path.write_text(MARKED.format(start="2026-11-25T09:00:00Z", end="2026-11-25T09:15:00Z"))
    config = parse_config(path.read_text(), path)
    app = MonitorApp(config, FakeEngine, clock=lambda: NOW, watch_terminal=False, refresh=0.05)
    hostile = "expected 2xx, got 503 [/x] [b]Busy[/b]"
    at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    alert = Alert("down", "api", "tcp", "127.0.0.1:9", "", "down", "up", hostile,
                  at - timedelta(minutes=1), at, 60.0, None, {}, None, None, None, None, "a/1")
    async with app.run_test(size=(120, 30), notifications=True) as pilot:
        engine: FakeEngine = app.engine   # type: ignore[assignment]
        engine.listener.on_alert(Delivery(at, "bell", "desk", "bell", alert, "", 1))
        engine.listener.on_alert(Delivery(at, "failed", "ops", "webhook", alert, "HTTP 500 [/y]", 2))
        await until(pilot, lambda: len(toasts(app)) >= 2)
        engine.die("engine exited: [/z] gone")
        await until(pilot, lambda: len(toasts(app)) >= 3)
        await pilot.pause(0.3)   # drawn (a toast that cannot be ends the app with MarkupError)
        drawn = "\n".join(str(toast.render()) for toast in app.screen.query(Toast))
        assert hostile in drawn and "HTTP 500 [/y]" in drawn and "[/z] gone" in drawn
