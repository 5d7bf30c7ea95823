"""The alert sink with real channels: a loopback webhook receiver, Apprise's
json:// and form:// pointed at it, real commands; a receiver that answers
500, one that refuses, one that hangs; the state file across a restart."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path

import pytest

from monitor.alerts.sink import AlertSink, Delivery
from monitor.engine.sinks import ConfigReloaded
from tests.alerts.conftest import Feed, FakeClock, Receiver, config, targets, write_script

SECRET = "s3cr3t-t0ken"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hook(name: str, url: str, extra: str = "") -> str:
    return f'\n[[alerts]]\nname = "{name}"\nkind = "webhook"\nurl = "{url}"\n{extra}'


class Events(list):
    def outcomes(self, channel: str | None = None) -> list[str]:
        return [e.outcome for e in self if channel is None or e.channel == channel]

    async def wait(self, outcome: str, count: int = 1, timeout: float = 10.0) -> None:
        for _ in range(int(timeout / 0.02)):
            if self.outcomes().count(outcome) >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"wanted {count} {outcome!r}, got {[e.text() for e in self]}")


def make(text: str, tmp_path: Path, environ: dict[str, str] | None = None,
         clock: FakeClock | None = None) -> tuple[AlertSink, Feed, Events]:
    clock = clock or FakeClock()
    cfg = config(text, environ, path=str(tmp_path / "monitor.toml"))
    events = Events()
    sink = AlertSink(cfg, events.append, state=tmp_path / "state.json", clock=clock)
    sink.start()
    return sink, Feed(cfg, sink, clock), events


async def test_webhook_gets_down_then_up_with_the_documented_payload(receiver: Receiver,
                                                                      tmp_path: Path):
    text = targets("api", threshold=2) + hook(
        "ops", receiver.url("hook/${TOKEN}"), 'headers = { Authorization = "Bearer ${TOKEN}" }\n')
    sink, feed, events = make(text, tmp_path, {"TOKEN": SECRET})
    feed("api", "up")
    feed("api", "down", "connection refused")
    assert receiver.got == []                     # one failure is not an outage
    feed("api", "down", "connection refused")
    feed.clock.advance(90)
    feed("api", "up")
    got = await receiver.wait(f"hook/{SECRET}", 2)
    assert [r.json["event"] for r in got] == ["down", "up"]
    down, up = got[0].json, got[1].json
    assert down["version"] == 1 and down["name"] == "api" and down["state"] == "down"
    assert down["previous_state"] == "up" and down["reason"] == "connection refused"
    assert down["summary"] == "DOWN api (127.0.0.1:9): connection refused \u2014 since 10:00 UTC"
    assert set(down) >= {"since", "duration_s", "latency_ms", "phases_ms", "target", "id"}
    assert up["duration_s"] == 90 and up["since"] == down["since"]
    assert got[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert got[0].headers["Content-Type"] == "application/json"
    await events.wait("sent", 2)
    shown = "\n".join(e.text() for e in events) + json.dumps([e.to_json() for e in events])
    assert SECRET not in shown and "${TOKEN}" in shown   # the answer echoed the path: masked
    assert [e.outcome for e in sink.recent] == ["sent", "sent"]
    await sink.aclose()


async def test_a_receiver_answering_500_is_retried_with_backoff_then_failed(receiver: Receiver,
                                                                             tmp_path: Path):
    receiver.status["broken"] = 500
    text = targets("api", threshold=1) + hook("ops", receiver.url("broken"),
                                              'retries = 2\nbackoff = "50ms"\n')
    sink, feed, events = make(text, tmp_path)
    feed("api", "up")
    feed("api", "down", "503")
    await events.wait("failed")
    assert len(receiver.at("broken")) == 3
    assert events.outcomes() == ["retrying", "retrying", "failed"]
    assert events[0].detail == "HTTP 500: thanks for /broken; again in 0.05s"
    assert events[1].detail.endswith("again in 0.1s")           # doubled
    assert events[-1].attempt == 3
    await sink.aclose()


async def test_a_4xx_is_not_retried(receiver: Receiver, tmp_path: Path):
    receiver.status["gone"] = 404
    sink, feed, events = make(targets("api", threshold=1) + hook("ops", receiver.url("gone")),
                              tmp_path)
    feed("api", "up")
    feed("api", "down", "x")
    await events.wait("failed")
    assert events.outcomes() == ["failed"] and len(receiver.at("gone")) == 1
    await sink.aclose()


async def test_a_refused_connection_is_retried_then_reported(tmp_path: Path):
    port = closed_port()
    text = targets("api", threshold=1) + hook("ops", f"http://127.0.0.1:{port}/hook",
                                              'retries = 1\nbackoff = "20ms"\n')
    sink, feed, events = make(text, tmp_path)
    feed("api", "up")
    feed("api", "down", "x")
    await events.wait("failed")
    assert events.outcomes() == ["retrying", "failed"]
    assert "cannot deliver" in events[-1].detail and str(port) in events[-1].detail
    await sink.aclose()


async def test_a_hanging_channel_delays_neither_others_nor_the_engine(receiver: Receiver,
                                                                      tmp_path: Path):
    receiver.hang.add("slow")
    text = targets("a", "b", threshold=1) + hook("slow", receiver.url("slow"),
                                                 'timeout = "2s"\nretries = 0\n') + \
        hook("fast", receiver.url("fast"))
    sink, feed, events = make(text, tmp_path)
    for name in "ab":
        feed(name, "up")
        feed(name, "down", "x")   # returns at once: deliveries are queued
    await receiver.wait("fast", 2)
    await receiver.wait("slow", 1)   # it has the first, and still no answer
    assert events.outcomes("fast") == ["sent", "sent"]
    assert events.outcomes("slow") == []
    await events.wait("failed", 2, timeout=15)   # each waited its turn, then timed out
    assert events.outcomes("slow") == ["failed", "failed"]
    assert events[-1].detail == "no answer within 2s"
    await sink.aclose()


async def test_command_channel_gets_payload_on_stdin_and_monitor_variables(tmp_path: Path):
    script = write_script(tmp_path / "page.py", f"""
        import json, os, sys
        got = {{"stdin": json.load(sys.stdin),
               "env": {{k: v for k, v in os.environ.items() if k.startswith("MONITOR_")}},
               "argv": sys.argv[1:]}}
        with open({str(tmp_path / "got.jsonl")!r}, "a") as out:
            out.write(json.dumps(got) + "\\n")
        print("paged the on-call", file=sys.stderr)
    """)
    text = targets("api", threshold=1) + (
        f'\n[[alerts]]\nname = "page"\nkind = "command"\ncommand = {json.dumps(script + ["--team", "ops"])}\n')
    sink, feed, events = make(text, tmp_path)
    feed("api", "up")
    feed("api", "down", "refused")
    await events.wait("sent")
    got = json.loads((tmp_path / "got.jsonl").read_text())
    assert got["argv"] == ["--team", "ops"]
    assert got["stdin"]["event"] == "down" and got["stdin"]["version"] == 1
    assert got["env"]["MONITOR_EVENT"] == "down" and got["env"]["MONITOR_NAME"] == "api"
    assert got["env"]["MONITOR_CHANNEL"] == "page" and got["env"]["MONITOR_REASON"] == "refused"
    assert got["env"]["MONITOR_SUMMARY"] == got["stdin"]["summary"]
    assert events[-1].detail == "exit 0: paged the on-call"
    await sink.aclose()


async def test_command_failures_keep_exit_status_and_stderr(tmp_path: Path):
    script = write_script(tmp_path / "fail.py", """
        import sys
        sys.stdin.read()
        print("no route to pager", file=sys.stderr)
        sys.exit(3)
    """)
    text = targets("api", threshold=1) + (
        f'\n[[alerts]]\nname = "page"\nkind = "command"\ncommand = {json.dumps(script)}\n'
        f'\n[[alerts]]\nname = "missing"\nkind = "command"\ncommand = ["{tmp_path}/nope"]\n')
    sink, feed, events = make(text, tmp_path)
    feed("api", "up")
    feed("api", "down", "x")
    await events.wait("failed", 2)
    details = {e.channel: e.detail for e in events}
    assert details["page"] == "exit 3: no route to pager"
    assert details["missing"].startswith(f"cannot run {tmp_path}/nope: No such file")
    await sink.aclose()


async def test_a_hung_command_is_killed_with_its_children(tmp_path: Path):
    pids = tmp_path / "pids"
    script = write_script(tmp_path / "hang.py", f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
    """)
    text = targets("api", threshold=1) + (
        f'\n[[alerts]]\nname = "page"\nkind = "command"\ncommand = {json.dumps(script)}\n'
        'timeout = "1s"\n')
    sink, feed, events = make(text, tmp_path)
    feed("api", "up")
    feed("api", "down", "x")
    await events.wait("failed")
    assert events[-1].detail == "no answer within 1s"
    for pid in map(int, pids.read_text().split()):
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"process {pid} outlived the channel's timeout")
    await sink.aclose()


