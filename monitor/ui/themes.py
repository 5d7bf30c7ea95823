"""Theme files: the built-in `themes/*.toml`, then the user's config dir.

Textual has no theme file loader, so we read TOML, check every colour with
`Color.parse`, collect every problem into one message, and fall back to a
built-in theme when nothing usable is found.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

# the chosen theme is remembered in the app's state file (not in the config dir)
from monitor.appstate import save_theme, saved_theme  # noqa: F401  (the app's API)
from monitor.config.fields import did_you_mean
from monitor.paths import config_dir

COLOURS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
           "background", "surface", "panel", "boost")
FLAGS = ("dark", "ansi")
KEYS = ("name", *COLOURS, *FLAGS, "luminosity_spread", "text_alpha", "variables")
DEFAULT_THEME = "monitor-dark"

# Used only when no theme file can be read (a damaged install): the same
# colours as themes/monitor-dark.toml.
BUILTIN = Theme(name=DEFAULT_THEME, primary="#5FAFFF", secondary="#8787D7", accent="#FFAF5F",
                success="#5FD787", warning="#FFD75F", error="#FF5F5F", foreground="#D0D0D0",
                background="#121417", surface="#1B1E23", panel="#262A31", dark=True)


def builtin_theme_dir() -> Path:
    """The themes that come with monitor: a wheel carries `themes/` inside the
    package (setup.py copies it there); a source checkout and an editable
    install read the repository's `themes/` itself."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / "themes"
    return shipped if shipped.is_dir() else package.parent / "themes"


def theme_dirs() -> list[Path]:
    dirs = [builtin_theme_dir(), config_dir() / "themes"]
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
