"""Dashboard key bindings by id, so users can remap them in `[keys]`."""

from __future__ import annotations

# id -> (default keys, footer label, description). Keys use Textual's names;
# several keys are comma-separated, e.g. "r,f5".
BINDINGS: dict[str, tuple[str, str, str]] = {
    "details": ("enter", "Details", "Open the selected target's details"),
    "probe_now": ("r", "Probe", "Probe the selected target now"),
    "pause": ("p", "Pause", "Pause or resume the selected target"),
    "filter": ("slash", "Filter", "Filter by name, state, tag:, group:, kind:"),
    "sort": ("s", "Sort", "Sort by status, name, latency, uptime (cycles)"),
    "group": ("g", "Group", "Group rows by group"),
    "theme": ("t", "Theme", "Switch to the next theme"),
    "reload": ("R,f5", "Reload", "Reload the config file now (saves are applied anyway)"),
    "help": ("question_mark", "Help", "Show every key"),
    "quit": ("q", "Quit", "Quit monitor"),
}
