"""Enter on a row: one target in depth."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from monitor.config.durations import format_duration
from monitor.engine.board import TargetView
from monitor.probes.base import PHASES
from monitor.probes.text import printable, redact_url
from monitor.ui import format as fmt
from monitor.store.uptime import Outage
from monitor.store.views import RANGES, utc
from monitor.ui.alerts_view import mark_text
from monitor.ui.details import CERT_DETAILS, detail_rows
from monitor.ui.history import UPTIME_EVERY, TargetHistory, read_target
from monitor.ui.widgets.chart import RANGE_KEYS, LatencyChart
from monitor.ui.widgets.selection import reason_text
from monitor.ui.widgets.footer import SteadyFooter
from monitor.ui.widgets.grid import Grid


class DetailScreen(Screen[None]):
    """Built once and kept (`show_target` for the next visit): composing and
    styling its widgets anew cost ~50 ms of every Enter at 10,000 targets."""

    BINDINGS = [
        Binding("escape,backspace,q", "app.pop_screen", "Back", id="back"),
        Binding("r", "probe_now", "Probe", id="detail_probe_now"),
        Binding("p", "pause", "Pause", id="detail_pause"),
        *(Binding(str(number), f"chart_range('{key}')", key, show=False,
                  id=f"detail_range_{key}") for number, key in enumerate(RANGE_KEYS, 1)),
        Binding("left_square_bracket", "step_range(-1)", "Shorter", show=False, id="range_back"),
        Binding("right_square_bracket", "step_range(1)", "Range", id="range_next"),
    ]
    DEFAULT_CSS = """
    DetailScreen { layout: vertical; }
    #title { height: 1; background: $panel; padding: 0 1; }
    #reason { height: auto; padding: 0 1; }
    #chart { height: 10; margin: 1 1 0 1; }
    DetailScreen Horizontal { height: auto; }
    .box { width: 1fr; height: auto; border: round $panel; border-title-color: $primary;
           padding: 0 1; margin: 0 1; }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.target_name = name
        self._composed = False   # set in on_mount, once the boxes exist
        self._drawn = False
        self._config_lines: list[str] | None = None   # the running config's lines
        self._config_source: str | None = None
        self._disk_stamp: tuple[int, int] | None = None
        self._disk_text: str | None = None
        self.history: TargetHistory | None = None   # as last read (for this target)
        self._reading: asyncio.Future[TargetHistory] | None = None
        self._read_again = False

    def compose(self) -> ComposeResult:
        # Kept as attributes: the app's refresh cycle updates them several times
        # a second, also while the screen is being taken apart at exit.
        self.title_line = Static(id="title")
        self.reason_line = Static(id="reason")
        self.chart = LatencyChart(id="chart")
        self.boxes = {key: Static(id=key, classes="box")
                      for key in ("stats", "phases", "windows", "incidents", "cert", "events",
                                  "config")}
        self.scroller = VerticalScroll()
        yield self.title_line
        yield self.reason_line
        yield self.chart
        with self.scroller:
            with Horizontal(id="columns"):
                yield self.boxes["stats"]
                yield self.boxes["phases"]
            with Horizontal(id="columns-history"):
                yield self.boxes["windows"]
                yield self.boxes["incidents"]
            with Horizontal(id="columns2"):
                yield self.boxes["cert"]
                yield self.boxes["events"]
            yield self.boxes["config"]
        yield SteadyFooter(compact=True, show_command_palette=False)

    def on_resize(self, event: events.Resize) -> None:
        self._fit(event.size.height)

    def _fit(self, height: int) -> None:
        self.chart.styles.height = 6 if height < 30 else 12
        series = self.chart.series
        if self.chart.range != "live" and series is not None \
                and len(series.buckets) < self.app.size.width - 12:
            self.read_history()   # wider now: a column per bucket again

    def on_mount(self) -> None:
        self._composed = True
        self._fit(self.app.size.height)
        for box, title in (("stats", "Statistics"), ("phases", "Phases"),
                           ("windows", "Uptime from history"), ("incidents", "Incidents"),
                           ("cert", "Certificate / details"), ("events", "Recent events"),
                           ("config", "Config")):
            self.boxes[box].border_title = title
        self.refresh_from_board({self.target_name})
        self.boxes["config"].update(self._config_text())
        self._show_history()
        self.read_history()
        self.set_interval(UPTIME_EVERY, self._read_while_shown)

    def show_target(self, name: str) -> None:
        """The next visit: another target (or the same), drawn in full."""
        self.target_name = name
        self._drawn = False
        if self._composed:
            self.scroller.scroll_home(animate=False, immediate=True)
            self.history = None
            self.refresh_from_board({name})
            self.boxes["config"].update(self._config_text())
            self._show_history()
            # after this visit's first frame: the read's thread holds the GIL
            # for much of its work, and the frame would wait on it
            self.call_after_refresh(self.read_history)

    @property
    def view(self) -> TargetView | None:
        return self.app.board.views.get(self.target_name)  # type: ignore[attr-defined]

    def refresh_from_board(self, touched: set[str]) -> None:
        # the app's refresh cycle may call before compose is done or during shutdown
        if not self._composed or not self.is_attached:
            return
        view = self.view
        if view is None:   # a reload removed it: the one place that says so
            self.app.pop_screen()
            self.app.notify(f"{self.target_name} was removed from the config", timeout=4,
                            markup=False)
            return
        palette: fmt.Palette = self.app.palette  # type: ignore[attr-defined]
        now = self.app.clock()  # type: ignore[attr-defined]
        shown = view.last.target if view.last else ""
        since = format_duration(round(max(0.0, now - view.since))) if now - view.since >= 1 else "0s"
        state, lasting = fmt.status_cell(view.state, palette), f"{view.state.value} for {since}"
        stale = self.app.watch.stale_note()  # type: ignore[attr-defined]
        if stale is not None:   # the engine is not measuring: no state to claim
            state, lasting = Text("STALE", style=palette.warning), stale
        title = Text.assemble(state, "  ", (view.target.name, "bold"), "  ",
                              (f"{view.target.kind} {shown}  {lasting}", palette.muted))
        self.title_line.update(title)
        # the whole reason under the title (in the phases box it wrapped into a column)
        mark = self.app.marks.get(self.target_name)  # type: ignore[attr-defined]
        self.reason_line.update(mark_text(mark, palette) + reason_text(view, now, palette))
        if self.target_name not in touched and self._drawn:
            return
        self._drawn = True
        self.chart.show(list(view.stats.samples), palette)
        self.boxes["stats"].update(self._stats(view, now))
        self.boxes["phases"].update(self._phases(view))
        self.boxes["cert"].update(self._cert(view, palette))
        self.boxes["events"].update(self._events(view, palette))

    def _stats(self, view: TargetView, now: float) -> Grid:
        s = view.stats.summary(now)
        grid = Grid(("dim", "left"), ("", "right"))
        rows = [("last", fmt.latency(s.last_ms)), ("min", fmt.latency(s.min_ms)),
                ("avg", fmt.latency(s.avg_ms)), ("p50", fmt.latency(s.p50_ms)),
                ("p95", fmt.latency(s.p95_ms)), ("max", fmt.latency(s.max_ms)),
                ("jitter", fmt.latency(s.jitter_ms)), ("loss", fmt.percent(s.loss_pct, round_up=True)),
                ("uptime", fmt.percent(s.uptime_pct, 2)),
                ("checks", f"{s.checks} ({s.failures} failed)")]
        for label, value in rows:
            grid.add_row(label, value)
        return grid

    def _phases(self, view: TargetView) -> Grid:
        last = view.last.phases_ms if view.last else {}
        average = view.phase_averages()
        grid = Grid(("dim", "left"), ("", "right"), ("", "right"))
        grid.add_row("phase", "last", "avg")
        for phase in PHASES:
            if phase in last or phase in average:
                grid.add_row(phase, fmt.latency(last.get(phase)), fmt.latency(average.get(phase)))
        if not last and not average:
            grid.add_row("(no phases yet)", "", "")
        return grid

    def _cert(self, view: TargetView, palette: fmt.Palette) -> Text | Grid:
        last = view.last
        if last is None:
            return Text("nothing measured yet", style=palette.muted)
        grid = Grid(("dim", "left"), ("", "left"))
        details = dict(last.details or {})
        cert = last.cert
        if cert is not None:
            days = last.cert_days_left
            grid.add_row("subject", cert.subject)
            grid.add_row("issuer", cert.issuer)
            grid.add_row("expires", f"{cert.expires_at:%Y-%m-%d %H:%M} UTC ({days:.1f} days)"
                         if days is not None else str(cert.expires_at))
            grid.add_row("earliest", cert.earliest)
            if cert.hostname_match is not None:
                grid.add_row("host name", "matches" if cert.hostname_match else "MISMATCH")
            grid.add_row("chain", f"{cert.chain_length} certificates")
            for said in CERT_DETAILS:   # the certificate's own facts, said above
                details.pop(said, None)
        for label, value in detail_rows(details):
            grid.add_row(label, value)
        if not grid.rows:
            return Text("no certificate, and no details in the last result", style=palette.muted)
        return grid

    def _events(self, view: TargetView, palette: fmt.Palette) -> Text:
        if not view.events:
            return Text("no state changes yet", style=palette.muted)
        lines = Text()
        for t in list(view.events)[-8:]:
            lines.append(f"{t.at.astimezone():%H:%M:%S} ")
            lines.append(f"{t.from_state.value} → {t.to_state.value}",
                         style=palette.states[t.to_state])
            if t.reason:
                lines.append(f"  {fmt.shorten(t.reason, 60)}")
            lines.append("\n")
        return lines

    def _config_text(self) -> Text:
        """The target's block as the engine runs it (comments kept, ${SECRETS}
        unexpanded), and whether the file on disk says something else now."""
        view = self.view
        config = self.app.config  # type: ignore[attr-defined]
        if view is None:
            return Text("")
        if self._config_lines is None or self._config_source is not config.source:
            self._config_source = config.source   # a reload brings another text
            self._config_lines = config.source.splitlines()
        lines = self._config_lines
        start = max(0, view.target.line - 1)
        block = [lines[start]] if start < len(lines) else []
        for line in lines[start + 1:]:
            if line.lstrip().startswith("["):
                break
            block.append(line)
        while block and not block[-1].strip():
            block.pop()
        shown = "\n".join(printable(_hide_password(line)) for line in block)
        where = f"{config.path.name}:{view.target.line}" if config.path else "config"
        text = Text(f"# running, from {where}\n", style="dim")
        text.append(shown)
        note = self._disk_note(config)
        if note:
            text.append(f"\n{note}", style="bold")
        return text

    def _disk_note(self, config: object) -> str | None:
        """Whether the file on disk differs from the running config: a save
        not applied yet, or one that does not validate. A stat, and a read
        only when the file changed since the last look (10,000 targets are a
        60,000-line file)."""
        path = getattr(config, "path", None)
        if path is None:
            return None
        try:
            status = path.stat()
            stamp = (status.st_mtime_ns, status.st_size)
            if stamp != self._disk_stamp:
                self._disk_stamp = stamp
                raw = path.read_bytes().decode("utf-8", "replace").removeprefix("\ufeff")
                self._disk_text = raw.replace("\r\n", "\n").replace("\r", "\n")
        except OSError as exc:
            return f"# the file cannot be read now: {exc.strerror or exc}"
        running = getattr(config, "source", "")
        if self._disk_text == running:
            return None
        # the file changed: this target's block, or only others'? (both texts
        # are split only now, when they differ: 10,000 blocks take a while)
        from monitor.config.edit import EditError, target_block
        try:
            ours = target_block(running, self.target_name).source
        except EditError:
            ours = None
        try:
            on_disk: str | None = target_block(self._disk_text or "", self.target_name).source
        except EditError:
            on_disk = None
        if ours is not None and on_disk == ours:
            return None
        broken = self.app.config_banner.has_class("shown")  # type: ignore[attr-defined]
        what = ("this target is not in the file on disk any more" if on_disk is None
                else "this target's block differs in the file on disk")
        return (f"# {what}: the file has problems (see the banner above)" if broken
                else f"# {what}: saved since, not applied yet")

    # --- history: uptime windows, incidents and the chart's range -------------------------

    def action_chart_range(self, range_: str) -> None:
        if range_ == self.chart.range:
            return
        palette: fmt.Palette = self.app.palette  # type: ignore[attr-defined]
        self.chart.show_range(range_, None, None, palette)
        if range_ == "live":
            view = self.view
            self.chart.show(list(view.stats.samples) if view else [], palette)
        self.read_history()

    def action_step_range(self, step: int) -> None:
        index = RANGE_KEYS.index(self.chart.range) + step
        self.action_chart_range(RANGE_KEYS[max(0, min(len(RANGE_KEYS) - 1, index))])

    def _read_while_shown(self) -> None:
        if self.app.screen is self:
            self.read_history()

    def read_history(self) -> None:
        """Read this target's history in a thread (never on the UI's loop: it
        takes a while at 30 days), one read at a time; a request while one
        runs reads again after it, for whatever is wanted then."""
        if self._reading is not None:
            self._read_again = True
            return
        self._read_again = False
        range_ = None if self.chart.range == "live" else self.chart.range
        config = self.app.config  # type: ignore[attr-defined]
        self._reading = asyncio.ensure_future(asyncio.to_thread(
            read_target, config, self.target_name, range_, self.chart.columns))
        self._reading.add_done_callback(self._history_read)

    def _history_read(self, future: asyncio.Future[TargetHistory]) -> None:
        self._reading = None
        if future.cancelled() or not self.is_attached:
            return
        error = future.exception()
        got = future.result() if error is None else TargetHistory(
            self.target_name, None, error=f"{type(error).__name__}: {error}")
        if self._read_again:
            self.read_history()
        if got.name != self.target_name:
            return   # another target is shown now
        self.history = got
        self._show_history()

    def _show_history(self) -> None:
        palette: fmt.Palette = self.app.palette  # type: ignore[attr-defined]
        got = self.history
        self.boxes["windows"].update(_windows_text(got, palette))
        self.boxes["incidents"].update(_incidents_text(got, palette))
        self.boxes["incidents"].border_title = (
            f"Incidents, last {got.incidents_over if got else '24h'}")
        range_ = self.chart.range
        if range_ == "live":
            return
        if got is not None and got.range == range_ and got.series is not None:
            self.chart.show_range(range_, got.series, None, palette)
        elif got is not None and (got.off or got.error):
            self.chart.show_range(range_, None, _no_history(got), palette)

    def action_probe_now(self) -> None:
        self.app.action_probe_now(self.target_name)  # type: ignore[attr-defined]

    def action_pause(self) -> None:
        self.app.action_pause(self.target_name)  # type: ignore[attr-defined]


