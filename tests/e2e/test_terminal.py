"""`monitor` in a real terminal (tmux): read the screen, press keys, quit.

The test setup installs tmux (apt) when it is missing and we may; otherwise
these tests skip and say why.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ensure_tmux() -> str | None:
    if shutil.which("tmux"):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "tmux is not installed and cannot be installed here (needs root and apt-get)"
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "tmux"]):
        if subprocess.run(command, capture_output=True, timeout=300).returncode != 0:
            return "installing tmux with apt-get failed"
    return None if shutil.which("tmux") else "tmux still missing after apt-get"


@pytest.fixture(scope="module")
def tmux() -> str:
    problem = ensure_tmux()
    if problem:
        pytest.skip(problem)
    return shutil.which("tmux") or "tmux"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Terminal:
    """One tmux session on a private server socket (never the user's tmux)."""

    def __init__(self, tmux: str, name: str) -> None:
        self.tmux, self.name = tmux, name
        self.socket = name

    def run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=10).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def press(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    def type(self, text: str) -> None:
        """`text` in one write to the terminal, as a paste or a laggy link delivers it."""
        self.run("send-keys", "-t", self.name, "-l", text)

    def wait_for(self, predicate: Callable[[str], bool], seconds: float = 20) -> str:
        deadline = time.monotonic() + seconds
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"screen never matched; last screen:\n{screen}")

    def alive(self) -> bool:
        return subprocess.run([self.tmux, "-L", self.socket, "has-session", "-t", self.name],
                              capture_output=True, timeout=10).returncode == 0


ROW = re.compile(r"\s*(\S+ (UP|DEGR|DOWN|PEND|PAUS)|STALE|▾)\s")


def table_rows(screen: str) -> list[str]:
    """The target rows: below the table header, above the event log's rule
    (and not the line about the selected row, just above the rule)."""
    lines = screen.splitlines()
    start = next((i for i, line in enumerate(lines) if "Last error" in line), None)
    if start is None:
        return []
    rows = []
    for line in lines[start + 1:]:
        if line.strip().startswith("─"):
            break
        if ROW.match(line):
            rows.append(line)
    return rows


def pids_for(marker: str) -> list[int]:
    """Processes whose command line mentions `marker` (read from /proc: no pgrep needed)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command and "tmux" not in command.split(" ", 1)[0]:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def dashboard(tmux: str, tmp_path: Path, request: pytest.FixtureRequest
              ) -> Iterator[tuple[Terminal, Path]]:
    with open_dashboard(tmux, tmp_path, getattr(request, "param", {})) as opened:
        yield opened


@contextmanager
def open_dashboard(tmux: str, tmp_path: Path, extra_env: dict[str, str],
                   keep_open: bool = False) -> Iterator[tuple[Terminal, Path]]:
    """`monitor` on a demo config in a 100x30 tmux session; `keep_open`: the
    session outlives it and shows its exit status as "monitor-exit=N"."""
    port = free_port()
    config = tmp_path / "e2e-monitor.toml"
    config.write_text(f"""
[settings]
interval = "1s"
timeout = "800ms"
failure_threshold = 1

[demo]
enabled = true
port = {port}

[[targets]]
name = "fast-site"
kind = "http"
url = "http://127.0.0.1:{port}/fast"
group = "web"

[[targets]]
name = "broken-site"
kind = "http"
url = "http://127.0.0.1:{port}/failing"
group = "web"

