"""Filtering and ordering targets for display: pure logic the UI calls.

Filter text is space-separated terms, all of which must match:
`down` / `status:down` (a state), `tag:edge`, `group:prod`, `kind:http`,
anything else a case-insensitive substring of the name (or target).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from monitor.engine.board import TargetView
from monitor.engine.state import State

_STATE_WORDS = {s.value: s for s in State} | {"degr": State.DEGRADED, "pend": State.PENDING}
# worst first, for the status sort
_SEVERITY = {State.DOWN: 0, State.DEGRADED: 1, State.PENDING: 2, State.UP: 3, State.PAUSED: 4}


class SortMode(StrEnum):
    STATUS = "status"
    NAME = "name"
    LATENCY = "latency"
    UPTIME = "uptime"

    def next(self) -> SortMode:
        modes = list(SortMode)
        return modes[(modes.index(self) + 1) % len(modes)]


@dataclass(frozen=True)
class Filter:
    text: str = ""

    @cached_property
    def terms(self) -> list[tuple[str, str]]:
        """(field, value) pairs, parsed once per filter, not once per target."""
        terms = []
        for word in self.text.lower().split():
            field, sep, value = word.partition(":")
            terms.append((field, value) if sep else ("", word))
        return terms

    def matches(self, view: TargetView, lower_name: str | None = None) -> bool:
        """`lower_name`: the target's name lowercased, when the caller has it."""
        target = view.target
        for field, value in self.terms:
            if field in ("status", "state") or (not field and value in _STATE_WORDS):
                if view.state is not _STATE_WORDS.get(value):
                    return False
            elif field == "tag":
                if not any(value in tag.lower() for tag in target.tags):
                    return False
            elif field == "group":
                if value not in target.group.lower():
                    return False
            elif field == "kind":
                if target.kind != value:
                    return False
            elif value not in (lower_name or target.name.lower()) \
                    and value not in _display(view).lower():
                return False
        return True


def _display(view: TargetView) -> str:
    return view.last.target if view.last is not None else ""


def _latency_key(view: TargetView) -> float:
    """Slowest first; nothing measured last."""
    last = view.last
    ms = last.latency_ms if last is not None else None
    return _LAST if ms is None else -ms


def _uptime_key(view: TargetView) -> float:
    """Worst first; unknown last."""
    uptime = view.stats.uptime_pct_cached
    return _LAST if uptime is None else uptime


_LAST = math.inf
Sections = list[tuple[str | None, list[TargetView]]]


class Arranger:
    """The visible targets of one board in display order, cheap enough to
    redo on every keypress and every typed filter character.

    A board's targets are fixed, so their name order (and lowercased names,
    for the filter) is worked out once. Then the name order is a walk of that
    list, the status order one pass dealing it into severity buckets, and the
    latency and uptime orders a stable sort on one float per target, ties
    staying in name order: no tuple keys, no sorting strings, no lowering
    names per call. Sorting 10,000 targets with (severity, name.lower())
    tuples took ~17 ms a keypress, ~45 ms under a busy engine.
    """

    def __init__(self, views: Iterable[TargetView]) -> None:
        pairs = sorted(((v.target.name.lower(), v) for v in views), key=lambda p: p[0])
        self.by_name = [view for _lower, view in pairs]
        self._lower = [lower for lower, _view in pairs]
        self.keys_computed = 0   # per-target sort keys worked out, for tests and profiling

    def arrange(self, flt: Filter, mode: SortMode, grouped: bool) -> Sections:
        """(group, views) sections in display order; one section with group
        None when not grouping. Group headings in name order, no group last."""
        if flt.terms:
            base = [v for v, lower in zip(self.by_name, self._lower) if flt.matches(v, lower)]
        else:
            base = self.by_name
        if mode is SortMode.STATUS:
            buckets: list[list[TargetView]] = [[] for _ in _SEVERITY]
            for view in base:
                buckets[_SEVERITY[view.state]].append(view)
            chosen = [view for bucket in buckets for view in bucket]
        elif mode is SortMode.NAME:
            chosen = list(base)
        else:
            self.keys_computed += len(base)
            chosen = sorted(base, key=_latency_key if mode is SortMode.LATENCY else _uptime_key)
        if not grouped:
            return [(None, chosen)]
        sections: dict[str, list[TargetView]] = {}
        for view in chosen:
            sections.setdefault(view.target.group, []).append(view)
        return sorted(sections.items(), key=lambda item: (item[0] == "", item[0].lower()))

    def group_tally(self) -> dict[str, tuple[int, int]]:
        """Each group's (targets, targets down), filter or not: what a group
        heading says. One pass for all headings; states change only with a
        transition, so this holds until the next one."""
        tally: dict[str, list[int]] = {}
        for view in self.by_name:
            counts = tally.setdefault(view.target.group, [0, 0])
            counts[0] += 1
            counts[1] += view.state is State.DOWN
        return {group: (count, down) for group, (count, down) in tally.items()}
