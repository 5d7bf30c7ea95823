"""What is known about each target: state, last result, statistics, events.

The engine keeps one `TargetView` per target; a UI in another process keeps a
mirror fed by the same stream of results and transitions (`Board`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.config.model import Target
from monitor.engine.result import ProbeResult
from monitor.engine.state import State, Transition
from monitor.engine.stats import RollingStats, SavedStats, Summary, restore_stats, save_stats

EVENTS_KEPT = 200


class TargetView:
    __slots__ = ("target", "state", "since", "stats", "last", "last_failure", "events",
                 "_phase_sums")

    def __init__(self, target: Target, history: int, now: float) -> None:
        self.target = target
        self.state = State.PAUSED if target.paused else State.PENDING
        self.since = now
        self.stats = RollingStats(history)
        self.stats.set_state(self.state, now)
        self.last: ProbeResult | None = None
        self.last_failure: ProbeResult | None = None
        self.events: deque[Transition] = deque(maxlen=EVENTS_KEPT)
        # phase -> [total ms, count]: averages without keeping results around
        self._phase_sums: dict[str, list[float]] = {}

    def apply_result(self, result: ProbeResult) -> None:
        self.stats.add(result)
        for phase, ms in result.phases_ms.items():
            sums = self._phase_sums.get(phase)
            if sums is None:
                self._phase_sums[phase] = [ms, 1.0]
            else:
                sums[0] += ms
                sums[1] += 1.0
        self.last = result
        if not result.ok:
            self.last_failure = result

    def apply_transition(self, transition: Transition) -> None:
        self.state = transition.to_state
        self.since = transition.monotonic
        self.stats.set_state(transition.to_state, transition.monotonic)
        self.events.append(transition)

    def summary(self, now: float) -> Summary:
        return self.stats.summary(now)

    def phase_averages(self) -> dict[str, float]:
        """Mean of each phase since start, over the probes that ran it."""
        return {phase: total / count for phase, (total, count) in self._phase_sums.items()}

    def saved_stats(self) -> tuple[SavedStats, dict[str, list[float]]]:
        """Statistics and phase sums as plain values (see `restore`)."""
        return save_stats(self.stats), {k: list(v) for k, v in self._phase_sums.items()}

    def restore(self, state: State, since: float, stats: SavedStats,
                phase_sums: dict[str, list[float]], last: ProbeResult | None,
                last_failure: ProbeResult | None, events: Iterable[Transition]) -> None:
        """Become a copy of another process's view of this target (a
        dashboard attaching to a service): what it knew replaces what this
        one knew."""
        self.state, self.since = state, since
        self.stats = restore_stats(stats, self.stats.samples.size)
        self._phase_sums = {k: [float(v[0]), float(v[1])] for k, v in phase_sums.items()}
        self.last, self.last_failure = last, last_failure
        self.events.clear()
        self.events.extend(events)


@dataclass(frozen=True, slots=True)
class BoardChange:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


class Board:
    """A mirror of the engine's views, fed by results and transitions."""

    def __init__(self, targets: Iterable[Target], history: int, now: float) -> None:
        self.history = history
        self.views: dict[str, TargetView] = {t.name: TargetView(t, history, now) for t in targets}
        self.events: deque[Transition] = deque(maxlen=EVENTS_KEPT * 5)

    def apply_result(self, result: ProbeResult) -> TargetView | None:
        view = self.views.get(result.name)
        if view is not None:
            view.apply_result(result)
        return view

    def apply_transition(self, transition: Transition) -> TargetView | None:
        self.events.append(transition)
        view = self.views.get(transition.name)
        if view is not None:
            view.apply_transition(transition)
        return view

    def apply_config(self, targets: Iterable[Target], now: float) -> BoardChange:
        """Follow a reloaded config: new targets get a view (PENDING, or
        PAUSED), removed ones leave, changed ones keep their view (state,
        statistics, samples, events) with the new definition."""
        new = {t.name: t for t in targets}
        removed = [name for name in self.views if name not in new]
        for name in removed:
            del self.views[name]
        added, changed = [], []
        for name, target in new.items():
            view = self.views.get(name)
            if view is None:
                self.views[name] = TargetView(target, self.history, now)
                added.append(name)
            elif view.target != target:
                view.target = target
                changed.append(name)
        if added:   # the config's order, as at start
            self.views = {name: self.views[name] for name in new}
        return BoardChange(tuple(added), tuple(removed), tuple(changed))

    def counts(self) -> dict[State, int]:
        counts = {state: 0 for state in State}
        for view in self.views.values():
            counts[view.state] += 1
        return counts
