#!/usr/bin/env python3
"""Dashboard benchmark: what the full-screen dashboard costs in a real terminal.

Three sections. All use tmux at 160x50 (a private tmux server, status line off,
TERM=xterm-256color, a scratch XDG_CONFIG_HOME) and the target server of
engine_bench.py (aiohttp on uvloop at 127.0.0.1, answers every path after 20 ms).

  terminal-cost  100 http targets at 1 probe/s. First `monitor run --headless
                 --json` alone, then the dashboard (`monitor --config F --record
                 R`), one after the other, each warmed up and then measured over
                 the same window: CPU % of each process (/proc/PID/stat), RSS,
                 the latency error (latency_ms - 20) p50/p99 of the results in
                 the window, and the bytes per second the dashboard wrote to the
                 terminal (`tmux pipe-pane`).
  keypress       1,000 and 10,000 http targets at interval 60s. After every
                 target has its first result: an idle window, then presses of
                 `s` (cycle the sort) and `g` (toggle grouping); each press is
                 timed until `capture-pane` shows the screen that key must
                 produce. CPU %, RSS and bytes/s idle and under the keys.
  pingtop        pingtop 0.5 (from a scratch venv outside the repository, made
                 with pip when missing) on its own workload, 100 loopback hosts
                 127.0.0.1..100 pinged once a second, next to monitor's
                 dashboard on the same 100 hosts as icmp targets (count = 1,
                 interval 1s): CPU %, RSS, bytes/s and the RTT p50/p99 each
                 reports.

    python bench/dashboard_bench.py [--only terminal-cost|keypress|pingtop] [--seconds N]
                                    [--repeat N] [--targets 1000 10000] [--json] [--save FILE]

Every loop is bounded in count and time, there is an overall SIGALRM limit,
and every exit path kills the private tmux server (with every session on it)
and every process this script started. Traffic goes to 127.0.0.0/8 only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COLS, ROWS = 160, 50
DELAY_MS = 20.0                 # the target server's answer delay: the true latency
PINGTOP_VERSION = "0.5.0"
SORT_CYCLE = ["status", "name", "latency", "uptime"]   # monitor.engine.query.SortMode


class Overtime(BaseException):
    """The overall limit (SIGALRM) ran out: nothing may catch this but main()."""


def _load_engine_bench() -> Any:
    """engine_bench.py is a script, not a package: load it by path and reuse its
    target server, child-process and /proc helpers."""
    spec = importlib.util.spec_from_file_location("engine_bench", HERE / "engine_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


eb = _load_engine_bench()


# --- /proc helpers -----------------------------------------------------------------

def _cpu(pid: int) -> float | None:
    try:
        return eb._proc_cpu(pid)
    except (OSError, IndexError, ValueError):
        return None


def _tree(pid: int) -> set[int]:
    """`pid` and every process under it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass   # it ended as we looked
    tree, grew = {pid}, True
    while grew:
        under = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= under
        grew = bool(under)
    return tree


def _tree_cpu(pid: int) -> float | None:
    """utime + stime of a process and of every process under it: the
    engine's history writer is a child process, and its CPU is the engine's."""
    total = _cpu(pid)
    if total is None:
        return None
    return total + sum(_cpu(child) or 0.0 for child in _tree(pid) - {pid})


def _tree_mib(pid: int | None, field: str = "VmRSS") -> float | None:
    """_mib of a process and its children, summed."""
    if not pid or _status_kib(pid, field) is None:
        return None
    return round(sum(_status_kib(p, field) or 0 for p in _tree(pid)) / 1024.0, 1)


