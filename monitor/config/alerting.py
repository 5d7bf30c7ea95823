"""`[[alerts]]` channels, `[[maintenance]]` windows and the target keys that
route to them (`alerts`, `depends_on`): their schema and their checks.

Read with the rest of the config by `load.py`, every problem reported as
`FILE:LINE: key: problem`. Only plain data lives here; sending and the
maintenance calendar's maths live in `monitor.alerts`, which reads these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from monitor.config.fields import (
    build_options, did_you_mean, duration_in, in_range, option, option_names, to_duration,
    to_float, to_int, to_name, to_nonempty_str, to_str_list, to_str_map)
from monitor.probes.text import redact_secrets

if TYPE_CHECKING:
    from monitor.config.model import Settings, Target

Report = Callable[[tuple[Any, ...], str, str], None]   # (key path, shown key, problem)

EVENTS = ("down", "up", "degraded")


def to_events(value: Any) -> tuple[str, ...]:
    events = to_str_list(value)
    for event in events:
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}{did_you_mean(event, EVENTS)} "
                             f"(one of {', '.join(EVENTS)})")
    return events


def to_argv(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError('expected an argument list such as ["/usr/local/bin/page", "--team", '
                         '"ops"] (no shell is used)')
    if not value[0].strip():
        raise ValueError("the program (first item) must not be empty")
    return tuple(value)


def to_http_url(value: Any) -> str:
    url = to_nonempty_str(value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    return url


@dataclass(frozen=True, kw_only=True)
class ChannelCommon:
    """Keys every `[[alerts]]` channel accepts."""

    name: str = option(convert=to_name, doc="unique name that targets use in `alerts = [...]`")
    kind: str = option(convert=to_nonempty_str, doc="apprise, webhook, command or bell")
    on: tuple[str, ...] = option(("down", "up"), convert=to_events,
                                 doc="what is sent: down, up (recovery), degraded")
    repeat: float | None = option(None, convert=to_duration, check=duration_in(1, 30 * 86400),
                                  doc="remind every this long while still down")
    cert_days: float | None = option(None, convert=to_float, check=in_range(0.01, 3650),
                                     doc="alert once when a certificate has fewer days left")
    retries: int | None = option(None, convert=to_int, check=in_range(0, 20),
                                 doc="tries again after a failed delivery (default per kind)")
    backoff: float = option(2.0, convert=to_duration, check=duration_in(0.01, 3600),
                            doc="wait before the first retry, doubled after each")
    timeout: float = option(10.0, convert=to_duration, check=duration_in(0.01, 600),
                            doc="limit for one delivery attempt")


@dataclass(frozen=True, kw_only=True)
class AppriseOptions:
    urls: tuple[str, ...] = option(convert=to_str_list,
                                   doc="Apprise URLs (ntfy://, tgram://, mailto://, ...); "
                                       "put tokens in ${ENV}")


@dataclass(frozen=True, kw_only=True)
class WebhookOptions:
    url: str = option(convert=to_http_url, doc="where the JSON payload is POSTed")
    headers: dict[str, str] = option({}, convert=to_str_map,
                                     doc="extra request headers (values may use ${ENV})")


@dataclass(frozen=True, kw_only=True)
class CommandOptions:
    command: tuple[str, ...] = option(convert=to_argv,
                                      doc="argv run with the payload on stdin and MONITOR_* "
                                          "variables (no shell)")


@dataclass(frozen=True, kw_only=True)
class BellOptions:
    """The terminal bell and a notification in the dashboard: nothing to set."""


# kind -> (its options, retries when the channel does not say)
CHANNEL_KINDS: dict[str, tuple[type, int]] = {
    "apprise": (AppriseOptions, 2),
    "webhook": (WebhookOptions, 3),
    "command": (CommandOptions, 0),   # a command may have acted before failing
    "bell": (BellOptions, 0),
}


@dataclass(frozen=True, kw_only=True)
class AlertChannel:
    name: str
    kind: str
    options: Any
    on: frozenset[str]
    repeat: float | None
    cert_days: float | None
    retries: int
    backoff: float
    timeout: float
    line: int = field(default=0, compare=False)
    secrets: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> str:
        """Where it sends, as shown anywhere: ${VAR} names, never their values."""
        options = self.options
        if self.kind == "apprise":
            where = " ".join(_private_apprise_url(url) for url in options.urls)
        elif self.kind == "webhook":
            where = options.url
        elif self.kind == "command":
            where = " ".join(options.command)
        else:
            where = "terminal bell and in-app notification"
        return redact_secrets(where, self.secrets)


def _private_apprise_url(url: str) -> str:
    """Apprise's own privacy form of a URL (tokens elided) when it reads it."""
    import apprise
    service = apprise.Apprise.instantiate(url)
    return service.url(privacy=True) if service else url


