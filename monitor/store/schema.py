"""The history database's tables, its version and the migrations between
versions.

`PRAGMA user_version` is the schema version and `PRAGMA application_id` marks
the file as monitor's, so a foreign database is never taken over. Each
migration runs in one transaction: a kill mid-migration leaves the previous
version intact. Version 1 kept raw samples and events; version 2 added the
per-minute and per-hour rollups (backfilled from the raw samples).

Samples arrive in `recent`, in arrival order: an append touches a few pages
per batch whatever the number of targets (54 bytes written per sample, where
inserting into a table ordered by target rewrote a 4 KiB page per sample:
5.8 KB). The writer moves them in bulk to `samples`, ordered by (target,
time) for the per-target reads, and rolls them up on the way
(`writer.Writer.settle`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from monitor.store.codec import SAMPLE_COLUMNS
from monitor.store.rollup import HOUR_MS, MINUTE_MS, ROLLUP_COLUMNS, roll_up, rows_of

APPLICATION_ID = 0x4D4F4E48   # "MONH"
CURRENT = 2


class SchemaError(Exception):
    """The file is not a history database this monitor can use."""


_SAMPLE_DEFS = ", ".join(f"{name} INTEGER" + (" NOT NULL" if name in ("target", "at", "status")
                                              else "") for name in SAMPLE_COLUMNS)

_VERSION_1 = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID;
CREATE TABLE targets(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL DEFAULT '', display TEXT NOT NULL DEFAULT '',
    first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
CREATE TABLE reasons(id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE,
    sample_use INTEGER, event_use INTEGER);
CREATE TABLE runs(id INTEGER PRIMARY KEY, started INTEGER NOT NULL, last_seen INTEGER NOT NULL,
    stopped INTEGER, pid INTEGER NOT NULL, owner TEXT NOT NULL DEFAULT '');
CREATE TABLE reloads(id INTEGER PRIMARY KEY, run INTEGER NOT NULL, at INTEGER NOT NULL,
    summary TEXT NOT NULL);
CREATE TABLE events(id INTEGER PRIMARY KEY, target INTEGER NOT NULL, at INTEGER NOT NULL,
    run INTEGER NOT NULL, from_state INTEGER NOT NULL, to_state INTEGER NOT NULL,
    reason INTEGER, previous_ms INTEGER);
CREATE INDEX events_by_target ON events(target, at);
CREATE INDEX events_by_time ON events(at);
CREATE TABLE recent({_SAMPLE_DEFS});
CREATE TABLE samples({_SAMPLE_DEFS}, PRIMARY KEY(target, at)) WITHOUT ROWID;
"""

_ROLLUP_DEFS = ", ".join(f"{name} {'BLOB' if name == 'hist' else 'INTEGER'}"
                         for name in ROLLUP_COLUMNS)
_VERSION_2 = f"""
CREATE TABLE minutes({_ROLLUP_DEFS}, PRIMARY KEY(target, bucket)) WITHOUT ROWID;
CREATE TABLE hours({_ROLLUP_DEFS}, PRIMARY KEY(target, bucket)) WITHOUT ROWID;
"""

BACKFILL_CHUNK = 50_000   # rows read at a time while a migration backfills rollups


def _backfill_rollups(db: sqlite3.Connection) -> None:
    """Roll up every settled sample (samples still in `recent` are rolled up
    when they settle). Reads in chunks of one target's rows, so memory stays
    bounded; one transaction all the same."""
    columns = "target, at, status, latency_us"
    targets = [row[0] for row in db.execute("SELECT DISTINCT target FROM samples")]
    for target in targets:
        last = -1
        while True:
            rows = db.execute(f"SELECT {columns} FROM samples WHERE target = ? AND at > ? "
                              "ORDER BY at LIMIT ?", (target, last, BACKFILL_CHUNK)).fetchall()
            if not rows:
                break
            last = rows[-1][1]
            for table, width in (("minutes", MINUTE_MS), ("hours", HOUR_MS)):
                upsert_rollups(db, table, rows_of(roll_up(rows, width)))


def upsert_rollups(db: sqlite3.Connection, table: str, rows: object) -> None:
    """Insert rollup rows, adding into rows already there (needs hist_merge)."""
    db.executemany(
        f"INSERT INTO {table} VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(target, bucket) DO UPDATE "
        "SET count = count + excluded.count, down = down + excluded.down, "
        "degraded = degraded + excluded.degraded, answered = answered + excluded.answered, "
        "lat_sum_us = lat_sum_us + excluded.lat_sum_us, "
        "lat_min_us = min(coalesce(lat_min_us, excluded.lat_min_us), "
        "coalesce(excluded.lat_min_us, lat_min_us)), "
        "lat_max_us = max(coalesce(lat_max_us, excluded.lat_max_us), "
        "coalesce(excluded.lat_max_us, lat_max_us)), "
        "hist = hist_merge(hist, excluded.hist)", rows)  # type: ignore[arg-type]


def _to_version_2(db: sqlite3.Connection) -> None:
    for statement in _statements(_VERSION_2):
        db.execute(statement)
    _backfill_rollups(db)


# MIGRATIONS[n] takes a database from version n to n + 1
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _to_version_2}


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def version_of(db: sqlite3.Connection) -> tuple[int, int, int]:
    """(user_version, application_id, number of tables)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    app = db.execute("PRAGMA application_id").fetchone()[0]
    tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    return version, app, tables


def create(db: sqlite3.Connection, version: int = CURRENT) -> None:
    """A new database at `version` (tests build old versions with it)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(_VERSION_1):
            db.execute(statement)
        for step in range(1, version):
            MIGRATIONS[step](db)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {version}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def prepare(db: sqlite3.Connection, path: str) -> int:
    """Create or migrate to CURRENT for writing; the version it found (0: new).
    SchemaError for a file from a newer monitor or not monitor's at all."""
    version, app, tables = version_of(db)
    if version == 0 and tables == 0:
        create(db)
        return 0
    _check_ours(path, version, app)
    for step in range(version, CURRENT):
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[step](db)
            db.execute(f"PRAGMA user_version = {step + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return version


def check_readable(db: sqlite3.Connection, path: str) -> None:
    version, app, tables = version_of(db)
    if version == 0 and tables == 0:
        raise SchemaError(f"{path}: no history yet (it is written while the monitor runs)")
    _check_ours(path, version, app)
    if version < CURRENT:
        raise SchemaError(f"{path}: history from an older monitor (schema {version}); it is "
                          "upgraded the next time the monitor runs on it")


def _check_ours(path: str, version: int, app: int) -> None:
    if app != APPLICATION_ID:
        raise SchemaError(f"{path}: not a monitor history database (another program's "
                          "SQLite file); set [settings] history_db to another path")
    if version > CURRENT:
        raise SchemaError(f"{path}: written by a newer monitor (history schema {version}, this "
                          f"one reads up to {CURRENT}); upgrade monitor, or set [settings] "
                          "history_db to another file")