[[targets]]
name = "closed-port"
kind = "tcp"
host = "127.0.0.1"
port = {free_port()}
""")
    name = f"monitor-e2e-{os.getpid()}-{port}"
    env = {"TERM": "xterm-256color", "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    env.update(extra_env)
    command = " ".join([
        "env", *(f"{k}={v}" for k, v in env.items()),
        sys.executable, "-m", "monitor", "--config", str(config)])
    if keep_open:
        command = f"sh -c '{command}; echo monitor-exit=$?; sleep 60'"
    terminal = Terminal(tmux, name)
    terminal.run("-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "100", "-y", "30",
                 "-c", str(ROOT), command)
    try:
        yield terminal, config
    finally:
        terminal.run("kill-server")
        deadline = time.monotonic() + 10
        while pids_for(str(config)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in pids_for(str(config)):
            os.kill(pid, 9)


def test_dashboard_in_a_real_terminal(dashboard: tuple[Terminal, Path]):
    term, config = dashboard
    screen = term.wait_for(lambda s: "fast-site" in s and "broken-site" in s
                           and "UP" in s and "DOWN" in s and "refused" in s)
    assert "expected 2xx, got 503" in screen
    assert "Probe" in screen and "Quit" in screen                # the footer
    term.press("/")
    term.press("broken", "Enter")
    term.wait_for(lambda s: len(table_rows(s)) == 1 and "broken-site" in table_rows(s)[0])
    term.press("Enter")                                          # details of broken-site
    screen = term.wait_for(lambda s: "Statistics" in s and "Phases" in s)
    assert "broken-site" in screen
    term.press("Escape")
    term.wait_for(lambda s: "Last error" in s)
    term.press("q")
    deadline = time.monotonic() + 10
    while term.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not term.alive(), "monitor did not quit"
    time.sleep(0.5)
    assert pids_for(str(config)) == [], "an engine process outlived the dashboard"


def test_keys_after_slash_in_one_write_are_all_filter_text(dashboard: tuple[Terminal, Path]):
    """`/tag:squid` arriving in one read used to quit (`q`); `/group:web`
    grouped (`g`), paused (`p`) and hid the log (`e`)."""
    term, _ = dashboard
    term.wait_for(lambda s: "fast-site" in s and "DOWN" in s and "refused" in s)
    term.type("/tag:squid")
    term.press("Enter")
    screen = term.wait_for(lambda s: "filter “tag:squid”" in s.splitlines()[0])
    assert term.alive() and table_rows(screen) == []
    term.press("Escape")                                          # clears the filter
    term.wait_for(lambda s: "filter" not in s.splitlines()[0] and len(table_rows(s)) == 3)
    term.type("/group:web")
    term.press("Enter")
    screen = term.wait_for(lambda s: "filter “group:web”" in s.splitlines()[0]
                           and len(table_rows(s)) == 2)
    rows = table_rows(screen)
    assert {row.split()[2] for row in rows} == {"fast-site", "broken-site"}
    assert not any("PAUS" in row or "▾" in row for row in rows)   # not paused, not grouped
    assert "grouped" not in screen.splitlines()[0] and "→" in screen   # log still shown
    term.press("q")


def nice_of(proc: Path) -> int:
    """The nice value of /proc/PID or /proc/PID/task/TID (field 19 of its stat)."""
    return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[16])


def test_screen_yields_the_cpu_to_the_engine(dashboard: tuple[Terminal, Path]):
    """Rendering must never delay a measurement: every thread of the UI runs
    at nice 19 (`--ui-nice`), the engine it started at the priority it was
    given. Relative, so that it holds when the suite itself runs under
    `nice`: the engine keeps ours, the screen goes as far below as it can."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    if ours >= 19:
        pytest.skip("the suite runs at nice 19: there is no lower priority to yield to")
    term, config = dashboard
    term.wait_for(lambda s: "fast-site" in s and "UP" in s)
    engine = pids_for("engine-worker")
    engine = [pid for pid in engine if pid in pids_for(str(config))]
    ui = [pid for pid in pids_for(str(config)) if pid not in engine]
    assert len(engine) == 1 and len(ui) == 1
    engine_nice = nice_of(Path("/proc") / str(engine[0]))
    assert engine_nice == ours                       # not lowered with the screen
    threads = list((Path("/proc") / str(ui[0]) / "task").iterdir())
    assert len(threads) > 1
    assert {nice_of(t) - engine_nice for t in threads} == {19 - ours}


