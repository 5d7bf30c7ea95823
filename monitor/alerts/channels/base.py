"""What every channel kind provides: `send` one alert, say what the other
end answered, and let go of what it holds."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from monitor.alerts.message import Alert
from monitor.config.alerting import AlertChannel
from monitor.probes.text import shown

ANSWER_LIMIT = 300   # characters of a service's answer kept for the log


class ChannelError(Exception):
    """A delivery that failed; str() is what the log shows (secrets masked).
    `retry`: whether trying again could help (a refused connection or a 503
    may; a 404 or a program that does not exist will not)."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Channel:
    kind: ClassVar[str] = ""

    def __init__(self, spec: AlertChannel) -> None:
        self.spec = spec

    async def send(self, alert: Alert) -> str:
        """Deliver; return the other end's answer in a few words, or raise
        ChannelError. The sink bounds it with the channel's timeout and
        cancels it then: a send must clean up on cancellation."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Let go of connections and threads."""

    def mask(self, text: str) -> str:
        """`text` as it may be logged: ${VAR} names for secrets, printable, short."""
        text = shown(text, self.spec.secrets)
        return text if len(text) <= ANSWER_LIMIT else text[:ANSWER_LIMIT] + "\u2026"


async def attempt(channel: Channel, alert: Alert) -> tuple[bool, str, bool]:
    """One try, bounded by the channel's timeout (plus a second for its own
    clean-up): (delivered, what the other end answered, worth retrying)."""
    try:
        return True, await asyncio.wait_for(channel.send(alert), channel.spec.timeout + 1.0), False
    except ChannelError as exc:
        return False, str(exc), exc.retry
    except TimeoutError:
        return False, f"no answer within {channel.spec.timeout:g}s", True
