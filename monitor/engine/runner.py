"""Run one probe with a hard timeout and turn what happened into a ProbeResult."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from monitor.config.durations import format_duration
from monitor.config.model import Target
from monitor.engine.fdlimit import OutOfFiles, out_of_files
from monitor.engine.result import ProbeResult, Status
from monitor.probes.base import CertFacts, Outcome, PhaseTimer, Probe, ProbeContext, ProbeFailure
from monitor.probes.errors import describe_error
from monitor.probes.registry import probe_class
from monitor.probes.text import printable, shown, shown_value


def make_probe(target: Target) -> Probe:
    return probe_class(target.kind)(target)


async def run_probe(target: Target, ctx: ProbeContext, probe: Probe | None = None) -> ProbeResult:
    """Probe `target` once. Never raises except CancelledError, and
    OutOfFiles when the monitor itself had no descriptor for it (not the
    target's fault: the caller retries instead of reporting it).

    The latency clock starts here, so callers must acquire any concurrency
    slot before calling.
    """
    probe = probe or make_probe(target)
    checked_at = datetime.now(UTC)
    timer = PhaseTimer()
    outcome: Outcome | None = None
    reason: str | None = None
    http_status: int | None = None
    details: dict = {}
    try:
        async with asyncio.timeout(target.timeout):
            outcome = await probe.run(timer, ctx)
    except TimeoutError:
        during = f" during {timer.current}" if timer.current else ""
        reason = f"timed out after {format_duration(target.timeout)}{during}"
    except ProbeFailure as failure:
        if out_of_files(failure):
            raise OutOfFiles(failure.reason) from failure
        reason, http_status, details = failure.reason, failure.http_status, failure.details
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a probe bug must not kill the engine
        if out_of_files(exc):
            raise OutOfFiles(describe_error(exc)) from exc
        reason = describe_error(exc)

    secrets = target.secrets
    if outcome is None:
        return ProbeResult(
            name=target.name, kind=target.kind, target=target.display_target,
            status=Status.DOWN, latency_ms=None, phases_ms=timer.phases,
            reason=None if reason is None else shown(reason, secrets),
            checked_at=checked_at, started=timer.started, http_status=http_status,
            details=shown_value(details, secrets))

    latency = outcome.latency_ms if outcome.latency_ms is not None else timer.elapsed_ms()
    status, reason = Status.UP, None
    if not outcome.ok:
        status, reason = Status.DOWN, outcome.reason or "check failed"
    elif outcome.degraded:
        status, reason = Status.DEGRADED, outcome.degraded
    elif target.max_latency is not None and latency > target.max_latency * 1000:
        status = Status.DEGRADED
        reason = f"slow: {latency:.0f}ms > max {format_duration(target.max_latency)}"
    # Everything a peer said enters the result here, made printable and with
    # secrets redacted, so no output path can forget to.
    return ProbeResult(
        name=target.name, kind=target.kind, target=target.display_target,
        status=status, latency_ms=latency, phases_ms=timer.phases,
        reason=None if reason is None else shown(reason, secrets),
        checked_at=checked_at, started=timer.started, http_status=outcome.http_status,
        cert=_shown_cert(outcome.cert), details=shown_value(outcome.details, secrets))


def _shown_cert(cert: CertFacts | None) -> CertFacts | None:
    if cert is not None:
        cert.subject, cert.issuer = printable(cert.subject), printable(cert.issuer)
        cert.earliest = printable(cert.earliest)
        cert.sans = tuple(printable(name) for name in cert.sans)
    return cert


def not_probed(target: Target, reason: str) -> ProbeResult:
    """A result for a target the monitor could not probe at all."""
    return ProbeResult(name=target.name, kind=target.kind, target=target.display_target,
                       status=Status.DOWN, latency_ms=None, phases_ms={}, reason=reason,
                       checked_at=datetime.now(UTC))
