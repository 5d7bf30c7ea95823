"""systemd's readiness protocol (sd_notify): a datagram of `KEY=value`
lines to the socket named in `$NOTIFY_SOCKET`. A few lines, no dependency.

READY=1 once the service probes and listens, RELOADING=1 (with
MONOTONIC_USEC, which Type=notify-reload requires) when a reload starts and
READY=1 again when it ends, STATUS= a line for `systemctl status`,
STOPPING=1 on the way out. Without `$NOTIFY_SOCKET` (not under systemd) every
call does nothing; a send that fails is never the service's problem.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        if address and address.startswith("@"):   # an abstract socket
            address = "\0" + address[1:]
        elif address and not address.startswith("/"):
            address = None   # vsock and the like: not for a local service
        self.address = address or None
        self._status: str | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One datagram of `fields`; True when it was sent."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)   # a full queue on systemd's side must not stall probing
                sock.sendto("\n".join(fields).encode(), self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str) -> None:
        self._status = status
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading the config")
        self._status = None

    def status(self, status: str) -> None:
        """STATUS=, only when it changed."""
        if status != self._status:
            self._status = status
            self.send(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")
