"""Opening the history database, and telling its faults apart.

WAL mode: readers (`monitor report` while an engine runs) never wait for the
writer nor it for them. synchronous=NORMAL: a commit survives the process's
death (kill -9) though not a power cut's last moments, and costs no fsync per
batch. A damaged file is moved aside, never deleted.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from monitor.store.codec import merge_hist
from monitor.store.location import MEMORY

BUSY_TIMEOUT_MS = 1000          # the writer's wait for a lock another program holds
READ_BUSY_TIMEOUT_MS = 5000
WAL_LIMIT = 64 << 20            # bytes the WAL file is cut back to after a checkpoint


class HistoryError(Exception):
    """A history database that cannot be read or written; str() says why."""


def memory_uri() -> str:
    """A private in-memory database that this process's connections share."""
    return f"file:monitor-history-{uuid.uuid4().hex}?mode=memory&cache=shared"


def connect(path: str, *, read_only: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit)."""
    if path.startswith("file:"):
        db = sqlite3.connect(path, uri=True, isolation_level=None, check_same_thread=False)
    elif read_only:
        uri = Path(path).absolute().as_uri() + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute(f"PRAGMA busy_timeout = {READ_BUSY_TIMEOUT_MS if read_only else BUSY_TIMEOUT_MS}")
        db.create_function("hist_merge", 2, merge_hist, deterministic=True)
        if not read_only and not path.startswith("file:"):
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot use WAL mode (got {mode})")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
        db.execute("PRAGMA temp_store = MEMORY")
    except BaseException:
        db.close()
        raise
    return db


# How each SQLite fault reads to an operator
_FAULTS = {
    "SQLITE_FULL": "disk full",
    "SQLITE_BUSY": "the database is locked by another program",
    "SQLITE_LOCKED": "the database is locked by another program",
    "SQLITE_READONLY": "the database is read-only",
    "SQLITE_CANTOPEN": "cannot open the database file",
    "SQLITE_PERM": "permission denied",
    "SQLITE_AUTH": "permission denied",
    "SQLITE_NOMEM": "out of memory",
}


def is_corrupt(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB"


def describe(exc: BaseException) -> str:
    """A short reason for a failed open or write."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    name = getattr(exc, "sqlite_errorname", "") or ""
    if is_corrupt(exc):
        return "the database file is damaged"
    for prefix, text in _FAULTS.items():
        if name.startswith(prefix):
            return text
    if name.startswith("SQLITE_IOERR"):
        return f"I/O error ({str(exc) or name})"
    return str(exc) or name or type(exc).__name__


def move_aside(path: str) -> str:
    """Rename a damaged database (and its WAL and shared-memory files) to
    `<path>.damaged-<UTC time>`; the new name of the main file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = f"{path}.damaged-{stamp}"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, target + suffix)
    return target


def is_memory(path: str) -> bool:
    return path == MEMORY or path.startswith("file:monitor-history-")
