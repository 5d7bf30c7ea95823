"""The command line, run as a real subprocess against loopback servers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_KEYS = {"name", "kind", "target", "status", "ok", "latency_ms", "phases_ms", "reason",
                 "http_status", "cert_days_left", "cert_expires_at", "checked_at"}


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"), NO_COLOR="1")
    env.update(extra)
    return env


async def monitor(*args: str, cwd: Path, env: dict[str, str], timeout: float = 20
                  ) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def web_server():
    async def ok(_): return web.Response(text="all good")
    async def broken(_): return web.Response(status=503, text="down")
    async def slow(_):
        await asyncio.sleep(0.1)
        return web.Response(text="all good, eventually")
    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/slow/{n}", slow)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    await runner.cleanup()


def write_config(path: Path, base: str, broken: bool = True) -> Path:
    text = (f'[settings]\ninterval = "1s"\ntimeout = "900ms"\n\n'
            f'[[targets]]\nname = "ok"\nkind = "http"\nurl = "{base}/ok"\nexpect_body = "good"\n')
    if broken:
        text += f'\n[[targets]]\nname = "broken"\nkind = "http"\nurl = "{base}/broken"\n'
    path.write_text(text)
    return path


async def test_check_json_follows_the_contract_and_exit_status(tmp_path, web_server):
    config = write_config(tmp_path / "m.toml", web_server)
    code, out, err = await monitor("check", "--config", str(config), "--json",
                                   cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 1, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == ["ok", "broken"]
    for row in rows:
        assert CONTRACT_KEYS <= row.keys()
    ok, broken = rows
    assert ok["status"] == "up" and ok["ok"] is True and ok["http_status"] == 200
    assert set(ok["phases_ms"]) <= {"dns", "connect", "tls", "ttfb", "transfer"}
    assert ok["checked_at"].endswith("Z")
    assert broken["status"] == "down" and broken["reason"] == "expected 2xx, got 503 Service Unavailable"


async def test_check_table_and_target_filter(tmp_path, web_server):
    config = write_config(tmp_path / "m.toml", web_server)
    code, out, _ = await monitor("check", "-c", str(config), "--target", "ok",
                                 cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 0
    assert "UP" in out and "ok" in out and "broken" not in out
    assert "1 targets: 1 up, 0 degraded, 0 down" in out


async def test_check_unknown_target_is_a_usage_error(tmp_path, web_server):
    config = write_config(tmp_path / "m.toml", web_server)
    code, _, err = await monitor("check", "-c", str(config), "-t", "brokn",
                                 cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2 and "no target named 'brokn' (did you mean 'broken'?)" in err


async def test_validate_reports_every_problem_and_exits_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[settings]\ninterval = "soon"\n\n[[targets]]\nname = "x"\nkind = "htpp"\n')
    code, out, err = await monitor("validate", "-c", str(bad), cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2
    assert f"{bad}:2: settings.interval: cannot read" in err
    assert f"{bad}:6: targets[x].kind: unknown kind 'htpp' (did you mean 'http'?)" in err
    assert "2 problems" in err and "Traceback" not in err


async def test_missing_and_absent_config(tmp_path):
    code, _, err = await monitor("validate", "-c", "nope.toml", cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2 and "nope.toml: config file not found" in err
    code, _, err = await monitor("check", cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2 and "no config file found" in err and "monitor init" in err


async def test_config_lookup_order(tmp_path, web_server):
    env_file = write_config(tmp_path / "from-env.toml", web_server, broken=False)
    local = tmp_path / "monitor.toml"
    local.write_text("[settings]\n")
    code, out, _ = await monitor("validate", cwd=tmp_path,
                                 env=clean_env(tmp_path, MONITOR_CONFIG=str(env_file)))
    assert code == 0 and "from-env.toml: ok (1 target)" in out
    code, out, _ = await monitor("validate", cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 0 and "monitor.toml: ok (0 targets)" in out
    local.unlink()
    user = tmp_path / "xdg" / "monitor" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text("[settings]\n")
    code, out, _ = await monitor("validate", cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 0 and str(user) in out


async def test_init_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "new" / "monitor.toml"
    code, out, _ = await monitor("init", str(target), cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 0 and target.is_file()
    text = target.read_text()
    assert text.count("#") > 20   # a commented starter
    code, out, err = await monitor("validate", "-c", str(target), cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 0, err
    target.write_text("# mine\n")
    code, _, err = await monitor("init", str(target), cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2 and "already exists" in err and target.read_text() == "# mine\n"


async def test_sample_config_is_valid():
    code, out, err = await monitor("validate", "-c", str(ROOT / "sample-config.toml"),
                                   cwd=ROOT, env=clean_env(ROOT))
    assert code == 0, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_run_headless_json_streams_and_stops_cleanly(tmp_path, web_server, sig):
    config = write_config(tmp_path / "m.toml", web_server)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--headless", "--json", "-c", str(config),
        cwd=tmp_path, env=clean_env(tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    seen: list[dict] = []
    try:
        async with asyncio.timeout(15):
            while not any(e["event"] == "transition" and e["name"] == "broken" for e in seen):
                line = await proc.stdout.readline()
                assert line, (await proc.stderr.read()).decode()
                seen.append(json.loads(line))
    finally:
        proc.send_signal(sig)
        code = await asyncio.wait_for(proc.wait(), 10)
    assert code == 0
    assert seen[0]["event"] == "start" and seen[0]["targets"] == 2 and seen[0]["pid"] == proc.pid
    rest = [json.loads(line) for line in (await proc.stdout.read()).splitlines()]
    assert rest[-1]["event"] == "stop"
    results = [e for e in seen if e["event"] == "result"]
    assert results and CONTRACT_KEYS <= results[0].keys()
    down = next(e for e in seen if e["event"] == "transition" and e["name"] == "broken")
    assert down["from"] == "pending" and down["to"] == "down" and down["at"].endswith("Z")
    assert down["reason"] == "expected 2xx, got 503 Service Unavailable"


async def test_run_headless_text_logs_transitions(tmp_path, web_server):
    config = write_config(tmp_path / "m.toml", web_server)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--headless", "-c", str(config),
        cwd=tmp_path, env=clean_env(tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    try:
        async with asyncio.timeout(15):
            while len(lines) < 2:
                lines.append((await proc.stdout.readline()).decode())
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    joined = "".join(lines)
    assert "ok  PENDING -> UP" in joined
    assert "broken  PENDING -> DOWN: expected 2xx, got 503" in joined


async def test_dashboard_without_a_terminal_points_to_headless(tmp_path, web_server):
    config = write_config(tmp_path / "m.toml", web_server)
    code, _, err = await monitor("--config", str(config), cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2 and "monitor run --headless" in err and "Traceback" not in err


async def test_run_without_headless_is_the_dashboard_which_needs_a_terminal(tmp_path, web_server):
    """`run` opens the dashboard (tests/cli/test_terminal_options.py); with no
    terminal it says what to use instead, as `monitor` does."""
    config = write_config(tmp_path / "m.toml", web_server)
    code, _, err = await monitor("run", "-c", str(config), cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2 and "the dashboard needs a terminal" in err and "run --headless" in err


HOSTILE_FILES = {
    "deep-arrays": b"[settings]\ninterval = " + b"[" * 3000 + b"]" * 3000 + b"\n",
    "dotted-key": b"# a key of 3,000 parts\n" + b"a." * 3000 + b"a = 1\n",
    "bad-utf8": b"[settings]\n\ninterval = \"5s\" # caf\xe9\n",
    "end-of-document": b"[[targets]]\nname = \"a\"\nbody = \"\"\"\nnever closed\n\n",
    "huge-numbers": b"[settings]\nconcurrency = " + b"9" * 5000 + b"\n",
    "nan-and-inf": b"[settings]\ninterval = \"nan\"\nrecheck_delay = \"inf\"\ntimeout = nan\n"
                   b"[[targets]]\nname = \"x\"\nkind = \"http\"\nurl = \"http://h/\"\n"
                   b"body_limit = " + b"9" * 400 + b"\n",
    "control-chars": b"[[targets]]\nname = \"\\u001b]0;owned\\u0007\"\nkind = \"tcp\"\n"
                     b"\"\\u001b[2J\" = 1\n",
    "nul-and-crlf": b"[settings]\r\ninterval = \"5s\"\x00\r\n",
    "windows-bom": b"\xef\xbb\xbf[settings]\r\ninterval = \"5s\"\r\n",
}
FIRST_PROBLEM = {
    "bad-utf8": ":3: not UTF-8: byte 0xe9 at column 22",
    "end-of-document": ":4: TOML syntax error: Unterminated string at the end of the file",
    "nan-and-inf": ':2: settings.interval: cannot read "nan" as a duration',
    "dotted-key": ":2: arrays, tables and dotted keys nest more than 32 levels deep",
}


async def test_validate_any_file_exits_0_or_2_with_a_line_for_every_problem(tmp_path):
    """The contract for hostile and careless files: exit 0 or 2, never a
    traceback, and on 2 every line of stderr is FILE:LINE: ... (LINE >= 1)
    but the closing count."""
    paths = []
    for name, data in HOSTILE_FILES.items():
        paths.append(tmp_path / f"{name}.toml")
        paths[-1].write_bytes(data)
    runs = await asyncio.gather(*(monitor("validate", "-c", str(path), cwd=tmp_path,
                                          env=clean_env(tmp_path)) for path in paths))
    for path, (code, out, err) in zip(paths, runs):
        assert "Traceback" not in err, err
        if path.stem == "windows-bom":
            assert code == 0 and out.startswith(f"{path}: ok"), err
            continue
        assert code == 2, (path.stem, out, err)
        assert err.startswith(f"{path}{FIRST_PROBLEM.get(path.stem, ':')}"), err
        lines = err.splitlines()
        if len(lines) > 1:
            assert lines.pop() == f"{len(lines)} problems in the config."
        for line in lines:
            assert re.match(re.escape(str(path)) + r":[1-9][0-9]*: \S", line), line
            assert line.isprintable(), line


async def test_run_headless_json_reports_its_own_stats(tmp_path, web_server):
    config = write_config(tmp_path / "m.toml", web_server)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--headless", "--json", "--stats-every", "0.3",
        "-c", str(config), cwd=tmp_path, env=clean_env(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stats: list[dict] = []
    try:
        async with asyncio.timeout(15):
            while len(stats) < 3:
                line = await proc.stdout.readline()
                assert line, (await proc.stderr.read()).decode()
                event = json.loads(line)
                if event["event"] == "stats":
                    stats.append(event)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
    assert {"probes_total", "probes_per_s", "skips", "skips_per_min", "behind_s", "lag_ms",
            "dropped_results", "out_of_files", "tasks", "at"} <= stats[-1].keys()
    # two targets: no strain. Not a timing bound (a shared machine delays starts by
    # 0.1 s at times): below the 0.5 s at which the engine itself slips the schedule
    assert stats[-1]["skips"] == 0 and stats[-1]["behind_s"] < 0.5
    assert stats[-1]["probes_total"] >= stats[0]["probes_total"] > 0
    # one task per target, the stats reporter, the main task, output: a small, flat number
    assert 0 < stats[-1]["tasks"] <= 20
    assert stats[-1]["dropped_results"] == 0 and stats[-1]["out_of_files"] == 0


async def test_run_stats_every_must_be_sane(tmp_path, web_server):
    config = write_config(tmp_path / "m.toml", web_server)
    code, _, err = await monitor("run", "--headless", "--json", "--stats-every", "nan",
                                 "-c", str(config), cwd=tmp_path, env=clean_env(tmp_path))
    assert code == 2 and "--stats-every" in err and "Traceback" not in err


def write_overload(path: Path, base: str) -> Path:
    """20 targets every 200 ms whose answers take 100 ms, one at a time: 100
    probes a second wanted, 10 possible."""
    text = '[settings]\ninterval = "200ms"\ntimeout = "190ms"\nconcurrency = 1\n'
    for i in range(20):
        text += f'\n[[targets]]\nname = "t{i}"\nkind = "http"\nurl = "{base}/slow/{i}"\n'
    path.write_text(text)
    return path


async def test_run_headless_says_when_it_falls_behind(tmp_path, web_server):
    config = write_overload(tmp_path / "m.toml", web_server)
    env = clean_env(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--headless", "--json", "--stats-every", "0.5",
        "-c", str(config), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    latencies: list[float] = []
    try:
        async with asyncio.timeout(20):
            while True:
                line = await proc.stdout.readline()
                assert line, (await proc.stderr.read()).decode()
                event = json.loads(line)
                if event["event"] == "result" and event["latency_ms"] is not None:
                    latencies.append(event["latency_ms"])
                if event["event"] == "stats" and event["behind_s"] > 0.5:
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
    assert event["skips"] > 0 and event["skips_per_min"] > 0
    # queueing for the one slot is not latency: answers take 100 ms
    assert sorted(latencies)[len(latencies) // 2] < 180, latencies

    # text mode: one line on stderr, not one per probe
    text = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", "run", "--headless", "-c", str(config), cwd=tmp_path,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    said: list[str] = []
    try:
        async with asyncio.timeout(20):
            while not any("behind" in line for line in said):
                line = await text.stderr.readline()
                assert line, said
                said.append(line.decode())
    finally:
        text.send_signal(signal.SIGTERM)
        await asyncio.wait_for(text.wait(), 10)
    warning = said[-1]
    assert re.search(r"monitor: behind [0-9.]+s, [0-9]+ skipped/min: .*concurrency 1", warning)


@pytest.mark.parametrize("command", [["kinds"], ["check", "-c", "m.toml"],
                                     ["report", "--since", "1h", "-c", "m.toml"]])
async def test_a_reader_that_leaves_early_is_no_error(tmp_path, web_server, command):
    """`monitor kinds | head -1`: the rest is not wanted; no traceback, status 0."""
    config = write_config(tmp_path / "m.toml", web_server)
    read, write = os.pipe()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "monitor", *command, cwd=tmp_path,
        env=clean_env(tmp_path), stdout=write, stderr=asyncio.subprocess.PIPE)
    os.close(write)
    os.close(read)   # the reader is gone before a byte is written
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert "Traceback" not in err.decode() and "BrokenPipe" not in err.decode()
    assert proc.returncode in (0, 1), err   # (1: check found a target down; report: no history)
