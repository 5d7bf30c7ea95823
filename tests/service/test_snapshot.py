"""The board as messages: what a viewer rebuilds is what the service knew."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest

from monitor.config import parse_config
from monitor.engine.board import Board
from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Transition
from monitor.engine.wire import EngineStats, FrameReader, WireError
from monitor.service.server import encode_frames
from monitor.service.snapshot import (VIEWS_PER_MESSAGE, ServiceInfo, SnapshotReader,
                                      load_snapshot, snapshot_messages)


def config_of(count: int, history: int = 50):
    text = f'[settings]\nhistory = {history}\n'
    for i in range(count):
        text += f'\n[[targets]]\nname = "t{i}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {1000 + i}\n'
    return parse_config(text, "m.toml")


def feed(board: Board, rng: random.Random, samples: int, now: float) -> None:
    for name, view in board.views.items():
        state = State.PENDING
        for k in range(samples):
            status = rng.choice([Status.UP, Status.UP, Status.DEGRADED, Status.DOWN])
            latency = None if status is Status.DOWN and rng.random() < 0.7 else rng.uniform(1, 90)
            at = now - samples + k
            board.apply_result(ProbeResult(name, "tcp", "x", status, latency, {"connect": 1.0},
                                           "why" if status is not Status.UP else None,
                                           datetime.now(UTC), started=at))
            new = State(status.value)
            if new is not state:
                board.apply_transition(Transition(name, state, new, None, datetime.now(UTC),
                                                  at, 1.0))
                state = new


def assert_same_summary(a, b) -> None:
    """Equal, but for float rounding in the running sums (recomputed exactly on restore)."""
    for field in a.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        assert x == y or (isinstance(x, float) and math.isclose(x, y, rel_tol=1e-9)), field


def round_trip(messages):
    reader, snapshots, found = FrameReader(), SnapshotReader(), None
    for message in reader.feed(encode_frames(messages)):
        found = snapshots.feed(message) or found
    return found


def test_a_viewer_rebuilds_the_services_board():
    now = 10_000.0
    config = config_of(VIEWS_PER_MESSAGE * 2 + 7)     # more views than one message holds
    service = Board(config.targets, 50, now - 500)
    feed(service, random.Random(7), 80, now)           # the rings wrapped
    info = ServiceInfo(4242, datetime.now(UTC), "/etc/monitor.toml", "9.9")
    messages = snapshot_messages(info, config.source, service.views, EngineStats(probes_total=9),
                                 windows=lambda name: {"24h": 99.5})
    assert sum(m[0] == "snapshot_views" for m in messages) == 3
    snapshot = round_trip(messages)
    assert snapshot.service == info and snapshot.stats.probes_total == 9
    viewer = Board(config.targets, 50, now)
    touched = load_snapshot(viewer, snapshot)
    assert touched == set(service.views)
    for name, theirs in service.views.items():
        ours = viewer.views[name]
        assert ours.state is theirs.state and ours.since == theirs.since
        assert_same_summary(theirs.summary(now + 5), ours.summary(now + 5))
        assert list(ours.stats.samples) == list(theirs.stats.samples)
        assert ours.phase_averages() == theirs.phase_averages()
        assert ours.last.started == theirs.last.started
        assert [t.to_state for t in ours.events] == [t.to_state for t in theirs.events]
    assert snapshot.views["t0"].windows == {"24h": 99.5}
    # and it goes on from there as the service's does
    late = ProbeResult("t0", "tcp", "x", Status.UP, 5.0, {}, None, datetime.now(UTC),
                       started=now + 1)
    service.apply_result(late)
    viewer.apply_result(late)
    assert_same_summary(viewer.views["t0"].summary(now + 2), service.views["t0"].summary(now + 2))


def test_a_smaller_history_keeps_the_newest_samples():
    config = config_of(1)
    service = Board(config.targets, 50, 0.0)
    feed(service, random.Random(1), 40, 100.0)
    viewer = Board(config.targets, 10, 100.0)
    load_snapshot(viewer, round_trip(snapshot_messages(
        ServiceInfo(1, datetime.now(UTC), "m", "1"), "", service.views, EngineStats())))
    assert list(viewer.views["t0"].stats.samples) == list(service.views["t0"].stats.samples)[-10:]


def test_results_after_the_snapshot_apply_after_it():
    config = config_of(1)
    service = Board(config.targets, 50, 0.0)
    feed(service, random.Random(2), 5, 100.0)
    snapshot = round_trip(snapshot_messages(ServiceInfo(1, datetime.now(UTC), "m", "1"), "",
                                            service.views, EngineStats()))
    after = ProbeResult("t0", "tcp", "x", Status.DOWN, None, {}, "refused", datetime.now(UTC),
                        started=200.0)
    snapshot.trailing.append(after)
    viewer = Board(config.targets, 50, 0.0)
    load_snapshot(viewer, snapshot)
    assert viewer.views["t0"].last is not None and viewer.views["t0"].last.started == 200.0
    assert viewer.views["t0"].stats.checks == service.views["t0"].stats.checks + 1


def test_another_protocol_or_a_broken_snapshot_is_refused():
    info = ServiceInfo(1, datetime.now(UTC), "m", "1")
    messages = snapshot_messages(info, "", Board(config_of(3).targets, 5, 0.0).views,
                                 EngineStats())
    with pytest.raises(WireError, match="protocol 99"):
        SnapshotReader().feed(("snapshot", 99, *messages[0][2:]))
    reader = SnapshotReader()
    reader.feed(messages[0])
    with pytest.raises(WireError, match="of 3 targets ended after 0"):
        reader.feed(("snapshot_end",))
    with pytest.raises(WireError, match="outside a snapshot"):
        SnapshotReader().feed(messages[1])
