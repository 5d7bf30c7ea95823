"""A scripted engine for UI tests: the test decides every result, instantly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.engine.client import EngineDown, EngineStats, Listener
from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Transition
from monitor.probes.base import CertFacts

BASE_TIME = datetime(2026, 11, 25, 9, 30, 0, tzinfo=UTC)
NOW = 1000.0   # the fake monotonic clock


class FakeEngine:
    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.commands: list[tuple[str, str]] = []
        self.states: dict[str, State] = {}
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True
        self.listener.on_engine_up(0)

    async def stop(self) -> None:
        self.stopped = True

    def pause(self, name: str) -> None:
        self.commands.append(("pause", name))
        self.move(name, State.PAUSED, "paused by user")

    def resume(self, name: str) -> None:
        self.commands.append(("resume", name))
        self.move(name, State.PENDING, "resumed by user")

    def probe_now(self, name: str) -> None:
        self.commands.append(("probe_now", name))

    def reload(self) -> None:
        self.commands.append(("reload", ""))

    # --- scripting ----------------------------------------------------------------

    def result(self, name: str, status: str = "up", latency: float | None = 12.5,
               reason: str | None = None, kind: str = "http", target: str = "",
               age: float = 2.0, phases: dict[str, float] | None = None,
               cert_days: float | None = None) -> ProbeResult:
        cert = None
        if cert_days is not None:
            cert = CertFacts(expires_at=BASE_TIME + timedelta(days=cert_days),
                             subject="CN=example.test", issuer="CN=Test CA", sans=("example.test",),
                             hostname_match=True, chain_length=2)
        result = ProbeResult(
            name=name, kind=kind, target=target or f"https://{name}.example.test/",
            status=Status(status), latency_ms=None if status == "down" else latency,
            phases_ms=phases or ({"connect": 1.5, "tls": 4.0, "ttfb": 6.0, "transfer": 1.0}
                                 if status != "down" else {"connect": 0.4}),
            reason=reason, checked_at=BASE_TIME, started=NOW - age,
            http_status=200 if status != "down" else None, cert=cert)
        self.listener.on_result(result)
        return result

    def move(self, name: str, to: State, reason: str | None = None,
             minutes: float = 0) -> None:
        before = self.states.get(name, State.PENDING)
        self.states[name] = to
        self.listener.on_transition(Transition(
            name, before, to, reason, BASE_TIME + timedelta(minutes=minutes), NOW, 60.0))

    def stats(self, probes_per_s: float = 4.0, lag_ms: float = 0.8, behind_s: float = 0.0,
              skips_per_min: float = 0.0) -> None:
        self.listener.on_stats(EngineStats(probes_total=1234, skips=int(skips_per_min),
                                           lag_ms=lag_ms, probes_per_s=probes_per_s,
                                           behind_s=behind_s, skips_per_min=skips_per_min))

    def die(self, reason: str = "engine process killed by SIGKILL: no error output",
            tries: int = 0, retry_in: float | None = 0.5) -> None:
        """What the process engine reports when its worker dies (retry_in None: given up)."""
        self.listener.on_engine_down(EngineDown(reason, tries, retry_in))

    def come_back(self, restarts: int = 1) -> None:
        self.listener.on_engine_up(restarts)
