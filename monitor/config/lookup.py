"""Where the config file is: --config, $MONITOR_CONFIG, ./monitor.toml, then
the user config dir."""

from __future__ import annotations

import os
from pathlib import Path

from monitor.paths import config_dir


def user_config_dir() -> Path:
    """The platform's config folder for monitor (see monitor.paths)."""
    return config_dir()


def candidates(explicit: str | None) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    if explicit:
        found.append(("--config", Path(explicit)))
    env = os.environ.get("MONITOR_CONFIG")
    if env:
        found.append(("$MONITOR_CONFIG", Path(env)))
    found.append(("current directory", Path("monitor.toml")))
    found.append(("user config dir", user_config_dir() / "config.toml"))
    return found


def find_config(explicit: str | None) -> Path | None:
    """The first candidate that exists; an explicit path or $MONITOR_CONFIG is
    returned even when missing, so the error names what the user asked for."""
    for source, path in candidates(explicit):
        if source in ("--config", "$MONITOR_CONFIG") or path.is_file():
            return path
    return None
