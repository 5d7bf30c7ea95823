"""What an alert says: one line a person reads on a phone, and the versioned
JSON payload (and MONITOR_* variables) a program reads.

Payload, version 1 (every key always present, null where it does not apply):

    version        1
    id             unique per alert: "<name>/<episode start>/<event>/<n>", for de-duplication
    event          "down" | "up" (recovery) | "degraded" | "reminder" | "cert" | "test"
    summary        the one-line text below
    name, kind, target, group     the target: name, probe kind, URL or host:port (no
                                  password, ${VAR}s by name), group
    state, previous_state         "up" | "degraded" | "down" | ...
    reason         why it is degraded or down (printable text), else null
    since          ISO 8601 UTC: when the current episode began (for "up": when the outage began)
    at             ISO 8601 UTC: when this alert was decided
    duration_s     up: how long the outage lasted; reminder: how long down so far
    latency_ms, phases_ms, http_status, cert_days_left, cert_expires_at: the last result's
    note           extra words, e.g. "found up after the monitor restarted", else null
    monitor        {"host": hostname}: which monitor said it (several may feed one channel)

Secrets never appear: URLs and reasons pass through the config's redaction.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.config.durations import format_duration
from monitor.engine.result import iso

PAYLOAD_VERSION = 1
_WORDS = {"down": "DOWN", "degraded": "DEGRADED", "reminder": "STILL DOWN", "cert": "CERT",
          "test": "TEST"}


@dataclass(frozen=True, slots=True)
class Alert:
    event: str
    name: str
    kind: str = ""
    target: str = ""
    group: str = ""
    state: str = ""
    previous_state: str | None = None
    reason: str | None = None
    since: datetime | None = None
    at: datetime | None = None
    duration_s: float | None = None
    latency_ms: float | None = None
    phases_ms: dict[str, float] = field(default_factory=dict)
    http_status: int | None = None
    cert_days_left: float | None = None
    cert_expires_at: datetime | None = None
    note: str | None = None
    id: str = ""

    def summary(self) -> str:
        """'DOWN api (https://api.example/health): expected 2xx, got 503 — since 10:42 UTC'."""
        who = f"{self.name} ({self.target})" if self.target else self.name
        if self.event == "up":
            word = "UP" if self.state == "up" else "NO LONGER DOWN"
            text = f"{word} {who}: back after {_ago(self.duration_s)}"
            if self.state != "up":
                text += f"; now {self.state}" + (f": {self.reason}" if self.reason else "")
        elif self.event == "cert":
            days = self.cert_days_left if self.cert_days_left is not None else 0.0
            expires = f" ({self.cert_expires_at.strftime('%Y-%m-%d %H:%M')} UTC)" \
                if self.cert_expires_at else ""
            text = f"CERT {who}: certificate expires in {days:.1f} days{expires}"
        elif self.event == "test":
            text = f"TEST {who}: " + (self.reason or "a test notification from monitor")
        else:
            text = f"{_WORDS.get(self.event, self.event.upper())} {who}"
            text += f": {self.reason}" if self.reason else ""
            if self.event == "reminder":
                text += f" \u2014 down {_ago(self.duration_s)}, since {_clock(self.since, self.at)}"
            elif self.since is not None:
                text += f" \u2014 since {_clock(self.since, self.at)}"
        return text + (f" ({self.note})" if self.note else "")

    def title(self) -> str:
        """A short title for services that show one (Apprise)."""
        word = "UP" if self.event == "up" else _WORDS.get(self.event, self.event.upper())
        return f"{word}: {self.name}"

    def payload(self) -> dict[str, Any]:
        return {
            "version": PAYLOAD_VERSION, "id": self.id, "event": self.event,
            "summary": self.summary(), "name": self.name, "kind": self.kind,
            "target": self.target, "group": self.group, "state": self.state,
            "previous_state": self.previous_state, "reason": self.reason,
            "since": iso(self.since), "at": iso(self.at),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "phases_ms": {k: round(v, 3) for k, v in self.phases_ms.items()},
            "http_status": self.http_status,
            "cert_days_left": None if self.cert_days_left is None else round(self.cert_days_left, 2),
            "cert_expires_at": iso(self.cert_expires_at), "note": self.note,
            "monitor": {"host": hostname()},
        }

    def environment(self, channel: str) -> dict[str, str]:
        """MONITOR_* variables for a command channel: the payload's scalars."""
        env = {"MONITOR_CHANNEL": channel}
        for key, value in self.payload().items():
            if value is None or isinstance(value, (dict, list)):
                continue
            env["MONITOR_" + key.upper()] = str(value)
        return env


def _ago(seconds: float | None) -> str:
    return "an unknown time" if seconds is None else format_duration(round(max(seconds, 0.0)))


def _clock(moment: datetime | None, now: datetime | None) -> str:
    """'10:42 UTC' today, 'Jun 03 10:42 UTC' another day."""
    if moment is None:
        return "an unknown time"
    if now is not None and moment.date() == now.date():
        return moment.strftime("%H:%M UTC")
    return moment.strftime("%b %d %H:%M UTC")


_HOST: list[str] = []


def hostname() -> str:
    if not _HOST:
        _HOST.append(socket.gethostname())
    return _HOST[0]
