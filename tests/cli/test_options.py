"""Options where users put them, and a demo server shared between monitors:
`monitor` run as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import web

from monitor.demo import DemoServer
from tests.cli.test_cli import clean_env, monitor, web_server, write_config  # noqa: F401
from tests.e2e.test_terminal import free_port


@pytest.mark.parametrize("order", [
    ["--config", "{c}", "check", "--json"],
    ["check", "--config", "{c}", "--json"],
    ["check", "--json", "-c", "{c}"],
    ["-c", "{c}", "check", "--json", "-t", "ok", "-t", "broken"],
])
async def test_config_goes_before_or_after_the_command(tmp_path, web_server, order):
    config = write_config(tmp_path / "m.toml", web_server)
    args = [a.format(c=config) for a in order]
    code, out, err = await monitor(*args, cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 1, err
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["ok", "broken"]


@pytest.mark.parametrize("order", [
    ["validate", "{c}"], ["validate", "--config", "{c}"], ["--config", "{c}", "validate"],
    ["validate", "{c}", "--config", "{c}"]])
async def test_validate_takes_the_file_in_any_of_the_usual_places(tmp_path, web_server, order):
    config = write_config(tmp_path / "m.toml", web_server)
    code, out, err = await monitor(*[a.format(c=config) for a in order], cwd=tmp_path,
                                   env=clean_env(tmp_path))
    assert (code, out, err) == (0, f"{config}: ok (2 targets)\n", "")


@pytest.mark.parametrize(("args", "message"), [
    (["--refresh", "1", "check"], "--refresh is not an option of `check` (only of `dashboard`, `run`)"),
    (["--record", "f", "validate"], "--record is not an option of `validate`"),
    (["run", "--headless", "--ui-nice", "0"], "--ui-nice is not an option of `run --headless`"),
    (["run", "--json"], "--json and --stats-every need --headless"),
    (["run", "--stats-every", "1"], "--json and --stats-every need --headless"),
    (["--config", "x.toml", "init"], "--config is not an option of `init`"),
    (["validate", "a.toml", "--config", "b.toml"], "two config files given: a.toml and --config b.toml"),
])
async def test_an_option_given_to_a_command_it_means_nothing_to_is_named(tmp_path, args, message):
    code, out, err = await monitor(*args, cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2 and out == "" and "Traceback" not in err
    assert message in err, err


@pytest.mark.parametrize("before", [True, False], ids=["record-before-run", "record-after-run"])
async def test_run_headless_records_wherever_record_is_given(tmp_path, web_server, before):
    config = write_config(tmp_path / "m.toml", web_server, broken=False)
    record = tmp_path / "results.jsonl"
    args = (["--record", str(record), "run", "--headless", "-c", str(config)] if before
            else ["run", "--headless", "-c", str(config), "--record", str(record)])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=tmp_path, env=clean_env(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(15):
            while not (record.exists() and record.read_text().count("\n") >= 2):
                await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert rows and {r["name"] for r in rows} == {"ok"} and all(r["ok"] for r in rows)


def demo_config(path: Path, port: int) -> Path:
    """Targets on the demo server at `port`: one up, one down, one checking
    that the JSON answer is the demo's."""
    path.write_text(f"""
[settings]
interval = "1s"
timeout = "800ms"
failure_threshold = 1

[demo]
enabled = true
port = {port}
""" + "".join(f"""
[[targets]]
name = "{name}"
kind = "http"
url = "http://127.0.0.1:{port}{url}"
{extra}""" for name, url, extra in (
        ("fast-site", "/fast", ""), ("broken-site", "/failing", ""),
        ("json-site", "/json", 'expect_json = { status = "UP" }\n'))))
    return path


async def check_json(tmp_path: Path, config: Path) -> tuple[int, dict[str, str], str]:
    """`monitor check --json`: exit status, status by target name, stderr."""
    code, out, err = await monitor("check", "--json", "-c", str(config), cwd=tmp_path,
                                   env=clean_env(tmp_path))
    rows = [json.loads(line) for line in out.splitlines()]
    return code, {row["name"]: row["status"] for row in rows}, err


async def test_check_uses_the_demo_server_a_dashboard_already_runs(tmp_path):
    port = free_port()
    running = DemoServer("127.0.0.1", port)   # as a dashboard's engine holds it
    await running.start()
    try:
        code, rows, err = await check_json(tmp_path, demo_config(tmp_path / "demo.toml", port))
    finally:
        await running.stop()
    assert code == 1, err   # broken-site is down; 2 would mean a config error
    assert err == f"monitor: using the demo server already running on 127.0.0.1:{port}\n"
    assert rows == {"fast-site": "up", "broken-site": "down", "json-site": "up"}


async def test_check_says_when_another_program_holds_the_demo_port_and_probes_anyway(tmp_path):
    async def impostor(_: web.Request) -> web.Response:
        return web.Response(text="not the demo")

    app = web.Application()
    app.router.add_get("/{tail:.*}", impostor)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        code, rows, err = await check_json(tmp_path, demo_config(tmp_path / "demo.toml", port))
    finally:
        await runner.cleanup()
    assert code == 1, err   # json-site fails against the impostor: not a config error
    assert f"demo server cannot listen on 127.0.0.1:{port}" in err
    assert "another program has it" in err and "Traceback" not in err
    assert rows == {"fast-site": "up", "broken-site": "up", "json-site": "down"}
