"""A key holds the cyclic collector off while its frame is made, for a
bounded moment, and never turns on a collector someone else turned off."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from monitor.ui.collector import KeyHold
from tests.ui.conftest import make_app, populate


@pytest.fixture(autouse=True)
def collector_back_on():
    yield
    gc.enable()


def test_a_key_holds_the_collector_until_its_timer_releases_it():
    timers: list[tuple[float, object]] = []
    hold = KeyHold(lambda seconds, callback: timers.append((seconds, callback)), seconds=0.2)
    hold.key()
    assert not gc.isenabled() and hold.held
    hold.key()                       # a second key within the hold: no second timer
    assert len(timers) == 1 and timers[0][0] == 0.2
    timers[0][1]()                   # the timer fires
    assert gc.isenabled() and not hold.held
    timers[0][1]()                   # firing again changes nothing
    assert gc.isenabled()


def test_a_collector_turned_off_elsewhere_is_left_off():
    timers: list[object] = []
    hold = KeyHold(lambda seconds, callback: timers.append(callback))
    gc.disable()
    hold.key()
    hold.release()
    assert not gc.isenabled() and timers == []


async def test_the_dashboard_holds_it_on_a_key_and_lets_go_as_it_quits(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(100, 30)) as pilot:
        populate(app)
        app.flush()
        app.collector.seconds = 600.0    # held for the test's whole length unless let go
        await pilot.press("s")
        assert not gc.isenabled() and app.collector.held
    assert gc.isenabled()                # quitting let it go
