"""A restart looks like a continuation: a real engine process writes
history under one dashboard; the next dashboard on the same config shows the
earlier samples and state changes before its own engine has said anything,
and claims no state until it probes."""

from __future__ import annotations

from pathlib import Path


from monitor.config import parse_config
from monitor.engine.client import ProcessEngine
from monitor.engine.result import Status
from monitor.ui.app import MonitorApp
from tests.ui.fake_engine import FakeEngine
from tests.ui.test_engine_faults import listening_port, log_text, until  # noqa: F401 (fixture)


def config_text(port: int) -> str:
    return ('[settings]\ninterval = "100ms"\ntimeout = "90ms"\n\n[[targets]]\nname = "alpha"\n'
            f'kind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n')




async def test_the_next_dashboard_starts_with_the_last_ones_samples_and_events(
        tmp_path: Path, listening_port):
    path = tmp_path / "monitor.toml"
    path.write_text(config_text(listening_port))
    config = parse_config(path.read_text(), path)
    first = MonitorApp(config, lambda listener: ProcessEngine(path, listener),
                       refresh=0.1, watch_terminal=False)
    async with first.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: first.board.views["alpha"].stats.checks >= 5)
    # (leaving the app stops its engine, which flushes its history)

    # the next one: its engine never answers (a scripted one that stays silent)
    second = MonitorApp(config, FakeEngine, refresh=0.1, watch_terminal=False)
    async with second.run_test(size=(100, 30)) as pilot:
        view = second.board.views["alpha"]
        await until(pilot, lambda: view.stats.checks >= 5)
        assert view.last is not None and view.last.status is Status.UP
        assert view.state.value == "pending"            # history is not a claim about now
        assert [t.to_state.value for t in view.events][:1] == ["up"]
        log = log_text(second)
        assert "alpha pending → up" in log
        assert "monitor started; earlier lines and trends are from history" in log


async def test_no_history_yet_says_nothing(tmp_path: Path):
    path = tmp_path / "monitor.toml"
    path.write_text(config_text(9))
    app = MonitorApp(parse_config(path.read_text(), path), FakeEngine, refresh=0.1,
                     watch_terminal=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app._past is None)
        assert "history" not in log_text(app)
        assert app.board.views["alpha"].stats.checks == 0
