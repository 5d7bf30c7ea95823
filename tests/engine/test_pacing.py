"""An engine asked for more probes than it can run: schedules stretch evenly,
it says how far behind it is, and latency stays honest. Real loopback server."""

from __future__ import annotations

import asyncio
from collections import Counter
from statistics import mean, median

from monitor.config import parse_config
from monitor.engine.pacing import BEHIND_SHOWN, BehindWatch, Pace, SlotQueue
from tests.engine.test_scheduler import run_engine

ANSWER = 0.05   # seconds each answer takes


def fleet(server, groups: dict[str, tuple[int, str]], concurrency: int):
    """Targets named by group and number, each group at its interval; every
    answer takes ANSWER, so the engine runs concurrency / ANSWER probes a
    second at most."""
    text = f'[settings]\ntimeout = "190ms"\nconcurrency = {concurrency}\n'
    for group, (count, interval) in groups.items():
        for i in range(count):
            name = f"{group}{i}"
            server.behaviour[name].delay = ANSWER
            text += (f'[[targets]]\nname = "{name}"\nkind = "http"\n'
                     f'url = "{server.url(name)}"\ninterval = "{interval}"\n')
    return parse_config(text)


async def test_demand_five_times_capacity_stretches_every_target_alike(control_server):
    # 40 targets every 200 ms want 200 probes/s; 2 slots of 50 ms give 40
    config = fleet(control_server, {"t": (40, "200ms")}, concurrency=2)
    # four rounds' worth, however long a busy machine takes (bounded)
    engine, got = await run_engine(config, 15.0, until=lambda g: len(g.results) >= 160)
    counts = Counter(r.name for r in got.results)
    per_target = [counts[f"t{i}"] for i in range(40)]
    assert min(per_target) >= 3, per_target
    assert max(per_target) <= 2 * min(per_target), per_target
    # the latency clock starts after the slot: queueing for it is not latency
    latencies = [r.latency_ms for r in got.results if r.latency_ms is not None]
    assert median(latencies) < 2.5 * ANSWER * 1000, sorted(latencies)
    # each target ran about one start in five: ~0.8 s behind, the rest skipped
    assert engine.behind_s() > BEHIND_SHOWN
    assert engine.skips() > len(got.results) and engine.skips_per_min() > 1000


async def test_short_and_long_intervals_stretch_by_the_same_factor(control_server):
    """30 targets every 200 ms and 10 every 600 ms want 167 probes/s, 4 slots
    give 80: both should run at about half their rate, so the short ones three
    times as often as the long ones. Skipping each to "now" (or a first come,
    first served queue) gives the long ones nearly the same count instead."""
    config = fleet(control_server, {"short": (30, "200ms"), "long": (10, "600ms")},
                   concurrency=4)
    engine, got = await run_engine(config, 15.0, until=lambda g: len(g.results) >= 350)
    counts = Counter(r.name for r in got.results)
    short = mean(counts[f"short{i}"] for i in range(30))
    long = mean(counts[f"long{i}"] for i in range(10))
    assert min(counts[f"long{i}"] for i in range(10)) >= 2, counts
    assert 2.0 <= short / long <= 4.5, (short, long)


async def test_a_healthy_engine_is_not_behind(control_server):
    config = fleet(control_server, {"t": (10, "200ms")}, concurrency=10)
    engine, got = await run_engine(config, 1.5)
    assert len(got.results) >= 50
    # what a reader sees: not "behind" (a busy test machine may still wake
    # the loop tens of milliseconds late, and that lateness is counted)
    assert engine.behind_s() < BEHIND_SHOWN
    assert engine.skips() == 0 and engine.skips_per_min() == 0
    assert engine._pace.slip == 0


async def test_slots_go_to_the_earliest_due_and_survive_cancelled_waiters():
    slots = SlotQueue(1)
    await slots.acquire(0.0)
    order: list[float] = []

    async def wait(key: float) -> None:
        await slots.acquire(key)
        order.append(key)
        slots.release()

    tasks = [asyncio.create_task(wait(key)) for key in (3.0, 1.0, 2.0, 0.5)]
    await asyncio.sleep(0)
    tasks[3].cancel()   # the earliest gives up: its turn passes on
    await asyncio.sleep(0)
    slots.release()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [1.0, 2.0, 3.0]
    assert slots.free == 1 and slots.waiting() == 0


def test_pace_slips_by_the_excess_and_reports_the_95th_percentile():
    pace = Pace(0.0, slip_after=0.5, window=10.0)
    assert pace.granted(due=1.0, now=1.25) == 0.25 and pace.slip == 0
    assert pace.granted(due=1.0, now=3.0) == 0.5 and pace.slip == 1.5
    assert pace.clock(3.0) == 1.5
    for i in range(100):
        pace.started(0.002 if i < 90 else 2.0, now=5.0)
    assert 1.9 < pace.behind_s(5.0) < 2.3
    pace.skipped(30, now=5.0)
    assert pace.skips_per_min(5.0) == 60 * 30 / 5.0
    assert pace.behind_s(25.0) == 0 and pace.skips_per_min(25.0) == 0   # old news


def test_behind_is_said_once_each_way_and_not_every_flap():
    watch = BehindWatch(threshold=1.0, every=60.0)
    assert watch.update(0.1, 0.0) is None
    assert watch.update(2.0, 1.0) is True
    assert watch.update(0.8, 2.0) is None    # under the threshold, over half of it
    assert watch.update(0.2, 3.0) is False
    assert watch.update(2.0, 4.0) is None    # behind again within the minute: quiet
    assert watch.update(2.0, 61.0) is True


async def test_waiting_for_the_batch_grid_is_not_being_behind(control_server, monkeypatch):
    """Batchable probes (ICMP) start on a 250 ms grid on purpose: not late."""
    from monitor.probes.http import HttpProbe

    monkeypatch.setattr(HttpProbe, "batchable", True)
    config = fleet(control_server, {"t": (10, "300ms")}, concurrency=10)
    engine, got = await run_engine(config, 1.5)
    assert len(got.results) >= 30
    assert engine.behind_s() < 0.05 and engine.skips() == 0
