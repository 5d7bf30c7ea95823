"""Reading history: recent samples, events, uptime windows, incidents, chart
series and reports. Works on any connection (read-only ones too) and never
writes. Times in arguments are epoch seconds (floats); rows hold integer
milliseconds.

Raw samples are `samples` (settled) plus `recent` (not yet settled, at most
a few hundred thousand rows, scanned whole); the rollups hold settled samples
only, so every aggregate adds the unsettled tail from `recent` and no sample
is counted twice or missed.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from monitor.store.codec import SAMPLE_COLUMNS, STATES, STATUSES, decode_hist, encode_hist
from monitor.store.rollup import HOUR_MS, MINUTE_MS, Aggregate
from monitor.store.uptime import (
    REMOVED, Outage, Run, Span, carve, outages, tally, timeline, window_tallies)
from monitor.store.views import (
    RANGES, WINDOWS, Bucket, Series, StoredEvent, StoredSample, TargetInfo, TargetReport,
    WindowUptime)
from monitor.probes.base import PHASES

# name -> epoch-ms spans to leave out of uptime (maintenance windows), sorted, disjoint
Holes = Callable[[str], Sequence[tuple[int, int]]]
LIVE_GRACE_MS = 15_000      # a run that wrote this recently and never stopped is still going
RAW_SERIES_MAX_MS = 6 * HOUR_MS   # charts longer than this read rollups
RAW_AGGREGATE_MAX_MS = 2 * HOUR_MS
_COLUMNS = ", ".join(f"s.{name}" for name in SAMPLE_COLUMNS[1:])


class HistSum:
    """SQL aggregate: the sum of histogram blobs."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def step(self, blob: bytes | None) -> None:
        if not blob:
            return
        counts = self.counts
        odd = blob[1::2]
        if len(blob) % 2 == 0 and max(odd) < 0x80:
            # every count below 128: plain (index, count) byte pairs, the common case
            for index, count in zip(blob[0::2], odd):
                counts[index] = counts.get(index, 0) + count
            return
        for index, count in decode_hist(blob).items():
            counts[index] = counts.get(index, 0) + count

    def finalize(self) -> bytes:
        return encode_hist(self.counts)


def prepare_reader(db: sqlite3.Connection) -> None:
    db.create_aggregate("hist_sum", 1, HistSum)  # type: ignore[arg-type]


