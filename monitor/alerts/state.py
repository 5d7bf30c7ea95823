"""Alert state between runs: a small JSON file per config, written atomically.

It lives in the user's state dir (platformdirs: ~/.local/state/monitor on
Linux, $XDG_STATE_HOME honoured), named after the resolved config path, so
two configs never share one and a restart of the same config finds its own.
A lock next to it lets one process alert per config: a dashboard and a
`run --headless` on the same file would otherwise both send every alert.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

try:
    import fcntl
except ImportError:   # Windows: no advisory locks here; each process alerts
    fcntl = None   # type: ignore[assignment]


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir("monitor")) / "alerts"


def state_path(config_path: Path | None) -> Path:
    """Where the alert state of the config at `config_path` is kept."""
    resolved = str(config_path.resolve()) if config_path is not None else "<no file>"
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    stem = config_path.stem if config_path is not None else "config"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:40]
    return state_dir() / f"{safe}-{digest}.json"


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self.held: int | None = None   # pid holding the lock when acquire failed (0: unknown)

    def load(self) -> tuple[dict[str, Any], str | None]:
        """(state, problem): an empty state and what was wrong when the file
        is unreadable; it is then set aside as .bad, never silently lost."""
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}, None
        except (OSError, ValueError) as exc:
            aside = self.path.with_suffix(".bad")
            try:
                os.replace(self.path, aside)
            except OSError:
                aside = self.path
            return {}, f"alert state {self.path} unreadable ({exc}); kept as {aside}, starting afresh"
        return (data if isinstance(data, dict) else {}), None

    def save(self, data: dict[str, Any]) -> None:
        """Atomically: a crash leaves the old file or the new one, never half."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".alerts-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise

    def acquire(self) -> int | None:
        """Take the per-config lock. None when taken; else the pid of the
        process that holds it (0 when unknown)."""
        if fcntl is None:
            return None
        lock = self.path.with_suffix(".lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            self.held = int(holder) if holder.isdigit() else 0
            return self.held
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd
        return None

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)   # closing drops the lock
            self._lock_fd = None