def test_hangup_ends_dashboard_and_engine(dashboard: tuple[Terminal, Path]):
    term, config = dashboard
    term.wait_for(lambda s: "fast-site" in s and "UP" in s)
    assert len(pids_for(str(config))) >= 2                       # the app and its engine
    term.run("kill-session", "-t", term.name)                    # like a dropped SSH session
    deadline = time.monotonic() + 10
    while pids_for(str(config)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pids_for(str(config)) == [], "a process kept running after the terminal went away"


@pytest.mark.parametrize(("dashboard", "forbidden"), [
    ({"TEXTUAL_COLOR_SYSTEM": "256"}, ["38;2;", "48;2;"]),
    ({"TEXTUAL_COLOR_SYSTEM": "standard"}, ["38;2;", "48;2;", "38;5;", "48;5;"]),
], indirect=["dashboard"], ids=["256-colours", "16-colours"])
def test_reduced_colour_terminals(dashboard: tuple[Terminal, Path], forbidden: list[str]):
    """Over SSH COLORTERM is rarely forwarded: the screen must still read right
    and use only the colours the terminal has."""
    term, _ = dashboard
    term.wait_for(lambda s: "fast-site" in s and "DOWN" in s and "refused" in s)
    styled = term.run("capture-pane", "-p", "-e", "-t", term.name)
    assert "\x1b[" in styled                      # it is coloured...
    for sequence in forbidden:                    # ...within the terminal's palette
        assert sequence not in styled, f"{sequence!r} used on a reduced-colour terminal"
    term.press("q")


SGR = re.compile(r"\x1b\[([0-9;]*)m")


def backgrounds_by_line(styled: str) -> list[tuple[str, set[str]]]:
    """Each line of a `capture-pane -e` screen as (its text, the backgrounds
    behind its visible characters), reverse video taken into account."""
    fg, bg, reverse = "default fg", "default bg", False
    lines = []
    for line in styled.split("\n"):
        text, seen, at = "", set(), 0
        for match in [*SGR.finditer(line), None]:
            chunk = line[at:match.start() if match else len(line)]
            text += chunk
            if chunk.strip():
                seen.add(fg if reverse else bg)
            if match is None:
                break
            at = match.end()
            params = [int(p) if p else 0 for p in match.group(1).split(";")]
            while params:
                code = params.pop(0)
                if code in (38, 48):          # 38;5;N or 38;2;R;G;B
                    size = 1 if params[0] == 5 else 3
                    value = ";".join(map(str, params[:size + 1]))
                    params = params[size + 1:]
                    fg, bg = (value, bg) if code == 38 else (fg, value)
                elif code == 0:
                    fg, bg, reverse = "default fg", "default bg", False
                elif code == 7 or code == 27:
                    reverse = code == 7
                elif 30 <= code <= 37 or 90 <= code <= 97 or code == 39:
                    fg = "default fg" if code == 39 else str(code)
                elif 40 <= code <= 47 or 100 <= code <= 107 or code == 49:
                    bg = "default bg" if code == 49 else str(code)
        lines.append((text, seen))
    return lines


def rows_that_stand_out(styled: str) -> tuple[list[str], list[str]]:
    """The table's rows, and those whose backgrounds no other row shares."""
    lines = backgrounds_by_line(styled)
    start = next((i for i, (text, _) in enumerate(lines) if "Last error" in text), None)
    rows = []
    for text, seen in lines[start + 1:] if start is not None else []:
        if text.strip().startswith("─"):
            break
        if ROW.match(text):
            rows.append((text, seen))
    return [text for text, _ in rows], [
        text for text, seen in rows if all(seen.isdisjoint(other) for t, other in rows
                                           if t is not text)]


@pytest.mark.parametrize("dashboard", [
    {"COLORTERM": "truecolor"}, {"TEXTUAL_COLOR_SYSTEM": "256"},
    {"TEXTUAL_COLOR_SYSTEM": "standard"}, {"TERM": "xterm"},
], indirect=True, ids=["truecolor", "256-colours", "16-colours", "plain-xterm"])
def test_the_selected_row_stands_out_in_every_theme(dashboard: tuple[Terminal, Path]):
    term, _ = dashboard
    term.wait_for(lambda s: "fast-site" in s and "DOWN" in s and "refused" in s)
    for _theme in range(4):                        # every theme shipped, in turn
        term.press("t")
        for key, row in (("Home", 0), ("j", 1)):   # the first row, then the second
            term.press(key)
            deadline = time.monotonic() + 10
            while True:
                styled = term.run("capture-pane", "-p", "-e", "-t", term.name)
                rows, standing_out = rows_that_stand_out(styled)
                if len(rows) == 3 and standing_out == [rows[row]]:
                    break
                assert time.monotonic() < deadline, f"row {row} does not stand out:\n{styled}"
                time.sleep(0.1)
    term.press("q")


def engine_pids(config: Path) -> list[int]:
    return [pid for pid in pids_for("engine-worker") if pid in pids_for(str(config))]


def test_engine_killed_restarted_then_given_up(tmux: str, tmp_path: Path):
    """kill -9 of the engine: the screen says so and the engine comes back;
    when it cannot (its config broken meanwhile), the screen says so for good
    and quitting fails with the reason."""
    with open_dashboard(tmux, tmp_path, {}, keep_open=True) as (term, config):
        term.wait_for(lambda s: "fast-site" in s and "UP" in s and "/s" in s)
        first = engine_pids(config)
        assert len(first) == 1
        os.kill(first[0], 9)
        screen = term.wait_for(lambda s: "ENGINE DOWN: restarting" in s)
        assert "STALE" in screen and "no data since" in screen and "/s" not in screen
        term.wait_for(lambda s: "● UP" in s and "/s" in s and "STALE" not in s)
        again = engine_pids(config)
        assert len(again) == 1 and again != first

        config.write_text(config.read_text() + 'interval = "soon"\n')   # restarts will fail
        os.kill(again[0], 9)
        screen = term.wait_for(lambda s: "could not be restarted" in s, seconds=40)
        assert "cannot read" in screen and "STALE" in screen
        term.press("q")
        screen = term.wait_for(lambda s: "monitor-exit=" in s)
        assert "monitor-exit=1" in screen
        assert "monitor: the engine stopped and could not be restarted" in screen
        assert engine_pids(config) == []


def test_a_target_appended_to_the_file_appears(dashboard: tuple[Terminal, Path]):
    """The daily workflow: edit the TOML while the dashboard runs; the new
    target is on the board within a couple of seconds (no key, no restart)."""
    term, config = dashboard
    term.wait_for(lambda s: "fast-site" in s and "UP" in s)
    port = re.search(r"port = (\d+)", config.read_text()).group(1)   # the demo's
    with config.open("a") as handle:
        handle.write(f'\n[[targets]]\nname = "added-by-hand"\nkind = "http"\n'
                     f'url = "http://127.0.0.1:{port}/fast"\n')
    screen = term.wait_for(lambda s: "added-by-hand" in s and "config reloaded: +1" in s)
    assert "(+added-by-hand)" in screen


def test_a_theme_file_saved_while_running_is_read(tmux: str, tmp_path: Path):
    """Theme files are watched like the config: a new one is offered at once,
    and a broken one is named on screen (the theme in use stays)."""
    folder = tmp_path / "xdg" / "monitor" / "themes"
    folder.mkdir(parents=True)
    with open_dashboard(tmux, tmp_path, {}) as (term, _config):
        term.wait_for(lambda s: "fast-site" in s and "UP" in s)
        (folder / "mine.toml").write_text(
            (ROOT / "themes" / "monitor-dark.toml").read_text().replace(
                'name = "monitor-dark"', 'name = "my-own"'))
        (folder / "broken.toml").write_text('name = "broken"\nprimary = "not a colour"\n')
        term.wait_for(lambda s: "Theme files skipped" in s and "broken.toml" in s)
        seen = ""
        for _ in range(8):   # t cycles through the themes: the new one is among them
            term.press("t")
            time.sleep(0.5)
            seen += term.screen()
            if "theme: my-own" in seen:
                break
        assert "theme: my-own" in seen, "the theme saved while running was never offered"


@pytest.mark.parametrize("pause", [0.05, 0.15, 0.3])
def test_quitting_as_the_terminal_closes_leaves_nothing_running(tmux: str, tmp_path: Path,
                                                                pause: float):
    """`q` and then the SSH session (or tmux) closing at once: Textual's input
    thread used to spin on the dead terminal and keep the process alive at
    75 % of a core, with no screen, forever."""
    with open_dashboard(tmux, tmp_path, {}) as (term, config):
        term.wait_for(lambda s: "fast-site" in s and "UP" in s)
        term.press("q")
        time.sleep(pause)
        term.run("kill-server")
        deadline = time.monotonic() + 10
        while pids_for(str(config)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pids_for(str(config)) == [], "a process kept running after quitting"
