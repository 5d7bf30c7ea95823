"""Filtering and ordering targets for display: pure logic the UI calls.

Filter text is space-separated terms, all of which must match:
`down` / `status:down` (a state), `tag:edge`, `group:prod`, `kind:http`,
anything else a case-insensitive substring of the name (or target).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

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

    def terms(self) -> list[tuple[str, str]]:
        terms = []
        for word in self.text.lower().split():
            field, sep, value = word.partition(":")
            terms.append((field, value) if sep else ("", word))
        return terms

    def matches(self, view: TargetView) -> bool:
        target = view.target
        for field, value in self.terms():
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
            elif value not in target.name.lower() and value not in _display(view).lower():
                return False
        return True


def _display(view: TargetView) -> str:
    return view.last.target if view.last is not None else ""


def sort_key(mode: SortMode) -> Callable[[TargetView], Any]:
    if mode is SortMode.NAME:
        return lambda v: v.target.name.lower()
    if mode is SortMode.STATUS:
        return lambda v: (_SEVERITY[v.state], v.target.name.lower())
    if mode is SortMode.LATENCY:   # slowest first; nothing measured last
        def by_latency(v: TargetView) -> Any:
            ms = v.last.latency_ms if v.last is not None else None
            return (ms is None, -(ms or 0.0), v.target.name.lower())
        return by_latency
    # uptime: worst first; unknown last
    return lambda v: (v.stats.uptime_pct_cached is None, v.stats.uptime_pct_cached or 0.0,
                      v.target.name.lower())


def arrange(views: Iterable[TargetView], flt: Filter, mode: SortMode,
            grouped: bool) -> list[tuple[str | None, list[TargetView]]]:
    """The visible targets in display order, as (group, views) sections; one
    section with group None when not grouping."""
    chosen = sorted((v for v in views if flt.matches(v)), key=sort_key(mode))
    if not grouped:
        return [(None, chosen)]
    sections: dict[str, list[TargetView]] = {}
    for view in chosen:
        sections.setdefault(view.target.group, []).append(view)
    return sorted(sections.items(), key=lambda item: (item[0] == "", item[0].lower()))
