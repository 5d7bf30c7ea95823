"""What the dashboard says reads right: percentages that never claim 100
too early, details in words, failures that show on a chart, the help that
names the [keys] table."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from monitor.ui import format as fmt
from monitor.ui.details import detail_rows
from monitor.ui.screens.detail import DetailScreen
from monitor.ui.screens.help import HelpScreen
from monitor.ui.widgets.chart import LatencyChart
from tests.ui.conftest import make_app, populate, screen_ready


def test_percentages_say_100_only_when_it_is_100():
    for value in (99.95, 99.96, 99.99, 99.999999):
        assert fmt.percent(value) == "99.9%"                 # fits the Up column
    assert fmt.percent(99.999999, 2) == "99.99%" and fmt.percent(99.95, 2) == "99.95%"
    assert fmt.percent(100.0) == "100%" and fmt.percent(None) == "—"
    assert fmt.percent(99.9) == "99.9%" and fmt.percent(33.333) == "33.3%"
    # losses the other way: any loss shows, and 100 % only when all was lost
    assert fmt.percent(0.4, 0, round_up=True) == "1%"
    assert fmt.percent(0.0, 0, round_up=True) == "0%"
    assert fmt.percent(99.6, 0, round_up=True) == "99%"
    assert fmt.percent(100.0, 0, round_up=True) == "100%"


def test_details_read_as_words():
    rows = dict(detail_rows({"bytes": 32, "truncated": False, "http_version": "1.1"}))
    assert rows == {"body": "32 bytes", "HTTP version": "1.1"}
    assert "the rest not read" in dict(detail_rows({"bytes": 65536, "truncated": True}))["body"]
    icmp = dict(detail_rows({"sent": 3, "received": 2, "loss_pct": 33.3,
                             "rtts_ms": [0.051, None, 0.06], "median_ms": 0.055,
                             "socket": "dgram", "jitter_ms": None}))
    assert icmp["echoes"] == "2 of 3 answered"
    assert icmp["round trips (ms)"] == "0.051, lost, 0.06"       # in send order
    assert icmp["loss"] == "33.3%" and icmp["jitter"] == "—"
    assert icmp["socket"] == "unprivileged (datagram)"
    assert dict(detail_rows({"hostname_match": False}))["host name"] == "MISMATCH"
    assert dict(detail_rows({"some_new_key": True})) == {"some new key": "yes"}
    everything = " ".join(f"{k} {v}" for k, v in detail_rows(
        {"bytes": 1, "truncated": False, "hostname_match": True, "flags": ["qr", "rd"]}))
    assert "False" not in everything and "True" not in everything and "_" not in everything


def chart_text(chart: LatencyChart) -> str:
    console = Console(width=chart.size.width, color_system=None)
    with console.capture() as capture:
        console.print(chart.render())
    return capture.get()


async def chart_of(config_file: Path, results: list[tuple[str, float | None]]) -> list[str]:
    """The detail chart's lines for "api" after `results` (status, latency)."""
    app = make_app(config_file)
    async with app.run_test(size=(80, 24)) as pilot:
        for age, (status, latency) in enumerate(results):
            app.engine.result("api", status, latency=latency, reason=None if status == "up"
                              else "connection refused", age=len(results) - age)
        app.flush()
        app.table.move_cursor(app.table.get_row_index("api"))
        await pilot.press("enter")
        await screen_ready(pilot, DetailScreen)
        reason = str(app.screen.reason_line.render())
        return [*chart_text(app.screen.chart).splitlines(), reason]


async def test_an_always_failing_targets_chart_marks_every_failure(config_file: Path):
    *lines, caption, reason = await chart_of(config_file, [("down", None)] * 12)
    assert "ms" not in "".join(lines)               # no latency scale: nothing answered
    assert lines[-1].strip() == fmt.FAILED_MARK * 12
    assert all(line.strip() == "░" * 12 for line in lines[:-1])   # whole columns
    assert "12 samples, none answered" in caption
    assert reason == "connection refused"          # the whole reason, under the title


async def test_a_mixed_chart_scales_to_the_answers_and_marks_the_failures(config_file: Path):
    results = [("down", None) if i % 3 == 0 else ("up", 10.0 * i) for i in range(1, 10)]
    *lines, caption, _reason = await chart_of(config_file, results)
    assert lines[0].strip().startswith("80.0ms")    # the top is the slowest answer
    assert lines[-1].count(fmt.FAILED_MARK) == 3 and lines[0].count("░") == 3
    assert "9 samples, oldest left" in caption


async def test_help_names_the_keys_table(config_file: Path):
    app = make_app(config_file)
    async with app.run_test(size=(100, 40)) as pilot:
        populate(app)
        await pilot.press("question_mark")
        await screen_ready(pilot, HelpScreen)
        console = Console(width=100, color_system=None)
        with console.capture() as capture:
            for widget in app.screen.query("Static"):
                console.print(widget.content)
        text = capture.get()
        assert "[keys]" in text and 'probe_now = "f5"' in text
        assert "clear_filter" in text and "escape" in text