def _status_kib(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _mib(pid: int | None, field: str = "VmRSS") -> float | None:
    kib = _status_kib(pid, field) if pid else None
    return None if kib is None else round(kib / 1024.0, 1)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _descendants(pid: int) -> list[int]:
    """Every descendant of pid (one scan of /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo and len(found) < 10_000:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _pdeathsig() -> None:
    with suppress(Exception):
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _percentile(values: list[float], fraction: float) -> float | None:
    return eb._percentile(sorted(values), fraction)


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


class Sampler:
    """CPU of named processes over a window, and of the whole machine. The
    names in `trees` count their child processes too (a child that ends
    within the window takes its CPU with it: none of ours does)."""

    def __init__(self, pids: dict[str, int | None],
                 trees: tuple[str, ...] = ("monitor", "engine")) -> None:
        self.pids = {k: v for k, v in pids.items() if v}
        self.trees = trees
        self.cpu0: dict[str, float | None] = {}
        self.host0 = (0.0, 0.0)
        self.wall0 = 0.0
        self.epoch0 = 0.0

    def begin(self) -> None:
        self.cpu0 = {k: self._cpu(k, p) for k, p in self.pids.items()}
        self.host0 = eb._host_busy()
        self.wall0 = time.perf_counter()
        self.epoch0 = time.time()

    def _cpu(self, name: str, pid: int) -> float | None:
        return _tree_cpu(pid) if name in self.trees else _cpu(pid)

    def end(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall0
        host1 = eb._host_busy()
        out: dict[str, Any] = {"window_s": round(wall, 2), "t0": self.epoch0,
                               "t1": self.epoch0 + wall}
        known = 0.0
        for name, pid in self.pids.items():
            now, before = self._cpu(name, pid), self.cpu0.get(name)
            pct = None if now is None or before is None else 100.0 * (now - before) / wall
            out[f"{name}_cpu_pct"] = _r(pct, 1)
            out[f"{name}_cpu_s"] = None if now is None or before is None else now - before
            known += pct or 0.0
        total = host1[1] - self.host0[1]
        cores = os.cpu_count() or 1
        busy = 100.0 * cores * (host1[0] - self.host0[0]) / total if total else None
        out["host_busy_pct"] = _r(busy, 1)
        out["other_cpu_pct"] = None if busy is None else _r(max(0.0, busy - known), 1)
        return out


# --- tmux ------------------------------------------------------------------------------

class Tmux:
    """A private tmux server (its own socket), so killing it touches nobody else."""

    def __init__(self, workdir: Path) -> None:
        self.exe = shutil.which("tmux") or "tmux"
        self.socket = f"dashboard-bench-{os.getpid()}"
        self.conf = workdir / "tmux.conf"
        # remain-on-exit: a program that crashes leaves its traceback on screen
        self.conf.write_text("set -g status off\nset -g history-limit 200\n"
                             "set -g remain-on-exit on\n")
        self.started = False

    def run(self, *args: str, check: bool = False, timeout: float = 10.0) -> str:
        done = subprocess.run([self.exe, "-L", self.socket, "-f", str(self.conf), *args],
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def new_session(self, name: str, argv: list[str], cwd: Path) -> None:
        self.started = True
        self.run("new-session", "-d", "-s", name, "-x", str(COLS), "-y", str(ROWS),
                 "-c", str(cwd), shlex.join(argv), check=True)

    def server_pid(self) -> int | None:
        out = self.run("display-message", "-p", "#{pid}").strip()
        return int(out) if out.isdigit() else None

    def kill_server(self) -> None:
        if not self.started:
            return
        with suppress(Exception):
            self.run("kill-server", timeout=5)
        # tmux leaves its socket file behind when killed; remove ours
        base = os.environ.get("TMUX_TMPDIR") or "/tmp"
        with suppress(OSError):
            os.unlink(os.path.join(base, f"tmux-{os.getuid()}", self.socket))


class Control:
    """A tmux control-mode client on one session: commands and screen captures
    over one pipe, ~0.1 ms per capture instead of a process per poll."""

    def __init__(self, tmux: Tmux, session: str) -> None:
        self.session = session
        self.proc = subprocess.Popen(
            # no-output from the first moment: a control client that is sent the
            # pane's output and does not read it makes tmux stop reading the pane,
            # which froze the program under test (seen as a run with ~1 KB/s)
            [tmux.exe, "-L", tmux.socket, "-f", str(tmux.conf), "-C", "attach",
             "-f", "no-output", "-t", session],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=0, preexec_fn=_pdeathsig)
        self._buffer = b""
        # the attach itself answers with an empty block: resynchronise on a marker
        marker = f"sync-{os.getpid()}"
        self._write(f"display-message -p {marker}")
        for _ in range(20):
            if marker in self._block(5.0):
                break
        else:
            raise RuntimeError("tmux control client did not answer")

    def _write(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    def _line(self, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("tmux control client: no answer")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise RuntimeError("tmux control client exited")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def _block(self, timeout: float) -> str:
        """The output of the next command block (%begin ... %end/%error)."""
        deadline = time.monotonic() + timeout
        number = None
        out: list[bytes] = []
        for _ in range(100_000):
            line = self._line(deadline)
            if number is None:
                fields = line.split()
                # flags 1: a block answering this client's command (not a hook's)
                if line.startswith(b"%begin ") and len(fields) > 3 and fields[3] == b"1":
                    number = fields[2]
                continue                       # a notification between blocks
            if line.startswith((b"%end ", b"%error ")) and line.split()[2] == number:
                return b"\n".join(out).decode(errors="replace")
            out.append(line)
        raise RuntimeError("tmux control client: runaway block")

    def command(self, line: str, timeout: float = 10.0) -> str:
        self._write(line)
        return self._block(timeout)

    def capture(self) -> str:
        screen = self.command(f"capture-pane -p -t {self.session}")
        if len(screen.split("\n")) > ROWS:
            raise RuntimeError(f"tmux control client out of step: {len(screen)} lines")
        return screen

    def check_alive(self) -> None:
        """Raise with the screen (a traceback, usually) when the program has exited."""
        dead = self.command(f"display-message -p -t {self.session} "
                            "'#{pane_dead} #{pane_dead_status}'").split()
        if dead and dead[0] == "1":
            history = self.command(f"capture-pane -p -S -60 -t {self.session}")
            tail = "\n".join(line for line in history.split("\n") if line.strip())[-3000:]
            raise RuntimeError(f"the program in {self.session} exited (status "
                               f"{dead[1] if len(dead) > 1 else '?'}):\n{tail}")

    def keys(self, *keys: str) -> None:
        self.command(f"send-keys -t {self.session} " + " ".join(shlex.quote(k) for k in keys))

    def close(self) -> None:
        with suppress(Exception):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(3)


@contextmanager
def piped(control: Control, path: Path) -> Iterator[None]:
    """Everything the program writes to the terminal, appended to path."""
    path.write_bytes(b"")
    shell = "cat >> " + shlex.quote(str(path))
    control.command(f"pipe-pane -o -t {control.session} {shlex.quote(shell)}")
    try:
        yield
    finally:
        with suppress(Exception):
            control.command(f"pipe-pane -t {control.session}")   # closes the pipe
        time.sleep(0.2)                                          # let cat drain


def wait_for(control: Control, predicate: Callable[[str], bool], seconds: float,
             what: str) -> str:
    deadline = time.monotonic() + seconds
    screen = ""
    for _ in range(int(seconds * 10) + 1):
        screen = control.capture()
        if predicate(screen):
            return screen
        if time.monotonic() > deadline:
            break
        control.check_alive()
        time.sleep(0.1)
    tail = "\n".join(screen.splitlines()[:6])
    raise RuntimeError(f"timed out after {seconds:.0f}s waiting for {what}; screen began:\n{tail}")


# --- the bench itself ------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.tmux = Tmux(workdir)
        self.controls: list[Control] = []
        self.spawned: dict[int, str] = {}     # pid -> cmdline, killed at the end if alive
        self.procs: list[subprocess.Popen[bytes]] = []
        self.server: Any = None
        self.port = 0
        self.server_pid: int | None = None
        self.serial = 0
        self.poll_periods: list[float] = []   # ms per screen poll while timing keys

    # -- setup and teardown

    def start_server(self, life: float) -> None:
        self.server = eb.Child([sys.executable, str(HERE / "engine_bench.py"), "_server",
                                "--port", "0", "--deadline", str(life)])
        hello = self.server.read(30.0)
        self.port, self.server_pid = hello["port"], hello["pid"]

    def cleanup(self) -> None:
        for control in self.controls:
            control.close()
        self.tmux.kill_server()                # SIGHUP to every pane's process
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(self._alive(p) for p in self.spawned):
            time.sleep(0.1)
        for pid in self.spawned:
            if self._alive(pid):
                with suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            with suppress(Exception):
                proc.kill()
                proc.wait(5)
        if self.server is not None:
            self.server.close()

    def _alive(self, pid: int) -> bool:
        """Still running and still the process we started (not a reused pid)."""
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except OSError:
            return False
        return _cmdline(pid) == self.spawned[pid]

    def _remember(self, pid: int | None) -> None:
        if pid:
            self.spawned[pid] = _cmdline(pid)

    def session_name(self, what: str) -> str:
        self.serial += 1
        return f"dbench-{os.getpid()}-{self.serial}-{what}"

    def env_argv(self, argv: list[str]) -> list[str]:
        xdg = self.workdir / "xdg"
        xdg.mkdir(exist_ok=True)
        env = {"TERM": "xterm-256color", "XDG_CONFIG_HOME": str(xdg), "HOME": str(self.workdir),
               "LANG": "C.UTF-8", "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
        return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]

    # -- configs

    def http_config(self, targets: int, interval: str, name: str) -> Path:
        lines = ["[settings]", f'interval = "{interval}"', 'timeout = "900ms"', ""]
        for i in range(targets):
            lines += ["[[targets]]", f'name = "t{i}"', 'kind = "http"',
                      f'url = "http://127.0.0.1:{self.port}/t{i}"', ""]
        path = self.workdir / name
        path.write_text("\n".join(lines))
        return path

    def icmp_config(self, hosts: list[str]) -> Path:
        lines = ["[settings]", 'interval = "1s"', 'timeout = "900ms"', ""]
        for i, host in enumerate(hosts, 1):
            lines += ["[[targets]]", f'name = "h{i}"', 'kind = "icmp"', f'host = "{host}"',
                      "count = 1", 'wait = "800ms"', ""]
        path = self.workdir / "icmp.toml"
        path.write_text("\n".join(lines))
        return path

    # -- a program in tmux

    def open_pane(self, what: str, argv: list[str]) -> tuple[str, Control, int]:
        name = self.session_name(what)
        self.tmux.new_session(name, self.env_argv(argv), self.workdir)
        control = Control(self.tmux, name)
        self.controls.append(control)
        size = control.command(f"display-message -p -t {name} '#{{pane_width}}x#{{pane_height}}'")
        if size.strip() != f"{COLS}x{ROWS}":
            raise RuntimeError(f"pane is {size.strip()}, not {COLS}x{ROWS}")
        pane = int(control.command(f"display-message -p -t {name} '#{{pane_pid}}'").strip())
        for _ in range(100):               # until `env` has exec'd the program
            if not _cmdline(pane).startswith("env "):
                break
            time.sleep(0.05)
        self._remember(pane)
        return name, control, pane

    def close_pane(self, name: str, control: Control, quit_key: str | None,
                   pids: list[int]) -> None:
        """Quit the program with its key (so it flushes its files), then kill the session."""
        if quit_key is not None:
            with suppress(Exception):
                control.keys(quit_key)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(self._alive(p) for p in pids
                                                      if p in self.spawned):
                time.sleep(0.1)
        control.close()
        self.controls.remove(control)
        with suppress(Exception):
            self.tmux.run("kill-session", "-t", name, timeout=5)

    def open_dashboard(self, what: str, config: Path, record: Path | None,
                       startup_s: float, profile: Path | None = None,
                       options: tuple[str, ...] = ()) -> tuple[str, Control, int, int]:
        """`profile`: run the UI process under cProfile, written there when it quits;
        `options`: more command-line options for the dashboard (`--ui-nice 0`)."""
        argv = [sys.executable, "-m", "monitor", "--config", str(config), *options]
        if profile is not None:
            argv[1:2] = ["-m", "cProfile", "-o", str(profile), "-m"]
        if record is not None:
            argv += ["--record", str(record)]
        name, control, pane = self.open_pane(what, argv)
        ui = pane if "-m monitor" in _cmdline(pane) else None
        worker = None
        deadline = time.monotonic() + startup_s
        while time.monotonic() < deadline and worker is None:
            for pid in _descendants(pane):
                line = _cmdline(pid)
                if "engine-worker" in line:
                    worker = pid
                elif ui is None and "-m monitor" in line:
                    ui = pid
            time.sleep(0.1)
        if ui is None or worker is None:
            raise RuntimeError(f"dashboard processes not found under pane pid {pane} "
                               f"(ui={ui}, engine={worker}); screen:\n{control.capture()}")
        self._remember(ui)
        self._remember(worker)
        wait_for(control, lambda s: re.match(r"\s*monitor\b.*\b\d+ up\b", s) is not None,
                 startup_s, "the dashboard's first frame")
        return name, control, ui, worker

    def py_spy(self, pid: int, seconds: float, label: str) -> subprocess.Popen[bytes] | None:
        if not self.args.py_spy:
            return None
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        out = Path(self.args.py_spy) / f"{label}.txt"
        proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "100",
                                 "--format", "raw", "--nonblocking", "--duration",
                                 str(max(1, math.ceil(seconds))), "--output", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=_pdeathsig)
        self.procs.append(proc)
        return proc

    # -- section 1: the terminal cost at 100 targets

    def terminal_cost(self) -> list[dict[str, Any]]:
        """Pairs of (headless, dashboard) windows; the order alternates between pairs."""
        args = self.args
        config = self.http_config(100, "1s", "http100.toml")
        rows: list[dict[str, Any]] = []
        for pair in range(args.repeat):
            if not args.json:
                print(f"… terminal-cost: pair {pair + 1} of {args.repeat}", file=sys.stderr,
                      flush=True)
            if pair % 2 == 0:
                headless = self._headless(config)
                dash = self._dashboard_window(config)
            else:
                dash = self._dashboard_window(config)
                headless = self._headless(config)
            base = headless.get("error_p99_ms")
            for row in (headless, dash):
                p99 = row.get("error_p99_ms")
                row["p99_ratio"] = _r(p99 / base, 2) if p99 is not None and base else None
                row["pair"] = pair + 1
            dash["dashboard_cost_pct"] = _r(
                (dash.get("ui_cpu_pct") or 0.0) + (dash.get("engine_cpu_pct") or 0.0)
                - (headless.get("monitor_cpu_pct") or 0.0), 1)
            rows += [headless, dash]
        return rows

    def _headless(self, config: Path) -> dict[str, Any]:
        args = self.args
        out, err = self.workdir / "headless.jsonl", self.workdir / "headless.err"
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--headless",
                                     "--json", "-c", str(config)], stdin=subprocess.DEVNULL,
                                    stdout=stdout, stderr=stderr, cwd=self.workdir,
                                    preexec_fn=_pdeathsig)
        self.procs.append(proc)
        self._remember(proc.pid)
        try:
            deadline = time.monotonic() + 30
            while out.stat().st_size == 0:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("headless monitor gave no result: "
                                       + err.read_text()[-500:])
                time.sleep(0.1)
            time.sleep(args.warmup)
            sampler = Sampler({"monitor": proc.pid, "server": self.server_pid})
            sampler.begin()
            spy = self.py_spy(proc.pid, args.seconds, "terminal-cost-headless")
            time.sleep(args.seconds)
            row = sampler.end()
            row["monitor_rss_mib"] = _mib(proc.pid)
            if spy is not None:
                spy.wait(30)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        row.update(latency_errors(out, row["t0"], row["t1"], DELAY_MS))
        row["run"] = "headless"
        return row

    def _dashboard_window(self, config: Path) -> dict[str, Any]:
        args = self.args
        record = self.workdir / "dashboard-record.jsonl"
        record.write_bytes(b"")
        name, control, ui, worker = self.open_dashboard("cost", config, record, 60.0)
        try:
            time.sleep(args.warmup)
            tmux_pid = self.tmux.server_pid()
            sampler = Sampler({"ui": ui, "engine": worker, "tmux": tmux_pid,
                               "server": self.server_pid})
            written = self.workdir / "terminal-cost.out"
            with piped(control, written):
                sampler.begin()
                spy = self.py_spy(ui, args.seconds, "terminal-cost-ui")
                time.sleep(args.seconds)
                row = sampler.end()
            row["ui_rss_mib"], row["engine_rss_mib"] = _mib(ui), _mib(worker)
            row["bytes_per_s"] = round(written.stat().st_size / row["window_s"])
            control.check_alive()
            if spy is not None:
                spy.wait(30)
        finally:
            self.close_pane(name, control, "q", [ui, worker])
        row.update(latency_errors(record, row["t0"], row["t1"], DELAY_MS))
        row["run"] = "dashboard"
        return row

    # -- section 2: keypress-to-frame at 1,000 and 10,000 targets

    def keypress(self) -> dict[str, list[dict[str, Any]]]:
        phases: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        for count in self.args.targets:
            if not self.args.json:
                print(f"… keypress: {count} targets", file=sys.stderr, flush=True)
            p, k = self._keypress_one(count)
            phases += p
            keys += k
        return {"phases": phases, "keys": keys}

    def _keypress_one(self, count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        args = self.args
        config = self.http_config(count, "60s", f"http{count}.toml")
        name, control, ui, worker = self.open_dashboard(f"keys{count}", config, None, 120.0)
        phases: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        try:
            began = time.monotonic()
            # warm-up: every target has its first result (the 60 s stagger), then settle
            wait_for(control, lambda s: "pending" not in s.split("\n", 1)[0],
                     90.0, f"all {count} targets to leave PENDING")
            first_round_s = time.monotonic() - began
            time.sleep(args.warmup)
            tmux_pid = self.tmux.server_pid()
            pids = {"ui": ui, "engine": worker, "tmux": tmux_pid, "server": self.server_pid}

            def phase(label: str, body: Callable[[], None], seconds_hint: float) -> None:
                sampler = Sampler(pids)
                slug = re.sub(r"[^a-z0-9]+", "-", label)
                written = self.workdir / f"keys{count}-{slug}.out"
                with piped(control, written):
                    sampler.begin()
                    spy = self.py_spy(ui, seconds_hint, f"keypress-{count}-{slug}")
                    body()
                    row = sampler.end()
                row.update({"targets": count, "phase": label, "ui_rss_mib": _mib(ui),
                            "ui_hwm_mib": _mib(ui, "VmHWM"), "engine_rss_mib": _mib(worker),
                            "bytes_per_s": round(written.stat().st_size / row["window_s"]),
                            "first_round_s": round(first_round_s, 1)})
                if spy is not None:
                    with suppress(subprocess.TimeoutExpired):
                        spy.wait(30)
                phases.append(row)

            phase("idle", lambda: time.sleep(args.idle_seconds), args.idle_seconds)
            for key in ("s", "g"):
                times: list[float] = []
                missed: list[int] = []
                self.poll_periods.clear()

                def presses(key: str = key, times: list[float] = times,
                            missed: list[int] = missed) -> None:
                    for press in range(args.presses):
                        took = self._time_key(control, key)
                        if took is None:
                            control.check_alive()
                            missed.append(press)
                        else:
                            times.append(took)
                        time.sleep(args.gap)

                hint = args.presses * (args.gap + 0.5)
                phase(f"key {key}", presses, hint)
                keys.append({"targets": count, "key": key, "presses": len(times),
                             "misses": len(missed),
                             "median_ms": _r(_percentile(times, 0.5), 1),
                             "p90_ms": _r(_percentile(times, 0.9), 1),
                             "max_ms": _r(max(times) if times else None, 1),
                             "min_ms": _r(min(times) if times else None, 1),
                             "poll_ms": args.poll_ms,
                             "poll_period_ms": _r(_percentile(self.poll_periods, 0.5), 2),
                             "all_ms": [round(t, 1) for t in times]})
        finally:
            self.close_pane(name, control, "q", [ui, worker])
        return phases, keys

    def _time_key(self, control: Control, key: str) -> float | None:
        """ms from sending `key` until the screen shows what that key must produce."""
        screen = control.capture()
        if not _has_rows(screen):
            return None
        if key == "s":
            mode = _sort_mode(screen)
            want = SORT_CYCLE[(SORT_CYCLE.index(mode) + 1) % len(SORT_CYCLE)]

            def done(s: str) -> bool:
                return _sort_mode(s) == want and _has_rows(s)
        else:
            grouped = _grouped(screen)
            if grouped is None:
                return None

            def done(s: str) -> bool:
                return _grouped(s) is (not grouped) and _has_rows(s)
        poll = self.args.poll_ms / 1000.0
        start = time.perf_counter()
        control.keys(key)
        limit = start + self.args.key_timeout
        for polls in range(1, int(self.args.key_timeout / poll) + 10):
            if done(control.capture()):
                took = time.perf_counter() - start
                self.poll_periods.append(took / polls * 1000.0)
                return took * 1000.0
            if time.perf_counter() > limit:
                break
            time.sleep(poll)
        return None

    # -- section 3: pingtop

    def pingtop(self) -> dict[str, Any]:
        hosts = [f"127.0.0.{i}" for i in range(1, 101)]
        out: dict[str, Any] = {"rows": [], "problem": None}
        exe, problem = self._pingtop_exe()
        if os.geteuid() != 0:
            problem = problem or "not root: pingtop would fall back to SOCK_DGRAM ICMP sockets, " \
                                 "which its receive path (IP header offset 20) does not parse"
        if problem:
            out["problem"] = problem
        else:
            try:
                out["rows"].append(self._pingtop_window(exe, hosts))
            except (RuntimeError, OSError, ValueError, KeyError) as exc:
                out["problem"] = f"pingtop did not run: {exc}"
        config = self.icmp_config(hosts)
        out["rows"].append(self._monitor_icmp_window(config))
        return out

    def _pingtop_exe(self) -> tuple[Path, str | None]:
        venv = Path(self.args.pingtop_venv)
        exe = venv / "bin" / "pingtop"
        if exe.exists():
            return exe, None
        if not self.args.install_pingtop:
            return exe, f"{exe} is missing (run without --no-install-pingtop to make it)"
        if not self.args.json:
            print(f"… making {venv} with pip install pingtop=={PINGTOP_VERSION}",
                  file=sys.stderr, flush=True)
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(venv / "bin" / "pip"), "install", "-q", f"pingtop=={PINGTOP_VERSION}"]]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return exe, f"{shlex.join(step)} failed: {exc}"
            if done.returncode != 0:
                return exe, f"{shlex.join(step)} failed: {(done.stderr or done.stdout)[-400:]}"
        return exe, None if exe.exists() else f"{exe} missing after pip install"

    def _pingtop_window(self, exe: Path, hosts: list[str]) -> dict[str, Any]:
        args = self.args
        hosts_file = self.workdir / "pingtop-hosts.txt"
        hosts_file.write_text("\n".join(hosts) + "\n")
        export = self.workdir / "pingtop-export.json"
        with suppress(FileNotFoundError):
            export.unlink()
        name, control, pane = self.open_pane("pingtop", [
            str(exe), "--hosts-file", str(hosts_file), "--no-summary", "--export", str(export)])
        pid = pane
        try:
            if "pingtop" not in _cmdline(pane):
                found = [p for p in _descendants(pane) if "pingtop" in _cmdline(p)]
                if not found:
                    raise RuntimeError(f"no pingtop process under pane pid {pane}")
                pid = found[0]
                self._remember(pid)
            wait_for(control, lambda s: _pingtop_sent(s) > 0, 60.0, "pingtop's first results")
            time.sleep(args.warmup)
            tmux_pid = self.tmux.server_pid()
            sampler = Sampler({"pingtop": pid, "tmux": tmux_pid})
            written = self.workdir / "pingtop.out"
            with piped(control, written):
                sent0 = _pingtop_sent(control.capture())
                sampler.begin()
                spy = self.py_spy(pid, args.seconds, "pingtop")
                time.sleep(args.seconds)
                row = sampler.end()
                sent1 = _pingtop_sent(control.capture())
            row["rss_mib"], row["hwm_mib"] = _mib(pid), _mib(pid, "VmHWM")
            row["bytes_per_s"] = round(written.stat().st_size / row["window_s"])
            if spy is not None:
                spy.wait(30)
        finally:
            self.close_pane(name, control, "q", [pid])
        deadline = time.monotonic() + 10
        while not export.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not export.exists():
            raise RuntimeError("pingtop wrote no export on quit")
        snapshot = json.loads(export.read_text())
        per_host = max(1, round((sent1 - sent0) / max(1, len(snapshot["hosts"]))))
        rtts: list[float] = []
        lost = 0
        for host in snapshot["hosts"]:
            # its history keeps the last 60 samples; the window's are the last `per_host`
            for value in host.get("history_ms", [])[-per_host:]:
                if value is None:
                    lost += 1
                else:
                    rtts.append(float(value))
        row.update({"program": f"pingtop {snapshot_version()}", "samples": len(rtts),
                    "lost": lost, "rtt_p50_ms": _r(_percentile(rtts, 0.5), 3),
                    "rtt_p99_ms": _r(_percentile(rtts, 0.99), 3),
                    "rtt_max_ms": _r(max(rtts) if rtts else None, 3),
                    "cpu_pct": row.get("pingtop_cpu_pct"), "samples_note":
                    f"last {per_host} of each host's history (Sent {sent0}→{sent1})"
                    + (" — window longer than its 60-sample history" if per_host > 60 else "")})
        return row

    def _monitor_icmp_window(self, config: Path) -> dict[str, Any]:
        args = self.args
        record = self.workdir / "icmp-record.jsonl"
        record.write_bytes(b"")
        name, control, ui, worker = self.open_dashboard("icmp", config, record, 60.0)
        try:
            time.sleep(args.warmup)
            tmux_pid = self.tmux.server_pid()
            sampler = Sampler({"ui": ui, "engine": worker, "tmux": tmux_pid})
            written = self.workdir / "icmp.out"
            with piped(control, written):
                sampler.begin()
                time.sleep(args.seconds)
                row = sampler.end()
            row["ui_rss_mib"], row["engine_rss_mib"] = _mib(ui), _mib(worker)
            row["rss_mib"] = _r((row["ui_rss_mib"] or 0) + (row["engine_rss_mib"] or 0), 1)
            row["bytes_per_s"] = round(written.stat().st_size / row["window_s"])
        finally:
            self.close_pane(name, control, "q", [ui, worker])
        lat = latency_errors(record, row["t0"], row["t1"], 0.0)
        row.update({"program": f"monitor {_version('monitor')} (dashboard, icmp count = 1)",
                    "samples": lat["ok"], "lost": lat["probes"] - lat["ok"],
                    "rtt_p50_ms": lat["error_p50_ms"], "rtt_p99_ms": lat["error_p99_ms"],
                    "rtt_max_ms": lat["error_max_ms"],
                    "cpu_pct": _r((row.get("ui_cpu_pct") or 0) + (row.get("engine_cpu_pct") or 0),
                                  1)})
        return row


def _sort_mode(screen: str) -> str:
    first = screen.split("\n", 1)[0]
    match = re.search(r"\bsort (name|latency|uptime)\b", first)
    return match.group(1) if match else "status"


def _grouped(screen: str) -> bool | None:
    """The summary line says "grouped" (at every width: the Group column
    shows only on wide screens); None when no header is on screen."""
    lines = screen.split("\n")
    for line in lines[:4]:
        words = line.split()
        if "State" in words and "Target" in words:
            return re.search(r"· grouped\b", lines[0]) is not None
    return None


def _has_rows(screen: str) -> bool:
    """A summary line, a header and target rows below it: a whole frame."""
    lines = screen.split("\n")
    rows = sum(1 for line in lines[2:] if re.match(r"\s*[●▲✖…‖▾] ", line))
    return bool(re.match(r"\s*monitor\b", lines[0])) and _grouped(screen) is not None \
        and rows >= 5


def _pingtop_sent(screen: str) -> int:
    match = re.search(r"Sent (\d+)", screen)
    return int(match.group(1)) if match else 0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def snapshot_version() -> str:
    return PINGTOP_VERSION


def latency_errors(path: Path, t0: float, t1: float, true_ms: float) -> dict[str, Any]:
    """Result lines ({"event": "result", ...}) started inside [t0, t1): latency - true_ms."""
    errors: list[float] = []
    probes = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if item.get("event") != "result":
                continue
            at = datetime.fromisoformat(item["checked_at"]).timestamp()
            if not t0 <= at < t1:
                continue
            probes += 1
            if item.get("ok") and item.get("latency_ms") is not None:
                errors.append(item["latency_ms"] - true_ms)
    return {"probes": probes, "ok": len(errors),
            "error_p50_ms": _r(_percentile(errors, 0.5), 3),
            "error_p99_ms": _r(_percentile(errors, 0.99), 3),
            "error_max_ms": _r(max(errors) if errors else None, 3)}


# --- report ------------------------------------------------------------------------------

def facts() -> dict[str, Any]:
    out = eb.machine_facts()
    out["textual"] = _version("textual")
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no", "--", "monitor", "pyproject.toml"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        out["commit"] = (commit or "unknown") + (" with local changes to monitor/" if dirty
                                                 else "")
    except OSError:
        out["commit"] = "unknown"
    try:
        out["tmux"] = subprocess.run(["tmux", "-V"], capture_output=True, text=True,
                                     timeout=5).stdout.strip()
    except OSError:
        out["tmux"] = "missing"
    return out


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown(result: dict[str, Any], args: argparse.Namespace) -> str:
    m = result["facts"]
    out = [f"Dashboard benchmark, {m['date']}: {m['nproc']} cores ({m['cpu']}), Linux "
           f"{m['kernel']}, Python {m['python']}, textual {m['textual']}, aiohttp {m['aiohttp']}, "
           f"uvloop {m['uvloop']}, monitor {m['monitor']} (commit {m['commit']}), {m['tmux']} "
           f"at {COLS}x{ROWS}, "
           f"TERM=xterm-256color; warm-up {args.warmup:g} s, window {args.seconds:g} s.", ""]
    if "terminal-cost" in result:
        out += ["### 100 http targets at 1 probe/s: headless, then the dashboard", "",
                "| pair | run | probes | UI CPU % | engine CPU % | dashboard cost % | UI RSS MiB "
                "| engine RSS MiB | error p50 ms | error p99 ms | p99 ratio | bytes/s to terminal "
                "| tmux CPU % | server CPU % | other CPU % |",
                "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in result["terminal-cost"]:
            head = row["run"] == "headless"
            out.append(
                f"| {row['pair']} | {row['run']} | {row['probes']} "
                f"| {'–' if head else _f(row.get('ui_cpu_pct'))} "
                f"| {_f(row.get('monitor_cpu_pct') if head else row.get('engine_cpu_pct'))} "
                f"| {_f(row.get('dashboard_cost_pct'))} "
                f"| {'–' if head else _f(row.get('ui_rss_mib'))} "
                f"| {_f(row.get('monitor_rss_mib') if head else row.get('engine_rss_mib'))} "
                f"| {_f(row['error_p50_ms'], 2)} | {_f(row['error_p99_ms'], 2)} "
                f"| {_f(row.get('p99_ratio'), 2)} | {_f(row.get('bytes_per_s'))} "
                f"| {_f(row.get('tmux_cpu_pct'))} | {_f(row.get('server_cpu_pct'))} "
                f"| {_f(row.get('other_cpu_pct'))} |")
        ratios = sorted(r["p99_ratio"] for r in result["terminal-cost"]
                        if r["run"] == "dashboard" and r.get("p99_ratio") is not None)
        costs = sorted(r["dashboard_cost_pct"] for r in result["terminal-cost"]
                       if r.get("dashboard_cost_pct") is not None)
        if ratios:
            within = sum(1 for r in ratios if r <= 1.25)
            out += ["", f"p99 ratio over {len(ratios)} pair(s): median "
                        f"{statistics.median(ratios):.2f}, range {ratios[0]:.2f}–{ratios[-1]:.2f}, "
                        f"{within} of {len(ratios)} within 1.25 (the aim). Dashboard cost: "
                        f"median {statistics.median(costs):.1f} % of a core."]
        out.append("")
    if "keypress" in result:
        data = result["keypress"]
        out += ["### Keypress to frame, interval 60s (after every target's first result)", "",
                "| targets | key | presses | median ms | p90 ms | min ms | max ms "
                "| resolution ms |",
                "|---:|---|---:|---:|---:|---:|---:|---:|"]
        for row in data["keys"]:
            miss = f" (+{row['misses']} missed)" if row["misses"] else ""
            out.append(f"| {row['targets']} | `{row['key']}` | {row['presses']}{miss} "
                       f"| {_f(row['median_ms'])} | {_f(row['p90_ms'])} | {_f(row['min_ms'])} "
                       f"| {_f(row['max_ms'])} | {_f(row['poll_period_ms'], 2)} |")
        out += ["", "| targets | phase | seconds | UI CPU % | engine CPU % | UI RSS MiB "
                "| UI peak RSS MiB | engine RSS MiB | bytes/s to terminal | tmux CPU % "
                "| server CPU % | other CPU % |",
                "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in data["phases"]:
            out.append(f"| {row['targets']} | {row['phase']} | {_f(row['window_s'])} "
                       f"| {_f(row.get('ui_cpu_pct'))} | {_f(row.get('engine_cpu_pct'))} "
                       f"| {_f(row['ui_rss_mib'])} | {_f(row['ui_hwm_mib'])} "
                       f"| {_f(row['engine_rss_mib'])} | {_f(row['bytes_per_s'])} "
                       f"| {_f(row.get('tmux_cpu_pct'))} | {_f(row.get('server_cpu_pct'))} "
                       f"| {_f(row.get('other_cpu_pct'))} |")
        out.append("")
    if "pingtop" in result:
        data = result["pingtop"]
        out += ["### 100 loopback hosts pinged once a second: pingtop 0.5 and monitor", ""]
        if data.get("problem"):
            out += [f"pingtop: {data['problem']}", ""]
        out += ["| program | CPU % | RSS MiB | RTT p50 ms | RTT p99 ms | RTT max ms | samples "
                "| lost | bytes/s to terminal | tmux CPU % | other CPU % |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in data["rows"]:
            cpu = _f(row.get("cpu_pct"))
            if "ui_cpu_pct" in row:
                cpu += (f" (UI {_f(row.get('ui_cpu_pct'))}"
                        f" + engine {_f(row.get('engine_cpu_pct'))})")
            rss = _f(row.get("rss_mib"))
            if "ui_rss_mib" in row:
                rss += f" (UI {_f(row['ui_rss_mib'])} + engine {_f(row['engine_rss_mib'])})"
            out.append(f"| {row['program']} | {cpu} | {rss} | {_f(row['rtt_p50_ms'], 2)} "
                       f"| {_f(row['rtt_p99_ms'], 2)} | {_f(row['rtt_max_ms'], 2)} "
                       f"| {row['samples']} | {row['lost']} | {_f(row.get('bytes_per_s'))} "
                       f"| {_f(row.get('tmux_cpu_pct'))} | {_f(row.get('other_cpu_pct'))} |")
        out.append("")
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------

SECTIONS = ("terminal-cost", "keypress", "pingtop")


def overall_limit(args: argparse.Namespace, sections: list[str]) -> float:
    limit = 60.0
    window = args.warmup + args.seconds + 45.0
    if "terminal-cost" in sections:
        limit += 2 * window * args.repeat
    if "keypress" in sections:
        per_key = args.presses * (args.gap + args.key_timeout)
        limit += len(args.targets) * (120 + 90 + args.warmup + args.idle_seconds + 2 * per_key
                                      + 60)
    if "pingtop" in sections:
        limit += 2 * window + (650 if args.install_pingtop else 0)
    return limit


def run(args: argparse.Namespace) -> int:
    missing = [n for n in ("uvloop", "aiohttp", "monitor", "textual")
               if importlib.util.find_spec(n) is None]
    if missing or not shutil.which("tmux"):
        print(f"dashboard_bench: needs {', '.join(missing) or 'tmux'}; from the repository root: "
              "pip install -e . (and apt-get install tmux)", file=sys.stderr)
        return 2
    sections = args.only or list(SECTIONS)
    limit = args.timeout or overall_limit(args, sections)
    result: dict[str, Any] = {"facts": facts(), "command": shlex.join(
        ["python", "bench/dashboard_bench.py", *sys.argv[1:]]), "settings": {
        k: v for k, v in vars(args).items() if k not in ("json", "save")}, "limit_s": limit}
    if args.py_spy:
        os.makedirs(args.py_spy, exist_ok=True)

    def on_alarm(_signum: int, _frame: Any) -> None:
        raise Overtime(f"benchmark exceeded its overall limit of {limit:.0f}s")

    workdir = Path(tempfile.mkdtemp(prefix="dashboard-bench-"))
    bench = Bench(args, workdir)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: on_alarm(0, None))
    signal.alarm(math.ceil(limit))
    try:
        bench.start_server(limit + 30.0)
        for section in SECTIONS:
            if section not in sections:
                continue
            if not args.json:
                print(f"… {section}", file=sys.stderr, flush=True)
            if section == "terminal-cost":
                result[section] = bench.terminal_cost()
            elif section == "keypress":
                result[section] = bench.keypress()
            else:
                result[section] = bench.pingtop()
    finally:
        signal.alarm(0)
        bench.cleanup()
        if args.keep:
            print(f"dashboard_bench: files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(markdown(result, args))
        print(f"\nCommand: `{result['command']}`")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The dashboard's own cost in tmux: CPU, RSS, bytes/s, keypress-to-frame, "
                    "and pingtop 0.5 next to monitor.")
    parser.add_argument("--only", action="append", choices=SECTIONS,
                        help="run only this section (repeatable; default: all three)")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="measurement window of terminal-cost and pingtop (30)")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="warm-up before each window (5); keypress waits first for every "
                             "target's first result")
    parser.add_argument("--repeat", type=int, default=1,
                        help="terminal-cost: headless/dashboard pairs, order alternating (1)")
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 10000],
                        help="keypress: target counts (1000 10000)")
    parser.add_argument("--idle-seconds", type=float, default=15.0,
                        help="keypress: the idle window before the presses (15)")
    parser.add_argument("--presses", type=int, default=16,
                        help="keypress: presses of each key, s and g (16: both end where "
                             "they began)")
    parser.add_argument("--gap", type=float, default=0.5, help="keypress: pause between presses")
    parser.add_argument("--poll-ms", type=float, default=2.0,
                        help="keypress: screen poll interval, the resolution (2)")
    parser.add_argument("--key-timeout", type=float, default=10.0,
                        help="keypress: give up on a press after this many seconds (10)")
    parser.add_argument("--pingtop-venv", default="/tmp/pingtop-venv",
                        help="scratch venv holding pingtop, outside the repository")
    parser.add_argument("--no-install-pingtop", dest="install_pingtop", action="store_false",
                        help="do not create the pingtop venv with pip when it is missing")
    parser.add_argument("--py-spy", metavar="DIR",
                        help="py-spy record (raw) the UI in each window into DIR (inflates CPU)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--timeout", type=float, default=None,
                        help="hard overall limit in seconds (default: from the workload)")
    parser.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    parser.add_argument("--save", metavar="FILE", help="also write the JSON result to FILE")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.presses < 1 or args.poll_ms <= 0 \
            or min(args.targets) < 1 or args.repeat < 1:
        parser.error("--seconds > 0, --warmup >= 0, --presses >= 1, --poll-ms > 0, "
                     "--targets >= 1, --repeat >= 1")
    try:
        return run(args)
    except (Overtime, RuntimeError, TimeoutError) as exc:   # all cleaned up by then
        print(f"dashboard_bench: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
