"""The metrics sink in a real engine host: a real loopback target server,
/metrics fetched over real HTTP, reloads from a real config file."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from monitor import __version__
from monitor.config import load_config
from monitor.engine.host import EngineHost
from monitor.engine.sinks import CallbackSink
from monitor.export import MetricsSink
from monitor.export.server import MAX_CLIENTS
from tests.export.helpers import free_port, one, parse, pick


def config_text(server, port: int | None, targets: dict[str, str], location: str = "",
                groups: dict[str, str] | None = None, extra: str = "") -> str:
    text = ('[settings]\ninterval = "200ms"\ntimeout = "150ms"\nfailure_threshold = 1\n'
            f'{extra}')
    if port is not None:
        text += f'metrics = "127.0.0.1:{port}"\n'
    if location:
        text += f'location = "{location}"\n'
    for name, path in targets.items():
        group = (groups or {}).get(name, "")
        text += (f'\n[[targets]]\nname = "{name}"\nkind = "http"\nurl = "{server.url(path)}"\n'
                 f'group = "{group}"\n')
    return text


class Running:
    """An engine host with the metrics sink, on this test's loop."""

    def __init__(self, path: Path, retry_every: float = 10.0) -> None:
        self.path = path
        self.notices: list[str] = []
        self.host = EngineHost(load_config(path), [CallbackSink(on_notice=self.notices.append)],
                               stop_on=(), settle_heap=False)
        self.sink = MetricsSink(self.host, retry_every=retry_every)
        self.host.sinks.add(self.sink)

    async def __aenter__(self) -> Running:
        await self.host.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.host.close()

    async def reload(self, text: str) -> None:
        self.path.write_text(text)
        await self.host.reload()

    async def scrape(self, port: int, **headers: str) -> dict:
        return parse(await fetch_text(port, **headers))

    async def scrape_until(self, port: int, predicate, seconds: float = 10.0) -> dict:
        """Scrape until `predicate(series)` holds; the last series either way."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                series = await self.scrape(port)
            except urllib.error.URLError:   # not listening yet (a reload moves it off the loop)
                if time.monotonic() > deadline:
                    raise
                series = {}
            if predicate(series) or time.monotonic() > deadline:
                return series
            await asyncio.sleep(0.1)


def get(port: int, path: str = "/metrics", method: str = "GET", **headers: str):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, dict(response.headers), response.read()


async def fetch_text(port: int, **headers: str) -> str:
    # the scrape runs in a thread, as Prometheus' would from outside: the
    # loop goes on probing meanwhile
    _, _, body = await asyncio.to_thread(get, port, **headers)
    return body.decode()


def has(name: str, **labels: str):
    return lambda series: bool(pick(series, name, **labels))


async def test_up_and_down_targets_with_the_engines_own_figures(tmp_path, control_server):
    control_server.behaviour["bad"].status = 503
    port = free_port()
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, port, {"good": "good", "bad": "bad"},
                                location="paris", groups={"good": "web"}))
    async with Running(path) as running:
        series = await running.scrape_until(
            port, lambda s: has("monitor_state", state="down")(s) and has("probe_success",
                                                                          target="good")(s))
        assert one(series, "probe_success", target="good", group="web", location="paris") == 1
        assert one(series, "probe_success", target="bad", location="paris") == 0
        assert one(series, "probe_http_status_code", target="bad") == 503
        assert one(series, "monitor_state", target="bad", state="down") == 1
        assert one(series, "monitor_targets", state="down", location="paris") == 1
        assert one(series, "monitor_engine_probes_total", location="paris") >= 2
        assert one(series, "monitor_engine_concurrency") == 256
        assert 0 <= one(series, "monitor_engine_lag_seconds") < 5
        [build] = pick(series, "monitor_build_info", location="paris")
        assert ("version", __version__) in build
        assert pick(series, "process_cpu_seconds_total")    # prometheus-client's collectors
        assert f"serving http://127.0.0.1:{port}/metrics" in " ".join(running.notices)


async def test_a_reload_follows_the_config(tmp_path, control_server):
    port = free_port()
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, port, {"a": "a", "b": "b"}))
    async with Running(path) as running:
        before = await running.scrape_until(
            port, lambda s: has("probe_success", target="b")(s)
            and sum(pick(s, "monitor_probes_total", target="a").values()) >= 3)
        assert one(before, "monitor_probes_total", target="a") >= 3
        await running.reload(config_text(control_server, port, {"a": "a", "c": "c"},
                                         location="lyon", groups={"a": "core"}))
        series = await running.scrape_until(port, has("probe_success", target="c"))
        assert not pick(series, "monitor_state", target="b")          # removed: gone at once
        assert not [key for key in series if ("target", "b") in key[1]]
        # relabelled, figures kept: its counter goes on from where it was
        assert one(series, "monitor_probes_total", target="a", group="core", location="lyon") >= 3
        assert not pick(series, "monitor_probes_total", target="a", group="")
        assert one(series, "monitor_config_last_reload_successful") == 1
        running.path.write_text("[settings]\ninterval = 'soon'\n")
        await running.host.reload()
        series = await running.scrape(port)
        assert one(series, "monitor_config_last_reload_successful") == 0


async def test_a_reload_moves_the_server_and_can_turn_it_off_and_on(tmp_path, control_server):
    first, second = free_port(), free_port()
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, first, {"a": "a"}))
    async with Running(path) as running:
        await running.scrape_until(first, has("probe_success", target="a"))
        await running.reload(config_text(control_server, second, {"a": "a"}))
        series = await running.scrape_until(second, has("probe_success", target="a"))
        assert one(series, "probe_success", target="a") == 1
        with pytest.raises(urllib.error.URLError):
            get(first)
        await running.reload(config_text(control_server, None, {"a": "a"}))
        await wait_for(lambda: running.sink.url is None and "/metrics is off now" in
                       " ".join(running.notices))
        with pytest.raises(urllib.error.URLError):
            get(second)
        await running.reload(config_text(control_server, first, {"a": "a"}))
        series = await running.scrape_until(first, has("probe_success", target="a"))
        assert one(series, "monitor_state", target="a", state="up") == 1   # the engine's state


async def test_off_by_default_listens_nowhere_and_keeps_nothing(tmp_path, control_server):
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, None, {"a": "a"}))
    async with Running(path) as running:
        await asyncio.sleep(0.5)
        assert running.sink.url is None and not running.sink.enabled
        assert running.sink._records == {}
        assert not [n for n in running.notices if "metrics" in n]


async def test_a_busy_address_is_said_once_and_taken_when_it_frees(tmp_path, control_server):
    port = free_port()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, port, {"a": "a"}))
    async with Running(path, retry_every=0.2) as running:
        await asyncio.sleep(0.7)   # a few retries
        refused = [n for n in running.notices if "cannot serve" in n]
        assert len(refused) == 1, running.notices
        assert f"cannot serve /metrics on 127.0.0.1:{port}: Address already in use" in refused[0]
        assert "trying again every 0.2s" in refused[0]
        squatter.close()
        series = await running.scrape_until(port, has("probe_success", target="a"))
        assert one(series, "probe_success", target="a") == 1
    squatter.close()


async def test_no_secret_or_url_reaches_the_metrics(tmp_path, control_server, monkeypatch):
    monkeypatch.setenv("SHOP_TOKEN", "s3cr3t-t0ken")
    port = free_port()
    path = tmp_path / "m.toml"
    url = control_server.url("a").replace("http://", "http://user:hunter2@")
    path.write_text(f'[settings]\ninterval = "200ms"\ntimeout = "150ms"\n'
                    f'metrics = "127.0.0.1:{port}"\n\n[[targets]]\nname = "shop ${{SHOP_TOKEN}}"\n'
                    f'kind = "http"\nurl = "{url}"\n'
                    'headers = { Authorization = "Bearer ${SHOP_TOKEN}" }\n')
    async with Running(path) as running:
        await running.scrape_until(port, has("probe_success"))
        text = await fetch_text(port)
    assert "s3cr3t" not in text and "hunter2" not in text and "/a" not in text
    assert 'target="shop ${SHOP_TOKEN}"' in text


async def test_gzip_head_and_other_paths(tmp_path, control_server):
    port = free_port()
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, port, {"a": "a"}))
    async with Running(path) as running:
        # a Prometheus on this machine gets plain text: compressing costs the probes' CPU
        status, headers, plain = await asyncio.to_thread(get, port, **{"Accept-Encoding": "gzip"})
        assert status == 200 and "Content-Encoding" not in headers and parse(plain.decode())
        running.sink._server.compress_loopback = True   # as a client across a network gets it
        status, headers, body = await asyncio.to_thread(get, port, **{"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert parse(gzip.decompress(body).decode())
        status, headers, body = await asyncio.to_thread(get, port, method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
        status, _, body = await asyncio.to_thread(get, port, "/")
        assert b'href="/metrics"' in body
        with pytest.raises(urllib.error.HTTPError) as caught:
            await asyncio.to_thread(get, port, "/admin")
        assert caught.value.code == 404


async def test_a_stalled_loop_delays_a_scrape_by_half_a_second_at_most(tmp_path, control_server):
    port = free_port()
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, port, {"a": "a"}))
    async with Running(path) as running:
        await running.scrape_until(port, has("probe_success", target="a"))
        pool = concurrent.futures.ThreadPoolExecutor(1)
        try:
            began = time.monotonic()
            scrape = pool.submit(get, port)
            time.sleep(2.0)   # the loop is stuck (a bug, a huge reload) while Prometheus asks
            _, _, body = scrape.result(timeout=5)
            assert scrape.done()
        finally:
            pool.shutdown()
        series = parse(body.decode())
        # answered long before the loop came back, and saying how late the loop was
        assert one(series, "monitor_engine_lag_seconds") >= 0.5
        assert one(series, "probe_success", target="a") == 1
        assert time.monotonic() - began < 3


async def test_connections_are_bounded_and_idle_ones_do_not_lock_it_for_good(
        tmp_path, control_server):
    port = free_port()
    path = tmp_path / "m.toml"
    path.write_text(config_text(control_server, port, {"a": "a"}))
    async with Running(path):
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CLIENTS)]
        try:
            await asyncio.sleep(0.3)
            extra = socket.create_connection(("127.0.0.1", port))
            extra.settimeout(5)
            extra.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert extra.recv(100) == b""   # turned away at once, no thread for it
            extra.close()
        finally:
            for sock in idle:
                sock.close()
        await asyncio.sleep(0.3)
        status, _, _ = await asyncio.to_thread(get, port)
        assert status == 200


async def test_two_scrapes_at_once_both_get_a_whole_exposition(tmp_path, control_server):
    port = free_port()
    path = tmp_path / "m.toml"
    names = {f"t{i}": f"t{i}" for i in range(50)}
    path.write_text(config_text(control_server, port, names))
    async with Running(path) as running:
        await running.scrape_until(port, lambda s: len(pick(s, "probe_success")) == 50)
        texts = await asyncio.gather(*(fetch_text(port) for _ in range(4)))
        for text in texts:
            assert len(pick(parse(text), "monitor_probes_total")) == 50


async def wait_for(predicate, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.02)
