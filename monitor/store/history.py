"""HistoryStore: the engine's history sink and the read API in one object.

    store = HistoryStore.open(path, owner_info="monitor run --headless")
    store.on_start(at); store.on_result(r); store.on_transition(t)
    store.on_reload({"removed": [...], ...}); store.on_stop(at); store.close()
    store.uptime(); store.recent_samples(); store.series("api", "24h"); ...

The sink methods never block and never raise: they append to the writer
thread's queue. `open(None)` is history off: every call does nothing and
reads find nothing, so callers need no special case. Reads raise
HistoryError with a sentence when the database cannot be read.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from monitor.config.model import Config
from monitor.engine.result import ProbeResult
from monitor.engine.state import Transition
from monitor.store import schema
from monitor.store.connect import (
    HistoryError, connect, describe, is_corrupt, is_memory, memory_uri, move_aside)
from monitor.store.location import MEMORY, HistoryBusy, OwnerLock, history_location
from monitor.store.reader import Holes, Reader, prepare_reader
from monitor.store.uptime import Outage
from monitor.store.views import (
    WINDOWS, Series, StoredEvent, StoredSample, TargetInfo, TargetReport, WindowUptime)
from monitor.store.codec import moment_ms, reload_item
from monitor.store.writer import Health, Retention, Writer
from monitor.store.writer_process import WriterProcess

log = logging.getLogger(__name__)


class HistoryRefused(HistoryError):
    """This database must not be written by this monitor: another engine
    writes it, or it is from a newer version or not monitor's."""


