"""The store on real SQLite files: what is written comes back, across restarts."""

from __future__ import annotations

import os

import time
from pathlib import Path

import pytest

from monitor.config import parse_config
from monitor.engine.result import Status
from monitor.engine.state import State
from monitor.store import HistoryStore, history_location, writer
from monitor.store.location import default_path
from tests.store.conftest import T0, Clock, result, transition


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not written in time"
        time.sleep(0.05)


def run_once(store: HistoryStore, name: str, start: float, count: int, step: float = 10.0,
             status: Status = Status.UP) -> None:
    store.on_start(T0 + start)
    store.on_transition(transition(name, start + 1, State.UP if status is Status.UP
                                   else State.DOWN))
    for i in range(count):
        store.on_result(result(name, start + i * step, status))


def test_restart_continuity(db_path, opened):
    clock = Clock(0)
    first = opened(db_path, clock=clock)
    run_once(first, "api", 0, 60)
    first.on_stop(T0 + 600)
    first.close()

    clock.set(1200)   # down for 10 minutes, then started again
    second = opened(db_path, clock=clock)
    run_once(second, "api", 1200, 30)
    wait_for(lambda: len(second.samples("api")) == 90)

    samples = second.samples("api")
    assert [s.at - T0 for s in samples[:2]] == [0, 10] and samples[-1].at - T0 == 1490
    recent = second.recent_samples(limit=70)["api"]
    assert len(recent) == 70 and recent[-1].at == samples[-1].at
    assert [e.to_state for e in second.events("api")] == ["up", "up"]
    clock.set(1500)
    window = second.uptime(windows=[1500.0])["api"][0]
    # known: [1, 600) and [1201, 1500); the 10 minutes the monitor was off are no data
    assert window.tally.up_ms == (599 + 299) * 1000
    assert window.uptime_pct == 100.0
    assert window.coverage_pct == pytest.approx(100 * 898 / 1500)


def test_reads_while_the_writer_runs_and_read_only_opens(db_path, opened):
    clock = Clock(0)
    writer = opened(db_path, clock=clock, owner_info="test engine")
    run_once(writer, "api", 0, 5)
    reader = opened(db_path, read_only=True, clock=clock)
    wait_for(lambda: len(reader.samples("api")) == 5)
    assert reader.targets()["api"].display == "http://127.0.0.1/api"
    sample = reader.samples("api")[0]
    back = sample.as_result("http", "http://127.0.0.1/api")
    assert (back.status, back.latency_ms, back.phases_ms) == (Status.UP, 10.0, {"connect": 0.5,
                                                                                "ttfb": 2.0})
    assert sample.to_json()["checked_at"] == "2027-01-15T08:00:00.000Z"


def test_failures_reasons_and_certificates_are_kept(db_path, opened):
    from monitor.probes.base import CertFacts
    from tests.store.conftest import at
    store = opened(db_path, clock=Clock(100))
    store.on_start(T0)
    store.on_result(result("a", 1, Status.DOWN, reason="connection refused"))
    store.on_result(result("a", 2, Status.DEGRADED, latency=812.5, reason="slow: 812ms > max 500ms",
                           http_status=200, cert=CertFacts(expires_at=at(2 + 86400 * 30))))
    store.on_result(result("a", 3, Status.DOWN, reason="connection refused", recheck=True))
    store.close()
    got = HistoryStore.open(db_path, read_only=True).samples("a")
    assert [(s.status, s.reason, s.recheck) for s in got] == [
        (Status.DOWN, "connection refused", False),
        (Status.DEGRADED, "slow: 812ms > max 500ms", False),
        (Status.DOWN, "connection refused", True)]
    assert got[1].latency_ms == 812.5 and got[1].http_status == 200
    assert got[1].cert_days_left == pytest.approx(30.0)
    assert got[0].latency_ms is None


def test_two_results_in_one_millisecond_are_both_kept(db_path, opened):
    store = opened(db_path, clock=Clock(10))
    store.on_start(T0)
    store.on_result(result("a", 1, Status.DOWN))
    store.on_result(result("a", 1, Status.DOWN, recheck=True))
    store.close()
    assert len(HistoryStore.open(db_path, read_only=True).samples("a")) == 2


