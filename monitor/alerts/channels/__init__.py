"""Channel kinds: one module each, one line each here."""

from __future__ import annotations

from collections.abc import Callable

from monitor.alerts.channels.apprise import AppriseChannel
from monitor.alerts.channels.base import Channel, ChannelError
from monitor.alerts.channels.bell import BellChannel
from monitor.alerts.channels.command import CommandChannel
from monitor.alerts.channels.webhook import WebhookChannel
from monitor.alerts.message import Alert
from monitor.config.alerting import AlertChannel

CHANNELS: dict[str, type[Channel]] = {
    "apprise": AppriseChannel,
    "webhook": WebhookChannel,
    "command": CommandChannel,
    "bell": BellChannel,
}

__all__ = ["CHANNELS", "Channel", "ChannelError", "make_channel"]


def make_channel(spec: AlertChannel, notify: Callable[[str, Alert], None]) -> Channel:
    """A channel for `spec`; `notify(channel name, alert)` is the bell's way out."""
    if spec.kind == "bell":
        return BellChannel(spec, notify)
    return CHANNELS[spec.kind](spec)
