"""Uptime windows, incidents and chart ranges from a real history file,
written by the real store at chosen times, read by the dashboard (FakeEngine
stays silent, so every figure on screen came from history).

The story (T = now, whole seconds):
  run 1  T-10d .. T-1h     api and db confirmed UP a minute in; api DOWN
                           from T-2h for 30 minutes ("connection refused")
  (the monitor is not running from T-1h to T-30m)
  run 2  T-30m .. T-1m     api and db UP a minute in
  "new" has no history at all.

Hand-computed (minutes): api over 24 h knows 23 h of run 1 (30 down) and
28 of run 2: 1378 up of 1408 = 97.869 % -> "97.8%". Over 30 d: run 1 knows
14,339 (30 down), run 2 28: 14,337 / 14,367 = 99.791 % -> "99.7%" (cut,
never rounded up). Over 1 h: 28 minutes known, all up: 100 %, 46 % data.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from monitor.config import parse_config
from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Transition
from monitor.store import HistoryStore
from monitor.ui.app import MonitorApp
from monitor.ui.screens.detail import DetailScreen
from monitor.ui.widgets.chart import FAILED_FILL, NO_DATA_MARK
from tests.ui.fake_engine import FakeEngine
from tests.ui.test_engine_faults import cell, until

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
CONFIG = """\
[settings]
interval = "10s"
history_db = "history.sqlite3"

[[targets]]
name = "api"
kind = "tcp"
host = "127.0.0.1"
port = 9

[[targets]]
name = "db"
kind = "tcp"
host = "127.0.0.1"
port = 19

