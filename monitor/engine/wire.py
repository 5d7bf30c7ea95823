"""Results and transitions as JSON-able dicts between the engine process and
the UI process. Unlike the public `to_json` contract this keeps everything the
UI needs (monotonic start, certificate facts, recheck flag)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Transition
from monitor.probes.base import CertFacts


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def result_to_wire(r: ProbeResult) -> dict[str, Any]:
    cert = None
    if r.cert is not None:
        cert = asdict(r.cert)
        for key in ("expires_at", "leaf_expires_at"):
            cert[key] = cert[key].isoformat() if cert[key] else None
    return {"t": "result", "name": r.name, "kind": r.kind, "target": r.target,
            "status": str(r.status), "latency_ms": r.latency_ms, "phases_ms": r.phases_ms,
            "reason": r.reason, "checked_at": r.checked_at.isoformat(), "started": r.started,
            "http_status": r.http_status, "cert": cert, "details": r.details,
            "recheck": r.recheck}


def result_from_wire(d: dict[str, Any]) -> ProbeResult:
    cert = None
    if d.get("cert"):
        c = dict(d["cert"])
        c["expires_at"] = _dt(c["expires_at"])
        c["leaf_expires_at"] = _dt(c.get("leaf_expires_at"))
        c["sans"] = tuple(c.get("sans") or ())
        cert = CertFacts(**c)
    checked_at = _dt(d["checked_at"])
    assert checked_at is not None
    return ProbeResult(
        name=d["name"], kind=d["kind"], target=d["target"], status=Status(d["status"]),
        latency_ms=d["latency_ms"], phases_ms=d["phases_ms"], reason=d["reason"],
        checked_at=checked_at, started=d["started"], http_status=d["http_status"],
        cert=cert, details=d["details"], recheck=d["recheck"])


def transition_to_wire(t: Transition) -> dict[str, Any]:
    return {"t": "transition", "name": t.name, "from": str(t.from_state), "to": str(t.to_state),
            "reason": t.reason, "at": t.at.isoformat(), "monotonic": t.monotonic,
            "previous_for": t.previous_for}


def transition_from_wire(d: dict[str, Any]) -> Transition:
    at = _dt(d["at"])
    assert at is not None
    return Transition(d["name"], State(d["from"]), State(d["to"]), d["reason"], at,
                      d["monotonic"], d["previous_for"])