async def test_apprise_json_and_form_urls_on_loopback(receiver: Receiver, tmp_path: Path):
    port = receiver.base.rsplit(":", 1)[1]
    text = targets("api", threshold=1) + f"""
[[alerts]]
name = "phone"
kind = "apprise"
urls = ["json://127.0.0.1:{port}/json", "form://127.0.0.1:{port}/form"]
"""
    sink, feed, events = make(text, tmp_path)
    feed("api", "up")
    feed("api", "down", "refused")
    (as_json,), (as_form,) = await receiver.wait("json", 1), await receiver.wait("form", 1)
    assert as_json.json["title"] == "DOWN: api" and as_json.json["type"] == "failure"
    assert as_json.json["message"].startswith("DOWN api (127.0.0.1:9): refused")
    assert as_form.form is not None and as_form.form["message"] == as_json.json["message"]
    await events.wait("sent")
    assert events[-1].detail == "JSON: ok; Form: ok"
    await sink.aclose()


async def test_a_restart_during_an_outage_sends_no_second_down(receiver: Receiver,
                                                                tmp_path: Path):
    text = targets("api", threshold=1) + hook("ops", receiver.url("hook"))
    clock = FakeClock()
    first, feed, events = make(text, tmp_path, clock=clock)
    feed("api", "up")
    feed("api", "down", "refused")
    await receiver.wait("hook", 1)
    await first.aclose()
    clock.advance(600)
    second, feed, events = make(text, tmp_path, clock=clock)   # same state file
    feed("api", "down", "refused")    # PENDING -> DOWN in the new process
    feed("api", "down", "refused")
    await asyncio.sleep(0.3)
    assert receiver.events("hook") == ["down"]
    feed("api", "up")
    got = await receiver.wait("hook", 2)
    assert got[1].json["event"] == "up" and got[1].json["duration_s"] == 600
    await second.aclose()
    third, feed, _ = make(text, tmp_path, clock=clock)
    feed("api", "up")
    await asyncio.sleep(0.3)
    assert receiver.events("hook") == ["down", "up"]   # the recovery was sent once
    await third.aclose()


