"""/metrics from the two long-running engine processes: `run --headless` and
the dashboard's engine worker, as real processes."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import urllib.error
import urllib.request

from monitor.engine.client import ProcessEngine
from tests.cli.test_cli import clean_env
from tests.engine.test_process import Listener
from tests.export.helpers import free_port, one, parse, pick
from tests.export.test_sink import config_text


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return parse(response.read().decode())


async def scrape_until(port: int, predicate, seconds: float = 15.0) -> dict:
    deadline = time.monotonic() + seconds
    series: dict = {}
    while time.monotonic() < deadline:
        try:
            series = await asyncio.to_thread(scrape, port)
        except (urllib.error.URLError, ConnectionError):
            series = {}
        if predicate(series):
            return series
        await asyncio.sleep(0.1)
    raise AssertionError(f"not seen within {seconds}s; last scrape: {sorted(series)[:20]}")


async def test_headless_serves_and_a_sighup_reload_drops_removed_targets(tmp_path,
                                                                         control_server):
    control_server.behaviour["down"].status = 500
    port = free_port()
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, port, {"up": "up", "down": "down"}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--headless", "--config", str(path),
        cwd=tmp_path, env=clean_env(tmp_path), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        series = await scrape_until(port, lambda s: len(pick(s, "probe_success")) == 2)
        assert one(series, "probe_success", target="up") == 1
        assert one(series, "probe_success", target="down") == 0
        path.write_text(config_text(control_server, port, {"up": "up"}))
        proc.send_signal(signal.SIGHUP)
        series = await scrape_until(port, lambda s: s and not pick(s, "monitor_state",
                                                                   target="down"))
        assert one(series, "monitor_state", target="up", state="up") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 10)
    stderr = (await proc.stderr.read()).decode()
    assert code == 0, stderr
    assert f"monitor: metrics: serving http://127.0.0.1:{port}/metrics" in stderr
    assert "Traceback" not in stderr
    # the port is let go with the process
    try:
        scrape(port)
        raise AssertionError("still serving after exit")
    except urllib.error.URLError:
        pass


async def test_the_dashboards_engine_process_serves_too(tmp_path, control_server):
    port = free_port()
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, port, {"a": "a"}))
    got = Listener()
    engine = ProcessEngine(path, got)
    await engine.start()
    try:
        series = await scrape_until(port, lambda s: bool(pick(s, "probe_success", target="a")))
        assert one(series, "probe_success", target="a") == 1
        assert any(f"serving http://127.0.0.1:{port}/metrics" in e for e in got.errors)
    finally:
        await engine.stop()
