"""The history writer in its own process, on real SQLite files and real
processes: what the engine hands over is written, whatever happens to the
engine or to the writer's process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from monitor.engine.state import State
from monitor.store import HistoryStore, writer
from monitor.store.history import HistoryRefused
from monitor.store.writer_child import GROUP_SIGNALS
from monitor.store.writer_process import NICE, WriterProcess
from tests.store.conftest import result, transition

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def child_of(store: HistoryStore) -> subprocess.Popen:
    process = store._writer
    assert isinstance(process, WriterProcess)
    wait_for(lambda: process._child is not None)
    return process._child


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has ended: only its parent has not read its status yet
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"


def test_the_engine_hands_history_to_a_process_that_writes_it(db_path, opened):
    store = opened(db_path, owner_info="test engine", own_process=True)
    child = child_of(store)
    assert child.pid != os.getpid()
    assert b"monitor.store.writer_child" in Path(f"/proc/{child.pid}/cmdline").read_bytes()
    niced = min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE)   # probing comes first
    wait_for(lambda: os.getpriority(os.PRIO_PROCESS, child.pid) == niced)
    store.on_start()
    store.on_transition(transition("api", 0, State.UP))
    for i in range(250):
        store.on_result(result("api", i))
    reader = opened(db_path, read_only=True)
    wait_for(lambda: len(reader.samples("api")) == 250)
    assert [e.to_state for e in reader.events("api")] == ["up"]
    with pytest.raises(HistoryRefused, match="test engine"):   # still one engine per database
        HistoryStore.open(db_path, own_process=True)
    store.close()
    assert child.poll() == 0
    assert store._writer.written == 250 and store.dropped == 0
    HistoryStore.open(db_path, own_process=True).close()      # the claim went with it


def test_a_store_closed_at_once_still_writes_what_it_was_given(db_path):
    store = HistoryStore.open(db_path, own_process=True)
    store.on_result(result("a", 0))
    store.close()                                  # before its process has even started
    assert len(HistoryStore.open(db_path, read_only=True).samples("a")) == 1


def test_a_full_batch_goes_to_the_process_without_waiting_for_the_interval(
        db_path, opened, monkeypatch):
    """The writer's tuning reaches the child: with the interval an hour long,
    only BATCH_WAKE waiting results can send and write them."""
    monkeypatch.setattr(writer, "FLUSH_EVERY", 3600.0)
    store = opened(db_path, own_process=True)
    reader = opened(db_path, read_only=True)
    for i in range(writer.BATCH_WAKE):
        store.on_result(result("a", i))
    wait_for(lambda: len(reader.samples("a")) == writer.BATCH_WAKE)
    store.on_result(result("a", writer.BATCH_WAKE))
    time.sleep(0.3)
    assert len(reader.samples("a")) == writer.BATCH_WAKE
    store.close()
    assert len(reader.samples("a")) == writer.BATCH_WAKE + 1


def test_a_writer_process_that_dies_is_said_and_replaced(db_path, opened, monkeypatch):
    monkeypatch.setattr(writer, "RETRY_EVERY", 0.2)
    said: list[str] = []
    store = opened(db_path, own_process=True, on_health=lambda h: said.append(h.message))
    first = child_of(store)
    for i in range(10):
        store.on_result(result("a", i))
    reader = opened(db_path, read_only=True)
    wait_for(lambda: store._writer.written == 10)   # as the first child said
    first.kill()
    wait_for(lambda: any("ended" in (m or "") for m in said))
    assert "history writer process ended (killed by signal 9)" in said[0]
    assert not store.health.ok
    for i in range(10, 30):                       # while none runs, and after
        store.on_result(result("a", i))
    wait_for(lambda: len(reader.samples("a")) == 30)
    second = child_of(store)
    assert second.pid != first.pid
    wait_for(lambda: store.health.ok)
    assert said[-1] == "history resumed"
    store.close()
    assert store._writer.written == 30


def test_a_writer_process_that_cannot_start_says_why(db_path, opened, monkeypatch, tmp_path):
    """Its last words on stderr (a traceback ends with the error) are in the
    health message, printable; nothing queued is lost meanwhile."""
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\nprintf 'Traceback (most recent call last):\\n"
                      "OSError: disk \\033[31mon fire\\n' >&2\nexit 3\n")
    broken.chmod(0o755)
    real = sys.executable
    monkeypatch.setattr(sys, "executable", str(broken))
    monkeypatch.setattr(writer, "RETRY_EVERY", 0.2)
    said: list[str] = []
    store = opened(db_path, own_process=True, on_health=lambda h: said.append(h.message))
    store.on_result(result("a", 0))
    wait_for(lambda: said)
    assert said[0] == ("history writer process ended (exit status 3: OSError: disk \\e[31mon "
                       "fire); starting another in 0.2s")
    monkeypatch.setattr(sys, "executable", real)          # mended: what waited is written
    reader = opened(db_path, read_only=True)
    wait_for(lambda: len(reader.samples("a")) == 1)
    wait_for(lambda: said[-1] == "history resumed")


def test_signals_to_the_whole_group_leave_the_writer_process_writing(db_path, opened):
    """Ctrl-C, Ctrl-\\, a dropped SSH session, a service stop: each goes to
    the process group; the engine decides, the writer goes on."""
    said: list[str] = []
    store = opened(db_path, own_process=True, on_health=lambda h: said.append(h.message))
    child = child_of(store)
    wait_for(lambda: store._writer._ready == child.pid)   # its handlers are set by then
    for number in GROUP_SIGNALS:
        os.kill(child.pid, number)
    store.on_result(result("a", 0))
    reader = opened(db_path, read_only=True)
    wait_for(lambda: len(reader.samples("a")) == 1)
    assert child.poll() is None and store._writer._child is child and said == []


ENGINE = textwrap.dedent("""
    import os, signal, sys, time
    sys.path.insert(0, {root!r})
    from monitor.store import HistoryStore
    from tests.store.conftest import result
    said = []
    store = HistoryStore.open({db!r}, own_process=True, on_health=lambda h: said.append(h.message))
    store.on_start()
    for i in range({count}):
        store.on_result(result("a", i))
    time.sleep(1.0)                 # twice the interval: all of it is in the child's hands
    print(store._writer._child.pid, flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:       # what `run --headless` does on Ctrl-C: close
        for i in range({count}, 2 * {count}):
            store.on_result(result("a", i))
        store.close()
        print(said, store._writer.written, flush=True)
""")


def start_engine(db_path: str, count: int) -> subprocess.Popen:
    script = ENGINE.format(root=str(ROOT), db=db_path, count=count)
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


def test_an_engine_killed_outright_loses_nothing_and_its_restart_is_not_refused(db_path):
    """The orphaned writer writes what it was handed; a new engine may claim
    the database at once, even while that writer is still at it (here: stopped)."""
    engine = start_engine(db_path, 500)
    child = int(engine.stdout.readline())
    os.kill(child, signal.SIGSTOP)
    try:
        engine.kill()
        assert engine.wait(10) == -signal.SIGKILL
        again = HistoryStore.open(db_path, own_process=True)   # not refused
    finally:
        os.kill(child, signal.SIGCONT)
    wait_for(lambda: not alive(child))            # the pipe closed: it wrote what it had, and ended
    again.on_result(result("a", 500))
    again.close()
    assert len(HistoryStore.open(db_path, read_only=True).samples("a")) == 501


def test_ctrl_c_reaches_the_engine_not_the_writer(db_path):
    """A Ctrl-C goes to the terminal's whole process group: the engine
    closes, and the writer process writes to the end rather than dying."""
    engine = start_engine(db_path, 200)
    child = int(engine.stdout.readline())
    os.killpg(engine.pid, signal.SIGINT)
    out, _ = engine.communicate(timeout=20)
    assert engine.returncode == 0
    assert out.strip() == "[] 400"                # no health message: it never ended early
    assert not alive(child)
    assert len(HistoryStore.open(db_path, read_only=True).samples("a")) == 400
