"""Rollups and retention: raw, minute and hour levels agree on counts; old
rows go level by level; percentiles from the histograms stay close."""

from __future__ import annotations

import math
import random
import sqlite3
import time

import pytest
from hypothesis import given, settings, strategies as st

from monitor.engine.result import Status
from monitor.engine.state import State
from monitor.store import HistoryStore, Retention, schema, upkeep, writer
from monitor.store.codec import (
    EDGES, LAST, WHOLE_EDGES, bucket_of, decode_hist, encode_hist, merge_hist)
from monitor.store.reader import Reader, prepare_reader
from monitor.store.rollup import HOUR_MS, MINUTE_MS, Aggregate, rolled_up_in_sql, roll_up, rows_of
from monitor.engine.stats import percentile
from tests.store.conftest import T0, Clock, result, transition

NAMES = ("a", "b", "c")


@pytest.fixture
def fast_writer(monkeypatch):
    monkeypatch.setattr(writer, "FLUSH_EVERY", 0.02)
    monkeypatch.setattr(upkeep, "SETTLE_ROWS", 500)
    monkeypatch.setattr(upkeep, "SETTLE_CHUNK", 400)
    monkeypatch.setattr(upkeep, "PRUNE_EVERY", 0.0)
    monkeypatch.setattr(upkeep, "PRUNE_TARGETS", 2)


def fill(store: HistoryStore, hours: float, step: float = 10.0, seed: int = 1) -> list:
    rng = random.Random(seed)
    made = []
    store.on_start(T0)
    for name in NAMES:
        store.on_transition(transition(name, 0, State.UP))
    for i in range(int(hours * 3600 / step)):
        for name in NAMES:
            status = Status.DOWN if rng.random() < 0.05 else Status.UP
            item = result(name, i * step, status, latency=rng.uniform(5, 200))
            made.append(item)
            store.on_result(item)
        if i % 100 == 0:
            time.sleep(0.01)   # let settles happen between batches, as in a real run
    return made


def table_counts(path: str) -> dict[str, tuple[int, int]]:
    db = sqlite3.connect(path)
    try:
        out = {}
        for table in ("samples", "recent"):
            out[table] = db.execute(f"SELECT count(*), coalesce(sum(status = 2), 0) FROM {table}"
                                    ).fetchone()
        for table in ("minutes", "hours"):
            out[table] = db.execute(f"SELECT coalesce(sum(count), 0), coalesce(sum(down), 0) "
                                    f"FROM {table}").fetchone()
        return out
    finally:
        db.close()


def test_raw_minutes_and_hours_agree(db_path, fast_writer):
    store = HistoryStore.open(db_path, clock=Clock(3 * 3600))
    made = fill(store, hours=3)
    deadline = time.monotonic() + 10
    while table_counts(db_path)["samples"][0] == 0:   # at least one settle went through
        assert time.monotonic() < deadline
        time.sleep(0.05)
    store.close()
    counts = table_counts(db_path)
    failures = sum(r.status is Status.DOWN for r in made)
    settled, tail = counts["samples"], counts["recent"]
    assert settled[0] + tail[0] == len(made) and settled[1] + tail[1] == failures
    assert counts["minutes"] == settled and counts["hours"] == settled

    db = sqlite3.connect(db_path)
    prepare_reader(db)
    reader = Reader(db, Clock(3 * 3600))
    target = reader.targets()["a"].id
    mine = [r for r in made if r.name == "a"]
    for since, until in ((0, 3 * 3600), (1800, 2 * 3600 + 900), (600, 1800 + 600)):
        # 2 h 15 m read from hours + minutes; 20 min and the whole read raw or mixed
        got = reader.aggregate(target, int((T0 + since) * 1000), int((T0 + until) * 1000))
        expected = [r for r in mine if since <= r.checked_at.timestamp() - T0 < until]
        assert got.count == len(expected)
        assert got.down == sum(r.status is Status.DOWN for r in expected)
        answered = sorted(r.latency_ms for r in expected if r.latency_ms is not None)
        assert got.min_ms == pytest.approx(answered[0], abs=0.001)
        assert got.max_ms == pytest.approx(answered[-1], abs=0.001)
        # bucket width is a factor of sqrt(2): interpolation keeps p50/p95 much closer
        assert got.percentile_ms(0.5) == pytest.approx(percentile(answered, 0.5), rel=0.08)
        assert got.percentile_ms(0.95) == pytest.approx(percentile(answered, 0.95), rel=0.08)
    db.close()


