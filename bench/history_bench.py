#!/usr/bin/env python3
"""History benchmark: what the SQLite history costs to keep and to read, and
what recording costs the engine.

  size   1,000 targets with 30 days of synthetic history at one probe a minute,
         kept as the default retention keeps it (raw 7 d, minutes 2 d, hours
         400 d): database size per table, time to open (writer and read-only),
         every uptime window (1 h / 24 h / 7 d / 30 d) of all 1,000 targets,
         the recent samples a dashboard starts with, a 30-day report, charts.
         The rows are generated in SQL (43 M samples through Python would take
         an hour), shaped as the writer leaves them: settled raw samples, one
         minute row per sample, hours of 60, two 3-minute outages per target
         a day, three running spans with gaps between.
  record N targets (1,000) probed over HTTP once a second by monitor's Engine
         in a child process, against a loopback server answering after 20 ms
         (bench/engine_bench.py's), with history off then on (pairs, order
         alternating): CPU per 1,000 probes of the whole process (the writer
         thread included), the on/off ratio, bytes written per probe (wchar
         of /proc/self/io: every write and pwrite, WAL and checkpoints), and
         the database's growth.

    python bench/history_bench.py [--only size|record] [--targets 1000]
                                  [--seconds 20] [--repeat 2] [--json]

Traffic goes to 127.0.0.1 only; every loop is bounded; children die with the
parent and have hard deadlines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine_bench import Child, _cpu_seconds, _die_with_parent, _hard_deadline, _new_loop  # noqa: E402

from monitor.store import HistoryStore  # noqa: E402
from monitor.store.connect import connect  # noqa: E402
from monitor.store.schema import create  # noqa: E402

SCRIPT = str(Path(__file__).resolve())
ENGINE_BENCH = str(Path(__file__).resolve().parent / "engine_bench.py")
DAY_MS, MINUTE_MS = 86_400_000, 60_000


# --- size: 30 days of 1,000 targets -----------------------------------------------------------

def generate(path: str, targets: int, now_ms: int) -> dict[str, float]:
    start = now_ms - 30 * DAY_MS
    db = connect(path, read_only=False)
    create(db)
    db.execute("BEGIN")
    db.executemany("INSERT INTO targets VALUES (?, ?, 'http', ?, ?, ?)",
                   [(i, f"t{i:04d}", f"http://127.0.0.1:8917/t{i}", start, now_ms)
                    for i in range(1, targets + 1)])
    db.execute("INSERT INTO reasons(id, text) VALUES (1, 'expected 2xx, got 503 Service "
               "Unavailable')")
    runs = [(1, start, start + 10 * DAY_MS, start + 10 * DAY_MS),
            (2, start + 10 * DAY_MS + 600_000, start + 20 * DAY_MS, start + 20 * DAY_MS),
            (3, start + 20 * DAY_MS + 1_800_000, now_ms - 1000, None)]
    db.executemany("INSERT INTO runs(id, started, last_seen, stopped, pid) VALUES (?,?,?,?,1)", runs)
    for run, started, _end, _stopped in runs:   # every target confirmed UP a minute in
        db.execute("INSERT INTO events(target, at, run, from_state, to_state) "
                   "SELECT id, ? + 60000 + id * 37, ?, 0, 1 FROM targets", (started, run))
    # two 3-minute outages per target a day, in whichever run they fall
    run_of = " ".join(f"WHEN at < {end} THEN {run}" for run, _s, end, _t in runs)
    db.execute(f"""INSERT INTO events(target, at, run, from_state, to_state, reason)
        WITH RECURSIVE d(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM d WHERE i < 59),
        o AS (SELECT t.id AS target, {start} + (d.i / 2) * {DAY_MS}
                     + ((t.id * 7919 + d.i * 43201) % 86000) * 1000 + 120000 AS at FROM targets t, d)
        SELECT target, at, CASE {run_of} ELSE 3 END, 1, 3, 1 FROM o WHERE at < {now_ms - 600_000}
        UNION ALL
        SELECT target, at + 180000, CASE {run_of} ELSE 3 END, 3, 1, NULL FROM o
        WHERE at < {now_ms - 600_000} ORDER BY 2""")
    raw_from = now_ms - 7 * DAY_MS
    minutes = 7 * 24 * 60
    # latency 4-34 ms and one failure in 197, spread by a hash of (target, minute)
    lat = "(4000 + (t.id * 2654435761 + m.i * 40503) % 30011)"
    status = "(CASE WHEN (t.id * 7 + m.i * 13) % 197 = 0 THEN 2 ELSE 0 END)"
    db.execute(f"""INSERT INTO samples
        WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i < {minutes - 1})
        SELECT t.id, {raw_from} + m.i * 60000 + t.id * 37, {status},
               CASE WHEN {status} = 2 THEN NULL ELSE {lat} END, CASE {status} WHEN 2 THEN 1 END,
               CASE {status} WHEN 2 THEN 503 ELSE 200 END, NULL, NULL, {lat} / 10, NULL,
               {lat} / 2, {lat} / 20, 0
        FROM targets t, m ORDER BY t.id, m.i""")
    bucket = "min(33, CAST(2 * log2(max(latency_us, 250) / 250.0) AS INTEGER) + 1)"
    db.execute(f"""INSERT INTO minutes SELECT target, at / 60000, 1, status = 2, status = 1,
        latency_us IS NOT NULL, coalesce(latency_us, 0), latency_us, latency_us,
        CASE WHEN latency_us IS NOT NULL THEN CAST(char({bucket}, 1) AS BLOB) END
        FROM samples WHERE at >= {now_ms - 2 * DAY_MS}""")
    db.execute(f"""INSERT INTO hours
        WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i < {30 * 24 - 1})
        SELECT x.id, {start // 3_600_000} + x.i, 60, d, 0, 60 - d, (60 - d) * 19000, 4100, 33900,
               CAST(char(10, 20, 11, 25, 12, 15 - d) AS BLOB)
        FROM (SELECT t.id AS id, h.i AS i, (t.id + h.i) % 2 AS d FROM targets t, h) AS x
        ORDER BY x.id, x.i""")
    # as the writer's prune rounds leave them: what each level still holds all of
    db.executemany("INSERT INTO meta VALUES (?, ?)", [
        ("raw_horizon", raw_from), ("minutes_horizon", now_ms - 2 * DAY_MS),
        ("hours_horizon", now_ms - 400 * DAY_MS)])
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
              for table in ("samples", "minutes", "hours", "events", "recent")}
    sizes = {name: size for name, size in db.execute(
        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name")} if _has_dbstat(db) else {}
    db.close()
    return {"rows": counts, "bytes_by_table": sizes}


def _has_dbstat(db: sqlite3.Connection) -> bool:
    try:
        db.execute("SELECT 1 FROM dbstat LIMIT 1")
        return True
    except sqlite3.Error:
        return False


def timed(call: Any, repeat: int = 3) -> tuple[float, Any]:
    """Best of `repeat` wall-clock runs, in seconds, and the last result."""
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = call()
        best = min(best, time.perf_counter() - started)
    return best, value


def size_bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp:
        path = os.path.join(tmp, "history.sqlite3")
        now_ms = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
        started = time.perf_counter()
        made = generate(path, args.targets, now_ms)
        out: dict[str, Any] = {"generate_s": round(time.perf_counter() - started, 1), **made,
                               "file_bytes": os.path.getsize(path)}

        def open_writer() -> None:
            HistoryStore.open(path, owner_info="bench").close()

        out["open_writer_s"], _ = timed(open_writer)
        out["open_read_only_s"], reader = timed(lambda: HistoryStore.open(path, read_only=True), 1)
        out["first_uptime_s"], _ = timed(reader.uptime, 1)   # cold: the first read after open
        out["uptime_all_windows_s"], windows = timed(reader.uptime)
        sample = windows["t0001"]
        out["t0001_uptime_pct"] = [round(w.uptime_pct or 0, 3) for w in sample]
        out["t0001_coverage_pct"] = [round(w.coverage_pct, 1) for w in sample]
        out["recent_100_samples_all_s"], _ = timed(lambda: reader.recent_samples(limit=100))
        out["report_30d_all_s"], reports = timed(lambda: reader.report(now_ms / 1000 - 30 * 86400),
                                                 1)
        out["report_targets"] = len(reports)
        for range_ in ("1h", "24h", "7d", "30d"):
            seconds, series = timed(lambda: reader.series("t0500", range_))
            out[f"series_{range_}_s"] = seconds
            out[f"series_{range_}_level"] = series.level
        reader.close()
        return out


# --- record: the engine with history off and on ------------------------------------------------

def client_main(args: argparse.Namespace) -> int:
    _die_with_parent()
    _hard_deadline(args.warmup + args.seconds + 60)
    from monitor.config import parse_config
    from monitor.engine.scheduler import Engine

    targets = "".join(f'[[targets]]\nname = "t{i}"\nkind = "http"\n'
                      f'url = "http://127.0.0.1:{args.port}/t{i}"\n' for i in range(args.targets))
    config = parse_config('[settings]\ninterval = "1s"\ntimeout = "900ms"\n'
                          f'concurrency = 4096\n{targets}')
    tmp = tempfile.mkdtemp(prefix="history-bench-")
    path = os.path.join(tmp, "history.sqlite3")
    store = HistoryStore.open(path, owner_info="bench") if args.history else None
    count = [0]

    def on_result(result: Any) -> None:
        count[0] += 1
        if store is not None:
            store.on_result(result)

    async def body() -> dict[str, Any]:
        engine = Engine(config, on_result=on_result,
                        on_transition=store.on_transition if store else None, keep_history=False)
        if store is not None:
            store.on_start()
        await engine.start()
        await asyncio.sleep(args.warmup)
        cpu, probes, wrote = _cpu_seconds(), count[0], _io("wchar")
        size = _db_bytes(path)
        await asyncio.sleep(args.seconds)
        cpu, probes = _cpu_seconds() - cpu, count[0] - probes
        wrote = _io("wchar") - wrote
        grew = _db_bytes(path) - size
        await engine.stop()
        return {"history": args.history, "probes": probes, "probes_per_s": probes / args.seconds,
                "cpu_s_per_1000": 1000 * cpu / max(1, probes),
                "bytes_written_per_probe": wrote / max(1, probes),
                "db_growth_per_probe": grew / max(1, probes) if store else 0.0}

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        result = runner.run(body())
    if store is not None:
        store.close()
        result["health"] = store.health.message
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _io(field: str) -> int:
    with open("/proc/self/io") as stats:
        for line in stats:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _db_bytes(path: str) -> int:
    return sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))


def record_bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    server = Child([sys.executable, ENGINE_BENCH, "_server", "--port", "0", "--deadline",
                    str(args.repeat * 2 * (args.seconds + args.warmup + 30) + 60)])
    rows = []
    try:
        port = server.read(30)["port"]
        for pair in range(args.repeat):
            order = (False, True) if pair % 2 == 0 else (True, False)
            for history in order:
                child = Child([sys.executable, SCRIPT, "_client", "--port", str(port),
                               "--targets", str(args.targets), "--seconds", str(args.seconds),
                               "--warmup", str(args.warmup)] + (["--history"] if history else []))
                try:
                    rows.append({"pair": pair, **child.read(args.seconds + args.warmup + 60)})
                finally:
                    child.close()
    finally:
        server.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_client":
        role = argparse.ArgumentParser()
        role.add_argument("--port", type=int, required=True)
        role.add_argument("--targets", type=int, required=True)
        role.add_argument("--seconds", type=float, required=True)
        role.add_argument("--warmup", type=float, required=True)
        role.add_argument("--history", action="store_true")
        return client_main(role.parse_args(argv[1:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("size", "record"))
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=2, help="off/on pairs (2)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {}
    if args.only in (None, "size"):
        out["size"] = size_bench(args)
    if args.only in (None, "record"):
        rows = record_bench(args)
        out["record"] = rows
        for pair in range(args.repeat):
            off = next(r for r in rows if r["pair"] == pair and not r["history"])
            on = next(r for r in rows if r["pair"] == pair and r["history"])
            out.setdefault("ratios", []).append(round(on["cpu_s_per_1000"]
                                                      / off["cpu_s_per_1000"], 3))
    print(json.dumps(out, indent=None if args.json else 2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
