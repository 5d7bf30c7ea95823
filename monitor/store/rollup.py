"""Aggregates of samples: per-minute and per-hour rows, and the buckets of a
chart. One shape for all three, so a chart or a report reads raw samples,
minutes or hours the same way and the counts agree at every level."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from monitor.store.codec import (
    DEGRADED_CODE, DOWN_CODE, LAST, WHOLE_EDGES, bucket_of, decode_hist, encode_hist,
    hist_percentile)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000

# (target, bucket, count, down, degraded, answered, lat_sum_us, lat_min_us, lat_max_us, hist)
ROLLUP_COLUMNS = ("target", "bucket", "count", "down", "degraded", "answered",
                  "lat_sum_us", "lat_min_us", "lat_max_us", "hist")


@dataclass(slots=True)
class Aggregate:
    count: int = 0        # probes
    down: int = 0         # DOWN results (failures)
    degraded: int = 0
    answered: int = 0     # results with a latency
    lat_sum_us: int = 0
    lat_min_us: int | None = None
    lat_max_us: int | None = None
    hist: dict[int, int] = field(default_factory=dict)

    def add(self, status: int, latency_us: int | None) -> None:
        self.count += 1
        if status == DOWN_CODE:
            self.down += 1
        elif status == DEGRADED_CODE:
            self.degraded += 1
        if latency_us is not None:
            self.answered += 1
            self.lat_sum_us += latency_us
            if self.lat_min_us is None or latency_us < self.lat_min_us:
                self.lat_min_us = latency_us
            if self.lat_max_us is None or latency_us > self.lat_max_us:
                self.lat_max_us = latency_us
            index = bucket_of(latency_us)
            self.hist[index] = self.hist.get(index, 0) + 1

    def merge(self, other: Aggregate) -> None:
        self.count += other.count
        self.down += other.down
        self.degraded += other.degraded
        self.answered += other.answered
        self.lat_sum_us += other.lat_sum_us
        if other.lat_min_us is not None and (self.lat_min_us is None
                                             or other.lat_min_us < self.lat_min_us):
            self.lat_min_us = other.lat_min_us
        if other.lat_max_us is not None and (self.lat_max_us is None
                                             or other.lat_max_us > self.lat_max_us):
            self.lat_max_us = other.lat_max_us
        for index, count in other.hist.items():
            self.hist[index] = self.hist.get(index, 0) + count

    @classmethod
    def from_row(cls, row: tuple) -> Aggregate:
        """From (count, down, degraded, answered, sum, min, max, hist) columns."""
        count, down, degraded, answered, total, low, high, blob = row
        return cls(count or 0, down or 0, degraded or 0, answered or 0, total or 0, low, high,
                   decode_hist(blob))

    def row(self, target: int, bucket: int) -> tuple:
        return (target, bucket, self.count, self.down, self.degraded, self.answered,
                self.lat_sum_us, self.lat_min_us, self.lat_max_us, encode_hist(self.hist))

    # --- figures, in milliseconds ---

    @property
    def avg_ms(self) -> float | None:
        return self.lat_sum_us / self.answered / 1000.0 if self.answered else None

    @property
    def min_ms(self) -> float | None:
        return None if self.lat_min_us is None else self.lat_min_us / 1000.0

    @property
    def max_ms(self) -> float | None:
        return None if self.lat_max_us is None else self.lat_max_us / 1000.0

    def percentile_ms(self, fraction: float) -> float | None:
        if not self.answered or self.lat_min_us is None or self.lat_max_us is None:
            return None
        value = hist_percentile(self.hist, fraction, self.lat_min_us, self.lat_max_us)
        return None if value is None else value / 1000.0


def roll_up(rows: Iterable[tuple], width_ms: int) -> dict[tuple[int, int], Aggregate]:
    """(target, bucket number) -> Aggregate of sample rows (target, at, status,
    latency_us, ...), bucket number = at // width_ms."""
    out: dict[tuple[int, int], Aggregate] = {}
    for row in rows:
        key = (row[0], row[1] // width_ms)
        aggregate = out.get(key)
        if aggregate is None:
            aggregate = out[key] = Aggregate()
        aggregate.add(row[2], row[3])
    return out


def rows_of(aggregates: dict[tuple[int, int], Aggregate]) -> Iterator[tuple]:
    for (target, bucket), aggregate in sorted(aggregates.items()):
        yield aggregate.row(target, bucket)


# bucket_of(latency_us) in SQL
_SLOT = "CASE " + " ".join(f"WHEN latency_us < {edge} THEN {index}"
                           for index, edge in enumerate(WHOLE_EDGES)) + f" ELSE {LAST} END"


def rolled_up_in_sql(db: sqlite3.Connection, source: str, params: tuple,
                     width_ms: int) -> list[tuple]:
    """The rollup rows (ROLLUP_COLUMNS, ordered as rows_of orders them) of the
    sample rows that `source` selects ("FROM table WHERE ..."), counted by
    SQLite. Same figures as rows_of(roll_up(...)), but the writer thread's
    Python work is per bucket, not per sample: tens of thousands of samples
    counted in Python would hold the GIL the probing loop needs for a quarter
    of a second (SQLite releases it while it counts)."""
    group = f"target, at / {width_ms}"
    hists: dict[tuple[int, int], dict[int, int]] = {}
    for target, bucket, slot, count in db.execute(
            f"SELECT {group}, {_SLOT}, count(*) {source} AND latency_us IS NOT NULL "
            f"GROUP BY 1, 2, 3", params):
        hists.setdefault((target, bucket), {})[slot] = count
    return [(*row, encode_hist(hists.get((row[0], row[1]), {}))) for row in db.execute(
        f"SELECT {group}, count(*), sum(status = {DOWN_CODE}), sum(status = {DEGRADED_CODE}), "
        f"count(latency_us), coalesce(sum(latency_us), 0), min(latency_us), max(latency_us) "
        f"{source} GROUP BY 1, 2 ORDER BY 1, 2", params)]
