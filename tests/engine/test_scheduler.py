"""The engine against a real loopback HTTP server."""

from __future__ import annotations

import asyncio

from monitor.config import parse_config
from monitor.engine.result import ProbeResult
from monitor.engine.scheduler import Engine
from monitor.engine.state import State, Transition


def config_for(server, paths: list[str], settings: str = "", extra: str = ""):
    text = f"[settings]\n{settings}\n"
    for path in paths:
        text += (f"[[targets]]\nname = \"{path}\"\nkind = \"http\"\n"
                 f"url = \"{server.url(path)}\"\n{extra}\n")
    return parse_config(text)


class Collector:
    def __init__(self) -> None:
        self.results: list[ProbeResult] = []
        self.transitions: list[Transition] = []

    def of(self, name: str) -> list[ProbeResult]:
        return [r for r in self.results if r.name == name]

    def states(self, name: str) -> list[tuple[str, str]]:
        return [(str(t.from_state), str(t.to_state)) for t in self.transitions if t.name == name]


async def run_engine(config, seconds: float, until=None):
    got = Collector()
    engine = Engine(config, on_result=got.results.append, on_transition=got.transitions.append)
    await engine.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and not (until and until(got)):
            await asyncio.sleep(0.02)
    finally:
        await engine.stop()
    return engine, got


async def test_first_probes_are_staggered_across_the_interval(control_server):
    paths = [f"t{i}" for i in range(5)]
    config = config_for(control_server, paths, 'interval = "1s"\ntimeout = "500ms"')
    await run_engine(config, 1.2, until=lambda g: len({r.name for r in g.results}) == 5)
    firsts = sorted(control_server.arrivals[p][0] for p in paths)
    gaps = [b - a for a, b in zip(firsts, firsts[1:])]
    # offsets are 0, .2, .4, .6, .8 of the interval: no thundering herd
    assert min(gaps) > 0.1, gaps


async def batched_first_starts(control_server, monkeypatch) -> list[float]:
    """First start (loop time) of 20 targets, 50 ms apart, as if HTTP were batchable."""
    from monitor.probes.http import HttpProbe

    starts: dict[str, list[float]] = {}
    plain_run = HttpProbe.run

    async def run(self, timer, ctx):
        starts.setdefault(self.target.name, []).append(asyncio.get_running_loop().time())
        return await plain_run(self, timer, ctx)

    monkeypatch.setattr(HttpProbe, "batchable", True)
    monkeypatch.setattr(HttpProbe, "run", run)
    paths = [f"t{i}" for i in range(20)]
    config = config_for(control_server, paths, 'interval = "1s"\ntimeout = "500ms"')
    await run_engine(config, 2.3, until=lambda g: all(len(g.of(p)) >= 2 for p in paths))
    for times in starts.values():   # the interval holds, on average and each time
        assert all(0.7 < b - a < 1.3 for a, b in zip(times, times[1:])), times
    return sorted(times[0] for times in starts.values())


def started_together(firsts: list[float]) -> int:
    return sum(1 for a, b in zip(firsts, firsts[1:]) if b - a < 0.005)


async def test_batchable_probes_start_together_on_the_grid(control_server, monkeypatch):
    """Kinds the kernel times (ICMP) share wake-ups: targets due within one
    BATCH_SLOT (250 ms: five of these) start in the same loop iteration."""
    firsts = await batched_first_starts(control_server, monkeypatch)
    assert started_together(firsts) >= 13, firsts   # unbatched, every gap is 50 ms


async def test_a_full_grid_point_leaves_the_rest_at_their_own_time(control_server, monkeypatch):
    from monitor.engine import scheduler
    monkeypatch.setattr(scheduler, "BATCH_MAX", 1)
    firsts = await batched_first_starts(control_server, monkeypatch)
    assert started_together(firsts) == 0, firsts


async def test_interval_is_start_to_start_and_never_overlaps(control_server):
    control_server.behaviour["slow"].delay = 0.15
    config = config_for(control_server, ["slow"], 'interval = "200ms"\ntimeout = "180ms"')
    engine, got = await run_engine(config, 1.05)
    starts = control_server.arrivals["slow"]
    assert 4 <= len(starts) <= 7
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(gap > 0.15 for gap in gaps), gaps   # not end-to-start + delay
    assert control_server.max_in_flight["slow"] == 1


