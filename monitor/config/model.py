"""The validated config: plain frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from monitor.config.alerting import AlertChannel
from monitor.config.durations import MAX_DURATION
from monitor.config.fields import (
    duration_in, in_range, one_of, option, to_bool, to_duration, to_history_db, to_int,
    to_label, to_labels, to_name, to_nonempty_str, to_retention, to_str)
from monitor.config.maintenance import Maintenance
from monitor.config.fields import to_listen_address

# At least a millisecond: 0 would probe in a busy loop. A week is the longest
# interval that still watches uptime; timeouts are bounded by the interval.
_interval = duration_in(0.001, 7 * 86400.0)
_positive = duration_in(0.001, MAX_DURATION)
# A threshold of a billion would mean "never DOWN", as recheck_delay = inf did
_threshold = in_range(1, 1000)


@dataclass(frozen=True, kw_only=True)
class Settings:
    interval: float = option(30.0, convert=to_duration, check=_interval,
                             doc="how often each target is probed, start to start")
    timeout: float = option(5.0, convert=to_duration, check=_positive,
                            doc="hard limit per probe")
    # consecutive failures before DOWN / successes before UP again (flap control)
    failure_threshold: int = option(2, convert=to_int, check=_threshold,
                                    doc="consecutive failures before DOWN")
    success_threshold: int = option(1, convert=to_int, check=_threshold,
                                    doc="consecutive successes before UP again")
    # probe again at once before declaring DOWN, so one lost packet is not an outage
    recheck: bool = option(True, convert=to_bool,
                           doc="confirm a failure at once, not an interval later")
    # a recheck confirms a failure "at once": minutes later is the next interval's job
    recheck_delay: float = option(0.5, convert=to_duration, check=duration_in(0, 300),
                                  doc="pause before that recheck")
    # None: every [[alerts]] channel, so a config with one channel alerts as written
    alerts: tuple[str, ...] | None = option(None, convert=to_labels,
                                            doc="channels of targets that name none (default all)")
    maintenance_uptime: str = option("exclude", convert=one_of("exclude", "include"),
                                     doc="time in maintenance windows: left out of uptime "
                                         "(as Uptime Kuma does) or counted")
    concurrency: int = option(256, convert=to_int, check=in_range(1, 100_000),
                              doc="probes in flight at once, all targets")
    history: int = option(1000, convert=to_int, check=in_range(10, 1_000_000),
                          doc="samples kept per target for statistics")
    user_agent: str = option("monitor/0.1 (+uptime check)", convert=to_nonempty_str,
                             doc="User-Agent of HTTP probes")
    # Where results, state changes and the monitor's own running spans are kept
    # across restarts (monitor/store/). Retention per level: raw samples for
    # exports and short charts, per-minute and per-hour rollups for long ones.
    history_db: str = option("", convert=to_history_db,
                             doc="history database: a path (relative to this file), "
                                 "\"off\", \":memory:\"; default: one per config file "
                                 "in the user data dir")
    history_keep_raw: float = option(7 * 86400.0, convert=to_retention,
                                     check=duration_in(3600.0, 400 * 86400.0),
                                     doc="keep every result this long")
    history_keep_minutes: float = option(2 * 86400.0, convert=to_retention,
                                         check=duration_in(3600.0, 400 * 86400.0),
                                         doc="keep per-minute aggregates this long")
    history_keep_hours: float = option(400 * 86400.0, convert=to_retention,
                                       check=duration_in(86400.0, 3650 * 86400.0),
                                       doc="keep per-hour aggregates, state changes and "
                                           "running spans this long")
    # Prometheus /metrics from the engine process (monitor/export/): off unless
    # asked for, and only on loopback unless an address says otherwise
    metrics: str = option("", convert=to_listen_address,
                          doc='serve Prometheus /metrics on this address, e.g. "127.0.0.1:9115"')
    location: str = option("", convert=to_label,
                           doc="where this monitor probes from: a label on every metric")


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    """The built-in loopback demo server, so the sample works offline."""

    enabled: bool = option(False, convert=to_bool,
                           doc="serve the loopback demo targets")
    host: str = option("127.0.0.1", convert=to_nonempty_str,
                       doc="demo server address")
    port: int = option(8917, convert=to_int, check=in_range(0, 65535),
                       doc="demo server port")


@dataclass(frozen=True, kw_only=True)
class TargetCommon:
    """Keys every target accepts; None means "inherit from [settings]"."""

    name: str = option(convert=to_name, doc="unique name")
    kind: str = option(convert=to_nonempty_str, doc="probe kind: http, tcp, dns, icmp, tls")
    interval: float | None = option(None, convert=to_duration, check=_interval,
                                    doc="probe every (start to start); default [settings]")
    timeout: float | None = option(None, convert=to_duration, check=_positive,
                                   doc="hard limit per probe; default [settings]")
    failure_threshold: int | None = option(None, convert=to_int, check=_threshold,
                                           doc="consecutive failures before DOWN")
    success_threshold: int | None = option(None, convert=to_int, check=_threshold,
                                           doc="consecutive successes before UP again")
    max_latency: float | None = option(None, convert=to_duration, check=_positive,
                                       doc="slower than this = DEGRADED")
    group: str = option("", convert=to_label, doc="group shown in the dashboard")
    tags: tuple[str, ...] = option((), convert=to_labels, doc="free-form labels to filter by")
    paused: bool = option(False, convert=to_bool, doc="start paused (not probed)")
    description: str = option("", convert=to_str, doc="a note for humans")
    alerts: tuple[str, ...] | None = option(None, convert=to_labels,
                                            doc="alert channels; default [settings] alerts; [] none")
    depends_on: tuple[str, ...] = option((), convert=to_labels,
                                         doc="targets it is reached through: no alert while one is down")


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    kind: str
    options: Any                 # the probe kind's Options dataclass
    interval: float
    timeout: float
    failure_threshold: int
    success_threshold: int
    max_latency: float | None = None   # slower than this = DEGRADED
    group: str = ""
    tags: tuple[str, ...] = ()
    paused: bool = False
    description: str = ""
    # who hears about it: not what is probed, so an edit does not restart it
    alerts: tuple[str, ...] | None = field(default=None, compare=False)
    depends_on: tuple[str, ...] = field(default=(), compare=False)
    # line of its [[targets]] header, for messages; not part of what the target
    # is (a block added above it moves it, and that must not restart it on reload)
    line: int = field(default=0, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # value -> name of the ${VAR}s the config substituted: never shown by value
    secrets: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def display_target(self) -> str:
        """URL or host[:port] as shown everywhere: no password, no ${VAR} value."""
        from monitor.probes.registry import probe_class
        from monitor.probes.text import redact_secrets
        return redact_secrets(probe_class(self.kind).describe(self.options), self.secrets)


@dataclass(frozen=True, kw_only=True)
class Config:
    path: Path | None
    settings: Settings
    demo: DemoSettings
    targets: tuple[Target, ...]
    keys: dict[str, str] = field(default_factory=dict)   # binding id -> keys
    alerts: tuple[AlertChannel, ...] = ()
    maintenance: tuple[Maintenance, ...] = ()
    secrets: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # the text it was read from (decoded, newlines made \n): what is running,
    # for the screen that shows a target's block and for a reload's receivers
    source: str = field(default="", compare=False, repr=False)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)
