"""Shared by the export tests: results as the engine makes them, and /metrics
read back with prometheus-client's own parser (not ours)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from monitor.engine.result import ProbeResult, Status
from monitor.probes.base import CertFacts

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def result(name: str = "api", kind: str = "http", status: Status = Status.UP,
           latency_ms: float | None = 12.5, phases: dict[str, float] | None = None,
           http_status: int | None = 200, cert_days: float | None = None,
           reason: str | None = None) -> ProbeResult:
    now = datetime.now(UTC)
    cert = None if cert_days is None else CertFacts(expires_at=now + timedelta(days=cert_days))
    return ProbeResult(name=name, kind=kind, target="https://user:***@example.org/x",
                       status=status, latency_ms=latency_ms,
                       phases_ms=phases if phases is not None else
                       {"dns": 1.0, "connect": 2.0, "tls": 3.0, "ttfb": 5.0, "transfer": 1.5},
                       reason=reason, checked_at=now, http_status=http_status, cert=cert)


def parse(text: str) -> Series:
    """Every sample as {(name, labels): value}; the parser raises on a
    malformed exposition, and a sample seen twice is an error here."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in out, f"sample twice: {key}"
            out[key] = sample.value
    return out


def pick(series: Series, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return {key_labels: value for (key_name, key_labels), value in series.items()
            if key_name == name and wanted <= key_labels}


def one(series: Series, name: str, **labels: str) -> float:
    found = pick(series, name, **labels)
    assert len(found) == 1, f"{name} {labels}: {found}"
    return next(iter(found.values()))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
