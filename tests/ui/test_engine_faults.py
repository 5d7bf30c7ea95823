"""The dashboard when its engine process dies, hangs or cannot start: a real
engine worker (killed with SIGKILL, stopped with SIGSTOP, or never able to
run) under a Pilot-driven app, probing a loopback server; and, with the fake
engine, what the detail screen says meanwhile."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import pytest
from rich.text import Text

from monitor.config import parse_config
from monitor.engine.client import EngineDown, ProcessEngine, RestartPolicy
from monitor.engine.state import State
from monitor.ui import format as fmt
from monitor.ui.app import MonitorApp
from monitor.ui.inbox import EngineWatch, Liveness
from monitor.ui.screens.detail import DetailScreen
from monitor.ui.widgets.event_log import EventLog
from monitor.ui.widgets.targets import TargetTable, same_cells, stale_cells
from tests.ui.conftest import make_app, populate, screen_ready

NAMES = ("alpha", "beta")


@pytest.fixture
async def listening_port():
    """A TCP server that accepts and hangs up: every tcp probe of it is UP."""
    async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def dashboard(tmp_path: Path, port: int, **engine_options: object) -> MonitorApp:
    path = tmp_path / "monitor.toml"
    path.write_text('[settings]\ninterval = "200ms"\ntimeout = "150ms"\n' + "".join(
        f'[[targets]]\nname = "{name}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
        for name in NAMES))
    config = parse_config(path.read_text(), path)
    return MonitorApp(config, lambda listener: ProcessEngine(path, listener, **engine_options),
                      refresh=0.1, watch_terminal=False)


async def until(pilot, predicate, seconds: float = 20.0) -> None:
    """Pause until `predicate()` holds, for at most `seconds`."""
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition never held")


def cell(app: MonitorApp, name: str, column: str) -> str:
    return app.query_one(TargetTable).get_cell(name, column).plain


def summary(app: MonitorApp) -> str:
    return str(app.query_one("#summary").render())


def log_text(app: MonitorApp) -> str:
    return "\n".join(line.plain for line in app.query_one("#event-log", EventLog).lines)


def notes(app: MonitorApp) -> str:
    """The toasts shown so far (Textual has no public accessor; it is pinned)."""
    return "\n".join(str(n.message) for n in app._notifications)


def rows_up(app: MonitorApp) -> bool:
    return all(cell(app, name, "state") == "● UP" for name in NAMES)


async def test_a_killed_engine_shows_stale_rows_then_comes_back(tmp_path, listening_port):
    # a restart delay long enough that the outage is on screen for several refreshes
    app = dashboard(tmp_path, listening_port, restart=RestartPolicy(first_delay=2.0))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: rows_up(app) and "/s" in summary(app))
        first = app.engine._proc
        os.kill(first.pid, signal.SIGKILL)

        await until(pilot, lambda: cell(app, "alpha", "state") == "STALE")
        for name in NAMES:   # never the last good state
            assert cell(app, name, "state") == "STALE"
            assert re.fullmatch(r"no data since \d\d:\d\d:\d\d", cell(app, name, "error"))
        line = summary(app)
        assert "ENGINE DOWN: restarting (try 1)" in line and "no data since" in line
        assert "up" not in line.split("ENGINE")[0] and "/s" not in line   # no counts, no rate
        assert "stopped, restarting in 2s (try 1): engine process killed by SIGKILL" in log_text(app)
        assert app.board.views["alpha"].state.value == "pending"   # claims nothing
        await pilot.press("r")
        await until(pilot, lambda: "not sent: ENGINE DOWN" in notes(app))   # notify() posts
        assert "probing" not in notes(app)

        await until(pilot, lambda: rows_up(app) and "/s" in summary(app))
        assert app.engine._proc.pid != first.pid
        assert "ENGINE" not in summary(app) and "no data" not in cell(app, "alpha", "error")
        assert "running again (restart 1)" in log_text(app)
        checks = app.board.views["alpha"].stats.checks
        await until(pilot, lambda: app.board.views["alpha"].stats.checks > checks + 2)
        await pilot.press("q")
    assert app.return_code == 0


async def test_a_silent_engine_is_shown_stalled(tmp_path, listening_port):
    app = dashboard(tmp_path, listening_port)
    app.watch.silent_after = 1.0    # 5 statistics intervals in the app; 1 s keeps the test short
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: rows_up(app))
        worker = app.engine._proc.pid
        os.kill(worker, signal.SIGSTOP)   # alive, but says nothing
        try:
            await until(pilot, lambda: "ENGINE STALLED: silent since" in summary(app))
            assert all(cell(app, name, "state") == "STALE" for name in NAMES)
        finally:
            os.kill(worker, signal.SIGCONT)
        await until(pilot, lambda: rows_up(app) and "/s" in summary(app))


async def test_an_engine_that_cannot_start_is_given_up_on_and_quit_fails(tmp_path, capsys):
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'ImportError: no module named monitor' >&2\nexit 1\n")
    broken.chmod(0o755)
    app = dashboard(tmp_path, 9, python=str(broken),
                    restart=RestartPolicy(first_delay=0.05, max_delay=0.1, max_failures=3))
    async with app.run_test(size=(200, 50)) as pilot:   # every column, faded
        await until(pilot, lambda: "could not be restarted" in summary(app))
        assert "ENGINE DOWN: could not be restarted" in summary(app)
        banner = str(app.query_one("#banner").render())
        assert app.query_one("#banner").display
        assert "could not be restarted" in banner and "ImportError" in banner
        assert all(cell(app, name, "state") == "STALE" for name in NAMES)
        assert "restart 2 failed, not restarting it again" in log_text(app)
        await pilot.press("p")
        await until(pilot, lambda: "not sent" in notes(app))
        await pilot.pause(0.5)
        assert "could not be restarted" in summary(app)   # permanent
        await pilot.press("q")
    assert app.return_code == 1
    stderr = capsys.readouterr().err
    assert "monitor: the engine stopped and could not be restarted" in stderr
    assert "ImportError: no module named monitor" in stderr


async def test_the_detail_screen_claims_no_state_while_the_engine_is_down(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        engine = populate(app)
        app.flush()
        table = app.query_one(TargetTable)
        table.move_cursor(row=table.get_row_index("checkout"))
        await pilot.press("enter")
        await screen_ready(pilot, DetailScreen)

        def title() -> str:
            return str(app.screen.query_one("#title").render())

        assert "DEGR" in title()
        engine.die()
        app.flush()
        await pilot.pause()
        assert "STALE" in title() and "no data since" in title() and "DEGR" not in title()
        await pilot.press("p", "r")
        await until(pilot, lambda: "not sent: ENGINE DOWN" in notes(app))
        assert engine.commands == []
        engine.come_back()
        app.flush()
        await pilot.pause()
        # the new engine confirmed nothing yet: pending, not the dead one's DEGR
        assert "PEND" in title() and "STALE" not in title()
        await pilot.press("p")
        assert engine.commands == [("pause", "checkout")]


def test_a_faded_row_fades_to_itself():
    """Rows on screen are faded again each second from their stored (faded)
    cells: that must change nothing, or every row would redraw every second."""
    palette = fmt.Palette.from_variables({"warning": "#ffaa00", "error": "#ff0000"})
    cells = {"state": fmt.status_cell(State.UP, palette), "name": Text("api"),
             "last": Text("fail", style=palette.error, justify="right"),
             "trend": fmt.sparkline([1.0, float("nan")], [0, 2], 4, palette),
             "loss": Text("—", style=None, justify="right"), "error": Text("refused")}
    once = stale_cells(cells, "no data since 09:30:00", palette)
    assert once["state"].plain == "STALE" and once["error"].plain == "no data since 09:30:00"
    assert once["last"].plain == "fail" and once["last"].justify == "right"
    assert same_cells(once, stale_cells(once, "no data since 09:30:00", palette))


def test_the_watch_judges_from_what_it_heard_and_when():
    watch = EngineWatch(100.0, silent_after=5.0, wall=lambda: 0.0)
    assert not watch.judge(104.0) and watch.liveness is Liveness.LIVE
    assert watch.judge(106.0) and watch.headline().startswith("ENGINE SLOW TO START")
    watch.came_up(106.5)
    assert watch.judge(107.0) and watch.headline() is None and watch.stale_note() is None
    assert watch.judge(112.0) and watch.headline().startswith("ENGINE STALLED: silent since")
    assert watch.refusal() is None                       # it may still obey: commands go
    assert watch.went_down(EngineDown("killed", 0, 0.5))
    assert not watch.went_down(EngineDown("restart failed", 1, 1.0))   # same outage
    watch.heard(113.0)                                   # a dead engine's last words
    assert watch.judge(113.0) and watch.liveness is Liveness.RESTARTING
    assert watch.headline() == "ENGINE DOWN: restarting (try 2)"
    assert watch.refusal() == "not sent: ENGINE DOWN: restarting (try 2)"
    assert watch.given_up() is None and watch.stale_note().startswith("no data since")
    watch.went_down(EngineDown("status 2: bad config", 2, None))
    assert watch.judge(114.0) and watch.liveness is Liveness.GAVE_UP
    assert watch.given_up() == ("the engine stopped and could not be restarted: "
                                "status 2: bad config")
