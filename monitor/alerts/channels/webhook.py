"""`kind = "webhook"`: the versioned JSON payload POSTed to a URL (aiohttp),
with optional headers (tokens from ${ENV})."""

from __future__ import annotations

import json

import aiohttp

from monitor import __version__
from monitor.alerts.channels.base import Channel, ChannelError
from monitor.alerts.message import Alert

# Worth trying again: the receiver is busy or restarting, or asked us to slow down
_RETRYABLE = {408, 425, 429}


class WebhookChannel(Channel):
    kind = "webhook"

    def __init__(self, spec) -> None:   # noqa: ANN001 (AlertChannel)
        super().__init__(spec)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, alert: Alert) -> str:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": f"monitor/{__version__} (alert)"})
        options = self.spec.options
        body = json.dumps(alert.payload(), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", **options.headers}
        timeout = aiohttp.ClientTimeout(total=self.spec.timeout, ceil_threshold=3600)
        try:
            async with self._session.post(options.url, data=body, headers=headers,
                                          timeout=timeout, allow_redirects=False) as response:
                answer = (await response.content.read(2048)).decode("utf-8", "replace").strip()
                status = response.status
        except aiohttp.ClientError as exc:
            raise ChannelError(self.mask(f"cannot deliver: {exc}")) from None
        except TimeoutError:
            raise ChannelError(f"no answer within {self.spec.timeout:g}s") from None
        said = f"HTTP {status}" + (f": {answer.splitlines()[0]}" if answer else "")
        if 200 <= status < 300:
            return self.mask(said)
        raise ChannelError(self.mask(said), retry=status >= 500 or status in _RETRYABLE)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