class Reader:
    def __init__(self, db: sqlite3.Connection, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def _now_ms(self, now: float | None) -> int:
        return int(round((self.clock() if now is None else now) * 1000))

    # --- targets, runs, horizons -----------------------------------------------------

    def targets(self) -> dict[str, TargetInfo]:
        return {row[1]: TargetInfo(*row) for row in self.db.execute(
            "SELECT id, name, kind, display, first_seen, last_seen FROM targets ORDER BY name")}

    def runs(self, now_ms: int, since_ms: int = 0) -> list[Run]:
        runs = []
        for run_id, started, last_seen, stopped in self.db.execute(
                "SELECT id, started, last_seen, stopped FROM runs "
                "WHERE coalesce(stopped, last_seen) >= ? OR stopped IS NULL ORDER BY started",
                (since_ms,)):
            live = stopped is None and now_ms - last_seen <= LIVE_GRACE_MS
            end = max(now_ms, last_seen) if live else (stopped if stopped is not None else last_seen)
            if end >= since_ms:
                runs.append(Run(run_id, started, end, live))
        return runs

    def horizon(self, level: str) -> int:
        """The oldest time (ms) `level` still holds everything from."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (f"{level}_horizon",)).fetchone()
        return int(row[0]) if row else 0

    # --- samples and events ------------------------------------------------------------

    def samples(self, name: str, since: float | None = None,
                until: float | None = None) -> list[StoredSample]:
        info = self.targets().get(name)
        if info is None:
            return []
        low = -1 if since is None else int(since * 1000)
        high = 2**62 if until is None else int(until * 1000)
        query = (f"SELECT {_COLUMNS}, r.text FROM {{table}} s LEFT JOIN reasons r ON r.id = s.reason "
                 "WHERE s.target = ? AND s.at >= ? AND s.at < ? ORDER BY s.at")
        rows = self.db.execute(query.format(table="samples"), (info.id, low, high)).fetchall()
        rows += self.db.execute(query.format(table="recent"), (info.id, low, high)).fetchall()
        rows.sort(key=lambda row: row[0])
        return [_sample(name, row) for row in rows]

    def recent_samples(self, names: Iterable[str] | None = None,
                       limit: int = 100) -> dict[str, list[StoredSample]]:
        """The last `limit` samples of each target, oldest first."""
        known = self.targets()
        wanted = [known[n] for n in (names if names is not None else known) if n in known]
        tail: dict[int, list[tuple]] = defaultdict(list)
        for row in self.db.execute(f"SELECT s.target, {_COLUMNS}, r.text FROM recent s "
                                   "LEFT JOIN reasons r ON r.id = s.reason"):
            tail[row[0]].append(row[1:])
        out = {}
        for info in wanted:
            rows = tail.get(info.id, [])
            rows.sort(key=lambda row: row[0])
            if len(rows) < limit:
                older = self.db.execute(
                    f"SELECT {_COLUMNS}, r.text FROM samples s LEFT JOIN reasons r "
                    "ON r.id = s.reason WHERE s.target = ? ORDER BY s.at DESC LIMIT ?",
                    (info.id, limit - len(rows))).fetchall()
                rows = older[::-1] + rows
            out[info.name] = [_sample(info.name, row) for row in rows[-limit:]]
        return out

    def events(self, name: str | None = None, since: float | None = None,
               until: float | None = None, limit: int | None = None) -> list[StoredEvent]:
        """State changes, oldest first (with `limit`: the newest `limit`)."""
        where, args = ["e.at >= ?", "e.at < ?"], [-1 if since is None else int(since * 1000),
                                                 2**62 if until is None else int(until * 1000)]
        if name is not None:
            where.append("t.name = ?")
            args.append(name)
        query = ("SELECT t.name, e.at, e.from_state, e.to_state, r.text, e.previous_ms FROM events e "
                 "JOIN targets t ON t.id = e.target LEFT JOIN reasons r ON r.id = e.reason "
                 f"WHERE {' AND '.join(where)} ORDER BY e.at DESC, e.id DESC")
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        rows = self.db.execute(query, args).fetchall()
        return [StoredEvent(name_, at / 1000.0, _state_name(from_), _state_name(to), reason,
                            None if previous is None else previous / 1000.0)
                for name_, at, from_, to, reason, previous in reversed(rows)]

    # --- uptime and incidents ------------------------------------------------------------

    def timelines(self, since_ms: int, until_ms: int, now_ms: int,
                  target_ids: Sequence[int] | None = None,
                  reasons: bool = False) -> dict[int, list[Span]]:
        """Each target's spans in a known state, from the start of the run that
        was going at `since_ms`."""
        runs = [run for run in self.runs(now_ms, since_ms) if run.start <= until_ms]
        if not runs:
            return {}
        start = min(run.start for run in runs)
        reason_sql = "(SELECT text FROM reasons WHERE id = e.reason)" if reasons else "NULL"
        query = (f"SELECT e.target, e.at, e.run, e.to_state, {reason_sql} FROM events e "
                 "WHERE e.at >= ? AND e.at <= ?")
        args: list[int] = [start, until_ms]
        if target_ids is not None and len(target_ids) == 1:
            query += " AND e.target = ?"
            args.append(target_ids[0])
        changes: dict[int, list[tuple]] = defaultdict(list)
        for row in self.db.execute(query + " ORDER BY e.at, e.id", args):
            changes[row[0]].append(row[1:])
        wanted = changes.keys() if target_ids is None else [t for t in target_ids if t in changes]
        return {target: timeline(runs, changes[target]) for target in wanted}

    def uptime(self, names: Iterable[str] | None = None, windows: Sequence[float] = WINDOWS,
               now: float | None = None, holes: Holes | None = None
               ) -> dict[str, list[WindowUptime]]:
        """Per target, per window (seconds back from now): uptime, coverage,
        incidents. `holes`: name -> spans left out of uptime (maintenance)."""
        now_ms = self._now_ms(now)
        known = self.targets()
        wanted = [known[n] for n in (names if names is not None else known) if n in known]
        longest = int(max(windows) * 1000)
        spans = self.timelines(now_ms - longest, now_ms, now_ms, [i.id for i in wanted])
        lengths = [int(window * 1000) for window in windows]
        out = {}
        for info in wanted:
            own = spans.get(info.id, [])
            tallies = window_tallies(own, now_ms, lengths)
            cut = holes(info.name) if holes is not None else None
            if cut:   # time in maintenance is no data; its outages still count as incidents
                carved = window_tallies(carve(own, cut), now_ms, lengths)
                tallies = [(counted, down) for (counted, _), (_, down) in zip(carved, tallies)]
            out[info.name] = [WindowUptime(window, counted, down)
                              for window, (counted, down) in zip(windows, tallies)]
        return out

    def incidents(self, name: str, since: float, until: float | None = None,
                  now: float | None = None) -> list[Outage]:
        now_ms = self._now_ms(now)
        until_ms = now_ms if until is None else int(until * 1000)
        info = self.targets().get(name)
        if info is None:
            return []
        spans = self.timelines(int(since * 1000), until_ms, now_ms, [info.id], reasons=True)
        return outages(spans.get(info.id, []), int(since * 1000), until_ms)

    # --- aggregates, charts and reports -------------------------------------------------------

    def _tail(self, since_ms: int, until_ms: int, target: int | None = None) -> list[tuple]:
        query = "SELECT target, at, status, latency_us FROM recent WHERE at >= ? AND at < ?"
        args: tuple = (since_ms, until_ms)
        if target is not None:
            query, args = query + " AND target = ?", (*args, target)
        return self.db.execute(query, args).fetchall()

    def _raw(self, target: int, since_ms: int, until_ms: int) -> list[tuple]:
        return self.db.execute(
            "SELECT target, at, status, latency_us FROM samples WHERE target = ? AND at >= ? "
            "AND at < ?", (target, since_ms, until_ms)).fetchall()

    def _level_rows(self, table: str, target: int, low: int, high: int) -> list[tuple]:
        return self.db.execute(
            f"SELECT bucket, count, down, degraded, answered, lat_sum_us, lat_min_us, lat_max_us, "
            f"hist FROM {table} WHERE target = ? AND bucket >= ? AND bucket < ?",
            (target, low, high)).fetchall()

    def _level_sum(self, table: str, target: int, low: int, high: int) -> Aggregate:
        row = self.db.execute(
            f"SELECT count(*), sum(count), sum(down), sum(degraded), sum(answered), "
            f"sum(lat_sum_us), min(lat_min_us), max(lat_max_us), hist_sum(hist) FROM {table} "
            "WHERE target = ? AND bucket >= ? AND bucket < ?", (target, low, high)).fetchone()
        if not row[0]:
            return Aggregate()
        return Aggregate.from_row(row[1:])

    def aggregate(self, target: int, since_ms: int, until_ms: int,
                  tail: Sequence[tuple] | None = None) -> Aggregate:
        """All samples of a target in [since, until): raw for short windows still
        held raw, else whole hours, with minutes (or the hour, if more than
        half of it is inside) for the edges. `tail`: the unsettled rows in the
        window (all targets), when the caller already read them."""
        total = Aggregate()
        if until_ms - since_ms <= RAW_AGGREGATE_MAX_MS and since_ms >= self.horizon("raw"):
            for row in self._raw(target, since_ms, until_ms):
                total.add(row[2], row[3])
        else:
            first_hour, end_hour = -(-since_ms // HOUR_MS), until_ms // HOUR_MS
            if end_hour <= first_hour:
                first_hour = end_hour = round(since_ms / HOUR_MS)
            total.merge(self._level_sum("hours", target, first_hour, end_hour))
            minutes_held = since_ms >= self.horizon("minutes")
            for low, high in ((since_ms, first_hour * HOUR_MS), (end_hour * HOUR_MS, until_ms)):
                if high <= low:
                    continue
                if minutes_held:
                    total.merge(self._level_sum("minutes", target, -(-low // MINUTE_MS),
                                                -(-high // MINUTE_MS)))
                elif high - low > HOUR_MS // 2:
                    total.merge(self._level_sum("hours", target, low // HOUR_MS,
                                                low // HOUR_MS + 1))
        rows = self._tail(since_ms, until_ms, target) if tail is None else tail
        for row in rows:
            if row[0] == target:
                total.add(row[2], row[3])
        return total

    def series(self, name: str, range_: str | float = "24h", now: float | None = None,
               points: int = 120) -> Series:
        """A chart of `name` over the last `range_` (a RANGES key or seconds):
        buckets with counts, failures, latency and the time in each state, so
        failures and spans without data read differently."""
        now_ms = self._now_ms(now)
        span_ms = int((RANGES[range_] if isinstance(range_, str) else range_) * 1000)
        since_ms = now_ms - span_ms
        info = self.targets().get(name)
        if since_ms >= self.horizon("raw") and span_ms <= RAW_SERIES_MAX_MS:
            level, resolution = "raw", 1
        elif since_ms >= self.horizon("minutes") and span_ms / points >= MINUTE_MS:
            level, resolution = "minutes", MINUTE_MS
        else:
            level, resolution = "hours", HOUR_MS
        width = max(resolution, math.ceil(span_ms / max(1, points) / resolution) * resolution)
        first = since_ms // width * width
        count = -(-(now_ms - first) // width)
        aggregates = [Aggregate() for _ in range(count)]
        if info is not None:
            if level == "raw":
                rows: list[tuple] = self._raw(info.id, first, now_ms + 1)
            else:
                rows = []
                for row in self._level_rows(level, info.id, first // resolution,
                                            -(-(now_ms + 1) // resolution)):
                    index = (row[0] * resolution - first) // width
                    if 0 <= index < count:
                        aggregates[index].merge(Aggregate.from_row(row[1:]))
            for row in rows + self._tail(first, now_ms + 1, info.id):
                index = (row[1] - first) // width
                if 0 <= index < count:
                    aggregates[index].add(row[2], row[3])
            spans = self.timelines(first, now_ms, now_ms, [info.id]).get(info.id, [])
        else:
            spans = []
        buckets = [Bucket((first + i * width) / 1000.0, min(now_ms, first + (i + 1) * width) / 1000.0,
                          aggregates[i], tally(spans, first + i * width,
                                               min(now_ms, first + (i + 1) * width)))
                   for i in range(count)]
        return Series(name, span_ms / 1000.0, level, width / 1000.0, buckets)

    def report(self, since: float, until: float | None = None,
               now: float | None = None, holes: Holes | None = None) -> list[TargetReport]:
        """Every target with history in the window: uptime, coverage, outages,
        latency percentiles (approximate past the raw window)."""
        now_ms = self._now_ms(now)
        since_ms = int(since * 1000)
        until_ms = now_ms if until is None else min(now_ms, int(until * 1000))
        infos = [info for info in self.targets().values()
                 if info.last_seen >= since_ms and info.first_seen <= until_ms]
        spans = self.timelines(since_ms, until_ms, now_ms, reasons=True)
        tail = self._tail(since_ms, until_ms)
        reports = []
        for info in infos:
            own = spans.get(info.id, [])
            counted = carve(own, holes(info.name)) if holes is not None else own
            reports.append(TargetReport(info, since_ms / 1000.0, until_ms / 1000.0,
                                        tally(counted, since_ms, until_ms),
                                        outages(own, since_ms, until_ms),
                                        self.aggregate(info.id, since_ms, until_ms, tail)))
        return reports


def _state_name(code: int) -> str:
    return "removed" if code == REMOVED else str(STATES[code]) if 0 <= code < len(STATES) else "?"


def _sample(name: str, row: tuple) -> StoredSample:
    at, status, latency, _reason_id, http_status, cert, *phases, recheck, reason = row
    return StoredSample(
        name=name, at=at / 1000.0, status=STATUSES[status],
        latency_ms=None if latency is None else latency / 1000.0, reason=reason,
        http_status=http_status, cert_expires=cert,
        phases_ms={phase: us / 1000.0 for phase, us in zip(PHASES, phases) if us is not None},
        recheck=bool(recheck))

