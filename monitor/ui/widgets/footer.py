"""The key footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer

from monitor.ui.widgets.filter_box import FilterBox


class SteadyFooter(Footer):
    """Textual's footer recomposes (removes and mounts a widget per key, each
    styled anew) on every focus change and screen switch, even when the same
    keys come back. Opening and closing the filter and returning from the
    detail screen did that, twice (once as the screen was covered): 10-40 ms
    of the keypress at 10,000 targets (bench/keypress_bench.py). Here the keys
    shown are compared first, and a covered screen's footer waits."""

    _shown: tuple[object, ...] | None = None
    rebuilds = 0   # recompositions that happened, for tests

    def __init__(self, *, covered_by: FilterBox | None = None, **kwargs: Any) -> None:
        """`covered_by`: a widget that, shown, hides this footer (the filter
        box opens over it): the keys its focus brings are not drawn, and on
        closing the same keys come back, so nothing is rebuilt either way."""
        super().__init__(**kwargs)
        self.covered_by = covered_by

    def _keys(self) -> tuple[object, ...] | None:
        """Everything `compose` draws from: the same tuple, the same footer."""
        if not self._bindings_ready:
            return None
        app = self.app
        active = self.screen.active_bindings
        keys = tuple((binding.key, app.get_key_display(binding), binding.description,
                      binding.action, binding.group, enabled, tooltip)
                     for _namespace, binding, enabled, tooltip in active.values() if binding.show)
        palette = active.get(app.COMMAND_PALETTE_BINDING) if self.show_command_palette else None
        return (self.compact, self.combine_groups, app.ENABLE_COMMAND_PALETTE, palette, keys)

    async def recompose(self) -> None:
        if not self.is_attached:
            return
        if self.screen is not self.app.screen:
            # asked while its screen is being covered (a suspend changes the
            # bindings too): what it would show now is not what it shows on
            # return, when it is asked again
            return
        cover = self.covered_by
        if cover is not None and cover.is_open:
            return   # asked again when the cover goes and focus comes back
        keys = self._keys()
        if keys is not None and keys == self._shown:
            return
        self._shown = keys
        self.rebuilds += 1
        await super().recompose()
