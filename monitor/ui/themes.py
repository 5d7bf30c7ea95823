"""Theme files: `themes/*.toml` beside the package and in the user config dir.

Textual has no theme file loader, so we read TOML, check every colour with
`Color.parse`, collect every problem into one message, and fall back to a
built-in theme when nothing usable is found.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from textual.color import Color, ColorParseError
from textual.theme import Theme

from monitor.config.fields import did_you_mean
from monitor.config.lookup import user_config_dir

COLOURS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
           "background", "surface", "panel", "boost")
FLAGS = ("dark", "ansi")
KEYS = ("name", *COLOURS, *FLAGS, "luminosity_spread", "text_alpha", "variables")
DEFAULT_THEME = "monitor-dark"

# Used only when no theme file can be read (e.g. an installed package
# without the themes folder): the same colours as themes/monitor-dark.toml.
BUILTIN = Theme(name=DEFAULT_THEME, primary="#5FAFFF", secondary="#8787D7", accent="#FFAF5F",
                success="#5FD787", warning="#FFD75F", error="#FF5F5F", foreground="#D0D0D0",
                background="#121417", surface="#1B1E23", panel="#262A31", dark=True)


def theme_dirs() -> list[Path]:
    dirs = [Path(__file__).resolve().parents[2] / "themes", user_config_dir() / "themes"]
    extra = os.environ.get("MONITOR_THEMES")
    if extra:
        dirs.append(Path(extra))
    return dirs


def parse_theme(data: dict[str, Any], source: str) -> tuple[Theme | None, list[str]]:
    problems: list[str] = []
    for key in data:
        if key not in KEYS:
            problems.append(f"{source}: {key}: unknown key{did_you_mean(key, KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{source}: name: required, a string")
    if "primary" not in data:
        problems.append(f"{source}: primary: required")
    colours: dict[str, str] = {}
    for key in COLOURS:
        if key in data:
            if _bad_colour(data[key]):
                problems.append(f"{source}: {key}: not a colour: {data[key]!r}")
            else:
                colours[key] = data[key]
    for key in FLAGS:
        if key in data and not isinstance(data[key], bool):
            problems.append(f"{source}: {key}: expected true or false")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        problems.append(f"{source}: variables: expected a table")
        variables = {}
    for key, value in variables.items():
        if not isinstance(value, str):
            problems.append(f"{source}: variables.{key}: expected a string")
    if problems:
        return None, problems
    extra = {k: data[k] for k in ("luminosity_spread", "text_alpha") if k in data}
    theme = Theme(name=name, dark=data.get("dark", True), ansi=data.get("ansi", False),
                  variables=dict(variables), **colours, **extra)
    return theme, []


def _bad_colour(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        Color.parse(value)
    except ColorParseError:
        return True
    return False


def load_themes(dirs: list[Path] | None = None) -> tuple[list[Theme], list[str]]:
    """Every valid theme (later directories override earlier ones by name),
    and every problem found, as 'FILE: key: problem'."""
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for folder in dirs if dirs is not None else theme_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                problems.append(f"{path}: cannot read: {exc}")
                continue
            theme, found = parse_theme(data, str(path))
            problems += found
            if theme is not None:
                themes[theme.name] = theme
    if DEFAULT_THEME not in themes:
        themes[DEFAULT_THEME] = BUILTIN
    return list(themes.values()), problems


# --- the chosen theme persists across runs ---------------------------------------

def state_path() -> Path:
    return user_config_dir() / "state.toml"


def saved_theme() -> str | None:
    try:
        data = tomllib.loads(state_path().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    theme = data.get("theme")
    return theme if isinstance(theme, str) else None


def save_theme(name: str) -> None:
    """Atomically: write a temporary file beside it, then rename over it."""
    path = state_path()
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = {}
    data["theme"] = name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".toml.tmp")
        temporary.write_text(tomli_w.dumps(data), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass   # a read-only home must not break the dashboard
