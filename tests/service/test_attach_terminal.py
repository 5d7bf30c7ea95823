"""End to end in tmux: a running service, a dashboard attached to it, keys
pressed, quit; the service probes on."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.test_terminal import ROOT, Terminal, free_port, table_rows, tmux  # noqa: F401
from tests.service.conftest import write_config


def test_dashboard_attaches_to_a_running_service(tmux: str, tmp_path: Path):  # noqa: F811
    runtime = Path(tempfile.mkdtemp(prefix="msvc-", dir="/tmp"))
    port = free_port()
    config = write_config(tmp_path / "svc.toml", [
        ("fast-site", f"http://127.0.0.1:{port}/fast"),
        ("broken-site", f"http://127.0.0.1:{port}/failing")],
        interval="500ms", extra=f"\n[demo]\nenabled = true\nport = {port}\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "XDG_RUNTIME_DIR": str(runtime)}
    log = open(tmp_path / "service.log", "w+")
    service = subprocess.Popen([sys.executable, "-m", "monitor", "serve", "--config", str(config)],
                               env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=log, cwd=ROOT)
    name = f"monitor-attach-{os.getpid()}-{port}"
    term = Terminal(tmux, name)
    try:
        deadline = time.monotonic() + 20
        while "listening for dashboards" not in (tmp_path / "service.log").read_text():
            assert time.monotonic() < deadline and service.poll() is None, "service never listened"
            time.sleep(0.1)
        time.sleep(1.5)   # some history before the dashboard opens
        command = " ".join(["env", *(f"{k}={v}" for k, v in env.items()),
                            "TERM=xterm-256color", sys.executable, "-m", "monitor", "--config",
                            str(config)])
        term.run("-f", "/dev/null", "new-session", "-d", "-s", name, "-x", "120", "-y", "30",
                 "-c", str(ROOT), command)
        screen = term.wait_for(lambda s: f"attached to service (pid {service.pid}" in s
                               and "UP" in s and "DOWN" in s)
        rows = table_rows(screen)
        # the trend has history from the first frame: several samples already
        fast_row = next(row for row in rows if "fast-site" in row)
        assert sum(ch in "▁▂▃▄▅▆▇█" for ch in fast_row) >= 2
        term.press("/")
        term.wait_for(lambda s: "filter: name" in s)
        term.press("fast", "Enter")
        term.wait_for(lambda s: len(table_rows(s)) == 1)
        term.press("p")                                     # pause it: the service does
        term.wait_for(lambda s: "PAUS" in s and "paused by user" in s)
        assert "pause fast-site (asked by a dashboard" in (tmp_path / "service.log").read_text()
        term.press("q")
        deadline = time.monotonic() + 10
        while term.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not term.alive(), "the dashboard did not quit"
        # the service lives on, probing (the paused target stays paused)
        assert service.poll() is None
        before = subprocess.run([sys.executable, "-m", "monitor", "status", "--json",
                                 "--config", str(config)], env=env, capture_output=True,
                                text=True, timeout=30)
        time.sleep(1.5)
        after = subprocess.run([sys.executable, "-m", "monitor", "status", "--json",
                                "--config", str(config)], env=env, capture_output=True,
                               text=True, timeout=30)
        assert after.returncode == 1   # broken-site is down
        was = {r["name"]: r for r in map(json.loads, before.stdout.splitlines())}
        now = {r["name"]: r for r in map(json.loads, after.stdout.splitlines())}
        assert now["fast-site"]["state"] == "paused"
        assert now["broken-site"]["checked_at"] > was["broken-site"]["checked_at"]
    finally:
        term.run("kill-server")
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(10)
        except subprocess.TimeoutExpired:
            service.kill()
        log.close()
        shutil.rmtree(runtime, ignore_errors=True)
