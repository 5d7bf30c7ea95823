"""Write an edited config file safely: validated first, refused when the
file changed since it was read, written atomically with one backup.

    snapshot = read_snapshot(path)            # when the form opens
    new = replace_target(snapshot.text, ...)  # monitor.config.edit
    snapshot = save(path, new, snapshot)      # SaveError subclasses say why not

Every refusal is a `SaveError` whose str() is one sentence for the user;
nothing is written then, and the caller still holds the new text.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from monitor.config.load import MAX_FILE_SIZE, ConfigError, Problem, parse_config

BACKUP_SUFFIX = "~"


class SaveError(Exception):
    """The file was not written; str() says why."""


class InvalidEdit(SaveError):
    """The new text does not load: `problems` as `FILE:LINE: key: problem`."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


class Conflict(SaveError):
    """The file on disk is no longer the one the edit started from."""


class ReadOnly(SaveError):
    """The file or its directory cannot be written."""


@dataclass(frozen=True)
class Snapshot:
    """The file as read: its text (BOM and line ends kept) and a digest of its bytes."""

    path: Path
    text: str
    digest: str


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_FILE_SIZE + 1)
    if len(data) > MAX_FILE_SIZE:
        raise SaveError(f"{path}: larger than {MAX_FILE_SIZE // 1024**2} MiB: not a config file")
    return data


def read_snapshot(path: str | Path) -> Snapshot:
    """The file's text exactly as it is (no newline translation)."""
    path = Path(path)
    try:
        data = _read(path)
    except OSError as exc:
        raise SaveError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SaveError(f"{path}: not UTF-8; save it as UTF-8 to edit it here") from None
    return Snapshot(path, text, _digest(data))


def validate_text(path: str | Path, text: str, environ: Mapping[str, str] | None = None) -> None:
    """InvalidEdit unless `text` loads as the config at `path` would (relative
    paths resolved from its directory, ${VAR} from `environ`)."""
    try:
        # bytes, as the loader reads a file: BOM and CRLF handled the same way
        parse_config(text.encode("utf-8"), path, None if environ is None else dict(environ))
    except ConfigError as exc:
        raise InvalidEdit(exc.problems) from None


def save(path: str | Path, new_text: str, expected: Snapshot,
         environ: Mapping[str, str] | None = None) -> Snapshot:
    """Write `new_text` to `path` and return the new snapshot.

    Refused (nothing written) when the text does not load (InvalidEdit), when
    the file changed since `expected` was read (Conflict), or when it cannot be
    written (ReadOnly, SaveError). A symlinked config is written where the link
    points; mode and owner are kept; the previous content is kept as `path~`."""
    path = Path(path)
    validate_text(path, new_text, environ)
    real = Path(os.path.realpath(path))
    old = _current(real, path)
    if _digest(old) != expected.digest:
        raise Conflict(f"{path} changed on disk since the form opened; reload it and "
                       "edit again (your edit is kept to copy)")
    info = real.stat()
    _check_writable(real, info)
    data = new_text.encode("utf-8")
    try:
        _replace(real.with_name(real.name + BACKUP_SUFFIX), old, info)
        if _digest(_current(real, path)) != expected.digest:   # while the backup was written
            raise Conflict(f"{path} changed on disk while saving; reload it and edit again")
        _replace(real, data, info)
    except OSError as exc:
        raise _os_error(path, exc) from None
    return Snapshot(path, new_text, _digest(data))


def _current(real: Path, path: Path) -> bytes:
    try:
        return _read(real)
    except FileNotFoundError:
        raise Conflict(f"{path} was removed since the form opened; nothing written") from None
    except OSError as exc:
        raise _os_error(path, exc) from None


def _check_writable(real: Path, info: os.stat_result) -> None:
    """Said before any attempt. The mode bits count even for root: a config
    made read-only (chmod a-w) is one its owner does not want rewritten, and
    a rename would replace it whatever its mode."""
    if not info.st_mode & 0o222 or not os.access(real, os.W_OK):
        raise ReadOnly(f"{real} is read-only ({stat.filemode(info.st_mode)}): not saved")
    folder = real.parent
    folder_mode = folder.stat().st_mode
    if not folder_mode & 0o222 or not os.access(folder, os.W_OK | os.X_OK):
        raise ReadOnly(f"{folder} is read-only ({stat.filemode(folder_mode)}): cannot write "
                       f"the new {real.name} beside it; not saved")


def _os_error(path: Path, exc: OSError) -> SaveError:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ReadOnly(f"{path}: cannot write: {reason}; not saved")
    return SaveError(f"{path}: cannot write: {reason}; not saved")


def _replace(target: Path, data: bytes, like: os.stat_result) -> None:
    """Write `target` atomically: a temporary file beside it, flushed to the
    disk, given `like`'s mode and owner, renamed over it, the rename flushed."""
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.S_IMODE(like.st_mode))
        if (like.st_uid, like.st_gid) != (os.getuid(), os.getgid()):
            with contextlib.suppress(PermissionError):   # only root may give files away
                os.chown(temp, like.st_uid, like.st_gid)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return   # not every system opens directories (Windows)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