def _no_history(got: TargetHistory) -> str:
    if got.error:
        return f"history cannot be read: {got.error}"
    return "no history: it is off ([settings] history_db) or not written yet"


_WINDOW_NAMES = {seconds: name for name, seconds in RANGES.items()}


def _windows_text(got: TargetHistory | None, palette: fmt.Palette) -> Text | Grid:
    if got is None:
        return Text("reading history…", style=palette.muted)
    if got.off or got.error:
        return Text(_no_history(got), style=palette.warning if got.error else palette.muted)
    grid = Grid(("dim", "left"), ("", "right"), ("", "right"), ("", "right"))
    grid.add_row("window", "uptime", "data", "incidents")
    for window in got.windows:
        uptime, coverage = window.uptime_pct, window.coverage_pct
        style = None if uptime is None or uptime >= 100 else \
            palette.error if uptime < 99 else palette.warning
        if 0 < coverage < 1 and style is None:   # a window barely begun: little stands behind "100%"
            style = palette.muted
        grid.add_row(_WINDOW_NAMES.get(window.window, format_duration(round(window.window))),
                     Text(fmt.percent(uptime, 2), style=style or ""),
                     _coverage_text(coverage),
                     str(window.incidents))
    if not got.windows:
        grid.add_row("(nothing recorded for this target yet)", "", "", "")
    return grid


