"""The dashboard remembers how it was arranged (sort, grouping, the event log
hidden) in the app's state file, not in the user's config."""

from __future__ import annotations

from monitor import appstate
from monitor.engine.query import SortMode
from tests.ui.conftest import make_app


async def test_sort_grouping_and_the_log_come_back_after_a_restart(config_file):
    before = config_file.read_text()
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s", "s", "g", "e")
        await pilot.pause()
        assert app.sort_mode is SortMode.LATENCY and app.grouped
    assert appstate.saved_layout() == {"sort": "latency", "grouped": True,
                                       "events_hidden": True}
    assert config_file.read_text() == before

    again = make_app(config_file)
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert again.sort_mode is SortMode.LATENCY and again.grouped
        assert again.events.has_class("hidden")
        assert "grouped" in str(again.summary.render())


async def test_a_broken_layout_in_the_state_file_is_ignored(config_file):
    appstate.update(lambda data: data.__setitem__("layout", {"sort": "sideways",
                                                            "grouped": "yes"}))
    app = make_app(config_file)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.sort_mode is SortMode.STATUS and not app.grouped