class HistoryStore:
    def __init__(self, path: str | None, *, read_only: bool,
                 writer: Writer | WriterProcess | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.read_only = read_only
        self._writer = writer
        self._clock = clock
        self._read_db: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._stopped = True

    @classmethod
    def open(cls, path: str | None, *, read_only: bool = False, owner_info: str = "",
             retention: Retention | None = None,
             on_health: Callable[[Health], None] | None = None,
             clock: Callable[[], float] = time.time,
             own_process: bool = False) -> HistoryStore:
        """`path`: a file, ":memory:", or None (history off). `own_process`:
        write from a child process rather than a thread (writer_process.py:
        the engine's choice, so that history does not share its GIL). Raises
        HistoryRefused when another engine writes the file or its schema is
        newer or foreign; HistoryError for a read-only open of a missing or
        unreadable file. Any other fault of a writable store is reported
        through `health`/`on_health` and retried, never raised."""
        if path is None:
            return cls(None, read_only=read_only, writer=None, clock=clock)
        if path == MEMORY:
            path = memory_uri()
        if read_only:
            store = cls(path, read_only=True, writer=None, clock=clock)
            store._reader_db()   # a missing or foreign file is said now
            return store
        lock = None if is_memory(path) else OwnerLock(path)
        writer = Writer(path, owner=owner_info, retention=retention or Retention(), lock=lock,
                        on_health=on_health, clock=clock)
        _first_connect(writer, path)
        chosen: Writer | WriterProcess = writer
        if own_process and not is_memory(path):
            chosen = WriterProcess(writer)
        chosen.start()
        return cls(path, read_only=False, writer=chosen, clock=clock)

    @classmethod
    def for_config(cls, config: Config, **kwargs: Any) -> HistoryStore:
        """The store `[settings] history_db` names (default: the user data dir)."""
        return cls.open(history_location(config),
                        retention=Retention.from_settings(config.settings), **kwargs)

    @property
    def enabled(self) -> bool:
        return self.path is not None

    @property
    def health(self) -> Health:
        return self._writer.health if self._writer is not None else Health(True)

    @property
    def dropped(self) -> int:
        """Results not kept because the database failed for long (see writer)."""
        return self._writer.dropped if self._writer is not None else 0

    # --- sink: never blocks, never raises --------------------------------------------

    def on_start(self, at: datetime | float | None = None) -> None:
        self._stopped = False
        self._put(("start", moment_ms(at, self._clock)))

    def on_result(self, result: ProbeResult) -> None:
        if self._writer is not None:
            self._writer.put(result)

    def on_transition(self, transition: Transition) -> None:
        if self._writer is not None:
            self._writer.put(transition)

    def on_reload(self, summary: dict[str, Any]) -> None:
        """`summary`: what a config reload changed, e.g. {"added": [names],
        "removed": [names], "changed": [names]} (names and counts only: no
        secrets). Removed targets stop counting towards uptime from here."""
        try:
            self._put(reload_item(moment_ms(summary.get("at"), self._clock), summary))
        except Exception:
            log.exception("history: reload summary not recorded")

    def on_stop(self, at: datetime | float | None = None) -> None:
        self._stopped = True
        self._put(("stop", moment_ms(at, self._clock)))

    def _put(self, item: tuple) -> None:
        if self._writer is not None:
            self._writer.put(item)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting up to `timeout`), release the database."""
        if self._writer is not None:
            if not self._stopped:
                self.on_stop()
            self._writer.close(timeout)
        with self._read_lock:
            if self._read_db is not None:
                self._read_db.close()
                self._read_db = None

    # --- reads --------------------------------------------------------------------------

    def _reader_db(self) -> sqlite3.Connection:
        if self._read_db is None:
            assert self.path is not None
            if not is_memory(self.path) and not os.path.exists(self.path):
                raise HistoryError(f"{self.path}: no history yet (it is written while the "
                                   "monitor runs with this config)")
            try:
                db = connect(self.path, read_only=True)
            except (sqlite3.Error, OSError) as exc:
                raise HistoryError(f"{self.path}: cannot read history: {describe(exc)}") from None
            try:
                if is_memory(self.path):
                    db.execute("PRAGMA read_uncommitted = 1")
                schema.check_readable(db, self.path)
                prepare_reader(db)
            except schema.SchemaError as exc:
                db.close()
                raise HistoryError(str(exc)) from None
            except sqlite3.Error as exc:
                db.close()
                raise HistoryError(f"{self.path}: cannot read history: {describe(exc)}") from None
            self._read_db = db
        return self._read_db

    def _read(self, call: Callable[[Reader], Any], empty: Any) -> Any:
        if self.path is None:
            return empty
        with self._read_lock:
            try:
                return call(Reader(self._reader_db(), self._clock))
            except sqlite3.Error as exc:
                if self._read_db is not None:   # a fresh connection next time
                    self._read_db.close()
                    self._read_db = None
                raise HistoryError(f"{self.path}: cannot read history: {describe(exc)}") from None

    def targets(self) -> dict[str, TargetInfo]:
        return self._read(lambda r: r.targets(), {})

    def recent_samples(self, names: Iterable[str] | None = None,
                       limit: int = 100) -> dict[str, list[StoredSample]]:
        return self._read(lambda r: r.recent_samples(names, limit), {})

    def samples(self, name: str, since: float | None = None,
                until: float | None = None) -> list[StoredSample]:
        return self._read(lambda r: r.samples(name, since, until), [])

    def events(self, name: str | None = None, since: float | None = None,
               until: float | None = None, limit: int | None = None) -> list[StoredEvent]:
        return self._read(lambda r: r.events(name, since, until, limit), [])

    def uptime(self, names: Iterable[str] | None = None, windows: Sequence[float] = WINDOWS,
               now: float | None = None, holes: Holes | None = None
               ) -> dict[str, list[WindowUptime]]:
        """`holes`: name -> spans left out of uptime (maintenance windows)."""
        return self._read(lambda r: r.uptime(names, windows, now, holes), {})

    def incidents(self, name: str, since: float, until: float | None = None,
                  now: float | None = None) -> list[Outage]:
        return self._read(lambda r: r.incidents(name, since, until, now), [])

    def series(self, name: str, range_: str | float = "24h", now: float | None = None,
               points: int = 120) -> Series | None:
        return self._read(lambda r: r.series(name, range_, now, points), None)

    def report(self, since: float, until: float | None = None,
               now: float | None = None, holes: Holes | None = None) -> list[TargetReport]:
        return self._read(lambda r: r.report(since, until, now, holes), [])


def _first_connect(writer: Writer, path: str) -> None:
    """Open at once so a refusal is raised here; other faults go to health."""
    try:
        writer.connect_now()
    except HistoryBusy as exc:
        raise HistoryRefused(str(exc)) from None
    except schema.SchemaError as exc:
        writer.abandon()
        raise HistoryRefused(str(exc)) from None
    except (sqlite3.Error, OSError) as exc:
        if is_corrupt(exc) and not is_memory(path):
            try:
                moved = move_aside(path)
            except OSError:
                moved = None
            if moved is not None:
                writer.notice(f"history database was damaged: moved it to {moved} and started "
                              "a new one")
                try:
                    writer.connect_now()
                    return
                except (sqlite3.Error, OSError) as again:
                    exc = again
        writer.fail_at_start(f"history writing failed: {describe(exc)}; retrying")
