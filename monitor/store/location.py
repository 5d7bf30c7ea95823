"""Where a config's history lives, and the lock that lets one engine write it.

By default each config file has its own database in the user data dir
(platformdirs), named after the config file and keyed by its resolved path,
so two configs never mix their targets' histories and moving to another
directory starts afresh. `[settings] history_db` overrides it: a path
(relative to the config file), "off", or ":memory:".

One engine writes a database at a time: it holds an exclusive `flock` on
`<db>-owner` while it runs, and writes its pid, start time and what it is
into the file. The kernel drops the lock when the process dies however it
died, so kill -9 leaves no stale lock. Readers (`monitor history`, `monitor
report`, a dashboard's reads) never take it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

from monitor.config.model import Config

MEMORY = ":memory:"
OWNER_SUFFIX = "-owner"


def history_location(config: Config, data_dir: Path | None = None) -> str | None:
    """The database for `config`: a path, ":memory:", or None (history off).
    A config that came from no file has no default place: history is off."""
    setting = config.settings.history_db
    if setting == "off":
        return None
    if setting == MEMORY:
        return MEMORY
    if setting:
        path = Path(setting).expanduser()
        if not path.is_absolute() and config.path is not None:
            path = config.path.expanduser().resolve().parent / path
        return str(path)
    if config.path is None:
        return None
    return str(default_path(config.path, data_dir))


def default_path(config_path: Path, data_dir: Path | None = None) -> Path:
    resolved = config_path.expanduser().resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", resolved.stem)[:40] or "config"
    base = data_dir if data_dir is not None else platformdirs.user_data_path("monitor")
    return base / "history" / f"{stem}-{digest}.sqlite3"


class HistoryBusy(Exception):
    """Another engine writes this database."""


@dataclass(frozen=True)
class Owner:
    pid: int
    since: str      # ISO 8601 UTC
    what: str

    def describe(self) -> str:
        what = f" ({self.what})" if self.what else ""
        return f"pid {self.pid}{what}, since {self.since}"


class OwnerLock:
    """The exclusive right to write one database."""

    def __init__(self, db_path: str) -> None:
        self.path = db_path + OWNER_SUFFIX
        self._fd: int | None = None

    def acquire(self, what: str = "") -> None:
        """Take the lock or raise HistoryBusy naming the holder; OSError when
        the lock file cannot be made (an unwritable directory)."""
        # the first run of a config: its history directory is made here
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = read_owner(self.path)
            who = holder.describe() if holder else "another process"
            raise HistoryBusy(f"{self.path.removesuffix(OWNER_SUFFIX)}: history is being written "
                              f"by another monitor ({who}); stop it, or give this config its own "
                              "[settings] history_db") from None
        except BaseException:
            os.close(fd)
            raise
        since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        record = json.dumps({"pid": os.getpid(), "since": since, "what": what}).encode() + b"\n"
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        except OSError:
            pass   # the lock is what counts; the note is for messages
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # closing drops the flock
            self._fd = None


def read_owner(lock_path: str) -> Owner | None:
    try:
        with open(lock_path, "rb") as handle:
            data = json.loads(handle.read(4096) or b"null")
        return Owner(int(data["pid"]), str(data["since"]), str(data.get("what", "")))
    except (OSError, ValueError, TypeError, KeyError):
        return None