def test_a_full_batch_is_written_without_waiting_for_the_flush_interval(db_path, opened,
                                                                         monkeypatch):
    """A busy monitor writes small batches: BATCH_WAKE results wake the writer
    (with the interval an hour long, only that can write them)."""
    monkeypatch.setattr(writer, "FLUSH_EVERY", 3600.0)
    store = opened(db_path, clock=Clock(10))
    reader = opened(db_path, read_only=True)
    for i in range(writer.BATCH_WAKE):
        store.on_result(result("a", i))
    wait_for(lambda: len(reader.samples("a")) == writer.BATCH_WAKE, timeout=10.0)
    store.on_result(result("a", writer.BATCH_WAKE))   # a lone one waits for the interval...
    time.sleep(0.3)
    assert len(reader.samples("a")) == writer.BATCH_WAKE
    store.close()                                      # ...or the close
    assert len(reader.samples("a")) == writer.BATCH_WAKE + 1


def test_a_removed_target_stops_counting_and_a_renamed_one_starts_fresh(db_path, opened):
    clock = Clock(0)
    store = opened(db_path, clock=clock)
    run_once(store, "old", 0, 10)
    store.on_reload({"at": T0 + 100, "removed": ["old"], "added": ["new"]})
    store.on_transition(transition("new", 101, State.UP))
    store.on_result(result("new", 101))
    clock.set(200)
    wait_for(lambda: "new" in store.targets())
    up = store.uptime(windows=[200.0])
    assert up["old"][0].tally.up_ms == 99_000       # [1, 100): then it left the config
    assert up["new"][0].tally.up_ms == 99_000       # [101, 200): none of old's history
    assert len(store.samples("new")) == 1 and len(store.samples("old")) == 10
    assert store.events("old")[-1].to_state == "removed"


def test_memory_and_off(opened):
    clock = Clock(0)
    memory = opened(":memory:", clock=clock)
    run_once(memory, "a", 0, 3)
    wait_for(lambda: len(memory.samples("a")) == 3)
    off = opened(None)
    off.on_start()
    off.on_result(result("a", 1))
    off.close()
    assert not off.enabled and off.samples("a") == [] and off.uptime() == {}


def test_where_history_lives(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    config_file = tmp_path / "conf" / "monitor.toml"
    config_file.parent.mkdir()
    config_file.write_text("")
    config = parse_config("", path=config_file)
    default = Path(history_location(config))
    assert default.parent == tmp_path / "data" / "monitor" / "history"
    assert default.name.startswith("monitor-") and default.suffix == ".sqlite3"
    # one database per config file: another file (same name elsewhere) gets another
    other = tmp_path / "other" / "monitor.toml"
    assert default_path(other) != default
    relative = parse_config('[settings]\nhistory_db = "hist/h.db"\n', path=config_file)
    assert history_location(relative) == str(tmp_path / "conf" / "hist" / "h.db")
    assert history_location(parse_config('[settings]\nhistory_db = "off"\n')) is None
    assert history_location(parse_config('[settings]\nhistory_db = ":memory:"\n')) == ":memory:"
    assert history_location(parse_config("")) is None   # no file, no default place


def test_retention_settings_are_checked():
    from monitor.config import ConfigError
    config = parse_config('[settings]\nhistory_keep_raw = "2d"\nhistory_keep_hours = "800d"\n')
    assert config.settings.history_keep_raw == 2 * 86400
    assert config.settings.history_keep_hours == 800 * 86400
    with pytest.raises(ConfigError) as caught:
        parse_config('[settings]\nhistory_keep_raw = "10m"\nhistory_keep_hours = "20y"\n',
                     path="m.toml")
    text = str(caught.value)
    assert "m.toml:2: settings.history_keep_raw: must be between 1h and 400d, got 10m" in text
    assert "m.toml:3: settings.history_keep_hours: cannot read \"20y\"" in text


def test_the_default_place_is_made_on_first_use(tmp_path):
    """A config's first run: the user data dir has no history directory yet."""
    from monitor.config import parse_config
    from monitor.store.history import HistoryStore
    config_path = tmp_path / "m.toml"
    config_path.write_text('[[targets]]\nname = "a"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 1\n')
    config = parse_config(config_path.read_text(), config_path)
    store = HistoryStore.for_config(config)
    try:
        assert store.enabled and store.health.ok, store.health
        assert (Path(os.environ["XDG_DATA_HOME"]) / "monitor" / "history").is_dir()
    finally:
        store.close()
