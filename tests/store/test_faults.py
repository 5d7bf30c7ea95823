"""Faults, with real files and real processes: a second engine, kill -9 in the
middle of a batch, a locked, damaged, unwritable or full database, files of
another version or program, and the migration from version 1."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.engine.result import Status
from monitor.store import HistoryError, HistoryRefused, HistoryStore, writer
from monitor.store import schema
from monitor.store.connect import connect
from tests.store.conftest import T0, Clock, result
from tests.store.test_store import run_once, wait_for

ROOT = Path(__file__).resolve().parents[2]

# A child engine: writes results stamped with the real clock as fast as a
# busy monitor would (2,000 a second), says "ready" once it holds the
# database, and goes on until killed.
CHILD = """
import sys, time
from datetime import UTC, datetime
from monitor.engine.result import ProbeResult, Status
from monitor.store import HistoryStore
store = HistoryStore.open(sys.argv[1], owner_info="child engine")
store.on_start()
print("ready", flush=True)
for i in range(10**7):
    now = datetime.now(UTC)
    for k in range(20):
        store.on_result(ProbeResult(name=f"t{k}", kind="http", target="http://127.0.0.1/",
                                    status=Status.UP, latency_ms=1.0 + k, phases_ms={},
                                    reason=None, checked_at=now))
    time.sleep(0.01)