[[targets]]
name = "new"
kind = "tcp"
host = "127.0.0.1"
port = 29
"""


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _result(name: str, epoch: float, up: bool = True) -> ProbeResult:
    return ProbeResult(name=name, kind="tcp", target="127.0.0.1:9",
                       status=Status.UP if up else Status.DOWN,
                       latency_ms=2.5 if up else None, phases_ms={"connect": 2.5} if up else {},
                       reason=None if up else "connection refused", checked_at=_at(epoch))


def _moved(name: str, epoch: float, before: State, after: State,
           reason: str | None = None) -> Transition:
    return Transition(name, before, after, reason, _at(epoch), epoch, None)


def write_history(path: Path, now: float) -> None:
    store = HistoryStore.open(str(path))
    try:
        runs = ((now - 10 * DAY, now - HOUR), (now - 30 * MIN, now - MIN))
        for start, stop in runs:
            store.on_start(start)
            for name in ("api", "db"):
                store.on_transition(_moved(name, start + MIN, State.PENDING, State.UP))
            # a sample every ten minutes over the last three hours of each run
            probe = max(start + MIN, stop - 3 * HOUR)
            while probe < stop:
                down = now - 2 * HOUR <= probe < now - 90 * MIN
                store.on_result(_result("api", probe, up=not down))
                store.on_result(_result("db", probe))
                probe += 10 * MIN
            if start == runs[0][0]:
                store.on_transition(_moved("api", now - 2 * HOUR, State.UP, State.DOWN,
                                           "connection refused"))
                store.on_transition(_moved("api", now - 90 * MIN, State.DOWN, State.UP))
            store.on_stop(stop)
    finally:
        store.close()


@pytest.fixture
def history_config(tmp_path: Path):
    now = float(int(time.time()))
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG)
    write_history(tmp_path / "history.sqlite3", now)
    return parse_config(CONFIG, path)


def plain(renderable, width: int = 100) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


async def test_wide_boards_show_24h_and_30d_uptime_from_history(history_config):
    app = MonitorApp(history_config, FakeEngine, refresh=0.1, watch_terminal=False)
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.history_uptime and "up24h" in
                    [c.key for c in app.table.columns_now] and cell(app, "api", "up24h") != "")
        assert cell(app, "api", "up24h") == "97.8%"
        assert cell(app, "api", "up30d") == "99.7%"     # 99.79: cut, never rounded up
        assert cell(app, "db", "up24h") == "100%"
        assert cell(app, "new", "up24h") == "—"         # no history: no data, not 0 or 100
        assert cell(app, "new", "up30d") == "—"
        assert "Up 24h" in app.header.content.plain and "Up 30d" in app.header.content.plain
        # narrow: the last error keeps its room, the history columns leave
        await pilot.resize_terminal(100, 30)
        await until(pilot, lambda: "up24h" not in [c.key for c in app.table.columns_now])
        assert "error" in [c.key for c in app.table.columns_now]


async def test_without_history_the_columns_stay_away(tmp_path: Path):
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG)
    app = MonitorApp(parse_config(CONFIG, path), FakeEngine, refresh=0.1, watch_terminal=False)
    async with app.run_test(size=(200, 30)) as pilot:
        await until(pilot, lambda: app._uptime_read is None and app._past is None)
        await pilot.pause(0.2)
        keys = [c.key for c in app.table.columns_now]
        assert "up24h" not in keys and "up30d" not in keys and "age" in keys


async def open_detail(app: MonitorApp, pilot, name: str) -> DetailScreen:
    await until(pilot, lambda: name in app.table.order)
    app.table.move_to(name)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, DetailScreen))
    screen = app.screen
    assert isinstance(screen, DetailScreen)
    await until(pilot, lambda: screen.history is not None)
    return screen


async def test_the_detail_screen_shows_every_window_and_the_incidents(history_config):
    app = MonitorApp(history_config, FakeEngine, refresh=0.1, watch_terminal=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(app, pilot, "api")
        windows = plain(screen.boxes["windows"].content)
        rows = {line.split()[0]: line.split()[1:] for line in windows.splitlines() if line.strip()}
        assert rows["1h"] == ["100%", "46%", "0"]
        assert rows["24h"] == ["97.86%", "97%", "1"]
        assert rows["7d"][0] == "99.70%" and rows["7d"][2] == "1"
        assert rows["30d"] == ["99.79%", "33%", "1"]
        incidents = plain(screen.boxes["incidents"].content)
        assert "30m" in incidents and "connection refused" in incidents
        assert "ongoing" not in incidents
        assert screen.boxes["incidents"].border_title == "Incidents, last 24h"
        # the 1 h range holds no outage; 30 d holds the same one
        await pilot.press("2")
        await until(pilot, lambda: screen.history.range == "1h")
        assert "no outages in the last 1h" in plain(screen.boxes["incidents"].content)


async def test_chart_ranges_mark_failures_and_no_data_differently(history_config):
    app = MonitorApp(history_config, FakeEngine, refresh=0.1, watch_terminal=False)
    async with app.run_test(size=(130, 40)) as pilot:
        screen = await open_detail(app, pilot, "api")
        chart = screen.chart
        assert chart.range == "live"
        assert "from history" not in chart.render().plain
        await pilot.press("3")   # 24 h
        await until(pilot, lambda: chart.series is not None and chart.range == "24h")
        lines = chart.render().plain.splitlines()
        assert "last 24h from history" in lines[0]
        bars = lines[1:-1]
        columns = ["".join(line[8 + i] for line in bars) for i in range(len(bars[0]) - 8)]
        buckets = chart.series.buckets[-len(columns):]
        assert len(columns) == len(buckets)
        failed = [i for i, b in enumerate(buckets) if b.states.down_ms and not b.samples.answered]
        empty = [i for i, b in enumerate(buckets) if b.no_data]
        assert failed and empty and not set(failed) & set(empty)
        for i in failed:
            assert FAILED_FILL in columns[i] and NO_DATA_MARK not in columns[i]
        for i in empty:
            assert columns[i].strip() == NO_DATA_MARK and columns[i].endswith(NO_DATA_MARK)
        answered = [i for i, b in enumerate(buckets) if b.samples.answered and not b.samples.down]
        assert answered and all(set(columns[i]) <= set(" ▁▂▃▄▅▆▇█") for i in answered)
        # ] steps on to 7 d, [ back; 1 is live again
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: chart.range == "7d" and chart.series is not None
                    and chart.series.range == 7 * DAY)
        await pilot.press("left_square_bracket", "1")
        await until(pilot, lambda: chart.range == "live")
        assert "from history" not in chart.render().plain


async def test_the_detail_screen_says_when_there_is_no_history(tmp_path: Path):
    path = tmp_path / "monitor.toml"
    path.write_text(CONFIG)
    app = MonitorApp(parse_config(CONFIG, path), FakeEngine, refresh=0.1, watch_terminal=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_detail(app, pilot, "api")
        assert "no history" in plain(screen.boxes["windows"].content)
        await pilot.press("4")
        await until(pilot, lambda: "no history" in screen.chart.render().plain)


def test_a_window_barely_begun_says_so_beside_its_uptime():
    """0.4 % of 30 days known: "<1%" data, not a cut "0%" beside a plain "100%",
    which is muted; a failing figure keeps its colour whatever the data."""
    from rich.style import Style

    from monitor.store.uptime import Tally
    from monitor.store.views import WindowUptime
    from monitor.ui import format as fmt
    from monitor.ui.history import TargetHistory
    from monitor.ui.screens.detail import _windows_text

    palette = fmt.Palette.from_variables({"warning": "#ffaa00", "error": "#ff0000"})
    month = 30 * 86_400_000
    got = TargetHistory("api", None, windows=[
        WindowUptime(30 * 86_400, Tally(month, month // 250, 0, 0), 0),
        WindowUptime(7 * 86_400, Tally(month, month // 500, 0, month // 500), 1),
        WindowUptime(86_400, Tally(86_400_000, 86_400_000 // 2, 0, 0), 0)])
    grid = _windows_text(got, palette)
    rows = [line.split() for line in plain(grid).splitlines() if line.strip()]
    assert rows[1] == ["30d", "100%", "<1%", "0"]
    assert rows[2] == ["7d", "50.00%", "<1%", "1"]
    assert rows[3] == ["24h", "100%", "50%", "0"]
    styles = [row[1].style for row in grid.rows[1:]]
    assert styles == [palette.muted, palette.error, Style()]
