"""What the dashboard remembers between runs: the theme chosen and the targets
paused or resumed from the app.

It lives in the state dir (`monitor.paths.state_dir()`, `state.toml`), never
in the user's config, which the app must not rewrite for a keypress. Pauses
are kept per config file (by its absolute path) and per target name, and only
where the app's choice differs from the file's `paused` key: resuming a target
the file does not pause forgets it.

```toml
theme = "monitor-light"

[paused."/home/ops/monitor.toml"]
api = true            # paused from the app
legacy-ftp = false    # paused in the file, resumed from the app
```

State is a convenience: a missing, unreadable or broken file reads as empty
and never stops the dashboard. Writes are atomic (a temporary file beside it,
fsync, rename) under a lock, so two dashboards never tear it or lose each
other's changes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import tomli_w

from monitor import paths
from monitor.config.model import Config

STATE_FILE = "state.toml"

State = dict[str, Any]


def state_file() -> Path:
    return paths.state_dir() / STATE_FILE


def legacy_file() -> Path:
    """Where the theme choice was kept before the state dir: beside the config."""
    return paths.config_dir() / STATE_FILE


# --- reading and writing the file ---------------------------------------------

def read() -> State:
    """The saved state, cleaned of anything malformed; {} when there is none.
    A state file left in the config dir by an older version is moved over."""
    data = _read(state_file())
    if data is None:
        legacy = _read(legacy_file())
        if legacy is not None:
            return _migrate(legacy)
    return _clean(data or {})


def update(change: Callable[[State], None]) -> None:
    """Apply `change` to the saved state and write it back atomically.
    Raises OSError when the state dir cannot be written."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        data = read()
        change(data)
        _write_atomic(path, tomli_w.dumps(data))


def _read(path: Path) -> State | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}   # a broken file is replaced by the next save, never a crash


def _clean(data: State) -> State:
    clean: State = {}
    if isinstance(data.get("theme"), str):
        clean["theme"] = data["theme"]
    layout = data.get("layout")
    if isinstance(layout, dict):
        clean["layout"] = {key: value for key, value in layout.items()
                           if key in _LAYOUT and isinstance(value, _LAYOUT[key])}
    paused = data.get("paused")
    if isinstance(paused, dict):
        clean["paused"] = {
            config: {name: flag for name, flag in names.items() if isinstance(flag, bool)}
            for config, names in paused.items() if isinstance(names, dict)}
    return clean


def _migrate(legacy: State) -> State:
    data = _clean(legacy)
    try:
        path = state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, tomli_w.dumps(data))
        legacy_file().unlink()
    except OSError:
        pass   # read from the old place until the new one can be written
    return data


def _write_atomic(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):   # the rename itself survives a power cut
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the file for a read-change-write (POSIX; a
    platform without flock goes unlocked)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- the theme ------------------------------------------------------------------

def saved_theme() -> str | None:
    return read().get("theme")


def save_theme(name: str) -> None:
    try:
        update(lambda data: data.__setitem__("theme", name))
    except OSError:
        pass   # a read-only home must not break the dashboard


# --- how the board was arranged ------------------------------------------------------

# what the dashboard remembers of its arrangement, and each one's type
_LAYOUT: dict[str, type] = {"sort": str, "grouped": bool, "events_hidden": bool}


def saved_layout() -> dict[str, Any]:
    """{"sort": "latency", "grouped": True, "events_hidden": False}, as far as known."""
    return dict(read().get("layout", {}))


def save_layout(**layout: Any) -> None:
    """Remember the board's arrangement (sort, grouping, event log shown)."""
    def change(data: State) -> None:
        data.setdefault("layout", {}).update(
            {key: value for key, value in layout.items() if key in _LAYOUT})
    try:
        update(change)
    except OSError:
        pass   # a read-only home must not break the dashboard


# --- targets paused from the app ---------------------------------------------------

def _config_key(path: Path) -> str:
    return str(Path(path).resolve())


def paused_overrides(config_path: Path) -> dict[str, bool]:
    """Target name -> paused, where the app's choice differs from the file's."""
    return dict(read().get("paused", {}).get(_config_key(config_path), {}))


def apply_pauses(config: Config) -> Config:
    """The config with the app's pauses and resumes applied to its targets:
    what the dashboard and its engine start from, so a target paused before a
    restart is still paused (and never probed) after it."""
    if config.path is None:
        return config
    overrides = paused_overrides(config.path)
    if not overrides:
        return config
    targets = tuple(replace(t, paused=overrides[t.name])
                    if overrides.get(t.name, t.paused) != t.paused else t
                    for t in config.targets)
    return replace(config, targets=targets)


def record_pause(config: Config, name: str, paused: bool) -> str | None:
    """Remember that `name` was paused or resumed from the app; None, or why
    it could not be remembered (the pause itself still holds until quitting)."""
    if config.path is None:
        return None
    names = {t.name: t for t in config.targets}
    target = names.get(name)
    if target is None:
        return None
    in_file = target.raw.get("paused") is True   # what the file says, before any override
    key = _config_key(config.path)

    def change(data: State) -> None:
        by_config = data.setdefault("paused", {})
        # names the config no longer has are forgotten: the file stays small
        mine = {n: flag for n, flag in by_config.get(key, {}).items() if n in names}
        if paused == in_file:
            mine.pop(name, None)
        else:
            mine[name] = paused
        if mine:
            by_config[key] = mine
        else:
            by_config.pop(key, None)

    try:
        update(change)
    except OSError as exc:
        return f"cannot remember it in {state_file()}: {exc.strerror or exc}"
    return None
