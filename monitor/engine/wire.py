"""The two directions of the pipe between the UI and its engine process.

UI to engine: commands, one JSON object a line ({"cmd": "pause", "name": ...}).
Engine to UI: batches of messages, each batch one frame (magic, length,
marshal body).

Messages are tuples whose first item names them: ("ready",) once the engine
has started, ("result", ...), ("transition", ...), ("stats", ...),
("reload", ...) and ("config_rejected", ...) after a config change,
("alert", ...) for each outcome of an alert delivery, and ("error", text).
Unlike the public
`to_json` contract a result keeps everything the UI needs (monotonic start,
certificate facts, recheck flag).

marshal is CPython's own serialisation of plain values. Both processes run
the same interpreter (the worker is started with `sys.executable`), and for
tuples of str, float, None, dict and list it is 5-10x cheaper than JSON on
both sides: JSON cost the UI ~20 us to parse each result at 100 results a
second. marshal is not meant for untrusted input; these frames only ever come
from our own child process, over a pipe.
"""

from __future__ import annotations

import json
import marshal
import struct
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.alerts.message import Alert
from monitor.alerts.sink import Delivery
from monitor.engine.result import ProbeResult, Status
from monitor.engine.sinks import ConfigRejected, ConfigReloaded
from monitor.engine.state import State, Transition
from monitor.probes.base import CertFacts

Message = tuple[Any, ...]

MAGIC = b"\xa5M"
_HEADER = struct.Struct("!2sI")
MAX_FRAME = 64 << 20
# The longest command line either side accepts. Commands carry target names,
# which the config does not bound: 16 MiB leaves room for any sane one while
# a runaway line cannot eat the engine's memory.
MAX_COMMAND = 16 << 20
_STATUS = {status.value: status for status in Status}
_STATE = {state.value: state for state in State}


class WireError(ValueError):
    """The engine's output is not a frame stream (something else wrote to it)."""


# ---------------------------------------------------------------- messages

@dataclass(slots=True)
class EngineStats:
    """The engine's account of itself, sent every STATS_EVERY seconds."""
    probes_total: int = 0
    skips: int = 0
    lag_ms: float = 0.0
    probes_per_s: float = 0.0
    dropped: int = 0          # results the engine process dropped while the UI was not reading
    behind_s: float = 0.0     # how late starts ran against their schedule (p95, recent)
    skips_per_min: float = 0.0


def stats_message(stats: EngineStats) -> Message:
    return ("stats", *astuple(stats))


def stats_from_message(m: Message) -> EngineStats:
    return EngineStats(*m[1:])


