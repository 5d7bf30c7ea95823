"""The metrics sink: /metrics for Prometheus from the engine's process.

`host.sinks.add(MetricsSink(host))` in every long-running engine process
(`run --headless`, the dashboard's engine). It does nothing until
`[settings] metrics` names an address; then it keeps each target's figures
from the engine's events (on the loop, a few assignments per result) and
serves them from threads of its own (`server.py`), rendering on scrape
(`exposition.py`). The loop is asked one quick question per scrape, the
engine's own figures, and a scrape that finds it busy does not wait long.

An address it cannot listen on is said once and tried again every
RETRY_EVERY seconds (a restarted monitor whose old self still holds the
port gets it soon after); probing never depends on it. A reload follows
the config: new targets get series, removed ones lose theirs, a changed
group or location relabels, a new address moves the server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from monitor import __version__
from monitor.config.fields import parse_listen_address
from monitor.config.model import Config, Target
from monitor.engine.result import ProbeResult
from monitor.engine.sinks import ConfigRejected, ConfigReloaded, MonitorStarted, Sink
from monitor.engine.state import State, Transition
from monitor.export.exposition import label_text, render_phase_histogram, render_targets
from monitor.export.series import PhaseHistogram, SinceStart, TargetSeries, UptimeSource
from monitor.export.server import MetricsServer
from monitor.probes.text import shown

if TYPE_CHECKING:
    from collections.abc import Iterator

    from monitor.engine.host import EngineHost

RETRY_EVERY = 10.0      # seconds between tries at an address that was busy
ENGINE_ANSWER = 0.5     # seconds a scrape waits for the loop's figures


@dataclass(frozen=True, slots=True)
class EngineFigures:
    """The engine's own figures, read on its loop."""
    lag_s: float = 0.0
    behind_s: float = 0.0
    skips: int = 0
    probes: int = 0
    out_of_files: int = 0
    concurrency: int = 0


