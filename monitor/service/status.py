"""`monitor status [--json]`: the service's board in one shot, no new probes.

Exit status as `check`: 0 when no target is degraded or down (pending and
paused ones count neither way), 1 when any is, 3 when no service runs for
the config. JSON: one object per target per line, the result contract of the
target's last result (nulls before its first), plus `state`, `since` and
`uptime_pct`.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.config import ConfigError, parse_config
from monitor.config.model import Config
from monitor.engine.result import iso
from monitor.engine.state import State
from monitor.engine.stats import restore_stats
from monitor.engine.wire import FrameReader, WireError
from monitor.output import format_latency, json_line, paint
from monitor.service.paths import find_socket
from monitor.service.snapshot import BoardSnapshot
from monitor.service.viewer import connect, read_snapshot

EXIT_OK, EXIT_PROBLEM, EXIT_NO_SERVICE = 0, 1, 3
STATUS_TIMEOUT = 10.0   # seconds for the whole exchange
_ENV_NAME = re.compile(r"(?<!\$)\$\{([^}]*)\}")


class NoService(Exception):
    """No service answers for this config; says what was tried."""


class ServiceUnusable(NoService):
    """A service runs for this config but this process may not (or cannot)
    attach: another user's, or another protocol's."""


async def fetch_snapshot(config_path: Path, timeout: float = STATUS_TIMEOUT) -> BoardSnapshot:
    """The board of the service probing `config_path`. Raises NoService."""
    path = find_socket(config_path)
    if path is None:
        raise NoService(f"no monitor service is running for {Path(config_path).resolve()}")
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await connect(path, limit=1 << 20)
            try:
                snapshot, _ = await read_snapshot(reader, FrameReader())
            finally:
                writer.close()
    except (ConnectionRefusedError, FileNotFoundError):
        raise NoService(f"no monitor service is running for {Path(config_path).resolve()} "
                        f"(a stale socket at {path})") from None
    except TimeoutError:
        raise NoService(f"the service at {path} did not answer within {timeout:g}s") from None
    except (OSError, ConnectionError, WireError) as exc:
        raise ServiceUnusable(f"cannot attach to the service at {path}: "
                        f"{getattr(exc, 'strerror', None) or exc}") from None
    return snapshot


def fill_missing_environ(config_text: str) -> None:
    """A viewer shows the service's config; the secrets it names are the
    service's ($VARs from its unit's environment), not this shell's. Any
    this process lacks is set to its own name, so the text parses here: the
    viewer never probes, and redaction shows it as ${NAME} anyway."""
    for name in _ENV_NAME.findall(config_text):
        os.environ.setdefault(name, name)


def service_config(snapshot: BoardSnapshot) -> Config:
    """The config the service runs. Raises ConfigError (not expected: the
    service validated this very text)."""
    fill_missing_environ(snapshot.config_text)
    return parse_config(snapshot.config_text, snapshot.service.config_path)


def status_objects(snapshot: BoardSnapshot, config: Config) -> list[dict[str, Any]]:
    now_mono, now = time.monotonic(), datetime.now(UTC)
    objects = []
    for target in config.targets:
        saved = snapshot.views.get(target.name)
        if saved is None:
            continue
        if saved.last is not None:
            record = saved.last.to_json()
        else:
            record = {"name": target.name, "kind": target.kind, "target": target.display_target,
                      "status": None, "ok": None, "latency_ms": None, "phases_ms": {},
                      "reason": None, "http_status": None, "cert_days_left": None,
                      "cert_expires_at": None, "checked_at": None, "details": {}}
        uptime = restore_stats(saved.stats, max(1, len(saved.stats.status))).uptime_pct(now_mono)
        since = now - timedelta(seconds=max(0.0, now_mono - saved.since))
        record.update(state=saved.state.value, since=iso(since),
                      uptime_pct=None if uptime is None else round(uptime, 3),
                      uptime_windows=saved.windows or None)
        objects.append(record)
    return objects


def exit_status(snapshot: BoardSnapshot) -> int:
    bad = (State.DEGRADED, State.DOWN)
    return EXIT_PROBLEM if any(v.state in bad for v in snapshot.views.values()) else EXIT_OK


def status_text(snapshot: BoardSnapshot, objects: list[dict[str, Any]], colour: bool) -> str:
    header = ("STATE", "NAME", "KIND", "LATENCY", "UPTIME", "SINCE", "REASON")
    rows = [(o["state"].upper(), o["name"], o["kind"], format_latency(o["latency_ms"]),
             "-" if o["uptime_pct"] is None else f"{o['uptime_pct']:.2f}%",
             _local(o["since"]), o["reason"] or "") for o in objects]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.rjust(w) if i in (3, 4) else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        line = "  ".join(cells).rstrip()
        if row is not header:
            line = paint(cells[0], row[0].lower(), colour) + line[len(cells[0]):]
        lines.append(line)
    counts = {state: 0 for state in State}
    for view in snapshot.views.values():
        counts[view.state] += 1
    tally = ", ".join(f"{counts[s]} {s.value}" for s in State if counts[s]) or "no targets"
    lines.append(f"{len(objects)} targets: {tally} · {snapshot.service.label(wide=False)} · "
                 f"{snapshot.stats.probes_per_s:.1f} probes/s")
    return "\n".join(lines)


def _local(stamp: str | None) -> str:
    if stamp is None:
        return "-"
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone()
    return f"{moment:%H:%M:%S}" if moment.date() == datetime.now().astimezone().date() \
        else f"{moment:%Y-%m-%d %H:%M}"


async def cmd_status(config_path: Path, as_json: bool, colour: bool) -> int:
    try:
        snapshot = await fetch_snapshot(config_path)
    except NoService as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_NO_SERVICE
    try:
        config = service_config(snapshot)
    except ConfigError as exc:
        print(f"monitor: the service's config does not parse here: {exc}",
              file=sys.stderr)
        return EXIT_NO_SERVICE
    objects = status_objects(snapshot, config)
    if as_json:
        for record in objects:
            print(json_line(record))
    else:
        print(status_text(snapshot, objects, colour))
    return exit_status(snapshot)