def _coverage_text(coverage: float) -> str:
    """Cut like uptime (99.99 % is not "all of it"), and "<1%" where a cut
    would say "0%" beside an uptime figure that some data does stand on."""
    return "<1%" if 0 < coverage < 1 else fmt.percent(coverage, 0)


def _incidents_text(got: TargetHistory | None, palette: fmt.Palette) -> Text:
    if got is None or got.off or got.error:
        return Text("")
    if not got.incidents:
        return Text(f"no outages in the last {got.incidents_over}", style=palette.muted)
    lines = Text()
    for outage in got.incidents:
        lines.append_text(_incident_line(outage, palette))
        lines.append("\n")
    hidden = got.incident_count - len(got.incidents)
    if hidden > 0:
        lines.append(f"… and {hidden} earlier (monitor report --since {got.incidents_over})",
                     style=palette.muted)
    return lines


def _incident_line(outage: Outage, palette: fmt.Palette) -> Text:
    """start – end (or "ongoing"), duration, how it ended, why it began."""
    start = utc(outage.start / 1000).astimezone()
    line = Text(_when(start), style=palette.error)
    if outage.ended == "ongoing":
        line.append(" – ongoing", style=palette.error)
    else:
        end = utc(outage.end / 1000).astimezone()
        line.append(f" – {_when(end, start)}")
    line.append(f"  {format_duration(max(1, round(outage.duration_ms / 1000)))}")
    if outage.ended not in ("recovered", "ongoing"):
        line.append(f" ({outage.ended})", style=palette.muted)
    if outage.reason:
        line.append(f"  {fmt.shorten(outage.reason, 60)}", style=palette.muted)
    return line


def _when(moment: datetime, since: datetime | None = None) -> str:
    """Local time; an end on its start's day without the date."""
    if since is not None and moment.date() == since.date():
        return f"{moment:%H:%M:%S}"
    return f"{moment:%Y-%m-%d %H:%M:%S}"


# `password = "literal"` (a ${VAR} shows only its name already)
_PASSWORD_VALUE = re.compile(r'^(\s*password\s*=\s*)(["\'])(?!\$\{)(.*)\2')


def _hide_password(line: str) -> str:
    """A config line as it may be shown: URL passwords and literal
    `password` values replaced by ***."""
    return _PASSWORD_VALUE.sub(r"\1\2***\2", redact_url(line))
