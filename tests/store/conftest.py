"""Results and transitions as the engine makes them, at chosen wall-clock times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Transition
from monitor.store import HistoryStore

T0 = 1_800_000_000.0   # 2027-01-15 08:00:00 UTC, a whole hour


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def result(name: str, seconds: float, status: Status = Status.UP, latency: float | None = 10.0,
           reason: str | None = None, **extra) -> ProbeResult:
    if status is Status.DOWN and latency == 10.0:
        latency = None
    if status is not Status.UP and reason is None:
        reason = "connection refused" if status is Status.DOWN else "slow"
    return ProbeResult(name=name, kind="http", target=f"http://127.0.0.1/{name}", status=status,
                       latency_ms=latency, phases_ms={"connect": 0.5, "ttfb": 2.0} if latency else {},
                       reason=reason, checked_at=at(seconds), **extra)


def transition(name: str, seconds: float, to: State, from_: State = State.PENDING,
               reason: str | None = None) -> Transition:
    return Transition(name, from_, to, reason, at(seconds), seconds, None)


class Clock:
    """Wall clock the store reads, moved by the test."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.now = T0 + seconds

    def __call__(self) -> float:
        return self.now

    def set(self, seconds: float) -> None:
        self.now = T0 + seconds


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "history.sqlite3")


@pytest.fixture
def opened():
    """Open stores, closed at the end of the test whatever happens."""
    stores: list[HistoryStore] = []

    def open_(*args, **kwargs) -> HistoryStore:
        store = HistoryStore.open(*args, **kwargs)
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.close()
