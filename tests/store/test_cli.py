"""`monitor history` and `monitor report` on real databases, through the real
command line (and while a real engine process writes)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time

import pytest

from monitor.cli import main
from monitor.engine.result import Status
from monitor.engine.state import State
from monitor.store import HistoryStore
from monitor.store.cli_commands import percent
from tests.store import conftest
from tests.store.test_faults import ROOT, start_child, stop

NOW = time.time()


@pytest.fixture
def history(db_path, monkeypatch):
    """Two hours of two targets, ending a minute ago: "api" was down for 5
    minutes; "web" was up. The monitor was off for 10 minutes in between."""
    monkeypatch.setattr(conftest, "T0", NOW - 7260)
    clock = conftest.Clock(0)
    store = HistoryStore.open(db_path, clock=clock)
    store.on_start(conftest.T0)
    for name in ("api", "web"):
        store.on_transition(conftest.transition(name, 0, State.UP))
    for i in range(0, 3000, 30):
        down = 1200 <= i < 1500
        store.on_result(conftest.result("api", i, Status.DOWN if down else Status.UP,
                                        latency=20.0 + i % 7, http_status=None if down else 200,
                                        reason="expected 2xx, got 503" if down else None))
        store.on_result(conftest.result("web", i, latency=5.0))
    store.on_transition(conftest.transition("api", 1230, State.DOWN, State.UP,
                                            "expected 2xx, got 503"))
    store.on_transition(conftest.transition("api", 1500, State.UP, State.DOWN))
    store.on_stop(conftest.T0 + 3000)
    store.on_start(conftest.T0 + 3600)
    for name in ("api", "web"):
        store.on_transition(conftest.transition(name, 3601, State.UP))
    for i in range(3600, 7200, 30):
        store.on_result(conftest.result("api", i, latency=25.0, http_status=200))
        store.on_result(conftest.result("web", i, latency=5.0))
    store.on_stop(conftest.T0 + 7200)
    store.close()
    return db_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_as_json_lines_follows_the_result_contract(history, capsys):
    code, out, err = run(capsys, "history", "api", "--db", history, "--since", "3h", "--json")
    assert code == 0 and err == ""
    lines = [json.loads(line) for line in out.splitlines()]
    results = [line for line in lines if line["event"] == "result"]
    changes = [line for line in lines if line["event"] == "transition"]
    assert len(results) == 220 and len(changes) == 4
    assert set(results[0]) >= {"name", "kind", "target", "status", "ok", "latency_ms", "phases_ms",
                               "reason", "http_status", "cert_days_left", "cert_expires_at",
                               "checked_at", "details"}
    assert [(c["from"], c["to"]) for c in changes] == [("pending", "up"), ("up", "down"),
                                                       ("down", "up"), ("pending", "up")]
    assert [line["checked_at"] if line["event"] == "result" else line["at"]
            for line in lines] == sorted(line["checked_at"] if line["event"] == "result"
                                         else line["at"] for line in lines)


def test_history_window_csv_and_text(history, capsys):
    code, out, _ = run(capsys, "history", "api", "--db", history, "--since", "110m", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows and all(r["event"] in ("result", "transition") for r in rows)
    down = [r for r in rows if r["status"] == "down"]
    assert len(down) == 10 and down[0]["reason"] == "expected 2xx, got 503"
    assert down[0]["http_status"] == "" and down[0]["latency_ms"] == "23.000"
    code, out, _ = run(capsys, "history", "api", "--db", history, "--since", "110m",
                       "--until", "90m")
    assert code == 0
    assert out.splitlines()[0].startswith("api (http, http://127.0.0.1/api): ")
    assert "DOWN" in out and "expected 2xx, got 503" in out and "-- UP -> DOWN" in out


def test_report_table_markdown_json_and_csv(history, capsys):
    code, out, _ = run(capsys, "report", "--db", history, "--since", "3h")
    assert code == 0
    title, header, worst, best = out.splitlines()
    assert title.startswith("Uptime ") and title.endswith("(3h), 2 targets")
    # api: up 1230+1500+3599 s, down 270 s -> 95.90 %, one 4m30s incident; known
    # 6599 s of the 10800 (the monitor off for 10 min and before the data began)
    assert worst.split()[:5] == ["api", "95.90%", "61%", "1", "4m30s"]
    assert best.split()[:4] == ["web", "100%", "61%", "0"]
    code, out, _ = run(capsys, "report", "--db", history, "--since", "3h", "--markdown")
    assert "| api | 95.90% | 61% | 1 | 4m30s (" in out and out.startswith("**Uptime")
    code, out, _ = run(capsys, "report", "--db", history, "--since", "3h", "--json")
    api = json.loads(out.splitlines()[0])
    assert (api["name"], api["incidents"], api["longest_outage_s"], api["checks"],
            api["failures"]) == ("api", 1, 270.0, 220, 10)
    assert 20 <= api["p50_ms"] <= 26 and api["p95_ms"] <= 26
    code, out, _ = run(capsys, "report", "--db", history, "--since", "3h", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == ["api", "web"] and rows[1]["uptime_pct"] == "100.0"


def test_mistakes_are_messages(history, capsys, tmp_path):
    code, _, err = run(capsys, "history", "apo", "--db", history)
    assert code == 2 and "no history of a target named 'apo' (did you mean 'api'?)" in err
    code, _, err = run(capsys, "report", "--db", history, "--since", "last week")
    assert code == 2 and "--since: cannot read 'last week' as a duration" in err
    code, _, err = run(capsys, "report", "--db", str(tmp_path / "none.sqlite3"))
    assert code == 1 and "no history yet" in err
    config = tmp_path / "m.toml"
    config.write_text('[settings]\nhistory_db = "off"\n')
    code, _, err = run(capsys, "report", "--config", str(config))
    assert code == 2 and "history is off for" in err


def test_the_config_finds_its_database(history, capsys, tmp_path):
    config = tmp_path / "m.toml"
    config.write_text(f'[settings]\nhistory_db = "{history}"\n')
    code, out, _ = run(capsys, "report", "--config", str(config), "--json")
    assert code == 0 and len(out.splitlines()) == 2


def test_report_and_history_work_while_an_engine_writes(db_path):
    child = start_child(db_path)
    try:
        time.sleep(0.8)
        for argv in (["report", "--since", "1h", "--json"], ["history", "t3", "--since", "1h"]):
            proc = subprocess.run([sys.executable, "-m", "monitor", *argv, "--db", db_path],
                                  cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.strip()
    finally:
        stop(child)


def test_percent_never_rounds_up_to_100():
    assert [percent(v) for v in (100.0, 99.996, 99.9, 0.0, None)] == [
        "100%", "99.99%", "99.90%", "0.00%", "no data"]
