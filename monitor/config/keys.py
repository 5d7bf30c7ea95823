"""Dashboard key bindings by id, so users can remap them in `[keys]`."""

from __future__ import annotations

# id -> (default keys, description). Keys use Textual's names; several keys
# are comma-separated, e.g. "r,f5".
BINDINGS: dict[str, tuple[str, str]] = {
    "details": ("enter", "Details"),
    "probe_now": ("r", "Probe now"),
    "pause": ("p", "Pause/resume"),
    "filter": ("slash", "Filter"),
    "sort": ("s", "Sort"),
    "group": ("g", "Group"),
    "theme": ("t", "Theme"),
    "help": ("question_mark", "Help"),
    "quit": ("q", "Quit"),
}
