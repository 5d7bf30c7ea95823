"""`monitor alert test [CHANNEL ...]`: send a test notification through each
channel (or the ones named) at once, and print what each answered.

Exit status: 0 when every channel delivered, 1 when any failed, 2 for a
config problem (no channels, an unknown name)."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import TextIO

from monitor.alerts.channels import make_channel
from monitor.alerts.channels.base import attempt
from monitor.alerts.message import Alert, hostname
from monitor.config import Config
from monitor.config.alerting import AlertChannel
from monitor.config.fields import did_you_mean

EXIT_OK, EXIT_PROBLEM, EXIT_CONFIG = 0, 1, 2


def test_alert(channel: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(event="test", name="monitor", target=hostname(), state="up", at=now, since=now,
                 reason=f"test notification for channel '{channel}': if you read this, it works",
                 id=f"test/{channel}/{now.isoformat()}")


async def cmd_alert_test(config: Config, names: list[str] | None,
                         out: TextIO | None = None) -> int:
    out = out or sys.stdout
    known = [c.name for c in config.alerts]
    if not known:
        print(f"monitor: {config.path}: no [[alerts]] channels to test", file=sys.stderr)
        return EXIT_CONFIG
    unknown = [n for n in names or () if n not in known]
    for name in unknown:
        print(f"monitor: no channel named {name!r}{did_you_mean(name, known)}; "
              f"channels: {', '.join(known)}", file=sys.stderr)
    if unknown:
        return EXIT_CONFIG
    chosen = [c for c in config.alerts if not names or c.name in names]
    rang: list[Alert] = []
    outcomes = await asyncio.gather(*(_one(spec, lambda _, alert: rang.append(alert)) for spec in chosen))
    if rang and out.isatty():
        out.write("\a")
    width = max(len(spec.name) for spec in chosen)
    for spec, (delivered, answer) in zip(chosen, outcomes):
        verdict = "sent  " if delivered else "FAILED"
        print(f"{spec.name:<{width}}  {verdict}  {spec.kind} {spec.describe()}: {answer}", file=out)
    return EXIT_OK if all(ok for ok, _ in outcomes) else EXIT_PROBLEM


async def _one(spec: AlertChannel, bell: object) -> tuple[bool, str]:
    channel = make_channel(spec, bell)   # type: ignore[arg-type]
    try:
        delivered, answer, _ = await attempt(channel, test_alert(spec.name))
    finally:
        await channel.aclose()
    return delivered, answer
