"""`kind = "bell"`: the terminal bell and a notification in the dashboard.

Nothing leaves the machine: the alert is handed to the sink's event callback
as a "bell" event, and the screen that shows events rings and notifies."""

from __future__ import annotations

from collections.abc import Callable

from monitor.alerts.channels.base import Channel
from monitor.alerts.message import Alert


class BellChannel(Channel):
    kind = "bell"

    def __init__(self, spec, notify: Callable[[str, Alert], None]) -> None:   # noqa: ANN001
        super().__init__(spec)
        self.notify = notify

    async def send(self, alert: Alert) -> str:
        self.notify(self.spec.name, alert)
        return "shown in the app"
