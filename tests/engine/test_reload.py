"""Applying a reloaded config to a running engine, against real loopback
servers with short intervals: only the difference changes."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import trustme
from aiohttp import web

from monitor.config import load_config, parse_config
from monitor.config.watch import ConfigWatcher, reload_config
from monitor.engine.scheduler import Engine
from monitor.engine.state import State
from tests.engine.test_scheduler import Collector
from tests.servers.http_servers import app_server
from tests.servers.tls_servers import serve, server_context, tls_handler

INTERVAL = 0.2
SETTINGS = 'interval = "200ms"\ntimeout = "150ms"'


def block(name: str, url: str, extra: str = "") -> str:
    return f'[[targets]]\nname = "{name}"\nkind = "http"\nurl = "{url}"\n{extra}\n'


def text_for(server, targets: dict[str, str], settings: str = SETTINGS,
             extra: dict[str, str] | None = None) -> str:
    """A config: target name -> the server path it probes."""
    extra = extra or {}
    return f"[settings]\n{settings}\n\n" + "".join(
        block(name, server.url(path), extra.get(name, "")) for name, path in targets.items())


def config_for(server, targets: dict[str, str], **kw):
    return parse_config(text_for(server, targets, **kw))


@contextlib.asynccontextmanager
async def running(config):
    got = Collector()
    engine = Engine(config, on_result=got.results.append, on_transition=got.transitions.append)
    await engine.start()
    try:
        yield engine, got
    finally:
        await engine.stop()


async def until(condition, timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.01)


def probe_tasks(name: str) -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == f"probe:{name}" and not t.done()]


def on_grid(arrivals: list[float], interval: float) -> float:
    """The largest distance (seconds) of any arrival from the grid the first one set."""
    first = arrivals[0]
    return max(abs((a - first) - round((a - first) / interval) * interval) for a in arrivals)


# --- targets ---------------------------------------------------------------------

async def test_unchanged_targets_keep_view_statistics_and_schedule(control_server):
    config = config_for(control_server, {"keep": "keep", "edit": "edit", "drop": "drop"})
    async with running(config) as (engine, got):
        await until(lambda: len(control_server.arrivals["keep"]) >= 4, what="keep probed")
        view = engine.views["keep"]
        task = engine._runtimes["keep"].task
        checks, samples = view.stats.checks, list(view.stats.samples.started)
        diff = engine.apply_config(config_for(
            control_server, {"keep": "keep", "edit": "edited", "new": "new"}))
        assert (diff.added, diff.removed, diff.changed, diff.unchanged) == (
            ("new",), ("drop",), ("edit",), ("keep",))
        assert diff.summary() == "config reloaded: +1 \u22121 ~1"
        assert engine.views["keep"] is view and engine._runtimes["keep"].task is task
        await until(lambda: view.stats.checks >= checks + 5, what="keep probed on")
        # the same samples, more of them: nothing was reset
        assert list(view.stats.samples.started)[:len(samples)] == samples
        assert view.state is State.UP and not view.events or view.events[-1].to_state is State.UP
        # and on the schedule it had: every arrival on the first one's grid
        arrivals = control_server.arrivals["keep"]
        assert on_grid(arrivals, INTERVAL) < INTERVAL / 4, arrivals
        assert [t.name for t in config.targets][0] == list(engine.views)[0]


async def test_a_changed_target_restarts_with_its_new_options_keeping_its_view(control_server):
    config = config_for(control_server, {"edit": "before"})
    async with running(config) as (engine, got):
        await until(lambda: engine.views["edit"].state is State.UP, what="up")
        view = engine.views["edit"]
        old_task = engine._runtimes["edit"].task
        checks, events = view.stats.checks, list(view.events)
        engine.apply_config(config_for(control_server, {"edit": "after"}))
        await until(lambda: control_server.arrivals["after"], what="new url probed")
        await asyncio.sleep(0.05)
        stopped_at = len(control_server.arrivals["before"])
        assert engine.views["edit"] is view and view.target.options.url.endswith("/after")
        assert old_task.done() and engine._runtimes["edit"].task is not old_task
        assert view.stats.checks > checks and list(view.events)[:len(events)] == events
        assert view.state is State.UP   # no detour through PENDING: its history stands
        await asyncio.sleep(3 * INTERVAL)
        assert len(control_server.arrivals["before"]) == stopped_at
        assert all(r.target.endswith("/after") for r in got.of("edit")[-2:])


async def test_a_removed_target_stops_and_leaves(control_server):
    config = config_for(control_server, {"stay": "stay", "drop": "drop"})
    async with running(config) as (engine, got):
        await until(lambda: got.of("drop"), what="drop probed")
        engine.apply_config(config_for(control_server, {"stay": "stay"}))
        assert set(engine.views) == {"stay"}
        await until(lambda: not probe_tasks("drop"), 1.0, "its task ended")
        count = len(control_server.arrivals["drop"])
        await asyncio.sleep(3 * INTERVAL)
        assert len(control_server.arrivals["drop"]) == count
    assert not probe_tasks("stay") and not probe_tasks("drop")


async def test_a_renamed_target_is_a_removal_and_an_addition(control_server):
    config = config_for(control_server, {"old-name": "p"})
    async with running(config) as (engine, got):
        await until(lambda: got.of("old-name"), what="probed")
        old_view = engine.views["old-name"]
        diff = engine.apply_config(config_for(control_server, {"new-name": "p"}))
        assert (diff.added, diff.removed) == (("new-name",), ("old-name",))
        assert set(engine.views) == {"new-name"} and engine.views["new-name"] is not old_view
        await until(lambda: got.of("new-name"), what="the new name probed")
        assert engine.views["new-name"].stats.checks == len(got.of("new-name"))


async def test_added_targets_start_staggered_not_all_at_once(control_server):
    first = {f"a{i}": f"a{i}" for i in range(10)}
    config = config_for(control_server, first, settings='interval = "1s"\ntimeout = "500ms"')
    async with running(config) as (engine, got):
        await until(lambda: len(got.results) >= 10, what="the first ten probed")
        added = {f"b{i}": f"b{i}" for i in range(10)}
        engine.apply_config(config_for(control_server, first | added,
                                       settings='interval = "1s"\ntimeout = "500ms"'))
        await until(lambda: all(control_server.arrivals[p] for p in added), 3.0, "all added probed")
        firsts = sorted(control_server.arrivals[p][0] for p in added)
        gaps = [b - a for a, b in zip(firsts, firsts[1:])]
        # n-th of them at n/20 of the interval: 50 ms apart, the spacing of the whole schedule
        assert min(gaps) > 0.02, gaps
        assert firsts[-1] - firsts[0] > 0.3, firsts


async def test_one_edited_target_among_many_is_probed_at_once(control_server):
    targets = {f"t{i}": f"t{i}" for i in range(20)}
    settings = 'interval = "5s"\ntimeout = "1s"'
    async with running(config_for(control_server, targets, settings=settings)) as (engine, got):
        await until(lambda: len(got.results) >= 1, what="started")
        loop = asyncio.get_running_loop()
        applied = loop.time()
        engine.apply_config(config_for(control_server, targets | {"t7": "t7-fixed"},
                                       settings=settings))
        await until(lambda: got.of("t7") and got.of("t7")[-1].target.endswith("/t7-fixed"),
                    2.0, "the edit probed")
        # within 1/20 of its 5 s interval, not "some time in the next 5 s"
        assert loop.time() - applied < 0.25 + 0.5


async def test_a_block_moved_or_relabelled_is_not_restarted(control_server):
    config = config_for(control_server, {"a": "a", "b": "b"})
    async with running(config) as (engine, got):
        await until(lambda: got.of("a") and got.of("b"), what="probed")
        tasks = {name: rt.task for name, rt in engine._runtimes.items()}
        text = "# a new comment\n\n" + text_for(control_server, {"b": "b", "a": "a"},
                                               extra={"a": 'group = "prod"\ntags = ["x"]'})
        new = parse_config(text)
        diff = engine.apply_config(new)
        assert diff.unchanged == ("b",) and diff.changed == ("a",) and diff.restarted == ()
        assert {name: rt.task for name, rt in engine._runtimes.items()} == tasks
        # the running target is the new one: its labels and where its block is now
        assert engine.views["a"].target.group == "prod" and engine.views["a"].target.tags == ("x",)
        assert engine.views["b"].target.line == new.target("b").line != config.target("b").line
        assert list(engine.views) == ["b", "a"] and engine.config is new


async def test_a_pause_made_at_run_time_survives_an_unrelated_edit(control_server):
    config = config_for(control_server, {"p": "p", "other": "other"})
    async with running(config) as (engine, got):
        await until(lambda: got.of("p"), what="probed")
        engine.pause("p")
        engine.apply_config(config_for(control_server, {"p": "p", "other": "other2"}))
        assert engine.views["p"].state is State.PAUSED
        # an edit of the paused target itself that leaves `paused` alone: still paused
        engine.apply_config(config_for(control_server, {"p": "p-moved", "other": "other2"}))
        assert engine.views["p"].state is State.PAUSED
        await asyncio.sleep(3 * INTERVAL)
        assert not control_server.arrivals["p-moved"]
        # the file says `paused = true`, then takes it away: that is an edit of `paused`
        engine.apply_config(config_for(control_server, {"p": "p-moved", "other": "other2"},
                                       extra={"p": "paused = true"}))
        assert engine.views["p"].state is State.PAUSED
        engine.apply_config(config_for(control_server, {"p": "p-moved", "other": "other2"}))
        await until(lambda: control_server.arrivals["p-moved"], 2.0, "resumed by the edit")


async def test_a_reload_before_start_is_what_start_runs(control_server):
    engine = Engine(config_for(control_server, {"a": "a"}))
    diff = engine.apply_config(config_for(control_server, {"b": "b"}))
    assert diff.added == ("b",) and diff.removed == ("a",)
    await engine.start()
    try:
        assert set(engine.views) == {"b"}
        await until(lambda: control_server.arrivals["b"], what="b probed")
    finally:
        await engine.stop()
    assert not control_server.arrivals["a"]


# --- settings ----------------------------------------------------------------------

async def test_concurrency_is_resized_live(control_server):
    names = {f"c{i}": f"c{i}" for i in range(8)}
    for path in names.values():
        control_server.behaviour[path].delay = 0.15

    def settings(concurrency: int) -> str:
        return f'interval = "200ms"\ntimeout = "190ms"\nconcurrency = {concurrency}'

    async with running(config_for(control_server, names, settings=settings(1))) as (engine, got):
        await until(lambda: len(got.results) >= 3, what="probing")
        assert control_server.max_total_in_flight == 1
        diff = engine.apply_config(config_for(control_server, names, settings=settings(6)))
        assert diff.settings == ("concurrency",) and diff.changed == ()
        await until(lambda: control_server.max_total_in_flight >= 5, 3.0, "more in flight")
        engine.apply_config(config_for(control_server, names, settings=settings(2)))
        await asyncio.sleep(0.3)   # the probes already in flight finish
        control_server.max_total_in_flight = control_server.total_in_flight
        seen = len(got.results)
        await until(lambda: len(got.results) >= seen + 6, 5.0, "probing on")
        assert control_server.max_total_in_flight <= 2
        assert engine.concurrency == 2 and engine._slots.size == 2


async def test_user_agent_and_interval_apply_to_the_next_probe():
    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    def config(settings: str):
        return parse_config(f"[settings]\n{settings}\n" + block("ua", server.url("/")))

    async with app_server([web.get("/", ok)]) as server, \
            running(config('interval = "1s"\ntimeout = "500ms"')) as (engine, got):
        def agents() -> list[str]:
            return [seen.headers.get("User-Agent", "") for seen in server.requests]

        await until(agents, what="probed")
        assert agents()[-1].startswith("monitor/")
        diff = engine.apply_config(config('interval = "100ms"\ntimeout = "90ms"\n'
                                          'user_agent = "probe-two/2.0"'))
        assert diff.settings == ("interval", "timeout", "user_agent")
        assert diff.changed == ("ua",)   # the defaults reach it: its interval changed
        seen = len(agents())
        await until(lambda: len(agents()) >= seen + 5, 2.0, "probed at the new interval")
        assert agents()[-1] == "probe-two/2.0"


# --- files -------------------------------------------------------------------------

async def test_a_rotated_ca_file_is_read_again(tmp_path):
    old_ca, new_ca = trustme.CA(), trustme.CA()
    ca_file = tmp_path / "ca.pem"
    old_ca.cert_pem.write_to_path(str(ca_file))
    path = tmp_path / "monitor.toml"
    async with serve(tls_handler(server_context(new_ca.issue_cert("localhost")))) as port:
        path.write_text(f'[settings]\n{SETTINGS}\n[[targets]]\nname = "private"\nkind = "tls"\n'
                        f'host = "127.0.0.1"\nport = {port}\nserver_name = "localhost"\n'
                        'ca_file = "ca.pem"\n')
        async with running(load_config(path)) as (engine, got):
            await until(lambda: got.of("private"), what="probed")
            assert not got.of("private")[-1].ok   # signed by a CA the file does not hold
            new_ca.cert_pem.write_to_path(str(ca_file))
            # the same config: without word of the file, the TLS context is kept
            assert engine.apply_config(load_config(path)).empty
            seen = len(got.of("private"))
            await until(lambda: len(got.of("private")) > seen + 1, what="probed again")
            assert not got.of("private")[-1].ok
            diff = engine.apply_config(load_config(path), files_changed=[ca_file])
            assert diff.changed == ("private",)
            await until(lambda: got.of("private")[-1].ok, 2.0, "trusted with the new CA")


async def test_an_editor_session_broken_then_fixed(control_server, tmp_path):
    """The watcher drives the engine as the engine host will: an editor that
    saves by rename, a broken save (the engine keeps its last good config and
    the problems are told), then the fix."""
    path = tmp_path / "monitor.toml"
    path.write_text(text_for(control_server, {"keep": "keep", "old": "old"}))
    config = load_config(path)
    problems: list[list[str]] = []
    summaries: list[str] = []

    def save(text: str) -> None:   # vim: rename to a backup, write anew, drop the backup
        os.replace(path, path.with_name(path.name + "~"))
        path.write_text(text)
        path.with_name(path.name + "~").unlink()

    async with running(config) as (engine, got), \
            ConfigWatcher(path, config, quiet=0.1) as watcher:
        async def follow() -> None:
            async for change in watcher:
                outcome = reload_config(path)
                if outcome.ok:
                    summaries.append(engine.apply_config(outcome.config, change.paths).summary())
                    watcher.follow(outcome.config)
                else:
                    problems.append(outcome.problems)

        follower = asyncio.create_task(follow())
        try:
            await until(lambda: got.of("keep") and got.of("old"), what="probed")
            await asyncio.sleep(0.2)   # the watcher is armed
            keep_view = engine.views["keep"]
            save(text_for(control_server, {"keep": "keep", "old": "old"}).replace(
                'interval = "200ms"', 'interval = "fast"'))
            await until(lambda: problems, what="the problems told")
            assert problems[-1] == [f'{path}:2: settings.interval: cannot read "fast" as a '
                                    'duration (use e.g. "250ms", "30s", "5m", "1h")']
            assert set(engine.views) == {"keep", "old"} and not summaries
            before = engine.views["keep"].stats.checks
            await until(lambda: engine.views["keep"].stats.checks > before + 2,
                        what="still probing on the last good config")
            save(text_for(control_server, {"keep": "keep", "new": "new"}))
            await until(lambda: summaries, what="the fix applied")
            assert summaries == ["config reloaded: +1 \u22121 ~0"]
            assert set(engine.views) == {"keep", "new"} and engine.views["keep"] is keep_view
            await until(lambda: control_server.arrivals["new"], what="the new target probed")
        finally:
            await watcher.close()
            await asyncio.wait_for(follower, 2.0)
    assert Path(path).read_text().count("[[targets]]") == 2


async def test_the_slot_cap_grows_and_shrinks_around_probes_in_flight():
    from monitor.engine.pacing import SlotQueue

    slots = SlotQueue(2)
    await slots.acquire(0.0)
    await slots.acquire(0.0)
    order: list[float] = []

    async def waiter(key: float) -> None:
        await slots.acquire(key)
        order.append(key)

    waiters = [asyncio.create_task(waiter(key)) for key in (3.0, 1.0, 2.0)]
    await asyncio.sleep(0)
    slots.resize(4)                       # two more: the two due first get them at once
    await asyncio.sleep(0)
    assert order == [1.0, 2.0] and slots.free == 0
    slots.resize(1)                       # four held, one allowed: three owed
    for _ in range(3):
        slots.release()                   # finishing probes pay the debt...
    await asyncio.sleep(0)
    assert order == [1.0, 2.0]            # ...and nobody new starts
    slots.release()                       # the fourth frees the one slot: the last waiter
    await asyncio.sleep(0)
    assert order == [1.0, 2.0, 3.0]
    slots.resize(3)
    assert slots.free == 2
    await asyncio.gather(*waiters)


async def test_an_engine_with_no_targets_starts_the_ones_a_reload_adds(control_server):
    async with running(config_for(control_server, {})) as (engine, got):
        engine.apply_config(config_for(control_server, {"first": "first"}))
        await until(lambda: got.of("first"), what="the added target probed")


async def test_many_restarts_are_made_a_batch_per_turn_of_the_loop(control_server):
    from monitor.engine.reload import START_BATCH

    count = 2 * START_BATCH + 10
    names = {f"t{i}": f"t{i}" for i in range(count)}
    settings = 'interval = "1h"\ntimeout = "1s"'   # started, never probed: tasks only
    async with running(config_for(control_server, names, settings=settings)) as (engine, got):
        tasks = {name: rt.task for name, rt in engine._runtimes.items()}
        engine.apply_config(config_for(control_server, names, settings='interval = "1h"\n'
                                       'timeout = "2s"'))   # every target changes
        restarted = [n for n, rt in engine._runtimes.items() if rt.task is not tasks[n]]
        assert len(restarted) == START_BATCH      # the first batch at once, the rest to come
        for _ in range(20):                       # bounded: three batches need three turns
            await asyncio.sleep(0)
            assert set(engine.views) == set(names)   # no view ever missing meanwhile
        assert all(rt.task is not tasks[n] and rt.target.timeout == 2.0
                   for n, rt in engine._runtimes.items())
        assert list(engine.views) == list(names)  # in the file's order again
        await until(lambda: all(t.done() for t in tasks.values()), 1.0, "old tasks ended")


async def test_a_reload_during_a_gradual_start_finishes_it_first(control_server):
    from monitor.engine.reload import START_BATCH

    names = {f"t{i}": f"t{i}" for i in range(START_BATCH + 50)}

    def config(timeout: str, moved: str = "t1"):
        return config_for(control_server, names | {"last": moved},
                          settings=f'interval = "1h"\ntimeout = "{timeout}"')

    async with running(config("1s")) as (engine, got):
        engine.apply_config(config("2s"))             # all restart: one batch made, 50 to come
        diff = engine.apply_config(config("2s", moved="t1-moved"))   # before the next turn
        assert diff.changed == ("last",)              # compared with what runs: all at 2 s
        assert all(rt.target.timeout == 2.0 and rt.task is not None and not rt.task.done()
                   for rt in engine._runtimes.values())
        assert engine._runtimes["last"].target.options.url.endswith("/t1-moved")