def read_channels(raw: Any, report: Report, lines: Callable[[tuple[Any, ...]], int],
                  secrets: dict[str, str]) -> tuple[AlertChannel, ...]:
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        report(("alerts",), "alerts", "expected [[alerts]] tables")
        return ()
    channels: list[AlertChannel] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        name = item.get("name")
        label = f"alerts[{name}]" if isinstance(name, str) and name.strip() else f"alerts[#{index + 1}]"

        def problem(key: str, message: str, index: int = index, label: str = label) -> None:
            report(("alerts", index, key), f"{label}.{key}", message)
        if isinstance(name, str) and name in seen:
            problem("name", f"duplicate name: already used by the channel on line {seen[name]}")
            continue
        if isinstance(name, str):
            seen[name] = lines(("alerts", index))
        channel = _channel(item, problem, lines(("alerts", index)), secrets)
        if channel is not None:
            channels.append(channel)
    return tuple(channels)


def _channel(raw: dict[str, Any], problem: Callable[[str, str], None], line: int,
             secrets: dict[str, str]) -> AlertChannel | None:
    kind = raw.get("kind")
    spec = CHANNEL_KINDS.get(kind) if isinstance(kind, str) else None
    if spec is None and kind is not None:
        problem("kind", f"unknown kind {kind!r}{did_you_mean(str(kind), list(CHANNEL_KINDS))} "
                        f"(one of {', '.join(CHANNEL_KINDS)})")
    common_keys = option_names(ChannelCommon)
    kind_keys = option_names(spec[0]) if spec else []
    for key in raw:
        if key not in common_keys and key not in kind_keys and spec is not None:
            problem(key, f"unknown key for kind '{kind}'" + did_you_mean(key, common_keys + kind_keys))
    failed = False

    def counted(key: str, message: str) -> None:
        nonlocal failed
        failed = True
        problem(key, message)
    common = build_options(ChannelCommon, {k: raw[k] for k in common_keys if k in raw}, counted)
    if spec is None:
        return None
    options = build_options(spec[0], {k: raw[k] for k in kind_keys if k in raw}, counted)
    if isinstance(options, AppriseOptions):
        _check_apprise(options, secrets, counted)
    if common is None or options is None or failed:
        return None
    return AlertChannel(name=common.name, kind=common.kind, options=options, on=frozenset(common.on),
                        repeat=common.repeat, cert_days=common.cert_days,
                        retries=spec[1] if common.retries is None else common.retries,
                        backoff=common.backoff, timeout=common.timeout, line=line, secrets=secrets)


def _check_apprise(options: AppriseOptions, secrets: dict[str, str],
                   problem: Callable[[str, str], None]) -> None:
    if not options.urls:
        problem("urls", "give at least one Apprise URL")
    import apprise   # only configs with an apprise channel pay for its import
    for url in options.urls:
        if apprise.Apprise.instantiate(url) is None:
            scheme = url.partition("://")[0] if "://" in url else url
            problem("urls", f"Apprise cannot use {redact_secrets(url, secrets)!r}: unknown service "
                            f"{scheme!r} or a malformed URL (see the Apprise wiki for its forms)")


def check_routing(raw_targets: list[Any], targets: list[Target], settings: Settings,
                  channels: tuple[AlertChannel, ...], report: Report, raw_channels: Any) -> None:
    """Channel names in targets and [settings] exist; depends_on names
    targets and has no cycles."""
    # a channel that failed its own checks is still written: not "unknown" too
    known = sorted({c.name for c in channels} | {
        c["name"] for c in (raw_channels if isinstance(raw_channels, list) else [])
        if isinstance(c, dict) and isinstance(c.get("name"), str)})

    def unknown(name: str) -> str | None:
        if name in known:
            return None
        return f"unknown channel {name!r}" + (did_you_mean(name, known) or (
            f" (channels: {', '.join(known)})" if known else " (no [[alerts]] channel is defined)"))
    for name in settings.alerts or ():
        message = unknown(name)
        if message:
            report(("settings", "alerts"), "settings.alerts", message)
    index_of = {raw["name"]: i for i, raw in reversed(list(enumerate(raw_targets)))
                if isinstance(raw, dict) and isinstance(raw.get("name"), str)}
    names = sorted(index_of)
    for target in targets:
        index = index_of.get(target.name, 0)
        for name in target.alerts or ():
            message = unknown(name)
            if message:
                report(("targets", index, "alerts"), f"targets[{target.name}].alerts", message)
        for parent in target.depends_on:
            if parent == target.name:
                report(("targets", index, "depends_on"), f"targets[{target.name}].depends_on",
                       "a target cannot depend on itself")
            elif parent not in index_of:
                report(("targets", index, "depends_on"), f"targets[{target.name}].depends_on",
                       f"no target named {parent!r}{did_you_mean(parent, names)}")
    for cycle in _cycles({t.name: t.depends_on for t in targets}):
        first = cycle[0]
        report(("targets", index_of.get(first, 0), "depends_on"), f"targets[{first}].depends_on",
               "dependency cycle: " + " -> ".join(cycle + [first]))


def _cycles(graph: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """Each cycle of the depends_on graph once (iterative: a long chain of
    dependencies must not hit the recursion limit)."""
    colour: dict[str, int] = {}      # 1 on the current path, 2 done
    found: list[list[str]] = []
    for root in graph:
        if colour.get(root):
            continue
        path: list[str] = [root]
        stack = [iter(graph.get(root, ()))]
        colour[root] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour.get(step) == 1:
                found.append(path[path.index(step):])
            elif not colour.get(step) and step in graph:
                colour[step] = 1
                path.append(step)
                stack.append(iter(graph[step]))
    return found

