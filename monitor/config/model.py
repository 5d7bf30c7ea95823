"""The validated config: plain frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from monitor.config.durations import MAX_DURATION
from monitor.config.fields import (
    duration_in, in_range, option, to_bool, to_duration, to_int, to_label, to_labels, to_name,
    to_nonempty_str, to_str)
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
    concurrency: int = option(256, convert=to_int, check=in_range(1, 100_000),
                              doc="probes in flight at once, all targets")
    history: int = option(1000, convert=to_int, check=in_range(10, 1_000_000),
                          doc="samples kept per target for statistics")
    user_agent: str = option("monitor/0.1 (+uptime check)", convert=to_nonempty_str,
                             doc="User-Agent of HTTP probes")
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
    secrets: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    # the text it was read from (decoded, newlines made \n): what is running,
    # for the screen that shows a target's block and for a reload's receivers
    source: str = field(default="", compare=False, repr=False)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)