async def test_probe_now_while_busy_is_a_counted_skip(control_server):
    control_server.behaviour["busy"].delay = 0.3
    config = config_for(control_server, ["busy"], 'interval = "5s"\ntimeout = "1s"')
    engine = Engine(config)
    await engine.start()
    try:
        for _ in range(50):
            if control_server.in_flight["busy"]:
                break
            await asyncio.sleep(0.01)
        assert engine.probe_now("busy") is False
        assert engine.skips("busy") == 1
        assert control_server.max_in_flight["busy"] == 1
    finally:
        await engine.stop()


async def test_failure_threshold_with_immediate_recheck(control_server):
    control_server.behaviour["bad"].status = 500
    config = config_for(control_server, ["bad"],
                        'interval = "10s"\ntimeout = "1s"\nfailure_threshold = 3\n'
                        'recheck_delay = "50ms"')
    engine, got = await run_engine(config, 2.0, until=lambda g: g.states("bad"))
    # three failures within a fraction of the interval: the first plus two rechecks
    assert [r.recheck for r in got.of("bad")] == [False, True, True]
    assert got.states("bad") == [("pending", "down")]
    assert got.transitions[0].reason == "expected 2xx, got 500 Internal Server Error"
    assert engine.views["bad"].state is State.DOWN


async def test_one_failed_recheck_that_succeeds_is_not_an_outage(control_server):
    config = config_for(control_server, ["blip"],
                        'interval = "300ms"\ntimeout = "250ms"\nrecheck_delay = "20ms"')
    got = Collector()
    engine = Engine(config, on_result=got.results.append, on_transition=got.transitions.append)
    await engine.start()
    try:
        while not got.of("blip"):
            await asyncio.sleep(0.01)
        control_server.behaviour["blip"].status = 503
        count = len(got.of("blip"))
        while len(got.of("blip")) < count + 1:
            await asyncio.sleep(0.01)
        control_server.behaviour["blip"].status = 200
        while len(got.of("blip")) < count + 3:
            await asyncio.sleep(0.01)
    finally:
        await engine.stop()
    assert got.states("blip") == [("pending", "up")]
    summary = engine.views["blip"].summary(asyncio.get_running_loop().time())
    assert summary.failures >= 1 and summary.loss_pct > 0   # flakiness stays visible


async def test_success_threshold_before_up_again(control_server):
    control_server.behaviour["heal"].status = 500
    config = config_for(control_server, ["heal"],
                        'interval = "150ms"\ntimeout = "100ms"\nfailure_threshold = 1\n'
                        'success_threshold = 3')
    got = Collector()
    engine = Engine(config, on_result=got.results.append, on_transition=got.transitions.append)
    await engine.start()
    try:
        while not got.states("heal"):
            await asyncio.sleep(0.01)
        control_server.behaviour["heal"].status = 200
        while len(got.states("heal")) < 2:
            await asyncio.sleep(0.01)
    finally:
        await engine.stop()
    ups_before = [r for r in got.of("heal") if r.ok]
    assert got.states("heal") == [("pending", "down"), ("down", "up")]
    assert len(ups_before) >= 3


async def test_hanging_target_does_not_delay_others(control_server):
    control_server.behaviour["hang"].delay = 5
    config = config_for(control_server, ["hang", "fast"],
                        'interval = "200ms"\ntimeout = "150ms"\nrecheck = false')
    engine, got = await run_engine(config, 1.05)
    fast = got.of("fast")
    assert len(fast) >= 4 and all(r.ok for r in fast)
    hang = got.of("hang")
    assert hang and all(r.reason == "timed out after 150ms during ttfb" for r in hang)
    assert all(r.latency_ms is None for r in hang)


