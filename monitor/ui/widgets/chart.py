"""A latency chart for the detail screen, over a range: live (one column per
sample in memory) or 1 h / 24 h / 7 d / 30 d from history (one column per
bucket of the series). Eight levels per row. Three marks never read alike:
a latency bar (accent, or warning when degraded), a failure (the error
colour over the whole height when nothing answered, a × on top of the bar
when some probes failed) and no data (a dim dot on the baseline: the
monitor was not running, or the target was pending or paused)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from monitor.config.durations import format_duration
from monitor.engine.result import Status
from monitor.engine.stats import Sample
from monitor.store.views import Bucket, Series
from monitor.ui import format as fmt

_EIGHTHS = " ▁▂▃▄▅▆▇█"
AXIS = 8   # width of the y-axis labels
FAILED_FILL = "░"   # above a failure's mark: the column is a failure, not a short bar
NO_DATA_MARK = "·"
RANGE_KEYS = ("live", "1h", "24h", "7d", "30d")   # keys 1..5 choose them, in this order


class LatencyChart(Widget):
    DEFAULT_CSS = """
    LatencyChart { height: 10; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.samples: Sequence[Sample] = ()
        self.palette: fmt.Palette | None = None
        self.range = "live"
        self.series: Series | None = None
        self.note: str | None = None   # instead of a history chart: reading, off, an error
        # (the live chart has no title row: it keeps every row for samples,
        # and the footer names the range keys)

    def show(self, samples: Sequence[Sample], palette: fmt.Palette) -> None:
        """The live samples (drawn while the range is live)."""
        self.samples, self.palette = samples, palette
        if self.range == "live":
            self.refresh()

    def show_range(self, range_: str, series: Series | None, note: str | None,
                   palette: fmt.Palette) -> None:
        """Another range: a series from history, or a note saying why none."""
        self.range, self.series, self.note, self.palette = range_, series, note, palette
        self.refresh()

    @property
    def columns(self) -> int:
        return max(1, self.size.width - AXIS)

    def render(self) -> RenderableType:
        palette = self.palette
        if palette is None:
            return Text("no samples yet", style="dim")
        if self.range == "live":   # as it always was: every row for the samples
            return Text("\n").join(self._live(max(2, self.size.height - 1), palette))
        title = self._title(palette)
        height = max(2, self.size.height - 2)
        if self.series is None:
            body = [Text(self.note or f"reading {self.range} of history…", style=palette.muted)]
        else:
            body = self._history(self.series, height, palette)
        return Text("\n").join([title, *body])

    def _title(self, palette: fmt.Palette) -> Text:
        line = Text(" " * AXIS)
        line.append("Latency, ", style="bold")
        line.append(f"last {self.range} from history", style="bold")
        line.append("   ")
        for number, key in enumerate(RANGE_KEYS, 1):
            chosen = key == self.range
            line.append(f"{number} {key}", style=Style(reverse=True) if chosen else palette.muted)
            line.append(" ")
        return line

    # --- live: one column per sample ---------------------------------------------------

    def _live(self, height: int, palette: fmt.Palette) -> list[Text]:
        recent = list(self.samples)[-self.columns:]
        if not recent:
            return [Text("no samples yet", style="dim")]
        values = [s.latency_ms for s in recent if s.latency_ms is not None
                  and s.status is not Status.DOWN]
        top = max(values, default=1.0) or 1.0
        lines = _axis(height, top if values else None, palette)
        for sample in recent:
            failed = sample.status is Status.DOWN or sample.latency_ms is None
            if failed:   # the whole column, so an outage shows as a band
                _failure_column(lines, palette)
                continue
            style = palette.warning if sample.status is Status.DEGRADED else palette.accent
            _bar(lines, sample.latency_ms / top, style)
        count = f"{len(recent)} sample{'' if len(recent) == 1 else 's'}"
        if not values:
            count += ", none answered"
        axis = Text(" " * AXIS) + Text(f"{count}, oldest left; {fmt.FAILED_MARK} = failed",
                                       style=palette.muted)
        return [*lines, axis]

    # --- history: one column per bucket ------------------------------------------------------

    def _history(self, series: Series, height: int, palette: fmt.Palette) -> list[Text]:
        buckets = series.buckets[-self.columns:]
        values = [v for b in buckets if (v := b.samples.avg_ms) is not None]
        top = max(values, default=1.0) or 1.0
        lines = _axis(height, top if values else None, palette)
        for bucket in buckets:
            _bucket_column(lines, bucket, top, palette)
        width = format_duration(round(series.width)) if series.width >= 1 else "1s"
        legend = (f"{width} a column, oldest left; {fmt.FAILED_MARK} = failures, "
                  f"{NO_DATA_MARK} = no data")
        if not any(b.samples.count or not b.no_data for b in buckets):
            legend = f"no data in the last {self.range}; " + legend
        return [*lines, Text(" " * AXIS) + Text(legend, style=palette.muted)]


def _axis(height: int, top: float | None, palette: fmt.Palette) -> list[Text]:
    """Rows that start with the y-axis: a latency scale only when something
    answered (with nothing to measure, "1.0ms" over failures read as one)."""
    lines = []
    for row in range(height):
        label = fmt.latency(top * (height - row) / height) \
            if top is not None and row in (0, height // 2) else ""
        lines.append(Text(f"{label:>{AXIS - 1}} ", style=palette.muted))
    return lines


def _failure_column(lines: list[Text], palette: fmt.Palette) -> None:
    last = len(lines) - 1
    for row, line in enumerate(lines):
        line.append(fmt.FAILED_MARK if row == last else FAILED_FILL, style=palette.error)


def _bar(lines: list[Text], fraction: float, style: Style,
         failed_on_top: Style | None = None) -> None:
    height = len(lines)
    eighths = max(1, round(fraction * height * 8))
    for row, line in enumerate(lines):
        if row == 0 and failed_on_top is not None:
            line.append(fmt.FAILED_MARK, style=failed_on_top)
            continue
        level_below = (height - 1 - row) * 8
        line.append(_EIGHTHS[min(8, max(0, eighths - level_below))], style=style)


def _bucket_column(lines: list[Text], bucket: Bucket, top: float, palette: fmt.Palette) -> None:
    samples = bucket.samples
    if bucket.no_data:
        last = len(lines) - 1
        for row, line in enumerate(lines):
            line.append(NO_DATA_MARK if row == last else " ", style=palette.muted)
        return
    average = samples.avg_ms
    if average is None:
        if samples.count or bucket.states.down_ms:   # nothing answered: a failure band
            _failure_column(lines, palette)
        else:   # a confirmed state but no probe in this bucket (a long interval)
            for line in lines:
                line.append(" ")
        return
    degraded = samples.degraded * 2 > samples.count
    style = palette.warning if degraded else palette.accent
    _bar(lines, average / top, style, palette.error if samples.down else None)
