"""Load and validate a config file, reporting every problem at once as
`FILE:LINE: key: problem`."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config.alerting import check_routing, read_channels
from monitor.config.durations import format_duration
from monitor.config.fields import build_options, did_you_mean, option_names
from monitor.config.keys import BINDINGS
from monitor.config.lines import MAX_DEPTH, Layout, line_of, scan
from monitor.config.lines import Path as KeyPath
from monitor.config.maintenance import read_maintenance
from monitor.config.model import Config, DemoSettings, Settings, Target, TargetCommon
from monitor.probes import registry
from monitor.probes.text import shown

_ENV = re.compile(r"\$(\$)?\{([^}]*)\}")
_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")
_TOML_END = "(at end of document)"
TOP_LEVEL = ("settings", "demo", "keys", "targets", "alerts", "maintenance")
# Far beyond any real config (10,000 targets take ~2 MB); stops a mistaken
# --config /dev/zero from being read until memory runs out.
MAX_FILE_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """One or more problems; str() is one problem per line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = problems


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        raise ConfigError([Problem(str(path), 0, "", "config file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(str(path), 0, "", f"cannot read: {exc.strerror or exc}")]) from None
    if len(data) > MAX_FILE_SIZE:
        raise ConfigError([Problem(str(path), 0, "", f"larger than {MAX_FILE_SIZE // 1024**2} MiB: "
                                   "not a config file")])
    return _Loader(data, path, os.environ).load()


def parse_config(source: str | bytes, path: str | Path | None = None,
                 environ: dict[str, str] | None = None) -> Config:
    """A config from its text, or from the bytes of a file (decoded as UTF-8)."""
    return _Loader(source, path, os.environ if environ is None else environ).load()


class _Loader:
    def __init__(self, source: str | bytes, path: str | Path | None, environ: Any) -> None:
        self.source = source
        self.path = Path(path) if path is not None else None
        self.file = str(path) if path is not None else "<config>"
        self.environ = environ
        self.problems: list[Problem] = []
        self.lines: dict[KeyPath, int] = {}
        # value -> variable name of every ${VAR} substituted: secrets, shown
        # only by name in problems, results and everything else printed
        self.secrets: dict[str, str] = {}
        self.names: dict[int, str] = {}   # index of a [[targets]] table -> its name
        self.settings_known = True
        # where a ${VAR} was not set, and every table above it
        self.unset: set[KeyPath] = set()

    def report(self, path: KeyPath, key: str, message: str) -> None:
        if len(path) >= 2 and path in self.unset:
            return   # "must not be empty" after "variable X is not set" says nothing new
        self.add(path, key, message)

    def add(self, path: KeyPath, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, line_of(self.lines, path), key, message))

    def fail(self) -> ConfigError:
        """The error to raise: problems in line order, secrets shown by name
        only, and keys and messages printable (a quoted TOML key may hold any
        character, and an error must not act on the terminal it is shown on)."""
        problems = sorted(self.problems, key=lambda p: p.line)
        return ConfigError([dataclasses.replace(p, key=shown(p.key, self.secrets),
                                                message=shown(p.message, self.secrets))
                            for p in problems])

    def problem(self, line: int, message: str) -> ConfigError:
        """The error for a file that cannot be read further than `line`."""
        self.problems.append(Problem(self.file, line, "", message))
        return self.fail()

    def load(self) -> Config:
        text = self.decode(self.source) if isinstance(self.source, bytes) else self.source
        data = self.parse(text)
        self.names = _target_names(data.get("targets"))
        data = self.substitute(data, ())

        for key in data:
            if key not in TOP_LEVEL:
                self.report((key,), key, "unknown section" + did_you_mean(key, TOP_LEVEL))
        settings = self.table(data, "settings", Settings)
        # with [settings] broken, what targets inherit is unknown: not judged
        self.settings_known = settings is not None
        settings = settings or Settings()
        demo = self.table(data, "demo", DemoSettings) or DemoSettings()
        if settings.timeout > settings.interval:
            self.report(("settings", "timeout"), "settings.timeout",
                        f"timeout {format_duration(settings.timeout)} is longer than "
                        f"interval {format_duration(settings.interval)}")
        targets = self.targets(data.get("targets", []), settings)
        keys = self.keys(data.get("keys", {}))
        alerts, maintenance = self.alerting(data, settings, targets)
        if self.problems:
            raise self.fail()
        return Config(path=self.path, settings=settings, demo=demo, targets=tuple(targets),
                      keys=keys, secrets=self.secrets, source=text, alerts=alerts,
                      maintenance=maintenance)

    def alerting(self, data: dict[str, Any], settings: Settings, targets: list[Target]) -> Any:
        """[[alerts]], [[maintenance]], and the names targets route by."""
        lines = lambda path: line_of(self.lines, path)   # noqa: E731
        channels = read_channels(data.get("alerts", []), self.report, lines, self.secrets)
        raw_targets = data.get("targets", [])
        raw_targets = raw_targets if isinstance(raw_targets, list) else []
        check_routing(raw_targets, targets, settings, channels, self.report, data.get("alerts", []))
        names = [t.get("name") for t in raw_targets if isinstance(t, dict)]
        maintenance = read_maintenance(data.get("maintenance", []), self.report, lines,
                                       [n for n in names if isinstance(n, str)],
                                       [t.group for t in targets if t.group])
        return channels, maintenance

    def decode(self, data: bytes) -> str:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            before = _universal_newlines(data[:exc.start].decode("utf-8"))
            line = before.count("\n") + 1
            column = len(before) - before.rfind("\n")
            raise self.problem(line, f"not UTF-8: byte 0x{data[exc.start]:02x} at column {column} "
                                     "(save the file as UTF-8)") from None
        # Notepad's byte order mark; universal newlines as a text-mode read does
        return _universal_newlines(text.removeprefix("\ufeff"))

    def parse(self, text: str) -> dict[str, Any]:
        """tomllib's dict, and the line of every key in self.lines. Input that
        would make tomllib recurse too deep, or run out of memory, is refused
        by a scan before it is parsed."""
        layout = scan(text)
        self.lines = layout.lines
        too_deep = (f"arrays, tables and dotted keys nest more than {MAX_DEPTH} levels deep "
                    "(no config needs that)")
        if layout.too_deep is not None:
            raise self.problem(layout.too_deep, too_deep)
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise self.problem(*_syntax_error(str(exc), text, layout)) from None
        except RecursionError:   # the scan misjudged nesting; tomllib is the judge
            raise self.problem(layout.deepest, "arrays and inline tables nest too deeply "
                                               "to be read") from None
        except ValueError:       # int() refuses a number of more than 4,300 digits
            raise self.problem(layout.long_number or 1, "a number of more than "
                               f"{sys.get_int_max_str_digits()} digits (no option takes one)") from None

    def keys(self, raw: Any) -> dict[str, str]:
        if not isinstance(raw, dict):
            self.report(("keys",), "keys", "expected a table ([keys])")
            return {}
        keys: dict[str, str] = {}
        for action, value in raw.items():
            if action not in BINDINGS:
                self.report(("keys", action), f"keys.{action}",
                            "unknown action" + (did_you_mean(action, list(BINDINGS))
                                                or f" (one of {', '.join(BINDINGS)})"))
            elif not isinstance(value, str) or not value.strip():
                self.report(("keys", action), f"keys.{action}",
                            "expected keys as a string, e.g. \"ctrl+r\" or \"r,f5\"")
            else:
                keys[action] = value.strip()
        return keys

    def substitute(self, value: Any, path: KeyPath) -> Any:
        """Replace ${VAR} in every string; $${VAR} is a literal ${VAR}."""
        if isinstance(value, str) and "${" in value:
            def replace(match: re.Match[str]) -> str:
                if match.group(1):
                    return "${" + match.group(2) + "}"
                name = match.group(2)
                if name not in self.environ:
                    self.add(path, self.label(path), f"environment variable {name} is not set")
                    self.unset.update(path[:end] for end in range(2, len(path) + 1))
                    return ""
                secret = self.environ[name]
                if secret:
                    self.secrets[secret] = name
                return secret
            return _ENV.sub(replace, value)
        if isinstance(value, dict):
            return {k: self.substitute(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            tables = _is_table_list(value)   # once per list: per item made loading quadratic
            return [self.substitute(v, path + (i,) if tables else path)
                    for i, v in enumerate(value)]
        return value

    def table(self, data: dict[str, Any], name: str, cls: type) -> Any:
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            self.report((name,), name, "expected a table ([" + name + "])")
            return None
        known = option_names(cls)
        for key in raw:
            if key not in known:
                self.report((name, key), f"{name}.{key}", "unknown key" + did_you_mean(key, known))
        return build_options(cls, {k: v for k, v in raw.items() if k in known},
                             lambda key, msg: self.report((name, key), f"{name}.{key}", msg))

    def targets(self, raw_targets: Any, settings: Settings) -> list[Target]:
        if not isinstance(raw_targets, list) or not all(isinstance(t, dict) for t in raw_targets):
            self.report(("targets",), "targets", "expected [[targets]] tables")
            return []
        targets: list[Target] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(raw_targets):
            target = self.target(index, raw, settings)
            name = raw.get("name")
            if isinstance(name, str):   # duplicates count even when a target is broken
                if name in seen:
                    self.report(("targets", index, "name"), f"targets[{name}].name",
                                f"duplicate name: already used by the target on line {seen[name]}")
                    continue
                seen[name] = line_of(self.lines, ("targets", index))
            if target is not None:
                targets.append(target)
        return targets

    def target(self, index: int, raw: dict[str, Any], settings: Settings) -> Target | None:
        label = self.label(("targets", index))
        before = len(self.problems)

        def report(key: str, message: str) -> None:
            self.report(("targets", index, key), f"{label}.{key}", message)

        kind = raw.get("kind")
        probe = None
        if isinstance(kind, str) and kind in registry.kinds():
            probe = registry.probe_class(kind)
        elif kind is not None:
            hint = did_you_mean(str(kind), registry.kinds()) or f" (one of {', '.join(registry.kinds())})"
            report("kind", f"unknown kind {kind!r}" + hint)
        common_keys = option_names(TargetCommon)
        kind_keys = option_names(probe.Options) if probe else []
        for key in raw:
            if key not in common_keys and key not in kind_keys:
                hint = did_you_mean(key, common_keys + kind_keys)
                if not hint and probe is None:
                    continue  # without a kind we cannot tell what belongs
                scope = f"for kind '{kind}'" if probe else ""
                report(key, f"unknown key {scope}".rstrip() + hint)
        common = build_options(TargetCommon, {k: raw[k] for k in common_keys if k in raw}, report)
        options = None
        if probe is not None:
            base_dir = self.path.resolve().parent if self.path is not None else None
            options = build_options(probe.Options, {k: raw[k] for k in kind_keys if k in raw},
                                    report, base_dir)
            if options is not None:
                for key, message in probe.check_options(options):
                    report(key, message)
        timing = self.timing(raw, settings, report)
        if timing is not None and probe is not None and options is not None:
            for key, message in probe.check_timing(options, timing[1]):
                report(key, message)
        if common is None or options is None or timing is None or len(self.problems) > before:
            return None
        interval, timeout = timing
        fields = {f.name: getattr(common, f.name) for f in dataclasses.fields(TargetCommon)}
        fields.update(
            interval=interval, timeout=timeout,
            failure_threshold=_pick(common.failure_threshold, settings.failure_threshold),
            success_threshold=_pick(common.success_threshold, settings.success_threshold),
        )
        return Target(options=options, line=line_of(self.lines, ("targets", index)),
                      raw=raw, secrets=self.secrets, **fields)

    def timing(self, raw: dict[str, Any], settings: Settings,
               report: Callable[[str, str], None]) -> tuple[float, float] | None:
        """The target's (interval, timeout), or None with the problem reported:
        judged whatever else is wrong with the target, so that one problem
        never hides another."""
        own = {key: _own_value(key, raw) for key in ("interval", "timeout")}
        if _INVALID in own.values():
            return None   # the value's own problem is reported already
        interval = settings.interval if own["interval"] is None else own["interval"]
        timeout = settings.timeout if own["timeout"] is None else own["timeout"]
        inherited = [key for key, value in own.items() if value is None]
        if inherited and not self.settings_known:
            return None
        if timeout > interval:
            if len(inherited) == 2:
                return None   # [settings] itself is wrong, and said so once
            which = "timeout" if own["timeout"] is not None else "interval"
            report(which, f"timeout {format_duration(timeout)} is longer than interval "
                          f"{format_duration(interval)}")
            return None
        return interval, timeout

    def label(self, path: KeyPath) -> str:
        """A key as problems name it: a target by its name (by its position,
        `targets[#3]`, only when it has no usable name), then the keys below."""
        if len(path) >= 2 and path[0] == "targets" and isinstance(path[1], int):
            name = self.names.get(path[1])
            head = f"targets[{name}]" if name is not None else f"targets[#{path[1] + 1}]"
            rest = _dotted(path[2:])
            return f"{head}.{rest}" if rest else head
        return _dotted(path)


_INVALID: Any = object()   # a value whose own problem is already reported


def _own_value(key: str, raw: dict[str, Any]) -> Any:
    """A target's own `key` converted and checked as TargetCommon declares it:
    None when not given, _INVALID when it cannot be used."""
    if key not in raw:
        return None
    spec = next(f for f in dataclasses.fields(TargetCommon) if f.name == key)
    try:
        value = spec.metadata["convert"](raw[key])
    except ValueError:
        return _INVALID
    check = spec.metadata.get("check")
    return _INVALID if check is not None and check(value) else value


def _target_names(raw_targets: Any) -> dict[int, str]:
    """Index -> name of every [[targets]] table whose name can label it."""
    if not isinstance(raw_targets, list):
        return {}
    return {index: raw["name"] for index, raw in enumerate(raw_targets)
            if isinstance(raw, dict) and isinstance(raw.get("name"), str)
            and raw["name"].strip()}


def _syntax_error(message: str, text: str, layout: Layout) -> tuple[int, str]:
    """(line, message) for tomllib's error, which ends "(at line L, column C)"
    or, when a string or array runs to the end, "(at end of document)"."""
    match = _TOML_POS.search(message)
    if match:
        return int(match.group(1)), (f"TOML syntax error: {_TOML_POS.sub('', message).strip()} "
                                     f"(column {match.group(2)})")
    # the end of the document: where the file ends, not the blank lines after it
    last_line = text.rstrip().count("\n") + 1
    message = message.replace(_TOML_END, "").strip() + " at the end of the file"
    if layout.unclosed is not None and layout.unclosed[0] != last_line:
        message += f" (the {layout.unclosed[1]} opened on line {layout.unclosed[0]} is never closed)"
    return last_line, f"TOML syntax error: {message}"


def _universal_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _is_table_list(value: list[Any]) -> bool:
    return bool(value) and all(isinstance(v, dict) for v in value)
