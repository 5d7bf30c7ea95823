"""Run one probe with a hard timeout and turn what happened into a ProbeResult."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from monitor.config.durations import format_duration
from monitor.config.model import Target
from monitor.engine.result import ProbeResult, Status
from monitor.probes.base import Outcome, PhaseTimer, Probe, ProbeContext, ProbeFailure
from monitor.probes.errors import describe_error
from monitor.probes.registry import probe_class


def make_probe(target: Target) -> Probe:
    return probe_class(target.kind)(target)


async def run_probe(target: Target, ctx: ProbeContext, probe: Probe | None = None) -> ProbeResult:
    """Probe `target` once. Never raises except CancelledError.

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
        reason, http_status, details = failure.reason, failure.http_status, failure.details
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a probe bug must not kill the engine
        reason = describe_error(exc)

    if outcome is None:
        return ProbeResult(
            name=target.name, kind=target.kind, target=target.display_target,
            status=Status.DOWN, latency_ms=None, phases_ms=timer.phases, reason=reason,
            checked_at=checked_at, started=timer.started, http_status=http_status,
            details=details)

    latency = outcome.latency_ms if outcome.latency_ms is not None else timer.elapsed_ms()
    status, reason = Status.UP, None
    if not outcome.ok:
        status, reason = Status.DOWN, outcome.reason or "check failed"
    elif outcome.degraded:
        status, reason = Status.DEGRADED, outcome.degraded
    elif target.max_latency is not None and latency > target.max_latency * 1000:
        status = Status.DEGRADED
        reason = f"slow: {latency:.0f}ms > max {format_duration(target.max_latency)}"
    return ProbeResult(
        name=target.name, kind=target.kind, target=target.display_target,
        status=status, latency_ms=latency, phases_ms=timer.phases, reason=reason,
        checked_at=checked_at, started=timer.started, http_status=outcome.http_status,
        cert=outcome.cert, details=outcome.details)

