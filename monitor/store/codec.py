"""How results, states and latency histograms are written compactly.

Rows hold integers only where they can: times as epoch milliseconds,
latencies and phases as microseconds, statuses and states as small codes,
reasons as ids into an interned table. SQLite stores 0 and 1 in a record's
header alone and small integers in one to three bytes, so a sample row is
about 40 bytes on disk (bench/history_bench.py).
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from monitor.engine.result import ProbeResult, Status
from monitor.engine.state import State, Transition
from monitor.probes.base import PHASES

STATUSES: tuple[Status, ...] = (Status.UP, Status.DEGRADED, Status.DOWN)
STATUS_CODE = {status: code for code, status in enumerate(STATUSES)}
UP_CODE, DEGRADED_CODE, DOWN_CODE = 0, 1, 2
STATES: tuple[State, ...] = (State.PENDING, State.UP, State.DEGRADED, State.DOWN, State.PAUSED)
STATE_CODE = {state: code for code, state in enumerate(STATES)}

# The columns of a sample row, in order (tables `recent` and `samples`).
SAMPLE_COLUMNS = ("target", "at", "status", "latency_us", "reason", "http_status",
                  "cert_expires", *(f"{phase}_us" for phase in PHASES), "recheck")


def epoch_ms(moment: float) -> int:
    """Epoch seconds (UTC) to the integer milliseconds rows hold."""
    return int(round(moment * 1000.0))


def micros(ms: float | None) -> int | None:
    if ms is None or math.isnan(ms):
        return None
    return max(0, int(round(ms * 1000.0)))


def moment_ms(at: datetime | float | None, clock: Callable[[], float]) -> int:
    """Epoch ms of a datetime, of epoch seconds, or of now (None)."""
    if at is None:
        return epoch_ms(clock())
    if isinstance(at, datetime):
        return epoch_ms(at.timestamp())
    return epoch_ms(float(at))


def result_item(result: ProbeResult) -> tuple:
    phases = result.phases_ms
    cert = result.cert
    return ("r", result.name, result.kind, result.target, epoch_ms(result.checked_at.timestamp()),
            STATUS_CODE[result.status], micros(result.latency_ms), result.reason,
            result.http_status, None if cert is None else int(cert.expires_at.timestamp()),
            *(micros(phases.get(phase)) for phase in PHASES), 1 if result.recheck else 0)


def transition_item(transition: Transition) -> tuple:
    return ("t", transition.name, epoch_ms(transition.at.timestamp()),
            STATE_CODE[transition.from_state], STATE_CODE[transition.to_state], transition.reason,
            None if transition.previous_for is None else int(transition.previous_for * 1000))


def queue_item(item: Any) -> tuple:
    """What the engine hands the writer, as the plain tuple the writer
    works from ("r", "t", or the monitor's own ("start", at) and kin, which
    are tuples already). Plain values only, so they can cross a pipe."""
    if isinstance(item, ProbeResult):
        return result_item(item)
    if isinstance(item, Transition):
        return transition_item(item)
    return item


def reload_item(at: int, summary: dict[str, Any]) -> tuple:
    removed = summary.get("removed") or ()
    text = json.dumps(summary, default=str, sort_keys=True)
    return ("reload", at, text, tuple(str(name) for name in removed))


# --- latency histograms ---------------------------------------------------------
# Fixed buckets, twice per octave from 0.25 ms to 16 s: bucket 0 is below
# 0.25 ms, bucket i (1..LAST-1) is [EDGES[i-1], EDGES[i]), bucket LAST is
# 16 s and up. Interpolating inside a bucket puts p50/p95 within a few per
# cent of the exact figure for the latency spreads probes see; bucket bounds
# never change, so histograms of any two rows add up.

BASE_US = 250
BUCKETS = 34
LAST = BUCKETS - 1
EDGES = tuple(BASE_US * 2 ** (i / 2) for i in range(LAST))   # upper edge of bucket i
# Latencies are whole microseconds, so `latency < edge` is `latency < ceil(edge)`:
# integer edges give Python and SQL (rollup.py) the same bucket, float rounding aside.
WHOLE_EDGES = tuple(math.ceil(edge) for edge in EDGES)


def bucket_of(latency_us: int) -> int:
    return bisect.bisect_right(WHOLE_EDGES, latency_us)


def encode_hist(counts: dict[int, int]) -> bytes:
    """Sparse: per non-empty bucket its index byte, then its count as a varint."""
    out = bytearray()
    for index in sorted(counts):
        count = counts[index]
        if count <= 0:
            continue
        out.append(index)
        while count >= 0x80:
            out.append((count & 0x7F) | 0x80)
            count >>= 7
        out.append(count)
    return bytes(out)


def decode_hist(blob: bytes | None) -> dict[int, int]:
    counts: dict[int, int] = {}
    if not blob:
        return counts
    pos, size = 0, len(blob)
    while pos < size:
        index = blob[pos]
        pos += 1
        count = shift = 0
        while pos < size:
            byte = blob[pos]
            pos += 1
            count |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        counts[index] = counts.get(index, 0) + count
    return counts


def merge_hist(first: bytes | None, second: bytes | None) -> bytes:
    """The histogram of both (registered as the SQL function hist_merge)."""
    counts = decode_hist(first)
    for index, count in decode_hist(second).items():
        counts[index] = counts.get(index, 0) + count
    return encode_hist(counts)


def hist_percentile(counts: dict[int, int], fraction: float, low_us: float,
                    high_us: float) -> float | None:
    """Approximate percentile (microseconds) of a histogram whose samples lie
    in [low_us, high_us]: the rank is found by bucket, then placed linearly
    inside its bucket (clamped to the observed min and max)."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = fraction * (total - 1)
    seen = 0
    for index in sorted(counts):
        count = counts[index]
        if seen + count > rank:
            lower = 0.0 if index == 0 else EDGES[index - 1]
            upper = EDGES[index] if index < LAST else high_us
            lower, upper = max(lower, low_us), min(upper, high_us)
            if upper < lower:
                return lower
            inside = (rank - seen + 0.5) / count
            return lower + (upper - lower) * min(1.0, max(0.0, inside))
        seen += count
    return high_us