async def test_one_process_alerts_per_config(receiver: Receiver, tmp_path: Path):
    text = targets("api", threshold=1) + hook("ops", receiver.url("hook"))
    first, feed1, _ = make(text, tmp_path)
    second, feed2, events2 = make(text, tmp_path)
    assert "is already alerting for this config" in events2[0].detail
    for feed in (feed1, feed2):
        feed("api", "up")
        feed("api", "down", "x")
    await receiver.wait("hook", 1)
    await asyncio.sleep(0.3)
    assert len(receiver.at("hook")) == 1
    await second.aclose()
    await first.aclose()


async def test_a_damaged_state_file_is_set_aside(receiver: Receiver, tmp_path: Path):
    (tmp_path / "state.json").write_text("{not json")
    sink, feed, events = make(targets("api", threshold=1) + hook("ops", receiver.url("h")),
                              tmp_path)
    assert events[0].outcome == "notice" and "unreadable" in events[0].detail
    assert (tmp_path / "state.bad").read_text() == "{not json"
    await sink.aclose()
    assert json.loads((tmp_path / "state.json").read_text())["version"] == 1


async def test_a_reload_adds_and_removes_channels(receiver: Receiver, tmp_path: Path):
    text = targets("api", "web", threshold=1) + hook("ops", receiver.url("ops"))
    sink, feed, events = make(text, tmp_path)
    feed("api", "up")
    feed("api", "down", "x")
    await receiver.wait("ops", 1)
    fresh = text.replace('name = "ops"', 'name = "new"').replace("/ops", "/new")
    sink.on_reload(ConfigReloaded(feed.clock.now, config_text=fresh))
    for _ in range(200):
        if "new" in sink.policy.channels:
            break
        await asyncio.sleep(0.02)
    feed("web", "up")
    feed("web", "down", "x")
    await receiver.wait("new", 1)
    assert len(receiver.at("ops")) == 1
    await sink.aclose()


def test_delivery_lines_for_the_event_log():
    from monitor.alerts.message import Alert
    alert = Alert(event="down", name="api", target="https://api.example/health",
                  reason="expected 2xx, got 503")
    event = Delivery(FakeClock().now, "sent", "ops", "webhook", alert, "HTTP 200")
    assert event.text() == ("alert ops (webhook) sent: DOWN api (https://api.example/health): "
                            "expected 2xx, got 503 [HTTP 200]")
    assert event.to_json()["event"] == "alert" and event.to_json()["alert"]["version"] == 1


async def test_without_channels_nothing_is_written_until_a_reload_brings_one(
        receiver: Receiver, tmp_path: Path):
    text = targets("api", threshold=1)
    sink, feed, events = make(text, tmp_path)
    feed("api", "up")
    feed("api", "down", "x")
    await sink.aclose()
    assert not (tmp_path / "state.json").exists() and not (tmp_path / "state.lock").exists()
    sink, feed, events = make(text, tmp_path)
    sink.on_reload(ConfigReloaded(feed.clock.now, config_text=text + hook("ops", receiver.url("h"))))
    for _ in range(200):
        if sink.policy.channels:
            break
        await asyncio.sleep(0.02)
    feed("api", "up")
    feed("api", "down", "x")
    await receiver.wait("h", 1)
    await sink.aclose()
    assert (tmp_path / "state.json").exists()
