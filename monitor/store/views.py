"""What the read API returns: plain values, with the JSON each is exported as."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from monitor.engine.result import ProbeResult, Status, iso
from monitor.probes.base import PHASES, CertFacts
from monitor.store.rollup import Aggregate
from monitor.store.uptime import Outage, Tally

HOUR, DAY = 3600.0, 86400.0
WINDOWS: tuple[float, ...] = (HOUR, DAY, 7 * DAY, 30 * DAY)   # the uptime windows shown
RANGES: dict[str, float] = {"1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def iso_at(epoch: float | None) -> str | None:
    return None if epoch is None else iso(utc(epoch))


@dataclass(frozen=True, slots=True)
class TargetInfo:
    id: int
    name: str
    kind: str
    display: str          # URL or host[:port], password already redacted
    first_seen: int       # epoch ms
    last_seen: int


class StoredSample(NamedTuple):   # a dashboard starts with 100,000 of them: a tuple is cheapest
    name: str
    at: float                       # epoch seconds (the probe's start, as checked_at)
    status: Status
    latency_ms: float | None
    reason: str | None
    http_status: int | None
    cert_expires: int | None        # epoch seconds
    phases_ms: dict[str, float]
    recheck: bool

    @property
    def cert_days_left(self) -> float | None:
        return None if self.cert_expires is None else (self.cert_expires - self.at) / DAY

    def to_json(self) -> dict[str, Any]:
        days = self.cert_days_left
        return {"name": self.name, "checked_at": iso_at(self.at), "status": str(self.status),
                "ok": self.status is Status.UP,
                "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
                "phases_ms": {p: round(self.phases_ms[p], 3) for p in PHASES if p in self.phases_ms},
                "reason": self.reason, "http_status": self.http_status,
                "cert_days_left": None if days is None else round(days, 2),
                "cert_expires_at": iso_at(self.cert_expires), "recheck": self.recheck}

    def as_result(self, kind: str, target: str) -> ProbeResult:
        """A ProbeResult for a board or a chart (no details: history keeps none)."""
        cert = None if self.cert_expires is None else CertFacts(expires_at=utc(self.cert_expires))
        return ProbeResult(name=self.name, kind=kind, target=target, status=self.status,
                           latency_ms=self.latency_ms, phases_ms=dict(self.phases_ms),
                           reason=self.reason, checked_at=utc(self.at),
                           http_status=self.http_status, cert=cert, recheck=self.recheck)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    name: str
    at: float
    from_state: str
    to_state: str                   # a State value, or "removed" (left the config)
    reason: str | None
    previous_for: float | None      # seconds in from_state

    def to_json(self) -> dict[str, Any]:
        return {"event": "transition", "name": self.name, "from": self.from_state,
                "to": self.to_state, "reason": self.reason, "at": iso_at(self.at),
                "previous_for_s": None if self.previous_for is None
                else round(self.previous_for, 3)}


@dataclass(frozen=True, slots=True)
class WindowUptime:
    window: float                   # seconds
    tally: Tally
    incidents: int

    @property
    def uptime_pct(self) -> float | None:
        return self.tally.uptime_pct

    @property
    def coverage_pct(self) -> float:
        return self.tally.coverage_pct


@dataclass(frozen=True, slots=True)
class Bucket:
    start: float
    end: float
    samples: Aggregate
    states: Tally                   # time in each confirmed state within the bucket

    @property
    def no_data(self) -> bool:
        """Nothing known: the monitor was not running, or the target was
        pending, paused or not configured."""
        return self.samples.count == 0 and self.states.known_ms == 0

    @property
    def failures(self) -> int:
        return self.samples.down


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    range: float                    # seconds
    level: str                      # "raw", "minutes" or "hours": what the buckets were read from
    width: float                    # seconds per bucket
    buckets: list[Bucket]


@dataclass(frozen=True, slots=True)
class TargetReport:
    target: TargetInfo
    since: float
    until: float
    tally: Tally
    outages: list[Outage]
    samples: Aggregate

    @property
    def longest(self) -> Outage | None:
        if not self.outages:
            return None
        return max(self.outages, key=lambda o: o.within(int(self.since * 1000),
                                                        int(self.until * 1000)))

    def longest_ms(self) -> int:
        longest = self.longest
        return 0 if longest is None else longest.within(int(self.since * 1000),
                                                         int(self.until * 1000))

    def to_json(self) -> dict[str, Any]:
        longest = self.longest
        latency = self.samples
        return {
            "name": self.target.name, "kind": self.target.kind, "target": self.target.display,
            "since": iso_at(self.since), "until": iso_at(self.until),
            "uptime_pct": None if self.tally.uptime_pct is None else round(self.tally.uptime_pct, 4),
            "coverage_pct": round(self.tally.coverage_pct, 2),
            "up_s": self.tally.up_ms / 1000, "degraded_s": self.tally.degraded_ms / 1000,
            "down_s": self.tally.down_ms / 1000,
            "incidents": len(self.outages),
            "longest_outage_s": self.longest_ms() / 1000 if longest else None,
            "longest_outage_at": iso_at(longest.start / 1000) if longest else None,
            "checks": latency.count, "failures": latency.down,
            "p50_ms": _rounded(latency.percentile_ms(0.50)),
            "p95_ms": _rounded(latency.percentile_ms(0.95)),
            "avg_ms": _rounded(latency.avg_ms),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
