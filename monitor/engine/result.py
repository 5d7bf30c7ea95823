"""The result of one probe: the JSON contract of `monitor check --json`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from monitor.probes.base import PHASES, CertFacts


class Status(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class ProbeResult:
    name: str
    kind: str
    target: str
    status: Status
    latency_ms: float | None
    phases_ms: dict[str, float]
    reason: str | None
    checked_at: datetime          # wall clock, for display only
    started: float = 0.0          # monotonic start, for ordering and scheduling
    http_status: int | None = None
    cert: CertFacts | None = None
    details: dict[str, Any] = field(default_factory=dict)
    recheck: bool = False         # an immediate confirmation probe

    @property
    def ok(self) -> bool:
        return self.status is Status.UP

    @property
    def cert_days_left(self) -> float | None:
        if self.cert is None:
            return None
        return (self.cert.expires_at - self.checked_at).total_seconds() / 86400.0

    def to_json(self) -> dict[str, Any]:
        days = self.cert_days_left
        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "status": str(self.status),
            "ok": self.ok,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "phases_ms": {p: round(self.phases_ms[p], 3) for p in PHASES if p in self.phases_ms},
            "reason": self.reason,
            "http_status": self.http_status,
            "cert_days_left": None if days is None else round(days, 2),
            "cert_expires_at": iso(self.cert.expires_at) if self.cert else None,
            "checked_at": iso(self.checked_at),
            "details": self.details,
        }