def test_retention_prunes_each_level_and_keeps_the_rest(db_path, fast_writer):
    clock = Clock(3 * 3600)
    keep = Retention(raw_ms=3600_000, minutes_ms=2 * 3600_000, hours_ms=400 * 86400_000)
    store = HistoryStore.open(db_path, clock=clock, retention=keep)
    made = fill(store, hours=3)
    store.close()
    # reopened 30 minutes later: raw keeps 1 h, minutes 2 h; hours everything
    clock.set(3 * 3600 + 1800)
    store = HistoryStore.open(db_path, clock=clock, retention=keep)
    store.on_start()
    now_ms = int(clock() * 1000)
    db = sqlite3.connect(db_path)
    deadline = time.monotonic() + 10
    while True:   # a prune round of the reopened store goes through
        oldest_raw = db.execute("SELECT min(at) FROM samples").fetchone()[0]
        oldest_minute = db.execute("SELECT min(bucket) FROM minutes").fetchone()[0]
        horizon = db.execute("SELECT value FROM meta WHERE key = 'raw_horizon'").fetchone()
        if horizon and horizon[0] >= now_ms - 3600_000:
            break
        assert time.monotonic() < deadline, "no prune round finished"
        time.sleep(0.05)
    hours = db.execute("SELECT sum(count) FROM hours").fetchone()[0]
    db.close()
    # (None: no raw row settled yet, all still in `recent`: none older either)
    assert oldest_raw is None or oldest_raw >= now_ms - 3600_000
    assert oldest_minute * 60_000 >= now_ms - 2 * 3600_000 - 60_000
    tail = table_counts(db_path)["recent"][0]
    assert hours + tail == len(made)
    # a 30-day report still counts every probe, from hours
    report = {r.target.name: r for r in store.report(T0 - 86400)}
    assert sum(r.samples.count for r in report.values()) == len(made)
    series = store.series("a", "7d")
    assert series.level == "hours"
    assert sum(b.samples.count for b in series.buckets) == len(made) // 3
    store.close()


def test_a_chart_marks_failures_and_no_data_apart(db_path, fast_writer):
    clock = Clock(0)
    store = HistoryStore.open(db_path, clock=clock)
    store.on_start(T0)
    store.on_transition(transition("a", 0, State.UP))
    for i in range(60):                      # [0, 600): one probe every 10 s, 3 failures
        store.on_result(result("a", i * 10, Status.DOWN if 30 <= i < 33 else Status.UP))
    store.on_stop(T0 + 600)
    store.close()
    clock.set(1200)                           # nothing at all in [600, 1200)
    series = HistoryStore.open(db_path, read_only=True, clock=clock).series("a", 1200, points=4)
    assert series.level == "raw" and series.width == 300
    assert [b.samples.count for b in series.buckets] == [30, 30, 0, 0]
    assert [b.failures for b in series.buckets] == [0, 3, 0, 0]
    assert [b.no_data for b in series.buckets] == [False, False, True, True]


def test_histogram_blobs_round_trip_and_merge():
    counts = {0: 1, 5: 300, 33: 70_000}
    assert decode_hist(encode_hist(counts)) == counts
    assert decode_hist(merge_hist(encode_hist({5: 1}), encode_hist({5: 2, 6: 1}))) == {5: 3, 6: 1}
    assert decode_hist(None) == {} and Aggregate().percentile_ms(0.5) is None


latencies = st.one_of(st.none(), st.integers(0, 40_000_000),
                      st.sampled_from([edge + d for edge in WHOLE_EDGES for d in (-1, 0, 1)]))
sample_rows = st.lists(st.tuples(st.integers(1, 4), st.integers(0, 3 * 3_600_000),
                                 st.integers(0, 2), latencies), max_size=300)


@settings(max_examples=60, deadline=None)
@given(rows=sample_rows, minutes_from=st.integers(0, 3 * 3_600_000))
def test_sqlite_counts_the_rollups_python_would(rows, minutes_from):
    """The settle counts in SQL (rollup.rolled_up_in_sql); the migration and
    every reader add up in Python: both must give the same rows, histogram
    buckets included, at their edges too."""
    db = sqlite3.connect(":memory:")
    schema.create(db)
    db.executemany("INSERT INTO recent(target, at, status, latency_us) VALUES (?,?,?,?)", rows)
    source = "FROM recent WHERE rowid <= ? AND at >= ?"
    for width in (MINUTE_MS, HOUR_MS):
        wanted = list(rows_of(roll_up([row for row in rows if row[1] >= minutes_from], width)))
        assert rolled_up_in_sql(db, source, (len(rows), minutes_from), width) == wanted
    db.close()


def test_a_latency_falls_in_the_bucket_whose_edges_hold_it():
    assert bucket_of(0) == 0 and bucket_of(249) == 0 and bucket_of(250) == 1
    for index, edge in enumerate(EDGES[1:], start=2):
        assert bucket_of(math.ceil(edge) - 1) == index - 1 and bucket_of(math.ceil(edge)) == index
    assert bucket_of(10**12) == LAST
