"""Turning board data into short strings and styled text for cells."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import math
from math import isnan

from rich.style import Style
from rich.text import Text
from textual.color import Color, ColorParseError

from monitor.engine.state import State
from monitor.engine.stats import DEGRADED_CODE, DOWN_CODE

GLYPHS = {State.UP: "●", State.DEGRADED: "▲", State.DOWN: "✖", State.PENDING: "…",
          State.PAUSED: "‖"}
LABELS = {State.UP: "UP", State.DEGRADED: "DEGR", State.DOWN: "DOWN", State.PENDING: "PEND",
          State.PAUSED: "PAUS"}
BARS = "▁▂▃▄▅▆▇█"
FAILED_MARK = "×"
_STATE_VARIABLE = {State.UP: "success", State.DEGRADED: "warning", State.DOWN: "error",
                   State.PENDING: "secondary", State.PAUSED: "foreground"}


@dataclass(frozen=True)
class Palette:
    """Rich styles resolved from the current theme's variables (never literals)."""

    states: Mapping[State, Style]
    error: Style
    warning: Style
    muted: Style
    accent: Style

    @classmethod
    def from_variables(cls, variables: Mapping[str, str]) -> Palette:
        def style(name: str, **extra: bool) -> Style:
            try:
                return Style(color=Color.parse(variables[name]).rich_color, **extra)
            except (KeyError, ColorParseError):
                return Style(**extra)
        states = {state: style(var, bold=state is State.DOWN)
                  for state, var in _STATE_VARIABLE.items()}
        states = {**states, State.PAUSED: Style(dim=True)}
        return cls(states=states, error=style("error"), warning=style("warning"),
                   muted=Style(dim=True), accent=style("accent"))


def status_cell(state: State, palette: Palette) -> Text:
    return Text(f"{GLYPHS[state]} {LABELS[state]}", style=palette.states[state])


def latency(ms: float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1:
        return f"{ms:.2f}ms"
    if ms < 100:
        return f"{ms:.1f}ms"
    if ms < 10_000:
        return f"{ms:.0f}ms"
    return f"{ms / 1000:.1f}s"


def percent(value: float | None, digits: int = 1, *, round_up: bool = False) -> str:
    """`value` cut (not rounded) to `digits`: 99.96 % uptime is "99.9%", never
    "100.0%", which reads as no failure at all (and did not fit its column).
    `round_up` for losses: 0.4 % loss is "1%", never "0%". Either way "100%"
    only when it is."""
    if value is None:
        return "—"
    if value >= 100:
        return "100%"
    scale = 10 ** digits
    # the epsilon keeps a float like 99.9 (stored as 99.8999...) at 99.9
    steps = math.ceil(value * scale - 1e-9) if round_up else math.floor(value * scale + 1e-9)
    return f"{min(steps, 100 * scale - 1) / scale:.{digits}f}%"   # 100 only when it is


def age(seconds: float | None) -> str:
    """Time since, in at most four characters: 3s, 12m, 5h, 2d."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def sparkline(latencies: Sequence[float], codes: Sequence[int], width: int,
              palette: Palette) -> Text:
    """The last `width` samples (latency, NaN for none; status code as
    `SampleRing` keeps it) as bars scaled 0..max; failures are a visible mark
    in the error colour, never a silent zero."""
    latencies, codes = latencies[-width:], codes[-width:]
    top = max((v for v, c in zip(latencies, codes) if c != DOWN_CODE and not isnan(v)),
              default=0.0) or 1.0
    scale = (len(BARS) - 1) / top
    last_bar = len(BARS) - 1
    text = Text(" " * (width - len(latencies)))
    run: list[str] = []              # equal-styled bars go in as one span, not one each
    run_style: Style | None = None
    for value, code in zip(latencies, codes):
        if code == DOWN_CODE or isnan(value):   # NaN: nothing answered
            bar, style = FAILED_MARK, palette.error
        else:
            bar = BARS[min(last_bar, int(value * scale + 0.5))]
            style = palette.warning if code == DEGRADED_CODE else None
        if style is not run_style and run:
            text.append("".join(run), style=run_style)
            run = []
        run_style = style
        run.append(bar)
    if run:
        text.append("".join(run), style=run_style)
    return text


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"