def _ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _dt(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def result_message(r: ProbeResult) -> Message:
    cert = None
    if r.cert is not None:
        c = r.cert
        cert = (_ts(c.expires_at), c.subject, c.issuer, c.earliest, _ts(c.leaf_expires_at),
                c.hostname_match, tuple(c.sans), c.chain_length)
    return ("result", r.name, r.kind, r.target, r.status.value, r.latency_ms, r.phases_ms,
            r.reason, r.checked_at.timestamp(), r.started, r.http_status, cert, r.details,
            r.recheck)


def result_from_message(m: Message) -> ProbeResult:
    (_, name, kind, target, status, latency, phases, reason, checked_at, started, http_status,
     cert, details, recheck) = m
    facts = None
    if cert is not None:
        expires, subject, issuer, earliest, leaf_expires, match, sans, chain = cert
        expires_at = _dt(expires)
        assert expires_at is not None
        facts = CertFacts(expires_at=expires_at, subject=subject, issuer=issuer,
                          earliest=earliest, leaf_expires_at=_dt(leaf_expires),
                          hostname_match=match, sans=tuple(sans), chain_length=chain)
    return ProbeResult(name=name, kind=kind, target=target, status=_STATUS[status],
                       latency_ms=latency, phases_ms=phases, reason=reason,
                       checked_at=datetime.fromtimestamp(checked_at, UTC), started=started,
                       http_status=http_status, cert=facts, details=details, recheck=recheck)


def transition_message(t: Transition) -> Message:
    return ("transition", t.name, t.from_state.value, t.to_state.value, t.reason,
            t.at.timestamp(), t.monotonic, t.previous_for)


def transition_from_message(m: Message) -> Transition:
    _, name, before, after, reason, at, monotonic, previous_for = m
    return Transition(name, _STATE[before], _STATE[after], reason,
                      datetime.fromtimestamp(at, UTC), monotonic, previous_for)


def reload_message(event: ConfigReloaded) -> Message:
    """A reload, with the config text the engine now runs: the UI builds its
    new targets from exactly that text, not from a file that may have
    changed again since."""
    return ("reload", event.at.timestamp(), event.added, event.removed, event.changed,
            event.settings, event.source, event.config_text)


def reload_from_message(m: Message) -> ConfigReloaded:
    _, at, added, removed, changed, settings, source, text = m
    return ConfigReloaded(datetime.fromtimestamp(at, UTC), tuple(added), tuple(removed),
                          tuple(changed), tuple(settings), source, text)


def rejected_message(event: ConfigRejected) -> Message:
    return ("config_rejected", event.at.timestamp(), event.problems, event.source)


def rejected_from_message(m: Message) -> ConfigRejected:
    _, at, problems, source = m
    return ConfigRejected(datetime.fromtimestamp(at, UTC), tuple(problems), source)


_ALERT_TIMES = ("since", "at", "cert_expires_at")


def alert_message(delivery: Delivery) -> Message:
    """An alert sink's outcome (sent, failed, bell...): the alert itself as
    its fields, datetimes as timestamps (marshal knows no datetime)."""
    alert = delivery.alert
    fields = None
    if alert is not None:
        fields = {name: getattr(alert, name) for name in Alert.__dataclass_fields__}
        for name in _ALERT_TIMES:
            fields[name] = _ts(fields[name])
    return ("alert", delivery.at.timestamp(), delivery.outcome, delivery.channel,
            delivery.channel_kind, fields, delivery.detail, delivery.attempt)


def alert_from_message(m: Message) -> Delivery:
    _, at, outcome, channel, channel_kind, fields, detail, attempt = m
    alert = None
    if fields is not None:
        known = {k: v for k, v in fields.items() if k in Alert.__dataclass_fields__}
        for name in _ALERT_TIMES:
            known[name] = _dt(known.get(name))
        alert = Alert(**known)
    return Delivery(datetime.fromtimestamp(at, UTC), outcome, channel, channel_kind, alert,
                    detail, attempt)


# ---------------------------------------------------------------- frames

def pack(messages: list[Message]) -> bytes:
    """One frame holding `messages`."""
    try:
        body = marshal.dumps(messages)
    except ValueError:   # a probe put a value marshal lacks in `details`: make it plain
        body = marshal.dumps([_plain(m) for m in messages])
    return _HEADER.pack(MAGIC, len(body)) + body


def _plain(message: Message) -> Message:
    return tuple(json.loads(json.dumps(message, default=str)))


class FrameReader:
    """Splits a byte stream, arriving in arbitrary chunks, into messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        position, end, header = 0, len(buffer), _HEADER.size
        while end - position >= header:
            magic, size = _HEADER.unpack_from(buffer, position)
            if magic != MAGIC or size > MAX_FRAME:
                seen = bytes(buffer[position:position + 40])
                raise WireError(f"unexpected bytes from the engine: {seen!r}")
            if end - position - header < size:
                break
            start = position + header
            try:
                messages += marshal.loads(buffer[start:start + size])
            except (EOFError, ValueError, TypeError) as exc:
                raise WireError(f"unreadable frame from the engine: {exc}") from None
            position = start + size
        del buffer[:position]
        return messages


# ---------------------------------------------------------------- commands

def command_line(command: dict[str, Any]) -> bytes:
    """One command as its line (JSON escapes newlines inside strings)."""
    return (json.dumps(command, separators=(",", ":")) + "\n").encode()


@dataclass(frozen=True, slots=True)
class SkippedLine:
    """A command line longer than the limit, dropped whole."""
    size: int


class CommandReader:
    """Splits the command stream, arriving in arbitrary chunks, into lines.

    A line over `limit` bytes is skipped up to its newline and reported as a
    `SkippedLine`; the lines after it are read as usual. (asyncio's
    `readline` raises on a line over its 64 KiB limit instead, which once
    ended the engine's command reader for good.)
    """

    def __init__(self, limit: int = MAX_COMMAND) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._scanned = 0          # bytes of the buffer known to hold no newline
        self._skipping = 0         # > 0: inside an over-long line, this many bytes dropped

    def feed(self, data: bytes) -> list[bytes | SkippedLine]:
        lines: list[bytes | SkippedLine] = []
        buffer = self._buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", max(start, self._scanned))) >= 0:
            size = self._skipping + end + 1 - start
            self._skipping = 0
            lines.append(SkippedLine(size) if size > self.limit
                         else bytes(buffer[start:end + 1]))
            start = end + 1
            self._scanned = start
        del buffer[:start]
        self._scanned = len(buffer)
        if self._skipping or len(buffer) > self.limit:
            self._skipping += len(buffer)
            buffer.clear()
            self._scanned = 0
        return lines
