"""The dashboard follows its config: a real engine process under Pilot,
probing a loopback server, while the test edits the file and asks for a
reload (R). Unchanged targets keep their row, state and statistics; new ones
appear, removed ones leave; a broken save is shown, and the last good config
keeps running until a save fixes it."""

from __future__ import annotations

from pathlib import Path


from monitor.config import parse_config
from monitor.engine.client import ProcessEngine
from monitor.ui.app import MonitorApp
from monitor.ui.screens.detail import DetailScreen
from tests.ui.test_engine_faults import listening_port, log_text, until  # noqa: F401 (fixture)

HEAD = '[settings]\ninterval = "200ms"\ntimeout = "150ms"\n'


def block(name: str, port: int) -> str:
    return f'\n[[targets]]\nname = "{name}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'


def dashboard(path: Path) -> MonitorApp:
    config = parse_config(path.read_text(), path)
    return MonitorApp(config, lambda listener: ProcessEngine(path, listener),
                      refresh=0.1, watch_terminal=False)




async def test_reload_adds_removes_and_keeps_unchanged_targets(tmp_path, listening_port):
    path = tmp_path / "monitor.toml"
    path.write_text(HEAD + block("alpha", listening_port) + block("beta", listening_port))
    app = dashboard(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: all(v.state.value == "up" for v in app.board.views.values()))
        alpha = app.board.views["alpha"]
        checks = alpha.stats.summary(app.clock()).checks

        path.write_text(HEAD + block("alpha", listening_port) + block("gamma", listening_port))
        await pilot.press("R")
        await until(pilot, lambda: "gamma" in app.board.views and "beta" not in app.board.views)
        assert app.board.views["alpha"] is alpha            # the same view: kept, not rebuilt
        assert "config reloaded (asked): +1 \u22121 ~0 (+gamma, \u2212beta)" in log_text(app)
        await until(pilot, lambda: app.board.views["gamma"].state.value == "up")
        assert alpha.stats.summary(app.clock()).checks > checks   # still counting, from where it was
        assert app.table.visible_keys() == ["alpha", "gamma"]


async def test_a_broken_save_is_shown_until_a_later_save_fixes_it(tmp_path, listening_port):
    path = tmp_path / "monitor.toml"
    good = HEAD + block("alpha", listening_port)
    path.write_text(good)
    app = dashboard(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.board.views["alpha"].state.value == "up")
        path.write_text(good.replace('"alpha"', '"alpha"\ndescription = "edited"')
                        + '\n[[targets]]\nname = "beta"\nkind = "tcp"\nport = 99999\n')
        await pilot.press("R")
        banner = app.query_one("#config-problems")
        await until(pilot, lambda: banner.has_class("shown"))
        shown = str(banner.render())
        assert "Config not reloaded (2 problems)" in shown
        assert f"{path}:" in shown and "port" in shown and "host" in shown
        assert "config not reloaded (2 problems)" in log_text(app)
        assert list(app.board.views) == ["alpha"]                  # the last good one runs on

        # the detail screen shows what runs, and that the file says otherwise
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        config_box = str(app.screen.boxes["config"].render())
        assert "# running, from monitor.toml:5" in config_box
        assert ("this target's block differs in the file on disk: the file has problems "
                "(see the banner above)") in config_box
        await pilot.press("escape")

        path.write_text(good + block("beta", listening_port))
        await pilot.press("R")
        await until(pilot, lambda: not banner.has_class("shown") and "beta" in app.board.views)
        await until(pilot, lambda: app.board.views["beta"].state.value == "up")


async def test_a_pause_made_in_the_app_survives_a_restart_and_then_a_reload(
        tmp_path, listening_port):
    path = tmp_path / "monitor.toml"
    path.write_text(HEAD + block("alpha", listening_port))
    app = dashboard(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.board.views["alpha"].state.value == "up")
        await pilot.press("p")   # remembered in the app's state file
        await until(pilot, lambda: app.board.views["alpha"].state.value == "paused")

    from monitor import appstate
    app = MonitorApp(appstate.apply_pauses(parse_config(path.read_text(), path)),
                     lambda listener: ProcessEngine(path, listener), refresh=0.1,
                     watch_terminal=False)   # as `monitor` starts it
    async with app.run_test(size=(100, 30)) as pilot:
        alpha = app.board.views["alpha"]
        assert alpha.state.value == "paused"
        path.write_text(HEAD + block("alpha", listening_port) + block("beta", listening_port))
        await pilot.press("R")
        await until(pilot, lambda: "beta" in app.board.views
                    and app.board.views["beta"].state.value == "up")
        checks = alpha.stats.checks   # (samples from history: the first run's)
        await pilot.pause(0.5)   # two intervals: a probe of alpha would have come back
        assert alpha.state.value == "paused" and alpha.stats.checks == checks


async def test_a_save_is_applied_without_asking(tmp_path, listening_port):
    """The file is the source of truth: an editor that saves by rename (write
    a new file, rename it over the old) is followed, no key pressed."""
    path = tmp_path / "monitor.toml"
    path.write_text(HEAD + block("alpha", listening_port))
    app = dashboard(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.board.views["alpha"].state.value == "up")
        saved = tmp_path / ".monitor.toml.swp"
        saved.write_text(HEAD + block("alpha", listening_port) + block("beta", listening_port))
        saved.rename(path)
        await until(pilot, lambda: "beta" in app.board.views
                    and app.board.views["beta"].state.value == "up")
        assert "config reloaded: +1 \u22120 ~0 (+beta)" in log_text(app)
        path.write_text(HEAD + block("alpha", listening_port) + "\n[[targets]]\nname = 7\n")
        banner = app.query_one("#config-problems")
        await until(pilot, lambda: banner.has_class("shown"))
        assert list(app.board.views) == ["alpha", "beta"]


async def test_the_detail_screen_of_a_removed_target_closes_and_says_why(tmp_path, listening_port):
    path = tmp_path / "monitor.toml"
    path.write_text(HEAD + block("alpha", listening_port) + block("beta", listening_port))
    app = dashboard(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.board.views["beta"].state.value == "up")
        await pilot.press("enter")   # the details of the selected row, whichever it is
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        shown = app.screen.target_name
        remaining = "alpha" if shown == "beta" else "beta"
        path.write_text(HEAD + block(remaining, listening_port))
        await until(pilot, lambda: not isinstance(app.screen, DetailScreen))
        assert shown not in app.board.views
        # notify() posts a message: the notice lands a moment after the pop
        await until(pilot, lambda: any(f"{shown} was removed from the config" in str(n.message)
                                       for n in app._notifications))
