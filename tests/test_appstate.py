"""The app's state file: theme and pauses remembered in the state dir, atomic,
tolerant of anything found there, and honoured by the dashboard and its engine
process after a restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web

from monitor import appstate, paths
from monitor.config import load_config
from monitor.engine.client import ProcessEngine
from monitor.engine.state import State
from monitor.ui.app import MonitorApp
from tests.ui.fake_engine import NOW, FakeEngine

CONFIG = """\
[settings]
interval = "200ms"
timeout = "150ms"

[[targets]]
name = "api"
kind = "http"
url = "{base}/api"

[[targets]]
name = "legacy"
kind = "http"
url = "{base}/legacy"
paused = true
"""


def write_config(path: Path, base: str = "http://127.0.0.1:9") -> Path:
    path.write_text(CONFIG.format(base=base))
    return path


def saved() -> dict:
    return tomllib.loads(appstate.state_file().read_text())


def test_the_state_lives_in_the_state_dir_not_the_config_dir(tmp_path: Path):
    appstate.save_theme("monitor-light")
    assert appstate.state_file() == paths.state_dir() / "state.toml"
    assert os.environ["XDG_STATE_HOME"] in str(appstate.state_file())
    assert saved() == {"theme": "monitor-light"}
    assert not (paths.config_dir() / "state.toml").exists()
    assert appstate.saved_theme() == "monitor-light"


def test_an_old_theme_file_in_the_config_dir_is_moved_over():
    legacy = paths.config_dir() / "state.toml"
    legacy.parent.mkdir(parents=True)
    legacy.write_text('theme = "high-contrast"\n')
    assert appstate.saved_theme() == "high-contrast"
    assert not legacy.exists()
    assert saved() == {"theme": "high-contrast"}
    appstate.save_theme("terminal-16")   # and later choices go to the new place only
    assert appstate.saved_theme() == "terminal-16" and not legacy.exists()


def test_pauses_differing_from_the_file_are_kept_per_config_and_name(tmp_path: Path):
    path = write_config(tmp_path / "monitor.toml")
    config = load_config(path)
    assert appstate.record_pause(config, "api", True) is None
    assert appstate.record_pause(config, "legacy", False) is None
    restarted = appstate.apply_pauses(load_config(path))
    assert {t.name: t.paused for t in restarted.targets} == {"api": True, "legacy": False}
    assert saved()["paused"] == {str(path.resolve()): {"api": True, "legacy": False}}

    # back to what the file says: nothing left to remember
    assert appstate.record_pause(restarted, "api", False) is None
    assert appstate.record_pause(restarted, "legacy", True) is None
    assert saved()["paused"] == {}
    assert {t.name: t.paused for t in appstate.apply_pauses(load_config(path)).targets} \
        == {"api": False, "legacy": True}


def test_the_same_names_in_another_config_are_not_paused(tmp_path: Path):
    first = write_config(tmp_path / "a.toml")
    second = write_config(tmp_path / "b.toml")
    appstate.record_pause(load_config(first), "api", True)
    assert not appstate.apply_pauses(load_config(second)).target("api").paused
    os.chdir(tmp_path)   # a relative path names the same file
    assert appstate.apply_pauses(load_config("a.toml")).target("api").paused


def test_names_the_config_no_longer_has_are_forgotten(tmp_path: Path):
    path = write_config(tmp_path / "monitor.toml")
    appstate.record_pause(load_config(path), "api", True)
    path.write_text(path.read_text().replace('name = "api"', 'name = "api-v2"'))
    appstate.record_pause(load_config(path), "legacy", False)
    assert saved()["paused"] == {str(path.resolve()): {"legacy": False}}


@pytest.mark.parametrize("content", [
    b"\xff\xfe not utf-8", b"theme = [unclosed", b"theme = 3\npaused = 'x'\n",
    b'[paused]\n"/x.toml" = 1\n[paused."/y.toml"]\napi = "yes"\n'])
def test_a_broken_state_file_reads_as_empty_and_is_replaced(tmp_path: Path, content: bytes):
    appstate.state_file().parent.mkdir(parents=True)
    appstate.state_file().write_bytes(content)
    path = write_config(tmp_path / "monitor.toml")
    assert appstate.saved_theme() is None
    assert appstate.apply_pauses(load_config(path)) == load_config(path)
    assert appstate.record_pause(load_config(path), "api", True) is None
    assert saved()["paused"][str(path.resolve())] == {"api": True}


def test_an_unwritable_state_dir_is_a_message_not_a_crash(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")   # a file where the state dir's parent should be (even root fails)
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    config = load_config(write_config(tmp_path / "monitor.toml"))
    problem = appstate.record_pause(config, "api", True)
    assert problem is not None and problem.startswith("cannot remember it in ")
    appstate.save_theme("monitor-light")   # silently not remembered
    assert appstate.saved_theme() is None


def test_writers_in_several_processes_lose_nothing(tmp_path: Path):
    names = [f"t{i}" for i in range(40)]
    text = '[settings]\ninterval = "10s"\n' + "".join(
        f'[[targets]]\nname = "{n}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 9\n' for n in names)
    path = tmp_path / "many.toml"
    path.write_text(text)
    script = ("import sys; from monitor import appstate; from monitor.config import load_config;"
              "c = load_config(sys.argv[1]);"
              "[appstate.record_pause(c, n, True) for n in sys.argv[2:]]")
    workers = [subprocess.Popen([sys.executable, "-c", script, str(path), *names[i::4]])
               for i in range(4)]
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0, 0]
    assert saved()["paused"][str(path.resolve())] == {n: True for n in names}
    leftovers = [p.name for p in appstate.state_file().parent.iterdir()
                 if p.name not in ("state.toml", "state.toml.lock")]
    assert leftovers == []   # no temporary file left behind


async def test_pausing_on_the_board_is_remembered_after_a_restart(tmp_path: Path):
    path = write_config(tmp_path / "monitor.toml")

    def start() -> MonitorApp:
        config = appstate.apply_pauses(load_config(path))   # as `monitor` starts it
        return MonitorApp(config, FakeEngine, clock=lambda: NOW, watch_terminal=False)

    app = start()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.table
        table.move_cursor(row=table.get_row_index("api"))
        await pilot.press("p")
        app.flush()
        assert app.board.views["api"].state is State.PAUSED
        table.move_cursor(row=table.get_row_index("legacy"))
        await pilot.press("p")   # paused in the file: resumed from the app
        app.flush()
        assert app.board.views["legacy"].state is State.PENDING
    app = start()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.board.views["api"].state is State.PAUSED
        assert app.board.views["legacy"].state is State.PENDING
        assert app.config.target("api").paused


class Recorder:
    """The engine's listener: just the names of the results."""

    def __init__(self) -> None:
        self.names: Counter[str] = Counter()

    def on_result(self, result) -> None:
        self.names[result.name] += 1

    def on_transition(self, transition) -> None: ...
    def on_stats(self, stats) -> None: ...
    def on_error(self, message: str) -> None: ...
    def on_engine_up(self, restarts: int) -> None: ...
    def on_engine_down(self, down) -> None: ...
    def on_reload(self, event) -> None: ...
    def on_config_rejected(self, event) -> None: ...


async def test_the_engine_process_never_probes_a_target_paused_before_it_started(tmp_path: Path):
    hits: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        hits[request.path] += 1
        return web.Response(text="ok")

    server = web.Application()
    server.router.add_get("/{name}", handle)
    runner = web.AppRunner(server, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    path = write_config(tmp_path / "monitor.toml", base)
    config = load_config(path)
    appstate.record_pause(config, "api", True)
    appstate.record_pause(config, "legacy", False)
    got = Recorder()
    engine = ProcessEngine(path, got)   # the worker reads the file and the state itself
    await engine.start()
    try:
        async with asyncio.timeout(15):
            while got.names["legacy"] < 3:
                await asyncio.sleep(0.05)
    finally:
        await engine.stop()
        await runner.cleanup()
    assert got.names["api"] == 0 and hits["/api"] == 0
    assert hits["/legacy"] >= 3
