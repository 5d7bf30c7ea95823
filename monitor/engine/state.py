"""Per-target state with failure/success thresholds (flap control)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from monitor.engine.result import ProbeResult, Status, iso


class State(StrEnum):
    PENDING = "pending"     # no confirmed state yet
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"
    PAUSED = "paused"


_FROM_STATUS = {Status.UP: State.UP, Status.DEGRADED: State.DEGRADED, Status.DOWN: State.DOWN}


@dataclass(frozen=True, slots=True)
class Transition:
    name: str
    from_state: State
    to_state: State
    reason: str | None
    at: datetime                  # wall clock, for display
    monotonic: float              # when, on the monotonic clock
    previous_for: float | None    # seconds spent in from_state (None if unknown)

    def to_json(self) -> dict[str, Any]:
        return {"event": "transition", "name": self.name, "from": str(self.from_state),
                "to": str(self.to_state), "reason": self.reason, "at": iso(self.at),
                "previous_for_s": None if self.previous_for is None else round(self.previous_for, 3)}


class Tracker:
    """Turns a stream of results into confirmed states.

    DOWN needs `failure_threshold` consecutive DOWN results; UP again needs
    `success_threshold` consecutive UP results. The first UP result out of
    PENDING is trusted at once: nothing was claimed before it.
    """

    __slots__ = ("name", "failure_threshold", "success_threshold", "state", "since",
                 "down_streak", "bad_streak", "up_streak", "not_down_streak")

    def __init__(self, name: str, failure_threshold: int, success_threshold: int,
                 now: float, state: State = State.PENDING) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.success_threshold = success_threshold
        self.state = state
        self.since = now
        self.down_streak = self.bad_streak = self.up_streak = self.not_down_streak = 0

    @property
    def confirming_down(self) -> bool:
        """A failure is not yet confirmed: the engine should recheck at once."""
        return 0 < self.down_streak < self.failure_threshold and self.state is not State.DOWN

    def observe(self, result: ProbeResult, now: float) -> Transition | None:
        status = result.status
        if status is Status.UP:
            self.up_streak += 1
            self.bad_streak = self.down_streak = 0
        else:
            self.bad_streak += 1
            self.up_streak = 0
        if status is Status.DOWN:
            self.down_streak += 1
            self.not_down_streak = 0
        else:
            self.down_streak = 0
            self.not_down_streak += 1

        current, target = self.state, self.state
        if current is State.PAUSED:
            return None
        if status is Status.UP:
            if current is State.PENDING or self.up_streak >= self.success_threshold:
                target = State.UP
        elif status is Status.DOWN:
            if self.down_streak >= self.failure_threshold:
                target = State.DOWN
        elif current is State.DOWN:   # degraded after down is an improvement
            if self.not_down_streak >= self.success_threshold:
                target = State.DEGRADED
        elif self.bad_streak >= self.failure_threshold or current is State.PENDING:
            target = State.DEGRADED
        if target is current:
            return None
        # stamped when confirmed, not when the confirming probe started
        return self._move(target, result.reason, datetime.now(UTC), now)

    def set_paused(self, paused: bool, at: datetime, now: float) -> Transition | None:
        if paused == (self.state is State.PAUSED):
            return None
        self.down_streak = self.bad_streak = self.up_streak = self.not_down_streak = 0
        target = State.PAUSED if paused else State.PENDING
        return self._move(target, "paused by user" if paused else "resumed by user", at, now)

    def _move(self, target: State, reason: str | None, at: datetime, now: float) -> Transition:
        transition = Transition(self.name, self.state, target, reason, at, now, now - self.since)
        self.state, self.since = target, now
        return transition
