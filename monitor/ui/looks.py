"""How the dashboard looks and is arranged: the theme's palette, theme files
followed while it runs, and the layout remembered between runs (sort,
grouping, the event log shown or not) in the app's state file.

A part of MonitorApp (a mixin: the methods use the app's table, log and
theme), kept apart from the refresh cycle it does not take part in.
"""

from __future__ import annotations

from typing import Any

from monitor import appstate
from monitor.engine.query import SortMode
from monitor.ui import format as fmt
from monitor.ui import themes


class LooksAndLayout:
    """Themes and the remembered layout (MonitorApp)."""

    palette: Any
    table: Any
    events: Any
    sort_mode: SortMode
    grouped: bool
    theme_names: list[str]
    _theme_dirs: Any

    def _set_palette(self) -> None:
        self.palette = fmt.Palette.from_variables(self.theme_variables)

    def _on_theme_changed(self, _theme: object) -> None:
        self._set_palette()
        themes.save_theme(self.theme)
        self.table.restyle()
        self._show_summary()
        self._render_visible()

    # --- the layout remembered between runs, and theme files followed ----------

    def _restore_layout(self) -> None:
        """The board as it was left: sort, grouping, the event log shown or not."""
        layout = appstate.saved_layout()
        if layout.get("sort") in {mode.value for mode in SortMode}:
            self.sort_mode = SortMode(layout["sort"])
        self.grouped = bool(layout.get("grouped", False))
        self.events.set_class(bool(layout.get("events_hidden", False)), "hidden")

    def _remember_layout(self) -> None:
        appstate.save_layout(sort=self.sort_mode.value, grouped=self.grouped,
                             events_hidden=self.events.has_class("hidden"))

    async def _follow_theme_files(self) -> None:
        """A theme file saved while the dashboard runs is applied at once (a
        broken one is named, and the theme in use stays)."""
        import watchfiles
        folders = [str(d) for d in themes.theme_dirs() if d.is_dir()]
        if not folders:
            return
        async for _changes in watchfiles.awatch(*folders, debounce=300, recursive=False):
            loaded, problems = themes.load_themes(self._theme_dirs)
            for theme in loaded:
                self.register_theme(theme)
            self.theme_names = [t.name for t in loaded]
            if problems:
                self.notify("\n".join(problems), title="Theme files skipped",
                            severity="warning", timeout=10, markup=False)
            if self.theme in self.theme_names:
                self.refresh_css()
                self._on_theme_changed(None)
