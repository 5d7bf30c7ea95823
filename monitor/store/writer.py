"""The writer thread: results, transitions and the monitor's own start, stop
and reloads go to SQLite in batches, off the probing path.

The engine's side only appends to a deque (`put`): no lock, no I/O, no
exception. Every FLUSH_EVERY seconds the thread writes what arrived in one
transaction, so kill -9 loses at most that much; sooner once BATCH_WAKE items
wait, so a busy monitor writes many small batches rather than few large
ones. A batch that fails (disk full, locked, unwritable, damaged) is kept
and retried, bounded in memory: past MAX_PENDING results the oldest are
dropped and counted; state changes and the monitor's own events are always
kept. Health changes go to `on_health` (from this thread) as one sentence an
operator can act on.

Between batches, the thread settles `recent` into `samples` with their
rollups and prunes old rows, a few targets per step (upkeep.py).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.engine.result import ProbeResult
from monitor.engine.state import State
from monitor.store import schema
from monitor.store.codec import SAMPLE_COLUMNS, STATE_CODE, epoch_ms, queue_item
from monitor.store.connect import connect, describe, is_corrupt, is_memory, move_aside
from monitor.store.location import HistoryBusy, OwnerLock
from monitor.store import upkeep
from monitor.store.upkeep import Upkeep
from monitor.store.uptime import REMOVED

log = logging.getLogger(__name__)

FLUSH_EVERY = 0.5          # seconds between batches: what kill -9 may cost
# Items waiting that wake the thread before FLUSH_EVERY. A batch costs the
# thread ~13 us of CPU per result (Python, then SQLite), and probing felt
# each batch whole: at 1,000 probes/s, batches of 500 made the 40 ms after each
# one carry most of the CLI's probes slower than its p99; batches of 100 spread
# that evenly (bench/README.md, "The history writer's batches").
BATCH_WAKE = 100
HEARTBEAT = 5.0            # seconds: the running span is extended at least this often
RETRY_EVERY = 2.0          # seconds between attempts while the database fails
MAX_PENDING = 200_000      # results held while the database fails (~200 bytes each)
TARGET_TOUCH_MS = 60_000   # targets.last_seen is rewritten at most this often
REASON_TOUCH_MS = 600_000  # and reasons' last use


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Retention:
    raw_ms: int = 7 * 86_400_000
    minutes_ms: int = 2 * 86_400_000
    hours_ms: int = 400 * 86_400_000

    @classmethod
    def from_settings(cls, settings: Any) -> Retention:
        return cls(int(settings.history_keep_raw * 1000), int(settings.history_keep_minutes * 1000),
                   int(settings.history_keep_hours * 1000))

    @property
    def events_ms(self) -> int:
        """State changes and running spans: as long as anything that needs them."""
        return max(self.raw_ms, self.minutes_ms, self.hours_ms)


def is_result(item: Any) -> bool:
    """A probe result, as the engine hands it over or as a queue item."""
    return isinstance(item, ProbeResult) or (type(item) is tuple and item[0] == "r")


def drop_oldest_result(items: list[tuple]) -> bool:
    """Take the oldest result out of `items` (queue items), keeping state
    changes and the monitor's own events; False when it holds none."""
    for index, item in enumerate(items):
        if item[0] == "r":
            del items[index]
            return True
    return False


class Inbox:
    """The engine's side of a writer: `put` appends to a deque and wakes the
    writer once a batch waits (no lock, no I/O, no exception), and each change
    of health is said once, to the log and to `on_health`."""

    health: Health
    on_health: Callable[[Health], None] | None

    def __init__(self) -> None:
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._health_lock = threading.Lock()   # health may change on two threads

    def put(self, item: Any) -> None:
        if len(self._queue) >= MAX_PENDING and is_result(item):
            self._count_dropped()
            return
        self._queue.append(item)
        if len(self._queue) >= BATCH_WAKE and not self._wake.is_set():
            self._wake.set()

    def _count_dropped(self) -> None:
        raise NotImplementedError

    def _set_health(self, health: Health) -> None:
        with self._health_lock:
            if health == self.health:
                return
            self.health = health
        if health.message:
            (log.warning if not health.ok else log.info)("%s", health.message)
        if self.on_health is not None:
            try:
                self.on_health(health)
            except Exception:
                log.exception("history health callback failed")


