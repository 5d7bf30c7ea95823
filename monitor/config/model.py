"""The validated config: plain frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config.fields import (
    in_range, option, to_bool, to_duration, to_int, to_nonempty_str, to_str, to_str_list)

_positive = in_range(0.001)


@dataclass(frozen=True, kw_only=True)
class Settings:
    interval: float = option(30.0, convert=to_duration, check=_positive)
    timeout: float = option(5.0, convert=to_duration, check=_positive)
    # consecutive failures before DOWN / successes before UP again (flap control)
    failure_threshold: int = option(2, convert=to_int, check=in_range(1))
    success_threshold: int = option(1, convert=to_int, check=in_range(1))
    # probe again at once before declaring DOWN, so one lost packet is not an outage
    recheck: bool = option(True, convert=to_bool)
    recheck_delay: float = option(0.5, convert=to_duration)
    concurrency: int = option(256, convert=to_int, check=in_range(1, 100_000))
    history: int = option(1000, convert=to_int, check=in_range(10, 1_000_000))
    user_agent: str = option("monitor/0.1 (+uptime check)", convert=to_nonempty_str)


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    """The built-in loopback demo server, so the sample works offline."""

    enabled: bool = option(False, convert=to_bool)
    host: str = option("127.0.0.1", convert=to_nonempty_str)
    port: int = option(8917, convert=to_int, check=in_range(0, 65535))


@dataclass(frozen=True, kw_only=True)
class TargetCommon:
    """Keys every target accepts; None means "inherit from [settings]"."""

    name: str = option(convert=to_nonempty_str)
    kind: str = option(convert=to_nonempty_str)
    interval: float | None = option(None, convert=to_duration, check=_positive)
    timeout: float | None = option(None, convert=to_duration, check=_positive)
    failure_threshold: int | None = option(None, convert=to_int, check=in_range(1))
    success_threshold: int | None = option(None, convert=to_int, check=in_range(1))
    max_latency: float | None = option(None, convert=to_duration, check=_positive)
    group: str = option("", convert=to_str)
    tags: tuple[str, ...] = option((), convert=to_str_list)
    paused: bool = option(False, convert=to_bool)
    description: str = option("", convert=to_str)


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
    line: int = 0                # line of its [[targets]] header, for messages
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def display_target(self) -> str:
        from monitor.probes.registry import probe_class
        return probe_class(self.kind).describe(self.options)


@dataclass(frozen=True, kw_only=True)
class Config:
    path: Path | None
    settings: Settings
    demo: DemoSettings
    targets: tuple[Target, ...]

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)
