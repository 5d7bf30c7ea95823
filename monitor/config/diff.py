"""What a reload changes: targets added, removed, changed and unchanged (by
name), and the settings that differ.

A target is matched by name only, so a renamed target is a removal plus an
addition. Where a target's block sits in the file (`line`) is not part of
it: a block inserted above must not restart every target below. A target
whose `ca_file` (or other file it names) changed on disk is changed even
when its block is not.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from pathlib import Path
from typing import Any

from monitor.config.model import Config, Target

# Labels only: shown and filtered by, never seen by the probe or its verdict,
# so a change to them alone needs no restart.
LABELS = frozenset({"group", "tags", "description"})
# Not the target: where it is written and what was substituted into it
_NOT_COMPARED = frozenset({"line"}) | {f.name for f in dataclasses.fields(Target) if not f.compare}
_COMPARED = tuple(f.name for f in dataclasses.fields(Target) if f.name not in _NOT_COMPARED)
# attrgetter: at 10,000 targets the comparison is most of a reload's cost
_compared = attrgetter(*_COMPARED)
_probed = attrgetter(*(name for name in _COMPARED if name not in LABELS))
NAMES_SHOWN = 5    # names listed per kind of change in `details()`


@dataclass(frozen=True)
class ConfigDiff:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()       # in any way, labels included
    unchanged: tuple[str, ...] = ()
    relabelled: tuple[str, ...] = ()    # of `changed`: only group, tags or description
    settings: tuple[str, ...] = ()      # [settings] keys whose value changed
    other: tuple[str, ...] = ()         # other sections: "demo.port", "keys"

    @property
    def restarted(self) -> tuple[str, ...]:
        """Changed targets whose probe must start again with its new options."""
        relabelled = set(self.relabelled)
        return tuple(name for name in self.changed if name not in relabelled)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.settings or self.other)

    def counts(self) -> str:
        """"+2 −1 ~1": targets added, removed and changed."""
        return f"+{len(self.added)} \u2212{len(self.removed)} ~{len(self.changed)}"

    def summary(self) -> str:
        """One line for the event log: "config reloaded: +2 −1 ~1, settings: interval, timeout"."""
        if self.empty:
            return "config reloaded: no changes"
        parts = [self.counts()]
        if self.settings:
            parts.append("settings: " + ", ".join(self.settings))
        if self.other:
            parts.append("also: " + ", ".join(self.other))
        return "config reloaded: " + ", ".join(parts)

    def details(self, limit: int = NAMES_SHOWN) -> str:
        """The targets by name, a few of each: "added: a, b; removed: c; changed: d (+3 more)"."""
        parts = []
        for label, names in (("added", self.added), ("removed", self.removed),
                             ("changed", self.changed)):
            if names:
                shown = ", ".join(names[:limit])
                more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
                parts.append(f"{label}: {shown}{more}")
        return "; ".join(parts)


def diff_configs(old: Config, new: Config, files_changed: Iterable[str | Path] = ()) -> ConfigDiff:
    """The difference from `old` to `new`. `files_changed`: files whose
    content changed on disk (from the watcher); a target naming one is changed
    (the config file itself may be among them: it is no target's file)."""
    changed_files = {os.path.normpath(os.path.expanduser(str(p))) for p in files_changed}
    if new.path is not None:
        changed_files.discard(os.path.normpath(new.path.absolute()))
    before = {t.name: t for t in old.targets}
    after = {t.name: t for t in new.targets}
    added, changed, unchanged, relabelled = [], [], [], []
    for name, target in after.items():
        previous = before.get(name)
        if previous is None:
            added.append(name)
        elif _probed(previous) != _probed(target) or _names_any(target, changed_files):
            changed.append(name)
        elif _compared(previous) != _compared(target):
            changed.append(name)
            relabelled.append(name)
        else:
            unchanged.append(name)
    removed = [name for name in before if name not in after]
    other = [f"demo.{key}" for key in _differing(old.demo, new.demo)]
    if old.keys != new.keys:
        other.append("keys")
    return ConfigDiff(added=tuple(added), removed=tuple(removed), changed=tuple(changed),
                      unchanged=tuple(unchanged), relabelled=tuple(relabelled),
                      settings=tuple(_differing(old.settings, new.settings)), other=tuple(other))


def _differing(old: Any, new: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(old) if getattr(old, f.name) != getattr(new, f.name)]


def target_files(target: Target) -> list[str]:
    """The files a target names: its options declared as paths (`ca_file`, ...)."""
    options = target.options
    return [os.path.normpath(os.path.expanduser(value))
            for value in (getattr(options, name) for name in _path_options(type(options)))
            if isinstance(value, str) and value]


@cache
def _path_options(cls: type) -> tuple[str, ...]:
    if not dataclasses.is_dataclass(cls):
        return ()
    return tuple(spec.name for spec in dataclasses.fields(cls) if spec.metadata.get("path"))


def _names_any(target: Target, files: set[str]) -> bool:
    return bool(files) and any(path in files for path in target_files(target))
