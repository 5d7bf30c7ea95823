"""`kind = "apprise"`: one or more Apprise URLs, which reach 100+ services
(ntfy, Slack, Discord, Telegram, e-mail, Gotify, Matrix, PagerDuty...).

Apprise is synchronous: each channel sends from its own small thread pool,
so a slow service never occupies the probes' loop or another channel's
threads. Apprise's own deadline (the channel's timeout) bounds each call."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from monitor.alerts.channels.base import Channel, ChannelError
from monitor.alerts.message import Alert


class AppriseChannel(Channel):
    kind = "apprise"

    def __init__(self, spec) -> None:   # noqa: ANN001 (AlertChannel)
        super().__init__(spec)
        # two threads: a call abandoned at the timeout may still hold one
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"apprise-{spec.name}")
        self._apprise: Any = None

    async def send(self, alert: Alert) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._notify, alert)

    def _notify(self, alert: Alert) -> str:
        import apprise   # only a config with an apprise channel pays for its import
        if self._apprise is None:
            self._apprise = apprise.Apprise()
            for url in self.spec.options.urls:
                self._apprise.add(url)
        result = self._apprise.notify(body=alert.summary(), title=alert.title(),
                                      notify_type=_TYPES.get(alert.event, "info"),
                                      timeout=self.spec.timeout)
        answers = []
        for service in result:
            answers.append(f"{service.name}: " + ("ok" if service else _why(service)))
        said = "; ".join(answers) or "no service was notified"
        if result:
            return self.mask(said)
        raise ChannelError(self.mask(said))

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


_TYPES = {"down": "failure", "reminder": "failure", "degraded": "warning", "cert": "warning",
          "up": "success", "test": "info"}


def _why(service: Any) -> str:
    """The last thing Apprise logged about a failed service: its reason."""
    lines = [entry.message for entry in service.logs() if entry.level in ("WARNING", "ERROR")]
    status = getattr(service.status, "name", str(service.status)).lower()
    return f"{status}" + (f" ({lines[-1]})" if lines else "")
