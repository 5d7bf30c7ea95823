"""In a real terminal (tmux): `monitor dashboard --record F` and `monitor run`
open the dashboard, a target paused on the board stays paused (and unprobed)
after a restart, and `monitor check` works beside an open dashboard."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cli.test_options import check_json, demo_config
from tests.e2e.test_terminal import Terminal, ensure_tmux, free_port, pids_for, table_rows


@pytest.fixture(scope="module")
def tmux() -> str:
    problem = ensure_tmux()
    if problem:
        pytest.skip(problem)
    return "tmux"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return demo_config(tmp_path / "opts-monitor.toml", free_port())


@contextmanager
def in_terminal(tmux: str, tmp_path: Path, config: Path, *args: str) -> Iterator[Terminal]:
    """`monitor ARGS` in a 100x30 tmux session with the test's private user
    dirs (the same across restarts within a test)."""
    name = f"monitor-opts-{os.getpid()}-{free_port()}"
    env = {"TERM": "xterm-256color", "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8",
           "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_DATA_HOME": str(tmp_path / "data")}
    command = " ".join(["env", *(f"{k}={shlex.quote(v)}" for k, v in env.items()),
                        sys.executable, "-m", "monitor", *map(shlex.quote, args)])
    terminal = Terminal(tmux, name)
    terminal.run("-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "100", "-y", "30",
                 "-c", str(tmp_path), command)
    try:
        yield terminal
    finally:
        terminal.run("kill-server")
        deadline = time.monotonic() + 10
        while pids_for(str(config)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids_for(str(config)):
            os.kill(pid, 9)


def quit_and_wait(terminal: Terminal, config: Path) -> None:
    terminal.press("q")
    deadline = time.monotonic() + 10
    while (terminal.alive() or pids_for(str(config))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not terminal.alive(), "monitor did not quit"


def board_live(screen: str) -> bool:
    return "fast-site" in screen and "UP" in screen and "DOWN" in screen


def recorded(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_dashboard_takes_record_after_the_command(tmux, tmp_path, config):
    record = tmp_path / "results.jsonl"
    with in_terminal(tmux, tmp_path, config, "dashboard", "--record", str(record),
                     "--config", str(config), "--refresh", "0.2") as term:
        term.wait_for(board_live)
        deadline = time.monotonic() + 15
        while {r["name"] for r in recorded(record)} != {"fast-site", "broken-site"}:
            assert time.monotonic() < deadline, "nothing recorded"
            time.sleep(0.1)
        quit_and_wait(term, config)


def test_run_without_headless_opens_the_dashboard(tmux, tmp_path, config):
    with in_terminal(tmux, tmp_path, config, "run", "-c", str(config)) as term:
        screen = term.wait_for(board_live)
        assert "Quit" in screen   # the dashboard's footer
        quit_and_wait(term, config)


def test_a_target_paused_on_the_board_stays_paused_after_a_restart(tmux, tmp_path, config):
    with in_terminal(tmux, tmp_path, config, "--config", str(config)) as term:
        term.wait_for(board_live)
        term.press("/")
        term.wait_for(lambda s: "filter: name" in s)   # the box has the keys from here on
        term.press("fast")
        term.wait_for(lambda s: len(table_rows(s)) == 1 and "fast-site" in table_rows(s)[0])
        term.press("Enter")   # the box closes: the table's header follows the summary line
        term.wait_for(lambda s: s.splitlines()[1].lstrip().startswith("State"))
        term.press("p")
        term.wait_for(lambda s: "PAUS" in "".join(table_rows(s)))
        quit_and_wait(term, config)
    record = tmp_path / "after-restart.jsonl"
    with in_terminal(tmux, tmp_path, config, "--config", str(config),
                     "--record", str(record)) as term:
        screen = term.wait_for(lambda s: "broken-site" in s and "DOWN" in s)
        fast_row = next(row for row in table_rows(screen) if "fast-site" in row)
        assert "PAUS" in fast_row
        deadline = time.monotonic() + 15
        while sum(r["name"] == "broken-site" for r in recorded(record)) < 3:
            assert time.monotonic() < deadline, "the engine recorded nothing"
            time.sleep(0.1)
        assert [r for r in recorded(record) if r["name"] == "fast-site"] == []
        term.wait_for(lambda s: "PAUS" in next(r for r in table_rows(s) if "fast-site" in r))
        quit_and_wait(term, config)


async def test_check_beside_an_open_dashboard_uses_its_demo_server(tmux, tmp_path, config):
    with in_terminal(tmux, tmp_path, config, "--config", str(config)) as term:
        term.wait_for(board_live)
        code, rows, err = await check_json(tmp_path, config)
        assert code == 1, err   # broken-site is down; 2 would mean a config error
        assert "using the demo server already running" in err
        assert rows == {"fast-site": "up", "broken-site": "down", "json-site": "up"}
        quit_and_wait(term, config)
