"""A target being edited in a form, without the form: its fields from the
same option declarations `monitor kinds` prints (a new probe kind gets its
form for free), the text of each box and the TOML value it stands for, what
the real loader says about the file with the draft spliced in, and one
probe of the draft in a separate process.

Values are the file's own (`${VAR}` references unexpanded); the loader's
substituted values never reach a form.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from monitor.config.durations import parse_duration
from monitor.config.edit import EditError, add_target, inline_toml, replace_target
from monitor.config.fields import describe_options
from monitor.config.model import Settings, TargetCommon
from monitor.config.save import InvalidEdit, validate_text
from monitor.probes import registry

_TEMP_LINE = re.compile(r"^:\d+: ", re.MULTILINE)
# Annotations of options whose value is a string typed as is (no TOML quoting)
_PLAIN = {"str", "str | None", "re.Pattern[str]", "re.Pattern[str] | None"}
FIRST = ("name", "kind")


@dataclass(frozen=True)
class FieldSpec:
    key: str
    doc: str
    default: str       # as `monitor kinds` shows it; "required" when required
    plain: bool        # a string option: the box holds the string itself
    path: bool         # a file path, relative to the config file's folder
    common: bool       # a key every kind has

    @property
    def required(self) -> bool:
        return self.default == "required"


def _specs(cls: type, common: bool) -> list[FieldSpec]:
    shown = {name: (default, doc) for name, default, doc in describe_options(cls)}
    return [FieldSpec(f.name, shown[f.name][1], shown[f.name][0], str(f.type) in _PLAIN,
                      bool(f.metadata.get("path")), common)
            for f in dataclasses.fields(cls)]


def kinds() -> list[str]:
    return registry.kinds()


def field_specs(kind: str | None) -> list[FieldSpec]:
    """name and kind, the kind's own options, then the keys every kind has."""
    common = {s.key: s for s in _specs(TargetCommon, True)}
    own = _specs(registry.probe_class(kind).Options, False) if kind in registry.kinds() else []
    return [common[k] for k in FIRST] + own + [s for k, s in common.items() if k not in FIRST]


def _toml_value(text: str) -> Any:
    """The TOML value `text` spells, or the text itself when it spells none
    (so `5s` and `https://x` need no quotes, while 5432 is a number)."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text.strip()
    return parsed["v"] if set(parsed) == {"v"} else text.strip()


def show(spec: FieldSpec, value: Any) -> str:
    """The text a box shows for `value`."""
    if isinstance(value, str) and (spec.plain or _toml_value(value) == value):
        return value
    return inline_toml(value)


def read(spec: FieldSpec, text: str) -> Any | None:
    """The value a box's text stands for; None for an empty box (key left out)."""
    if not text.strip():
        return None
    return text if spec.plain else _toml_value(text)


def draft_fields(kind: str, texts: Mapping[str, str], original: Mapping[str, Any]) -> dict[str, Any]:
    """The target's keys from the boxes' texts. A box still showing the
    original value gives the original value itself, so an untouched key is
    written back byte for byte."""
    specs = {spec.key: spec for spec in field_specs(kind)}
    # name and kind, then the original's order (a copy reads like the original)
    order = [*FIRST, *(k for k in original if k in specs and k not in FIRST),
             *(k for k in specs if k not in original and k not in FIRST)]
    fields: dict[str, Any] = {}
    for key in order:
        if key == "kind":
            fields["kind"] = kind
            continue
        text = texts.get(key, "")
        if key in original and text == show(specs[key], original[key]):
            fields[key] = original[key]
            continue
        value = read(specs[key], text)
        if value is not None:
            fields[key] = value
    return fields


@dataclass
class Verdict:
    """What the loader says about the file with the draft in it."""

    text: str | None                               # the file's new text; None if no splice
    by_field: dict[str, list[str]] = field(default_factory=dict)
    draft: list[str] = field(default_factory=list)       # about the draft, no box to show it at
    elsewhere: list[str] = field(default_factory=list)   # about the rest of the file

    @property
    def ok(self) -> bool:
        return self.text is not None and not (self.by_field or self.draft or self.elsewhere)

    def count(self) -> int:
        return sum(map(len, self.by_field.values())) + len(self.draft) + len(self.elsewhere)