async def test_concurrency_cap_is_global(control_server):
    paths = [f"c{i}" for i in range(6)]
    for path in paths:
        control_server.behaviour[path].delay = 0.2
    config = config_for(control_server, paths,
                        'interval = "300ms"\ntimeout = "290ms"\nconcurrency = 2')
    engine, got = await run_engine(config, 1.0)
    assert control_server.max_total_in_flight == 2
    # the latency clock starts after the slot: queueing does not count as latency
    assert all(r.latency_ms < 280 for r in got.results if r.latency_ms is not None)


async def test_pause_and_resume(control_server):
    config = config_for(control_server, ["p"], 'interval = "100ms"\ntimeout = "90ms"')
    got = Collector()
    engine = Engine(config, on_result=got.results.append, on_transition=got.transitions.append)
    await engine.start()
    try:
        while not got.of("p"):
            await asyncio.sleep(0.01)
        assert engine.pause("p") is True
        assert engine.pause("p") is False
        await asyncio.sleep(0.05)
        paused_count = len(control_server.arrivals["p"])
        await asyncio.sleep(0.35)
        assert len(control_server.arrivals["p"]) == paused_count
        assert engine.probe_now("p") is False
        engine.resume("p")
        while got.states("p")[-1] != ("pending", "up"):
            await asyncio.sleep(0.01)
    finally:
        await engine.stop()
    assert got.states("p") == [("pending", "up"), ("up", "paused"), ("paused", "pending"),
                               ("pending", "up")]


async def test_config_paused_target_is_never_probed(control_server):
    config = config_for(control_server, ["quiet"], 'interval = "100ms"\ntimeout = "90ms"',
                        extra="paused = true")
    engine, got = await run_engine(config, 0.4)
    assert not control_server.arrivals["quiet"]
    assert engine.views["quiet"].state is State.PAUSED


async def test_apply_config_keeps_unchanged_history(control_server):
    config = config_for(control_server, ["keep", "drop"], 'interval = "100ms"\ntimeout = "90ms"')
    got = Collector()
    engine = Engine(config, on_result=got.results.append, on_transition=got.transitions.append)
    await engine.start()
    try:
        while not (got.of("keep") and got.of("drop")):
            await asyncio.sleep(0.01)
        keep_view = engine.views["keep"]
        new = config_for(control_server, ["keep", "added"], 'interval = "100ms"\ntimeout = "90ms"')
        engine.apply_config(new)
        assert set(engine.views) == {"keep", "added"}
        assert engine.views["keep"] is keep_view
        dropped = len(control_server.arrivals["drop"])
        while not got.of("added"):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.25)
        assert len(control_server.arrivals["drop"]) == dropped
    finally:
        await engine.stop()


async def test_engine_is_bounded_in_memory(control_server):
    config = config_for(control_server, ["m"],
                        'interval = "10ms"\ntimeout = "9ms"\nhistory = 10')
    engine, got = await run_engine(config, 0.5)
    assert len(got.of("m")) > 10
    assert len(engine.views["m"].stats.samples) == 10


async def test_an_engine_whose_consumer_keeps_history_keeps_one_sample(control_server):
    config = config_for(control_server, ["m"], 'interval = "20ms"\ntimeout = "15ms"')
    engine = Engine(config, keep_history=False)
    await engine.start()
    try:   # bounded, and not a timing bound: however loaded the machine, 5 results
        for _ in range(500):
            if engine.views["m"].stats.checks > 3:
                break
            await asyncio.sleep(0.02)
    finally:
        await engine.stop()
    view = engine.views["m"]
    assert view.stats.checks > 3 and len(view.stats.samples) == 1
    assert view.last is not None and view.state is State.UP


async def test_grid_bookings_are_capped_and_forgotten_once_past():
    from monitor.engine.scheduler import BATCH_MAX, on_grid

    engine = Engine(parse_config("[settings]\n"))
    now = asyncio.get_running_loop().time()
    due = now + 10.01
    booked = [engine._book_grid_point(due) for _ in range(BATCH_MAX + 3)]
    assert on_grid(due) > due and booked[:BATCH_MAX] == [on_grid(due)] * BATCH_MAX
    assert booked[BATCH_MAX:] == [due] * 3              # a full point: at its own time
    for i in range(5000):                                # an hour of bookings, long gone
        engine._book_grid_point(now - 3600 + i * 0.5)
    assert len(engine._grid_load) <= 1025