class MetricsSink(Sink):
    def __init__(self, host: EngineHost, *, uptime: UptimeSource | None = None,
                 retry_every: float = RETRY_EVERY) -> None:
        self._host = host
        self._uptime = uptime or SinceStart()
        self._retry_every = retry_every
        settings = host.config.settings
        self._address = settings.metrics
        self._location = settings.location
        self._records: dict[str, TargetSeries] = {}   # replaced whole, never changed in place
        self._phases = PhaseHistogram()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock_offset = 0.0    # loop time minus time.monotonic()
        self._server: MetricsServer | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._failing = False
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._figures = EngineFigures()
        self._started_at = time.time()
        self._reload_ok = (1, self._started_at)   # (successful, when it last was)
        self.render_seconds = 0.0                 # the last scrape's rendering
        self._render_lock = threading.Lock()
        self._registry = CollectorRegistry(auto_describe=False)
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=self._registry)
        self._registry.register(_EngineCollector(self))

    @property
    def url(self) -> str | None:
        """Where /metrics is served now, if anywhere."""
        return None if self._server is None else self._server.url

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    # --- the engine's events (on its loop) ---------------------------------

    def on_start(self, event: MonitorStarted) -> None:
        self._loop = asyncio.get_running_loop()
        self._clock_offset = self._loop.time() - time.monotonic()
        self._started_at = event.at.timestamp()
        self._reload_ok = (1, self._started_at)
        self._follow(self._host.config)
        self._serve()

    def on_result(self, result: ProbeResult) -> None:
        series = self._records.get(result.name)
        if series is not None:
            series.observe(result)
            self._phases.observe(result)

    def on_transition(self, transition: Transition) -> None:
        series = self._records.get(transition.name)
        if series is not None:   # (a target a reload is adding arrives in on_reload)
            series.move(transition)

    def on_reload(self, event: ConfigReloaded) -> None:
        config: Config = self._host.config   # the host applied it before telling us
        self._follow(config, set(event.changed), set(event.added))
        self._reload_ok = (1, time.time())
        if config.settings.metrics != self._address:
            self._move_server(config.settings.metrics)

    def on_config_rejected(self, event: ConfigRejected) -> None:
        self._reload_ok = (0, self._reload_ok[1])

    async def aclose(self) -> None:
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.close)

    def _follow(self, config: Config, changed: set[str] | None = None,
                added: set[str] | None = None) -> None:
        """Series for exactly the config's targets: new ones start from the
        engine's state for them, removed ones go, relabelled ones keep
        their figures. Nothing is kept while the export is off. Labels are
        made again only for the targets a reload added or changed (or all
        when the location moved): 10,000 of them cost the loop ~50 ms."""
        relabel_all = changed is None or config.settings.location != self._location
        changed = changed or set()
        self._location = config.settings.location
        if not config.settings.metrics:
            self._records = {}
            return
        views = self._host.engine.views   # empty at start: the engine adds targets after us
        old, records = self._records, {}
        loop_now, wall_now = self._now(), time.time()
        for target in config.targets:
            name = target.name
            series = old.get(name)
            if series is None:
                view = views.get(name)
                state = (view.state if view is not None
                         else State.PAUSED if target.paused else State.PENDING)
                series = TargetSeries(name, target.kind, self._labels(target), state,
                                      loop_now, wall_now, config.settings.history)
            elif relabel_all or name in changed or (added is not None and name in added):
                series.redefine(target.kind, self._labels(target), name in changed)
            records[name] = series
        self._records = records   # removed targets' series go with the old dict

    # --- serving -------------------------------------------------------------

    def exposition(self) -> list[bytes]:
        """The /metrics body in parts (each family apart: see render_targets).
        Runs in the server's threads."""
        figures = self._engine_figures()
        with self._render_lock:   # two scrapes at once share the cached text in turn
            began = time.perf_counter()
            self._figures = figures
            parts = [generate_latest(self._registry)]
            records = list(self._records.values())
            now = time.monotonic() + self._clock_offset
            parts += [text.encode() for text in render_targets(records, self._uptime, now)]
            parts.append(render_phase_histogram(self._phases, self._common_labels()).encode())
            self.render_seconds = time.perf_counter() - began
        return parts

    def _serve(self) -> None:
        """Listen on the configured address, or try again later."""
        self._retry = None
        address = self._address
        if not address or self._closed or self._server is not None:
            return
        host, port = parse_listen_address(address)
        try:
            server = MetricsServer(host, port, self.exposition)
        except OSError as exc:
            if not self._failing:
                self._failing = True
                self._notice(f"cannot serve /metrics on {address}: {exc.strerror or exc}; "
                             f"trying again every {self._retry_every:g}s")
            assert self._loop is not None
            self._retry = self._loop.call_later(self._retry_every, self._serve)
            return
        server.start()
        self._server, self._failing = server, False
        beyond = "" if ipaddress.ip_address(host).is_loopback else (
            " (reachable from other machines, without authentication: limit who can "
            "connect with a firewall)")
        self._notice(f"serving {server.url}{beyond}")

    def _move_server(self, address: str) -> None:
        self._address = address
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        old, self._server, self._failing = self._server, None, False

        async def swap() -> None:
            if old is not None:
                await asyncio.to_thread(old.close)
            if not address:
                self._notice("/metrics is off now")
            self._serve()
        task = asyncio.get_running_loop().create_task(swap())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _engine_figures(self) -> EngineFigures:
        """Ask the loop (the engine's figures are not for other threads);
        a loop that does not answer in time is itself the news: its lag is
        at least the wait."""
        loop = self._loop
        if loop is None:
            return self._figures
        answer: concurrent.futures.Future[EngineFigures] = concurrent.futures.Future()

        def read() -> None:
            try:
                answer.set_result(self._read_engine())
            except Exception as exc:   # noqa: BLE001 (handed to the scrape)
                answer.set_exception(exc)
        try:
            loop.call_soon_threadsafe(read)
            return answer.result(timeout=ENGINE_ANSWER)
        except concurrent.futures.TimeoutError:
            return replace(self._figures, lag_s=max(self._figures.lag_s, ENGINE_ANSWER))
        except RuntimeError:   # the loop has closed: the monitor is stopping
            return self._figures

    def _read_engine(self) -> EngineFigures:
        engine = self._host.engine
        return EngineFigures(engine.lag_ms() / 1000.0, engine.behind_s(), engine.skips(),
                             engine.probes_total, engine.out_of_files, engine.concurrency)

    # --- helpers -------------------------------------------------------------

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    def _notice(self, text: str) -> None:
        self._host.sinks.on_notice(f"metrics: {text}")

    def _labels(self, target: Target) -> str:
        secrets = self._host.config.secrets
        return label_text((("target", shown(target.name, secrets)), ("kind", target.kind),
                           ("group", shown(target.group, secrets)),
                           ("location", self._location)))

    def _common_labels(self) -> str:
        return label_text((("location", self._location),))

    def families(self) -> Iterator[Metric]:
        """The engine's and the export's own series, through prometheus-client."""
        figures, records = self._figures, list(self._records.values())
        names = ["location"] if self._location else []
        values = [self._location] if self._location else []

        def gauge(name: str, doc: str, value: float, extra: dict[str, str] | None = None) -> Metric:
            extra = extra or {}
            family = GaugeMetricFamily(name, doc, labels=names + list(extra))
            family.add_metric(values + list(extra.values()), value)
            return family

        def counter(name: str, doc: str, value: float) -> Metric:
            family = CounterMetricFamily(name, doc, labels=names)
            family.add_metric(values, value)
            return family

        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        yield gauge("monitor_build_info", "The monitor's version; always 1.", 1,
                    {"version": __version__, "python": version})
        yield gauge("monitor_start_time_seconds", "When the engine started, Unix seconds.",
                    self._started_at)
        yield gauge("monitor_engine_lag_seconds",
                    "How late the loop woke targets lately, worst of the recent ones.",
                    figures.lag_s)
        yield gauge("monitor_engine_behind_seconds",
                    "How late starts were against the schedule lately (95th percentile).",
                    figures.behind_s)
        yield counter("monitor_engine_skips", "Scheduled probes skipped (the monitor was "
                      "behind, or a probe overran its interval).", figures.skips)
        yield counter("monitor_engine_probes", "Probes completed by the engine.", figures.probes)
        yield counter("monitor_engine_out_of_files", "Probes that found no free file "
                      "descriptor (retried, not counted as down).", figures.out_of_files)
        yield gauge("monitor_engine_concurrency", "Probes allowed in flight at once.",
                    figures.concurrency)
        by_state = {state: 0 for state in State}
        for series in records:
            by_state[series.state] += 1
        family = GaugeMetricFamily("monitor_targets", "Targets by confirmed state.",
                                   labels=names + ["state"])
        for state, count in by_state.items():
            family.add_metric(values + [str(state)], count)
        yield family
        successful, when = self._reload_ok
        yield gauge("monitor_config_last_reload_successful",
                    "Whether the last config reload was applied (0: rejected, the last good "
                    "config runs).", successful)
        yield gauge("monitor_config_last_reload_success_timestamp_seconds",
                    "When a config was last applied, Unix seconds.", when)
        yield gauge("monitor_metrics_render_seconds",
                    "Time the previous scrape took to render /metrics.", self.render_seconds)


class _EngineCollector:
    def __init__(self, sink: MetricsSink) -> None:
        self._sink = sink

    def collect(self) -> Iterator[Metric]:
        return self._sink.families()
