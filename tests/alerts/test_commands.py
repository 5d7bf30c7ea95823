"""Real processes: `monitor run --headless` alerting through a loopback
webhook (and keeping its word across a restart), `monitor alert test`, and
`monitor validate` naming alert problems."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from tests.alerts.conftest import Receiver
from tests.cli.test_cli import clean_env, monitor

SECRET = "hunter2-token"


def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path, XDG_STATE_HOME=str(tmp_path / "state"), HOOK_TOKEN=SECRET)


def write(tmp_path: Path, receiver: Receiver) -> Path:
    path = tmp_path / "monitor.toml"
    path.write_text(f"""
[settings]
interval = "200ms"
timeout = "150ms"
failure_threshold = 2

[[targets]]
name = "api"
kind = "http"
url = "{receiver.url('target')}"

[[alerts]]
name = "ops"
kind = "webhook"
url = "{receiver.url('hook')}?token=${{HOOK_TOKEN}}"
timeout = "2s"
""")
    return path


async def start(tmp_path: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--headless", cwd=tmp_path, env=env(tmp_path),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)


async def stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert proc.stderr is not None
    return (await proc.stderr.read()).decode()


async def test_headless_alerts_down_then_up_and_keeps_its_word_across_a_restart(
        receiver: Receiver, tmp_path: Path):
    write(tmp_path, receiver)
    receiver.status["target"] = 503
    proc = await start(tmp_path)
    try:
        await receiver.wait("hook", 1, timeout=20)
    finally:
        log = await stop(proc)
    assert receiver.events("hook") == ["down"]
    assert "alert ops (webhook) sent: DOWN api" in log and SECRET not in log
    assert receiver.at("hook")[0].path == "/hook"   # the token went as the URL says, in the query

    proc = await start(tmp_path)     # restarted while still down: no second DOWN
    try:
        checks = len(receiver.at("target"))
        for _ in range(500):
            if len(receiver.at("target")) >= checks + 5:
                break
            await asyncio.sleep(0.02)
        assert receiver.events("hook") == ["down"]
        receiver.status["target"] = 200
        got = await receiver.wait("hook", 2, timeout=20)
    finally:
        log = await stop(proc)
    assert [r.json["event"] for r in got] == ["down", "up"]
    assert got[1].json["duration_s"] > 0 and got[1].json["since"] == got[0].json["since"]
    assert "alert ops (webhook) sent: UP api" in log


async def test_alert_test_prints_what_each_channel_answered(receiver: Receiver, tmp_path: Path):
    path = write(tmp_path, receiver)
    with path.open("a") as out:
        out.write('\n[[alerts]]\nname = "broken"\nkind = "webhook"\n'
                  f'url = "{receiver.url("broken")}"\n')
    receiver.status["broken"] = 500
    code, out, err = await monitor("alert", "test", "-c", str(path), cwd=tmp_path,
                                   env=env(tmp_path))
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0].startswith("ops     sent    webhook http://127.0.0.1:")
    assert lines[0].endswith("?token=${HOOK_TOKEN}: HTTP 200: thanks for /hook")
    assert lines[1].startswith("broken  FAILED  webhook") and "HTTP 500" in lines[1]
    assert SECRET not in out + err
    assert receiver.at("hook")[0].json["event"] == "test"

    code, out, _ = await monitor("alert", "test", "ops", "-c", str(path), cwd=tmp_path,
                                 env=env(tmp_path))
    assert code == 0 and len(out.splitlines()) == 1
    code, _, err = await monitor("alert", "test", "opps", "-c", str(path), cwd=tmp_path,
                                 env=env(tmp_path))
    assert code == 2 and "no channel named 'opps' (did you mean 'ops'?)" in err


async def test_validate_names_every_alerting_problem_with_its_line(tmp_path: Path):
    path = tmp_path / "monitor.toml"
    path.write_text("""[settings]
alerts = ["opps"]

[[targets]]
name = "gw"
kind = "tcp"
host = "127.0.0.1"
port = 9
depends_on = ["api"]

[[targets]]
name = "api"
kind = "tcp"
host = "127.0.0.1"
port = 9
alerts = ["ops"]
depends_on = ["gw"]

[[alerts]]
name = "ops"
kind = "webhok"

[[maintenance]]
start = "02:00"
end = "03:00"
timezone = "Europe/Pari"
""")
    code, out, err = await monitor("validate", "-c", str(path), cwd=tmp_path, env=env(tmp_path))
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[:4] == [
        f"{path}:2: settings.alerts: unknown channel 'opps' (did you mean 'ops'?)",
        f"{path}:9: targets[gw].depends_on: dependency cycle: gw -> api -> gw",
        f"{path}:21: alerts[ops].kind: unknown kind 'webhok' (did you mean 'webhook'?) "
        "(one of apprise, webhook, command, bell)",
        f"{path}:26: maintenance[#1].timezone: unknown timezone 'Europe/Pari' "
        "(did you mean 'Europe/Paris'?) (an IANA name such as \"Europe/Paris\" or \"UTC\")",
    ]
