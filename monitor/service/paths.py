"""Where a service's socket lives, and who may talk to it.

One socket per config file, named after the config's resolved path, so a
dashboard opened on that file from any shell finds the service probing it.
The service listens in the first usable directory of: systemd's
`$RUNTIME_DIRECTORY` (RuntimeDirectory=), `$XDG_RUNTIME_DIR/monitor`, the state
directory. A viewer also looks in /run/monitor, where the contrib unit's
service listens, as seen from an operator's shell.

The socket is mode 0600 in a directory of ours that nobody else may write;
each side also checks the other's uid with SO_PEERCRED (the file's mode can
be loosened by mistake; the kernel's word on the peer cannot). Only the same
user or root may connect, and a viewer trusts only a service run by itself
or by root. Never TCP.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

SYSTEM_RUNTIME_DIR = Path("/run/monitor")
SUN_PATH_MAX = 107          # bytes in sockaddr_un.sun_path, less the final NUL
_PEERCRED = struct.Struct("3i")   # struct ucred: pid, uid, gid


def state_dir() -> Path:
    """systemd's `$STATE_DIRECTORY`, else `$XDG_STATE_HOME/monitor`
    (~/.local/state/monitor)."""
    systemd = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "monitor"


def listen_dirs() -> list[Path]:
    dirs = []
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        dirs.append(Path(runtime))
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        dirs.append(Path(xdg) / "monitor")
    dirs.append(state_dir())
    return dirs


def lookup_dirs() -> list[Path]:
    dirs = listen_dirs()
    if SYSTEM_RUNTIME_DIR not in dirs:
        dirs.insert(len(dirs) - 1, SYSTEM_RUNTIME_DIR)
    return dirs


def socket_name(config_path: Path) -> str:
    """`<stem>-<hash of the resolved path>.sock`: one per config file."""
    resolved = str(Path(config_path).resolve())
    digest = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(resolved).stem)[:24]
    return f"{stem}-{digest}.sock"


class NoPlace(Exception):
    """No directory where the service may listen; says why for each."""


def private_dir(path: Path) -> str | None:
    """Create `path` (0700) if missing; why it is unfit for our socket, or None."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if info.st_uid != os.geteuid():
        return f"{path}: owned by uid {info.st_uid}, not by us"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path}: others may write to it"
    return None


def listen_path(config_path: Path) -> Path:
    """Where this config's service listens. Raises NoPlace."""
    name = socket_name(config_path)
    problems = []
    for directory in listen_dirs():
        path = directory / name
        if len(os.fsencode(path)) > SUN_PATH_MAX:
            problems.append(f"{path}: longer than a socket path may be ({SUN_PATH_MAX} bytes)")
            continue
        problem = private_dir(directory)
        if problem is None:
            return path
        problems.append(problem)
    raise NoPlace("; ".join(problems))


def find_socket(config_path: Path) -> Path | None:
    """The socket file of this config's service, if one is there (it may be
    stale: only connecting tells)."""
    name = socket_name(config_path)
    for directory in lookup_dirs():
        path = directory / name
        try:
            if stat.S_ISSOCK(path.stat().st_mode):
                return path
        except OSError:
            continue
    return None


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket) -> Peer | None:
    """Who is at the other end of a Unix socket, by the kernel's word; None
    where the platform has no SO_PEERCRED."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    return Peer(*_PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, option, _PEERCRED.size)))


def trusted_viewer(peer: Peer | None) -> bool:
    """The service serves its own user and root."""
    return peer is not None and peer.uid in (os.geteuid(), 0)


def trusted_service(peer: Peer | None) -> bool:
    """A viewer reads frames only from a service run by itself or by root
    (frames are marshal data: never from a stranger); root trusts any."""
    return peer is not None and (peer.uid in (os.geteuid(), 0) or os.geteuid() == 0)


class ServiceLock:
    """One service per config: an exclusive lock on `<socket>.lock`, held
    for the service's life (the kernel lets go when the process dies, so a
    crash leaves no stale lock, only a stale socket file, replaced)."""

    def __init__(self, socket_path: Path) -> None:
        self.path = socket_path.with_name(socket_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> int | None:
        """Take it: None, or the pid of the service holding it (0 if unknown)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            return int(held) if held.isdigit() else 0
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return None

    def release(self) -> None:
        # the file stays: unlinking it would let a service starting now lock
        # the old file while a third locks a new one
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
