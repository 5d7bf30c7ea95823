"""The probe interface: what every probe kind implements and returns.

A probe runs one check against one target. It records its timing phases on a
`PhaseTimer` as it goes (so a timeout can say which phase hung), and either
returns an `Outcome` or raises `ProbeFailure` with a human reason.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from monitor.config.model import Target

# Phase names, the same everywhere (JSON, UI, export). blackbox_exporter calls
# them resolve/connect/tls/processing/transfer.
PHASES: tuple[str, ...] = ("dns", "connect", "tls", "ttfb", "transfer")


class ProbeFailure(Exception):
    """A check failed; `reason` is what the operator reads."""

    def __init__(self, reason: str, *, http_status: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status
        self.details = details or {}


@dataclass(slots=True)
class CertFacts:
    """Certificate facts; `expires_at` is the earliest expiry in the chain."""

    expires_at: datetime
    subject: str = ""
    issuer: str = ""
    # Which certificate expires first ("leaf" or the subject of a chain member):
    # users are confused by an earliest-expiry that is not the leaf's.
    earliest: str = "leaf"
    leaf_expires_at: datetime | None = None
    hostname_match: bool | None = None
    sans: tuple[str, ...] = ()
    chain_length: int = 1


@dataclass(slots=True)
class Outcome:
    """What a probe saw when it got an answer.

    `ok` False means DOWN with `reason`. `degraded` set means the answer was
    acceptable but not healthy (e.g. certificate close to expiry).
    `latency_ms` overrides the timer's total (ICMP reports RTT, not wall time).
    """

    ok: bool = True
    reason: str | None = None
    degraded: str | None = None
    latency_ms: float | None = None
    http_status: int | None = None
    cert: CertFacts | None = None
    details: dict[str, Any] = field(default_factory=dict)


class PhaseTimer:
    """Times named phases on the monotonic clock and remembers the current one."""

    __slots__ = ("started", "phases", "current")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}
        self.current: str | None = None

    def phase(self, name: str) -> _Phase:
        """`with timer.phase("connect"):` times the block; on error `current`
        keeps naming the phase that failed."""
        return _Phase(self, name)

    def add(self, name: str, begin: float, end: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + (end - begin) * 1000.0

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0


class _Phase:
    """A class, not @contextmanager: half the cost, and it runs several times a probe."""

    __slots__ = ("timer", "name", "begin")

    def __init__(self, timer: PhaseTimer, name: str) -> None:
        self.timer, self.name = timer, name
        self.begin = 0.0

    def __enter__(self) -> None:
        self.timer.current = self.name
        self.begin = time.perf_counter()

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self.timer.add(self.name, self.begin, time.perf_counter())
            self.timer.current = None


R = TypeVar("R")


class ProbeContext:
    """Resources shared by probes in one event loop (HTTP sessions, ...).

    Probes ask for a resource by key; the first ask creates it. `close()` at
    engine shutdown releases everything that registered a closer.
    """

    def __init__(self, user_agent: str = "monitor/0.1 (+uptime check)") -> None:
        self.user_agent = user_agent
        self._resources: dict[str, Any] = {}
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def get(self, key: str, factory: Callable[[], R],
            closer: Callable[[R], Awaitable[None]] | None = None) -> R:
        try:
            return self._resources[key]
        except KeyError:
            value = factory()
            self._resources[key] = value
            if closer is not None:
                self._closers.append(lambda: closer(value))
            return value

    def forget(self, match: Callable[[str], bool]) -> None:
        """Drop the resources whose key matches, to be made again when next
        asked for (a file they were built from changed). One with a closer is
        still closed by `close()`."""
        for key in [key for key in self._resources if match(key)]:
            del self._resources[key]

    async def close(self) -> None:
        closers, self._closers = self._closers, []
        self._resources.clear()
        for close in reversed(closers):
            try:
                await close()
            except Exception:  # closing must not mask shutdown
                pass


class Probe(ABC):
    """One probe kind. Subclasses set `kind` and `Options` (a dataclass of
    kind-specific config fields declared with `monitor.config.fields.option`)."""

    kind: ClassVar[str]
    Options: ClassVar[type]
    # True when the kernel times the probe (ICMP receive stamps), so starting
    # many at the same moment costs no accuracy: the scheduler then starts them
    # together on a coarse grid, which is far cheaper than one wake-up each.
    batchable: ClassVar[bool] = False

    def __init__(self, target: Target) -> None:
        self.target = target
        self.options = target.options

    @classmethod
    def check_options(cls, options: Any) -> list[tuple[str, str]]:
        """Cross-field checks after per-field validation: (key, problem) pairs."""
        return []

    @classmethod
    def check_timing(cls, options: Any, timeout: float) -> list[tuple[str, str]]:
        """Checks that need the target's effective timeout: (key, problem) pairs."""
        return []

    @classmethod
    def describe(cls, options: Any) -> str:
        """The target as a short string: URL or host[:port]."""
        raise NotImplementedError

    @abstractmethod
    async def run(self, timer: PhaseTimer, ctx: ProbeContext) -> Outcome:
        """Probe once. Raise ProbeFailure for a failure with a reason."""