"""


def start_child(path: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, path], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = child.stdout.readline()
    assert line.strip() == "ready", child.stderr.read()
    return child


def stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
    child.wait(timeout=10)


def test_a_second_engine_is_refused_naming_the_first(db_path, opened):
    child = start_child(db_path)
    try:
        with pytest.raises(HistoryRefused) as refused:
            HistoryStore.open(db_path)
        message = str(refused.value)
        assert f"pid {child.pid} (child engine), since 20" in message
        assert "another monitor" in message and "history_db" in message
        reader = opened(db_path, read_only=True)      # reads always work
        wait_for(lambda: len(reader.targets()) == 20)
    finally:
        stop(child)
    # the kernel dropped the dead child's lock: a new engine may write
    opened(db_path).on_start()


def test_kill_9_mid_batch_loses_at_most_a_batch_and_never_corrupts(db_path):
    for round_ in range(3):
        child = start_child(db_path)
        time.sleep(1.0 + 0.37 * round_)   # a different point of the batch cycle each time
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
        stop(child)
        db = sqlite3.connect(db_path)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            newest = db.execute("SELECT max(at) FROM recent").fetchone()[0] / 1000
            run = db.execute("SELECT last_seen, stopped FROM runs ORDER BY id DESC LIMIT 1"
                             ).fetchone()
        finally:
            db.close()
        # flushed every 0.5 s: at most the last batch (and the one being written) is lost
        assert killed_at - newest <= 1.2
        assert run[1] is None and killed_at - run[0] / 1000 <= 1.2   # its span ends there
    # and the next engine opens it as it was, writing on
    store = HistoryStore.open(db_path)
    store.on_start()
    store.close()
    assert len(HistoryStore.open(db_path, read_only=True).targets()) == 20


def test_a_locked_database_is_said_and_retried_and_nothing_is_lost(db_path, opened, monkeypatch):
    monkeypatch.setattr(writer, "RETRY_EVERY", 0.2)
    health = []
    store = opened(db_path, clock=Clock(0), on_health=health.append)
    run_once(store, "a", 0, 5)
    wait_for(lambda: len(store.samples("a")) == 5)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")          # another program holds it
    try:
        for i in range(5, 10):
            store.on_result(result("a", i * 10))
        wait_for(lambda: not store.health.ok)
        assert store.health.message == ("history writing failed: the database is locked by "
                                        "another program; retrying")
    finally:
        other.execute("ROLLBACK")
        other.close()
    wait_for(lambda: store.health.ok)
    assert store.health.message == "history resumed"
    assert [h.ok for h in health] == [False, True]
    wait_for(lambda: len(store.samples("a")) == 10)


def test_a_damaged_file_is_moved_aside_and_a_new_one_started(db_path, opened):
    garbage = b"this is not SQLite at all\n" * 4000
    Path(db_path).write_bytes(garbage)
    store = opened(db_path, clock=Clock(0))
    assert store.health.ok and "was damaged: moved it to" in store.health.message
    moved = list(Path(db_path).parent.glob("history.sqlite3.damaged-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == garbage     # never deleted
    run_once(store, "a", 0, 3)
    wait_for(lambda: len(store.samples("a")) == 3)


def test_a_damaged_file_read_only_is_a_message(db_path):
    Path(db_path).write_bytes(b"garbage" * 1000)
    with pytest.raises(HistoryError, match="cannot read history: the database file is damaged"):
        HistoryStore.open(db_path, read_only=True)
    with pytest.raises(HistoryError, match="no history yet|cannot read history"):
        HistoryStore.open(db_path + "-missing", read_only=True)


def test_newer_and_foreign_databases_are_refused(db_path, tmp_path):
    db = sqlite3.connect(db_path, isolation_level=None)
    schema.create(db)
    db.execute(f"PRAGMA user_version = {schema.CURRENT + 1}")
    db.close()
    for read_only in (False, True):
        with pytest.raises(HistoryError, match=r"written by a newer monitor \(history schema 3, "
                                               r"this one reads up to 2\); upgrade monitor"):
            HistoryStore.open(db_path, read_only=read_only)
    foreign = str(tmp_path / "app.db")
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE users(name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(HistoryRefused, match="not a monitor history database"):
        HistoryStore.open(foreign)
    assert sqlite3.connect(foreign).execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_migration_from_version_1(db_path, opened):
    db = connect(db_path, read_only=False)
    schema.create(db, version=1)
    db.execute("INSERT INTO targets(id, name, kind, display, first_seen, last_seen) "
               "VALUES (1, 'a', 'http', 'http://x/', ?, ?)", (int(T0 * 1000), int((T0 + 7203) * 1000)))
    rows = [(1, int((T0 + i * 30) * 1000), 2 if i % 10 == 0 else 0, 1000 + i, None, 200, None,
             None, None, None, None, None, 0) for i in range(240)]        # 2 hours, settled
    db.executemany("INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO recent VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   [(1, int((T0 + 7200 + i) * 1000), 0, 500, None, None, None, None, None,
                     None, None, None, 0) for i in range(3)])                # not yet settled
    db.close()
    store = opened(db_path, clock=Clock(7300))
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA user_version").fetchone() == (schema.CURRENT,)
    assert db.execute("SELECT sum(count), sum(down) FROM hours").fetchone() == (240, 24)
    assert db.execute("SELECT count(*), sum(count) FROM minutes").fetchone() == (120, 240)
    db.close()
    assert len(store.samples("a")) == 243
    assert store.report(T0, T0 + 7200)[0].samples.count == 240


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB file system (tmpfs): root only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_said_retried_and_resumed(small_disk, opened, monkeypatch):
    monkeypatch.setattr(writer, "RETRY_EVERY", 0.2)
    path = str(small_disk / "history.sqlite3")
    store = opened(path, clock=Clock(0))
    store.on_start(T0)
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as handle:   # fill the disk to the last block
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    made = 0
    deadline = time.monotonic() + 10
    while store.health.ok:
        assert time.monotonic() < deadline, "the full disk went unnoticed"
        for _ in range(200):
            store.on_result(result("a", made, Status.DOWN, reason=f"reason {made}"))
            made += 1
        time.sleep(0.05)
    assert store.health.message == "history writing failed: disk full; retrying"
    filler.unlink()
    wait_for(lambda: store.health.ok)
    assert store.health.message == "history resumed"
    wait_for(lambda: len(store.samples("a")) == made)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_unwritable_place_is_said_and_retried(small_disk, opened, monkeypatch):
    monkeypatch.setattr(writer, "RETRY_EVERY", 0.2)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    path = str(small_disk / "history.sqlite3")
    store = opened(path, clock=Clock(0))
    assert not store.health.ok
    assert store.health.message == "history writing failed: Read-only file system; retrying"
    run_once(store, "a", 0, 4)                # kept in memory meanwhile
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    wait_for(lambda: store.health.ok)
    wait_for(lambda: len(store.samples("a")) == 4)

