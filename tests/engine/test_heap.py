"""A process that probes settles its heap and collects young objects less often."""

from __future__ import annotations

import asyncio
import gc

import pytest

from monitor.config import load_config
from monitor.cli import main
from monitor.engine.heap import PROBING_YOUNG_THRESHOLD, collect_as_a_prober, settle
from monitor.engine.host import EngineHost
from monitor.engine.sinks import CallbackSink


@pytest.fixture
def collector():
    """The test process's collector as it was, whatever a test made of it."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_settle_keeps_the_thresholds_unless_asked(collector):
    gc.set_threshold(700, 10, 10)
    settle()   # the dashboard's own process: its key hold manages the collector
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() > 0
    settle(young_threshold=2500)
    assert gc.get_threshold() == (2500, 10, 10)   # only generation 0 changes


async def test_an_engine_host_probes_with_the_young_threshold_raised(
        tmp_path, control_server, collector):
    gc.set_threshold(700, 11, 12)
    path = tmp_path / "m.toml"
    path.write_text('[settings]\ninterval = "100ms"\ntimeout = "90ms"\nhistory_db = "off"\n'
                    + "".join(f'[[targets]]\nname = "t{i}"\nkind = "http"\n'
                              f'url = "{control_server.url(f"t{i}")}"\n' for i in range(5)))
    results = []
    host = EngineHost(load_config(path), [CallbackSink(on_result=results.append)], stop_on=())
    await host.start()
    try:
        assert gc.get_threshold() == (PROBING_YOUNG_THRESHOLD, 11, 12)
        for _ in range(100):   # and it probes as before
            if len(results) >= 10:
                break
            await asyncio.sleep(0.05)
        assert len(results) >= 10 and all(r.ok for r in results)
    finally:
        await host.close()


async def test_a_host_told_not_to_settle_leaves_the_collector_alone(
        tmp_path, control_server, collector):
    gc.set_threshold(700, 10, 10)
    path = tmp_path / "m.toml"
    path.write_text(f'[[targets]]\nname = "a"\nkind = "http"\nurl = "{control_server.url("a")}"\n'
                    '[settings]\nhistory_db = "off"\n')
    host = EngineHost(load_config(path), stop_on=(), settle_heap=False)
    await host.start()
    try:
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        await host.close()


def test_collect_as_a_prober_changes_only_generation_0(collector):
    gc.set_threshold(700, 11, 12)
    collect_as_a_prober()
    assert gc.get_threshold() == (PROBING_YOUNG_THRESHOLD, 11, 12)


def test_a_command_that_probes_collects_as_a_prober(tmp_path, collector, capsys):
    """`monitor check` (like `run --headless`, `serve` and the engine worker)
    collects as a prober; `monitor validate`, which probes nothing, does not."""
    path = tmp_path / "m.toml"
    path.write_text('[settings]\nhistory_db = "off"\n[[targets]]\nname = "closed"\n'
                    'kind = "tcp"\nhost = "127.0.0.1"\nport = 1\ntimeout = "1s"\n')
    gc.set_threshold(700, 10, 10)
    assert main(["validate", str(path)]) == 0
    assert gc.get_threshold() == (700, 10, 10)
    assert main(["check", "--config", str(path)]) == 1   # the closed port is down
    assert gc.get_threshold() == (PROBING_YOUNG_THRESHOLD, 10, 10)
    assert "closed" in capsys.readouterr().out
