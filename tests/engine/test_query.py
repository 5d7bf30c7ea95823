"""Display order: the Arranger agrees with the plain definition, and does
little work per call on a big board."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config.model import Target
from monitor.engine.board import TargetView
from monitor.engine.query import Arranger, Filter, SortMode
from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State

_SEVERITY = {State.DOWN: 0, State.DEGRADED: 1, State.PENDING: 2, State.UP: 3, State.PAUSED: 4}


def plain_arrange(views: list[TargetView], flt: Filter, mode: SortMode,
                  grouped: bool) -> list[tuple[str | None, list[TargetView]]]:
    """What the order means, written the obvious way: one sorted() with a tuple key."""
    def key(v: TargetView) -> Any:
        name = v.target.name.lower()
        if mode is SortMode.NAME:
            return name
        if mode is SortMode.STATUS:
            return (_SEVERITY[v.state], name)
        if mode is SortMode.LATENCY:
            ms = v.last.latency_ms if v.last is not None else None
            return (ms is None, -(ms or 0.0), name)
        uptime = v.stats.uptime_pct_cached
        return (uptime is None, uptime or 0.0, name)
    chosen = sorted((v for v in views if flt.matches(v)), key=key)
    if not grouped:
        return [(None, chosen)]
    sections: dict[str, list[TargetView]] = {}
    for view in chosen:
        sections.setdefault(view.target.group, []).append(view)
    return sorted(sections.items(), key=lambda item: (item[0] == "", item[0].lower()))


def view(name: str, group: str = "", state: State = State.UP, latency: float | None = 10.0,
         uptime: float | None = None) -> TargetView:
    target = Target(name=name, kind="http", options=None, interval=60.0, timeout=1.0,
                    failure_threshold=1, success_threshold=1, group=group)
    v = TargetView(target, 10, 0.0)
    v.state = state
    if latency is not None or state is State.DOWN:
        v.apply_result(ProbeResult(
            name=name, kind="http", target=f"http://{name}.test/",
            status=Status.DOWN if latency is None else Status.UP, latency_ms=latency,
            phases_ms={}, reason=None, checked_at=datetime.now(UTC), started=0.0))
    v.stats.uptime_pct_cached = uptime
    return v


names = st.sampled_from(["api", "API", "db", "Db-2", "edge", "web", "web", "x", "queue", "b"])
views = st.lists(st.builds(
    view, name=names, group=st.sampled_from(["", "prod", "Prod", "infra"]),
    state=st.sampled_from(list(State)),
    latency=st.one_of(st.none(), st.sampled_from([0.0, 1.5, 10.0, 10.0, 250.0])),
    uptime=st.one_of(st.none(), st.sampled_from([0.0, 50.0, 99.9, 100.0]))), max_size=30)


@settings(max_examples=300, deadline=None)
@given(views, st.sampled_from(["", "a", "down", "group:prod", "web up", "x.test", "tag:z"]),
       st.sampled_from(list(SortMode)), st.booleans())
def test_arranger_agrees_with_the_plain_definition(board, text, mode, grouped):
    flt = Filter(text)
    got = Arranger(board).arrange(flt, mode, grouped)
    want = plain_arrange(board, flt, mode, grouped)
    assert [(g, [id(v) for v in vs]) for g, vs in got] == \
        [(g, [id(v) for v in vs]) for g, vs in want]


def test_group_tally_counts_every_member_and_those_down():
    board = [view("a", "prod"), view("b", "prod", State.DOWN), view("c", "", State.DOWN),
             view("d", "infra", State.PAUSED)]
    assert Arranger(board).group_tally() == {"prod": (2, 1), "": (1, 1), "infra": (1, 0)}


def test_name_and_status_order_need_no_per_target_sort_key():
    """10,000 targets: the name order is found once; status and name orders
    are passes over it, latency and uptime one key per target per arrange,
    never one per comparison."""
    board = [view(f"t{i}", latency=float(i % 97), state=(State.UP, State.DOWN)[i % 5 == 0])
             for i in range(10_000)]
    arranger = Arranger(board)
    for mode in (SortMode.STATUS, SortMode.NAME):
        for text in ("", "t1"):
            arranger.arrange(Filter(text), mode, grouped=False)
            arranger.arrange(Filter(text), mode, grouped=True)
    assert arranger.keys_computed == 0
    (_, latency_order), = arranger.arrange(Filter(), SortMode.LATENCY, grouped=False)
    assert arranger.keys_computed == 10_000
    assert latency_order[0].last.latency_ms == 96.0


def test_filter_terms_are_parsed_once():
    flt = Filter("down tag:edge")
    assert flt.terms is flt.terms
    assert flt.terms == [("", "down"), ("tag", "edge")]
