"""Where monitor keeps its files, the way each platform expects (platformdirs).

- config: what the user writes (`config.toml`, `themes/`). Linux:
  `$XDG_CONFIG_HOME/monitor` or `~/.config/monitor`; macOS:
  `~/Library/Application Support/monitor`; Windows: `%LOCALAPPDATA%\\monitor`.
- state: what the app remembers between runs and the user never edits (the
  theme chosen, targets paused from the dashboard). Linux:
  `$XDG_STATE_HOME/monitor` or `~/.local/state/monitor`.
- data: what the monitor records (history). Linux: `$XDG_DATA_HOME/monitor`
  or `~/.local/share/monitor`.

Each is looked up on every call, so a changed environment (a test's private
`XDG_*`) is honoured; nothing is created here.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP = "monitor"


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False))


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP, appauthor=False))