class Writer(Upkeep, Inbox):
    def __init__(self, path: str, *, owner: str, retention: Retention,
                 lock: OwnerLock | None, on_health: Callable[[Health], None] | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.owner = owner
        self.retention = retention
        self.lock = lock
        self.on_health = on_health
        self.clock = clock
        self.health = Health(True)
        Inbox.__init__(self)
        self.dropped = 0                       # results not kept (see MAX_PENDING)
        self.written = 0                       # results committed
        self._pending: list[tuple] = []        # converted, waiting for a commit
        self._pending_results = 0
        self._stopping = threading.Event()
        self._db: sqlite3.Connection | None = None
        self._failing_since: float | None = None
        self._next_try = 0.0
        self._run_id: int | None = None
        self._last_beat = 0.0
        self._targets: dict[str, tuple[int, str, str, int]] = {}   # name -> id, kind, display, touched
        self._reasons: dict[str, list[int]] = {}   # text -> [id, sample use, event use] written
        self._last_at: dict[int, int] = {}         # target id -> its newest sample time
        self._states: dict[str, tuple[int, str | None]] = {}   # name -> confirmed state, reason
        self._started_ms: int | None = None
        self._recent_rows = 0
        self._recent_oldest: int | None = None
        self._settling = False
        self._next_prune = 0.0
        self._prune_cursor = 0
        self._round_cuts: tuple[int, int, int] | None = None
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)

    def _count_dropped(self) -> None:
        self.dropped += 1

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # --- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.wait(FLUSH_EVERY)
                self._wake.clear()
                self._cycle()
            self._cycle(final=True)
        except Exception:   # a bug here must not take probing down with it
            log.exception("history writer failed")
            self._set_health(Health(False, "history writing stopped: internal error "
                                           "(see the log)"))
        finally:
            self._disconnect()
            if self.lock is not None:
                self.lock.release()

    def _cycle(self, final: bool = False) -> None:
        self._convert(self._queue)
        now = time.monotonic()
        if self._failing_since is not None and now < self._next_try and not final:
            return
        if self._pending or now - self._last_beat >= HEARTBEAT or final:
            if not self._attempt(self._write_batch):
                return
            self._last_beat = now
        if final:
            return
        if self._settle_due() and not self._attempt(self._settle_step):
            return
        if now >= self._next_prune:
            self._next_prune = now + upkeep.PRUNE_EVERY
            self._attempt(self._prune_step)

    def _attempt(self, step: Callable[[sqlite3.Connection], Callable[[], None] | None]) -> bool:
        """Run one step in a transaction; what it returns is done once the
        commit went through. On failure everything is kept for a retry."""
        try:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                committed = step(db)
                db.execute("COMMIT")
                if committed is not None:
                    committed()
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except (HistoryBusy, schema.SchemaError) as exc:
            self._failed(f"history not written: {exc}", reconnect=True)
            return False
        except (sqlite3.Error, OSError) as exc:
            if is_corrupt(exc) and not is_memory(self.path):
                self._replace_damaged()
            else:
                # a lock another program holds passes: keep the connection
                busy = (getattr(exc, "sqlite_errorname", "") or "").startswith(
                    ("SQLITE_BUSY", "SQLITE_LOCKED"))
                self._failed(f"history writing failed: {describe(exc)}; retrying",
                             reconnect=not busy)
            return False
        if self._failing_since is not None:
            self._failing_since = None
            lost = f" ({self.dropped:,} results could not be kept)" if self.dropped else ""
            self._set_health(Health(True, f"history resumed{lost}"))
        return True

    def _failed(self, message: str, reconnect: bool) -> None:
        # ids handed out in the rolled-back transaction are gone
        self._targets.clear()
        self._reasons.clear()
        self._settling = False
        if reconnect:
            self._disconnect()
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        self._next_try = time.monotonic() + RETRY_EVERY
        if self.dropped:
            message += f" ({self.dropped:,} results not kept)"
        self._set_health(Health(False, message))

    def _replace_damaged(self) -> None:
        self._disconnect()
        try:
            moved = move_aside(self.path)
        except OSError as exc:
            self._failed(f"history database {self.path} is damaged and cannot be moved aside: "
                         f"{describe(exc)}; retrying", reconnect=True)
            return
        self._targets.clear()
        self._reasons.clear()
        self._last_at.clear()
        # the new file starts a new running span that carries the states already confirmed
        carried: list[tuple] = [("start", epoch_ms(self.clock()))]
        carried += [("t", name, epoch_ms(self.clock()), STATE_CODE[State.PENDING], state, reason, None)
                    for name, (state, reason) in self._states.items()]
        self._pending[:0] = carried
        self._run_id = None
        self._set_health(Health(True, f"history database was damaged: moved it to {moved} "
                                      "and started a new one"))
        self._next_try = 0.0

    def connect_now(self) -> None:
        """Open (create, migrate) the database before the thread starts, so
        a refusal (another engine, a newer schema) is the caller's to report."""
        self._connection()

    def notice(self, message: str) -> None:
        self._set_health(Health(True, message))

    def fail_at_start(self, message: str) -> None:
        self._failed(message, reconnect=True)

    @property
    def writing(self) -> bool:
        """It has committed since it started, and its last attempt went through."""
        return self._last_beat > 0 and self._failing_since is None

    def disconnect(self) -> None:
        """Close the connection, keep the lock (another process writes on)."""
        self._disconnect()

    def abandon(self) -> None:
        """Let go of the database without starting (the open was refused)."""
        self._disconnect()
        if self.lock is not None:
            self.lock.release()

    def _connection(self) -> sqlite3.Connection:
        if self._db is not None:
            return self._db
        if self.lock is not None and not self.lock.held:
            self.lock.acquire(self.owner)
        db = connect(self.path, read_only=False)
        try:
            schema.prepare(db, self.path)
            self._recent_rows = db.execute("SELECT count(*) FROM recent").fetchone()[0]
            row = db.execute("SELECT at FROM recent ORDER BY rowid LIMIT 1").fetchone()
            self._recent_oldest = row[0] if row else None
        except BaseException:
            db.close()
            raise
        self._db = db
        return db

    def _disconnect(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None

    # --- converting what the engine sent -------------------------------------------

    def _convert(self, queue: deque[Any]) -> None:
        pending = self._pending
        while queue:
            item = queue_item(queue.popleft())
            kind = item[0]
            if kind == "r":
                if self._pending_results >= MAX_PENDING:
                    self._drop_oldest_result()
                pending.append(item)
                self._pending_results += 1
            elif kind == "t":
                self._states[item[1]] = (item[4], item[5])
                pending.append(item)
            elif kind == "reload":
                at = item[1]
                pending.append(("reload", at, item[2]))
                for name in item[3]:
                    self._states.pop(name, None)
                    pending.append(("t", name, at, STATE_CODE[State.PENDING], REMOVED,
                                    "removed from the config", None))
            else:
                pending.append(item)

    def _drop_oldest_result(self) -> None:
        if drop_oldest_result(self._pending):
            self._pending_results -= 1
            self.dropped += 1

    # --- one batch ---------------------------------------------------------------------

    def _write_batch(self, db: sqlite3.Connection) -> Callable[[], None]:
        batch = list(self._pending)
        run_id = self._run_id
        samples: list[tuple] = []
        events: list[tuple] = []
        newest = epoch_ms(self.clock())
        for item in batch:
            kind = item[0]
            if kind == "r":
                if run_id is None:
                    run_id = self._new_run(db, item[4])
                samples.append(self._sample(db, item))
            elif kind == "t":
                if run_id is None:
                    run_id = self._new_run(db, item[2])
                events.append(self._event(db, item, run_id))
            elif kind == "start":
                if run_id is not None:
                    db.execute("UPDATE runs SET stopped = ?, last_seen = max(last_seen, ?) "
                               "WHERE id = ?", (item[1], item[1], run_id))
                run_id = self._new_run(db, item[1])
            elif kind == "stop":
                if run_id is not None:
                    db.execute("UPDATE runs SET stopped = ?, last_seen = max(last_seen, ?) "
                               "WHERE id = ?", (item[1], item[1], run_id))
                run_id = None
            elif kind == "reload":
                if run_id is None:
                    run_id = self._new_run(db, item[1])
                db.execute("INSERT INTO reloads(run, at, summary) VALUES (?, ?, ?)",
                           (run_id, item[1], item[2]))
            newest = max(newest, item[2] if kind == "t" else item[4] if kind == "r" else item[1])
        if samples:
            marks = ",".join("?" * len(SAMPLE_COLUMNS))
            db.executemany(f"INSERT INTO recent VALUES ({marks})", samples)
        if events:
            db.executemany("INSERT INTO events(target, at, run, from_state, to_state, reason, "
                           "previous_ms) VALUES (?,?,?,?,?,?,?)", events)
        if run_id is not None:
            db.execute("UPDATE runs SET last_seen = max(last_seen, ?) WHERE id = ?",
                       (newest, run_id))
        def committed() -> None:   # a commit that fails (disk full) keeps the batch
            self._run_id = run_id
            del self._pending[:len(batch)]
            self._pending_results = sum(1 for item in self._pending if item[0] == "r")
            self.written += len(samples)
            self._recent_rows += len(samples)
            if samples and self._recent_oldest is None:
                self._recent_oldest = samples[0][1]
        return committed

    def _new_run(self, db: sqlite3.Connection, at: int) -> int:
        cursor = db.execute("INSERT INTO runs(started, last_seen, pid, owner) VALUES (?,?,?,?)",
                            (at, at, os.getpid(), self.owner))
        return int(cursor.lastrowid or 0)

    def _sample(self, db: sqlite3.Connection, item: tuple) -> tuple:
        _, name, kind, display, at, status, latency, reason, *rest = item
        target = self._target_id(db, name, kind, display, at)
        last = self._last_at.get(target)
        if last is not None and at <= last:
            at = last + 1   # two results in one millisecond (a recheck of a refused port)
        self._last_at[target] = at
        reason_id = self._reason_id(db, reason, at, 1) if reason is not None else None
        return (target, at, status, latency, reason_id, *rest)

    def _event(self, db: sqlite3.Connection, item: tuple, run_id: int) -> tuple:
        _, name, at, from_state, to_state, reason, previous = item
        cached = self._targets.get(name)
        target = cached[0] if cached else self._target_id(db, name, None, None, at)
        reason_id = self._reason_id(db, reason, at, 2) if reason is not None else None
        return (target, at, run_id, from_state, to_state, reason_id, previous)

    def _target_id(self, db: sqlite3.Connection, name: str, kind: str | None,
                   display: str | None, at: int) -> int:
        cached = self._targets.get(name)
        if cached is not None:
            target, known_kind, known_display, touched = cached
            if (kind is None or (kind == known_kind and display == known_display)) \
                    and at - touched < TARGET_TOUCH_MS:
                return target
        row = db.execute("SELECT id, kind, display FROM targets WHERE name = ?", (name,)).fetchone()
        if row is None:
            target = int(db.execute(
                "INSERT INTO targets(name, kind, display, first_seen, last_seen) VALUES (?,?,?,?,?)",
                (name, kind or "", display or "", at, at)).lastrowid or 0)
            self._targets[name] = (target, kind or "", display or "", at)
            return target
        target, known_kind, known_display = row
        if kind is not None and (kind, display) != (known_kind, known_display):
            # same name, edited target: its history goes on (a renamed one starts fresh)
            db.execute("UPDATE targets SET kind = ?, display = ?, last_seen = max(last_seen, ?) "
                       "WHERE id = ?", (kind, display, at, target))
            known_kind, known_display = kind, display or ""
        else:
            db.execute("UPDATE targets SET last_seen = max(last_seen, ?) WHERE id = ?", (at, target))
        self._targets[name] = (target, known_kind, known_display, at)
        return target

    def _reason_id(self, db: sqlite3.Connection, text: str, at: int, use: int) -> int:
        """Interned; `use` 1 = a sample, 2 = an event (each keeps it alive as
        long as its own retention, see _prune_round)."""
        column = "sample_use" if use == 1 else "event_use"
        cached = self._reasons.get(text)
        if cached is not None:
            if at - cached[use] >= REASON_TOUCH_MS:
                db.execute(f"UPDATE reasons SET {column} = ? WHERE id = ?", (at, cached[0]))
                cached[use] = at
            return cached[0]
        row = db.execute("SELECT id FROM reasons WHERE text = ?", (text,)).fetchone()
        if row is None:
            reason = int(db.execute(f"INSERT INTO reasons(text, {column}) VALUES (?, ?)",
                                    (text, at)).lastrowid or 0)
        else:
            reason = row[0]
            db.execute(f"UPDATE reasons SET {column} = ? WHERE id = ?", (at, reason))
        if len(self._reasons) >= 10_000:   # reasons with numbers in them never repeat
            self._reasons.clear()
        entry = [reason, 0, 0]
        entry[use] = at
        self._reasons[text] = entry
        return reason
