"""Follow the config file, and the files it names, while the monitor runs.

- The parent directories are watched (`watchfiles`, not recursive), never the
  files themselves: editors that save by rename (vim's backup-then-rename, an
  atomic replace) or delete-then-create leave a watch on the old inode behind,
  while the directory sees every new file of that name.
- A burst of writes is one change: watchfiles returns once nothing has
  happened for QUIET seconds (or after LONGEST_BURST, so a busy directory
  cannot hold a change back for ever).
- Whether a file changed is decided by its content (a digest, computed only
  when its stat changed), not by the events: a `touch`, a save without
  changes, or traffic from other files in the same directory (swap files,
  logs) is no change; a symlink swapped to a new target (a Kubernetes
  ConfigMap) is one.
- A file or directory that is missing is waited for: the nearest directory
  that exists is watched until it appears. Every HOUSEKEEPING seconds without
  events the files are looked at anyway (a filesystem that sends no events).

`reload_config(path)` reads and validates, giving the new Config or the
problems exactly as `monitor validate` prints them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import stat
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from watchfiles import awatch

from monitor.config.diff import target_files
from monitor.config.load import ConfigError, load_config
from monitor.config.model import Config

log = logging.getLogger(__name__)

QUIET = 0.3            # seconds without a write that end a burst
LONGEST_BURST = 1.5    # seconds: a burst is cut here however busy its directory is
HOUSEKEEPING = 5.0     # seconds without events between looks at the files anyway
DIR_ENTRIES_MAX = 4096  # entries of a watched directory (a themes folder) looked at
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class ConfigChange:
    """One burst of changes: the watched paths whose content differs now
    (the config file, a `ca_file`, an extra path); a missing file that
    appeared or a file that went count too."""

    paths: tuple[Path, ...]


@dataclass(frozen=True)
class Reloaded:
    """The outcome of reading the config again: `config`, or `error`."""

    config: Config | None
    error: ConfigError | None = None

    @property
    def ok(self) -> bool:
        return self.config is not None

    @property
    def problems(self) -> list[str]:
        """One `FILE:LINE: key: problem` per line, as `monitor validate` prints them."""
        return [] if self.error is None else [str(p) for p in self.error.problems]


def reload_config(path: str | Path) -> Reloaded:
    """Read and validate the config at `path`. Never raises for a bad file:
    the caller keeps running on its last good config and shows `problems`."""
    try:
        return Reloaded(load_config(path))
    except ConfigError as exc:
        return Reloaded(None, exc)


def files_named_by(config: Config) -> list[Path]:
    """Files the config depends on: every option declared as a path
    (`ca_file`, ...) of every target, each once, in config order."""
    seen: dict[Path, None] = {}
    for target in config.targets:
        for path in target_files(target):
            seen.setdefault(Path(path), None)
    return list(seen)


@dataclass(frozen=True)
class _Seen:
    """What a path looked like: its stat (cheap, compared first) and a digest
    of its content (read only when the stat changed)."""

    stat_key: tuple[int, ...] | None
    digest: bytes | None


class ConfigWatcher:
    """Watch `config_path`, the files its config names (`follow`) and
    `extra` paths (files, or directories whose entries count, e.g. themes).

        async with ConfigWatcher(path, config) as watcher:
            async for change in watcher:
                outcome = reload_config(path)
                if outcome.ok:
                    watcher.follow(outcome.config)

    Changes that come while the consumer is busy are merged into one.
    `close()` (or leaving the `async with`) stops the watching thread within
    QUIET seconds and leaves no task behind.
    """

    def __init__(self, config_path: str | Path, config: Config | None = None, *,
                 extra: Iterable[str | Path] = (), quiet: float = QUIET,
                 longest_burst: float = LONGEST_BURST, housekeeping: float = HOUSEKEEPING) -> None:
        self.config_path = Path(config_path).absolute()
        self._extra = [Path(p).absolute() for p in extra]
        self._quiet_ms = max(1, int(quiet * 1000))
        self._burst_ms = max(self._quiet_ms, int(longest_burst * 1000))
        self._housekeeping_ms = max(self._quiet_ms, int(housekeeping * 1000))
        self._named: list[Path] = []
        self._seen: dict[Path, _Seen] = {}
        self._pending: dict[Path, None] = {}
        self._ready = asyncio.Event()
        self._stop = threading.Event()   # the watching thread polls it between steps
        self._task: asyncio.Task[None] | None = None
        self._armed_dirs: frozenset[Path] = frozenset()
        if config is not None:
            self.follow(config)
        self._look_all(report=False)

    # --- public API -----------------------------------------------------------

    @property
    def paths(self) -> list[Path]:
        """Every path watched: the config file, the files it names, the extras."""
        return list(dict.fromkeys([self.config_path, *self._named, *self._extra]))

    @property
    def watched_dirs(self) -> frozenset[Path]:
        """The directories the watching thread follows now."""
        return self._armed_dirs

    def follow(self, config: Config) -> None:
        """Watch the files `config` names from now on (after a good reload)."""
        base = self.config_path.parent
        self._named = [p if p.is_absolute() else base / p for p in files_named_by(config)]
        watched = self.paths
        # a file the config no longer names is forgotten: should it come back,
        # it is compared with what it is then, not with what it was long ago
        self._seen = {path: self._seen.get(path) or _look(path, None) for path in watched}

    def start(self) -> None:
        if self._task is None and not self._stop.is_set():
            self._task = asyncio.create_task(self._run(), name="config-watch")

    async def close(self) -> None:
        self._stop.set()
        self._ready.set()
        task, self._task = self._task, None
        if task is not None:
            # the thread sees the stop flag within one step (QUIET); a cancel
            # would wait for it anyway, as a thread cannot be interrupted
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> ConfigWatcher:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[ConfigChange]:
        return self

    async def __anext__(self) -> ConfigChange:
        self.start()
        while not self._pending:
            if self._stop.is_set():
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        paths, self._pending = tuple(self._pending), {}
        return ConfigChange(paths)

    # --- internals --------------------------------------------------------------

    def _dirs(self) -> frozenset[Path]:
        """The directories to watch: each path's parent, and its real parent
        when it is a symlink; the nearest existing one while it is missing."""
        dirs = set()
        for path in self.paths:
            candidates = [path.parent]
            try:
                real = path.resolve()
            except (OSError, RuntimeError):   # a symlink loop: the link's own directory will do
                real = path
            if real != path:
                candidates.append(real.parent)
            if path.is_dir():   # an extra directory: its entries
                candidates.append(path)
            for folder in candidates:
                dirs.add(_nearest_existing(folder))
        return frozenset(dirs)

    async def _run(self) -> None:
        while not self._stop.is_set():
            dirs = self._armed_dirs = self._dirs()
            try:
                async for _ in awatch(*dirs, watch_filter=None, debounce=self._burst_ms,
                                      step=self._quiet_ms, stop_event=self._stop,
                                      rust_timeout=self._housekeeping_ms, yield_on_timeout=True,
                                      recursive=False, ignore_permission_denied=True):
                    self._look_all(report=True)
                    if self._dirs() != dirs:   # a directory came or went: watch anew
                        break
            except OSError as exc:
                # a directory went between looking and arming: look again shortly
                log.debug("config watch: %s; again in %.1fs", exc, self._quiet_ms / 1000)
                await asyncio.to_thread(self._stop.wait, self._quiet_ms / 1000)
            except Exception:   # the watcher's own failure must not end the monitor
                log.exception("config watch failed; trying again in %.0fs",
                              self._housekeeping_ms / 1000)
                await asyncio.to_thread(self._stop.wait, self._housekeeping_ms / 1000)
            self._look_all(report=True)

    def _look_all(self, report: bool) -> None:
        changed = []
        for path in self.paths:
            before = self._seen.get(path)
            now = _look(path, before)
            self._seen[path] = now
            if before is not None and now.digest != before.digest:
                changed.append(path)
        if report and changed:
            self._pending.update(dict.fromkeys(changed))
            self._ready.set()


def _nearest_existing(folder: Path) -> Path:
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            return candidate
    return Path(folder.anchor or "/")


def _look(path: Path, before: _Seen | None) -> _Seen:
    """The path as it is now; the digest is carried over while the stat is the same."""
    try:
        info = os.stat(path)
    except OSError as exc:   # missing, a broken link, not allowed: a state of its own
        return _Seen(None, f"unreadable:{exc.errno}".encode())
    if stat.S_ISDIR(info.st_mode):
        return _Seen(None, _directory_digest(path))
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    if before is not None and before.stat_key == key:
        return before
    return _Seen(key, _file_digest(path))


def _file_digest(path: Path) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        return f"unreadable:{exc.errno}".encode()
    return digest.digest()


def _directory_digest(path: Path) -> bytes:
    """A directory's entries by name, size and time: a theme added, edited or removed."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        with os.scandir(path) as entries:
            rows = []
            for count, entry in enumerate(entries):
                if count >= DIR_ENTRIES_MAX:
                    break
                try:
                    info = entry.stat()
                except OSError:
                    continue
                rows.append(f"{entry.name}\0{info.st_size}\0{info.st_mtime_ns}")
    except OSError as exc:
        return f"unreadable:{exc.errno}".encode()
    for row in sorted(rows):
        digest.update(row.encode("utf-8", "surrogateescape") + b"\n")
    return digest.digest()
