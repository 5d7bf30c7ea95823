"""The writer thread's upkeep between batches: settling `recent` into
`samples` with the minute and hour rollups (schema.py says why samples
arrive in `recent`), and pruning each level to its retention, a few targets
per step so no step holds the database for long.

Each step runs inside the writer's transaction and returns what to do once
it committed (a commit that fails leaves the writer's state as it was).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from monitor.store import schema
from monitor.store.codec import SAMPLE_COLUMNS, epoch_ms
from monitor.store.rollup import HOUR_MS, MINUTE_MS, rolled_up_in_sql

SETTLE_ROWS = 200_000      # rows in `recent` that start a settle...
SETTLE_AGE_MS = 30 * 60_000   # ...or the age of its oldest row
SETTLE_CHUNK = 50_000      # rows moved per transaction
PRUNE_EVERY = 30.0         # seconds between prune steps
PRUNE_TARGETS = 50         # targets per prune step


class Upkeep:
    """Settling and pruning, mixed into the Writer (whose state it uses)."""

    retention: Any
    clock: Callable[[], float]
    _recent_rows: int
    _recent_oldest: int | None
    _settling: bool
    _prune_cursor: int
    _round_cuts: tuple[int, int, int] | None
    _reasons: dict
    _targets: dict

    def _settle_due(self) -> bool:
        if self._settling:
            return True
        oldest = self._recent_oldest
        due = self._recent_rows >= SETTLE_ROWS or (
            oldest is not None and epoch_ms(self.clock()) - oldest >= SETTLE_AGE_MS)
        if due:
            self._settling = True
        return due

    def _settle_step(self, db: sqlite3.Connection) -> Callable[[], None] | None:
        """Move the oldest SETTLE_CHUNK rows of `recent`, ordered by target, into
        `samples`, and add them into the minute and hour rollups."""
        row = db.execute("SELECT rowid FROM recent ORDER BY rowid LIMIT 1 OFFSET ?",
                         (SETTLE_CHUNK - 1,)).fetchone()
        cut = row[0] if row else db.execute("SELECT max(rowid) FROM recent").fetchone()[0]
        if cut is None:
            self._settling = False
            self._recent_rows, self._recent_oldest = 0, None
            return None
        columns = ", ".join(SAMPLE_COLUMNS)
        now = epoch_ms(self.clock())
        # rows already past a level's retention (a monitor restarted after long) skip that level
        db.execute(f"INSERT OR IGNORE INTO samples({columns}) SELECT {columns} FROM recent "
                   "WHERE rowid <= ? AND at >= ? ORDER BY target, at",
                   (cut, now - self.retention.raw_ms))
        settled = settle_rollups(db, cut, now - self.retention.minutes_ms)
        db.execute("DELETE FROM recent WHERE rowid <= ?", (cut,))
        row = db.execute("SELECT at FROM recent ORDER BY rowid LIMIT 1").fetchone()

        def committed() -> None:
            self._recent_rows = max(0, self._recent_rows - settled)
            self._recent_oldest = row[0] if row else None
            if row is None or self._recent_rows < SETTLE_CHUNK:
                self._settling = False
        return committed

    # --- pruning ----------------------------------------------------------------------------

    def _prune_step(self, db: sqlite3.Connection) -> Callable[[], None]:
        now = epoch_ms(self.clock())
        keep = self.retention
        if self._round_cuts is None:
            self._round_cuts = (now - keep.raw_ms, (now - keep.minutes_ms) // MINUTE_MS,
                                (now - keep.hours_ms) // HOUR_MS)
        raw_cut, minute_cut, hour_cut = self._round_cuts
        event_cut = now - keep.events_ms
        ids = [row[0] for row in db.execute(
            "SELECT id FROM targets WHERE id > ? ORDER BY id LIMIT ?",
            (self._prune_cursor, PRUNE_TARGETS))]
        for target in ids:
            db.execute("DELETE FROM samples WHERE target = ? AND at < ?", (target, raw_cut))
            db.execute("DELETE FROM minutes WHERE target = ? AND bucket < ?", (target, minute_cut))
            db.execute("DELETE FROM hours WHERE target = ? AND bucket < ?", (target, hour_cut))
            db.execute("DELETE FROM events WHERE target = ? AND at < ?", (target, event_cut))
        if ids:
            def next_targets() -> None:
                self._prune_cursor = ids[-1]
            return next_targets
        self._prune_round(db, raw_cut, event_cut)

        def next_round() -> None:
            self._prune_cursor = 0
            self._round_cuts = None
            self._reasons.clear()   # ids of pruned reasons and targets are gone
            self._targets.clear()
        return next_round

    def _prune_round(self, db: sqlite3.Connection, raw_cut: int, event_cut: int) -> None:
        """After every target had its turn: what all targets share. (Rows in
        `recent` are never pruned: they settle first, rolled up.)"""
        db.execute("DELETE FROM runs WHERE last_seen < ? AND id NOT IN "
                   "(SELECT DISTINCT run FROM events)", (event_cut,))
        db.execute("DELETE FROM reloads WHERE at < ?", (event_cut,))
        db.execute("DELETE FROM reasons WHERE coalesce(sample_use, 0) < ? "
                   "AND coalesce(event_use, 0) < ?", (raw_cut, event_cut))
        db.execute("DELETE FROM targets WHERE last_seen < ? "
                   "AND NOT EXISTS (SELECT 1 FROM events WHERE target = targets.id) "
                   "AND NOT EXISTS (SELECT 1 FROM samples WHERE target = targets.id) "
                   "AND NOT EXISTS (SELECT 1 FROM hours WHERE target = targets.id)", (event_cut,))
        db.executemany("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                       "DO UPDATE SET value = excluded.value",
                       [("raw_horizon", raw_cut),
                        ("minutes_horizon", self._round_cuts[1] * MINUTE_MS),   # type: ignore[index]
                        ("hours_horizon", self._round_cuts[2] * HOUR_MS)])       # type: ignore[index]


def settle_rollups(db: sqlite3.Connection, cut: int, minutes_from: int) -> int:
    """Add the rows of `recent` up to rowid `cut` into `hours`, and into
    `minutes` those from `minutes_from` on; how many rows there were."""
    source = "FROM recent WHERE rowid <= ? AND at >= ?"
    schema.upsert_rollups(db, "hours", rolled_up_in_sql(db, source, (cut, 0), HOUR_MS))
    schema.upsert_rollups(db, "minutes", rolled_up_in_sql(
        db, source, (cut, minutes_from), MINUTE_MS))
    return db.execute("SELECT count(*) FROM recent WHERE rowid <= ?", (cut,)).fetchone()[0]
