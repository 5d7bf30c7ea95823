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
    # editing the config file's [[targets]] (kept off the footer: EDITING)
    "add_target": ("a", "Add", "Add a target to the config file (a form)"),
    "edit_target": ("E,ctrl+e", "Edit", "Edit the selected target in the config file"),
    "duplicate_target": ("c", "Duplicate", "Add a copy of the selected target (a form)"),
    "delete_target": ("D", "Delete", "Delete the selected target from the config file"),
    "help": ("question_mark", "Help", "Show every key"),
    "quit": ("q", "Quit", "Quit monitor"),
}

# the editing actions: in the palette and help, not in the crowded footer
EDITING = ("add_target", "edit_target", "duplicate_target", "delete_target")
