"""A real Prometheus scraping real `monitor run --headless` processes, asked
in PromQL over its HTTP API: the names blackbox_exporter dashboards use, our
own figures, and two monitors in two locations feeding one Prometheus."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

from tests.cli.test_cli import clean_env
from tests.export.helpers import free_port
from tests.export.prometheus import BINARY, MISSING, Prometheus, values

pytestmark = pytest.mark.skipif(BINARY is None, reason=MISSING)
CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"


def headless(tmp_path: Path, name: str, config: str) -> subprocess.Popen:
    path = tmp_path / f"{name}.toml"
    path.write_text(config)
    return subprocess.Popen([sys.executable, "-m", "monitor", "run", "--headless",
                             "--config", str(path)], cwd=tmp_path, env=clean_env(tmp_path),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=(tmp_path / f"{name}.err").open("wb"))


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


@pytest.fixture
async def shop():
    """A loopback site: /ok answers, /broken fails, and /shop turns away one
    location's monitor (as a CDN edge or a geo block would), told apart by
    the User-Agent each location's config sets."""
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=503, text="down")

    async def shop_page(request: web.Request) -> web.Response:
        if "tokyo" in request.headers.get("User-Agent", ""):
            return web.Response(status=403, text="not from there")
        return web.Response(text="welcome")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/broken", broken)
    app.router.add_get("/shop", shop_page)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    await runner.cleanup()


def monitor_config(base: str, port: int, location: str = "", names=("up", "down")) -> str:
    text = ('[settings]\ninterval = "500ms"\ntimeout = "400ms"\n'
            f'metrics = "127.0.0.1:{port}"\n')
    if location:
        text += f'location = "{location}"\nuser_agent = "monitor ({location})"\n'
    paths = {"up": "ok", "down": "broken", "shop": "shop"}
    for name in names:
        text += (f'\n[[targets]]\nname = "{name}"\nkind = "http"\nurl = "{base}/{paths[name]}"\n'
                 'group = "web"\n')
    return text


async def test_prometheus_reads_blackbox_names_and_our_own(tmp_path, shop):
    port = free_port()
    proc = headless(tmp_path, "monitor", monitor_config(shop, port))
    prometheus = Prometheus(tmp_path, [port])
    try:
        await asyncio.to_thread(prometheus.wait_ready)

        def query_until(expr, predicate):
            return asyncio.to_thread(prometheus.query_until, expr, predicate)

        success = await query_until("probe_success", lambda r: len(r) == 2)
        assert values(success, "target") == {"up": 1.0, "down": 0.0}
        assert {s["metric"]["group"] for s in success} == {"web"}
        assert {s["metric"]["job"] for s in success} == {"monitor"}
        # plain http to an address: no resolve, no tls phase
        phases = await query_until('probe_http_duration_seconds{target="up"}',
                                   lambda r: len(r) == 3)
        assert set(values(phases, "phase")) == {"connect", "processing", "transfer"}
        assert values(phases, "phase")["connect"] > 0
        status = await query_until("probe_http_status_code", lambda r: len(r) == 2)
        assert values(status, "target") == {"up": 200.0, "down": 503.0}
        state = await query_until('monitor_state == 1', lambda r: len(r) == 2)
        assert {(s["metric"]["target"], s["metric"]["state"]) for s in state} == {
            ("up", "up"), ("down", "down")}
        # the phase histogram over every probe, as a dashboard asks for a p95
        p95 = await query_until(
            'histogram_quantile(0.95, sum by (le, phase) '
            '(rate(monitor_phase_duration_seconds_bucket{kind="http"}[5s])))',
            lambda r: {"connect", "ttfb"} <= set(values(r, "phase")))
        assert 0 < values(p95, "phase")["connect"] <= 1.0
        rate = await query_until('rate(monitor_probes_total{target="up"}[5s])',
                                 lambda r: r and float(r[0]["value"][1]) > 0.5)
        assert float(rate[0]["value"][1]) < 10
        uptime = await query_until('monitor_uptime_ratio{window="since_start"}',
                                   lambda r: len(r) == 2)
        assert values(uptime, "target") == {"up": 1.0, "down": 0.0}
        lag = await query_until("monitor_engine_lag_seconds", lambda r: len(r) == 1)
        assert 0 <= float(lag[0]["value"][1]) < 5
        up = await query_until('up{job="monitor"}', lambda r: r and r[0]["value"][1] == "1")
        assert len(up) == 1
    finally:
        prometheus.stop()
        code = stop(proc)
    assert code == 0, (tmp_path / "monitor.err").read_text()


async def test_two_locations_one_prometheus_a_target_down_from_one_only(tmp_path, shop):
    paris, tokyo = free_port(), free_port()
    procs = [headless(tmp_path, "paris", monitor_config(shop, paris, "paris", ("shop", "up"))),
             headless(tmp_path, "tokyo", monitor_config(shop, tokyo, "tokyo", ("shop", "up")))]
    prometheus = Prometheus(tmp_path, [paris, tokyo], rule_files=[CONTRIB / "alerts.yml"])
    try:
        await asyncio.to_thread(prometheus.wait_ready)

        def query_until(expr, predicate):
            return asyncio.to_thread(prometheus.query_until, expr, predicate)

        # the query from the README: down from somewhere, up from somewhere else
        split = await query_until(
            'count by (target) (monitor_state{state="down"}) '
            '< count by (target) (monitor_state{state!="paused"})', lambda r: len(r) == 1)
        assert values(split, "target") == {"shop": 1.0}
        where = await query_until('probe_success{target="shop"} == 0', lambda r: len(r) == 1)
        assert values(where, "location") == {"tokyo": 0.0}
        both = await query_until('probe_success{target="up"}', lambda r: len(r) == 2)
        assert values(both, "location") == {"paris": 1.0, "tokyo": 1.0}
        # the example rule sees it too (pending: its `for` is minutes)
        alerts = await asyncio.to_thread(
            prometheus.query_until, 'ALERTS{alertname="TargetDownFromSomeLocations"}',
            lambda r: len(r) == 1)
        assert alerts[0]["metric"]["target"] == "shop"
        assert alerts[0]["metric"]["alertstate"] == "pending"
        assert not prometheus.query('ALERTS{alertname="TargetDown"}')
        rules = prometheus.api("/api/v1/rules")["groups"]
        assert all(rule["health"] == "ok" for group in rules for rule in group["rules"])
    finally:
        prometheus.stop()
        codes = [stop(proc) for proc in procs]
    assert codes == [0, 0], [(tmp_path / f"{n}.err").read_text() for n in ("paris", "tokyo")]