def check_draft(path: str | Path, text: str, editing: str | None, fields: dict[str, Any],
                environ: Mapping[str, str] | None = None) -> Verdict:
    """Splice the draft into `text` (replacing `editing`, or added) and run
    the real loader on the whole result; its problems sorted by field."""
    try:
        new = replace_target(text, editing, fields) if editing else add_target(text, fields)
    except EditError as exc:
        return Verdict(None, draft=[str(exc)])
    try:
        validate_text(path, new, environ)
    except InvalidEdit as exc:
        first, last = _changed_lines(text, new)
        verdict = Verdict(new)
        label = f"targets[{fields.get('name')}]."
        keys = {spec.key for spec in field_specs(fields.get("kind"))}
        for problem in exc.problems:
            ours = first <= problem.line <= last or problem.key.startswith(label)
            key = problem.key.rsplit("].", 1)[-1].split(".")[0] if problem.key.startswith("targets[") else ""
            if ours and key in keys:
                verdict.by_field.setdefault(key, []).append(problem.message)
            elif ours:
                verdict.draft.append(f"{problem.key}: {problem.message}" if problem.key
                                     else problem.message)
            else:
                verdict.elsewhere.append(str(problem))
        return verdict
    return Verdict(new)


def _changed_lines(old: str, new: str) -> tuple[int, int]:
    """First and last line (1-based, in `new`) of what differs from `old`."""
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    tail = 0
    while tail < limit - start and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    first = new.count("\n", 0, start) + 1
    return first, max(first, new.count("\n", 0, len(new) - tail) + 1)


# --- test now ------------------------------------------------------------------------

@dataclass(frozen=True)
class TestRun:
    """One probe of a draft: the `check --json` result, or why there is none."""

    result: dict[str, Any] | None = None
    problem: str | None = None


def _probe_config(path: Path, text: str, fields: dict[str, Any]) -> tuple[str, float]:
    """A config of the file's [settings] and just the draft (no demo server:
    the dashboard's is running), and how long one check may take."""
    try:
        data = tomllib.loads(text.removeprefix("\ufeff").replace("\r\n", "\n"))
    except tomllib.TOMLDecodeError:
        data = {}
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    folder = Path(os.path.realpath(path)).parent
    draft = dict(fields)
    for spec in field_specs(fields.get("kind")):
        value = draft.get(spec.key)
        if spec.path and isinstance(value, str) and value and not value.startswith("~") \
                and not Path(value).is_absolute():
            draft[spec.key] = str(folder / value)   # the temporary file is elsewhere
    limit = _seconds(draft.get("timeout", settings.get("timeout")), Settings().timeout)
    delay = _seconds(settings.get("recheck_delay"), Settings().recheck_delay)
    # a probe, its recheck, and the interpreter's start
    return tomli_w.dumps({"settings": settings, "targets": [draft]}), 2 * limit + delay + 15.0


def _seconds(value: Any, default: float) -> float:
    try:
        return parse_duration(value) if value is not None else default
    except ValueError:
        return default


async def probe_draft(path: str | Path, text: str, fields: dict[str, Any]) -> TestRun:
    """Probe the draft once with `monitor check --json` in a child process:
    the measurement never runs in the caller's event loop."""
    config, limit = _probe_config(Path(path), text, fields)
    with tempfile.TemporaryDirectory(prefix="monitor-draft-") as folder:
        draft_path = Path(folder) / "draft.toml"
        draft_path.write_text(config, encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "check", "--json", "--config", str(draft_path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), limit)
        except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return TestRun(problem=f"no answer within {limit:.0f}s")
    for line in out.decode("utf-8", "replace").splitlines():
        with contextlib.suppress(ValueError):
            result = json.loads(line)
            if isinstance(result, dict) and "status" in result:
                return TestRun(result=result)
    # the temporary file's name and lines mean nothing to the user
    message = _TEMP_LINE.sub("", err.decode("utf-8", "replace").replace(str(draft_path), "")).strip()
    return TestRun(problem=message or f"monitor check exited with status {proc.returncode}")
