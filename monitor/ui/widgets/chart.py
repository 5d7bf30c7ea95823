"""A latency chart for the detail screen: one column per sample, eight
levels per row, failures marked in the error colour over the whole height."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from monitor.engine.result import Status
from monitor.engine.stats import Sample
from monitor.ui import format as fmt

_EIGHTHS = " ▁▂▃▄▅▆▇█"
AXIS = 8   # width of the y-axis labels
FAILED_FILL = "░"   # above a failure's mark: the column is a failure, not a short bar


class LatencyChart(Widget):
    DEFAULT_CSS = """
    LatencyChart { height: 10; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.samples: Sequence[Sample] = ()
        self.palette: fmt.Palette | None = None

    def show(self, samples: Sequence[Sample], palette: fmt.Palette) -> None:
        self.samples, self.palette = samples, palette
        self.refresh()

    def render(self) -> RenderableType:
        palette = self.palette
        width = max(1, self.size.width - AXIS)
        height = max(2, self.size.height - 1)
        recent = list(self.samples)[-width:]
        if palette is None or not recent:
            return Text("no samples yet", style="dim")
        values = [s.latency_ms for s in recent if s.latency_ms is not None
                  and s.status is not Status.DOWN]
        top = max(values, default=1.0) or 1.0
        lines = [Text() for _ in range(height)]
        for row in range(height):
            # a latency scale only when something answered: with nothing to
            # measure, "1.0ms" over a row of failures read as a measurement
            label = fmt.latency(top * (height - row) / height) \
                if values and row in (0, height // 2) else ""
            lines[row].append(f"{label:>{AXIS - 1}} ", style=palette.muted)
        for sample in recent:
            failed = sample.status is Status.DOWN or sample.latency_ms is None
            if failed:   # the whole column, so an outage shows as a band
                for row in range(height):
                    lines[row].append(fmt.FAILED_MARK if row == height - 1 else FAILED_FILL,
                                      style=palette.error)
                continue
            eighths = max(1, round(sample.latency_ms / top * height * 8))
            style = palette.warning if sample.status is Status.DEGRADED else palette.accent
            for row in range(height):
                level_below = (height - 1 - row) * 8
                lines[row].append(_EIGHTHS[min(8, max(0, eighths - level_below))], style=style)
        count = f"{len(recent)} sample{'' if len(recent) == 1 else 's'}"
        if not values:
            count += ", none answered"
        axis = Text(" " * AXIS) + Text(f"{count}, oldest left; {fmt.FAILED_MARK} = failed",
                                       style=palette.muted)
        return Text("\n").join([*lines, axis])
